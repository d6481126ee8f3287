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
from geomas.formats.records import AlpacaRecord

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

SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
CHAT_ROLES = ("system", "user", "assistant")


def user_content(example: Example) -> str:
    """The user turn: the instruction, then a blank line and the input when there is one."""
    if example.input:
        return example.instruction + USER_SEPARATOR + example.input
    return example.instruction


def render_prompt(example: Example, system: str | None = None) -> str:
    """The Russian Alpaca-style prompt, ending with the ``### Ответ:`` line."""
    parts = []
    if system:
        parts.append(system + "\n\n")
    parts.append(INSTRUCTION_HEADER + example.instruction + "\n\n")
    if example.input:
        parts.append(INPUT_HEADER + example.input + "\n\n")
    parts.append(RESPONSE_HEADER)
    return "".join(parts)


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
        record: dict[str, Any] = {
            "instruction": example.instruction,
            "input": example.input,
            "output": example.output,
        }
        if system is not None:
            record["system"] = system
        return record
    if format_type == "messages":
        messages = [{"role": "system", "content": system}] if system else []
        messages += [
            {"role": "user", "content": user_content(example)},
            {"role": "assistant", "content": example.output},
        ]
        return {"messages": messages}
    if format_type == "sharegpt":
        turns = [{"from": "system", "value": system}] if system else []
        turns += [
            {"from": "human", "value": user_content(example)},
            {"from": "gpt", "value": example.output},
        ]
        return {"conversations": turns}
    if format_type == "prompt-completion":
        return {"prompt": render_prompt(example, system), "completion": example.output}
    if format_type == "text":
        return {"text": render_text(example, system)}
    if format_type == "vertex":
        record = {}
        if system:
            record["systemInstruction"] = {"role": "system", "parts": [{"text": system}]}
        record["contents"] = [
            {"role": "user", "parts": [{"text": user_content(example)}]},
            {"role": "model", "parts": [{"text": example.output}]},
        ]
        return record
    if format_type == "classification":
        if example.label is None:
            raise ValueError(
                f"example {example.id!r} has no label; the classification format needs one"
            )
        return {"text": user_content(example), "label": example.label}
    raise ValueError(f"unknown format_type {format_type!r}; use one of {FORMAT_TYPES}")


def detect_format(keys: set[str] | frozenset[str] | Mapping[str, Any]) -> FormatType | None:
    """The format a record's keys belong to, or ``None``."""
    keys = set(keys)
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if "contents" in keys:
        return "vertex"
    if {"prompt", "completion"} <= keys:
        return "prompt-completion"
    if {"instruction", "output"} <= keys:
        return "alpaca"
    if {"text", "label"} <= keys:
        return "classification"
    if "text" in keys:
        return "text"
    return None


def record_lineage(example: Example, format_type: FormatType) -> dict[str, Any]:
    """The lineage object of one example: id, label, group, meta (and input_chars)."""
    lineage: dict[str, Any] = {
        "id": example.id,
        "label": example.label,
        "group": example.group,
        "meta": example.meta,
    }
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
    if format_type == "alpaca":
        rec = AlpacaRecord.parse({k: v for k, v in record.items() if k != LINEAGE_KEY})
        fields: dict[str, Any] = {"instruction": rec.instruction, "input": rec.input or "",
                                  "output": rec.output, "system": rec.system or None}
        own = {"id": rec.id, "label": rec.label, "group": rec.group, "meta": rec.provenance()}
    else:
        fields = _fields(record, format_type, lin)
        own = {"label": fields.pop("label", None)}
    ident = lin.get("id") or own.get("id")
    label = lin["label"] if "label" in lin else own.get("label")
    group = lin.get("group", own.get("group"))
    meta = lin.get("meta", own.get("meta"))
    return Example(
        id=str(ident) if ident not in (None, "") else fallback_id,
        label=str(label) if label is not None else None,
        group=str(group) if group is not None else None,
        meta=dict(meta) if isinstance(meta, Mapping) else {},
        **fields,
    )


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {type(value).__name__}")
    return value


