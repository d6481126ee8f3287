"""Step: log the adapter to MLflow and register a version with alias challenger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import get_step_context, step

from geomas.names import TRACKER_NAME
from geomas.train import SFTResult
from geomas.train.flow import AdapterEval, link_data_run, register_adapter
from geomas.trigger.watermark import files_watermark, record_watermark


@step(experiment_tracker=TRACKER_NAME, enable_cache=False)
def register_model(
    sft_result: SFTResult, evaluation: AdapterEval, train_file: str, val_file: str,
    registered_model_name: str, dataset_dir: str | None = None,
) -> Annotated[str, "model_version"]:
    """Register the adapter (PEFT-aware pyfunc, base fingerprint) with dataset tags.

    Args:
        sft_result: The training result.
        evaluation: Its evaluation.
        train_file: Train split (hashed into the version tags).
        val_file: Val split.
        registered_model_name: e.g. geomas-sft.
        dataset_dir: Data pipeline output (its qa_pairs.json counts the watermark's QA pairs).
            The watermark's documents are those of the train, val and evaluated files.

    Returns:
        The registered version number.
    """
    context = get_step_context()
    zenml_model = context.model_version if context.model is not None else None
    version = register_adapter(
        Path(sft_result.output_dir), evaluation, train_file=Path(train_file),
        val_file=Path(val_file), registered_model_name=registered_model_name,
        zenml_run_id=str(context.pipeline_run.id),
        zenml_model=(zenml_model.model.name, str(zenml_model.id)) if zenml_model else None,
    )
    files = {Path(train_file), Path(val_file)}
    if evaluation.eval_file:
        files.add(Path(evaluation.eval_file))
    mark = files_watermark(sorted(files), Path(dataset_dir) if dataset_dir else None)
    record_watermark(registered_model_name, version, mark)
    link_data_run(registered_model_name, version, Path(train_file))
    return version
