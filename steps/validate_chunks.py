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
from geomas.validate import ValidationSummary
from geomas.validate import validate_chunks as run_chunk_suite


@step(experiment_tracker=TRACKER_NAME)
def validate_chunks(
    chunks: ChunkSet, config: ValidationConfig, max_tokens: int, report_dir: str
) -> tuple[
    Annotated[ValidationSummary, "chunk_validation"],
    Annotated[HTMLString, "chunk_validation_report"],
]:
    """Run the chunk suite; under policy `fail` a failed suite stops the pipeline.

    Args:
        chunks: Chunks from ingestion.
        config: Validation policy and thresholds.
        max_tokens: The chunker's token limit, checked per chunk.
        report_dir: Where the HTML report and validation_summary.json are written.

    Returns:
        The summary and the HTML report.
    """
    summary = run_chunk_suite(
        chunks.as_dicts(),
        config,
        max_tokens=max_tokens,
        report_dir=Path(report_dir),
        page_counts=chunks.page_counts,
    )
    failed = [r for r in summary.results if not r.success]
    log_stage_metrics(
        "validate_chunks",
        {"success": summary.success, "expectations": len(summary.results),
         "failed_expectations": len(failed), "chunks": summary.n_chunks},
    )
    log_artifacts("validate_chunks", Path(report_dir))
    log_metadata(metadata={"success": summary.success, "failed_expectations": len(failed)})
    html = Path(summary.report_path).read_text(encoding="utf-8")
    return summary, HTMLString(html)
