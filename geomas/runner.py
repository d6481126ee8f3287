"""Launch the ZenML pipelines from a run config and return typed run summaries.

The one place that starts pipelines: `geomas run`, `geomas retrain` (through the launcher it
passes to geomas.trigger) and the coming control panel all call these functions. Inputs are
checked before anything starts; a step that fails comes back as one `PipelineFailed` naming the
step and its error, never as ZenML's traceback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from geomas.config import RetrainConfig, RunConfig
from geomas.errors import ConfigError, GeomasError, InputError, StackError
from geomas.ingest.records import IngestSummary
from geomas.names import LOCAL_STACK_NAME
from geomas.report import StageCounts
from geomas.stack import StackInfo, activate_project, activate_stack
from geomas.tracking import ensure_experiment, mask_uri
from geomas.validate.suite import ValidationSummary

if TYPE_CHECKING:
    from zenml.pipelines.pipeline_definition import Pipeline

log = logging.getLogger(__name__)


class PipelineFailed(GeomasError):
    """A pipeline run ended without completing; the message names the failed step and why."""


class RegisteredVersion(BaseModel):
    """The model version a training run registered, and what the promotion gate decided."""

    name: str
    version: str
    decision: str
    reason: str
    aliases: dict[str, str] = {}


class PipelineRunInfo(BaseModel):
    """What a pipeline run produced and where to find it (`geomas run ... --json`)."""

    pipeline: str
    run_name: str
    run_id: str
    status: str
    tracking_uri: str
    output_dir: str
    stages: list[StageCounts] = []
    outputs: dict[str, str] = {}
    ingest: IngestSummary | None = None
    validation: list[ValidationSummary] = []
    registered: RegisteredVersion | None = None


def _step_output(run: Any, step: str, output: str) -> Any:
    """A typed step output of a finished run, loaded from the artifact store (None if absent)."""
    found = run.steps.get(step)
    return found.outputs[output][0].load() if found and output in found.outputs else None


def _status(run: Any) -> str:
    return str(run.status.value if hasattr(run.status, "value") else run.status)


def _failure(pipeline_name: str, exc: BaseException | None = None) -> PipelineFailed:
    """A PipelineFailed naming the failed steps of the pipeline's latest run and their errors."""
    from zenml.client import Client

    try:
        run = Client().get_pipeline(pipeline_name).last_run
    except Exception as lookup:  # noqa: BLE001 - the original failure matters more
        log.debug("could not look up the failed run: %s", lookup)
        return PipelineFailed(f"pipeline {pipeline_name} failed: {exc}")
    failed = [(name, step.exception_info) for name, step in run.steps.items()
              if _status(step) == "failed"]
    if not failed:
        return PipelineFailed(f"pipeline run {run.name} ended with status {_status(run)}"
                              + (f": {exc}" if exc else ""))
    parts = []
    for name, info in failed:
        source = (info.source or "") if info else ""
        message = info.message if info and info.message else "no error message recorded"
        # geomas errors say what to do; for anything else the exception type helps
        kind = "" if source.startswith("geomas.") else source.rsplit(".", 1)[-1]
        parts.append(f"step {name} failed: {message}" + (f" ({kind})" if kind else ""))
    return PipelineFailed(f"{'; '.join(parts)} [run {run.name}]")


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While a pipeline runs, SIGTERM ends the process (exit status 143), wherever it lands.

    ZenML's step signal handler turns SIGTERM into RunInterruptedException, an ``Exception``.
    When the signal arrives while the logging module writes a line, logging catches that
    exception, prints "--- Logging error ---" and the run goes on to the end (a panel stop or a
    `kill` was lost this way). ZenML calls the handler it replaced after its own, so this one runs
    inside a step as well as between steps: it raises SystemExit, which logging and the stages'
    per-record ``except Exception`` do not catch. Outside the main thread it does nothing (Python
    only delivers signals there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _call(pipeline: Pipeline, name: str, **params: Any) -> Any:
    """Run a configured pipeline; a failed run raises PipelineFailed with the step's error."""
    try:
        with stop_on_sigterm():
            run = pipeline(**params)
    except RuntimeError as exc:
        if "failure in step" not in str(exc) and "failed" not in str(exc):
            raise
        raise _failure(name, exc) from exc
    if run is None:  # pragma: no cover - local orchestrator always returns the run
        raise PipelineFailed("ZenML returned no pipeline run")
    if _status(run) != "completed":
        raise _failure(name)
    return run


def check_data_inputs(config: RunConfig) -> None:
    """Fail fast, before the stack starts, on a missing corpus or NER model.

    Raises:
        InputError: `data.source_dir` is not a folder, or `data.ner.model_path` is not one.
    """
    source = Path(config.data.source_dir)
    if not source.is_dir():
        raise InputError(f"data.source_dir {source} is not a folder; point it at the folder of "
                         "documents (PDF/DOCX/HTML/Markdown)")
    model = config.data.ner.model_path
    if model is not None and not (Path(model) / "config.json").is_file():
        raise InputError(f"data.ner.model_path {model} is not a trained NER model folder (no "
                         "config.json); train one with `geomas train-bert-ner` or drop the "
                         "setting to stop after chunk validation")


def check_training_inputs(config: RunConfig) -> None:
    """Fail fast on a missing `training:` section, train/val file or base model.

    Raises:
        ConfigError: no `training:` section, or the model is not an alias or model folder.
        InputError: the train or validation file does not exist.
    """
    if config.training is None:
        raise ConfigError("the run config has no `training:` section; add one (see "
                          "configs/local.yaml)")
    t = config.training
    files = [("training.train_file", t.train_file), ("training.val_file", t.val_file)]
    if t.test_file is not None:
        files.append(("training.test_file", t.test_file))
    for field, path in files:
        if not Path(path).is_file():
            raise InputError(f"{field} {path} does not exist; run `geomas run data` first or "
                             "fix the path")
    from geomas.train.resolve import resolve_model

    resolved = resolve_model(t.model)
    config_json = Path(resolved.path) / "config.json"
    if config_json.is_file():
        try:
            json.loads(config_json.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"training.model {t.model}: {config_json} cannot be read as JSON "
                             f"({exc}); the model folder is damaged, copy it again") from exc


def prepare_stack(config: RunConfig) -> StackInfo:
    """Activate `project.stack`: the embedded one is created on demand, others must exist.

    Raises:
        StackError: the stack is not registered, or the run config's `kubernetes:` section
            meets a stack whose orchestrator is not the Kubernetes one.
    """
    data_dir = Path(config.project.data_dir)
    # the run config's MLflow URIs, below a --tracking-uri and MLFLOW_TRACKING_URI
    activate_project(data_dir, config_tracking_uri=config.project.tracking_uri,
                     config_registry_uri=config.project.registry_uri)
    info = activate_stack(config.project.stack, data_dir)
    if config.project.stack == LOCAL_STACK_NAME:
        # the SQLite store would put the experiment's artifacts under ./mlruns
        ensure_experiment(config.project.experiment_name, data_dir)
    if config.kubernetes is not None and info.orchestrator_flavor != "kubernetes":
        raise StackError(
            f"the run config's kubernetes: section needs a stack with the Kubernetes "
            f"orchestrator; stack {info.stack_name!r} runs {info.orchestrator_flavor!r}"
        )
    return info


def with_run_options(
    pipeline: Pipeline, config: RunConfig, params: dict[str, Any] | None = None,
    tags: Mapping[str, str] | None = None, **options: Any,
) -> Pipeline:
    """The pipeline with the run's settings: MLflow experiment and tags, pods on Kubernetes.

    Args:
        pipeline: A ZenML pipeline (pipelines/).
        config: The run config; its `kubernetes:` section gives each step's pod and image.
        params: The pipeline's parameters, to find the steps this run invokes (the data
            pipeline leaves out the NER stages without a model); None: all of its steps.
        tags: MLflow tags on every step's run, and `key=value` tags on the ZenML run (the
            retrain ledger finds the runs of a launch by them).
        **options: More `Pipeline.with_options` arguments.
    """
    tracker: dict[str, Any] = {"experiment_name": config.project.experiment_name}
    if tags:
        tracker["tags"] = dict(tags)
        options["tags"] = [f"{k}={v}" for k, v in sorted(tags.items())]
    settings: dict[str, Any] = {"experiment_tracker": tracker}
    if config.kubernetes is not None:
        from geomas.k8s import pipeline_settings, step_settings
        from geomas.names import PIPELINE_STEPS

        if params is not None:
            probe = pipeline.copy()
            probe.prepare(**params)
            steps: list[str] = list(probe.invocations)
        else:
            steps = list(PIPELINE_STEPS[pipeline.name])
        settings |= pipeline_settings(config.kubernetes)
        options["step_configurations"] = {
            step: {"settings": step_config}
            for step, step_config in step_settings(config.kubernetes, steps).items()
        }
    return pipeline.with_options(settings=settings, **options)


def run_data_pipeline(config: RunConfig,
                      tags: Mapping[str, str] | None = None) -> PipelineRunInfo:
    """Run the data pipeline on `project.stack` (the embedded one is created on first use).

    Args:
        config: The run config.
        tags: Tags on the run (`with_run_options`).

    Raises:
        GeomasError: the pipeline run did not complete.
    """
    check_data_inputs(config)
    info = prepare_stack(config)
    from pipelines.data_pipeline import data_pipeline

    data = config.data
    params: dict[str, Any] = dict(
        source_dir=str(Path(data.source_dir).resolve()),
        output_dir=str(Path(data.output_dir).resolve()),
        ingest=data.ingest,
        validation=data.validation,
        ner=data.ner.model_copy(
            update={"model_path": Path(data.ner.model_path).resolve()}
        ) if data.ner.model_path else data.ner,
        qa=data.qa,
        clean=data.clean,
        split=data.split,
        fmt=data.format,
        dataset_name=data.dataset_name,
    )
    run = _call(with_run_options(data_pipeline, config, params, tags=tags), "geomas_data",
                **params)
    from geomas.report import stage_counts

    output_dir = Path(data.output_dir).resolve()
    outputs = {p.stem: str(p) for p in sorted(output_dir.glob("*.json*"))
               if p.is_file() and not p.name.startswith(".")}
    return PipelineRunInfo(
        pipeline="geomas_data", run_name=run.name, run_id=str(run.id), status=_status(run),
        tracking_uri=mask_uri(info.tracking_uri), output_dir=str(output_dir),
        stages=stage_counts(output_dir), outputs=outputs,
        ingest=_step_output(run, "ingest_documents", "ingest_summary"),
        validation=[v for step, name in (("validate_chunks", "chunk_validation"),
                                         ("validate_qa_pairs", "qa_validation"),
                                         ("validate_examples", "example_validation"))
                    if (v := _step_output(run, step, name)) is not None],
    )


def training_run_dir(output_dir: Path) -> Path:
    """A new folder under `output_dir` for one training run (UTC time + a short random id).

    Every run trains into its own folder, so a scheduled retrain never meets the checkpoints
    of an earlier run and no earlier adapter is overwritten.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(output_dir).resolve() / f"run-{stamp}-{uuid.uuid4().hex[:6]}"


def run_training_pipeline(config: RunConfig,
                          tags: Mapping[str, str] | None = None) -> PipelineRunInfo:
    """Run the training pipeline on `project.stack`.

    Args:
        config: The run config.
        tags: Tags on the run (`with_run_options`).

    Raises:
        GeomasError: no `training:` section, or the run did not complete.
    """
    check_training_inputs(config)
    assert config.training is not None
    info = prepare_stack(config)
    from pipelines.training_pipeline import training_pipeline

    t = config.training
    from zenml import Model

    run_dir = training_run_dir(Path(t.output_dir))
    # Each run is a version of the ZenML model of the same name (Model Control Plane); the
    # promote step moves its stage with the registry aliases.
    run = _call(with_run_options(
        training_pipeline, config, tags=tags,
        model=Model(name=t.registered_model_name,
                    description="QLoRA adapters registered in MLflow as the same name"),
    ), "geomas_training",
        model=t.model,
        train_file=str(Path(t.train_file).resolve()),
        val_file=str(Path(t.val_file).resolve()),
        test_file=str(Path(t.test_file).resolve()) if t.test_file is not None else None,
        output_dir=str(run_dir),
        sft=t.sft,
        evaluation=t.evaluation,
        promotion=t.promotion,
        registered_model_name=t.registered_model_name,
        dataset_dir=str(Path(config.data.output_dir).resolve()),
    )
    return PipelineRunInfo(
        pipeline="geomas_training", run_name=run.name, run_id=str(run.id), status=_status(run),
        tracking_uri=mask_uri(info.tracking_uri), output_dir=str(run_dir),
        outputs={"adapter": str(run_dir)},
        registered=registered_version(info.tracking_uri, t.registered_model_name),
    )


def registered_version(tracking_uri: str, name: str) -> RegisteredVersion | None:
    """The newest version of `name` with its promotion decision and the current aliases."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient(tracking_uri, registry_uri=os.environ.get("MLFLOW_REGISTRY_URI"))
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        return None
    latest = max(versions, key=lambda v: int(v.version))
    aliases: dict[str, str] = {}
    for alias in ("champion", "previous-champion", "challenger"):
        try:
            aliases[alias] = str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            continue
    return RegisteredVersion(
        name=name, version=str(latest.version),
        decision=latest.tags.get("promotion_decision", "unknown"),
        reason=latest.tags.get("promotion_reason", ""), aliases=aliases,
    )


def launch_pipelines(config: RunConfig, tags: Mapping[str, str] | None = None) -> str:
    """The retrain launcher in this process: the data pipeline (if configured), then training.

    Args:
        config: The run config.
        tags: Tags on the runs (the retrain ledger entry of this launch).

    Returns:
        The training run's name.
    """
    if config.retrain.run_data_pipeline:
        run_data_pipeline(config, tags)
    return run_training_pipeline(config, tags).run_name


def retrain_schedule(config: RetrainConfig) -> Any:
    """The ZenML `Schedule` of the retrain_check pipeline (cron from `retrain.cron`)."""
    from zenml.config.schedule import Schedule

    from geomas.trigger.schedule import SCHEDULE_NAME

    return Schedule(name=SCHEDULE_NAME, cron_expression=config.cron)


def retrain_check_pipeline_for(
    config: RunConfig, *, schedule: bool, orchestrator_flavor: str
) -> Pipeline:
    """The retrain_check pipeline with the run's settings, and its cron schedule if asked.

    On the Kubernetes orchestrator the schedule's CronJob gets `cronjob_policy` (concurrency
    Forbid, the configured starting deadline, history limits).
    """
    from geomas.trigger.schedule import cronjob_policy
    from pipelines.retrain_pipeline import retrain_check_pipeline

    options: dict[str, Any] = {}
    if schedule:
        options["schedule"] = retrain_schedule(config.retrain)
    pipeline = with_run_options(retrain_check_pipeline, config, **options)
    if schedule and orchestrator_flavor == "kubernetes":
        key = "orchestrator.kubernetes"
        current = pipeline.configuration.settings.get(key)
        base = current.model_dump(exclude_unset=True) if current is not None else {}
        pipeline = pipeline.with_options(settings={key: {**base, **cronjob_policy(config.retrain)}})
    return pipeline


def run_retrain_check_pipeline(
    config: RunConfig, config_path: Path, *, schedule: bool = False, dry_run: bool = False
) -> PipelineRunInfo | None:
    """Run the retrain_check pipeline once, or register it on its cron schedule.

    With `schedule`, the stack's orchestrator must support schedules (the Kubernetes one makes a
    CronJob with concurrency Forbid and the configured starting deadline); the embedded local
    orchestrator does not, and the error says to use `geomas retrain watch` instead.

    Args:
        config: The run config.
        config_path: The same config's path as the step sees it (in the image on Kubernetes).
        schedule: Register the cron schedule instead of running now.
        dry_run: The check decides only.

    Returns:
        The run (None when a schedule was registered).

    Raises:
        GeomasError: The run did not complete, or the stack cannot schedule.
    """
    info = prepare_stack(config)
    if schedule and info.orchestrator_flavor == "local":
        raise GeomasError(
            f"stack {info.stack_name!r} runs the local orchestrator, which has no schedules; "
            "run `geomas retrain watch --config ...` on this machine instead"
        )
    pipeline = retrain_check_pipeline_for(config, schedule=schedule,
                                          orchestrator_flavor=info.orchestrator_flavor)
    # in pods the config's own data_dir (or GEOMAS_DATA_DIR) applies; locally pin this one
    local = info.orchestrator_flavor == "local"
    params = dict(config_path=str(Path(config_path).resolve() if local else config_path),
                  data_dir=str(Path(config.project.data_dir).resolve()) if local else None,
                  dry_run=dry_run)
    if schedule:
        pipeline(**params)
        return None
    run = _call(pipeline, "geomas_retrain_check", **params)
    return PipelineRunInfo(pipeline="geomas_retrain_check", run_name=run.name,
                           run_id=str(run.id), status=_status(run),
                           tracking_uri=mask_uri(info.tracking_uri),
                           output_dir=str(Path(config.project.data_dir).resolve()))
