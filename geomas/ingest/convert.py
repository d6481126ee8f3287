"""docling conversion and chunking of one file; runs inside worker processes."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geomas.config import IngestConfig
from geomas.errors import ConfigError, MissingExtraError
from geomas.ingest import legacy, ocr

log = logging.getLogger(__name__)

PARSER_NATIVE = "docling-native-pdf"
PARSER_LAYOUT = "docling-layout-pdf"


def resolve_pdf_parser(config: IngestConfig) -> str:
    """Say which PDF pipeline a config selects: layout when weights are configured."""
    if config.pdf_parser == "native":
        return PARSER_NATIVE
    if config.pdf_parser == "layout" or config.layout_artifacts_path is not None:
        return PARSER_LAYOUT
    return PARSER_NATIVE


def build_converter(config: IngestConfig) -> Any:
    """Create a docling DocumentConverter for PDF, DOCX, HTML and Markdown.

    Raises:
        ConfigError: layout weights folder missing.
        MissingExtraError: the layout pipeline's packages are not installed.
    """
    from docling.datamodel.base_models import InputFormat
    from docling.document_converter import (
        DocumentConverter,
        NativePdfFormatOption,
        PdfFormatOption,
    )

    parser = resolve_pdf_parser(config)
    if parser == PARSER_LAYOUT:
        artifacts = config.layout_artifacts_path
        if artifacts is None or not Path(artifacts).is_dir():
            raise ConfigError(
                f"ingest.layout_artifacts_path={artifacts} is not a folder; download docling's "
                "layout weights there or use pdf_parser: native"
            )
        try:
            from docling.datamodel.pipeline_options import PdfPipelineOptions
            from docling.pipeline.standard_pdf_pipeline import StandardPdfPipeline
        except ImportError as exc:  # pragma: no cover - depends on the installed extra
            raise MissingExtraError(
                "the layout PDF pipeline needs the full docling package: "
                "pip install 'geomas[layout]'"
            ) from exc
        pdf_opts: Any = PdfPipelineOptions(
            artifacts_path=str(artifacts),
            do_ocr=False,
            document_timeout=config.document_timeout_s,
        )
        pdf_option = PdfFormatOption(pipeline_cls=StandardPdfPipeline, pipeline_options=pdf_opts)
    else:
        from docling.datamodel.backend_options import ThreadedDoclingParseBackendOptions
        from docling.datamodel.pipeline_options import NativePdfPipelineOptions

        pdf_opts = NativePdfPipelineOptions(
            generate_page_images=False,
            generate_picture_images=False,
            document_timeout=config.document_timeout_s,
            parser_threads=1,
        )
        # A plain PdfFormatOption gives the threaded docling-parse backend its own defaults,
        # whatever the pipeline options say: 4 parser threads, every page rendered to an image
        # (and its vector shapes computed for that), up to 32 decoded pages buffered ahead.
        # None of it is used here. One parser thread per worker process (the workers are the
        # parallelism), no rendering, 2 pages buffered: same text, ~220 MB less peak memory on
        # a 263-page table-heavy PDF (docs/notes/ingest-large-pdf-profile-2026-12-06.md).
        # model_validate: mypy (no pydantic plugin) reads docling's Field(...) defaults as
        # required arguments
        backend_opts = ThreadedDoclingParseBackendOptions.model_validate(
            {"parser_threads": 1, "render_pages": False, "include_bitmap_images": False,
             "max_concurrent_results": 2}
        )
        pdf_option = NativePdfFormatOption(pipeline_options=pdf_opts,
                                           backend_options=backend_opts)
    return DocumentConverter(
        allowed_formats=[InputFormat.PDF, InputFormat.DOCX, InputFormat.HTML, InputFormat.MD],
        format_options={InputFormat.PDF: pdf_option, InputFormat.DOCX: _word_option()},
    )


def _word_option() -> Any:
    """The DOCX reader of docling, without its LibreOffice renderings of pictures.

    With `soffice` on PATH (geomas installs it for .doc/.rtf) docling's Word backend turns every
    DrawingML shape, EMF/WMF picture and chart into an image by a LibreOffice run of its own:
    3-5 s each, 390 s instead of 15 s for tz_gas_upravlenie.docx saved as .doc and back (73
    shapes). Chunks are text, and those images never reach them: never look for a renderer.
    """
    from docling.backend.msword_backend import MsWordDocumentBackend
    from docling.document_converter import WordFormatOption

    class TextWordBackend(MsWordDocumentBackend):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.docx_to_pdf_converter = None
            self.docx_to_pdf_converter_init = True  # docling's flag: "renderer looked up"
            self.display_drawingml_warning = False  # it would say "install LibreOffice"

    return WordFormatOption(backend=TextWordBackend)


def build_chunker(config: IngestConfig) -> Any:
    """Create docling-core's HybridChunker (kind-aware, hygiene serialiser), offline tokenizer."""
    from geomas.ingest.hygiene import HygieneChunker, serializer_provider
    from geomas.ingest.tokens import make_tokenizer

    return HygieneChunker(
        tokenizer=make_tokenizer(config.tokenizer, config.max_tokens), merge_peers=True,
        serializer_provider=serializer_provider(config.hygiene),
        join_inline=config.hygiene.enabled and config.hygiene.plain_text,
    )


