"""Step: log the adapter to MLflow and register a version with alias challenger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import get_step_context, step

from geomas.stack import TRACKER_NAME
from geomas.train import SFTResult
from geomas.train.flow import AdapterEval, register_adapter


@step(experiment_tracker=TRACKER_NAME, enable_cache=False)
def register_model(
    sft_result: SFTResult, evaluation: AdapterEval, train_file: str, val_file: str,
    registered_model_name: str,
) -> Annotated[str, "model_version"]:
    """Register the adapter (PEFT-aware pyfunc, base fingerprint) with dataset tags.

    Args:
        sft_result: The training result.
        evaluation: Its evaluation.
        train_file: Train split (hashed into the version tags).
        val_file: Val split.
        registered_model_name: e.g. geomas-sft.

    Returns:
        The registered version number.
    """
    context = get_step_context()
    zenml_model = context.model_version if context.model is not None else None
    return register_adapter(Path(sft_result.output_dir), evaluation, train_file=Path(train_file),
                            val_file=Path(val_file),
                            registered_model_name=registered_model_name,
                            zenml_run_id=str(context.pipeline_run.id),
                            zenml_model=(zenml_model.model.name, str(zenml_model.id))
                            if zenml_model is not None else None)
