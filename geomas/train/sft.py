"""Supervised fine-tuning (full, LoRA, QLoRA) of a causal LM with TRL's SFTTrainer.

`train_sft` is the library entry point (the CLI and the ZenML step call it). It is split into
`prepare_sft` (resolve the model, data and batch shape; build the trainer) and `run_sft`
(train, save, write ``training_config.json``), so tests can inspect the prepared trainer and
the trained in-memory model.
"""

from __future__ import annotations

import logging
import re
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from geomas.config import TrainSFTConfig
from geomas.errors import ConfigError
from geomas.io import write_json
from geomas.train.checkpoints import refuse_fresh_run, resume_checkpoint
from geomas.train.data import DatasetInfo, load_sft_rows, sibling_eval_path
from geomas.train.factories import (
    Device,
    compute_dtype,
    detect_device,
    get_peft_config,
    get_quantization_config,
    get_training_args,
    resolve_precision,
)
from geomas.train.memory import BatchDecision, decide_batch
from geomas.train.resolve import (
    DEFAULT_MODELS_FILE,
    ResolvedModel,
    model_fingerprint,
    resolve_model,
)

if TYPE_CHECKING:
    from trl import SFTTrainer

logger = logging.getLogger(__name__)

TRAINING_CONFIG_NAME = "training_config.json"
_GENERATION_TAG = re.compile(r"{%-?\s*generation\s*-?%}")
#: The trainer arguments written to training_config.json.
_RECORDED_ARGS = (
    "num_train_epochs", "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps",
    "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "optim", "bf16", "fp16",
    "activation_checkpointing", "max_length", "packing", "assistant_only_loss",
    "completion_only_loss", "eval_strategy", "save_strategy", "load_best_model_at_end", "seed",
)


class SFTResult(BaseModel):
    """What a finished SFT run produced and measured."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_dir: Path
    train_loss: list[tuple[int, float]]
    """(global step, training loss) per logging step."""
    eval_loss: list[tuple[int, float]]
    """(global step, eval loss) per evaluation."""
    global_step: int
    epochs: float
    tokens_seen: int
    seconds: float
    peak_memory_bytes: int
    memory_kind: Literal["rss", "cuda"]
    """rss: the process's peak resident set size; cuda: torch.cuda.max_memory_allocated."""
    tokens_per_second: float
    best_checkpoint: str | None = None
    resumed_from: str | None = None


@dataclass
class SFTSetup:
    """A prepared run: the trainer and everything recorded in training_config.json."""

    trainer: SFTTrainer
    config: TrainSFTConfig
    model: ResolvedModel
    output_dir: Path
    device: Device
    batch: BatchDecision
    train_info: DatasetInfo
    eval_info: DatasetInfo | None
    resume_from: str | None


def default_output_dir(config: TrainSFTConfig, model_name: str) -> Path:
    """``<output_root>/sft-<model name>-<tag>``."""
    safe = re.sub(r"[^\w.-]+", "-", model_name).strip("-") or "model"
    return config.output_root / f"sft-{safe}-{config.tag}"