def chunk_id_for(doc_id: str, index: int, text: str) -> str:
    """Stable chunk id: same document bytes and settings give the same ids."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]  # noqa: S324 - not security
    return f"{doc_id[:12]}-{index:05d}-{digest}"


@dataclass
class FileOutcome:
    """What converting one file produced: chunks (dicts without source) or a failure."""

    ok: bool
    parser: str
    pages: int | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    rule: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    hygiene: dict[str, int] = field(default_factory=dict)
    page_sources: list[dict[str, Any]] = field(default_factory=list)
    ocr: dict[str, Any] | None = None

    @property
    def pages_ocr(self) -> int:
        """Pages whose text comes from OCR."""
        return sum(1 for p in self.page_sources if p.get("source") == "ocr")


#: Plain-text formats whose encoding is detected (UTF-8 first) before docling reads them as
#: UTF-8. HTML is left to docling's parser, which honours the page's own charset declaration.
TEXT_SUFFIXES = (".md",)


def decode_text(data: bytes) -> tuple[str | None, str]:
    """The text of a text file: UTF-8 (BOM allowed), else the encoding charset-normalizer finds.

    Returns:
        ``(text, encoding)``, or ``(None, reason)`` when no encoding fits.
    """
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        return None, ("the file is not UTF-8 and no text encoding fits it; save it as UTF-8")
    return str(best), best.encoding


class FileConverter:
    """Converts and chunks files with one converter and chunker (built once per process)."""

    def __init__(self, config: IngestConfig) -> None:
        """Build the docling converter and chunker for `config`."""
        self.config = config
        self.parser = resolve_pdf_parser(config)
        self.converter = build_converter(config)
        self.chunker = build_chunker(config)
        self._scratch: list[tempfile.TemporaryDirectory[str]] = []

    def parser_for(self, path: Path) -> str:
        """Name the pipeline that handles `path`."""
        suffix = path.suffix.lower()
        if suffix in legacy.LEGACY_SUFFIXES:
            return legacy.PARSER_LEGACY
        return self.parser if suffix == ".pdf" else "docling-simple"

    def _page_ranges(self, path: Path) -> list[tuple[int, int] | None]:
        """Page ranges of `ingest.pdf_page_batch` pages; one whole-file pass if unreadable."""
        import pypdfium2

        try:
            pdf = pypdfium2.PdfDocument(str(path))
        except pypdfium2.PdfiumError:
            return [None]  # docling reports it, and _classify_failure names it
        n = len(pdf)
        pdf.close()
        step = self.config.pdf_page_batch
        if n <= step:
            return [None]
        return [(a, min(a + step - 1, n)) for a in range(1, n + 1, step)]

    def convert(self, path: Path, doc_id: str) -> FileOutcome:
        """Convert and chunk one file; failures come back as an outcome, never raised."""
        t0 = time.perf_counter()
        try:
            return self._convert(path, doc_id, t0)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop a corpus run
            log.debug("conversion of %s failed", path, exc_info=True)
            return FileOutcome(
                False, self.parser_for(path), rule="conversion_error",
                reason=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0,
            )
        finally:
            while self._scratch:  # the OCR'd copy of a PDF, once docling has read it
                self._scratch.pop().cleanup()

    def _scratch_dir(self) -> Path:
        """A temporary folder that lives until the current file's conversion is done."""
        folder = tempfile.TemporaryDirectory(prefix="geomas-convert-")
        self._scratch.append(folder)
        return Path(folder.name)

    def _convert(self, path: Path, doc_id: str, t0: float) -> FileOutcome:
        from docling.datamodel.base_models import ConversionStatus, DocumentStream

        parser = self.parser_for(path)
        source: Path | DocumentStream = path
        if legacy.needs_preparing(path):  # .doc/.rtf: LibreOffice to DOCX first (legacy.py)
            prepared = legacy.prepare(path, self.config.legacy)
            if prepared.data is None:
                return FileOutcome(False, prepared.parser, rule=prepared.rule,
                                   reason=prepared.reason, seconds=time.perf_counter() - t0)
            parser = prepared.parser
            source = DocumentStream(name=str(prepared.name), stream=io.BytesIO(prepared.data))
        elif path.suffix.lower() in TEXT_SUFFIXES:
            text, problem = decode_text(path.read_bytes())
            if text is None:
                return FileOutcome(False, parser, rule="bad_encoding", reason=problem,
                                   seconds=time.perf_counter() - t0)
            # docling reads text files as UTF-8; hand it the decoded text
            source = DocumentStream(name=path.name, stream=io.BytesIO(text.encode("utf-8")))
        pdf: ocr.PreparedPdf | None = None
        if path.suffix.lower() == ".pdf":
            # pages without a usable text layer are recognised into a copy of the PDF (ocr.py)
            try:
                pdf = ocr.prepare_pdf(path, self.config, self._scratch_dir(),
                                      keep_images=self.parser == PARSER_LAYOUT)
            except ocr.OcrUnavailable as exc:
                return FileOutcome(False, parser, rule=ocr.RULE_UNAVAILABLE, reason=str(exc),
                                   seconds=time.perf_counter() - t0)
            if pdf is not None:
                source = pdf.path
        from geomas.ingest.hygiene import PdfLines, clean_document, finish_chunk_text

        hygiene_cfg = self.config.hygiene
        # native PDFs are one item per line: hygiene rebuilds them from the lines alone, so a
        # long PDF is converted a page range at a time and each range's document dropped
        by_lines = parser == PARSER_NATIVE and hygiene_cfg.enabled
        lines = PdfLines()
        document: Any = None
        errors: list[str] = []
        partial = False
        n_pages = 0
        for page_range in (self._page_ranges(source if isinstance(source, Path) else path)
                           if by_lines else [None]):
            result = self.converter.convert(
                source, raises_on_error=False,
                **({"page_range": page_range} if page_range is not None else {}),
            )
            errors += [e.error_message for e in result.errors]
            if result.status not in (ConversionStatus.SUCCESS, ConversionStatus.PARTIAL_SUCCESS):
                reason = "; ".join(errors) or f"docling status {result.status.value}"
                rule, reason = _classify_failure(path, reason)
                return FileOutcome(
                    False, parser, rule=rule, reason=reason, seconds=time.perf_counter() - t0
                )
            partial |= result.status == ConversionStatus.PARTIAL_SUCCESS
            n_pages += len(result.pages)
            if by_lines:
                lines.add(result.document)
            else:
                document = result.document
            del result
        pages = n_pages if path.suffix.lower() == ".pdf" else None
        doc, kinds, counts = clean_document(lines if by_lines else document, hygiene_cfg)
        chunks: list[dict[str, Any]] = []
        offset = 0
        for chunk, kind in self.chunker.chunk_with_kinds(doc, kinds, counts):
            text, kind = finish_chunk_text(chunk.text.strip(), kind, hygiene_cfg, counts)
            if not text:
                continue
            page_nos = sorted(
                {prov.page_no for item in chunk.meta.doc_items for prov in item.prov}
            )
            chunks.append(
                {
                    "chunk_id": chunk_id_for(doc_id, len(chunks), text),
                    "doc_id": doc_id,
                    "chunk_index": len(chunks),
                    "text": text,
                    "kind": kind,
                    "headings": list(chunk.meta.headings or []),
                    "pages": page_nos,
                    "char_start": offset,
                    "char_end": offset + len(text),
                    "n_tokens": self.chunker.tokenizer.count_tokens(text),
                    "parser": parser,
                    **_text_source(page_nos, pdf),
                }
            )
            offset += len(text) + len(DOC_TEXT_SEPARATOR)
        seconds = time.perf_counter() - t0
        page_sources = [p.as_record() for p in pdf.pages] if pdf is not None else []
        engine = pdf.engine() if pdf is not None else None
        if not chunks:
            return FileOutcome(
                False, parser, pages=pages, rule="no_text",
                reason=_no_text_reason(pdf, self.config), seconds=seconds,
                page_sources=page_sources, ocr=engine,
            )
        warnings = (errors if partial else []) + (pdf.warnings if pdf is not None else [])
        counts.update(Counter(c["kind"] for c in chunks if c["kind"] != "body"))
        return FileOutcome(True, parser, pages=pages, chunks=chunks, warnings=warnings,
                           seconds=seconds, hygiene=dict(sorted(counts.items())),
                           page_sources=page_sources, ocr=engine)


