"""Tiny, randomly initialised models with tokenizers trained on the sample corpus.

Tests and the offline demo need real Hugging Face checkpoints that load with the ordinary
``Auto*.from_pretrained(path)`` calls, run on a CPU in milliseconds and never touch the Hub.
`make_tiny_ner` writes a small BERT encoder with a cased WordPiece tokenizer (token
classification heads are added on load); `make_tiny_lm` writes a small Llama causal LM with a
byte-level BPE tokenizer and a chat template that TRL's ``SFTTrainer`` can mask for
assistant-only loss. The weights are random: these models exercise code paths, not quality.
The same seed and texts give byte-identical weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from geomas.errors import InputError
from geomas.io import write_json
from geomas.progress import Progress

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

TinyKind = Literal["ner", "lm"]

#: Provenance file written next to the weights by `make_tiny`.
PROVENANCE_NAME = "geomas_tiny.json"
WEIGHTS_NAME = "model.safetensors"

NER_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
NER_MAX_LENGTH = 512
#: Characters always in the WordPiece vocabulary, at the start of a word and as ``##x``, so any
#: Russian or Latin word (CAPS included) tokenizes without [UNK] even if training never saw it.
NER_ALPHABET = (
    "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдеёжзийклмнопрстуфхцчшщъыьэюя"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789°±×№²³‰"
)

LM_UNK, LM_BOS, LM_EOS, LM_PAD = "<unk>", "<s>", "</s>", "<pad>"
#: Role markers of the chat template; special tokens so a role is always one token.
LM_ROLE_TOKENS: tuple[str, ...] = ("<|system|>", "<|user|>", "<|assistant|>")
LM_MAX_LENGTH = 1024

#: Reports in the corpus generated when no corpus folder is given.
DEFAULT_CORPUS_DOCS = 24

#: Zephyr-style template. The assistant turn, including its closing ``</s>``, sits inside
#: ``{% generation %}`` so ``return_assistant_tokens_mask`` (TRL ``assistant_only_loss``)
#: trains the model to stop; TRL checks exactly that the end-of-turn token is masked in.
LM_CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|assistant|>\n' -}}"
    "{%- generation -%}{{- message['content'] + eos_token -}}{%- endgeneration -%}"
    "{{- '\n' -}}"
    "{%- elif message['role'] == 'system' or message['role'] == 'user' -%}"
    "{{- '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' -}}"
    "{%- else -%}"
    "{{- raise_exception('unsupported chat role ' + message['role']"
    " + '; use system, user or assistant') -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|assistant|>\n' -}}{%- endif -%}"
)

#: A few general sentences so the tokenizers are not purely geological.
GENERAL_TEXTS: tuple[str, ...] = (
    "Привет! Как дела? Сегодня хорошая погода, и мы идём гулять в парк.",
    "Москва — столица России. Ёлка стоит в центре площади, а рядом ёжик.",
    "Пожалуйста, ответь на вопрос кратко и по существу.",
    "Вопрос: что такое месторождение? Ответ: природное скопление полезного ископаемого.",
    "В 2024 г. было 365 дней; 1/3 из них — выходные и праздники (примерно).",
    "«Кавычки-ёлочки», „лапки“, многоточие… и тире — всё это русская типографика.",
    "Hello! This is a short English sentence about geology, ore and rocks.",
    "The quick brown fox jumps over the lazy dog; 0123456789 %+-=*/().",
    "Assistant: I can summarise the report and list the key numbers.",
)


def corpus_texts(
    corpus_dir: Path | None,
    *,
    seed: int = 0,
    docs: int = DEFAULT_CORPUS_DOCS,
    with_general: bool = True,
) -> list[str]:
    """Collect texts to train tiny tokenizers on.

    Args:
        corpus_dir: A sample corpus folder (as written by
            `geomas.sample.generate_sample_corpus`); its
            ``annotations/label_studio_export.json`` tasks' ``data.text`` are read. ``None``
            generates a corpus into a temporary folder and reads that.
        seed: Seed of the generated corpus; ignored when ``corpus_dir`` is given.
        docs: Number of reports in the generated corpus; ignored when ``corpus_dir`` is given.
        with_general: Append `GENERAL_TEXTS` (short general Russian and English sentences).

    Returns:
        The task texts in export order, then the general sentences.

    Raises:
        InputError: The export is missing, is not valid JSON, or holds no task texts.
    """
    if corpus_dir is None:
        from geomas.sample import generate_sample_corpus

        with tempfile.TemporaryDirectory(prefix="geomas-tiny-corpus-") as tmp:
            corpus = generate_sample_corpus(Path(tmp), docs=docs, seed=seed)
            texts = _read_export(corpus.annotations_path)
    else:
        from geomas.sample.corpus import ANNOTATIONS_NAME

        texts = _read_export(Path(corpus_dir) / "annotations" / ANNOTATIONS_NAME)
    if with_general:
        texts.extend(GENERAL_TEXTS)
    return texts


def _read_export(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(
            f"{path} not found; pass a sample corpus folder (geomas sample-corpus OUT) "
            "or omit it to generate one"
        )
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a UTF-8 JSON Label Studio export: {exc}") from exc
    if not isinstance(tasks, list):
        raise InputError(f"{path} must hold a list of Label Studio tasks, got {type(tasks)}")
    datas = [task.get("data") for task in tasks if isinstance(task, dict)]
    texts = [d["text"] for d in datas
             if isinstance(d, dict) and isinstance(d.get("text"), str) and d["text"].strip()]
    if not texts:
        raise InputError(f"{path} holds no tasks with a non-empty data.text")
    return texts


#: Continuation characters are shifted into Supplementary Private Use Area-A while training.
_CONTINUATION_SHIFT = 0xF0000
_CONTINUATION_LIMIT = 0x110000 - _CONTINUATION_SHIFT


def _mark_continuation(word: str) -> str | None:
    """Shift every character after the first into private use, or ``None`` if one cannot be."""
    if any(ord(ch) >= _CONTINUATION_SHIFT for ch in word) or any(
        ord(ch) >= _CONTINUATION_LIMIT for ch in word[1:]
    ):
        return None
    return word[0] + _shift(word[1:])


def _shift(chars: str) -> str:
    return "".join(chr(ord(ch) + _CONTINUATION_SHIFT) for ch in chars)


def _unmark_continuation(token: str) -> str:
    """``x`` + shifted characters back to ``x...``; a shifted first character becomes ``##x``."""
    rest = "".join(chr(ord(ch) - _CONTINUATION_SHIFT) for ch in token[1:])
    if ord(token[0]) < _CONTINUATION_SHIFT:
        return token[0] + rest
    return "##" + chr(ord(token[0]) - _CONTINUATION_SHIFT) + rest


