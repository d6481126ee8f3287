"""Configuration models: one pydantic model per concern, loaded from configs/*.yaml.

YAML files give values; these models define what exists and the defaults. Every model forbids
unknown keys so that a typo in a config file is an error, not a silently ignored setting.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from geomas.errors import ConfigError
from geomas.stack import LOCAL_STACK_NAME

Profile = Literal["geology", "legal", "generic"]
M = TypeVar("M", bound=BaseModel)


def cyrillic_defaults() -> dict[Profile, float]:
    """Least share of Cyrillic letters per domain profile (chunks, QA pairs, examples)."""
    return {"geology": 0.5, "legal": 0.5, "generic": 0.0}


def _env_path(name: str) -> Path | None:
    """A path from the environment, or None when the variable is unset or empty."""
    import os

    value = os.environ.get(name, "").strip()
    return Path(value) if value else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectConfig(_Model):
    """Where the embedded stack and the run outputs live."""

    data_dir: Path = Field(
        default=Path(".geomas"),
        description="Project data dir: ZenML config, SQLite stores, artifacts, MLflow runs.",
    )
    experiment_name: str = Field(default="geomas", min_length=1)
    stack: str = Field(
        default=LOCAL_STACK_NAME,
        min_length=1,
        description=(
            "ZenML stack the pipelines run on. The embedded stack (geomas-local) is created on "
            "demand; any other stack must already be registered (`geomas stack import`)."
        ),
    )


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
        default_factory=lambda: _env_path("GEOMAS_LAYOUT_ARTIFACTS_PATH"),
        description="Local folder with docling's layout model weights; default: the "
        "GEOMAS_LAYOUT_ARTIFACTS_PATH environment variable (set in the trainer image, where the "
        "weights are baked in), else none.",
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
    min_cyrillic_share: dict[Profile, float] = Field(
        default_factory=cyrillic_defaults,
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


class TeacherConfig(_Model):
    """Optional LLM teacher for QA pairs through an OpenAI-compatible chat endpoint."""

    enabled: bool = False
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1 (vLLM, Ollama).",
    )
    model: str | None = Field(default=None, description="Model name sent with each request.")
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        min_length=1,
        description="Environment variable holding the API key; the key itself is never stored.",
    )
    mode: Literal["rewrite", "answer"] = Field(
        default="rewrite",
        description=(
            "rewrite: the model rephrases the template question, the extractive answer stays; "
            "answer: the model answers the question from the context (checked for grounding)."
        ),
    )
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries per request (openai).")
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1, le=32768)
    min_grounding: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="answer mode: least share of the answer's words that occur in the context.",
    )
    keep_template_on_failure: bool = Field(
        default=True,
        description=(
            "Keep the template pair when the teacher fails for it (API error, invalid or "
            "ungrounded response); the failure is recorded in the rejects either way."
        ),
    )
    workers: int = Field(default=4, ge=1, le=64, description="Concurrent requests.")
    max_error_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Fail the run (after writing outputs) when API errors / requests exceed this.",
    )

    @model_validator(mode="after")
    def _endpoint_when_enabled(self) -> TeacherConfig:
        if self.enabled and (not self.base_url or not self.model):
            raise ValueError(
                "teacher.enabled needs teacher.base_url (an OpenAI-compatible API root such as "
                "http://127.0.0.1:8000/v1) and teacher.model; set both or disable the teacher"
            )
        return self


class QAConfig(_Model):
    """Template QA synthesis from entities (`geomas generate-qa-pairs`)."""

    templates: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description=(
            "Question templates per entity type, replacing the built-in ones for that type "
            "(or adding a type). Placeholders: {entity} (entity text), {deposit} (deposit "
            "name found in the document; templates with it are skipped when none is found)."
        ),
    )
    max_context_length: int = Field(
        default=300, ge=20, le=100_000, description="Most characters of a pair's context."
    )
    add_context: bool = Field(
        default=True, description="Give each pair a context window (the instruct input)."
    )
    num_pairs: int = Field(default=2, ge=1, le=1000, description="Most QA pairs per chunk.")
    seed: int = Field(default=0, description="Seed of template and entity-type choices.")
    min_entity_confidence: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Entities below this NER confidence are rejected."
    )
    answer_mode: Literal["sentence", "clause"] = Field(
        default="sentence",
        description=(
            "sentence: the answer is the sentence(s) holding the entity; clause: the part of "
            "that sentence between the ';' / ',' boundaries around the entity."
        ),
    )
    teacher: TeacherConfig = TeacherConfig()

    @model_validator(mode="after")
    def _templates_and_teacher(self) -> QAConfig:
        from string import Formatter

        for label, variants in self.templates.items():
            if not variants:
                raise ValueError(f"templates[{label!r}] is empty; give at least one question")
            for t in variants:
                names = {f for _, f, _, _ in Formatter().parse(t) if f is not None}
                unknown = names - {"entity", "deposit"}
                if unknown:
                    raise ValueError(
                        f"templates[{label!r}] template {t!r} uses unknown placeholders "
                        f"{sorted(unknown)}; allowed: {{entity}}, {{deposit}}"
                    )
            if all("{deposit}" in t for t in variants):
                raise ValueError(
                    f"templates[{label!r}]: every template needs {{deposit}}; add one without "
                    "it for documents where no deposit name is found"
                )
        if self.teacher.enabled and self.teacher.mode == "answer" and not self.add_context:
            raise ValueError(
                "teacher.mode='answer' needs add_context=true: teacher answers are written and "
                "checked against the pair's context"
            )
        return self


FormatType = Literal[
    "alpaca", "messages", "sharegpt", "prompt-completion", "text", "vertex", "classification"
]
LineageMode = Literal["sidecar", "inline", "none"]


class SplitConfig(_Model):
    """Train/val/test split of examples: grouped by document, stratified by class, seeded."""

    val_ratio: float = Field(
        default=0.1,
        gt=0.0,
        lt=1.0,
        description="Share of records for validation (the original --split-ratio 0.9 = 0.1 val).",
    )
    test_ratio: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Share of records for a test split; 0: none."
    )
    seed: int = Field(default=42, description="Seed of the group shuffle and record allocation.")
    stratify_by: Literal["label"] | None = Field(
        default="label",
        description="Example field whose class shares each split keeps; None: no stratification.",
    )
    group_by: Literal["group"] | None = Field(
        default="group",
        description=(
            "Example field whose values never span two splits (doc_id); None: records are "
            "split independently. Records without a value are groups of their own."
        ),
    )
    min_samples_per_class: int = Field(
        default=10,
        ge=0,
        description="Classes with fewer records are handled by `policy`; 0 turns it off.",
    )
    policy: Literal["merge_other", "drop", "oversample_train"] = Field(
        default="merge_other",
        description=(
            "merge_other: relabel small classes as `other_label`; drop: reject their records "
            "(rule min_samples); oversample_train: duplicate their train records up to "
            "min_samples_per_class (val/test are never oversampled)."
        ),
    )
    other_label: str = Field(default="other", min_length=1)
    share_tolerance: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description=(
            "Largest accepted gap between a class's share of a split and its overall share; "
            "larger gaps are listed in the split report."
        ),
    )

    @model_validator(mode="after")
    def _train_left(self) -> SplitConfig:
        if self.val_ratio + self.test_ratio >= 1.0:
            raise ValueError(
                f"val_ratio ({self.val_ratio}) + test_ratio ({self.test_ratio}) leaves no "
                "records for training; keep their sum below 1"
            )
        return self

    @property
    def train_ratio(self) -> float:
        """Share of records for training."""
        return 1.0 - self.val_ratio - self.test_ratio


class FormatConfig(_Model):
    """Output format of instruction datasets (`geomas format-instruct-dataset`)."""

    format_type: FormatType = Field(
        default="alpaca",
        description=(
            "alpaca (instruction/input/output), messages (OpenAI chat), sharegpt, "
            "prompt-completion, text (one Alpaca-style Russian string), vertex (Vertex AI "
            "supervised tuning), classification (text/label)."
        ),
    )
    jsonl: bool = Field(default=False, description="JSON Lines instead of one JSON list.")
    system_prompt: str | None = Field(
        default=None,
        description="System prompt for examples without one (formats that carry a system turn).",
    )
    split_ratio: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description=(
            "Train share as in the original --split-ratio (0.9 = 90 % train); sets "
            "split.val_ratio to 1 - split_ratio - split.test_ratio. None: SplitConfig decides."
        ),
    )
    lineage: LineageMode = Field(
        default="sidecar",
        description=(
            "sidecar: ids, labels, groups and meta in <stem>.lineage.jsonl next to each file, "
            "which keeps the standard keys only; inline: in an extra `lineage` key per record "
            "(datasets and TRL tolerate it; Vertex AI's schema has no place for it); none: "
            "not kept."
        ),
    )

    @model_validator(mode="after")
    def _vertex_rules(self) -> FormatConfig:
        if self.format_type == "vertex" and not self.jsonl:
            raise ValueError(
                "format_type='vertex' needs jsonl=true: Vertex AI reads JSON Lines only"
            )
        if self.format_type == "vertex" and self.lineage == "inline":
            raise ValueError(
                "format_type='vertex' cannot carry lineage='inline' (Vertex AI's dataset schema "
                "has only systemInstruction and contents); use lineage='sidecar'"
            )
        return self

    def split_config(self, base: SplitConfig | None = None) -> SplitConfig:
        """The split settings: `base` (or the defaults) with `split_ratio` applied."""
        base = base if base is not None else SplitConfig()
        if self.split_ratio is None:
            return base
        val = round(1.0 - self.split_ratio - base.test_ratio, 10)
        if val <= 0.0:
            raise ValueError(
                f"split_ratio ({self.split_ratio}) + split.test_ratio ({base.test_ratio}) leaves "
                "no records for validation; lower split_ratio or test_ratio"
            )
        return SplitConfig.model_validate({**base.model_dump(), "val_ratio": val})


def _clean_required_defaults() -> dict[Profile, tuple[str, ...]]:
    # The legal guide's cleaner checks each document for its «мотивировочная часть».
    return {"legal": (r"мотивировочн\w*\s+част",)}


class CleanConfig(_Model):
    """Dataset cleaning (`geomas clean-dataset`): normalisation, filters and deduplication.

    Rules run in a fixed order (normalize, empty, length, script, garbage, grounding, profile,
    exact_dup, near_dup); every removed record is written to the rejects with its rule's name.
    """

    profile: Profile = Field(default="geology", description="Selects the per-profile settings.")
    # -- normalisation (changes text, removes nothing)
    dehyphenate: bool = Field(
        default=True,
        description=(
            "Join words split by a hyphen at a line break («место-\\nрождение»). The hyphen is "
            "kept when the second part is capitalised, the first part is in "
            "keep_hyphen_prefixes, or the dataset itself spells the word with a hyphen more "
            "often than without."
        ),
    )
    keep_hyphen_prefixes: tuple[str, ...] = Field(
        default=("северо", "юго"),
        description="Lower-case first parts of compounds always written with a hyphen.",
    )
    furniture_patterns: tuple[str, ...] = Field(
        default=(
            r"(?:стр\.?|страница|с\.|лист|page|p\.)\s*\d{1,4}(?:\s*(?:из|/|of)\s*\d{1,4})?",
            r"[-–—]\s*\d{1,4}\s*[-–—]",
            r"\d{1,4}\s*(?:/|из)\s*\d{1,4}",
        ),
        description=(
            "Page furniture: regular expressions (case-insensitive) matched against whole "
            "stripped lines, which are removed. A bare number line is not matched by default: "
            "in extracted tables it is often data."
        ),
    )
    furniture_repeat_min: int = Field(
        default=3,
        ge=0,
        description=(
            "A short line with letters that occurs this many times in one field is a running "
            "header or footer and is removed everywhere in that field; 0 turns this off."
        ),
    )
    furniture_max_line_chars: int = Field(
        default=80,
        ge=1,
        description="Longest line that can be taken for a running header or footer.",
    )
    # -- empty and length filters
    min_instruction_chars: int = Field(default=5, ge=1)
    max_instruction_chars: int = Field(default=4000, ge=1)
    max_input_chars: int = Field(default=20000, ge=1, description="The input may be empty.")
    min_output_chars: int = Field(default=1, ge=1)
    max_output_chars: int = Field(default=20000, ge=1)
    # -- script filter
    min_cyrillic_share: dict[Profile, float] = Field(
        default_factory=cyrillic_defaults,
        description=(
            "Least share of Cyrillic letters among the letters of instruction+input+output, "
            "by profile; 0 turns the script filter off."
        ),
    )
    # -- garbage filter (whole record)
    min_letter_share: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description="Least share of letters among the record's non-space characters.",
    )
    max_symbol_share: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description=(
            "Largest share of a field's non-space characters that are neither letters, digits "
            "nor common punctuation (box drawing, private-use glyphs, U+FFFD...)."
        ),
    )
    max_char_run: int = Field(
        default=10, ge=2, description="Longest allowed run of one repeated non-space character."
    )
    max_word_repeat: int = Field(
        default=3, ge=1, description="Most times one word may occur in a row."
    )
    # -- grounding filter
    grounding: bool | None = Field(
        default=None,
        description=(
            "Require the output's words to occur in the input (records with an empty input "
            "pass). None: on for the geology profile, off for legal and generic."
        ),
    )
    grounding_min_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Least share of the output's distinct word stems found in the input.",
    )
    grounding_stem_chars: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Words are compared by their first N characters (Russian inflection).",
    )
    # -- profile rules
    required_output_patterns: dict[Profile, tuple[str, ...]] = Field(
        default_factory=_clean_required_defaults,
        description=(
            "Regular expressions (case-insensitive) the output must all match, by profile; "
            "legal requires the «мотивировочная часть» section."
        ),
    )
    # -- deduplication
    exact_dedup: bool = Field(
        default=True,
        description="Drop records whose case- and space-normalised fields equal an earlier one.",
    )
    near_dedup: bool = Field(default=True, description="Drop near-duplicates (MinHash LSH).")
    near_dup_threshold: float = Field(
        default=0.85,
        gt=0.0,
        le=1.0,
        description=(
            "Jaccard similarity of the word-shingle sets of instruction+input+output at or "
            "above which a record is a near-duplicate of an earlier one (checked exactly; "
            "MinHash LSH only proposes the candidates)."
        ),
    )
    near_dup_num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash size.")
    near_dup_shingle_words: int = Field(
        default=2,
        ge=1,
        le=10,
        description=(
            "Words per shingle. 2 finds one or two small edits in a ~50-word record; with "
            "longer shingles an edit changes more of them, so short records fall below the "
            "threshold."
        ),
    )
    near_dup_question_or_answer: bool = Field(
        default=True,
        description=(
            "Also require the question (the instruction after its task description, i.e. "
            "from «Вопрос:») or the output alone to reach near_dup_threshold. Extractive QA "
            "pairs about one input share nearly all their shingles with it, so different "
            "questions with different answers would otherwise be taken for duplicates."
        ),
    )
    near_dup_seed: int = Field(default=1, description="Seed of the MinHash permutations.")
    # -- report
    diversity_top: int = Field(
        default=10, ge=1, le=1000, description="Repeated instructions listed in the report."
    )

    @model_validator(mode="after")
    def _consistent(self) -> CleanConfig:
        for low, high in (
            ("min_instruction_chars", "max_instruction_chars"),
            ("min_output_chars", "max_output_chars"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low} ({getattr(self, low)}) is above {high} ({getattr(self, high)})"
                )
        if self.profile not in self.min_cyrillic_share:
            raise ValueError(
                f"min_cyrillic_share has no entry for profile {self.profile!r}; add one "
                "(0 turns the script filter off)"
            )
        for profile, share in self.min_cyrillic_share.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"min_cyrillic_share[{profile!r}] = {share} is not in [0, 1]")
        for name, patterns in (
            ("furniture_patterns", self.furniture_patterns),
            *(
                (f"required_output_patterns[{p!r}]", v)
                for p, v in self.required_output_patterns.items()
            ),
        ):
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"{name}: {pattern!r} is not a valid regular expression ({exc})"
                    ) from exc
        return self

    @property
    def cyrillic_min(self) -> float:
        """The Cyrillic share floor for the active profile."""
        return self.min_cyrillic_share[self.profile]

    @property
    def grounding_on(self) -> bool:
        """Whether the grounding filter runs for the active profile."""
        return self.profile == "geology" if self.grounding is None else self.grounding

    @property
    def required_patterns(self) -> tuple[str, ...]:
        """The output patterns of the active profile."""
        return self.required_output_patterns.get(self.profile, ())


class DataPipelineConfig(_Model):
    """`geomas run data`: inputs and per-stage settings of the data pipeline."""

    source_dir: Path
    output_dir: Path
    ingest: IngestConfig = IngestConfig()
    validation: ValidationConfig = ValidationConfig()
    ner: NerInferenceConfig = NerInferenceConfig()
    qa: QAConfig = QAConfig()
    clean: CleanConfig = CleanConfig()
    split: SplitConfig = SplitConfig()
    format: FormatConfig = FormatConfig()
    dataset_name: str = Field(default="instruct_dataset", pattern=r"^[\w.-]+$")


class RunConfig(_Model):
    """A whole run config file (configs/local.yaml)."""

    project: ProjectConfig = ProjectConfig()
    data: DataPipelineConfig
    training: TrainingPipelineConfig | None = None
    retrain: RetrainConfig = Field(default_factory=lambda: RetrainConfig())
    kubernetes: KubernetesConfig | None = Field(
        default=None,
        description="Pod settings per step for a Kubernetes stack (project.stack); None: the "
        "stack's defaults.",
    )

    @model_validator(mode="after")
    def _kubernetes_paths(self) -> RunConfig:
        if self.kubernetes is None:
            return self
        if self.project.stack == LOCAL_STACK_NAME:
            raise ValueError(
                f"kubernetes: pod settings need a Kubernetes stack, but project.stack is "
                f"{LOCAL_STACK_NAME!r}; set project.stack (e.g. geomas-k8s, from "
                "`geomas stack import`) or drop the kubernetes section"
            )
        paths = {
            "data.source_dir": self.data.source_dir,
            "data.output_dir": self.data.output_dir,
            "data.ner.model_path": self.data.ner.model_path,
        }
        if self.training is not None:
            paths |= {
                "training.train_file": self.training.train_file,
                "training.val_file": self.training.val_file,
                "training.output_dir": self.training.output_dir,
            }
        for name, path in paths.items():
            if path is not None and not Path(path).is_absolute():
                raise ValueError(
                    f"{name} ({path}) is relative; on Kubernetes the steps read and write "
                    "paths inside their pods: use an absolute path on a mounted volume "
                    "(e.g. /data/...)"
                )
        return self


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


class PromotionConfig(_Model):
    """When a fine-tuned model version may replace the champion in the registry."""

    metric: str = Field(
        default="token_f1",
        min_length=1,
        description="Evaluation metric compared between challenger and champion "
        "(geomas.evaluate names: token_f1, rouge_l, exact_match).",
    )
    higher_is_better: bool = True
    margin: float = Field(
        default=0.01,
        ge=0.0,
        description="Least improvement on `metric` over the champion (and over the version's "
        "own base model) that promotes; smaller gains are noise.",
    )
    forgetting_metric: str | None = Field(
        default="perplexity_ratio",
        min_length=1,
        description="Tuned/base perplexity on general text (geomas.evaluate's forgetting probe); "
        "None skips the check.",
    )
    max_forgetting: float | None = Field(
        default=None,
        ge=0.0,
        description="Largest `forgetting_metric` a promoted version may have; None: "
        "EvalConfig.forgetting_max_ratio.",
    )

    @property
    def forgetting_limit(self) -> float:
        """The forgetting ceiling in force."""
        if self.max_forgetting is not None:
            return self.max_forgetting
        return EvalConfig().forgetting_max_ratio


class EvalConfig(_Model):
    """Evaluating a fine-tuned model: generation, answer metrics, forgetting probe."""

    max_new_tokens: int = Field(default=128, ge=1, le=8192, description="Tokens per answer.")
    batch_size: int = Field(default=8, ge=1, le=1024, description="Prompts per generate call.")
    perplexity_max_length: int = Field(
        default=512, ge=8, le=32768, description="Tokens per general text in the perplexity probe."
    )
    bertscore_model_path: Path | None = Field(
        default=None,
        description=(
            "Local encoder folder for BERTScore (needs the bert-score package); None skips "
            "BERTScore. Hub ids are not accepted: evaluation never downloads."
        ),
    )
    bertscore_num_layers: int | None = Field(
        default=None,
        ge=1,
        description="Encoder layer whose embeddings BERTScore compares; None: the last layer.",
    )
    forgetting_max_ratio: float = Field(
        default=1.2,
        ge=1.0,
        description=(
            "Largest allowed tuned/base perplexity ratio on general text; 1.2 lets general-text "
            "perplexity rise by at most 20 %."
        ),
    )
    general_texts_path: Path | None = Field(
        default=None,
        description=(
            "UTF-8 file with one general (non-domain) text per line for the forgetting probe; "
            "None: the probe set shipped with geomas (geomas/evaluate/general_texts.txt)."
        ),
    )

    @model_validator(mode="after")
    def _layers_need_model(self) -> EvalConfig:
        if self.bertscore_num_layers is not None and self.bertscore_model_path is None:
            raise ValueError(
                "bertscore_num_layers is set but bertscore_model_path is not; set "
                "bertscore_model_path to a local encoder folder or drop bertscore_num_layers"
            )
        return self


# --------------------------------------------------------------------------- supervised fine-tuning

SFTMethod = Literal["full", "lora", "qlora"]


class QuantSettings(_Model):
    """bitsandbytes quantization of the base model (QLoRA)."""

    load_in_4bit: bool | None = Field(
        default=None,
        description="4-bit base weights. None: on for method qlora, off otherwise.",
    )
    load_in_8bit: bool = Field(default=False, description="8-bit base weights (method lora).")
    quant_type: Literal["nf4", "fp4"] = Field(default="nf4", description="4-bit data type.")
    double_quant: bool = Field(
        default=True, description="Quantize the 4-bit quantization constants too."
    )
    compute_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto",
        description=(
            "dtype of the 4-bit matmuls. auto: float32 on CPU (about 2x faster there than "
            "bfloat16), bfloat16 on CUDA."
        ),
    )

    @model_validator(mode="after")
    def _one_width(self) -> QuantSettings:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError(
                "quantization.load_in_4bit and quantization.load_in_8bit are both true; "
                "choose one (4-bit for method qlora, 8-bit for method lora)"
            )
        return self


class LoraSettings(_Model):
    """LoRA adapter shape (PEFT ``LoraConfig`` names)."""

    r: int = Field(default=16, ge=1, le=1024, description="Adapter rank.")
    lora_alpha: int = Field(default=32, ge=1, description="Scaling numerator (alpha / r).")
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] | Literal["all-linear"] = Field(
        default=("q_proj", "k_proj", "v_proj", "o_proj"),
        description="Module names to adapt, or 'all-linear' (every linear but the LM head).",
    )
    bias: Literal["none", "all", "lora_only"] = "none"

    @model_validator(mode="after")
    def _targets(self) -> LoraSettings:
        if not self.target_modules:
            raise ValueError("lora.target_modules is empty; name modules or use 'all-linear'")
        return self


class MemoryTier(_Model):
    """One row of the GPU memory policy: below ``below_gb`` free VRAM use this batch shape."""

    below_gb: float | None = Field(
        gt=0, description="Upper bound (exclusive) of free VRAM in GB; None: no bound (last row)."
    )
    batch_size: int = Field(ge=1, le=4096)
    gradient_accumulation_steps: int = Field(ge=1, le=4096)


def _legal_guide_tiers() -> tuple[MemoryTier, ...]:
    # The legal LoRA guide's table: RTX 3070 8 GB 1x8, RTX 3080 10 GB 2x4, RTX 3090 24 GB 4x2.
    return (
        MemoryTier(below_gb=10, batch_size=1, gradient_accumulation_steps=8),
        MemoryTier(below_gb=20, batch_size=2, gradient_accumulation_steps=4),
        MemoryTier(below_gb=None, batch_size=4, gradient_accumulation_steps=2),
    )


class MemoryProfile(_Model):
    """How ``batch_size: auto`` picks the batch shape from free GPU memory."""

    tiers: tuple[MemoryTier, ...] = Field(
        default_factory=_legal_guide_tiers,
        description="Rows in increasing below_gb; the first row whose bound exceeds the free VRAM.",
    )
    cpu_batch_size: int = Field(default=4, ge=1, le=4096, description="Batch size on CPU.")
    cpu_gradient_accumulation_steps: int = Field(default=1, ge=1, le=4096)

    @model_validator(mode="after")
    def _ordered(self) -> MemoryProfile:
        if not self.tiers:
            raise ValueError("memory_profile.tiers is empty; give at least one row")
        bounds = [t.below_gb for t in self.tiers]
        if bounds[-1] is not None or any(b is None for b in bounds[:-1]):
            raise ValueError(
                "memory_profile.tiers: only the last row may (and must) have below_gb: null"
            )
        finite = [b for b in bounds if b is not None]
        if finite != sorted(finite) or len(set(finite)) != len(finite):
            raise ValueError(
                f"memory_profile.tiers: below_gb must increase row by row, got {finite}"
            )
        return self


def _check_method_quantization(method: str, q: QuantSettings) -> None:
    """Reject training-method / quantization pairs that cannot work (SFT and classifier)."""
    if method == "full" and (q.load_in_4bit or q.load_in_8bit):
        raise ValueError(
            "method 'full' cannot train a quantized base (quantization.load_in_4bit / "
            "load_in_8bit); use method 'qlora' (4-bit) or 'lora' (8-bit), or turn "
            "quantization off"
        )
    if method == "lora" and q.load_in_4bit:
        raise ValueError(
            "quantization.load_in_4bit with method 'lora': a 4-bit base is method 'qlora'"
        )
    if method == "qlora" and (q.load_in_4bit is False or q.load_in_8bit):
        raise ValueError(
            "method 'qlora' trains on a 4-bit base; drop quantization.load_in_4bit: false "
            "/ load_in_8bit: true, or use method 'lora' for an 8-bit or unquantized base"
        )


class TrainSFTConfig(_Model):
    """`geomas train-sft`: supervised fine-tuning of a causal LM (full, LoRA or QLoRA)."""

    method: SFTMethod = Field(
        default="qlora",
        description="full: every weight; lora: adapters on a 16/32-bit or 8-bit base; "
        "qlora: adapters on a 4-bit NF4 base.",
    )
    quantization: QuantSettings = QuantSettings()
    lora: LoraSettings = LoraSettings()
    # -- data
    target_format: Literal["messages", "prompt-completion"] = Field(
        default="prompt-completion",
        description=(
            "What records are converted to (geomas.formats.trl_map_for). messages: the "
            "tokenizer's chat template with assistant-only loss (the template needs "
            "{% generation %} markers); prompt-completion: the Russian Alpaca-style prompt "
            "with loss on the completion only."
        ),
    )
    max_length: int = Field(
        default=2048, ge=16, le=262144, description="Tokens per example (--max-seq-length)."
    )
    packing: bool = Field(default=False, description="Pack examples into rows (padding-free).")
    # -- optimisation
    epochs: float = Field(default=3.0, gt=0, le=1000)
    max_steps: int = Field(default=-1, ge=-1, description="Optimizer steps; -1: use epochs.")
    batch_size: int | Literal["auto"] = Field(
        default="auto",
        description="Per-device batch size; auto: from free VRAM via memory_profile.",
    )
    gradient_accumulation_steps: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="None: from memory_profile when batch_size is auto, else 1.",
    )
    memory_profile: MemoryProfile = MemoryProfile()
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    optim: str = Field(default="adamw_torch", min_length=1, description="transformers optim.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto",
        description="Mixed precision on CUDA. auto: bf16 where supported. CPU always trains "
        "in fp32.",
    )
    activation_checkpointing: bool = Field(
        default=True, description="Recompute activations in backward (less memory, slower)."
    )
    # -- evaluation, checkpoints, logging
    save_strategy: Literal["epoch", "steps"] = Field(
        default="epoch", description="Checkpoint (and evaluate, with an eval set) per epoch/steps."
    )
    save_steps: int | None = Field(default=None, ge=1, description="With save_strategy steps.")
    save_total_limit: int | None = Field(default=2, ge=1, description="Checkpoints kept.")
    early_stopping_patience: int | None = Field(
        default=3,
        ge=1,
        description="Evaluations without eval_loss gain before stopping; None: off.",
    )
    early_stopping_threshold: float = Field(default=0.0, ge=0.0)
    logging_steps: int = Field(default=10, ge=1)
    report_to: tuple[str, ...] = Field(
        default=(), description="transformers integrations (e.g. mlflow); empty: none."
    )
    # -- run identity
    tag: str = Field(default="sft", pattern=r"^[\w.-]+$", description="Run tag (output dir).")
    output_root: Path = Field(
        default=Path("models"), description="Default output dir: <root>/sft-<model>-<tag>/."
    )
    seed: int = 42

    @model_validator(mode="after")
    def _combinations(self) -> TrainSFTConfig:
        _check_method_quantization(self.method, self.quantization)
        if self.save_strategy == "steps" and self.save_steps is None:
            raise ValueError("save_strategy 'steps' needs save_steps")
        if self.batch_size == "auto" and self.gradient_accumulation_steps is not None:
            raise ValueError(
                "gradient_accumulation_steps is set while batch_size is 'auto'; the memory "
                "profile picks both, so set batch_size too or drop gradient_accumulation_steps"
            )
        return self

    @property
    def load_in_4bit(self) -> bool:
        """Whether the base is loaded in 4-bit (resolved from method)."""
        q = self.quantization
        return q.load_in_4bit if q.load_in_4bit is not None else self.method == "qlora"

    @property
    def quantized(self) -> bool:
        """Whether the base model is quantized (4- or 8-bit)."""
        return self.load_in_4bit or self.quantization.load_in_8bit


class ModelAlias(_Model):
    """One entry of configs/models.yaml: a short name for a model and its SFT config."""

    path_or_id: str = Field(
        min_length=1,
        description="Local model folder, or a hub id that must already be in the HF cache.",
    )
    config: Path | None = Field(
        default=None, description="Default TrainSFTConfig file for this model."
    )
    description: str = ""


class ModelAliases(_Model):
    """configs/models.yaml."""

    models: dict[str, ModelAlias] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> ModelAliases:
        for name in self.models:
            if not re.fullmatch(r"[\w.-]+", name):
                raise ValueError(f"model alias {name!r} may hold only letters, digits, . _ -")
        return self


class TrainClassifierConfig(_Model):
    """`geomas.train.classify`: sequence classification (full, LoRA or QLoRA) under imbalance.

    Class-weighted CE, focal loss and a weighted sampler; the best epoch is chosen by F1-macro.
    """

    method: SFTMethod = Field(
        default="qlora",
        description="full: every weight; lora: adapters on a 16/32-bit or 8-bit base; "
        "qlora: adapters on a 4-bit NF4 base. The classification head is always trained.",
    )
    quantization: QuantSettings = QuantSettings()
    lora: LoraSettings = LoraSettings()
    max_length: int = Field(default=256, ge=8, le=262144, description="Tokens per text.")
    # -- loss and sampling
    loss: Literal["ce", "weighted_ce", "focal"] = Field(
        default="weighted_ce",
        description="ce: plain cross-entropy; weighted_ce: CE with balanced class weights "
        "w_i = n / (k * n_i) of the train split; focal: focal loss with focal_gamma.",
    )
    focal_gamma: float = Field(default=2.0, ge=0.0, le=10.0, description="Focal loss gamma.")
    focal_weighted: bool = Field(
        default=False, description="With loss focal: also weight classes (alpha = class weights)."
    )
    weighted_sampler: bool = Field(
        default=False,
        description="Draw train examples with probability 1 / n_class (WeightedRandomSampler, "
        "with replacement), so each class is drawn about equally often.",
    )
    # -- optimisation
    epochs: float = Field(default=3.0, gt=0, le=1000)
    batch_size: int = Field(default=8, ge=1, le=4096)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=4096)
    learning_rate: float = Field(default=2e-4, gt=0, le=1.0)
    lr_scheduler_type: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", description="Mixed precision on CUDA; CPU always trains in fp32."
    )
    activation_checkpointing: bool = Field(
        default=False, description="Recompute activations in backward (less memory, slower)."
    )
    # -- evaluation
    early_stopping_patience: int | None = Field(
        default=3, ge=1, description="Evaluations without eval F1-macro gain before stopping."
    )
    early_stopping_threshold: float = Field(default=0.0, ge=0.0)
    save_total_limit: int | None = Field(default=2, ge=1, description="Checkpoints kept.")
    logging_steps: int = Field(default=10, ge=1)
    report_to: tuple[str, ...] = Field(default=(), description="transformers integrations.")
    seed: int = 42

    @model_validator(mode="after")
    def _combinations(self) -> TrainClassifierConfig:
        _check_method_quantization(self.method, self.quantization)
        return self


class RetrainConfig(_Model):
    """`geomas retrain check`: when new data volume starts the training pipeline.

    New volume is measured against the champion's data watermark: documents (by content hash)
    in `data.source_dir` that the champion did not see, and QA pairs in `data.output_dir` beyond
    the champion's count. The thresholds that are set are combined by `require`.
    """

    min_new_docs: int | None = Field(
        default=5, ge=1, description="New documents (absolute) that trigger; None: not used."
    )
    min_new_docs_ratio: float | None = Field(
        default=None, gt=0.0,
        description="New documents relative to the champion's (0.2 = 20 % more); None: not used.",
    )
    min_new_qa_pairs: int | None = Field(
        default=None, ge=1, description="QA pairs beyond the champion's count; None: not used."
    )
    require: Literal["any", "all"] = Field(
        default="any", description="any: one threshold met is enough; all: every set one."
    )
    train_without_champion: bool = Field(
        default=True, description="With no champion yet, the first check trains one."
    )
    run_data_pipeline: bool = Field(
        default=True,
        description="Run the data pipeline before training (ingest is cached per document, so "
        "only new documents are parsed).",
    )
    cron: str = Field(
        default="0 * * * *", pattern=r"^\S+( \S+){4}$",
        description="Schedule of the retrain_check pipeline (five cron fields).",
    )
    starting_deadline_seconds: int = Field(
        default=600, ge=10, description="A scheduled check that cannot start by then is skipped."
    )
    stale_launch_hours: float = Field(
        default=24.0, gt=0,
        description="A launch still marked running after this long (a killed check) no longer "
        "blocks a new launch for the same data.",
    )

    @model_validator(mode="after")
    def _some_threshold(self) -> RetrainConfig:
        if (self.min_new_docs, self.min_new_docs_ratio, self.min_new_qa_pairs) == (None,) * 3:
            raise ValueError(
                "retrain: set at least one of min_new_docs, min_new_docs_ratio, "
                "min_new_qa_pairs (otherwise nothing could ever trigger a retrain)"
            )
        return self


class TrainingPipelineConfig(_Model):
    """`geomas run training`: train -> evaluate -> register -> promote."""

    model: str = Field(min_length=1, description="Alias from configs/models.yaml or a folder.")
    train_file: Path
    val_file: Path
    output_dir: Path = Field(
        description="Each run trains into a new folder run-<UTC time>-<id> under this one "
        "(adapter, checkpoints, plots, training_config.json)."
    )
    sft: TrainSFTConfig = TrainSFTConfig()
    evaluation: EvalConfig = EvalConfig()
    promotion: PromotionConfig = PromotionConfig()
    registered_model_name: str = Field(default="geomas-sft", min_length=1)

# --------------------------------------------------------------------------- Kubernetes pods

#: Kubernetes quantity: a decimal number, an optional exponent and an optional suffix.
_QUANTITY = re.compile(
    r"^([0-9]+(?:\.[0-9]+)?)(?:[eE]([+-]?[0-9]+))?(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$"
)
_QUANTITY_FACTOR = {
    None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def k8s_quantity(value: str) -> float:
    """The numeric value of a Kubernetes quantity ("500m" -> 0.5, "2Gi" -> 2147483648.0).

    Raises:
        ValueError: `value` is not a Kubernetes quantity.
    """
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 16Gi)"
        )
    number, exponent, suffix = match.groups()
    return float(number) * 10.0 ** int(exponent or 0) * _QUANTITY_FACTOR[suffix]


def is_gpu_resource(name: str) -> bool:
    """Whether a resource name is a GPU (nvidia.com/gpu, amd.com/gpu, ...)."""
    return name.endswith("/gpu")


class K8sImages(_Model):
    """Container images of the pods (built from docker/)."""

    app: str = Field(
        min_length=1, pattern=r"^\S+$", description="CPU image: every step but training."
    )
    trainer: str = Field(
        min_length=1, pattern=r"^\S+$", description="CUDA image: the GPU steps (training)."
    )


class K8sResources(_Model):
    """Resource requests and limits of a pod's main container (Kubernetes names and units)."""

    requests: dict[str, str] = Field(
        default_factory=dict, description="e.g. {cpu: 500m, memory: 2Gi, nvidia.com/gpu: 1}."
    )
    limits: dict[str, str] = Field(default_factory=dict, description="e.g. {cpu: 2, memory: 4Gi}.")

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _numbers_as_strings(cls, value: Any) -> Any:
        # YAML reads `cpu: 2` and `nvidia.com/gpu: 1` as numbers; Kubernetes takes strings.
        if isinstance(value, dict):
            return {
                k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _quantities(self) -> K8sResources:
        for kind, values in (("requests", self.requests), ("limits", self.limits)):
            for name, value in values.items():
                try:
                    amount = k8s_quantity(value)
                except ValueError as exc:
                    raise ValueError(f"resources.{kind}[{name!r}]: {exc}") from None
                if "/" in name and amount != int(amount):
                    raise ValueError(
                        f"resources.{kind}[{name!r}] = {value!r}: extended resources such as "
                        "GPUs are whole numbers"
                    )
        for name in self.requests.keys() & self.limits.keys():
            request, limit = k8s_quantity(self.requests[name]), k8s_quantity(self.limits[name])
            if request > limit:
                raise ValueError(
                    f"resources.requests[{name!r}] ({self.requests[name]}) is above "
                    f"resources.limits[{name!r}] ({self.limits[name]}); Kubernetes rejects the pod"
                )
            if "/" in name and request != limit:
                raise ValueError(
                    f"resources.requests[{name!r}] ({self.requests[name]}) differs from its "
                    f"limit ({self.limits[name]}); Kubernetes cannot overcommit extended "
                    "resources such as GPUs: give the same number in both"
                )
        return self

    @property
    def gpus(self) -> tuple[str, ...]:
        """GPU resource names requested or limited."""
        return tuple(sorted(n for n in self.requests.keys() | self.limits.keys()
                            if is_gpu_resource(n)))


class K8sSecurity(_Model):
    """Who the containers run as: never root (the images create this user)."""

    run_as_user: int = Field(ge=1, description="UID of the container processes (not 0).")
    run_as_group: int = Field(ge=1, description="Primary GID of the container processes.")
    fs_group: int | None = Field(
        default=None, ge=1, description="Group that owns mounted volumes (writable PVCs)."
    )
    read_only_root_filesystem: bool = Field(
        default=False, description="Mount the image's root filesystem read-only."
    )


def _check_k8s_entries(
    field: str, entries: list[dict[str, Any]], required: tuple[str, ...]
) -> None:
    for i, entry in enumerate(entries):
        snake = sorted(k for k in entry if "_" in k)
        if snake:
            raise ValueError(
                f"{field}[{i}] uses {snake}: Kubernetes field names are camelCase "
                "(mountPath, readOnly, emptyDir, persistentVolumeClaim, claimName)"
            )
        missing = [k for k in required if not entry.get(k)]
        if missing:
            raise ValueError(f"{field}[{i}] has no {', '.join(missing)}: {entry}")


class K8sPodConfig(_Model):
    """Pod settings of a step; `kubernetes.defaults` for every step, `steps.<name>` on top.

    A step's settings are the defaults merged with its entry: the entry's values win, mappings
    (labels, resources.requests, ...) are merged key by key and lists (volumes, mounts,
    tolerations, env) are appended to the defaults' lists.
    """

    image: Literal["app", "trainer"] | None = Field(
        default=None, description="Which of kubernetes.images runs the step; unset: app."
    )
    service_account: str | None = Field(default=None, min_length=1)
    resources: K8sResources | None = None
    security: K8sSecurity | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    node_selectors: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes Toleration objects (camelCase)."
    )
    priority_class: str | None = Field(
        default=None, min_length=1, description="PriorityClass of the pod (priorityClassName)."
    )
    volumes: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes Volume objects (camelCase)."
    )
    volume_mounts: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes VolumeMount objects (camelCase)."
    )
    env: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes EnvVar objects for the main container."
    )
    image_pull_secrets: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shapes(self) -> K8sPodConfig:
        for field, mapping in (("labels", self.labels), ("node_selectors", self.node_selectors)):
            for key, value in mapping.items():
                if not _LABEL_KEY.fullmatch(key):
                    raise ValueError(f"{field}: {key!r} is not a valid Kubernetes label key")
                if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
                    raise ValueError(
                        f"{field}[{key!r}] = {value!r} is not a valid Kubernetes label value "
                        "(63 characters at most: letters, digits, - _ .)"
                    )
        _check_k8s_entries("volumes", self.volumes, ("name",))
        _check_k8s_entries("volume_mounts", self.volume_mounts, ("name", "mountPath"))
        _check_k8s_entries("env", self.env, ("name",))
        _check_k8s_entries("tolerations", self.tolerations, ())
        return self

    def merged(self, override: K8sPodConfig) -> K8sPodConfig:
        """These settings with `override` on top (see the class docstring)."""
        return K8sPodConfig.model_validate(
            _merge_settings(self.model_dump(exclude_unset=True),
                            override.model_dump(exclude_unset=True))
        )


