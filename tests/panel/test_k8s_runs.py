"""The panel's run manager with `launcher: kubernetes`, against a fake Kubernetes API.

The API speaks the real REST paths to the official client (tests/panel/conftest.py). A run is
a Job: created with its config ConfigMap, followed to its end (the pod's log becomes the run's
log, its `--json` summary the run's summary), stopped by deleting the Job, and picked up again
by a restarted panel.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from geomas.config import PanelConfig
from geomas.panel.runs import RunManager
from geomas.panel.store import open_store

CONFIG = (Path(__file__).resolve().parents[2] / "configs" / "k8s.yaml").read_text("utf-8")
IMAGE = "registry.example.com/geomas/app:0.1.0"


def _manager(tmp_path: Path, api_client: Any) -> RunManager:
    settings = PanelConfig(launcher="kubernetes", k8s_image=IMAGE, k8s_namespace="geomas",
                           poll_seconds=0.2)
    manager = RunManager(settings, tmp_path / "panel", open_store(
        f"sqlite:///{tmp_path / 'panel.db'}"), tmp_path, k8s_api_client=api_client)
    manager.start()
    return manager


def _wait(manager: RunManager, run_id: int, status: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while (rec := manager.get(run_id)).status != status:
        assert time.monotonic() < deadline, (rec.status, rec.note)
        time.sleep(0.1)
    return rec


def _finish_job(api: Any, name: str, log: str, succeeded: bool) -> None:
    pod = f"{name}-x7k2p"
    api.pods[pod] = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": pod, "namespace": "geomas", "labels": {"batch.kubernetes.io/job-name": name}},
        "status": {"phase": "Succeeded" if succeeded else "Failed"}}
    api.logs[pod] = log
    kind = "Complete" if succeeded else "Failed"
    api.jobs[name]["status"] = {("succeeded" if succeeded else "failed"): 1, "conditions": [
        {"type": kind, "status": "True", "reason": "" if succeeded else "BackoffLimitExceeded"}]}


def test_a_run_is_a_job_followed_to_its_end(fake: tuple[Any, Any], tmp_path: Path) -> None:
    api, api_client = fake
    manager = _manager(tmp_path, api_client)
    try:
        rec = manager.submit("data", "k8s.yaml", CONFIG, "oleg")
        name = f"geomas-run-{rec.id}"
        rec = _wait(manager, rec.id, "running")
        assert rec.note == f"kubernetes job geomas/{name}"
        job = api.jobs[name]
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
        assert api.config_maps[name]["data"]  # the run's config travels with it
        summary = {"pipeline": "geomas_data", "status": "completed", "run_id": "zen-123"}
        _finish_job(api, name, "ingest: 2 files\n" + json.dumps(summary) + "\n", True)
        done = _wait(manager, rec.id, "succeeded")
        assert done.exit_code == 0 and done.zenml_run_id == "zen-123"
        assert "ingest: 2 files" in manager.tail(rec.id)

        failing = manager.submit("data", "k8s.yaml", CONFIG, "oleg")
        _wait(manager, failing.id, "running")
        _finish_job(api, f"geomas-run-{failing.id}", "error: step ingest failed\n", False)
        failed = _wait(manager, failing.id, "failed")
        assert "BackoffLimitExceeded" in failed.note
    finally:
        manager.close()


def test_stop_deletes_the_job_and_a_restarted_panel_follows_running_jobs(
    fake: tuple[Any, Any], tmp_path: Path
) -> None:
    api, api_client = fake
    first = _manager(tmp_path, api_client)
    stopped = first.submit("training", "k8s.yaml", CONFIG, "oleg")
    _wait(first, stopped.id, "running")
    first.stop(stopped.id)
    assert _wait(first, stopped.id, "stopped")
    assert f"geomas-run-{stopped.id}" not in api.jobs
    assert f"geomas-run-{stopped.id}" not in api.config_maps  # owned by the Job

    running = first.submit("training", "k8s.yaml", CONFIG, "oleg")
    _wait(first, running.id, "running")
    first.close()  # the panel goes away; the Job goes on
    created = [c for c in api.calls if c[1:] == ("jobs", "create")]
    second = _manager(tmp_path, api_client)
    try:
        assert second.get(running.id).status == "running"
        _finish_job(api, f"geomas-run-{running.id}",
                    json.dumps({"status": "completed", "run_id": "zen-9"}) + "\n", True)
        assert _wait(second, running.id, "succeeded").zenml_run_id == "zen-9"
        # nothing was started twice
        assert [c for c in api.calls if c[1:] == ("jobs", "create")] == created
    finally:
        second.close()


def test_without_an_image_the_run_fails_with_the_fix(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEOMAS_PANEL_JOB_IMAGE", raising=False)
    settings = PanelConfig(launcher="kubernetes", poll_seconds=0.2)
    manager = RunManager(settings, tmp_path / "panel",
                         open_store(f"sqlite:///{tmp_path / 'panel.db'}"), tmp_path)
    manager.start()
    try:
        rec = _wait(manager, manager.submit("data", "k8s.yaml", CONFIG, "oleg").id, "failed")
        assert "GEOMAS_PANEL_JOB_IMAGE" in rec.note
    finally:
        manager.close()


def test_the_deployments_command_line_and_environment_configure_the_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart runs `geomas panel --config /app/configs/k8s.yaml` (a run config) with
    GEOMAS_PANEL_LAUNCHER and GEOMAS_PANEL_DATABASE_URL set: that run config becomes the
    panel's project, the variables its launcher and records database."""
    from geomas.cli.panel import load_panel_config
    from geomas.errors import ConfigError

    run_config = Path(__file__).resolve().parents[2] / "configs" / "k8s.yaml"
    monkeypatch.setenv("GEOMAS_PANEL_LAUNCHER", "kubernetes")
    monkeypatch.setenv("GEOMAS_PANEL_DATABASE_URL", "sqlite:////var/lib/geomas-panel/panel.db")
    settings = load_panel_config(run_config)
    assert settings.run_config == run_config and settings.launcher == "kubernetes"
    assert settings.database_url == "sqlite:////var/lib/geomas-panel/panel.db"
    panel_file = tmp_path / "panel.yaml"
    panel_file.write_text("panel:\n  launcher: local\n  poll_seconds: 2\n", encoding="utf-8")
    monkeypatch.delenv("GEOMAS_PANEL_LAUNCHER")
    assert load_panel_config(panel_file).poll_seconds == 2
    monkeypatch.setenv("GEOMAS_PANEL_LAUNCHER", "slurm")
    with pytest.raises(ConfigError, match="launcher"):
        load_panel_config(panel_file)
