"""Model training: supervised fine-tuning (full, LoRA, QLoRA) of causal LMs."""

from geomas.train.configfile import load_sft_config, parse_sft_config
from geomas.train.factories import get_peft_config, get_quantization_config, get_training_args
from geomas.train.memory import BatchDecision, pick_batch
from geomas.train.resolve import ResolvedModel, load_model_aliases, resolve_model
from geomas.train.sft import SFTResult, SFTSetup, prepare_sft, run_sft, train_sft

__all__ = [
    "BatchDecision",
    "ResolvedModel",
    "SFTResult",
    "SFTSetup",
    "get_peft_config",
    "get_quantization_config",
    "get_training_args",
    "load_model_aliases",
    "load_sft_config",
    "parse_sft_config",
    "pick_batch",
    "prepare_sft",
    "resolve_model",
    "run_sft",
    "train_sft",
]
