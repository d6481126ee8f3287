"""Train a token-classification NER model from geomas BIO data (`geomas train-bert-ner`).

Sub-word labels: the first sub-token of each word carries the word's tag, the others -100.
Records longer than `max_length` sub-tokens are split into overlapping windows. Documents are
never split across train / validation / test: a record's `split` field (from the sample corpus
or the annotation tool) decides test membership, and validation documents for early stopping
are drawn from the training documents by seed.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from geomas.config import NerTrainConfig
from geomas.errors import ConfigError, InputError
from geomas.io import write_json
from geomas.ner.shift import measure_profile

log = logging.getLogger(__name__)

DATA_FILE = "bert_training_data.json"
EVAL_FILE = "evaluation_results.json"
LABELS_FILE = "label_map.json"


class NerTrainResult(BaseModel):
    """What training produced."""

    output_dir: str
    micro_precision: float
    micro_recall: float
    micro_f1: float
    per_type: dict[str, dict[str, float]]
    eval_split: str
    n_train: int
    n_val: int
    n_test: int
    epochs_run: float
    mlflow_run_id: str | None = None
    registered_version: str | None = None


def resolve_model_path(name: str) -> Path:
    """A local folder, or a hub id already in the local Hugging Face cache; never downloads.

    Raises:
        ConfigError: neither; the message says how to provide the weights.
    """
    from geomas.train.resolve import resolve_model

    return resolve_model(name, models_file=None).path


def load_bio_data(source: Path) -> dict[str, Any]:
    """Read bert_training_data.json (a file, or a folder that holds it).

    Raises:
        InputError: missing file or wrong format.
    """
    path = Path(source)
    if path.is_dir():
        path = path / DATA_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(
            f"{path} does not exist; create it with `geomas convert-annotations`"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or "records" not in data or "label_list" not in data:
        raise InputError(f"{path} is not geomas BIO data (needs label_list and records)")
    labels = set(data["label_list"])
    for k, rec in enumerate(data["records"]):
        if len(rec.get("tokens", [])) != len(rec.get("ner_tags", [])):
            raise InputError(f"{path}: record {k} has {len(rec.get('tokens', []))} tokens but "
                             f"{len(rec.get('ner_tags', []))} tags")
        unknown = set(rec["ner_tags"]) - labels
        if unknown:
            raise InputError(f"{path}: record {k} uses tags not in label_list: {sorted(unknown)}")
    return data


def split_records(
    records: Sequence[dict[str, Any]], val_share: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Split into train / val / test by document; never one document in two splits."""

    def doc_of(r: dict[str, Any]) -> str:
        return str(r.get("doc_name") or r.get("task_id") or r.get("id"))

    test = [r for r in records if r.get("split") == "test"]
    pool = [r for r in records if r.get("split") != "test"]
    docs = sorted({doc_of(r) for r in pool})
    rng = random.Random(seed)
    rng.shuffle(docs)
    if not test:  # no split in the data: hold out documents for the test set as well
        n_test = max(1, round(len(docs) * val_share)) if len(docs) >= 3 else 0
        test_docs = set(docs[:n_test])
        docs = docs[n_test:]
        test = [r for r in pool if doc_of(r) in test_docs]
        pool = [r for r in pool if doc_of(r) not in test_docs]
    n_val = max(1, round(len(docs) * val_share)) if len(docs) >= 2 else 0
    val_docs = set(docs[:n_val])
    train = [r for r in pool if doc_of(r) not in val_docs]
    val = [r for r in pool if doc_of(r) in val_docs]
    if not train:
        raise InputError("no training records left after holding out validation documents")
    return train, val, test


def _encode(
    records: Sequence[dict[str, Any]], tokenizer: Any, label2id: dict[str, int],
    max_length: int, stride: int,
) -> list[dict[str, list[int]]]:
    """Tokenise word lists into windows with first-sub-token labels (others -100)."""
    if not records:
        return []
    enc = tokenizer(
        [r["tokens"] for r in records],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
    )
    features = []
    for j in range(len(enc["input_ids"])):
        rec = records[enc["overflow_to_sample_mapping"][j]]
        word_ids = enc.word_ids(j)
        labels = [-100 if wid is None or (k and word_ids[k - 1] == wid)
                  else label2id[rec["ner_tags"][wid]] for k, wid in enumerate(word_ids)]
        # a word that starts in the previous window's overlap was already labelled there;
        # labelling it again is harmless, so windows keep all their first sub-tokens.
        features.append({"input_ids": enc["input_ids"][j],
                         "attention_mask": enc["attention_mask"][j], "labels": labels})
    return features


