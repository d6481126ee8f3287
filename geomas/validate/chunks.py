"""Great Expectations checks on ingested chunks.

GX validates a derived table, not the raw records: one row per chunk with its ids, lengths,
Cyrillic share, page bounds and offsets. The chunk text itself stays out of the table so that
neither the HTML report nor the summary ever carries full texts; offending chunks are named by
``chunk_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geomas.config import ValidationConfig
from geomas.errors import InputError
from geomas.text import cyrillic_share
from geomas.validate.suite import ValidationSummary, run_suite

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.expectations.expectation import Expectation

logger = logging.getLogger(__name__)

CHUNK_SUITE = "geomas_chunks"
DOC_ID_PATTERN = r"^[0-9a-f]{64}$"
REQUIRED_KEYS = ("chunk_id", "doc_id", "text", "pages", "char_start", "char_end", "n_tokens")

# The table GX sees; the chunk text is deliberately not among these columns.
_COLUMNS = ["chunk_id", "doc_id", "n_chars", "cyrillic_share", "page_min", "page_max_excess",
            "n_tokens", "char_start", "char_end"]


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

    Args:
        chunks: Chunk records as produced by ingestion.
        config: Thresholds and policy.
        max_tokens: Token limit of the chunker (``IngestConfig.max_tokens``).
        report_dir: Folder for the Data Docs site and ``validation_summary.json``.
        page_counts: Page count per ``doc_id``; documents missing here (or formats without
            pages) get only the ``>= 1`` check.

    Returns:
        The validation summary; ``success`` is False only under policy ``warn``.

    Raises:
        InputError: A record lacks one of `REQUIRED_KEYS` (an ingestion bug, not bad data).
        ValidationFailed: Under policy ``fail``, when an expectation fails or there are no chunks.
    """
    frame = chunk_frame(chunks, page_counts or {})
    logger.debug("validating %d chunks (max_tokens=%d)", len(frame), max_tokens)
    return run_suite(frame, chunk_expectations(config, max_tokens=max_tokens),
                     suite_name=CHUNK_SUITE, report_dir=report_dir, policy=config.policy,
                     id_column="chunk_id", record_kind="chunks")


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

    Derived columns: ``n_chars``; ``cyrillic_share`` (null without letters); ``page_min``
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
