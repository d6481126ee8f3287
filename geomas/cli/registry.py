"""`geomas promote`, `rollback`, `models history|verify|repair`: the champion alias, audited."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from geomas.cli.app import (
    DataDirOpt,
    OptionalRunConfigOpt,
    TrackingUriOpt,
    app,
    mlflow_project,
    models_app,
    out,
)

ActorOpt = Annotated[str | None, typer.Option(
    "--actor", help="Who moves the alias (default: the OS user); goes to the audit trail.")]
ReasonOpt = Annotated[str | None, typer.Option(
    "--reason", help="Why; required with --force; goes to the audit trail.")]


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    version: Annotated[str, typer.Argument(help="Version to make champion.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if it is unsafe.")] = False,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
    config: OptionalRunConfigOpt = None,
) -> None:
    """Make a registered version the champion (refuses an unsafe move without --force)."""
    mlflow_project(config, data_dir, tracking_uri)
    decision = _registry_call("promote", name, version, force, actor, reason)
    out.print(f"{name} v{decision.version}: {decision.decision} ({decision.reason})",
              markup=False)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    force: Annotated[bool, typer.Option("--force")] = False,
    actor: ActorOpt = None,
    reason: ReasonOpt = None,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
    config: OptionalRunConfigOpt = None,
) -> None:
    """Restore the previous champion."""
    mlflow_project(config, data_dir, tracking_uri)
    decision = _registry_call("rollback", name, None, force, actor, reason)
    out.print(f"{name} v{decision.version}: {decision.decision} ({decision.reason})",
              markup=False)


@models_app.command("history")
def history(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per move.")] = False,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
    config: OptionalRunConfigOpt = None,
) -> None:
    """Every move of the champion alias: when, what, from which version to which, who, why."""
    from rich.table import Table

    from geomas.registry.audit import audit_experiment, history

    mlflow_project(config, data_dir, tracking_uri)
    entries = history(name)
    if as_json:
        for e in entries:
            typer.echo(e.model_dump_json())
        return
    if not entries:
        out.print(f"{name}: no alias moves recorded ({audit_experiment(name)} is empty)",
                  markup=False)
        return
    table = Table(title=f"{name}: champion moves ({audit_experiment(name)})")
    for col in ("when (UTC)", "action", "from", "to", "actor", "forced", "reason", "metrics"):
        table.add_column(col, overflow="fold")
    for e in entries:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(e.metrics.items())
                          if "." not in k and not k.startswith("base_"))
        table.add_row(e.at, e.action, f"v{e.from_version}" if e.from_version else "-",
                      f"v{e.to_version}", e.actor, "yes" if e.forced else "no", e.reason, shown)
    out.print(table)


@models_app.command("verify")
def verify(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
    config: OptionalRunConfigOpt = None,
) -> None:
    """Check the champion is what geomas put there: audited, gated, intact (exit 1 if not)."""
    from geomas.registry.health import verify as check

    mlflow_project(config, data_dir, tracking_uri)
    problems = check(name)
    for line in problems:
        typer.echo(f"{name}: {line}", err=True)
    if problems:
        raise typer.Exit(1)
    from geomas.registry.promotion import CHAMPION, alias_version

    if alias_version(name, CHAMPION) is None:
        out.print(f"{name}: no champion yet, nothing moved outside geomas", markup=False)
        return
    out.print(f"{name}: champion is the audited, gated version and its files are intact",
              markup=False)


@models_app.command("repair")
def repair(
    name: Annotated[str, typer.Argument(help="Registered model, e.g. geomas-sft.")],
    actor: ActorOpt = None,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
    config: OptionalRunConfigOpt = None,
) -> None:
    """Complete an interrupted registry operation and restore the audited aliases."""
    from geomas.registry.health import repair as fix
    from geomas.stack import sync_zenml_stages

    mlflow_project(config, data_dir, tracking_uri)
    done = fix(name, actor=actor)
    sync_zenml_stages(name)
    out.print("\n".join(done) if done else f"{name}: nothing to repair", markup=False)


def _registry_call(
    action: str, name: str, version: str | None, force: bool,
    actor: str | None = None, reason: str | None = None,
) -> Any:
    """Promote or roll back on the registry `mlflow_project` resolved."""
    from geomas.registry import promotion
    from geomas.stack import sync_zenml_stages

    if action == "promote":
        assert version is not None
        decision = promotion.promote(name, version, force=force, actor=actor, reason=reason)
    else:
        decision = promotion.rollback(name, force=force, actor=actor, reason=reason)
    sync_zenml_stages(name)
    return decision
