"""`geomas validate-dataset FILE`: every problem of a dataset file, each with its line number.

Checked: UTF-8 (each line with an invalid byte), a byte-order mark, the container (JSON list or
JSON Lines, found from the content and compared with the suffix), JSON syntax, records that
are not objects, the format of each record and that all records share it and its keys, field
types, empty fields, chat roles, and repeated records. Problems are collected, not raised one
at a time; for a JSON list a record's problems carry the line its record starts on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geomas.config import FormatType
from geomas.errors import InputError
from geomas.formats.codecs import FORMAT_TYPES, LINEAGE_KEY, detect_format
from geomas.io import (
    JSON_SUFFIXES,
    JSONL_SUFFIXES,
    LineIndex,
    LocatedRecord,
    iter_json_list,
    sniff_container,
)

Severity = Literal["error", "warning"]

#: Keys a record of a format may have or lack without breaking key consistency.
OPTIONAL_KEYS: dict[str, frozenset[str]] = {
    "alpaca": frozenset({"input", "system", "id", "label", "group", "meta"}),
    "vertex": frozenset({"systemInstruction"}),
}
MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool"})
SHAREGPT_ROLES = frozenset({"system", "human", "gpt", "user", "assistant"})
VERTEX_ROLES = frozenset({"user", "model"})
#: Most issues listed in the `InputError` message of `DatasetReport.raise_if_invalid`.
MAX_LISTED = 30


class DatasetIssue(BaseModel):
    """One problem, located by line (1-based) and record (0-based) where it has them."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity
    rule: str = Field(description="encoding, bom, container, syntax, not_object, ...")
    message: str
    line: int | None = None
    record: int | None = None
    field: str | None = None

    def describe(self) -> str:
        """``line 12, record 3, field output: <message>``."""
        where = [
            f"line {self.line}" if self.line is not None else None,
            f"record {self.record}" if self.record is not None else None,
            f"field {self.field}" if self.field is not None else None,
        ]
        located = ", ".join(w for w in where if w)
        return f"{self.severity} [{self.rule}] {located + ': ' if located else ''}{self.message}"


class DatasetReport(BaseModel):
    """Everything `validate_dataset` found."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    container: Literal["json", "jsonl"] | None
    format_type: FormatType | None
    records: int
    issues: list[DatasetIssue]

    @property
    def errors(self) -> list[DatasetIssue]:
        """Issues of severity error."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[DatasetIssue]:
        """Issues of severity warning."""
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def valid(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def raise_if_invalid(self) -> None:
        """Raise `InputError` listing the errors when there are any.

        Raises:
            InputError: The file has errors; the message lists up to `MAX_LISTED` of them.
        """
        if self.valid:
            return
        errors = self.errors
        lines = [issue.describe() for issue in errors[:MAX_LISTED]]
        if len(errors) > MAX_LISTED:
            lines.append(f"... and {len(errors) - MAX_LISTED} more")
        raise InputError(
            f"{self.path} has {len(errors)} errors:\n" + "\n".join(lines)
        )


class _Collector:
    def __init__(self) -> None:
        self.issues: list[DatasetIssue] = []

    def add(
        self,
        severity: Severity,
        rule: str,
        message: str,
        line: int | None = None,
        record: int | None = None,
        field: str | None = None,
    ) -> None:
        self.issues.append(DatasetIssue(
            severity=severity, rule=rule, message=message, line=line, record=record, field=field
        ))


def validate_dataset(
    path: Path, format_type: FormatType | None = None, *, strict: bool = False
) -> DatasetReport:
    """Check a dataset file and list all its problems.

    Args:
        path: The JSON or JSONL file.
        format_type: Expected format; ``None``: detected from the first record.
        strict: Raise `InputError` (listing the errors) instead of returning an invalid report.

    Returns:
        The report; ``report.valid`` is False when it has errors.

    Raises:
        InputError: The file does not exist, or ``strict`` and the file has errors.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    if format_type is not None and format_type not in FORMAT_TYPES:
        raise InputError(f"unknown format_type {format_type!r}; use one of {FORMAT_TYPES}")
    out = _Collector()
    text = _decode(path.read_bytes(), out)
    container = sniff_container(text) if text is not None else None
    located: list[LocatedRecord] = []
    if text is not None and not text.strip():
        out.add("error", "empty_file", "the file holds no records")
    elif text is not None and container is None:
        first = text.strip()[:20]
        out.add("error", "container", f"not JSON: the content starts with {first!r}; expected "
                "a JSON list ('[') or JSON Lines (one '{...}' object per line)", line=1)
    elif text is not None and container == "json":
        located = _parse_list(text, path, out)
    elif text is not None:
        located = _parse_lines(text, path, out)
    if text is not None and text.strip() and not located and not out.issues:
        out.add("error", "empty_file", "the file holds no records", line=1)
    fmt = _check_records(located, format_type, out)
    report = DatasetReport(
        path=path, container=container, format_type=fmt, records=len(located),
        issues=sorted(out.issues, key=lambda i: (i.line or 0, i.record or 0)),
    )
    if strict:
        report.raise_if_invalid()
    return report


def _decode(raw: bytes, out: _Collector) -> str | None:
    """Text of the file with each line's invalid UTF-8 reported (and replaced)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        out.add("error", "encoding", "the file is UTF-16 (byte-order mark FF FE / FE FF); save "
                "it as UTF-8", line=1)
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        out.add("error", "bom", "the file starts with a UTF-8 byte-order mark, which JSON "
                "parsers such as Python's json reject; save it as UTF-8 without BOM", line=1)
        raw = raw[3:]
    lines = raw.split(b"\n")
    decoded = []
    for number, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            out.add("error", "encoding", f"invalid UTF-8 byte 0x{line[exc.start]:02x} at byte "
                    f"{exc.start + 1} of the line (a Windows-1251 file?); save the file as UTF-8",
                    line=number)
            decoded.append(line.decode("utf-8", errors="replace"))
    return "\n".join(decoded)


