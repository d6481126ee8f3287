"""Write `Example`s in a dataset format and read any supported dataset file back.

Lineage (id, label, group, meta) goes where the format tolerates it:

- ``sidecar`` (default): ``<stem>.lineage.jsonl`` next to the file, one row per record in
  order. The dataset keeps exactly the format's keys, as strict consumers (Vertex AI's
  documented schema, external fine-tuning services) expect and as the original
  ``instruct_dataset_*.json`` files had.
- ``inline``: an extra ``lineage`` object per record. ``datasets`` loads it (heterogeneous meta
  becomes a ``Json`` feature) and TRL's SFTTrainer ignores it when preparing and training;
  Vertex AI's schema has no place for it, so ``vertex`` refuses it.
- ``none``: ids and labels are not kept; reading gives ids ``<stem>:<index>``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from geomas.config import FormatConfig, FormatType, LineageMode
from geomas.errors import InputError
from geomas.formats.codecs import (
    FORMAT_TYPES,
    LINEAGE_KEY,
    detect_format,
    from_record,
    record_lineage,
    to_record,
)
from geomas.formats.example import Example
from geomas.io import JSON_SUFFIXES, JSONL_SUFFIXES, load_records, write_json, write_jsonl

logger = logging.getLogger(__name__)

IdScheme = Literal["index", "position"]
LINEAGE_SUFFIX = ".lineage.jsonl"


class WrittenDataset(BaseModel):
    """A dataset file written by `write_examples`."""

    model_config = ConfigDict(extra="forbid")

    path: Path
    format_type: FormatType
    jsonl: bool
    records: int
    lineage: LineageMode
    lineage_path: Path | None


def dataset_stem(path: Path) -> str:
    """The file name without ``.json``/``.jsonl``/``.ndjson``."""
    name = Path(path).name
    for suffix in (*JSONL_SUFFIXES, *JSON_SUFFIXES):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def lineage_path(path: Path) -> Path:
    """The lineage sidecar of a dataset file: ``<stem>.lineage.jsonl`` in the same folder."""
    return Path(path).with_name(dataset_stem(path) + LINEAGE_SUFFIX)


def write_examples(
    examples: Iterable[Example],
    path: Path,
    format_type: FormatType,
    jsonl: bool,
    system_prompt: str | None = None,
    *,
    lineage: LineageMode | None = None,
) -> WrittenDataset:
    """Write examples in ``format_type``.

    Args:
        examples: The examples, written in order.
        path: Output file; its folder is created. The suffix is not changed.
        format_type: One of `geomas.formats.FORMAT_TYPES`.
        jsonl: JSON Lines (one record per line) instead of one indented JSON list.
        system_prompt: System prompt for examples that have none (``Example.system`` wins).
            ``classification`` has no system turn and ignores it.
        lineage: ``sidecar``, ``inline`` or ``none``; ``None``: FormatConfig's default.

    Returns:
        What was written.

    Raises:
        InputError: An impossible option combination, or a classification example without a
            label.
    """
    options: dict[str, Any] = {"format_type": format_type, "jsonl": jsonl}
    try:  # FormatConfig's rules: vertex needs JSON Lines and no inline lineage...
        mode = FormatConfig.model_validate(
            options if lineage is None else {**options, "lineage": lineage}
        ).lineage
    except ValidationError as exc:
        problems = "; ".join(err["msg"] for err in exc.errors())
        raise InputError(f"format options are invalid: {problems}") from exc
    rows = list(examples)
    systems = [ex.system if ex.system is not None else system_prompt for ex in rows]
    # Alpaca files carry "system" in every record or in none, so all rows have the same keys.
    alpaca_system = format_type == "alpaca" and any(s is not None for s in systems)
    records = []
    for ex, system in zip(rows, systems, strict=True):
        if format_type == "alpaca":
            system = (system or "") if alpaca_system else None
        try:
            record = to_record(ex, format_type, system)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        if mode == "inline":
            record[LINEAGE_KEY] = record_lineage(ex, format_type)
        records.append(record)
    path = write_jsonl(path, records) if jsonl else write_json(path, records)
    sidecar = lineage_path(path)
    if mode == "sidecar":
        write_jsonl(sidecar, ({"index": i, **record_lineage(ex, format_type)}
                              for i, ex in enumerate(rows)))
    elif sidecar.is_file():
        # A sidecar from an earlier run would be paired with the new records on reading.
        logger.info("Removing the stale lineage sidecar %s", sidecar)
        sidecar.unlink()
    logger.info("Wrote %d %s records to %s", len(records), format_type, path)
    return WrittenDataset(
        path=path, format_type=format_type, jsonl=jsonl, records=len(records), lineage=mode,
        lineage_path=sidecar if mode == "sidecar" else None,
    )


def read_lineage(path: Path) -> list[dict[str, Any]] | None:
    """The rows of a dataset file's lineage sidecar, or ``None`` when it has none."""
    sidecar = lineage_path(path)
    if not sidecar.is_file():
        return None
    _, located = load_records(sidecar)
    rows = []
    for rec in located:
        if not isinstance(rec.value, dict):
            raise InputError(f"{sidecar}: line {rec.line} is not a JSON object")
        rows.append(rec.value)
    return rows


