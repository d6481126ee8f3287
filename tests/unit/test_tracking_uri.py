"""One MLflow URI resolution for every command: flag > env > config > stack > embedded.

The resolver is checked on its own (plain environments), then through the real `geomas`
entry point: `stack show` reports the URI and its source, and the commands that talk to MLflow
fail in one line, without touching the embedded store, when the server does not answer.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from geomas.errors import TrackingUnreachable
from geomas.tracking import (
    ENV_REGISTRY,
    ENV_TRACKING,
    mask_uri,
    mlflow_paths,
    require_reachable,
    resolve_tracking,
    use_tracking,
)

GEOMAS = [sys.executable, "-m", "geomas.cli"]
ENV_URI = "http://env-host:5000"
CONFIG_URI = "http://config-host:5000"
FLAG_URI = "http://flag-host:5000"
STACK_URI = "http://stack-host:5000"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def test_precedence_flag_env_config_stack_embedded(tmp_path: Path) -> None:
    embedded, _ = mlflow_paths(tmp_path)
    env = {ENV_TRACKING: ENV_URI}

    def resolved(environ: dict[str, str], **given: str) -> tuple[str, str]:
        target = resolve_tracking(tmp_path, environ=environ, **given)
        return target.tracking.uri, target.tracking.source

    everything = {"flag": FLAG_URI, "config_tracking": CONFIG_URI, "stack": STACK_URI}
    assert resolved(env, **everything) == (FLAG_URI, "flag")
    assert resolved(env, config_tracking=CONFIG_URI, stack=STACK_URI) == (ENV_URI, "env")
    assert resolved({}, config_tracking=CONFIG_URI, stack=STACK_URI) == (CONFIG_URI, "config")
    assert resolved({}, stack=STACK_URI) == (STACK_URI, "stack")
    assert resolved({}) == (embedded, "embedded")
    assert resolve_tracking(tmp_path, environ={}).embedded
    # an empty variable is no setting
    assert resolved({ENV_TRACKING: " "}) == (embedded, "embedded")


def test_registry_follows_tracking_unless_given_at_the_same_level_or_above(
    tmp_path: Path,
) -> None:
    def registry(environ: dict[str, str], **given: str) -> tuple[str, str]:
        target = resolve_tracking(tmp_path, environ=environ, **given)
        return target.registry.uri, target.registry.source

    assert registry({ENV_TRACKING: ENV_URI}) == (ENV_URI, "env")
    both = {ENV_TRACKING: ENV_URI, ENV_REGISTRY: "http://registry:5000"}
    assert registry(both) == ("http://registry:5000", "env")
    # the flag sets both; the environment's registry is below it
    assert registry(both, flag=FLAG_URI) == (FLAG_URI, "flag")
    # a config registry is below an environment tracking URI: the registry follows the env
    assert registry({ENV_TRACKING: ENV_URI}, config_registry="http://cfg-reg:1") == (
        ENV_URI, "env")
    assert registry({}, config_tracking=CONFIG_URI, config_registry="http://cfg-reg:1") == (
        "http://cfg-reg:1", "config")
    assert registry({ENV_REGISTRY: "http://registry:5000"}, config_tracking=CONFIG_URI) == (
        "http://registry:5000", "env")


def test_what_geomas_wrote_is_recalled_for_its_data_dir_only(tmp_path: Path) -> None:
    """A second call (or a child process) resolves as the first did; another data dir's
    embedded or config URI left in the environment is not mistaken for the user's."""
    environ: dict[str, str] = {}
    first = use_tracking(resolve_tracking(tmp_path / "a", config_tracking=CONFIG_URI,
                                          environ=environ), environ)
    assert first.tracking.source == "config" and environ[ENV_TRACKING] == CONFIG_URI
    again = resolve_tracking(tmp_path / "a", environ=environ)
    assert (again.tracking.uri, again.tracking.source) == (CONFIG_URI, "config")
    other = resolve_tracking(tmp_path / "b", environ=environ)
    assert (other.tracking.uri, other.tracking.source) == (
        mlflow_paths(tmp_path / "b")[0], "embedded")
    use_tracking(resolve_tracking(tmp_path / "a", environ=environ), environ)
    # embedded for a: not "env" for b either
    use_tracking(resolve_tracking(tmp_path / "c", environ={}), environ)
    assert resolve_tracking(tmp_path / "b", environ=environ).tracking.source == "embedded"
    # a flag travels to children (any data dir) and stays above the config
    use_tracking(resolve_tracking(tmp_path / "a", flag=FLAG_URI, environ=environ), environ)
    child = resolve_tracking(tmp_path / "b", config_tracking=CONFIG_URI, environ=environ)
    assert (child.tracking.uri, child.tracking.source) == (FLAG_URI, "flag")
    # the user changing the variable afterwards wins
    environ[ENV_TRACKING] = ENV_URI
    assert resolve_tracking(tmp_path / "a", environ=environ).tracking.source == "env"
    # a stack's URI is forgotten when switching to the embedded stack
    environ = {}
    use_tracking(resolve_tracking(tmp_path / "a", stack=STACK_URI, environ=environ), environ)
    assert resolve_tracking(tmp_path / "a", environ=environ).tracking.source == "stack"
    assert resolve_tracking(tmp_path / "a", environ=environ,
                            recall_stack=False).tracking.source == "embedded"


