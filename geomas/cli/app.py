"""The typer app, its sub-apps, shared options and the one error boundary of the CLI.

Every command module (data, training, registry, run, retrain, stack) registers its commands on
the apps defined here. Options that set a config field are derived from the config model
(`field_option`): the choices, the help text and the default come from the model, so a default
lives in one place.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.markup import escape

from geomas.config.base import validation_message
from geomas.errors import ConfigError, GeomasError
from geomas.progress import configure_output
from geomas.progress import console as progress_console

app = typer.Typer(
    name="geomas",
    help="Domain documents -> instruction datasets -> QLoRA-tuned LLM, as ZenML pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Run a ZenML pipeline on the active stack.", no_args_is_help=True)
models_app = typer.Typer(help="Local model utilities (no downloads).", no_args_is_help=True)
stack_app = typer.Typer(
    help="ZenML stacks: the embedded one (geomas-local) and imported ones (zenml_stack.yaml).",
    no_args_is_help=True,
)
retrain_app = typer.Typer(
    help="Retraining when enough new documents have arrived (never twice for the same data).",
    no_args_is_help=True,
)
app.add_typer(run_app, name="run")
app.add_typer(models_app, name="models")
app.add_typer(stack_app, name="stack")
app.add_typer(retrain_app, name="retrain")

#: Errors and logs on stderr (the console progress bars share), results on stdout; stdout
#: stays clean for `--json`.
console = progress_console
out = Console(soft_wrap=True)
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
RunConfigOpt = Annotated[
    Path, typer.Option("--config", help="Run config YAML (configs/local.yaml).")
]
OptionalRunConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Run config YAML: its project.data_dir and project."
                 "tracking_uri/registry_uri apply (below --data-dir, --tracking-uri and "
                 "MLFLOW_TRACKING_URI)."),
]
TrackingUriOpt = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking (and registry) URI; overrides "
                 "MLFLOW_TRACKING_URI, the run config's project.tracking_uri and the embedded "
                 "store (`geomas stack show` prints what is used and why)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]

M = TypeVar("M", bound=BaseModel)


def field_option(model: type[BaseModel], field: str, *flags: str) -> Any:
    """A typer option for `model.field`: type, choices and help from the model; default None.

    The option's default is None ("not given"): the command passes only given options on to
    the model (`overrides`), whose own default then applies.
    """
    info = model.model_fields[field]
    default = info.get_default(call_default_factory=True)
    shown = default.value if hasattr(default, "value") else default
    text = (info.description or field.replace("_", " ")).rstrip(".")
    name = flags or (f"--{field.replace('_', '-')}",)
    return Annotated[
        info.annotation | None,  # type: ignore[operator]
        typer.Option(*name, help=f"{text} (config default: {shown})", show_default=False),
    ]


def overrides(**options: Any) -> dict[str, Any]:
    """The options that were given (not None), as config-model field values."""
    return {k: v for k, v in options.items() if v is not None}


def validated(model: type[M], data: dict[str, Any], what: str) -> M:
    """`model` from `data`, or a ConfigError naming each bad field and the fix."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}: {validation_message(exc)}") from exc


def section(config: Path | None, model: type[M], name: str, given: dict[str, Any]) -> M:
    """One config section (`name:` at the top, or under `data:` in a run config) + options."""
    base: dict[str, Any] = {}
    if config is not None:
        from geomas.config import load_yaml

        raw = load_yaml(config)
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        base = dict(raw.get(name) or (data or {}).get(name) or {})
    return validated(model, {**base, **given}, f"{name} options")


def project(data_dir: Path | None, tracking_uri: str | None = None,
            config: Any = None) -> Path:
    """Activate the project data dir and its MLflow URIs before anything imports ZenML.

    Args:
        data_dir: --data-dir (default .geomas).
        tracking_uri: --tracking-uri.
        config: The loaded run config, whose project.tracking_uri/registry_uri count below
            the flag and the environment.
    """
    from geomas.stack import activate_project

    section = config.project if config is not None else None
    return activate_project(
        data_dir or DEFAULT_DATA_DIR, tracking_uri=tracking_uri,
        config_tracking_uri=section.tracking_uri if section is not None else None,
        config_registry_uri=section.registry_uri if section is not None else None,
    )


