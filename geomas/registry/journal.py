"""Registry writes as small transactions: the intent first, idempotent writes, then repair.

A promotion writes several things — two or three aliases, decision tags on the versions, an
audit run — and MLflow has no transaction over them. So every multi-write operation first
stores its whole plan (the *intent*) as one tag on the registered model, then applies the
writes, each of which can be repeated safely, and finally deletes the intent. A failure in
between leaves the intent behind; the next geomas registry call (or `geomas models repair`)
applies it again and the operation completes. A failure before the intent is stored leaves
the registry exactly as it was.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from geomas.errors import GeomasError
from geomas.registry.audit import AuditEntry, record_move

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

#: Registered-model tag holding the pending intent (JSON).
PENDING_TAG = "geomas.pending"
#: Placeholder for the version a pending registration has not created yet.
NEW_VERSION = "$new"


class RegistryInconsistent(GeomasError):
    """The aliases contradict the audit trail; `geomas models repair NAME` restores them."""


class Intent(BaseModel):
    """The writes of one registry operation, applied in this order."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    op: Literal["gate", "promote", "rollback", "register", "repair"]
    model: str
    started: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    run_id: str | None = Field(default=None, description="register: the run whose model "
                               "becomes the new version (found again by repair).")
    version_tags: dict[str, dict[str, str]] = Field(default_factory=dict)
    set_aliases: dict[str, str] = Field(default_factory=dict)
    delete_aliases: list[str] = Field(default_factory=list)
    audit: AuditEntry | None = None

    def with_version(self, version: str) -> Intent:
        """The intent with `NEW_VERSION` replaced by the created version."""
        def fill(value: str) -> str:
            return version if value == NEW_VERSION else value

        return self.model_copy(update={
            "version_tags": {fill(v): tags for v, tags in self.version_tags.items()},
            "set_aliases": {alias: fill(v) for alias, v in self.set_aliases.items()},
            "audit": self.audit.model_copy(update={"to_version": fill(self.audit.to_version)})
            if self.audit else None,
        })


def pending(name: str, client: MlflowClient) -> Intent | None:
    """The intent left by an interrupted operation on `name`, if any."""
    from mlflow.exceptions import MlflowException

    try:
        tags = client.get_registered_model(name).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    raw = tags.get(PENDING_TAG)
    return Intent.model_validate_json(raw) if raw else None


def begin(client: MlflowClient, intent: Intent) -> None:
    """Store the intent: from here on the operation completes, now or on the next call."""
    client.set_registered_model_tag(intent.model, PENDING_TAG,
                                    json.dumps(intent.model_dump(mode="json"), ensure_ascii=False))


def _delete_alias(client: MlflowClient, name: str, alias: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise


def _audited(client: MlflowClient, intent: Intent) -> bool:
    """Whether the intent's audit run exists already (an earlier apply got that far)."""
    from geomas.registry.audit import audit_experiment

    exp = client.get_experiment_by_name(audit_experiment(intent.model))
    if exp is None:
        return False
    runs = client.search_runs([exp.experiment_id],
                              filter_string=f"tags.`audit.intent` = '{intent.id}'", max_results=1)
    return bool(runs)


def apply(client: MlflowClient, intent: Intent) -> None:
    """Apply every write of the intent (each is idempotent), then clear it."""
    name = intent.model
    for version, tags in intent.version_tags.items():
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    for alias, version in intent.set_aliases.items():
        client.set_registered_model_alias(name, alias, version)
    for alias in intent.delete_aliases:
        _delete_alias(client, name, alias)
    if intent.audit is not None and not _audited(client, intent):
        record_move(client, intent.audit, intent_id=intent.id)
    client.delete_registered_model_tag(name, PENDING_TAG)


def run(client: MlflowClient, intent: Intent) -> None:
    """Repair what an earlier operation left, then store and apply `intent`."""
    repair_pending(intent.model, client)
    begin(client, intent)
    apply(client, intent)


def repair_pending(name: str, client: MlflowClient) -> str | None:
    """Complete an interrupted operation on `name`; a one-line account, or None."""
    intent = pending(name, client)
    if intent is None:
        return None
    if NEW_VERSION in intent.set_aliases.values() or NEW_VERSION in intent.version_tags:
        found = [mv for mv in client.search_model_versions(f"name='{name}'")
                 if intent.run_id and mv.run_id == intent.run_id]
        if not found:
            client.delete_registered_model_tag(name, PENDING_TAG)
            note = (f"{name}: the registration started {intent.started} created no version; "
                    "its intent is dropped")
            log.warning("%s", note)
            return note
        intent = intent.with_version(str(max(int(mv.version) for mv in found)))
    apply(client, intent)
    note = f"{name}: completed the {intent.op} interrupted at {intent.started} ({intent.id[:8]})"
    log.warning("%s", note)
    return note
