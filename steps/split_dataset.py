"""Step: stratified, document-grouped, seeded train/val(/test) split with class weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.config import SplitConfig
from geomas.formats import ExampleSet
from geomas.names import TRACKER_NAME
from geomas.split import LEDGER_NAME, SplitResult, split_with_ledger
from geomas.tracking import log_artifacts, log_stage_metrics


@step(experiment_tracker=TRACKER_NAME)
def split_dataset(
    examples: ExampleSet, config: SplitConfig, output_dir: str
) -> Annotated[SplitResult, "splits"]:
    """Split cleaned examples; no document lands in two splits.

    Args:
        examples: Cleaned examples.
        config: Ratios, seed, stratification, grouping and the small-class policy.
        output_dir: Where split_report.json, class_weights.json, split_rejects.jsonl and the
            split ledger (split_assignments.json: documents keep their split across runs) go.

    Returns:
        The splits with their report and class weights.
    """
    ledger = Path(output_dir) / LEDGER_NAME
    result = split_with_ledger(examples.examples, config, ledger)
    paths = {**result.write_reports(Path(output_dir)), "ledger": ledger}
    sizes = {name: len(rows) for name, rows in result.splits().items()}
    log_stage_metrics("split", {**sizes, "rejected": len(result.rejects)})
    log_artifacts("split", *paths.values())
    log_metadata(metadata={"sizes": sizes, "class_weights": result.class_weights,
                           "new_documents": result.report.new_groups})
    return result
