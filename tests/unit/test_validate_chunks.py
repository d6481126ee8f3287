"""validate_chunks on the real Great Expectations: pass/fail per check, policies (per document,
fail, warn), report files, rejects."""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from geomas.config import ValidationConfig
from geomas.errors import InputError, ValidationFailed
from geomas.ingest import ChunkSet
from geomas.ingest.records import Chunk
from geomas.records import StageResult
from geomas.validate import (
    CHUNK_SUITE,
    ValidationSummary,
    run_suite,
    validate_chunk_set,
    validate_chunks,
)
from geomas.validate.chunks import REJECTS_FILE, chunk_frame
from geomas.validate.suite import N_EXAMPLES, NO_RECORDS_PAGE, SUMMARY_FILE, DocumentRule

DOC_A = hashlib.sha256(b"report-a.pdf").hexdigest()
DOC_B = hashlib.sha256(b"report-b.docx").hexdigest()
RU_TEXT = (
    "Месторождение приурочено к зоне контакта гранитов с известняками. "
    "Рудные тела представлены скарнами мощностью от 2 до 15 м, содержание меди 1,2 %."
)
EN_TEXT = "The deposit is hosted by skarns at the contact of granites with limestones."


def make_chunk(i: int, **overrides: Any) -> dict[str, Any]:
    """A valid chunk record as ingestion writes it; `overrides` breaks one field."""
    # Every third chunk comes from a DOCX (no pages), the rest from a 50-page PDF.
    if i % 3:
        doc_id, source, pages = DOC_A, "a/report-a.pdf", [i % 50 + 1]
    else:
        doc_id, source, pages = DOC_B, "report-b.docx", []
    chunk = {
        "chunk_id": f"{doc_id[:12]}-{i:05d}",
        "doc_id": doc_id,
        "source": source,
        "chunk_index": i,
        "text": RU_TEXT,
        "headings": ["Глава 2. Геология месторождения"],
        "pages": pages,
        "char_start": i * 200,
        "char_end": i * 200 + len(RU_TEXT),
        "n_tokens": 40,
        "parser": "native",
    }
    chunk.update(overrides)
    return chunk


def good_chunks(n: int = 12) -> list[dict[str, Any]]:
    return [make_chunk(i) for i in range(n)]


