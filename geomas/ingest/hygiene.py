"""Chunk hygiene: clean a parsed docling document before it is chunked, and tag chunk kinds.

docling's model-free PDF pipeline gives one text item per PDF line, in parser order, with the
running headers, footers and page numbers of every page and each table cell as its own line.
`rebuild_pdf_lines` turns those lines into what a reader sees: margin lines repeated across
pages and page numbers go, cells on one visual line become a table row, runs of rows become a
docling table, other lines are joined into paragraphs (across pages too) with line-end
hyphenation rejoined when the joined word is a Russian dictionary word. Documents with
structure (DOCX, HTML, layout PDFs) keep it; super/subscripts and undecoded formulas are fixed
in place. `HygieneChunker` serialises without Markdown markers, writes tables as Markdown
tables and never merges chunks of different kinds (body, table, toc, front_matter).

Every rule is counted (`Counts`) so a run says what it changed; `HygieneConfig` switches each.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from docling_core.transforms.chunker.hierarchical_chunker import (
    ChunkingDocSerializer,
    ChunkingSerializerProvider,
)
from docling_core.transforms.chunker.hybrid_chunker import HybridChunker
from docling_core.transforms.serializer.base import BaseDocSerializer, BaseSerializerProvider
from docling_core.transforms.serializer.markdown import MarkdownTableSerializer
from docling_core.transforms.serializer.plain_text import PlainTextDocSerializer, PlainTextParams
from docling_core.types.doc import (
    BoundingBox,
    CoordOrigin,
    DocItemLabel,
    DoclingDocument,
    FormulaItem,
    GroupLabel,
    InlineGroup,
    ProvenanceItem,
    TableCell,
    TableData,
    TableItem,
    TextItem,
)
from pydantic import PrivateAttr

from geomas.config import ChunkKind, HygieneConfig
from geomas.text import morph_analyzer

Counts = Counter[str]

#: the marker written where docling could not decode a formula
FORMULA_MARKER = "[формула]"

_WORD = re.compile(r"[^\W\d_]+")
_TOKEN = re.compile(r"\w+(?:[.,]\w+)*")
_NUMERIC = re.compile(r"[\d.,]*\d[\d.,]*%?")
_PAGE_NUMBER = re.compile(
    r"^[\s\-–—]*(?:(?:стр(?:аница)?|с|page|p)\.?\s*)?\d{1,4}"
    r"(?:\s*(?:из|/|of)\s*\d{1,4})?[\s\-–—]*$",
    re.IGNORECASE,
)
#: a table-of-contents entry: a title, dot leaders or a tab/wide gap, and a page number
_TOC_LEADER = re.compile(r"^\s*\S.{1,200}?(?:\.{3,}|…{2,}|[·_]{3,}|\.\s\.\s\.)\s*\d{1,4}\s*$")
_TOC_GAP = re.compile(r"^\s*\S.{1,200}?(?:\t|\s\|\s)\s*\d{1,4}\s*$")
_TOC_TITLE = re.compile(r"^\s*(?:содержание|оглавление|contents)\s*:?\s*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?:;…»\")]\s*$")
_HYPHEN_END = re.compile(r"([^\W\d_]+)[-\u00ad\u2010]$")
_FIRST_WORD = re.compile(r"^([^\W\d_]+)")
_SOFT_HYPHEN = "\u00ad"

_SUPER = str.maketrans("0123456789+-−=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿ")
_SUB = str.maketrans("0123456789+-−=()", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎")
#: a unit of area/volume whose exponent the PDF text layer leaves as a loose digit ("м 3")
_UNIT_POWER = re.compile(r"(?<![^\W\d_])(к?м|см|дм|мм|km|cm|m)\s?([23])(?![\w.,]?\d)")
_LOOSE_SUPER = re.compile(r"(?<=[^\W\d_]) ([⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻]+)")


# --- text rules ------------------------------------------------------------------------------


def is_word(word: str) -> bool:
    """Whether `word` is in the Russian dictionary (pymorphy3, OpenCorpora)."""
    return bool(morph_analyzer().word_is_known(word.lower()))


def join_hyphenated(left: str, right: str) -> tuple[str, str]:
    """Join a line ending in ``left-`` with a line starting with ``right``.

    Returns:
        ``(joined text, rule)``: the dictionary word without the hyphen (``dehyphenated``), a
        real hyphenated compound kept (``compound_kept``), or both words kept as they were
        (``hyphen_kept``) when neither reading is a dictionary word.
    """
    head = _HYPHEN_END.search(left)
    tail = _FIRST_WORD.search(right)
    if head is None or tail is None:
        return left + " " + right, "none"
    a, b = head.group(1), tail.group(1)
    stem = left[: head.start()]
    rest = right[tail.end():]
    if is_word(a + b):
        return f"{stem}{a}{b}{rest}", "dehyphenated"
    if is_word(f"{a}-{b}") or (is_word(a) and is_word(b)):
        return f"{stem}{a}-{b}{rest}", "compound_kept"
    if not is_word(a) and b[:1].islower():
        # a fragment that is not a word itself ("эксплуатаци-"): a split, even if the joined
        # word (a name, a term) is not in the dictionary
        return f"{stem}{a}{b}{rest}", "dehyphenated"
    return f"{stem}{a}-{b}{rest}", "hyphen_kept"


def count_hyphen_splits(text: str) -> int:
    """Dictionary words left split by a line-end hyphen ("эксплуатаци- онного")."""
    n = 0
    for m in re.finditer(r"([^\W\d_]+)[-\u00ad\u2010]\s+([^\W\d_]+)", text):
        a, b = m.group(1), m.group(2)
        if b[:1].islower() and is_word(a + b) and not is_word(f"{a}-{b}"):
            n += 1
    return n


def numeric_share(text: str) -> float:
    """Share of tokens that are numbers (0 for a text with no tokens)."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return 0.0
    return sum(1 for t in tokens if _NUMERIC.fullmatch(t)) / len(tokens)


