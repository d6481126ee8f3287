"""Feeding each dataset format to TRL's SFTTrainer.

What TRL 1.x does with each format, loaded by ``datasets.load_dataset("json", ...)``:

- ``messages``: native (conversational language modelling); the tokenizer's chat template
  renders it, and ``assistant_only_loss=True`` masks everything but assistant turns.
- ``prompt-completion``: native; ``completion_only_loss`` (on by default for this format)
  masks the prompt.
- ``text``: native (plain language modelling); loss on every token.
- ``sharegpt``: TRL renames ``from``/``value`` to ``role``/``content`` but keeps the role
  names ``human``/``gpt``, which chat templates do not know (they fail, or render foreign role
  headers). A formatting function does not help: TRL still finds the ``conversations``
  column and tokenizes it instead of the function's text. Convert it with `trl_map_for`.
- ``alpaca`` and ``vertex``: not TRL formats (SFTTrainer looks for ``text``, ``messages`` or
  ``prompt``/``completion`` and fails with ``KeyError: 'text'``). Use `trl_map_for` or
  `formatting_func_for`.
- ``classification``: sequence classification data, not SFT data.

`formatting_func_for` gives SFTTrainer's ``formatting_func`` (alpaca and vertex only): each
record becomes the Russian Alpaca-style text of the ``text`` format, trained on every token
(TRL does not allow ``completion_only_loss`` with a formatting function). `trl_map_for`
converts records with ``Dataset.map`` to ``messages`` (chat template, assistant-only loss
possible) or to ``prompt-completion`` (prompt masked), which keeps the loss on the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from geomas.config import FormatType
from geomas.errors import InputError
from geomas.formats.codecs import FORMAT_TYPES, from_record, render_text, to_record

TrlTarget = Literal["messages", "prompt-completion"]

#: Formats whose records SFTTrainer renders through a ``formatting_func``.
FORMATTING_FUNC_FORMATS: frozenset[str] = frozenset({"alpaca", "vertex"})


def _check(format_type: str) -> None:
    if format_type not in FORMAT_TYPES:
        raise InputError(f"unknown format_type {format_type!r}; use one of {FORMAT_TYPES}")
    if format_type == "classification":
        raise InputError(
            "classification records (text/label) are sequence classification data, not SFT "
            "data; train a sequence-classification head on them instead"
        )


def formatting_func_for(format_type: FormatType) -> Callable[[Mapping[str, Any]], str]:
    """A ``formatting_func`` for SFTTrainer that renders records of ``format_type`` as text.

    Args:
        format_type: ``alpaca`` or ``vertex`` (see `FORMATTING_FUNC_FORMATS`).

    Returns:
        A function from one record (a dataset row) to the Russian Alpaca-style string of the
        ``text`` format (system prompt, ``### Инструкция:``, ``### Вход:``, ``### Ответ:``).

    Raises:
        InputError: A format SFTTrainer would not use the function for: the TRL-native ones
            (pass them as they are), ``sharegpt`` (TRL tokenizes its conversations column and
            ignores the function; use `trl_map_for`), ``classification``, or an unknown one.
    """
    _check(format_type)
    if format_type == "sharegpt":
        raise InputError(
            "SFTTrainer ignores a formatting function on sharegpt data: it converts the "
            "conversations column to messages and tokenizes that (with roles human/gpt); use "
            "dataset.map(trl_map_for('sharegpt'), remove_columns=dataset.column_names)"
        )
    if format_type not in FORMATTING_FUNC_FORMATS:
        raise InputError(
            f"{format_type} is a TRL-native format: pass the dataset to SFTTrainer as it is, "
            "without a formatting function"
        )

    def format_record(record: Mapping[str, Any]) -> str:
        example = from_record(_present(record), format_type, fallback_id="record")
        return render_text(example, example.system)

    return format_record


def trl_map_for(
    format_type: FormatType, target: TrlTarget = "messages"
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A ``Dataset.map`` function that turns records into a TRL-native format.

    Use as ``ds.map(trl_map_for("alpaca"), remove_columns=ds.column_names)``.

    Args:
        format_type: The dataset's format (any but ``classification``).
        target: ``messages`` (chat template; assistant-only loss) or ``prompt-completion``
            (the Alpaca-style prompt; completion-only loss).

    Returns:
        A function from one record to ``{"messages": [...]}`` or
        ``{"prompt": ..., "completion": ...}``.

    Raises:
        InputError: ``classification``, an unknown format or an unknown target.
    """
    _check(format_type)
    if target not in ("messages", "prompt-completion"):
        raise InputError(f"unknown target {target!r}; use 'messages' or 'prompt-completion'")

    def convert(record: Mapping[str, Any]) -> dict[str, Any]:
        example = from_record(_present(record), format_type, fallback_id="record")
        return to_record(example, target, example.system)

    return convert


def _present(record: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``None`` columns ``datasets`` fills in for keys a row did not have."""
    return {key: value for key, value in record.items() if value is not None}
