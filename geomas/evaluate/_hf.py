"""Running a Hugging Face model for inference, shared by generation and perplexity."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from geomas.errors import InputError


@contextmanager
def inference(model: Any, tokenizer: Any, pad_side: str) -> Iterator[Any]:
    """Eval mode, no gradients, padding on ``pad_side`` (EOS when there is no pad token).

    The caller's model and tokenizer are shared with training code, so the training flag, the
    padding side and the pad token are put back even when the block raises.

    Yields:
        The device of the model's parameters.
    """
    import torch

    saved_side, saved_pad = tokenizer.padding_side, tokenizer.pad_token
    if saved_pad is None and tokenizer.eos_token is None:
        raise InputError("the tokenizer has neither a pad token nor an EOS token to pad with")
    was_training = model.training
    tokenizer.padding_side = pad_side
    if saved_pad is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    try:
        with torch.inference_mode():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)
        tokenizer.padding_side = saved_side
        if saved_pad is None:
            tokenizer.pad_token = None