def test_credentials_are_masked() -> None:
    assert mask_uri("https://alice:s3cret@mlflow.example.com:443/x") == (
        "https://****@mlflow.example.com:443/x")
    assert mask_uri("postgresql://u:pw@db/mlflow") == "postgresql://****@db/mlflow"
    assert mask_uri("http://mlflow:5000") == "http://mlflow:5000"
    assert mask_uri("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_config_refuses_a_password_in_a_uri() -> None:
    from pydantic import ValidationError

    from geomas.config import ProjectConfig

    assert ProjectConfig(tracking_uri="http://mlflow:5000").tracking_uri == "http://mlflow:5000"
    with pytest.raises(ValidationError, match="MLFLOW_TRACKING_USERNAME"):
        ProjectConfig(tracking_uri="http://bob:pw@mlflow:5000")


@pytest.fixture()
def answering_server() -> Iterator[str]:
    """A real HTTP server that answers 404 to everything (reachable, not MLflow)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_probe_fails_fast_on_a_closed_port_and_passes_an_answering_server(
    tmp_path: Path, answering_server: str,
) -> None:
    closed = f"http://user:pw@127.0.0.1:{_closed_port()}"
    target = resolve_tracking(tmp_path, environ={ENV_TRACKING: closed})
    with pytest.raises(TrackingUnreachable) as err:
        require_reachable(target, timeout=2)
    message = str(err.value)
    assert "\n" not in message and "pw" not in message
    assert mask_uri(closed) in message and ENV_TRACKING in message
    assert err.value.uri == mask_uri(closed)
    require_reachable(resolve_tracking(tmp_path, environ={ENV_TRACKING: answering_server}))
    # databases and the embedded store are not probed
    require_reachable(resolve_tracking(tmp_path, environ={}))


# --------------------------------------------------------------------------- through the CLI

TRAINING = ("data:\n  source_dir: docs\n  output_dir: out\n"
            "training:\n  model: tiny\n  train_file: t.json\n  val_file: t.json\n"
            "  output_dir: sft\n")


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Отчёт\n\nТекст.\n", encoding="utf-8")
    (tmp_path / "run.yaml").write_text("project:\n  data_dir: .geomas\n" + TRAINING, "utf-8")
    return tmp_path


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in (ENV_TRACKING, ENV_REGISTRY, "GEOMAS_MLFLOW_RESOLVED")}
    return {**env, "COLUMNS": "200", **extra}


@pytest.mark.parametrize("args", [
    ["promote", "geomas-sft", "1", "--force", "--reason", "test"],
    ["rollback", "geomas-sft"],
    ["models", "history", "geomas-sft"],
    ["retrain", "check", "--config", "run.yaml"],
], ids=["promote", "rollback", "history", "retrain-check"])
def test_unreachable_server_is_one_line_and_the_local_store_untouched(
    workdir: Path, args: list[str],
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    proc = subprocess.run([*GEOMAS, *args], cwd=workdir, env=_env(MLFLOW_TRACKING_URI=uri),
                          capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: ") and uri in lines[0] and ENV_TRACKING in lines[0]
    assert not (workdir / ".geomas" / "mlflow").exists()
    assert not (workdir / "mlflow.db").exists() and not (workdir / "mlruns").exists()


def test_stack_show_reports_uri_and_source_in_precedence_order(workdir: Path) -> None:
    (workdir / "cfg.yaml").write_text(
        f"project:\n  data_dir: .geomas\n  tracking_uri: {CONFIG_URI}\n" + TRAINING, "utf-8")

    def show(*args: str, **env: str) -> dict[str, str]:
        proc = subprocess.run([*GEOMAS, "stack", "show", "--json", *args], cwd=workdir,
                              env=_env(**env), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout)["mlflow"])

    embedded, _ = mlflow_paths(workdir / ".geomas")
    assert show() == {"tracking_uri": embedded, "tracking_source": "embedded",
                      "registry_uri": embedded, "registry_source": "embedded"}
    assert show("--config", "cfg.yaml")["tracking_source"] == "config"
    secret = "http://alice:s3cret@env-host:5000"
    from_env = show("--config", "cfg.yaml", MLFLOW_TRACKING_URI=secret)
    assert from_env["tracking_uri"] == "http://****@env-host:5000"
    assert from_env["tracking_source"] == "env" and from_env["registry_source"] == "env"
    flagged = show("--config", "cfg.yaml", "--tracking-uri", FLAG_URI,
                   MLFLOW_TRACKING_URI=secret)
    assert (flagged["tracking_uri"], flagged["tracking_source"]) == (FLAG_URI, "flag")
    # the text form says the same, credentials masked
    proc = subprocess.run([*GEOMAS, "stack", "show"], cwd=workdir,
                          env=_env(MLFLOW_TRACKING_URI=secret), capture_output=True, text=True,
                          timeout=120)
    assert "MLflow tracking    : http://****@env-host:5000 (from env)" in proc.stdout
    assert "s3cret" not in proc.stdout + proc.stderr


def test_zenml_config_geomas_creates_has_analytics_off(tmp_path: Path) -> None:
    env = _env()
    env.pop("ZENML_ANALYTICS_OPT_IN", None)
    data = tmp_path / "data"
    proc = subprocess.run([*GEOMAS, "init", "--data-dir", str(data)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((data / "zenml" / "config.yaml").read_text("utf-8"))
    assert config["analytics_opt_in"] is False
    # a config an older geomas (or plain zenml) wrote with analytics on is switched off
    other = tmp_path / "older"
    (other / "zenml").mkdir(parents=True)
    (other / "zenml" / "config.yaml").write_text("analytics_opt_in: true\n", "utf-8")
    proc = subprocess.run([*GEOMAS, "stack", "show", "--data-dir", str(other)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load((other / "zenml" / "config.yaml").read_text("utf-8"))
    assert config["analytics_opt_in"] is False
