"""`geomas promote` / `geomas rollback`: move the champion alias through the promotion gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from geomas.cli.app import DataDirOpt, app, out, project


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if it is unsafe.")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Make a registered version the champion (refuses an unsafe move without --force)."""
    decision = _registry_call("promote", name, version, force, data_dir)
    out.print(f"{name} v{decision.version}: {decision.decision} ({decision.reason})",
              markup=False)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    force: Annotated[bool, typer.Option("--force")] = False,
    data_dir: DataDirOpt = None,
) -> None:
    """Restore the previous champion."""
    decision = _registry_call("rollback", name, None, force, data_dir)
    out.print(f"{name} v{decision.version}: {decision.decision} ({decision.reason})",
              markup=False)


def _registry_call(
    action: str, name: str, version: str | None, force: bool, data_dir: Path | None
) -> Any:
    import mlflow

    from geomas.registry import promotion
    from geomas.stack import sync_zenml_stages
    from geomas.tracking import mlflow_paths

    uri, _ = mlflow_paths(project(data_dir))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if action == "promote":
        assert version is not None
        decision = promotion.promote(name, version, force=force)
    else:
        decision = promotion.rollback(name, force=force)
    sync_zenml_stages(name)
    return decision
