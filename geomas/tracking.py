"""MLflow helpers: where the embedded store lives, experiments, runs, stage logging.

Pure MLflow (no ZenML, no stack lookups), so stages, steps and the stack adapter all use it.
The `log_*` helpers are no-ops outside an active MLflow run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def mlflow_paths(data_dir: Path) -> tuple[str, Path]:
    """The MLflow tracking URI (SQLite) and artifact folder for a data dir."""
    root = Path(data_dir).resolve() / "mlflow"
    return f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"


def ensure_experiment(name: str, data_dir: Path) -> str:
    """Create the MLflow experiment with its artifacts inside the data dir; return its id.

    MLflow's SQLite store would otherwise put artifacts in `./mlruns` under the current
    directory, outside the project.
    """
    import mlflow

    tracking_uri, artifacts = mlflow_paths(data_dir)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    location = (artifacts / name).resolve().as_uri()
    return str(client.create_experiment(name, artifact_location=location))


@contextlib.contextmanager
def mlflow_run(
    data_dir: Path, experiment: str, run_name: str, tags: Mapping[str, str] | None = None
) -> Iterator[Any]:
    """Use the active MLflow run (inside a ZenML step) or start one on the embedded store."""
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        if tags:
            mlflow.set_tags(dict(tags))
        yield active
        return
    tracking_uri, _ = mlflow_paths(data_dir)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    exp_id = ensure_experiment(experiment, data_dir)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=dict(tags or {})) as run:
        yield run


def _active() -> bool:
    import mlflow

    return mlflow.active_run() is not None


def log_stage_metrics(stage: str, metrics: Mapping[str, float | int | bool]) -> None:
    """Log numeric metrics as `<stage>.<name>` to the active MLflow run, if there is one."""
    if not _active():
        log.debug("no active MLflow run; %s metrics not logged", stage)
        return
    import mlflow

    mlflow.log_metrics({f"{stage}.{k}": float(v) for k, v in metrics.items()})


def log_stage_params(stage: str, params: Mapping[str, object]) -> None:
    """Log parameters as `<stage>.<name>` to the active MLflow run, if there is one."""
    if not _active():
        return
    import mlflow

    mlflow.log_params({f"{stage}.{k}": str(v)[:6000] for k, v in params.items()})


def log_table(artifact_file: str, rows: Sequence[Mapping[str, object]]) -> None:
    """Log rows as an MLflow table artifact of the active run (shown in the Evaluation UI)."""
    if not _active() or not rows:
        return
    import mlflow
    import pandas as pd

    mlflow.log_table(pd.DataFrame(list(rows)), artifact_file=artifact_file)


def log_artifacts(stage: str, *paths: Path) -> None:
    """Attach files or folders under `<stage>/` in the active MLflow run, if there is one."""
    if not _active():
        return
    import mlflow

    for path in paths:
        path = Path(path)
        if path.is_dir():
            mlflow.log_artifacts(str(path), artifact_path=f"{stage}/{path.name}")
        elif path.is_file():
            mlflow.log_artifact(str(path), artifact_path=stage)
