"""Step: write the splits as instruction datasets in the configured format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import get_step_context, log_metadata, step

from geomas.config import FormatConfig
from geomas.formats.instruct import write_data_run, write_splits
from geomas.names import TRACKER_NAME
from geomas.split import SplitResult
from geomas.tracking import log_artifacts, log_stage_metrics


@step(experiment_tracker=TRACKER_NAME)
def format_dataset(
    splits: SplitResult, config: FormatConfig, output_dir: str, name: str
) -> Annotated[dict[str, str], "instruct_files"]:
    """Write <name>_train / <name>_val (/ _test) like the original format-instruct-dataset.

    Args:
        splits: The split examples.
        config: Format type, JSON or JSONL, system prompt, lineage mode.
        output_dir: Output folder.
        name: File stem, e.g. instruct_dataset.

    Returns:
        Split name -> written file path.
    """
    files = write_splits(splits, Path(output_dir) / f"{name}.json", config)
    write_data_run(files, str(get_step_context().pipeline_run.id))
    log_stage_params = {"format_type": config.format_type, "jsonl": config.jsonl}
    log_stage_metrics("format", {k: len(v) for k, v in splits.splits().items()})
    log_artifacts("format", *(Path(p) for p in files.values()))
    log_metadata(metadata={**log_stage_params, "files": files})
    return files
