"""The training pipeline on the embedded stack: a better model is promoted, a worse one is not.

Slow (a pre-trained tiny LM, two QLoRA runs, ~5 min on 2 cores): `pytest -m slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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
        f"  sft:\n    method: qlora\n    tag: {name}\n    max_length: 384\n"
        f"    epochs: {epochs}\n    learning_rate: {lr}\n"
        "  evaluation:\n    max_new_tokens: 48\n",
        encoding="utf-8",
    )
    return cfg


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
    client = mlflow.MlflowClient(uri)
    champion = client.get_model_version_by_alias("geomas-sft", "champion")
    assert str(champion.version) == "1"
    assert float(champion.tags["metric.token_f1"]) > float(champion.tags["metric.base_token_f1"])
    second = client.get_model_version("geomas-sft", "2")
    assert second.tags["promotion_decision"] == "rejected", second.tags
    for key in ("dataset_sha256", "train_size", "zenml_run_id", "base_model"):
        assert second.tags[key]
    # the registered champion loads back through the registry and answers
    answers = mlflow.pyfunc.load_model("models:/geomas-sft@champion").predict(
        ["Какие содержания золота установлены на месторождении?"]
    )
    assert isinstance(answers[0], str)
    training_config = json.loads((tmp_path / "sft-good/training_config.json").read_text())
    assert training_config["method"] == "qlora"
