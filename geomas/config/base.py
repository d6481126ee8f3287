"""Shared base of the config models: strict pydantic models and the YAML loader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from geomas.errors import ConfigError

Profile = Literal["geology", "legal", "generic"]
M = TypeVar("M", bound=BaseModel)


def cyrillic_defaults() -> dict[Profile, float]:
    """Least share of Cyrillic letters per domain profile (chunks, QA pairs, examples)."""
    return {"geology": 0.5, "legal": 0.5, "generic": 0.0}


def dictionary_defaults() -> tuple[str, ...]:
    """Languages (wordfreq codes) whose words count as known: text quality, OCR-noise checks."""
    return ("ru", "en")


def env_path(name: str) -> Path | None:
    """A path from the environment, or None when the variable is unset or empty."""
    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


class StrictModel(BaseModel):
    """Frozen, and unknown keys are errors: a typo in a config file is never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing or malformed file."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(raw).__name__}")
    return raw


def load_config(path: Path, model: type[M]) -> M:
    """Load and validate a YAML config file through `model`; paths stay relative to the CWD."""
    raw = load_yaml(path)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"config file {path} is invalid: {validation_message(exc)}") from exc


def validation_message(exc: ValidationError) -> str:
    """A pydantic error on one line: `field.path: what is wrong` for each bad field."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