def _train_wordpiece(texts: Iterable[str], vocab_size: int) -> dict[str, int]:
    """Train a WordPiece vocabulary the way ``WordPieceTrainer`` does, but reproducibly.

    ``WordPieceTrainer`` assigns ids to the ``##x`` continuation symbols in hash-map order,
    and merge ties are broken by id, so the same texts give different vocabularies in different
    processes. Here continuation characters become distinct private-use characters, which the
    BPE trainer orders by code point; the learned pieces are mapped back to ``x``/``##x`` form.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    # Cased and accent-preserving: «Ёлкинское» and «елкинское» are different words to a geologist
    # reading a report, and stripping accents would fold «ё» into «е».
    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    lines = []
    for text in texts:
        words = pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
        marked = [_mark_continuation(word) for word, _ in words]
        lines.append(" ".join(word for word in marked if word))

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(NER_SPECIAL_TOKENS),
        initial_alphabet=sorted(set(NER_ALPHABET + _shift(NER_ALPHABET))),
        show_progress=False,
    )
    bpe.train_from_iterator(lines, trainer=trainer)
    special = set(NER_SPECIAL_TOKENS)
    return {
        token if token in special else _unmark_continuation(token): index
        for token, index in bpe.get_vocab(with_added_tokens=True).items()
    }


def _train_byte_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=LM_UNK))
    # No prefix space and no offset trimming: decode(encode(s)) must give back s exactly.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[LM_UNK, LM_BOS, LM_EOS, LM_PAD, *LM_ROLE_TOKENS],
        # Every byte is in the vocabulary, so no text ever needs <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def _prepare_output(
    out_dir: Path, texts: Iterable[str], vocab_size: int
) -> tuple[Path, list[str]]:
    """Check the vocabulary size and the texts; create the output folder."""
    if vocab_size < 300:
        raise InputError(
            f"vocab_size must be at least 300 (byte alphabet plus special tokens), got {vocab_size}"
        )
    text_list = [t for t in texts if t.strip()]
    if not text_list:
        raise InputError("texts is empty; pass at least one non-empty training text")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir, text_list


def make_tiny_ner(
    out_dir: Path, texts: Iterable[str], *, seed: int = 0, vocab_size: int = 4000
) -> Path:
    """Write a tiny random BERT encoder and a cased WordPiece tokenizer trained on ``texts``.

    The checkpoint is a ``BertModel`` without pooler, so
    ``AutoModelForTokenClassification.from_pretrained(out_dir, num_labels=..., id2label=...,
    label2id=...)`` loads it with a freshly initialised classification head. The tokenizer is
    a ``BertTokenizer`` (the fast, ``tokenizers``-backed class; ``do_lower_case=False``) and
    returns offsets with ``return_offsets_mapping=True``. Words seen in ``texts`` and any word
    of `NER_ALPHABET` characters tokenize without ``[UNK]``.

    Args:
        out_dir: Folder to write into; created if missing. Existing files of the same names
            are replaced.
        texts: Training texts for the tokenizer.
        seed: Seed of the weight initialisation; the same seed and texts give identical bytes.
        vocab_size: Upper bound of the WordPiece vocabulary (a small corpus may give fewer).

    Returns:
        ``out_dir``.

    Raises:
        InputError: ``vocab_size`` is too small or ``texts`` is empty.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    out_dir, text_list = _prepare_output(out_dir, texts, vocab_size)

    # Built through the transformers class from the vocabulary: from_pretrained does the same,
    # so the tokenizer that is saved is exactly the one that is loaded.
    tokenizer = BertTokenizer(
        vocab=_train_wordpiece(text_list, vocab_size),
        do_lower_case=False,
        strip_accents=False,
        model_max_length=NER_MAX_LENGTH,
    )
    tokenizer.save_pretrained(out_dir)

    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        max_position_embeddings=NER_MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=False)
    model.save_pretrained(out_dir)
    logger.info("Wrote a tiny NER encoder to %s (vocab %d, %d parameters)", out_dir,
                len(tokenizer), model.num_parameters())
    return out_dir


