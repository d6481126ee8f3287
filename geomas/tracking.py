"""MLflow helpers: where tracking and the registry are, experiments, runs, stage logging.

Pure MLflow (no ZenML, no stack lookups), so stages, steps and the stack adapter all use it.
The `log_*` helpers are no-ops outside an active MLflow run.

Where MLflow lives is decided in one place, `resolve_tracking`, for every command and for the
pipelines' steps: the `--tracking-uri` flag, else the environment (`MLFLOW_TRACKING_URI`,
`MLFLOW_REGISTRY_URI`), else the run config (`project.tracking_uri`, `project.registry_uri`),
else the tracker of an imported stack (the Kubernetes one), else the embedded SQLite store
under the data dir. `use_tracking` writes the answer into the environment, which ZenML, MLflow
and child processes read; `require_reachable` fails fast, in one line, on a server that does
not answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from geomas.errors import TrackingUnreachable

log = logging.getLogger(__name__)

#: Where a tracking or registry URI came from, highest precedence first.
Source = Literal["flag", "env", "config", "stack", "embedded"]
SOURCES: tuple[Source, ...] = ("flag", "env", "config", "stack", "embedded")
ENV_TRACKING = "MLFLOW_TRACKING_URI"
ENV_REGISTRY = "MLFLOW_REGISTRY_URI"
#: What geomas itself wrote into ENV_TRACKING/ENV_REGISTRY, with its source and data dir: a
#: later resolution in this process or a child tells its own writes from the user's.
ENV_RESOLVED = "GEOMAS_MLFLOW_RESOLVED"
#: Seconds the reachability probe waits for a tracking server.
PROBE_TIMEOUT_S = 5.0


def mlflow_paths(data_dir: Path) -> tuple[str, Path]:
    """The embedded MLflow tracking URI (SQLite) and artifact folder for a data dir."""
    root = Path(data_dir).resolve() / "mlflow"
    return f"sqlite:///{root / 'mlflow.db'}", root / "artifacts"


def mask_uri(uri: str) -> str:
    """The URI with any `user:password@` replaced by `****@` (safe to print or log)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if "@" not in parts.netloc:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"****@{host}"))


class TrackingUri(BaseModel):
    """One resolved URI and where it came from."""

    uri: str
    source: Source

    @property
    def shown(self) -> str:
        """The URI with credentials masked."""
        return mask_uri(self.uri)

    @property
    def remote(self) -> bool:
        """An MLflow tracking server (http/https), as opposed to a database or file store."""
        return urlsplit(self.uri).scheme in ("http", "https")


class TrackingTarget(BaseModel):
    """Where MLflow tracking and the model registry are, for one project data dir."""

    data_dir: str
    tracking: TrackingUri
    registry: TrackingUri

    @property
    def embedded(self) -> bool:
        """Tracking goes to the embedded SQLite store of the data dir."""
        return self.tracking.uri == mlflow_paths(Path(self.data_dir))[0]

    def describe(self) -> dict[str, str]:
        """Masked URIs and their sources, for printing."""
        return {"tracking_uri": self.tracking.shown, "tracking_source": self.tracking.source,
                "registry_uri": self.registry.shown, "registry_source": self.registry.source}


def _recorded(environ: Mapping[str, str]) -> dict[str, Any]:
    raw = environ.get(ENV_RESOLVED, "")
    try:
        value = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def resolve_tracking(
    data_dir: Path,
    *,
    flag: str | None = None,
    config_tracking: str | None = None,
    config_registry: str | None = None,
    stack: str | None = None,
    environ: Mapping[str, str] | None = None,
    recall_stack: bool = True,
) -> TrackingTarget:
    """Decide where MLflow tracking and the registry are: flag > env > config > stack > embedded.

    The registry follows the tracking URI unless a registry URI is given at the same or a
    higher precedence (`MLFLOW_REGISTRY_URI`, `project.registry_uri`); the flag sets both.
    Values geomas wrote into the environment itself (`use_tracking`) keep the source they had,
    and count only for the same data dir when they came from the config, a stack or the
    embedded store, so a child process or a second call resolves the same way.

    Args:
        data_dir: The project data dir (the embedded store lives in `<data_dir>/mlflow`).
        flag: `--tracking-uri` of the command.
        config_tracking: `project.tracking_uri` of the run config.
        config_registry: `project.registry_uri` of the run config.
        stack: The tracking URI of the active imported stack's experiment tracker.
        environ: The environment (default `os.environ`).
        recall_stack: Keep a stack's URI recorded earlier (False when switching to the
            embedded stack).
    """
    environ = os.environ if environ is None else environ
    data_dir = Path(data_dir).resolve()
    embedded, _ = mlflow_paths(data_dir)
    recorded = _recorded(environ)
    same_dir = recorded.get("data_dir") == str(data_dir)

    def given(var: str, key: str, explicit: dict[Source, str | None]) -> dict[Source, str]:
        levels = {s: v for s, v in explicit.items() if v}
        value = environ.get(var, "").strip()
        if not value:
            return levels
        mine = recorded.get(key)
        if isinstance(mine, list) and len(mine) == 2 and mine[0] == value:
            source = mine[1]
            if source in ("flag", "env") or (same_dir and source in ("config", "stack") and (
                    source != "stack" or recall_stack)):
                levels.setdefault(source, value)
            return levels
        levels.setdefault("env", value)
        return levels

    tracking_levels = given(ENV_TRACKING, "tracking", {"flag": flag, "config": config_tracking,
                                                       "stack": stack})
    tracking_levels.setdefault("embedded", embedded)
    t_source = next(s for s in SOURCES if s in tracking_levels)
    tracking = TrackingUri(uri=tracking_levels[t_source], source=t_source)
    registry_levels = given(ENV_REGISTRY, "registry", {"flag": flag, "config": config_registry})
    r_source = next((s for s in SOURCES[: SOURCES.index(t_source) + 1]
                     if s in registry_levels), None)
    registry = (TrackingUri(uri=registry_levels[r_source], source=r_source)
                if r_source is not None else tracking)
    return TrackingTarget(data_dir=str(data_dir), tracking=tracking, registry=registry)


