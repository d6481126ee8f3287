"""Step: stratified, document-grouped, seeded train/val(/test) split with class weights."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.config import SplitConfig
from geomas.formats import ExampleSet
from geomas.names import TRACKER_NAME
from geomas.split import SplitResult, split_examples
from geomas.tracking import log_artifacts, log_stage_metrics


@step(experiment_tracker=TRACKER_NAME)
def split_dataset(
    examples: ExampleSet, config: SplitConfig, output_dir: str
) -> Annotated[SplitResult, "splits"]:
    """Split cleaned examples; no document lands in two splits.

    Args:
        examples: Cleaned examples.
        config: Ratios, seed, stratification, grouping and the small-class policy.
        output_dir: Where split_report.json, class_weights.json and split_rejects.jsonl go.

    Returns:
        The splits with their report and class weights.
    """
    result = split_examples(examples.examples, config)
    paths = result.write_reports(Path(output_dir))
    sizes = {name: len(rows) for name, rows in result.splits().items()}
    log_stage_metrics("split", {**sizes, "rejected": len(result.rejects)})
    log_artifacts("split", *paths.values())
    log_metadata(metadata={"sizes": sizes, "class_weights": result.class_weights})
    return result