def _parse_list(text: str, path: Path, out: _Collector) -> list[LocatedRecord]:
    if path.name.endswith(JSONL_SUFFIXES):
        out.add("error", "container", f"a JSON list in a {path.suffix} file: JSON Lines has one "
                "object per line and tools that read JSONL (Vertex AI, OpenAI) reject a list; "
                "rename it to .json or rewrite it as JSON Lines", line=1)
    located: list[LocatedRecord] = []
    try:
        for rec in iter_json_list(text, LineIndex(text)):
            located.append(rec)
    except json.JSONDecodeError as exc:
        out.add("error", "syntax", f"{exc.msg} (column {exc.colno}); records after this point "
                "were not checked", line=exc.lineno, record=len(located))
    return located


def _parse_lines(text: str, path: Path, out: _Collector) -> list[LocatedRecord]:
    if _pretty_object(text, out):
        return []
    located: list[LocatedRecord] = []
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            if number < len(lines):  # the last "line" after a final newline is not a blank line
                out.add("warning", "blank_line", "blank line in JSON Lines", line=number)
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            out.add("error", "syntax", f"{exc.msg} (column {exc.colno}); each line must be one "
                    "complete JSON object", line=number, record=len(located))
            continue
        located.append(LocatedRecord(number, len(located), value))
    if path.name.endswith(JSON_SUFFIXES):
        out.add("error", "container", "JSON Lines content in a .json file: readers of .json "
                "files (json.load, the original geomas train-sft) expect one JSON list; rename "
                "it to .jsonl or write the records as a list", line=1)
    return located


