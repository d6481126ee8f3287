"""Sequence classification (full, LoRA, QLoRA) under heavy class imbalance.

`train_classifier` puts a classification head on a local causal LM
(``AutoModelForSequenceClassification``), trains it on ``classification``-format files
(``{"text", "label"}`` records, JSON list or JSON Lines) and keeps the checkpoint with the best
validation F1-macro. Imbalance tools, per the class-balancing guide: class-weighted
cross-entropy (balanced weights ``w_i = n / (k * n_i)`` of the train split, saved to
``class_weights.json``), focal loss (optionally class-weighted) and a weighted random sampler.

Outputs in ``output_dir``: the adapter (or full model) with the head, the tokenizer,
``label_map.json``, ``class_weights.json``, ``evaluation_results.json`` (per-class P/R/F1,
macro/weighted F1, confusion matrix), ``confusion_matrix.png`` and ``training_config.json``;
checkpoints go to ``output_dir/checkpoints``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from geomas.config import PromotionConfig, TrainClassifierConfig, TrainSFTConfig
from geomas.errors import InputError
from geomas.io import load_records, write_json
from geomas.train.factories import (
    Device,
    compute_dtype,
    detect_device,
    get_peft_config,
    get_quantization_config,
    optimisation_args,
    resolve_precision,
)

if TYPE_CHECKING:
    import torch
    from torch.utils.data import WeightedRandomSampler

    from geomas.registry.promotion import PromotionDecision
logger = logging.getLogger(__name__)

LABEL_MAP_NAME = "label_map.json"
CLASS_WEIGHTS_NAME = "class_weights.json"
EVALUATION_NAME = "evaluation_results.json"
CONFUSION_PNG_NAME = "confusion_matrix.png"
TRAINING_CONFIG_NAME = "training_config.json"


class ClassifierResult(BaseModel):
    """What a finished classifier run produced and measured (on the validation file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_dir: Path
    labels: list[str]
    """Class names in head order (id i is labels[i])."""
    class_weights: dict[str, float]
    """Balanced weights of the train split (whether or not the loss used them)."""
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class_f1: dict[str, float]
    eval_f1_macro: list[tuple[int, float]]
    """(global step, validation F1-macro) per evaluation."""
    train_loss: list[tuple[int, float]]
    global_step: int
    epochs: float
    seconds: float
    best_checkpoint: str | None = None


# -- data -----------------------------------------------------------------------------------


def read_classification(path: Path) -> list[tuple[str, str]]:
    """``(text, label)`` pairs of a classification file (JSON list or JSON Lines).

    Integer labels are read as their decimal strings.

    Raises:
        InputError: Unreadable file, a record that is not an object with a string ``text``
            and a string/integer ``label``, or no records (messages name the line).
    """
    pairs: list[tuple[str, str]] = []
    for rec in load_records(path)[1]:
        label = rec.value.get("label") if isinstance(rec.value, dict) else None
        text = rec.value.get("text") if isinstance(rec.value, dict) else None
        if not isinstance(text, str) or isinstance(label, bool) or not isinstance(label, str | int):
            raise InputError(
                f"{path}: {rec.where()}: expected {{'text': str, 'label': str | int}} (the "
                "classification format)"
            )
        pairs.append((text, str(label)))
    if not pairs:
        raise InputError(f"{path} holds no records")
    return pairs


def balanced_class_weights(labels: Sequence[str]) -> dict[str, float]:
    """``w_i = n / (k * n_i)`` per class, sorted by label (as `geomas.split.class_weights`)."""
    counts = Counter(labels)
    n, k = sum(counts.values()), len(counts)
    return {label: n / (k * counts[label]) for label in sorted(counts)}


# -- losses and sampler ---------------------------------------------------------------------


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    gamma: float = 2.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean focal loss ``-w_y (1 - p_y)^gamma log p_y`` (Lin et al. 2017).

    Reduced like ``F.cross_entropy(weight=...)``: divided by the sum of the targets' weights, so
    ``gamma=0`` gives exactly the (weighted) cross-entropy.
    """
    import torch.nn.functional as F  # noqa: N812

    log_p = F.log_softmax(logits.float(), dim=-1)
    log_pt = log_p.gather(1, targets.unsqueeze(1)).squeeze(1)
    losses = -log_pt if gamma == 0 else -((1.0 - log_pt.exp()).clamp(min=0.0) ** gamma) * log_pt
    if weight is None:
        return losses.mean()
    w = weight.to(losses.device, losses.dtype)[targets]
    return (losses * w).sum() / w.sum()


def classification_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    config: TrainClassifierConfig,
    weight: torch.Tensor | None,
) -> torch.Tensor:
    """The configured loss of a batch; ``weight`` is the per-class weight vector."""
    import torch.nn.functional as F  # noqa: N812

    if config.loss == "focal":
        return focal_loss(logits, targets, gamma=config.focal_gamma,
                          weight=weight if config.focal_weighted else None)
    if config.loss == "weighted_ce":
        assert weight is not None
        return F.cross_entropy(logits.float(), targets, weight=weight.to(logits.device))
    return F.cross_entropy(logits.float(), targets)


def make_weighted_sampler(label_ids: Sequence[int], seed: int = 0) -> WeightedRandomSampler:
    """Draws ``len(label_ids)`` indices with replacement, each with probability ∝ 1 / n_class."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    counts = Counter(label_ids)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler([1.0 / counts[y] for y in label_ids], num_samples=len(label_ids),
                                 replacement=True, generator=generator)


