"""Small helpers around Hugging Face tokenizers shared by generation and perplexity."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from geomas.errors import InputError


@contextmanager
def pad_on(tokenizer: Any, side: str) -> Iterator[None]:
    """Pad on ``side`` (with EOS when there is no pad token) inside the block, then restore.

    The caller's tokenizer is shared with training code, so its settings are put back even
    when the block raises.
    """
    saved_side, saved_pad = tokenizer.padding_side, tokenizer.pad_token
    if saved_pad is None and tokenizer.eos_token is None:
        raise InputError("the tokenizer has neither a pad token nor an EOS token to pad with")
    tokenizer.padding_side = side
    if saved_pad is None:
        tokenizer.pad_token = tokenizer.eos_token
    try:
        yield
    finally:
        tokenizer.padding_side = saved_side
        if saved_pad is None:
            tokenizer.pad_token = None
