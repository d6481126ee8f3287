"""Document profiles: which domain a document belongs to, told by its vocabulary.

Each document's words are lemmatised (pymorphy3) and the lemmas of each profile's lexicon
(`qa.profiles`) counted per 1,000 words; the best profile above its `min_score` wins, else
``other``. Templates about ore deposits and oil fields are asked only of documents whose
profile is in `qa.template_profiles`, never of a law or a physics text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from pydantic import BaseModel, Field

from geomas.config import DomainProfile
from geomas.text import morph_analyzer

OTHER = "other"
#: words read per document: enough to tell a domain, bounded for long documents
MAX_WORDS = 20_000
_WORD = re.compile(r"[^\W\d_]{2,}")


class DocumentProfile(BaseModel):
    """A document's domain with its score and the words that gave it."""

    profile: str
    score: float = Field(description="Keyword lemmas of that profile per 1,000 words.")
    scores: dict[str, float] = Field(description="Score of every profile.")
    evidence: list[str] = Field(description="The profile's most frequent keywords found.")
    words: int = Field(description="Words read.")


@lru_cache(maxsize=200_000)
def lemma(word: str) -> str:
    """The likeliest dictionary form of a lower-case word (pymorphy3)."""
    return str(morph_analyzer().parse(word)[0].normal_form)


def profile_text(texts: Iterable[str], profiles: dict[str, DomainProfile]) -> DocumentProfile:
    """The profile of a document from its texts (chunks, headings)."""
    lemmas: Counter[str] = Counter()
    n = 0
    for text in texts:
        for m in _WORD.finditer(text):
            lemmas[lemma(m.group(0).lower())] += 1
            n += 1
            if n >= MAX_WORDS:
                break
        if n >= MAX_WORDS:
            break
    scores: dict[str, float] = {}
    hits: dict[str, Counter[str]] = {}
    for name, spec in profiles.items():
        found = Counter({k: lemmas[k] for k in spec.keywords if lemmas[k]})
        hits[name] = found
        scores[name] = round(1000 * sum(found.values()) / n, 2) if n else 0.0
    passing = [name for name, spec in profiles.items()
               if scores[name] >= spec.min_score and len(hits[name]) >= spec.min_distinct]
    best = max(passing, key=lambda name: scores[name], default=OTHER)
    evidence = [w for w, _ in hits.get(best, Counter()).most_common(8)]
    return DocumentProfile(profile=best, score=scores.get(best, 0.0), scores=scores,
                           evidence=evidence, words=n)
