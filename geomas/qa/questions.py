"""Answer-first questions: the question is built from the answer sentence itself.

A sentence that states an informative fact (a quantity with a unit, a date, a place, what a
rock or a body consists of, what it is tied to, a definition, a duty) is parsed with natasha
(razdel segmentation, slovnet morphology and dependency syntax; the models ship inside the
natasha wheel, nothing is downloaded); a rule finds the constituent that carries the fact,
removes it and asks for it from what is left of the sentence:

- "Запасы нефти составляют 12,5 млн т." -> "Каковы запасы нефти?"
- "Месторождение расположено в Ханты-Мансийском АО." -> "Где расположено месторождение?"
- "Месторождение открыто в 1958 году." -> "Когда открыто месторождение?"
- "Продуктивные отложения представлены песчаниками." -> "Чем представлены продуктивные
  отложения?"
- "Ширина прохода должна быть не менее 0,7 м." -> "Какой должна быть ширина прохода?"
- "1) информационная продукция - предназначенная для оборота ..." -> "Что означает понятие
  «информационная продукция»?"

The answer is the whole sentence, so question and answer are about the same thing by
construction. Agreement of the question word (Каков / Какова / Каково / Каковы) comes from the
subject's gender and number (slovnet's features, pymorphy3 where slovnet has none).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, get_args

from geomas.config.qa_rules import QuestionKind
from geomas.text import morph_analyzer

#: Kinds of answer-first questions, in the order the rules are tried.
KINDS: tuple[str, ...] = get_args(QuestionKind)

# A sentence is parsed only when it can match a rule (parsing is the costly part).
_CANDIDATE = re.compile(
    r"\d|представлен|сложен|приурочен|располож|находит|размещ|залега|состо[ия]т из|характеризу"
    r"|понима[ею]тся|относит|относят|связан|контролиру|обязан|вправе|\s[—–-]\s",
    re.IGNORECASE,
)
# endings of abstract common nouns that slovnet may tag PROPN at a sentence start
# ("Оруденение приурочено ..."); names do not end like this
_COMMON_NOUN_END = re.compile(r"(?:ени[ея]|ани[ея]|ость|ация|изм|ство)$", re.IGNORECASE)
_YEAR = re.compile(r"^(1[6-9]\d\d|20\d\d)(?:-(?:е|х|м|1[6-9]\d\d|20\d\d))?$")
_DATE = re.compile(r"^\d{1,2}\.\d{1,2}\.(\d{2}|\d{4})$")
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[А-Яа-яЁё]")
_LIST_MARK = re.compile(r"^\s*(?:\(?\d{1,3}[.)]|[а-я]\)|[-•–—])\s*")
_DEFINITION_MIN_WORDS = 6
_VERBISH = frozenset({"VERB", "INFN", "PRTF", "PRTS", "GRND"})
_ANAPHORIC = re.compile(r"^(данн|указанн|вышеуказанн|названн|упомянут|такой|такая|такое|такие)",
                        re.IGNORECASE)
# a dash followed by a rule or a value, not by what the term means
_NOT_DEFINING = re.compile(r"\b(обязан[аоы]?|вправе|должн[аоы]?|должен)\b|^\s*не\s+(более|менее)\b",
                           re.IGNORECASE)
# a heading line run into the sentence ("Сроки введения ... Кодекса\nНастоящий Кодекс ...")
_HEADING_BREAK = re.compile(r"[^\s.;:,!?)\-–—]\s*\n\s*[А-ЯЁ](?:[а-яё]|\s)")
# legal-database notes on the text itself, not law ("Часть вторая утратила силу с ...")
_EDITORIAL = re.compile(r"утратил[аио]?\s+силу|в\s+ред\.\s", re.IGNORECASE)
_DEFINITION = re.compile(
    r"^(?P<term>[А-ЯЁа-яё][А-ЯЁа-яё\- ,()]{2,80}?)\s+[—–-]\s+(?P<body>[а-яё].{20,})$", re.DOTALL
)
_UNDERSTOOD = re.compile(
    r"(?:^|\s)[Пп]од\s+(?P<term>[^,.;:]{3,80}?)\s+(?P<verb>понима[ею]тся)\s+\S", re.DOTALL
)

_QUANTITY_VERB = re.compile(
    r"^(составля|составил|составит|составят|достига|достиг|равн[аоы]?$|равен$|оценива|насчитыва)",
    re.IGNORECASE,
)
_RANGE_VERB = re.compile(r"^(изменя|колебл|варьиру|меняе|меняю)", re.IGNORECASE)
_PLACE_VERB = re.compile(r"^(располож|находит|находят|размещ|залега)", re.IGNORECASE)
_COMPOSITION = {
    "представлен": "Чем", "представлена": "Чем", "представлено": "Чем", "представлены": "Чем",
    "сложен": "Чем", "сложена": "Чем", "сложено": "Чем", "сложены": "Чем",
    "характеризуется": "Чем", "характеризуются": "Чем",
    "контролируется": "Чем", "контролируются": "Чем",
}
_ATTACHMENT = {
    ("приурочен", "к"): "К чему", ("приурочена", "к"): "К чему", ("приурочено", "к"): "К чему",
    ("приурочены", "к"): "К чему", ("относится", "к"): "К чему", ("относятся", "к"): "К чему",
    ("связан", "с"): "С чем", ("связана", "с"): "С чем", ("связано", "с"): "С чем",
    ("связаны", "с"): "С чем", ("состоит", "из"): "Из чего", ("состоят", "из"): "Из чего",
}
_MODAL = re.compile(r"^(обязан[аоы]?|вправе|должн[аоы]?|должен)$", re.IGNORECASE)
_LIMIT = re.compile(r"\bне\s+(менее|более|ниже|выше|больше|меньше|свыше)\b", re.IGNORECASE)

_KAKOV = {"masc": "Каков", "femn": "Какова", "neut": "Каково", "plur": "Каковы"}
_KAKOJ_INS = {"masc": "Каким", "femn": "Какой", "neut": "Каким", "plur": "Какими"}
# words that cannot head a subject a question can name
_VAGUE_HEADS = frozenset({
    "он", "она", "оно", "они", "это", "то", "который", "которая", "которое", "которые", "что",
    "все", "всё", "каждый", "один", "такой", "последний", "первый", "второй", "величина",
    "значение", "показатель", "данные", "результат",
})
# "X должна составлять не менее 96 %" is a quantity, not a duty
# verbs whose object is the person told ("известить работодателя о ..."): "Что" cannot ask it
_ADDRESS = frozenset({
    "проинформировать", "информировать", "известить", "извещать", "уведомить", "уведомлять",
    "ознакомить", "знакомить", "предупредить", "предупреждать", "оповестить", "оповещать",
})
# objects of light-verb phrases ("принимать участие"): the phrase is the meaning, not the object
_LIGHT_OBJECTS = frozenset({"участие"})
_VAGUE_DUTIES = frozenset({
    "составлять", "превышать", "достигать", "быть", "равняться", "соответствовать", "являться",
    "иметь", "находиться", "располагаться", "обеспечиваться",
})
_OTHER_KEEP_RELS = frozenset({"obl", "advmod", "iobj", "obj", "obl:agent", "xcomp", "nmod"})
_PRED_RELS = frozenset({"aux", "aux:pass", "cop"})
_MAX_SUBJECT_WORDS = 12
_MAX_QUESTION_CHARS = 220
_MIN_SENTENCE_CHARS = 25
_MAX_SENTENCE_CHARS = 400


@dataclass(frozen=True)
class Question:
    """An answer-first question about one sentence.

    Attributes:
        question: The question text (ends with "?").
        kind: Which rule built it (one of `KINDS`).
        sentence: (start, end) of the answer sentence in the text that was given.
        focus: (start, end) of the constituent the question asks for (the quantity, the date,
            the place...) in the same text.
        subject: The subject phrase as it stands in the question.
    """

    question: str
    kind: str
    sentence: tuple[int, int]
    focus: tuple[int, int]
    subject: str


@dataclass
class _Tok:
    i: int
    text: str
    start: int
    end: int
    pos: str
    feats: dict[str, str]
    head: int
    rel: str


class _Sentence:
    def __init__(self, toks: list[_Tok], start: int, end: int, text: str) -> None:
        self.toks = toks
        self.start, self.end = start, end
        self.text = text  # the whole chunk text; offsets are into it
        self.children: dict[int, list[int]] = {}
        for t in toks:
            self.children.setdefault(t.head, []).append(t.i)

    def tok(self, i: int) -> _Tok:
        return self.toks[i - 1]

    def kids(self, i: int, *rels: str) -> list[_Tok]:
        out = [self.tok(k) for k in self.children.get(i, [])]
        return [t for t in out if not rels or t.rel in rels or t.rel.split(":")[0] in rels]

    def subtree(self, i: int) -> list[int]:
        out, todo = [], [i]
        while todo:
            k = todo.pop()
            out.append(k)
            todo.extend(self.children.get(k, []))
        return sorted(out)

    def contiguous(self, idxs: Sequence[int]) -> bool:
        return list(idxs) == list(range(idxs[0], idxs[-1] + 1))

    def span(self, idxs: Sequence[int]) -> tuple[int, int]:
        return self.tok(idxs[0]).start, self.tok(idxs[-1]).end

    def phrase(self, idxs: Sequence[int]) -> str:
        """The tokens' text with the sentence's own spacing; edge punctuation dropped."""
        idxs = sorted(idxs)
        while idxs and self.tok(idxs[0]).pos == "PUNCT":
            idxs = idxs[1:]
        while idxs and self.tok(idxs[-1]).pos == "PUNCT" and self.tok(idxs[-1]).text not in ")»\"":
            idxs = idxs[:-1]
        parts: list[str] = []
        prev: _Tok | None = None
        for k in idxs:
            t = self.tok(k)
            if prev is not None:
                parts.append(self.text[prev.end:t.start] if k == prev.i + 1 else " ")
            parts.append(t.text)
            prev = t
        return re.sub(r"\s+", " ", "".join(parts)).strip()


class _Models:
    """natasha's segmenter, morphology and syntax (loaded once per process, on first use)."""

    _lock = threading.Lock()
    _loaded: tuple[Any, Any, Any] | None = None

    @classmethod
    def get(cls) -> tuple[Any, Any, Any]:
        with cls._lock:
            if cls._loaded is None:
                from natasha import NewsEmbedding, NewsMorphTagger, NewsSyntaxParser, Segmenter

                emb = NewsEmbedding()
                cls._loaded = (Segmenter(), NewsMorphTagger(emb), NewsSyntaxParser(emb))
            return cls._loaded


