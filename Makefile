# geomas: `make demo` and `make test` work from a fresh clone (they create .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.geomas-installed
# CPU torch wheel; a range in pyproject accepts it, so nothing pulls CUDA builds on top.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install system-deps demo test test-slow lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e '.[dev,demo]'
	touch $(STAMP)

demo: install
	$(BIN)/geomas sample-corpus demo_out/corpus --docs 24 --seed 0 --with-bad-files --overwrite
	$(BIN)/geomas models make-tiny ner demo_out/models/tiny-ner --corpus demo_out/corpus --overwrite
	$(BIN)/geomas convert-annotations demo_out/corpus/annotations demo_out/bert_training_data
	$(BIN)/geomas train-bert-ner demo_out/bert_training_data --model-name demo_out/models/tiny-ner \
		--output-dir demo_out/ner_model --epochs 40 --batch-size 16 --learning-rate 1e-3
	$(BIN)/geomas run data --config configs/local.yaml
	$(BIN)/geomas models make-tiny lm demo_out/models/tiny-lm --corpus demo_out/corpus \
		--pretrain-steps 300 --overwrite
	$(BIN)/geomas run training --config configs/local.yaml
	$(BIN)/geomas retrain check --config configs/local.yaml --dry-run

# System packages (Debian names) that the tests and ingest need: Chromium for the panel's
# browser test (tests/panel/test_browser.py drives the system Chromium, not a browser
# Playwright downloads), Tesseract with its Russian and English data for OCR of scanned PDFs,
# LibreOffice Writer (soffice) for .doc/.rtf. Installed here with apt-get as root on Debian;
# otherwise one line per missing package, and a non-zero exit.
# FIND_MISSING sets $missing to the packages whose tool is not there (a tool found on PATH
# counts, however it was installed: libreoffice-writer instead of -nogui, chromium-browser).
define FIND_MISSING
missing=""; \
{ command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 \
	|| missing="$$missing chromium"; \
command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
langs="$$(tesseract --list-langs 2>/dev/null || true)"; \
for lang in rus eng; do \
	printf '%s\n' "$$langs" | grep -qx "$$lang" || missing="$$missing tesseract-ocr-$$lang"; \
done; \
command -v soffice >/dev/null 2>&1 || missing="$$missing libreoffice-writer-nogui"
endef

system-deps:
	@$(FIND_MISSING); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
		echo "installing system packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing \
			|| exit 1; \
		$(FIND_MISSING); \
	fi; \
	for pkg in $$missing; do \
		case $$pkg in \
			chromium) why="the panel's browser test drives it";; \
			tesseract-ocr*) why="OCR of scanned PDF pages (ingest.ocr) and its tests";; \
			libreoffice*) why="soffice converts .doc/.rtf to DOCX for ingest and its tests";; \
		esac; \
		echo "missing system package $$pkg: $$why; install it with" \
			"sudo apt-get install -y $$pkg (or run make system-deps as root on Debian)" >&2; \
	done; \
	[ -z "$$missing" ]

test: install system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install system-deps
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check geomas steps pipelines tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ner.py
	$(BIN)/python bench/dedup.py

clean:
	rm -rf demo_out .geomas
