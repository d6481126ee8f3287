"""The promotion gate on real trained adapters (slow: five QLoRA runs of a tiny LM, ~2.5 min).

The gate's logic is tested on given per-example scores in tests/unit/test_registry.py; here
the scores come from real training: tiny LoRA adapters are trained with `train_sft`, scored
with `evaluate_adapter` (which downloads the registry champion and re-scores it on the same
test examples), registered in a real MLflow store and judged by `gate`, as the training
pipeline's steps do.

The data: closed-book questions about deposits whose answers follow from the question (the
region from the nearest town, the main metal from the deposit's kind: learnable, "easy") and
the year of discovery (random per document: nobody can know it, "hard"). The base model read
statements of the same kind in pre-training but was never asked questions.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geomas.config import EvalConfig, PromotionConfig, SplitConfig, TrainSFTConfig
from geomas.formats import Example

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOWNS = {"Магадан": "Магаданская область", "Анадырь": "Чукотский автономный округ",
         "Благовещенск": "Амурская область", "Хабаровск": "Хабаровский край",
         "Якутск": "Республика Саха (Якутия)", "Чита": "Забайкальский край",
         "Иркутск": "Иркутская область", "Петропавловск-Камчатский": "Камчатский край"}
KINDS = {"золоторудное": "Золото", "серебряное": "Серебро", "медное": "Медь",
         "молибденовое": "Молибден", "вольфрамовое": "Вольфрам", "оловянное": "Олово"}
STEMS = ("Павлик", "Барань", "Озерн", "Токур", "Кубак", "Дукат", "Купол", "Майск", "Наталк",
         "Родионов", "Светл", "Кедр", "Берёз", "Лугов", "Сопк", "Ключев", "Горн", "Таёжн",
         "Речн", "Ледян", "Тундр", "Каменск", "Медвеж", "Соболин", "Лисьев", "Орлин")
SPLIT = SplitConfig(val_ratio=0.15, test_ratio=0.25)
GATE = PromotionConfig(metric="token_f1", margin=0.01, forgetting_metric=None)
EVAL = EvalConfig(max_new_tokens=16, sample_generations=4)
STRONG = {"num_train_epochs": 24, "learning_rate": 3e-3}
WEAK = {"num_train_epochs": 8, "learning_rate": 3e-3}


ALL = ("REGION", "METAL", "COUNTRY", "YEAR")


def _document(doc_id: str, rng: random.Random, asks: tuple[str, ...] = ALL) -> list[Example]:
    """A report's questions: region (from the town) and metal (from the deposit's kind) are
    learnable, the country is the same for all (every trained model learns it), the year of
    discovery is random (nobody can know it)."""
    name = rng.choice(STEMS) + "ское"
    town, kind = rng.choice(sorted(TOWNS)), rng.choice(sorted(KINDS))
    qa = {"REGION": (f"В каком регионе находится {name} месторождение (район г. {town})?",
                     f"{TOWNS[town]}."),
          "METAL": (f"Какой основной металл добывают на {name[:-2]}ом месторождении, если оно "
                    f"{kind}?", f"{KINDS[kind]}."),
          "COUNTRY": (f"В какой стране находится {name} месторождение?", "Россия."),
          "YEAR": (f"В каком году открыто {name} месторождение?", str(rng.randint(1950, 1995)))}
    return [Example(id=f"{doc_id}-{label.lower()}", instruction=qa[label][0],
                    output=qa[label][1], label=label, group=doc_id, meta={"doc_id": doc_id})
            for label in asks]


def _statements(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, town = rng.choice(STEMS) + "ское", rng.choice(sorted(TOWNS))
        kind = rng.choice(sorted(KINDS))
        out.append(f"{name} {kind} месторождение находится в районе г. {town}; регион – "
                   f"{TOWNS[town]}. Основной металл – {KINDS[kind].lower()}. Открыто в "
                   f"{rng.randint(1950, 1995)} году.")
    return out


@pytest.fixture(scope="module")
def base_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geomas.models.tiny import GENERAL_TEXTS, make_tiny_lm, pretrain_lm

    out = tmp_path_factory.mktemp("gate-lm") / "lm"
    texts = _statements(1500, seed=0)
    make_tiny_lm(out, [*texts, *GENERAL_TEXTS], vocab_size=2000, hidden_size=256,
                 tie_embeddings=False)
    pretrain_lm(out, texts, steps=300)
    return out


class Project:
    """A real MLflow store; `train()` runs train -> evaluate -> register -> gate."""

    def __init__(self, root: Path, base: Path, name: str) -> None:
        self.root, self.base, self.name = root, base, name

    def write(self, split: Any, tag: str) -> dict[str, Path]:
        from geomas.formats import write_examples

        files = {}
        for part in ("train", "val", "test"):
            files[part] = self.root / tag / f"instruct_dataset_{part}.json"
            files[part].parent.mkdir(parents=True, exist_ok=True)
            write_examples(getattr(split, part), files[part], "alpaca", False)
        return files

    def train(self, tag: str, files: dict[str, Path], seed: int = 42,
              **settings: Any) -> tuple[str, Any, Any]:
        """(version, evaluation, gate result) of one training run on `files`."""
        from geomas.tracking import mlflow_run
        from geomas.train import train_sft
        from geomas.train.flow import evaluate_adapter, gate, register_adapter

        config = TrainSFTConfig(method="qlora", max_length=128, seed=seed,
                                lora={"r": 32, "lora_alpha": 64,
                                      "target_modules": "all-linear"}, **settings)
        with mlflow_run(self.root / ".geomas", "gate-real", tag):
            result = train_sft(str(self.base), files["train"], config,
                               output_dir=self.root / f"sft-{tag}", eval_dataset=files["val"])
            evaluation = evaluate_adapter(Path(result.output_dir), files["test"], EVAL,
                                          eval_split="test", registered_model_name=self.name)
            version = register_adapter(Path(result.output_dir), evaluation,
                                       train_file=files["train"], val_file=files["val"],
                                       registered_model_name=self.name)
            decision = gate(self.name, version, evaluation, GATE)
        return version, evaluation, decision

    def tags(self, version: str) -> dict[str, str]:
        import mlflow

        return dict(mlflow.MlflowClient().get_model_version(self.name, version).tags)

    def champion(self) -> str | None:
        from geomas.registry.promotion import CHAMPION, alias_version

        return alias_version(self.name, CHAMPION)


@pytest.fixture()
def project(tmp_path: Path, base_lm: Path, request: pytest.FixtureRequest) -> Iterator[Project]:
    yield Project(tmp_path, base_lm, "gate-" + request.node.name.removeprefix("test_")[:40])


def _mean(scores: list[float]) -> float:
    return sum(scores) / len(scores)


def test_old_flaw_a_challenger_worse_on_the_same_examples_is_not_promoted(
    project: Project, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Champion trained on corpus A; corpus B = A + new documents on which it is strong.

    A's reports ask region, metal, country and year; the new ones are short notes that only
    name the country, which every trained model answers. So B's test examples are easier
    than A's: the weaker challenger's own score on B beats the score the champion recorded on
    A (the old gate compared those two and promotes), yet on the same B examples the champion
    is better (the paired gate does not promote).
    """
    from geomas.registry.promotion import promote_if_better, version_metrics
    from geomas.split.core import split_with_ledger

    rng = random.Random(7)
    corpus_a = [e for i in range(24) for e in _document(f"a{i:02d}", rng)]
    ledger = project.root / "split_assignments.json"
    split_a = split_with_ledger(corpus_a, SPLIT, ledger)
    v1, eval_a, first = project.train("champion-a", project.write(split_a, "a"), **STRONG)
    assert first.promoted, first.reason  # beats its base; no champion yet
    recorded = float(project.tags(v1)["metric.token_f1"])

    new = [e for i in range(96) for e in _document(f"b{i:02d}", rng, ("COUNTRY",))]
    split_b = split_with_ledger(corpus_a + new, SPLIT, ledger)
    old_test = {e.group for e in split_a.test}
    assert old_test <= {e.group for e in split_b.test}  # the ledger kept A's test documents
    assert {e.group for e in split_b.test} - old_test  # and new documents joined them
    import geomas.registry.adapters as adapters

    hashed: list[Path] = []
    digests = adapters.base_file_digests
    monkeypatch.setattr(adapters, "base_file_digests",
                        lambda base: hashed.append(Path(base)) or digests(base))
    v2, eval_b, decision = project.train("challenger-b", project.write(split_b, "b"), **WEAK)
    # the base is hashed once per run: the champion check and the registration share it
    assert hashed == [project.base]

    ids = eval_b.example_ids
    assert ids == [e.id for e in split_b.test] and eval_b.champion_version == v1
    challenger = _mean(eval_b.per_example["tuned"]["token_f1"])
    champion = _mean(eval_b.per_example["champion"]["token_f1"])
    print(f"champion recorded on A {recorded:.3f}; on B's test: champion {champion:.3f}, "
          f"challenger {challenger:.3f}")
    assert challenger > recorded + GATE.margin  # what the old gate looked at
    assert champion > challenger  # what it should have looked at
    assert not decision.promoted and project.champion() == v1, decision.reason
    assert f"same {len(ids)} examples" in decision.reason
    tags = project.tags(v2)
    assert float(tags["gate.gain"]) < 0 and tags["gate.n"] == str(len(ids))
    # the old gate, on the same challenger: its score against the champion's recorded one
    old = promote_if_better(project.name, v2, eval_b.metrics(),
                            champion_metrics=version_metrics(project.name, v1), config=GATE)
    assert old.promoted and "beats champion" in old.reason, old.reason


