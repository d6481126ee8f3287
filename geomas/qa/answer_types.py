"""Answer-type gates: what an answer must carry for the entity type it is about.

A template question about an entity type is answered by the sentence that holds the entity;
the sentence is a usable answer only when it talks about what the question asks: its lemmas
meet the type's lexicon (`qa.answer_types`, `geomas.config.qa_rules.default_answer_types`)
and it carries the type's needs (a number, a number with a unit, a year). Table debris — a
line without letters, a bare page number, a cell run — is never an answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from geomas.config.qa_rules import AnswerTypeRule
from geomas.text import morph_analyzer

_WORD = re.compile(r"[^\W\d_]+(?:/[^\W\d_]+)?|°[CcС]")
_NUMBER = re.compile(r"\d")
_UNIT = re.compile(
    r"\d\s*(?:%|‰|°|[^\W\d_]{1,6}\.?(?:/[^\W\d_]{1,4})?|млн|тыс|г/т|кг|км|м3|м³|м²)",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(1[6-9]\d\d|20\d\d)\b")
_LETTER = re.compile(r"[^\W\d_]")


def _norm(word: str) -> str:
    return word.lower().replace("ё", "е")


def answer_lemmas(text: str) -> set[str]:
    """Lower-case lemmas (ё as е) of the text's words, and the words themselves."""
    out: set[str] = set()
    for m in _WORD.finditer(text):
        word = _norm(m.group(0))
        out.add(word)
        if "/" not in word:
            out.update(_lemmas(word))
    return out


@lru_cache(maxsize=200_000)
def _lemmas(word: str) -> frozenset[str]:
    """Every dictionary form the word may have ("жил": жила and жить): a gate wants recall."""
    return frozenset(_norm(p.normal_form) for p in morph_analyzer().parse(word))


def debris_problem(answer: str) -> str | None:
    """Why the answer is table or page debris rather than a sentence, or None."""
    letters = len(_LETTER.findall(answer))
    if letters < 3:
        return f"the answer has {letters} letters: a number or a table cell, not a statement"
    for line in answer.splitlines():
        if line.strip() and not _LETTER.search(line):
            return f"the answer holds a line without letters ({line.strip()[:30]!r}): a page " \
                "number or a table row"
    if "|" in answer:
        return "the answer holds table cell separators '|'"
    return None


def type_problem(answer: str, label: str, rules: Mapping[str, AnswerTypeRule]) -> str | None:
    """Why `answer` does not fit entity type `label`, or None (types without a rule pass)."""
    rule = rules.get(label)
    if rule is None:
        return None
    lemmas = answer_lemmas(answer)
    if not lemmas & {_norm(w) for w in rule.lemmas}:
        return f"the answer names nothing of {label} (none of {', '.join(rule.lemmas[:6])}...)"
    for need in rule.needs:
        if need == "number" and not _NUMBER.search(answer):
            return f"a {label} answer needs a number; this one has none"
        if need == "unit" and not _UNIT.search(answer):
            return f"a {label} answer needs a number with a unit; this one has none"
        if need == "year" and not _YEAR.search(answer):
            return f"a {label} answer needs a year; this one has none"
    return None


def best_type(text: str, rules: Mapping[str, AnswerTypeRule], default: str,
              min_hits: int = 1) -> str:
    """The type whose lexicon the text meets most (`min_hits` lemmas or more); else `default`.

    A type counts only when its needs (a number, a unit, a year) are met too.
    """
    lemmas = answer_lemmas(text)
    best, score = default, min_hits - 1
    for label, rule in rules.items():
        hits = len(lemmas & {_norm(w) for w in rule.lemmas})
        if hits > score and type_problem(text, label, {label: rule}) is None:
            best, score = label, hits
    return best