def _trainer_class() -> Any:
    """The `Trainer` subclass (built lazily so importing this module stays light)."""
    from transformers import Trainer

    class ImbalanceTrainer(Trainer):
        """Trainer with the configured classification loss and an optional weighted sampler."""

        def __init__(
            self,
            *args: Any,
            loss_config: TrainClassifierConfig,
            class_weight: torch.Tensor,
            train_label_ids: list[int],
            **kwargs: Any,
        ) -> None:
            super().__init__(*args, **kwargs)
            self.loss_config = loss_config
            self.class_weight = class_weight
            self.train_label_ids = train_label_ids

        def compute_loss(
            self,
            model: torch.nn.Module,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: torch.Tensor | int | None = None,
        ) -> Any:
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = classification_loss(outputs.logits, labels, self.loss_config, self.class_weight)
            return (loss, outputs) if return_outputs else loss

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if self.loss_config.weighted_sampler:
                return make_weighted_sampler(self.train_label_ids, seed=self.args.seed)
            return super()._get_train_sampler(train_dataset)

    return ImbalanceTrainer


# -- model ----------------------------------------------------------------------------------


def _sft_view(config: TrainClassifierConfig) -> TrainSFTConfig:
    """The SFT config the shared factories read (method, quantization, LoRA, precision)."""
    return TrainSFTConfig(method=config.method, quantization=config.quantization,
                          lora=config.lora, precision=config.precision)


def build_classifier_model(
    model_path: Path,
    config: TrainClassifierConfig,
    device: Device,
    labels: list[str],
    tokenizer: Any,
) -> Any:
    """The model to train: head with ``len(labels)`` outputs, 4-bit base for qlora, LoRA."""
    import torch
    from transformers import AutoModelForSequenceClassification

    sft = _sft_view(config)
    quant = get_quantization_config(sft, device)
    kwargs: dict[str, Any] = {
        "local_files_only": True,
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
        "pad_token_id": tokenizer.pad_token_id,
    }
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": 0} if device == "cuda" else "cpu"
    elif config.method == "full" or device == "cpu":
        kwargs["dtype"] = torch.float32
    else:
        kwargs["dtype"] = compute_dtype(sft, device)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_path), **kwargs)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.use_cache = False
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lora = get_peft_config(sft)
    if lora is not None:
        from peft import TaskType, get_peft_model

        # SEQ_CLS makes PEFT train and save the new head ("score"/"classifier") in full.
        lora.task_type = TaskType.SEQ_CLS
        model = get_peft_model(model, lora)
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
    return model


# -- training -------------------------------------------------------------------------------


def _predicted_ids(predictions: Any) -> Any:
    """Argmax over the logits (the first output when the model returned several)."""
    import numpy as np

    return np.asarray(predictions[0] if isinstance(predictions, tuple) else predictions).argmax(-1)


