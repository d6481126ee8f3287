"""Run the ZenML pipelines on the active stack from a run config (used by `geomas run`)."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel

from geomas.config import RunConfig
from geomas.errors import GeomasError
from geomas.stack import ensure_experiment, ensure_local_stack

log = logging.getLogger(__name__)


class PipelineRunInfo(BaseModel):
    """What a pipeline run produced and where to find it."""

    pipeline: str
    run_name: str
    run_id: str
    status: str
    tracking_uri: str
    output_dir: str


def run_data_pipeline(config: RunConfig) -> PipelineRunInfo:
    """Run the data pipeline on the embedded stack (created on first use).

    Raises:
        GeomasError: the pipeline run did not complete.
    """
    data_dir = Path(config.project.data_dir)
    info = ensure_local_stack(data_dir)
    ensure_experiment(config.project.experiment_name, data_dir)
    from pipelines.data_pipeline import data_pipeline

    data = config.data
    run = data_pipeline.with_options(
        settings={"experiment_tracker": {"experiment_name": config.project.experiment_name}}
    )(
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


def run_training_pipeline(config: RunConfig) -> PipelineRunInfo:
    """Run the training pipeline on the embedded stack.

    Raises:
        GeomasError: no `training:` section, or the run did not complete.
    """
    if config.training is None:
        raise GeomasError("the run config has no `training:` section")
    data_dir = Path(config.project.data_dir)
    info = ensure_local_stack(data_dir)
    ensure_experiment(config.project.experiment_name, data_dir)
    from pipelines.training_pipeline import training_pipeline

    t = config.training
    run = training_pipeline.with_options(
        settings={"experiment_tracker": {"experiment_name": config.project.experiment_name}}
    )(
        model=t.model,
        train_file=str(Path(t.train_file).resolve()),
        val_file=str(Path(t.val_file).resolve()),
        output_dir=str(Path(t.output_dir).resolve()),
        sft=t.sft,
        evaluation=t.evaluation,
        promotion=t.promotion,
        registered_model_name=t.registered_model_name,
    )
    if run is None:  # pragma: no cover - local orchestrator always returns the run
        raise GeomasError("ZenML returned no pipeline run")
    status = str(run.status.value if hasattr(run.status, "value") else run.status)
    result = PipelineRunInfo(pipeline="geomas_training", run_name=run.name, run_id=str(run.id),
                             status=status, tracking_uri=info.tracking_uri,
                             output_dir=str(Path(t.output_dir).resolve()))
    if status != "completed":
        raise GeomasError(f"pipeline run {run.name} ended with status {status}")
    return result
