"""MLflow logging helpers used by pipeline steps; no-ops outside an active MLflow run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


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
