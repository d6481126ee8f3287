"""geomas.train: real 4-bit QLoRA on CPU with the tiny Llama, configs, aliases, batch policy."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import geomas
from geomas.config import MemoryProfile, TrainSFTConfig
from geomas.errors import ConfigError, InputError
from geomas.formats import Example, write_examples
from geomas.train import (
    get_quantization_config,
    load_model_aliases,
    load_sft_config,
    parse_sft_config,
    pick_batch,
    prepare_sft,
    resolve_model,
    run_sft,
)
from geomas.train.checkpoints import checkpoint_problem
from geomas.train.data import sibling_eval_path
from geomas.train.sft import TRAINING_CONFIG_NAME, _check_template

REPO = Path(__file__).resolve().parents[2]

QA = [
    ("Что такое керн?", "Образец породы, извлечённый при бурении."),
    ("Что такое руда?", "Горная порода с промышленным содержанием металла."),
    ("Что изучает геология?", "Строение и историю Земли."),
    ("Что такое пласт?", "Слой горной породы."),
    ("Что такое жила?", "Трещина, заполненная минеральным веществом."),
    ("Что такое разлом?", "Разрыв в земной коре со смещением блоков."),
    ("Что такое шлих?", "Концентрат тяжёлых минералов."),
    ("Что такое карьер?", "Открытая горная выработка."),
]
PROMPT = [{"role": "user", "content": "Что такое керн?"}]


def tiny_config(**update: Any) -> TrainSFTConfig:
    """The tiny-lm YAML profile, shortened: 8 records, batch 4 -> 2 steps per epoch."""
    base = load_sft_config(REPO / "configs/sft/tiny-lm.yaml")
    return base.model_copy(update={"max_length": 128, "num_train_epochs": 2.0,
                                   "logging_steps": 1, **update})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geomas.models import make_tiny

    root = tmp_path_factory.mktemp("sft")
    make_tiny("lm", root / "tiny")
    examples = [
        Example(id=f"qa{i}", instruction=q, input="", output=a) for i, (q, a) in enumerate(QA)
    ]
    write_examples(examples, root / "geo.json", "alpaca", jsonl=False)
    return root


def q4_digest(model: Any) -> tuple[str, int]:
    """sha256 over every Linear4bit's packed bytes and quant_state.absmax (by base name)."""
    import bitsandbytes as bnb

    digest, count = hashlib.sha256(), 0
    for name, module in model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            count += 1
            digest.update(name.replace("base_model.model.", "").replace(".base_layer", "").encode())
            digest.update(module.weight.data.contiguous().view(-1).numpy().tobytes())
            digest.update(module.weight.quant_state.absmax.contiguous().numpy().tobytes())
    return digest.hexdigest(), count


