"""Alpaca-style JSON/JSONL reading and writing for the cleaning and merging commands.

`clean_dataset` and `merge_datasets` take any ``reader(path) -> list[Example]`` and
``writer(examples, path)``; these are the defaults. A record is an object with
``instruction`` and ``output`` strings and optional ``input``, ``id``, ``system``, ``label``,
``group``, ``metadata`` (the legal guide's provenance: provider, mode, timestamp, version...)
and ``meta``; both metadata objects and any other keys end up in `Example.meta`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from geomas.errors import InputError
from geomas.formats.example import Example

Reader = Callable[[Path], list[Example]]
Writer = Callable[[Sequence[Example], Path], object]

JSONL_SUFFIXES = (".jsonl", ".ndjson")
JSON_SUFFIXES = (".json",)
_OPTIONAL_TEXT = ("system", "label", "group")
_REQUIRED = ("instruction", "output")


def is_jsonl(path: Path) -> bool:
    """Whether `path` names a JSON Lines file (else a JSON list); other suffixes are errors.

    Raises:
        InputError: The suffix is neither .json nor .jsonl/.ndjson.
    """
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return True
    if suffix in JSON_SUFFIXES:
        return False
    raise InputError(
        f"{path}: unknown dataset suffix {path.suffix!r}; use .jsonl (one record per line) "
        "or .json (a list of records)"
    )


def _raw_records(path: Path) -> Iterator[tuple[str, Any]]:
    """``(location, record)`` pairs: location is "line N" (JSONL) or "record N" (JSON list)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"dataset file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if is_jsonl(path):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f"line {number}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}: line {number} is not valid JSON ({exc.msg} at column {exc.colno})"
                ) from exc
        return
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(data, list):
        raise InputError(
            f"{path}: a .json dataset must be a list of records, got {type(data).__name__}"
        )
    for number, record in enumerate(data, start=1):
        yield f"record {number}", record


def example_from_record(record: Any, *, default_id: str, where: str) -> Example:
    """Build an `Example` from one alpaca-style record.

    Args:
        record: The decoded JSON value.
        default_id: Id used when the record has none.
        where: Location for error messages, e.g. "data.jsonl: line 3".

    Raises:
        InputError: The record is not an object, lacks instruction/output, or has a field of
            the wrong type.
    """
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise InputError(
            f"{where}: record has no {' or '.join(repr(k) for k in missing)} "
            f"(keys: {', '.join(sorted(record)) or 'none'}); this reader takes alpaca-style "
            "records (instruction/input/output), convert other formats with geomas.formats"
        )
    rest = dict(record)
    values: dict[str, Any] = {}
    for key in (*_REQUIRED, "input", *_OPTIONAL_TEXT):
        value = rest.pop(key, None)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InputError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
        values[key] = value
    raw_id = rest.pop("id", None)
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int | None):
        raise InputError(f"{where}: 'id' must be a string or integer, got {raw_id!r}")
    meta: dict[str, Any] = {}
    for key in ("metadata", "meta"):
        value = rest.pop(key, None)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InputError(f"{where}: {key!r} must be an object, got {type(value).__name__}")
        meta.update(value)
    meta.update(rest)  # any other keys (qa_id, entity_type...) are lineage too
    return Example(
        id=str(raw_id) if raw_id not in (None, "") else default_id, meta=meta, **values
    )


def read_alpaca(path: Path) -> list[Example]:
    """Read a JSON list or JSONL file of alpaca-style records.

    Records without an id get ``<file stem>-<line or record number>``.

    Args:
        path: A .json or .jsonl/.ndjson file.

    Returns:
        The examples in file order.

    Raises:
        InputError: Unreadable file, invalid JSON or an unusable record; the message names the
            file and the line (JSONL) or record number (JSON).
    """
    path = Path(path)
    examples = []
    for where, record in _raw_records(path):
        default_id = f"{path.stem}-{where.split()[-1]}"
        where = f"{path}: {where}"
        examples.append(example_from_record(record, default_id=default_id, where=where))
    return examples


def record_from_example(ex: Example) -> dict[str, Any]:
    """The alpaca-style record of an example (the inverse of `example_from_record`)."""
    record: dict[str, Any] = {
        "id": ex.id,
        "instruction": ex.instruction,
        "input": ex.input,
        "output": ex.output,
    }
    for key in _OPTIONAL_TEXT:
        if (value := getattr(ex, key)) is not None:
            record[key] = value
    if ex.meta:
        record["meta"] = ex.meta
    return record


def _write_atomic(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> None:
    """Write dicts as JSON Lines (UTF-8, non-ASCII kept), replacing `path` atomically."""
    _write_atomic(Path(path), (json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_json(data: Any, path: Path) -> None:
    """Write one JSON document (indented, UTF-8), replacing `path` atomically."""
    _write_atomic(Path(path), [json.dumps(data, ensure_ascii=False, indent=2) + "\n"])


def write_alpaca(examples: Sequence[Example], path: Path) -> None:
    """Write examples as alpaca-style records: JSONL or a JSON list, by the suffix of `path`.

    Raises:
        InputError: `path` has neither a .json nor a .jsonl/.ndjson suffix.
    """
    path = Path(path)
    records = (record_from_example(ex) for ex in examples)
    if is_jsonl(path):
        write_jsonl(records, path)
    else:
        write_json(list(records), path)