def make_tiny_lm(
    out_dir: Path,
    texts: Iterable[str],
    *,
    seed: int = 0,
    vocab_size: int = 4000,
    hidden_size: int = 128,
    num_layers: int = 2,
    tie_embeddings: bool = True,
) -> Path:
    """Write a tiny random Llama causal LM and a byte-level BPE tokenizer trained on ``texts``.

    The tokenizer round-trips any string exactly (``decode(encode(s, add_special_tokens=False))
    == s``), prepends ``<s>`` like Llama tokenizers do, pads with ``<pad>`` and ends turns and
    documents with ``</s>``. Its chat template knows the roles system, user and assistant,
    supports ``add_generation_prompt`` and marks assistant turns with ``{% generation %}``.
    The attention projections are named ``q_proj``/``k_proj``/``v_proj``/``o_proj`` (LoRA
    targets).

    Args:
        out_dir: Folder to write into; created if missing. Existing files of the same names
            are replaced.
        texts: Training texts for the tokenizer.
        seed: Seed of the weight initialisation; the same seed and texts give identical bytes.
        vocab_size: Upper bound of the BPE vocabulary (a small corpus may give fewer).
        hidden_size: Width (a multiple of 64; heads of 32 dimensions).
        num_layers: Decoder layers.
        tie_embeddings: Share the input embeddings with the output head (the default keeps the
            model smallest; untied, LoRA on the layers learns new answers faster).

    Returns:
        ``out_dir``.

    Raises:
        InputError: ``vocab_size`` is too small, ``texts`` is empty or the sizes do not fit.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if hidden_size < 64 or hidden_size % 64 or num_layers < 1:
        raise InputError(f"hidden_size {hidden_size} must be a multiple of 64 and num_layers "
                         f"{num_layers} at least 1")

    out_dir, text_list = _prepare_output(out_dir, texts, vocab_size)

    trained = _train_byte_bpe(text_list, vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=trained,
        bos_token=LM_BOS,
        eos_token=LM_EOS,
        pad_token=LM_PAD,
        unk_token=LM_UNK,
        extra_special_tokens=list(LM_ROLE_TOKENS),
        add_bos_token=True,
        add_eos_token=False,
        model_max_length=LM_MAX_LENGTH,
        chat_template=LM_CHAT_TEMPLATE,
    )
    tokenizer.save_pretrained(out_dir)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=hidden_size // 32,
        num_key_value_heads=hidden_size // 64,
        head_dim=32,
        max_position_embeddings=LM_MAX_LENGTH,
        tie_word_embeddings=tie_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.update(bos_token_id=tokenizer.bos_token_id,
                                   eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out_dir)
    logger.info("Wrote a tiny causal LM to %s (vocab %d, %d parameters)", out_dir,
                len(tokenizer), model.num_parameters())
    return out_dir


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output path {out_dir} exists and is not a folder; choose a folder path")
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise InputError(
            f"{out_dir} is not empty; choose an empty output folder or pass overwrite=True "
            "(CLI: --overwrite) to replace a previous tiny model"
        )
    # Deleting a user-named folder is only safe when it is one we wrote.
    if not (out_dir / PROVENANCE_NAME).is_file():
        raise InputError(
            f"{out_dir} is not empty and holds no {PROVENANCE_NAME}, so it is not a tiny model "
            "folder that overwrite may replace; choose an empty output folder"
        )
    logger.info("Removing the previous tiny model in %s", out_dir)
    shutil.rmtree(out_dir)


def make_tiny(
    kind: TinyKind,
    out_dir: Path,
    *,
    corpus_dir: Path | None = None,
    seed: int = 0,
    vocab_size: int = 4000,
    overwrite: bool = False,
    pretrain_steps: int = 0,
) -> Path:
    """Write a tiny model of ``kind`` with a tokenizer trained on a sample corpus.

    Besides the Hugging Face files, ``out_dir`` gets ``geomas_tiny.json`` (kind, seed,
    vocabulary size, parameter count, weights sha256, corpus source) for provenance.

    Args:
        kind: ``"ner"`` for `make_tiny_ner`, ``"lm"`` for `make_tiny_lm`.
        out_dir: Empty or missing output folder.
        corpus_dir: Sample corpus folder to train the tokenizer on; ``None`` generates one
            with ``seed``.
        seed: Seed of the generated corpus and of the weight initialisation.
        vocab_size: Upper bound of the tokenizer vocabulary.
        overwrite: Replace ``out_dir`` if it holds a previous tiny model.
        pretrain_steps: For ``"lm"``: next-token training steps on the corpus text after
            initialisation (`pretrain_lm`), so the base model has some language; 0 keeps the
            random initialisation.

    Returns:
        ``out_dir``.

    Raises:
        InputError: ``kind`` is unknown, ``out_dir`` is a file or is not empty (and not a
            previous tiny model with ``overwrite``), or the corpus cannot be read.
    """
    builders = {"ner": make_tiny_ner, "lm": make_tiny_lm}
    if kind not in builders:
        raise InputError(f"unknown tiny model kind {kind!r}; use one of {sorted(builders)}")
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, overwrite)
    texts = corpus_texts(corpus_dir, seed=seed)
    builders[kind](out_dir, texts, seed=seed, vocab_size=vocab_size)
    if kind == "lm" and pretrain_steps > 0:
        pretrain_lm(out_dir, texts, steps=pretrain_steps, seed=seed)

    from safetensors import safe_open

    with safe_open(str(out_dir / WEIGHTS_NAME), framework="pt") as weights:
        n_params = sum(math.prod(weights.get_slice(key).get_shape()) for key in weights.keys())
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(out_dir, local_files_only=True)
    source = {"corpus_dir": str(corpus_dir)} if corpus_dir is not None else {
        "generated": "geomas.sample.generate_sample_corpus", "seed": seed,
        "docs": DEFAULT_CORPUS_DOCS}
    provenance = {
        "generator": "geomas.models.make_tiny",
        "kind": kind,
        "seed": seed,
        "vocab_size_limit": vocab_size,
        "vocab_size": config.vocab_size,
        "parameters": n_params,
        "weights_sha256": hashlib.sha256((out_dir / WEIGHTS_NAME).read_bytes()).hexdigest(),
        "corpus": source,
        "texts": len(texts),
    }
    write_json(out_dir / PROVENANCE_NAME, provenance)
    return out_dir


def pretrain_lm(
    model_dir: Path,
    texts: Iterable[str],
    *,
    steps: int,
    seq_len: int = 128,
    batch_size: int = 16,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> float:
    """Give a tiny causal LM some language: full next-token training on ``texts``.

    A random-init tiny LM scores 0 on every answer and LoRA alone cannot teach it a language,
    so the demo's base model is pre-trained on the corpus text first (plain torch loop, CPU).

    Returns:
        The mean loss of the last 10 steps.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True)
    ids: list[int] = []
    for text in texts:
        ids.extend(tok(text, add_special_tokens=False)["input_ids"])
        ids.append(tok.eos_token_id)
    blocks = torch.tensor(ids[: len(ids) // seq_len * seq_len]).view(-1, seq_len)
    if len(blocks) == 0:
        raise InputError("not enough corpus text to pre-train the tiny LM")
    opt = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses: list[float] = []
    with Progress("pretrain", total=steps, unit="steps") as progress:
        for _ in range(steps):
            idx = torch.randint(len(blocks), (batch_size,), generator=gen)
            batch = blocks[idx]
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(float(loss.detach()))
            progress.set_extra(f"loss {losses[-1]:.3f}")
            progress.advance()
    model.save_pretrained(str(model_dir))
    tail = losses[-10:]
    logger.info("pre-trained the tiny LM for %d steps: loss %.3f -> %.3f", steps, losses[0],
             sum(tail) / len(tail))
    return sum(tail) / len(tail)
