"""Ingestion on real docling: recall on third-party PDFs, bad files, incremental re-runs."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from geomas.config import IngestConfig
from geomas.errors import IngestError, InputError
from geomas.ingest import ingest_folder
from geomas.ingest import run as ingest_run
from geomas.ingest.tokens import count_word_tokens

WORD = re.compile(r"\w+")
GROUND_TRUTH = ["multi_page", "code_and_formula", "redp5110_sampled"]


def token_recall(reference: str, extracted: str) -> float:
    """Share of reference word tokens (lower-cased Unicode word runs, with multiplicity)."""
    ref = Counter(WORD.findall(reference.lower()))
    got = Counter(WORD.findall(extracted.lower()))
    return sum(min(n, got[w]) for w, n in ref.items()) / sum(ref.values())


@pytest.fixture(scope="module")
def third_party_run(third_party_pdfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("ingest_pdf")
    return out, ingest_folder(third_party_pdfs, out, IngestConfig(workers=2), progress=False)


@pytest.fixture(scope="module")
def third_party_output(third_party_run: Any) -> Path:
    return Path(third_party_run[0])


@pytest.mark.parametrize("name", GROUND_TRUTH)
def test_third_party_pdf_token_recall(third_party_output: Path, name: str) -> None:
    chunks = json.loads((third_party_output / "chunks.json").read_text("utf-8"))
    text = "\n".join(c["text"] for c in chunks if c["source"] == f"{name}.pdf")
    reference = (Path(__file__).parents[3] / "shared/corpus/groundtruth" / f"{name}.md")
    recall = token_recall(reference.read_text("utf-8"), text)
    assert recall >= 0.97, f"{name}: token recall {recall:.4f} < 0.97"


def test_chunk_records_are_consistent(third_party_output: Path, third_party_run: Any) -> None:
    chunk_set = third_party_run[1].kept
    chunks = chunk_set.chunks
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    summary = json.loads((third_party_output / "ingest_summary.json").read_text("utf-8"))
    assert summary["pdf_parser"] == "docling-native-pdf"
    for chunk in chunks:
        assert chunk.n_tokens <= 256
        assert chunk.n_tokens == count_word_tokens(chunk.text)
        assert re.fullmatch(r"[0-9a-f]{64}", chunk.doc_id)
        assert chunk.pages and all(1 <= p <= chunk_set.page_counts[chunk.doc_id]
                                   for p in chunk.pages)
        doc_text = (third_party_output / "texts" / f"{chunk.doc_id}.txt").read_text("utf-8")
        assert doc_text[chunk.char_start:chunk.char_end] == chunk.text
    # doc_id is the sha256 of the file bytes
    import hashlib

    src = Path(__file__).parents[3] / "shared/corpus/pdf/multi_page.pdf"
    multi = [c for c in chunks if c.source == "multi_page.pdf"]
    assert multi[0].doc_id == hashlib.sha256(src.read_bytes()).hexdigest()
    assert [c.chunk_index for c in multi] == list(range(len(multi)))


def test_bad_files_are_rejected_and_good_ones_parsed(
    sample_corpus: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = ingest_folder(sample_corpus / "docs", out, IngestConfig(workers=2), progress=False)
    summary = result.report
    # the stage returns exactly what it wrote: the next step needs no file
    written = json.loads((out / "chunks.json").read_text("utf-8"))
    assert [c.model_dump() for c in result.kept.chunks] == written
    pages = {d["doc_id"]: d["pages"] for d in json.loads((out / "documents.json").read_text())
             if d.get("doc_id") and d.get("pages") is not None}
    assert result.kept.page_counts == pages
    assert [r.model_dump(mode="json") for r in result.rejects] == [
        json.loads(line) for line in (out / "rejects.jsonl").read_text("utf-8").splitlines()]
    manifest = json.loads((sample_corpus / "corpus_manifest.json").read_text("utf-8"))
    good = {d["file"] for d in manifest["documents"]}
    bad = {b["file"] for b in manifest["bad_files"]}
    assert len(bad) == 4

    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text("utf-8").splitlines()]
    assert {r["source"] for r in rejects} == bad
    rules = {r["source"]: r["rule"] for r in rejects}
    assert rules["encrypted.pdf"] == "encrypted"
    assert rules["corrupt.pdf"] == "corrupt"
    assert rules["empty.pdf"] == "empty_file"
    assert rules["photo.jpg"] == "unsupported_type"
    assert all(r["reason"] for r in rejects)

    chunks = json.loads((out / "chunks.json").read_text("utf-8"))
    assert {c["source"] for c in chunks} == good
    assert summary.parsed == len(good) and summary.rejected == 4
    docs = {d["source"]: d for d in json.loads((out / "documents.json").read_text("utf-8"))}
    assert {s for s, d in docs.items() if d["status"] == "parsed"} == good
    # DOCX keeps its heading path; PDFs (native pipeline) carry page numbers.
    docx = [c for c in chunks if c["source"].endswith(".docx")]
    assert docx and all(c["headings"] for c in docx)
    assert all(c["pages"] for c in chunks if c["source"].endswith(".pdf"))


def test_gold_entities_survive_ingestion(sample_corpus: Path, tmp_path: Path) -> None:
    """Every gold entity string of the Label Studio export is in the chunk text of its doc.

    docling-parse writes en/em dashes in PDFs as '-', so dashes are compared folded.
    """

    def norm(text: str) -> str:
        return " ".join(text.replace("\u2013", "-").replace("\u2014", "-").split())

    out = tmp_path / "out"
    ingest_folder(sample_corpus / "docs", out, IngestConfig(workers=1), progress=False)
    chunks = json.loads((out / "chunks.json").read_text("utf-8"))
    by_doc: dict[str, str] = {}
    for c in chunks:
        by_doc[c["source"]] = by_doc.get(c["source"], "") + " " + norm(c["text"])
    tasks = json.loads((sample_corpus / "annotations/label_studio_export.json").read_text("utf-8"))
    missing = []
    total = 0
    for task in tasks:
        for result in task["annotations"][0]["result"]:
            total += 1
            span = norm(result["value"]["text"])
            if span not in by_doc[task["data"]["doc_name"]]:
                missing.append(span)
    assert total > 100
    assert not missing, missing[:5]


def test_rerun_parses_nothing(sample_corpus: Path, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    first = ingest_folder(sample_corpus / "docs", out, IngestConfig(workers=1),
                          progress=False).report
    first_chunks = (out / "chunks.json").read_text("utf-8")

    converted: list[list[tuple[Path, str]]] = []
    real = ingest_run._convert_all

    def spy(jobs, config, progress, on_result):  # type: ignore[no-untyped-def]
        converted.append(list(jobs))
        return real(jobs, config, progress, on_result)

    monkeypatch.setattr(ingest_run, "_convert_all", spy)
    second = ingest_folder(sample_corpus / "docs", out, IngestConfig(workers=1),
                           progress=False).report
    assert converted == [[]], "a re-run on an unchanged folder must not parse anything"
    assert second.parsed == 0 and second.cached == first.parsed
    assert second.rejected == first.rejected
    assert (out / "chunks.json").read_text("utf-8") == first_chunks

    # One new document: only that one is parsed.
    src = tmp_path / "src"
    shutil.copytree(sample_corpus / "docs", src)
    extra = next(p for p in src.glob("*.pdf") if p.stat().st_size > 1000
                 and p.name.startswith("report"))
    shutil.copy(extra, src / "copy_of_report.pdf")
    (src / "new.md").write_text("# Новый отчёт\n\nМесторождение Светлое. Золото 5,1 г/т.\n",
                                encoding="utf-8")
    converted.clear()
    third = ingest_folder(src, out, IngestConfig(workers=1), progress=False).report
    assert [p.name for p, _ in converted[0]] == ["new.md"]
    assert third.duplicates == 1 and third.parsed == 1


def test_changed_settings_reparse(sample_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ingest_folder(sample_corpus / "docs", out, IngestConfig(workers=1), progress=False)
    smaller = ingest_folder(
        sample_corpus / "docs", out, IngestConfig(workers=1, max_tokens=64), progress=False
    ).report
    assert smaller.cached == 0 and smaller.parsed > 0
    chunks = json.loads((out / "chunks.json").read_text("utf-8"))
    assert max(c["n_tokens"] for c in chunks) <= 64


def test_failure_threshold_fails_after_writing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.pdf").write_bytes(b"")
    (src / "b.txt").write_text("not a document")
    (src / "c.md").write_text("# Заголовок\n\nТекст.\n", encoding="utf-8")
    with pytest.raises(IngestError, match="2 of 3 files were rejected"):
        ingest_folder(src, tmp_path / "out", IngestConfig(workers=1, max_failure_ratio=0.5),
                      progress=False)
    # nothing good is lost: the Markdown chunk and both rejects are on disk
    chunks = json.loads((tmp_path / "out/chunks.json").read_text("utf-8"))
    assert [c["source"] for c in chunks] == ["c.md"]
    assert len((tmp_path / "out/rejects.jsonl").read_text("utf-8").splitlines()) == 2


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        ingest_folder(tmp_path / "nope", tmp_path / "out", progress=False)


def test_layout_without_weights_is_rejected() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="layout_artifacts_path"):
        IngestConfig(pdf_parser="layout")


def test_a_file_that_breaks_the_converter_is_rejected_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geomas.ingest import convert

    src = tmp_path / "src"
    src.mkdir()
    (src / "good.md").write_text("# Отчёт\n\nЗолото 4,2 г/т.\n", encoding="utf-8")
    (src / "boom.md").write_text("# Взрыв\n\nТекст.\n", encoding="utf-8")
    real = convert.FileConverter._convert

    def flaky(self, path, doc_id, t0):  # type: ignore[no-untyped-def]
        if path.name == "boom.md":
            raise RuntimeError("chunker exploded")
        return real(self, path, doc_id, t0)

    monkeypatch.setattr(convert.FileConverter, "_convert", flaky)
    summary = ingest_folder(src, tmp_path / "out", IngestConfig(workers=1), progress=False).report
    assert summary.parsed == 1 and summary.rejected == 1
    reject = json.loads((tmp_path / "out/rejects.jsonl").read_text("utf-8"))
    assert reject["source"] == "boom.md" and "chunker exploded" in reject["reason"]


def test_entries_that_are_not_documents_get_a_record_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    import os

    from geomas.trigger.watermark import corpus_watermark

    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nSECRET-OUTSIDE-CONTENT\n", encoding="utf-8")
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.md").write_text("# Отчёт\n\nЗолото 4,2 г/т.\n", encoding="utf-8")
    (src / "passwd.md").symlink_to(outside)
    (src / "dangling.md").symlink_to(tmp_path / "missing.md")
    os.mkfifo(src / "pipe.md")
    (src / "folder.pdf").mkdir()
    (src / "big.md").write_text("# Большой\n\n" + "слово " * 400, encoding="utf-8")
    bad_name = os.fsencode(src) + b"/\xcf\xf0\xe8\xec\xe5\xf0.md"  # cp1251 bytes
    with open(bad_name, "wb") as fh:
        fh.write("# Пример\n\nТекст.\n".encode())
    out = src / "out"  # an output folder inside the source folder

    for _ in range(2):  # the second run must not read its own outputs
        cfg = IngestConfig(workers=1, max_file_bytes=1000, max_failure_ratio=1.0)
        result = ingest_folder(src, out, cfg, progress=False)
        rules = {r.source: r.rule for r in result.rejects}
        assert rules == {
            "passwd.md": "outside_source", "dangling.md": "not_a_file", "pipe.md": "not_a_file",
            "folder.pdf": "not_a_file", "big.md": "too_large",
            "\\xcf\\xf0\\xe8\\xec\\xe5\\xf0.md": "bad_file_name",
        }, rules
        assert [c.source for c in result.kept.chunks] == ["good.md"]
    for path in out.rglob("*"):
        if path.is_file():
            assert b"SECRET-OUTSIDE-CONTENT" not in path.read_bytes(), path
    # the retrain check reads the same folder without crashing, counting only real documents
    watermark = corpus_watermark(src, IngestConfig().extensions, max_file_bytes=1000)
    assert watermark.docs == 1


def test_a_transient_failure_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geomas.ingest import convert

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.md").write_text("# Отчёт\n\nЗолото 4,2 г/т.\n", encoding="utf-8")
    real = convert.FileConverter._convert

    def broken(self, path, doc_id, t0):  # type: ignore[no-untyped-def]
        raise OSError("disk went away")

    monkeypatch.setattr(convert.FileConverter, "_convert", broken)
    first = ingest_folder(src, tmp_path / "out",
                          IngestConfig(workers=1, max_failure_ratio=1.0), progress=False)
    assert [r.rule for r in first.rejects] == ["conversion_error"]
    monkeypatch.setattr(convert.FileConverter, "_convert", real)  # the cause is fixed
    second = ingest_folder(src, tmp_path / "out", IngestConfig(workers=1), progress=False)
    assert second.report.parsed == 1 and not second.rejects


def test_each_result_is_kept_as_soon_as_it_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after some documents resumes with the rest (in-process stand-in for a kill)."""
    from geomas.ingest import convert

    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"doc{i}.md").write_text(f"# Отчёт {i}\n\nЗолото {i},2 г/т.\n", "utf-8")
    real = convert.FileConverter._convert
    seen: list[str] = []

    def killed_on_third(self, path, doc_id, t0):  # type: ignore[no-untyped-def]
        seen.append(path.name)
        if len(seen) == 3:
            raise KeyboardInterrupt  # the run dies here, like a kill
        return real(self, path, doc_id, t0)

    monkeypatch.setattr(convert.FileConverter, "_convert", killed_on_third)
    with pytest.raises(KeyboardInterrupt):
        ingest_folder(src, tmp_path / "out", IngestConfig(workers=1), progress=False)
    seen.clear()
    monkeypatch.setattr(convert.FileConverter, "_convert",
                        lambda self, path, doc_id, t0: (seen.append(path.name),
                                                         real(self, path, doc_id, t0))[1])
    result = ingest_folder(src, tmp_path / "out", IngestConfig(workers=1), progress=False)
    assert seen == ["doc2.md"], "only the document the killed run had not finished is parsed"
    assert result.report.cached == 2 and result.report.parsed == 1


