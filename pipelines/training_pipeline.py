"""The training pipeline: train -> evaluate -> register -> promote."""

from __future__ import annotations

from zenml import pipeline

from geomas.config import EvalConfig, PromotionConfig, TrainSFTConfig
from steps.evaluate_model import evaluate_model
from steps.promote_model import promote_model
from steps.register_model import register_model
from steps.train_model import train_model


@pipeline(name="geomas_training")
def training_pipeline(
    model: str,
    train_file: str,
    val_file: str,
    output_dir: str,
    sft: TrainSFTConfig,
    evaluation: EvalConfig,
    promotion: PromotionConfig,
    registered_model_name: str = "geomas-sft",
    dataset_dir: str | None = None,
    test_file: str | None = None,
) -> None:
    """Fine-tune, evaluate against the base, register @challenger, promote through the gate.

    Args:
        model: Alias or local model folder.
        train_file: Train split.
        val_file: Val split: early stopping and the checkpoint choice.
        output_dir: Adapter output folder.
        sft: Training settings.
        evaluation: Evaluation settings.
        promotion: Gate settings.
        registered_model_name: MLflow registered model.
        dataset_dir: The data pipeline's output folder; its documents and QA pairs become the
            version's data watermark (what `geomas retrain check` compares against).
        test_file: Test split, which training never sees: the evaluation and the gate score on
            it (val when None).
    """
    result = train_model(model=model, train_file=train_file, val_file=val_file, config=sft,
                         output_dir=output_dir)
    scores = evaluate_model(sft_result=result, val_file=test_file or val_file, config=evaluation,
                            eval_split="test" if test_file else "val",
                            registered_model_name=registered_model_name)
    version = register_model(sft_result=result, evaluation=scores, train_file=train_file,
                             val_file=val_file, registered_model_name=registered_model_name,
                             dataset_dir=dataset_dir)
    promote_model(version=version, evaluation=scores,
                  registered_model_name=registered_model_name, config=promotion)
