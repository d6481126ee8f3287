"""JSON list and JSON Lines files: container detection and records with their line numbers.

A JSON list is walked element by element with `json.JSONDecoder.raw_decode`, so each record's
starting offset (and from it the line) is known without a position-tracking parser.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from geomas.errors import InputError

Container = Literal["json", "jsonl"]
JSONL_SUFFIXES = (".jsonl", ".ndjson")
JSON_SUFFIXES = (".json",)
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True)
class LocatedRecord:
    """One parsed top-level value with the 1-based line it starts on and its 0-based index."""

    line: int
    index: int
    value: Any


class LineIndex:
    """Maps character offsets of a text to 1-based line numbers."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        pos = text.find("\n")
        while pos != -1:
            self._starts.append(pos + 1)
            pos = text.find("\n", pos + 1)

    def line(self, offset: int) -> int:
        """The 1-based line holding ``offset``."""
        return bisect.bisect_right(self._starts, offset)


def skip_ws(text: str, pos: int) -> int:
    """The first offset at or after ``pos`` that is not JSON whitespace."""
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def sniff_container(text: str) -> Container | None:
    """``"json"`` when the text starts with ``[``, ``"jsonl"`` with ``{``, else ``None``."""
    start = skip_ws(text, 0)
    if start >= len(text):
        return None
    return {"[": "json", "{": "jsonl"}.get(text[start])  # type: ignore[return-value]


def iter_json_list(text: str, lines: LineIndex | None = None) -> Iterator[LocatedRecord]:
    """Yield the elements of a top-level JSON list with their starting lines.

    Raises:
        json.JSONDecodeError: The text is not one JSON list; ``lineno``/``colno`` point at
            the problem in the whole text.
    """
    lines = lines or LineIndex(text)
    pos = skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        raise json.JSONDecodeError("Expecting '[' (a JSON list of records)", text, pos)
    pos = skip_ws(text, pos + 1)
    index = 0
    if pos < len(text) and text[pos] == "]":
        pos += 1
    else:
        while True:
            start = pos
            value, pos = _DECODER.raw_decode(text, start)
            yield LocatedRecord(lines.line(start), index, value)
            index += 1
            pos = skip_ws(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos = skip_ws(text, pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos += 1
                break
            raise json.JSONDecodeError("Expecting ',' or ']' after a record", text, pos)
    pos = skip_ws(text, pos)
    if pos < len(text):
        raise json.JSONDecodeError("Extra data after the closing ']'", text, pos)


def iter_json_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` for the non-blank lines of a JSON Lines text."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line


def decode_utf8(raw: bytes, path: Path) -> str:
    """Decode UTF-8 (a leading BOM is tolerated), naming the line of the first invalid byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: line {line} is not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file "
            "as UTF-8 (geomas validate-dataset lists every bad line)"
        ) from exc


def load_records(path: Path) -> tuple[Container, list[LocatedRecord]]:
    """Read a JSON list or JSON Lines file, whatever its suffix, into located records.

    Args:
        path: The file. Its content decides the container: ``[`` → JSON list, ``{`` → JSONL.

    Returns:
        The container found and the records (each a parsed JSON value) with their lines.

    Raises:
        InputError: The file is missing, not UTF-8, not JSON, or has a syntax error (the
            message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    text = decode_utf8(path.read_bytes(), path)
    container = sniff_container(text)
    if container is None:
        raise InputError(
            f"{path} is neither a JSON list (starting with '[') nor JSON Lines (one object per "
            "line, starting with '{'); check the file with geomas validate-dataset"
        )
    try:
        if container == "json":
            return container, list(iter_json_list(text))
        records = []
        for index, (number, line) in enumerate(iter_json_lines(text)):
            try:
                records.append(LocatedRecord(number, index, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}: line {number}, column {exc.colno}: {exc.msg}; JSON Lines needs "
                    "one complete JSON object per line"
                ) from exc
        return container, records
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from exc


def dump_records(records: list[dict[str, Any]], path: Path, *, jsonl: bool) -> Path:
    """Write records as JSON Lines or as one indented JSON list (UTF-8, no ASCII escapes).

    The file is written next to its final name and renamed, so a failed write never leaves a
    half-written dataset behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        if jsonl:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            json.dump(records, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
    tmp.replace(path)
    return path
