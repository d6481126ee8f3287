"""The retrain ledger: dead launches, failed launches, --retry-failed, --clear, pause/resume.

Real MLflow (a SQLite store per test) and real processes: a launch is opened by a child
process that is then SIGKILLed, exactly what a check killed mid-launch leaves. The launcher is
the function `check_retrain` takes by design; the real pipelines, killed mid-training, are in
tests/integration/test_retrain.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from geomas.config import RunConfig
from geomas.errors import GeomasError, InputError
from geomas.trigger import check_retrain, ledger
from geomas.trigger.check import clear_launches

CHILD = r'''
import sys, time
import mlflow
from geomas.trigger import ledger
uri, experiment = sys.argv[1], sys.argv[2]
client = mlflow.MlflowClient(uri)
ledger_id = ledger.ledger_experiment(client, experiment)
run_id = ledger.open_launch(client, ledger_id, sys.argv[3], {"new_docs": 3.0})
pipelines = client.get_experiment_by_name(experiment) or None
exp_id = pipelines.experiment_id if pipelines else client.create_experiment(experiment)
step = client.create_run(exp_id, run_name="train_model", tags={ledger.LAUNCH_TAG: run_id})
print(run_id, step.info.run_id, flush=True)
time.sleep(600)
'''


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunConfig:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"r{i}.md").write_text(f"# Отчёт {i}\n\nТекст {i}.\n", encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return RunConfig.model_validate({
        "project": {"data_dir": str(tmp_path / "dd"), "experiment_name": "ledger-test"},
        "data": {"source_dir": str(docs), "output_dir": str(tmp_path / "out")},
        "training": {"model": "tiny", "train_file": "t.json", "val_file": "t.json",
                     "output_dir": str(tmp_path / "sft")},
        "retrain": {"min_new_docs": 1, "run_data_pipeline": False},
    })


class Launcher:
    """Records the tags of each launch; fails while `fail` is set."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, str]] = []
        self.fail = fail

    def __call__(self, config: RunConfig, tags: Mapping[str, str]) -> str:
        self.calls.append(dict(tags))
        if self.fail:
            raise GeomasError("step train_model failed: CUDA out of memory")
        return f"geomas_training-{len(self.calls)}"


def _client():  # type: ignore[no-untyped-def]
    import mlflow

    return mlflow.MlflowClient()


def _ledger_runs(config: RunConfig) -> list[ledger.LedgerEntry]:
    client = _client()
    exp = ledger.ledger_experiment(client, config.project.experiment_name, create=False)
    return ledger.entries(client, exp) if exp else []


def test_failed_launch_waits_for_retry_failed_and_clear_drops_the_entry(
    project: RunConfig,
) -> None:
    failing = Launcher(fail=True)
    first = check_retrain(project, launch=failing)
    assert first.outcome == "failed" and "CUDA out of memory" in first.reason
    [entry] = _ledger_runs(project)
    assert (entry.status, entry.failure) == ("failed", "error")
    assert _client().get_run(entry.run_id).info.status == "FAILED"
    # the launcher got the ledger run id as the tag of its pipeline runs
    assert failing.calls == [{ledger.LAUNCH_TAG: entry.run_id}]

    # the same data is not launched again on its own: it would fail the same way
    again = check_retrain(project, launch=failing)
    assert again.outcome == "skip" and len(failing.calls) == 1
    assert "failed in its last launch" in again.reason and "--retry-failed" in again.reason
    assert f"--clear {entry.key[:12]}" in again.reason

    working = Launcher()
    retried = check_retrain(project, launch=working, retry_failed=True)
    assert retried.outcome == "launched" and len(working.calls) == 1
    done = check_retrain(project, launch=working, retry_failed=True)
    assert done.outcome == "skip" and "already completed" in done.reason

    # --clear KEY (a prefix) drops every entry of the data: the next check decides anew
    with pytest.raises(InputError, match="no retrain ledger entry for data 'ffff'"):
        clear_launches(project, "ffff")
    cleared = clear_launches(project, entry.key[:12])
    assert cleared.outcome == "cleared" and "dropped 2 ledger entries" in cleared.reason
    assert _ledger_runs(project) == []
    assert check_retrain(project, launch=working).outcome == "launched"
    assert len(working.calls) == 2


