"""Training data for SFT: any geomas dataset format converted to a TRL-native format.

Records go through `geomas.formats.trl_map_for`, which turns alpaca, sharegpt, vertex, text and
the TRL-native formats into ``messages`` (chat template, assistant-only loss) or
``prompt``/``completion`` (completion-only loss). No ``formatting_func``: that would train on
the prompt tokens too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from geomas.errors import InputError
from geomas.formats import detect_format, trl_map_for
from geomas.formats.trl import TrlTarget
from geomas.hashing import sha256_file
from geomas.io import JSON_SUFFIXES, JSONL_SUFFIXES, load_records

_TRAIN_SUFFIX = "_train"
_VAL_SUFFIX = "_val"


class DatasetInfo(BaseModel):
    """What a run trained or evaluated on (recorded in training_config.json)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path
    sha256: str
    records: int
    format_type: str
    target_format: str


def load_sft_rows(path: Path, target: TrlTarget) -> tuple[list[dict[str, Any]], DatasetInfo]:
    """Read a dataset file and convert every record to ``target``.

    Raises:
        InputError: Unreadable or empty file, unknown format, or a record that does not fit
            its format (the message names the line).
    """
    path = Path(path)
    _, located = load_records(path)
    if not located:
        raise InputError(f"{path} holds no records; nothing to train on")
    first = located[0].value
    fmt = detect_format(first) if isinstance(first, dict) else None
    if fmt is None:
        raise InputError(
            f"{path}: line {located[0].line}: cannot tell the dataset format from its keys"
        )
    convert = trl_map_for(fmt, target)
    rows = []
    for rec in located:
        if not isinstance(rec.value, dict):
            raise InputError(f"{path}: line {rec.line}: record is not a JSON object")
        try:
            rows.append(convert(rec.value))
        except ValueError as exc:
            raise InputError(f"{path}: line {rec.line}: {exc}") from exc
    info = DatasetInfo(
        path=path,
        sha256=sha256_file(path),
        records=len(rows),
        format_type=fmt,
        target_format=target,
    )
    return rows, info


def sibling_eval_path(train_path: Path) -> Path | None:
    """``x_val.json`` next to ``x_train.json`` (any JSON/JSONL suffix), when it exists."""
    train_path = Path(train_path)
    name = train_path.name
    for suffix in (*JSONL_SUFFIXES, *JSON_SUFFIXES):
        stem = name[: -len(suffix)] if name.endswith(suffix) else None
        if stem and stem.endswith(_TRAIN_SUFFIX):
            candidate = train_path.with_name(stem[: -len(_TRAIN_SUFFIX)] + _VAL_SUFFIX + suffix)
            return candidate if candidate.is_file() else None
    return None
