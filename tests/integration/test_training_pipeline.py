"""The training pipeline on the embedded stack, driven through the CLI as a user runs it.

Fast: the pipeline's mechanics on a random-init tiny LM (registration tags, plots in MLflow,
ZenML Model Control Plane stages following promote/rollback). Slow (a pre-trained tiny LM,
two QLoRA runs, ~5 min on 2 cores, `pytest -m slow`): a better model is promoted, a worse one
is not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GEOMAS = [sys.executable, "-m", "geomas.cli"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _config(root: Path, name: str, epochs: int, lr: float) -> Path:
    cfg = root / f"{name}.yaml"
    cfg.write_text(
        "project:\n  data_dir: .geomas\n  experiment_name: geomas-train-test\n"
        "data:\n  source_dir: corpus/docs\n  output_dir: data\n"
        "  ner:\n    model_path: ner\n"
        "training:\n  model: tiny-lm\n  train_file: data/instruct_dataset_train.json\n"
        f"  val_file: data/instruct_dataset_val.json\n  output_dir: sft-{name}\n"
        "  test_file: data/instruct_dataset_test.json\n"
        f"  sft:\n    method: qlora\n    tag: {name}\n    max_length: 384\n"
        f"    epochs: {epochs}\n    learning_rate: {lr}\n"
        "  evaluation:\n    max_new_tokens: 48\n",
        encoding="utf-8",
    )
    return cfg


@pytest.mark.slow
def test_better_model_is_promoted_and_worse_is_not(tmp_path: Path) -> None:
    import mlflow

    from geomas.config import NerTrainConfig
    from geomas.models import make_tiny
    from geomas.ner.annotations import convert_annotations
    from geomas.ner.train import train_ner
    from geomas.sample import generate_sample_corpus

    generate_sample_corpus(tmp_path / "corpus", docs=24, seed=0)
    convert_annotations(tmp_path / "corpus/annotations", tmp_path / "bio", progress=False)
    base = make_tiny("ner", tmp_path / "tiny-ner", corpus_dir=tmp_path / "corpus")
    train_ner(tmp_path / "bio", NerTrainConfig(model_name=str(base), output_dir=tmp_path / "ner",
                                               epochs=40, learning_rate=1e-3,
                                               register_model=False), progress=False)
    make_tiny("lm", tmp_path / "tiny-lm", corpus_dir=tmp_path / "corpus", pretrain_steps=300)
    good = _config(tmp_path, "good", epochs=8, lr=5e-3)
    worse = _config(tmp_path, "worse", epochs=1, lr=1e-5)
    _run([*GEOMAS, "run", "data", "--config", str(good)], tmp_path)
    _run([*GEOMAS, "run", "training", "--config", str(good)], tmp_path)
    _run([*GEOMAS, "run", "training", "--config", str(worse)], tmp_path)

    uri = f"sqlite:///{tmp_path / '.geomas/mlflow/mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("geomas-sft", "champion")
    assert str(champion.version) == "1"
    assert float(champion.tags["metric.token_f1"]) > float(champion.tags["metric.base_token_f1"])
    second = client.get_model_version("geomas-sft", "2")
    assert second.tags["promotion_decision"] == "rejected", second.tags
    for key in ("dataset_sha256", "train_size", "zenml_run_id", "base_model"):
        assert second.tags[key]
    # the version names the data pipeline run that wrote its files
    data_run = json.loads((tmp_path / "data/instruct_dataset_data_run.json").read_text("utf-8"))
    assert second.tags["data_pipeline_run_id"] == data_run["data_pipeline_run_id"] != "unknown"
    # the second run scored the champion v1 on its own test examples, side by side
    assert second.tags["eval_split"] == "test"
    report = json.loads(Path(client.download_artifacts(second.run_id, "eval/report.json",
                                                       str(tmp_path))).read_text("utf-8"))
    assert report["champion_version"] == "1" and report["champion_problem"] is None
    assert len(report["per_example"]["champion"]["token_f1"]) == len(report["example_ids"]) > 0
    # the registered champion loads back through the registry and answers
    from geomas.registry.adapters import load_registered_adapter

    answers = load_registered_adapter("models:/geomas-sft@champion").predict(
        None, ["Какие содержания золота установлены на месторождении?"]
    )
    assert isinstance(answers[0], str)
    (run_dir,) = (tmp_path / "sft-good").glob("run-*")
    training_config = json.loads((run_dir / "training_config.json").read_text())
    assert training_config["method"] == "qlora"


def _zenml_stages(root: Path, model: str) -> dict[str, str]:
    """ZenML model version number -> stage, read in a subprocess bound to the project."""
    code = (
        "import json; from zenml.client import Client; "
        f"vs = Client().list_model_versions(model_name_or_id={model!r}, size=100); "
        "print(json.dumps({v.name: (v.stage or 'none') for v in vs.items}))"
    )
    env = {**os.environ, "ZENML_CONFIG_PATH": str(root / ".geomas/zenml")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_pipeline_registers_logs_plots_and_mirrors_stages(
    tmp_path: Path, sample_corpus: Path
) -> None:
    import mlflow

    from geomas.formats import write_examples
    from geomas.models import make_tiny
    from geomas.sample.synthetic_records import synthetic_geology_qa

    examples = synthetic_geology_qa(48, near_dup_share=0.0, seed=3).examples
    (tmp_path / "data").mkdir()
    write_examples(examples[:36], tmp_path / "data/instruct_dataset_train.json", "alpaca", False)
    write_examples(examples[36:42], tmp_path / "data/instruct_dataset_val.json", "alpaca", False)
    write_examples(examples[42:], tmp_path / "data/instruct_dataset_test.json", "alpaca", False)
    make_tiny("lm", tmp_path / "tiny-lm", corpus_dir=sample_corpus)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "project:\n  data_dir: .geomas\n  experiment_name: geomas-fast\n"
        "data:\n  source_dir: corpus\n  output_dir: data\n"
        "training:\n  model: tiny-lm\n  train_file: data/instruct_dataset_train.json\n"
        "  val_file: data/instruct_dataset_val.json\n  output_dir: sft\n"
        "  test_file: data/instruct_dataset_test.json\n"
        "  sft:\n    method: qlora\n    tag: fast\n    max_length: 256\n    epochs: 1\n"
        "  evaluation:\n    max_new_tokens: 4\n",
        encoding="utf-8",
    )
    first = _run([*GEOMAS, "run", "training", "--config", str(cfg)], tmp_path)
    assert "registered   : geomas-sft v1" in first.stdout, first.stdout

    uri = f"sqlite:///{tmp_path / '.geomas/mlflow/mlflow.db'}"
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    v1 = client.get_model_version("geomas-sft", "1")
    # a random-init model cannot beat its base by the margin: registered, not promoted
    assert v1.tags["promotion_decision"] == "rejected", v1.tags
    assert "does not beat the base" in v1.tags["promotion_reason"]
    assert v1.aliases == ["challenger"]
    for key in ("dataset_sha256", "val_sha256", "train_size", "val_size", "zenml_run_id",
                "git_sha", "base_model", "zenml_model", "zenml_model_version"):
        assert v1.tags.get(key), key
    assert v1.tags["train_size"] == "36" and v1.tags["val_size"] == "6"
    # early stopping and the checkpoint choice saw val; the gate judged the test examples
    assert v1.tags["eval_split"] == "test" and v1.tags["eval_size"] == "6"
    assert v1.tags["data_pipeline_run_id"] == "unknown"  # files written by hand, not a run
    report = json.loads(Path(client.download_artifacts(v1.run_id, "eval/report.json",
                                                       str(tmp_path))).read_text("utf-8"))
    assert report["eval_split"] == "test"
    assert report["example_ids"] == [e.id for e in examples[42:]]
    assert not set(report["example_ids"]) & {e.id for e in examples[:42]}
    record = json.loads(next((tmp_path / "sft").rglob("training_config.json")).read_text("utf-8"))
    assert Path(record["dataset"]["eval"]["path"]).name == "instruct_dataset_val.json"
    artifacts = {a.path for stage in ("train", "eval")
                 for a in client.list_artifacts(v1.run_id, stage)}
    assert {"train/loss_curve.png", "eval/base_vs_tuned.png", "eval/report.json"} <= artifacts
    run1 = client.get_run(v1.run_id)
    assert "eval.token_f1" in run1.data.metrics
    # what people look for in the run: hyperparameters, the datasets, sample generations
    params = run1.data.params
    assert float(params["train.learning_rate"]) > 0 and params["train.max_length"] == "256"
    assert float(params["train.num_train_epochs"]) == 1.0 and params["train.lora_r"] == "16"
    inputs = {(d.dataset.name, next(t.value for t in d.tags if t.key == "mlflow.data.context"))
              for d in run1.inputs.dataset_inputs}
    assert inputs == {("instruct_dataset_train.json", "training"),
                      ("instruct_dataset_val.json", "validation"),
                      ("instruct_dataset_test.json", "evaluation")}, inputs
    assert all(d.dataset.digest for d in run1.inputs.dataset_inputs)
    table = json.loads(Path(client.download_artifacts(
        v1.run_id, "eval/sample_generations.json", str(tmp_path / "t"))).read_text("utf-8"))
    assert table["columns"][:4] == ["id", "prompt", "reference", "base"]
    assert len(table["data"]) == 6 and "tuned" in table["columns"]
    # trained on prompt-completion records: base and tuned were asked the Alpaca text prompt
    # it learned, not the tokenizer's chat template
    assert report["prompt_style"] == "alpaca"
    prompts = [row[table["columns"].index("prompt")] for row in table["data"]]
    assert all(p.endswith("### Ответ:\n") for p in prompts), prompts[0]
    assert _zenml_stages(tmp_path, "geomas-sft") == {"1": "staging"}

    second = _run([*GEOMAS, "run", "training", "--config", str(cfg), "--json"], tmp_path)
    summary = json.loads(second.stdout)  # only the JSON summary is on stdout
    assert summary["pipeline"] == "geomas_training" and summary["status"] == "completed"
    assert summary["registered"]["name"] == "geomas-sft"
    assert summary["registered"]["version"] == "2"
    assert summary["registered"]["decision"] == client.get_model_version(
        "geomas-sft", "2").tags["promotion_decision"]
    assert summary["registered"]["aliases"]["challenger"] == "2"
    assert Path(summary["outputs"]["adapter"], "adapter_config.json").is_file() or \
        any(Path(summary["outputs"]["adapter"]).rglob("adapter_config.json"))
    # the new version took the challenger alias, so the old challenger is archived
    assert client.get_model_version("geomas-sft", "1").aliases == []
    assert _zenml_stages(tmp_path, "geomas-sft") == {"1": "archived", "2": "staging"}
    _run([*GEOMAS, "promote", "geomas-sft", "1", "--force", "--reason", "keep v1 live",
          "--actor", "alice", "--data-dir", ".geomas"], tmp_path)
    assert _zenml_stages(tmp_path, "geomas-sft") == {"1": "production", "2": "staging"}
    _run([*GEOMAS, "promote", "geomas-sft", "2", "--force", "--reason", "try v2",
          "--data-dir", ".geomas"], tmp_path)
    assert _zenml_stages(tmp_path, "geomas-sft") == {"1": "archived", "2": "production"}
    assert str(client.get_model_version_by_alias("geomas-sft", "previous-champion").version) == "1"
    _run([*GEOMAS, "rollback", "geomas-sft", "--data-dir", ".geomas"], tmp_path)
    assert str(client.get_model_version_by_alias("geomas-sft", "champion").version) == "1"
    assert _zenml_stages(tmp_path, "geomas-sft") == {"1": "production", "2": "archived"}

    # with a champion in the registry, the next run re-scores it on the same test examples:
    # its adapter is downloaded (no unpickling) and loaded as a second adapter on the base
    _run([*GEOMAS, "run", "training", "--config", str(cfg)], tmp_path)
    v3 = client.get_model_version("geomas-sft", "3")
    report3 = json.loads(Path(client.download_artifacts(v3.run_id, "eval/report.json",
                                                        str(tmp_path / "v3"))).read_text("utf-8"))
    assert report3["champion_version"] == "1" and report3["champion_problem"] is None
    ids = report3["example_ids"]
    assert ids == [e.id for e in examples[42:]]
    for model in ("base", "tuned", "champion"):
        assert len(report3["per_example"][model]["token_f1"]) == len(ids), model
    # v1's own evaluation scored the same examples: the champion's per-example scores now are
    # those of v1's adapter (greedy decoding is deterministic)
    assert report3["per_example"]["champion"] == report["per_example"]["tuned"]

    # the audit trail: two forced promotions and a rollback, with actors and reasons
    hist = _run([*GEOMAS, "models", "history", "geomas-sft", "--data-dir", ".geomas"], tmp_path)
    for text in ("promote", "rollback", "alice", "champion moves"):
        assert text in hist.stdout, (text, hist.stdout)
    rows = [json.loads(line) for line in _run([*GEOMAS, "models", "history", "geomas-sft",
                                               "--json", "--data-dir", ".geomas"],
                                              tmp_path).stdout.splitlines()]
    assert [(r["action"], r["actor"] == "alice") for r in rows] == [
        ("promote", True), ("promote", False), ("rollback", False)]
    assert "keep v1 live" in rows[0]["reason"] and "try v2" in rows[1]["reason"]
    from geomas.registry.audit import history

    mlflow.set_tracking_uri(uri)
    moves = history("geomas-sft", client)
    assert [(m.action, m.from_version, m.to_version) for m in moves] == [
        ("promote", None, "1"), ("promote", "1", "2"), ("rollback", "2", "1")]
    assert moves[0].actor == "alice" and moves[2].actor
    assert "keep v1 live" in moves[0].reason and moves[1].metrics