def prepare_sft(
    model: str,
    dataset: Path,
    config: TrainSFTConfig,
    *,
    output_dir: Path | None = None,
    resume: bool = False,
    eval_dataset: Path | None = None,
    models_file: Path | None = DEFAULT_MODELS_FILE,
) -> SFTSetup:
    """Resolve model, data and batch shape and build the SFTTrainer (no training yet).

    Args: see `train_sft`.

    Raises:
        ConfigError: Unknown/uncached model, a chat template unfit for ``target_format``,
            resume without a checkpoint, or a fresh run into a folder with checkpoints
            (complete or not).
        InputError: Unreadable dataset files, or resume into a folder whose checkpoints are
            all incomplete (a save interrupted or a file cut short).
    """
    from transformers import AutoTokenizer

    resolved = resolve_model(model, models_file)
    out = Path(output_dir) if output_dir is not None else default_output_dir(config, resolved.name)
    resume_from: str | None = None
    if resume:
        resume_from = str(resume_checkpoint(out))
    else:
        refuse_fresh_run(out)
    device = detect_device()
    tokenizer = AutoTokenizer.from_pretrained(resolved.path, local_files_only=True)
    _check_template(tokenizer, config)

    train_rows, train_info = load_sft_rows(Path(dataset), config.target_format)
    eval_path = Path(eval_dataset) if eval_dataset is not None else sibling_eval_path(dataset)
    eval_rows, eval_info = (None, None)
    if eval_path is not None:
        eval_rows, eval_info = load_sft_rows(eval_path, config.target_format)
        logger.info("Evaluating on %s (%d records)", eval_path, eval_info.records)

    batch = decide_batch(config, device)
    args = get_training_args(config, out, batch, device=device, has_eval=eval_rows is not None)
    trainer = _build_trainer(resolved, config, device, args, tokenizer, train_rows, eval_rows)
    return SFTSetup(trainer=trainer, config=config, model=resolved, output_dir=out, device=device,
                    batch=batch, train_info=train_info, eval_info=eval_info,
                    resume_from=resume_from)


def _check_template(tokenizer: Any, config: TrainSFTConfig) -> None:
    if config.target_format != "messages":
        return
    template = tokenizer.chat_template
    if not isinstance(template, str) or not _GENERATION_TAG.search(template):
        raise ConfigError(
            "target_format 'messages' trains on assistant turns only, which needs a chat "
            "template with {% generation %} markers; this tokenizer's template has none. Use "
            "target_format: prompt-completion"
        )


def _build_trainer(
    resolved: ResolvedModel,
    config: TrainSFTConfig,
    device: Device,
    args: Any,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]] | None,
) -> SFTTrainer:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, EarlyStoppingCallback, TrainerCallback
    from trl import SFTTrainer

    quant = get_quantization_config(config, device)
    load_kwargs: dict[str, Any] = {"local_files_only": True}
    if quant is not None:
        load_kwargs["quantization_config"] = quant
        load_kwargs["device_map"] = {"": 0} if device == "cuda" else "cpu"
    elif config.method == "full" or device == "cpu":
        load_kwargs["dtype"] = torch.float32
    else:  # LoRA on an unquantized base on CUDA: frozen base in the compute dtype
        load_kwargs["dtype"] = compute_dtype(config, device)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, **load_kwargs)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        # Checkpointing is switched on by the trainer (activation_checkpointing); doing it here
        # too would go through transformers' deprecated gradient_checkpointing API.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    callbacks: list[TrainerCallback] = []
    if eval_rows is not None and config.early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience,
                                               config.early_stopping_threshold))
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows is not None else None,
        processing_class=tokenizer,
        peft_config=get_peft_config(config),
        callbacks=callbacks,
    )
    if config.method != "full" and trainer.model is not None:
        # TRL casts adapters of quantized models to bf16 while PEFT reloads them in fp32; keep
        # them in fp32 so the saved adapter and a resumed run reproduce this model exactly.
        for param in trainer.model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
    return trainer


def run_sft(setup: SFTSetup) -> SFTResult:
    """Train a prepared run, save the model and write ``training_config.json``."""
    import torch

    from geomas.train.callbacks import training_progress

    trainer = setup.trainer
    cuda = setup.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    with training_progress(trainer, "sft"):
        trainer.train(resume_from_checkpoint=setup.resume_from)
    seconds = time.perf_counter() - started
    setup.output_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(setup.output_dir))
    state = trainer.state
    if cuda:
        peak = int(torch.cuda.max_memory_allocated())
    else:
        # ru_maxrss is in KiB on Linux and in bytes on macOS.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = int(rss if sys.platform == "darwin" else rss * 1024)
    tokens = int(state.num_input_tokens_seen or 0)
    result = SFTResult(
        output_dir=setup.output_dir,
        train_loss=[(int(h["step"]), float(h["loss"])) for h in state.log_history if "loss" in h],
        eval_loss=[
            (int(h["step"]), float(h["eval_loss"])) for h in state.log_history if "eval_loss" in h
        ],
        global_step=state.global_step,
        epochs=float(state.epoch or 0.0),
        tokens_seen=tokens,
        seconds=round(seconds, 3),
        peak_memory_bytes=peak,
        memory_kind="cuda" if cuda else "rss",
        tokens_per_second=round(tokens / seconds, 1) if seconds > 0 else 0.0,
        best_checkpoint=state.best_model_checkpoint,
        resumed_from=setup.resume_from,
    )
    write_training_config(setup, result)
    logger.info("SFT done: %d steps, %.1f epochs, %.0f tokens/s, saved to %s", result.global_step,
                result.epochs, result.tokens_per_second, setup.output_dir)
    return result