def _tag_of(word: str) -> Any:
    return morph_analyzer().parse(word)[0].tag


@lru_cache(maxsize=65536)
def _gender_number(word: str) -> str | None:
    tag = _tag_of(word)
    if tag.number == "plur":
        return "plur"
    return tag.gender if tag.gender in ("masc", "femn", "neut") else None


@lru_cache(maxsize=65536)
def _verbal(word: str) -> bool:
    """Whether some reading of the word is a finite verb or a short passive participle."""
    return any(p.tag.POS in ("VERB", "PRTS") for p in morph_analyzer().parse(word))


@lru_cache(maxsize=65536)
def _finite(word: str) -> bool:
    """Whether the word's likeliest reading is a finite verb."""
    return morph_analyzer().parse(word)[0].tag.POS == "VERB"


@lru_cache(maxsize=65536)
def _verbish(word: str) -> bool:
    """Whether a dictionary word can be a verb, participle or gerund ("определенных")."""
    morph = morph_analyzer()
    return morph.word_is_known(word) and any(p.tag.POS in _VERBISH for p in morph.parse(word))


@lru_cache(maxsize=65536)
def _keeps_capital(word: str) -> bool:
    """A sentence-initial word that stays capitalised inside a question (names, acronyms)."""
    if len(word) > 1 and word.isupper():
        return True
    tag = _tag_of(word)
    return bool({"Name", "Surn", "Patr", "Geox", "Orgn", "Abbr", "Trad"} & set(tag.grammemes))


