"""The retrain ledger: one MLflow run per launch, keyed by the data hash.

MLflow is the store both stacks share (SQLite locally, the tracking server on a cluster), so
checks running anywhere see the same launches. A launch is `launched` while its pipelines
run, then `completed` or `failed`:

- completed: the same data is never launched again;
- launched: blocks while its process lives. The entry records the launching process (pid,
  its start time, host) and a heartbeat the process renews while the pipelines run; a launch
  whose process is gone (same host: the pid is dead or reused; another host: no heartbeat for
  `HEARTBEAT_MISSES` intervals) is marked failed (`gone`) by the next check, with the MLflow
  runs it left RUNNING closed as FAILED, and launched again;
- failed (`error`: the pipelines failed): not launched again on its own, since the same data
  would fail the same way on every scheduled check; `--retry-failed` launches it again, and
  `--clear KEY` drops a key's entries.

The pipelines a launch starts carry the tag `LAUNCH_TAG` = the ledger run id, so the runs of a
dead launch can be found and closed. The ledger experiment's own tags hold the pause of the
checks (`geomas.trigger.pause`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel

from geomas.errors import InputError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

log = logging.getLogger(__name__)

KEY_TAG = "geomas.retrain.data_hash"
STATUS_TAG = "geomas.retrain.status"
NOTE_TAG = "geomas.retrain.note"
FAILURE_TAG = "geomas.retrain.failure"
PID_TAG = "geomas.retrain.pid"
PID_START_TAG = "geomas.retrain.pid_start"
HOST_TAG = "geomas.retrain.host"
HEARTBEAT_TAG = "geomas.retrain.heartbeat"
#: On the MLflow runs (and, as `key=value`, the ZenML runs) of the pipelines a launch starts.
LAUNCH_TAG = "geomas.retrain.launch"
#: Heartbeats a launch on another host may miss before it counts as gone.
HEARTBEAT_MISSES = 5
Status = Literal["launched", "completed", "failed"]
Failure = Literal["error", "gone"]


class LedgerEntry(BaseModel):
    """One launch as the ledger records it."""

    run_id: str
    key: str
    status: Status
    started: float
    failure: Failure | None = None
    note: str = ""
    pid: int | None = None
    pid_start: str | None = None
    host: str | None = None
    heartbeat: float | None = None

    def where(self) -> str:
        """`pid P on host H`, or what is known of it."""
        return f"pid {self.pid} on host {self.host}" if self.pid else "a process of an older " \
            "geomas (no pid recorded)"


class GoneLaunch(BaseModel):
    """A launch whose process is gone, as a check found it (and closed it unless dry run)."""

    ledger_run_id: str
    data_hash: str
    reason: str
    #: failed, or completed when its training run finished on the stack without the process
    status: Status = "failed"
    closed_runs: list[str] = []
    marked: bool = False


#: ZenML run states of a run that has not ended.
IN_PROGRESS = frozenset({"initializing", "provisioning", "queued", "running", "retrying",
                         "resuming", "paused", "stopping", "cancelling"})


class LaunchRun(BaseModel):
    """A pipeline run a launch started, as the stack records it."""

    run_id: str
    name: str
    pipeline: str
    status: str
    #: on the local orchestrator, i.e. inside the launching process (dies with it)
    local: bool

    @property
    def in_progress(self) -> bool:
        """The run has not ended (as far as the stack knows)."""
        return self.status in IN_PROGRESS


class LaunchRuns(Protocol):
    """The stack's view of a launch's pipeline runs (ZenML; given by the caller)."""

    def runs(self, launch_id: str) -> list[LaunchRun]:
        """The runs tagged with the launch's ledger run id."""

    def fail(self, runs: list[LaunchRun], reason: str) -> list[str]:
        """Mark these runs (and their unfinished steps) failed; return what was closed."""


def ledger_experiment(client: MlflowClient, experiment_name: str,
                      create: bool = True) -> str | None:
    """The id of the ledger experiment `<experiment>-retrain`, created on first use."""
    name = f"{experiment_name}-retrain"
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    return str(client.create_experiment(name)) if create else None


def _entry(run: Run) -> LedgerEntry:
    tags = run.data.tags
    info = run.info
    status = tags.get(STATUS_TAG, "launched")

    def number(tag: str) -> float | None:
        try:
            return float(tags[tag])
        except (KeyError, ValueError):
            return None

    pid = number(PID_TAG)
    if status not in ("launched", "completed", "failed"):
        status = "failed"
    # failures recorded before the tag existed were pipeline errors
    failure = tags.get(FAILURE_TAG) if status == "failed" else None
    if status == "failed" and failure not in ("error", "gone"):
        failure = "error"
    return LedgerEntry.model_validate(dict(
        run_id=info.run_id, key=tags.get(KEY_TAG, ""), status=status,
        started=info.start_time / 1000, failure=failure,
        note=tags.get(NOTE_TAG, ""), pid=int(pid) if pid is not None else None,
        pid_start=tags.get(PID_START_TAG), host=tags.get(HOST_TAG),
        heartbeat=number(HEARTBEAT_TAG),
    ))