PAGE_COUNTS = {DOC_A: 50}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail any test in which GX (or anything else) opens a network connection."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise OSError(f"network disabled in tests (connect to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield attempts
    assert attempts == [], f"validation tried to reach the network: {attempts}"


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    return tmp_path / "report"


def run(chunks: list[dict[str, Any]], report_dir: Path, **config: Any) -> ValidationSummary:
    """The suite under policy fail unless told otherwise (per-document tests name theirs)."""
    return validate_chunks(
        chunks,
        ValidationConfig(**{"policy": "fail", **config}),
        max_tokens=256,
        report_dir=report_dir,
        page_counts=PAGE_COUNTS,
    )


def failed_checks(summary: ValidationSummary) -> set[tuple[str, str | None]]:
    return {(r.expectation, r.column) for r in summary.failed}


def test_good_russian_chunks_pass(report_dir: Path) -> None:
    summary = run(good_chunks(), report_dir)

    assert summary.success
    assert summary.n_chunks == 12
    assert summary.policy == "fail"
    assert len(summary.results) == 11  # 9 per chunk, 2 OCR-noise shares per document
    assert all(r.success and r.unexpected_count == 0 for r in summary.results)
    assert ValidationSummary.model_validate_json((report_dir / SUMMARY_FILE).read_text()) == (
        summary
    )


def test_duplicate_chunk_id_fails_naming_the_expectation(report_dir: Path) -> None:
    chunks = good_chunks()
    chunks[5]["chunk_id"] = chunks[4]["chunk_id"]

    with pytest.raises(ValidationFailed, match=r"expect_column_values_to_be_unique\(chunk_id\)"):
        run(chunks, report_dir)

    # The report is written before the policy raises.
    saved = ValidationSummary.model_validate_json((report_dir / SUMMARY_FILE).read_text())
    assert failed_checks(saved) == {("expect_column_values_to_be_unique", "chunk_id")}
    (unique,) = saved.failed
    assert unique.unexpected_count == 2
    assert unique.examples == [chunks[4]["chunk_id"]]
    assert saved.report_path.is_file()


def test_english_chunk_fails_cyrillic_check_under_geology_only(report_dir: Path) -> None:
    chunks = good_chunks()
    chunks[3]["text"] = EN_TEXT
    chunks[3]["char_end"] = chunks[3]["char_start"] + len(EN_TEXT)

    with pytest.raises(ValidationFailed, match=r"\(cyrillic_share\)") as raised:
        run(chunks, report_dir, profile="geology")
    assert chunks[3]["chunk_id"] in str(raised.value)
    assert EN_TEXT not in str(raised.value)

    summary = run(chunks, report_dir / "generic", profile="generic")
    assert summary.success


def test_mostly_tolerates_a_share_of_non_russian_chunks(report_dir: Path) -> None:
    chunks = good_chunks(10)
    chunks[0]["text"] = EN_TEXT
    chunks[0]["char_end"] = chunks[0]["char_start"] + len(EN_TEXT)

    assert run(chunks, report_dir, mostly=0.8).success


def test_chunk_without_letters_is_not_judged_on_cyrillic(report_dir: Path) -> None:
    chunks = good_chunks()
    chunks[2]["text"] = "12,5 | 13,0 | 14,2"
    chunks[2]["char_end"] = chunks[2]["char_start"] + 18

    assert run(chunks, report_dir).success


def test_page_beyond_page_count_fails(report_dir: Path) -> None:
    chunks = good_chunks()
    chunks[1]["pages"] = [49, 50, 51]  # DOC_A has 50 pages

    with pytest.raises(ValidationFailed, match=r"\(page_max_excess\)"):
        run(chunks, report_dir)

    # Without a page count for the document only the lower bound applies.
    summary = validate_chunks(
        chunks, ValidationConfig(), max_tokens=256, report_dir=report_dir / "no_counts"
    )
    assert summary.success


def test_n_tokens_over_max_fails(report_dir: Path) -> None:
    chunks = good_chunks()
    chunks[7]["n_tokens"] = 257

    with pytest.raises(ValidationFailed) as raised:
        run(chunks, report_dir)
    # the failure line names the file, the check, the count and what to do
    assert ("a/report-a.pdf: expect_column_values_to_be_between(n_tokens) failed on 1 of 8 "
            "chunks") in str(raised.value)
    assert "rerun makedataset" in str(raised.value)
    assert chunks[7]["chunk_id"] in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"text": ""}, ("expect_column_values_to_be_between", "n_chars")),
        ({"text": "Ж" * 20001}, ("expect_column_values_to_be_between", "n_chars")),
        ({"chunk_id": ""}, ("expect_column_values_to_not_be_null", "chunk_id")),
        ({"chunk_id": None}, ("expect_column_values_to_not_be_null", "chunk_id")),
        ({"pages": [0, 1]}, ("expect_column_values_to_be_between", "page_min")),
        ({"doc_id": DOC_A.upper()}, ("expect_column_values_to_match_regex", "doc_id")),
        ({"doc_id": "report-a.pdf"}, ("expect_column_values_to_match_regex", "doc_id")),
        (
            {"char_start": 500, "char_end": 400},
            ("expect_column_pair_values_a_to_be_greater_than_b", "char_end,char_start"),
        ),
    ],
)
def test_each_broken_field_fails_its_own_check(
    report_dir: Path, overrides: dict[str, Any], check: tuple[str, str]
) -> None:
    chunks = good_chunks()
    chunks[4] = make_chunk(4, **overrides)

    summary = run(chunks, report_dir, policy="warn")

    assert failed_checks(summary) == {check}


