"""QA records: pairs (qa_pairs.json), the run summary; rejects are `geomas.records.Reject`.

qa_pairs.json keeps the original tool's five keys (`question, answer, entity_type, source_text,
context`) and adds lineage keys; `load_qa_pairs` also reads files with only the five.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from geomas.errors import InputError
from geomas.formats.example import Example
from geomas.io import load_records, write_json
from geomas.qa.templates import task_description
from geomas.records import Reject

QA_PAIRS_FILE = "qa_pairs.json"
QA_REJECTS_FILE = "qa_rejects.jsonl"
QA_SUMMARY_FILE = "qa_summary.json"

#: The keys of the original tool's qa_pairs.json records.
ORIGINAL_KEYS: tuple[str, ...] = ("question", "answer", "entity_type", "source_text", "context")
#: Lineage keys geomas adds to every pair.
LINEAGE_KEYS: tuple[str, ...] = (
    "qa_id", "chunk_id", "doc_id", "entity_text", "entity_start", "entity_end", "template_id",
    "generator",
)


def stable_id(*parts: object) -> str:
    """A short hex id from the parts (sha1 of their ``|``-joined text)."""
    return hashlib.sha1("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:16]


class JudgeVerdict(BaseModel):
    """What the LLM judge said about a pair (`geomas.qa.judge`)."""

    model_config = ConfigDict(extra="forbid")

    faithfulness: int = Field(ge=1, le=5, description="1-5: the answer is supported by the "
                              "context.")
    relevance: int = Field(ge=1, le=5, description="1-5: the answer answers the question.")
    reason: str = ""
    model: str = Field(default="", description="The judge model.")


class QAPair(BaseModel):
    """One question-answer pair with its lineage.

    A record read from the original tool's file has only the first five fields; `qa_id` is then
    derived from its content and the lineage fields are None. `judge` is written only for
    judged pairs, so files of runs without the judge keep exactly their keys.
    """

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str
    entity_type: str
    source_text: str = Field(description="The whole chunk text the pair was made from.")
    context: str = Field(description="Window of the chunk around the answer (instruct input).")
    qa_id: str = Field(
        default="",
        description="Stable id: hash of chunk_id, entity span and template (content hash for "
        "records without lineage).",
    )
    chunk_id: str | None = None
    doc_id: str | None = None
    entity_text: str | None = None
    entity_start: int | None = Field(default=None, ge=0, description="Offset in source_text.")
    entity_end: int | None = Field(default=None, ge=0)
    template_id: str | None = Field(default=None, description="'<TYPE>.<k>' of templates.py.")
    generator: str | None = Field(default=None, description="'template' or 'teacher:<model>'.")
    judge: JudgeVerdict | None = Field(
        default=None, description="The LLM judge's verdict (qa.judge); written only when set."
    )

    @model_validator(mode="after")
    def _fill_id(self) -> QAPair:
        if not self.qa_id:
            self.qa_id = stable_id(
                "qa", self.source_text, self.context, self.question, self.answer,
                self.entity_type,
            )
        return self

    @model_serializer(mode="wrap")
    def _judge_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("judge") is None:
            data.pop("judge", None)
        return data


class QAResult(BaseModel):
    """Pairs and rejects of one generation run."""

    pairs: list[QAPair] = Field(default_factory=list)
    rejects: list[Reject] = Field(default_factory=list)
    n_chunks: int = 0
    n_entities: int = 0
    profiles: dict[str, Any] = Field(
        default_factory=dict, description="doc_id -> DocumentProfile (as a dict)."
    )
    ner_shift: dict[str, Any] = Field(
        default_factory=dict, description="doc_id -> DocumentShift (NER density check)."
    )

    @property
    def pairs_by_type(self) -> dict[str, int]:
        """Kept pairs per entity type."""
        return dict(Counter(p.entity_type for p in self.pairs))

    @property
    def rejects_by_rule(self) -> dict[str, int]:
        """Rejects per rule."""
        return dict(Counter(r.rule for r in self.rejects))


class QASet(BaseModel):
    """The QA-pairs artifact passed between pipeline steps (one JSON document)."""

    pairs: list[QAPair] = Field(default_factory=list)


class QASummary(BaseModel):
    """What `generate_qa_pairs` did (qa_summary.json)."""

    chunks: int
    chunks_with_pairs: int
    entities: int
    pairs: int
    pairs_by_type: dict[str, int]
    pairs_by_generator: dict[str, int]
    rejected: int
    rejects_by_rule: dict[str, int]
    num_pairs: int
    answer_mode: str
    ner_model_path: str | None
    profiles: dict[str, Any] = Field(
        default_factory=dict,
        description="Per document (doc_id): its domain profile, score, scores and evidence.",
    )
    ner_shift: dict[str, Any] = Field(
        default_factory=dict,
        description="Per document (doc_id): NER entities per 1,000 characters against the "
        "model's reference, the ratio, whether it is a domain shift and what was done.",
    )
    teacher: dict[str, Any] | None = Field(
        default=None,
        description="Teacher model, qa mode, per-outcome counts of its tasks (generate; mode "
        "rewrite/answer) and usage (requests, cache_hits, errors, tokens, seconds); None when "
        "the teacher was not used.",
    )
    judge: dict[str, Any] | None = Field(
        default=None,
        description="Judge model, thresholds, verdict counts and usage; None when off.",
    )
    out_path: str
    rejects_path: str
    seconds: dict[str, float]


def write_qa_pairs(pairs: Iterable[QAPair], path: Path) -> Path:
    """Write pairs as a JSON list (UTF-8, Cyrillic unescaped) atomically; returns the path."""
    return write_json(path, [p.model_dump() for p in pairs], indent=1, end="")


def load_qa_pairs(path: Path) -> list[QAPair]:
    """Read qa_pairs.json (a JSON list or JSON Lines): geomas's or the original five-key records.

    Raises:
        InputError: the file is missing or not JSON, or a record lacks a field (the message
            names the file and the line).
    """
    pairs = []
    for rec in load_records(path)[1]:
        try:
            pairs.append(QAPair.model_validate(rec.value))
        except ValidationError as exc:
            raise InputError(
                f"{path}: line {rec.line}: QA pair #{rec.index} is invalid (needs at least "
                f"{', '.join(ORIGINAL_KEYS)}):\n{exc}"
            ) from exc
    return pairs


def qa_to_example(pair: QAPair, task_descriptions: Mapping[str, str] | None = None) -> Example:
    r"""The canonical instruction example of a pair (the original instruct format).

    instruction = task description + ``"\n\nВопрос: "`` + question, input = context,
    output = answer, label = entity type, group = doc_id; `meta` carries the lineage.
    """
    instruction = f"{task_description(pair.entity_type, task_descriptions)}\n\nВопрос: "
    meta = {key: getattr(pair, key) for key in LINEAGE_KEYS if getattr(pair, key) is not None}
    meta["entity_type"] = pair.entity_type
    return Example(
        id=pair.qa_id,
        instruction=instruction + pair.question,
        input=pair.context,
        output=pair.answer,
        label=pair.entity_type,
        group=pair.doc_id,
        meta=meta,
    )
