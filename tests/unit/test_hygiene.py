"""Chunk hygiene on real Russian documents (../shared/corpus/real-ru) and targeted DOCX cases.

The real corpus is ingested twice, hygiene on and off, with the same settings otherwise; the
off run shows each check can fail (the defect is there without hygiene).
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pypdfium2
import pytest
from conftest import typeset_report

from geomas.config import HygieneConfig, IngestConfig, NerInferenceConfig
from geomas.ingest import ingest_folder
from geomas.ingest.hygiene import _PAGE_NUMBER, count_hyphen_splits, numeric_share

#: formats read here (the .doc files of real-ru: tests/integration/test_legacy_docs.py)
DOCS = [".pdf", ".docx"]
TYPESET = "typeset_rtn505_report.pdf"


@pytest.fixture(scope="module")
def real_runs(real_ru: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    src = tmp_path_factory.mktemp("real_ru_src")
    for path in sorted(real_ru.iterdir()):
        if path.suffix in DOCS:
            shutil.copy(path, src / path.name)
    # real text typeset with line-end hyphenation and drawn tables: no real PDF here has either
    typeset_report(real_ru / "rtn505_mining_safety.docx", src / TYPESET,
                   table_docx=real_ru / "tz_gas_upravlenie.docx")
    runs: dict[str, Any] = {"src": src}
    for mode, enabled in (("on", True), ("off", False)):
        out = tmp_path_factory.mktemp(f"real_ru_{mode}")
        # the scans stay unread here (tests/integration/test_ocr.py reads them): OCR would add
        # ~25 s to each of the two runs and nothing to what hygiene is measured on
        cfg = IngestConfig(workers=2, max_failure_ratio=1.0, ocr="off",
                           hygiene=HygieneConfig(enabled=enabled))
        runs[mode] = ingest_folder(src, out, cfg, progress=False)
    return runs


def _body(run: Any) -> list[Any]:
    return [c for c in run.kept.chunks if c.kind == "body"]


def test_no_body_chunk_is_mostly_numbers(real_runs: dict[str, Any]) -> None:
    numeric = [c for c in _body(real_runs["on"]) if numeric_share(c.text) > 0.5]
    assert numeric == []
    # without hygiene the same corpus has table debris among the (all body) chunks
    assert sum(numeric_share(c.text) > 0.5 for c in _body(real_runs["off"])) >= 1
    kinds = real_runs["on"].report.chunk_kinds
    assert kinds["table"] >= 20 and kinds["toc"] >= 1, kinds


def test_line_end_hyphenation_is_rejoined(real_runs: dict[str, Any]) -> None:
    off = sum(count_hyphen_splits(c.text) for c in _body(real_runs["off"]))
    on = sum(count_hyphen_splits(c.text) for c in _body(real_runs["on"]))
    assert off >= 100, off
    assert on <= 0.1 * off, (on, off)
    text = " ".join(c.text for c in real_runs["on"].kept.chunks if c.source == TYPESET)
    assert "эксплуатации" in text
    # a real compound keeps its hyphen, also when the line broke at it
    assert "горно-геологических" in text


def test_no_page_number_or_running_header_lines(real_runs: dict[str, Any]) -> None:
    def furniture(run: Any) -> list[str]:  # PDFs: DOCX has no pages
        return [line for c in _body(run) if c.source.endswith(".pdf")
                for line in c.text.splitlines()
                if _PAGE_NUMBER.match(line) or "Страница" in line and " из " in line
                or line.startswith("Федеральные нормы и правила в области промышленной")]

    assert furniture(real_runs["on"]) == []
    assert len(furniture(real_runs["off"])) >= 200  # labour_code.pdf: one per page
    hygiene = real_runs["on"].report.hygiene
    assert hygiene["header_footer_lines"] >= 2 * 250


def _tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def _text_layer(pdf: Path, margin: float = 0.12) -> str:
    """pdfium's text of each page without the top/bottom margin, line-end hyphens joined."""
    doc = pypdfium2.PdfDocument(str(pdf))
    parts = []
    for page in doc:
        width, height = page.get_size()
        textpage = page.get_textpage()
        parts.append(textpage.get_text_bounded(0, height * margin, width, height * (1 - margin)))
        textpage.close()
        page.close()
    doc.close()
    # pdfium writes a soft (typeset) hyphen at a line end as \x02 and joins the lines
    text = "\n".join(parts).replace("\ufffe", "-").replace("\x02", "")
    return re.sub(r"([^\W\d_])-\r?\n([^\W\d_])", r"\1\2", text)


