"""MLflow registry: adapter round trip through a pyfunc, champion/challenger promotion."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from geomas.config import PromotionConfig

PROMPT = "Что такое керн?"


def _use_store(data_dir: Path) -> None:
    import mlflow

    from geomas.tracking import mlflow_paths

    uri, _ = mlflow_paths(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _logits(model: Any, tokenizer: Any) -> Any:
    import torch

    enc = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    with torch.no_grad():
        return model(**enc).logits.float()


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geomas.models import make_tiny

    return make_tiny("lm", tmp_path_factory.mktemp("tiny_lm") / "base")


@pytest.fixture(scope="module")
def adapter(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A LoRA adapter on the 4-bit tiny base with non-zero B weights, saved with its tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from geomas.registry.adapters import quantization_config

    base = AutoModelForCausalLM.from_pretrained(
        str(tiny_base), device_map="cpu", quantization_config=quantization_config("float32")
    )
    model = get_peft_model(
        base,
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    )
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if "lora_B" in pname:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return {"dir": out, "logits": _logits(model, tokenizer)}


@pytest.fixture(scope="module")
def registered(
    tiny_base: Path, adapter: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    from geomas.registry.adapters import log_adapter
    from geomas.tracking import mlflow_run

    data = tmp_path_factory.mktemp("project")
    _use_store(data)
    tags = {"dataset_sha256": "abc123", "train_size": 20, "zenml_run_id": None, "git_sha": "f00"}
    with mlflow_run(data, "sft", "sft-test"):
        version = log_adapter(
            adapter["dir"],
            base_model_path=tiny_base,
            load_in_4bit=True,
            compute_dtype="float32",
            registered_model_name="geomas-sft",
            tags=tags,
        )
    yield {"data": data, "version": version}


def test_adapter_version_is_registered_with_tags_and_challenger_alias(
    registered: dict[str, Any],
) -> None:
    import mlflow

    _use_store(registered["data"])
    version = registered["version"]
    assert (version.name, version.version, version.aliases) == ("geomas-sft", "1", ["challenger"])
    mv = mlflow.MlflowClient().get_model_version_by_alias("geomas-sft", "challenger")
    assert str(mv.version) == "1"
    assert mv.tags["dataset_sha256"] == "abc123"
    assert mv.tags["train_size"] == "20"
    assert "zenml_run_id" not in mv.tags  # None values are skipped, not stored as "None"
    assert len(mv.tags["base_sha256"]) == 64

    # models from code: no pickle; the files are the adapter's data files and the manifest
    local = Path(mlflow.artifacts.download_artifacts("models:/geomas-sft/1"))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert not any(f.endswith((".pkl", ".bin", ".pt", ".pth")) for f in files), files
    assert "adapter_model.py" in files  # the models-from-code file
    assert {"artifacts/adapter/adapter_model.safetensors",
            "artifacts/adapter/geomas_manifest.json"} <= files, files
    assert mv.tags["geomas.registered_by"] == "geomas" and len(mv.tags[
        "geomas.manifest_sha256"]) == 64
    signature = mlflow.models.get_model_info("models:/geomas-sft/1").signature
    assert signature.params.to_dict() == [
        {"name": "max_new_tokens", "type": "long", "default": 128, "shape": None}
    ]


def test_adapter_round_trip_reproduces_logits_and_answers(
    registered: dict[str, Any], adapter: dict[str, Any]
) -> None:
    import bitsandbytes as bnb
    import torch

    from geomas.registry.adapters import generate_answers, load_registered_adapter

    _use_store(registered["data"])
    # geomas's loader: the signed files, checked, built by geomas's code (nothing unpickled)
    inner = load_registered_adapter("models:/geomas-sft@challenger")
    model, tokenizer = inner.model, inner.tokenizer
    q_proj = model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit)
    reloaded = _logits(model, tokenizer)
    assert torch.allclose(reloaded, adapter["logits"], atol=1e-5, rtol=0)

    answers = inner.predict(None, [PROMPT, "Что такое руда?"], params={"max_new_tokens": 4})
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    # Greedy decoding: the registered model answers like the in-memory one would.
    assert answers == generate_answers(
        model, tokenizer, [PROMPT, "Что такое руда?"], max_new_tokens=4
    )


def test_served_adapter_is_asked_in_the_prompt_format_it_was_trained_on(
    tiny_base: Path, adapter: dict[str, Any], tmp_path: Path
) -> None:
    """An adapter trained on prompt-completion records answers the Alpaca text prompt when
    served, not its tokenizer's chat template (which it never saw in training)."""
    import json

    import mlflow

    from geomas.evaluate.generation import build_prompt
    from geomas.formats import Example
    from geomas.registry.adapters import generate_answers, log_adapter
    from geomas.tracking import mlflow_run

    trained = tmp_path / "adapter"
    shutil.copytree(adapter["dir"], trained)
    (trained / "training_config.json").write_text(json.dumps(
        {"config": {"target_format": "prompt-completion"}}), encoding="utf-8")
    _use_store(tmp_path / "store")
    with mlflow_run(tmp_path / "store", "sft", "sft-style"):
        version = log_adapter(trained, base_model_path=tiny_base, load_in_4bit=True,
                              compute_dtype="float32", registered_model_name="geomas-style")
    # MLflow's own loader runs the models-from-code file, which checks the files too
    pyfunc = mlflow.pyfunc.load_model(f"models:/geomas-style/{version.version}")
    inner = pyfunc.unwrap_python_model()
    assert inner.prompt_style == "alpaca"
    answers = pyfunc.predict([PROMPT], params={"max_new_tokens": 4})
    assert answers == generate_answers(inner.model, inner.tokenizer, [PROMPT], max_new_tokens=4,
                                       prompt_style="alpaca")
    question = Example(id="q", instruction=PROMPT, output="")
    assert build_prompt(question, inner.tokenizer, "alpaca").endswith("### Ответ:\n")