def read_examples(
    path: Path, format_type: FormatType | None = None, *, ids: IdScheme = "index"
) -> list[Example]:
    """Read a dataset file of any supported format into examples: the one dataset reader.

    The container (JSON list or JSON Lines) is found from the content, not the suffix. The
    format is detected from the first record's keys unless given. Lineage comes from the
    sidecar when there is one, else from inline ``lineage`` keys (and, for alpaca files, from
    the top-level keys of `AlpacaRecord`: id, label, group, system, meta, the generator's
    ``metadata`` and any other key).

    Args:
        path: The file.
        format_type: The format; ``None``: detect it.
        ids: Ids of records without one: ``index``: ``<stem>:<index>`` (0-based);
            ``position``: ``<stem>-<line>`` in JSON Lines and ``<stem>-<n>`` (1-based) in a
            JSON list, as the legal guide's cleaning and merging scripts numbered them.

    Returns:
        The examples, in file order.

    Raises:
        InputError: Unreadable file, unknown or mixed formats, a record that does not fit its
            format, or a sidecar whose length differs from the file's (messages name the file,
            the line and the record).
    """
    path = Path(path)
    container, located = load_records(path)
    for rec in located:
        if not isinstance(rec.value, dict):
            raise InputError(
                f"{path}: {rec.where()} is a {type(rec.value).__name__}, not a JSON object"
            )
    if not located:
        return []
    if format_type is not None and format_type not in FORMAT_TYPES:
        raise InputError(f"unknown format_type {format_type!r}; use one of {FORMAT_TYPES}")
    fmt = format_type or detect_format(located[0].value)
    if fmt is None:
        raise InputError(
            f"{path}: line {located[0].line}: cannot tell the format from the keys "
            f"{sorted(located[0].value)}; pass format_type (one of {FORMAT_TYPES})"
        )
    sidecar = read_lineage(path)
    if sidecar is not None and len(sidecar) != len(located):
        raise InputError(
            f"{lineage_path(path)} has {len(sidecar)} rows but {path} has {len(located)} "
            "records; they are out of step, so rewrite both or delete the sidecar"
        )
    stem = dataset_stem(path)
    examples = []
    for rec in located:
        record: Mapping[str, Any] = rec.value
        found = detect_format(record)
        if format_type is None and found != fmt:
            raise InputError(
                f"{path}: {rec.where()} looks like {found or 'no format'} (keys "
                f"{sorted(record)}) but the file starts as {fmt}; one file holds one format"
            )
        number = rec.line if container == "jsonl" else rec.index + 1
        try:
            examples.append(from_record(
                record, fmt,
                lineage=sidecar[rec.index] if sidecar is not None else None,
                fallback_id=f"{stem}:{rec.index}" if ids == "index" else f"{stem}-{number}",
            ))
        except ValueError as exc:
            raise InputError(f"{path}: {rec.where()}: {exc}") from exc
    return examples
