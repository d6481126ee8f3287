"""Grouped, stratified, seeded train/val/test split of `Example`s with a small-class policy.

How records are placed:

1. Small classes (fewer than ``min_samples_per_class`` records) are merged into
   ``other_label``, dropped (rejects with rule ``min_samples``) or kept for oversampling.
2. Records that share a group value with at least one other record (QA pairs of one document)
   are placed whole groups at a time by scikit-learn's `StratifiedGroupKFold`: the groups are
   dealt into ``k`` folds that keep each class's share, and the folds are joined into splits
   (``val_ratio=0.1`` → 10 folds, one of them val). Among the folds, those whose class shares
   and size come closest to the targets are chosen for val and test.
3. Records without a group (or alone in theirs) carry no constraint. They are placed one at
   a time, per class, into the split whose count of that class is furthest below its target,
   which corrects what the whole groups left uneven. They are not given to
   `StratifiedGroupKFold` as groups of one: its greedy search costs about k² numpy calls per
   group (6 s for 10 000 ungrouped records at k=10) and gains nothing for them.
4. With ``oversample_train``, train records of small classes are duplicated (new ids with the
   suffix ``__os<n>``, ``meta.oversampled_from``) up to ``min_samples_per_class``; val and
   test are never oversampled.
5. Class weights ``w_i = n / (k * n_i)`` are computed on the final train split.

The placement depends on the records and the seed only, not on the order of the input.
"""

from __future__ import annotations

import logging
import random
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from geomas.config import SplitConfig
from geomas.errors import InputError
from geomas.formats.example import Example
from geomas.io import write_json
from geomas.records import Reject, write_rejects
from geomas.split.ledger import (
    SplitLedger,
    group_key,
    load_ledger,
    place_new_groups,
    stamp,
    write_ledger,
)

logger = logging.getLogger(__name__)

SplitName = Literal["train", "val", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "val", "test")

#: Class key of records without a label (they form one class).
UNLABELLED = "<unlabelled>"
#: Suffix of oversampled duplicates' ids: ``<id>__os1``, ``<id>__os2``...
OVERSAMPLE_SUFFIX = "__os"
SPLIT_REPORT_NAME = "split_report.json"
CLASS_WEIGHTS_NAME = "class_weights.json"
SPLIT_REJECTS_NAME = "split_rejects.jsonl"

#: Most folds `StratifiedGroupKFold` is asked for; ratios are rounded to multiples of 1/k.
MAX_FOLDS = 20


class ClassSplitStats(BaseModel):
    """One class across the splits."""

    model_config = ConfigDict(extra="forbid")

    total: int = Field(description="Records after the small-class policy, before oversampling.")
    overall_share: float = Field(description="total / all records.")
    counts: dict[str, int] = Field(description="Records per split (train with duplicates).")
    shares: dict[str, float] = Field(description="Share of each split's records.")
    split_fraction: dict[str, float] = Field(
        description="Share of this class's records in each split (before oversampling)."
    )
    max_share_deviation: float = Field(
        description="Largest |share in a split - overall share| over the non-empty splits."
    )
    groups: int = Field(description="Distinct groups holding the class (ungrouped count as one).")
    largest_group_fraction: float = Field(
        description="Share of the class's records in its largest group."
    )


class ShareViolation(BaseModel):
    """A class whose share of a split is further from its overall share than the tolerance."""

    model_config = ConfigDict(extra="forbid")

    label: str
    split: str
    share: float
    overall_share: float
    deviation: float
    explanation: str


