"""Pausing the retrain schedule: tags on the retrain ledger's MLflow experiment.

Checks run from many places — the `geomas-retrain` CronJob, ZenML's schedule of the
`retrain_check` pipeline (`geomas retrain schedule`), a system cron calling `geomas retrain
check`, `geomas retrain watch`, the panel's retrain-check runs — and all of them read the
ledger experiment `<experiment>-retrain` (`geomas.trigger.ledger`). A pause kept there is seen
by every one of them without touching the scheduler itself: a paused check starts, finds the
pause and returns `paused` (`geomas.trigger.check.check_retrain`) without hashing the corpus,
recovering gone launches or launching anything.

Tags: `geomas.retrain.paused` (`true`/`false`), who paused it, when (UTC, ISO 8601) and why;
a resume records who resumed it and when. The flag is written last on a pause and first on a
resume, so a check never sees a pause without its reason. Setting the flag to `true` by hand
(the MLflow UI) pauses too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from geomas.errors import InputError
from geomas.trigger import ledger

if TYPE_CHECKING:
    from mlflow import MlflowClient

PAUSED_TAG = "geomas.retrain.paused"
PAUSED_BY_TAG = "geomas.retrain.paused_by"
PAUSED_AT_TAG = "geomas.retrain.paused_at"
PAUSE_REASON_TAG = "geomas.retrain.pause_reason"
RESUMED_BY_TAG = "geomas.retrain.resumed_by"
RESUMED_AT_TAG = "geomas.retrain.resumed_at"
#: The longest pause reason kept (MLflow tag values have a limit; a reason is a sentence).
MAX_REASON = 1000
RESUME_HINT = "run `geomas retrain resume --config ...` to resume"


class RetrainPause(BaseModel):
    """The last pause or resume of the retrain schedule, as the ledger experiment records it."""

    paused: bool
    #: who paused (paused) or resumed (not paused) it
    by: str
    #: when, UTC ISO 8601 ("" when the flag was set by hand)
    at: str
    #: why it was paused ("" after a resume)
    reason: str = ""

    def describe(self) -> str:
        """`paused by X at T: why; run ... to resume`, or `resumed by X at T`."""
        when = f" at {self.at}" if self.at else ""
        if not self.paused:
            return f"resumed by {self.by}{when}"
        return (f"retrain checks are paused by {self.by}{when}: {self.reason or 'no reason given'}"
                f"; {RESUME_HINT}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _tags(client: MlflowClient, experiment_id: str) -> dict[str, str]:
    return dict(client.get_experiment(experiment_id).tags or {})


def pause_record(client: MlflowClient, experiment_name: str) -> RetrainPause | None:
    """The last pause or resume recorded for the project's checks; None when there was none.

    Args:
        client: MLflow client of the project's tracking store.
        experiment_name: The project's experiment (`project.experiment_name`); the pause lives
            on its ledger experiment `<experiment>-retrain`, which this does not create.
    """
    experiment_id = ledger.ledger_experiment(client, experiment_name, create=False)
    if experiment_id is None:
        return None
    tags = _tags(client, experiment_id)
    flag = tags.get(PAUSED_TAG, "").strip().lower()
    if flag in ("true", "1", "yes"):
        return RetrainPause(paused=True, by=tags.get(PAUSED_BY_TAG) or "unknown (tag set by hand)",
                            at=tags.get(PAUSED_AT_TAG, ""), reason=tags.get(PAUSE_REASON_TAG, ""))
    if tags.get(RESUMED_BY_TAG):
        return RetrainPause(paused=False, by=tags[RESUMED_BY_TAG], at=tags.get(RESUMED_AT_TAG, ""))
    return None


def paused_state(client: MlflowClient, experiment_name: str) -> RetrainPause | None:
    """The pause in force, or None while retrain checks are active."""
    record = pause_record(client, experiment_name)
    return record if record is not None and record.paused else None


def pause(client: MlflowClient, experiment_name: str, actor: str, reason: str) -> RetrainPause:
    """Pause every retrain check of the project until `resume` (a pause in force is replaced).

    Args:
        client: MLflow client of the project's tracking store (where the checks look).
        experiment_name: The project's experiment; its ledger experiment is created if needed.
        actor: Who pauses it (a user name).
        reason: Why; required, shown by every paused check and on the panel.

    Raises:
        InputError: no reason or actor, or a reason longer than MAX_REASON characters.
    """
    reason = " ".join(reason.split())
    if not reason:
        raise InputError("a pause needs a reason (--reason TEXT): every paused check prints it, "
                         "so whoever finds the schedule paused knows why")
    if len(reason) > MAX_REASON:
        raise InputError(f"the pause reason has {len(reason)} characters; keep it under "
                         f"{MAX_REASON}")
    if not actor.strip():
        raise InputError("a pause needs the actor's name (--actor NAME)")
    experiment_id = ledger.ledger_experiment(client, experiment_name)
    assert experiment_id is not None
    state = RetrainPause(paused=True, by=actor.strip(), at=_now(), reason=reason)
    client.set_experiment_tag(experiment_id, PAUSED_BY_TAG, state.by)
    client.set_experiment_tag(experiment_id, PAUSED_AT_TAG, state.at)
    client.set_experiment_tag(experiment_id, PAUSE_REASON_TAG, state.reason)
    client.set_experiment_tag(experiment_id, PAUSED_TAG, "true")  # last: the reason is there
    return state


def resume(client: MlflowClient, experiment_name: str, actor: str) -> RetrainPause | None:
    """Lift the pause: the next check decides from the thresholds again.

    Returns:
        The pause that was lifted, or None when the checks were not paused (nothing changes).
    """
    lifted = paused_state(client, experiment_name)
    if lifted is None:
        return None
    experiment_id = ledger.ledger_experiment(client, experiment_name, create=False)
    assert experiment_id is not None
    client.set_experiment_tag(experiment_id, PAUSED_TAG, "false")  # first: checks go on
    client.set_experiment_tag(experiment_id, RESUMED_BY_TAG, actor.strip() or "unknown")
    client.set_experiment_tag(experiment_id, RESUMED_AT_TAG, _now())
    return lifted