def _split_user(content: str, lineage: Mapping[str, Any]) -> tuple[str, str]:
    """Undo `user_content` with the lineage's ``input_chars``; without it all is instruction."""
    n = lineage.get("input_chars")
    sep = len(USER_SEPARATOR)
    if isinstance(n, int) and 0 < n and n + sep <= len(content):
        if content[-(n + sep) : -n] == USER_SEPARATOR:
            return content[: -(n + sep)], content[-n:]
    return content, ""


def _one_exchange(turns: list[tuple[str, str]], where: str) -> tuple[str | None, str, str]:
    """System, user and assistant texts of a conversation with one exchange."""
    system = None
    rest = turns
    if rest and rest[0][0] == "system":
        system, rest = rest[0][1], rest[1:]
    roles = [role for role, _ in rest]
    if roles != ["user", "assistant"]:
        raise ValueError(
            f"{where} has turns {roles}; an Example holds one user turn and one assistant turn "
            "(after an optional system turn)"
        )
    return system, rest[0][1], rest[1][1]


def _fields(
    record: Mapping[str, Any], format_type: FormatType, lineage: Mapping[str, Any]
) -> dict[str, Any]:
    if format_type in ("messages", "sharegpt"):
        key, role_key, text_key = (
            ("messages", "role", "content")
            if format_type == "messages"
            else ("conversations", "from", "value")
        )
        items = record.get(key)
        if not isinstance(items, list):
            raise ValueError(f"{key} must be a list of turns")
        turns = []
        for n, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValueError(f"{key}[{n}] must be an object")
            role = str(item.get(role_key))
            role = SHAREGPT_ROLES.get(role, role) if format_type == "sharegpt" else role
            turns.append((role, _text(item.get(text_key), f"{key}[{n}].{text_key}")))
        system, user, output = _one_exchange(turns, key)
        instruction, input_ = _split_user(user, lineage)
        return {"instruction": instruction, "input": input_, "output": output, "system": system}
    if format_type == "vertex":
        contents = record.get("contents")
        if not isinstance(contents, list):
            raise ValueError("contents must be a list of turns")
        turns = [("system", _parts(record["systemInstruction"], "systemInstruction"))] if (
            record.get("systemInstruction") is not None
        ) else []
        for n, item in enumerate(contents):
            if not isinstance(item, Mapping):
                raise ValueError(f"contents[{n}] must be an object")
            role = str(item.get("role"))
            turns.append(({"model": "assistant"}.get(role, role), _parts(item, f"contents[{n}]")))
        system, user, output = _one_exchange(turns, "contents")
        instruction, input_ = _split_user(user, lineage)
        return {"instruction": instruction, "input": input_, "output": output, "system": system}
    if format_type in ("prompt-completion", "text"):
        if format_type == "text":
            whole = _text(record.get("text"), "text")
        else:
            whole = _text(record.get("prompt"), "prompt") + _text(
                record.get("completion"), "completion"
            )
        parsed = parse_text(whole)
        if parsed is None:  # not our template: keep the text whole as the target
            if format_type == "prompt-completion":
                return {"instruction": record["prompt"], "output": record["completion"]}
            return {"instruction": "", "output": whole}
        return parsed
    if format_type == "classification":
        label = record.get("label")
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise ValueError(f"label must be a string or an integer, got {type(label).__name__}")
        instruction, input_ = _split_user(_text(record.get("text"), "text"), lineage)
        return {"instruction": instruction, "input": input_, "output": str(label),
                "label": str(label)}
    raise ValueError(f"unknown format_type {format_type!r}; use one of {FORMAT_TYPES}")


def _parts(turn: Any, where: str) -> str:
    if not isinstance(turn, Mapping) or not isinstance(turn.get("parts"), list):
        raise ValueError(f"{where} must be an object with a parts list")
    return "".join(
        _text(part.get("text") if isinstance(part, Mapping) else None, f"{where}.parts[{n}].text")
        for n, part in enumerate(turn["parts"])
    )
