"""The LLM teacher, through an OpenAI-compatible chat endpoint: it writes or improves QA pairs.

Writing pairs (``qa.mode`` teacher or hybrid, `generate_teacher_pairs`): for each chunk of
``teacher.chunk_kinds`` with at least ``teacher.min_chunk_chars`` characters the model is asked
for ``qa.num_pairs`` question-answer pairs in Russian grounded in the chunk, as a JSON list.
Each usable pair gets generator ``teacher:<model>``, entity_type `TEACHER_ENTITY_TYPE`, the
chunk's lineage, and a context window of whole sentences around the sentence that holds (or
best matches) the answer, as template pairs do. Answers whose words are not in the chunk are
rejected (``teacher_ungrounded``), unusable items ``teacher_invalid``.

Improving the local pairs (``teacher.enabled``; modes ``TeacherConfig.mode``):

- ``rewrite``: the model rephrases the template question in natural Russian; the extractive
  answer and the context stay as they are;
- ``answer``: the model answers the question from the context; an answer whose words are not
  found in the context (share below ``min_grounding``) is rejected as ``teacher_ungrounded``.

One bad response never stops a run: an API error is recorded as ``teacher_error``, an empty or
unusable response as ``teacher_invalid``; with ``keep_template_on_failure`` the template pair is
kept in those cases. Only when API errors exceed ``max_error_ratio`` of the requests does the
run fail, after its outputs are written. The API key is read from the environment variable
named by ``api_key_env``, is sent only in the request header, and is masked in every message
geomas writes or logs. Requests go through `geomas.qa.llm.ChatClient` (response cache, usage
counts).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from geomas.config import QAConfig, TeacherConfig
from geomas.errors import ConfigError, GeomasError
from geomas.qa.llm import (
    MASK,
    ChatClient,
    Endpoint,
    LLMTaskResult,
    ResponseCache,
    count_outcomes,
    map_concurrently,
    parse_json,
)
from geomas.qa.llm import api_key as _env_key
from geomas.qa.records import QAPair, stable_id
from geomas.qa.text import Span, context_window
from geomas.records import Reject
from geomas.text import sentence_spans, words

if TYPE_CHECKING:
    from openai import OpenAI

log = logging.getLogger(__name__)

__all__ = ["MASK", "TEACHER_ENTITY_TYPE", "TeacherError", "TeacherResult", "apply_teacher",
           "generate_teacher_pairs", "teacher_client"]

MAX_QUESTION_CHARS = 400
#: entity_type of the pairs the teacher writes (no entity: the task description is the default).
TEACHER_ENTITY_TYPE = "TEACHER"

REWRITE_SYSTEM = (
    "Ты — редактор русскоязычных геологических текстов. Переформулируй шаблонный вопрос "
    "к фрагменту геологического отчёта так, чтобы он звучал естественно и грамотно по-русски. "
    "Сохрани смысл вопроса: на него по-прежнему должен отвечать приведённый ответ. "
    "Верни только один вопрос, без пояснений и кавычек."
)
REWRITE_USER = (
    "Фрагмент отчёта:\n{context}\n\nШаблонный вопрос: {question}\nОтвет: {answer}\n\n"
    "Переформулированный вопрос:"
)
ANSWER_SYSTEM = (
    "Ты — геолог-эксперт. Отвечай на вопрос по-русски, кратко и только на основании "
    "приведённого фрагмента геологического отчёта. Не добавляй сведений, которых нет во "
    "фрагменте; числа и названия приводи так, как они записаны во фрагменте."
)
ANSWER_USER = "Фрагмент отчёта:\n{context}\n\nВопрос: {question}\n\nОтвет:"
GENERATE_SYSTEM = (
    "Ты — составитель обучающих данных для русскоязычной языковой модели. По фрагменту "
    "документа составь пары «вопрос — ответ» на русском языке. Каждый вопрос должен быть "
    "понятен без фрагмента и спрашивать о факте, который во фрагменте прямо указан; ответ — "
    "кратко и только по фрагменту, числа и названия — так, как они записаны во фрагменте. "
    'Верни только JSON-массив объектов {"question": "...", "answer": "..."}, без пояснений.'
)
GENERATE_USER = "Фрагмент документа:\n{text}\n\nКоличество пар: {n}.\n\nJSON:"

_LABEL = re.compile(r"^\s*(?:вопрос|ответ|question|answer)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "«»\"'“”„ "
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


class ChunkLike(Protocol):
    """What the teacher reads of a chunk (`geomas.qa.generate.ChunkRecord`, ingest's Chunk)."""

    @property
    def chunk_id(self) -> str:
        """The chunk's id."""

    @property
    def doc_id(self) -> str:
        """The document's id."""

    @property
    def text(self) -> str:
        """The chunk text."""

    @property
    def kind(self) -> str:
        """body, table, toc or front_matter."""


class TeacherError(GeomasError):
    """The teacher or the judge failed for too many items (see ``teacher.max_error_ratio``)."""


#: The outcome of one teacher task (kept name: the rewrite/answer result of earlier versions).
TeacherResult = LLMTaskResult


def api_key(config: TeacherConfig) -> str:
    """The API key from the environment variable named by ``config.api_key_env``.

    Raises:
        ConfigError: the variable is not set (the message names the variable, never a value).
    """
    return _env_key(config.api_key_env)


def make_openai_client(config: TeacherConfig) -> OpenAI:
    """An ``openai.OpenAI`` client for the configured endpoint (caller closes it)."""
    from openai import OpenAI

    return OpenAI(base_url=config.base_url, api_key=api_key(config), timeout=config.timeout_s,
                  max_retries=config.max_retries)


def teacher_endpoint(config: TeacherConfig) -> Endpoint:
    """The teacher's endpoint settings.

    Raises:
        ConfigError: no endpoint or model configured.
    """
    if not config.base_url or not config.model:
        raise ConfigError("the teacher needs teacher.base_url and teacher.model")
    return Endpoint(base_url=config.base_url, model=config.model,
                    api_key_env=config.api_key_env, timeout_s=config.timeout_s,
                    max_retries=config.max_retries, temperature=config.temperature,
                    max_tokens=config.max_tokens, workers=config.workers)


def response_cache(config: TeacherConfig, out_dir: Path) -> ResponseCache | None:
    """The response cache of ``config`` (None when ``teacher.cache`` is off)."""
    from geomas.qa.llm import CACHE_DIR_NAME

    if not config.cache:
        return None
    return ResponseCache(config.cache_dir or Path(out_dir) / CACHE_DIR_NAME)


def teacher_client(
    config: TeacherConfig, *, cache: ResponseCache | None = None, client: OpenAI | None = None
) -> ChatClient:
    """A `ChatClient` for the teacher (close it, or use it in a ``with`` block).

    Raises:
        ConfigError: no endpoint or model configured, or the API key variable is not set.
    """
    return ChatClient(teacher_endpoint(config), cache=cache, client=client)


def build_messages(pair: QAPair, mode: str) -> list[dict[str, str]]:
    """Chat messages (Russian prompts) for one pair."""
    context = pair.context or pair.source_text
    if mode == "rewrite":
        user = REWRITE_USER.format(context=context, question=pair.question, answer=pair.answer)
        return [{"role": "system", "content": REWRITE_SYSTEM}, {"role": "user", "content": user}]
    user = ANSWER_USER.format(context=context, question=pair.question)
    return [{"role": "system", "content": ANSWER_SYSTEM}, {"role": "user", "content": user}]


def grounding(answer: str, context: str) -> float:
    """Share of the answer's word tokens (lower-cased Unicode words) that occur in the context."""
    answer_words = words(answer)
    if not answer_words:
        return 0.0
    vocab = set(words(context))
    return sum(w in vocab for w in answer_words) / len(answer_words)


def clean_question(content: str) -> str:
    """The first non-empty line of a response, without a «Вопрос:» label and quotes."""
    return next((q for line in content.strip().splitlines() if (q := clean_answer(line))), "")


def clean_answer(content: str) -> str:
    """A response without a leading «Ответ:» label and surrounding quotes."""
    return _LABEL.sub("", content.strip()).strip().strip(_QUOTES).strip()


@dataclass
class _Outcome:
    pair: QAPair | None
    reject: Reject | None
    status: str


def apply_teacher(
    pairs: Sequence[QAPair],
    config: TeacherConfig,
    *,
    client: OpenAI | None = None,
    progress: bool = False,
    chat: ChatClient | None = None,
) -> TeacherResult:
    """Send every pair to the teacher and return the resulting pairs and rejects.

    Args:
        pairs: Template pairs.
        config: Teacher settings; ``enabled`` is not checked here (the caller decides).
        client: An OpenAI client to use; by default one is made and closed afterwards.
        progress: Allow a progress bar on a terminal (progress lines are logged otherwise).
        chat: A `ChatClient` to send the requests through (its cache and usage counts);
            by default one without a cache is made (with `client`) and closed afterwards.

    Returns:
        Pairs in input order (teacher pairs have generator ``teacher:<model>``), rejects, and
        stats with counts per outcome (``teacher``, ``teacher_error``, ``teacher_invalid``,
        ``teacher_ungrounded``) and the usage of these requests.

    Raises:
        ConfigError: no endpoint/model configured, or the API key variable is not set.
    """
    own = chat if chat is not None else teacher_client(config, client=client)
    model = own.endpoint.model
    generator = f"teacher:{model}"
    before = own.snapshot()

    def reject(pair: QAPair, rule: str, reason: str) -> Reject:
        return Reject(stage="qa", rule=rule, reason=own.mask(reason),
                      chunk_id=pair.chunk_id, doc_id=pair.doc_id, qa_id=pair.qa_id,
                      question=pair.question, template_id=pair.template_id,
                      entity={"label": pair.entity_type, "text": pair.entity_text,
                              "start": pair.entity_start, "end": pair.entity_end})

    def failed(pair: QAPair, rule: str, reason: str) -> _Outcome:
        kept = pair if config.keep_template_on_failure else None
        return _Outcome(kept, reject(pair, rule, reason), rule)

    def ask(pair: QAPair) -> _Outcome:
        reply = own.ask(build_messages(pair, config.mode))
        if reply.error is not None:
            log.warning("teacher request for pair %s failed: %s", pair.qa_id, reply.error)
            return failed(pair, "teacher_error", f"teacher request failed: {reply.error}")
        content = reply.content
        if not content or not content.strip():
            return failed(pair, "teacher_invalid", "the teacher returned an empty response")
        if config.mode == "rewrite":
            question = clean_question(content)
            if not question or not _CYRILLIC.search(question) or len(question) > MAX_QUESTION_CHARS:
                return failed(pair, "teacher_invalid",
                              f"the rewritten question is unusable: {question[:120]!r}")
            return _Outcome(pair.model_copy(update={"question": question,
                                                    "generator": generator}), None, "teacher")
        answer = clean_answer(content)
        if not answer:
            return failed(pair, "teacher_invalid", "the teacher answer is empty")
        score = grounding(answer, pair.context)
        if score < config.min_grounding:
            return failed(pair, "teacher_ungrounded",
                          f"only {score:.0%} of the answer's words occur in the context "
                          f"(min_grounding {config.min_grounding:.0%}): {answer[:160]!r}")
        return _Outcome(pair.model_copy(update={"answer": answer, "generator": generator}),
                        None, "teacher")

    try:
        outcomes = map_concurrently(ask, list(pairs), config.workers, "teacher",
                                    progress=progress)
    finally:
        if chat is None:
            own.close()

    counts = count_outcomes((o.status for o in outcomes),
                            ("teacher", "teacher_error", "teacher_invalid", "teacher_ungrounded"))
    stats: dict[str, Any] = {"model": model, "mode": config.mode, "pairs": len(pairs), **counts,
                             **own.snapshot().minus(before).report()}
    log.info("teacher %s (%s): %s", model, config.mode, stats)
    return TeacherResult(
        pairs=[o.pair for o in outcomes if o.pair is not None],
        rejects=[o.reject for o in outcomes if o.reject is not None],
        stats=stats,
        max_error_ratio=config.max_error_ratio,
        task="teacher",
        attempts=len(pairs),
        errors=counts["teacher_error"],
    )


def build_generate_messages(text: str, num_pairs: int) -> list[dict[str, str]]:
    """Chat messages (Russian prompts) asking for `num_pairs` QA pairs about `text`."""
    return [{"role": "system", "content": GENERATE_SYSTEM},
            {"role": "user", "content": GENERATE_USER.format(text=text.strip(), n=num_pairs)}]


def parse_generated(content: str) -> list[Any] | None:
    """The list of items in a generate response (a JSON list, or an object holding one).

    Accepts a bare list, ``{"pairs": [...]}`` (any key whose value is a list of objects) and a
    single ``{"question": ..., "answer": ...}`` object. None when no JSON value is found.
    """
    value = parse_json(content)
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if _item_text(value, "question") or _item_text(value, "answer"):
            return [value]
        for v in value.values():
            if isinstance(v, list) and all(isinstance(x, dict) for x in v):
                return v
    return None


_KEYS = {"question": ("question", "вопрос", "q"), "answer": ("answer", "ответ", "a")}


def _item_text(item: dict[str, Any], what: str) -> str:
    for key in _KEYS[what]:
        for k, v in item.items():
            if isinstance(k, str) and k.strip().lower() == key and isinstance(v, str | int | float):
                return str(v)
    return ""


def answer_span(text: str, sentences: list[Span], answer: str) -> Span | None:
    """Where the answer is in `text`.

    Its own span when it is quoted verbatim (case ignored), else the sentence sharing most of
    its words; None when no sentence shares a word.
    """
    needle = answer.strip().rstrip(".")
    if needle:
        at = text.find(needle)
        if at < 0 and len(text.lower()) == len(text):
            at = text.lower().find(needle.lower())
        if at >= 0:
            return at, at + len(needle)
    wanted = set(words(answer))
    best, best_score = None, 0
    for span in sentences:
        score = len(wanted & set(words(text[span[0]:span[1]])))
        if score > best_score:
            best, best_score = span, score
    return best


def generate_teacher_pairs(
    chunks: Sequence[ChunkLike],
    cfg: QAConfig,
    *,
    chat: ChatClient | None = None,
    progress: bool = False,
) -> TeacherResult:
    """The teacher writes up to ``cfg.num_pairs`` QA pairs from the text of each chunk.

    Args:
        chunks: Chunk records (chunk_id, doc_id, text, kind); only ``teacher.chunk_kinds``
            ones of at least ``teacher.min_chunk_chars`` characters are sent.
        cfg: QA settings: ``num_pairs``, ``max_context_length``, ``add_context``, ``teacher``.
        chat: The `ChatClient` to use; by default one without a cache, closed afterwards.
        progress: Allow a progress bar on a terminal.

    Returns:
        Pairs in chunk order, rejects (chunk_too_short, teacher_error, teacher_invalid,
        teacher_ungrounded, answer_too_long, duplicate_question, over_num_pairs) and stats
        (chunks asked, pairs, rejects per rule, usage).

    Raises:
        ConfigError: no endpoint/model configured, or the API key variable is not set.
    """
    tcfg = cfg.teacher
    own = chat if chat is not None else teacher_client(tcfg)
    generator = f"teacher:{own.endpoint.model}"
    before = own.snapshot()
    skipped = Counter(c.kind for c in chunks if c.kind not in tcfg.chunk_kinds)
    if skipped:
        log.info("the teacher skips %d chunks by kind (teacher.chunk_kinds=%s): %s",
                 sum(skipped.values()), list(tcfg.chunk_kinds), dict(skipped))
    rejects: list[Reject] = []
    asked: list[ChunkLike] = []
    for rec in chunks:
        if rec.kind not in tcfg.chunk_kinds:
            continue
        if len(rec.text.strip()) < tcfg.min_chunk_chars:
            rejects.append(Reject(
                stage="qa", rule="chunk_too_short", chunk_id=rec.chunk_id, doc_id=rec.doc_id,
                reason=f"the chunk has {len(rec.text.strip())} characters, fewer than "
                       f"teacher.min_chunk_chars={tcfg.min_chunk_chars}; no teacher pairs"))
            continue
        asked.append(rec)

    def ask(rec: ChunkLike) -> tuple[list[QAPair], list[Reject], str]:
        reply = own.ask(build_generate_messages(rec.text, cfg.num_pairs))

        def bad(rule: str, reason: str, question: str | None = None) -> Reject:
            return Reject(stage="qa", rule=rule, reason=own.mask(reason), chunk_id=rec.chunk_id,
                          doc_id=rec.doc_id, question=question)

        if reply.error is not None:
            log.warning("teacher request for chunk %s failed: %s", rec.chunk_id, reply.error)
            return ([], [bad("teacher_error", f"teacher request failed: {reply.error}")],
                    "teacher_error")
        items = parse_generated(reply.content or "")
        if items is None:
            return [], [bad("teacher_invalid", "the response holds no JSON list of pairs: "
                            f"{(reply.content or '')[:160]!r}")], "teacher_invalid"
        pairs: list[QAPair] = []
        out: list[Reject] = []
        seen: set[str] = set()
        text = rec.text
        sentences = sentence_spans(text, pdf=True)
        for k, item in enumerate(items):
            if not isinstance(item, dict):
                out.append(bad("teacher_invalid", f"item #{k} is not an object: {item!r:.120}"))
                continue
            question = clean_question(_item_text(item, "question"))
            answer = clean_answer(_item_text(item, "answer"))
            if not question or not _CYRILLIC.search(question) or len(question) > MAX_QUESTION_CHARS:
                out.append(bad("teacher_invalid", f"item #{k}: the question is unusable: "
                               f"{question[:120]!r}", question or None))
                continue
            if not answer:
                out.append(bad("teacher_invalid", f"item #{k}: the answer is empty", question))
                continue
            if question.casefold() in seen:
                out.append(bad("duplicate_question", f"item #{k} repeats a question", question))
                continue
            if len(pairs) >= cfg.num_pairs:
                out.append(bad("over_num_pairs", f"the chunk already has num_pairs="
                               f"{cfg.num_pairs} teacher pairs", question))
                continue
            score = grounding(answer, text)
            span = answer_span(text, sentences, answer)
            if score < tcfg.min_grounding or span is None:
                out.append(bad("teacher_ungrounded",
                               f"only {score:.0%} of the answer's words occur in the chunk "
                               f"(min_grounding {tcfg.min_grounding:.0%}): {answer[:160]!r}",
                               question))
                continue
            window = (context_window(text, sentences, span, cfg.max_context_length)
                      if cfg.add_context else None)
            if cfg.add_context and window is None:
                out.append(bad("answer_too_long",
                               f"the text holding the answer has {span[1] - span[0]} "
                               f"characters, more than max_context_length="
                               f"{cfg.max_context_length}", question))
                continue
            seen.add(question.casefold())
            pairs.append(QAPair(
                question=question, answer=answer, entity_type=TEACHER_ENTITY_TYPE,
                source_text=text, context=text[window[0]:window[1]] if window else "",
                qa_id=stable_id(rec.chunk_id, "teacher", question, answer),
                chunk_id=rec.chunk_id, doc_id=rec.doc_id, generator=generator,
            ))
        return pairs, out, "ok"

    try:
        outcomes = map_concurrently(ask, asked, tcfg.workers, "teacher", progress=progress)
    finally:
        if chat is None:
            own.close()
    pairs = [p for o in outcomes for p in o[0]]
    rejects.extend(r for o in outcomes for r in o[1])
    errors = sum(o[2] == "teacher_error" for o in outcomes)
    stats: dict[str, Any] = {
        "chunks": len(asked), "pairs": len(pairs),
        "rejects_by_rule": dict(sorted(Counter(r.rule for r in rejects).items())),
        **own.snapshot().minus(before).report(),
    }
    log.info("teacher %s wrote %d pairs for %d chunks: %s", own.endpoint.model, len(pairs),
             len(asked), stats)
    return TeacherResult(pairs=pairs, rejects=rejects, stats=stats,
                         max_error_ratio=tcfg.max_error_ratio, task="teacher (generate)",
                         attempts=len(asked), errors=errors)