def _f1_metrics(eval_pred: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    labels, preds = eval_pred.label_ids, _predicted_ids(eval_pred.predictions)
    return {
        "f1_macro": float(f1_score(labels, preds, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(labels, preds, average="weighted", zero_division=0)),
        "accuracy": float(accuracy_score(labels, preds)),
    }


def train_classifier(
    model_path: Path,
    train_file: Path,
    val_file: Path,
    config: TrainClassifierConfig,
    output_dir: Path,
) -> ClassifierResult:
    """Train a sequence classifier on ``train_file``, choosing the best epoch by val F1-macro.

    Args:
        model_path: Local model folder (a causal LM or encoder with a tokenizer).
        train_file: Classification-format training file (class weights come from it).
        val_file: Classification-format validation file; evaluated every epoch and scored at
            the end (every val label must occur in train).
        config: Method, quantization, LoRA, loss/sampler and optimisation settings.
        output_dir: Where the model, tokenizer, label map, weights and reports go.

    Returns:
        Validation scores of the kept model and the run's history.

    Raises:
        InputError: Unreadable data, fewer than two classes, or val labels unseen in train.
    """
    import torch
    from datasets import Dataset
    from transformers import (
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        TrainerCallback,
        TrainingArguments,
    )

    from geomas.evaluate.classification import class_report, confusion_matrix_plot
    from geomas.train.callbacks import training_progress

    out = Path(output_dir)
    train_pairs = read_classification(Path(train_file))
    val_pairs = read_classification(Path(val_file))
    labels = sorted({label for _, label in train_pairs})
    if len(labels) < 2:
        raise InputError(f"{train_file} has {len(labels)} class(es); a classifier needs two or "
                         "more")
    unseen = sorted({label for _, label in val_pairs} - set(labels))
    if unseen:
        raise InputError(
            f"{val_file} has labels {unseen} that {train_file} lacks; add training examples of "
            "them or drop them from validation"
        )
    label2id = {name: i for i, name in enumerate(labels)}
    weights = balanced_class_weights([label for _, label in train_pairs])

    device = detect_device()
    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = build_classifier_model(Path(model_path), config, device, labels, tokenizer)

    def encode(pairs: list[tuple[str, str]]) -> Dataset:
        enc = tokenizer([text for text, _ in pairs], truncation=True, max_length=config.max_length)
        return Dataset.from_dict({"input_ids": enc["input_ids"],
                                  "attention_mask": enc["attention_mask"],
                                  "labels": [label2id[label] for _, label in pairs]})

    train_ds, val_ds = encode(train_pairs), encode(val_pairs)
    precision = resolve_precision(_sft_view(config), device)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_eval_batch_size=config.per_device_train_batch_size,
        eval_strategy="epoch",
        save_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="f1_macro",
        greater_is_better=True,
        **optimisation_args(config, device=device, precision=precision),
    )
    callbacks: list[TrainerCallback] = []
    if config.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience,
                                               config.early_stopping_threshold))
    weight_tensor = torch.tensor([weights[name] for name in labels], dtype=torch.float32)
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=_f1_metrics,
        callbacks=callbacks,
        loss_config=config,
        class_weight=weight_tensor,
        train_label_ids=[label2id[label] for _, label in train_pairs],
    )
    started = time.perf_counter()
    with training_progress(trainer, "classifier"):
        trainer.train()
    seconds = time.perf_counter() - started

    out.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    write_json(out / LABEL_MAP_NAME, {"labels": labels, "label2id": label2id})
    write_json(out / CLASS_WEIGHTS_NAME, weights)

    pred_ids = _predicted_ids(trainer.predict(val_ds).predictions).tolist()
    y_true = [label for _, label in val_pairs]
    y_pred = [labels[i] for i in pred_ids]
    report = class_report(y_true, y_pred, labels)
    write_json(out / EVALUATION_NAME, report)
    confusion_matrix_plot(
        y_true, y_pred, out / CONFUSION_PNG_NAME, labels, title="Validation confusion matrix"
    )

    state = trainer.state
    result = ClassifierResult(
        output_dir=out,
        labels=labels,
        class_weights=weights,
        accuracy=report.accuracy,
        macro_f1=report.macro_f1,
        weighted_f1=report.weighted_f1,
        per_class_f1={name: s.f1 for name, s in report.per_class.items()},
        eval_f1_macro=[(int(h["step"]), float(h["eval_f1_macro"]))
                       for h in state.log_history if "eval_f1_macro" in h],
        train_loss=[(int(h["step"]), float(h["loss"])) for h in state.log_history if "loss" in h],
        global_step=state.global_step,
        epochs=float(state.epoch or 0.0),
        seconds=round(seconds, 3),
        best_checkpoint=state.best_model_checkpoint,
    )
    write_json(out / TRAINING_CONFIG_NAME, {
        "task": "sequence-classification",
        "model_path": str(model_path),
        "train_file": str(train_file),
        "val_file": str(val_file),
        "device": device,
        "precision": precision,
        "config": config.model_dump(mode="json"),
        "train_class_counts": dict(sorted(Counter(label for _, label in train_pairs).items())),
        "result": result.model_dump(mode="json"),
    })
    logger.info("Classifier done: %d steps, val F1-macro %.3f, saved to %s", result.global_step,
                result.macro_f1, out)
    return result