def lora_state(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


def logits(model: Any, inputs: Any) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(**inputs).logits.float()


@pytest.fixture(scope="module")
def trained(workdir: Path) -> dict[str, Any]:
    """One uninterrupted QLoRA run (4 steps, a checkpoint per epoch), with before/after state."""
    setup = prepare_sft(
        str(workdir / "tiny"), workdir / "geo.json", tiny_config(), output_dir=workdir / "full"
    )
    model = setup.trainer.model
    batch = next(iter(setup.trainer.get_train_dataloader()))
    before = {"q4": q4_digest(model), "lora": lora_state(model)}
    result = run_sft(setup)
    return {"setup": setup, "result": result, "batch": batch, "before": before}


def test_trainer_reports_through_geomas_not_stdout(trained: dict[str, Any]) -> None:
    from transformers import PrinterCallback, ProgressCallback

    from geomas.train.callbacks import ProgressLogCallback

    kinds = [type(cb) for cb in trained["setup"].trainer.callback_handler.callbacks]
    assert ProgressLogCallback in kinds
    assert PrinterCallback not in kinds and ProgressCallback not in kinds


def test_qlora_trains_adapters_only_and_reloads(workdir: Path, trained: dict[str, Any]) -> None:
    import bitsandbytes as bnb
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    setup, result, before = trained["setup"], trained["result"], trained["before"]
    model = setup.trainer.model
    attn = model.base_model.model.model.layers[0].self_attn
    assert isinstance(attn.q_proj.base_layer, bnb.nn.Linear4bit)
    digest, n4 = q4_digest(model)
    assert n4 >= 4 * 2 and digest == before["q4"][0]  # base bytes + absmax untouched
    after = lora_state(model)
    assert after and all(p.dtype == torch.float32 for p in after.values())
    changed = [k for k in after if not torch.equal(after[k], before["lora"][k].to(after[k].dtype))]
    assert any("lora_A" in k for k in changed) and any("lora_B" in k for k in changed)
    assert result.global_step == 4 and result.epochs == 2.0
    assert len(result.train_loss) == 4 and result.tokens_seen > 0 and result.peak_memory_bytes > 0

    out = result.output_dir
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json"):
        assert (out / name).is_file(), name
    resolved = json.loads((out / TRAINING_CONFIG_NAME).read_text())
    assert resolved["method"] == "qlora" and resolved["quantization"]["load_in_4bit"]
    assert resolved["quantization"]["compute_dtype"] == "float32"
    assert resolved["batch"] == {
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "source": "config",
        "device": "cpu",
        "free_vram_gb": None,
        "tier_below_gb": None,
        "effective_batch_size": 4,
    }
    assert len(resolved["model"]["fingerprint"]["sha256"]) == 64
    assert resolved["dataset"]["train"]["records"] == len(QA)
    assert resolved["dataset"]["train"]["format_type"] == "alpaca"
    assert resolved["training_args"]["assistant_only_loss"] is True
    assert resolved["geomas_version"] == geomas.__version__ != "0+unknown"

    tok = setup.trainer.processing_class
    inputs = tok.apply_chat_template(
        PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    base = AutoModelForCausalLM.from_pretrained(
        workdir / "tiny",
        quantization_config=get_quantization_config(setup.config, "cpu"),
        device_map="cpu",
    )
    reloaded = PeftModel.from_pretrained(base, out)
    torch.testing.assert_close(logits(reloaded, inputs), logits(model, inputs), atol=1e-5, rtol=0)
    generated = reloaded.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def test_loss_only_on_the_answer(trained: dict[str, Any]) -> None:
    batch, tok = trained["batch"], trained["setup"].trainer.processing_class
    for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        text = tok.decode(ids[ids != tok.pad_token_id])
        trained_text = tok.decode(ids[labels != -100])
        answers = [a for q, a in QA if q in text]
        assert len(answers) == 1
        assert trained_text == answers[0] + tok.eos_token
        # every prompt token (system/user turns, role markers) is masked
        n_answer = int((labels != -100).sum())
        assert n_answer == len(tok(answers[0] + tok.eos_token, add_special_tokens=False).input_ids)


def test_resume_reaches_the_same_final_step(workdir: Path, trained: dict[str, Any]) -> None:
    tiny, data, out = str(workdir / "tiny"), workdir / "geo.json", workdir / "resumed"
    first = run_sft(prepare_sft(tiny, data, tiny_config(max_steps=2), output_dir=out))
    assert first.global_step == 2 and (out / "checkpoint-2").is_dir()
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        prepare_sft(tiny, data, tiny_config(), output_dir=out)
    second = run_sft(prepare_sft(tiny, data, tiny_config(), output_dir=out, resume=True))
    assert second.resumed_from is not None and second.resumed_from.endswith("checkpoint-2")
    assert second.global_step == trained["result"].global_step == 4


def adapter_tensors(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def test_resume_skips_a_checkpoint_whose_save_was_killed(
    workdir: Path, trained: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A kill during the last save: resume from the checkpoint before it, to the same end."""
    import torch

    tiny, data, out = str(workdir / "tiny"), workdir / "geo.json", workdir / "killed"
    run_sft(prepare_sft(tiny, data, tiny_config(), output_dir=out))
    # Killed while saving checkpoint-4 after the weights and optimizer, before the RNG state and
    # trainer_state.json (the Trainer writes these last); the final adapter was never written.
    for name in ("rng_state.pth", "trainer_state.json"):
        (out / "checkpoint-4" / name).unlink()
    for path in out.iterdir():
        if path.is_file():
            path.unlink()
    assert (out / "checkpoint-2").is_dir() and (out / "checkpoint-4").is_dir()

    with pytest.raises(ConfigError, match=r"already holds checkpoints \(checkpoint-2\)"):
        prepare_sft(tiny, data, tiny_config(), output_dir=out)
    with caplog.at_level(logging.INFO, logger="geomas.train.checkpoints"):
        resumed = run_sft(prepare_sft(tiny, data, tiny_config(), output_dir=out, resume=True))
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert skips == ["skipping checkpoint-4: missing rng_state.pth, trainer_state.json (save "
                     "interrupted); resuming from checkpoint-2"]
    assert resumed.resumed_from == str(out / "checkpoint-2")
    assert resumed.global_step == trained["result"].global_step == 4
    # the rerun step's save completed the folder; the adapter equals the uninterrupted run's
    assert checkpoint_problem(out / "checkpoint-4") is None
    expected, got = adapter_tensors(trained["result"].output_dir), adapter_tensors(out)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=1e-6, rtol=0)


def _cut(path: Path, keep: float = 0.5) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


def _sharded(folder: Path) -> None:
    """Full-model layout with an index whose second shard was never written."""
    (folder / "adapter_model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    (folder / "adapter_config.json").unlink()
    shards = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": shards}))


def _other_step(folder: Path) -> None:
    """A trainer_state.json that is not this folder's (left from another save)."""
    state = json.loads((folder / "trainer_state.json").read_text())
    (folder / "trainer_state.json").write_text(json.dumps({**state, "global_step": 2}))


DAMAGE = [
    pytest.param(lambda f: (f / "trainer_state.json").unlink(),
                 "missing trainer_state.json (save interrupted)", id="no-trainer-state"),
    pytest.param(lambda f: (f / "scheduler.pt").unlink(),
                 "missing scheduler.pt (save interrupted)", id="no-scheduler"),
    pytest.param(lambda f: (f / "adapter_config.json").unlink(), "missing adapter_config.json",
                 id="no-adapter-config"),
    pytest.param(lambda f: (f / "adapter_model.safetensors").unlink(), "missing the weights file",
                 id="no-weights"),
    pytest.param(lambda f: _cut(f / "adapter_model.safetensors"),
                 "adapter_model.safetensors truncated (", id="cut-weights"),
    pytest.param(lambda f: _cut(f / "adapter_model.safetensors", 0.0001), "header cut short",
                 id="cut-weights-header"),
    pytest.param(lambda f: _cut(f / "optimizer.pt", 0.99), "optimizer.pt unreadable (BadZipFile",
                 id="cut-optimizer"),
    pytest.param(lambda f: _cut(f / "trainer_state.json"), "trainer_state.json unreadable",
                 id="cut-trainer-state"),
    pytest.param(_other_step, "trainer_state.json is for step 2, not 4", id="stale-state"),
    pytest.param(_sharded, "missing model-00002-of-00002.safetensors (save interrupted)",
                 id="missing-shard"),
]


@pytest.mark.parametrize(("damage", "reason"), DAMAGE)
def test_checkpoint_completeness_on_a_real_checkpoint(
    trained: dict[str, Any], tmp_path: Path, damage: Callable[[Path], None], reason: str
) -> None:
    source = trained["result"].output_dir / "checkpoint-4"
    assert checkpoint_problem(source) is None
    folder = shutil.copytree(source, tmp_path / "checkpoint-4")
    damage(folder)
    problem = checkpoint_problem(folder)
    assert problem is not None and reason in problem, problem


def test_no_complete_checkpoint_names_each_and_the_fix(
    workdir: Path, trained: dict[str, Any], tmp_path: Path
) -> None:
    for name in ("checkpoint-2", "checkpoint-4"):
        folder = shutil.copytree(trained["result"].output_dir / name, tmp_path / name)
        (folder / "trainer_state.json").unlink()
    args = (str(workdir / "tiny"), workdir / "geo.json", tiny_config())
    with pytest.raises(InputError) as resumed:
        prepare_sft(*args, output_dir=tmp_path, resume=True)
    message = str(resumed.value)
    assert "\n" not in message and str(tmp_path) in message
    assert "no complete checkpoint (checkpoint-4: missing trainer_state.json" in message
    assert "; checkpoint-2: missing trainer_state.json" in message
    assert message.endswith("delete those checkpoint folders and run without resume, or choose "
                            "another output dir / tag")
    # a fresh run is refused too, without offering a resume that would fail
    with pytest.raises(ConfigError, match="none complete") as fresh:
        prepare_sft(*args, output_dir=tmp_path)
    assert "resume" not in str(fresh.value)


def test_resume_without_checkpoint_is_rejected(workdir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint"):
        prepare_sft(
            str(workdir / "tiny"),
            workdir / "geo.json",
            tiny_config(),
            output_dir=tmp_path,
            resume=True,
        )


LEGAL = {
    "training_args": {
        "num_train_epochs": 3,
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 8,
        "learning_rate": 1e-4,
        "fp16": True,
        "gradient_checkpointing": True,
    },
    "lora_config": {
        "r": 16,
        "lora_alpha": 32,
        "target_modules": ["q_proj", "v_proj", "k_proj", "o_proj"],
        "lora_dropout": 0.05,
    },
}


def test_legal_guide_json_config_is_mapped(tmp_path: Path) -> None:
    path = tmp_path / "lora_training_config.json"
    path.write_text(json.dumps(LEGAL), encoding="utf-8")
    cfg = load_sft_config(path)
    assert (cfg.num_train_epochs, cfg.per_device_train_batch_size,
            cfg.gradient_accumulation_steps) == (3, 1, 8)
    assert cfg.precision == "fp16" and cfg.activation_checkpointing and cfg.learning_rate == 1e-4
    assert cfg.lora.r == 16 and cfg.lora.lora_alpha == 32 and cfg.lora.lora_dropout == 0.05
    assert cfg.lora.target_modules == ("q_proj", "v_proj", "k_proj", "o_proj")


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({**LEGAL, "training_args": {"num_train_epoch": 3}}, "training_args.num_train_epoch"),
        ({**LEGAL, "lora_config": {"rank": 8}}, "lora_config.rank"),
        ({**LEGAL, "extra": {}}, "unknown top-level keys"),
        ({"method": "qlora", "bach_size": 2}, "bach_size"),
    ],
)
def test_unknown_config_keys_are_rejected(raw: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_sft_config(raw)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"method": "full", "quantization": {"load_in_4bit": True}}, "method 'full'"),
        ({"quantization": {"load_in_4bit": True, "load_in_8bit": True}}, "load_in_8bit"),
        ({"method": "lora", "quantization": {"load_in_4bit": True}}, "load_in_4bit"),
        ({"method": "qlora", "quantization": {"load_in_4bit": False}}, "load_in_4bit"),
        ({"gradient_accumulation_steps": 4}, "gradient_accumulation_steps"),
        ({"save_strategy": "steps"}, "save_steps"),
    ],
)
def test_impossible_combinations_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_sft_config(raw)


