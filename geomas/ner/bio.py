"""BIO tagging primitives shared by annotation conversion and inference.

Words are razdel tokens of the text (`geomas.text.token_spans`, rule ``razdel``); where a
character span boundary falls inside a token («золота43,7» with an entity on «43,7»), the
token is split at that boundary, so every span is a whole number of tokens. Tags are ``O``,
``B-TYPE`` (first token of a span) and ``I-TYPE`` (the others).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geomas.errors import InputError
from geomas.text import token_spans

OUTSIDE = "O"


@dataclass(frozen=True, slots=True)
class Span:
    """A labelled character span ``text[start:end]``."""

    start: int
    end: int
    label: str
    text: str


def bio_label_list(entity_types: Sequence[str]) -> list[str]:
    """Tag vocabulary: ``O`` first, then ``B-TYPE``, ``I-TYPE`` per type in the given order."""
    tags = [OUTSIDE]
    for label in entity_types:
        tags += [f"B-{label}", f"I-{label}"]
    return tags


def tokenize(text: str, boundaries: Iterable[int] = ()) -> list[tuple[int, int]]:
    """Token offsets of ``text``: razdel tokens, split at every boundary that falls inside one.

    Every non-space character is in a token (see `geomas.text.token_spans`).

    Args:
        text: The text to tokenise.
        boundaries: Character positions that must be token boundaries (span starts and ends).

    Returns:
        Sorted, non-overlapping ``(start, end)`` pairs.
    """
    raw = token_spans(text, "razdel")
    cuts = sorted(set(boundaries))
    if not cuts:
        return raw
    tokens: list[tuple[int, int]] = []
    for start, stop in raw:
        i = bisect.bisect_right(cuts, start)
        while i < len(cuts) and cuts[i] < stop:
            tokens.append((start, cuts[i]))
            start = cuts[i]
            i += 1
        tokens.append((start, stop))
    return tokens


def spans_to_bio(
    offsets: Sequence[tuple[int, int]], spans: Iterable[tuple[int, int, str]]
) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Tag tokens from non-overlapping character spans.

    Args:
        offsets: Sorted token offsets (as from `tokenize`).
        spans: ``(start, end, label)`` in the same coordinates; they must not overlap.

    Returns:
        The tags, and the spans that do not start and end exactly on token boundaries
        (left untagged).
    """
    tags = [OUTSIDE] * len(offsets)
    starts = [s for s, _ in offsets]
    misaligned: list[tuple[int, int, str]] = []
    for start, end, label in spans:
        first = bisect.bisect_left(starts, start)
        last = first
        while last < len(offsets) and offsets[last][1] <= end:
            last += 1
        if (first == last or first >= len(offsets) or offsets[first][0] != start
                or offsets[last - 1][1] != end):
            misaligned.append((start, end, label))
            continue
        tags[first] = f"B-{label}"
        for k in range(first + 1, last):
            tags[k] = f"I-{label}"
    return tags, misaligned


def bio_to_spans(
    text: str, offsets: Sequence[Sequence[int]], tags: Sequence[str]
) -> list[Span]:
    """Decode BIO tags into character spans of ``text``.

    ``B-X`` starts a span; ``I-X`` continues the open span of type X, and starts a new one
    when none is open or the open one has another type (tolerant of ``I-`` without ``B-``).

    Args:
        text: The text the offsets point into.
        offsets: ``(start, end)`` of each token.
        tags: One tag per token.

    Returns:
        Spans in text order.

    Raises:
        InputError: offsets and tags differ in length, or a tag is not ``O``/``B-X``/``I-X``.
    """
    if len(offsets) != len(tags):
        raise InputError(f"{len(offsets)} token offsets but {len(tags)} tags; they must pair up")
    spans: list[Span] = []
    label: str | None = None
    start = end = 0
    for (tok_start, tok_end), tag in zip(offsets, tags, strict=True):
        if tag == OUTSIDE:
            if label is not None:
                spans.append(Span(start, end, label, text[start:end]))
            label = None
            continue
        prefix, sep, tag_label = tag.partition("-")
        if not sep or prefix not in ("B", "I") or not tag_label:
            raise InputError(f"tag {tag!r} is not O, B-TYPE or I-TYPE")
        if prefix == "B" or tag_label != label:
            if label is not None:
                spans.append(Span(start, end, label, text[start:end]))
            label, start = tag_label, tok_start
        end = tok_end
    if label is not None:
        spans.append(Span(start, end, label, text[start:end]))
    return spans
