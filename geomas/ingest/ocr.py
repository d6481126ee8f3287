"""OCR of PDF pages without a usable text layer: Tesseract through pytesseract, offline.

Each page's own text layer is read with pdfium and judged (`geomas.ingest.textquality`): good
pages are kept as they are; under ``ingest.ocr: auto`` the pages whose layer is garbage, or
empty on a page that holds an image (a scan), are rendered (``ocr_dpi``) and recognised by
Tesseract (``ocr_languages``). One Tesseract run per page gives both a one-page PDF with an
invisible text layer (text only for the native pipeline: 5 KB instead of 0.5 MB a page; over
the page image for the layout pipeline, whose model looks at the page) and a TSV of words with
their confidences. The recognised pages replace the originals in a copy of the PDF (pdfium
``import_pages``, page numbers unchanged), which docling then reads like any text PDF.

Why pytesseract and not OCRmyPDF: OCRmyPDF's Python API returns no word confidences and runs
Ghostscript and a PDF/A step per file; pytesseract is one Tesseract process per page and its
TSV gives the confidences recorded on chunks and documents.

A missing Tesseract or language data is not an error of the run: the document is rejected
(`OcrUnavailable`, rule ``ocr_unavailable``) with the Debian package to install.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from geomas.config import IngestConfig
from geomas.ingest.textquality import PageVerdict, measure, page_verdict

log = logging.getLogger(__name__)

ENGINE = "tesseract"
#: Reject rule of a document with pages to recognise when Tesseract cannot run.
RULE_UNAVAILABLE = "ocr_unavailable"

TextSource = Literal["native", "ocr"]


@dataclass
class PageText:
    """Where one PDF page's text comes from and how good its own text layer was."""

    page: int
    source: TextSource
    layer: PageVerdict
    dictionary_share: float | None
    mixed_share: float | None
    has_image: bool = False
    ocr_confidence: float | None = None

    def as_record(self) -> dict[str, Any]:
        """The JSON form kept in the cache and the documents manifest."""
        return asdict(self)


@dataclass
class PreparedPdf:
    """The PDF docling is to read (the original, or a copy with recognised pages)."""

    path: Path
    pages: list[PageText]
    engine_version: str | None = None
    languages: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ocr_pages(self) -> list[int]:
        """1-based numbers of the pages whose text comes from OCR."""
        return [p.page for p in self.pages if p.source == "ocr"]

    def engine(self) -> dict[str, Any] | None:
        """Engine, version and languages, when a page was recognised."""
        if not self.ocr_pages:
            return None
        return {"engine": ENGINE, "engine_version": self.engine_version,
                "languages": self.languages}


class OcrUnavailable(Exception):
    """Tesseract or its language data is missing; the message names the Debian package."""


def debian_packages(languages: str) -> list[str]:
    """Debian packages of Tesseract and the language data of `languages` ("rus+eng")."""
    return ["tesseract-ocr"] + [f"tesseract-ocr-{lang.lower().replace('_', '-')}"
                                for lang in languages.split("+")]


def survey(path: Path, config: IngestConfig) -> list[PageText] | None:
    """Judge the text layer of every page of `path`; None when pdfium cannot open it."""
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    try:
        pdf = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError:
        return None  # corrupt or encrypted: docling reports it, and convert names it
    pages: list[PageText] = []
    try:
        for index in range(len(pdf)):
            page = pdf[index]
            textpage = page.get_textpage()
            quality = measure(textpage.get_text_range(),
                              config.text_quality.dictionary_languages)
            textpage.close()
            verdict = page_verdict(quality, config.text_quality)
            # only an empty page's images matter (a scan or a blank page); walking the objects
            # of a table-heavy page costs more than reading its text
            has_image = verdict == "empty" and next(
                iter(page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,))), None) is not None
            page.close()
            pages.append(PageText(
                page=index + 1, source="native", layer=verdict,
                dictionary_share=_round(quality.dictionary_share),
                mixed_share=_round(quality.mixed_share), has_image=has_image,
            ))
    finally:
        pdf.close()
    return pages