def test_every_sft_yaml_and_the_alias_file_load() -> None:
    files = sorted((REPO / "configs/sft").glob("*.yaml"))
    assert {f.stem for f in files} >= {"tiny-lm", "mistral-7b", "qlora-7b-gpu"}
    for path in files:
        load_sft_config(path)
    aliases = load_model_aliases(REPO / "configs/models.yaml")
    assert aliases["mistral-7b-4bit"].path_or_id == "unsloth/mistral-7b-v0.3-bnb-4bit"
    for alias in aliases.values():
        assert alias.config is not None and (REPO / alias.config).is_file()


def test_alias_resolution(workdir: Path, tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        f"models:\n  tiny-lm:\n    path_or_id: {workdir / 'tiny'}\n"
        "    config: configs/sft/tiny-lm.yaml\n",
        encoding="utf-8",
    )
    found = resolve_model("tiny-lm", models)
    assert found.source == "alias" and found.path == workdir / "tiny" and found.name == "tiny"
    assert found.config_path == Path("configs/sft/tiny-lm.yaml")
    assert resolve_model(str(workdir / "tiny"), models).source == "local"
    with pytest.raises(ConfigError, match="known aliases: \\['tiny-lm'\\]"):
        resolve_model("no-such-alias", models)


def test_owner_less_hub_id_resolves_from_the_local_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--bert-mini-cased"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abc", encoding="utf-8")
    (repo / "snapshots" / "0123abc").mkdir(parents=True)
    (repo / "snapshots" / "0123abc" / "config.json").write_text("{}", encoding="utf-8")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    found = resolve_model("bert-mini-cased", None)
    assert found.source == "hub-cache" and found.path == repo / "snapshots" / "0123abc"
    with pytest.raises(ConfigError, match="neither a model alias, a local model folder"):
        resolve_model("bert-not-cached", None)


