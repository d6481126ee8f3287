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
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geomas.config import FormatType
from geomas.errors import InputError
from geomas.formats.codecs import FORMAT_TYPES, LINEAGE_KEY, detect_format
from geomas.formats.records import RECORD_MODELS, Problem
from geomas.io import JSON_SUFFIXES, JSONL_SUFFIXES, LocatedRecord, iter_json_list, sniff_container

Severity = Literal["error", "warning"]

#: Keys a record may have or lack without breaking key consistency: its model's optional fields.
OPTIONAL_KEYS = {
    fmt: frozenset(name for name, field in model.model_fields.items() if not field.is_required())
    for fmt, model in RECORD_MODELS.items()
}
#: Conversation key, role key and the roles trained on: a chat record needs one such turn.
ANSWER_TURNS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "messages": ("messages", "role", ("assistant",)),
    "sharegpt": ("conversations", "from", ("gpt", "assistant")),
    "vertex": ("contents", "role", ("model",)),
}
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
        where = (("line", self.line), ("record", self.record), ("field", self.field))
        located = ", ".join(f"{name} {value}" for name, value in where if value is not None)
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
        raise InputError(f"{self.path} has {len(errors)} errors:\n" + "\n".join(lines))


class _Issues(list[DatasetIssue]):
    def add(self, severity: Severity, rule: str, message: str, **where: Any) -> None:
        self.append(DatasetIssue(severity=severity, rule=rule, message=message, **where))


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
    out = _Issues()
    text = _decode(path.read_bytes(), out)
    container = sniff_container(text) if text is not None else None
    located: list[LocatedRecord] = []
    if text is not None and not text.strip():
        out.add("error", "empty_file", "the file holds no records")
    elif text is not None and container is None:
        first = text.strip()[:20]
        out.add("error", "container", f"not JSON: the content starts with {first!r}; expected "
                "a JSON list ('[') or JSON Lines (one '{...}' object per line)", line=1)
    elif text is not None:
        located = (_parse_list if container == "json" else _parse_lines)(text, path, out)
        if not located and not out:
            out.add("error", "empty_file", "the file holds no records", line=1)
    fmt = _check_records(located, format_type, out)
    report = DatasetReport(
        path=path, container=container, format_type=fmt, records=len(located),
        issues=sorted(out, key=lambda i: (i.line or 0, i.record or 0)),
    )
    if strict:
        report.raise_if_invalid()
    return report


def _decode(raw: bytes, out: _Issues) -> str | None:
    """Text of the file with each line's invalid UTF-8 reported (and replaced)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        out.add("error", "encoding", "the file is UTF-16 (byte-order mark FF FE / FE FF); save "
                "it as UTF-8", line=1)
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        out.add("error", "bom", "the file starts with a UTF-8 byte-order mark, which JSON "
                "parsers such as Python's json reject; save it as UTF-8 without BOM", line=1)
        raw = raw[3:]
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.add("error", "encoding", f"invalid UTF-8 byte 0x{line[exc.start]:02x} at byte "
                    f"{exc.start + 1} of the line (a Windows-1251 file?); save the file as UTF-8",
                    line=number)
    # No sequence spans a line break, so this is each line decoded with U+FFFD for bad bytes.
    return raw.decode("utf-8", errors="replace")


def _parse_list(text: str, path: Path, out: _Issues) -> list[LocatedRecord]:
    if path.name.endswith(JSONL_SUFFIXES):
        out.add("error", "container", f"a JSON list in a {path.suffix} file: JSON Lines has one "
                "object per line and tools that read JSONL (Vertex AI, OpenAI) reject a list; "
                "rename it to .json or rewrite it as JSON Lines", line=1)
    located: list[LocatedRecord] = []
    try:
        located.extend(iter_json_list(text))
    except json.JSONDecodeError as exc:
        out.add("error", "syntax", f"{exc.msg} (column {exc.colno}); records after this point "
                "were not checked", line=exc.lineno, record=len(located))
    return located


def _parse_lines(text: str, path: Path, out: _Issues) -> list[LocatedRecord]:
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


def _pretty_object(text: str, out: _Issues) -> bool:
    """Report a single JSON object spread over several lines (it fails line by line)."""
    try:  # an object on one line is a JSON Lines record
        value = json.loads(text) if text.strip().count("\n") else None
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
    located: list[LocatedRecord], format_type: FormatType | None, out: _Issues
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
        keys = frozenset(value) - OPTIONAL_KEYS[fmt] - {LINEAGE_KEY}
        if reference is None:
            reference = (line, keys)
        elif keys != reference[1]:
            missing, extra = sorted(reference[1] - keys), sorted(keys - reference[1])
            out.add("error", "keys", f"keys differ from the first record (line {reference[0]}): "
                    f"missing {missing}, extra {extra}", line=line, record=index)
        for problem in _problems(value, fmt):
            out.add("error", problem.rule, problem.message, line=line, record=index,
                    field=problem.field)
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


def _problems(record: dict[str, Any], fmt: FormatType) -> list[Problem]:
    """The record model's problems (empty texts too), a bad lineage and a missing answer turn."""
    problems = RECORD_MODELS[fmt].problems(record, filled=True)
    if not isinstance(record.get(LINEAGE_KEY, {}), dict):
        problems.insert(0, Problem(LINEAGE_KEY, "wrong_type", "'lineage' must be an object"))
    key, role_key, roles = ANSWER_TURNS.get(fmt, ("", "", ()))
    turns = record.get(key)
    if turns and isinstance(turns, list) and not any(
        isinstance(turn, dict) and turn.get(role_key) in roles for turn in turns
    ):
        problems.append(Problem(key, "missing_field", f"no {'/'.join(roles)} turn: nothing to "
                                "train on"))
    return problems