def resolved_config(setup: SFTSetup) -> dict[str, Any]:
    """The fully resolved run configuration, as written to ``training_config.json``."""
    import geomas

    cfg = setup.config
    args = setup.trainer.args
    return {
        "geomas_version": geomas.__version__,
        "tag": cfg.tag,
        "seed": cfg.seed,
        "method": cfg.method,
        "device": setup.device,
        "precision": resolve_precision(cfg, setup.device),
        "model": {
            **setup.model.model_dump(mode="json"),
            "fingerprint": model_fingerprint(setup.model.path),
        },
        "quantization": {
            "load_in_4bit": cfg.load_in_4bit,
            "load_in_8bit": cfg.quantization.load_in_8bit,
            "quant_type": cfg.quantization.quant_type,
            "double_quant": cfg.quantization.double_quant,
            "compute_dtype": str(compute_dtype(cfg, setup.device)).removeprefix("torch."),
        } if cfg.quantized else None,
        "lora": cfg.lora.model_dump(mode="json") if cfg.method != "full" else None,
        "batch": {
            **setup.batch.model_dump(mode="json"),
            "effective_batch_size": setup.batch.effective_batch_size,
        },
        "dataset": {
            "train": setup.train_info.model_dump(mode="json"),
            "eval": setup.eval_info.model_dump(mode="json") if setup.eval_info else None,
        },
        "config": cfg.model_dump(mode="json"),
        "training_args": {key: args.to_dict()[key] for key in _RECORDED_ARGS},
        "resumed_from": setup.resume_from,
    }


def write_training_config(setup: SFTSetup, result: SFTResult) -> Path:
    """Write ``training_config.json`` (resolved config plus the run's outcome)."""
    payload = {**resolved_config(setup), "result": result.model_dump(mode="json")}
    return write_json(setup.output_dir / TRAINING_CONFIG_NAME, payload)


def train_sft(
    model: str,
    dataset: Path,
    config: TrainSFTConfig,
    *,
    output_dir: Path | None = None,
    resume: bool = False,
    eval_dataset: Path | None = None,
    models_file: Path | None = DEFAULT_MODELS_FILE,
) -> SFTResult:
    """Fine-tune ``model`` on ``dataset`` with loss on the answers only.

    Args:
        model: Alias from ``models_file``, a local model folder, or a hub id already in the
            local Hugging Face cache (nothing is downloaded).
        dataset: Training file in any geomas dataset format (alpaca by default).
        config: Method, quantization, LoRA and training settings.
        output_dir: Where checkpoints, the adapter (or full model) and
            ``training_config.json`` go; default ``<output_root>/sft-<model>-<tag>``.
        resume: Continue from the newest complete ``checkpoint-*`` in ``output_dir``; newer
            ones whose save did not finish are skipped, each named in the log
            (`geomas.train.checkpoints`).
        eval_dataset: Evaluation file; default: the ``*_val`` sibling of a ``*_train`` file,
            when it exists. With one, the run evaluates per checkpoint and stops early on
            ``eval_loss``.
        models_file: The model aliases file (configs/models.yaml).

    Returns:
        Loss history, steps, tokens, time and peak memory of the run.

    Raises:
        ConfigError: See `prepare_sft`.
        InputError: Unreadable dataset files, or no complete checkpoint to resume from.
    """
    setup = prepare_sft(model, dataset, config, output_dir=output_dir, resume=resume,
                        eval_dataset=eval_dataset, models_file=models_file)
    return run_sft(setup)
