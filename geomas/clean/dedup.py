"""Exact and near-duplicate detection over instruction examples; the first occurrence wins.

Near-duplicates are found with datasketch's MinHash LSH over word shingles. For speed the
shingle hashes and the MinHash signatures are computed in numpy batches with the permutations
of a datasketch `MinHash` (one 32-bit affine permutation per slot, as in its ``affine32``
scheme); each signature becomes a `LeanMinHash` that the `MinHashLSH` index stores. LSH only
proposes candidates: a record is a near-duplicate when the *exact* Jaccard similarity of its
shingle set with an earlier kept record reaches the threshold, so the estimate's noise never
removes a record, and the result is deterministic (hashes do not depend on the process).
By default the question or the answer alone must reach the threshold too (see
`near_duplicates`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH
from numpy.typing import NDArray

from geomas.clean.diversity import split_question
from geomas.progress import track
from geomas.text import words

log = logging.getLogger(__name__)

# LSH bands are chosen so that a pair exactly at the threshold becomes a candidate with at
# least this probability (candidates are then verified exactly, so extra candidates only cost
# time); datasketch's default optimiser balances misses and extras and finds only about half
# of the pairs sitting at the threshold.
LSH_RECALL_AT_THRESHOLD = 0.99
# Candidates whose MinHash estimate is more than this many standard deviations (of the
# estimate at the threshold) below the threshold are not verified exactly.
_ESTIMATE_SIGMAS = 5.0
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0x9E3779B97F4A7C15)

Fields = tuple[str, str, str]  # instruction, input, output


def exact_key(fields: Fields) -> bytes:
    """Digest of the case-folded, whitespace-collapsed fields: equal keys are exact dups."""
    text = "\x00".join(" ".join(f.casefold().split()) for f in fields)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def exact_duplicates(records: Sequence[Fields]) -> dict[int, int]:
    """Map the index of every exact duplicate to the index of its first occurrence."""
    first: dict[bytes, int] = {}
    dups: dict[int, int] = {}
    for i, fields in enumerate(records):
        key = exact_key(fields)
        j = first.setdefault(key, i)
        if j != i:
            dups[i] = j
    return dups


def lsh_bands(
    threshold: float, num_perm: int, recall: float = LSH_RECALL_AT_THRESHOLD
) -> tuple[int, int]:
    """Bands and rows per band: the widest bands that still find `recall` of pairs at threshold.

    Args:
        threshold: Jaccard similarity that must be found.
        num_perm: MinHash permutations (bands x rows <= num_perm).
        recall: Least probability that a pair with similarity `threshold` shares a band.

    Returns:
        ``(bands, rows)`` for `MinHashLSH(params=...)`.
    """
    best = (num_perm // 2, 2)
    for rows in range(2, num_perm // 2 + 1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


@dataclass
class _Shingled:
    """Token ids of every record with field boundaries, and each record's shingle hashes."""

    word_hash: NDArray[np.uint64]  # per vocabulary id
    tokens: list[NDArray[np.int64]]  # per record: instruction + input + output token ids
    # Per record: where the question (the instruction after its task description), the input
    # and the output start in `tokens` (the task description starts at 0).
    parts: list[tuple[int, int, int]]
    shingles: list[NDArray[np.uint32]]  # per record: hashes of all shingles (with repeats)


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _fold(word_hashes: NDArray[np.uint64], k: int) -> NDArray[np.uint32]:
    """32-bit hashes of every k-word window of a sequence of word hashes (k <= its length)."""
    n = len(word_hashes)
    h = word_hashes[: n - k + 1].copy()
    for j in range(1, k):
        h = (h * _FNV_PRIME) ^ word_hashes[j : n - k + 1 + j]
    h = (h ^ (h >> np.uint64(29))) * _MIX
    return (h >> np.uint64(32)).astype(np.uint32)


def _shingle_hashes(word_hashes: NDArray[np.uint64], k: int) -> NDArray[np.uint32]:
    """Shingle hashes of one token sequence; a sequence shorter than k is one shingle."""
    if len(word_hashes) == 0:
        return np.empty(0, dtype=np.uint32)
    return _fold(word_hashes, min(k, len(word_hashes)))


class _Vocab(dict[str, int]):
    """Word -> dense id, assigning the next id to an unseen word (fast through `map`)."""

    def __missing__(self, word: str) -> int:
        self[word] = len(self)
        return self[word]


def _shingle(records: Sequence[Fields], k: int) -> _Shingled:
    vocab = _Vocab()
    lookup = vocab.__getitem__
    tokens: list[NDArray[np.int64]] = []
    parts: list[tuple[int, int, int]] = []
    for instruction, input_, output in records:
        task, question = split_question(instruction)
        a, q, b, c = words(task), words(question), words(input_), words(output)
        tokens.append(np.fromiter(map(lookup, a + q + b + c), dtype=np.int64))
        parts.append((len(a), len(a) + len(q), len(a) + len(q) + len(b)))
    word_hash = np.fromiter(map(_word_hash, vocab), dtype=np.uint64, count=len(vocab))
    # Windows are hashed over all records at once; those crossing a record boundary are
    # never sliced out below.
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(tokens) else lengths
    flat = word_hash[np.concatenate(tokens)] if tokens else np.empty(0, dtype=np.uint64)
    windows = _fold(flat, k) if len(flat) >= k else np.empty(0, dtype=np.uint32)
    shingles = [
        windows[s : s + n - k + 1] if n >= k else _shingle_hashes(word_hash[t], k)
        for s, n, t in zip(starts.tolist(), lengths.tolist(), tokens, strict=True)
    ]
    return _Shingled(word_hash, tokens, parts, shingles)


