"""Records written by ingestion: chunks, the documents manifest and rejects."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DocStatus = Literal["parsed", "cached", "rejected", "duplicate"]


class Chunk(BaseModel):
    """One chunk of document text, as written to chunks.json."""

    model_config = ConfigDict(extra="forbid")

    chunk_id: str = Field(description="Stable id: doc_id prefix, index and text hash.")
    doc_id: str = Field(description="sha256 of the source file's bytes.")
    source: str = Field(description="File path relative to the source folder.")
    chunk_index: int = Field(ge=0)
    text: str
    headings: list[str] = Field(
        default_factory=list, description="Heading path, outermost first."
    )
    pages: list[int] = Field(default_factory=list, description="1-based pages; [] if unpaged.")
    char_start: int = Field(ge=0, description="Offset of `text` in the document text file.")
    char_end: int = Field(ge=0)
    n_tokens: int = Field(ge=0, description="Tokens of `text` under the configured tokenizer.")
    parser: str = Field(description="Which docling pipeline produced the text.")


class DocumentRecord(BaseModel):
    """One input file's outcome in the documents manifest."""

    model_config = ConfigDict(extra="forbid")

    source: str
    doc_id: str | None = None
    size_bytes: int
    status: DocStatus
    parser: str | None = None
    pages: int | None = None
    n_chunks: int = 0
    reason: str | None = None
    duplicate_of: str | None = None
    warnings: list[str] = Field(default_factory=list)
    seconds: float | None = None


class Reject(BaseModel):
    """A file that could not be turned into chunks, with the reason (rejects.jsonl)."""

    model_config = ConfigDict(extra="forbid")

    source: str
    doc_id: str | None
    stage: Literal["ingest"] = "ingest"
    rule: str = Field(description="Short machine-readable cause, e.g. unsupported_type.")
    reason: str


class ChunkSet(BaseModel):
    """The chunks artifact passed between pipeline steps, with each document's page count."""

    chunks: list[Chunk]
    page_counts: dict[str, int] = Field(
        default_factory=dict, description="doc_id -> number of pages (paginated formats only)."
    )

    def as_dicts(self) -> list[dict[str, object]]:
        """Chunk records as plain dicts (the chunks.json form)."""
        return [c.model_dump() for c in self.chunks]
