"""Records written by ingestion: chunks and the documents manifest (rejects: `geomas.records`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from geomas.config import ChunkKind

DocStatus = Literal["parsed", "cached", "rejected", "duplicate"]
#: Where a chunk's text comes from: the file's own text (layer), OCR, or both across its pages.
TextSource = Literal["native", "ocr", "mixed"]


class OcrProvenance(BaseModel):
    """How the OCR'd text of a chunk was made."""

    model_config = ConfigDict(extra="forbid")

    engine: str = Field(description="OCR engine: tesseract.")
    engine_version: str | None = Field(default=None, description="e.g. 5.3.0.")
    languages: str | None = Field(default=None, description="Tesseract languages, rus+eng.")
    pages: list[int] = Field(default_factory=list, description="The chunk's OCR'd pages.")
    confidence: float | None = Field(
        default=None, ge=0, le=100,
        description="Mean word confidence (0-100) of those pages, each page weighted equally.",
    )


class PageRecord(BaseModel):
    """Where one PDF page's text comes from, and how good its own text layer was."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(ge=1)
    source: Literal["native", "ocr"]
    layer: Literal["good", "garbage", "empty"] = Field(
        description="The verdict on the page's own text layer (ingest.text_quality)."
    )
    dictionary_share: float | None = Field(
        default=None, description="Share of dictionary words in the page's own text layer."
    )
    mixed_share: float | None = Field(
        default=None, description="Share of its words mixing Cyrillic and Latin letters."
    )
    has_image: bool = Field(
        default=False, description="An empty layer over an image (a scan); checked on pages "
        "with an empty layer only."
    )
    ocr_confidence: float | None = Field(
        default=None, description="Mean word confidence (0-100) of the OCR'd page."
    )


class Chunk(BaseModel):
    """One chunk of document text, as written to chunks.json."""

    model_config = ConfigDict(extra="forbid")

    chunk_id: str = Field(description="Stable id: doc_id prefix, index and text hash.")
    doc_id: str = Field(description="sha256 of the source file's bytes.")
    source: str = Field(description="File path relative to the source folder.")
    chunk_index: int = Field(ge=0)
    text: str
    kind: ChunkKind = Field(
        default="body",
        description="body (running text), table, toc or front_matter; only body goes to "
        "NER/QA by default (ner.chunk_kinds).",
    )
    headings: list[str] = Field(
        default_factory=list, description="Heading path, outermost first."
    )
    pages: list[int] = Field(default_factory=list, description="1-based pages; [] if unpaged.")
    char_start: int = Field(ge=0, description="Offset of `text` in the document text file.")
    char_end: int = Field(ge=0)
    n_tokens: int = Field(ge=0, description="Tokens of `text` under the configured tokenizer.")
    parser: str = Field(description="Which docling pipeline produced the text.")
    text_source: TextSource = Field(
        default="native",
        description="native: the file's own text (layer); ocr: recognised by OCR; mixed: its "
        "pages include both.",
    )
    ocr: OcrProvenance | None = Field(default=None, description="Set when OCR made its text.")


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
    hygiene: dict[str, int] = Field(
        default_factory=dict, description="What each hygiene rule changed in this document."
    )
    page_sources: list[PageRecord] = Field(
        default_factory=list,
        description="PDFs: per page, native text or OCR, the text-layer verdict and scores, the "
        "OCR confidence.",
    )
    ocr: OcrProvenance | None = Field(
        default=None, description="PDFs with OCR'd pages: engine, version, languages."
    )


class IngestSummary(BaseModel):
    """Counts and paths of one ingestion run."""

    source_dir: str
    output_dir: str
    pdf_parser: str = Field(description="The PDF pipeline that ran (native or layout).")
    files: int
    parsed: int
    cached: int
    rejected: int
    duplicates: int
    chunks: int
    pages_parsed: int
    pages_ocr: int = Field(
        default=0, description="Pages recognised by OCR in this run (cached documents not "
        "counted, like pages_parsed).",
    )
    seconds: float
    failure_ratio: float
    max_failure_ratio: float
    chunks_path: str
    manifest_path: str
    rejects_path: str
    rejects_by_rule: dict[str, int]
    hygiene: dict[str, int] = Field(
        default_factory=dict,
        description="Per hygiene rule, how often it fired over the documents of this run "
        "(cached ones included); table/toc/front_matter: chunks of that kind.",
    )
    chunk_kinds: dict[str, int] = Field(default_factory=dict, description="Chunks per kind.")

    @property
    def failed(self) -> bool:
        """Whether the share of rejected files exceeds the configured threshold."""
        return self.files > 0 and self.failure_ratio > self.max_failure_ratio


class ChunkSet(BaseModel):
    """The chunks artifact passed between pipeline steps, with each document's page count."""

    chunks: list[Chunk]
    page_counts: dict[str, int] = Field(
        default_factory=dict, description="doc_id -> number of pages (paginated formats only)."
    )

    def as_dicts(self) -> list[dict[str, object]]:
        """Chunk records as plain dicts (the chunks.json form)."""
        return [c.model_dump() for c in self.chunks]