def pages_to_recognise(pages: Sequence[PageText], mode: str) -> list[int]:
    """1-based pages that `mode` (``ingest.ocr``) sends to OCR."""
    if mode == "off":
        return []
    if mode == "force":
        return [p.page for p in pages]
    return [p.page for p in pages
            if p.layer == "garbage" or (p.layer == "empty" and p.has_image)]


def prepare_pdf(
    path: Path, config: IngestConfig, scratch: Path, *, keep_images: bool = False
) -> PreparedPdf | None:
    """Judge the pages of `path` and recognise those that need it (``config.ocr``).

    Args:
        path: The PDF.
        config: Ingest settings (``ocr*``, ``tesseract_cmd``, ``text_quality``).
        scratch: An empty folder that lives until docling has read the result.
        keep_images: Recognised pages keep their image under the text (the layout pipeline
            needs it); otherwise they hold the text alone.

    Returns:
        The PDF to convert with its per-page record, or None when pdfium cannot open `path`.

    Raises:
        OcrUnavailable: pages need OCR but Tesseract or a language's data is missing.
    """
    pages = survey(path, config)
    if pages is None:
        return None
    wanted = pages_to_recognise(pages, config.ocr)
    prepared = PreparedPdf(path=path, pages=pages)
    if not wanted:
        return prepared
    import pypdfium2

    with _tesseract(config):
        prepared.engine_version = tesseract_version(config)
        prepared.languages = config.ocr_languages
        src = pypdfium2.PdfDocument(str(path))
        recognised: dict[int, pypdfium2.PdfDocument] = {}
        try:
            for number in wanted:
                t0 = time.perf_counter()
                result = _recognise(src, number, config, scratch, prepared.warnings,
                                    keep_images)
                if result is None:
                    continue
                one_page, confidence = result
                recognised[number] = one_page
                pages[number - 1].source = "ocr"
                pages[number - 1].ocr_confidence = confidence
                log.debug("%s: OCR of page %d/%d in %.1f s (mean word confidence %s)",
                          path.name, number, len(pages), time.perf_counter() - t0, confidence)
            if not recognised:
                return prepared
            out = pypdfium2.PdfDocument.new()
            for index in range(len(src)):
                taken = recognised.get(index + 1)
                out.import_pages(taken if taken is not None else src,
                                 [0 if taken is not None else index])
            # same file name, so docling's document name is the original's
            prepared.path = scratch / path.name
            out.save(str(prepared.path))
            out.close()
        finally:
            for doc in recognised.values():
                doc.close()
            src.close()
    return prepared


def tesseract_version(config: IngestConfig) -> str:
    """The version of ``config.tesseract_cmd``, after checking it has every OCR language.

    Raises:
        OcrUnavailable: Tesseract does not run, or lacks the data of a language.
    """
    import pytesseract

    packages = " ".join(debian_packages(config.ocr_languages))
    with _tesseract(config):
        try:
            version = str(pytesseract.get_tesseract_version())
            installed = set(pytesseract.get_languages())
        except pytesseract.TesseractNotFoundError as exc:
            raise OcrUnavailable(
                f"pages need OCR, but Tesseract ({config.tesseract_cmd}) is not installed or "
                f"not on PATH: install the Debian package tesseract-ocr with the language data "
                f"(apt-get install -y {packages}), or set ingest.tesseract_cmd, or set "
                "ingest.ocr: off"
            ) from exc
        except SystemExit as exc:  # pytesseract exits on a version it cannot parse
            raise OcrUnavailable(
                f"pages need OCR, but {config.tesseract_cmd} is not a working Tesseract "
                f"({exc}): install the Debian package tesseract-ocr (apt-get install -y "
                f"{packages})"
            ) from None
    missing = [lang for lang in config.ocr_languages.split("+") if lang not in installed]
    if missing:
        needed = " ".join(debian_packages("+".join(missing))[1:])
        raise OcrUnavailable(
            f"pages need OCR, but Tesseract {version} has no language data for "
            f"{', '.join(missing)}: install the Debian package{'s' if len(missing) > 1 else ''} "
            f"{needed} (apt-get install -y {needed}), or change ingest.ocr_languages"
        )
    return version