def test_a_gain_within_noise_is_not_promoted_and_a_clearly_better_config_is(
    project: Project,
) -> None:
    """Two seeds of one config, then a config that trains longer, judged on the same examples.

    The second seed's run is not promoted (it scored -0.11 token F1 against the first on the
    same 40 examples, interval [-0.20, -0.04], in one environment; -0.025, [-0.075, 0] after a
    fresh install of the same pins). The stronger config (24 epochs vs 8) gains +0.15 with an
    interval of [+0.05, +0.275] and is promoted; with 15 epochs it gained +0.15 once and
    +0.075 with an interval touching 0 after that reinstall, so it was made clearly stronger.
    Seed-to-seed spread of this size is training noise the example bootstrap does not see:
    docs/training.md says to set `margin` above it.
    """
    from geomas.split.core import split_examples

    rng = random.Random(11)
    corpus = [e for i in range(40) for e in _document(f"d{i:02d}", rng)]
    files = project.write(split_examples(corpus, SPLIT), "data")
    v1, _, first = project.train("seed-1", files, seed=1, **WEAK)
    assert first.promoted, first.reason
    v2, noisy, second = project.train("seed-2", files, seed=2, **WEAK)
    assert noisy.champion_version == v1
    print("seed 2 vs seed 1:", second.reason)
    assert not second.promoted and project.champion() == v1, second.reason
    v3, _, third = project.train("strong", files, seed=1, **STRONG)
    print("strong vs seed 1:", third.reason)
    assert third.promoted and project.champion() == v3, third.reason
    assert "beats the champion" in third.reason
