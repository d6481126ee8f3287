"""Tiny offline models: tokenizers fit the corpus, checkpoints load with Auto classes, seeds."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from geomas.errors import InputError
from geomas.models import corpus_texts, make_tiny, make_tiny_lm, make_tiny_ner
from geomas.models.tiny import GENERAL_TEXTS, PROVENANCE_NAME, WEIGHTS_NAME
from geomas.ner.labels import GEO_LABELS
from geomas.sample.corpus import ANNOTATIONS_NAME

BIO_LABELS = ["O"] + [f"{prefix}-{label}" for label in GEO_LABELS for prefix in ("B", "I")]
ROUND_TRIP = (
    "Запасы золота по категории C1 — 43,7 г/т; «ёлочки» и „лапки“, Ёжик!\n"
    "\tИтого:  1 234,5 т (≈ 12 %)…"
)
MESSAGES = [
    {"role": "system", "content": "Ты — геолог."},
    {"role": "user", "content": "Какое среднее содержание золота?"},
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def texts(sample_corpus: Path) -> list[str]:
    return corpus_texts(sample_corpus)


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> Path:
    return make_tiny_ner(tmp_path_factory.mktemp("tiny") / "ner", texts, seed=0)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm", texts, seed=0)


@pytest.fixture(scope="module")
def lm_tokenizer(lm_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(lm_dir, local_files_only=True)


# --- corpus texts -------------------------------------------------------------------------------


def test_corpus_texts_reads_the_export_and_appends_general_sentences(sample_corpus: Path) -> None:
    tasks = json.loads((sample_corpus / "annotations" / ANNOTATIONS_NAME).read_text("utf-8"))

    texts = corpus_texts(sample_corpus)

    assert texts == [task["data"]["text"] for task in tasks] + list(GENERAL_TEXTS)
    assert corpus_texts(sample_corpus, with_general=False) == texts[: len(tasks)]


def test_corpus_texts_generates_a_corpus_reproducibly_when_none_is_given() -> None:
    first = corpus_texts(None, seed=5, docs=2, with_general=False)

    assert first == corpus_texts(None, seed=5, docs=2, with_general=False)
    assert first != corpus_texts(None, seed=6, docs=2, with_general=False)
    assert all(text.strip() for text in first)
    assert any("месторождени" in text.lower() for text in first)


def test_corpus_texts_without_an_export_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=ANNOTATIONS_NAME):
        corpus_texts(tmp_path)


# --- NER encoder --------------------------------------------------------------------------------


def test_ner_tokenizer_has_no_unknowns_for_corpus_words_and_offsets_point_into_text(
    ner_dir: Path, texts: list[str]
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ner_dir, local_files_only=True)
    sentence = texts[0].split("\n")[0]

    enc = tokenizer(sentence, return_offsets_mapping=True)

    assert tokenizer.unk_token_id not in enc["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    for token, (start, end) in zip(tokens[1:-1], enc["offset_mapping"][1:-1], strict=True):
        assert sentence[start:end] == token.removeprefix("##")
    covered = "".join(sentence[start:end] for start, end in enc["offset_mapping"])
    assert covered == "".join(sentence.split())


def test_ner_tokenizer_keeps_case_and_yo(ner_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ner_dir, local_files_only=True)

    pieces = tokenizer.tokenize("Ёлкинское МЕСТОРОЖДЕНИЕ")

    assert "".join(p.removeprefix("##") for p in pieces) == "ЁлкинскоеМЕСТОРОЖДЕНИЕ"
    assert tokenizer.model_max_length == 512


def test_ner_checkpoint_loads_for_token_classification_with_35_labels(ner_dir: Path) -> None:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(ner_dir, local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(
        ner_dir,
        num_labels=len(BIO_LABELS),
        id2label=dict(enumerate(BIO_LABELS)),
        label2id={label: i for i, label in enumerate(BIO_LABELS)},
        local_files_only=True,
    )
    batch = tokenizer(
        ["Рудное тело прослежено на 1,2 км.", "Золото"], padding=True, return_tensors="pt"
    )

    with torch.no_grad():
        logits = model(**batch).logits

    assert logits.shape == (2, batch["input_ids"].shape[1], 35)
    assert model.config.id2label[1] == "B-GENERAL_INFO"
    assert (ner_dir / WEIGHTS_NAME).stat().st_size < 10 * 2**20


def test_ner_build_is_byte_identical_per_seed(
    tmp_path: Path, ner_dir: Path, texts: list[str]
) -> None:
    again = make_tiny_ner(tmp_path / "again", texts, seed=0)
    other = make_tiny_ner(tmp_path / "other", texts, seed=1)

    assert _sha256(again / WEIGHTS_NAME) == _sha256(ner_dir / WEIGHTS_NAME)
    assert _sha256(again / "tokenizer.json") == _sha256(ner_dir / "tokenizer.json")
    assert _sha256(other / WEIGHTS_NAME) != _sha256(ner_dir / WEIGHTS_NAME)


# --- causal LM ----------------------------------------------------------------------------------


def test_lm_tokenizer_round_trips_russian_text_exactly(lm_tokenizer: Any, texts: list[str]) -> None:
    for text in [ROUND_TRIP, *texts[:10]]:
        ids = lm_tokenizer.encode(text, add_special_tokens=False)
        assert lm_tokenizer.unk_token_id not in ids
        assert lm_tokenizer.decode(ids) == text

    with_specials = lm_tokenizer(ROUND_TRIP)["input_ids"]
    assert with_specials[0] == lm_tokenizer.bos_token_id
    assert lm_tokenizer.decode(with_specials, skip_special_tokens=True) == ROUND_TRIP


def test_lm_chat_template_adds_generation_prompt_and_one_bos(lm_tokenizer: Any) -> None:
    text = lm_tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    ids = lm_tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)[
        "input_ids"
    ]

    assert text == (
        "<s><|system|>\nТы — геолог.</s>\n<|user|>\nКакое среднее содержание золота?</s>\n"
        "<|assistant|>\n"
    )
    assert ids.count(lm_tokenizer.bos_token_id) == 1
    assert lm_tokenizer.decode(ids) == text


def test_lm_chat_template_masks_the_assistant_answer_and_its_eos(lm_tokenizer: Any) -> None:
    from trl.chat_template_utils import is_chat_template_stop_token_trained

    conversation = [
        *MESSAGES,
        {"role": "assistant", "content": "43,7 г/т."},
        {"role": "user", "content": "Спасибо!"},
    ]

    out = lm_tokenizer.apply_chat_template(
        conversation, return_dict=True, return_assistant_tokens_mask=True
    )

    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert lm_tokenizer.decode(masked) == "43,7 г/т.</s>"
    assert is_chat_template_stop_token_trained(lm_tokenizer)


def test_lm_loads_generates_and_exposes_lora_targets(lm_dir: Path, lm_tokenizer: Any) -> None:
    from transformers import AutoModelForCausalLM

    # Any: transformers' generate() stubs reject the Auto class as `self` under mypy
    model: Any = AutoModelForCausalLM.from_pretrained(lm_dir, local_files_only=True)
    batch = lm_tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )

    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=6, do_sample=False)

    assert isinstance(out, torch.Tensor)
    prompt_len = batch["input_ids"].shape[1]
    assert prompt_len < out.shape[1] <= prompt_len + 6
    assert torch.equal(out[0, :prompt_len], batch["input_ids"][0])
    linear = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    }
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= linear
    assert model.config.vocab_size == len(lm_tokenizer)
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (
        lm_tokenizer.bos_token_id,
        lm_tokenizer.eos_token_id,
        lm_tokenizer.pad_token_id,
    )
    assert (lm_dir / WEIGHTS_NAME).stat().st_size < 10 * 2**20


def test_lm_build_is_byte_identical_per_seed(
    tmp_path: Path, lm_dir: Path, texts: list[str]
) -> None:
    again = make_tiny_lm(tmp_path / "again", texts, seed=0)
    other = make_tiny_lm(tmp_path / "other", texts, seed=1)

    assert _sha256(again / WEIGHTS_NAME) == _sha256(lm_dir / WEIGHTS_NAME)
    assert _sha256(again / "tokenizer.json") == _sha256(lm_dir / "tokenizer.json")
    assert _sha256(other / WEIGHTS_NAME) != _sha256(lm_dir / WEIGHTS_NAME)


# --- make_tiny ----------------------------------------------------------------------------------


def test_make_tiny_writes_provenance_matching_the_weights(
    tmp_path: Path, sample_corpus: Path
) -> None:
    from transformers import AutoModelForCausalLM

    out = make_tiny("lm", tmp_path / "lm", corpus_dir=sample_corpus, seed=3)

    provenance = json.loads((out / PROVENANCE_NAME).read_text("utf-8"))
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    assert provenance["kind"] == "lm"
    assert provenance["seed"] == 3
    assert provenance["corpus"] == {"corpus_dir": str(sample_corpus)}
    assert provenance["vocab_size"] == model.config.vocab_size
    assert provenance["parameters"] == model.num_parameters()
    assert provenance["weights_sha256"] == _sha256(out / WEIGHTS_NAME)


def test_make_tiny_refuses_a_non_empty_folder(tmp_path: Path, sample_corpus: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")

    with pytest.raises(InputError, match="not empty"):
        make_tiny("ner", foreign, corpus_dir=sample_corpus)
    # overwrite only ever deletes a folder that holds a previous tiny model
    with pytest.raises(InputError, match=PROVENANCE_NAME):
        make_tiny("ner", foreign, corpus_dir=sample_corpus, overwrite=True)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_make_tiny_overwrite_replaces_a_previous_tiny_model(
    tmp_path: Path, sample_corpus: Path
) -> None:
    out = make_tiny("lm", tmp_path / "m", corpus_dir=sample_corpus, seed=0)
    with pytest.raises(InputError, match="overwrite=True"):
        make_tiny("ner", out, corpus_dir=sample_corpus)

    make_tiny("ner", out, corpus_dir=sample_corpus, overwrite=True)

    assert json.loads((out / PROVENANCE_NAME).read_text("utf-8"))["kind"] == "ner"
    assert json.loads((out / "config.json").read_text("utf-8"))["model_type"] == "bert"
    # nothing of the LM is left behind
    assert not (out / "chat_template.jinja").exists()
    assert not (out / "generation_config.json").exists()


def test_make_tiny_rejects_an_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'gpt'"):
        make_tiny("gpt", tmp_path / "x")  # type: ignore[arg-type]


def test_pretrain_gives_the_tiny_lm_some_language(tmp_path: Path) -> None:
    from geomas.models.tiny import corpus_texts, pretrain_lm

    texts = corpus_texts(None, docs=4)
    out = make_tiny("lm", tmp_path / "lm", seed=0)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    sample = tok(texts[0][:400], return_tensors="pt")

    def loss() -> float:
        model = AutoModelForCausalLM.from_pretrained(out)
        with torch.no_grad():
            return float(model(**sample, labels=sample["input_ids"]).loss)

    before = loss()
    last = pretrain_lm(out, texts, steps=30, seq_len=64, batch_size=8, seed=0)
    after = loss()
    assert after < before - 1.0, (before, after)
    assert last < before
