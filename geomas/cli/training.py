"""Training commands: train-bert-ner, train-sft, train-classifier, models make-tiny."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from geomas.cli.app import (
    DataDirOpt,
    TrackingUriOpt,
    app,
    field_option,
    models_app,
    out,
    overrides,
    progress_enabled,
    project,
    validated,
)
from geomas.config import NerTrainConfig, TrainClassifierConfig, TrainSFTConfig


@app.command("train-bert-ner")
def train_bert_ner(
    data: Annotated[Path, typer.Argument(help="bert_training_data.json or its folder.")],
    model_name: Annotated[
        str, typer.Option("--model-name", help="Local BERT-like model folder (or cached hub id).")
    ],
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where the model is saved.")],
    epochs: field_option(NerTrainConfig, "epochs") = None,
    batch_size: field_option(NerTrainConfig, "batch_size") = None,
    learning_rate: field_option(NerTrainConfig, "learning_rate") = None,
    max_length: field_option(NerTrainConfig, "max_length") = None,
    patience: field_option(
        NerTrainConfig, "early_stopping_patience", "--patience") = None,
    seed: field_option(NerTrainConfig, "seed") = None,
    register: field_option(
        NerTrainConfig, "register_model", "--register/--no-register") = None,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Train a BERT token classifier (17 geological entity types) from BIO data."""
    from rich.table import Table

    from geomas.ner.train import train_and_log

    cfg = validated(NerTrainConfig, overrides(
        model_name=model_name, output_dir=output_dir, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, max_length=max_length, early_stopping_patience=patience,
        seed=seed, register_model=register,
    ), "train-bert-ner options")
    path = project(data_dir, tracking_uri)
    result = train_and_log(data, cfg, data_dir=path, progress=progress_enabled())
    n_eval = result.n_test if result.eval_split == "test" else result.n_val
    table = Table(title=f"entity-level scores on the {result.eval_split} set ({n_eval} records)")
    for col in ("type", "precision", "recall", "f1", "support"):
        table.add_column(col)
    for name, s in sorted(result.per_type.items()):
        table.add_row(name, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}",
                      str(int(s["support"])))
    out.print(table)
    out.print(f"micro precision {result.micro_precision:.4f}  recall {result.micro_recall:.4f}  "
              f"F1 {result.micro_f1:.4f}")
    out.print(f"model        : {result.output_dir}", markup=False)
    if result.registered_version:
        out.print(f"registered   : geomas-ner version {result.registered_version} "
                  f"(MLflow run {result.mlflow_run_id})")


@app.command("train-sft")
def train_sft_cmd(
    model: Annotated[str, typer.Argument(help="Alias from configs/models.yaml or a model folder.")],
    dataset: Annotated[Path, typer.Argument(help="Training file (instruct_dataset_train.json).")],
    tag: field_option(TrainSFTConfig, "tag") = None,
    max_seq_length: field_option(
        TrainSFTConfig, "max_length", "--max-seq-length") = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML/JSON training config (the legal guide's "
                     "{training_args, lora_config} shape works)."),
    ] = None,
    method: field_option(TrainSFTConfig, "method") = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir")] = None,
    eval_dataset: Annotated[Path | None, typer.Option("--eval-dataset")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")]
    = False,
) -> None:
    """Fine-tune an LLM on an instruction dataset (loss on the answers only)."""
    from geomas.train import load_sft_config, resolve_model, train_sft

    resolved = resolve_model(model)
    config_path = config or resolved.config_path
    cfg = load_sft_config(config_path) if config_path else TrainSFTConfig()
    updates = overrides(tag=tag, max_length=max_seq_length, method=method)
    if updates:
        cfg = validated(TrainSFTConfig, {**cfg.model_dump(), **updates}, "train-sft options")
    result = train_sft(model, dataset, cfg, output_dir=output_dir, resume=resume,
                       eval_dataset=eval_dataset)
    out.print(f"trained      : {result.global_step} steps, {result.epochs:.2f} epochs, "
              f"{result.tokens_per_second:.0f} tokens/s, peak memory "
              f"{result.peak_memory_bytes / 2**20:.0f} MiB ({result.memory_kind})")
    if result.eval_loss:
        out.print(f"eval loss    : {result.eval_loss[-1][1]:.4f}")
    out.print(f"output       : {result.output_dir}", markup=False)


