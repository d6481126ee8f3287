"""Shared fixtures. The environment is made offline before anything imports ZenML/MLflow/HF."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"

for key, value in {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def third_party_pdfs() -> Path:
    """The docling project's test PDFs with ground truth (../shared/corpus)."""
    pdf_dir = CORPUS / "pdf"
    if not pdf_dir.is_dir():
        pytest.fail(f"{pdf_dir} is missing: the shared corpus is part of the checkout layout")
    return pdf_dir


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated Russian corpus with the four kinds of bad files."""
    from geomas.sample import generate_sample_corpus

    out = tmp_path_factory.mktemp("sample_corpus")
    generate_sample_corpus(out, docs=6, seed=7, with_bad_files=True)
    return out


@pytest.fixture()
def copy_tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a folder into the test's tmp dir and return the copy."""

    def _copy(src: Path, name: str = "src") -> Path:
        dst = tmp_path / name
        shutil.copytree(src, dst)
        return dst

    return _copy


REAL_RU = CORPUS / "real-ru"


@pytest.fixture(scope="session")
def real_ru() -> Path:
    """Real Russian documents (official texts; ../shared/corpus/real-ru, see its README)."""
    if not REAL_RU.is_dir():
        pytest.fail(f"{REAL_RU} is missing: the shared corpus is part of the checkout layout")
    return REAL_RU


def typeset_report(docx: Path, out: Path, *, paragraphs: int = 80, table_docx: Path | None = None
                   ) -> Path:
    """Typeset the text of a real DOCX as a report PDF, the way a printed report looks.

    Justified narrow paragraphs hyphenated with pyphen's Russian dictionary (line-end splits
    like "эксплуатаци-онного"), the DOCX's tables (or `table_docx`'s) as drawn tables, a running
    header and a "Страница N" footer on every page. The text is real; only the typesetting is
    ours, because none of the real PDFs at hand is hyphenated.
    """
    import docx as python_docx
    from reportlab.lib.enums import TA_JUSTIFY
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table

    from geomas.sample.writers import FONT_REGULAR, _register_fonts

    _register_fonts()
    body = ParagraphStyle("body", fontName=FONT_REGULAR, fontSize=10, leading=12.5,
                          alignment=TA_JUSTIFY, firstLineIndent=18, spaceAfter=4,
                          hyphenationLang="ru_RU", embeddedHyphenation=1, uriWasteReduce=0.3)
    cell = ParagraphStyle("cell", fontName=FONT_REGULAR, fontSize=7, leading=8)
    src = python_docx.Document(str(docx))
    story: list = []
    texts = [p.text.strip() for p in src.paragraphs if len(p.text.strip()) > 60]
    for text in texts[:paragraphs]:
        story.append(Paragraph(text.replace("&", "&amp;").replace("<", "&lt;"), body))
    tables = python_docx.Document(str(table_docx)).tables if table_docx else src.tables
    for table in tables[:6]:
        rows = [[Paragraph(c.text.strip()[:60].replace("&", "&amp;").replace("<", "&lt;"), cell)
                 for c in row.cells[:6]] for row in table.rows[:25]]
        if len(rows) >= 2:
            story += [Spacer(1, 8), Table(rows), Spacer(1, 8)]

    def furniture(canvas, doc):  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont(FONT_REGULAR, 8)
        canvas.drawString(60, A4[1] - 40, "Федеральные нормы и правила в области промышленной "
                          "безопасности")
        canvas.drawRightString(A4[0] - 60, 30, f"Страница {doc.page}")
        canvas.restoreState()

    SimpleDocTemplate(str(out), pagesize=A4, leftMargin=150, rightMargin=150, topMargin=70,
                      bottomMargin=60).build(story, onFirstPage=furniture, onLaterPages=furniture)
    return out