def test_a_launch_whose_process_was_killed_is_closed_and_launched_again(
    project: RunConfig,
) -> None:
    import mlflow

    from geomas.trigger.watermark import corpus_watermark

    key = corpus_watermark(project.data.source_dir, project.data.ingest.extensions).data_hash
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mlflow.get_tracking_uri(),
         project.project.experiment_name, key],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    ledger_run, step_run = child.stdout.readline().split()
    launcher = Launcher()
    # alive: the launch blocks its data
    busy = check_retrain(project, launch=launcher)
    assert busy.outcome == "skip" and "still running" in busy.reason
    assert f"pid {child.pid} on host" in busy.reason and busy.gone_launches == []
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    dry = check_retrain(project, launch=launcher, dry_run=True)
    assert dry.outcome == "launch" and [g.marked for g in dry.gone_launches] == [False]
    assert _client().get_run(ledger_run).info.status == "RUNNING"  # a dry run changes nothing

    decision = check_retrain(project, launch=launcher)
    assert decision.outcome == "launched" and len(launcher.calls) == 1
    [gone] = decision.gone_launches
    assert gone.ledger_run_id == ledger_run and gone.marked and gone.status == "failed"
    assert f"pid {child.pid}" in gone.reason and "is gone" in gone.reason
    assert gone.closed_runs == [step_run]
    client = _client()
    assert client.get_run(ledger_run).info.status == "FAILED"
    assert client.get_run(ledger_run).data.tags[ledger.FAILURE_TAG] == "gone"
    assert client.get_run(step_run).info.status == "FAILED"
    assert [e.status for e in _ledger_runs(project)] == ["completed", "failed"]


def test_heartbeat_decides_for_a_launch_on_another_host(project: RunConfig) -> None:
    client = _client()
    exp = ledger.ledger_experiment(client, project.project.experiment_name)
    assert exp is not None
    from geomas.trigger.watermark import corpus_watermark

    key = corpus_watermark(project.data.source_dir, project.data.ingest.extensions).data_hash
    run_id = ledger.open_launch(client, exp, key, {})
    client.set_tag(run_id, ledger.HOST_TAG, "retrain-cronjob-28761-abcde")
    beat = project.retrain.launch_heartbeat_seconds
    client.set_tag(run_id, ledger.HEARTBEAT_TAG, f"{time.time() - 2 * beat:.3f}")
    launcher = Launcher()
    fresh = check_retrain(project, launch=launcher)
    assert fresh.outcome == "skip" and "still running" in fresh.reason
    client.set_tag(run_id, ledger.HEARTBEAT_TAG, f"{time.time() - 6 * beat:.3f}")
    stale = check_retrain(project, launch=launcher)
    assert stale.outcome == "launched" and len(launcher.calls) == 1
    assert "no heartbeat" in stale.gone_launches[0].reason


def test_heartbeat_is_renewed_while_the_launch_runs(project: RunConfig) -> None:
    client = _client()
    exp = ledger.ledger_experiment(client, "beat")
    assert exp is not None
    run_id = ledger.open_launch(client, exp, "k" * 64, {})
    first = float(client.get_run(run_id).data.tags[ledger.HEARTBEAT_TAG])
    with ledger.heartbeat(client, run_id, every_s=0.2):
        time.sleep(1.0)
    assert float(client.get_run(run_id).data.tags[ledger.HEARTBEAT_TAG]) > first + 0.5


def test_gone_reason_on_this_host(tmp_path: Path) -> None:
    import socket

    def entry(**update: object) -> ledger.LedgerEntry:
        return ledger.LedgerEntry.model_validate(
            {"run_id": "r", "key": "k", "status": "launched", "started": time.time(),
             "host": socket.gethostname(), **update})

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = ledger.process_start(sleeper.pid)
        assert ledger.gone_reason(entry(pid=sleeper.pid, pid_start=start), 60, 3600) is None
        # the same pid with another start time is another process (pid reuse)
        reused = entry(pid=sleeper.pid, pid_start="1")
        assert "is gone" in str(ledger.gone_reason(reused, 60, 3600))
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "is gone" in str(ledger.gone_reason(entry(pid=sleeper.pid), 60, 3600))
    assert "this process" in str(ledger.gone_reason(entry(pid=os.getpid()), 60, 3600))
    # entries of an older geomas (no pid): only their age counts
    old = entry(started=time.time() - 7200)
    assert ledger.gone_reason(old, 60, 3600 * 24) is None
    assert "stale_launch_hours" in str(ledger.gone_reason(old, 60, 3600))


# --------------------------------------------------------------------------- pausing the checks


