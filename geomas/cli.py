"""The `geomas` command line. Command names of the original tool keep working."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from geomas.cli_retrain import retrain_app
from geomas.cli_stack import stack_app
from geomas.errors import GeomasError

app = typer.Typer(
    name="geomas",
    help="Domain documents -> instruction datasets -> QLoRA-tuned LLM, as ZenML pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Run a ZenML pipeline on the active stack.", no_args_is_help=True)
app.add_typer(run_app, name="run")
models_app = typer.Typer(help="Local model utilities (no downloads).", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(stack_app, name="stack")
app.add_typer(retrain_app, name="retrain")

console = Console(stderr=True)
out = Console()
_STATE: dict[str, Any] = {"verbose": False}

DEFAULT_DATA_DIR = Path(".geomas")

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="GEOMAS_DATA_DIR",
        help="Project data dir for the embedded stack (default .geomas, or the config's).",
    ),
]


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.INFO
    handler = RichHandler(console=console, show_path=verbose, show_time=False, markup=False)
    root = logging.getLogger("geomas")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("docling", "docling_core", "great_expectations", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs and full tracebacks.")
    ] = False,
) -> None:
    _STATE["verbose"] = verbose
    _setup_logging(verbose)
    if not verbose:  # transformers reads these when first imported (inside the commands)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _project(data_dir: Path | None) -> Path:
    """Activate the project data dir before anything imports ZenML."""
    from geomas.stack import activate_project

    return activate_project(data_dir or DEFAULT_DATA_DIR)


@app.command()
def init(data_dir: DataDirOpt = None) -> None:
    """Create the embedded stack (ZenML + MLflow on SQLite) in the project data dir."""
    from geomas.stack import ensure_experiment, ensure_local_stack

    path = _project(data_dir)
    info = ensure_local_stack(path)
    ensure_experiment("geomas", path)
    out.print(f"stack [bold]{info.stack_name}[/] is active")
    out.print(f"  ZenML config : {info.zenml_config_dir}")
    out.print(f"  MLflow       : {info.tracking_uri}")
    out.print(f"  created      : {', '.join(info.created) or 'nothing (already set up)'}")


@app.command("sample-corpus")
def sample_corpus(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write docs/ and annotations/ to.")],
    docs: Annotated[int, typer.Option("--docs", min=1, help="Number of reports.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 0,
    with_bad_files: Annotated[
        bool,
        typer.Option(
            "--with-bad-files", help="Add corrupt, encrypted, empty and non-document files."
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing corpus.")]
    = False,
) -> None:
    """Generate Russian geological deposit reports (PDF + DOCX) with gold entity annotations."""
    from geomas.sample import generate_sample_corpus

    corpus = generate_sample_corpus(
        out_dir, docs=docs, seed=seed, with_bad_files=with_bad_files, overwrite=overwrite
    )
    out.print(corpus.model_dump_json(indent=1))


@app.command()
def makedataset(
    source: Annotated[Path, typer.Argument(help="Folder of PDF/DOCX/HTML/Markdown files.")],
    output: Annotated[Path, typer.Argument(help="Output folder (chunks.json and more).")],
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML with an `ingest:` section or run config.")
    ] = None,
    pdf_parser: Annotated[
        str | None, typer.Option("--pdf-parser", help="auto | native | layout")
    ] = None,
    layout_artifacts: Annotated[
        Path | None, typer.Option("--layout-artifacts", help="docling layout weights folder.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Tokens per chunk.")]
    = None,
    tokenizer: Annotated[
        Path | None, typer.Option("--tokenizer", help="Local HF tokenizer folder for counting.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Parallel processes.")] = None,
    max_failure_ratio: Annotated[
        float | None,
        typer.Option("--max-failure-ratio", help="Exit non-zero above this reject share."),
    ] = None,
) -> None:
    """Parse documents into OUTPUT/chunks.json (rejects in OUTPUT/rejects.jsonl)."""
    from geomas.config import IngestConfig
    from geomas.ingest import ingest_folder

    base: dict[str, Any] = {}
    if config is not None:
        from geomas.config import load_yaml

        raw = load_yaml(config)
        base = dict(raw.get("ingest") or raw.get("data", {}).get("ingest") or {})
    overrides = {
        "pdf_parser": pdf_parser,
        "layout_artifacts_path": layout_artifacts,
        "max_tokens": max_tokens,
        "tokenizer": tokenizer,
        "workers": workers,
        "max_failure_ratio": max_failure_ratio,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    ingest_config = _validated(IngestConfig, base, "ingest options")
    summary = ingest_folder(source, output, ingest_config, progress=sys.stderr.isatty())
    _print_ingest(summary)


def _print_ingest(summary: Any) -> None:
    out.print(f"PDF parser   : {summary.pdf_parser}")
    out.print(
        f"files {summary.files}: parsed {summary.parsed}, cached {summary.cached}, "
        f"rejected {summary.rejected}, duplicates {summary.duplicates} -> {summary.chunks} chunks"
        f" in {summary.seconds:.1f}s"
    )
    for rule, n in sorted(summary.rejects_by_rule.items()):
        out.print(f"  rejected ({rule}): {n}", markup=False)
    out.print(f"chunks       : {summary.chunks_path}")
    out.print(f"documents    : {summary.manifest_path}")
    out.print(f"rejects      : {summary.rejects_path}")


def _validated(model: Any, data: dict[str, Any], what: str) -> Any:
    from pydantic import ValidationError

    from geomas.errors import ConfigError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}:\n{exc}") from exc


def _run_config(config: Path, data_dir: Path | None) -> Any:
    """Load a run config, apply --data-dir, and activate the project before ZenML loads."""
    from geomas.config import RunConfig, load_config

    run_config = load_config(config, RunConfig)
    if data_dir is not None:
        run_config = run_config.model_copy(
            update={"project": run_config.project.model_copy(update={"data_dir": data_dir})}
        )
    _project(run_config.project.data_dir)
    return run_config


@run_app.command("data")
def run_data(
    config: Annotated[Path, typer.Option("--config", help="Run config YAML (configs/local.yaml).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Run the data pipeline (ingest -> validate) on the embedded stack."""
    run_config = _run_config(config, data_dir)
    from geomas.runner import run_data_pipeline

    info = run_data_pipeline(run_config)
    summary_path = Path(info.output_dir) / "ingest_summary.json"
    out.print(f"pipeline run : {info.run_name} ({info.status})")
    experiment = run_config.project.experiment_name
    out.print(f"MLflow       : {info.tracking_uri} (experiment {experiment})")
    if summary_path.exists():
        from geomas.ingest import IngestSummary

        _print_ingest(IngestSummary.model_validate_json(summary_path.read_text("utf-8")))
    entities = Path(info.output_dir) / "entities.json"
    if entities.exists():
        from geomas.ner.extract import EntitySet

        ents = EntitySet.model_validate_json(entities.read_text("utf-8"))
        by_label = ", ".join(f"{k} {v}" for k, v in sorted(ents.counts.items()))
        out.print(f"entities     : {sum(ents.counts.values())} ({by_label or 'no model'}) "
                  f"-> {entities}", markup=False)
    for suite in ("validation", "validation_qa", "validation_examples"):
        report = Path(info.output_dir) / suite / "validation_summary.json"
        if report.exists():
            data = json.loads(report.read_text("utf-8"))
            out.print(f"{data['suite']:<17}: {'passed' if data['success'] else 'FAILED'} "
                      f"(report {data['report_path']})", markup=False)
    _print_stages(Path(info.output_dir))
    for path in sorted(Path(info.output_dir).glob(f"{run_config.data.dataset_name}_*.json*")):
        if "lineage" not in path.name:
            out.print(f"dataset      : {path}")


