"""Step: Great Expectations suite on the formatted instruction examples of every split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from geomas.config import ValidationConfig
from geomas.names import TRACKER_NAME
from geomas.split import SplitResult
from geomas.tracking import log_artifacts, log_stage_metrics
from geomas.validate import ValidationSummary
from geomas.validate.records import validate_examples as run_example_suite


@step(experiment_tracker=TRACKER_NAME)
def validate_examples(
    splits: SplitResult, config: ValidationConfig, report_dir: str
) -> Annotated[ValidationSummary, "example_validation"]:
    """Check ids across splits, non-empty fields, labels, groups and script.

    Args:
        splits: The split examples.
        config: Policy and script thresholds.
        report_dir: Where the report goes.

    Returns:
        The validation summary (a failure under policy `fail` stops the run).
    """
    summary = run_example_suite(splits.splits(), config, report_dir=Path(report_dir))
    log_stage_metrics("validate_examples", {"success": summary.success,
                                            "failed_expectations": len(summary.failed)})
    log_artifacts("validate_examples", Path(report_dir))
    return summary
