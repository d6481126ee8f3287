"""`geomas init` and `geomas stack`: the embedded stack, imported ones, the active one.

Every command takes `--data-dir` like the others: the project's ZenML config location is set
before ZenML is imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geomas.cli.app import (
    DEFAULT_DATA_DIR,
    DataDirOpt,
    OptionalRunConfigOpt,
    TrackingUriOpt,
    app,
    out,
    project,
    run_config,
    stack_app,
)


@app.command()
def init(data_dir: DataDirOpt = None, tracking_uri: TrackingUriOpt = None) -> None:
    """Create the embedded stack (ZenML + MLflow on SQLite, or the MLflow resolved) here."""
    from geomas.stack import ensure_local_stack
    from geomas.tracking import ensure_experiment, mask_uri

    path = project(data_dir, tracking_uri)
    info = ensure_local_stack(path)
    ensure_experiment("geomas", path)
    out.print(f"stack [bold]{info.stack_name}[/] is active")
    out.print(f"  ZenML config : {info.zenml_config_dir}", markup=False)
    out.print(f"  MLflow       : {mask_uri(info.tracking_uri)}", markup=False)
    out.print(f"  created      : {', '.join(info.created) or 'nothing (already set up)'}",
              markup=False)


def _data_dir(data_dir: Path | None) -> Path:
    return data_dir or DEFAULT_DATA_DIR


@stack_app.command("import")
def import_cmd(
    file: Annotated[
        Path, typer.Argument(help="Stack file (`zenml stack export` format).")
    ] = Path("zenml_stack.yaml"),
    name: Annotated[
        str | None, typer.Option("--name", help="Stack name (default: the file's stack_name).")
    ] = None,
    activate: Annotated[
        bool, typer.Option("--activate", help="Make the imported stack the active one.")
    ] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Register a stack file's components and stack (what `zenml stack import` does)."""
    from geomas.stack import import_stack

    result = import_stack(file, _data_dir(data_dir), name=name, activate=activate)
    if result.already_imported:
        out.print(f"stack [bold]{result.stack_name}[/] is already imported (same components)")
    else:
        out.print(f"stack [bold]{result.stack_name}[/] imported into {result.store_url}",
                  highlight=False)
    for item in result.created:
        out.print(f"  created : {item}", markup=False)
    for item in result.reused:
        out.print(f"  reused  : {item}", markup=False)
    if result.active:
        out.print(f"stack [bold]{result.stack_name}[/] is active")
    if result.store_is_local:
        out.print(
            "note: this is the data dir's local ZenML store; pods on Kubernetes cannot reach "
            "it. To run there, log in to the ZenML server with this data dir "
            "(ZENML_CONFIG_PATH=<data dir>/zenml zenml login <server URL>) and import again.",
            markup=False,
        )


@stack_app.command("local")
def local_cmd(data_dir: DataDirOpt = None, tracking_uri: TrackingUriOpt = None) -> None:
    """Activate the embedded stack (created if needed); leaves a remote ZenML server."""
    from geomas.stack import use_local_stack
    from geomas.tracking import mask_uri

    info, left = use_local_stack(project(data_dir, tracking_uri))
    if left:
        out.print(f"disconnected from the ZenML server {left}", markup=False)
    out.print(f"stack [bold]{info.stack_name}[/] is active")
    out.print(f"  ZenML config : {info.zenml_config_dir}", markup=False)
    out.print(f"  MLflow       : {mask_uri(info.tracking_uri)}", markup=False)


@stack_app.command("show")
def show_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
    config: OptionalRunConfigOpt = None,
) -> None:
    """Print the active stack, its components (secrets masked) and where MLflow is, and why."""
    from geomas.stack import active_stack

    if config is not None:
        path = Path(run_config(config, data_dir, tracking_uri).project.data_dir)
    else:
        path = project(data_dir, tracking_uri)
    stack = active_stack(path)
    if as_json:
        out.print_json(json.dumps(stack.model_dump()))
        return
    out.print(f"active stack [bold]{stack.name}[/] ({stack.store_url})", highlight=False)
    mlflow = stack.mlflow
    out.print(f"  MLflow tracking    : {mlflow['tracking_uri']} (from "
              f"{mlflow['tracking_source']})", markup=False, highlight=False)
    out.print(f"  MLflow registry    : {mlflow['registry_uri']} (from "
              f"{mlflow['registry_source']})", markup=False, highlight=False)
    from geomas.names import LOCAL_STACK_NAME, TRACKER_NAME

    tracker = next((c for c in stack.components if c.name == TRACKER_NAME), None)
    if (stack.name == LOCAL_STACK_NAME and tracker is not None
            and tracker.configuration.get("tracking_uri") != mlflow["tracking_uri"]):
        out.print("  note: the embedded stack's tracker below still points elsewhere; the next "
                  "`geomas init` or pipeline run points it at the tracking URI above",
                  markup=False, highlight=False)
    for comp in sorted(stack.components, key=lambda c: c.type):
        out.print(f"  {comp.type:<19}: {comp.name} ({comp.flavor})", markup=False)
        for key, value in sorted(comp.configuration.items()):
            out.print(f"      {key} = {json.dumps(value)}", markup=False, highlight=False)
