"""The LLM judge: each QA pair scored for faithfulness to its context and relevance.

The judge (``qa.judge``) sees the pair's context (the instruct input the fine-tuned model will
see; the whole chunk when pairs have no context), the question and the answer, and returns
``{"faithfulness": 1-5, "relevance": 1-5, "reason": "..."}``. A pair scoring below
``min_faithfulness`` or ``min_relevance`` is dropped with rule ``judge_rejected``, the verdict
in the reject (``judge``) and its reason; kept pairs carry their verdict (`QAPair.judge`). A
failed request is ``judge_error``, an unreadable verdict ``judge_invalid``; those pairs are
dropped unless ``keep_unjudged``. Endpoint fields the judge leaves None are the teacher's, and
it always shares the teacher's timeouts, retries, workers, error threshold and response cache.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from geomas.config import QAConfig
from geomas.errors import ConfigError
from geomas.qa.llm import (
    ChatClient,
    Endpoint,
    LLMTaskResult,
    ResponseCache,
    count_outcomes,
    map_concurrently,
    parse_json,
)
from geomas.qa.records import JudgeVerdict, QAPair
from geomas.records import Reject

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 500

JUDGE_SYSTEM = (
    "Ты — строгий эксперт, проверяющий обучающие пары «вопрос — ответ» по фрагменту "
    "документа. Оцени по шкале от 1 до 5: faithfulness — насколько ответ подтверждается "
    "фрагментом (5 — всё сказанное в ответе есть во фрагменте, 1 — ответа во фрагменте нет или "
    "он фрагменту противоречит); relevance — насколько ответ отвечает именно на заданный вопрос "
    "(5 — полностью, 1 — не отвечает). Верни только JSON: "
    '{"faithfulness": <1-5>, "relevance": <1-5>, "reason": "<кратко, по-русски>"}.'
)
JUDGE_USER = "Фрагмент:\n{context}\n\nВопрос: {question}\nОтвет: {answer}\n\nОценка (JSON):"

OUTCOMES = ("judge_kept", "judge_rejected", "judge_error", "judge_invalid")


def judge_endpoint(cfg: QAConfig) -> Endpoint:
    """The judge's endpoint: its own base_url/model/key variable, else the teacher's.

    Raises:
        ConfigError: neither the judge nor the teacher names an endpoint and a model.
    """
    judge, teacher = cfg.judge, cfg.teacher
    base_url = judge.base_url or teacher.base_url
    model = judge.model or teacher.model
    if not base_url or not model:
        raise ConfigError("the judge needs judge.base_url and judge.model (or the teacher's)")
    return Endpoint(base_url=base_url, model=model,
                    api_key_env=judge.api_key_env or teacher.api_key_env,
                    timeout_s=teacher.timeout_s, max_retries=teacher.max_retries,
                    temperature=judge.temperature, max_tokens=judge.max_tokens,
                    workers=teacher.workers)


def judge_client(
    cfg: QAConfig, *, cache: ResponseCache | None = None, client: Any = None
) -> ChatClient:
    """A `ChatClient` for the judge (close it, or use it in a ``with`` block).

    Raises:
        ConfigError: no endpoint or model configured, or the API key variable is not set.
    """
    key_field = "judge.api_key_env" if cfg.judge.api_key_env else "teacher.api_key_env"
    return ChatClient(judge_endpoint(cfg), cache=cache, client=client, key_field=key_field)


def build_judge_messages(pair: QAPair) -> list[dict[str, str]]:
    """Chat messages (Russian prompt) asking for the verdict on one pair."""
    user = JUDGE_USER.format(context=(pair.context or pair.source_text).strip(),
                             question=pair.question, answer=pair.answer)
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_verdict(content: str, model: str = "") -> JudgeVerdict | None:
    """The verdict in a judge response, or None when it has no usable one.

    Scores may be numbers or numeric strings (``"4"``, ``4.0``) and must be 1-5.
    """
    value = parse_json(content)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        return None
    scores: dict[str, int] = {}
    for name in ("faithfulness", "relevance"):
        raw = next((v for k, v in value.items() if str(k).strip().lower() == name), None)
        try:
            score = float(str(raw).strip())
        except ValueError:
            return None
        if not score.is_integer() or not 1 <= score <= 5:
            return None
        scores[name] = int(score)
    reason = value.get("reason")
    return JudgeVerdict(**scores, reason=str(reason or "")[:MAX_REASON_CHARS], model=model)


@dataclass
class _Judged:
    pair: QAPair | None
    reject: Reject | None
    status: str


def judge_pairs(
    pairs: Sequence[QAPair], cfg: QAConfig, *, chat: ChatClient | None = None,
    progress: bool = False,
) -> LLMTaskResult:
    """Score every pair with the judge; drop those below the thresholds.

    Args:
        pairs: The pairs to judge (any generator).
        cfg: QA settings: ``judge`` and, for what it leaves unset, ``teacher``.
        chat: The `ChatClient` to use; by default one without a cache, closed afterwards.
        progress: Allow a progress bar on a terminal.

    Returns:
        Kept pairs (with `QAPair.judge` set; unjudged ones as they were when
        ``keep_unjudged``), rejects (judge_rejected, judge_error, judge_invalid) and stats.

    Raises:
        ConfigError: no endpoint/model configured, or the API key variable is not set.
    """
    jcfg = cfg.judge
    own = chat if chat is not None else judge_client(cfg)
    model = own.endpoint.model
    before = own.snapshot()

    def reject(pair: QAPair, rule: str, reason: str,
               verdict: JudgeVerdict | None = None) -> Reject:
        return Reject(stage="qa", rule=rule, reason=own.mask(reason), chunk_id=pair.chunk_id,
                      doc_id=pair.doc_id, qa_id=pair.qa_id, question=pair.question,
                      template_id=pair.template_id,
                      judge=verdict.model_dump() if verdict is not None else None)

    def failed(pair: QAPair, rule: str, reason: str) -> _Judged:
        return _Judged(pair if jcfg.keep_unjudged else None, reject(pair, rule, reason), rule)

    def ask(pair: QAPair) -> _Judged:
        reply = own.ask(build_judge_messages(pair))
        if reply.error is not None:
            log.warning("judge request for pair %s failed: %s", pair.qa_id, reply.error)
            return failed(pair, "judge_error", f"judge request failed: {reply.error}")
        verdict = parse_verdict(reply.content or "", model)
        if verdict is None:
            return failed(pair, "judge_invalid", "the judge's response holds no verdict with "
                          f"scores 1-5: {(reply.content or '')[:160]!r}")
        low = [f"{name} {score}/5 < {least}" for name, score, least in (
            ("faithfulness", verdict.faithfulness, jcfg.min_faithfulness),
            ("relevance", verdict.relevance, jcfg.min_relevance)) if score < least]
        if low:
            return _Judged(None, reject(pair, "judge_rejected",
                                        f"judge {model}: {', '.join(low)}: {verdict.reason}",
                                        verdict), "judge_rejected")
        return _Judged(pair.model_copy(update={"judge": verdict}), None, "judge_kept")

    try:
        outcomes = map_concurrently(ask, list(pairs), cfg.teacher.workers, "judge",
                                    progress=progress)
    finally:
        if chat is None:
            own.close()
    counts = count_outcomes((o.status for o in outcomes), OUTCOMES)
    stats: dict[str, Any] = {
        "model": model, "min_faithfulness": jcfg.min_faithfulness,
        "min_relevance": jcfg.min_relevance, "pairs": len(pairs), **counts,
        **own.snapshot().minus(before).report(),
    }
    log.info("judge %s: %s", model, stats)
    return LLMTaskResult(
        pairs=[o.pair for o in outcomes if o.pair is not None],
        rejects=[o.reject for o in outcomes if o.reject is not None],
        stats=stats, max_error_ratio=cfg.teacher.max_error_ratio, task="judge",
        attempts=len(pairs), errors=counts["judge_error"],
        hint="check judge.base_url, judge.model (or the teacher's) and the server",
    )
