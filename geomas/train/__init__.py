"""Model training: supervised fine-tuning (full, LoRA, QLoRA) of causal LMs."""

from geomas.train.configfile import load_sft_config, parse_sft_config
from geomas.train.factories import get_quantization_config
from geomas.train.memory import pick_batch
from geomas.train.resolve import load_model_aliases, resolve_model
from geomas.train.sft import SFTResult, prepare_sft, run_sft, train_sft

__all__ = [
    "SFTResult",
    "get_quantization_config",
    "load_model_aliases",
    "load_sft_config",
    "parse_sft_config",
    "pick_batch",
    "prepare_sft",
    "resolve_model",
    "run_sft",
    "train_sft",
]
