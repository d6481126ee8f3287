"""One record shape per dataset format: `Example` → record and record → `Example`.

Formats (all UTF-8, as one JSON list or as JSON Lines):

- ``alpaca``: ``{"instruction", "input", "output"}`` (+ ``"system"`` when any example has one).
- ``messages``: OpenAI chat, ``{"messages": [system?, user, assistant]}``.
- ``sharegpt``: ``{"conversations": [{"from": "system"?}, {"from": "human"}, {"from": "gpt"}]}``
  with ``value`` texts.
- ``prompt-completion``: ``{"prompt", "completion"}``; the prompt is the Russian Alpaca-style
  template up to the ``### Ответ:`` line, so ``prompt + completion`` is the ``text`` record.
- ``text``: ``{"text"}``, the whole example in the Russian Alpaca-style template.
- ``vertex``: Vertex AI supervised tuning, ``{"systemInstruction"?, "contents": [user, model]}``.
- ``classification``: ``{"text", "label"}``; text is the user turn, label the example's label.

Chat formats put the instruction, a blank line and the input into the user turn. Where that merge
cannot be undone from the text, the lineage record keeps ``input_chars`` (the length of the
input) so that reading the file back restores the instruction/input split exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from geomas.config import FormatType
from geomas.formats.example import Example
from geomas.formats.records import (
    RECORD_MODELS,
    AlpacaRecord,
    ClassificationRecord,
    FormatRecord,
    MessagesRecord,
    PromptCompletionRecord,
    ShareGPTRecord,
    TextRecord,
    VertexRecord,
)

FORMAT_TYPES: tuple[FormatType, ...] = get_args(FormatType)

#: Formats TRL's SFTTrainer prepares as written, with no conversion and no formatting function.
TRL_NATIVE: frozenset[str] = frozenset({"messages", "prompt-completion", "text"})

#: Key of the per-record lineage object with ``lineage="inline"``.
LINEAGE_KEY = "lineage"

INSTRUCTION_HEADER = "### Инструкция:\n"
INPUT_HEADER = "### Вход:\n"
RESPONSE_HEADER = "### Ответ:\n"
#: Separator between the instruction and the input in a chat user turn.
USER_SEPARATOR = "\n\n"
_REQUIRED = {
    fmt: {name for name, field in model.model_fields.items() if field.is_required()}
    for fmt, model in RECORD_MODELS.items()
}
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}



def user_content(example: Example) -> str:
    """The user turn: the instruction, then a blank line and the input when there is one."""
    if example.input:
        return example.instruction + USER_SEPARATOR + example.input
    return example.instruction


def render_prompt(example: Example, system: str | None = None) -> str:
    """The Russian Alpaca-style prompt, ending with the ``### Ответ:`` line."""
    head = f"{system}\n\n" if system else ""
    input_ = f"{INPUT_HEADER}{example.input}\n\n" if example.input else ""
    return f"{head}{INSTRUCTION_HEADER}{example.instruction}\n\n{input_}{RESPONSE_HEADER}"


def render_text(example: Example, system: str | None = None) -> str:
    """The whole example as one string: `render_prompt` followed by the output."""
    return render_prompt(example, system) + example.output


def parse_text(text: str) -> dict[str, Any] | None:
    """Split a `render_text` string into system, instruction, input and output.

    Returns:
        The fields, or ``None`` when the text does not follow the template.
    """
    head = text.find(INSTRUCTION_HEADER)
    tail = text.rfind("\n\n" + RESPONSE_HEADER)
    if head < 0 or tail < head:
        return None
    system = text[:head]
    if system and not system.endswith("\n\n"):
        return None
    body = text[head + len(INSTRUCTION_HEADER) : tail]
    output = text[tail + 2 + len(RESPONSE_HEADER) :]
    cut = body.find("\n\n" + INPUT_HEADER)
    if cut >= 0:
        instruction, input_ = body[:cut], body[cut + 2 + len(INPUT_HEADER) :]
    else:
        instruction, input_ = body, ""
    return {
        "system": system[:-2] or None,
        "instruction": instruction,
        "input": input_,
        "output": output,
    }


def to_record(example: Example, format_type: FormatType, system: str | None) -> dict[str, Any]:
    """The record of one example in ``format_type`` (without lineage).

    Args:
        example: The example.
        format_type: One of `FORMAT_TYPES`.
        system: The system prompt to write (the example's own or a default); ``None``: none.

    Raises:
        ValueError: ``classification`` and the example has no label.
    """
    if format_type == "alpaca":
        record = {"instruction": example.instruction, "input": example.input,
                  "output": example.output}
        return record if system is None else {**record, "system": system}
    turns = [("system", system)] if system else []
    turns += [("user", user_content(example)), ("assistant", example.output)]
    if format_type == "messages":
        return {"messages": [{"role": role, "content": text} for role, text in turns]}
    if format_type == "sharegpt":
        speakers = {role: speaker for speaker, role in SHAREGPT_ROLES.items()}
        return {"conversations": [{"from": speakers[role], "value": text} for role, text in turns]}
    if format_type == "prompt-completion":
        return {"prompt": render_prompt(example, system), "completion": example.output}
    if format_type == "text":
        return {"text": render_text(example, system)}
    if format_type == "vertex":
        contents = [{"role": "model" if role == "assistant" else role, "parts": [{"text": text}]}
                    for role, text in turns if role != "system"]
        if not system:
            return {"contents": contents}
        return {"systemInstruction": {"role": "system", "parts": [{"text": system}]},
                "contents": contents}
    if format_type == "classification":
        if example.label is None:
            raise ValueError(
                f"example {example.id!r} has no label; the classification format needs one"
            )
        return {"text": user_content(example), "label": example.label}
    raise ValueError(f"unknown format_type {format_type!r}; use one of {FORMAT_TYPES}")