def seqeval_scores(true_tags: list[list[str]], pred_tags: list[list[str]]) -> dict[str, Any]:
    """Entity-level micro P/R/F1 and per-type scores (seqeval, strict IOB2)."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    kwargs: dict[str, Any] = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    report = classification_report(true_tags, pred_tags, output_dict=True, **kwargs)
    per_type = {
        k: {"precision": float(v["precision"]), "recall": float(v["recall"]),
            "f1": float(v["f1-score"]), "support": float(v["support"])}
        for k, v in report.items() if not k.endswith("avg")
    }
    return {
        "precision": float(precision_score(true_tags, pred_tags, **kwargs)),
        "recall": float(recall_score(true_tags, pred_tags, **kwargs)),
        "f1": float(f1_score(true_tags, pred_tags, **kwargs)),
        "per_type": per_type,
    }


def _to_tags(predictions: Any, label_ids: Any, id2label: dict[int, str]) -> tuple[
    list[list[str]], list[list[str]]
]:
    import numpy as np

    preds = np.argmax(predictions, axis=-1)
    keep = [row != -100 for row in label_ids]
    true_seqs = [[id2label[int(i)] for i in row[k]] for row, k in zip(label_ids, keep, strict=True)]
    pred_seqs = [[id2label[int(i)] for i in row[k]] for row, k in zip(preds, keep, strict=True)]
    return true_seqs, pred_seqs


def train_ner(data_path: Path, config: NerTrainConfig, *, progress: bool = True) -> NerTrainResult:
    """Fine-tune a token classifier on BIO data; save model, tokenizer, label map, metrics.

    Raises:
        InputError: bad training data.
        ConfigError: the base model cannot be found offline.
    """
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from geomas.train.callbacks import training_progress

    data = load_bio_data(data_path)
    label_list: list[str] = list(data["label_list"])
    label2id = {label: i for i, label in enumerate(label_list)}
    id2label = dict(enumerate(label_list))
    train_recs, val_recs, test_recs = split_records(
        data["records"], config.val_share, config.seed
    )
    base = resolve_model_path(config.model_name)
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    if not tokenizer.is_fast:
        raise ConfigError(f"{base}: a fast tokenizer (tokenizer.json) is needed for word alignment")
    model = AutoModelForTokenClassification.from_pretrained(
        str(base), num_labels=len(label_list), id2label=id2label, label2id=label2id,
        local_files_only=True, ignore_mismatched_sizes=True,
    )
    enc = {
        name: _encode(recs, tokenizer, label2id, config.max_length, config.stride)
        for name, recs in (("train", train_recs), ("val", val_recs), ("test", test_recs))
    }
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    def compute_metrics(pred: Any) -> dict[str, float]:
        t, p = _to_tags(pred.predictions, pred.label_ids, id2label)
        s = seqeval_scores(t, p)
        return {"precision": s["precision"], "recall": s["recall"], "f1": s["f1"]}

    has_val = bool(enc["val"])
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(config.batch_size, 16),
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        eval_strategy="epoch" if has_val else "no",
        save_strategy="epoch" if has_val else "no",
        load_best_model_at_end=has_val,
        metric_for_best_model="f1",
        greater_is_better=True,
        save_total_limit=2,
        logging_strategy="epoch",
        report_to="none",
        seed=config.seed,
        disable_tqdm=not progress,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(enc["train"]),
        eval_dataset=Dataset.from_list(enc["val"]) if has_val else None,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[EarlyStoppingCallback(config.early_stopping_patience)] if has_val else [],
    )
    with training_progress(trainer, "ner-train", bar=progress):
        train_out = trainer.train()
    eval_name = "test" if enc["test"] else "val"
    eval_set = enc[eval_name] or enc["train"]
    pred = trainer.predict(Dataset.from_list(eval_set))
    t, p = _to_tags(pred.predictions, pred.label_ids, id2label)
    scores = seqeval_scores(t, p)

    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    import shutil

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    write_json(out / LABELS_FILE, {"label_list": label_list,
                                   "entity_types": data.get("entity_types")}, indent=1, end="")
    history = [h for h in trainer.state.log_history if "eval_f1" in h]
    result = NerTrainResult(
        output_dir=str(out),
        micro_precision=scores["precision"],
        micro_recall=scores["recall"],
        micro_f1=scores["f1"],
        per_type=scores["per_type"],
        eval_split=eval_name,
        n_train=len(train_recs),
        n_val=len(val_recs),
        n_test=len(test_recs),
        epochs_run=float(trainer.state.epoch or 0.0),
    )
    write_json(out / EVAL_FILE, {**result.model_dump(), "train_loss": train_out.training_loss,
                                 "val_history": history, "base_model": str(base),
                                 "config": config.model_dump(mode="json")}, indent=1, end="")
    # the model's own entity density in domain: the reference QA checks documents against
    held_out = {"test": test_recs, "val": val_recs}.get(eval_name) or train_recs
    texts = [str(r.get("text") or " ".join(r["tokens"])) for r in held_out]
    gold = sum(1 for r in held_out for tag in r["ner_tags"] if str(tag).startswith("B-"))
    measure_profile(out, texts, gold, reference=f"model predictions on the {len(texts)} "
                    f"held-out {eval_name if held_out is not train_recs else 'train'} records",
                    max_length=config.max_length, stride=config.stride)
    return result


def train_and_log(
    data_path: Path,
    config: NerTrainConfig,
    *,
    data_dir: Path,
    experiment: str = "geomas",
    progress: bool = True,
) -> NerTrainResult:
    """Train, then log params/metrics/artifacts to MLflow and register `geomas-ner`.

    Uses the active MLflow run inside a pipeline step, else a run on the embedded store.
    """
    if not config.register_model:
        return train_ner(data_path, config, progress=progress)
    import mlflow

    from geomas.registry.mlflow_models import log_and_register
    from geomas.tracking import mlflow_run

    with mlflow_run(data_dir, experiment, "train-bert-ner") as run:
        params = json.loads(config.model_dump_json())
        mlflow.log_params({f"ner.{k}": str(v) for k, v in params.items()})
        result = train_ner(data_path, config, progress=progress)
        metrics = {
            "ner.micro_precision": result.micro_precision,
            "ner.micro_recall": result.micro_recall,
            "ner.micro_f1": result.micro_f1,
        }
        metrics.update({f"ner.f1.{k}": v["f1"] for k, v in result.per_type.items()})
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(Path(result.output_dir) / EVAL_FILE), artifact_path="ner")
        version = log_and_register(
            Path(result.output_dir),
            artifact_name="ner_model",
            registered_model_name=config.registered_model_name,
            kind="ner",
            tags={"base_model": config.model_name, "micro_f1": f"{result.micro_f1:.4f}",
                  "eval_split": result.eval_split},
        )
        return result.model_copy(
            update={"mlflow_run_id": run.info.run_id, "registered_version": version}
        )
