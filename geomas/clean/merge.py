"""`merge_datasets`: concatenate JSON/JSONL datasets with provenance and unique ids.

As in the legal guide's ``merge_datasets.py``, files collected over time (one per session of
a generating GUI, say) become one training file. Every record notes where it came from:
``meta["source_file"]``, and the generator's ``provider``, ``mode``, ``timestamp`` and
``version`` when its ``metadata`` has them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from geomas.clean.io import Reader, is_jsonl, read_alpaca, write_alpaca
from geomas.errors import InputError
from geomas.formats.example import Example

log = logging.getLogger(__name__)

PROVENANCE_KEYS = ("provider", "mode", "timestamp", "version")


class MergeInput(BaseModel):
    """One merged file."""

    path: str
    records: int
    renamed_ids: int = Field(description="Records whose id collided and got a file prefix.")
    providers: dict[str, int] = Field(description="Records per metadata provider.")
    modes: dict[str, int] = Field(description="Records per metadata mode.")


class MergeReport(BaseModel):
    """What `merge_datasets` wrote."""

    output_path: str
    records: int
    renamed_ids: int
    inputs: list[MergeInput]


def _provenance(meta: dict[str, Any], source: Path) -> dict[str, Any]:
    """Meta with source_file set and provenance lifted from a nested ``metadata`` object."""
    out = dict(meta)
    nested = out.get("metadata")
    if isinstance(nested, dict):
        for key in PROVENANCE_KEYS:
            if key in nested and key not in out:
                out[key] = nested[key]
    out["source_file"] = str(source)
    return out


def _unique_id(original: str, stem: str, seen: set[str]) -> str:
    candidate = f"{stem}:{original}"
    n = 2
    while candidate in seen:
        candidate = f"{stem}:{original}#{n}"
        n += 1
    return candidate


def merge_datasets(
    inputs: Sequence[Path],
    out: Path,
    reader: Reader | None = None,
) -> MergeReport:
    """Merge dataset files into one, keeping provenance and making ids unique.

    Records keep their order (file by file). An id already taken by an earlier record is
    prefixed with the file's stem (``<stem>:<id>``, then ``#2``... if needed) and the old
    one is kept in ``meta["original_id"]``.

    Args:
        inputs: JSON/JSONL files, merged in this order.
        out: The merged file; JSONL or a JSON list by its suffix.
        reader: ``reader(path) -> list[Example]``; alpaca-style JSON/JSONL when None.

    Returns:
        Counts per input file and in all.

    Raises:
        InputError: No inputs, the output is one of the inputs, a bad output suffix, or an
            unreadable input (the message names the file and line).
    """
    if not inputs:
        raise InputError("merge_datasets needs at least one input file")
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in inputs):
        raise InputError(f"output {out} is also an input; choose another path")
    is_jsonl(out)
    read = reader or read_alpaca
    seen: set[str] = set()
    merged: list[Example] = []
    reports: list[MergeInput] = []
    for path in map(Path, inputs):
        renamed = 0
        examples = read(path)
        for ex in examples:
            meta = _provenance(ex.meta, path)
            new_id = ex.id
            if new_id in seen:
                new_id = _unique_id(ex.id, path.stem, seen)
                meta["original_id"] = ex.id
                renamed += 1
            seen.add(new_id)
            merged.append(ex.model_copy(update={"id": new_id, "meta": meta}))
        metas = [ex.meta for ex in merged[len(merged) - len(examples):]]
        reports.append(MergeInput(
            path=str(path), records=len(examples), renamed_ids=renamed,
            providers=dict(Counter(str(m["provider"]) for m in metas if "provider" in m)),
            modes=dict(Counter(str(m["mode"]) for m in metas if "mode" in m)),
        ))
        log.info("merged %d records from %s (%d ids renamed)", len(examples), path, renamed)
    write_alpaca(merged, out)
    return MergeReport(
        output_path=str(out),
        records=len(merged),
        renamed_ids=sum(r.renamed_ids for r in reports),
        inputs=reports,
    )
