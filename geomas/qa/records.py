"""QA records: pairs (qa_pairs.json), rejects (qa_rejects.jsonl), the run summary.

qa_pairs.json keeps the original tool's five keys (`question, answer, entity_type, source_text,
context`) and adds lineage keys; `load_qa_pairs` also reads files with only the five.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from geomas.errors import InputError
from geomas.formats.example import Example
from geomas.qa.templates import task_description

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


class QAPair(BaseModel):
    """One question-answer pair with its lineage.

    A record read from the original tool's file has only the first five fields; `qa_id` is then
    derived from its content and the lineage fields are None.
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

    @model_validator(mode="after")
    def _fill_id(self) -> QAPair:
        if not self.qa_id:
            self.qa_id = stable_id(
                "qa", self.source_text, self.context, self.question, self.answer,
                self.entity_type,
            )
        return self


class QAReject(BaseModel):
    """A candidate pair (or teacher response) that was not kept, with the rule and reason."""

    model_config = ConfigDict(extra="forbid")

    stage: Literal["qa"] = "qa"
    rule: str = Field(description="Machine-readable cause, e.g. answer_too_long.")
    reason: str
    chunk_id: str | None = None
    doc_id: str | None = None
    entity: dict[str, Any] | None = Field(
        default=None, description="label, text, start, end, confidence of the entity."
    )
    qa_id: str | None = None
    question: str | None = None
    template_id: str | None = None


class QAResult(BaseModel):
    """Pairs and rejects of one generation run."""

    pairs: list[QAPair] = Field(default_factory=list)
    rejects: list[QAReject] = Field(default_factory=list)
    n_chunks: int = 0
    n_entities: int = 0

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
    teacher: dict[str, Any] | None = Field(
        default=None, description="Teacher model, mode and per-outcome counts when enabled."
    )
    out_path: str
    rejects_path: str
    seconds: dict[str, float]


def write_qa_pairs(pairs: Iterable[QAPair], path: Path) -> Path:
    """Write pairs as a JSON list (UTF-8, Cyrillic unescaped); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, json.dumps([p.model_dump() for p in pairs], ensure_ascii=False, indent=1))
    return path


def write_qa_rejects(rejects: Iterable[QAReject], path: Path) -> Path:
    """Write rejects as JSON lines; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, "".join(r.model_dump_json() + "\n" for r in rejects))
    return path


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load_qa_pairs(path: Path) -> list[QAPair]:
    """Read qa_pairs.json: geomas's records or the original tool's five-key records.

    Raises:
        InputError: the file is missing, not JSON, not a list, or a record lacks a field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"QA pairs file {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"QA pairs file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise InputError(f"QA pairs file {path} must hold a JSON list of pairs")
    pairs = []
    for k, row in enumerate(data):
        try:
            pairs.append(QAPair.model_validate(row))
        except ValidationError as exc:
            raise InputError(
                f"QA pair #{k} in {path} is invalid (needs at least {', '.join(ORIGINAL_KEYS)}):"
                f"\n{exc}"
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
