"""Configuration models: one pydantic model per concern, loaded from configs/*.yaml.

YAML files give values; these models define what exists and the defaults. Every model forbids
unknown keys so that a typo in a config file is an error, not a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geomas.errors import ConfigError

Profile = Literal["geology", "legal", "generic"]
M = TypeVar("M", bound=BaseModel)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectConfig(_Model):
    """Where the embedded stack and the run outputs live."""

    data_dir: Path = Field(
        default=Path(".geomas"),
        description="Project data dir: ZenML config, SQLite stores, artifacts, MLflow runs.",
    )
    experiment_name: str = Field(default="geomas", min_length=1)


class IngestConfig(_Model):
    """Document conversion and chunking."""

    pdf_parser: Literal["auto", "native", "layout"] = Field(
        default="auto",
        description=(
            "auto: docling's layout pipeline when layout_artifacts_path is set, otherwise the "
            "model-free NativePdfPipeline. native/layout force one of them."
        ),
    )
    layout_artifacts_path: Path | None = Field(
        default=None, description="Local folder with docling's layout model weights."
    )
    max_tokens: int = Field(default=256, ge=16, le=32768, description="Token limit per chunk.")
    tokenizer: Path | None = Field(
        default=None,
        description=(
            "Local Hugging Face tokenizer folder used to count chunk tokens. None: geomas's "
            "built-in Unicode word/punctuation counter (no model needed)."
        ),
    )
    workers: int = Field(default=2, ge=1, le=64, description="Parallel conversion processes.")
    max_failure_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Exit non-zero when rejected files / all files exceeds this ratio.",
    )
    extensions: tuple[str, ...] = Field(
        default=(".pdf", ".docx", ".html", ".htm", ".md"),
        description="File suffixes that are converted; any other file is rejected with a reason.",
    )
    document_timeout_s: float | None = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _layout_needs_weights(self) -> IngestConfig:
        if self.pdf_parser == "layout" and self.layout_artifacts_path is None:
            raise ValueError(
                "pdf_parser='layout' needs layout_artifacts_path (a local folder with docling's "
                "layout weights, e.g. from `docling-tools models download`); use 'auto' or "
                "'native' to run without them"
            )
        return self


class ValidationConfig(_Model):
    """Great Expectations checks on chunks and what happens when they fail."""

    policy: Literal["fail", "warn"] = "fail"
    profile: Profile = "geology"
    min_chars: int = Field(default=1, ge=1)
    max_chars: int = Field(default=20000, ge=1)
    min_cyrillic_share: dict[str, float] = Field(
        default_factory=lambda: {"geology": 0.5, "legal": 0.5, "generic": 0.0},
        description="Minimum share of Cyrillic letters among letters per chunk, by profile.",
    )
    mostly: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Share of chunks that must pass the per-chunk Cyrillic-share check.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ValidationConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(
                f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars})"
            )
        if self.profile not in self.min_cyrillic_share:
            raise ValueError(f"min_cyrillic_share has no entry for profile {self.profile!r}")
        return self

    @property
    def cyrillic_min(self) -> float:
        """The Cyrillic share floor for the active profile."""
        return self.min_cyrillic_share[self.profile]


class NerTrainConfig(_Model):
    """`geomas train-bert-ner`: token classification from a local BERT-like model."""

    model_name: str = Field(
        min_length=1,
        description="Local model folder, or a hub id already in the local Hugging Face cache.",
    )
    output_dir: Path
    epochs: int = Field(default=30, ge=1, le=1000)
    batch_size: int = Field(default=8, ge=1, le=1024)
    learning_rate: float = Field(default=2e-5, gt=0, le=1.0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    max_length: int = Field(default=256, ge=16, le=8192, description="Sub-word tokens per window.")
    stride: int = Field(default=32, ge=0, description="Overlap between windows of long records.")
    early_stopping_patience: int = Field(default=3, ge=1)
    val_share: float = Field(
        default=0.15,
        gt=0,
        lt=1,
        description="Share of training documents held out for early stopping.",
    )
    seed: int = 42
    register_model: bool = Field(default=True, description="Log to MLflow, register geomas-ner.")
    registered_model_name: str = "geomas-ner"

    @model_validator(mode="after")
    def _stride_below_window(self) -> NerTrainConfig:
        if self.stride >= self.max_length // 2:
            raise ValueError(
                f"stride ({self.stride}) must be below half of max_length ({self.max_length})"
            )
        return self


class NerInferenceConfig(_Model):
    """Entity extraction over chunks with a trained token-classification model."""

    model_path: Path | None = Field(
        default=None, description="Trained NER model folder; None skips entity extraction."
    )
    batch_size: int = Field(default=16, ge=1, le=4096)
    max_length: int = Field(default=256, ge=16, le=8192)
    stride: int = Field(default=64, ge=0)
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)


class DataPipelineConfig(_Model):
    """`geomas run data`: inputs and per-stage settings of the data pipeline."""

    source_dir: Path
    output_dir: Path
    ingest: IngestConfig = IngestConfig()
    validation: ValidationConfig = ValidationConfig()
    ner: NerInferenceConfig = NerInferenceConfig()


class RunConfig(_Model):
    """A whole run config file (configs/local.yaml)."""

    project: ProjectConfig = ProjectConfig()
    data: DataPipelineConfig


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
        raise ConfigError(f"config file {path} is invalid:\n{exc}") from exc
