"""Train → evaluate → register → promote: the logic behind the training pipeline's steps."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from geomas.config import EvalConfig, PromotionConfig
from geomas.hashing import sha256_file
from geomas.train.sft import SFTResult

log = logging.getLogger(__name__)


class AdapterEval(BaseModel):
    """Base vs tuned answer scores on the held-out examples, and the forgetting probe."""

    adapter_dir: str
    base_model_path: str
    n_examples: int
    eval_split: str = Field(default="val", description="test: the held-out split the gate "
                            "judges on; val only when the dataset has no test split.")
    eval_file: str = ""
    prompt_style: str = Field(default="alpaca", description="The prompts the models answered: "
                              "the adapter's training style (alpaca text or chat_template).")
    example_ids: list[str] = Field(default_factory=list,
                                   description="Ids of the scored examples, in file order.")
    per_example: dict[str, dict[str, list[float]]] = Field(
        default_factory=dict,
        description="model (base, tuned, champion) -> metric -> score per example, in "
        "example_ids order: the promotion gate's paired comparison.")
    champion_version: str | None = Field(
        default=None, description="The registry champion re-scored on the same examples.")
    champion_problem: str | None = Field(
        default=None, description="Why the champion could not be re-scored (recorded).")
    base_files: dict[str, str] = Field(
        default_factory=dict, description="sha256 of the base model's files, hashed once per "
        "run: checked against the champion's base and recorded at registration.")
    samples: list[dict[str, Any]] = Field(
        default_factory=list, description="Prompt, reference and the answers of base, tuned "
        "and champion for the first EvalConfig.sample_generations examples.")
    base: dict[str, float]
    tuned: dict[str, float]
    base_perplexity: float
    tuned_perplexity: float
    perplexity_ratio: float

    def metrics(self) -> dict[str, float]:
        """Flat metrics for MLflow and the promotion gate (tuned scores unprefixed)."""
        out = {**self.tuned, "perplexity_ratio": self.perplexity_ratio}
        out.update({f"base_{k}": v for k, v in self.base.items()})
        return out


def hyperparameters(record: Mapping[str, Any]) -> dict[str, object]:
    """The resolved hyperparameters of a run (from training_config.json), for MLflow params."""
    cfg = record.get("config") or {}
    lora = record.get("lora") or {}
    batch = record.get("batch") or {}
    quant = record.get("quantization") or {}
    out: dict[str, object] = {
        "method": record.get("method") or cfg.get("method"),
        "learning_rate": cfg.get("learning_rate"),
        "num_train_epochs": cfg.get("num_train_epochs"),
        "max_length": cfg.get("max_length"),
        "lr_scheduler_type": cfg.get("lr_scheduler_type"),
        "warmup_ratio": cfg.get("warmup_ratio"),
        "weight_decay": cfg.get("weight_decay"),
        "seed": cfg.get("seed"),
        "lora_r": lora.get("r"),
        "lora_alpha": lora.get("lora_alpha"),
        "lora_dropout": lora.get("lora_dropout"),
        "per_device_train_batch_size": batch.get("per_device_train_batch_size"),
        "gradient_accumulation_steps": batch.get("gradient_accumulation_steps"),
        "effective_batch_size": batch.get("effective_batch_size"),
        "load_in_4bit": quant.get("load_in_4bit", False),
        "compute_dtype": quant.get("compute_dtype"),
    }
    return {k: v for k, v in out.items() if v is not None}


def sample_generations_rows(reports: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """Prompt, reference and each model's answer for the first `n` evaluated examples."""
    rows: list[dict[str, Any]] = []
    tuned = reports["tuned"].predictions[:n]
    for i, pred in enumerate(tuned):
        row: dict[str, Any] = {"id": pred.id, "prompt": pred.prompt,
                                  "reference": pred.reference}
        for model in ("base", "tuned", "champion"):
            report = reports.get(model)
            row[model] = report.predictions[i].prediction if report is not None else None
        rows.append(row)
    return rows


def log_dataset_inputs(files: Mapping[str, Path | str]) -> None:
    """Log dataset files as MLflow dataset inputs of the active run (context -> file).

    Each file becomes an MLflow dataset (ids, labels and groups of its examples; MLflow
    computes the digest) named by the file, with the file's sha256 as a tag, so the run's
    "Datasets" show what it trained, validated and was tested on.
    """
    import mlflow

    if mlflow.active_run() is None:
        return
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas

    from geomas.formats import read_examples

    for context, path in files.items():
        path = Path(path)
        rows = [{"id": e.id, "label": e.label, "group": e.group} for e in read_examples(path)]
        frame = pd.DataFrame(rows, columns=["id", "label", "group"])
        dataset = from_pandas(frame, source=str(path.resolve()), name=path.name)
        mlflow.log_input(dataset, context=context, tags={"sha256": sha256_file(path)})


