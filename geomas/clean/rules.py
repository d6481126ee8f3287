"""Record filters of the cleaning stage: each has a name and returns why it drops a record.

A filter is ``(name, check)`` where ``check(record)`` returns None to keep the record or a
reason (what was wrong, with the value and the setting) to drop it. `build_filters` returns
the active filters in their fixed order for a `CleanConfig`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from geomas.config import CleanConfig
from geomas.formats.example import Example
from geomas.text import words

NORMALIZE = "normalize"
FILTERS = ("empty", "length", "script", "garbage", "grounding", "profile")
EXACT_DUP = "exact_dup"
NEAR_DUP = "near_dup"
RULE_ORDER = (NORMALIZE, *FILTERS, EXACT_DUP, NEAR_DUP)

# Character classes by code point. Letters are what `geomas.text` counts as letters
# (regex [^\W\d_]: alphanumeric, not a decimal digit, not "_"). Symbols are neither letters,
# digits, spaces nor punctuation usual in Russian technical and legal text: box drawing,
# private-use glyphs of broken PDF fonts, U+FFFD, emoji, stray marks.
_SPACE, _CYRILLIC, _LETTER, _OTHER, _SYMBOL = range(5)
_PUNCTUATION = ".,;:!?()[]{}«»\"'„“”‘’/\\%‰№§+=<>*°′″±×·…&#@^~|-–—‒―−_"
_CYRILLIC_BLOCKS = slice(0x0400, 0x0530)  # Cyrillic and Cyrillic Supplement, as geomas.text


@cache
def _char_classes() -> NDArray[np.uint8]:
    """The class of every code point (built once, about 0.4 s)."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    alnum = np.fromiter((c.isalnum() for c in chars), dtype=bool, count=len(chars))
    decimal = np.fromiter((c.isdecimal() for c in chars), dtype=bool, count=len(chars))
    space = np.fromiter((c.isspace() for c in chars), dtype=bool, count=len(chars))
    letter = alnum & ~decimal
    letter[ord("_")] = False
    table = np.full(len(chars), _SYMBOL, dtype=np.uint8)
    table[[ord(c) for c in _PUNCTUATION]] = _OTHER
    table[decimal] = _OTHER
    table[letter] = _LETTER
    cyrillic = np.zeros(len(chars), dtype=bool)
    cyrillic[_CYRILLIC_BLOCKS] = True
    table[letter & cyrillic] = _CYRILLIC
    table[space] = _SPACE
    return table


@dataclass(frozen=True)
class CharStats:
    """Character counts of a text and its longest run of one non-space character."""

    visible: int
    letters: int
    cyrillic: int
    symbols: int
    longest_run: int


def char_stats(texts: Sequence[str], batch: int = 4096) -> list[CharStats]:
    """Character statistics of many texts, computed in numpy batches.

    Args:
        texts: The texts.
        batch: Texts per numpy pass (bounds memory: 4 bytes per character of a batch).

    Returns:
        One `CharStats` per text.
    """
    table = _char_classes()
    out: list[CharStats] = []
    for b0 in range(0, len(texts), batch):
        chunk = texts[b0 : b0 + batch]
        # Each text is followed by "\n": a space, so no run of characters spans two texts.
        codes = np.frombuffer(("\n".join(chunk) + "\n").encode("utf-32-le"), dtype=np.uint32)
        kinds = table[codes]
        sizes = np.fromiter((len(t) + 1 for t in chunk), dtype=np.int64, count=len(chunk))
        owner = np.repeat(np.arange(len(chunk), dtype=np.int32), sizes)
        counts = np.bincount(owner * 5 + kinds, minlength=5 * len(chunk)).reshape(-1, 5)
        # Repeated characters are sparse: positions equal to the next character (not
        # spaces), grouped into consecutive stretches; a stretch of n positions is a run of
        # n + 1 characters.
        same = np.flatnonzero((codes[1:] == codes[:-1]) & (kinds[1:] != _SPACE))
        longest = np.zeros(len(chunk), dtype=np.int64)
        if len(same):
            breaks = np.flatnonzero(np.diff(same) != 1) + 1
            group_starts = np.concatenate(([0], breaks))
            group_sizes = np.diff(np.append(group_starts, len(same)))
            np.maximum.at(longest, owner[same[group_starts]], group_sizes + 1)
        longest[(longest == 0) & (counts[:, _SPACE] < sizes)] = 1
        visible = sizes - counts[:, _SPACE]
        letters = counts[:, _CYRILLIC] + counts[:, _LETTER]
        out.extend(
            CharStats(int(v), int(le), int(c), int(sy), int(lr))
            for v, le, c, sy, lr in zip(
                visible, letters, counts[:, _CYRILLIC], counts[:, _SYMBOL], longest,
                strict=True,
            )
        )
    return out


JUDGED_FIELDS = ("instruction", "input", "output")


class Record:
    """An example under judgement with the character statistics of its fields."""

    __slots__ = ("ex", "field_stats", "stats")

    def __init__(self, ex: Example, field_stats: Sequence[CharStats]) -> None:
        self.ex = ex
        self.field_stats = dict(zip(JUDGED_FIELDS, field_stats, strict=True))
        counts = ("visible", "letters", "cyrillic", "symbols")
        self.stats = CharStats(  # of the whole record
            **{name: sum(getattr(s, name) for s in field_stats) for name in counts},
            longest_run=max(s.longest_run for s in field_stats),
        )

    @classmethod
    def batch(cls, examples: Sequence[Example]) -> list[Record]:
        """Records for many examples, their statistics computed in numpy batches."""
        stats = char_stats([getattr(ex, name) for ex in examples for name in JUDGED_FIELDS])
        k = len(JUDGED_FIELDS)
        return [cls(ex, stats[i * k : (i + 1) * k]) for i, ex in enumerate(examples)]


