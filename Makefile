# geomas: `make demo` and `make test` work from a fresh clone (they create .venv first).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.geomas-installed
# CPU torch wheel; a range in pyproject accepts it, so nothing pulls CUDA builds on top.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install browser demo test test-slow lint bench clean

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

# The panel's browser test (tests/panel/test_browser.py) drives the system Chromium, not a
# browser Playwright downloads: installed here as root on Debian, else a clear failure.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
		echo "Chromium is missing: install the Debian package 'chromium'" \
			"(sudo apt-get install -y chromium); the panel's browser test needs it" >&2; \
		exit 1; \
	fi

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: install browser
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
