"""Runs: validated before they start, one running per pipeline, child processes that outlive
a killed panel and are neither lost nor started twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.panel.conftest import SECRET, TOKENS, Project, bearer

ERROR_LINE = "is not a folder"  # the real CLI's pre-flight error for a missing corpus folder


def _wait(fetch: Any, done: Any, seconds: float = 90.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last value {value}"
        time.sleep(0.2)


def test_invalid_config_is_refused_with_field_errors_before_anything_starts(
        client: Any, project: Project) -> None:
    got = client.post("/api/runs", headers=bearer("operator"),
                      json={"pipeline": "training", "config": "data: {source_dir: 3}\n"})
    assert got.status_code == 422
    fields = {e["field"] for e in got.json()["detail"]}
    assert {"data.source_dir", "data.output_dir"} <= fields, got.json()
    missing = client.post("/api/runs", headers=bearer("operator"),
                          json={"pipeline": "data", "config": "nope.yaml"})
    assert missing.status_code == 422 and "fail-data.yaml" in missing.json()["message"]
    bad_pipeline = client.post("/api/runs", headers=bearer("operator"),
                               json={"pipeline": "deploy", "config": "project.yaml"})
    assert bad_pipeline.status_code == 422
    assert client.get("/api/runs", headers=bearer("viewer")).json() == []


def test_two_concurrent_starts_give_one_running_one_queued(client: Any,
                                                          project: Project) -> None:
    barrier = threading.Barrier(2)
    answers: list[Any] = []

    def start() -> None:
        barrier.wait()
        answers.append(client.post("/api/runs", headers=bearer("operator"),
                                   json={"pipeline": "data", "config": "fail-data.yaml"}))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [201, 201]
    assert sorted(a.json()["status"] for a in answers) == ["queued", "running"]
    seen_running = []

    def poll() -> list[dict[str, Any]]:
        runs = client.get("/api/runs", headers=bearer("viewer")).json()
        seen_running.append(sum(r["status"] == "running" for r in runs))
        return runs

    runs = _wait(poll, lambda rs: all(r["status"] == "failed" for r in rs))
    assert max(seen_running) == 1  # never two at once
    first, second = sorted(runs, key=lambda r: r["id"])
    assert first["finished_at"] <= second["started_at"]
    for r in (first, second):
        assert r["exit_code"] == 1 and r["user"] == "oleg"
        log = client.get(f"/api/runs/{r['id']}/log", headers=bearer("viewer")).json()["log"]
        assert log.count(ERROR_LINE) == 1
    detail = client.get(f"/api/runs/{first['id']}", headers=bearer("viewer")).json()
    assert detail["config_text"].startswith("data:") and len(detail["config_sha256"]) == 64
    # the live stream of a finished run: its status and its log, then it ends
    stream = client.get(f"/api/runs/{first['id']}/events", headers=bearer("viewer"))
    assert "event: status" in stream.text and ERROR_LINE in stream.text
    # run again with the same config
    again = client.post(f"/api/runs/{first['id']}/rerun", headers=bearer("operator"))
    assert again.status_code == 201 and again.json()["rerun_of"] == first["id"]
    assert again.json()["config_sha256"] == first["config_sha256"]
    stopped = client.post(f"/api/runs/{again.json()['id']}/stop", headers=bearer("operator"))
    assert stopped.status_code == 200
    final = _wait(lambda: client.get(f"/api/runs/{again.json()['id']}",
                                     headers=bearer("viewer")).json(),
                  lambda r: r["status"] not in ("queued", "running"))
    assert final["status"] == "stopped"


def test_a_live_run_of_an_earlier_panel_is_adopted_and_closed_from_its_summary(
        project: Project) -> None:
    from fastapi.testclient import TestClient

    from geomas.panel.runs import process_start
    from geomas.panel.store import RunRecord, open_store
    from tests.panel.conftest import make_app

    # a run an earlier panel started: its process lives on, the record says running
    folder = project.data_dir / "panel" / "runs" / "1"
    folder.mkdir(parents=True)
    summary = folder / "summary.json"
    child = subprocess.Popen(
        [sys.executable, "-c", "import json,sys,time; time.sleep(2); "
         "open(sys.argv[1],'w').write(json.dumps({'status':'completed','run_id':'abc',"
         "'run_name':'geomas_data-1'}))", str(summary)], start_new_session=True)
    sessions = open_store(f"sqlite:///{project.data_dir / 'panel' / 'panel.db'}")
    with sessions() as db:
        db.add(RunRecord(pipeline="data", user="oleg", config_name="x", config_text="x",
                         config_sha256="0" * 64, status="running", pid=child.pid,
                         pid_start=process_start(child.pid), host=socket.gethostname(),
                         summary_path=str(summary), log_path=str(folder / "run.log")))
        db.commit()
    with TestClient(make_app(project)) as client:
        assert client.get("/api/runs/1", headers=bearer("viewer")).json()["status"] == "running"
        child.wait()
        run = _wait(lambda: client.get("/api/runs/1", headers=bearer("viewer")).json(),
                    lambda r: r["status"] != "running")
    assert (run["status"], run["zenml_run_id"], run["zenml_run_name"]) == (
        "succeeded", "abc", "geomas_data-1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(project: Project, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")
           and k != "GEOMAS_MLFLOW_RESOLVED"}
    env.update({"GEOMAS_PANEL_SECRET": SECRET, "GEOMAS_PANEL_USERS_FILE": str(
        project.users_file)})
    with open(project.root / f"panel-{port}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "geomas.cli", "panel", "--config",
                                 str(project.panel_config), "--port", str(port)],
                                cwd=project.root, env=env, stdout=log, stderr=log)
    _wait(lambda: _get(port, "/healthz", proc), lambda v: v is not None, 120)
    return proc


def _get(port: int, path: str, proc: subprocess.Popen[bytes] | None = None) -> Any:
    if proc is not None and proc.poll() is not None:
        raise AssertionError(f"the panel exited ({proc.returncode})")
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {TOKENS['operator']}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def _post(port: int, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKENS['operator']}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_killing_the_panel_during_a_run_loses_nothing_and_starts_nothing_twice(
        project: Project) -> None:
    port = _free_port()
    panel = _serve(project, port)
    try:
        first = _post(port, "/api/runs", {"pipeline": "data", "config": "fail-data.yaml"})
        second = _post(port, "/api/runs", {"pipeline": "data", "config": "fail-data.yaml"})
        assert (first["status"], second["status"]) == ("running", "queued")
        panel.send_signal(signal.SIGKILL)  # no shutdown hook runs
        panel.wait(30)
        panel = _serve(project, port)
        runs = _wait(lambda: _get(port, "/api/runs", panel) or [],
                     lambda rs: len(rs) == 2 and all(
                         r["status"] in ("succeeded", "failed", "stopped") for r in rs))
    finally:
        panel.send_signal(signal.SIGTERM)
        panel.wait(30)
    by_id = {r["id"]: r for r in runs}
    one, two = by_id[first["id"]], by_id[second["id"]]
    # the run that was running: same process, closed as failed (its pipeline failed)
    assert one["pid"] == first["pid"] and one["status"] == "failed"
    # the queued one was started once, by the new panel, after the first ended
    assert two["status"] == "failed" and two["pid"] not in (None, first["pid"])
    for r in (one, two):
        assert Path(r["log_path"]).read_text().count(ERROR_LINE) == 1, r
    assert len(runs) == 2
