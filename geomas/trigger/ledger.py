"""The retrain ledger: one MLflow run per launch, keyed by the data hash.

MLflow is the store both stacks share (SQLite locally, the tracking server on a cluster), so
checks running anywhere see the same launches. A launch is `launched` while its pipelines
run, then `completed` or `failed`; a failed launch may be retried, a completed or running one
is never repeated for the same data. A `launched` entry older than the stale limit (a killed
check) counts as failed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

KEY_TAG = "geomas.retrain.data_hash"
STATUS_TAG = "geomas.retrain.status"
Status = Literal["launched", "completed", "failed"]


def ledger_experiment(client: MlflowClient, experiment_name: str) -> str:
    """The id of the ledger experiment `<experiment>-retrain`, created on first use."""
    name = f"{experiment_name}-retrain"
    exp = client.get_experiment_by_name(name)
    return str(exp.experiment_id) if exp is not None else str(client.create_experiment(name))


def blocking_launch(client: MlflowClient, experiment_id: str, key: str,
                    stale_after_s: float) -> tuple[str, Status] | None:
    """A launch for `key` that forbids another: completed, or launched and not stale."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{key}'",
                              order_by=["attributes.start_time DESC"])
    now_ms = time.time() * 1000
    for run in runs:
        status = run.data.tags.get(STATUS_TAG)
        if status == "completed":
            return run.info.run_id, "completed"
        if status == "launched" and now_ms - run.info.start_time < stale_after_s * 1000:
            return run.info.run_id, "launched"
    return None


def open_launch(client: MlflowClient, experiment_id: str, key: str,
                numbers: dict[str, float]) -> str:
    """Record a launch for `key` (status launched) with the decision's numbers."""
    run = client.create_run(experiment_id, run_name=f"retrain-{key[:12]}",
                            tags={KEY_TAG: key, STATUS_TAG: "launched"})
    for name, value in numbers.items():
        client.log_metric(run.info.run_id, name, float(value))
    return str(run.info.run_id)


def close_launch(client: MlflowClient, run_id: str, status: Status, note: str = "") -> None:
    """Mark a launch completed or failed."""
    client.set_tag(run_id, STATUS_TAG, status)
    if note:
        client.set_tag(run_id, "geomas.retrain.note", note[:5000])
    client.set_terminated(run_id, "FINISHED" if status == "completed" else "FAILED")
