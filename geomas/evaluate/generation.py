"""Greedy answers from a causal LM, scored against references, and base-vs-tuned comparisons.

Prompts are built the way the model was trained on them (`geomas.formats`): the Russian
Alpaca-style text prompt ending with ``### Ответ:`` for a model trained on prompt-completion
records (the default), the tokenizer's chat template (an optional system turn, then the user
turn: instruction, a blank line, input) for one trained on messages. A model scored in a
style it was not trained on answers prompts it never saw. Decoding is greedy, so the same
model and prompts give the same answers, and batched prompts are padded on the left so each
answer continues its own prompt directly.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from geomas.config import EvalConfig
from geomas.errors import InputError
from geomas.evaluate._hf import inference
from geomas.evaluate.metrics import METRIC_NAMES, bertscore, exact_match, rouge_l, token_f1
from geomas.formats.codecs import render_prompt, to_record
from geomas.formats.example import Example

logger = logging.getLogger(__name__)


class Prediction(BaseModel):
    """One example's generated answer and its scores."""

    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str
    prediction: str
    reference: str
    exact_match: float
    token_f1: float
    rouge_l: float


class EvalReport(BaseModel):
    """Scores of one model on one test set, with every prediction."""

    model_config = ConfigDict(extra="forbid")

    n_examples: int
    scores: dict[str, float]
    predictions: list[Prediction]
    prompt_style: str
    max_new_tokens: int
    batch_size: int
    seconds: float

    def metrics(self) -> dict[str, float]:
        """Corpus scores, for MLflow."""
        return dict(self.scores)


class MetricDelta(BaseModel):
    """One metric before and after fine-tuning."""

    model_config = ConfigDict(extra="forbid")

    base: float
    tuned: float
    delta: float


class Comparison(BaseModel):
    """The tuned model against the base (or previous) model on the same test set."""

    model_config = ConfigDict(extra="forbid")

    deltas: dict[str, MetricDelta]
    n_examples: int
    better: list[str]
    worse: list[str]
    unchanged: int

    def metrics(self) -> dict[str, float]:
        """``<metric>.base``, ``<metric>.tuned`` and ``<metric>.delta`` for every metric."""
        return {f"{name}.{part}": value for name, delta in self.deltas.items()
                for part, value in delta.model_dump().items()}


PromptStyle = Literal["alpaca", "chat_template"]


