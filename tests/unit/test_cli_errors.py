"""Bad input through the real `geomas` CLI: at most 3 lines, no traceback, non-zero exit.

Each case runs the console entry point in a child process, as a user would, and checks that the
one error line names the file, field or record and what to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

GEOMAS = [sys.executable, "-m", "geomas.cli"]

PROJECT = "project:\n  data_dir: dd\n"
DATA = "data:\n  source_dir: docs\n  output_dir: out\n"


def _training(model: str, train: str) -> str:
    return (PROJECT + DATA + f"training:\n  model: {model}\n  train_file: {train}\n"
            f"  val_file: {train}\n  output_dir: sft\n")


CASES = {
    "missing train file": (
        "missing_train.yaml", _training("tiny", "nope_train.json"),
        ["run", "training", "--config", "missing_train.yaml"],
        ["training.train_file", "nope_train.json", "does not exist"]),
    "missing corpus": (
        "missing_corpus.yaml", PROJECT + "data:\n  source_dir: no_such_corpus\n  output_dir: out\n",
        ["run", "data", "--config", "missing_corpus.yaml"],
        ["data.source_dir", "no_such_corpus", "not a folder"]),
    "bad YAML": (
        "bad.yaml", "project:\n  data_dir: [dd\ndata: {source_dir: x\n",
        ["run", "data", "--config", "bad.yaml"],
        ["bad.yaml", "not valid YAML", "line 2"]),
    "unknown config key": (
        "unknown.yaml", PROJECT + DATA + "  ingest:\n    max_tokenz: 5\n",
        ["run", "data", "--config", "unknown.yaml"],
        ["unknown.yaml", "data.ingest.max_tokenz", "Extra inputs"]),
    "unreadable model folder": (
        "bad_model.yaml", _training("broken_model", "train.json"),
        ["run", "training", "--config", "bad_model.yaml"],
        ["training.model", "broken_model/config.json", "cannot be read"]),
    "invalid JSONL line": (
        "unused.yaml", "",
        ["format-instruct-dataset", "bad.jsonl", "out/instruct.json"],
        ["bad.jsonl", "line 2", "not valid JSON"]),
    "model folder without a model": (
        "unused.yaml", "",
        ["extract-entities", "docs", "--text", "Месторождение"],
        ["docs"]),
}


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Отчёт\n\nТекст.\n", encoding="utf-8")
    (tmp_path / "broken_model").mkdir()
    (tmp_path / "broken_model" / "config.json").write_text('{"architectures": [', "utf-8")
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "config.json").write_text("{}", "utf-8")
    (tmp_path / "train.json").write_text("[]", "utf-8")
    (tmp_path / "bad.jsonl").write_text(
        '{"question": "Где?", "answer": "Там.", "entity_type": "X", "context": "Там."}\n'
        '{"question": "Что?", "answer": \n', encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_short_message(case: str, workdir: Path) -> None:
    name, text, args, expected = CASES[case]
    if text:
        (workdir / name).write_text(text, encoding="utf-8")
    proc = subprocess.run([*GEOMAS, *args], cwd=workdir, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "80"})
    output = (proc.stdout + proc.stderr).strip()
    lines = output.splitlines()
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    assert 1 <= len(lines) <= 3, output
    assert lines[-1].startswith("error: "), output
    for part in expected:
        assert part in output, (part, output)


def test_verbose_shows_the_traceback(workdir: Path) -> None:
    (workdir / "bad.yaml").write_text("data: [\n", encoding="utf-8")
    proc = subprocess.run([*GEOMAS, "-v", "run", "data", "--config", "bad.yaml"], cwd=workdir,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_zenml_log_records_go_to_stderr_not_stdout(workdir: Path) -> None:
    """ZenML's console handler writes to the original stdout; geomas keeps stdout for results
    (`--json`), so after the stack is prepared ZenML's messages land on stderr."""
    (workdir / "run.yaml").write_text(PROJECT + DATA, encoding="utf-8")
    script = (
        "import logging\n"
        "from pathlib import Path\n"
        "from geomas.config import RunConfig, load_config\n"
        "from geomas.runner import prepare_stack\n"
        "prepare_stack(load_config(Path('run.yaml'), RunConfig))\n"
        "logging.getLogger('zenml.probe').warning('zenml says hello')\n"
        "print('RESULT')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=workdir, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "RESULT"
    assert "zenml says hello" in proc.stderr


def test_a_read_only_registry_store_is_one_line_and_changes_nothing(tmp_path: Path) -> None:
    """A store geomas may read but not write (here SQLite opened read-only: the tests run as
    root, which file permissions do not stop): promote and rollback fail with one line naming
    the store and the fix, without MLflow's logged traceback, and the registry is unchanged
    (the first write, the transaction's intent, is the one refused)."""
    import mlflow

    db = tmp_path / "mlflow.db"
    client = mlflow.MlflowClient(f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    client.create_registered_model("geomas-sft")
    client.create_model_version("geomas-sft", source=str(tmp_path))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///file:{db}?mode=ro&uri=true"}
    proc = subprocess.run([*GEOMAS, "promote", "geomas-sft", "1", "--force", "--reason", "test"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert f"MLflow store sqlite:///file:{db}" in lines[0]
    assert "the store is read-only" in lines[0], lines[0]
    assert client.get_registered_model("geomas-sft").aliases == {}
    assert "geomas.pending" not in client.get_registered_model("geomas-sft").tags