def fix_scripts(text: str, counts: Counts) -> str:
    """Write unit exponents and loose superscripts as Unicode ("млн. м 3" -> "млн. м³")."""
    def unit(m: re.Match[str]) -> str:
        counts["scripts"] += 1
        return m.group(1) + m.group(2).translate(_SUPER)

    text = _UNIT_POWER.sub(unit, text)
    text, n = _LOOSE_SUPER.subn(r"\1", text)
    counts["scripts"] += n
    return text


def is_toc_line(text: str) -> bool:
    """Whether a line reads as a table-of-contents entry (title ... page)."""
    return bool(_TOC_LEADER.match(text) or _TOC_GAP.match(text))


def is_prose(text: str) -> bool:
    """Running text: 12+ words of 3+ letters, mostly words (not numbers), a sentence mark."""
    tokens = _TOKEN.findall(text)
    words = [t for t in tokens if _WORD.fullmatch(t)]
    return (sum(1 for w in words if len(w) >= 3) >= 12 and len(words) >= 0.6 * len(tokens)
            and bool(re.search(r"[.!?;:](?!\d)", text)))


# --- PDF lines -> paragraphs and tables -------------------------------------------------------


@dataclass
class _Line:
    text: str
    page: int
    left: float
    top: float
    right: float
    bottom: float

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 1.0)


@dataclass
class _Block:
    """A paragraph (one text) or a table (rows of cells), with the lines it came from."""

    kind: str  # "text" | "table" | "toc"
    lines: list[_Line] = field(default_factory=list)
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    columns: list[float] = field(default_factory=list)  # left edge of each table column


@dataclass
class PdfLines:
    """The text lines of a line-per-item PDF document, gathered from one or more page ranges.

    Only what hygiene reads is kept (text, page, box; page sizes), so a long PDF can be
    converted a page range at a time and each range's docling document dropped at once.
    """

    name: str = ""
    origin: Any = None
    lines: list[_Line] = field(default_factory=list)
    pages: dict[int, Any] = field(default_factory=dict)

    def add(self, doc: DoclingDocument) -> PdfLines:
        """Take the lines and pages of `doc` (one page range of the PDF)."""
        if not self.name:
            self.name, self.origin = doc.name, doc.origin
        self.pages.update(doc.pages)
        for item in doc.texts:
            if not item.prov or not item.text.strip():
                continue
            prov = item.prov[0]
            page = doc.pages.get(prov.page_no)
            height = page.size.height if page is not None else 842.0
            box = prov.bbox.to_top_left_origin(page_height=height)
            self.lines.append(_Line(item.text.strip(), prov.page_no, box.l, box.t, box.r, box.b))
        return self

    def height(self, page: int) -> float:
        """Height of a page in points (A4 if unknown)."""
        item = self.pages.get(page)
        return float(item.size.height) if item is not None else 842.0