def test_a_paused_check_launches_nothing_and_leaves_the_ledger_until_resumed(
    project: RunConfig,
) -> None:
    from geomas.trigger import pause
    from geomas.trigger.watermark import corpus_watermark

    client = _client()
    experiment = project.project.experiment_name
    # a launch from another host whose heartbeat stopped: a check would mark it gone
    ledger_id = ledger.ledger_experiment(client, experiment)
    assert ledger_id is not None
    key = corpus_watermark(project.data.source_dir, project.data.ingest.extensions).data_hash
    stale = ledger.open_launch(client, ledger_id, key, {})
    client.set_tag(stale, ledger.HOST_TAG, "retrain-cronjob-28761-abcde")
    client.set_tag(stale, ledger.HEARTBEAT_TAG, f"{time.time() - 3600:.3f}")

    for empty in ("", "   \n"):
        with pytest.raises(InputError, match="a pause needs a reason"):
            pause.pause(client, experiment, "oleg", empty)
    assert pause.pause_record(client, experiment) is None
    state = pause.pause(client, experiment, "oleg", "GPU node  in maintenance")
    assert (state.paused, state.by, state.reason) == (True, "oleg", "GPU node in maintenance")
    assert pause.paused_state(client, experiment) == state

    launcher = Launcher()
    paused = check_retrain(project, launch=launcher)
    assert paused.outcome == "paused" and paused.pause == state
    assert f"paused by oleg at {state.at}: GPU node in maintenance" in paused.reason
    assert "run `geomas retrain resume --config ...` to resume" in paused.reason
    assert launcher.calls == [] and paused.data_hash is None  # not even hashed
    [entry] = _ledger_runs(project)  # untouched: the gone launch is not closed while paused
    assert (entry.run_id, entry.status) == (stale, "launched")
    assert client.get_run(stale).info.status == "RUNNING"

    # a dry run still computes the decision, and says it is paused
    dry = check_retrain(project, launch=launcher, dry_run=True)
    assert dry.outcome == "paused" and dry.data_hash == key and dry.new_docs == 3
    assert "unpaused, this check would launch" in dry.reason and "paused by oleg" in dry.reason
    assert [g.ledger_run_id for g in dry.gone_launches] == [stale]
    assert launcher.calls == [] and _ledger_runs(project)[0].status == "launched"

    lifted = pause.resume(client, experiment, "anna")
    assert lifted == state
    assert pause.paused_state(client, experiment) is None
    record = pause.pause_record(client, experiment)
    assert record is not None and (record.paused, record.by) == (False, "anna")
    assert pause.resume(client, experiment, "anna") is None  # not paused: nothing to lift

    # resumed: the check decides as before — closes the gone launch, launches the data
    decision = check_retrain(project, launch=launcher)
    assert decision.outcome == "launched" and decision.pause is None
    assert len(launcher.calls) == 1
    assert [g.ledger_run_id for g in decision.gone_launches] == [stale]
    assert sorted(e.status for e in _ledger_runs(project)) == ["completed", "failed"]


def test_a_pause_set_by_hand_in_mlflow_pauses_too(project: RunConfig) -> None:
    from geomas.trigger import pause

    client = _client()
    ledger_id = ledger.ledger_experiment(client, project.project.experiment_name)
    assert ledger_id is not None
    client.set_experiment_tag(ledger_id, pause.PAUSED_TAG, "True")
    decision = check_retrain(project, launch=Launcher())
    assert decision.outcome == "paused" and "paused by unknown" in decision.reason


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GEOMAS_MLFLOW_RESOLVED"}
    return subprocess.run([sys.executable, "-m", "geomas.cli", "retrain", *args],
                          capture_output=True, text=True, env=env, cwd=cwd, check=False)


@pytest.mark.slow
def test_pause_and_resume_commands_and_a_cron_check_in_between(
    project: RunConfig, tmp_path: Path
) -> None:
    """What a system cron runs (`geomas retrain check`) honours `geomas retrain pause`.

    Each command activates the run config's stack first (about 10 s): the ledger is on the
    stack's MLflow, wherever that is.
    """
    import json

    import yaml

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(project.model_dump(mode="json", exclude_unset=True)))
    missing = _cli("pause", "--config", str(config), cwd=tmp_path)
    assert missing.returncode == 2 and "--reason" in missing.stderr

    paused = _cli("pause", "--config", str(config), "--reason", "corpus is being re-sorted",
                  "--actor", "oleg", cwd=tmp_path)
    assert paused.returncode == 0, paused.stderr
    [line] = paused.stdout.splitlines()
    assert line.startswith("paused") and "by oleg" in line
    assert "corpus is being re-sorted" in line and "geomas retrain resume" in line

    check = _cli("check", "--config", str(config), "--json", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    decision = json.loads(check.stdout)
    assert decision["outcome"] == "paused" and decision["pause"]["by"] == "oleg"
    assert _ledger_runs(project) == []  # nothing launched, nothing recorded

    resumed = _cli("resume", "--config", str(config), "--actor", "anna", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    [line] = resumed.stdout.splitlines()
    assert line.startswith("resumed") and "paused by oleg" in line
    assert check_retrain(project, launch=Launcher(), dry_run=True).outcome == "launch"