@pytest.mark.parametrize("name", ["labour_code.pdf", "fstec17_text.pdf", TYPESET])
def test_text_recall_against_the_text_layer(real_runs: dict[str, Any], name: str) -> None:
    layer = _tokens(_text_layer(real_runs["src"] / name))
    chunks = _tokens("\n".join(c.text for c in real_runs["on"].kept.chunks if c.source == name))
    recall = sum((layer & chunks).values()) / sum(layer.values())
    assert recall >= 0.97, f"{name}: recall {recall:.4f}"


def test_docx_chunks_have_no_markdown_markers_and_tables_are_tables(
    real_runs: dict[str, Any],
) -> None:
    def markers(run: Any) -> int:
        return sum(bool(re.search(r"\*\*|\]\((?:https?|mailto):", c.text))
                   for c in run.kept.chunks if c.source.endswith(".docx"))

    assert markers(real_runs["on"]) == 0
    assert markers(real_runs["off"]) >= 10
    tz = [c for c in real_runs["on"].kept.chunks if c.source == "tz_gas_upravlenie.docx"]
    tables = [c for c in tz if c.kind == "table"]
    assert len(tables) >= 20
    # Markdown rows; a table split over chunks repeats its header row where it fits
    lines = [line for c in tables for line in c.text.splitlines() if line.strip()]
    assert sum(line.startswith("|") for line in lines) >= 0.9 * len(lines)
    assert sum("| - |" in c.text for c in tables) >= 0.7 * len(tables)
    triplet = re.compile(r"\w, [^=\n]{1,80} = \S")
    assert sum(bool(triplet.search(c.text)) for c in tz if c.kind == "body") == 0
    assert sum(bool(triplet.search(c.text))
               for c in real_runs["off"].kept.chunks if c.source == "tz_gas_upravlenie.docx") > 20


def test_hygiene_counts_are_in_the_summary_and_each_record(real_runs: dict[str, Any]) -> None:
    report = real_runs["on"].report
    for rule in ("header_footer_lines", "paragraphs", "hyphen_dehyphenated", "tables_rebuilt",
                 "toc_lines", "scripts"):
        assert report.hygiene.get(rule, 0) > 0, rule
    assert real_runs["off"].report.hygiene == {}
    assert set(real_runs["off"].report.chunk_kinds) == {"body"}
    summary = Path(report.output_dir, "ingest_summary.json").read_text("utf-8")
    assert '"hygiene"' in summary and '"chunk_kinds"' in summary


def _docx_with_formula_and_superscript(path: Path) -> Path:
    import docx
    from docx.oxml import parse_xml

    math = 'xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math"'
    d = docx.Document()
    d.add_paragraph("Отчёт о запасах месторождения Граничное. " * 3)
    p = d.add_paragraph("Запасы газа составляют 12,5 млрд. м")
    p.add_run("3").font.superscript = True
    p.add_run(", плотность нефти рассчитывается по формуле ")
    p._p.append(parse_xml(f"<m:oMath {math}><m:r><m:t>ρ=m/V</m:t></m:r></m:oMath>"))
    p.add_run(" (8.7), где m — масса пробы, V — её объём.")
    q = d.add_paragraph()
    q._p.append(parse_xml(
        f"<m:oMathPara {math}><m:oMath><m:f><m:num><m:r><m:t>Q</m:t></m:r></m:num>"
        "<m:den><m:r><m:t>S</m:t></m:r></m:den></m:f></m:oMath></m:oMathPara>"))
    q.add_run(" (8.8)")
    d.add_paragraph("**Важно** — коэффициент извлечения нефти принят равным 0,35 доли единицы.")
    d.save(str(path))
    return path


