"""Ingest a folder of documents into chunks.json, a documents manifest and rejects.jsonl."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import stat
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from geomas.config import IngestConfig
from geomas.errors import ConfigError, IngestError, InputError
from geomas.hashing import sha256_file
from geomas.ingest.convert import (
    DOC_TEXT_SEPARATOR,
    FileConverter,
    FileOutcome,
    convert_in_worker,
    init_worker,
    resolve_pdf_parser,
)
from geomas.ingest.records import (
    Chunk,
    ChunkSet,
    DocumentRecord,
    IngestSummary,
    OcrProvenance,
    PageRecord,
)
from geomas.io import load_records, write_json
from geomas.progress import Progress, track
from geomas.records import Reject, StageResult, write_rejects

log = logging.getLogger(__name__)

CHUNKS_FILE = "chunks.json"
MANIFEST_FILE = "documents.json"
REJECTS_FILE = "rejects.jsonl"
SUMMARY_FILE = "ingest_summary.json"
CACHE_DIR = ".cache"
TEXTS_DIR = "texts"


def settings_fingerprint(config: IngestConfig) -> str:
    """Hash of the settings that change chunk output; the cache is keyed on it.

    The OCR mode, languages, resolution and page-quality thresholds are part of it; the
    Tesseract version is checked per cached document instead (`_Cache`), so installing or
    upgrading Tesseract redoes only the documents that were (or now can be) recognised.
    """
    payload = {
        "parser": resolve_pdf_parser(config),
        "max_tokens": config.max_tokens,
        "tokenizer": str(config.tokenizer) if config.tokenizer else None,
        "hygiene": config.hygiene.model_dump(),
        "ocr": config.ocr,
        "text_quality": config.text_quality.model_dump(mode="json"),
        "version": 3,
    }
    if config.ocr != "off":
        payload["ocr_engine"] = {"languages": config.ocr_languages, "dpi": config.ocr_dpi}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _tesseract_version(config: IngestConfig) -> str | None:
    """Tesseract's version, or None when it cannot run (scanned pages are then rejected)."""
    from geomas.ingest.ocr import OcrUnavailable, tesseract_version

    try:
        return tesseract_version(config)
    except OcrUnavailable:
        return None


def discover(
    source_dir: Path, exclude: Path | None = None, max_bytes: int | None = None
) -> tuple[list[Path], list[Reject]]:
    """Regular files under `source_dir` (recursive, hidden entries skipped), and what is not.

    Symlinks are never followed out of the source folder (rule ``outside_source``); dangling
    links, FIFOs, sockets and devices (``not_a_file``), names that are not UTF-8
    (``bad_file_name``), files over `max_bytes` (``too_large``) and a folder named like a
    document each get a record; `exclude` (an output folder inside the source) is left out.

    Raises:
        InputError: `source_dir` is not a folder.
    """
    if not source_dir.is_dir():
        raise InputError(f"source folder {source_dir} does not exist or is not a folder")
    root = source_dir.resolve()
    skip_dir = exclude.resolve() if exclude is not None else None
    files: list[Path] = []
    skipped: list[Reject] = []
    for dirpath, dirnames, filenames in os.walk(source_dir):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (here / d).resolve() != skip_dir)
        entries = [(here / name) for name in filenames if not name.startswith(".")]
        entries += [here / d for d in dirnames
                    if (here / d).is_symlink() or Path(d).suffix.lower() in _DOC_SUFFIXES]
        for path in entries:
            rel = path.relative_to(source_dir).as_posix()
            problem = _entry_problem(path, root, max_bytes)
            if problem is None:
                files.append(path)
            else:
                safe = rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
                skipped.append(Reject(stage="ingest", source=safe, rule=problem[0],
                                      reason=problem[1]))
    return sorted(files), sorted(skipped, key=lambda r: r.source or "")


_DOC_SUFFIXES = (".pdf", ".docx", ".doc", ".html", ".htm", ".md", ".rtf")