def uses_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer has a chat template (the style of an untrained model's prompts)."""
    return bool(getattr(tokenizer, "chat_template", None))


def prompt_style_for(target_format: str | None, tokenizer: Any) -> PromptStyle:
    """The prompt style a model trained on ``target_format`` answers to.

    ``prompt-completion`` trains on the Alpaca text prompt and ``messages`` on the chat
    template, so generation must build the same prompt; ``None`` (no training record) uses
    the chat template when the tokenizer has one.
    """
    if target_format == "prompt-completion":
        return "alpaca"
    if target_format == "messages":
        return "chat_template"
    if target_format is not None:
        raise InputError(f"unknown target_format {target_format!r}; "
                         "expected prompt-completion or messages")
    return "chat_template" if uses_chat_template(tokenizer) else "alpaca"


def build_prompt(example: Example, tokenizer: Any, style: PromptStyle | None = None) -> str:
    """The generation prompt of ``example``, in the style the model was trained on.

    Args:
        example: The test example; its ``system`` becomes the system turn (or the line above
            ``### Инструкция:``) when set.
        tokenizer: A Hugging Face tokenizer.
        style: ``alpaca`` (the Russian Alpaca text ending with ``### Ответ:``) or
            ``chat_template``; None: the chat template when the tokenizer has one.

    Returns:
        The prompt text, ending where the model's answer starts.

    Raises:
        InputError: ``chat_template`` is asked for and the tokenizer has none.
    """
    style = style or prompt_style_for(None, tokenizer)
    if style == "alpaca":
        return render_prompt(example, example.system)
    if not uses_chat_template(tokenizer):
        raise InputError("the model was trained on chat-template prompts (target_format "
                         "messages) but its tokenizer has no chat template")
    messages = to_record(example, "messages", example.system)["messages"][:-1]  # no answer
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if not isinstance(prompt, str):
        raise InputError(f"the chat template returned {type(prompt).__name__}, not a string")
    return prompt


def _greedy_config(model: Any, tokenizer: Any, max_new_tokens: int) -> Any:
    from transformers import GenerationConfig

    base = getattr(model, "generation_config", None)
    config = copy.deepcopy(base) if base is not None else GenerationConfig()
    # Checkpoints often ship sampling defaults (temperature, top_p); greedy decoding ignores
    # them and transformers warns about each one, so they are cleared.
    for name in ("temperature", "top_p", "top_k", "min_p", "typical_p"):
        if hasattr(config, name):
            setattr(config, name, None)
    config.do_sample = False
    config.num_beams = 1
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    config.pad_token_id = tokenizer.pad_token_id
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    return config


def generate_answers(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    max_new_tokens: int,
    batch_size: int,
    prompt_style: PromptStyle | None = None,
) -> list[str]:
    """Greedy answers to ``examples``, in their order.

    Prompts are sorted by length into batches (less padding); the order of the answers is the
    order of ``examples``. The tokenizer's padding side and pad token are restored afterwards.

    Args:
        model: A causal LM (``AutoModelForCausalLM``, or a PEFT model around one).
        tokenizer: Its tokenizer.
        examples: Test examples; ``output`` is not shown to the model.
        max_new_tokens: Most tokens per answer.
        batch_size: Prompts per ``generate`` call.
        prompt_style: How prompts are built (`build_prompt`); use the training's
            (`prompt_style_for` its target_format), or the answers are to prompts the model
            never saw.

    Returns:
        The decoded answers without the prompt and special tokens, stripped.

    Raises:
        InputError: ``max_new_tokens`` or ``batch_size`` is below 1, or the tokenizer cannot pad.
    """
    from geomas.progress import Progress

    if max_new_tokens < 1 or batch_size < 1:
        raise InputError(
            f"max_new_tokens ({max_new_tokens}) and batch_size ({batch_size}) must be at least 1"
        )
    if not examples:
        return []
    style = prompt_style or prompt_style_for(None, tokenizer)
    chat = style == "chat_template"
    prompts = [build_prompt(example, tokenizer, style) for example in examples]
    # The chat template writes BOS itself; the Alpaca text needs the tokenizer to add it.
    lengths = [len(tokenizer(p, add_special_tokens=not chat)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (-lengths[i], i))
    answers: list[str] = [""] * len(prompts)
    with (
        inference(model, tokenizer, "left") as device,
        Progress("generate", total=len(prompts), unit="answers") as progress,
    ):
        config = _greedy_config(model, tokenizer, max_new_tokens)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            encoded = tokenizer(
                [prompts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not chat,
            ).to(device)
            output = model.generate(**encoded, generation_config=config)
            new_tokens = output[:, encoded["input_ids"].shape[1] :]
            texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                answers[i] = text.strip()
            progress.advance(len(batch))
    return answers


def evaluate_model(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Example],
    *,
    max_new_tokens: int | None = None,
    batch_size: int | None = None,
    config: EvalConfig | None = None,
    prompt_style: PromptStyle | None = None,
) -> EvalReport:
    """Generate answers to ``examples`` and score them against their ``output``.

    The keyword options override ``config``; ``None`` keeps its value. BERTScore is added to
    the scores when ``config.bertscore_model_path`` is set.

    Args:
        model: A causal LM.
        tokenizer: Its tokenizer.
        examples: Test examples with reference answers in ``output``.
        max_new_tokens: Most tokens per answer.
        batch_size: Prompts per ``generate`` call.
        config: Evaluation settings; ``None``: `EvalConfig` defaults.
        prompt_style: The prompt style the model was trained on (`prompt_style_for`);
            None: the chat template when the tokenizer has one.

    Returns:
        Mean scores (`METRIC_NAMES`, plus ``bertscore_*``) and every prediction.

    Raises:
        InputError: ``examples`` is empty.
        MissingExtraError: BERTScore is configured and ``bert-score`` is not installed.
    """
    config = config or EvalConfig()
    max_new_tokens = config.max_new_tokens if max_new_tokens is None else max_new_tokens
    batch_size = config.batch_size if batch_size is None else batch_size
    if not examples:
        raise InputError("no examples to evaluate; pass a non-empty test set")
    started = time.perf_counter()
    style = prompt_style or prompt_style_for(None, tokenizer)
    preds = generate_answers(model, tokenizer, examples, max_new_tokens, batch_size, style)
    predictions = [
        Prediction(
            id=example.id,
            prompt=build_prompt(example, tokenizer, style),
            prediction=pred,
            reference=example.output,
            exact_match=exact_match(pred, example.output),
            token_f1=token_f1(pred, example.output),
            rouge_l=rouge_l(pred, example.output),
        )
        for example, pred in zip(examples, preds, strict=True)
    ]
    # == corpus_scores(preds, refs), from the per-example scores
    scores = {name: fmean(getattr(p, name) for p in predictions) for name in METRIC_NAMES}
    if config.bertscore_model_path is not None:
        scores.update(
            bertscore(preds, [example.output for example in examples],
                      Path(config.bertscore_model_path),
                      num_layers=config.bertscore_num_layers, batch_size=batch_size)
        )
    seconds = time.perf_counter() - started
    logger.info("Evaluated %d examples in %.1f s: %s", len(examples), seconds, scores)
    return EvalReport(
        n_examples=len(examples),
        scores=scores,
        predictions=predictions,
        prompt_style=style,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seconds=seconds,
    )


def compare(base_report: EvalReport, tuned_report: EvalReport) -> Comparison:
    """Score deltas of a tuned model over the base (or previous) model on the same examples.

    Args:
        base_report: `evaluate_model` of the base or previously released model.
        tuned_report: `evaluate_model` of the new model on the same examples.

    Returns:
        Per metric base, tuned and ``delta = tuned - base``; the ids whose token F1 rose
        (``better``) or fell (``worse``), and how many stayed the same.

    Raises:
        InputError: The reports are over different examples (ids differ).
    """
    base_ids = [p.id for p in base_report.predictions]
    tuned_ids = [p.id for p in tuned_report.predictions]
    if sorted(base_ids) != sorted(tuned_ids):
        only_base = sorted(set(base_ids) - set(tuned_ids))[:5]
        only_tuned = sorted(set(tuned_ids) - set(base_ids))[:5]
        raise InputError(
            "the reports cover different examples (e.g. only in base: "
            f"{only_base}, only in tuned: {only_tuned}); evaluate both models on the same test set"
        )
    tuned_scores = tuned_report.scores
    deltas = {
        name: MetricDelta(base=base, tuned=tuned_scores[name], delta=tuned_scores[name] - base)
        for name, base in base_report.scores.items() if name in tuned_scores
    }
    base_f1 = {p.id: p.token_f1 for p in base_report.predictions}
    better = [p.id for p in tuned_report.predictions if p.token_f1 > base_f1[p.id]]
    worse = [p.id for p in tuned_report.predictions if p.token_f1 < base_f1[p.id]]
    return Comparison(
        deltas=deltas,
        n_examples=len(base_ids),
        better=better,
        worse=worse,
        unchanged=len(base_ids) - len(better) - len(worse),
    )


