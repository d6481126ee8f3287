"""Active learning: NER pre-annotations for Label Studio, least confident chunks first.

`geomas export-annotations CHUNKS --ner-model M OUT` runs a trained NER model over the chunks
of chunks.json and writes them as Label Studio tasks (the JSON import format: a list of
``{"data": {...}, "predictions": [...]}``) with the model's entities as pre-annotations, the
chunks the model is least sure about first. A reviewer corrects them in Label Studio; its
JSON export keeps ``predictions`` and adds the human ``annotations``, which
`geomas.ner.annotations.convert_annotations` reads (it never uses predictions), and
``geomas train-bert-ner`` trains on the result.

Uncertainty (`UNCERTAINTY_MEASURE`): the model tags every razdel word of a chunk with its most
likely BIO tag, exactly as inference does (same sentences, windows and stride). A chunk's
confidence is the geometric mean of those tags' probabilities, ``exp(mean(log p))``: the
maximum normalised log-probability (MNLP) of Shen et al., "Deep Active Learning for Named
Entity Recognition" (ICLR 2018), which for a tagger without a CRF is the length-normalised
probability of its best tag sequence. Normalising by length keeps long chunks from ranking as
uncertain merely for having more words. Every word counts, ``O`` words too: a hesitation between
``O`` and an entity tag is what a reviewer should see. Tasks go out in ascending confidence;
ties go to the lower least-confident word, then to the earlier chunk in chunks.json.

Task format (see `LabelStudioTask`): ``data`` holds the chunk text and its lineage (chunk_id,
doc_id, doc_name, source, kind) plus the rank and confidence; ``doc_name`` (the source file,
else doc_id) is what convert-annotations keeps in each training record and what
train-bert-ner splits documents by. Each predicted span is a ``labels`` result from
``label`` to ``text`` (the names of the labelling config written beside the tasks, and of
the sample corpus's exports), with ``value.{start, end, text, labels}``: offsets are code
points, Python string indices, which is what Label Studio's exports hold and what
convert-annotations reads (it also accepts the UTF-16 offsets older Label Studio versions
wrote, checking them against ``value.text``). ``score`` is the entity's confidence (mean word
probability) per span and the chunk confidence per prediction, so Label Studio's "prediction
score" column sorts the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import quoteattr

from pydantic import BaseModel, ConfigDict, Field

from geomas.config import NerInferenceConfig
from geomas.errors import ConfigError, InputError
from geomas.io import atomic_write_text, write_json
from geomas.ner.inference import WordPredictions
from geomas.records import StageResult

log = logging.getLogger(__name__)

LABELS_FILE = "label_map.json"  # written by train-bert-ner beside the model
FROM_NAME = "label"  # the Labels control of the labelling config
TO_NAME = "text"  # the Text object it labels
UNCERTAINTY_MEASURE = (
    "chunk confidence = exp(mean over the chunk's razdel words of log p(most likely BIO tag)), "
    "the MNLP of Shen et al. 2018 as a geometric mean in [0, 1]; tasks in ascending "
    "confidence, ties to the lower least-confident word, then to the earlier chunk"
)


class SpanValue(BaseModel):
    """A labelled span: code-point offsets into ``data.text``, its text and its label."""

    start: int
    end: int
    text: str
    labels: list[str]


class SpanResult(BaseModel):
    """One region of a Label Studio prediction (a ``labels`` result)."""

    id: str
    from_name: str = FROM_NAME
    to_name: str = TO_NAME
    type: Literal["labels"] = "labels"
    value: SpanValue
    score: float = Field(description="The entity's confidence (mean word probability).")


class Prediction(BaseModel):
    """The model's pre-annotation of a task."""

    model_version: str
    score: float = Field(description="The chunk's confidence (see UNCERTAINTY_MEASURE).")
    result: list[SpanResult]


class TaskData(BaseModel):
    """A task's data: the chunk text, its lineage and its place in the uncertainty order."""

    text: str
    chunk_id: str
    doc_id: str
    doc_name: str = Field(description="Source file (else doc_id); training splits by it.")
    source: str
    kind: str
    rank: int = Field(ge=1, description="1 = the chunk the model is least sure about.")
    confidence: float = Field(ge=0.0, le=1.0)
    min_word_confidence: float = Field(ge=0.0, le=1.0)


class LabelStudioTask(BaseModel):
    """One task of a Label Studio JSON import, with the model's prediction."""

    data: TaskData
    predictions: list[Prediction]


class AnnotationTasks(BaseModel):
    """The tasks written, most uncertain first."""

    tasks: list[LabelStudioTask] = Field(default_factory=list)


