"""The canonical instruction example every dataset format is read into and written from.

Stages after QA synthesis (cleaning, splitting, formatting) work on `Example`s, so each file
format needs only a reader and a writer, and lineage (`meta`) survives every stage.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Example(BaseModel):
    """One instruction example with its class label, grouping key and lineage."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, description="Stable id (qa_id for synthesised pairs).")
    instruction: str = Field(description="Task + question shown to the model.")
    input: str = Field(default="", description="Context (may be empty).")
    output: str = Field(description="Target answer.")
    system: str | None = Field(default=None, description="System prompt, when the format has one.")
    label: str | None = Field(
        default=None, description="Class for stratification: entity_type or a text label."
    )
    group: str | None = Field(
        default=None, description="Grouping key that must not span splits (doc_id)."
    )
    meta: dict[str, Any] = Field(
        default_factory=dict,
        description="Lineage and provenance: doc_id, chunk_id, qa_id, source_file, provider...",
    )


class ExampleSet(BaseModel):
    """A list of examples as one pipeline artifact (one JSON document)."""

    examples: list[Example] = Field(default_factory=list)
