"""Paired comparison of two models scored on the same examples (the promotion gate's test).

A challenger's score on its own split and the champion's score recorded on another split are
not comparable: after new documents arrive the examples differ. Scored on the same examples,
the per-example differences say how much better the challenger is, and a seeded paired
bootstrap (scipy.stats.bootstrap over the differences) says whether that gain is more than
noise: promote only when the mean gain is at least the margin and the lower end of its
confidence interval is above zero.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

from geomas.errors import InputError


class PairedComparison(BaseModel):
    """Challenger vs champion on the same examples: means, gain and its interval."""

    metric: str
    n: int
    example_set_sha256: str = Field(description="sha256 of the sorted example ids.")
    challenger: float = Field(description="Challenger's mean score.")
    champion: float = Field(description="Champion's mean score on the same examples.")
    gain: float = Field(description="Mean per-example improvement (sign: better is positive).")
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    seed: int

    def beats(self, margin: float) -> bool:
        """Whether the gain is at least `margin` and its interval lies above zero."""
        return self.gain >= margin and self.ci_low > 0

    def explain(self, margin: float) -> str:
        """One line: the scores, the gain, its interval and the verdict."""
        verdict = ("beats the champion" if self.beats(margin) else
                   "gain below the margin" if self.gain < margin else
                   "gain within noise (interval reaches 0)")
        return (f"{self.metric} {self.challenger:.4g} vs champion {self.champion:.4g} on the same "
                f"{self.n} examples: gain {self.gain:+.4g}, {self.confidence:.0%} interval "
                f"[{self.ci_low:+.4g}, {self.ci_high:+.4g}], margin {margin:.4g}: {verdict}")


def example_set_hash(ids: Sequence[str]) -> str:
    """sha256 of the sorted example ids: names the example set a decision was made on."""
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


def compare_paired(
    ids: Sequence[str],
    challenger: Sequence[float],
    champion: Sequence[float],
    *,
    metric: str,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Mean gain of `challenger` over `champion` per example, with a bootstrap interval.

    Args:
        ids: Example ids, in the order of both score lists.
        challenger: The challenger's per-example scores.
        champion: The champion's per-example scores on the same examples.
        metric: Name of the score, for the record.
        higher_is_better: Direction of the metric.
        confidence: Confidence level of the interval.
        resamples: Bootstrap resamples.
        seed: Seed of the resampling (the same inputs give the same interval).

    Raises:
        InputError: the lists differ in length, are empty, or ids repeat.
    """
    from scipy.stats import bootstrap

    if not (len(ids) == len(challenger) == len(champion)) or not ids:
        raise InputError(f"paired scores need one challenger and one champion score per example "
                         f"({len(ids)} ids, {len(challenger)} and {len(champion)} scores)")
    if len(set(ids)) != len(ids):
        raise InputError("paired scores: example ids repeat; each example must be scored once")
    sign = 1.0 if higher_is_better else -1.0
    diffs = sign * (np.asarray(challenger, dtype=float) - np.asarray(champion, dtype=float))
    gain = float(diffs.mean())
    if len(diffs) < 2 or float(np.ptp(diffs)) == 0.0:
        low = high = gain  # no spread: the interval is the point
    else:
        res = bootstrap((diffs,), np.mean, confidence_level=confidence, n_resamples=resamples,
                        method="percentile", rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return PairedComparison(
        metric=metric, n=len(diffs), example_set_sha256=example_set_hash(ids),
        challenger=float(np.mean(challenger)), champion=float(np.mean(champion)), gain=gain,
        ci_low=low, ci_high=high, confidence=confidence, resamples=resamples, seed=seed)
