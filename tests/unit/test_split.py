"""Grouped, stratified, seeded splits: group isolation, class shares, policies, class weights."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from geomas.config import FormatConfig, SplitConfig
from geomas.errors import InputError
from geomas.formats import Example
from geomas.split import UNLABELLED, SplitResult, class_weights, split_examples

GEO_TYPES = [
    "GENERAL_INFO", "ORE_COMPONENT", "RESOURCE_POTENTIAL", "ORE_FORMATION", "MINERALOGICAL",
    "TECHNOLOGICAL", "STRATIGRAPHY", "STRUCTURAL_TECTONIC", "ORE_BODIES", "ORE_COMPOSITION",
    "GEODYNAMIC", "GEO_CHEMICAL", "METALLOGENIC_CHAR", "METASOMATIC", "FORMATION_CONDITIONS",
    "STUDY_INFO", "INFO_SOURCES",
]


def corpus(seed: int, *, n_classes: int = 17, lo: int = 20, hi: int = 300) -> list[Example]:
    """QA examples as geology reports give them.

    Each class has 20-300 records; each document (group) holds 5-30 records, most of them from
    2-4 entity types the document is about, the rest from any type.
    """
    rng = random.Random(seed)
    left = {GEO_TYPES[c]: rng.randint(lo, hi) for c in range(n_classes)}
    examples: list[Example] = []
    doc = 0
    while any(left.values()):
        size = rng.randint(5, 30)
        topics = rng.sample([c for c, n in left.items() if n], k=min(rng.randint(2, 4), sum(
            1 for n in left.values() if n)))
        for _ in range(size):
            available = [c for c, n in left.items() if n]
            if not available:
                break
            preferred = [c for c in topics if left[c]]
            label = rng.choice(preferred) if preferred and rng.random() < 0.7 else rng.choice(
                available)
            left[label] -= 1
            examples.append(Example(
                id=f"qa-{len(examples):05d}",
                instruction=f"Опиши ... \n\nВопрос: {label} №{len(examples)}?",
                input="Фрагмент отчёта.",
                output="Ответ.",
                label=label,
                group=f"doc-{doc:04d}",
                meta={"doc_id": f"doc-{doc:04d}"},
            ))
        doc += 1
    return examples


def by_id(result: SplitResult) -> dict[str, str]:
    return result.split_of()


def groups_of(rows: list[Example]) -> set[str | None]:
    return {ex.group for ex in rows}


RATIOS = [(0.2, 0.0), (0.1, 0.1), (0.1, 0.0)]


@pytest.mark.parametrize(("val", "test"), RATIOS, ids=["80-20", "80-10-10", "90-10"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_group_in_two_splits_and_class_shares_within_5_points(
    seed: int, val: float, test: float
) -> None:
    examples = corpus(seed)
    cfg = SplitConfig(val_ratio=val, test_ratio=test, seed=seed, min_samples_per_class=0)
    result = split_examples(examples, cfg)
    splits = result.splits()
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert groups_of(splits[a]).isdisjoint(groups_of(splits[b])), (a, b)
    assert sorted(ex.id for rows in splits.values() for ex in rows) == sorted(
        ex.id for ex in examples
    )
    n = len(examples)
    overall = Counter(ex.label for ex in examples)
    for name, rows in splits.items():
        counts = Counter(ex.label for ex in rows)
        for label, total in overall.items():
            assert total >= 20
            gap = abs(counts[label] / len(rows) - total / n)
            assert gap <= 0.05, (name, label, gap)
    # sizes follow the ratios to within one typical document
    assert abs(len(result.val) - val * n) <= 30
    assert abs(len(result.test) - test * n) <= 30
    assert result.report.share_violations == []


def test_split_is_seeded_and_independent_of_input_order() -> None:
    examples = corpus(5)
    cfg = SplitConfig(val_ratio=0.2, seed=11)
    first = split_examples(examples, cfg)
    again = split_examples(examples, cfg)
    shuffled = examples[:]
    random.Random(0).shuffle(shuffled)
    reordered = split_examples(shuffled, cfg)
    assert by_id(first) == by_id(again) == by_id(reordered)
    assert [ex.id for ex in first.val] == [ex.id for ex in again.val]
    other = split_examples(examples, SplitConfig(val_ratio=0.2, seed=12))
    assert by_id(other) != by_id(first)


def test_ungrouped_and_unlabelled_records() -> None:
    rng = random.Random(3)
    examples = [
        Example(id=f"r{i}", instruction="В", output="О", label=rng.choice(["A", "B", "C", None]))
        for i in range(1000)
    ]
    result = split_examples(examples, SplitConfig(val_ratio=0.2, test_ratio=0.0,
                                                             min_samples_per_class=0))
    assert len(result.val) == 200 and result.report.folds == 0
    assert result.report.ungrouped == {"train": 800, "val": 200, "test": 0}
    overall = Counter(ex.label for ex in examples)
    val = Counter(ex.label for ex in result.val)
    for label, total in overall.items():  # placed one by one: exact up to rounding
        assert abs(val[label] - 0.2 * total) <= 1
    assert UNLABELLED in result.class_weights and UNLABELLED in result.report.classes


def test_group_by_none_splits_records_of_one_document() -> None:
    examples = [
        Example(id=f"r{i}", instruction="В", output="О", label="A" if i % 2 else "B", group="doc")
        for i in range(50)
    ]
    with pytest.raises(InputError, match="val split is empty.*group_by=None"):
        split_examples(examples, SplitConfig(val_ratio=0.2))
    result = split_examples(examples, SplitConfig(val_ratio=0.2, group_by=None))
    assert len(result.val) == 10


def test_few_groups_use_fewer_folds() -> None:
    examples = [
        Example(id=f"r{i}", instruction="В", output="О", label="A", group=f"doc{i % 4}")
        for i in range(40)
    ]
    result = split_examples(examples, SplitConfig(val_ratio=0.1))  # 10 folds wanted, 4 groups
    assert result.report.folds == 4
    assert len(result.val) == 10 and len(groups_of(result.val)) == 1


def test_merge_other_policy() -> None:
    examples = corpus(1, n_classes=5)
    examples += [
        Example(id=f"rare-{i}", instruction="В", output="О", label="RARE_A", group=f"rare-doc{i}")
        for i in range(4)
    ] + [
        Example(id=f"tiny-{i}", instruction="В", output="О", label="RARE_B", group="tiny-doc")
        for i in range(3)
    ]
    cfg = SplitConfig(val_ratio=0.2, test_ratio=0.0, min_samples_per_class=10,
                      policy="merge_other")
    result = split_examples(examples, cfg)
    everything = result.train + result.val
    assert not {"RARE_A", "RARE_B"} & {ex.label for ex in everything}
    merged = [ex for ex in everything if ex.label == "other"]
    assert len(merged) == 7
    assert Counter(ex.meta["original_label"] for ex in merged) == {"RARE_A": 4, "RARE_B": 3}
    assert result.report.merged == {"RARE_A": 4, "RARE_B": 3}
    assert result.rejects == [] and "other" in result.class_weights


def test_drop_policy_rejects_with_rule_min_samples() -> None:
    examples = corpus(2, n_classes=4) + [
        Example(id=f"rare-{i}", instruction="В", output="О", label="RARE", group=f"d{i}")
        for i in range(5)
    ]
    result = split_examples(
        examples, SplitConfig(val_ratio=0.2, min_samples_per_class=6, policy="drop")
    )
    assert {r.id for r in result.rejects} == {f"rare-{i}" for i in range(5)}
    assert {r.rule for r in result.rejects} == {"min_samples"}
    assert all(r.stage == "split" and "fewer than min_samples_per_class=6" in r.reason
               for r in result.rejects)
    assert "RARE" not in result.class_weights and result.report.dropped == {"RARE": 5}
    assert result.report.n_rejected == 5


def test_oversample_policy_touches_train_only() -> None:
    examples = corpus(4, n_classes=5) + [
        Example(id=f"rare-{i}", instruction="В", output="О", label="RARE", group=None)
        for i in range(6)
    ]
    cfg = SplitConfig(val_ratio=0.2, test_ratio=0.0, min_samples_per_class=15,
                      policy="oversample_train")
    result = split_examples(examples, cfg)
    train_rare = [ex for ex in result.train if ex.label == "RARE"]
    val_rare = [ex for ex in result.val if ex.label == "RARE"]
    originals = [ex for ex in train_rare if "oversampled_from" not in ex.meta]
    copies = [ex for ex in train_rare if "oversampled_from" in ex.meta]
    assert len(originals) + len(val_rare) == 6 and len(val_rare) >= 1  # val keeps its share
    assert len(train_rare) == 15  # topped up to min_samples_per_class
    assert all("oversampled_from" not in ex.meta for ex in result.val)
    original_ids = {ex.id for ex in originals}
    for copy in copies:
        source = copy.meta["oversampled_from"]
        assert source in original_ids and copy.id.startswith(f"{source}__os")
    assert len({ex.id for ex in result.train}) == len(result.train)  # ids stay unique
    assert result.report.oversampled == {"RARE": len(copies)}
    assert result.report.n_oversampled == len(copies)
    assert result.class_weights == class_weights(result.train)


def test_class_weights_formula_on_final_train() -> None:
    examples = (
        [Example(id=f"a{i}", instruction="В", output="О", label="A") for i in range(60)]
        + [Example(id=f"b{i}", instruction="В", output="О", label="B") for i in range(30)]
        + [Example(id=f"c{i}", instruction="В", output="О", label="C") for i in range(10)]
    )
    assert class_weights(examples) == pytest.approx({
        "A": 100 / (3 * 60), "B": 100 / (3 * 30), "C": 100 / (3 * 10),
    })
    result = split_examples(examples, SplitConfig(val_ratio=0.1, min_samples_per_class=0))
    train = Counter(str(ex.label) for ex in result.train)
    n, k = len(result.train), len(train)
    assert result.class_weights == pytest.approx({c: n / (k * m) for c, m in train.items()})
    weighted = sum(result.class_weights[c] * m for c, m in train.items())
    assert weighted == pytest.approx(n)  # balanced weights keep the total loss scale


def test_reports_are_written(tmp_path: Path) -> None:
    result = split_examples(corpus(6), SplitConfig(val_ratio=0.2, test_ratio=0.1))
    paths = result.write_reports(tmp_path)
    assert {p.name for p in paths.values()} == {
        "split_report.json", "class_weights.json", "split_rejects.jsonl",
    }
    report = json.loads(paths["split_report"].read_text(encoding="utf-8"))
    weights = json.loads(paths["class_weights"].read_text(encoding="utf-8"))
    assert weights == pytest.approx(result.class_weights)
    label = "ORE_COMPONENT"
    stats = report["classes"][label]
    for split in ("train", "val", "test"):
        rows = getattr(result, split)
        count = sum(1 for ex in rows if ex.label == label)
        assert stats["counts"][split] == count
        assert stats["shares"][split] == pytest.approx(count / len(rows))
    assert report["records"] == {s: len(getattr(result, s)) for s in ("train", "val", "test")}
    assert report["folds"] == 10 and report["seed"] == 42
    assert paths["rejects"].read_text(encoding="utf-8") == ""


def test_a_class_held_by_one_document_is_explained() -> None:
    examples = corpus(7, n_classes=6)
    examples += [
        Example(id=f"big-{i}", instruction="В", output="О", label="CONCENTRATED", group="one-doc")
        for i in range(120)
    ]
    result = split_examples(examples, SplitConfig(val_ratio=0.2))
    violations = [v for v in result.report.share_violations if v.label == "CONCENTRATED"]
    assert violations, "one document holding a whole class cannot be stratified"
    assert "largest group holds 100%" in violations[0].explanation
    assert result.report.classes["CONCENTRATED"].largest_group_fraction == 1.0


def test_config_rules() -> None:
    with pytest.raises(ValueError, match="leaves no records for training"):
        SplitConfig(val_ratio=0.6, test_ratio=0.4)
    assert FormatConfig(split_ratio=0.9).split_config().val_ratio == pytest.approx(0.1)
    cfg = FormatConfig(split_ratio=0.8).split_config(SplitConfig(test_ratio=0.1))
    assert (cfg.val_ratio, cfg.test_ratio) == pytest.approx((0.1, 0.1))
    with pytest.raises(ValueError, match="no records for validation"):
        FormatConfig(split_ratio=0.9).split_config(SplitConfig(test_ratio=0.1))


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="no examples"):
        split_examples([])
    twice = [Example(id="same", instruction="В", output="О")] * 2
    with pytest.raises(InputError, match="more than once"):
        split_examples(twice)


def test_a_split_far_from_its_ratio_is_reported_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # one document holds most records: grouping cannot reach 90/10
    examples = [Example(id=f"r{i}", instruction="В", output="О", label="A",
                        group="big" if i < 38 else f"doc{i}") for i in range(40)]
    with caplog.at_level("WARNING", logger="geomas.split.core"):
        result = split_examples(examples, SplitConfig(val_ratio=0.1, test_ratio=0.0))
    ratios = result.report.effective_ratios
    assert abs(ratios["val"] - 0.1) > 0.02 or abs(ratios["train"] - 0.9) > 0.02
    notes = [w for w in result.report.warnings if "asked" in w]
    assert notes and "'big'" in notes[0] and "95%" in notes[0]
    assert any("'big'" in r.getMessage() for r in caplog.records)
    # a split that reaches its ratio says nothing
    even = [Example(id=f"r{i}", instruction="В", output="О", label="A", group=f"doc{i}")
            for i in range(100)]
    fine = split_examples(even, SplitConfig(val_ratio=0.1, test_ratio=0.0))
    assert not [w for w in fine.report.warnings if "asked" in w]


def _check_growth(old: list[Example], grown: list[Example], cfg: SplitConfig,
                  tmp_path: Path) -> SplitResult:
    """Split `old`, then `grown` (old + new documents) with the ledger; check the promises."""
    from geomas.split import LEDGER_NAME, split_with_ledger

    ledger = tmp_path / LEDGER_NAME
    first = split_with_ledger(old, cfg, ledger)
    assert ledger.is_file() and first.report.ledger_groups == 0
    second = split_with_ledger(grown, cfg, ledger)
    before, after = by_id(first), by_id(second)
    # every old document keeps its split
    assert all(after[i] == s for i, s in before.items())
    # no document spans two splits
    doc_split: dict[str | None, set[str]] = {}
    for ex in grown:
        doc_split.setdefault(ex.group, set()).add(after[ex.id])
    assert all(len(s) == 1 for s in doc_split.values())
    # the report says how many documents were new and where they went
    new_docs = {ex.group for ex in grown} - {ex.group for ex in old}
    assert sum(second.report.new_groups.values()) == len(new_docs)
    assert second.report.ledger_groups == len({ex.group for ex in old})
    assert len(second.ledger.history) == 2
    # a third run with nothing new moves nothing and adds no history
    third = split_with_ledger(grown, cfg, ledger)
    assert by_id(third) == after and third.report.new_groups == {}
    assert len(third.ledger.history) == 2
    return second


@pytest.mark.parametrize("seed", [0, 1])
def test_old_documents_keep_their_split_when_30_percent_new_arrive(
    seed: int, tmp_path: Path
) -> None:
    examples = corpus(seed)
    docs = sorted({ex.group for ex in examples if ex.group})
    new = set(random.Random(seed).sample(docs, k=round(0.3 * len(docs))))
    old = [ex for ex in examples if ex.group not in new]
    cfg = SplitConfig(val_ratio=0.1, test_ratio=0.1, seed=seed, min_samples_per_class=0)
    second = _check_growth(old, examples, cfg, tmp_path)
    n = len(examples)
    overall = Counter(ex.label for ex in examples)
    for name, rows in second.splits().items():
        counts = Counter(ex.label for ex in rows)
        for label, total in overall.items():
            gap = abs(counts[label] / len(rows) - total / n)
            assert gap <= cfg.share_tolerance, (name, label, gap)
    assert abs(len(second.val) - 0.1 * n) <= 30 and abs(len(second.test) - 0.1 * n) <= 30


def test_sample_corpus_grows_and_old_documents_stay(tmp_path: Path) -> None:
    from geomas.ner.extract import ChunkEntities, ChunkEntity, EntitySet
    from geomas.qa.generate import ChunkRecord, QAGenerator
    from geomas.qa.records import qa_to_example
    from geomas.sample import generate_sample_corpus

    generate_sample_corpus(tmp_path / "corpus", docs=30, seed=3)
    tasks = json.loads((tmp_path / "corpus" / "annotations" / "label_studio_export.json")
                       .read_text(encoding="utf-8"))
    chunks, items = [], []
    for task in tasks:
        cid, doc = f"task-{task['id']}", task["data"]["doc_name"]
        chunks.append(ChunkRecord(chunk_id=cid, doc_id=doc, text=task["data"]["text"]))
        items.append(ChunkEntities(chunk_id=cid, doc_id=doc, entities=[
            ChunkEntity(label=r["value"]["labels"][0], text=r["value"]["text"], confidence=1.0,
                        start=r["value"]["start"], end=r["value"]["end"])
            for r in task["annotations"][0]["result"]]))
    pairs = QAGenerator().generate(chunks, EntitySet(model_path=None, items=items)).pairs
    examples = [qa_to_example(p) for p in pairs]
    docs = sorted({ex.group for ex in examples if ex.group})
    assert len(docs) == 30
    new = set(docs[-9:])  # the last 9 of 30 reports arrive later: 30 %
    old = [ex for ex in examples if ex.group not in new]
    cfg = SplitConfig(val_ratio=0.15, test_ratio=0.15, seed=0)
    second = _check_growth(old, examples, cfg, tmp_path)
    assert second.report.share_violations == [], second.report.share_violations


def test_ledger_refuses_other_ratios_and_bad_files(tmp_path: Path) -> None:
    from geomas.split import LEDGER_NAME, load_ledger, split_with_ledger

    examples = corpus(0, n_classes=5)
    cfg = SplitConfig(val_ratio=0.1, test_ratio=0.1, min_samples_per_class=0)
    ledger = tmp_path / LEDGER_NAME
    split_with_ledger(examples, cfg, ledger)
    other = SplitConfig(val_ratio=0.2, test_ratio=0.1, min_samples_per_class=0)
    with pytest.raises(InputError, match=r"split_assignments.json.*val 0.1 -> 0.2.*delete"):
        split_with_ledger(examples, other, ledger)
    ledger.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not a split ledger"):
        load_ledger(ledger)
