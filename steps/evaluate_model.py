"""Step: base vs tuned answer scores on the test split (val without one), forgetting probe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from zenml import log_metadata, step

from geomas.config import EvalConfig
from geomas.evaluate.plots import log_eval_to_mlflow
from geomas.names import TRACKER_NAME
from geomas.tracking import log_table
from geomas.train import SFTResult
from geomas.train.flow import (
    AdapterEval,
    evaluate_adapter,
    evaluation_plots,
    log_dataset_inputs,
)


@step(experiment_tracker=TRACKER_NAME, enable_cache=False)
def evaluate_model(
    sft_result: SFTResult, val_file: str, config: EvalConfig, eval_split: str = "val",
    registered_model_name: str | None = None,
) -> Annotated[AdapterEval, "evaluation"]:
    """Score base and tuned model on the same examples; perplexity on general text.

    Args:
        sft_result: The training result (adapter folder).
        val_file: Held-out examples with reference answers (the test split when there is one).
        config: Generation and forgetting-probe settings.
        eval_split: Which split `val_file` is.
        registered_model_name: Its champion is re-scored on the same examples.

    Returns:
        The evaluation.
    """
    evaluation = evaluate_adapter(Path(sft_result.output_dir), Path(val_file), config,
                                  eval_split=eval_split,
                                  registered_model_name=registered_model_name)
    log_dataset_inputs({"evaluation": Path(val_file)})
    log_table("eval/sample_generations.json", evaluation.samples)
    plots = evaluation_plots(evaluation, Path(sft_result.output_dir) / "plots")
    log_eval_to_mlflow(evaluation, plots, stage="eval")
    metadata: dict[str, Any] = dict(evaluation.metrics())
    log_metadata(metadata=metadata)
    return evaluation