class SplitReport(BaseModel):
    """What the split did: sizes, class shares per split, policy actions, violations."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    stratify_by: str | None
    group_by: str | None
    ratios: dict[str, float]
    effective_ratios: dict[str, float] = Field(description="Records per split / all records.")
    folds: int = Field(description="StratifiedGroupKFold folds used for grouped records (0: none).")
    n_input: int
    n_rejected: int
    n_oversampled: int
    records: dict[str, int] = Field(description="Records per split (train with duplicates).")
    groups: dict[str, int] = Field(description="Distinct group values per split.")
    ungrouped: dict[str, int] = Field(description="Records per split placed one by one.")
    min_samples_per_class: int
    policy: str
    merged: dict[str, int] = Field(description="Small classes relabelled to other_label.")
    dropped: dict[str, int] = Field(description="Small classes whose records were rejected.")
    oversampled: dict[str, int] = Field(description="Duplicates added to train per class.")
    classes: dict[str, ClassSplitStats]
    share_tolerance: float
    share_violations: list[ShareViolation]
    warnings: list[str]
    ledger_groups: int = Field(
        default=0, description="Groups (documents) that kept the split the ledger gave them.")
    new_groups: dict[str, int] = Field(
        default_factory=dict, description="Groups (documents) new to the ledger, per split.")


class SplitResult(BaseModel):
    """The splits, the rejected records, the class weights and the report."""

    model_config = ConfigDict(extra="forbid")

    train: list[Example]
    val: list[Example]
    test: list[Example]
    rejects: list[Reject]
    class_weights: dict[str, float] = Field(
        description="w_i = n / (k * n_i) over the final train split, by class label."
    )
    report: SplitReport
    ledger: SplitLedger = Field(description="Where every group went, for the next run.")

    def splits(self) -> dict[str, list[Example]]:
        """The non-empty splits by name (test only when it has records)."""
        out = {"train": self.train, "val": self.val, "test": self.test}
        return {name: rows for name, rows in out.items() if rows or name != "test"}

    def split_of(self) -> dict[str, str]:
        """Example id -> split name."""
        return {ex.id: name for name, rows in self.splits().items() for ex in rows}

    def write_reports(
        self, out_dir: Path, *, prefix: str = "", rejects: bool = True
    ) -> dict[str, Path]:
        """Write ``<prefix>split_report.json``, ``class_weights.json`` and the split rejects.

        Args:
            out_dir: Folder to write into; created if missing.
            prefix: Prepended to each file name (``"instruct_dataset_"``).
            rejects: Also write ``<prefix>split_rejects.jsonl`` (empty when none).

        Returns:
            ``{"split_report": path, "class_weights": path}`` and ``"rejects"`` when written.
        """
        out_dir = Path(out_dir)
        paths = {
            "split_report": write_json(out_dir / f"{prefix}{SPLIT_REPORT_NAME}", self.report),
            "class_weights": write_json(out_dir / f"{prefix}{CLASS_WEIGHTS_NAME}",
                                        self.class_weights),
        }
        if rejects:
            paths["rejects"] = write_rejects(
                out_dir / f"{prefix}{SPLIT_REJECTS_NAME}", self.rejects
            )
        return paths


def class_key(example: Example) -> str:
    """The class an example counts under: its label, or `UNLABELLED`."""
    return example.label if example.label is not None else UNLABELLED


def class_weights(examples: Iterable[Example]) -> dict[str, float]:
    """Balanced class weights ``w_i = n / (k * n_i)`` (the scikit-learn "balanced" formula).

    Args:
        examples: Usually the final train split.

    Returns:
        Class label -> weight, sorted by label; classes absent from ``examples`` have none.
    """
    counts = Counter(class_key(ex) for ex in examples)
    n, k = sum(counts.values()), len(counts)
    return {label: n / (k * counts[label]) for label in sorted(counts)}


def split_examples(
    examples: Sequence[Example], config: SplitConfig | None = None,
    ledger: SplitLedger | None = None,
) -> SplitResult:
    """Split examples into train/val(/test): grouped, stratified, seeded.

    Args:
        examples: The examples; ids must be unique.
        config: Ratios, seed, stratification and grouping fields, small-class policy.
            ``None`` uses the `SplitConfig` defaults.
        ledger: Where earlier runs put each group (`geomas.split.ledger`): those groups keep
            their split and only new ones are placed. ``None`` or empty: a fresh split. The
            result carries the updated ledger either way.

    Returns:
        The splits (each in input order; oversampled duplicates at the end of train), rejects,
        class weights of the final train split and a report.

    Raises:
        InputError: ``examples`` is empty, ids repeat, a split with a non-zero ratio would be
            empty (too few groups; the message says how many there are), or the ledger was
            made with other ratios, seed or grouping.
    """
    cfg = config if config is not None else SplitConfig()
    if ledger is not None:
        ledger.check_compatible(cfg)
    if not examples:
        raise InputError("no examples to split; the input holds no valid records")
    _check_unique_ids(examples)

    kept, rejects, merged, dropped, small = _apply_policy(list(examples), cfg)
    if not kept:
        raise InputError(
            f"every example was dropped by min_samples_per_class={cfg.min_samples_per_class} "
            "(policy drop); lower the threshold or use policy merge_other"
        )
    ratios = {"train": cfg.train_ratio, "val": cfg.val_ratio, "test": cfg.test_ratio}
    strata = [class_key(ex) if cfg.stratify_by == "label" else "all" for ex in kept]
    groups = [ex.group if cfg.group_by == "group" else None for ex in kept]

    keys = [group_key(ex.id, g) for ex, g in zip(kept, groups, strict=True)]
    if ledger is not None and ledger.assignments:
        assignment, new = _assign_with_ledger(keys, strata, ratios, cfg.seed, ledger)
        folds = 0
    else:
        assignment, folds = _assign(kept, strata, groups, ratios, cfg.seed)
        new = dict(zip(keys, assignment, strict=True))
    updated = (ledger or SplitLedger.new(cfg)).model_copy(deep=True)
    updated.assignments.update(new)
    updated.assignments = dict(sorted(updated.assignments.items()))
    stamp(updated, [ex.id for ex in kept], new)
    placed: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for ex, split in zip(kept, assignment, strict=True):
        placed[split].append(ex)

    for name in ("val", "test"):
        if ratios[name] > 0 and not placed[name]:
            n_groups = len({g for g in groups if g is not None})
            raise InputError(
                f"the {name} split is empty: {len(kept)} records in {n_groups} groups cannot "
                f"give {name}_ratio={ratios[name]}; add documents, lower the ratio, or set "
                "group_by=None to split records of one document apart (they then leak "
                "between splits)"
            )

    oversampled: dict[str, int] = {}
    notes: list[str] = []
    if cfg.policy == "oversample_train" and small:
        extra, oversampled, notes = _oversample(placed["train"], small, cfg)
        placed["train"] = placed["train"] + extra

    weights = class_weights(placed["train"])
    report = _report(
        cfg, ratios, examples, kept, placed, groups, assignment, folds, rejects, merged,
        dropped, oversampled, notes,
    )
    report = report.model_copy(update={
        "ledger_groups": len(set(keys) - set(new)),
        "new_groups": {s: n for s, n in sorted(Counter(new.values()).items())},
    })
    if ledger is not None and ledger.assignments:
        logger.info("split: %d documents kept their split from the ledger; %d new: %s",
                    report.ledger_groups, len(new), report.new_groups or "none")
    for note in report.warnings:
        logger.warning("split: %s", note)
    for violation in report.share_violations:
        logger.warning(
            "Class %s: %.1f %% of %s vs %.1f %% overall (%s)",
            violation.label, 100 * violation.share, violation.split,
            100 * violation.overall_share, violation.explanation,
        )
    return SplitResult(
        train=placed["train"], val=placed["val"], test=placed["test"], rejects=rejects,
        class_weights=weights, report=report, ledger=updated,
    )


def split_with_ledger(
    examples: Sequence[Example], config: SplitConfig, ledger_path: Path
) -> SplitResult:
    """`split_examples` with the ledger at `ledger_path` read first and written after."""
    result = split_examples(examples, config, load_ledger(ledger_path, config))
    write_ledger(ledger_path, result.ledger)
    return result


def _assign_with_ledger(
    keys: list[str], strata: list[str], ratios: dict[str, float], seed: int,
    ledger: SplitLedger,
) -> tuple[list[SplitName], dict[str, SplitName]]:
    """Ledger groups keep their split; new groups go where their classes are short."""
    have: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    assignment: list[SplitName | None] = [None] * len(keys)
    new_groups: dict[str, Counter[str]] = defaultdict(Counter)
    for i, key in enumerate(keys):
        known = ledger.assignments.get(key)
        if known is not None:
            assignment[i] = known
            have[known][strata[i]] += 1
        else:
            new_groups[key][strata[i]] += 1
    new = place_new_groups(new_groups, have, ratios, seed)
    for i, key in enumerate(keys):
        if assignment[i] is None:
            assignment[i] = new[key]
    return cast(list[SplitName], assignment), cast(dict[str, SplitName], new)


def _check_unique_ids(examples: Sequence[Example]) -> None:
    counts = Counter(ex.id for ex in examples)
    repeated = [i for i, n in counts.items() if n > 1]
    if repeated:
        raise InputError(
            f"{len(repeated)} example ids occur more than once (e.g. {repeated[:3]}); ids must "
            "be unique so that splits and rejects can name their records"
        )


def _apply_policy(
    examples: list[Example], cfg: SplitConfig
) -> tuple[list[Example], list[Reject], dict[str, int], dict[str, int], set[str]]:
    """Merge, drop or mark the classes below ``min_samples_per_class``."""
    counts = Counter(class_key(ex) for ex in examples)
    n_min = cfg.min_samples_per_class
    small = {c for c, n in counts.items() if n_min and n < n_min}
    if cfg.policy == "merge_other":
        small.discard(cfg.other_label)  # merging "other" into itself changes nothing
    # The small classes a policy acts on, with their sizes, for the report.
    acted = {c: counts[c] for c in sorted(small)}
    merged = acted if cfg.policy == "merge_other" else {}
    dropped = acted if cfg.policy == "drop" else {}
    kept: list[Example] = []
    rejects: list[Reject] = []
    for ex in examples:
        key = class_key(ex)
        if key in dropped:
            rejects.append(Reject(
                id=ex.id, stage="split", rule="min_samples", label=ex.label, group=ex.group,
                reason=f"class {key!r} has {counts[key]} records, fewer than "
                       f"min_samples_per_class={n_min}",
            ))
        elif key in merged:
            meta = {**ex.meta, "original_label": ex.label}
            kept.append(ex.model_copy(update={"label": cfg.other_label, "meta": meta}))
        else:  # oversample_train keeps small classes as they are, duplicated in train later
            kept.append(ex)
    if merged:
        logger.info("Merged %d small classes into %r: %s", len(merged), cfg.other_label, merged)
    if dropped:
        logger.info("Dropped %d small classes: %s", len(dropped), dropped)
    return kept, rejects, merged, dropped, small


def _fold_plan(ratios: dict[str, float]) -> tuple[int, dict[str, int]]:
    """Folds ``k`` and folds per held-out split, so that each ratio is a multiple of 1/k."""
    held = {name: ratios[name] for name in ("val", "test") if ratios[name] > 0}

    def error(k: int) -> float:
        return sum(abs(r * k - round(r * k)) / k for r in held.values())

    # k folds fit when the held-out splits (at least one fold each) leave train a fold
    fitting = [
        k for k in range(2, MAX_FOLDS + 1) if sum(max(1, round(r * k)) for r in held.values()) < k
    ]
    if not fitting:
        raise InputError(
            f"val_ratio={ratios['val']} and test_ratio={ratios['test']} leave train less than "
            f"one fold of {MAX_FOLDS}; keep train at 10 % or more"
        )
    k = min(fitting, key=lambda k: (error(k) >= 1e-6, error(k), k))
    return k, {name: max(1, round(r * k)) for name, r in held.items()}


def _assign(
    examples: list[Example],
    strata: list[str],
    groups: list[str | None],
    ratios: dict[str, float],
    seed: int,
) -> tuple[list[SplitName], int]:
    """Split name per example (input order) and the number of folds used."""
    n = len(examples)
    group_sizes = Counter(g for g in groups if g is not None)
    grouped = [i for i, g in enumerate(groups) if g is not None and group_sizes[g] > 1]
    assignment: list[SplitName | None] = [None] * n
    k_used = 0
    if grouped:
        k_used = _assign_groups(grouped, strata, groups, ratios, seed, assignment)

    # Ungrouped records, per class, sorted by id so the input order does not matter.
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SPLITS, 0))
    totals = Counter(strata)
    loose: dict[str, list[int]] = defaultdict(list)
    for i, placed in enumerate(assignment):
        if placed is None:
            loose[strata[i]].append(i)
        else:
            counts[strata[i]][placed] += 1
    rng = random.Random(seed)
    for stratum in sorted(loose):
        members = sorted(loose[stratum], key=lambda i: examples[i].id)
        rng.shuffle(members)
        have = counts[stratum]
        for i in members:
            # The split furthest below its target count for this class; ties go to the split
            # with the larger ratio (train first), so small classes fill train before val.
            best = max(
                (s for s in SPLITS if ratios[s] > 0),
                key=lambda s: (ratios[s] * totals[stratum] - have[s], ratios[s]),
            )
            assignment[i] = best
            have[best] += 1
    return cast(list[SplitName], assignment), k_used


def _assign_groups(
    grouped: list[int],
    strata: list[str],
    groups: list[str | None],
    ratios: dict[str, float],
    seed: int,
    assignment: list[SplitName | None],
) -> int:
    """Place whole groups with StratifiedGroupKFold; returns the number of folds (0: none)."""
    from sklearn.model_selection import StratifiedGroupKFold

    group_keys = [str(groups[i]) for i in grouped]
    n_groups = len(set(group_keys))
    if n_groups < 2:
        for i in grouped:
            assignment[i] = "train"
        logger.info("Only one group with more than one record: it goes to train whole")
        return 0
    k_ideal, held = _fold_plan(ratios)
    k = min(k_ideal, n_groups)
    if k < k_ideal:
        held = {name: max(1, round(ratios[name] * k)) for name in held}
        while sum(held.values()) >= k:  # leave at least one fold for train
            largest = max(held, key=lambda s: (held[s], s))
            held[largest] -= 1
        logger.info(
            "%d groups are fewer than the %d folds the ratios need; using %d folds",
            n_groups, k_ideal, k,
        )
    labels, y = np.unique([strata[i] for i in grouped], return_inverse=True)
    class_sizes = np.bincount(y)
    if class_sizes.max() < k:
        # Every class is smaller than the number of folds: balance group sizes only.
        y = np.zeros_like(y)
    elif class_sizes.min() < k:
        logger.info(
            "Classes with fewer grouped records than %d folds cannot appear in every fold: %s",
            k, sorted(str(labels[c]) for c in np.flatnonzero(class_sizes < k)),
        )
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # Expected for small classes (logged above); not a problem: they go where they fit.
        warnings.filterwarnings(
            "ignore", message="The least populated class in y has only", category=UserWarning
        )
        folds = [
            test for _, test in splitter.split(np.zeros((len(grouped), 1)), y, group_keys)
        ]
    order = _choose_folds(folds, y, held)
    for split, fold_ids in order.items():
        for f in fold_ids:
            for j in folds[f]:
                assignment[grouped[j]] = split
    return k


def _choose_folds(
    folds: list[np.ndarray], y: np.ndarray, held: dict[str, int]
) -> dict[SplitName, list[int]]:
    """Pick the folds for val and test whose class shares and sizes best match the targets."""
    n_classes = int(y.max()) + 1
    overall = np.bincount(y, minlength=n_classes) / len(y)
    per_fold = [np.bincount(y[f], minlength=n_classes) for f in folds]
    k = len(folds)
    free = list(range(k))
    chosen: dict[SplitName, list[int]] = {"train": [], "val": [], "test": []}
    for split in ("val", "test"):
        want = held.get(split, 0)
        target = len(y) * want / k
        for _ in range(want):
            def cost(f: int, split: SplitName = split, target: float = target) -> float:
                counts = per_fold[f] + sum(
                    (per_fold[g] for g in chosen[split]), np.zeros(n_classes)
                )
                size = counts.sum()
                share_gap = float(np.abs(counts / max(size, 1) - overall).max())
                return share_gap + abs(size - target) / len(y)

            best = min(free, key=lambda f: (cost(f), f))
            chosen[split].append(best)
            free.remove(best)
    chosen["train"] = free
    return chosen


def _oversample(
    train: list[Example], small: set[str], cfg: SplitConfig
) -> tuple[list[Example], dict[str, int], list[str]]:
    """Duplicates of small classes' train records up to ``min_samples_per_class``."""
    by_class: dict[str, list[Example]] = defaultdict(list)
    for ex in train:
        if class_key(ex) in small:
            by_class[class_key(ex)].append(ex)
    rng = random.Random(cfg.seed)
    extra: list[Example] = []
    added: dict[str, int] = {}
    notes: list[str] = []
    for label in sorted(small):
        members = sorted(by_class.get(label, []), key=lambda ex: ex.id)
        if not members:
            notes.append(
                f"class {label!r} has no train records (its groups went to val/test): "
                "nothing to oversample"
            )
            continue
        rng.shuffle(members)
        need = cfg.min_samples_per_class - len(members)
        copies: Counter[str] = Counter()
        for j in range(need):
            src = members[j % len(members)]
            copies[src.id] += 1
            extra.append(src.model_copy(update={
                "id": f"{src.id}{OVERSAMPLE_SUFFIX}{copies[src.id]}",
                "meta": {**src.meta, "oversampled_from": src.id},
            }))
        if need > 0:
            added[label] = need
    return extra, added, notes


