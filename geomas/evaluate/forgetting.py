"""Catastrophic-forgetting probe: perplexity on general (non-geological) text, before and after.

Fine-tuning on geological QA should not make the model worse at ordinary language. The probe
measures perplexity of the base and the tuned model on the same general texts and fails when
``tuned / base`` exceeds a ceiling (`EvalConfig.forgetting_max_ratio`). geomas ships a small
probe set (`general_texts`): everyday Russian and a little English, no geology.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from geomas.config import EvalConfig
from geomas.errors import InputError
from geomas.evaluate._hf import inference

logger = logging.getLogger(__name__)

GENERAL_TEXTS_NAME = "general_texts.txt"


class ForgettingReport(BaseModel):
    """General-text perplexity of the base and the tuned model."""

    model_config = ConfigDict(extra="forbid")

    perplexity_base: float
    perplexity_tuned: float
    ratio: float
    max_ratio: float
    passed: bool
    n_texts: int

    def metrics(self) -> dict[str, float]:
        """Perplexities, their ratio and the verdict (1.0 passed, 0.0 failed), for MLflow."""
        return {
            "perplexity_base": self.perplexity_base,
            "perplexity_tuned": self.perplexity_tuned,
            "perplexity_ratio": self.ratio,
            "passed": float(self.passed),
        }


def read_texts(path: Path) -> list[str]:
    """One text per non-empty line of a UTF-8 file; lines starting with ``#`` are comments.

    Raises:
        InputError: The file is missing, not UTF-8, or holds no texts.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise InputError(f"general texts file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"general texts file {path} is not UTF-8: {exc}") from exc
    texts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not texts:
        raise InputError(f"{path} holds no texts; write one text per line")
    return texts


def general_texts() -> list[str]:
    """The probe set shipped with geomas: everyday Russian and some English sentences."""
    with resources.as_file(resources.files("geomas.evaluate") / GENERAL_TEXTS_NAME) as path:
        return read_texts(path)


def perplexity(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int = 512,
    batch_size: int = 8,
) -> float:
    """Token-weighted perplexity: ``exp`` of the mean next-token NLL over all texts' tokens.

    Longer texts weigh more, as in the usual corpus perplexity; each text is scored on its own
    (no packing), truncated to ``max_length`` tokens.

    Args:
        model: A causal LM.
        tokenizer: Its tokenizer (BOS is added as the tokenizer does by default).
        texts: The texts.
        max_length: Most tokens per text.
        batch_size: Texts per forward pass.

    Returns:
        The perplexity (at least 1.0).

    Raises:
        InputError: No text has two or more tokens, or ``batch_size`` is below 1.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    import torch.nn.functional as F

    # Summed next-token negative log-likelihood over the texts' tokens
    total, count = 0.0, 0
    # Right padding: the model numbers positions from the left, so real tokens keep the
    # positions they have without padding.
    with inference(model, tokenizer, "right") as device:
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(
                list(texts[start : start + batch_size]),
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_length,
            ).to(device)
            logits = model(**encoded).logits[:, :-1].float()
            targets = encoded["input_ids"][:, 1:]
            mask = encoded["attention_mask"][:, 1:].bool()
            losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
            total += float(losses[mask].sum())
            count += int(mask.sum())
    if count == 0:
        raise InputError(
            "no text has a token to predict (each needs at least two tokens); pass longer texts"
        )
    return math.exp(total / count)


def forgetting_probe(
    base_model: Any,
    tuned_model: Any,
    tokenizer: Any,
    texts: Sequence[str] | None = None,
    max_ratio: float | None = None,
    *,
    config: EvalConfig | None = None,
) -> ForgettingReport:
    """Compare general-text perplexity of ``tuned_model`` with ``base_model``.

    Args:
        base_model: The model before fine-tuning (or the previous release).
        tuned_model: The fine-tuned model; same tokenizer.
        tokenizer: The shared tokenizer.
        texts: General texts; ``None``: ``config.general_texts_path`` if set, else
            `general_texts`.
        max_ratio: Largest allowed ``perplexity_tuned / perplexity_base``; ``None``:
            ``config.forgetting_max_ratio``.
        config: Evaluation settings (also ``perplexity_max_length`` and ``batch_size``);
            ``None``: `EvalConfig` defaults.

    Returns:
        Both perplexities, their ratio and ``passed = ratio <= max_ratio``.

    Raises:
        InputError: ``texts`` is empty, or the texts file cannot be read.
    """
    config = config or EvalConfig()
    max_ratio = config.forgetting_max_ratio if max_ratio is None else max_ratio
    if texts is None:
        texts = (
            read_texts(config.general_texts_path)
            if config.general_texts_path is not None
            else general_texts()
        )
    if not texts:
        raise InputError("no general texts for the forgetting probe; pass at least one text")
    ppl_base, ppl_tuned = (
        perplexity(model, tokenizer, texts, config.perplexity_max_length, config.batch_size)
        for model in (base_model, tuned_model)
    )
    ratio = ppl_tuned / ppl_base
    passed = ratio <= max_ratio
    log = logger.info if passed else logger.warning
    log(
        "Forgetting probe %s: general-text perplexity %.3f -> %.3f (ratio %.3f, max %.3f)",
        "passed" if passed else "FAILED",
        ppl_base,
        ppl_tuned,
        ratio,
        max_ratio,
    )
    return ForgettingReport(
        perplexity_base=ppl_base,
        perplexity_tuned=ppl_tuned,
        ratio=ratio,
        max_ratio=max_ratio,
        passed=passed,
        n_texts=len(texts),
    )
