"""Load a `TrainSFTConfig` from YAML or JSON, in geomas's shape or the legal guide's.

The legal LoRA guide's ``lora_training_config.json`` has the shape
``{"training_args": {...}, "lora_config": {...}}`` with Hugging Face ``TrainingArguments``
and PEFT ``LoraConfig`` key names (plus an optional ``data_config``). TrainSFTConfig uses the
same names, so most keys pass through and the few that geomas spells differently are mapped; a
key with no geomas counterpart is an error, never silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from geomas.config import TrainSFTConfig, load_yaml
from geomas.config.base import validation_message
from geomas.errors import ConfigError

LEGAL_SECTIONS = ("training_args", "lora_config", "data_config")


def _precision(name: str) -> Callable[[Any], dict[str, Any]]:
    def convert(value: Any) -> dict[str, Any]:
        # fp16/bf16: false only says "not this one"; auto already falls back to fp32 on CPU.
        return {"precision": name} if value else {}

    return convert


#: training_args keys that geomas spells differently; every other TrainingArguments name that
#: TrainSFTConfig has (`TRAINING_ARGS_KEYS`) passes through unchanged.
TRAINING_ARGS_MAP: dict[str, Callable[[Any], dict[str, Any]]] = {
    "fp16": _precision("fp16"),
    "bf16": _precision("bf16"),
    "gradient_checkpointing": lambda v: {"activation_checkpointing": v},
    "save_steps": lambda v: {"save_strategy": "steps", "save_steps": v},
}
TRAINING_ARGS_KEYS = (
    "num_train_epochs", "max_steps", "per_device_train_batch_size",
    "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type", "warmup_ratio",
    "weight_decay", "max_grad_norm", "optim", "activation_checkpointing", "save_total_limit",
    "logging_steps", "seed",
)
#: lora_config keys (PEFT names, kept by LoraSettings); task_type must be CAUSAL_LM.
LORA_KEYS = ("r", "lora_alpha", "lora_dropout", "target_modules", "bias")
DATA_CONFIG_MAP: dict[str, Callable[[Any], dict[str, Any]]] = {
    "max_seq_length": lambda v: {"max_length": v},
}
DATA_CONFIG_KEYS = ("max_length", "packing")


def is_legal_shape(raw: Mapping[str, Any]) -> bool:
    """Whether a config mapping uses the legal guide's ``training_args``/``lora_config`` shape."""
    return any(key in raw for key in LEGAL_SECTIONS)


def from_legal_shape(raw: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Map a legal-guide config onto TrainSFTConfig's fields.

    Raises:
        ConfigError: An unknown section or key (the message lists the supported ones).
    """
    unknown = sorted(set(raw) - set(LEGAL_SECTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level keys {unknown} in a training_args/lora_config "
            f"config; use only {list(LEGAL_SECTIONS)}"
        )
    out: dict[str, Any] = {}
    for section, mapping, same in (
        ("training_args", TRAINING_ARGS_MAP, TRAINING_ARGS_KEYS),
        ("data_config", DATA_CONFIG_MAP, DATA_CONFIG_KEYS),
    ):
        values = raw.get(section) or {}
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: {section} must be a mapping")
        for key, value in values.items():
            if key in same:
                out[key] = value
            elif key in mapping:
                out.update(mapping[key](value))
            else:
                raise ConfigError(
                    f"{source}: {section}.{key} is not supported by geomas train-sft; "
                    f"supported keys: {sorted((*mapping, *same))}"
                )
    lora = raw.get("lora_config") or {}
    if not isinstance(lora, Mapping):
        raise ConfigError(f"{source}: lora_config must be a mapping")
    lora_out: dict[str, Any] = {}
    for key, value in lora.items():
        if key == "task_type":
            if value != "CAUSAL_LM":
                raise ConfigError(
                    f"{source}: lora_config.task_type {value!r}: geomas trains causal LMs; "
                    "use CAUSAL_LM or drop the key"
                )
            continue
        if key not in LORA_KEYS:
            raise ConfigError(
                f"{source}: lora_config.{key} is not supported; supported keys: "
                f"{sorted((*LORA_KEYS, 'task_type'))}"
            )
        lora_out[key] = value
    if lora_out:
        out["lora"] = lora_out
    return out


def parse_sft_config(raw: Mapping[str, Any], source: str = "config") -> TrainSFTConfig:
    """Validate a config mapping (geomas or legal shape) into a `TrainSFTConfig`."""
    values = from_legal_shape(raw, source) if is_legal_shape(raw) else dict(raw)
    try:
        return TrainSFTConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(f"{source} is invalid: {validation_message(exc)}") from exc


def load_sft_config(path: Path) -> TrainSFTConfig:
    """Load a train-sft config file: YAML (``.yaml``/``.yml``) or JSON (``.json``).

    Raises:
        ConfigError: Missing or malformed file, unknown keys, invalid values.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a JSON object")
    else:
        raw = load_yaml(path)
    return parse_sft_config(raw, f"config file {path}")
