"""Files every stage writes and reads: atomic writes and the one JSON / JSON Lines record reader.

Writes go to a hidden temporary file next to the target, which is then renamed over it
(`os.replace`, no fsync): a failed or interrupted write never leaves a half-written file, and
the old file stays as it was. Records are read from a JSON list or JSON Lines, whichever the
content is, each with the line it starts on, so every error names the file and the line.

The bottom layer: imports only the standard library, pydantic and `geomas.errors`. A JSON list
is walked element by element with `json.JSONDecoder.raw_decode`, so each record's starting
offset (and from it the line) is known without a position-tracking parser.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from geomas.errors import InputError

Container = Literal["json", "jsonl"]
JSONL_SUFFIXES = (".jsonl", ".ndjson")
JSON_SUFFIXES = (".json",)
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


# --------------------------------------------------------------------------- writing


def atomic_write_text(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` in UTF-8 atomically; its folder is created.

    Returns:
        ``path``. On any error the temporary file is removed and the old file is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as fh:  # a new file with the usual (umask) permissions
            fh.write(text.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON text of a value or a pydantic model (JSON mode), non-ASCII characters unescaped."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, ensure_ascii=False, indent=indent)


def write_json(path: Path, value: Any, *, indent: int | None = 2, end: str = "\n") -> Path:
    """Write one JSON document atomically.

    The text is made before the file is touched, so a value that cannot be serialised leaves
    the old file as it was.

    Args:
        path: The file; its folder is created.
        value: Anything `json.dumps` takes, or a pydantic model.
        indent: Indentation; ``None``: one line.
        end: Text after the document.

    Returns:
        ``path``.
    """
    return atomic_write_text(path, dumps(value, indent) + end)


def write_jsonl(path: Path, rows: Iterable[Any]) -> Path:
    """Write JSON Lines (one value or pydantic model per line) atomically; empty when no rows."""
    return atomic_write_text(path, "".join(dumps(row) + "\n" for row in rows))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class LocatedRecord:
    """One parsed top-level value with the 1-based line it starts on and its 0-based index."""

    line: int
    index: int
    value: Any

    def where(self) -> str:
        """``line 3: record 2``, for error messages."""
        return f"line {self.line}: record {self.index}"


def skip_ws(text: str, pos: int) -> int:
    """The first offset at or after ``pos`` that is not JSON whitespace."""
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def sniff_container(text: str) -> Container | None:
    """``"json"`` when the text starts with ``[``, ``"jsonl"`` with ``{``, else ``None``."""
    return {"[": "json", "{": "jsonl"}.get(text.lstrip(_WHITESPACE)[:1])  # type: ignore[return-value]


def iter_json_list(text: str) -> Iterator[LocatedRecord]:
    """Yield the elements of a top-level JSON list with their starting lines.

    Raises:
        json.JSONDecodeError: The text is not one JSON list; ``lineno``/``colno`` point at
            the problem in the whole text.
    """
    line_starts = [0] + [match.end() for match in re.finditer("\n", text)]
    pos = skip_ws(text, 0)
    if not text.startswith("[", pos):
        raise json.JSONDecodeError("Expecting '[' (a JSON list of records)", text, pos)
    pos = skip_ws(text, pos + 1)
    closed = text.startswith("]", pos)
    index = 0
    while not closed:
        value, end = _DECODER.raw_decode(text, pos)
        yield LocatedRecord(bisect.bisect_right(line_starts, pos), index, value)
        index += 1
        pos = skip_ws(text, end)
        if text.startswith(",", pos):
            pos = skip_ws(text, pos + 1)
        elif not (closed := text.startswith("]", pos)):
            raise json.JSONDecodeError("Expecting ',' or ']' after a record", text, pos)
    pos = skip_ws(text, pos + 1)
    if pos < len(text):
        raise json.JSONDecodeError("Extra data after the closing ']'", text, pos)


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
        path: The file. Its content decides the container: ``[`` → JSON list, ``{`` → JSON
            Lines (blank lines skipped). An empty file holds no records.

    Returns:
        The container found and the records (each a parsed JSON value) with their lines.

    Raises:
        InputError: The file is missing, not UTF-8, not JSON, or has a syntax error; the
            message names the file, the line and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    text = decode_utf8(path.read_bytes(), path)
    container = sniff_container(text)
    if container is None and text.strip():
        raise InputError(
            f"{path} is neither a JSON list (starting with '[') nor JSON Lines (one object per "
            "line, starting with '{'); check the file with geomas validate-dataset"
        )
    if container == "json":
        try:
            return container, list(iter_json_list(text))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: line {exc.lineno} is not valid JSON ({exc.msg} at column {exc.colno}); "
                "check the file with geomas validate-dataset"
            ) from exc
    records: list[LocatedRecord] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(LocatedRecord(number, len(records), json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                "JSON Lines needs one complete JSON object per line"
            ) from exc
    return "jsonl", records
