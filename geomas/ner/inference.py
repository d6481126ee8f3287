"""Entity extraction with a trained token-classification model.

Texts are split into sentences and words with razdel (the same units and tokenisation as the
training data: a model trained on sentences is asked about sentences, not about 1,000-character
chunks it never saw), each sentence is fed to the model in sub-word windows of `max_length`
with `stride` overlap, so sentences of any length work; windows from many texts are batched
together. A word's prediction comes from the window where it sits farthest from an edge.
Spans are decoded from BIO tags; an `I-X` without a preceding `B-X` starts a new span.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from geomas.errors import InputError
from geomas.io import write_json
from geomas.text import sentence_spans, token_spans

log = logging.getLogger(__name__)


@dataclass
class Entity:
    """One extracted entity: label, surface text, confidence and character offsets."""

    label: str
    text: str
    confidence: float
    start: int
    end: int


@dataclass
class WordPredictions:
    """The model's reading of one text, word by word (razdel words, as in training).

    ``tags[i]`` is word i's most likely BIO tag and ``scores[i]`` that tag's probability; a
    word the tokenizer gave no sub-tokens gets ``O`` with probability 1.0.
    """

    text: str
    offsets: list[tuple[int, int]]
    tags: list[str]
    scores: list[float]


@dataclass
class NerResult:
    """Entities found in one text."""

    text: str
    entities: list[Entity] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"text": self.text, "entities": [asdict(e) for e in self.entities]}


def split_units(text: str) -> list[list[tuple[int, int]]]:
    """Word offsets grouped by razdel sentence (offsets relative to `text`)."""
    units = []
    for start, end in sentence_spans(text):
        if words := [(start + s, start + e) for s, e in token_spans(text[start:end], "razdel")]:
            units.append(words)
    return units


def decode_bio(
    text: str,
    offsets: Sequence[tuple[int, int]],
    tags: Sequence[str],
    scores: Sequence[float] | None = None,
) -> list[Entity]:
    """Turn word-level BIO tags into entities whose confidence is the mean word score."""
    from geomas.ner.bio import bio_to_spans

    spans = bio_to_spans(text, offsets, tags)
    if scores is None:
        return [Entity(sp.label, sp.text, 1.0, sp.start, sp.end) for sp in spans]
    starts = [s for s, _ in offsets]
    entities = []
    for sp in spans:
        i = bisect.bisect_left(starts, sp.start)
        j = bisect.bisect_left(starts, sp.end)
        conf = sum(scores[i:j]) / (j - i)
        entities.append(Entity(sp.label, sp.text, round(conf, 6), sp.start, sp.end))
    return entities


def _keep_central(
    best: dict[tuple[int, int], tuple[int, Any]],
    probs: Any,
    word_ids: Sequence[int | None],
    text_i: int,
    first_word: int,
) -> None:
    """Keep, per word, the probabilities of the window where it lies farthest from an edge.

    A word's first sub-token stands for it; ``best[(text index, word index)]`` holds
    (distance from the nearer window edge, probabilities).
    """
    n_tok = len(word_ids)
    for pos, wid in enumerate(word_ids):
        if wid is None or (pos and word_ids[pos - 1] == wid):
            continue
        dist = min(pos, n_tok - 1 - pos)
        key = (text_i, first_word + wid)
        if key not in best or dist > best[key][0]:
            best[key] = (dist, probs[pos])


class BertNerModel:
    """A loaded token-classification model with the original tool's `extract_entities` API."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 256,
        stride: int = 64,
        batch_size: int = 16,
        min_confidence: float = 0.0,
    ) -> None:
        """Wrap a transformers model and its fast tokenizer."""
        if not getattr(tokenizer, "is_fast", False):
            raise InputError("entity extraction needs a fast tokenizer (tokenizer.json)")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.id2label: dict[int, str] = {int(k): v for k, v in model.config.id2label.items()}
        self.max_length = max_length
        self.stride = stride
        self.batch_size = batch_size
        self.min_confidence = min_confidence

    @property
    def labels(self) -> list[str]:
        """Entity types the model knows (without B-/I- prefixes)."""
        return sorted({v.split("-", 1)[1] for v in self.id2label.values() if "-" in v})

    def extract_entities(self, text: str) -> NerResult:
        """Extract entities from one text of any length."""
        return self.extract_batch([text])[0]

    def extract_batch(
        self, texts: Sequence[str], batch_size: int | None = None, progress: bool = False
    ) -> list[NerResult]:
        """Extract entities from many texts; windows of all texts share forward batches."""
        return [NerResult(text=w.text, entities=self.entities(w))
                for w in self.predict_words(texts, batch_size, progress)]

    def entities(self, words: WordPredictions) -> list[Entity]:
        """BIO spans of one text's word predictions, at or above `min_confidence`."""
        ents = decode_bio(words.text, words.offsets, words.tags, words.scores)
        return [e for e in ents if e.confidence >= self.min_confidence]

    def predict_words(
        self, texts: Sequence[str], batch_size: int | None = None, progress: bool = False
    ) -> list[WordPredictions]:
        """Each word's most likely tag and its probability, for many texts (batched windows)."""
        import torch

        from geomas.progress import Progress

        batch_size = batch_size or self.batch_size
        # units: (text index, index of the unit's first word in the text, word offsets)
        units: list[tuple[int, int, list[tuple[int, int]]]] = []
        words: list[list[tuple[int, int]]] = []
        for i, text in enumerate(texts):
            text_words: list[tuple[int, int]] = []
            for unit in split_units(text):
                units.append((i, len(text_words), unit))
                text_words.extend(unit)
            words.append(text_words)
        # best[(text index, word index)] = (distance from window edge, probabilities)
        best: dict[tuple[int, int], tuple[int, Any]] = {}
        if units:
            enc = self.tokenizer(
                [[texts[i][s:e] for s, e in unit] for i, _, unit in units],
                is_split_into_words=True,
                truncation=True,
                max_length=self.max_length,
                stride=self.stride,
                return_overflowing_tokens=True,
                padding=False,
            )
            n_windows = len(enc["input_ids"])
            sample_map = enc["overflow_to_sample_mapping"]
            device = next(self.model.parameters()).device
            order = sorted(range(n_windows), key=lambda j: len(enc["input_ids"][j]))
            with Progress("ner", total=n_windows, unit="windows", bar=progress) as bar:
                for b in range(0, n_windows, batch_size):
                    idx = order[b : b + batch_size]
                    feats = [{"input_ids": enc["input_ids"][j],
                              "attention_mask": enc["attention_mask"][j]} for j in idx]
                    batch = self.tokenizer.pad(feats, return_tensors="pt")
                    with torch.no_grad():
                        logits = self.model(**{k: v.to(device) for k, v in batch.items()}).logits
                    probs = torch.softmax(logits.float(), dim=-1).cpu()
                    for row, j in enumerate(idx):
                        text_i, first_word, _ = units[sample_map[j]]
                        _keep_central(best, probs[row], enc.word_ids(j), text_i, first_word)
                    bar.advance(len(idx))
        results = []
        for i, text in enumerate(texts):
            tags: list[str] = []
            scores: list[float] = []
            for w in range(len(words[i])):
                entry = best.get((i, w))
                if entry is None:  # a word the tokenizer produced no sub-tokens for
                    tags.append("O")
                    scores.append(1.0)
                    continue
                p = entry[1]
                k = int(p.argmax())
                tags.append(self.id2label[k])
                scores.append(float(p[k]))
            results.append(WordPredictions(text, words[i], tags, scores))
        return results


def load_bert_ner_model(
    model_path: str | Path,
    *,
    max_length: int = 256,
    stride: int = 64,
    batch_size: int = 16,
    min_confidence: float = 0.0,
    device: str | None = None,
) -> BertNerModel:
    """Load a trained NER model folder (as written by train-bert-ner).

    Raises:
        InputError: the folder does not exist or holds no token-classification model.
    """
    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise InputError(
            f"{path} is not a trained NER model folder (no config.json); train one with "
            "`geomas train-bert-ner`"
        )
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForTokenClassification.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not load the NER model in {path}: {exc}") from exc
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(dev)
    return BertNerModel(
        model, tokenizer, max_length=max_length, stride=stride, batch_size=batch_size,
        min_confidence=min_confidence,
    )


def write_entities(
    results: Sequence[NerResult], path: Path, ids: Sequence[str] | None = None
) -> None:
    """Write results as JSON (one object per text, with an id when given)."""
    rows = [r.to_dict() if ids is None else {"id": ids[k], **r.to_dict()}
            for k, r in enumerate(results)]
    write_json(path, rows, indent=1, end="")
