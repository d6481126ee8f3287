"""geomas.trigger.decide: thresholds against the champion's data watermark (no side effects)."""

from __future__ import annotations

from geomas.config import RetrainConfig
from geomas.trigger import Watermark, decide


def _mark(n: int, qa: int | None = None, start: int = 0) -> Watermark:
    return Watermark(doc_ids=tuple(f"{i:064x}" for i in range(start, start + n)), qa_pairs=qa)


def test_absolute_threshold_counts_only_documents_the_champion_did_not_see() -> None:
    champion = _mark(10)
    # 12 docs now, but 2 of the champion's were removed: 4 are new
    current = Watermark(doc_ids=_mark(8).doc_ids + _mark(4, start=100).doc_ids)
    assert decide(current, champion, RetrainConfig(min_new_docs=5)).outcome == "skip"
    decision = decide(current, champion, RetrainConfig(min_new_docs=4))
    assert decision.outcome == "launch" and decision.new_docs == 4
    assert decision.new_docs_ratio == 0.4


def test_relative_and_qa_thresholds_with_any_or_all() -> None:
    champion, current = _mark(10, qa=100), _mark(13, qa=130)
    ratio = RetrainConfig(min_new_docs=None, min_new_docs_ratio=0.25)
    assert decide(current, champion, ratio).outcome == "launch"  # 30 % >= 25 %
    qa = RetrainConfig(min_new_docs=None, min_new_qa_pairs=40)
    assert decide(current, champion, qa).outcome == "skip"  # 30 < 40
    both_any = RetrainConfig(min_new_docs=3, min_new_qa_pairs=40, require="any")
    both_all = RetrainConfig(min_new_docs=3, min_new_qa_pairs=40, require="all")
    assert decide(current, champion, both_any).outcome == "launch"
    assert decide(current, champion, both_all).outcome == "skip"


def test_unknown_qa_count_never_meets_a_qa_threshold() -> None:
    config = RetrainConfig(min_new_docs=None, min_new_qa_pairs=1)
    decision = decide(_mark(5, qa=None), _mark(5, qa=10), config)
    assert decision.outcome == "skip" and "unknown" in decision.reason


def test_no_champion() -> None:
    assert decide(_mark(3), None, RetrainConfig()).outcome == "launch"
    assert decide(_mark(0), None, RetrainConfig()).outcome == "skip"
    off = RetrainConfig(train_without_champion=False)
    assert decide(_mark(3), None, off).outcome == "skip"


def test_data_hash_is_order_free_and_content_bound() -> None:
    a = Watermark(doc_ids=("b" * 64, "a" * 64, "a" * 64))
    b = Watermark(doc_ids=("a" * 64, "b" * 64))
    assert a.data_hash == b.data_hash and a.docs == 2
    assert a.data_hash != Watermark(doc_ids=("a" * 64,)).data_hash
