"""`clean_examples`: normalise, filter and deduplicate instruction examples, with rejects."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from geomas.clean.dedup import exact_duplicates, near_duplicates
from geomas.clean.diversity import DiversityReport, diversity_report
from geomas.clean.normalize import Normalizer
from geomas.clean.rules import (
    EXACT_DUP,
    NEAR_DUP,
    NORMALIZE,
    RULE_ORDER,
    Record,
    build_filters,
)
from geomas.config import CleanConfig
from geomas.formats.example import Example
from geomas.records import Reject

log = logging.getLogger(__name__)


@dataclass
class CleanResult:
    """What `clean_examples` kept and removed, and why.

    Attributes:
        kept: The records that passed, in input order, normalised, with their ids and meta.
        rejects: One per removed record: stage "clean", ``rule``, ``reason``, ``id`` and, for
            the dedup rules, ``duplicate_of`` (the id of the kept record).
        counts: Per rule in `RULE_ORDER`: records removed; for ``normalize``, records changed.
        normalization: What normalisation did (records changed, furniture lines removed,
            words de-hyphenated, hyphens kept at line breaks).
        diversity: Instruction diversity of the kept records.
        n_input: Number of input records (== len(kept) + len(rejects)).
        seconds: Wall time per phase (normalize, filters, exact_dup, near_dup).
        warnings: Problems that did not stop cleaning, e.g. ids that are not unique.
    """

    kept: list[Example]
    rejects: list[Reject]
    counts: dict[str, int]
    normalization: dict[str, int]
    diversity: DiversityReport
    n_input: int
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def removed(self) -> dict[str, int]:
        """Records removed per rule (the counts without ``normalize``)."""
        return {rule: n for rule, n in self.counts.items() if rule != NORMALIZE}


def _reject(rule: str, ex: Example, reason: str, duplicate_of: str | None = None) -> Reject:
    return Reject(stage="clean", rule=rule, reason=reason, id=ex.id, duplicate_of=duplicate_of)


def clean_examples(examples: Sequence[Example], config: CleanConfig) -> CleanResult:
    """Normalise, filter and deduplicate examples; every removed record gets a reason.

    Rules run in `RULE_ORDER`: ``normalize`` (changes text, removes nothing), the filters
    ``empty``, ``length``, ``script``, ``garbage``, ``grounding``, ``profile`` (a record is
    judged by the first filter it fails), then ``exact_dup`` and ``near_dup`` among the
    records that passed the filters, where the first occurrence wins.

    Args:
        examples: Records in their dataset order.
        config: Cleaning settings; ``config.profile`` selects the per-profile ones.

    Returns:
        Kept records, rejects, per-rule counts, normalisation figures and diversity report.
    """
    seconds: dict[str, float] = {}
    warnings: list[str] = []
    id_counts = Counter(ex.id for ex in examples)
    repeated_ids = [i for i, n in id_counts.items() if n > 1]
    if repeated_ids:
        warnings.append(
            f"{len(repeated_ids)} ids occur more than once (e.g. {repeated_ids[0]!r}); "
            "duplicate_of may be ambiguous — merge_datasets makes ids unique"
        )
        log.warning(warnings[-1])

    t = time.perf_counter()
    normalizer = Normalizer(config)
    records = normalizer.normalize(examples)
    seconds[NORMALIZE] = time.perf_counter() - t

    counts = dict.fromkeys(RULE_ORDER, 0)
    counts[NORMALIZE] = normalizer.stats.records_changed
    rejects: list[Reject] = []

    t = time.perf_counter()
    filters = build_filters(config)
    alive: list[Example] = []
    for record in Record.batch(records):
        ex = record.ex
        for rule, check in filters:
            reason = check(record)
            if reason is not None:
                rejects.append(_reject(rule, ex, reason))
                counts[rule] += 1
                break
        else:
            alive.append(ex)
    seconds["filters"] = time.perf_counter() - t

    if config.exact_dedup:
        t = time.perf_counter()
        exact = exact_duplicates([(ex.instruction, ex.input, ex.output) for ex in alive])
        for i, j in exact.items():
            rejects.append(_reject(
                EXACT_DUP, alive[i],
                "same instruction, input and output (ignoring case and spacing) as "
                f"{alive[j].id!r}",
                alive[j].id,
            ))
        counts[EXACT_DUP] = len(exact)
        alive = [ex for i, ex in enumerate(alive) if i not in exact]
        seconds[EXACT_DUP] = time.perf_counter() - t

    if config.near_dedup and alive:
        t = time.perf_counter()
        near = near_duplicates(
            [(ex.instruction, ex.input, ex.output) for ex in alive],
            threshold=config.near_dup_threshold,
            num_perm=config.near_dup_num_perm,
            shingle_words=config.near_dup_shingle_words,
            question_or_answer=config.near_dup_question_or_answer,
            seed=config.near_dup_seed,
        )
        for i, dup in near.items():
            parts = "".join(
                f", {name} {value:.2f}"
                for name, value in (("question", dup.question_similarity),
                                    ("answer", dup.answer_similarity))
                if value is not None
            )
            rejects.append(_reject(
                NEAR_DUP, alive[i],
                f"near-duplicate of {alive[dup.of].id!r}: Jaccard {dup.similarity:.2f} of "
                f"{config.near_dup_shingle_words}-word shingles{parts} "
                f"(near_dup_threshold={config.near_dup_threshold:g})",
                alive[dup.of].id,
            ))
        counts[NEAR_DUP] = len(near)
        alive = [ex for i, ex in enumerate(alive) if i not in near]
        seconds[NEAR_DUP] = time.perf_counter() - t

    result = CleanResult(
        kept=alive,
        rejects=rejects,
        counts=counts,
        normalization=asdict(normalizer.stats),
        diversity=diversity_report(alive, config.diversity_top),
        n_input=len(examples),
        seconds={k: round(v, 3) for k, v in seconds.items()},
        warnings=warnings,
    )
    log.info(
        "cleaned %d records (%s profile): kept %d, removed %s",
        len(examples), config.profile, len(alive),
        ", ".join(f"{r} {n}" for r, n in result.removed.items() if n) or "none",
    )
    return result
