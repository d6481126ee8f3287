"""The embedded default stack: project-local ZenML + MLflow on SQLite, no servers.

Everything lives under the project data dir: ZenML's global config and SQLite store
(`<data>/zenml`), its local artifact store, and the MLflow tracking/registry database
(`<data>/mlflow/mlflow.db`) with run artifacts in `<data>/mlflow/artifacts`.

ZenML reads its config location from the environment the first time it is imported, so
`activate_project()` must run before anything imports zenml in this process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel

from geomas.errors import StackError

log = logging.getLogger(__name__)

#: Stack component names shared by the embedded stack and zenml_stack.yaml (Kubernetes):
#: steps refer to the tracker by this name on every stack.
TRACKER_NAME = "geomas-mlflow"
REGISTRY_NAME = "geomas-mlflow-registry"
LOCAL_STACK_NAME = "geomas-local"

_ACTIVE_DATA_DIR: Path | None = None


class StackInfo(BaseModel):
    """Where the embedded stack keeps its state."""

    data_dir: str
    zenml_config_dir: str
    stack_name: str
    tracking_uri: str
    mlflow_artifacts: str
    created: list[str]


def mlflow_paths(data_dir: Path) -> tuple[str, Path]:
    """The MLflow tracking URI (SQLite) and artifact folder for a data dir."""
    root = Path(data_dir).resolve() / "mlflow"
    return f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"


def offline_environment(data_dir: Path) -> dict[str, str]:
    """Environment that keeps ZenML, MLflow, GX and HF local, offline and analytics-free."""
    data_dir = Path(data_dir).resolve()
    tracking_uri, _ = mlflow_paths(data_dir)
    return {
        "ZENML_CONFIG_PATH": str(data_dir / "zenml"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_ENABLE_RICH_TRACEBACK": "false",
        "ZENML_LOGGING_VERBOSITY": os.environ.get("ZENML_LOGGING_VERBOSITY", "WARN"),
        # Steps and pipelines are importable modules next to the geomas package; without this
        # ZenML guesses the source root from the main script (the console-script folder).
        "ZENML_CUSTOM_SOURCE_ROOT": str(Path(__file__).resolve().parent.parent),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_REGISTRY_URI": tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "DO_NOT_TRACK": "true",
        "GX_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def activate_project(data_dir: Path) -> Path:
    """Point this process at the project data dir (environment only; creates the dir).

    Raises:
        StackError: zenml was already imported with a different config dir.
    """
    global _ACTIVE_DATA_DIR
    data_dir = Path(data_dir).resolve()
    env = offline_environment(data_dir)
    current = os.environ.get("ZENML_CONFIG_PATH")
    import sys

    if "zenml" in sys.modules and current and current != env["ZENML_CONFIG_PATH"]:
        raise StackError(
            f"ZenML in this process already uses {current}; cannot switch to {data_dir}. "
            "Run one geomas project per process."
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    _ACTIVE_DATA_DIR = data_dir
    return data_dir


def ensure_local_stack(data_dir: Path) -> StackInfo:
    """Create (once) and activate the embedded stack; safe to call any number of times.

    Registers an MLflow experiment tracker and model registry at `sqlite:///<data>/mlflow/
    mlflow.db` next to ZenML's default local orchestrator and artifact store, as stack
    `geomas-local`, and activates it. Touches nothing outside `data_dir`.
    """
    data_dir = activate_project(data_dir)
    tracking_uri, artifacts = mlflow_paths(data_dir)
    artifacts.mkdir(parents=True, exist_ok=True)
    try:
        from zenml.client import Client
        from zenml.enums import StackComponentType
    except ImportError as exc:  # pragma: no cover - zenml is a core dependency
        raise StackError(f"ZenML is not importable: {exc}") from exc

    client = Client()
    created: list[str] = []

    def ensure_component(name: str, ctype: StackComponentType, config: dict[str, str]) -> None:
        existing = client.list_stack_components(name=name, type=ctype)
        if existing.total == 0:
            client.create_stack_component(
                name=name, flavor="mlflow", component_type=ctype, configuration=config
            )
            created.append(f"{ctype.value}:{name}")
        elif config and dict(existing.items[0].configuration) != config:
            client.update_stack_component(
                name_id_or_prefix=name, component_type=ctype, configuration=config
            )

    ensure_component(
        TRACKER_NAME, StackComponentType.EXPERIMENT_TRACKER, {"tracking_uri": tracking_uri}
    )
    ensure_component(REGISTRY_NAME, StackComponentType.MODEL_REGISTRY, {})
    stacks = client.list_stacks(name=LOCAL_STACK_NAME)
    if stacks.total == 0:
        default = client.get_stack("default")
        client.create_stack(
            name=LOCAL_STACK_NAME,
            components={
                StackComponentType.ORCHESTRATOR: default.components[
                    StackComponentType.ORCHESTRATOR
                ][0].name,
                StackComponentType.ARTIFACT_STORE: default.components[
                    StackComponentType.ARTIFACT_STORE
                ][0].name,
                StackComponentType.EXPERIMENT_TRACKER: TRACKER_NAME,
                StackComponentType.MODEL_REGISTRY: REGISTRY_NAME,
            },
        )
        created.append(f"stack:{LOCAL_STACK_NAME}")
    if client.active_stack_model.name != LOCAL_STACK_NAME:
        client.activate_stack(LOCAL_STACK_NAME)
    return StackInfo(
        data_dir=str(data_dir),
        zenml_config_dir=os.environ["ZENML_CONFIG_PATH"],
        stack_name=LOCAL_STACK_NAME,
        tracking_uri=tracking_uri,
        mlflow_artifacts=str(artifacts),
        created=created,
    )


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
    return str(
        client.create_experiment(name, artifact_location=(artifacts / name).resolve().as_uri())
    )