def test_policy_warn_returns_failure_without_raising(
    report_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chunks = good_chunks(40)
    for chunk in chunks[:30]:
        chunk["n_tokens"] = 1000

    with caplog.at_level(logging.WARNING, logger="geomas.validate"):
        summary = run(chunks, report_dir, policy="warn")

    assert not summary.success
    assert summary.policy == "warn"
    (tokens,) = summary.failed
    assert tokens.unexpected_count == 30
    assert tokens.examples == [c["chunk_id"] for c in chunks[:N_EXAMPLES]]
    assert "n_tokens" in caplog.text and "policy 'warn'" in caplog.text
    saved = json.loads((report_dir / SUMMARY_FILE).read_text())
    assert saved["success"] is False
    assert RU_TEXT not in (report_dir / SUMMARY_FILE).read_text()


def test_html_report_is_kept_in_report_dir(report_dir: Path) -> None:
    chunks = good_chunks()
    chunks[0]["n_tokens"] = 999
    summary = run(chunks, report_dir, policy="warn")

    page = summary.report_path
    assert page.is_file() and page.suffix == ".html"
    assert page.is_relative_to(report_dir)
    html = page.read_text(encoding="utf-8")
    assert CHUNK_SUITE in html
    assert "n_tokens" in html
    assert RU_TEXT not in html
    assert (report_dir / "data_docs" / "index.html").is_file()
    assert (report_dir / "data_docs" / "static").is_dir()


def test_run_leaves_nothing_outside_report_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    summary = run(good_chunks(), tmp_path / "report")

    assert summary.success
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "report"]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["data_docs", SUMMARY_FILE]


def test_empty_chunk_list(report_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValidationFailed, match="no chunks to validate"):
        run([], report_dir)

    with caplog.at_level(logging.WARNING, logger="geomas.validate"):
        summary = run([], report_dir, policy="warn")
    assert not summary.success
    assert summary.n_chunks == 0
    assert summary.report_path == report_dir / NO_RECORDS_PAGE
    assert "no chunks to validate" in summary.report_path.read_text(encoding="utf-8").lower()
    assert "no chunks to validate" in caplog.text
    assert (report_dir / SUMMARY_FILE).is_file()


def test_record_missing_a_key_is_an_input_error(report_dir: Path) -> None:
    chunks = good_chunks()
    del chunks[2]["n_tokens"]

    with pytest.raises(InputError, match=r"chunk record #2 .* lacks n_tokens"):
        run(chunks, report_dir, policy="warn")


def test_chunk_frame_derives_checked_columns_without_text() -> None:
    chunks = [
        make_chunk(1, text="Ёж, hello 42!", pages=[3, 7]),
        make_chunk(3, text="12 | 13", pages=[]),
    ]

    frame = chunk_frame(chunks, {DOC_A: 5})

    assert "text" not in frame.columns
    first, second = frame.to_dict("records")
    assert first["n_chars"] == 13
    assert first["cyrillic_share"] == pytest.approx(2 / 7)
    assert (first["page_min"], first["page_max_excess"]) == (3, 2)
    assert pd.isna(second["cyrillic_share"])
    assert pd.isna(second["page_min"]) and pd.isna(second["page_max_excess"])


def test_run_suite_reports_an_expectation_that_errors(report_dir: Path) -> None:
    import great_expectations.expectations as gxe

    frame = pd.DataFrame({"record_id": ["r1", "r2"], "score": [0.5, 2.0]})
    expectations = [
        gxe.ExpectColumnValuesToBeBetween(column="score", max_value=1.0),
        gxe.ExpectColumnValuesToNotBeNull(column="no_such_column"),
    ]

    summary = run_suite(
        frame,
        expectations,
        suite_name="geomas_test_records",
        report_dir=report_dir,
        policy="warn",
        id_column="record_id",
    )

    assert not summary.success and summary.n_records == 2
    score, missing = summary.results
    assert (score.success, score.examples) == (False, ["r2"])
    assert not missing.success
    assert missing.error and "no_such_column" in missing.error
    assert "geomas_test_records" in summary.report_path.read_text(encoding="utf-8")