class ExportReport(BaseModel):
    """What export-annotations read, skipped and wrote."""

    model_config = ConfigDict(extra="forbid")

    chunks_path: str
    model_path: str
    model_version: str
    chunks: int = Field(description="Chunks in chunks.json.")
    skipped_by_kind: dict[str, int] = Field(description="Chunks not of ner.chunk_kinds.")
    skipped_empty: int = Field(description="Chunks without a single word.")
    candidates: int = Field(description="Chunks scored for uncertainty.")
    limit: int | None
    tasks: int
    predicted_spans: int
    spans_per_label: dict[str, int]
    confidence_first: float | None = Field(description="Confidence of the first task.")
    confidence_last: float | None = Field(description="Confidence of the last task written.")
    out_path: str
    label_config_path: str
    measure: str = UNCERTAINTY_MEASURE


@dataclass(frozen=True)
class ChunkUncertainty:
    """A chunk's confidence under `UNCERTAINTY_MEASURE` and its position in chunks.json."""

    index: int
    confidence: float
    min_word_confidence: float


def chunk_confidence(scores: Sequence[float]) -> float:
    """Geometric mean of the words' top-tag probabilities, ``exp(mean(log p))``.

    Raises:
        ValueError: no scores (a chunk without words has no confidence).
    """
    if not scores:
        raise ValueError("a chunk without words has no confidence")
    return math.exp(math.fsum(math.log(p) for p in scores) / len(scores))


def rank_by_uncertainty(items: Sequence[ChunkUncertainty]) -> list[ChunkUncertainty]:
    """Least confident first; ties to the lower least-confident word, then the earlier chunk."""
    return sorted(items, key=lambda c: (c.confidence, c.min_word_confidence, c.index))


def model_labels(model_path: Path) -> list[str]:
    """The entity types of a trained model folder, in its label_map.json order.

    Raises:
        InputError: no readable label_map.json with a ``label_list``.
    """
    path = Path(model_path) / LABELS_FILE
    if not path.is_file():
        raise InputError(f"{model_path} is not a trained NER model folder (no {LABELS_FILE}); "
                         "train one with `geomas train-bert-ner` and pass its --output-dir")
    try:
        label_list = json.loads(path.read_text(encoding="utf-8"))["label_list"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a label map with a label_list ({exc}); retrain the "
                         "model with `geomas train-bert-ner`") from exc
    types: dict[str, None] = {}
    for tag in label_list:
        if isinstance(tag, str) and "-" in tag:
            types.setdefault(tag.split("-", 1)[1])
    return list(types)


def label_config(labels: Sequence[str]) -> str:
    """A Label Studio labelling config whose names match the tasks (``label`` → ``text``)."""
    options = "\n".join(f"    <Label value={quoteattr(x)}/>" for x in labels)
    return (f'<View>\n  <Labels name="{FROM_NAME}" toName="{TO_NAME}">\n{options}\n'
            f'  </Labels>\n  <Text name="{TO_NAME}" value="$text"/>\n</View>\n')