def test_changed_base_model_is_refused_on_load(
    tiny_base: Path, adapter: dict[str, Any], tmp_path: Path
) -> None:
    from geomas.registry.adapters import BaseModelMismatch, load_adapter_model, log_adapter
    from geomas.tracking import mlflow_run

    base = tmp_path / "base"
    shutil.copytree(tiny_base, base)
    _use_store(tmp_path / "data")
    with mlflow_run(tmp_path / "data", "sft", "changed-base"):
        log_adapter(
            adapter["dir"],
            base_model_path=base,
            load_in_4bit=True,
            compute_dtype="float32",
            registered_model_name="geomas-sft",
        )
    config = base / "config.json"
    config.write_text(config.read_text() + "\n")
    with pytest.raises(BaseModelMismatch, match=r"changed files: config\.json"):
        load_adapter_model("models:/geomas-sft@challenger")
    shutil.rmtree(base)
    with pytest.raises(BaseModelMismatch, match="does not exist"):
        load_adapter_model("models:/geomas-sft@challenger")


def test_git_sha_is_none_outside_a_checkout(tmp_path: Path) -> None:
    from geomas.registry.adapters import git_sha

    assert git_sha(tmp_path) is None
    sha = git_sha(Path(__file__).parent)
    assert sha is None or len(sha) == 40


# --- promotion ---------------------------------------------------------------------------------

CONFIG = PromotionConfig(
    metric="eval_score", margin=0.02, forgetting_metric="forgetting_ratio", max_forgetting=0.1
)


@pytest.fixture(scope="module")
def promotion_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One store for all promotion tests (creating the SQLite schema takes seconds);
    # each test gets its own registered model.
    return tmp_path_factory.mktemp("promotion")


@pytest.fixture()
def registry(promotion_store: Path, request: pytest.FixtureRequest) -> Any:
    """A fresh registered model on the shared store; `new()` registers a version cheaply."""
    import mlflow

    _use_store(promotion_store)
    client = mlflow.MlflowClient()
    name = request.node.name.removeprefix("test_")
    client.create_registered_model(name)

    class Registry:
        def __init__(self) -> None:
            self.name = name

        def new(self) -> str:
            return str(client.create_model_version(name, source=str(promotion_store)).version)

        def alias(self, alias: str) -> str | None:
            from geomas.registry.promotion import alias_version

            return alias_version(name, alias)

        def tags(self, version: str) -> dict[str, str]:
            return dict(client.get_model_version(name, version).tags)

    return Registry()


