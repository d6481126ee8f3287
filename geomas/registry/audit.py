"""Audit trail of registry alias moves: who moved `champion` from which version to which, why.

Every move — the training pipeline's gate, `geomas promote`, `geomas rollback`, forced or not —
appends one MLflow run to the experiment ``<registered model>-registry-audit``: tags say the
action, the versions, the actor (``--actor`` or the OS user), the reason and whether the move
was forced; the moved-to version's metrics are logged as the run's metrics (a snapshot). Runs
are only ever created, so the log is append-only in MLflow's own store (a SQL database or a
server), next to the registry it describes. `geomas models history NAME` prints it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from mlflow import MlflowClient

AUDIT_SUFFIX = "-registry-audit"
Action = Literal["gate", "promote", "rollback", "repair"]


class AuditEntry(BaseModel):
    """One alias move."""

    model: str
    action: Action
    alias: str = "champion"
    from_version: str | None
    to_version: str
    actor: str
    reason: str
    forced: bool = False
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    metrics: dict[str, float] = Field(default_factory=dict,
                                      description="The moved-to version's metrics then.")


def audit_experiment(model: str) -> str:
    """Name of the audit experiment of a registered model."""
    return f"{model}{AUDIT_SUFFIX}"


def current_actor(actor: str | None = None) -> str:
    """`actor`, else the OS user (GEOMAS_ACTOR overrides it, e.g. in a CronJob)."""
    if actor:
        return actor
    env = os.environ.get("GEOMAS_ACTOR")
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def record_move(client: MlflowClient, entry: AuditEntry, intent_id: str | None = None) -> str:
    """Append `entry` as a finished run of the model's audit experiment; returns its run id.

    `intent_id` (tag ``audit.intent``) names the registry transaction that wrote it, so a
    repaired operation does not log its move twice (`geomas.registry.journal`).
    """
    name = audit_experiment(entry.model)
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(name)
    tags = {
        "audit.model": entry.model, "audit.action": entry.action, "audit.alias": entry.alias,
        "audit.from_version": entry.from_version or "none", "audit.to_version": entry.to_version,
        "audit.actor": entry.actor, "audit.reason": entry.reason,
        "audit.forced": str(entry.forced).lower(), "audit.at": entry.at,
    }
    if intent_id:
        tags["audit.intent"] = intent_id
    run = client.create_run(
        exp_id, run_name=f"{entry.action} v{entry.from_version or '-'} -> v{entry.to_version}",
        tags=tags)
    for key, value in entry.metrics.items():
        client.log_metric(run.info.run_id, key, float(value))
    client.set_terminated(run.info.run_id, "FINISHED")
    return str(run.info.run_id)


def history(model: str, client: MlflowClient | None = None) -> list[AuditEntry]:
    """Every recorded move of `model`, oldest first (empty when none was recorded)."""
    import mlflow

    client = client or mlflow.MlflowClient()
    exp = client.get_experiment_by_name(audit_experiment(model))
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"],
                              max_results=50_000)
    out = []
    for run in runs:
        t = run.data.tags
        out.append(AuditEntry(
            model=t.get("audit.model", model), action=t["audit.action"],  # type: ignore[arg-type]
            alias=t.get("audit.alias", "champion"),
            from_version=None if t.get("audit.from_version") in (None, "none")
            else t["audit.from_version"],
            to_version=t["audit.to_version"], actor=t.get("audit.actor", "?"),
            reason=t.get("audit.reason", ""), forced=t.get("audit.forced") == "true",
            at=t.get("audit.at", ""), metrics=dict(run.data.metrics)))
    return out


def metrics_snapshot(metrics: Mapping[str, float] | None) -> dict[str, float]:
    """Finite numeric metrics only (MLflow rejects the rest)."""
    import math

    return {k: float(v) for k, v in (metrics or {}).items()
            if isinstance(v, int | float) and math.isfinite(float(v))}