def _norm_repeat(text: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", " ", text.strip().lower()))


def _drop_furniture(lines: list[_Line], src: PdfLines, cfg: HygieneConfig,
                    counts: Counts) -> list[_Line]:
    """Remove running headers/footers and page-number lines from the page margins."""
    n_pages = len({ln.page for ln in lines})
    by_page: dict[int, list[_Line]] = defaultdict(list)
    for ln in lines:
        by_page[ln.page].append(ln)
    # a line on a visual row of 3+ lines is a table cell, never a running header or a page
    # number, however often its digits repeat at that height
    in_table = {id(ln) for page_lines in by_page.values() for row in _rows(page_lines)
                if len(row) >= 3 for ln in row}

    def margin_key(ln: _Line) -> tuple[str, str, int] | None:
        """(text with digits as #, top/bottom, height step) of a margin line, else None."""
        if id(ln) in in_table:
            return None
        h = src.height(ln.page)
        if ln.bottom <= h * cfg.margin_share:
            where = "top"
        elif ln.top >= h * (1 - cfg.margin_share):
            where = "bottom"
        else:
            return None
        return _norm_repeat(ln.text), where, round(ln.top / h * 50)

    keys = [margin_key(ln) for ln in lines]
    seen: dict[tuple[str, str, int], set[int]] = defaultdict(set)
    for ln, key in zip(lines, keys, strict=True):
        if key is not None:
            seen[key].add(ln.page)
    need = max(cfg.min_repeat_pages, cfg.repeat_share * n_pages)
    kept: list[_Line] = []
    for ln, key in zip(lines, keys, strict=True):
        if key is not None:
            if cfg.headers_footers and n_pages >= cfg.min_repeat_pages and len(seen[key]) >= need:
                counts["header_footer_lines"] += 1
                continue
            if cfg.page_numbers and _PAGE_NUMBER.match(ln.text):
                counts["page_number_lines"] += 1
                continue
        kept.append(ln)
    return kept


def _rows(lines: list[_Line]) -> Iterator[list[_Line]]:
    """Group one page's lines into visual rows (vertically overlapping), left to right."""
    row: list[_Line] = []
    for ln in sorted(lines, key=lambda x: (x.top, x.left)):
        if row:
            top = min(x.top for x in row)
            bottom = max(x.bottom for x in row)
            overlap = min(bottom, ln.bottom) - max(top, ln.top)
            if overlap >= 0.5 * min(ln.height, bottom - top):
                row.append(ln)
                continue
            yield sorted(row, key=lambda x: x.left)
        row = [ln]
    if row:
        yield sorted(row, key=lambda x: x.left)


def _cells(row: list[_Line]) -> tuple[list[str], list[float]]:
    """Texts of a row and their left edges, split where the gap is wider than ~2 characters."""
    cells: list[str] = [row[0].text]
    lefts: list[float] = [row[0].left]
    for prev, ln in zip(row, row[1:], strict=False):
        char_w = (prev.right - prev.left) / max(len(prev.text), 1)
        if ln.left - prev.right > max(2.5 * char_w, 0.8 * ln.height):
            cells.append(ln.text)
            lefts.append(ln.left)
        else:
            cells[-1] = f"{cells[-1]} {ln.text}"
    return cells, lefts


def _column(columns: list[float], left: float, tolerance: float = 6.0) -> int | None:
    return next((i for i, x in enumerate(columns) if abs(x - left) <= tolerance), None)


def _add_table_row(block: _Block, cells: list[str], lefts: list[float], row: list[_Line],
                   wrapped: bool) -> None:
    """Put a row's cells under the table's columns; a wrapped line goes on the cells above."""
    slots: list[int] = []
    for left in lefts:
        found = _column(block.columns, left)
        if found is None:
            block.columns.append(left)
            found = len(block.columns) - 1
        slots.append(found)
    width = len(block.columns)
    if wrapped and block.rows:
        target = block.rows[-1]
        target += [""] * (width - len(target))
        for slot, text in zip(slots, cells, strict=True):
            target[slot] = f"{target[slot]} {text}".strip()
    else:
        new = [""] * width
        for slot, text in zip(slots, cells, strict=True):
            new[slot] = text
        block.rows.append(new)
    block.lines.extend(row)


def _is_table_row(cells: list[str], cfg: HygieneConfig) -> bool:
    text = " ".join(cells)
    if len(cells) >= 2 and not is_toc_line(" | ".join(cells)):
        return True
    return numeric_share(text) > cfg.max_numeric_share and len(_WORD.findall(text)) <= 3


def rebuild_pdf_lines(src: PdfLines, cfg: HygieneConfig,
                      counts: Counts) -> tuple[DoclingDocument, dict[str, ChunkKind]]:
    """A new document of paragraphs and tables from the lines of a line-per-item PDF.

    Returns:
        The rebuilt document and the kind (toc) of items that are not body text or tables.
    """
    lines = src.lines
    counts["pdf_lines"] += len(lines)
    lines = _drop_furniture(lines, src, cfg, counts)
    by_page: dict[int, list[_Line]] = defaultdict(list)
    for ln in lines:
        by_page[ln.page].append(ln)

    blocks: list[_Block] = []
    for page_no in sorted(by_page):
        page_lines = by_page[page_no]
        left_counts = Counter(round(ln.left) for ln in page_lines)
        margin = min(left_counts, key=lambda x: (-left_counts[x], x)) if left_counts else 0
        rights = [ln.right for ln in page_lines]
        right_edge = max(rights) if rights else 0.0
        pitch = _line_pitch(page_lines)
        prev: _Line | None = None
        for row in _rows(page_lines):
            cells, lefts = _cells(row) if cfg.tables else ([" ".join(x.text for x in row)],
                                                           [row[0].left])
            text = " | ".join(cells) if len(cells) > 1 else cells[0]
            last_block = blocks[-1] if blocks else None
            if (cfg.tables and last_block is not None and last_block.kind == "table"
                    and last_block.lines[-1].page == page_no
                    and all(_column(last_block.columns, x) is not None for x in lefts)
                    and (len(cells) > 1 or _column(last_block.columns, lefts[0]) != 0
                         or row[0].top - last_block.lines[-1].bottom < 0.6 * row[0].height)):
                # a line inside a table's columns: a wrapped cell line or the next row
                gap = row[0].top - max(x.bottom for x in last_block.lines[-len(row):])
                _add_table_row(last_block, cells, lefts, row,
                               wrapped=gap < 0.45 * row[0].height)
                prev = row[-1]
                continue
            if cfg.kinds and (is_toc_line(text) or _TOC_TITLE.match(text)):
                _append(blocks, "toc", row, text)
            elif cfg.tables and _is_table_row(cells, cfg):
                if last_block is None or last_block.kind != "table":
                    blocks.append(_Block("table"))
                _add_table_row(blocks[-1], cells, lefts, row, wrapped=False)
            else:
                joined = " ".join(cells)
                last = blocks[-1] if blocks else None
                if (cfg.paragraphs and last is not None and last.kind == "text"
                        and _continues(last, row[0], prev, margin, right_edge, pitch)):
                    _join_line(last, joined, row, cfg, counts)
                else:
                    blocks.append(_Block("text", list(row), joined))
            prev = row[-1]
    # a lone table row between paragraphs is text with wide gaps, not a table
    for b in blocks:
        if b.kind == "table" and len(b.rows) < 2:
            b.kind, b.text = "text", " ".join(c for c in b.rows[0] if c)
    return _to_document(src, blocks, counts)


def _line_pitch(lines: list[_Line]) -> float:
    tops = sorted({round(ln.top, 1) for ln in lines})
    gaps = [b - a for a, b in zip(tops, tops[1:], strict=False) if b - a > 0.5]
    return statistics.median(gaps) if gaps else 12.0


def _append(blocks: list[_Block], kind: str, row: list[_Line], text: str) -> None:
    last = blocks[-1] if blocks else None
    if last is None or last.kind != kind:
        last = _Block(kind)
        blocks.append(last)
    last.lines.extend(row)
    last.text = f"{last.text}\n{text}" if last.text else text


def _continues(block: _Block, first: _Line, prev: _Line | None, margin: float,
               right_edge: float, pitch: float) -> bool:
    """Whether a line goes on the paragraph before it (same paragraph, maybe a new page)."""
    last = block.lines[-1]
    indented = first.left > margin + 4
    if first.page != last.page:
        # the paragraph goes on over the page break unless it had ended
        return not _SENTENCE_END.search(block.text) and not indented
    if prev is None or first.top - last.bottom > 1.6 * pitch - last.height + 2:
        return False
    if indented:
        return False
    short = last.right < right_edge - 0.15 * (right_edge - margin)
    return not (short and _SENTENCE_END.search(block.text))


def _join_line(block: _Block, text: str, row: list[_Line], cfg: HygieneConfig,
               counts: Counts) -> None:
    if cfg.hyphenation and _HYPHEN_END.search(block.text) and _FIRST_WORD.match(text):
        joined, rule = join_hyphenated(block.text, text)
        counts[f"hyphen_{rule}"] += 1
        block.text = joined
    else:
        block.text = f"{block.text} {text}"
    block.lines.extend(row)


def _provs(lines: list[_Line], src: PdfLines, length: int) -> list[ProvenanceItem]:
    out: list[ProvenanceItem] = []
    for page in sorted({ln.page for ln in lines}):
        on = [ln for ln in lines if ln.page == page]
        height = src.height(page)
        box = BoundingBox(l=min(x.left for x in on), t=min(x.top for x in on),
                          r=max(x.right for x in on), b=max(x.bottom for x in on),
                          coord_origin=CoordOrigin.TOPLEFT)
        out.append(ProvenanceItem(page_no=page, bbox=box.to_bottom_left_origin(height),
                                  charspan=(0, length)))
    return out


def _to_document(src: PdfLines, blocks: list[_Block],
                 counts: Counts) -> tuple[DoclingDocument, dict[str, ChunkKind]]:
    new = DoclingDocument(name=src.name or "document", origin=src.origin)
    new.pages = dict(src.pages)
    kinds: dict[str, ChunkKind] = {}
    for b in blocks:
        if b.kind == "table":
            width = max(len(r) for r in b.rows)
            cells = [
                TableCell(text=text, start_row_offset_idx=i, end_row_offset_idx=i + 1,
                          start_col_offset_idx=j, end_col_offset_idx=j + 1,
                          column_header=(i == 0 and numeric_share(" ".join(b.rows[0])) < 0.5))
                for i, row in enumerate(b.rows) for j, text in enumerate(row)
            ]
            data = TableData(num_rows=len(b.rows), num_cols=width, table_cells=cells)
            provs = _provs(b.lines, src, 0)
            table = new.add_table(data=data, prov=provs[0])
            table.prov.extend(provs[1:])
            counts["tables_rebuilt"] += 1
            counts["table_rows"] += len(b.rows)
            continue
        text = b.text.replace(_SOFT_HYPHEN, "")
        provs = _provs(b.lines, src, len(text))
        item = new.add_text(label=DocItemLabel.TEXT, text=text, orig=text, prov=provs[0])
        item.prov.extend(provs[1:])
        if b.kind == "toc":
            kinds[item.self_ref] = "toc"
            counts["toc_lines"] += b.text.count("\n") + 1
        else:
            counts["paragraphs"] += 1
    return new, kinds


# --- structured documents ---------------------------------------------------------------------


def fix_structured(doc: DoclingDocument, cfg: HygieneConfig,
                   counts: Counts) -> dict[str, ChunkKind]:
    """Fix super/subscripts, undecoded formulas and TOC entries in a document with structure.

    Returns:
        The kind of items that are table-of-contents entries.
    """
    kinds: dict[str, ChunkKind] = {}
    toc_run: list[TextItem] = []

    def close_run() -> None:
        if len(toc_run) >= 3:
            for it in toc_run:
                kinds[it.self_ref] = "toc"
            counts["toc_lines"] += len(toc_run)
        toc_run.clear()

    for item, _level in doc.iterate_items():
        if isinstance(item, FormulaItem):
            if cfg.formulas:
                if item.text.strip():
                    counts["formulas_kept"] += 1
                else:
                    item.text = FORMULA_MARKER
                    counts["formulas_marked"] += 1
            continue
        if not isinstance(item, TextItem):
            continue
        if item.text and _SOFT_HYPHEN in item.text:
            item.text = item.text.replace(_SOFT_HYPHEN, "")
        script = getattr(item.formatting, "script", None) if item.formatting else None
        if cfg.scripts and script is not None and script.value in ("super", "sub") \
                and len(item.text.strip()) <= 4:
            table = _SUPER if script.value == "super" else _SUB
            converted = item.text.strip().translate(table)
            if converted != item.text.strip():
                item.text = converted
                counts["scripts"] += 1
        if cfg.kinds and (is_toc_line(item.text) or _TOC_TITLE.match(item.text)):
            toc_run.append(item)
        else:
            close_run()
    close_run()
    return kinds


def mark_front_matter(doc: DoclingDocument, kinds: dict[str, ChunkKind], counts: Counts,
                      max_items: int = 300, max_page: int = 3, max_share: float = 0.25) -> None:
    """Tag the items before the first prose paragraph as front matter (title page, approvals).

    Only a short lead counts: at most `max_items` items and `max_share` of all, all on the
    first `max_page` pages of a paginated document. A document that opens with its text has
    none. The runs of an inline group (a paragraph with formatting or formulas) count as one.
    """
    units: list[tuple[list[str], str]] = []
    seen: set[str] = set()
    total = sum(1 for item, _ in doc.iterate_items() if isinstance(item, TextItem | TableItem))
    for item, _level in doc.iterate_items(with_groups=True):
        if item.self_ref in seen:
            continue
        if isinstance(item, InlineGroup):
            parts = [c.resolve(doc) for c in item.children]
            seen.update(p.self_ref for p in parts)
            units.append(([p.self_ref for p in parts],
                          " ".join(getattr(p, "text", "") for p in parts)))
        elif isinstance(item, TextItem | TableItem):
            if item.prov and item.prov[0].page_no > max_page:
                units.append(([], ""))  # past the first pages: stop here
                break
            units.append(([item.self_ref], getattr(item, "text", "")))
    lead: list[str] = []
    for refs, text in units:
        if not refs or is_prose(text) or (len(text) >= 150 and _SENTENCE_END.search(text)):
            break
        lead.extend(refs)
    else:
        return  # no prose at all: nothing to tell front matter from
    if not lead or len(lead) > max_items or len(lead) > max_share * total:
        return
    for ref in lead:
        kinds.setdefault(ref, "front_matter")
    counts["front_matter_items"] += len(lead)


def clean_document(doc: DoclingDocument | PdfLines, cfg: HygieneConfig
                   ) -> tuple[DoclingDocument, dict[str, ChunkKind], Counts]:
    """Apply the hygiene rules to a parsed document.

    Args:
        doc: docling's document, or the lines of a line-per-item PDF (docling's native
            pipeline), which are rebuilt into paragraphs and tables.
        cfg: Which rules run.

    Returns:
        The cleaned document (a new one for PDF lines), item kinds by self_ref, rule counts.
    """
    counts: Counts = Counter()
    if isinstance(doc, PdfLines):
        if not cfg.enabled:
            raise ValueError("PDF lines are rebuilt by hygiene only; pass the document")
        doc, kinds = rebuild_pdf_lines(doc, cfg, counts)
    elif not cfg.enabled:
        return doc, {}, counts
    else:
        kinds = {}
    kinds.update(fix_structured(doc, cfg, counts))
    if cfg.kinds:
        mark_front_matter(doc, kinds, counts)
    return doc, kinds, counts


# --- chunking ---------------------------------------------------------------------------------


class _PlainSerializerProvider(BaseSerializerProvider):
    """Plain text without Markdown markers; tables as Markdown tables."""

    def __init__(self, *, plain: bool, tables: bool) -> None:
        self._plain = plain
        self._tables = tables

    def get_serializer(self, doc: DoclingDocument) -> BaseDocSerializer:
        """A serializer for `doc`."""
        kwargs: dict[str, Any] = {"doc": doc}
        if self._tables:
            kwargs["table_serializer"] = MarkdownTableSerializer()
        if self._plain:
            return PlainTextDocSerializer(
                params=PlainTextParams(compact_tables=True), **kwargs)
        params = ChunkingDocSerializer.model_fields["params"].default.model_copy(
            update={"compact_tables": True})
        return ChunkingDocSerializer(params=params, **kwargs)


def serializer_provider(cfg: HygieneConfig) -> BaseSerializerProvider:
    """The chunk text serialiser the hygiene settings ask for (docling's own when disabled)."""
    if not cfg.enabled or not (cfg.plain_text or cfg.tables):
        return ChunkingSerializerProvider()
    return _PlainSerializerProvider(plain=cfg.plain_text, tables=cfg.tables)


def kind_of(doc_items: Iterable[Any], kinds: dict[str, ChunkKind]) -> ChunkKind:
    """The kind of a chunk from its items: table items, tagged items, else body (by majority)."""
    votes: Counter[ChunkKind] = Counter()
    for item in doc_items:
        # chunk metadata holds items as plain DocItems: the label tells a table
        if item.label in (DocItemLabel.TABLE, DocItemLabel.DOCUMENT_INDEX):
            votes["table"] += 1
        else:
            votes[kinds.get(item.self_ref, "body")] += 1
    if not votes:
        return "body"
    return votes.most_common(1)[0][0]


class HygieneChunker(HybridChunker):
    """docling's HybridChunker that keeps kinds apart and inline paragraphs on one line.

    Undersized peers are merged only within one chunk kind. When a long paragraph is split
    along its items, docling joins every item with a newline; the runs of one inline group (a
    paragraph whose links or formatting are separate runs) are joined with a space instead.
    """

    join_inline: bool = True
    _kinds: dict[str, ChunkKind] = PrivateAttr(default_factory=dict)
    _doc: DoclingDocument | None = PrivateAttr(default=None)
    _counts: Counts = PrivateAttr(default_factory=Counter)

    def chunk_with_kinds(self, dl_doc: DoclingDocument, kinds: dict[str, ChunkKind],
                         counts: Counts | None = None) -> list[tuple[Any, ChunkKind]]:
        """Chunk `dl_doc`; return each chunk with its kind (rule counts go to `counts`)."""
        self._kinds, self._doc, self._counts = kinds, dl_doc, Counter()
        try:
            return [(c, kind_of(getattr(c.meta, "doc_items", []), kinds))
                    for c in self.chunk(dl_doc=dl_doc)]
        finally:
            if counts is not None:
                counts.update(self._counts)
            self._kinds, self._doc = {}, None

    def _split_by_doc_items(self, doc_chunk: Any, doc_serializer: BaseDocSerializer) -> list[Any]:
        out = super()._split_by_doc_items(doc_chunk, doc_serializer)
        doc = self._doc
        if doc is None or not self.join_inline:
            return out
        for chunk in out:
            items = chunk.meta.doc_items
            parents = [it.parent.cref if it.parent is not None else None for it in items]
            inline = {p for p in parents if p is not None and _is_inline(doc, p)}
            if len(items) < 2 or not inline:
                continue
            parts: list[str] = []
            prev: str | None = None
            for item, parent in zip(items, parents, strict=True):
                text = doc_serializer.serialize(item=item).text
                if not text:
                    continue
                same = parent in inline and parent == prev
                if parts:
                    parts.append(" " if same else self.delim)
                    self._counts["inline_runs_joined"] += same
                parts.append(text)
                prev = parent
            chunk.text = "".join(parts)
        return out

    def _merge_chunks_with_matching_metadata(self, chunks: list[Any]) -> list[Any]:
        out: list[Any] = []
        run: list[Any] = []
        run_kind: ChunkKind | None = None
        for c in chunks:
            k = kind_of(c.meta.doc_items, self._kinds)
            if run and k != run_kind:
                out.extend(super()._merge_chunks_with_matching_metadata(run))
                run = []
            run.append(c)
            run_kind = k
        if run:
            out.extend(super()._merge_chunks_with_matching_metadata(run))
        return out


def _is_inline(doc: DoclingDocument, cref: str) -> bool:
    if not cref.startswith("#/groups/"):
        return False
    group = doc.groups[int(cref.rsplit("/", 1)[1])]
    return bool(group.label == GroupLabel.INLINE)


def finish_chunk_text(text: str, kind: ChunkKind, cfg: HygieneConfig,
                      counts: Counts) -> tuple[str, ChunkKind]:
    """Text rules on a chunk's serialised text, and the numeric-share check of its kind."""
    if not cfg.enabled:
        return text, "body"
    # tabs and runs of spaces from DOCX layout are not content
    text = re.sub(r"[ \t\u00a0]{2,}|\t", " ", text)
    if cfg.scripts:
        text = fix_scripts(text, counts)
    if cfg.kinds and kind == "body" and numeric_share(text) > cfg.max_numeric_share:
        counts["numeric_chunks_as_table"] += 1
        kind = "table"
    return text, kind