def use_tracking(target: TrackingTarget,
                 environ: MutableMapping[str, str] | None = None) -> TrackingTarget:
    """Point this process (and its children) at `target`: the MLflow URIs in the environment.

    ZenML's MLflow tracker resets MLflow to the environment after each step, so the
    environment, not `mlflow.set_tracking_uri`, is what lasts.
    """
    environ = os.environ if environ is None else environ
    environ[ENV_TRACKING] = target.tracking.uri
    environ[ENV_REGISTRY] = target.registry.uri
    environ[ENV_RESOLVED] = json.dumps({
        "data_dir": target.data_dir,
        "tracking": [target.tracking.uri, target.tracking.source],
        "registry": [target.registry.uri, target.registry.source],
    })
    if environ is os.environ and "mlflow" in sys.modules:
        # an earlier set_tracking_uri in this process would otherwise win over the environment
        import mlflow

        mlflow.set_tracking_uri(target.tracking.uri)
        mlflow.set_registry_uri(target.registry.uri)
    return target


def current_tracking(data_dir: Path) -> TrackingTarget:
    """What this process resolved for `data_dir` (the environment, else the embedded store)."""
    return resolve_tracking(data_dir)


def _probe(uri: str, timeout: float) -> str | None:
    """None when an HTTP server answers at `uri` (any status), else why not."""
    import ssl
    import urllib.error
    import urllib.request

    context = None
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        context = ssl._create_unverified_context()  # noqa: S323 - the user asked for it
    elif os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
        context = ssl.create_default_context(cafile=os.environ["MLFLOW_TRACKING_SERVER_CERT_PATH"])
    parts = urlsplit(uri)
    # credentials in the URI are not needed to see whether the server answers
    url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1],
                                    path=parts.path.rstrip("/") + "/health", query=""))
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context):  # noqa: S310
            return None
    except urllib.error.HTTPError:
        return None  # it answered (401, 404...): reachable
    except urllib.error.URLError as exc:
        reason = exc.reason
        return str(getattr(reason, "strerror", None) or reason)
    except (TimeoutError, OSError) as exc:
        return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)


def require_reachable(target: TrackingTarget, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast when the tracking or registry server of `target` does not answer.

    Database and embedded stores are not probed (MLflow opens them itself).

    Raises:
        TrackingUnreachable: one line naming the URI, where it came from, and the fix.
    """
    seen: set[str] = set()
    for what, item in (("tracking", target.tracking), ("registry", target.registry)):
        if not item.remote or item.uri in seen:
            continue
        seen.add(item.uri)
        why = _probe(item.uri, timeout)
        if why is None:
            continue
        env_var = ENV_TRACKING if what == "tracking" else ENV_REGISTRY
        origin, fix = {
            "flag": ("--tracking-uri", "pass another --tracking-uri"),
            "env": (env_var, f"point {env_var} at a running server, or unset it to use the "
                             f"embedded store in {Path(target.data_dir) / 'mlflow'}"),
            "config": (f"project.{what}_uri of the run config", f"fix project.{what}_uri"),
            "stack": ("the active stack's experiment tracker",
                      "fix its tracking_uri (`geomas stack show`)"),
            "embedded": ("the embedded store", "check the data dir"),
        }[item.source]
        raise TrackingUnreachable(
            f"MLflow {what} server {item.shown} (from {origin}) cannot be reached ({why}); "
            f"start it, or {fix}",
            uri=item.shown,
        )


def ensure_experiment(name: str, data_dir: Path) -> str:
    """Create the MLflow experiment on the resolved store; return its id.

    On the embedded store its artifacts go inside the data dir (MLflow's SQLite store would
    otherwise put them in `./mlruns` under the current directory); a tracking server decides
    its own artifact location.
    """
    import mlflow

    target = current_tracking(data_dir)
    client = mlflow.MlflowClient(tracking_uri=target.tracking.uri,
                                 registry_uri=target.registry.uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    if not target.embedded:
        return str(client.create_experiment(name))
    _, artifacts = mlflow_paths(data_dir)
    location = (artifacts / name).resolve().as_uri()
    return str(client.create_experiment(name, artifact_location=location))


@contextlib.contextmanager
def mlflow_run(
    data_dir: Path, experiment: str, run_name: str, tags: Mapping[str, str] | None = None
) -> Iterator[Any]:
    """Use the active MLflow run (inside a ZenML step) or start one on the resolved store."""
    import mlflow

    active = mlflow.active_run()
    if active is not None:
        if tags:
            mlflow.set_tags(dict(tags))
        yield active
        return
    target = current_tracking(data_dir)
    require_reachable(target)
    if target.embedded:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
    use_tracking(target)
    mlflow.set_tracking_uri(target.tracking.uri)
    mlflow.set_registry_uri(target.registry.uri)
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