def _m(score: float, forgetting: float = 0.0) -> dict[str, float]:
    return {"eval_score": score, "forgetting_ratio": forgetting}


def test_first_version_becomes_champion(registry: Any) -> None:
    from geomas.registry.promotion import promote_if_better

    v1 = registry.new()
    decision = promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)
    assert decision.promoted and decision.reason == "no champion yet"
    assert registry.alias("champion") == v1
    assert registry.tags(v1)["promotion_decision"] == "promoted"
    assert registry.tags(v1)["metric.eval_score"] == "0.5"


def test_better_challenger_is_promoted_and_worse_one_is_not(registry: Any) -> None:
    from geomas.registry.promotion import promote_if_better

    v1, v2, v3 = registry.new(), registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)

    # Champion metrics are read back from v1's tags.
    decision = promote_if_better(registry.name, v2, _m(0.53), config=CONFIG)
    assert decision.promoted and decision.compared_to == v1 and decision.previous_champion == v1
    assert (registry.alias("champion"), registry.alias("previous-champion")) == (v2, v1)

    decision = promote_if_better(registry.name, v3, _m(0.54), config=CONFIG)  # +0.01 < margin 0.02
    assert not decision.promoted
    assert (registry.alias("champion"), registry.alias("previous-champion")) == (v2, v1)
    tags = registry.tags(v3)
    assert tags["promotion_decision"] == "rejected"
    assert "at least 0.02" in tags["promotion_reason"]
    assert tags["promotion_compared_to"] == v2


def test_promotion_removes_the_challenger_alias(registry: Any) -> None:
    import mlflow

    from geomas.registry.promotion import promote_if_better

    v1 = registry.new()
    mlflow.MlflowClient().set_registered_model_alias(registry.name, "challenger", v1)
    promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)
    assert registry.alias("challenger") is None and registry.alias("champion") == v1


def test_lower_is_better_metric(registry: Any) -> None:
    from geomas.registry.promotion import promote_if_better

    # default forgetting check: perplexity_ratio within EvalConfig.forgetting_max_ratio (1.2)
    config = PromotionConfig(metric="eval_loss", higher_is_better=False, margin=0.1)
    v1, v2, v3 = registry.new(), registry.new(), registry.new()
    promote_if_better(registry.name, v1, {"eval_loss": 2.0, "perplexity_ratio": 1.0},
                      config=config)
    assert not promote_if_better(
        registry.name, v2, {"eval_loss": 1.95, "perplexity_ratio": 1.0}, config=config
    ).promoted
    assert promote_if_better(
        registry.name, v3, {"eval_loss": 1.5, "perplexity_ratio": 1.1}, config=config
    ).promoted


def test_forgetting_over_limit_blocks_promotion(registry: Any) -> None:
    from geomas.registry.promotion import promote_if_better

    v1, v2 = registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)
    decision = promote_if_better(registry.name, v2, _m(0.9, forgetting=0.3), config=CONFIG)
    assert not decision.promoted and "over the limit" in decision.reason
    assert registry.alias("champion") == v1
    assert registry.tags(v2)["promotion_decision"] == "rejected"


def test_missing_metrics_block_promotion(registry: Any) -> None:
    from geomas.registry.promotion import promote_if_better

    v1 = registry.new()
    decision = promote_if_better(registry.name, v1, {"eval_score": 0.9}, config=CONFIG)
    assert not decision.promoted and "forgetting_ratio" in decision.reason
    assert registry.alias("champion") is None


