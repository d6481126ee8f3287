r"""Text spans for QA synthesis: clauses, context windows, the deposit name.

Everything works on character offsets into the chunk text, so answers and contexts are always
exact substrings of it. Sentences come from `geomas.text.sentence_spans` with its PDF fixes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from geomas.text import Span, morph_analyzer, strip_span

_CLAUSE_BOUNDARY = re.compile(r"[;,](?=\s)")
_CLAUSE_TRIM = " \t\r\n.,;:"
_WORD_GAP = re.compile(r"\s+")

# Deposit names: «Кедровое (серебро-полиметаллическое) месторождение», «месторождение Купол».
_NAME = r"[А-ЯЁ][а-яё]+(?:-[А-ЯЁа-яё][а-яё]+)*"
_NAME_BEFORE = re.compile(
    rf"(?<![\w-])({_NAME}ое)\s+(?:[а-яё]+(?:-[а-яё]+)*\s+){{0,2}}месторождение\b"
)
_NAME_AFTER = re.compile(rf"\b[Мм]есторождени[ея]\s+«?({_NAME})»?")
_OBLIQUE = re.compile(r"(?:ого|ому|ом|ым|ой|ых|ими|ую|ая|ий|ые)$")
_NOT_NAMES = frozenset(
    "данное это указанное настоящее рассматриваемое описываемое такое каждое одно первое "
    "второе крупное среднее мелкое новое известное золоторудное рудное".split()
)


def covering(spans: list[Span], start: int, end: int) -> tuple[int, int] | None:
    """Indices (first, last) of the spans overlapping [start, end); None when there are none."""
    hit = [k for k, (s, e) in enumerate(spans) if s < end and e > start]
    if not hit:
        return None
    return hit[0], hit[-1]


def clause_span(text: str, sentence: Span, start: int, end: int) -> Span:
    """The clause of `sentence` around [start, end): between the nearest ';' / ', ' boundaries.

    Commas inside numbers («43,7») are not boundaries; the entity itself is never cut.
    """
    s_start, s_end = sentence
    left = s_start
    for m in _CLAUSE_BOUNDARY.finditer(text, s_start, start):
        left = m.end()
    right = s_end
    m2 = _CLAUSE_BOUNDARY.search(text, end, s_end)
    if m2:
        right = m2.start()
    while left < start and text[left] in _CLAUSE_TRIM:
        left += 1
    while right > end and text[right - 1] in _CLAUSE_TRIM:
        right -= 1
    return left, right


def context_window(
    text: str,
    sentences: list[Span],
    answer: Span,
    max_chars: int,
    allowed: tuple[int, int] | None = None,
) -> Span | None:
    """A window of whole sentences around `answer` of at most `max_chars` characters.

    Neighbouring sentences are added alternately before and after while they fit; only
    sentences with indices in `allowed` (first, last; default all) are added, so fragments
    cut by a chunk edge can be left out. When even the sentences holding the answer are too
    long (clause answers in a long sentence), the window is cut at word boundaries inside
    them instead. None when the answer alone is longer than `max_chars`.
    """
    a_start, a_end = answer
    if a_end - a_start > max_chars:
        return None
    cover = covering(sentences, a_start, a_end)
    if cover is None:
        return _word_window(text, (a_start, a_end), answer, max_chars)
    first, last = cover
    c_start = min(sentences[first][0], a_start)
    c_end = max(sentences[last][1], a_end)
    if c_end - c_start > max_chars:
        bounds = (c_start, c_end)
        return _word_window(text, bounds, answer, max_chars)
    lo, hi = allowed if allowed is not None else (0, len(sentences) - 1)
    before, after = first - 1, last + 1
    turn_before = True
    while before >= lo or after <= hi:
        grew = False
        for side in ((0, 1) if turn_before else (1, 0)):
            if side == 0 and before >= lo and c_end - sentences[before][0] <= max_chars:
                c_start = sentences[before][0]
                before -= 1
                grew = True
                break
            if side == 1 and after <= hi and sentences[after][1] - c_start <= max_chars:
                c_end = sentences[after][1]
                after += 1
                grew = True
                break
        if not grew:
            break
        turn_before = not turn_before
    return c_start, c_end


def _word_window(text: str, bounds: Span, answer: Span, max_chars: int) -> Span:
    """Extend `answer` within `bounds` to at most `max_chars`, ending on word boundaries."""
    a_start, a_end = answer
    lo, hi = bounds
    slack = max_chars - (a_end - a_start)
    left_room = a_start - lo
    right_room = hi - a_end
    take_left = min(left_room, slack // 2)
    take_right = min(right_room, slack - take_left)
    take_left = min(left_room, slack - take_right)
    start = a_start - take_left
    end = a_end + take_right
    # Snap inwards to whitespace so no word is cut; never past the answer.
    if start > lo and not text[start - 1].isspace():
        gap = _WORD_GAP.search(text, start, a_start)
        start = gap.end() if gap else a_start
    if end < hi and not text[end].isspace():
        gaps = list(_WORD_GAP.finditer(text, a_end, end))
        end = gaps[-1].start() if gaps else a_end
    return strip_span(text, start, end)


def find_deposit_name(texts: Iterable[str]) -> str | None:
    """The deposit name a document is about, in the nominative («Кедровое»), or None.

    Candidates come from «Кедровое … месторождение» and «месторождение Купол»; a capitalised
    word that also occurs lower-cased in the texts («Данное месторождение») is not a name. The
    most frequent candidate wins, ties by first occurrence.
    """
    texts = list(texts)
    joined = "\n".join(texts)
    lower_words = set(re.findall(r"(?<![\w-])[а-яё]+(?:-[а-яё]+)*", joined))
    found: Counter[str] = Counter()
    first: dict[str, int] = {}
    candidates = [(m.start(), m.group(1)) for m in _NAME_BEFORE.finditer(joined)]
    for m in _NAME_AFTER.finditer(joined):
        name = m.group(1)
        if name.endswith("ое") or not _OBLIQUE.search(name):
            candidates.append((m.start(), name))
    for pos, name in candidates:
        if name.lower() in _NOT_NAMES or name.lower() in lower_words:
            continue
        found[name] += 1
        first.setdefault(name, pos)
    if not found:
        return None
    return min(found, key=lambda n: (-found[n], first[n]))


#: chemical element symbols: short entities that are real answers (Au, Ag, Cu, W)
ELEMENT_SYMBOLS = frozenset(
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd "
    "Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am "
    "Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og".split()
)
#: parts of speech that make a one-word entity a stop word (pymorphy3 / OpenCorpora tags)
_FUNCTION_POS = frozenset({"PREP", "CONJ", "PRCL", "INTJ", "NPRO", "PRED"})
_LETTER = re.compile(r"[^\W\d_]")


def entity_problem(text: str, min_chars: int) -> tuple[str, str] | None:
    """Why an entity text cannot carry a question: (rule, reason), or None when it can.

    It needs letters, at least `min_chars` of them (a chemical element symbol is enough), and a
    one-word entity must not be a function word ("и", "в", "это").
    """
    word = text.strip()
    letters = len(_LETTER.findall(word))
    if letters == 0:
        return "no_letters", f"entity text {word!r} has no letters (a number or a mark)"
    if letters < min_chars and word not in ELEMENT_SYMBOLS:
        return "entity_too_short", (
            f"entity text {word!r} has {letters} letter(s), fewer than qa.min_entity_chars="
            f"{min_chars}, and is not an element symbol")
    if " " not in word:
        tag = morph_analyzer().parse(word.lower())[0].tag
        if tag.POS in _FUNCTION_POS:
            return "stop_word", f"entity text {word!r} is a function word ({tag.POS})"
    return None