def test_docx_formulas_are_kept_and_superscripts_not_glued(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _docx_with_formula_and_superscript(src / "chapter.docx")
    result = ingest_folder(src, tmp_path / "out", IngestConfig(workers=1), progress=False)
    text = "\n".join(c.text for c in result.kept.chunks)
    assert "млрд. м³," in text
    assert "\\rho =m/V" in text and "\\frac{Q}{S}" in text
    assert "(8.7), где m" in text
    assert not re.search(r",\s+\(8\.7\)", text)  # the formula did not vanish before its number
    assert "**Важно**" in text  # literal asterisks typed in the document are content
    assert result.report.hygiene["formulas_kept"] == 2


def test_ner_reads_only_body_chunks(sample_corpus: Path, tmp_path: Path) -> None:
    import json

    from geomas.ingest.records import Chunk
    from geomas.models import make_tiny
    from geomas.ner.extract import extract_chunk_entities

    model = make_tiny("ner", tmp_path / "tiny", corpus_dir=sample_corpus, seed=0)
    # an untrained head over BIO labels is enough: the test is about which chunks are read
    config = json.loads((model / "config.json").read_text("utf-8"))
    labels = {0: "O", 1: "B-DEPOSIT", 2: "I-DEPOSIT"}
    config.update(id2label=labels, label2id={v: k for k, v in labels.items()},
                  architectures=["BertForTokenClassification"])
    (model / "config.json").write_text(json.dumps(config), "utf-8")
    base = {"doc_id": "d" * 64, "source": "a.pdf", "char_start": 0, "char_end": 1,
            "n_tokens": 1, "parser": "p"}
    chunks = [Chunk(chunk_id=f"c{i}", chunk_index=i, text=text, kind=kind, **base)
              for i, (kind, text) in enumerate([
                  ("body", "Месторождение Граничное открыто в 1958 году."),
                  ("table", "| Скважина | Дебит |\n| - | - |\n| 12 | 40 |"),
                  ("toc", "1 Общие сведения ........ 3"),
                  ("front_matter", "УТВЕРЖДАЮ Генеральный директор")])]
    found = extract_chunk_entities(chunks, NerInferenceConfig(model_path=model))
    assert [i.chunk_id for i in found.items] == ["c0"]
    everything = extract_chunk_entities(chunks, NerInferenceConfig(
        model_path=model, chunk_kinds=("body", "table", "toc", "front_matter")))
    assert [i.chunk_id for i in everything.items] == ["c0", "c1", "c2", "c3"]


def test_page_range_batches_give_the_same_chunks(real_runs: dict[str, Any]) -> None:
    """A long PDF is converted a few pages at a time (bounded memory); the chunks and page
    count are those of one whole-file pass, paragraphs across batch edges included."""
    from geomas.ingest.convert import FileConverter

    pdf = real_runs["src"] / TYPESET
    whole = FileConverter(IngestConfig(pdf_page_batch=100_000)).convert(pdf, "a" * 64)
    batched = FileConverter(IngestConfig(pdf_page_batch=3)).convert(pdf, "a" * 64)
    assert whole.ok and batched.ok
    assert whole.pages == batched.pages >= 10
    assert [c["text"] for c in batched.chunks] == [c["text"] for c in whole.chunks]
    assert [c["pages"] for c in batched.chunks] == [c["pages"] for c in whole.chunks]
    assert any(len(c["pages"]) > 1 for c in batched.chunks)  # text does cross page edges
