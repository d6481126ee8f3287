"""Step: supervised fine-tuning (full / LoRA / QLoRA) with TRL (geomas.train)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.config import TrainSFTConfig
from geomas.names import TRACKER_NAME
from geomas.tracking import log_artifacts, log_stage_metrics, log_stage_params
from geomas.train import SFTResult, train_sft
from geomas.train.flow import (
    hyperparameters,
    log_dataset_inputs,
    training_plots,
    training_record,
)


@step(experiment_tracker=TRACKER_NAME, enable_cache=False)
def train_model(
    model: str, train_file: str, val_file: str, config: TrainSFTConfig, output_dir: str
) -> Annotated[SFTResult, "sft_result"]:
    """Fine-tune `model` on the train file, evaluating on the val file every epoch.

    Args:
        model: Alias or local model folder.
        train_file: Instruction dataset (train split).
        val_file: Instruction dataset (val split), for early stopping.
        config: Method, quantization, LoRA, training arguments.
        output_dir: Where the adapter, checkpoints and training_config.json go.

    Returns:
        Loss history, steps, tokens/s, peak memory.
    """
    result = train_sft(model, Path(train_file), config, output_dir=Path(output_dir),
                       eval_dataset=Path(val_file))
    log_stage_params("train", {"model": model, "method": config.method, "tag": config.tag,
                               **hyperparameters(training_record(Path(result.output_dir)))})
    log_dataset_inputs({"training": Path(train_file), "validation": Path(val_file)})
    log_stage_metrics("train", {"global_step": result.global_step,
                                "tokens_per_second": result.tokens_per_second,
                                "peak_memory_mib": result.peak_memory_bytes / 2**20})
    for step_no, loss in result.train_loss:
        import mlflow

        if mlflow.active_run() is not None:
            mlflow.log_metric("train.loss", loss, step=step_no)
    log_artifacts("train", *training_plots(result, Path(output_dir) / "plots"))
    log_metadata(metadata={"global_step": result.global_step,
                           "tokens_per_second": result.tokens_per_second})
    return result