def run_config(config: Path, data_dir: Path | None, tracking_uri: str | None = None) -> Any:
    """Load a run config, apply --data-dir, and activate the project before ZenML loads."""
    from geomas.config import RunConfig, load_config

    loaded = load_config(config, RunConfig)
    if data_dir is not None:
        loaded = loaded.model_copy(
            update={"project": loaded.project.model_copy(update={"data_dir": data_dir})}
        )
    project(loaded.project.data_dir, tracking_uri, loaded)
    return loaded


def mlflow_project(config: Path | None, data_dir: Path | None,
                   tracking_uri: str | None) -> Path:
    """Activate the project for a command that talks to MLflow only, and check it answers.

    Args:
        config: Optional run config (its data dir and MLflow URIs).
        data_dir: --data-dir (over the config's).
        tracking_uri: --tracking-uri.

    Raises:
        TrackingUnreachable: the resolved server does not answer.
    """
    from geomas.tracking import current_tracking, require_reachable

    if config is not None:
        path = Path(run_config(config, data_dir, tracking_uri).project.data_dir)
    else:
        path = project(data_dir, tracking_uri)
    require_reachable(current_tracking(path))
    return path


def progress_enabled() -> bool:
    """Interactive progress bars only on a terminal (library code logs progress otherwise)."""
    return sys.stderr.isatty()


def print_json(model: BaseModel) -> None:
    """A pydantic model as JSON on stdout (nothing else goes to stdout with --json)."""
    sys.stdout.write(json.dumps(model.model_dump(mode="json"), ensure_ascii=False, indent=1))
    sys.stdout.write("\n")


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs and full tracebacks.")
    ] = False,
) -> None:
    _STATE["verbose"] = verbose
    configure_output(verbose)


#: Expected failures that get one line, not a traceback: geomas's own errors, and what the OS,
#: pydantic, YAML and JSON raise on bad input that reached the CLI without a geomas wrapper.
_EXPECTED: tuple[type[BaseException], ...] = (GeomasError, OSError, ValidationError,
                                              json.JSONDecodeError, UnicodeDecodeError)


def _mlflow_message(exc: BaseException) -> str:
    """One line for an MLflow store error: where, what, and the fix for the common ones."""
    import mlflow

    text = " ".join(str(getattr(exc, "message", exc)).split())
    low = text.lower()
    where = mlflow.get_tracking_uri()
    if "readonly database" in low or "read-only" in low or "read only" in low:
        hint = "the store is read-only; give geomas write access to it or point it elsewhere"
    elif "no space left" in low or "disk is full" in low or "database or disk is full" in low:
        hint = "the disk is full; free space where the store lives and rerun"
    else:
        hint = "see `geomas -v ...` for the traceback"
    detail = text if len(text) <= 240 else text[:240] + "…"
    return f"MLflow store {where}: {detail} ({hint})"


def _message(exc: BaseException) -> str:
    if isinstance(exc, GeomasError):
        return str(exc)
    if type(exc).__module__.startswith(("mlflow", "sqlalchemy")):
        return _mlflow_message(exc)
    if isinstance(exc, ValidationError):
        return f"invalid {exc.title}: {validation_message(exc)}"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc} (check the path and its permissions)"
    return f"{type(exc).__name__}: {exc}"


def main() -> None:
    """Console-script entry point: one red line on an expected error, traceback with -v."""
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    expected: tuple[type[BaseException], ...] = (*_EXPECTED, MlflowException, SQLAlchemyError)
    # MLflow's SQL store logs each database error with its whole traceback before raising it;
    # the raised error becomes the one line below (the traceback shows with -v)
    logging.getLogger("mlflow.store.db.utils").addFilter(lambda _record: _STATE["verbose"])
    try:
        app()
    except expected as exc:
        if _STATE["verbose"]:
            console.print_exception()
        text = " ".join(_message(exc).split())
        console.print(f"[red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        raise SystemExit(130) from None