def _merge_settings(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge_settings(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(override, list):
        return [*base, *override]
    return override


class K8sOrchestratorOptions(_Model):
    """ZenML Kubernetes orchestrator settings for the run (unset: ZenML's default)."""

    service_account: str = Field(
        min_length=1, description="Service account of the orchestrator pod (starts step pods)."
    )
    resources: K8sResources | None = Field(
        default=None, description="Requests and limits of the orchestrator pod."
    )
    synchronous: bool | None = Field(
        default=None, description="Wait for the run to finish (ZenML default: true)."
    )
    max_parallelism: int | None = Field(default=None, ge=1, description="Step pods at once.")
    backoff_limit_margin: int | None = Field(
        default=None,
        ge=0,
        description="Extra pod start attempts per step job beyond the step's retries.",
    )
    orchestrator_job_backoff_limit: int | None = Field(default=None, ge=0)
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Keep finished jobs this long before cleanup."
    )
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Kill a job (run or step) that runs longer."
    )
    pod_stop_grace_period: int | None = Field(default=None, ge=1)
    # The CronJob policy of scheduled runs (concurrency, starting deadline, history) comes from
    # the `retrain:` section (geomas.trigger.schedule), the only pipeline that is scheduled.


class KubernetesConfig(_Model):
    """Pods of the pipeline steps on the Kubernetes stack (zenml_stack.yaml).

    GPUs go in the step's `resources` (ZenML ignores step ResourceSettings on Kubernetes).
    """

    images: K8sImages
    orchestrator: K8sOrchestratorOptions
    defaults: K8sPodConfig = Field(description="Settings of every step's pod.")
    steps: dict[str, K8sPodConfig] = Field(
        default_factory=dict, description="Per-step additions, keyed by step name."
    )

    @model_validator(mode="after")
    def _steps(self) -> KubernetesConfig:
        from geomas.k8s import all_step_names

        known = all_step_names()
        unknown = sorted(set(self.steps) - set(known))
        if unknown:
            raise ValueError(
                f"kubernetes.steps: {unknown} are not steps of any geomas pipeline; "
                f"known steps: {', '.join(known)}"
            )
        for step in known:
            self._check_step(step, self.pod(step))
        return self

    def _check_step(self, step: str, pod: K8sPodConfig) -> None:
        where = f"kubernetes.steps.{step}" if step in self.steps else "kubernetes.defaults"
        res = pod.resources or K8sResources()
        missing = [f"{kind}.{name}" for kind in ("requests", "limits") for name in ("cpu", "memory")
                   if name not in getattr(res, kind)]
        if missing:
            raise ValueError(
                f"step {step}: resources need cpu and memory requests and limits, missing "
                f"{', '.join(missing)}; set them in kubernetes.defaults.resources or "
                f"kubernetes.steps.{step}.resources"
            )
        gpus = res.gpus
        if gpus and pod.image != "trainer":
            raise ValueError(
                f"step {step} requests {', '.join(gpus)} but runs the CPU app image; set "
                f"kubernetes.steps.{step}.image: trainer (the CUDA image) or drop the GPU "
                f"from {where}.resources"
            )
        if pod.security is None:
            raise ValueError(
                f"step {step} has no security settings; every pod runs non-root: set "
                "kubernetes.defaults.security (run_as_user, run_as_group)"
            )
        names = [v["name"] for v in pod.volumes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(
                f"step {step}: volumes {dup} are defined twice (defaults + "
                f"kubernetes.steps.{step}); give the step's volumes other names"
            )
        paths = [m["mountPath"] for m in pod.volume_mounts]
        dup = sorted({p for p in paths if paths.count(p) > 1})
        if dup:
            raise ValueError(f"step {step}: more than one volume is mounted at {dup}")
        for mount in pod.volume_mounts:
            if mount["name"] not in names:
                raise ValueError(
                    f"step {step}: volume mount {mount['name']!r} at {mount['mountPath']} has "
                    f"no volume of that name (volumes: {names or 'none'})"
                )

    def pod(self, step: str) -> K8sPodConfig:
        """The merged pod settings of `step` (defaults, then the step's entry)."""
        override = self.steps.get(step)
        return self.defaults if override is None else self.defaults.merged(override)

    def image(self, step: str) -> str:
        """The image that runs `step`."""
        return self.images.trainer if self.pod(step).image == "trainer" else self.images.app


RunConfig.model_rebuild()
