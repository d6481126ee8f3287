"""Sample corpus behaviour: determinism, gold spans, readable PDFs and DOCX files, bad files."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import docx
import pypdfium2 as pdfium
import pytest

from geomas.errors import InputError, MissingExtraError
from geomas.ner.labels import GEO_LABELS
from geomas.sample import SampleCorpus, generate_sample_corpus
from geomas.sample.writers import ENCRYPTED_USER_PASSWORD, dejavu_font_paths


def _tasks(corpus: SampleCorpus) -> list[dict[str, Any]]:
    return json.loads(corpus.annotations_path.read_text(encoding="utf-8"))


def _by_doc(corpus: SampleCorpus) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in _tasks(corpus):
        grouped[task["data"]["doc_name"]].append(task)
    return grouped


def _results(task: dict[str, Any]) -> list[dict[str, Any]]:
    (annotation,) = task["annotations"]
    return annotation["result"]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> SampleCorpus:
    return generate_sample_corpus(
        tmp_path_factory.mktemp("corpus"), docs=8, seed=3, with_bad_files=True
    )


def test_same_seed_gives_identical_bytes_and_other_seed_other_text(tmp_path: Path) -> None:
    a = generate_sample_corpus(tmp_path / "a", docs=5, seed=11, with_bad_files=True)
    b = generate_sample_corpus(tmp_path / "b", docs=5, seed=11, with_bad_files=True)
    c = generate_sample_corpus(tmp_path / "c", docs=5, seed=12, with_bad_files=True)

    digests_a = _digests(tmp_path / "a")
    assert len(digests_a) == 5 + 4 + 2  # reports, bad files, export, manifest
    assert digests_a == _digests(tmp_path / "b")

    texts_a = [t["data"]["text"] for t in _tasks(a)]
    texts_c = [t["data"]["text"] for t in _tasks(c)]
    assert texts_a == [t["data"]["text"] for t in _tasks(b)]
    assert not set(texts_a) & set(texts_c)
    reports_a = {k: v for k, v in digests_a.items() if "report_" in k}
    reports_c = {k: v for k, v in _digests(tmp_path / "c").items() if "report_" in k}
    assert not set(reports_a.values()) & set(reports_c.values())


def test_document_does_not_depend_on_corpus_size(tmp_path: Path) -> None:
    small = generate_sample_corpus(tmp_path / "small", docs=2, seed=5)
    large = generate_sample_corpus(tmp_path / "large", docs=6, seed=5)
    first_small = [t["data"]["text"] for t in _tasks(small) if t["data"]["doc_index"] == 0]
    first_large = [t["data"]["text"] for t in _tasks(large) if t["data"]["doc_index"] == 0]
    assert first_small == first_large


def test_spans_match_text_and_never_overlap(corpus: SampleCorpus) -> None:
    tasks = _tasks(corpus)
    assert len(tasks) == corpus.n_tasks == 6 * len(corpus.documents)
    assert [t["id"] for t in tasks] == list(range(1, len(tasks) + 1))
    result_ids = set()
    for task in tasks:
        text = task["data"]["text"]
        spans = sorted((r["value"]["start"], r["value"]["end"]) for r in _results(task))
        assert spans, f"task {task['id']} has no entities"
        for result in _results(task):
            value = result["value"]
            assert (result["from_name"], result["to_name"], result["type"]) == (
                "label",
                "text",
                "labels",
            )
            assert text[value["start"] : value["end"]] == value["text"]
            assert value["text"] == value["text"].strip() and value["text"]
            assert "\n" not in value["text"] and len(value["text"]) <= 200
            assert value["labels"][0] in GEO_LABELS and len(value["labels"]) == 1
            result_ids.add(result["id"])
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"overlapping spans in task {task['id']}"
    assert len(result_ids) == corpus.n_entities


def test_every_document_covers_all_entity_types_as_in_manifest(corpus: SampleCorpus) -> None:
    manifest = json.loads(corpus.manifest_path.read_text(encoding="utf-8"))
    by_doc = _by_doc(corpus)
    assert set(by_doc) == {d["file"] for d in manifest["documents"]}
    for record in manifest["documents"]:
        labels = [r["value"]["labels"][0] for t in by_doc[record["file"]] for r in _results(t)]
        assert set(labels) == set(GEO_LABELS)
        assert record["entity_counts"] == {label: labels.count(label) for label in GEO_LABELS}
        assert {t["data"]["split"] for t in by_doc[record["file"]]} == {record["split"]}


@pytest.mark.parametrize(("docs", "n_test"), [(1, 0), (2, 1), (4, 1), (8, 2), (12, 3)])
def test_split_is_by_document_and_about_a_quarter_test(
    tmp_path: Path, docs: int, n_test: int
) -> None:
    result = generate_sample_corpus(tmp_path, docs=docs, seed=1)
    assert (result.n_test, result.n_train) == (n_test, docs - n_test)
    formats = [d.format for d in result.documents]
    assert formats.count("docx") == (docs + 2) // 4
    assert all((result.docs_dir / d.file).suffix == f".{d.format}" for d in result.documents)


def test_pdfs_have_pages_embedded_font_and_extractable_gold_text(corpus: SampleCorpus) -> None:
    by_doc = _by_doc(corpus)
    pdfs = [d for d in corpus.documents if d.format == "pdf"]
    assert len(pdfs) == 6
    for record in pdfs:
        path = corpus.docs_dir / record.file
        assert b"/FontFile2" in path.read_bytes()
        pdf = pdfium.PdfDocument(path)
        try:
            assert len(pdf) == record.pages >= 2
            text = _squash(" ".join(page.get_textpage().get_text_range() for page in pdf))
        finally:
            pdf.close()
        for task in by_doc[record.file]:
            # Every gold paragraph, hence every entity, is in the PDF as written.
            for paragraph in task["data"]["text"].split("\n\n"):
                assert _squash(paragraph) in text
            assert task["data"]["section"] in text
        cyrillic = next(
            r["value"]["text"]
            for t in by_doc[record.file]
            for r in _results(t)
            if r["value"]["labels"] == ["MINERALOGICAL"]
        )
        assert _squash(cyrillic) in text


def test_docx_has_headings_table_and_the_gold_paragraphs(corpus: SampleCorpus) -> None:
    by_doc = _by_doc(corpus)
    docx_docs = [d for d in corpus.documents if d.format == "docx"]
    assert len(docx_docs) == 2
    for record in docx_docs:
        document = docx.Document(str(corpus.docs_dir / record.file))
        styles = [p.style.name for p in document.paragraphs]
        assert styles.count("Heading 1") == 1
        headings = [p.text for p in document.paragraphs if p.style.name == "Heading 2"]
        assert headings == [t["data"]["section"] for t in by_doc[record.file]]
        (table,) = document.tables
        assert table.rows[0].cells[0].text == "Рудное тело"
        assert table.rows[-1].cells[0].text == "Итого"
        assert len(table.rows) >= 5
        normal = [p.text for p in document.paragraphs if p.style.name == "Normal"]
        for task in by_doc[record.file]:
            for paragraph in task["data"]["text"].split("\n\n"):
                assert paragraph in normal


def test_text_only_uses_characters_of_the_embedded_font(corpus: SampleCorpus) -> None:
    from reportlab.pdfbase.ttfonts import TTFontFile

    paths = dejavu_font_paths()
    covered = set(TTFontFile(str(next(iter(paths.values())))).charToGlyph)
    used = {
        ch
        for task in _tasks(corpus)
        for ch in task["data"]["text"] + task["data"]["section"]
        if ch != "\n"
    }
    assert any("а" <= ch <= "я" for ch in used)
    assert not {ch for ch in used if ord(ch) not in covered}


def test_bad_files_fail_the_way_their_kind_says(corpus: SampleCorpus) -> None:
    manifest = json.loads(corpus.manifest_path.read_text(encoding="utf-8"))
    kinds = {b["file"]: b["kind"] for b in manifest["bad_files"]}
    assert kinds == {
        "corrupt.pdf": "corrupt",
        "encrypted.pdf": "encrypted",
        "empty.pdf": "empty",
        "photo.jpg": "not_a_document",
    }
    docs = corpus.docs_dir
    assert (docs / "empty.pdf").stat().st_size == 0
    assert (docs / "corrupt.pdf").read_bytes().startswith(b"%PDF-1.4")
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(docs / "corrupt.pdf")
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(docs / "encrypted.pdf")
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(docs / "photo.jpg")
    unlocked = pdfium.PdfDocument(docs / "encrypted.pdf", password=ENCRYPTED_USER_PASSWORD)
    try:
        assert len(unlocked) >= 1
        assert "месторождени" in unlocked[0].get_textpage().get_text_range()
    finally:
        unlocked.close()
    # Bad files are not reports: nothing in the annotations points at them.
    assert not set(kinds) & set(_by_doc(corpus))


def test_rejects_bad_arguments_and_protects_an_existing_corpus(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="docs must be between 1"):
        generate_sample_corpus(tmp_path / "zero", docs=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        generate_sample_corpus(tmp_path / "file", docs=1)

    out = tmp_path / "out"
    generate_sample_corpus(out, docs=2, seed=0, with_bad_files=True)
    with pytest.raises(InputError, match="already contains files"):
        generate_sample_corpus(out, docs=2, seed=1)
    replaced = generate_sample_corpus(out, docs=1, seed=1, overwrite=True)
    assert sorted(p.name for p in replaced.docs_dir.iterdir()) == [replaced.documents[0].file]
    assert {t["data"]["doc_name"] for t in _tasks(replaced)} == {replaced.documents[0].file}


def test_without_the_demo_extra_the_error_names_it_and_nothing_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util
    import subprocess
    import sys

    out = tmp_path / "out"
    generate_sample_corpus(out, docs=1, seed=0)
    before = sorted(p.name for p in (out / "docs").iterdir())
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name == "reportlab" else real_find_spec(name, *a),
    )
    with pytest.raises(MissingExtraError, match=r"reportlab.*pip install 'geomas\[demo\]'"):
        generate_sample_corpus(out, docs=2, seed=1, overwrite=True)
    assert sorted(p.name for p in (out / "docs").iterdir()) == before

    # Importing the package needs neither library (they are imported when a file is written).
    blocked = "import sys; sys.modules['reportlab'] = None; sys.modules['docx'] = None; "
    code = blocked + "import geomas.sample, geomas.sample.writers; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.stdout.strip() == "ok", done.stderr
