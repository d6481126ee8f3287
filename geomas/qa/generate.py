"""Template QA synthesis: entities in chunks → question-answer pairs with lineage.

For every entity of a chunk the answer is the sentence (or clause) of the chunk that holds it,
the context is a window of whole sentences around the answer of at most `max_context_length`
characters, and the question is one of the entity type's templates, chosen by a seeded hash
of the chunk and the entity so that the same input always gives the same pairs and different
entities get different phrasings. At most `num_pairs` pairs are kept per chunk, one per entity
type before a second of any type, different answers before repeated ones. Every entity that
does not become a pair is recorded in the rejects with a rule and a reason.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any, Literal

from geomas.config import NerInferenceConfig, QAConfig
from geomas.errors import InputError
from geomas.ingest.records import Chunk
from geomas.io import write_json
from geomas.ner.extract import ChunkEntities, ChunkEntity, EntitySet
from geomas.ner.labels import GEO_LABELS
from geomas.ner.shift import DocumentShift, check_shift, load_ner_profile
from geomas.qa.answer_types import best_type, debris_problem, type_problem
from geomas.qa.profiles import DocumentProfile, profile_text
from geomas.qa.questions import Question, QuestionBuilder
from geomas.qa.records import (
    QA_REJECTS_FILE,
    QA_SUMMARY_FILE,
    QAPair,
    QAResult,
    QASet,
    QASummary,
    stable_id,
    write_qa_pairs,
)
from geomas.qa.teacher import TEACHER_ENTITY_TYPE
from geomas.qa.templates import TEMPLATES, render, template_id, usable_templates
from geomas.qa.text import (
    Span,
    clause_span,
    context_window,
    covering,
    entity_problem,
    find_deposit_name,
)
from geomas.records import Reject, StageResult, write_rejects
from geomas.text import sentence_spans

log = logging.getLogger(__name__)

TEMPLATE_GENERATOR = "template"
ANSWER_FIRST_GENERATOR = "answer_first"
#: entity_type of answer-first pairs that no geological type fits, per document profile
PROFILE_LABELS = {"geology": "GEOLOGY", "legal": "LEGAL", "other": "GENERAL"}
#: every entity_type a QA pair may carry: the 17 types, the profile labels, the teacher's
PAIR_ENTITY_TYPES: tuple[str, ...] = (*GEO_LABELS, *PROFILE_LABELS.values(), TEACHER_ENTITY_TYPE)
#: lexicon lemmas an answer-first pair needs to be given one of the 17 types by its words alone
MIN_TYPE_HITS = 2
_TERMINAL = ".!?…»\")"
_WORDLIKE = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class ChunkRecord:
    """The parts of a chunk that QA synthesis reads."""

    chunk_id: str
    doc_id: str
    text: str
    headings: tuple[str, ...] = ()
    kind: str = "body"
    source: str = ""


@dataclass(frozen=True)
class _Entity:
    label: str
    text: str
    start: int | None
    end: int | None
    confidence: float

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "text": self.text, "start": self.start, "end": self.end,
                "confidence": self.confidence}


@dataclass
class _Candidate:
    entity: _Entity
    start: int
    end: int
    answer: Span
    context: Span | None


@dataclass
class _ChunkOutcome:
    pairs: list[QAPair] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def as_chunk_record(chunk: Chunk | ChunkRecord | Mapping[str, Any], index: int = 0) -> ChunkRecord:
    """A chunk from ingestion, a ChunkRecord, or any mapping with at least ``text``.

    Records without ``chunk_id`` get one from their position and text; without ``doc_id`` they
    use ``source`` or ``"unknown"``.

    Raises:
        InputError: the record has no text.
    """
    if isinstance(chunk, ChunkRecord):
        return chunk
    if isinstance(chunk, Chunk):
        return ChunkRecord(chunk.chunk_id, chunk.doc_id, chunk.text, tuple(chunk.headings),
                           chunk.kind, chunk.source)
    text = chunk.get("text")
    if not isinstance(text, str):
        raise InputError(f"chunk #{index} has no 'text' string; chunks need at least a text")
    chunk_id = chunk.get("chunk_id") or f"chunk-{index}-{stable_id(text)[:12]}"
    doc_id = chunk.get("doc_id") or chunk.get("source") or "unknown"
    headings = tuple(str(h) for h in chunk.get("headings") or ())
    return ChunkRecord(str(chunk_id), str(doc_id), text, headings, str(chunk.get("kind", "body")),
                       str(chunk.get("source") or ""))


def _as_entity(obj: Any) -> _Entity:
    get = obj.get if isinstance(obj, Mapping) else lambda k, d=None: getattr(obj, k, d)
    label = get("label") or get("entity_type")
    text = get("text")
    if not isinstance(label, str) or not isinstance(text, str):
        raise InputError(f"entity {obj!r} needs a 'label' and a 'text'")
    conf = get("confidence")
    start, end = get("start"), get("end")
    return _Entity(
        label, text,
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        float(conf) if conf is not None else 1.0,
    )


class QAGenerator:
    """Template question-answer pairs from entities (the original tool's ``QAGenerator``).

    ``QAGenerator(add_context=True, max_context_length=300)`` works as in the original tool;
    arguments left as None take their value from `config` (default: `QAConfig()`), which is
    where the defaults are defined.
    """

    def __init__(
        self,
        add_context: bool | None = None,
        max_context_length: int | None = None,
        num_pairs: int | None = None,
        seed: int | None = None,
        min_entity_confidence: float | None = None,
        answer_mode: Literal["sentence", "clause"] | None = None,
        templates: Mapping[str, Sequence[str]] | None = None,
        *,
        config: QAConfig | None = None,
    ) -> None:
        """Build the generator; explicit arguments override the fields of `config`."""
        overrides: dict[str, Any] = {
            "add_context": add_context,
            "max_context_length": max_context_length,
            "num_pairs": num_pairs,
            "seed": seed,
            "min_entity_confidence": min_entity_confidence,
            "answer_mode": answer_mode,
            "templates": {k: tuple(v) for k, v in templates.items()} if templates else None,
        }
        base = (config or QAConfig()).model_dump()
        base.update({k: v for k, v in overrides.items() if v is not None})
        self.config = QAConfig.model_validate(base)
        self.templates: dict[str, tuple[str, ...]] = {**TEMPLATES, **self.config.templates}
        self._builders: dict[tuple[str, ...], QuestionBuilder] = {}

    # -- public API ---------------------------------------------------------------------------

    def generate(
        self,
        chunks: Sequence[Chunk | ChunkRecord | Mapping[str, Any]],
        entity_set: EntitySet | Iterable[ChunkEntities],
        *,
        progress: bool = False,
    ) -> QAResult:
        """Pairs for every chunk from its entities (matched by ``chunk_id``).

        The deposit name for ``{deposit}`` templates is looked up once per document over all of
        its chunks. Entities of a chunk_id that is not among `chunks` are rejected
        (``unknown_chunk``).
        """
        from geomas.progress import track

        records = [as_chunk_record(c, k) for k, c in enumerate(chunks)]
        items = entity_set.items if isinstance(entity_set, EntitySet) else list(entity_set)
        by_chunk: dict[str, list[ChunkEntity]] = defaultdict(list)
        for item in items:
            by_chunk[item.chunk_id].extend(item.entities)
        known = {r.chunk_id for r in records}
        result = QAResult(n_chunks=len(records))
        for item in items:
            if item.chunk_id not in known:
                for ent in item.entities:
                    result.rejects.append(Reject(
                        stage="qa", rule="unknown_chunk", chunk_id=item.chunk_id,
                        doc_id=item.doc_id,
                        reason=f"no chunk with chunk_id {item.chunk_id!r} among the chunks",
                        entity=_as_entity(ent).as_dict(),
                    ))
                    result.n_entities += 1
        deposits = self._deposits(records)
        profiles = self._profiles(records)
        result.profiles = {doc: prof.model_dump() for doc, prof in profiles.items()}
        shifts = self._shifts(records, by_chunk, entity_set)
        result.ner_shift = {doc: sh.model_dump() for doc, sh in shifts.items()}
        for rec in track(records, "qa", unit="chunks", bar=progress):
            ents = [_as_entity(e) for e in by_chunk.get(rec.chunk_id, [])]
            result.n_entities += len(ents)
            profile = profiles[rec.doc_id].profile
            out = _ChunkOutcome()
            shift = shifts.get(rec.doc_id)
            # entities of a shifted document do not name the type of its answer-first pairs
            trusted = [] if shift is not None and shift.shifted else by_chunk.get(rec.chunk_id, [])
            self._answer_first(rec, profile, trusted, out)
            if profile not in self.config.template_profiles:
                out.rejects.extend(self._off_profile(rec, ents, profiles[rec.doc_id]))
            elif shift is not None and shift.action == "ner_templates_skipped":
                reason = (f"NER domain shift: the document has {shift.density} entities per "
                          f"1,000 characters, {shift.ratio}× the model's reference "
                          f"{shift.reference} (qa.ner_shift)")
                out.rejects.extend(self._reject(rec, e, "ner_domain_shift", reason) for e in ents)
            else:
                self._chunk_pairs(rec, ents, deposits.get(rec.doc_id), out)
            result.pairs.extend(out.pairs)
            result.rejects.extend(out.rejects)
        log.info("QA: %d pairs from %d entities in %d chunks; %d rejected %s",
                 len(result.pairs), result.n_entities, len(records), len(result.rejects),
                 result.rejects_by_rule)
        return result

    def generate_from_text(
        self,
        text: str,
        entities: Iterable[Any],
        *,
        chunk_id: str | None = None,
        doc_id: str | None = None,
        deposit: str | None = None,
    ) -> QAResult:
        """Pairs for one text and its entities.

        Entities are objects or dicts with label, text, start, end and confidence; without
        offsets the occurrence of the text nearest to the start of the text is used. One text
        is not profiled (too little to tell a domain): the caller chose it; `generate` profiles
        whole documents and asks templates only of `qa.template_profiles` ones.
        """
        rec = ChunkRecord(
            chunk_id or f"text-{stable_id(text)}", doc_id or "text", text,
        )
        ents = [_as_entity(e) for e in entities]
        if deposit is None:
            deposit = find_deposit_name([text])
        out = self._chunk_pairs(rec, ents, deposit)
        return QAResult(pairs=out.pairs, rejects=out.rejects, n_chunks=1, n_entities=len(ents))

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _texts_by_doc(records: Sequence[ChunkRecord]) -> dict[str, list[str]]:
        """Each document's headings and chunk texts, in order."""
        texts: dict[str, list[str]] = defaultdict(list)
        for r in records:
            texts[r.doc_id].extend(r.headings)
            texts[r.doc_id].append(r.text)
        return texts

    def _deposits(self, records: Sequence[ChunkRecord]) -> dict[str, str | None]:
        return {doc: find_deposit_name(t) for doc, t in self._texts_by_doc(records).items()}

    def _profiles(self, records: Sequence[ChunkRecord]) -> dict[str, DocumentProfile]:
        out = {doc: profile_text(t, self.config.profiles)
               for doc, t in self._texts_by_doc(records).items()}
        for doc, prof in out.items():
            log.info("document %s: profile %s (score %.1f per 1,000 words; %s)", doc[:12],
                     prof.profile, prof.score, ", ".join(prof.evidence) or "no keywords")
        return out

    def _off_profile(self, rec: ChunkRecord, ents: list[_Entity],
                     prof: DocumentProfile) -> list[Reject]:
        reason = (f"document profile {prof.profile} (scores {prof.scores}); template questions "
                  f"are asked of {list(self.config.template_profiles)} documents only "
                  "(qa.template_profiles)")
        return [self._reject(rec, ent, "off_profile", reason) for ent in ents]

    def _shifts(self, records: Sequence[ChunkRecord], by_chunk: Mapping[str, list[Any]],
                entity_set: EntitySet | Iterable[ChunkEntities]) -> dict[str, DocumentShift]:
        """Each document's NER entity density against the model's own (`qa.ner_shift`)."""
        model_path = entity_set.model_path if isinstance(entity_set, EntitySet) else None
        if model_path is None or self.config.ner_shift.policy == "off":
            return {}
        chars: Counter[str] = Counter()
        ents: Counter[str] = Counter()
        names: dict[str, str] = {}
        for r in records:
            if r.kind != "body":
                continue
            chars[r.doc_id] += len(r.text)
            ents[r.doc_id] += len(by_chunk.get(r.chunk_id, []))
            names.setdefault(r.doc_id, r.source or r.doc_id)
        floor = entity_set.min_confidence if isinstance(entity_set, EntitySet) else 0.0
        return check_shift(dict(chars), ents, load_ner_profile(model_path),
                           self.config.ner_shift, names, min_confidence=floor)

    def _answer_first(self, rec: ChunkRecord, profile: str, entities: Sequence[Any],
                      out: _ChunkOutcome) -> None:
        """Questions built from the chunk's own sentences (`qa.question_kinds[profile]`)."""
        kinds = self.config.question_kinds.get(profile, ())
        if not kinds or rec.kind != "body":
            return
        builder = self._builders.get(kinds)
        if builder is None:
            builder = self._builders[kinds] = QuestionBuilder(kinds)
        cfg = self.config
        text = rec.text
        sentences = sentence_spans(text, pdf=True)
        whole = self._whole_sentences(text, sentences)
        # one question of each kind before a second of any kind, in text order
        found = builder.questions(text)
        nth: Counter[str] = Counter()
        keyed = []
        for pos, q in enumerate(found):
            keyed.append((nth[q.kind], pos, q))
            nth[q.kind] += 1
        order = [q for _, _, q in sorted(keyed, key=lambda k: (k[0], k[1]))]
        asked = {p.question for p in out.pairs}
        for q in order:
            s0, s1 = q.sentence
            answer = text[s0:s1].strip()
            s1 = s0 + len(answer)
            focus = _Entity(q.kind, text[q.focus[0]:q.focus[1]], q.focus[0], q.focus[1], 1.0)
            if len(out.pairs) >= cfg.num_pairs:
                rule, reason = "over_num_pairs", (
                    f"the chunk already has num_pairs={cfg.num_pairs} pairs")
            elif q.question in asked:
                rule, reason = "duplicate_question", "the question was already asked here"
            elif s1 - s0 > cfg.max_context_length:
                rule, reason = "answer_too_long", (
                    f"the answer sentence has {s1 - s0} characters, more than "
                    f"max_context_length={cfg.max_context_length}")
            elif problem := debris_problem(answer):
                rule, reason = "answer_debris", problem
            else:
                context = (context_window(text, sentences, (s0, s1), cfg.max_context_length,
                                          whole) if cfg.add_context else None)
                label = self._answer_first_label(profile, answer, entities, q)
                tid = f"{ANSWER_FIRST_GENERATOR}.{q.kind}"
                out.pairs.append(QAPair(
                    question=q.question, answer=answer, entity_type=label, source_text=text,
                    context=text[context[0]:context[1]] if context is not None else "",
                    qa_id=stable_id(rec.chunk_id, s0, s1, tid),
                    chunk_id=rec.chunk_id, doc_id=rec.doc_id, entity_text=focus.text,
                    entity_start=q.focus[0], entity_end=q.focus[1], template_id=tid,
                    generator=ANSWER_FIRST_GENERATOR,
                ))
                asked.add(q.question)
                continue
            # no `entity`: entity rejects account for the NER's entities one to one
            out.rejects.append(Reject(stage="qa", rule=rule, reason=reason,
                                      chunk_id=rec.chunk_id, doc_id=rec.doc_id,
                                      question=q.question,
                                      template_id=f"{ANSWER_FIRST_GENERATOR}.{q.kind}"))

    def _answer_first_label(self, profile: str, answer: str, entities: Sequence[Any],
                            q: Question) -> str:
        """The entity type of an answer-first pair: by the answer's lexicon in geology."""
        if profile not in self.config.template_profiles:
            return PROFILE_LABELS.get(profile, profile.upper())
        inside = [e for e in map(_as_entity, entities)
                  if e.start is not None and e.end is not None
                  and q.focus[0] <= e.start < q.focus[1]]
        text = f"{q.subject} {answer}"
        rules = self.config.answer_types
        # the type whose lexicon the sentence meets at least twice ("запасы ... млн т"), else
        # the NER's type of an entity in the answer when the answer fits it, else the profile's
        by_words = best_type(text, rules, "", min_hits=MIN_TYPE_HITS)
        if by_words:
            return by_words
        for e in sorted(inside, key=lambda e: -e.confidence):
            if e.label in rules and type_problem(text, e.label, rules) is None:
                return e.label
        return PROFILE_LABELS.get(profile, profile.upper())

    def _reject(self, rec: ChunkRecord, ent: _Entity, rule: str, reason: str) -> Reject:
        return Reject(stage="qa", rule=rule, reason=reason, chunk_id=rec.chunk_id,
                      doc_id=rec.doc_id, entity=ent.as_dict())

    def _chunk_pairs(
        self, rec: ChunkRecord, entities: list[_Entity], deposit: str | None,
        out: _ChunkOutcome | None = None,
    ) -> _ChunkOutcome:
        out = out if out is not None else _ChunkOutcome()
        if not entities:
            return out
        cfg = self.config
        text = rec.text
        sentences = sentence_spans(text, pdf=True)
        whole = self._whole_sentences(text, sentences)
        cands: list[_Candidate] = []
        seen_spans: set[tuple[str, int, int]] = set()
        for ent in entities:
            span = _locate(text, ent)
            if span is None:
                rule, reason = "entity_not_in_text", (
                    f"entity text {ent.text!r} is not at [{ent.start}, {ent.end}) of the chunk "
                    "nor anywhere else in it")
            elif not _WORDLIKE.search(text, *span):
                rule, reason = "no_word", f"entity text {ent.text!r} has no letter or digit"
            elif problem := entity_problem(text[span[0]:span[1]], cfg.min_entity_chars):
                rule, reason = problem
            elif ent.label not in self.templates:
                rule, reason = "unknown_entity_type", (
                    f"no question templates for entity type {ent.label!r}; add them under "
                    "qa.templates")
            elif ent.confidence < cfg.min_entity_confidence:
                rule, reason = "low_confidence", (
                    f"confidence {ent.confidence:.3f} is below min_entity_confidence "
                    f"{cfg.min_entity_confidence}")
            elif (ent.label, *span) in seen_spans:
                rule, reason = "duplicate_entity", "the same span and type was given twice"
            else:
                start, end = span
                seen_spans.add((ent.label, start, end))
                answer, fragment = self._answer(text, sentences, whole, start, end)
                if fragment:
                    rule, reason = "sentence_fragment", (
                        "the sentence holding the entity is cut by the chunk boundary: "
                        f"{text[answer[0]:answer[1]][:80]!r}")
                elif answer[1] - answer[0] > cfg.max_context_length:
                    rule, reason = "answer_too_long", (
                        f"the answer ({cfg.answer_mode}) has {answer[1] - answer[0]} characters, "
                        f"more than max_context_length={cfg.max_context_length}")
                elif debris := debris_problem(text[answer[0]:answer[1]]):
                    rule, reason = "answer_debris", debris
                elif mismatch := type_problem(text[answer[0]:answer[1]], ent.label,
                                              cfg.answer_types):
                    rule, reason = "answer_type_mismatch", mismatch
                else:
                    context = (
                        context_window(text, sentences, answer, cfg.max_context_length, whole)
                        if cfg.add_context else None
                    )
                    cands.append(_Candidate(ent, start, end, answer, context))
                    continue
            out.rejects.append(self._reject(rec, ent, rule, reason))
        self._select(rec, cands, deposit, out)
        out.pairs.sort(key=lambda p: (p.generator != ANSWER_FIRST_GENERATOR,
                                      p.entity_start or 0, p.entity_end or 0, p.entity_type))
        return out

    @staticmethod
    def _whole_sentences(text: str, sentences: list[Span]) -> tuple[int, int]:
        """Indices of the first and last sentence not cut by the chunk edges.

        A chunk that starts inside a sentence starts with a lower-case letter; one that ends
        inside a sentence ends without closing punctuation. A one-sentence text is taken whole.
        """
        lo, hi = 0, len(sentences) - 1
        if len(sentences) > 1:
            if text[sentences[0][0]].islower():
                lo = 1
            if text[sentences[-1][1] - 1] not in _TERMINAL:
                hi -= 1
        return lo, hi

    def _answer(
        self, text: str, sentences: list[Span], whole: tuple[int, int], start: int, end: int
    ) -> tuple[Span, bool]:
        """The answer span for an entity and whether it is a fragment cut by the chunk edge."""
        cover = covering(sentences, start, end)
        if cover is None:
            return (start, end), False
        first, last = cover
        s_start = min(sentences[first][0], start)
        s_end = max(sentences[last][1], end)
        lo, hi = whole
        if self.config.answer_mode == "clause" and first == last:
            clause = clause_span(text, (s_start, s_end), start, end)
            # a clause is cut only if it reaches the cut edge of a cut sentence
            cut = (first < lo and clause[0] <= s_start) or (last > hi and clause[1] >= s_end - 1)
            return clause, cut
        return (s_start, s_end), first < lo or last > hi

    def _select(
        self, rec: ChunkRecord, cands: list[_Candidate], deposit: str | None, out: _ChunkOutcome
    ) -> None:
        """Keep at most num_pairs candidates: diverse types first, then unseen answers."""
        if not cands:
            return
        rng = random.Random(f"geomas-qa:{self.config.seed}:{rec.chunk_id}")
        by_type: dict[str, list[_Candidate]] = defaultdict(list)
        for c in cands:
            by_type[c.entity.label].append(c)
        types = sorted(by_type)
        rng.shuffle(types)
        for label in types:
            by_type[label].sort(key=lambda c: (-c.entity.confidence, c.start, c.end))
        # round robin over the types: each type's best, then each type's second...
        rounds = zip_longest(*(by_type[label] for label in types))
        order = [c for round_ in rounds for c in round_ if c is not None]

        used_questions: set[str] = {p.question for p in out.pairs}
        used_answers: set[str] = {p.answer for p in out.pairs}
        pending = order
        for first_pass in (True, False):
            rest: list[_Candidate] = []
            for c in pending:
                if len(out.pairs) >= self.config.num_pairs:
                    rest.append(c)
                    continue
                answer_text = rec.text[c.answer[0]:c.answer[1]]
                if first_pass and answer_text in used_answers:
                    rest.append(c)
                    continue
                picked = self._question(rec, c, deposit, used_questions)
                if picked is None:
                    out.rejects.append(self._reject(
                        rec, c.entity, "duplicate_question",
                        "every usable template gives a question already asked for this chunk",
                    ))
                    continue
                question, tid = picked
                used_questions.add(question)
                used_answers.add(answer_text)
                out.pairs.append(self._pair(rec, c, question, tid))
            pending = rest
        for c in pending:
            out.rejects.append(self._reject(
                rec, c.entity, "over_num_pairs",
                f"the chunk already has num_pairs={self.config.num_pairs} pairs",
            ))

    def _question(
        self, rec: ChunkRecord, c: _Candidate, deposit: str | None, used: set[str]
    ) -> tuple[str, str] | None:
        variants = self.templates[c.entity.label]
        usable = usable_templates(variants, c.entity.text, deposit,
                                  rec.text[c.answer[0]:c.answer[1]])
        if not usable:
            return None
        key = f"{self.config.seed}|{rec.chunk_id}|{c.start}|{c.end}|{c.entity.label}"
        offset = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % len(usable)
        for k in usable[offset:] + usable[:offset]:
            question = render(variants[k], rec.text[c.start:c.end], deposit)
            if question not in used:
                return question, template_id(c.entity.label, k)
        return None

    def _pair(self, rec: ChunkRecord, c: _Candidate, question: str, tid: str) -> QAPair:
        text = rec.text
        context = text[c.context[0]:c.context[1]] if c.context is not None else ""
        return QAPair(
            question=question,
            answer=text[c.answer[0]:c.answer[1]],
            entity_type=c.entity.label,
            source_text=text,
            context=context,
            qa_id=stable_id(rec.chunk_id, c.start, c.end, c.entity.label, tid),
            chunk_id=rec.chunk_id,
            doc_id=rec.doc_id,
            entity_text=text[c.start:c.end],
            entity_start=c.start,
            entity_end=c.end,
            template_id=tid,
            generator=TEMPLATE_GENERATOR,
        )


def _locate(text: str, ent: _Entity) -> Span | None:
    """The entity's span in `text`, trimmed of whitespace; searched for when offsets are off."""
    needle = ent.text.strip()
    if not needle:
        return None
    if ent.start is not None and ent.end is not None and 0 <= ent.start < ent.end <= len(text):
        s, e = ent.start, ent.end
        if text[s:e] == ent.text:
            lead = len(ent.text) - len(ent.text.lstrip())
            return s + lead, s + lead + len(needle)
    hits = [m.start() for m in re.finditer(f"(?={re.escape(needle)})", text)]
    if not hits:
        return None
    ref = ent.start or 0
    best = min(hits, key=lambda h: (abs(h - ref), h))
    return best, best + len(needle)


def read_chunk_records(path: Path) -> list[ChunkRecord]:
    """Read chunks.json (geomas ingestion records, or any list of objects with a text)."""
    from geomas.ingest.run import load_chunks

    return [as_chunk_record(c, k) for k, c in enumerate(load_chunks(Path(path)))]


def generate_qa_pairs(
    chunks_path: Path,
    ner_model_path: Path,
    out_path: Path,
    num_pairs: int | None = None,
    config: QAConfig | None = None,
    *,
    ner_config: NerInferenceConfig | None = None,
    progress: bool = True,
) -> StageResult[QASet, QASummary]:
    """`geomas generate-qa-pairs CHUNKS NER_MODEL OUT --num-pairs N`.

    Reads chunks.json, runs the NER model over the chunks (batched), makes template pairs,
    optionally passes them through the LLM teacher (``config.teacher``), and writes `out_path`
    (qa_pairs.json), qa_rejects.jsonl and qa_summary.json next to it. NER runs with no
    confidence floor of ``ner_config.min_confidence`` (the pipeline's extract_entities step
    runs the same function with the same config); ``config.min_entity_confidence`` filters
    after that, with rejects.

    Args:
        chunks_path: chunks.json from ``geomas makedataset``.
        ner_model_path: Trained NER model folder (``geomas train-bert-ner``).
        out_path: Where qa_pairs.json goes.
        num_pairs: Most pairs per chunk; overrides ``config.num_pairs`` when given.
        config: QA settings (default `QAConfig()`).
        ner_config: Window, stride and batch size of the NER model (default
            `NerInferenceConfig()`; its model_path is replaced by `ner_model_path`).
        progress: Allow progress bars on a terminal (progress lines are logged otherwise).

    Returns:
        The pairs, the rejected entities, and the summary (counts per type and per reject
        rule, paths and timings).

    Raises:
        InputError: the chunks file or the model is missing or unreadable, or has no chunks.
        TeacherError: teacher API errors exceed ``teacher.max_error_ratio`` (after writing).
    """
    from geomas.ner.extract import extract_chunk_entities

    t0 = time.perf_counter()
    cfg = config or QAConfig()
    if num_pairs is not None:
        cfg = QAConfig.model_validate({**cfg.model_dump(), "num_pairs": num_pairs})
    ner_cfg = (ner_config or NerInferenceConfig()).model_copy(
        update={"model_path": Path(ner_model_path)})
    out_path = Path(out_path)
    chunks = read_chunk_records(Path(chunks_path))
    if not chunks:
        raise InputError(f"chunks file {chunks_path} holds no chunks; nothing to generate from")
    entity_set = extract_chunk_entities(chunks, ner_cfg, progress=progress)  # type: ignore[arg-type]
    t_ner = time.perf_counter()
    return synthesize_qa(
        chunks, entity_set, cfg, out_path, ner_seconds=t_ner - t0, progress=progress
    )


def synthesize_qa(
    chunks: Sequence[ChunkRecord | Chunk | Mapping[str, Any]],
    entity_set: EntitySet,
    cfg: QAConfig,
    out_path: Path,
    *,
    ner_seconds: float = 0.0,
    progress: bool = False,
) -> StageResult[QASet, QASummary]:
    """Make QA pairs (qa.mode); run the teacher and the judge (`run_llm_tasks`); write them.

    Writes `out_path` (qa_pairs.json), qa_rejects.jsonl and qa_summary.json next to it. Used
    by `generate_qa_pairs` (after its own NER pass) and by the pipeline's generate_qa step
    (with the entities of the extract_entities step).

    Raises:
        TeacherError: teacher or judge API errors exceed ``teacher.max_error_ratio`` (after
            writing).
    """
    out_path = Path(out_path)
    t_ner = time.perf_counter()
    t0 = t_ner - ner_seconds
    ner_model_path = entity_set.model_path
    chunks = [as_chunk_record(c, i) for i, c in enumerate(chunks)]
    from geomas.qa.llm_stage import run_llm_tasks, uses_llm

    # qa.mode teacher: the LLM writes every pair, the local generators make none
    result = (QAGenerator(config=cfg).generate(chunks, entity_set, progress=progress)
              if cfg.mode != "teacher" else
              QAResult(n_chunks=len(chunks),
                       n_entities=sum(len(i.entities) for i in entity_set.items)))
    t_gen = time.perf_counter()

    pairs, rejects = result.pairs, list(result.rejects)
    llm = (run_llm_tasks([as_chunk_record(c) for c in chunks], pairs, cfg, out_path.parent,
                         progress=progress) if uses_llm(cfg) else None)
    if llm is not None:
        pairs = llm.pairs
        rejects.extend(llm.rejects)
    teacher_failed = "; ".join(llm.failures) if llm is not None else None

    rejects_path = out_path.parent / QA_REJECTS_FILE
    write_qa_pairs(pairs, out_path)
    write_rejects(rejects_path, rejects)
    summary = QASummary(
        chunks=len(chunks),
        chunks_with_pairs=len({p.chunk_id for p in pairs}),
        entities=result.n_entities,
        pairs=len(pairs),
        pairs_by_type=dict(sorted(Counter(p.entity_type for p in pairs).items())),
        pairs_by_generator=dict(Counter(p.generator or "unknown" for p in pairs)),
        rejected=len(rejects),
        rejects_by_rule=dict(sorted(Counter(r.rule for r in rejects).items())),
        num_pairs=cfg.num_pairs,
        answer_mode=cfg.answer_mode,
        ner_model_path=str(ner_model_path) if ner_model_path else None,
        profiles=result.profiles,
        ner_shift=result.ner_shift,
        teacher=llm.teacher if llm is not None else None,
        judge=llm.judge if llm is not None else None,
        out_path=str(out_path),
        rejects_path=str(rejects_path),
        seconds={
            "ner": round(t_ner - t0, 3),
            "generate": round(t_gen - t_ner, 3),
            "teacher": llm.seconds["teacher"] if llm is not None else 0.0,
            "judge": llm.seconds["judge"] if llm is not None else 0.0,
            "total": round(time.perf_counter() - t0, 3),
        },
    )
    write_json(out_path.parent / QA_SUMMARY_FILE, summary, indent=1, end="")
    log.info("wrote %d QA pairs to %s (%d rejects in %s)", len(pairs), out_path, len(rejects),
             rejects_path)
    if teacher_failed:
        from geomas.qa.teacher import TeacherError

        raise TeacherError(f"{teacher_failed}; outputs were written, see {rejects_path}")
    return StageResult(kept=QASet(pairs=pairs), rejects=rejects, report=summary)