def _signatures(
    shingles: Sequence[NDArray[np.uint32]], num_perm: int, seed: int
) -> NDArray[np.uint32]:
    """MinHash signatures (records x num_perm) with a datasketch MinHash's permutations.

    Records without shingles get the empty signature (all 0xFFFFFFFF) and are never indexed.
    """
    a, b = (np.asarray(p, dtype=np.uint32) for p in MinHash(num_perm, seed=seed).permutations)
    sig = np.full((len(shingles), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    for i, s in enumerate(shingles):
        if len(s):
            # uint32 wrap-around is the modulo 2**32 of the affine permutation
            sig[i] = (s[:, None] * a + b).min(axis=0)
    return sig


def _shares_a_bucket(sig: NDArray[np.uint32], bands: int, rows: int) -> NDArray[np.bool_]:
    """Which records share at least one LSH bucket (band values) with another record.

    The others can neither be nor have LSH candidates, so they skip the index altogether.
    Bands are compared through a 64-bit hash of their values: a collision only adds a
    record to the index, it never leaves one out.
    """
    n = len(sig)
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=rows, dtype=np.uint64)
    multipliers |= np.uint64(1)
    shared = np.zeros(n, dtype=bool)
    for band in range(bands):
        values = sig[:, band * rows : (band + 1) * rows].astype(np.uint64)
        keys = (values * multipliers).sum(axis=1)  # wraps modulo 2**64
        _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        shared |= counts[inverse] > 1
    return shared


def _jaccard(x: NDArray[np.uint32], y: NDArray[np.uint32]) -> float:
    """Exact Jaccard similarity of two sorted arrays of distinct values."""
    if len(x) == 0 and len(y) == 0:
        return 1.0
    inter = len(np.intersect1d(x, y, assume_unique=True))
    return inter / (len(x) + len(y) - inter)


@dataclass(frozen=True)
class NearDup:
    """A record judged a near-duplicate of an earlier kept record.

    ``question_similarity`` and ``answer_similarity`` are the part checks that ran (None: not
    needed or switched off).
    """

    index: int
    of: int
    similarity: float
    question_similarity: float | None = None
    answer_similarity: float | None = None


def near_duplicates(
    records: Sequence[Fields],
    *,
    threshold: float,
    num_perm: int,
    shingle_words: int,
    question_or_answer: bool = True,
    seed: int = 1,
) -> dict[int, NearDup]:
    """Find near-duplicates in order; each is matched against the records kept before it.

    Args:
        records: ``(instruction, input, output)`` per record, already normalised.
        threshold: Least Jaccard similarity of the records' word-shingle sets.
        num_perm: MinHash permutations.
        shingle_words: Words per shingle (texts shorter than that form one shingle).
        question_or_answer: Also require the question (the instruction without a task
            description before «Вопрос:») or the output alone to reach `threshold`. Extractive
            QA pairs about one input share almost all their shingles with that input, so
            different questions with different answers would otherwise look alike.
        seed: Seed of the MinHash permutations.

    Returns:
        ``{index: NearDup}`` for every record to drop; ``NearDup.of`` is the earliest kept
        record that qualifies.
    """
    t0 = time.perf_counter()
    sh = _shingle(records, shingle_words)
    t1 = time.perf_counter()
    sig = _signatures(sh.shingles, num_perm, seed)
    t2 = time.perf_counter()
    bands, rows = lsh_bands(threshold, num_perm)
    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    indexed = np.flatnonzero(_shares_a_bucket(sig, bands, rows)).tolist()
    margin = _ESTIMATE_SIGMAS * math.sqrt(threshold * (1.0 - threshold) / num_perm)
    sets: dict[tuple[int, str], NDArray[np.uint32]] = {}

    def shingle_set(i: int, part: str = "all") -> NDArray[np.uint32]:
        """Distinct shingles of record i: of all its text, its question or its answer."""
        if (i, part) not in sets:
            if part == "all":
                sets[i, part] = np.unique(sh.shingles[i])
            else:
                question, input_, output = sh.parts[i]
                ids = sh.tokens[i][question:input_] if part == "question" else sh.tokens[i][output:]
                sets[i, part] = np.unique(_shingle_hashes(sh.word_hash[ids], shingle_words))
        return sets[i, part]

    dups: dict[int, NearDup] = {}
    for i in track(indexed, "near-dup", unit="records"):
        if len(sh.shingles[i]) == 0:
            continue
        mh = LeanMinHash(seed=seed, hashvalues=sig[i], scheme="affine32")
        candidates = sorted(lsh.query(mh))
        if candidates:
            estimate = (sig[candidates] == sig[i]).mean(axis=1)
            for j, est in zip(candidates, estimate, strict=True):
                if est < threshold - margin:
                    continue
                similarity = _jaccard(shingle_set(i), shingle_set(j))
                if similarity < threshold:
                    continue
                dup = NearDup(i, j, similarity)
                if question_or_answer:
                    q = _jaccard(shingle_set(i, "question"), shingle_set(j, "question"))
                    dup = NearDup(i, j, similarity, question_similarity=q)
                    if q < threshold:
                        a = _jaccard(shingle_set(i, "answer"), shingle_set(j, "answer"))
                        if a < threshold:
                            continue
                        dup = NearDup(i, j, similarity, q, a)
                dups[i] = dup
                break
        if i not in dups:
            lsh.insert(i, mh, check_duplication=False)
    log.debug(
        "near-dup over %d records: shingles %.1fs, signatures %.1fs, LSH (%d bands x %d rows; "
        "%d records share a bucket) and verification %.1fs",
        len(records), t1 - t0, t2 - t1, bands, rows, len(indexed), time.perf_counter() - t2,
    )
    return dups
