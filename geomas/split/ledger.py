"""The split ledger: once a document is in train, val or test it stays there.

`split_examples` places documents (groups) the first time it sees them and records where in a
`SplitLedger` (``split_assignments.json`` next to the split outputs). On later runs every
document in the ledger keeps its split, and only new documents are placed, one group at a
time, into the split whose class counts are furthest below their targets — so a champion's
test set is still its test set after new documents arrive, and a document the champion trained
on never shows up in a later val or test split.

A ledger is tied to the ratios, the seed and the grouping it was made with: asking for other
ratios with an existing ledger is an error that says how to start a new one (delete the file;
the next run re-splits every document and earlier scores stop being comparable).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geomas.config import SplitConfig
from geomas.errors import InputError
from geomas.io import write_json

LEDGER_NAME = "split_assignments.json"

SplitKey = Literal["train", "val", "test"]


class LedgerUpdate(BaseModel):
    """One run that added documents to the ledger."""

    model_config = ConfigDict(extra="forbid")

    at: str = Field(description="UTC time of the run (ISO 8601).")
    dataset_hash: str = Field(description="sha256 of the sorted example ids the run split.")
    new: dict[str, int] = Field(description="New groups placed per split.")


class SplitLedger(BaseModel):
    """Group key -> split, with the settings the assignments were made under."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    seed: int
    group_by: str | None
    stratify_by: str | None
    ratios: dict[str, float] = Field(description="val and test ratios of the first split.")
    assignments: dict[str, SplitKey] = Field(
        default_factory=dict,
        description="'g:<group>' for a document's records, 'id:<example id>' for a record "
        "without a group.",
    )
    history: list[LedgerUpdate] = Field(default_factory=list)

    @classmethod
    def new(cls, config: SplitConfig) -> SplitLedger:
        """An empty ledger for `config`."""
        return cls(seed=config.seed, group_by=config.group_by, stratify_by=config.stratify_by,
                   ratios={"val": config.val_ratio, "test": config.test_ratio})

    def check_compatible(self, config: SplitConfig, path: Path | str = LEDGER_NAME) -> None:
        """Raise when `config` asks for another split than the ledger was made with.

        Raises:
            InputError: ratios, seed or grouping differ; the message names the file and the fix.
        """
        asked = {"val": config.val_ratio, "test": config.test_ratio}
        diffs = [f"{k} {self.ratios.get(k)} -> {v}" for k, v in asked.items()
                 if abs(self.ratios.get(k, 0.0) - v) > 1e-9]
        if self.seed != config.seed:
            diffs.append(f"seed {self.seed} -> {config.seed}")
        if self.group_by != config.group_by:
            diffs.append(f"group_by {self.group_by} -> {config.group_by}")
        if diffs:
            raise InputError(
                f"{path}: the split ledger was made with other settings ({'; '.join(diffs)}); "
                "documents keep their splits only under the same ones. Restore the settings, or "
                "delete the ledger to re-split every document (scores of earlier models are "
                "then not comparable with new ones)")


def group_key(example_id: str, group: str | None) -> str:
    """The ledger key of a record: its group, or the record itself when it has none."""
    return f"g:{group}" if group is not None else f"id:{example_id}"


def dataset_hash(ids: Sequence[str]) -> str:
    """sha256 of the sorted ids (what the split saw)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


def load_ledger(path: Path | str, config: SplitConfig | None = None) -> SplitLedger | None:
    """The ledger at `path`, or None when there is none yet.

    Args:
        path: ``split_assignments.json``.
        config: When given, the ledger must have been made with its ratios, seed, grouping.

    Raises:
        InputError: the file exists but is not a split ledger, or does not fit `config`.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        ledger = SplitLedger.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise InputError(f"{path}: not a split ledger ({exc}); restore it from the last run's "
                         "artifacts, or delete it to re-split every document") from exc
    if config is not None:
        ledger.check_compatible(config, path)
    return ledger


def write_ledger(path: Path | str, ledger: SplitLedger) -> Path:
    """Write the ledger atomically."""
    return write_json(Path(path), ledger)


def place_new_groups(
    new_groups: Mapping[str, Counter[str]],
    have: dict[str, Counter[str]],
    ratios: Mapping[str, float],
    seed: int,
) -> dict[str, SplitKey]:
    """Place each new group where its classes are furthest below their target counts.

    Args:
        new_groups: Group key -> records per class of the new groups.
        have: Split -> records per class already placed (updated in place).
        ratios: Split -> asked share.
        seed: Orders groups of equal size (a pure function of key and seed).

    Returns:
        Group key -> split.
    """
    totals: Counter[str] = Counter()
    for counts in have.values():
        totals.update(counts)
    for counts in new_groups.values():
        totals.update(counts)
    splits = [s for s in ("train", "val", "test") if ratios.get(s, 0) > 0]

    def order(key: str) -> tuple[int, str]:
        digest = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
        return -sum(new_groups[key].values()), digest

    out: dict[str, SplitKey] = {}
    for key in sorted(new_groups, key=order):
        counts = new_groups[key]

        def deficit(split: str, counts: Counter[str] = counts) -> tuple[float, float]:
            gap = sum(n * (ratios[split] * totals[c] - have[split][c]) for c, n in counts.items())
            return gap / max(sum(counts.values()), 1), ratios[split]

        best = max(splits, key=deficit)
        out[key] = best  # type: ignore[assignment]
        have[best].update(counts)
    return out


def stamp(ledger: SplitLedger, ids: Sequence[str], new: Mapping[str, str]) -> None:
    """Record a run that placed `new` groups (nothing when there were none)."""
    if not new:
        return
    ledger.history.append(LedgerUpdate(
        at=datetime.now(UTC).isoformat(timespec="seconds"), dataset_hash=dataset_hash(ids),
        new=dict(sorted(Counter(new.values()).items()))))