def detect_format(keys: set[str] | frozenset[str] | Mapping[str, Any]) -> FormatType | None:
    """The first format (in `RECORD_MODELS` order) whose required fields the keys hold, or None."""
    return next((fmt for fmt, required in _REQUIRED.items() if required <= set(keys)), None)


def record_lineage(example: Example, format_type: FormatType) -> dict[str, Any]:
    """The lineage object of one example: id, label, group, meta (and input_chars)."""
    lineage = example.model_dump(include={"id", "label", "group", "meta"})
    if format_type in ("messages", "sharegpt", "vertex", "classification"):
        lineage["input_chars"] = len(example.input)
    return lineage


def from_record(
    record: Mapping[str, Any],
    format_type: FormatType,
    *,
    lineage: Mapping[str, Any] | None = None,
    fallback_id: str,
) -> Example:
    """Read one record of ``format_type`` into an `Example`.

    Args:
        record: The parsed record.
        format_type: Its format.
        lineage: Its lineage object (inline or from the sidecar); ``None``: none. The record's
            own ``lineage`` key is used when this is ``None``.
        fallback_id: Id used when neither the lineage nor the record has one.

    Raises:
        ValueError: The record does not have the shape of ``format_type`` (the message names
            the field), or a conversation holds more than one user/assistant exchange.
    """
    if lineage is None and isinstance(record.get(LINEAGE_KEY), Mapping):
        lineage = record[LINEAGE_KEY]
    lin: Mapping[str, Any] = lineage or {}
    rec = RECORD_MODELS[format_type].parse({k: v for k, v in record.items() if k != LINEAGE_KEY})
    fields = _fields(rec, lin)
    own = {key: fields.pop(key, None) for key in ("id", "label", "group", "meta")}
    ident = lin.get("id") or own["id"]
    label = lin["label"] if "label" in lin else own["label"]
    group = lin.get("group", own["group"])
    meta = lin.get("meta", own["meta"])
    return Example(
        id=str(ident) if ident not in (None, "") else fallback_id,
        label=str(label) if label is not None else None,
        group=str(group) if group is not None else None,
        meta=dict(meta) if isinstance(meta, Mapping) else {},
        **fields,
    )


def _split_user(content: str, lineage: Mapping[str, Any]) -> tuple[str, str]:
    """Undo `user_content` with the lineage's ``input_chars``; without it all is instruction."""
    n = lineage.get("input_chars")
    sep = len(USER_SEPARATOR)
    if isinstance(n, int) and 0 < n and n + sep <= len(content):
        if content[-(n + sep) : -n] == USER_SEPARATOR:
            return content[: -(n + sep)], content[-n:]
    return content, ""


def _turns(rec: MessagesRecord | ShareGPTRecord | VertexRecord) -> list[tuple[str, str]]:
    """``(role, text)`` turns of a chat record, roles as in ``messages``."""
    if isinstance(rec, MessagesRecord):
        return [(turn.role, turn.content) for turn in rec.messages]
    if isinstance(rec, ShareGPTRecord):
        return [(SHAREGPT_ROLES.get(t.speaker, t.speaker), t.value) for t in rec.conversations]
    turns = [("system", rec.systemInstruction)] if rec.systemInstruction else []
    turns += [("assistant" if turn.role == "model" else turn.role, turn) for turn in rec.contents]
    return [(role, "".join(part.text for part in turn.parts)) for role, turn in turns]


def _fields(rec: FormatRecord, lineage: Mapping[str, Any]) -> dict[str, Any]:
    """An `Example`'s fields from a record, with the record's own id/label/group/meta."""
    if isinstance(rec, AlpacaRecord):
        return {"instruction": rec.instruction, "input": rec.input or "", "output": rec.output,
                "system": rec.system or None, "id": rec.id, "label": rec.label,
                "group": rec.group, "meta": rec.provenance()}
    if isinstance(rec, MessagesRecord | ShareGPTRecord | VertexRecord):
        turns = _turns(rec)
        system = turns.pop(0)[1] if turns and turns[0][0] == "system" else None
        roles = [role for role, _ in turns]
        if roles != ["user", "assistant"]:
            raise ValueError(
                f"the conversation has turns {roles}; an Example holds one user turn and one "
                "assistant turn (after an optional system turn)"
            )
        instruction, input_ = _split_user(turns[0][1], lineage)
        return {"instruction": instruction, "input": input_, "output": turns[1][1],
                "system": system}
    if isinstance(rec, ClassificationRecord):
        instruction, input_ = _split_user(rec.text, lineage)
        label = str(rec.label)
        return {"instruction": instruction, "input": input_, "output": label, "label": label}
    if isinstance(rec, PromptCompletionRecord):
        parsed = parse_text(rec.prompt + rec.completion)
        # not our template: keep the texts as they are
        return parsed or {"instruction": rec.prompt, "output": rec.completion}
    assert isinstance(rec, TextRecord)
    return parse_text(rec.text) or {"instruction": "", "output": rec.text}