def link_data_run(name: str, version: str, train_file: Path) -> str | None:
    """Tag the version with the data pipeline run that wrote its train file.

    ``data_pipeline_run_id`` is the ZenML run id from ``<name>_data_run.json`` when the train
    file is still the one that run wrote, else ``unknown`` (hand-made or changed files).
    """
    import mlflow

    from geomas.formats.instruct import data_run_of

    run = data_run_of(Path(train_file))
    mlflow.MlflowClient().set_model_version_tag(name, version, "data_pipeline_run_id",
                                                run or "unknown")
    return run


def training_record(adapter_dir: Path) -> dict[str, Any]:
    """The resolved training_config.json that train_sft wrote next to the adapter."""
    return dict(json.loads((Path(adapter_dir) / "training_config.json").read_text("utf-8")))


def base_of(record: dict[str, Any]) -> Path:
    """The base model folder recorded by training, made absolute."""
    path = Path(record["model"]["path"])
    return path if path.is_absolute() else (Path.cwd() / path).resolve()


def _per_example(report: Any) -> dict[str, list[float]]:
    from geomas.evaluate.metrics import METRIC_NAMES

    return {name: [float(getattr(p, name)) for p in report.predictions] for name in METRIC_NAMES}


def _champion_adapter(registered_model_name: str, base_path: Path,
                      base_files: Mapping[str, str]) -> tuple[str | None, Path | str]:
    """(champion version, its adapter folder) or (version or None, why it cannot be scored).

    The adapter files are downloaded from the version's artifacts and checked against its
    signed manifest (`geomas.registry.trust`); nothing is unpickled. The champion must have
    been trained on the same base model (same file digests).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from geomas.registry.adapters import BASE_SHA256_TAG, base_fingerprint
    from geomas.registry.promotion import CHAMPION, alias_version
    from geomas.registry.trust import UntrustedModel, download_verified

    try:
        version = alias_version(registered_model_name, CHAMPION)
    except MlflowException as exc:
        return None, f"the registry could not be read ({exc})"
    if version is None:
        return None, "no champion yet"
    client = mlflow.MlflowClient()
    tags = client.get_model_version(registered_model_name, version).tags
    want = tags.get(BASE_SHA256_TAG)
    if want != base_fingerprint(base_files):
        return version, (f"champion v{version} was trained on another base model "
                         f"({tags.get('base_model')}, sha256 {want}) than this run ({base_path}); "
                         "scores on different bases are not compared — promote by hand "
                         "(geomas promote --force --reason) if intended")
    try:
        manifest, folder = download_verified(f"models:/{registered_model_name}/{version}")
    except UntrustedModel as exc:
        return version, f"champion v{version} is not loaded: {exc}"
    if manifest.kind != "adapter" or manifest.settings.get("base_sha256") != want:
        return version, (f"champion v{version}'s signed files name another base or kind "
                         f"({manifest.kind}, base sha256 {manifest.settings.get('base_sha256')})"
                         f" than its tags ({want}); run `geomas models verify "
                         f"{registered_model_name}`")
    return version, folder


def evaluate_adapter(adapter_dir: Path, val_file: Path, config: EvalConfig,
                     eval_split: str = "val",
                     registered_model_name: str | None = None) -> AdapterEval:
    """Score the base and the tuned model on the same examples; run the forgetting probe.

    Args:
        adapter_dir: The trained adapter.
        val_file: The examples to score (the test split in the training pipeline).
        config: Generation and probe settings.
        eval_split: Which split `val_file` is, recorded with the scores.
        registered_model_name: When given, the registry's champion of that name is loaded as
            a second adapter on the same base and scored on the same examples (per-example
            scores for the paired gate); a champion on another base or that cannot be loaded
            is recorded in `champion_problem`.
    """
    from geomas.evaluate.forgetting import general_texts, perplexity, read_texts
    from geomas.evaluate.generation import evaluate_model, prompt_style_for
    from geomas.formats import read_examples
    from geomas.registry.adapters import (
        base_file_digests,
        load_base_and_adapter,
        trained_prompt_style,
    )

    if eval_split != "test":
        log.warning("the evaluation and the promotion gate score on the %s split (%s), which "
                    "early stopping already used; give training.test_file (the data pipeline "
                    "writes it when split.test_ratio > 0) for a fair gate", eval_split, val_file)
    record = training_record(adapter_dir)
    base_path = base_of(record)
    quant = record.get("quantization") or {}
    model, tokenizer = load_base_and_adapter(
        base_path, Path(adapter_dir), load_in_4bit=bool(quant.get("load_in_4bit")),
        compute_dtype=str(quant.get("compute_dtype") or "float32"),
    )
    examples = read_examples(Path(val_file))
    # the prompts the adapter was trained on (Alpaca text or chat template): base, tuned and
    # champion answer the same prompts
    style = trained_prompt_style(Path(adapter_dir)) or prompt_style_for(None, tokenizer)
    texts = read_texts(config.general_texts_path) if config.general_texts_path else (
        general_texts())
    tuned = evaluate_model(model, tokenizer, examples, config=config, prompt_style=style)
    tuned_ppl = perplexity(model, tokenizer, texts, config.perplexity_max_length,
                           config.batch_size)
    with model.disable_adapter():
        base = evaluate_model(model, tokenizer, examples, config=config, prompt_style=style)
        base_ppl = perplexity(model, tokenizer, texts, config.perplexity_max_length,
                              config.batch_size)
    per_example = {"base": _per_example(base), "tuned": _per_example(tuned)}
    reports: dict[str, Any] = {"base": base, "tuned": tuned}
    champion_version: str | None = None
    champion_problem: str | None = None
    base_files = base_file_digests(base_path)
    if registered_model_name is not None:
        champion_version, found = _champion_adapter(registered_model_name, base_path,
                                                    base_files)
        if isinstance(found, Path):
            # the champion as a second adapter on the same loaded base: no second base in memory
            model.load_adapter(str(found), adapter_name="champion")
            model.set_adapter("champion")
            try:
                reports["champion"] = evaluate_model(
                    model, tokenizer, examples, config=config,
                    prompt_style=trained_prompt_style(found) or style)
                per_example["champion"] = _per_example(reports["champion"])
            finally:
                model.set_adapter("default")
            log.info("champion v%s re-scored on the same %d %s examples", champion_version,
                     len(examples), eval_split)
        elif champion_version is not None:
            champion_problem = found
            log.warning("%s", found)
    return AdapterEval(
        adapter_dir=str(adapter_dir), base_model_path=str(base_path), n_examples=len(examples),
        eval_split=eval_split, eval_file=str(val_file), prompt_style=style,
        example_ids=[e.id for e in examples],
        base=base.metrics(), tuned=tuned.metrics(), base_perplexity=base_ppl,
        tuned_perplexity=tuned_ppl, perplexity_ratio=tuned_ppl / base_ppl,
        per_example=per_example, champion_version=champion_version,
        champion_problem=champion_problem, base_files=base_files,
        samples=sample_generations_rows(reports, config.sample_generations),
    )


def register_adapter(
    adapter_dir: Path,
    evaluation: AdapterEval,
    *,
    train_file: Path,
    val_file: Path,
    registered_model_name: str,
    zenml_run_id: str | None = None,
    zenml_model: tuple[str, str] | None = None,
) -> str:
    """Log the adapter to the active MLflow run and register a version (alias challenger).

    Args:
        adapter_dir: The trained adapter (with training_config.json).
        evaluation: Its evaluation (base model path, val size).
        train_file: Train split, hashed into the `dataset_sha256` tag.
        val_file: Val split.
        registered_model_name: e.g. geomas-sft.
        zenml_run_id: The pipeline run, as a tag.
        zenml_model: (ZenML model name, model version id) of the run, so that the Model
            Control Plane stage can follow the registry aliases.
    """
    from geomas.formats import read_examples
    from geomas.registry.adapters import git_sha, log_adapter
    from geomas.registry.promotion import ZENML_MODEL_TAG, ZENML_MODEL_VERSION_TAG

    record = training_record(adapter_dir)
    quant = record.get("quantization") or {}
    tags = {
        "dataset_sha256": sha256_file(train_file),
        "val_sha256": sha256_file(val_file),
        "train_size": str(len(read_examples(train_file))),
        "val_size": str(len(read_examples(val_file))),
        # what the gate judged: the test split (held out from training and early stopping)
        "eval_split": evaluation.eval_split,
        "eval_size": str(evaluation.n_examples),
        "eval_sha256": sha256_file(Path(evaluation.eval_file)) if evaluation.eval_file else None,
        "zenml_run_id": zenml_run_id,
        # the code that trained: the geomas checkout (None when installed from a wheel)
        "git_sha": git_sha(Path(__file__).resolve().parent),
        "base_model": evaluation.base_model_path,
        "method": record.get("method"),
    }
    if zenml_model is not None:
        tags[ZENML_MODEL_TAG], tags[ZENML_MODEL_VERSION_TAG] = zenml_model
    version = log_adapter(
        Path(adapter_dir), base_model_path=Path(evaluation.base_model_path),
        load_in_4bit=bool(quant.get("load_in_4bit")),
        compute_dtype=str(quant.get("compute_dtype") or "float32"),
        registered_model_name=registered_model_name, tags=tags,
        base_files=evaluation.base_files or None,
    )
    return str(version.version)


def training_plots(result: SFTResult, out_dir: Path) -> list[Path]:
    """Loss curve (train and eval loss against the step) of a finished run, as PNG."""
    from geomas.evaluate.plots import loss_curve

    history = [{"step": s, "loss": v} for s, v in result.train_loss]
    history += [{"step": s, "eval_loss": v} for s, v in result.eval_loss]
    if not history:
        log.warning("run in %s logged no loss; no loss curve", result.output_dir)
        return []
    return [loss_curve(history, Path(out_dir) / "loss_curve.png")]


def evaluation_plots(evaluation: AdapterEval, out_dir: Path) -> list[Path]:
    """Base vs tuned answer scores as a bar chart (PNG)."""
    from geomas.evaluate.plots import metric_bars

    return [metric_bars(evaluation.base, evaluation.tuned, Path(out_dir) / "base_vs_tuned.png",
                        title=f"Base vs fine-tuned ({evaluation.n_examples} val examples)")]


class GateResult(BaseModel):
    """The promotion decision for a newly registered version."""

    name: str
    version: str
    promoted: bool
    decision: str
    reason: str


def gate(
    name: str, version: str, evaluation: AdapterEval, config: PromotionConfig
) -> GateResult:
    """Promote the new version when it beats its own base and the champion, safely.

    A version that does not beat its base model on `config.metric` is never promoted (the
    registry keeps it, tagged with the reason). Otherwise it is compared with the champion on
    the same examples (`evaluation.per_example`, scored in this run): the mean gain must reach
    `config.margin` and its paired-bootstrap interval must lie above zero. A champion that
    could not be re-scored (another base, not loadable) or that changed since the evaluation
    refuses the promotion with that reason; forgetting is checked as before.
    """
    import mlflow

    from geomas.evaluate.paired import compare_paired
    from geomas.registry.promotion import (
        CHAMPION,
        alias_version,
        promote_if_better,
        record_metrics,
    )

    metrics = evaluation.metrics()
    tuned = metrics.get(config.metric)
    base = evaluation.base.get(config.metric)
    if tuned is not None and base is not None:
        gain = tuned - base if config.higher_is_better else base - tuned
        if gain < config.margin or gain <= 0:
            client = mlflow.MlflowClient()
            record_metrics(name, version, metrics, client)
            reason = (f"{config.metric} {tuned:.4g} does not beat the base model's {base:.4g} "
                      f"by >= {config.margin:.4g}")
            client.set_model_version_tag(name, version, "promotion_decision", "rejected")
            client.set_model_version_tag(name, version, "promotion_reason", reason)
            return GateResult(name=name, version=version, promoted=False, decision="rejected",
                              reason=reason)
    champion = alias_version(name, CHAMPION)
    paired = None
    refusal = None
    if champion is not None and champion != version:
        scores = evaluation.per_example.get("champion", {}).get(config.metric)
        if evaluation.champion_problem is not None:
            refusal = evaluation.champion_problem
        elif scores is None or evaluation.champion_version != champion:
            refusal = (f"the champion (v{champion}) was not scored on this run's examples "
                       f"(evaluated against {evaluation.champion_version or 'none'}); rerun "
                       "the evaluation")
        else:
            paired = compare_paired(
                evaluation.example_ids, evaluation.per_example["tuned"][config.metric], scores,
                metric=config.metric, higher_is_better=config.higher_is_better,
                confidence=config.confidence, resamples=config.bootstrap_resamples,
                seed=config.bootstrap_seed)
    if refusal is not None:
        client = mlflow.MlflowClient()
        record_metrics(name, version, metrics, client)
        client.set_model_version_tag(name, version, "promotion_decision", "rejected")
        client.set_model_version_tag(name, version, "promotion_reason", refusal)
        return GateResult(name=name, version=version, promoted=False, decision="rejected",
                          reason=refusal)
    decision = promote_if_better(name, version, metrics, config=config, paired=paired)
    return GateResult(name=name, version=version, promoted=decision.promoted,
                      decision=decision.decision, reason=decision.reason)
