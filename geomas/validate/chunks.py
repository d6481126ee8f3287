"""Great Expectations checks on ingested chunks.

GX validates a derived table, not the raw records: one row per chunk with its ids, source file,
lengths, Cyrillic share, page bounds and offsets. The chunk text itself stays out of the table so
that neither the HTML report nor the summary ever carries full texts; offending chunks are named
by ``chunk_id`` and their document by its file.

OCR noise is judged per document: the share of its chunk words that are not dictionary words and
the share that mix Cyrillic and Latin letters (`geomas.ingest.textquality`) are columns holding
one value per document, checked against ``validation.max_unknown_word_share`` and
``max_mixed_word_share``; a document over a limit is named with its measured share and the limit.

The suite is judged per document (`geomas.validate.suite.DocumentRule`): under the default
policy ``exclude_document`` a document whose chunks fail is left out of NER/QA and recorded as a
`Reject`, and the run goes on (`validate_chunk_set`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geomas.config import ValidationConfig
from geomas.errors import ConfigError, InputError
from geomas.ingest.records import Chunk, ChunkSet
from geomas.ingest.textquality import TextQuality, measure, unknown_languages
from geomas.io import write_json
from geomas.records import Reject, StageResult, write_rejects
from geomas.text import cyrillic_share
from geomas.validate.suite import DocumentRule, ValidationSummary, run_suite

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations.expectation import Expectation

logger = logging.getLogger(__name__)

CHUNK_SUITE = "geomas_chunks"
DOC_ID_PATTERN = r"^[0-9a-f]{64}$"
REQUIRED_KEYS = ("chunk_id", "doc_id", "text", "pages", "char_start", "char_end", "n_tokens")
#: The chunk suite's report folder under the data output folder (CLI and pipeline).
REPORT_DIR = "validation"
#: The chunk stage's rejects (one line per excluded document), in the report folder.
REJECTS_FILE = "rejects.jsonl"
REJECT_RULE = "chunk_validation"

# The table GX sees; the chunk text is deliberately not among these columns.
_COLUMNS = ["chunk_id", "doc_id", "source", "n_chars", "cyrillic_share", "page_min",
            "page_max_excess", "n_tokens", "char_start", "char_end", "doc_unknown_word_share",
            "doc_mixed_word_share"]
#: Columns holding one value per document (the OCR-noise shares of all its chunks' words).
DOCUMENT_COLUMNS = ("doc_unknown_word_share", "doc_mixed_word_share")


def validate_chunks(
    chunks: Sequence[Mapping[str, Any]],
    config: ValidationConfig,
    *,
    max_tokens: int,
    report_dir: Path,
    page_counts: Mapping[str, int] | None = None,
) -> ValidationSummary:
    """Validate ingested chunks with Great Expectations and apply ``config.policy``.

    Checks: ``min_chars <= len(text) <= max_chars``; ``chunk_id`` present and unique; the share
    of Cyrillic letters among letters at least ``config.cyrillic_min`` (for ``config.mostly`` of
    the chunks; chunks without letters, such as number tables, are not judged); page numbers
    ``>= 1`` and, for documents in ``page_counts``, not above the page count; ``n_tokens <=
    max_tokens``; ``doc_id`` a lowercase sha256 hex digest; ``char_start <= char_end``.

    Failures are traced to documents (the summary's ``documents``, each named by its file).
    Under ``exclude_document`` a document fails when any of its chunks fails a check, except the
    Cyrillic share, which it fails only when fewer than ``config.document_mostly`` of its chunks
    with letters pass; failing documents are marked excluded and the run goes on.

    Args:
        chunks: Chunk records as produced by ingestion.
        config: Thresholds and policy.
        max_tokens: Token limit of the chunker (``IngestConfig.max_tokens``).
        report_dir: Folder for the Data Docs site and ``validation_summary.json``.
        page_counts: Page count per ``doc_id``; documents missing here (or formats without
            pages) get only the ``>= 1`` check.

    Returns:
        The validation summary; ``success`` is False under ``warn`` (an expectation failed) or
        ``exclude_document`` (a document was excluded).

    Raises:
        InputError: A record lacks one of `REQUIRED_KEYS` (an ingestion bug, not bad data).
        ValidationFailed: Under policy ``fail``, when an expectation fails or there are no
            chunks; under ``exclude_document``, when there are no chunks, a check errored, or
            more documents fail than ``config.max_excluded_ratio`` allows. The message names
            the files.
    """
    _check_keys(chunks)
    noise = document_noise(chunks, config)
    frame = chunk_frame(chunks, page_counts or {}, noise=noise,
                        min_words=config.noise_min_words)
    logger.debug("validating %d chunks (max_tokens=%d)", len(frame), max_tokens)
    return run_suite(frame, chunk_expectations(config, max_tokens=max_tokens),
                     suite_name=CHUNK_SUITE, report_dir=report_dir, policy=config.policy,
                     id_column="chunk_id", record_kind="chunks",
                     documents=document_rule(config, max_tokens=max_tokens, noise=noise))


def document_noise(
    chunks: Sequence[Mapping[str, Any]], config: ValidationConfig
) -> dict[str, TextQuality]:
    """Dictionary-word and look-alike-mixing counts of each document's chunk text, by source.

    Nothing is measured (an empty mapping) when both OCR-noise limits are off.

    Raises:
        ConfigError: wordfreq has no word list for one of ``config.dictionary_languages``.
    """
    if config.max_unknown_word_share is None and config.max_mixed_word_share is None:
        return {}
    bad = unknown_languages(config.dictionary_languages)
    if bad:
        raise ConfigError(f"validation.dictionary_languages: wordfreq has no word list for "
                          f"{', '.join(bad)}")
    noise: dict[str, TextQuality] = {}
    for chunk in chunks:
        source = _frame_source(chunk)
        noise[source] = noise.get(source, TextQuality()) + measure(
            chunk["text"] or "", config.dictionary_languages)
    return noise


def document_rule(
    config: ValidationConfig, *, max_tokens: int, noise: Mapping[str, TextQuality] | None = None
) -> DocumentRule:
    """How chunk failures are judged per document, and the one line of what to do for each.

    `noise` (from `document_noise`) gives the measured OCR-noise shares that name a document
    over a limit.
    """
    floor = f"{config.cyrillic_min:.0%}"
    return DocumentRule(
        column="source",
        doc_id_column="doc_id",
        # a Russian thesis with an English bibliography fails this on a minority of chunks
        tolerance={"cyrillic_share": round(1.0 - config.document_mostly, 10)},
        hints={
            "chunk_id": "chunk ids are missing or repeated, so chunks.json was not written by "
            "this geomas ingestion or was edited; rerun makedataset",
            "n_chars": f"chunks are empty or longer than validation.max_chars "
            f"({config.max_chars}); check that the file converts to text, or raise max_chars",
            "cyrillic_share": f"the text is not Russian (under {floor} Cyrillic letters for "
            f"validation.profile {config.profile}); take the file out of the corpus, or use "
            "profile generic for a corpus that is not in Russian",
            "page_min": "page numbers below 1; reconvert the file (its page tree is broken)",
            "page_max_excess": "pages beyond the document's page count; reconvert the file",
            "n_tokens": f"chunks longer than ingest.max_tokens ({max_tokens}); rerun "
            "makedataset with the max_tokens of this run",
            "doc_id": "doc_id is not the file's sha256; rerun makedataset",
            "char_end,char_start": "chunk offsets are reversed; rerun makedataset",
            "doc_unknown_word_share": "OCR noise or a broken text layer: if it is a PDF, "
            "rerun makedataset with ingest.ocr: auto (force for an old OCR text layer); "
            "otherwise check the file, or raise validation.max_unknown_word_share",
            "doc_mixed_word_share": "Latin look-alike letters inside Cyrillic words, or \\ or "
            "| inside words (an old OCR text layer, a broken font encoding): rerun makedataset "
            "with ingest.ocr: force for this file, or raise validation.max_mixed_word_share",
        },
        document_values=_noise_lines(config, noise or {}),
        max_excluded_ratio=config.max_excluded_ratio,
        record_noun="chunks",
    )


def _noise_lines(
    config: ValidationConfig, noise: Mapping[str, TextQuality]
) -> dict[str, dict[str, str]]:
    """Per noise column and document: its measured share and the limit, for failure lines."""
    lines: dict[str, dict[str, str]] = {"doc_unknown_word_share": {},
                                        "doc_mixed_word_share": {}}
    for source, quality in noise.items():
        if quality.words < config.noise_min_words:
            continue
        if config.max_unknown_word_share is not None and quality.unknown_share is not None:
            lines["doc_unknown_word_share"][source] = (
                f"{quality.unknown_share:.1%} of its {quality.words} words are not dictionary "
                f"words (limit validation.max_unknown_word_share "
                f"{config.max_unknown_word_share:.0%})")
        if config.max_mixed_word_share is not None and quality.mixed_share is not None:
            examples = f", e.g. {', '.join(quality.examples[:3])}" if quality.examples else ""
            lines["doc_mixed_word_share"][source] = (
                f"{quality.mixed_share:.1%} of its {quality.tokens} words mix Cyrillic and "
                f"Latin letters{examples} (limit validation.max_mixed_word_share "
                f"{config.max_mixed_word_share:.0%})")
    return lines


def validate_chunk_set(
    chunk_set: ChunkSet,
    config: ValidationConfig,
    *,
    max_tokens: int,
    report_dir: Path,
    chunks_path: Path | None = None,
) -> StageResult[ChunkSet, ValidationSummary]:
    """The chunk validation stage: run the suite, leave out the documents that failed.

    Under policy ``exclude_document`` the chunks of every excluded document are dropped from
    the result (so they reach neither NER nor QA), each such document is written to
    ``report_dir/rejects.jsonl`` as a `Reject` naming its file, the failed expectations and
    what to do, and, when ``chunks_path`` is given and a document was excluded, chunks.json is
    rewritten with the kept chunks (the CLI's generate-qa-pairs then reads what the pipeline's
    NER step gets). Under ``fail`` and ``warn`` every chunk is kept.

    Args:
        chunk_set: Chunks from ingestion, with page counts.
        config: Policy and thresholds.
        max_tokens: The chunker's token limit (``IngestConfig.max_tokens``).
        report_dir: Folder of the Data Docs site, validation_summary.json and rejects.jsonl.
        chunks_path: chunks.json to rewrite when documents are excluded; None: leave it.

    Returns:
        The kept chunks, one reject per excluded document, and the validation summary.

    Raises:
        ValidationFailed: As in `validate_chunks` (the message names the files).
    """
    report_dir = Path(report_dir)
    summary = validate_chunks(chunk_set.as_dicts(), config, max_tokens=max_tokens,
                              report_dir=report_dir, page_counts=chunk_set.page_counts)
    excluded = {doc.source: doc for doc in summary.excluded}
    rejects = [
        Reject(stage="validate", source=doc.source, doc_id=doc.doc_id, rule=REJECT_RULE,
               reason=f"{doc.n_records} chunks, document excluded: {'; '.join(doc.failures)}")
        for doc in excluded.values()
    ]
    write_rejects(report_dir / REJECTS_FILE, rejects)
    if not excluded:
        return StageResult(kept=chunk_set, rejects=rejects, report=summary)
    kept = [c for c in chunk_set.chunks if _source(c) not in excluded]
    gone = {c.doc_id for c in chunk_set.chunks if _source(c) in excluded}
    kept_set = ChunkSet(chunks=kept, page_counts={
        doc: n for doc, n in chunk_set.page_counts.items() if doc not in gone})
    if chunks_path is not None:
        write_json(chunks_path, [c.model_dump() for c in kept], indent=1, end="")
    return StageResult(kept=kept_set, rejects=rejects, report=summary)


def _frame_source(chunk: Mapping[str, Any]) -> str:
    # the document key of `chunk_frame` for a chunk record
    return str(chunk.get("source") or chunk["doc_id"])


def _source(chunk: Chunk) -> str:
    # the document key of `chunk_frame`: its file, or its doc_id for chunks without one
    return chunk.source or chunk.doc_id


def chunk_expectations(config: ValidationConfig, *, max_tokens: int) -> list[Expectation]:
    """The expectations of the chunk suite, on the columns of `chunk_frame`."""
    import great_expectations.expectations as gxe

    expectations: list[Expectation] = [
        gxe.ExpectColumnValuesToNotBeNull(column="chunk_id"),
        gxe.ExpectColumnValuesToBeUnique(column="chunk_id"),
        gxe.ExpectColumnValuesToBeBetween(
            column="n_chars", min_value=config.min_chars, max_value=config.max_chars
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="cyrillic_share", min_value=config.cyrillic_min, mostly=config.mostly
        ),
        gxe.ExpectColumnValuesToBeBetween(column="page_min", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="page_max_excess", max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="n_tokens", min_value=0, max_value=max_tokens),
        gxe.ExpectColumnValuesToMatchRegex(column="doc_id", regex=DOC_ID_PATTERN),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="char_end", column_B="char_start", or_equal=True
        ),
    ]
    # OCR noise, one value per document (the same on each of its chunks)
    for column, limit in (("doc_unknown_word_share", config.max_unknown_word_share),
                          ("doc_mixed_word_share", config.max_mixed_word_share)):
        if limit is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0.0, max_value=limit))
    return expectations


def chunk_frame(
    chunks: Sequence[Mapping[str, Any]],
    page_counts: Mapping[str, int],
    *,
    noise: Mapping[str, TextQuality] | None = None,
    min_words: int = 1,
) -> pd.DataFrame:
    """One row per chunk with the columns the chunk suite checks (no chunk text).

    ``doc_unknown_word_share`` and ``doc_mixed_word_share`` are the document's OCR-noise
    shares from `noise` (the same on each of its chunks; null for a document with fewer than
    `min_words` words, or not in `noise`).

    Derived columns: ``source`` (the document's file; its doc_id for a record without one);
    ``n_chars``; ``cyrillic_share`` (null without letters); ``page_min``
    (null without pages); ``page_max_excess`` = last page minus the document's page count
    (null when either is unknown). A blank ``chunk_id`` counts as missing.

    Raises:
        InputError: A record lacks one of `REQUIRED_KEYS`.
    """
    import pandas as pd

    _check_keys(chunks)
    rows = []
    for chunk in chunks:
        text = chunk["text"] or ""
        pages = [int(p) for p in chunk["pages"] or ()]
        page_count = page_counts.get(chunk["doc_id"])
        source = _frame_source(chunk)
        quality = (noise or {}).get(source)
        judged = quality is not None and quality.words >= min_words
        rows.append({
            "chunk_id": chunk["chunk_id"] or None,
            "doc_id": chunk["doc_id"],
            "source": source,
            "n_chars": len(text),
            "cyrillic_share": cyrillic_share(text),
            "page_min": min(pages) if pages else None,
            "page_max_excess": (max(pages) - page_count
                                if pages and page_count is not None else None),
            "n_tokens": chunk["n_tokens"],
            "char_start": chunk["char_start"],
            "char_end": chunk["char_end"],
            "doc_unknown_word_share": quality.unknown_share if judged and quality else None,
            "doc_mixed_word_share": quality.mixed_share if judged and quality else None,
        })
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    # Nullable integers keep page numbers integral in the report while allowing "unknown".
    return frame.astype({"n_chars": "Int64", "cyrillic_share": "Float64", "page_min": "Int64",
                         "page_max_excess": "Int64", "doc_unknown_word_share": "Float64",
                         "doc_mixed_word_share": "Float64"})


def _check_keys(chunks: Sequence[Mapping[str, Any]]) -> None:
    for position, chunk in enumerate(chunks):
        missing = [key for key in REQUIRED_KEYS if key not in chunk]
        if missing:
            raise InputError(
                f"chunk record #{position} (chunk_id={chunk.get('chunk_id')!r}) lacks "
                f"{', '.join(missing)}; chunk records must come from geomas ingestion, which "
                f"writes {', '.join(REQUIRED_KEYS)}"
            )
