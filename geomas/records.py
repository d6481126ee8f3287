"""What stages return: `StageResult` (kept, rejects, report), and the one `Reject` record.

Every stage function (ingest, QA, clean, ...) returns a `StageResult`: the kept records as the
typed artifact the next stage takes, the records it left out, and its report. The CLI command
and the ZenML step call the same function and use these fields; nothing re-reads the files.

Ingest (rejects.jsonl), chunk validation (validation/rejects.jsonl, one line per excluded
document), QA synthesis (qa_rejects.jsonl), cleaning (clean_rejects.jsonl), the
split (split_rejects.jsonl) and format-instruct-dataset (``<stem>_rejects.jsonl``) all write
`Reject`. Each file keeps the keys it has always had: `STAGE_KEYS` lists them per stage, in
file order, written even when null; any other field is written only when it is set (cleaning's
``duplicate_of``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from geomas.io import write_jsonl

RejectStage = Literal["ingest", "validate", "qa", "clean", "format", "split"]

_RECORD_KEYS = ("id", "stage", "rule", "reason", "label", "group")
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "ingest": ("source", "doc_id", "stage", "rule", "reason"),
    "validate": ("source", "doc_id", "stage", "rule", "reason"),
    "qa": ("stage", "rule", "reason", "chunk_id", "doc_id", "entity", "qa_id", "question",
           "template_id"),
    "clean": ("stage", "rule", "reason", "id"),
    "format": _RECORD_KEYS,
    "split": _RECORD_KEYS,
}


class Reject(BaseModel):
    """One file, entity or record left out, with the machine-readable rule and a reason."""

    model_config = ConfigDict(extra="forbid")

    stage: RejectStage
    rule: str = Field(description="Short cause, e.g. unsupported_type, near_dup, min_samples.")
    reason: str
    id: str | None = Field(default=None, description="The record's id (qa_id, example id).")
    source: str | None = Field(
        default=None, description="Ingest, validate: file path in the source dir."
    )
    doc_id: str | None = None
    chunk_id: str | None = None
    qa_id: str | None = None
    entity: dict[str, Any] | None = Field(
        default=None, description="QA: label, text, start, end, confidence of the entity."
    )
    question: str | None = None
    template_id: str | None = None
    label: str | None = None
    group: str | None = None
    duplicate_of: str | None = Field(default=None, description="Clean: id of the kept copy.")
    judge: dict[str, Any] | None = Field(
        default=None, description="QA: the LLM judge's verdict (judge_rejected)."
    )

    @model_serializer(mode="wrap")
    def _stage_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        keys = STAGE_KEYS[self.stage]
        return {**{k: data[k] for k in keys if k in data},
                **{k: v for k, v in data.items() if k not in keys and v is not None}}


def write_rejects(path: Path, rejects: Iterable[Reject]) -> Path:
    """Write rejects as JSON Lines, atomically (an empty file when there are none)."""
    return write_jsonl(path, rejects)


KeptT = TypeVar("KeptT", bound=BaseModel)
ReportT = TypeVar("ReportT", bound=BaseModel)


class StageResult(BaseModel, Generic[KeptT, ReportT]):
    """One stage's outcome: what it kept, what it left out (with the rule), and its report."""

    kept: KeptT
    rejects: list[Reject] = Field(default_factory=list)
    report: ReportT