def _recognise(
    src: Any, number: int, config: IngestConfig, scratch: Path, warnings: list[str],
    keep_images: bool,
) -> tuple[Any, float | None] | None:
    """OCR one page: its one-page PDF with a text layer and the mean word confidence.

    One Tesseract run writes both (pytesseract's ``run_tesseract``, which its
    ``run_and_get_multiple_output`` calls, here with ``textonly_pdf`` added). A page Tesseract
    fails on or times out keeps its own layer (None; a warning is added).
    """
    import pypdfium2
    import pytesseract

    page = src[number - 1]
    image = page.render(scale=config.ocr_dpi / 72, grayscale=True).to_pil()
    page.close()
    base = scratch / f"page-{number:05d}"
    png = base.with_suffix(".png")
    # the resolution in the PNG makes Tesseract's PDF page the size of the original page
    image.save(png, dpi=(config.ocr_dpi, config.ocr_dpi), compress_level=1)
    image.close()
    outputs = [base.with_suffix(".pdf"), base.with_suffix(".tsv")]
    try:
        pytesseract.pytesseract.run_tesseract(
            str(png), str(base), extension="pdf tsv", lang=config.ocr_languages,
            config="-c tessedit_create_tsv=1" + ("" if keep_images else " -c textonly_pdf=1"),
            timeout=int(config.ocr_page_timeout_s) or 1,
        )
        pdf_bytes = outputs[0].read_bytes()
        tsv = outputs[1].read_text(encoding="utf-8")
    except pytesseract.TesseractNotFoundError as exc:
        raise OcrUnavailable(
            f"Tesseract ({config.tesseract_cmd}) stopped being available during OCR: install "
            f"the Debian package tesseract-ocr ({' '.join(debian_packages(config.ocr_languages))})"
        ) from exc
    except RuntimeError as exc:  # TesseractError, or pytesseract's timeout
        warnings.append(f"page {number}: OCR failed ({str(exc).strip() or type(exc).__name__}); "
                        "the page keeps its own text layer")
        log.warning("OCR of page %d failed: %s", number, exc)
        return None
    finally:
        for file in (png, *outputs):
            file.unlink(missing_ok=True)
    return pypdfium2.PdfDocument(pdf_bytes), mean_confidence(tsv)


def mean_confidence(tsv: str) -> float | None:
    """Mean confidence (0-100) of the recognised words in Tesseract's TSV; None without words."""
    lines = tsv.splitlines()
    if not lines:
        return None
    header = lines[0].split("\t")
    try:
        level, conf, text = header.index("level"), header.index("conf"), header.index("text")
    except ValueError:
        return None
    values = []
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) <= text or cells[level] != "5" or not cells[text].strip():
            continue
        value = float(cells[conf])
        if value >= 0:
            values.append(value)
    return round(statistics.fmean(values), 1) if values else None


@contextmanager
def _tesseract(config: IngestConfig) -> Iterator[None]:
    """Point pytesseract at ``config.tesseract_cmd`` and limit Tesseract's threads.

    OMP_THREAD_LIMIT is set only around the Tesseract calls (and only when the environment does
    not set it), so that this process's own OpenMP users (torch) keep their threads.
    """
    import pytesseract

    module: Any = pytesseract.pytesseract
    before_cmd = module.tesseract_cmd
    set_threads = "OMP_THREAD_LIMIT" not in os.environ
    module.tesseract_cmd = config.tesseract_cmd
    if set_threads:
        os.environ["OMP_THREAD_LIMIT"] = str(config.ocr_threads)
    try:
        yield
    finally:
        module.tesseract_cmd = before_cmd
        if set_threads:
            os.environ.pop("OMP_THREAD_LIMIT", None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