# -- registry -------------------------------------------------------------------------------


def register_classifier(
    result: ClassifierResult,
    *,
    base_model_path: Path,
    train_file: Path,
    val_file: Path,
    config: TrainClassifierConfig,
    registered_model_name: str = "geomas-cls",
    promotion: PromotionConfig | None = None,
) -> PromotionDecision:
    """Register a trained classifier (alias challenger) and run the champion gate on F1-macro.

    Logs into the active MLflow run. The version carries the dataset hashes and sizes, the base
    model and its fingerprint, the git sha and the loss as tags, and the validation scores as
    `metric.<name>` tags; it becomes champion when its `macro_f1` beats the champion's by the
    margin (there is no forgetting probe for classifiers).

    Raises:
        InputError: The run was a full fine-tune (no adapter folder to register).
    """
    from geomas.hashing import sha256_file
    from geomas.registry.adapters import CLS_MODEL_NAME, git_sha, log_adapter
    from geomas.registry.promotion import promote_if_better

    out = Path(result.output_dir)
    if config.method == "full":
        raise InputError(
            f"{out} holds a full fine-tune; registration stores adapters on a referenced base "
            "(method lora or qlora)"
        )
    record = json.loads((out / TRAINING_CONFIG_NAME).read_text("utf-8"))
    dtype = "float32" if record["device"] == "cpu" else str(
        compute_dtype(_sft_view(config), record["device"])
    ).removeprefix("torch.")
    counts = record["train_class_counts"]
    report = json.loads((out / EVALUATION_NAME).read_text("utf-8"))
    tags = {
        "dataset_sha256": sha256_file(Path(train_file)),
        "val_sha256": sha256_file(Path(val_file)),
        "train_size": sum(counts.values()),
        "val_size": report["support"],
        "git_sha": git_sha(Path(__file__).resolve().parent),
        "base_model": str(Path(base_model_path).resolve()),
        "method": config.method,
        "loss": config.loss,
        "labels": ",".join(result.labels),
    }
    version = log_adapter(
        out,
        base_model_path=Path(base_model_path),
        load_in_4bit=config.method == "qlora",
        compute_dtype=dtype,
        registered_model_name=registered_model_name or CLS_MODEL_NAME,
        tags=tags,
        task="sequence-classification",
    )
    from geomas.tracking import log_artifacts, log_stage_metrics

    log_stage_metrics("eval", {"macro_f1": result.macro_f1, "weighted_f1": result.weighted_f1,
                               "accuracy": result.accuracy})
    log_artifacts("eval", out / EVALUATION_NAME, out / CONFUSION_PNG_NAME,
                  out / CLASS_WEIGHTS_NAME)
    gate = promotion or PromotionConfig(metric="macro_f1", forgetting_metric=None)
    metrics = {"macro_f1": result.macro_f1, "weighted_f1": result.weighted_f1,
               "accuracy": result.accuracy}
    return promote_if_better(version.name, version.version, metrics, config=gate)