class QuestionBuilder:
    """Answer-first questions for the sentences of a text (`questions`)."""

    def __init__(self, kinds: Sequence[str] = KINDS) -> None:
        """Build a question builder that asks only questions of `kinds`."""
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown question kinds {sorted(unknown)}; known: {list(KINDS)}")
        self.kinds = frozenset(kinds)

    def questions(self, text: str) -> list[Question]:
        """Every question the rules can build from `text`, at most one per sentence."""
        out: list[Question] = []
        if not self.kinds:
            return out
        for sent in self._parse(text):
            q = self._ask(sent)
            if q is not None:
                out.append(q)
        return out

    # -- parsing --------------------------------------------------------------------------------

    def _parse(self, text: str) -> Iterator[_Sentence]:
        from natasha import Doc

        segmenter, morph, syntax = _Models.get()
        doc = Doc(text)
        doc.segment(segmenter)
        sents = [s for s in doc.sents if self._worth_parsing(s.text)]
        if not sents:
            return
        # tag and parse only the candidate sentences (parsing is the costly part)
        morph_in = [[t.text for t in s.tokens] for s in sents]
        tagged = list(morph.map(morph_in))
        syn = list(syntax.map(morph_in))
        for s, m, y in zip(sents, tagged, syn, strict=True):
            toks = []
            for k, (tok, mt, st) in enumerate(zip(s.tokens, m.tokens, y.tokens, strict=True)):
                head = int(st.head_id) if st.head_id.isdigit() else 0
                toks.append(_Tok(k + 1, tok.text, tok.start, tok.stop, mt.pos, dict(mt.feats),
                                 head, st.rel))
            yield _Sentence(toks, s.start, s.stop, text)

    @staticmethod
    def _worth_parsing(sentence: str) -> bool:
        s = sentence.strip()
        if not (_MIN_SENTENCE_CHARS <= len(s) <= _MAX_SENTENCE_CHARS):
            return False
        if "|" in s or s.count("\n") > 2 or _HEADING_BREAK.search(s) or _EDITORIAL.search(s):
            return False
        letters = len(_LETTER.findall(s))
        if letters < 0.55 * len(s.replace(" ", "")):
            return False
        body = _LIST_MARK.sub("", s)
        if not body or not (body[0].isupper() or body[0].isdigit() or body[0] in "«\""):
            # a lower-case start is a list item or a sentence cut by the chunk edge; only a
            # numbered definition ("1) термин - ...") is taken
            if not _DEFINITION.match(body):
                return False
        if s[-1] not in ".;:!" and not s.endswith(")"):
            return False
        return bool(_CANDIDATE.search(s))

    # -- rules ----------------------------------------------------------------------------------

    def _ask(self, s: _Sentence) -> Question | None:
        raw = s.text[s.start:s.end]
        if self.kinds & {"definition", "property"}:
            q = self._definition(s, raw)
            if q is not None:
                return q
        roots = [t for t in s.toks if t.head == 0]
        if len(roots) != 1:
            return None
        root = roots[0]
        if any(t.text.lower() == "не" for t in s.kids(root.i, "advmod")):
            return None  # a negated statement makes a misleading question
        if any(t.text == "?" for t in s.toks):
            return None
        subj = self._subject(s, root)
        for rule in (self._quantity, self._requirement, self._place, self._date,
                     self._composition, self._duty):
            q = rule(s, root, subj)
            if q is not None and q.kind in self.kinds and self._grammatical(q.question):
                return q
        return None

    def _subject(self, s: _Sentence, root: _Tok) -> list[int] | None:
        subs = s.kids(root.i, "nsubj")
        if len(subs) != 1:
            return None
        head = subs[0]
        if head.pos not in ("NOUN", "PROPN") or head.text.lower() in _VAGUE_HEADS:
            return None
        idxs = s.subtree(head.i)
        if not s.contiguous(idxs):
            return None
        words = [k for k in idxs if s.tok(k).pos != "PUNCT"]
        if len(words) > _MAX_SUBJECT_WORDS:
            return None
        if any(s.tok(k).text.lower() in ("который", "которая", "которое", "которые",
                                         "которых", "этот", "эта", "это", "эти", "их", "его",
                                         "её", "ее") for k in idxs):
            return None
        if _ANAPHORIC.match(s.tok(idxs[0]).text):
            return None  # "данное лицо", "указанный работник": who it is lies outside the sentence
        if any(_DIGIT.search(s.tok(k).text) for k in idxs) and head.pos != "PROPN":
            # "Запасы 12 млн т ..." puts the answer in the subject; names like "ЮВ1" are fine
            if not any(re.match(r"^[А-ЯЁA-Z]{1,4}[-\d]", s.tok(k).text) for k in idxs):
                return None
        return idxs

    def _subject_text(self, s: _Sentence, idxs: list[int]) -> str:
        text = s.phrase(idxs)
        first = s.tok(idxs[0])
        if first.i == 1 or s.tok(first.i - 1).pos == "PUNCT":
            word = first.text
            name = (first.pos == "PROPN" and not morph_analyzer().word_is_known(word.lower())
                    and not _COMMON_NOUN_END.search(word))
            if not name and not _keeps_capital(word):
                text = text[0].lower() + text[1:]
        return text

    def _agreement(self, s: _Sentence, idxs: list[int]) -> str | None:
        head = next(s.tok(k) for k in idxs if s.tok(k).rel.startswith("nsubj"))
        if any(s.tok(k).rel == "conj" and s.tok(k).head == head.i for k in idxs):
            return "plur"
        number = head.feats.get("Number")
        if number == "Plur":
            return "plur"
        gender = {"Masc": "masc", "Fem": "femn", "Neut": "neut"}.get(head.feats.get("Gender", ""))
        return gender or _gender_number(head.text.lower())

    def _others(self, s: _Sentence, root: _Tok, skip: set[int]) -> list[int]:
        """Modifiers of the predicate that stay in the question (not the focus, not clauses)."""
        out: list[int] = []
        for t in s.kids(root.i):
            if t.i in skip or t.rel.split(":")[0] not in _OTHER_KEEP_RELS:
                continue
            sub = s.subtree(t.i)
            if any(s.tok(k).pos == "PUNCT" and s.tok(k).text in ",;:" for k in sub):
                continue  # a modifier with its own commas is a clause of its own; leave it out
            if any(_DIGIT.search(s.tok(k).text) for k in sub):
                continue  # another number would be a second answer hidden in the question
            out.extend(sub)
        return out

    def _pred(self, s: _Sentence, root: _Tok) -> str:
        aux = [t.i for t in s.kids(root.i) if t.rel in _PRED_RELS]
        return s.phrase(sorted([*aux, root.i]))

    def _focus(self, s: _Sentence, root: _Tok, rels: tuple[str, ...],
               test: Any) -> _Tok | None:
        for t in s.kids(root.i, *rels):
            sub = s.subtree(t.i)
            if s.contiguous(sub) and test(s, sub):
                return t
        return None

    @staticmethod
    def _has_number(s: _Sentence, sub: list[int]) -> bool:
        return any(_DIGIT.search(s.tok(k).text) for k in sub)

    def _build(self, s: _Sentence, kind: str, wh: str, pred: str, subj: list[int],
               focus: list[int], others: list[int]) -> Question | None:
        subject = self._subject_text(s, subj)
        rest = s.phrase(others) if others else ""
        if others and min(others) == 1 and not _keeps_capital(s.tok(1).text):
            rest = rest[0].lower() + rest[1:]  # "По величине запасов ..." moved inside
        parts = [wh, pred, subject, rest] if pred else [wh, subject, rest]
        question = re.sub(r"\s+", " ", " ".join(p for p in parts if p)).strip(" ,;:-—") + "?"
        question = question[0].upper() + question[1:]
        return Question(question, kind, (s.start, s.end), s.span(focus), subject)

    def _quantity(self, s: _Sentence, root: _Tok, subj: list[int] | None) -> Question | None:
        if subj is None:
            return None
        word = root.text.lower()
        ranged = bool(_RANGE_VERB.match(word))
        if not (_QUANTITY_VERB.match(word) or ranged):
            return None
        if word.startswith("составл") and word.endswith(("ся", "сь")):
            return None  # "протоколы составляются должностными лицами": drawn up, no amount
        focus = self._focus(s, root, ("obj", "obl", "nummod", "nsubj", "xcomp", "advmod"),
                            lambda s_, sub: self._has_number(s_, sub) and sub[0] > subj[-1])
        if focus is None:
            return None
        fsub = s.subtree(focus.i)
        others = self._others(s, root, {focus.i, *(s.tok(k).head for k in subj[:1])})
        others = [k for k in others if k not in subj and k not in fsub]
        if ranged:
            return self._build(s, "range", "В каких пределах", self._pred(s, root), subj, fsub,
                               others)
        agree = self._agreement(s, subj)
        if agree is None:
            return None
        return self._build(s, "quantity", _KAKOV[agree], "", subj, fsub, others)

    def _requirement(self, s: _Sentence, root: _Tok, subj: list[int] | None) -> Question | None:
        """'X должна быть не менее 0,7 м' -> 'Какой должна быть X?'."""
        if subj is None:
            return None
        raw = s.text[s.start:s.end]
        if not _LIMIT.search(raw):
            return None
        modal = [t for t in s.toks if re.match(r"^(должн[аоы]?|должен)$", t.text.lower())]
        be = [t for t in s.toks if t.text.lower() == "быть"]
        if len(modal) != 1 or len(be) != 1 or be[0].i != modal[0].i + 1:
            return None
        if modal[0].i < subj[-1]:
            return None
        after = list(range(be[0].i + 1, len(s.toks) + 1))
        # "должна быть не менее 0,7 м" (a copula), not "должна быть установлена ... не менее"
        if not after or s.tok(after[0]).text.lower() != "не" or len(after) < 3 or \
                not _LIMIT.match(f"{s.tok(after[0]).text} {s.tok(after[1]).text}"):
            return None
        if s.tok(after[2]).text == ":":
            return None  # "не менее:" and a list: the sentence holds only its first item
        if not any(_DIGIT.search(s.tok(k).text) for k in after[2:5]):
            return None
        agree = self._agreement(s, subj)
        if agree is None:
            return None
        # everything between the subject and the modal stays (e.g. "в выработках")
        between = [k for k in range(subj[-1] + 1, modal[0].i)
                   if s.tok(k).pos != "PUNCT"]
        if any(_DIGIT.search(s.tok(k).text) for k in between) or len(between) > 6:
            return None
        pred = f"{modal[0].text.lower()} быть"
        q = self._build(s, "requirement", _KAKOJ_INS[agree], pred, subj, after, between)
        return q

    def _place(self, s: _Sentence, root: _Tok, subj: list[int] | None) -> Question | None:
        if subj is None or not _PLACE_VERB.match(root.text.lower()):
            return None

        def where(s_: _Sentence, sub: list[int]) -> bool:
            cases = [t for t in s_.kids(s_.toks[sub[0] - 1].i) if t.rel == "case"]
            prep = s_.tok(sub[0]).text.lower()
            return prep in ("в", "на", "во", "у", "вблизи", "близ", "южнее", "севернее",
                            "западнее", "восточнее") or bool(cases)

        focus = self._focus(s, root, ("obl", "advmod"), where)
        if focus is None:
            return None
        fsub = s.subtree(focus.i)
        if fsub[0] < subj[0]:
            return None
        head_word = focus.text.lower()
        if head_word.startswith("глубин"):
            kind, wh = "depth", "На какой глубине"
        elif s.tok(fsub[0]).text.lower() in ("в", "на", "во"):
            kind, wh = "place", "Где"
        else:
            return None
        if kind == "place" and self._has_number(s, fsub):
            return None  # "в 1958 году", "на 01.01.2020": a date, not a place
        others = [k for k in self._others(s, root, {focus.i}) if k not in subj]
        return self._build(s, kind, wh, self._pred(s, root), subj, fsub, others)

    def _date(self, s: _Sentence, root: _Tok, subj: list[int] | None) -> Question | None:
        if subj is None or root.pos not in ("VERB", "ADJ", "AUX", "ADV"):
            return None
        if not _verbal(root.text.lower()):
            return None

        def when(s_: _Sentence, sub: list[int]) -> bool:
            if any(s_.tok(k).pos == "VERB" for k in sub):
                return False  # "на правоотношения, возникшие с 21.09.2022": the date is not when
            words = [s_.tok(k).text.lower() for k in sub]
            if any(_DATE.match(w) for w in words):
                return True
            years = [k for k in sub if _YEAR.match(s_.tok(k).text)]
            return bool(years) and any(w.startswith(("год", "гг", "г")) for w in words) and \
                len(sub) <= 6

        focus = self._focus(s, root, ("obl", "advmod", "nmod"), when)
        if focus is None:
            return None
        fsub = s.subtree(focus.i)
        others = [k for k in self._others(s, root, {focus.i}) if k not in subj]
        return self._build(s, "date", "Когда", self._pred(s, root), subj, fsub, others)

    def _composition(self, s: _Sentence, root: _Tok, subj: list[int] | None) -> Question | None:
        if subj is None:
            return None
        word = root.text.lower()
        wh = _COMPOSITION.get(word)
        if wh is not None:
            focus = self._focus(s, root, ("obl", "obj", "iobj"),
                                lambda s_, sub: s_.tok(sub[0]).pos != "ADP" and sub[0] > root.i)
            kind = "composition"
        else:
            found = None
            for (verb, prep), w in _ATTACHMENT.items():
                if word == verb:
                    found = (prep, w)
            if found is None:
                return None
            prep, wh = found
            focus = self._focus(s, root, ("obl", "iobj"),
                                lambda s_, sub: s_.tok(sub[0]).text.lower() == prep)
            kind = "attachment" if prep != "из" else "composition"
        if focus is None:
            return None
        fsub = s.subtree(focus.i)
        others = [k for k in self._others(s, root, {focus.i}) if k not in subj]
        return self._build(s, kind, wh, self._pred(s, root), subj, fsub, others)

    def _duty(self, s: _Sentence, root: _Tok, subj: list[int] | None) -> Question | None:
        """'Работодатель обязан обеспечить X' -> 'Что обязан обеспечить работодатель?'."""
        if subj is None or not _MODAL.match(root.text):
            return None
        xcomps = s.kids(root.i, "xcomp")
        if len(xcomps) != 1 or xcomps[0].pos != "VERB":
            return None
        verb = xcomps[0]
        if morph_analyzer().parse(verb.text.lower())[0].normal_form in _VAGUE_DUTIES | _ADDRESS:
            return None  # "обязан известить работодателя": the object is whom, not what
        objs = s.kids(verb.i, "obj")
        if len(objs) != 1:
            return None
        obj = morph_analyzer().parse(objs[0].text.lower())[0]
        if obj.normal_form in _LIGHT_OBJECTS or obj.tag.animacy == "anim":
            return None  # "принимать участие", "обязан уведомить работника": no "Что"
        fsub = s.subtree(objs[0].i)
        if not s.contiguous(fsub) or fsub[0] < verb.i:
            return None
        pred = f"{root.text.lower()} {verb.text.lower()}"
        return self._build(s, "duty", "Что", pred, subj, fsub, [])

    def _definition(self, s: _Sentence, raw: str) -> Question | None:
        body = _LIST_MARK.sub("", raw)
        offset = raw.index(body[:10]) if body else 0
        m = _UNDERSTOOD.search(body)
        if m is not None and "definition" in self.kinds:
            term = m.group("term").strip()
            if 1 <= len(term.split()) <= 8:
                q = f"Что {m.group('verb')} под {term}?"
                start = s.start + offset + m.end("verb")
                return Question(q, "definition", (s.start, s.end), (start, s.end), term)
        m = _DEFINITION.match(body)
        if m is None:
            return None
        term = m.group("term").strip(" ,")
        words = term.split()
        if not 1 <= len(words) <= 6 or "(" in term and ")" not in term:
            return None
        low = [w.lower() for w in words]
        if len(low) % 2 == 0 and low[:len(low) // 2] == low[len(low) // 2:]:
            return None  # "Нормы труда Нормы труда - ...": a heading run into its text
        tags = [_tag_of(w.strip("(),").lower()) for w in words]
        if any(t.POS in ("VERB", "INFN", "PRTS", "ADJS", "NPRO", "PRCL", "CONJ") for t in tags):
            return None
        if not any(t.POS == "NOUN" for t in tags) or tags[0].POS == "PREP":
            return None  # "в случаях, предусмотренных ... - ..." is a clause, not a term
        if not any(p.tag.case == "nomn" for p in morph_analyzer().parse(words[0].lower())):
            return None  # "электрической сети - от ..." is the tail of a sentence, not a term
        first_clause = re.split(r"[,;:(]", m.group("body"), maxsplit=1)[0]
        if any(_finite(w.lower()) or _tag_of(w.lower()).POS in ("ADJS", "PRTS")
               for w in re.findall(r"[А-Яа-яЁё-]+", first_clause)):
            return None  # "X - реле устанавливается ...", "X - лицо обязан": a rule, no definition
        head = re.findall(r"[А-Яа-яЁё-]+", m.group("body"))[:1]
        if not head or not any(p.tag.case in ("nomn", None) or p.tag.POS in ("ADJF", "PRTF")
                               and p.tag.case == "nomn"
                               for p in morph_analyzer().parse(head[0].lower())):
            return None  # "... с работодателем - физическим лицом": a title, no definition
        if not (words[0][0].isupper() and _keeps_capital(words[0])):
            term = term[0].lower() + term[1:]
        focus_start = s.start + offset + m.start("body")
        # "Рудная формация - золото-кварцевая." states a value (property); a longer body
        # ("Техническое руководство - непосредственное управление ...") defines the term
        # a definition says what the thing is and does ("полость, образуемая ...", "лицо,
        # вступившее ..."); a list or a name after the dash is the value of a property
        # ("Главные рудные минералы - самородное золото, пирит ...", "Ближайший пункт - с. Аян")
        body_words = re.findall(r"[А-Яа-яЁё-]+\.?", m.group("body"))
        defines = (len(body_words) >= _DEFINITION_MIN_WORDS
                   and not body_words[0].endswith(".") and not body_words[0][0].isupper()
                   and any(_verbish(w.rstrip(".").lower()) for w in body_words))
        if _NOT_DEFINING.search(m.group("body")) or not defines and "property" not in self.kinds:
            return None  # "Работодатель - физическое лицо ... обязан ...", "Потери - не более 1%"
        if "definition" in self.kinds and (defines or "property" not in self.kinds):
            return Question(f"Что означает понятие «{term}»?", "definition", (s.start, s.end),
                            (focus_start, s.end), term)
        # a report's "Рудная формация - золото-кварцевая" states a value, not a definition
        noun = next(w for w, t in zip(words, tags, strict=True) if t.POS == "NOUN")
        agree = _gender_number(noun.strip("(),").lower())
        if agree is None:
            return None
        return Question(f"{_KAKOV[agree]} {term}?", "property", (s.start, s.end),
                        (focus_start, s.end), term)

    @staticmethod
    def _grammatical(question: str) -> bool:
        words = question.rstrip("?").split()
        if not (3 <= len(words) and len(question) <= _MAX_QUESTION_CHARS):
            return False
        if question.count("(") != question.count(")") or question.count("«") != question.count(
                "»"):
            return False
        return not re.search(r"\s[,;:]|,\s*\?|\s(и|или|а|но|в|на|с|к|по|из|от|до)\?$", question)