def _text_source(page_nos: list[int], pdf: ocr.PreparedPdf | None) -> dict[str, Any]:
    """A chunk's ``text_source`` (native, ocr, or mixed across its pages) and OCR provenance."""
    engine = pdf.engine() if pdf is not None else None
    if pdf is None or engine is None:
        return {"text_source": "native", "ocr": None}
    by_page = {p.page: p for p in pdf.pages}
    recognised = [by_page[n] for n in page_nos if n in by_page and by_page[n].source == "ocr"]
    if not recognised:
        return {"text_source": "native", "ocr": None}
    confidences = [p.ocr_confidence for p in recognised if p.ocr_confidence is not None]
    return {
        "text_source": "ocr" if len(recognised) == len(page_nos) else "mixed",
        "ocr": {**engine, "pages": [p.page for p in recognised],
                "confidence": round(sum(confidences) / len(confidences), 1)
                if confidences else None},
    }


def _no_text_reason(pdf: ocr.PreparedPdf | None, config: IngestConfig) -> str:
    """Why a file gave no chunks, and what to do when OCR could help."""
    if pdf is None:
        return "no extractable text"
    unusable = [p.page for p in pdf.pages if p.layer != "good"]
    if config.ocr == "off" and unusable:
        return (f"no extractable text: {len(unusable)} of {len(pdf.pages)} pages have no usable "
                "text layer (a scanned PDF?); set ingest.ocr: auto to recognise them with "
                "Tesseract")
    if pdf.ocr_pages:
        return (f"no extractable text: OCR ({ocr.ENGINE} {pdf.languages}) of "
                f"{len(pdf.ocr_pages)} pages found none (blank or picture-only pages?)")
    return "no extractable text (blank pages?)"



