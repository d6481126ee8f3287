"""Every YAML under configs/ loads through its model; bad values fail with a clear message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geomas.config import IngestConfig, ModelAliases, RunConfig, ValidationConfig, load_config
from geomas.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# file name -> model; a new config file must be added here or the test below fails
MODELS = {"local.yaml": RunConfig, "k8s.yaml": RunConfig, "models.yaml": ModelAliases}


def test_every_config_file_has_a_model() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(MODELS)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_config_file_loads(name: str) -> None:
    cfg = load_config(CONFIGS / name, MODELS[name])
    assert isinstance(cfg, MODELS[name])


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  source_dir: a\n  output_dir: b\n  ingest:\n    max_tokenz: 5\n")
    with pytest.raises(ConfigError, match="max_tokenz"):
        load_config(bad, RunConfig)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml", RunConfig)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken, RunConfig)


def test_impossible_combinations_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_chars"):
        ValidationConfig(min_chars=10, max_chars=5)
    with pytest.raises(ValueError, match="layout_artifacts_path"):
        IngestConfig(pdf_parser="layout")
    with pytest.raises(ValueError):
        IngestConfig(max_tokens=0)


def test_layout_weights_path_defaults_to_the_image_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from geomas.config import IngestConfig

    monkeypatch.delenv("GEOMAS_LAYOUT_ARTIFACTS_PATH", raising=False)
    assert IngestConfig().layout_artifacts_path is None
    monkeypatch.setenv("GEOMAS_LAYOUT_ARTIFACTS_PATH", "/opt/docling-models")
    assert IngestConfig().layout_artifacts_path == Path("/opt/docling-models")
    assert IngestConfig(layout_artifacts_path=None).layout_artifacts_path is None


def test_retrain_needs_a_threshold() -> None:
    from geomas.config import RetrainConfig

    with pytest.raises(ValueError, match="at least one of min_new_docs"):
        RetrainConfig(min_new_docs=None)
    assert RetrainConfig(min_new_docs=None, min_new_qa_pairs=50).min_new_qa_pairs == 50


def test_training_fields_use_hugging_face_names_and_old_names_still_load() -> None:
    from geomas.config import TrainClassifierConfig, TrainSFTConfig
    from geomas.train.configfile import parse_sft_config

    new = TrainSFTConfig.model_validate({"num_train_epochs": 2, "per_device_train_batch_size": 4})
    old = TrainSFTConfig.model_validate({"epochs": 2, "batch_size": 4})
    assert new == old and new.num_train_epochs == 2 and new.per_device_train_batch_size == 4
    assert TrainClassifierConfig.model_validate({"epochs": 1.5}).num_train_epochs == 1.5
    # the legal guide's TrainingArguments keys pass straight through
    legal = parse_sft_config({"training_args": {"num_train_epochs": 3,
                                                "per_device_train_batch_size": 2,
                                                "fp16": True, "save_steps": 50}})
    assert (legal.num_train_epochs, legal.per_device_train_batch_size) == (3, 2)
    assert legal.precision == "fp16" and legal.save_strategy == "steps"
    with pytest.raises(ConfigError, match="training_args.evaluation_strategy is not supported"):
        parse_sft_config({"training_args": {"evaluation_strategy": "epoch"}})


def _leaves(tree: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
        else:
            yield ".".join((*path, key)), value


@pytest.mark.parametrize("name", ["local.yaml", "k8s.yaml"])
def test_run_configs_do_not_repeat_the_data_defaults(name: str) -> None:
    """A data-stage default lives in its config model only, so the CLI commands (which read
    the same models) and `geomas run data` cannot drift apart: YAML gives only the values it
    changes."""
    from geomas.config import DataPipelineConfig, load_yaml

    data = load_yaml(CONFIGS / name)["data"]
    defaults = dict(_leaves(DataPipelineConfig(source_dir=Path("s"), output_dir=Path("o"))
                            .model_dump(mode="json")))
    repeated = [key for key, value in _leaves(data)
                if key not in ("source_dir", "output_dir") and defaults.get(key) == value]
    assert repeated == [], f"configs/{name} repeats model defaults under data: {repeated}"