def test_manual_promote_refuses_unsafe_moves_unless_forced(registry: Any) -> None:
    from geomas.registry.promotion import (
        PromotionRefused,
        promote,
        promote_if_better,
        record_metrics,
    )

    v1, v2, v3 = registry.new(), registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)
    record_metrics(registry.name, v2, _m(0.4))
    with pytest.raises(PromotionRefused, match=r"0\.4 vs champion 0\.5.*force=True"):
        promote(registry.name, v2, config=CONFIG)
    with pytest.raises(PromotionRefused, match="no 'eval_score' metric"):
        promote(registry.name, v3, config=CONFIG)
    assert registry.alias("champion") == v1

    decision = promote(registry.name, v2, force=True, config=CONFIG, reason="hotfix for a demo")
    assert decision.decision == "forced"
    assert (registry.alias("champion"), registry.alias("previous-champion")) == (v2, v1)
    assert registry.tags(v2)["promotion_decision"] == "forced"

    # A safe move needs no force (no margin for people): v1 is better than the champion v2.
    assert promote(registry.name, v1, config=CONFIG).decision == "promoted"
    assert (registry.alias("champion"), registry.alias("previous-champion")) == (v1, v2)


def test_rollback_restores_previous_champion(registry: Any) -> None:
    from geomas.registry.promotion import PromotionRefused, promote_if_better, rollback

    v1, v2 = registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)
    with pytest.raises(PromotionRefused, match="no 'previous-champion'"):
        rollback(registry.name)
    promote_if_better(registry.name, v2, _m(0.6), config=CONFIG)

    decision = rollback(registry.name)
    assert decision.version == v1 and decision.compared_to == v2
    assert registry.alias("champion") == v1
    assert registry.alias("previous-champion") is None
    assert registry.tags(v2)["rolled_back"] == "true"
    assert registry.tags(v2)["promotion_decision"] == "rolled_back"
    with pytest.raises(PromotionRefused, match="no 'previous-champion'"):
        rollback(registry.name)


def test_rolled_back_version_needs_force(registry: Any) -> None:
    from geomas.registry.promotion import (
        PromotionRefused,
        promote,
        promote_if_better,
        rollback,
    )

    v1, v2 = registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)
    promote_if_better(registry.name, v2, _m(0.6), config=CONFIG)
    rollback(registry.name)
    with pytest.raises(PromotionRefused, match="rolled back before"):
        promote(registry.name, v2, config=CONFIG)
    assert promote(registry.name, v2, force=True, config=CONFIG,
                   reason="checked by hand").decision == "forced"


def test_zenml_stage_for_alias() -> None:
    from geomas.registry.promotion import zenml_stage_for_alias

    assert [zenml_stage_for_alias(a) for a in ("champion", "challenger", "previous-champion")] == [
        "production",
        "staging",
        "archived",
    ]


def _paired(ids: list[str], challenger: list[float], champion: list[float]) -> Any:
    from geomas.evaluate.paired import compare_paired

    return compare_paired(ids, challenger, champion, metric="eval_score", confidence=0.95,
                          resamples=2000, seed=0)


def test_the_old_gate_promotes_a_challenger_worse_on_the_same_examples(registry: Any) -> None:
    """Champion scored 0.50 on corpus A's split; on corpus B's test examples it scores 0.70.

    A challenger that scores 0.60 on B beats the champion's *recorded* 0.50 (the old gate
    promotes it) but is worse than the champion on the very same examples (the paired gate
    does not).
    """
    import random

    from geomas.registry.promotion import promote_if_better

    rng = random.Random(1)
    ids = [f"b-{i}" for i in range(60)]
    champion_on_b = [min(1.0, max(0.0, rng.gauss(0.70, 0.1))) for _ in ids]
    challenger_on_b = [min(1.0, max(0.0, c - 0.10 + rng.gauss(0, 0.03))) for c in champion_on_b]
    v1, v2, v3 = registry.new(), registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(0.50), config=CONFIG)  # the champion, trained on A
    mean = sum(challenger_on_b) / len(ids)
    assert mean > 0.50 + CONFIG.margin
    paired = _paired(ids, challenger_on_b, champion_on_b)
    new = promote_if_better(registry.name, v2, _m(mean), config=CONFIG, paired=paired)
    assert not new.promoted and registry.alias("champion") == v1
    assert "vs champion" in new.reason and "same 60 examples" in new.reason
    tags = registry.tags(v2)
    assert tags["gate.example_set_sha256"] == paired.example_set_sha256
    assert float(tags["gate.gain"]) < 0 and tags["gate.n"] == "60"
    # the old logic (recorded metric of the champion) on the same challenger: promoted
    old = promote_if_better(registry.name, v3, _m(mean), config=CONFIG)
    assert old.promoted and "beats champion 0.5" in old.reason


