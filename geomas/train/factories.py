"""Small factories for the library objects a run needs (quantization, LoRA, trainer args)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from geomas.config import TrainClassifierConfig, TrainSFTConfig

if TYPE_CHECKING:
    import torch
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig
    from trl import SFTConfig

    from geomas.train.memory import BatchDecision

Device = Literal["cpu", "cuda"]


def detect_device() -> Device:
    """``cuda`` when a CUDA GPU is visible, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def compute_dtype(config: TrainSFTConfig, device: Device) -> torch.dtype:
    """The 4-bit compute dtype: the configured one, or float32 on CPU / bfloat16 on CUDA."""
    import torch

    name = config.quantization.compute_dtype
    if name == "auto":
        name = "bfloat16" if device == "cuda" else "float32"
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def resolve_precision(config: TrainSFTConfig, device: Device) -> Literal["fp32", "bf16", "fp16"]:
    """The mixed precision a run uses.

    fp32 on CPU; on CUDA the configured one (auto: bf16 where supported, else fp16).
    """
    if device == "cpu":
        return "fp32"
    if config.precision != "auto":
        return config.precision
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def get_quantization_config(
    config: TrainSFTConfig, device: Device | None = None
) -> BitsAndBytesConfig | None:
    """The bitsandbytes settings of the base model, or ``None`` when it is not quantized."""
    if not config.quantized:
        return None
    from transformers import BitsAndBytesConfig

    if config.quantization.load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    q = config.quantization
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=q.quant_type,
        bnb_4bit_use_double_quant=q.double_quant,
        bnb_4bit_compute_dtype=compute_dtype(config, device or detect_device()),
    )


def get_peft_config(config: TrainSFTConfig) -> LoraConfig | None:
    """PEFT LoRA settings, or ``None`` for method full."""
    if config.method == "full":
        return None
    from peft import LoraConfig

    lora = config.lora
    targets: list[str] | str = (
        lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    )
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.lora_alpha,
        lora_dropout=lora.lora_dropout,
        target_modules=targets,
        bias=lora.bias,
        task_type="CAUSAL_LM",
    )


def optimisation_args(
    config: TrainSFTConfig | TrainClassifierConfig, *, device: Device, precision: str
) -> dict[str, Any]:
    """`TrainingArguments` fields that SFT and classification set the same way."""
    return {
        "num_train_epochs": config.num_train_epochs,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler_type,
        # transformers 5 takes a float below 1 as a ratio of the total steps.
        "warmup_steps": config.warmup_ratio,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "use_cpu": device == "cpu",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "activation_checkpointing": config.activation_checkpointing,
        "save_total_limit": config.save_total_limit,
        "logging_steps": config.logging_steps,
        "report_to": list(config.report_to) or "none",
        "seed": config.seed,
        "data_seed": config.seed,
        "dataloader_num_workers": 0,
    }


def get_training_args(
    config: TrainSFTConfig,
    output_dir: Path,
    batch: BatchDecision,
    *,
    device: Device,
    has_eval: bool,
) -> SFTConfig:
    """TRL's `SFTConfig` for one run.

    Evaluation follows the checkpoint schedule (every epoch by default) so that early stopping
    and ``load_best_model_at_end`` can pick a saved checkpoint.
    """
    from trl import SFTConfig

    precision = resolve_precision(config, device)
    kwargs: dict[str, Any] = {}
    if config.save_strategy == "steps":
        kwargs["save_steps"] = config.save_steps
        if has_eval:
            kwargs["eval_steps"] = config.save_steps
    if has_eval:
        kwargs.update(
            eval_strategy=config.save_strategy,
            per_device_eval_batch_size=batch.batch_size,
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
        )
    messages = config.target_format == "messages"
    common = optimisation_args(config, device=device, precision=precision)
    # the memory profile decides batch size and accumulation
    common.update(per_device_train_batch_size=batch.batch_size,
                  gradient_accumulation_steps=batch.gradient_accumulation_steps)
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=config.max_steps,
        optim=config.optim,
        max_length=config.max_length,
        packing=config.packing,
        assistant_only_loss=messages,
        completion_only_loss=None if messages else True,
        save_strategy=config.save_strategy,
        include_num_input_tokens_seen="non_padding",
        **common,
        **kwargs,
    )
