r"""How much a text reads like language: dictionary words and Latin/Cyrillic look-alike mixing.

One measure for two uses: ingestion judges each PDF page's text layer with it (`page_verdict`;
``ingest.ocr: auto`` recognises the pages whose layer is missing or garbage) and chunk
validation judges each document's chunk text (`geomas.validate.chunks`).

- **words**: runs of Unicode letters of at least `MIN_WORD_LETTERS` letters, lower-cased after
  NFC normalisation (a PDF's "и" + combining breve is one "й"). A word is **known** when
  wordfreq gives it a nonzero frequency in one of the dictionary languages (Russian and English
  by default; wordfreq's large word lists, shipped in its wheel, nothing is downloaded). The
  dictionary share is known words / words: ~0.95 on clean Russian prose, ~0 on a text layer
  whose font encoding is broken (``;_kieZlgZy xjb^bq_kdZy``). Only words written in Cyrillic
  or Latin letters are judged: Russian and English dictionaries cannot judge Korean or Greek
  words, and a page of them is not garbage (Tesseract with rus+eng would read it far worse
  than its own text layer).
- **mixed tokens**: runs of letters and digits, joined by ``\`` or ``|`` where those stand inside
  a word; a token of at least two letters is mixed when it holds both Cyrillic and Latin letters
  ("KOMПAHИЯ", "Hг" with a Latin H) or a ``\`` / ``|`` between letters ("Л\одулятор"): what
  an old OCR text layer leaves. Hyphens and slashes split tokens, so "IT-специалист" and
  "км/ч" are not mixed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from geomas.config import TextQualityConfig

#: Words shorter than this are not judged (abbreviations, initials, units: "г", "км", "ФЗ").
MIN_WORD_LETTERS = 3
#: How many mixed tokens a measurement keeps as examples.
N_EXAMPLES = 5

PageVerdict = Literal["good", "garbage", "empty"]

_LETTER = r"[^\W\d_]"
_WORD = re.compile(rf"{_LETTER}{{{MIN_WORD_LETTERS},}}")
_LETTERS = re.compile(rf"{_LETTER}+")
_TOKEN = re.compile(r"[^\W_]+(?:[\\|][^\W_]+)*")
_CYRILLIC = re.compile(r"[\u0400-\u052f]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_INNER_JUNK = re.compile(rf"{_LETTER}[\\|]+{_LETTER}")
#: Words of these scripts are judged against the dictionaries (Cyrillic, Latin).
_JUDGED = re.compile(r"[\u0400-\u052fA-Za-z\u00c0-\u024f]+")


@dataclass(frozen=True)
class TextQuality:
    """Counts measured on a text; shares are None when there is nothing to count."""

    letters: int = 0
    words: int = 0
    known_words: int = 0
    tokens: int = 0
    mixed_tokens: int = 0
    examples: tuple[str, ...] = ()

    @property
    def dictionary_share(self) -> float | None:
        """Known words / words (None without words)."""
        return self.known_words / self.words if self.words else None

    @property
    def unknown_share(self) -> float | None:
        """Words not in the dictionary / words (None without words)."""
        return 1.0 - self.known_words / self.words if self.words else None

    @property
    def mixed_share(self) -> float | None:
        """Tokens mixing Cyrillic and Latin letters (or with a backslash or bar inside) / tokens."""
        return self.mixed_tokens / self.tokens if self.tokens else None

    def __add__(self, other: TextQuality) -> TextQuality:
        """The counts of two texts together (a document from its chunks or pages)."""
        return TextQuality(
            letters=self.letters + other.letters,
            words=self.words + other.words,
            known_words=self.known_words + other.known_words,
            tokens=self.tokens + other.tokens,
            mixed_tokens=self.mixed_tokens + other.mixed_tokens,
            examples=(self.examples + other.examples)[:N_EXAMPLES],
        )


def measure(text: str, languages: Sequence[str] = ("ru", "en")) -> TextQuality:
    """Count the letters, dictionary words and mixed tokens of `text`.

    Args:
        text: Any text (a page's text layer, a chunk).
        languages: wordfreq language codes whose dictionaries count a word as known.

    Returns:
        The counts; see the module docstring for what a word and a mixed token are.
    """
    text = unicodedata.normalize("NFC", text)
    letters = sum(len(m) for m in _LETTERS.findall(text))
    if not letters:
        return TextQuality()
    dictionaries = [_dictionary(lang) for lang in languages]
    words = [w.lower() for w in _WORD.findall(text) if _JUDGED.fullmatch(w)]
    known = sum(1 for w in words if _known(w, dictionaries))
    tokens = 0
    mixed: list[str] = []
    for token in _TOKEN.findall(text):
        if sum(ch.isalpha() for ch in token) < 2:
            continue
        tokens += 1
        if _is_mixed(token):
            mixed.append(token)
    return TextQuality(letters=letters, words=len(words), known_words=known, tokens=tokens,
                       mixed_tokens=len(mixed), examples=tuple(dict.fromkeys(mixed))[:N_EXAMPLES])


def measure_all(texts: Iterable[str], languages: Sequence[str] = ("ru", "en")) -> TextQuality:
    """The counts of several texts together (a document from its chunk texts)."""
    total = TextQuality()
    for text in texts:
        total = total + measure(text, languages)
    return total


def page_verdict(quality: TextQuality, config: TextQualityConfig) -> PageVerdict:
    """Whether a page's text layer is usable.

    ``empty``: fewer than ``config.min_letters`` letters (no text layer, or a stray stamp);
    ``garbage``: at least ``config.min_words`` words and a dictionary share below
    ``config.min_dictionary_share`` or a mixed-token share above ``config.max_mixed_share``;
    ``good`` otherwise (also a page of numbers with too few words to judge).
    """
    if quality.letters < config.min_letters:
        return "empty"
    if quality.words < config.min_words:
        return "good"
    dictionary = quality.dictionary_share or 0.0
    mixed = quality.mixed_share or 0.0
    if dictionary < config.min_dictionary_share or mixed > config.max_mixed_share:
        return "garbage"
    return "good"


def unknown_languages(languages: Sequence[str]) -> list[str]:
    """The languages among `languages` that wordfreq has no word list for."""
    from wordfreq import available_languages

    known = available_languages("best")
    return [lang for lang in languages if lang not in known]


def _known(word: str, dictionaries: Sequence[dict[str, float]]) -> bool:
    if any(word in d for d in dictionaries):
        return True
    # wordfreq lists a word with "ё" or with "е", not always both; some fonts give "ѐ" for "ё"
    plain = word.translate(_YO)
    return plain != word and any(plain in d for d in dictionaries)


_YO = str.maketrans({"ё": "е", "ѐ": "е"})


def _is_mixed(token: str) -> bool:
    if _INNER_JUNK.search(token):
        return True
    return bool(_CYRILLIC.search(token)) and bool(_LATIN.search(token))


@cache
def _dictionary(language: str) -> dict[str, float]:
    """The wordfreq word list of `language` (word -> frequency; loaded once per process).

    Raises:
        ValueError: wordfreq has no word list for `language`.
    """
    from wordfreq import available_languages, get_frequency_dict

    if language not in available_languages("best"):
        raise ValueError(
            f"wordfreq has no word list for language {language!r}; use one of "
            f"{', '.join(sorted(available_languages('best')))}"
        )
    # ~140 MB for ru + en in memory; a dict lookup per word is what makes this fast
    words: dict[str, float] = get_frequency_dict(language, "best")
    return words
