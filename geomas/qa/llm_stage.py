"""The LLM part of QA synthesis: teacher pairs, the teacher on local pairs, then the judge.

`run_llm_tasks` is what `geomas.qa.generate.synthesize_qa` calls after the local generators:

1. ``teacher.enabled`` (qa.mode templates or hybrid): the teacher rewrites or answers the local
   pairs (`geomas.qa.teacher.apply_teacher`);
2. qa.mode teacher or hybrid: the teacher writes pairs from each chunk's text
   (`geomas.qa.teacher.generate_teacher_pairs`); in hybrid, a teacher question that a local
   pair of the same chunk already asks is rejected (duplicate_question); pairs stay in chunk
   order, local ones first;
3. ``judge.enabled``: every pair is judged (`geomas.qa.judge.judge_pairs`).

Teacher and judge share the response cache (``teacher.cache_dir``, default ``.llm_cache`` next
to qa_pairs.json). The stage report gets a ``teacher`` section (model, qa_mode, ``generate`` and
``local_pairs`` outcome counts, usage totals: requests, cache_hits, errors, prompt_tokens,
completion_tokens, seconds) and a ``judge`` section (model, thresholds, outcome counts, usage).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geomas.config import QAConfig
from geomas.qa.records import QAPair
from geomas.records import Reject

if TYPE_CHECKING:
    from geomas.qa.teacher import ChunkLike

log = logging.getLogger(__name__)


@dataclass
class LLMStageResult:
    """Pairs after the LLM tasks, their rejects, the report sections and failures."""

    pairs: list[QAPair]
    rejects: list[Reject] = field(default_factory=list)
    teacher: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None
    failures: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def uses_llm(cfg: QAConfig) -> bool:
    """Whether QA synthesis with `cfg` sends any request (teacher or judge)."""
    return cfg.mode != "templates" or cfg.teacher.enabled or cfg.judge.enabled


def run_llm_tasks(
    chunks: Sequence[ChunkLike],
    local_pairs: Sequence[QAPair],
    cfg: QAConfig,
    out_dir: Path,
    *,
    progress: bool = False,
) -> LLMStageResult:
    """Run the teacher and the judge as `cfg` says over the local pairs and the chunks.

    Args:
        chunks: The chunk records of the run (teacher pairs are written from their text).
        local_pairs: The pairs of the local generators (none in qa.mode teacher).
        cfg: QA settings (``mode``, ``teacher``, ``judge``, ``num_pairs``...).
        out_dir: The folder of qa_pairs.json (the default cache is ``.llm_cache`` there).
        progress: Allow progress bars on a terminal.

    Returns:
        The pairs, the rejects of the LLM tasks, the report sections, the failure messages
        (API errors above ``teacher.max_error_ratio``; the caller raises after writing) and
        the seconds of the teacher and the judge.

    Raises:
        ConfigError: an endpoint or model is missing, or an API key variable is not set.
    """
    from geomas.qa.teacher import (
        apply_teacher,
        generate_teacher_pairs,
        response_cache,
        teacher_client,
    )

    out = LLMStageResult(pairs=list(local_pairs))
    cache = response_cache(cfg.teacher, out_dir)
    t0 = time.perf_counter()
    post = cfg.teacher.enabled and cfg.mode != "teacher"
    if post or cfg.mode != "templates":
        with teacher_client(cfg.teacher, cache=cache) as chat:
            report: dict[str, Any] = {"model": chat.endpoint.model, "qa_mode": cfg.mode}
            if post:
                taught = apply_teacher(out.pairs, cfg.teacher, chat=chat, progress=progress)
                out.pairs = taught.pairs
                out.rejects.extend(taught.rejects)
                report["local_pairs"] = taught.stats
                out.failures.extend(m for m in [taught.failure_message()] if m)
            if cfg.mode != "templates":
                written = generate_teacher_pairs(chunks, cfg, chat=chat, progress=progress)
                asked = {(p.chunk_id, p.question.casefold()) for p in out.pairs}
                for p in written.pairs:
                    if (p.chunk_id, p.question.casefold()) in asked:
                        written.stats["pairs"] -= 1
                        out.rejects.append(Reject(
                            stage="qa", rule="duplicate_question", chunk_id=p.chunk_id,
                            doc_id=p.doc_id, qa_id=p.qa_id, question=p.question,
                            reason="a local pair of this chunk already asks this question"))
                    else:
                        out.pairs.append(p)
                out.rejects.extend(written.rejects)
                report["generate"] = written.stats
                out.failures.extend(m for m in [written.failure_message()] if m)
            report.update(chat.snapshot().report())
        out.teacher = report
    t1 = time.perf_counter()
    if cfg.judge.enabled:
        from geomas.qa.judge import judge_client, judge_pairs

        with judge_client(cfg, cache=cache) as jchat:
            judged = judge_pairs(out.pairs, cfg, chat=jchat, progress=progress)
        out.pairs = judged.pairs
        out.rejects.extend(judged.rejects)
        out.judge = judged.stats
        out.failures.extend(m for m in [judged.failure_message()] if m)
    t2 = time.perf_counter()
    order = {c.chunk_id: k for k, c in enumerate(chunks)}
    out.pairs.sort(key=lambda p: order.get(p.chunk_id or "", len(order)))
    out.seconds = {"teacher": round(t1 - t0, 3), "judge": round(t2 - t1, 3)}
    return out