@run_app.command("training")
def run_training(
    config: Annotated[Path, typer.Option("--config", help="Run config YAML with `training:`.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Run the training pipeline: train -> evaluate -> register -> promote."""
    run_config = _run_config(config, data_dir)
    from geomas.runner import run_training_pipeline

    info = run_training_pipeline(run_config)
    out.print(f"pipeline run : {info.run_name} ({info.status})")
    assert run_config.training is not None
    name = run_config.training.registered_model_name
    import mlflow

    client = mlflow.MlflowClient(info.tracking_uri)
    versions = client.search_model_versions(f"name='{name}'")
    latest = max(versions, key=lambda v: int(v.version))
    tags = latest.tags
    out.print(f"registered   : {name} v{latest.version} -> "
              f"{tags.get('promotion_decision', '?')} ({tags.get('promotion_reason', '')})",
              markup=False)
    for alias in ("champion", "previous-champion", "challenger"):
        try:
            v = client.get_model_version_by_alias(name, alias)
            out.print(f"  @{alias:<17}: v{v.version}", markup=False)
        except Exception:  # noqa: BLE001 - alias not set
            continue
    out.print(f"adapter      : {info.output_dir}")


def _print_stages(output_dir: Path) -> None:
    from rich.table import Table

    from geomas.report import stage_counts

    table = Table(title="kept / rejected per stage")
    for col in ("stage", "kept", "rejected", "rejected by rule"):
        table.add_column(col)
    for st in stage_counts(output_dir):
        rules = ", ".join(f"{k} {v}" for k, v in sorted(st.by_rule.items()))
        table.add_row(st.stage, str(st.kept), str(st.rejected), rules)
    out.print(table)


@app.command("convert-annotations")
def convert_annotations_cmd(
    source: Annotated[Path, typer.Argument(help="Label Studio JSON export (file or folder).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for bert_training_data.json.")],
    labels: Annotated[
        str | None, typer.Option("--labels", help="Comma-separated label set (default: 17 geo).")
    ] = None,
    label_map: Annotated[
        Path | None, typer.Option("--label-map", help="JSON {old_label: new_label}.")
    ] = None,
    unit: Annotated[str, typer.Option("--unit", help="sentence | task")] = "sentence",
) -> None:
    """Convert Label Studio annotations to BIO training data (with an alignment report)."""
    from geomas.ner.annotations import convert_annotations

    mapping = None
    if label_map is not None:
        from geomas.errors import ConfigError

        try:
            mapping = json.loads(label_map.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--label-map {label_map}: {exc}") from exc
    label_set = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
    if unit not in ("sentence", "task"):
        from geomas.errors import ConfigError

        raise ConfigError(f"--unit must be sentence or task, got {unit!r}")
    report = convert_annotations(
        source, out_dir, labels=label_set, label_map=mapping,
        unit="sentence" if unit == "sentence" else "task",
    )
    out.print(report.model_dump_json(indent=1))


@app.command("train-bert-ner")
def train_bert_ner(
    data: Annotated[Path, typer.Argument(help="bert_training_data.json or its folder.")],
    model_name: Annotated[
        str, typer.Option("--model-name", help="Local BERT-like model folder (or cached hub id).")
    ],
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where the model is saved.")],
    epochs: Annotated[int, typer.Option("--epochs")] = 30,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 2e-5,
    max_length: Annotated[int, typer.Option("--max-length")] = 256,
    patience: Annotated[int, typer.Option("--patience", help="Early-stopping epochs.")] = 3,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    register: Annotated[
        bool, typer.Option("--register/--no-register", help="Log to MLflow, register geomas-ner.")
    ] = True,
    data_dir: DataDirOpt = None,
) -> None:
    """Train a BERT token classifier (17 geological entity types) from BIO data."""
    from geomas.config import NerTrainConfig
    from geomas.ner.train import train_and_log

    cfg = _validated(
        NerTrainConfig,
        {"model_name": model_name, "output_dir": output_dir, "epochs": epochs,
         "batch_size": batch_size, "learning_rate": learning_rate, "max_length": max_length,
         "early_stopping_patience": patience, "seed": seed, "register_model": register},
        "train-bert-ner options",
    )
    path = _project(data_dir)
    result = train_and_log(data, cfg, data_dir=path, progress=sys.stderr.isatty())
    from rich.table import Table

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
    out.print(f"model        : {result.output_dir}")
    if result.registered_version:
        out.print(f"registered   : geomas-ner version {result.registered_version} "
                  f"(MLflow run {result.mlflow_run_id})")


@app.command("extract-entities")
def extract_entities_cmd(
    model: Annotated[Path, typer.Argument(help="Trained NER model folder.")],
    input_file: Annotated[
        Path | None,
        typer.Option("--input-file", help="Text file, or chunks.json (one result per chunk)."),
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Text to analyse.")] = None,
    output_file: Annotated[Path | None, typer.Option("--output-file", help="entities.json")]
    = None,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 16,
) -> None:
    """Extract geological entities from a text, a text file or chunks.json."""
    from geomas.errors import InputError
    from geomas.ner.inference import load_bert_ner_model, write_entities

    if (input_file is None) == (text is None):
        raise InputError("give exactly one of --input-file or --text")
    ner = load_bert_ner_model(model, batch_size=batch_size)
    ids: list[str] | None = None
    if text is not None:
        texts = [text]
    else:
        assert input_file is not None
        if not input_file.is_file():
            raise InputError(f"input file {input_file} does not exist")
        if input_file.suffix == ".json":
            from geomas.ingest import load_chunks

            chunks = load_chunks(input_file)
            texts = [c["text"] for c in chunks]
            ids = [c.get("chunk_id", str(i)) for i, c in enumerate(chunks)]
        else:
            texts = [input_file.read_text(encoding="utf-8")]
    results = ner.extract_batch(texts, progress=sys.stderr.isatty())
    if output_file is not None:
        write_entities(results, output_file, ids)
        n = sum(len(r.entities) for r in results)
        out.print(f"{n} entities from {len(texts)} texts -> {output_file}")
    else:
        for r in results:
            for e in r.entities:
                out.print(f"{e.label}: {e.text} (confidence: {e.confidence:.3f})", markup=False)


@app.command("generate-qa-pairs")
def generate_qa_pairs_cmd(
    chunks: Annotated[Path, typer.Argument(help="chunks.json from makedataset.")],
    ner_model: Annotated[Path, typer.Argument(help="Trained NER model folder.")],
    output: Annotated[Path, typer.Argument(help="qa_pairs.json to write.")],
    num_pairs: Annotated[int | None, typer.Option("--num-pairs", help="Most pairs per chunk.")]
    = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML with a `qa:` section (or run config).")
    ] = None,
) -> None:
    """Synthesise Russian QA pairs from the entities in each chunk (original command)."""
    from geomas.config import QAConfig
    from geomas.qa import generate_qa_pairs

    qa_cfg = QAConfig()
    if config is not None:
        from geomas.config import load_yaml

        raw = load_yaml(config)
        qa_cfg = _validated(QAConfig, dict(raw.get("qa") or raw.get("data", {}).get("qa") or {}),
                            "qa config")
    summary = generate_qa_pairs(chunks, ner_model, output, num_pairs, qa_cfg,
                                progress=sys.stderr.isatty())
    out.print(f"{summary.pairs} QA pairs from {summary.chunks} chunks -> {summary.out_path}")
    for rule, n in summary.rejects_by_rule.items():
        out.print(f"  rejected ({rule}): {n}", markup=False)
    out.print(f"rejects      : {summary.rejects_path}")


@app.command("clean-dataset")
def clean_dataset_cmd(
    source: Annotated[Path, typer.Argument(help="Dataset JSON/JSONL (any supported format).")],
    output: Annotated[Path, typer.Argument(help="Cleaned dataset (.json or .jsonl).")],
    profile: Annotated[str, typer.Option("--profile", help="geology | legal | generic")]
    = "geology",
) -> None:
    """Normalise, filter and deduplicate a dataset; rejects and a per-rule report beside it."""
    from geomas.clean import clean_dataset
    from geomas.errors import ConfigError
    from geomas.formats import read_examples

    if profile not in ("geology", "legal", "generic"):
        raise ConfigError(f"--profile must be geology, legal or generic, got {profile!r}")
    report = clean_dataset(source, output, profile, reader=read_examples)  # type: ignore[arg-type]
    out.print(f"kept {report.kept} of {report.records_in} -> {report.output_path}")
    for rule, n in report.counts.items():
        if n:
            out.print(f"  {rule}: {n}", markup=False)
    out.print(f"rejects      : {report.rejects_path}")
    out.print(f"report       : {report.report_path}")


@app.command("merge-datasets")
def merge_datasets_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="Input files, then the output file.")],
) -> None:
    """Merge JSON/JSONL datasets keeping provenance (source file, provider, mode, timestamp)."""
    from geomas.clean import merge_datasets
    from geomas.errors import InputError

    if len(inputs) < 2:
        raise InputError("give at least one input file and the output file")
    # the cleaning package's reader keeps the legal tool's `metadata` (provider, mode,
    # timestamp, version) as provenance; geomas.formats' reader does not carry it
    report = merge_datasets(inputs[:-1], inputs[-1])
    out.print(report.model_dump_json(indent=1))


@app.command("format-instruct-dataset")
def format_instruct_dataset_cmd(
    qa: Annotated[Path, typer.Argument(help="qa_pairs.json (or any dataset file).")],
    output: Annotated[Path, typer.Argument(help="OUT.json -> OUT_train.json, OUT_val.json.")],
    format_type: Annotated[
        str | None,
        typer.Option("--format-type",
                     help="alpaca|messages|sharegpt|prompt-completion|text|vertex|classification"),
    ] = None,
    split_ratio: Annotated[float | None, typer.Option("--split-ratio", help="Train share.")]
    = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="JSON Lines output.")] = False,
    system_prompt: Annotated[str | None, typer.Option("--system-prompt")] = None,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
) -> None:
    """Write instruction datasets (train/val) from QA pairs, like the original tool."""
    from geomas.formats.instruct import format_instruct_dataset

    report = format_instruct_dataset(
        qa, output, format_type=format_type, split_ratio=split_ratio,  # type: ignore[arg-type]
        jsonl=jsonl or None, system_prompt=system_prompt, seed=seed,
    )
    for name, n in report.records.items():
        out.print(f"{name:<6}: {n} records -> {report.files[name]}")
    if report.n_rejected:
        out.print(f"rejected: {report.n_rejected} -> {report.files['rejects']}")