def test_uncached_hub_id_says_how_to_provide_weights() -> None:
    with pytest.raises(ConfigError, match="never downloads.*hf download geomas-test/nope"):
        resolve_model("geomas-test/nope", None)


@pytest.mark.parametrize(
    ("free_gb", "expected"),
    [
        (None, (4, 1, "cpu_default")),
        (7.5, (1, 8, "memory_profile")),  # RTX 3070 8 GB
        (9.99, (1, 8, "memory_profile")),
        (10.0, (2, 4, "memory_profile")),  # RTX 3080 10 GB
        (19.5, (2, 4, "memory_profile")),
        (20.0, (4, 2, "memory_profile")),
        (23.6, (4, 2, "memory_profile")),  # RTX 3090 24 GB
        (79.0, (4, 2, "memory_profile")),
    ],
)
def test_memory_profile_policy(free_gb: float | None, expected: tuple[int, int, str]) -> None:
    free = None if free_gb is None else int(free_gb * 1024**3)
    decision = pick_batch(MemoryProfile(), free)
    assert (decision.batch_size, decision.gradient_accumulation_steps, decision.source) == expected


def test_sibling_eval_file(tmp_path: Path) -> None:
    train = tmp_path / "instruct_dataset_train.json"
    train.write_text("[]", encoding="utf-8")
    assert sibling_eval_path(train) is None
    (tmp_path / "instruct_dataset_val.json").write_text("[]", encoding="utf-8")
    assert sibling_eval_path(train) == tmp_path / "instruct_dataset_val.json"
    assert sibling_eval_path(tmp_path / "other.json") is None


def test_messages_target_needs_generation_markers() -> None:
    class Tok:
        chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"

    with pytest.raises(ConfigError, match="prompt-completion"):
        _check_template(Tok(), TrainSFTConfig(target_format="messages"))
    _check_template(Tok(), TrainSFTConfig(target_format="prompt-completion"))