@app.command("train-classifier")
def train_classifier_cmd(
    model: Annotated[str, typer.Argument(help="Alias from configs/models.yaml or a model folder.")],
    train_file: Annotated[Path, typer.Argument(help="Train file: {text, label} records.")],
    val_file: Annotated[Path, typer.Argument(help="Validation file: {text, label} records.")],
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where the model and reports "
                                             "go.")] = Path("outputs/classifier"),
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML/JSON TrainClassifierConfig values.")
    ] = None,
    method: field_option(TrainClassifierConfig, "method") = None,
    loss: field_option(TrainClassifierConfig, "loss") = None,
    focal_gamma: field_option(TrainClassifierConfig, "focal_gamma") = None,
    weighted_sampler: field_option(
        TrainClassifierConfig, "weighted_sampler",
        "--weighted-sampler/--no-weighted-sampler") = None,
    epochs: field_option(TrainClassifierConfig, "num_train_epochs", "--epochs") = None,
    register: Annotated[
        bool, typer.Option("--register/--no-register",
                           help="Register in MLflow (geomas-cls, alias challenger) and run the "
                                "F1-macro champion gate.")
    ] = False,
    registered_model_name: Annotated[str, typer.Option("--registered-model-name")] = "geomas-cls",
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Sequence classification under class imbalance (focal loss, class weights, sampler)."""
    from geomas.config import load_config
    from geomas.train import resolve_model
    from geomas.train.classify import train_classifier

    cfg = load_config(config, TrainClassifierConfig) if config else TrainClassifierConfig()
    updates = overrides(method=method, loss=loss, focal_gamma=focal_gamma,
                        weighted_sampler=weighted_sampler,
                        num_train_epochs=epochs)
    if updates:
        cfg = validated(TrainClassifierConfig, {**cfg.model_dump(), **updates},
                        "train-classifier options")
    base = resolve_model(model).path
    result = train_classifier(base, train_file, val_file, cfg, output_dir)
    out.print(f"trained      : {result.global_step} steps, {result.epochs:.2f} epochs, "
              f"{result.seconds:.0f} s")
    out.print(f"validation   : F1-macro {result.macro_f1:.3f}, weighted F1 "
              f"{result.weighted_f1:.3f}, accuracy {result.accuracy:.3f}")
    for label, f1 in result.per_class_f1.items():
        out.print(f"  {label:<24} F1 {f1:.3f}", markup=False)
    out.print(f"output       : {result.output_dir}", markup=False)
    if register:
        from geomas.tracking import mlflow_run
        from geomas.train.classify import register_classifier

        with mlflow_run(project(data_dir, tracking_uri), "geomas-classifier",
                        f"train-classifier-{output_dir.name}"):
            decision = register_classifier(result, base_model_path=base, train_file=train_file,
                                           val_file=val_file, config=cfg,
                                           registered_model_name=registered_model_name)
        out.print(f"registered   : {decision.model_name} v{decision.version} -> "
                  f"{decision.decision} ({decision.reason})", markup=False)


@models_app.command("make-tiny")
def make_tiny_cmd(
    kind: Annotated[Literal["ner", "lm"], typer.Argument(help="ner | lm")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the model and tokenizer.")],
    corpus: Annotated[
        Path | None, typer.Option("--corpus", help="Sample corpus folder for the tokenizer.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    pretrain_steps: Annotated[
        int, typer.Option("--pretrain-steps", help="lm only: next-token steps on the corpus.")
    ] = 0,
) -> None:
    """Build a tiny offline model (BERT-like encoder or Llama-like LM) with its tokenizer."""
    from geomas.models import make_tiny

    path = make_tiny(kind, out_dir, corpus_dir=corpus, seed=seed, overwrite=overwrite,
                     pretrain_steps=pretrain_steps)
    out.print(f"tiny {kind} model -> {path}", markup=False)
