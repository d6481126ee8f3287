"""Answer metrics that work on Russian text: exact match, token F1, ROUGE-L, BERTScore.

Every metric compares the same word tokens, `word_tokens` (the words of `normalize_answer`), so
the scores of one answer are consistent with one another. The normalisation follows SQuAD's
(lowercase, no punctuation, single spaces) with changes for Russian:

- Unicode throughout: punctuation and symbols are any character that is not a letter, digit
  or space (Unicode categories P*, S*...), so «ёлочки», „лапки“, em dashes and ``№`` go
  too, not only ASCII punctuation.
- ``ё`` is read as ``е`` (Russian text writes both for one letter) and stress marks
  (combining accents, ``за́мок``) are dropped.
- Punctuation between two digits is deleted (``43,7`` and ``43.7`` are both ``437``), other
  punctuation becomes a space (``г/т`` is ``г т``, not ``гт``), so words glued by a dash or a
  slash stay two words.
- No article removal: Russian has no articles.

ROUGE-L is ``rouge_score``'s, with `UnicodeWordTokenizer` in place of its default tokenizer: the
default keeps only ``[a-z0-9]`` and turns every Cyrillic answer into no tokens, which scores 0.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean

from geomas.errors import InputError, MissingExtraError

#: Combining marks (stress accents) and format characters (soft hyphens from PDF text) vanish.
_DROPPED_CATEGORIES = frozenset({"Mn", "Cf"})
_DIGIT_JOINER = re.compile(r"(?<=\d)[^\w\s](?=\d)")
_NON_WORD = re.compile(r"[^\w\s]|_")
_SPACES = re.compile(r"\s+")

METRIC_NAMES: tuple[str, ...] = ("exact_match", "token_f1", "rouge_l")


def normalize_answer(text: str) -> str:
    """Lowercase, ``ё`` → ``е``, no stress marks, punctuation, symbols or repeated spaces.

    Args:
        text: An answer (a prediction or a reference).

    Returns:
        The normalised text; words are separated by single spaces.
    """
    text = unicodedata.normalize("NFC", text).lower().replace("ё", "е")
    # After NFC, letters such as й and ё are single code points, so the combining marks left
    # are accents (Russian stress marks) that would otherwise split a word in two; soft hyphens
    # from PDF line breaks would do the same.
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    text = _DIGIT_JOINER.sub("", text)
    # Every punctuation (P*) and symbol (S*) character is outside \w, as is anything else
    # that is neither a letter, a digit nor a space; "_" is inside \w but is punctuation.
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def word_tokens(text: str) -> list[str]:
    """The words of `normalize_answer` (the tokens every metric here compares)."""
    return normalize_answer(text).split()


class UnicodeWordTokenizer:
    """A ``rouge_score`` tokenizer that keeps Cyrillic (and any other script) words.

    ``rouge_scorer.RougeScorer(..., tokenizer=UnicodeWordTokenizer())`` calls `tokenize`.
    """

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into `word_tokens`."""
        return word_tokens(text)


def exact_match(pred: str, ref: str) -> float:
    """1.0 when the normalised prediction equals the normalised reference, else 0.0."""
    return float(normalize_answer(pred) == normalize_answer(ref))


def token_f1(pred: str, ref: str) -> float:
    """SQuAD-style F1 of the word-token multisets of ``pred`` and ``ref``.

    When either side has no tokens, the score is 1.0 if both are empty and 0.0 otherwise, as in
    the SQuAD v2 evaluation script.
    """
    pred_tokens, ref_tokens = word_tokens(pred), word_tokens(ref)
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def rouge_l(pred: str, ref: str) -> float:
    """ROUGE-L F-measure of ``pred`` against ``ref`` over Unicode word tokens.

    ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeWordTokenizer())``:
    rouge_score's default tokenizer keeps only ASCII letters and scores Cyrillic text 0.
    An empty side scores 0.0.
    """
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=UnicodeWordTokenizer())
    # rouge_score takes the reference (target) first.
    return float(scorer.score(ref, pred)["rougeL"].fmeasure)


def check_pairs(preds: Sequence[str], refs: Sequence[str], refs_name: str = "references") -> None:
    """Refuse lists of different lengths, or empty ones, naming what to pass.

    Raises:
        InputError: The lists differ in length or are empty.
    """
    one = refs_name.removesuffix("s")
    if len(preds) != len(refs):
        raise InputError(
            f"{len(preds)} predictions for {len(refs)} {refs_name}; pass one prediction per "
            f"{one}, in the same order"
        )
    if not preds:
        raise InputError(f"no predictions to score; pass at least one prediction/{one} pair")


def corpus_scores(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Mean exact match, token F1 and ROUGE-L F-measure over prediction/reference pairs.

    Args:
        preds: Model answers.
        refs: Reference answers, in the same order.

    Returns:
        ``{"exact_match": ..., "token_f1": ..., "rouge_l": ...}``, each in [0, 1].

    Raises:
        InputError: The lists differ in length or are empty.
    """
    check_pairs(preds, refs)
    return {
        "exact_match": fmean(exact_match(p, r) for p, r in zip(preds, refs, strict=True)),
        "token_f1": fmean(token_f1(p, r) for p, r in zip(preds, refs, strict=True)),
        "rouge_l": fmean(rouge_l(p, r) for p, r in zip(preds, refs, strict=True)),
    }


def bertscore(
    preds: Sequence[str],
    refs: Sequence[str],
    model_path: Path,
    *,
    num_layers: int | None = None,
    batch_size: int = 16,
) -> dict[str, float]:
    """Mean BERTScore precision, recall and F1 with a local encoder (``bert-score`` package).

    Args:
        preds: Model answers.
        refs: Reference answers, in the same order.
        model_path: Local Hugging Face encoder folder (a multilingual or Russian BERT); hub
            ids are refused so that evaluation never downloads.
        num_layers: Layer whose embeddings are compared; ``None``: the model's last layer.
        batch_size: Sentences per encoder batch.

    Returns:
        ``{"bertscore_precision": ..., "bertscore_recall": ..., "bertscore_f1": ...}``.

    Raises:
        InputError: The lists differ in length or are empty, or ``model_path`` is not a folder.
        MissingExtraError: ``bert-score`` is not installed.
    """
    check_pairs(preds, refs)
    model_path = Path(model_path)
    if not model_path.is_dir():
        raise InputError(
            f"BERTScore model {model_path} is not a local folder; download the encoder once "
            "(e.g. with `huggingface-cli download`) and pass its folder"
        )
    try:
        import bert_score
    except ImportError as exc:
        raise MissingExtraError(
            "BERTScore needs the bert-score package: pip install 'geomas[eval]' "
            "(or pip install 'bert-score>=0.3.13')"
        ) from exc
    if num_layers is None:
        from transformers import AutoConfig

        num_layers = int(AutoConfig.from_pretrained(model_path, local_files_only=True)
                         .num_hidden_layers)
    precision, recall, f1 = bert_score.score(
        list(preds),
        list(refs),
        model_type=str(model_path),
        num_layers=num_layers,
        batch_size=batch_size,
        verbose=False,
    )
    return {
        "bertscore_precision": float(precision.mean()),
        "bertscore_recall": float(recall.mean()),
        "bertscore_f1": float(f1.mean()),
    }
