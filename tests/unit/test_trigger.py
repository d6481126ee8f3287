"""geomas.trigger.decide: thresholds against the champion's data watermark (no side effects)."""

from __future__ import annotations

from pathlib import Path

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


def test_watermark_is_the_documents_behind_the_train_files(tmp_path: Path) -> None:
    """A data run stopped after ingest: documents.json lists 45 documents, the last complete
    dataset (qa_pairs.json, train/val/test files) covers 35. The version trained on those files
    claims 35, and the 10 it never saw count as new for the next retrain check."""
    import json

    from geomas.formats import Example, write_examples
    from geomas.trigger.watermark import files_watermark

    docs = [f"doc{i:02d}" for i in range(45)]
    used = docs[:35]
    out = tmp_path
    (out / "documents.json").write_text(json.dumps(
        [{"doc_id": d, "status": "parsed"} for d in docs]), encoding="utf-8")
    pairs = [{"qa_id": f"{d}-{k}", "doc_id": d, "question": "В?", "answer": "О"}
             for d in used for k in range(3)]
    (out / "qa_pairs.json").write_text(json.dumps(pairs), encoding="utf-8")
    examples = [Example(id=p["qa_id"], instruction="В?", output="О", label="X", group=p["doc_id"],
                        meta={"doc_id": p["doc_id"]}) for p in pairs]
    files = []
    for name, part in (("train", examples[:75]), ("val", examples[75:90]),
                       ("test", examples[90:])):
        files.append(write_examples(part, out / f"instruct_dataset_{name}.json", "alpaca",
                                    False).path)
    mark = files_watermark(files, out)
    assert mark.doc_ids == tuple(used) and mark.qa_pairs == 105
    # the train file alone names fewer documents: lineage is per file, not a folder listing
    assert files_watermark(files[:1], out).docs == 25
    corpus = Watermark(doc_ids=tuple(docs), qa_pairs=135)
    decision = decide(corpus, mark, RetrainConfig(min_new_docs=10))
    assert decision.new_docs == 10 and decision.outcome == "launch"