def test_a_gain_within_noise_is_not_promoted_and_a_clear_one_is(registry: Any) -> None:
    import random

    from geomas.registry.promotion import promote_if_better

    rng = random.Random(2)
    ids = [f"t-{i}" for i in range(40)]
    champion = [rng.uniform(0.3, 0.7) for _ in ids]
    # another seed of the same config: per-example swings of +-0.15, mean gain 0.03 (above
    # the 0.02 margin, so the old rule would promote), interval reaching below zero
    noise = [rng.gauss(0, 0.15) for _ in ids]
    shift = 0.03 - sum(noise) / len(noise)
    noisy = [c + e + shift for c, e in zip(champion, noise, strict=True)]
    clear = [c + 0.15 + e / 10 for c, e in zip(champion, noise, strict=True)]
    v1, v2, v3 = registry.new(), registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(sum(champion) / 40), config=CONFIG)
    paired = _paired(ids, noisy, champion)
    assert paired.gain == pytest.approx(0.03) and paired.ci_low <= 0 < paired.ci_high
    decision = promote_if_better(registry.name, v2, _m(sum(noisy) / 40), config=CONFIG,
                                 paired=paired)
    assert not decision.promoted and "within noise" in decision.reason
    assert registry.alias("champion") == v1
    decision = promote_if_better(registry.name, v3, _m(sum(clear) / 40), config=CONFIG,
                                 paired=_paired(ids, clear, champion))
    assert decision.promoted and registry.alias("champion") == v3
    assert "beats the champion" in decision.reason


def test_every_alias_move_is_audited(registry: Any) -> None:
    from geomas.registry.audit import audit_experiment, history
    from geomas.registry.promotion import (
        PromotionRefused,
        promote,
        promote_if_better,
        record_metrics,
        rollback,
    )

    v1, v2 = registry.new(), registry.new()
    promote_if_better(registry.name, v1, _m(0.5), config=CONFIG)  # the gate
    record_metrics(registry.name, v2, _m(0.4))
    with pytest.raises(PromotionRefused, match="needs a reason"):
        promote(registry.name, v2, force=True, config=CONFIG)
    promote(registry.name, v2, force=True, config=CONFIG, actor="alice", reason="demo of v2")
    with pytest.raises(PromotionRefused, match="needs a reason"):
        rollback(registry.name, force=True)
    rollback(registry.name, actor="bob", reason="v2 answers worse in review")
    moves = history(registry.name)
    assert [(m.action, m.from_version, m.to_version) for m in moves] == [
        ("gate", None, v1), ("promote", v1, v2), ("rollback", v2, v1)]
    gate, forced, back = moves
    assert gate.reason == "no champion yet" and not gate.forced
    assert gate.metrics["eval_score"] == 0.5 and gate.actor  # the OS user
    assert forced.forced and forced.actor == "alice" and "reason: demo of v2" in forced.reason
    assert "0.4 vs champion 0.5" in forced.reason and forced.metrics["eval_score"] == 0.4
    assert back.actor == "bob" and "v2 answers worse" in back.reason and not back.forced
    assert back.metrics["eval_score"] == 0.5
    import mlflow

    exp = mlflow.MlflowClient().get_experiment_by_name(audit_experiment(registry.name))
    assert exp is not None  # one finished run per move
    runs = mlflow.MlflowClient().search_runs([exp.experiment_id])
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}


# --- what geomas loads from the registry ----------------------------------------------------