def label_config_path(out_path: Path) -> Path:
    """Where the labelling config goes: ``<out stem>_label_config.xml`` beside the tasks."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}_label_config.xml")


def _result_id(chunk_id: str, k: int) -> str:
    return hashlib.sha1(f"{chunk_id}:{k}".encode()).hexdigest()[:10]


def export_annotations(
    chunks_path: Path,
    ner_model_path: Path,
    out_path: Path,
    *,
    limit: int | None = None,
    config: NerInferenceConfig | None = None,
    progress: bool = True,
) -> StageResult[AnnotationTasks, ExportReport]:
    """`geomas export-annotations`: Label Studio tasks with NER pre-annotations, least sure first.

    Writes `out_path` (a JSON list of Label Studio tasks, see the module docstring) and, beside
    it, ``<stem>_label_config.xml``: the labelling config to create the Label Studio project
    with (the model's labels, the control and object names the tasks use).

    Args:
        chunks_path: chunks.json from ``geomas makedataset``.
        ner_model_path: Trained NER model folder (``geomas train-bert-ner``).
        out_path: The tasks file to write.
        limit: Most tasks to write (the least confident ones); None: all chunks.
        config: Window, stride, batch size, ``min_confidence`` (spans below it are not
            pre-annotated) and ``chunk_kinds`` (which chunks to send; default body only);
            default `NerInferenceConfig()`, its model_path replaced by `ner_model_path`.
        progress: Allow a progress bar on a terminal (progress lines are logged otherwise).

    Returns:
        The tasks written and the report (counts, confidence range, paths, the measure).

    Raises:
        InputError: a missing or empty chunks file, no chunks of the kinds asked for, a
            folder that is not a trained NER model, or an output path that is a folder.
        ConfigError: `limit` below 1.
    """
    from geomas.ner.inference import load_bert_ner_model
    from geomas.qa.generate import read_chunk_records

    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be at least 1 (or None for all chunks), got {limit}")
    chunks_path, model_dir, out_path = Path(chunks_path), Path(ner_model_path), Path(out_path)
    if out_path.is_dir():
        raise InputError(f"output path {out_path} is a folder; give a file such as "
                         f"{out_path / 'tasks.json'}")
    cfg = (config or NerInferenceConfig()).model_copy(update={"model_path": model_dir})
    if not chunks_path.is_file():
        raise InputError(f"chunks file {chunks_path} does not exist; make chunks.json with "
                         "`geomas makedataset SRC OUT`")
    chunks = read_chunk_records(chunks_path)
    if not chunks:
        raise InputError(f"{chunks_path} holds no chunks; make it with `geomas makedataset`")
    labels = model_labels(model_dir)

    kinds = Counter(c.kind for c in chunks)
    skipped = {k: n for k, n in sorted(kinds.items()) if k not in cfg.chunk_kinds}
    wanted = [(i, c) for i, c in enumerate(chunks) if c.kind in cfg.chunk_kinds]
    if not wanted:
        raise InputError(f"{chunks_path} has no chunks of kinds {list(cfg.chunk_kinds)} (it "
                         f"has {dict(kinds)}); choose kinds with --kinds (ner.chunk_kinds)")
    if skipped:
        log.info("export-annotations skips %d chunks by kind (ner.chunk_kinds=%s): %s",
                 sum(skipped.values()), list(cfg.chunk_kinds), skipped)

    model = load_bert_ner_model(model_dir, max_length=cfg.max_length, stride=cfg.stride,
                                batch_size=cfg.batch_size, min_confidence=cfg.min_confidence)
    predicted = model.predict_words([c.text for _, c in wanted], progress=progress)
    words: dict[int, WordPredictions] = {}
    scored: list[ChunkUncertainty] = []
    for (i, _), w in zip(wanted, predicted, strict=True):
        if w.scores:
            words[i] = w
            scored.append(ChunkUncertainty(i, chunk_confidence(w.scores), min(w.scores)))
    ranked = rank_by_uncertainty(scored)[:limit]

    model_version = model_dir.resolve().name
    tasks: list[LabelStudioTask] = []
    per_label: Counter[str] = Counter()
    for rank, item in enumerate(ranked, start=1):
        chunk = chunks[item.index]
        entities = model.entities(words[item.index])
        per_label.update(e.label for e in entities)
        result = [
            SpanResult(id=_result_id(chunk.chunk_id, k), score=e.confidence,
                       value=SpanValue(start=e.start, end=e.end, text=e.text, labels=[e.label]))
            for k, e in enumerate(entities)
        ]
        confidence = round(item.confidence, 6)
        tasks.append(LabelStudioTask(
            data=TaskData(text=chunk.text, chunk_id=chunk.chunk_id, doc_id=chunk.doc_id,
                          doc_name=chunk.source or chunk.doc_id, source=chunk.source,
                          kind=chunk.kind, rank=rank, confidence=confidence,
                          min_word_confidence=round(item.min_word_confidence, 6)),
            predictions=[Prediction(model_version=model_version, score=confidence,
                                    result=result)],
        ))

    config_path = label_config_path(out_path)
    write_json(out_path, [t.model_dump(mode="json") for t in tasks], indent=1)
    atomic_write_text(config_path, label_config(labels))
    report = ExportReport(
        chunks_path=str(chunks_path),
        model_path=str(model_dir),
        model_version=model_version,
        chunks=len(chunks),
        skipped_by_kind=skipped,
        skipped_empty=len(wanted) - len(scored),
        candidates=len(scored),
        limit=limit,
        tasks=len(tasks),
        predicted_spans=sum(per_label.values()),
        spans_per_label=dict(per_label.most_common()),
        confidence_first=tasks[0].data.confidence if tasks else None,
        confidence_last=tasks[-1].data.confidence if tasks else None,
        out_path=str(out_path),
        label_config_path=str(config_path),
    )
    log.info("wrote %d of %d candidate chunks as Label Studio tasks (confidence %s..%s) to %s",
             report.tasks, report.candidates, report.confidence_first, report.confidence_last,
             out_path)
    return StageResult(kept=AnnotationTasks(tasks=tasks), report=report)