def entries(client: MlflowClient, experiment_id: str, key: str | None = None,
            status: Status | None = None) -> list[LedgerEntry]:
    """Ledger entries, newest first: for one key and/or in one status."""
    filters = []
    if key is not None:
        filters.append(f"tags.`{KEY_TAG}` = '{key}'")
    if status is not None:
        filters.append(f"tags.`{STATUS_TAG}` = '{status}'")
    runs = client.search_runs([experiment_id], filter_string=" and ".join(filters),
                              order_by=["attributes.start_time DESC"], max_results=1000)
    return [_entry(run) for run in runs]


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    # after the command: state, ppid, ... starttime is field 22 of stat, 20 after the ')'
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int, start: str | None) -> bool:
    """Whether `pid` is still the process that was started (not a zombie, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        state = ""
    if state in ("Z", "X"):
        return False  # killed, not yet reaped
    current = process_start(pid)
    return not (start and current and current != start)  # a reused pid is another process


def gone_reason(entry: LedgerEntry, heartbeat_s: float, stale_after_s: float,
                now: float | None = None) -> str | None:
    """Why a `launched` entry's process is gone, or None while it may still run.

    Args:
        entry: A `launched` entry.
        heartbeat_s: How often a launch renews its heartbeat.
        stale_after_s: For entries without a pid (older geomas): the age that counts as gone.
        now: The time (default: now).
    """
    now = time.time() if now is None else now
    if entry.pid is None:
        if now - entry.started > stale_after_s:
            return (f"launched {(now - entry.started) / 3600:.1f} h ago with no pid or heartbeat "
                    f"recorded, older than retrain.stale_launch_hours")
        return None
    if entry.host == socket.gethostname():
        if entry.pid == os.getpid():
            return f"launched by this process ({entry.where()}), which is no longer launching it"
        if not process_alive(entry.pid, entry.pid_start):
            return f"the launching process ({entry.where()}) is gone"
        return None
    last = entry.heartbeat or entry.started
    if now - last > HEARTBEAT_MISSES * heartbeat_s:
        return (f"no heartbeat from the launching process ({entry.where()}) for "
                f"{now - last:.0f} s (expected every {heartbeat_s:.0f} s)")
    return None


def open_launch(client: MlflowClient, experiment_id: str, key: str,
                numbers: dict[str, float]) -> str:
    """Record a launch for `key` (status launched) by this process, with the decision's numbers."""
    pid = os.getpid()
    tags = {KEY_TAG: key, STATUS_TAG: "launched", PID_TAG: str(pid),
            HOST_TAG: socket.gethostname(), HEARTBEAT_TAG: f"{time.time():.3f}"}
    start = process_start(pid)
    if start:
        tags[PID_START_TAG] = start
    run = client.create_run(experiment_id, run_name=f"retrain-{key[:12]}", tags=tags)
    for name, value in numbers.items():
        client.log_metric(run.info.run_id, name, float(value))
    return str(run.info.run_id)


def close_launch(client: MlflowClient, run_id: str, status: Status, note: str = "",
                 failure: Failure | None = None) -> None:
    """Mark a launch completed or failed (and its MLflow run FINISHED or FAILED)."""
    client.set_tag(run_id, STATUS_TAG, status)
    if status == "failed":
        client.set_tag(run_id, FAILURE_TAG, failure or "error")
    if note:
        client.set_tag(run_id, NOTE_TAG, note[:5000])
    client.set_terminated(run_id, "FINISHED" if status == "completed" else "FAILED")


def close_gone(client: MlflowClient, entry: LedgerEntry, reason: str,
               experiment_ids: list[str], status: Status = "failed") -> list[str]:
    """Close a gone launch (failed, or completed) and its MLflow runs left RUNNING as FAILED.

    Returns:
        The ids of the MLflow runs that were closed.
    """
    closed = []
    if experiment_ids:
        runs = client.search_runs(
            experiment_ids,
            filter_string=f"tags.`{LAUNCH_TAG}` = '{entry.run_id}' and "
                          "attributes.status = 'RUNNING'")
        for run in runs:
            client.set_tag(run.info.run_id, NOTE_TAG, f"closed by a retrain check: {reason}")
            client.set_terminated(run.info.run_id, "FAILED")
            closed.append(str(run.info.run_id))
    close_launch(client, entry.run_id, status, f"gone: {reason}",
                 failure="gone" if status == "failed" else None)
    return closed


@contextlib.contextmanager
def heartbeat(client: MlflowClient, run_id: str, every_s: float) -> Iterator[None]:
    """Renew the launch's heartbeat tag every `every_s` seconds while the block runs.

    Checks on other hosts (a CronJob's next pod) cannot see this process; its heartbeat is how
    they tell a running launch from a dead one.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                client.set_tag(run_id, HEARTBEAT_TAG, f"{time.time():.3f}")
            except Exception as exc:  # noqa: BLE001 - a missed beat must not stop the training
                log.warning("retrain ledger heartbeat of %s not written: %s", run_id, exc)

    thread = threading.Thread(target=beat, name="geomas-retrain-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def find_key(client: MlflowClient, experiment_id: str | None, prefix: str,
             experiment_name: str) -> str:
    """The full data hash of the ledger key starting with `prefix`.

    Raises:
        InputError: no entry, or several keys, start with it.
    """
    prefix = prefix.strip().lower()
    keys = sorted({e.key for e in entries(client, experiment_id)} if experiment_id else set())
    found = [k for k in keys if k.startswith(prefix)] if prefix else []
    if len(found) == 1:
        return found[0]
    ledger = f"{experiment_name}-retrain"
    if not found:
        raise InputError(f"no retrain ledger entry for data {prefix!r} in MLflow experiment "
                         f"{ledger}; `geomas retrain check --dry-run` prints the data hash")
    raise InputError(f"data {prefix!r} matches {len(found)} ledger keys in {ledger} "
                     f"({', '.join(k[:12] for k in found)}); give more of the hash")


def clear(client: MlflowClient, experiment_id: str, key: str) -> list[str]:
    """Drop every ledger entry of `key` (a RUNNING one is closed as FAILED first)."""
    dropped = []
    for entry in entries(client, experiment_id, key):
        if entry.status == "launched":
            close_launch(client, entry.run_id, "failed", "cleared by hand", failure="gone")
        client.delete_run(entry.run_id)
        dropped.append(entry.run_id)
    return dropped
