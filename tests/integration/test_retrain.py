"""Retraining on new data volume, on the embedded stack, through the CLI.

Below threshold -> no run; above -> exactly one training run; two concurrent checks -> one
run; the same data checked again -> no run. Training runs are real (a random-init tiny LM,
one epoch); the champion is set by hand (`geomas promote --force`) because such a model never
passes the gate, and the gate is not what is tested here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GEOMAS = [sys.executable, "-m", "geomas.cli"]


def _geomas(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*GEOMAS, *args], cwd=root, env=dict(os.environ),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _check(root: Path, *extra: str) -> dict[str, object]:
    proc = _geomas(root, "retrain", "check", "--config", "run.yaml", "--json", *extra)
    return dict(json.loads(proc.stdout))


def _versions(root: Path) -> list[str]:
    import mlflow

    uri = f"sqlite:///{root / '.geomas/mlflow/mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    try:
        return sorted(str(v.version) for v in client.search_model_versions("name='geomas-sft'"))
    except mlflow.exceptions.MlflowException:
        return []


@pytest.fixture()
def project(tmp_path: Path, sample_corpus: Path) -> Path:
    from geomas.formats import write_examples
    from geomas.ingest.run import ingest_folder
    from geomas.models import make_tiny
    from geomas.sample.synthetic_records import synthetic_geology_qa

    docs = tmp_path / "corpus"
    docs.mkdir()
    for path in sorted((sample_corpus / "docs").glob("report_*"))[:4]:
        shutil.copy(path, docs / path.name)
    # rejected by ingest (documents.json): never counted as new data by the check
    shutil.copy(sample_corpus / "docs/corrupt.pdf", docs / "corrupt.pdf")
    ingest_folder(docs, tmp_path / "data", progress=False)  # documents.json: the trained docs
    # QA examples of the ingested documents: the version's watermark is the documents behind
    # its train/val files (their lineage), so the examples name those documents
    docs_json = json.loads((tmp_path / "data/documents.json").read_text("utf-8"))
    doc_ids = sorted(d["doc_id"] for d in docs_json if d.get("status") in ("parsed", "cached"))
    assert len(doc_ids) == 4
    examples = [ex.model_copy(update={"group": doc_ids[i % 4],
                                      "meta": {**ex.meta, "doc_id": doc_ids[i % 4]}})
                for i, ex in enumerate(synthetic_geology_qa(36, near_dup_share=0.0,
                                                            seed=5).examples)]
    write_examples(examples[:30], tmp_path / "data/instruct_dataset_train.json", "alpaca", False)
    write_examples(examples[30:], tmp_path / "data/instruct_dataset_val.json", "alpaca", False)
    make_tiny("lm", tmp_path / "tiny-lm", corpus_dir=sample_corpus)
    (tmp_path / "run.yaml").write_text(
        "project:\n  data_dir: .geomas\n  experiment_name: geomas-retrain-test\n"
        "data:\n  source_dir: corpus\n  output_dir: data\n"
        "training:\n  model: tiny-lm\n  train_file: data/instruct_dataset_train.json\n"
        "  val_file: data/instruct_dataset_val.json\n  output_dir: sft\n"
        "  sft:\n    method: qlora\n    max_length: 256\n    epochs: 1\n"
        "  evaluation:\n    max_new_tokens: 4\n"
        "retrain:\n  min_new_docs: 3\n  run_data_pipeline: false\n",
        encoding="utf-8",
    )
    return tmp_path


def _add_docs(root: Path, n: int, seed: int) -> None:
    from geomas.sample import generate_sample_corpus

    extra = root / f"extra-{seed}"
    generate_sample_corpus(extra, docs=n, seed=seed)
    for path in sorted((extra / "docs").iterdir()):
        shutil.copy(path, root / "corpus" / f"new-{seed}-{path.name}")


@pytest.mark.slow
def test_retrain_thresholds_idempotency_and_lock(project: Path) -> None:
    # no champion yet: the first check trains one (train_without_champion)
    dry = _check(project, "--dry-run")
    assert dry["outcome"] == "launch" and dry["corpus_docs"] == 4
    assert _versions(project) == []  # a dry run starts nothing
    first = _check(project)
    assert first["outcome"] == "launched", first
    assert _versions(project) == ["1"]
    _geomas(project, "promote", "geomas-sft", "1", "--force", "--reason", "test champion",
            "--data-dir", ".geomas")

    # the same data again: nothing new -> no run
    same = _check(project)
    assert same["outcome"] == "skip" and same["new_docs"] == 0, same
    assert same["champion_docs"] == 4

    # two new documents: below the threshold of three -> no run
    _add_docs(project, 2, seed=101)
    below = _check(project)
    assert below["outcome"] == "skip" and below["new_docs"] == 2, below
    assert "new documents 2 < 3" in str(below["reason"])
    assert _versions(project) == ["1"]

    # two more: above -> two concurrent checks start exactly one training run
    _add_docs(project, 2, seed=202)
    cmd = [*GEOMAS, "retrain", "check", "--config", "run.yaml", "--json"]
    procs = [subprocess.Popen(cmd, cwd=project, env=dict(os.environ), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout))
    outcomes = sorted(str(r["outcome"]) for r in results)
    assert outcomes in (["busy", "launched"], ["launched", "skip"]), results
    assert _versions(project) == ["1", "2"]
    launched = next(r for r in results if r["outcome"] == "launched")
    assert launched["new_docs"] == 4

    # checked again with the same data: the ledger has it -> no run (v1 is still champion)
    again = _check(project)
    assert again["outcome"] == "skip", again
    assert "already completed" in str(again["reason"])
    # the local watcher repeats the same check
    watch = _geomas(project, "retrain", "watch", "--config", "run.yaml", "--interval", "1",
                    "--max-checks", "2")
    assert watch.stdout.count("decision     : skip (data ") == 2, watch.stdout
    assert _versions(project) == ["1", "2"]


def _launch_in_progress(db: Path) -> tuple[str, str] | None:
    """(ledger run, RUNNING step run of that launch) once both are in the store, else None.

    Read with SQL on a read-only connection: an MLflow client would create or migrate the
    database the running check is writing.
    """
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            ledger = con.execute(
                "SELECT r.run_uuid FROM runs r JOIN experiments e USING (experiment_id) "
                "JOIN tags t ON t.run_uuid = r.run_uuid WHERE e.name = ? AND "
                "t.key = 'geomas.retrain.status' AND t.value = 'launched'",
                ("geomas-retrain-test-retrain",)).fetchone()
            if ledger is None:
                return None
            step = con.execute(
                "SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid WHERE "
                "t.key = 'geomas.retrain.launch' AND t.value = ? AND r.status = 'RUNNING'",
                ledger).fetchone()
    except sqlite3.OperationalError:  # not created yet, or locked by the writer a moment
        return None
    return (str(ledger[0]), str(step[0])) if step else None


@pytest.mark.slow
def test_a_check_killed_mid_launch_is_marked_failed_and_launched_again(project: Path) -> None:
    """SIGKILL during training leaves the ledger `launched` and MLflow/ZenML runs running; the
    next check finds the launching process gone, closes all of it as failed, and launches."""
    import mlflow

    db = project / ".geomas/mlflow/mlflow.db"
    cmd = [*GEOMAS, "retrain", "check", "--config", "run.yaml", "--json"]
    proc = subprocess.Popen(cmd, cwd=project, env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while (found := _launch_in_progress(db)) is None:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the launch never started training"
            time.sleep(0.3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    ledger_run, step_run = found
    uri = f"sqlite:///{db}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    # what the kill left: a launch that would block its data, an MLflow run RUNNING
    assert client.get_run(ledger_run).data.tags["geomas.retrain.status"] == "launched"
    assert client.get_run(step_run).info.status == "RUNNING"
    assert _versions(project) == []

    started = time.monotonic()
    again = _check(project)
    assert again["outcome"] == "launched", again
    [gone] = again["gone_launches"]
    assert gone["ledger_run_id"] == ledger_run and gone["marked"] and gone["status"] == "failed"
    assert f"pid {proc.pid}" in gone["reason"] and "is gone" in gone["reason"]
    assert step_run in gone["closed_runs"]
    assert any(r.startswith("zenml:geomas_training-") for r in gone["closed_runs"]), gone
    assert client.get_run(ledger_run).info.status == "FAILED"
    assert client.get_run(ledger_run).data.tags["geomas.retrain.failure"] == "gone"
    assert client.get_run(step_run).info.status == "FAILED"
    assert client.get_run(again["ledger_run_id"]).data.tags["geomas.retrain.status"] == (
        "completed")
    assert _versions(project) == ["1"]
    # ZenML: the killed run is failed, the new one completed
    env = {**os.environ, "ZENML_CONFIG_PATH": str(project / ".geomas/zenml")}
    zenml = str(Path(sys.executable).parent / "zenml")
    listed = subprocess.run([zenml, "pipeline", "runs", "list", "-o", "json"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=300)
    runs = json.loads(listed.stdout[listed.stdout.index("{"):])["items"]
    assert sorted(r["status"] for r in runs) == ["completed", "failed"], runs
    # the report says so
    text = _geomas(project, "retrain", "check", "--config", "run.yaml")
    assert "decision     : skip" in text.stdout and "already completed" in text.stdout
    print(f"recovery check (mark + relaunch + train): {time.monotonic() - started:.0f} s")


def test_retrain_check_pipeline_runs_and_local_schedule_is_refused(project: Path) -> None:
    proc = _geomas(project, "retrain", "run-pipeline", "--config", "run.yaml", "--dry-run")
    assert "pipeline run : geomas_retrain_check" in proc.stdout, proc.stdout
    assert "decision     : launch (no champion yet)" in proc.stdout
    assert _versions(project) == []  # dry run: nothing trained
    # for real: the step launches `geomas run training --json` as a child process and takes
    # the run's name from its JSON summary
    real = _geomas(project, "retrain", "run-pipeline", "--config", "run.yaml")
    assert "decision     : launched" in real.stdout, real.stdout
    assert "training run : geomas_training-" in real.stdout, real.stdout
    assert _versions(project) == ["1"]
    refused = subprocess.run([*GEOMAS, "retrain", "schedule", "--config", "run.yaml"],
                             cwd=project, env=dict(os.environ), capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode != 0
    assert "has no schedules" in refused.stderr and "retrain watch" in refused.stderr


def test_cronjob_policy_is_valid_kubernetes_orchestrator_settings() -> None:
    from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings

    from geomas.config import RetrainConfig
    from geomas.runner import retrain_schedule
    from geomas.trigger.schedule import cronjob_policy

    config = RetrainConfig(cron="*/30 * * * *", starting_deadline_seconds=900)
    settings = KubernetesOrchestratorSettings(**cronjob_policy(config))
    assert settings.concurrency_policy == "Forbid"
    assert settings.starting_deadline_seconds == 900
    assert settings.successful_jobs_history_limit == settings.failed_jobs_history_limit == 3
    assert retrain_schedule(config).cron_expression == "*/30 * * * *"
