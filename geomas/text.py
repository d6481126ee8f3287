r"""Text units every stage shares: sentences, tokens, and the Cyrillic share of a text.

One sentence splitter (`sentence_spans`, razdel) and one tokeniser (`token_spans`), so that NER
training and inference, QA synthesis, cleaning and ingestion agree on what a sentence and a
word are. Where a caller needs another rule, it is a documented parameter here:

- tokens: ``words`` (``\w+`` runs: cleaning, the teacher's grounding check), ``words_and_marks``
  (word runs and single punctuation marks: ingestion's model-free token counter, a lower bound
  of subword tokens), ``razdel`` (razdel's tokens, which keep «43,7» whole: NER).
- sentences: ``paragraphs`` (blank lines always end a sentence: NER records) and ``pdf`` (fixes
  for text extracted from PDFs: QA synthesis).

All spans are ``(start, end)`` character offsets into the text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

Span = tuple[int, int]
TokenRule = Literal["words", "words_and_marks", "razdel"]

# Letters are word characters other than digits and "_"; Cyrillic letters are those in the
# Cyrillic and Cyrillic Supplement blocks. Deleting runs of other characters is ~3x faster
# than testing each character.
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_NOT_CYRILLIC = re.compile(r"[^\u0400-\u052f]+")
_TOKEN_PATTERNS = {"words": re.compile(r"\w+"), "words_and_marks": re.compile(r"\w+|[^\w\s]")}
_NON_SPACE = re.compile(r"\S+")
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")

# PDF fixes. A line holding only a section number and a short title, without sentence
# punctuation; a section number razdel left at the end of the previous sentence
# («…месторождении\n1.»); a period before a capital that razdel did not take as a sentence end.
_SECTION_NO = r"\d{1,2}\.(?:\d{1,2}\.?)*[ \t]+"
_HEADING_LINE = re.compile(rf"(?:{_SECTION_NO})?[^\n.!?;:]{{2,80}}\n(?=[A-ZА-ЯЁ])")
_NUMBERED = re.compile(rf"{_SECTION_NO}[A-ZА-ЯЁ]")
_TRAILING_NUMBER = re.compile(r"\n\d{1,2}(?:\.\d{1,2})*\.\s*$")
_MISSED_END = re.compile(r"(\S+)\.(\s+)(?=[A-ZА-ЯЁ])")
_ABBREVIATIONS = frozenset(
    "гг пос им тыс млн млрд пгт оз ст ул обл кв пог ок др пр рис табл прил гл разд т.е т.д т.п "
    "и.о св".split()
)
# Single letters that end a sentence as units («… 12 т. Рудные тела …»); any other single
# letter before a period is an initial or an abbreviation («г. Билибино», «П. Е. Фролов»).
_UNIT_LETTERS = frozenset({"т", "м"})


def cyrillic_share(text: str) -> float | None:
    """Share of Cyrillic letters among all letters of `text`; None when it has no letters."""
    letters = _NOT_LETTERS.sub("", text)
    if not letters:
        return None
    return len(_NOT_CYRILLIC.sub("", letters)) / len(letters)


def count_tokens(text: str, rule: Literal["words", "words_and_marks"] = "words") -> int:
    """How many tokens `token_spans` finds under a regex ``rule``, without building spans."""
    return len(_TOKEN_PATTERNS[rule].findall(text))


def token_spans(text: str, rule: TokenRule = "words") -> list[Span]:
    """Token offsets of `text` under ``rule`` (see the module docstring).

    With ``razdel``, non-space characters that razdel leaves out (none known, but NER
    alignment must not depend on it) become tokens of their own, so every non-space character
    is in a token.

    Returns:
        Sorted, non-overlapping ``(start, end)`` pairs.
    """
    if rule != "razdel":
        return [m.span() for m in _TOKEN_PATTERNS[rule].finditer(text)]
    import razdel

    spans: list[Span] = []
    prev = 0
    for tok in razdel.tokenize(text):
        spans += [m.span() for m in _NON_SPACE.finditer(text, prev, tok.start)]
        spans.append((tok.start, tok.stop))
        prev = tok.stop
    return spans + [m.span() for m in _NON_SPACE.finditer(text, prev)]


def words(text: str) -> list[str]:
    """The lower-cased ``words`` tokens of `text` (what cleaning and the teacher compare)."""
    return _TOKEN_PATTERNS["words"].findall(text.lower())


def sentence_spans(text: str, *, paragraphs: bool = False, pdf: bool = False) -> list[Span]:
    r"""Sentence offsets of `text`, by razdel.

    Args:
        text: The text.
        paragraphs: Split at blank lines first, so no sentence crosses a paragraph break (the
            records of convert-annotations).
        pdf: Refine for text extracted from PDFs (QA synthesis): numbered section headings
            («2. Геологическая позиция») that razdel glues to the following sentence become
            their own, a sentence end razdel missed before a line break or space («… 39,7
            г/т.\nПрогнозные ресурсы …») is split unless the word before the period is an
            abbreviation or an initial, and spans are trimmed of whitespace (empty ones
            dropped).

    Returns:
        Sentence spans in text order.
    """
    import razdel

    raw: list[Span] = []
    pos = 0
    for brk in [*(_PARAGRAPH_BREAK.finditer(text) if paragraphs else ()), None]:
        end = brk.start() if brk else len(text)
        raw += [(pos + s.start, pos + s.stop) for s in razdel.sentenize(text[pos:end])]
        pos = brk.end() if brk else pos
    if not pdf:
        return raw
    out: list[Span] = []
    prev_text = ""
    for k, (start, end) in enumerate(raw):
        next_text = text[raw[k + 1][0]:raw[k + 1][1]] if k + 1 < len(raw) else ""
        for p_start, p_end in _split_heading(text, start, end, prev_text, next_text):
            out.extend(_split_missed_ends(text, p_start, p_end))
        prev_text = text[start:end]
    return [strip_span(text, s, e) for s, e in out if text[s:e].strip()]


def strip_span(text: str, start: int, end: int) -> Span:
    """``(start, end)`` moved inwards past whitespace at both ends."""
    seg = text[start:end]
    start += len(seg) - len(seg.lstrip())
    return start, start + len(seg.strip())


def _split_heading(
    text: str, start: int, end: int, prev_text: str, next_text: str
) -> list[Span]:
    r"""Cut a leading heading line («2. Геологическая позиция\n…») and a trailing section number.

    A line counts as a heading when it carries a section number, or when razdel left the number
    at the end of the previous sentence («…месторождении\n1.» + «Общие сведения\n…»). A
    trailing number is cut off only when the next sentence starts with such a heading line, so
    «…достигают\n90.» stays whole.
    """
    pieces: list[Span] = []
    seg = text[start:end]
    m = _HEADING_LINE.match(seg)
    if m and (_NUMBERED.match(seg) or _TRAILING_NUMBER.search(prev_text)):
        pieces.append((start, start + m.end() - 1))
        start += m.end()
        seg = text[start:end]
    t = _TRAILING_NUMBER.search(seg)
    if t and t.start() > 0 and _HEADING_LINE.match(next_text):
        pieces.append((start, start + t.start()))
        pieces.append((start + t.start() + 1, end))
    else:
        pieces.append((start, end))
    return pieces


def _split_missed_ends(text: str, start: int, end: int) -> list[Span]:
    pieces: list[Span] = []
    seg = text[start:end]
    cut = 0
    for m in _MISSED_END.finditer(seg):
        bare = m.group(1).strip("(«\"'").rstrip(".")
        if len(bare) <= 1 and bare not in _UNIT_LETTERS:
            continue
        if bare.lower() in _ABBREVIATIONS or bare.isdigit():
            continue
        stop = m.end(1) + 1  # after the period
        pieces.append((start + cut, start + stop))
        cut = m.end()
    pieces.append((start + cut, end))
    return pieces


@lru_cache(maxsize=1)
def morph_analyzer() -> Any:
    """pymorphy3's Russian morphological analyser (OpenCorpora dictionary), built once."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer()
