"""Step: normalise, filter and deduplicate QA pairs as instruction examples (geomas.clean)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.clean.stage import CleanStageReport, clean_qa_pairs
from geomas.config import CleanConfig
from geomas.formats import ExampleSet
from geomas.names import TRACKER_NAME
from geomas.qa import QASet
from geomas.tracking import log_artifacts, log_stage_metrics


@step(experiment_tracker=TRACKER_NAME)
def clean_dataset(
    qa_pairs: QASet, config: CleanConfig, output_dir: str
) -> tuple[Annotated[ExampleSet, "clean_examples"], Annotated[CleanStageReport, "clean_report"]]:
    """Clean the QA pairs; every removed record goes to clean_rejects.jsonl with its rule.

    Args:
        qa_pairs: Pairs from generate_qa.
        config: Profile, length and script filters, dedup thresholds, grounding.
        output_dir: Where clean_rejects.jsonl and clean_report.json go.

    Returns:
        The kept examples and the per-rule report.
    """
    result = clean_qa_pairs(qa_pairs.pairs, config, Path(output_dir))
    report = result.report
    log_stage_metrics("clean", {"kept": report.kept, "rejected": report.removed,
                                **{f"rule.{k}": v for k, v in report.counts.items()}})
    log_artifacts("clean", Path(report.rejects_path), Path(report.report_path))
    log_metadata(metadata={"kept": report.kept, "removed": report.removed,
                           "counts": report.counts})
    return result.kept, report