#: Chunk texts joined with this form a document's text file; char offsets point into it.
DOC_TEXT_SEPARATOR = "\n\n"


def _classify_failure(path: Path, docling_reason: str) -> tuple[str, str]:
    """Turn docling's failure into a rule name and a reason a person can act on.

    docling reports corrupt and password-protected PDFs alike ("could not load document"), so a
    failed PDF is probed with pdfium to tell them apart.
    """
    if path.suffix.lower() == ".pdf":
        import pypdfium2

        try:
            pypdfium2.PdfDocument(str(path)).close()
        except pypdfium2.PdfiumError as exc:
            msg = str(exc)
            if "password" in msg.lower():
                return "encrypted", f"PDF is password-protected ({msg}); decrypt it first"
            return "corrupt", f"not a readable PDF ({msg}); docling: {docling_reason}"
    low = docling_reason.lower()
    if "format not allowed" in low:
        return "unsupported_type", docling_reason
    return "conversion_failed", docling_reason


# --- worker-process entry points ------------------------------------------------------------

_WORKER: FileConverter | None = None


def init_worker(config_json: str) -> None:
    """Process-pool initializer: die with the parent, then build the converter once."""
    global _WORKER
    _exit_with_parent(os.getppid())
    logging.getLogger("docling").setLevel(logging.ERROR)
    _WORKER = FileConverter(IngestConfig.model_validate_json(config_json))


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this worker when its parent is gone (a killed `makedataset`).

    Otherwise it would wait forever on a task queue nobody writes to (~0.5 GB per worker).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="geomas-parent-watch", daemon=True).start()


def convert_in_worker(path: str, doc_id: str) -> FileOutcome:
    """Convert one file with the worker's converter."""
    if _WORKER is None:  # pragma: no cover - initializer always runs first
        raise RuntimeError("worker not initialised")
    return _WORKER.convert(Path(path), doc_id)
