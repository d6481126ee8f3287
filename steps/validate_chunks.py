"""Step: Great Expectations suite on chunks, with the HTML report kept as an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step
from zenml.types import HTMLString

from geomas.config import ValidationConfig
from geomas.ingest import ChunkSet
from geomas.names import TRACKER_NAME
from geomas.tracking import log_artifacts, log_stage_metrics
from geomas.validate import ValidationSummary, validate_chunk_set


@step(experiment_tracker=TRACKER_NAME)
def validate_chunks(
    chunks: ChunkSet, config: ValidationConfig, max_tokens: int, report_dir: str,
    chunks_path: str | None = None,
) -> tuple[
    Annotated[ChunkSet, "validated_chunks"],
    Annotated[ValidationSummary, "chunk_validation"],
    Annotated[HTMLString, "chunk_validation_report"],
]:
    """Run the chunk suite per document; failing documents are left out, or the run stops.

    Policy exclude_document leaves the failing documents out; policy fail stops the pipeline.

    Args:
        chunks: Chunks from ingestion.
        config: Validation policy and thresholds.
        max_tokens: The chunker's token limit, checked per chunk.
        report_dir: Where the HTML report, validation_summary.json and rejects.jsonl go.
        chunks_path: chunks.json, rewritten with the kept chunks when a document is excluded.

    Returns:
        The chunks of the documents that passed, the summary and the HTML report.
    """
    result = validate_chunk_set(
        chunks, config, max_tokens=max_tokens, report_dir=Path(report_dir),
        chunks_path=Path(chunks_path) if chunks_path else None,
    )
    summary = result.report
    failed = summary.failed
    log_stage_metrics(
        "validate_chunks",
        {"success": summary.success, "expectations": len(summary.results),
         "failed_expectations": len(failed), "chunks": summary.n_chunks,
         "documents": summary.n_documents or 0, "excluded_documents": len(result.rejects)},
    )
    log_artifacts("validate_chunks", Path(report_dir))
    log_metadata(metadata={"success": summary.success, "failed_expectations": len(failed),
                           "excluded_documents": [r.source for r in result.rejects]})
    html = Path(summary.report_path).read_text(encoding="utf-8")
    return result.kept, summary, HTMLString(html)
