"""The embedded stack logging to a real MLflow tracking server named by MLFLOW_TRACKING_URI.

A `mlflow server` runs as a child process on a free local port. Every command of the project
(pipeline steps included) must log to it, and nothing may appear in the data dir's embedded
store.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GEOMAS = [sys.executable, "-m", "geomas.cli"]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow_server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    mlflow = str(Path(sys.executable).parent / "mlflow")
    with open(root / "server.log", "w") as server_log:
        proc = subprocess.Popen(
            [mlflow, "server", "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
             "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1"],
            cwd=root, stdout=server_log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("mlflow server did not start:\n"
                                + (root / "server.log").read_text())
                time.sleep(0.5)
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _geomas(root: Path, uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GEOMAS_MLFLOW_RESOLVED"}
    proc = subprocess.run([*GEOMAS, *args], cwd=root, env={**env, "MLFLOW_TRACKING_URI": uri},
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_pipeline_steps_and_commands_use_the_server(mlflow_server: str, tmp_path: Path) -> None:
    import mlflow

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"report_{i}.md").write_text(
            f"# Отчёт {i}\n\n" + "Месторождение золота расположено в районе реки. " * 20 + "\n",
            encoding="utf-8")
    (tmp_path / "run.yaml").write_text(
        "project:\n  data_dir: .geomas\n  experiment_name: geomas-server-test\n"
        "data:\n  source_dir: docs\n  output_dir: out\n"
        "training:\n  model: tiny\n  train_file: out/t.json\n  val_file: out/t.json\n"
        "  output_dir: sft\n", encoding="utf-8")
    run = _geomas(tmp_path, mlflow_server, "run", "data", "--config", "run.yaml", "--json")
    summary = json.loads(run.stdout)
    assert summary["tracking_uri"] == mlflow_server

    client = mlflow.MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("geomas-server-test")
    assert exp is not None, "the steps did not log to the server"
    runs = client.search_runs([exp.experiment_id])
    assert runs and runs[0].data.metrics["ingest.chunks"] > 0
    assert not (tmp_path / ".geomas" / "mlflow").exists()

    shown = json.loads(_geomas(tmp_path, mlflow_server, "stack", "show", "--json").stdout)
    assert shown["mlflow"]["tracking_uri"] == mlflow_server
    assert shown["mlflow"]["tracking_source"] == "env"
    tracker = next(c for c in shown["components"] if c["type"] == "experiment_tracker")
    assert tracker["configuration"]["tracking_uri"] == mlflow_server

    check = _geomas(tmp_path, mlflow_server, "retrain", "check", "--config", "run.yaml",
                    "--dry-run", "--json")
    assert json.loads(check.stdout)["outcome"] == "launch"
    history = _geomas(tmp_path, mlflow_server, "models", "history", "geomas-sft")
    assert "no alias moves recorded" in history.stdout
    assert not (tmp_path / ".geomas" / "mlflow").exists()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