@pytest.mark.slow
def test_sigkill_mid_run_leaves_no_workers_and_the_rerun_parses_only_the_rest(
    tmp_path: Path,
) -> None:
    import signal
    import subprocess
    import sys
    import time

    from geomas.sample import generate_sample_corpus

    generate_sample_corpus(tmp_path / "corpus", docs=16, seed=11)
    src, out = tmp_path / "corpus" / "docs", tmp_path / "out"
    cmd = [sys.executable, "-m", "geomas.cli", "makedataset", str(src), str(out),
           "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def children(pid: int) -> set[int]:
        found = set()
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(stat_file.parent.name))
        return found

    deadline = time.monotonic() + 240
    done: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        done = list(out.glob(".cache/*/*.json"))
        if done:
            break
        time.sleep(0.05)
    workers = children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < len(done) < 16, f"the kill must land mid-run ({len(done)} of 16 done)"
    assert workers, "makedataset with --workers 2 runs worker processes"
    for _ in range(100):  # the workers notice their parent is gone within a second or two
        alive = {pid for pid in workers if Path(f"/proc/{pid}").exists()
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]}
        if not alive:
            break
        time.sleep(0.1)
    assert not alive, f"orphaned workers left after the kill: {sorted(alive)}"

    cached_at_kill = len(list(out.glob(".cache/*/*.json")))
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    line = next(x for x in again.stdout.splitlines() if x.startswith("files "))
    parsed, cached = (int(re.search(rf"{w} (\d+)", line).group(1)) for w in ("parsed", "cached"))
    assert cached == cached_at_kill and parsed == 16 - cached_at_kill, line


def test_a_cp1251_markdown_file_is_decoded_not_mojibake(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    text = ("# Геологическое строение\n\nМесторождение Южное сложено гранитами и сланцами; "
            "среднее содержание золота в рудах составляет 4,2 г/т.\n")
    (src / "cp1251.md").write_bytes(text.encode("cp1251"))
    (src / "utf8.md").write_text(text.replace("Южное", "Северное"), encoding="utf-8")
    result = ingest_folder(src, tmp_path / "out", IngestConfig(workers=1), progress=False)
    by_source = {c.source: c.text for c in result.kept.chunks}
    assert "Месторождение Южное сложено гранитами" in by_source["cp1251.md"]
    assert "Месторождение Северное сложено гранитами" in by_source["utf8.md"]