def _pretty_object(text: str, out: _Collector) -> bool:
    """Report a single JSON object spread over several lines (it fails line by line)."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    try:
        json.loads(first)
        return False
    except json.JSONDecodeError:
        pass
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    if not isinstance(value, dict):
        return False
    lists = [k for k, v in value.items() if isinstance(v, list)]
    hint = f" (its key {lists[0]!r} holds a list: put those records at the top level)" if (
        lists
    ) else ""
    out.add("error", "container", "the file is one JSON object spread over several lines, "
            f"not a list of records or JSON Lines{hint}", line=1)
    return True


def _check_records(
    located: list[LocatedRecord], format_type: FormatType | None, out: _Collector
) -> FormatType | None:
    fmt = format_type
    reference: tuple[int, frozenset[str]] | None = None
    seen: dict[str, int] = {}
    for rec in located:
        value, line, index = rec.value, rec.line, rec.index
        if not isinstance(value, dict):
            out.add("error", "not_object", f"the record is a {type(value).__name__}, not a JSON "
                    "object", line=line, record=index)
            continue
        found = detect_format(value)
        if found is None:
            out.add("error", "unknown_format", f"keys {sorted(value)} match no format "
                    f"({', '.join(FORMAT_TYPES)})", line=line, record=index)
            continue
        if fmt is None:
            fmt = found
        if found != fmt:
            out.add("error", "mixed_format", f"the record looks like {found} (keys "
                    f"{sorted(value)}) but the file is {fmt}", line=line, record=index)
            continue
        keys = frozenset(value) - OPTIONAL_KEYS.get(fmt, frozenset()) - {LINEAGE_KEY}
        if reference is None:
            reference = (line, keys)
        elif keys != reference[1]:
            missing, extra = sorted(reference[1] - keys), sorted(keys - reference[1])
            out.add("error", "keys", f"keys differ from the first record (line {reference[0]}): "
                    f"missing {missing}, extra {extra}", line=line, record=index)
        for field, rule, message in _field_problems(value, fmt):
            out.add("error", rule, message, line=line, record=index, field=field)
        digest = hashlib.sha1(json.dumps(
            {k: v for k, v in value.items() if k != LINEAGE_KEY}, sort_keys=True,
            ensure_ascii=False,
        ).encode("utf-8")).hexdigest()
        if digest in seen:
            out.add("warning", "duplicate", f"same record as line {seen[digest]}", line=line,
                    record=index)
        else:
            seen[digest] = line
    return fmt


Problem = tuple[str, str, str]


def _text_field(value: Any, field: str, *, allow_empty: bool = False) -> list[Problem]:
    if value is None:
        return [(field, "missing_field", "the field is missing or null")]
    if not isinstance(value, str):
        return [(field, "wrong_type", f"expected a string, got {type(value).__name__}")]
    if not allow_empty and not value.strip():
        return [(field, "empty_field", "the field is empty")]
    return []


def _field_problems(record: Mapping[str, Any], fmt: FormatType) -> list[Problem]:
    problems: list[Problem] = []
    if LINEAGE_KEY in record and not isinstance(record[LINEAGE_KEY], dict):
        problems.append((LINEAGE_KEY, "wrong_type", "lineage must be an object"))
    if fmt == "alpaca":
        problems += _text_field(record.get("instruction"), "instruction")
        problems += _text_field(record.get("output"), "output")
        for optional in ("input", "system"):
            if record.get(optional) is not None:
                problems += _text_field(record[optional], optional, allow_empty=True)
    elif fmt == "messages":
        problems += _turns(record.get("messages"), "messages", "role", "content",
                           MESSAGE_ROLES, "assistant")
    elif fmt == "sharegpt":
        problems += _turns(record.get("conversations"), "conversations", "from", "value",
                           SHAREGPT_ROLES, "gpt", "assistant")
    elif fmt == "prompt-completion":
        problems += _text_field(record.get("prompt"), "prompt")
        problems += _text_field(record.get("completion"), "completion")
    elif fmt == "text":
        problems += _text_field(record.get("text"), "text")
    elif fmt == "classification":
        problems += _text_field(record.get("text"), "text")
        label = record.get("label")
        if label is None:
            problems.append(("label", "missing_field", "the field is missing or null"))
        elif isinstance(label, bool) or not isinstance(label, str | int):
            problems.append(("label", "wrong_type",
                             f"expected a string or an integer, got {type(label).__name__}"))
        elif isinstance(label, str) and not label.strip():
            problems.append(("label", "empty_field", "the field is empty"))
    elif fmt == "vertex":
        problems += _vertex(record)
    return problems


def _turns(
    turns: Any, key: str, role_key: str, text_key: str, roles: frozenset[str], *answer: str
) -> list[Problem]:
    if not isinstance(turns, list):
        return [(key, "wrong_type", f"expected a list of turns, got {type(turns).__name__}")]
    if not turns:
        return [(key, "empty_field", "the conversation has no turns")]
    problems: list[Problem] = []
    for n, turn in enumerate(turns):
        where = f"{key}[{n}]"
        if not isinstance(turn, dict):
            problems.append((where, "wrong_type", f"expected an object, got {type(turn).__name__}"))
            continue
        role = turn.get(role_key)
        if role not in roles:
            problems.append((f"{where}.{role_key}", "bad_role",
                             f"role {role!r} is not one of {sorted(roles)}"))
        problems += _text_field(turn.get(text_key), f"{where}.{text_key}")
    if not any(isinstance(t, dict) and t.get(role_key) in answer for t in turns):
        problems.append((key, "missing_field", f"no {'/'.join(answer)} turn: nothing to train on"))
    return problems


def _vertex(record: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    system = record.get("systemInstruction")
    if system is not None:
        problems += _parts(system, "systemInstruction")
    contents = record.get("contents")
    if not isinstance(contents, list):
        return problems + [("contents", "wrong_type",
                            f"expected a list of turns, got {type(contents).__name__}")]
    if not contents:
        return problems + [("contents", "empty_field", "the conversation has no turns")]
    for n, turn in enumerate(contents):
        where = f"contents[{n}]"
        if not isinstance(turn, dict):
            problems.append((where, "wrong_type", f"expected an object, got {type(turn).__name__}"))
            continue
        if turn.get("role") not in VERTEX_ROLES:
            problems.append((f"{where}.role", "bad_role",
                             f"role {turn.get('role')!r} is not one of {sorted(VERTEX_ROLES)}"))
        problems += _parts(turn, where)
    if not any(isinstance(t, dict) and t.get("role") == "model" for t in contents):
        problems.append(("contents", "missing_field", "no model turn: nothing to train on"))
    return problems


def _parts(turn: Any, where: str) -> list[Problem]:
    if not isinstance(turn, dict):
        return [(where, "wrong_type", f"expected an object, got {type(turn).__name__}")]
    parts = turn.get("parts")
    if not isinstance(parts, list) or not parts:
        return [(f"{where}.parts", "wrong_type" if parts is not None else "missing_field",
                 "expected a non-empty list of {\"text\": ...} parts")]
    problems: list[Problem] = []
    for n, part in enumerate(parts):
        if not isinstance(part, dict):
            problems.append((f"{where}.parts[{n}]", "wrong_type",
                             f"expected an object, got {type(part).__name__}"))
            continue
        problems += _text_field(part.get("text"), f"{where}.parts[{n}].text")
    return problems