#: achieved split shares further than this from the asked ratio are reported
RATIO_TOLERANCE = 0.02


def _ratio_notes(cfg: SplitConfig, ratios: dict[str, float], effective: dict[str, float],
                 group_sizes: Counter[str], n_kept: int) -> list[str]:
    """Say where a split's share is off the asked ratio by more than 2 points, and why."""
    notes: list[str] = []
    top = group_sizes.most_common(1)
    for s in SPLITS:
        if ratios[s] <= 0 or abs(effective[s] - ratios[s]) <= RATIO_TOLERANCE:
            continue
        if top and top[0][1] / n_kept > RATIO_TOLERANCE:
            why = (f"records of one {cfg.group_by} stay in one split and {len(group_sizes)} "
                   f"groups are few: the largest, {top[0][0]!r}, holds {top[0][1] / n_kept:.0%} "
                   "of the records; add documents, or set split.group_by: null to split record "
                   "by record (leaks documents between splits)")
        else:
            why = (f"{n_kept} records and class stratification allow no closer split; add "
                   "records or lower min_samples_per_class")
        notes.append(f"{s} holds {effective[s]:.1%} of the records, asked {ratios[s]:.0%}: {why}")
    return notes


def _report(
    cfg: SplitConfig,
    ratios: dict[str, float],
    original: Sequence[Example],
    kept: list[Example],
    placed: dict[str, list[Example]],
    groups: list[str | None],
    assignment: list[SplitName],
    folds: int,
    rejects: list[Reject],
    merged: dict[str, int],
    dropped: dict[str, int],
    oversampled: dict[str, int],
    notes: list[str],
) -> SplitReport:
    n_kept = len(kept)
    totals = Counter(class_key(ex) for ex in kept)
    base_counts: dict[str, Counter[str]] = {s: Counter() for s in SPLITS}
    for ex, split in zip(kept, assignment, strict=True):
        base_counts[split][class_key(ex)] += 1
    final_counts = {s: Counter(class_key(ex) for ex in placed[s]) for s in SPLITS}
    sizes: dict[str, int] = {s: len(placed[s]) for s in SPLITS}
    group_members: dict[str, Counter[str]] = defaultdict(Counter)
    for ex, g in zip(kept, groups, strict=True):
        group_members[class_key(ex)][g if g is not None else f"\0{ex.id}"] += 1

    classes: dict[str, ClassSplitStats] = {}
    violations: list[ShareViolation] = []
    for label in sorted(totals):
        total = totals[label]
        overall = total / n_kept
        shares: dict[str, float] = {
            s: final_counts[s][label] / sizes[s] if sizes[s] else 0.0 for s in SPLITS
        }
        deviations = {s: abs(shares[s] - overall) for s in SPLITS if sizes[s]}
        members = group_members[label]
        largest = max(members.values()) / total
        classes[label] = ClassSplitStats(
            total=total,
            overall_share=overall,
            counts={s: final_counts[s][label] for s in SPLITS},
            shares=shares,
            split_fraction={s: base_counts[s][label] / total for s in SPLITS},
            max_share_deviation=max(deviations.values()),
            groups=len(members),
            largest_group_fraction=largest,
        )
        for s, dev in deviations.items():
            if dev > cfg.share_tolerance:
                violations.append(ShareViolation(
                    label=label, split=s, share=shares[s], overall_share=overall, deviation=dev,
                    explanation=_explain(label, s, largest, members, sizes[s], oversampled),
                ))
    for s in ("val", "test"):
        missing = [c for c in totals if totals[c] >= 2 and not base_counts[s][c]]
        if ratios[s] > 0 and missing:
            notes.append(f"{s} holds no records of {len(missing)} classes: {sorted(missing)}")
    group_sizes = Counter(g for g in groups if g is not None)
    effective: dict[str, float] = {s: sum(base_counts[s].values()) / n_kept for s in SPLITS}
    notes.extend(_ratio_notes(cfg, ratios, effective, group_sizes, n_kept))
    split_groups: dict[str, set[str]] = {s: set() for s in SPLITS}
    ungrouped: dict[str, int] = dict.fromkeys(SPLITS, 0)
    for g, s in zip(groups, assignment, strict=True):
        if g is None or group_sizes[g] == 1:
            ungrouped[s] += 1
        if g is not None:
            split_groups[s].add(g)
    return SplitReport(
        seed=cfg.seed,
        stratify_by=cfg.stratify_by,
        group_by=cfg.group_by,
        ratios=ratios,
        effective_ratios=effective,
        folds=folds,
        n_input=len(original),
        n_rejected=len(rejects),
        n_oversampled=sum(oversampled.values()),
        records=sizes,
        groups={s: len(split_groups[s]) for s in SPLITS},
        ungrouped=ungrouped,
        min_samples_per_class=cfg.min_samples_per_class,
        policy=cfg.policy,
        merged=merged,
        dropped=dropped,
        oversampled=oversampled,
        classes=classes,
        share_tolerance=cfg.share_tolerance,
        share_violations=violations,
        warnings=notes,
    )


def _explain(
    label: str,
    split: str,
    largest: float,
    members: Counter[str],
    split_size: int,
    oversampled: dict[str, int],
) -> str:
    if label in oversampled and split == "train":
        return f"{oversampled[label]} oversampled duplicates were added to train"
    biggest = max(members.values())
    return (
        f"the class's largest group holds {largest:.0%} of its records and groups never span "
        f"splits; one group of {biggest} records moves a share of {split} ({split_size} "
        f"records) by {biggest / max(split_size, 1):.1%}"
    )
