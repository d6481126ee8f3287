"""Byte-deterministic PDF and DOCX writers for the sample corpus, and the deliberately bad files.

PDFs are born-digital (reportlab platypus) with DejaVu Sans embedded as a TrueType subset so
Cyrillic text is extractable. DOCX files are written with python-docx and then re-zipped with
fixed entry timestamps, because python-docx stamps every zip entry with the wall clock.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from geomas.errors import MissingExtraError

logger = logging.getLogger(__name__)

FONT_REGULAR = "GeomasDejaVuSans"
FONT_BOLD = "GeomasDejaVuSans-Bold"
_FONT_FILES = {FONT_REGULAR: "DejaVuSans.ttf", FONT_BOLD: "DejaVuSans-Bold.ttf"}

# Fixed timestamps: the corpus must be byte-identical between runs with the same seed.
FIXED_DATETIME = dt.datetime(2024, 1, 1, 0, 0, 0)
_ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)

ENCRYPTED_USER_PASSWORD = "geomas-user"
ENCRYPTED_OWNER_PASSWORD = "geomas-owner"


@dataclass(frozen=True)
class Section:
    """One section of a report as it is written: heading, paragraphs, optional table."""

    heading: str
    paragraphs: tuple[str, ...]
    table: tuple[tuple[str, ...], ...] | None = None
    caption: str | None = None


@dataclass(frozen=True)
class Report:
    """A whole report ready to be written in any format."""

    title: str
    author: str
    subject: str
    sections: tuple[Section, ...]


def require_demo_extra() -> None:
    """Check that the writers' libraries (reportlab, python-docx) are installed.

    Raises:
        MissingExtraError: one of them is missing; the message names the ``demo`` extra.
    """
    import importlib.util

    missing = [
        package
        for module, package in (("reportlab", "reportlab"), ("docx", "python-docx"))
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise MissingExtraError(
            f"the sample-corpus generator needs {' and '.join(missing)}, which is not "
            "installed; install the demo extra: pip install 'geomas[demo]'"
        )


def dejavu_font_paths() -> dict[str, Path]:
    """Locate DejaVu Sans regular and bold TTF files.

    matplotlib (a dependency of mlflow) bundles them; common system font folders are the
    fallback.

    Returns:
        Mapping of the reportlab font name to the TTF path.

    Raises:
        MissingExtraError: Neither matplotlib nor a system DejaVu installation is available.
    """
    folders: list[Path] = []
    try:
        import matplotlib

        folders.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        logger.debug("matplotlib not importable; looking for system DejaVu fonts")
    folders += [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF")]
    for folder in folders:
        paths = {name: folder / file for name, file in _FONT_FILES.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    raise MissingExtraError(
        "the sample corpus needs the DejaVu Sans TTF fonts (Cyrillic) and found none in "
        f"{', '.join(str(f) for f in folders)}; install matplotlib (pip install matplotlib) "
        "or the fonts-dejavu-core system package"
    )


def _register_fonts() -> None:
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    registered = set(pdfmetrics.getRegisteredFontNames())
    for name, path in dejavu_font_paths().items():
        if name not in registered:
            pdfmetrics.registerFont(TTFont(name, str(path)))
    addMapping(FONT_REGULAR, 0, 0, FONT_REGULAR)
    addMapping(FONT_REGULAR, 1, 0, FONT_BOLD)


def render_pdf(report: Report, *, encrypt: bool = False) -> tuple[bytes, int]:
    """Render a report as a PDF with an embedded Cyrillic font.

    Args:
        report: The report to write.
        encrypt: Protect the PDF with `ENCRYPTED_USER_PASSWORD` (for the bad-files set).

    Returns:
        The PDF bytes and the number of pages.

    Raises:
        MissingExtraError: reportlab is not installed (the ``demo`` extra).
    """
    require_demo_extra()
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.platypus import (
        Flowable,
        KeepTogether,
        PageBreak,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    _register_fonts()
    # No hyphenation and no splitting of long words: extracted text must keep words intact.
    common = {"hyphenationLang": "", "embeddedHyphenation": 0, "splitLongWords": 0}
    h1 = ParagraphStyle(
        "GeomasH1", fontName=FONT_BOLD, fontSize=16, leading=20, spaceAfter=14, **common
    )
    h2 = ParagraphStyle(
        "GeomasH2",
        fontName=FONT_BOLD,
        fontSize=12.5,
        leading=16,
        spaceBefore=10,
        spaceAfter=6,
        keepWithNext=1,
        **common,
    )
    body = ParagraphStyle(
        "GeomasBody",
        fontName=FONT_REGULAR,
        fontSize=10.5,
        leading=14.5,
        alignment=TA_JUSTIFY,
        firstLineIndent=0.8 * cm,
        spaceAfter=5,
        **common,
    )
    caption = ParagraphStyle(
        "GeomasCaption", fontName=FONT_REGULAR, fontSize=9.5, leading=12, spaceAfter=4, **common
    )

    def story(page_break_before_last: bool) -> list[Flowable]:
        flow: list[Flowable] = [Paragraph(escape(report.title), h1)]
        for i, section in enumerate(report.sections):
            if page_break_before_last and i == len(report.sections) - 1:
                flow.append(PageBreak())
            flow.append(Paragraph(escape(section.heading), h2))
            flow += [Paragraph(escape(p), body) for p in section.paragraphs]
            if section.table is not None:
                table = Table([list(row) for row in section.table], repeatRows=1, hAlign="LEFT")
                table.setStyle(
                    TableStyle(
                        [
                            ("FONTNAME", (0, 0), (-1, -1), FONT_REGULAR),
                            ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
                            ("FONTNAME", (0, -1), (-1, -1), FONT_BOLD),
                            ("FONTSIZE", (0, 0), (-1, -1), 9.5),
                            ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E6E6E6")),
                            ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                        ]
                    )
                )
                parts: list[Flowable] = []
                if section.caption:
                    parts.append(Paragraph(escape(section.caption), caption))
                parts += [table, Spacer(1, 6)]
                flow.append(KeepTogether(parts))
        return flow

    pages = 0
    data = b""
    for page_break in (False, True):
        buf = io.BytesIO()
        pages_seen: list[int] = []

        def on_page(canvas: Any, _doc: Any, seen: list[int] = pages_seen) -> None:
            seen.append(canvas.getPageNumber())

        doc = SimpleDocTemplate(
            buf,
            pagesize=A4,
            leftMargin=2.5 * cm,
            rightMargin=1.5 * cm,
            topMargin=2 * cm,
            bottomMargin=2 * cm,
            title=report.title,
            author=report.author,
            subject=report.subject,
            creator="geomas sample-corpus",
            invariant=1,  # fixed creation date and document ID: byte-identical output
            # 128-bit RC4 derives its key from the passwords and the (invariant) document ID;
            # the 256-bit AES mode would draw random salts and break determinism.
            encrypt=(
                StandardEncryption(
                    ENCRYPTED_USER_PASSWORD, ownerPassword=ENCRYPTED_OWNER_PASSWORD, strength=128
                )
                if encrypt
                else None
            ),
        )
        doc.build(story(page_break), onFirstPage=on_page, onLaterPages=on_page)
        data, pages = buf.getvalue(), max(pages_seen)
        # A realistic report has more than one page; a short draw still gets a second one.
        if pages >= 2 or len(report.sections) < 2:
            break
    return data, pages


def render_docx(report: Report) -> bytes:
    """Render a report as a DOCX with Heading 1/Heading 2 styles and a grid table.

    Args:
        report: The report to write.

    Returns:
        The DOCX bytes, with fixed core properties and zip timestamps.

    Raises:
        MissingExtraError: python-docx is not installed (the ``demo`` extra).
    """
    require_demo_extra()
    import docx

    document = docx.Document()
    props = document.core_properties
    props.title = report.title
    props.author = report.author
    props.subject = report.subject
    props.last_modified_by = report.author
    props.created = FIXED_DATETIME
    props.modified = FIXED_DATETIME
    props.last_printed = FIXED_DATETIME
    props.revision = 1

    document.add_heading(report.title, level=1)
    for section in report.sections:
        document.add_heading(section.heading, level=2)
        for paragraph in section.paragraphs:
            document.add_paragraph(paragraph)
        if section.table is not None:
            if section.caption:
                document.add_paragraph(section.caption, style="Caption")
            header, *rows = section.table
            table = document.add_table(rows=1 + len(rows), cols=len(header))
            table.style = "Table Grid"
            for r_i, row in enumerate(section.table):
                for c_i, value in enumerate(row):
                    cell = table.cell(r_i, c_i)
                    cell.text = value
                    if r_i == 0 or r_i == len(section.table) - 1:
                        for run in cell.paragraphs[0].runs:
                            run.bold = True
    buf = io.BytesIO()
    document.save(buf)
    return _deterministic_zip(buf.getvalue())


def _deterministic_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed timestamps and attributes, keeping entry order and content."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.create_system = 0
            fixed.external_attr = 0
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def corrupt_pdf(r: random.Random) -> bytes:
    """A file that claims to be a PDF (valid header, a catalog stub) but is garbage after that."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    return head + r.randbytes(3000)


def not_a_document(r: random.Random) -> bytes:
    """Random bytes behind a JPEG start-of-image marker: neither a document nor a valid image."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + r.randbytes(4096)