def test_a_pickled_pyfunc_set_as_champion_is_refused_and_never_runs(
    tiny_base: Path, adapter: dict[str, Any], tmp_path: Path
) -> None:
    """Someone with registry write access registers a pickled pyfunc whose unpickling runs a
    command, copies geomas's trust tags onto it and points `champion` at it directly. Every
    geomas loader refuses it, and the command never runs."""
    import os

    import mlflow

    from geomas.registry.adapters import load_adapter_model, load_registered_adapter, log_adapter
    from geomas.registry.mlflow_models import load_registered_ner
    from geomas.registry.trust import UntrustedModel, download_verified
    from geomas.tracking import mlflow_run
    from geomas.train.flow import _champion_adapter

    marker = tmp_path / "payload-ran"

    class Payload(mlflow.pyfunc.PythonModel):
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

        def predict(self, context: Any, model_input: list[str]) -> list[str]:
            return model_input

    _use_store(tmp_path / "store")
    name = "geomas-sft"
    with mlflow_run(tmp_path / "store", "sft", "honest"):
        honest = log_adapter(adapter["dir"], base_model_path=tiny_base, load_in_4bit=True,
                             compute_dtype="float32", registered_model_name=name)
    client = mlflow.MlflowClient()
    _, honest_files = download_verified(f"models:/{name}/{honest.version}")
    attacks = {}
    with mlflow_run(tmp_path / "store", "sft", "attacker"):
        # 1: a bare pickled pyfunc; 2: the same pickle beside a copy of the honest files;
        # 3: the honest files with the adapter weights swapped
        tampered = tmp_path / "tampered"
        shutil.copytree(honest_files, tampered)
        weights = tampered / "adapter_model.safetensors"
        weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
        for attack, artifacts in (("bare", None), ("beside-honest", str(honest_files)),
                                  ("tampered", str(tampered))):
            info = mlflow.pyfunc.log_model(
                name=attack, python_model=Payload(), pip_requirements=["geomas"],
                artifacts={"adapter_dir": artifacts} if artifacts else None)
            version = str(mlflow.register_model(info.model_uri, name).version)
            for key, value in client.get_model_version(name, honest.version).tags.items():
                client.set_model_version_tag(name, version, key, value)
            attacks[attack] = version
    assert not marker.exists()

    from geomas.registry.adapters import base_file_digests

    digests = base_file_digests(tiny_base)
    for attack, version in attacks.items():
        client.set_registered_model_alias(name, "champion", version)
        uri = f"models:/{name}@champion"
        if attack == "beside-honest":
            # the honest files load; the pickle beside them is never read
            loaded = load_registered_adapter(uri)
            assert loaded.task == "causal-lm"
        else:
            for load in (load_registered_adapter, load_adapter_model, load_registered_ner):
                with pytest.raises(UntrustedModel, match=f"{name} v{version}"):
                    load(uri)
            champion, problem = _champion_adapter(name, tiny_base, digests)
            assert champion == version and isinstance(problem, str), problem
            assert "is not loaded" in problem
    assert not marker.exists(), "a geomas loader ran the pickled payload"
    # the payload is live: MLflow's own pickle loader runs it (what geomas never calls), and
    # then fails on the int that os.system returned
    with pytest.raises(AttributeError):
        mlflow.pyfunc.load_model(f"models:/{name}/{attacks['bare']}")
    assert marker.exists()


def test_signed_registry_refuses_versions_without_the_key(
    tiny_base: Path, adapter: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from geomas.registry.adapters import load_registered_adapter, log_adapter
    from geomas.registry.trust import UntrustedModel
    from geomas.tracking import mlflow_run

    _use_store(tmp_path / "store")
    with mlflow_run(tmp_path / "store", "sft", "unsigned"):
        unsigned = log_adapter(adapter["dir"], base_model_path=tiny_base, load_in_4bit=True,
                               compute_dtype="float32", registered_model_name="geomas-signed")
    monkeypatch.setenv("GEOMAS_REGISTRY_KEY", "writers-secret")
    with mlflow_run(tmp_path / "store", "sft", "signed"):
        signed = log_adapter(adapter["dir"], base_model_path=tiny_base, load_in_4bit=True,
                             compute_dtype="float32", registered_model_name="geomas-signed")
    assert len(signed.tags["geomas.signature"]) == 64
    assert load_registered_adapter(f"models:/geomas-signed/{signed.version}").model is not None
    with pytest.raises(UntrustedModel, match="signature is missing or does not match"):
        load_registered_adapter(f"models:/geomas-signed/{unsigned.version}")
    monkeypatch.setenv("GEOMAS_REGISTRY_KEY", "another-key")
    with pytest.raises(UntrustedModel, match="signature is missing or does not match"):
        load_registered_adapter(f"models:/geomas-signed/{signed.version}")
