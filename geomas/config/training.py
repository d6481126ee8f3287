"""Training settings: SFT (HF field names), LoRA/quantisation, evaluation, promotion."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from geomas.config.base import StrictModel

#: TrainingArguments field names, with the short names earlier configs used.
_EPOCHS = AliasChoices("num_train_epochs", "epochs")
_BATCH = AliasChoices("per_device_train_batch_size", "batch_size")


class PromotionConfig(StrictModel):
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
    confidence: float = Field(
        default=0.95, gt=0.5, lt=1.0,
        description="Paired gate: confidence level of the bootstrap interval of the gain over "
        "the champion on the same examples; promote only when its lower end is above 0.",
    )
    bootstrap_resamples: int = Field(default=2000, ge=100, le=100_000)
    bootstrap_seed: int = Field(default=0, description="Seed of the paired bootstrap.")
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


class EvalConfig(StrictModel):
    """Evaluating a fine-tuned model: generation, answer metrics, forgetting probe."""

    sample_generations: int = Field(
        default=8, ge=0, le=1000,
        description="Test examples whose prompt, reference and base/tuned/champion answers go "
        "to the MLflow run as a table (eval/sample_generations.json).",
    )
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


class QuantSettings(StrictModel):
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


class LoraSettings(StrictModel):
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


class MemoryTier(StrictModel):
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


class MemoryProfile(StrictModel):
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


class TrainSFTConfig(StrictModel):
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
    # -- optimisation (Hugging Face TrainingArguments names; the short names still load)
    num_train_epochs: float = Field(default=3.0, gt=0, le=1000, validation_alias=_EPOCHS)
    max_steps: int = Field(default=-1, ge=-1, description="Optimizer steps; -1: use epochs.")
    per_device_train_batch_size: int | Literal["auto"] = Field(
        default="auto", validation_alias=_BATCH,
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
        if self.per_device_train_batch_size == "auto" and \
                self.gradient_accumulation_steps is not None:
            raise ValueError(
                "gradient_accumulation_steps is set while per_device_train_batch_size is 'auto'; "
                "the memory profile picks both, so set the batch size too or drop "
                "gradient_accumulation_steps"
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


class ModelAlias(StrictModel):
    """One entry of configs/models.yaml: a short name for a model and its SFT config."""

    path_or_id: str = Field(
        min_length=1,
        description="Local model folder, or a hub id that must already be in the HF cache.",
    )
    config: Path | None = Field(
        default=None, description="Default TrainSFTConfig file for this model."
    )
    description: str = ""


class ModelAliases(StrictModel):
    """configs/models.yaml."""

    models: dict[str, ModelAlias] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _names(self) -> ModelAliases:
        for name in self.models:
            if not re.fullmatch(r"[\w.-]+", name):
                raise ValueError(f"model alias {name!r} may hold only letters, digits, . _ -")
        return self


class TrainClassifierConfig(StrictModel):
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
    # -- optimisation (Hugging Face TrainingArguments names; the short names still load)
    num_train_epochs: float = Field(default=3.0, gt=0, le=1000, validation_alias=_EPOCHS)
    per_device_train_batch_size: int = Field(default=8, ge=1, le=4096, validation_alias=_BATCH)
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


class TrainingPipelineConfig(StrictModel):
    """`geomas run training`: train -> evaluate -> register -> promote."""

    model: str = Field(min_length=1, description="Alias from configs/models.yaml or a folder.")
    train_file: Path
    val_file: Path = Field(description="Val split: early stopping and checkpoint choice.")
    test_file: Path | None = Field(
        default=None,
        description="Test split (the data pipeline writes it when split.test_ratio > 0): the "
        "evaluate step and the promotion gate score on it, never on val. None: val is scored, "
        "with a warning (early stopping already looked at it).",
    )
    output_dir: Path = Field(
        description="Each run trains into a new folder run-<UTC time>-<id> under this one "
        "(adapter, checkpoints, plots, training_config.json)."
    )
    sft: TrainSFTConfig = TrainSFTConfig()
    evaluation: EvalConfig = EvalConfig()
    promotion: PromotionConfig = PromotionConfig()
    registered_model_name: str = Field(default="geomas-sft", min_length=1)
