"""Run the ZenML pipelines on the active stack from a run config (used by `geomas run`)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from geomas.config import RunConfig
from geomas.errors import GeomasError, StackError
from geomas.stack import LOCAL_STACK_NAME, StackInfo, activate_stack, ensure_experiment

if TYPE_CHECKING:
    from zenml.pipelines.pipeline_definition import Pipeline

log = logging.getLogger(__name__)


class PipelineRunInfo(BaseModel):
    """What a pipeline run produced and where to find it."""

    pipeline: str
    run_name: str
    run_id: str
    status: str
    tracking_uri: str
    output_dir: str


def prepare_stack(config: RunConfig) -> StackInfo:
    """Activate `project.stack`: the embedded one is created on demand, others must exist.

    Raises:
        StackError: the stack is not registered, or the run config's `kubernetes:` section
            meets a stack whose orchestrator is not the Kubernetes one.
    """
    data_dir = Path(config.project.data_dir)
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
    **options: Any,
) -> Pipeline:
    """The pipeline with the run's settings: MLflow experiment, and pods on Kubernetes.

    Args:
        pipeline: A ZenML pipeline (pipelines/).
        config: The run config; its `kubernetes:` section gives each step's pod and image.
        params: The pipeline's parameters, to find the steps this run invokes (the data
            pipeline leaves out the NER stages without a model); None: all of its steps.
        **options: More `Pipeline.with_options` arguments.
    """
    settings: dict[str, Any] = {
        "experiment_tracker": {"experiment_name": config.project.experiment_name}
    }
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


def run_data_pipeline(config: RunConfig) -> PipelineRunInfo:
    """Run the data pipeline on `project.stack` (the embedded one is created on first use).

    Raises:
        GeomasError: the pipeline run did not complete.
    """
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
    run = with_run_options(data_pipeline, config, params)(**params)
    if run is None:  # pragma: no cover - local orchestrator always returns the run
        raise GeomasError("ZenML returned no pipeline run")
    status = str(run.status.value if hasattr(run.status, "value") else run.status)
    result = PipelineRunInfo(
        pipeline="geomas_data",
        run_name=run.name,
        run_id=str(run.id),
        status=status,
        tracking_uri=info.tracking_uri,
        output_dir=str(Path(data.output_dir).resolve()),
    )
    if status != "completed":
        raise GeomasError(f"pipeline run {run.name} ended with status {status}")
    return result


def training_run_dir(output_dir: Path) -> Path:
    """A new folder under `output_dir` for one training run (UTC time + a short random id).

    Every run trains into its own folder, so a scheduled retrain never meets the checkpoints
    of an earlier run and no earlier adapter is overwritten.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path(output_dir).resolve() / f"run-{stamp}-{uuid.uuid4().hex[:6]}"


def run_training_pipeline(config: RunConfig) -> PipelineRunInfo:
    """Run the training pipeline on `project.stack`.

    Raises:
        GeomasError: no `training:` section, or the run did not complete.
    """
    if config.training is None:
        raise GeomasError("the run config has no `training:` section")
    info = prepare_stack(config)
    from pipelines.training_pipeline import training_pipeline

    t = config.training
    from zenml import Model

    run_dir = training_run_dir(Path(t.output_dir))
    # Each run is a version of the ZenML model of the same name (Model Control Plane); the
    # promote step moves its stage with the registry aliases.
    run = with_run_options(
        training_pipeline, config,
        model=Model(name=t.registered_model_name,
                    description="QLoRA adapters registered in MLflow as the same name"),
    )(
        model=t.model,
        train_file=str(Path(t.train_file).resolve()),
        val_file=str(Path(t.val_file).resolve()),
        output_dir=str(run_dir),
        sft=t.sft,
        evaluation=t.evaluation,
        promotion=t.promotion,
        registered_model_name=t.registered_model_name,
        dataset_dir=str(Path(config.data.output_dir).resolve()),
    )
    if run is None:  # pragma: no cover - local orchestrator always returns the run
        raise GeomasError("ZenML returned no pipeline run")
    status = str(run.status.value if hasattr(run.status, "value") else run.status)
    result = PipelineRunInfo(pipeline="geomas_training", run_name=run.name, run_id=str(run.id),
                             status=status, tracking_uri=info.tracking_uri,
                             output_dir=str(run_dir))
    if status != "completed":
        raise GeomasError(f"pipeline run {run.name} ended with status {status}")
    return result


def retrain_check_pipeline_for(
    config: RunConfig, *, schedule: bool, orchestrator_flavor: str
) -> Pipeline:
    """The retrain_check pipeline with the run's settings, and its cron schedule if asked.

    On the Kubernetes orchestrator the schedule's CronJob gets `cronjob_policy` (concurrency
    Forbid, the configured starting deadline, history limits).
    """
    from geomas.trigger.schedule import cronjob_policy, retrain_schedule
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
    run = pipeline(config_path=str(Path(config_path).resolve() if local else config_path),
                   data_dir=str(Path(config.project.data_dir).resolve()) if local else None,
                   dry_run=dry_run)
    if schedule:
        return None
    if run is None:  # pragma: no cover - local orchestrator always returns the run
        raise GeomasError("ZenML returned no pipeline run")
    status = str(run.status.value if hasattr(run.status, "value") else run.status)
    if status != "completed":
        raise GeomasError(f"pipeline run {run.name} ended with status {status}")
    return PipelineRunInfo(pipeline="geomas_retrain_check", run_name=run.name,
                           run_id=str(run.id), status=status, tracking_uri=info.tracking_uri,
                           output_dir=str(Path(config.project.data_dir).resolve()))
