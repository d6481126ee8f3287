"""Optional LLM teacher for template QA pairs, through an OpenAI-compatible chat endpoint.

Modes (``TeacherConfig.mode``):

- ``rewrite``: the model rephrases the template question in natural Russian; the extractive
  answer and the context stay as they are;
- ``answer``: the model answers the question from the context; an answer whose words are not
  found in the context (share below ``min_grounding``) is rejected as ``teacher_ungrounded``.

One bad response never stops a run: an API error is recorded as ``teacher_error``, an empty or
unusable response as ``teacher_invalid``; with ``keep_template_on_failure`` the template pair is
kept in those cases. Only when API errors exceed ``max_error_ratio`` of the requests does the
run fail, after its outputs are written. The API key is read from the environment variable
named by ``api_key_env``, is sent only in the request header, and is masked in every message
geomas writes or logs.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from geomas.config import TeacherConfig
from geomas.errors import ConfigError, GeomasError
from geomas.qa.records import QAPair
from geomas.records import Reject
from geomas.text import words

if TYPE_CHECKING:
    from openai import OpenAI

log = logging.getLogger(__name__)

MASK = "***"
MAX_QUESTION_CHARS = 400

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

_LABEL = re.compile(r"^\s*(?:вопрос|ответ|question|answer)\s*[:：]\s*", re.IGNORECASE)
_QUOTES = "«»\"'“”„ "
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


class TeacherError(GeomasError):
    """The teacher failed for too many pairs (see ``teacher.max_error_ratio``)."""


@dataclass
class TeacherResult:
    """Pairs after the teacher, its rejects and per-outcome counts."""

    pairs: list[QAPair]
    rejects: list[Reject]
    stats: dict[str, Any] = field(default_factory=dict)
    max_error_ratio: float = 1.0

    @property
    def error_ratio(self) -> float:
        """API errors / requests."""
        requests = int(self.stats.get("requests", 0))
        return int(self.stats.get("teacher_error", 0)) / requests if requests else 0.0

    def failure_message(self) -> str | None:
        """Why the run should fail (API errors above the threshold), or None."""
        if self.error_ratio > self.max_error_ratio:
            return (
                f"teacher API errors for {self.stats.get('teacher_error')} of "
                f"{self.stats.get('requests')} pairs ({self.error_ratio:.0%}), above "
                f"teacher.max_error_ratio={self.max_error_ratio:.0%}; check teacher.base_url, "
                "teacher.model and the server"
            )
        return None


def api_key(config: TeacherConfig) -> str:
    """The API key from the environment variable named by ``config.api_key_env``.

    Raises:
        ConfigError: the variable is not set (the message names the variable, never a value).
    """
    key = os.environ.get(config.api_key_env, "")
    if not key:
        raise ConfigError(
            f"teacher.api_key_env={config.api_key_env!r}: environment variable "
            f"{config.api_key_env} is not set; export it (any non-empty value for a local server "
            "without authentication)"
        )
    return key


def make_openai_client(config: TeacherConfig) -> OpenAI:
    """An ``openai.OpenAI`` client for the configured endpoint (caller closes it)."""
    from openai import OpenAI

    return OpenAI(base_url=config.base_url, api_key=api_key(config), timeout=config.timeout_s,
                  max_retries=config.max_retries)


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


def _mask(text: str, secret: str) -> str:
    return text.replace(secret, MASK) if secret else text


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
) -> TeacherResult:
    """Send every pair to the teacher and return the resulting pairs and rejects.

    Args:
        pairs: Template pairs.
        config: Teacher settings; ``enabled`` is not checked here (the caller decides).
        client: An OpenAI client to use; by default one is made by `make_openai_client`
            and closed afterwards.
        progress: Allow a progress bar on a terminal (progress lines are logged otherwise).

    Returns:
        Pairs in input order (teacher pairs have generator ``teacher:<model>``), rejects, and
        stats with counts per outcome (``teacher``, ``teacher_error``, ``teacher_invalid``,
        ``teacher_ungrounded``).

    Raises:
        ConfigError: no endpoint/model configured, or the API key variable is not set.
    """
    from openai import OpenAIError

    from geomas.progress import track

    if not config.base_url or not config.model:
        raise ConfigError("the teacher needs teacher.base_url and teacher.model")
    secret = api_key(config)
    model = config.model
    generator = f"teacher:{model}"

    def reject(pair: QAPair, rule: str, reason: str) -> Reject:
        return Reject(stage="qa", rule=rule, reason=_mask(reason, secret),
                      chunk_id=pair.chunk_id, doc_id=pair.doc_id, qa_id=pair.qa_id,
                      question=pair.question, template_id=pair.template_id,
                      entity={"label": pair.entity_type, "text": pair.entity_text,
                              "start": pair.entity_start, "end": pair.entity_end})

    def failed(pair: QAPair, rule: str, reason: str) -> _Outcome:
        kept = pair if config.keep_template_on_failure else None
        return _Outcome(kept, reject(pair, rule, reason), rule)

    def ask(pair: QAPair, own: OpenAI) -> _Outcome:
        try:
            response = own.chat.completions.create(
                model=model,
                messages=build_messages(pair, config.mode),  # type: ignore[arg-type]
                temperature=config.temperature,
                max_tokens=config.max_tokens,
            )
        except OpenAIError as exc:
            message = _mask(f"{type(exc).__name__}: {exc}", secret)
            log.warning("teacher request for pair %s failed: %s", pair.qa_id, message)
            return failed(pair, "teacher_error", f"teacher request failed: {message}")
        choices = getattr(response, "choices", None) or []
        content = choices[0].message.content if choices else None
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

    own = client if client is not None else make_openai_client(config)
    try:
        with ThreadPoolExecutor(max_workers=config.workers) as pool:
            outcomes = list(track(pool.map(lambda p: ask(p, own), pairs), "teacher",
                                  total=len(pairs), unit="pairs", bar=progress))
    finally:
        if client is None:
            own.close()

    counts = Counter(o.status for o in outcomes)
    stats: dict[str, Any] = {
        "model": model, "mode": config.mode, "requests": len(pairs),
        **{k: counts.get(k, 0) for k in
           ("teacher", "teacher_error", "teacher_invalid", "teacher_ungrounded")},
    }
    log.info("teacher %s (%s): %s", model, config.mode, stats)
    return TeacherResult(
        pairs=[o.pair for o in outcomes if o.pair is not None],
        rejects=[o.reject for o in outcomes if o.reject is not None],
        stats=stats,
        max_error_ratio=config.max_error_ratio,
    )