def record_text(ex: Example) -> str:
    """Instruction, input and output, one per line."""
    return f"{ex.instruction}\n{ex.input}\n{ex.output}"


Check = Callable[[Record], str | None]


def _empty(rec: Record) -> str | None:
    for name in ("instruction", "output"):
        if not getattr(rec.ex, name).strip():
            return f"{name} is empty"
    return None


def _length(config: CleanConfig) -> Check:
    bounds = (
        ("instruction", config.min_instruction_chars, config.max_instruction_chars),
        ("input", 0, config.max_input_chars),
        ("output", config.min_output_chars, config.max_output_chars),
    )

    def check(rec: Record) -> str | None:
        for name, low, high in bounds:
            n = len(getattr(rec.ex, name))
            if n < low:
                return f"{name} has {n} characters, below min_{name}_chars={low}"
            if n > high:
                return f"{name} has {n} characters, above max_{name}_chars={high}"
        return None

    return check


def _script(config: CleanConfig) -> Check:
    floor = config.cyrillic_min

    def check(rec: Record) -> str | None:
        stats = rec.stats
        if not stats.letters:
            return None  # nothing to judge; the garbage filter handles letterless records
        # == geomas.text.cyrillic_share(record_text(rec.ex)), from the batch statistics
        share = stats.cyrillic / stats.letters
        if share < floor:
            return (
                f"Cyrillic letters are {share:.0%} of the letters, below "
                f"min_cyrillic_share[{config.profile}]={floor:g}"
            )
        return None

    return check


def _garbage(config: CleanConfig) -> Check:
    char_run = re.compile(rf"(\S)\1{{{config.max_char_run},}}")

    def check(rec: Record) -> str | None:
        stats = rec.stats
        if stats.visible and stats.letters / stats.visible < config.min_letter_share:
            return (
                f"letters are {stats.letters / stats.visible:.0%} of the non-space "
                f"characters, below min_letter_share={config.min_letter_share:g}"
            )
        # Per field: a garbled answer is not hidden by a long clean context.
        for name, field in rec.field_stats.items():
            if field.visible and field.symbols / field.visible > config.max_symbol_share:
                return (
                    f"stray symbols are {field.symbols / field.visible:.0%} of the {name}'s "
                    f"non-space characters, above max_symbol_share={config.max_symbol_share:g}"
                )
        text = record_text(rec.ex)
        if stats.longest_run > config.max_char_run:
            m = char_run.search(text)
            char = repr(m.group(1)) if m else "one"
            return (
                f"{stats.longest_run} repeated {char} characters in a row "
                f"(max_char_run={config.max_char_run})"
            )
        run, previous = 1, ""
        for token in text.lower().split():
            run = run + 1 if token == previous else 1
            if run > config.max_word_repeat and token.isalpha():
                return (
                    f"word {token!r} occurs {run} times in a row "
                    f"(max_word_repeat={config.max_word_repeat})"
                )
            previous = token
        return None

    return check


def grounding_share(output: str, input_: str, stem_chars: int = 5) -> float | None:
    """Share of the output's distinct word stems that occur in the input.

    A stem is a word's first `stem_chars` characters (so «золота» matches «золото»), taken
    from the output's words of three or more characters and its numbers. A stem counts as
    found when it occurs in the lower-cased input; this substring test is fast, and lenient
    only towards stems that also occur inside other words.

    Args:
        output: The answer.
        input_: The context it should be grounded in.
        stem_chars: Characters of a word that are compared.

    Returns:
        The share, or None when the output has no such words.
    """
    stems = {w[:stem_chars] for w in words(output) if len(w) >= 3 or w.isdigit()}
    if not stems:
        return None
    haystack = input_.lower()
    return sum(stem in haystack for stem in stems) / len(stems)


def _grounding(config: CleanConfig) -> Check:
    def check(rec: Record) -> str | None:
        if not rec.ex.input:
            return None
        share = grounding_share(rec.ex.output, rec.ex.input, config.grounding_stem_chars)
        if share is not None and share < config.grounding_min_share:
            return (
                f"{share:.0%} of the output's words occur in the input, below "
                f"grounding_min_share={config.grounding_min_share:g}"
            )
        return None

    return check


def _profile(config: CleanConfig) -> Check:
    patterns = [(p, re.compile(p, re.IGNORECASE)) for p in config.required_patterns]

    def check(rec: Record) -> str | None:
        for source, pattern in patterns:
            if not pattern.search(rec.ex.output):
                return (
                    f"{config.profile} profile: output does not match required pattern "
                    f"{source!r} (required_output_patterns)"
                )
        return None

    return check


def build_filters(config: CleanConfig) -> list[tuple[str, Check]]:
    """The active filters in order; switched-off ones are left out (their count stays 0).

    Args:
        config: Cleaning settings with the active profile.

    Returns:
        ``(rule name, check)`` pairs.
    """
    filters: list[tuple[str, Check]] = [("empty", _empty), ("length", _length(config))]
    if config.cyrillic_min > 0:
        filters.append(("script", _script(config)))
    filters.append(("garbage", _garbage(config)))
    if config.grounding_on:
        filters.append(("grounding", _grounding(config)))
    if config.required_patterns:
        filters.append(("profile", _profile(config)))
    return filters