# --- per document: policy exclude_document (the default) --------------------------------------

DOC_C = hashlib.sha256(b"report-c.md").hexdigest()


def in_english(chunk: dict[str, Any]) -> dict[str, Any]:
    chunk["text"] = EN_TEXT
    chunk["char_end"] = chunk["char_start"] + len(EN_TEXT)
    return chunk


def chunk_set(chunks: list[dict[str, Any]]) -> ChunkSet:
    return ChunkSet(chunks=[Chunk(**c) for c in chunks], page_counts=PAGE_COUNTS)


def validate_set(chunks: list[dict[str, Any]], report_dir: Path, chunks_path: Path | None = None,
                 **config: Any) -> StageResult[ChunkSet, ValidationSummary]:
    return validate_chunk_set(chunk_set(chunks), ValidationConfig(**config), max_tokens=256,
                              report_dir=report_dir, chunks_path=chunks_path)


def test_failing_document_is_named_excluded_and_the_run_goes_on(
    report_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chunks = [in_english(c) if c["doc_id"] == DOC_B else c for c in good_chunks()]
    chunks_path = tmp_path / "chunks.json"
    chunks_path.write_text(json.dumps(chunks), encoding="utf-8")

    with caplog.at_level(logging.WARNING, logger="geomas.validate"):
        result = validate_set(chunks, report_dir, chunks_path)

    summary = result.report
    assert summary.policy == "exclude_document" and not summary.success
    assert summary.n_documents == 2
    (doc,) = summary.excluded
    assert (doc.source, doc.doc_id, doc.n_records) == ("report-b.docx", DOC_B, 4)
    (line,) = doc.failures
    assert line.startswith(
        "expect_column_values_to_be_between(cyrillic_share) failed on 4 of 4 chunks")
    assert "take the file out of the corpus" in line
    # the good document flows on; the bad one's chunks reach neither NER nor QA
    assert [c.chunk_id for c in result.kept.chunks] == [
        c["chunk_id"] for c in chunks if c["doc_id"] == DOC_A]
    assert result.kept.page_counts == PAGE_COUNTS
    assert json.loads(chunks_path.read_text("utf-8")) == [
        c.model_dump() for c in result.kept.chunks]
    # recorded in the stage's rejects and in the summary, the file named
    rejects = [json.loads(x) for x in (report_dir / REJECTS_FILE).read_text("utf-8").splitlines()]
    assert [(r["source"], r["doc_id"], r["stage"], r["rule"]) for r in rejects] == [
        ("report-b.docx", DOC_B, "validate", "chunk_validation")]
    assert "cyrillic_share" in rejects[0]["reason"]
    assert result.rejects[0].source == "report-b.docx"
    saved = ValidationSummary.model_validate_json((report_dir / SUMMARY_FILE).read_text())
    assert saved.excluded == [doc]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings and all("report-b.docx" in w for w in warnings)


def test_policy_fail_stops_naming_the_file(report_dir: Path) -> None:
    chunks = [in_english(c) if c["doc_id"] == DOC_B else c for c in good_chunks()]

    with pytest.raises(ValidationFailed) as raised:
        validate_set(chunks, report_dir, policy="fail")

    message = str(raised.value)
    assert ("report-b.docx: expect_column_values_to_be_between(cyrillic_share) failed on 4 of 4 "
            "chunks") in message
    assert "a/report-a.pdf" not in message and "'exclude_document'" in message
    # warn names the file too and keeps every chunk
    warned = validate_set(chunks, report_dir / "warn", policy="warn")
    assert not warned.report.success and len(warned.kept.chunks) == len(chunks)
    assert [(d.source, d.excluded) for d in warned.report.documents] == [
        ("report-b.docx", False)]


def test_russian_thesis_with_an_english_bibliography_is_kept(report_dir: Path) -> None:
    # 8 chunks of Russian text, then the references in English (3 chunks)
    thesis = [make_chunk(i, doc_id=DOC_A, source="thesis.pdf", pages=[i + 1]) for i in range(11)]
    for chunk in thesis[8:]:
        in_english(chunk)
    chunks = [*thesis, make_chunk(11, doc_id=DOC_B, source="report-b.docx", pages=[])]

    result = validate_set(chunks, report_dir)

    assert result.report.success and result.report.excluded == []
    assert len(result.kept.chunks) == len(chunks)
    (doc,) = result.report.documents  # recorded, not excluded
    assert (doc.source, doc.excluded) == ("thesis.pdf", False)
    assert "failed on 3 of 11 chunks" in doc.failures[0] and "tolerated" in doc.failures[0]
    # judged over the whole run instead (policy fail, mostly 1.0) the thesis stops the run
    with pytest.raises(ValidationFailed, match=r"thesis\.pdf: .*\(cyrillic_share\)"):
        validate_set(chunks, report_dir / "fail", policy="fail")


@pytest.mark.parametrize(("n_english", "excluded"), [(5, False), (6, True)])
def test_document_mostly_is_the_share_of_its_chunks_that_must_be_russian(
    report_dir: Path, n_english: int, excluded: bool
) -> None:
    doc = [make_chunk(i, doc_id=DOC_A, source="mixed.pdf", pages=[1]) for i in range(10)]
    for chunk in doc[:n_english]:
        in_english(chunk)
    chunks = [*doc, *(make_chunk(i, doc_id=DOC_B, source="report-b.docx", pages=[])
                      for i in range(10, 13))]

    result = validate_set(chunks, report_dir)  # document_mostly 0.5

    assert [d.source for d in result.report.excluded] == (["mixed.pdf"] if excluded else [])
    assert len(result.kept.chunks) == (3 if excluded else 13)


def test_one_broken_chunk_excludes_its_document(report_dir: Path) -> None:
    chunks = good_chunks()
    chunks[4]["n_tokens"] = 999  # a chunk of report-a.pdf

    result = validate_set(chunks, report_dir)

    (doc,) = result.report.excluded
    assert doc.source == "a/report-a.pdf"
    assert doc.failures == [
        f"expect_column_values_to_be_between(n_tokens) failed on 1 of 8 chunks, e.g. "
        f"{chunks[4]['chunk_id']}: chunks longer than ingest.max_tokens (256); rerun makedataset "
        "with the max_tokens of this run"]
    assert {c.doc_id for c in result.kept.chunks} == {DOC_B}


def test_too_many_failing_documents_stop_the_run(report_dir: Path) -> None:
    chunks = good_chunks(6) + [make_chunk(i, doc_id=DOC_C, source="report-c.md", pages=[])
                               for i in range(6, 9)]
    for chunk in chunks:
        if chunk["doc_id"] != DOC_A:
            in_english(chunk)

    with pytest.raises(ValidationFailed) as raised:
        validate_set(chunks, report_dir)
    message = str(raised.value)
    assert "2 of 3 documents failed (67% is above validation.max_excluded_ratio 50%)" in message
    assert "report-b.docx: " in message and "report-c.md: " in message
    assert not (report_dir / REJECTS_FILE).exists()

    assert len(validate_set(chunks, report_dir / "r", max_excluded_ratio=1.0).kept.chunks) == 4
    everything = [in_english(c) for c in good_chunks(6)]
    with pytest.raises(ValidationFailed, match="2 of 2 documents failed .every document failed"):
        validate_set(everything, report_dir / "all", max_excluded_ratio=1.0)


def test_a_check_that_errors_cannot_exclude_documents(report_dir: Path) -> None:
    import great_expectations.expectations as gxe

    frame = pd.DataFrame({"record_id": ["r1", "r2"], "source": ["a.md", "b.md"]})
    with pytest.raises(ValidationFailed, match="cannot be traced to documents"):
        run_suite(frame, [gxe.ExpectColumnValuesToNotBeNull(column="no_such_column")],
                  suite_name="geomas_test_records", report_dir=report_dir,
                  policy="exclude_document", id_column="record_id",
                  documents=DocumentRule(column="source"))