@app.command("validate-dataset")
def validate_dataset_cmd(
    path: Annotated[Path, typer.Argument(help="Dataset JSON/JSONL file.")],
) -> None:
    """Check a dataset file: JSON vs JSONL, UTF-8, field consistency, empty fields."""
    from geomas.errors import InputError
    from geomas.formats.validate import validate_dataset

    report = validate_dataset(path)
    for problem in report.issues:
        out.print(str(problem), markup=False)
    if not report.valid:
        raise InputError(f"{path}: {len(report.errors)} errors")
    out.print(f"{path}: valid ({report.records} records, format {report.format_type})")


@app.command("train-sft")
def train_sft_cmd(
    model: Annotated[str, typer.Argument(help="Alias from configs/models.yaml or a model folder.")],
    dataset: Annotated[Path, typer.Argument(help="Training file (instruct_dataset_train.json).")],
    tag: Annotated[str | None, typer.Option("--tag", help="Run tag (names the output folder).")]
    = None,
    max_seq_length: Annotated[
        int | None, typer.Option("--max-seq-length", help="Tokens per training sequence.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="YAML/JSON training config (the legal guide's "
                     "{training_args, lora_config} shape works)."),
    ] = None,
    method: Annotated[str | None, typer.Option("--method", help="full | lora | qlora")] = None,
    output_dir: Annotated[Path | None, typer.Option("--output-dir")] = None,
    eval_dataset: Annotated[Path | None, typer.Option("--eval-dataset")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint.")]
    = False,
) -> None:
    """Fine-tune an LLM on an instruction dataset (loss on the answers only)."""
    from geomas.config import TrainSFTConfig
    from geomas.train import load_sft_config, resolve_model, train_sft

    resolved = resolve_model(model)
    config_path = config or resolved.config_path
    cfg = load_sft_config(config_path) if config_path else TrainSFTConfig()
    updates = {k: v for k, v in {"tag": tag, "max_length": max_seq_length,
                                 "method": method}.items() if v is not None}
    if updates:
        cfg = _validated(TrainSFTConfig, {**cfg.model_dump(), **updates}, "train-sft options")
    result = train_sft(model, dataset, cfg, output_dir=output_dir, resume=resume,
                       eval_dataset=eval_dataset)
    out.print(f"trained      : {result.global_step} steps, {result.epochs:.2f} epochs, "
              f"{result.tokens_per_second:.0f} tokens/s, peak memory "
              f"{result.peak_memory_bytes / 2**20:.0f} MiB ({result.memory_kind})")
    if result.eval_loss:
        out.print(f"eval loss    : {result.eval_loss[-1][1]:.4f}")
    out.print(f"output       : {result.output_dir}")


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
    method: Annotated[str | None, typer.Option("--method", help="full | lora | qlora")] = None,
    loss: Annotated[str | None, typer.Option("--loss", help="ce | weighted_ce | focal")] = None,
    focal_gamma: Annotated[float | None, typer.Option("--focal-gamma")] = None,
    weighted_sampler: Annotated[
        bool | None, typer.Option("--weighted-sampler/--no-weighted-sampler")
    ] = None,
    epochs: Annotated[float | None, typer.Option("--epochs")] = None,
    register: Annotated[
        bool, typer.Option("--register/--no-register",
                           help="Register in MLflow (geomas-cls, alias challenger) and run the "
                                "F1-macro champion gate.")
    ] = False,
    registered_model_name: Annotated[str, typer.Option("--registered-model-name")] = "geomas-cls",
    data_dir: DataDirOpt = None,
) -> None:
    """Sequence classification under class imbalance (focal loss, class weights, sampler)."""
    from geomas.config import TrainClassifierConfig, load_config
    from geomas.train import resolve_model
    from geomas.train.classify import train_classifier

    cfg = load_config(config, TrainClassifierConfig) if config else TrainClassifierConfig()
    updates = {k: v for k, v in {"method": method, "loss": loss, "focal_gamma": focal_gamma,
                                 "weighted_sampler": weighted_sampler,
                                 "epochs": epochs}.items() if v is not None}
    if updates:
        cfg = _validated(TrainClassifierConfig, {**cfg.model_dump(), **updates},
                         "train-classifier options")
    base = resolve_model(model).path
    result = train_classifier(base, train_file, val_file, cfg, output_dir)
    out.print(f"trained      : {result.global_step} steps, {result.epochs:.2f} epochs, "
              f"{result.seconds:.0f} s")
    out.print(f"validation   : F1-macro {result.macro_f1:.3f}, weighted F1 "
              f"{result.weighted_f1:.3f}, accuracy {result.accuracy:.3f}")
    for label, f1 in result.per_class_f1.items():
        out.print(f"  {label:<24} F1 {f1:.3f}", markup=False)
    out.print(f"output       : {result.output_dir}")
    if register:
        from geomas.registry.mlflow_models import mlflow_run
        from geomas.train.classify import register_classifier

        with mlflow_run(_project(data_dir), "geomas-classifier",
                        f"train-classifier-{output_dir.name}"):
            decision = register_classifier(result, base_model_path=base, train_file=train_file,
                                           val_file=val_file, config=cfg,
                                           registered_model_name=registered_model_name)
        out.print(f"registered   : {decision.model_name} v{decision.version} -> "
                  f"{decision.decision} ({decision.reason})", markup=False)


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if it is unsafe.")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Make a registered version the champion (refuses an unsafe move without --force)."""
    decision = _registry_call("promote", name, version, force, data_dir)
    out.print(f"{name} v{decision.version}: {decision.decision} ({decision.reason})",
              markup=False)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    force: Annotated[bool, typer.Option("--force")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Restore the previous champion."""
    decision = _registry_call("rollback", name, None, force, data_dir)
    out.print(f"{name} v{decision.version}: {decision.decision} ({decision.reason})",
              markup=False)


def _registry_call(
    action: str, name: str, version: str | None, force: bool, data_dir: Path | None
) -> Any:
    import mlflow

    from geomas.registry import promotion
    from geomas.stack import mlflow_paths

    uri, _ = mlflow_paths(_project(data_dir))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if action == "promote":
        assert version is not None
        decision = promotion.promote(name, version, force=force)
    else:
        decision = promotion.rollback(name, force=force)
    promotion.sync_zenml_stages(name)
    return decision


@models_app.command("make-tiny")
def make_tiny_cmd(
    kind: Annotated[str, typer.Argument(help="ner | lm")],
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
    from geomas.errors import InputError
    from geomas.models import make_tiny

    if kind not in ("ner", "lm"):
        raise InputError(f"kind must be ner or lm, got {kind!r}")
    path = make_tiny("ner" if kind == "ner" else "lm", out_dir, corpus_dir=corpus, seed=seed,
                     overwrite=overwrite, pretrain_steps=pretrain_steps)
    out.print(f"tiny {kind} model -> {path}")


def main() -> None:
    """Console-script entry point: one red line on a geomas error, traceback with -v."""
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    try:
        app()
    except GeomasError as exc:
        if _STATE["verbose"]:
            console.print_exception()
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