def _entry_problem(path: Path, root: Path, max_bytes: int | None) -> tuple[str, str] | None:
    """Why `path` cannot be converted (rule, reason), or None for a regular, usable file."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return "bad_file_name", "the file name is not valid UTF-8; rename the file"
    if path.is_symlink():
        target = path.resolve()
        if not target.exists():
            return "not_a_file", f"dangling symlink to {os.readlink(path)}; fix or remove it"
        if not target.is_relative_to(root):
            return ("outside_source", "symlink to a file outside the source folder; copy the "
                    "file into the folder if it belongs to the corpus")
    if path.is_dir():
        return "not_a_file", "a folder named like a document; documents inside it are read"
    try:
        info = path.stat()
    except OSError as exc:
        return "unreadable", f"{exc.strerror or exc}; check the permissions"
    if not stat.S_ISREG(info.st_mode):
        return "not_a_file", "not a regular file (a FIFO, socket or device); remove it"
    if max_bytes is not None and info.st_size > max_bytes:
        return ("too_large", f"{info.st_size} bytes is over ingest.max_file_bytes "
                f"({max_bytes}); split the file or raise the limit")
    return None


#: Failures that the same bytes and settings always give again; any other failure (a crashed
#: or timed-out converter, an environment error) is not cached and is retried on the next run.
CACHED_FAILURES = frozenset({"corrupt", "encrypted", "no_text", "unsupported_type",
                             "bad_encoding"})


class _Cache:
    """Per-document conversion results keyed by content hash and settings fingerprint.

    An entry with OCR'd pages is used only while the same Tesseract version is installed.
    """

    def __init__(self, root: Path, ocr_version: str | None = None) -> None:
        self.root = root
        self.ocr_version = ocr_version
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, doc_id: str) -> Path:
        return self.root / f"{doc_id}.json"

    def get(self, doc_id: str) -> FileOutcome | None:
        path = self._path(doc_id)
        if not path.exists():
            return None
        try:
            outcome = FileOutcome(**json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, TypeError) as exc:
            log.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        if outcome.ocr and outcome.ocr.get("engine_version") != self.ocr_version:
            log.info("%s: OCR'd with Tesseract %s, now %s: converting it again", doc_id[:12],
                     outcome.ocr.get("engine_version"), self.ocr_version or "not installed")
            return None
        # an entry from an older geomas that cached a transient failure is retried
        return outcome if outcome.ok or outcome.rule in CACHED_FAILURES else None

    def put(self, doc_id: str, outcome: FileOutcome) -> None:
        """Keep a deterministic outcome; crashes, timeouts and errors are retried next run."""
        if outcome.ok or outcome.rule in CACHED_FAILURES:
            write_json(self._path(doc_id), outcome.__dict__, indent=None, end="")


def _convert_all(
    jobs: list[tuple[Path, str]], config: IngestConfig, progress: bool,
    on_result: Callable[[str, FileOutcome], None],
) -> dict[str, FileOutcome]:
    """Convert (path, doc_id) jobs, in worker processes when there is more than one.

    `on_result` is called with each outcome as soon as it is known.
    """
    results: _Results = _Results(on_result)
    if not jobs:
        return results
    with Progress("ingest", total=len(jobs), unit="files", bar=progress) as bar:
        workers = min(config.workers, len(jobs))
        if workers == 1:
            converter = FileConverter(config)
            for path, doc_id in jobs:
                results[doc_id] = converter.convert(path, doc_id)
                bar.advance()
            return results
        pending = _run_pool(jobs, config, workers, results, bar)
        # A worker died (e.g. a native crash inside the PDF parser): retry the files that had
        # no result one at a time in fresh single-worker pools, so only the culprit is rejected.
        for path, doc_id in pending:
            if _run_pool([(path, doc_id)], config, 1, results, bar):
                results[doc_id] = FileOutcome(
                    False, "unknown", rule="converter_crashed",
                    reason="the conversion process crashed on this file",
                )
                bar.advance()
    return results


class _Results(dict[str, FileOutcome]):
    """Outcomes by doc_id; each one is also handed to a callback when it is stored."""

    def __init__(self, on_result: Callable[[str, FileOutcome], None]) -> None:
        super().__init__()
        self.on_result = on_result

    def __setitem__(self, doc_id: str, outcome: FileOutcome) -> None:
        super().__setitem__(doc_id, outcome)
        self.on_result(doc_id, outcome)


def _run_pool(
    jobs: list[tuple[Path, str]],
    config: IngestConfig,
    workers: int,
    results: dict[str, FileOutcome],
    bar: Progress,
) -> list[tuple[Path, str]]:
    """Run jobs in a process pool; return the jobs left without a result if the pool broke."""
    ctx = multiprocessing.get_context("spawn")
    futures: dict[Future[FileOutcome], tuple[Path, str]] = {}
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=init_worker,
        initargs=(config.model_dump_json(),),
    ) as pool:
        for path, doc_id in jobs:
            futures[pool.submit(convert_in_worker, str(path), doc_id)] = (path, doc_id)
        broken = False
        for fut in as_completed(futures):
            try:
                results[futures[fut][1]] = fut.result()
                bar.advance()
            except BrokenProcessPool:
                broken = True
    return [job for job in jobs if job[1] not in results] if broken else []


def ingest_folder(
    source_dir: Path,
    output_dir: Path,
    config: IngestConfig | None = None,
    *,
    progress: bool = True,
) -> StageResult[ChunkSet, IngestSummary]:
    """Convert every document under `source_dir` into chunks in `output_dir`.

    Writes chunks.json, documents.json (one record per file with its status), rejects.jsonl
    (every file that gave no chunks, with the rule and reason), texts/<doc_id>.txt and
    ingest_summary.json. Files whose content hash was converted before with the same settings
    are taken from the cache and not parsed again. Bad files never stop the run.

    Progress is always reported (`geomas.progress`): a bar when ``progress`` is true and stderr
    is a terminal, otherwise a log line every ``GEOMAS_PROGRESS_INTERVAL`` seconds.

    Returns:
        The chunks with each document's page count, the rejected files, and the summary.

    Raises:
        InputError: the source folder does not exist.
        IngestError: rejected files exceed `config.max_failure_ratio` (outputs are written
            first, so nothing is lost).
    """
    config = config or IngestConfig()
    t0 = time.perf_counter()
    source_dir = Path(source_dir)
    output_dir = Path(output_dir)
    files, skipped = discover(source_dir, exclude=output_dir, max_bytes=config.max_file_bytes)
    if config.tokenizer is not None and not Path(config.tokenizer).is_dir():
        raise InputError(f"ingest.tokenizer {config.tokenizer} is not a folder; pass a local "
                         "Hugging Face tokenizer folder or leave it unset")
    _check_dictionaries(config)
    output_dir.mkdir(parents=True, exist_ok=True)
    cache = _Cache(output_dir / CACHE_DIR / settings_fingerprint(config),
                   ocr_version=_tesseract_version(config) if config.ocr != "off" else None)
    allowed = {s.lower() for s in config.extensions}

    records: dict[str, DocumentRecord] = {}
    first_source: dict[str, str] = {}
    outcomes: dict[str, FileOutcome] = {}
    jobs: list[tuple[Path, str]] = []
    skip_rules: dict[str, str] = {}
    for entry in skipped:
        name = str(entry.source)
        records[name] = DocumentRecord(source=name, size_bytes=0, status="rejected",
                                       reason=entry.reason)
        skip_rules[name] = entry.rule
    for path in track(files, "hashing", unit="files", bar=progress):
        rel = path.relative_to(source_dir).as_posix()
        size = path.stat().st_size
        try:
            doc_id = sha256_file(path) if size else None
        except OSError as exc:
            records[rel] = DocumentRecord(source=rel, size_bytes=size, status="rejected",
                                          reason=f"cannot read the file: {exc.strerror or exc}; "
                                          "check its permissions")
            skip_rules[rel] = "unreadable"
            continue
        if size == 0 or doc_id is None:
            records[rel] = DocumentRecord(
                source=rel, size_bytes=0, status="rejected", reason="empty file (0 bytes)"
            )
            continue
        if path.suffix.lower() not in allowed:
            records[rel] = DocumentRecord(
                source=rel, doc_id=doc_id, size_bytes=size, status="rejected",
                reason=f"unsupported file type {path.suffix or '(no suffix)'!r}; "
                f"supported: {', '.join(sorted(allowed))}",
            )
            continue
        if doc_id in first_source:
            records[rel] = DocumentRecord(
                source=rel, doc_id=doc_id, size_bytes=size, status="duplicate",
                duplicate_of=first_source[doc_id],
            )
            continue
        first_source[doc_id] = rel
        cached = cache.get(doc_id)
        if cached is not None:
            outcomes[doc_id] = cached
        else:
            jobs.append((path, doc_id))
        records[rel] = DocumentRecord(source=rel, doc_id=doc_id, size_bytes=size,
                                      status="parsed" if cached is None else "cached")

    # each result is committed as soon as it is done, so a killed run resumes where it stopped
    outcomes.update(_convert_all(jobs, config, progress, on_result=cache.put))

    chunks: list[Chunk] = []
    rejects: list[Reject] = []
    texts_dir = output_dir / TEXTS_DIR
    texts_dir.mkdir(exist_ok=True)
    pages_parsed = 0
    pages_ocr = 0
    for rel, rec in records.items():
        if rec.status in ("rejected",):
            rule = skip_rules.get(rel) or (
                "empty_file" if rec.size_bytes == 0 else "unsupported_type")
            rejects.append(Reject(stage="ingest", source=rel, doc_id=rec.doc_id, rule=rule,
                                  reason=rec.reason or ""))
            continue
        if rec.status == "duplicate" or rec.doc_id is None:
            continue
        outcome = outcomes[rec.doc_id]
        rec.parser = outcome.parser
        rec.pages = outcome.pages
        rec.warnings = list(outcome.warnings)
        rec.seconds = round(outcome.seconds, 4)
        rec.hygiene = dict(outcome.hygiene)
        rec.page_sources = [PageRecord(**p) for p in outcome.page_sources]
        rec.ocr = _document_ocr(outcome)
        if not outcome.ok:
            was_cached = rec.status == "cached"
            rec.status = "rejected"
            rec.reason = (outcome.reason or "unknown failure") + (
                " (cached result)" if was_cached else ""
            )
            rejects.append(Reject(stage="ingest", source=rel, doc_id=rec.doc_id,
                                  rule=outcome.rule or "unknown", reason=rec.reason))
            continue
        if rec.status == "parsed":
            pages_parsed += outcome.pages or 0
            pages_ocr += outcome.pages_ocr
        rec.n_chunks = len(outcome.chunks)
        chunks.extend(Chunk(source=rel, **c) for c in outcome.chunks)
        doc_text = DOC_TEXT_SEPARATOR.join(c["text"] for c in outcome.chunks)
        (texts_dir / f"{rec.doc_id}.txt").write_text(doc_text, encoding="utf-8")

    chunks_path = output_dir / CHUNKS_FILE
    manifest_path = output_dir / MANIFEST_FILE
    rejects_path = output_dir / REJECTS_FILE
    write_json(chunks_path, [c.model_dump() for c in chunks], indent=1, end="")
    write_json(manifest_path, [r.model_dump() for r in records.values()], indent=1, end="")
    write_rejects(rejects_path, rejects)

    statuses = [r.status for r in records.values()]
    n_files = len(records)
    summary = IngestSummary(
        source_dir=str(source_dir),
        output_dir=str(output_dir),
        pdf_parser=resolve_pdf_parser(config),
        files=n_files,
        parsed=statuses.count("parsed"),
        cached=statuses.count("cached"),
        rejected=statuses.count("rejected"),
        duplicates=statuses.count("duplicate"),
        chunks=len(chunks),
        pages_parsed=pages_parsed,
        pages_ocr=pages_ocr,
        seconds=round(time.perf_counter() - t0, 3),
        failure_ratio=round(len(rejects) / n_files, 4) if n_files else 0.0,
        max_failure_ratio=config.max_failure_ratio,
        chunks_path=str(chunks_path),
        manifest_path=str(manifest_path),
        rejects_path=str(rejects_path),
        rejects_by_rule=dict(Counter(rej.rule for rej in rejects)),
        hygiene=dict(sorted(sum((Counter(r.hygiene) for r in records.values()),
                                Counter()).items())),
        chunk_kinds=dict(Counter(c.kind for c in chunks)),
    )
    write_json(output_dir / SUMMARY_FILE, summary.model_dump(), indent=1, end="")
    for rej in rejects:
        log.warning("rejected %s [%s]: %s", rej.source, rej.rule, rej.reason)
    log.info(
        "ingested %d files: %d parsed, %d cached, %d rejected, %d duplicates -> %d chunks (%s)",
        n_files, summary.parsed, summary.cached, summary.rejected, summary.duplicates,
        summary.chunks, summary.pdf_parser,
    )
    if n_files == 0:
        raise IngestError(f"no files found under {source_dir}")
    if summary.failed:
        raise IngestError(
            f"{summary.rejected} of {n_files} files were rejected ({summary.failure_ratio:.0%}), "
            f"above ingest.max_failure_ratio={config.max_failure_ratio:.0%}; see {rejects_path}"
        )
    pages = {r.doc_id: r.pages for r in records.values() if r.doc_id and r.pages is not None}
    return StageResult(kept=ChunkSet(chunks=chunks, page_counts=pages), rejects=rejects,
                       report=summary)


def _check_dictionaries(config: IngestConfig) -> None:
    """Refuse text_quality.dictionary_languages that wordfreq has no word list for."""
    from geomas.ingest.textquality import unknown_languages

    bad = unknown_languages(config.text_quality.dictionary_languages)
    if bad:
        raise ConfigError(f"ingest.text_quality.dictionary_languages: wordfreq has no word list "
                          f"for {', '.join(bad)}")


def _document_ocr(outcome: FileOutcome) -> OcrProvenance | None:
    """A document's OCR provenance: engine, its OCR'd pages and their mean confidence."""
    if outcome.ocr is None:
        return None
    pages = [p for p in outcome.page_sources if p.get("source") == "ocr"]
    confidences = [p["ocr_confidence"] for p in pages if p.get("ocr_confidence") is not None]
    return OcrProvenance(**outcome.ocr, pages=[p["page"] for p in pages],
                         confidence=round(sum(confidences) / len(confidences), 1)
                         if confidences else None)


def load_chunks(path: Path) -> list[dict[str, Any]]:
    """Read chunks.json (a list of chunk records; JSON Lines are read too).

    Raises:
        InputError: the file is missing or not JSON (the message names the line).
    """
    return [rec.value for rec in load_records(path)[1]]
