"""Great Expectations checks on ingested chunks.

GX validates a derived table, not the raw records: one row per chunk with its ids, source file,
lengths, Cyrillic share, page bounds and offsets. The chunk text itself stays out of the table so
that neither the HTML report nor the summary ever carries full texts; offending chunks are named
by ``chunk_id`` and their document by its file.

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
from geomas.errors import InputError
from geomas.ingest.records import Chunk, ChunkSet
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
            "page_max_excess", "n_tokens", "char_start", "char_end"]


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
    frame = chunk_frame(chunks, page_counts or {})
    logger.debug("validating %d chunks (max_tokens=%d)", len(frame), max_tokens)
    return run_suite(frame, chunk_expectations(config, max_tokens=max_tokens),
                     suite_name=CHUNK_SUITE, report_dir=report_dir, policy=config.policy,
                     id_column="chunk_id", record_kind="chunks",
                     documents=document_rule(config, max_tokens=max_tokens))


def document_rule(config: ValidationConfig, *, max_tokens: int) -> DocumentRule:
    """How chunk failures are judged per document, and the one line of what to do for each."""
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
        },
        max_excluded_ratio=config.max_excluded_ratio,
        record_noun="chunks",
    )


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


def _source(chunk: Chunk) -> str:
    # the document key of `chunk_frame`: its file, or its doc_id for chunks without one
    return chunk.source or chunk.doc_id


def chunk_expectations(config: ValidationConfig, *, max_tokens: int) -> list[Expectation]:
    """The expectations of the chunk suite, on the columns of `chunk_frame`."""
    import great_expectations.expectations as gxe

    return [
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


def chunk_frame(
    chunks: Sequence[Mapping[str, Any]], page_counts: Mapping[str, int]
) -> pd.DataFrame:
    """One row per chunk with the columns the chunk suite checks (no chunk text).

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
        rows.append({
            "chunk_id": chunk["chunk_id"] or None,
            "doc_id": chunk["doc_id"],
            "source": str(chunk.get("source") or chunk["doc_id"]),
            "n_chars": len(text),
            "cyrillic_share": cyrillic_share(text),
            "page_min": min(pages) if pages else None,
            "page_max_excess": (max(pages) - page_count
                                if pages and page_count is not None else None),
            "n_tokens": chunk["n_tokens"],
            "char_start": chunk["char_start"],
            "char_end": chunk["char_end"],
        })
    frame = pd.DataFrame(rows, columns=_COLUMNS)
    # Nullable integers keep page numbers integral in the report while allowing "unknown".
    return frame.astype({"n_chars": "Int64", "cyrillic_share": "Float64", "page_min": "Int64",
                         "page_max_excess": "Int64"})


def _check_keys(chunks: Sequence[Mapping[str, Any]]) -> None:
    for position, chunk in enumerate(chunks):
        missing = [key for key in REQUIRED_KEYS if key not in chunk]
        if missing:
            raise InputError(
                f"chunk record #{position} (chunk_id={chunk.get('chunk_id')!r}) lacks "
                f"{', '.join(missing)}; chunk records must come from geomas ingestion, which "
                f"writes {', '.join(REQUIRED_KEYS)}"
            )
