"""Step: Great Expectations suite on QA pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import step

from geomas.config import ValidationConfig
from geomas.names import TRACKER_NAME
from geomas.qa import QASet
from geomas.qa.generate import PAIR_ENTITY_TYPES
from geomas.tracking import log_artifacts, log_stage_metrics
from geomas.validate import ValidationSummary
from geomas.validate.records import validate_qa_pairs as run_qa_suite


@step(experiment_tracker=TRACKER_NAME)
def validate_qa_pairs(
    qa_pairs: QASet, config: ValidationConfig, max_context_length: int, report_dir: str
) -> Annotated[ValidationSummary, "qa_validation"]:
    """Check ids, grounding, lengths, entity types and script of the QA pairs.

    Args:
        qa_pairs: Pairs from generate_qa.
        config: Policy and script thresholds.
        max_context_length: The QA config's context limit.
        report_dir: Where the report goes.

    Returns:
        The validation summary (a failure under policy `fail` stops the run).
    """
    summary = run_qa_suite(
        [p.model_dump() for p in qa_pairs.pairs], config,
        entity_types=PAIR_ENTITY_TYPES, max_context_length=max_context_length,
        report_dir=Path(report_dir),
    )
    log_stage_metrics("validate_qa", {"success": summary.success,
                                      "failed_expectations": len(summary.failed)})
    log_artifacts("validate_qa", Path(report_dir))
    return summary
