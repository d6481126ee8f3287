"""Teacher mode, the judge and the response cache against a real OpenAI-compatible server.

The server is `transformers serve` (FastAPI + uvicorn, /v1/chat/completions) on 127.0.0.1 with
a tiny Llama built offline here. A random tiny model writes noise, so the fixture first
teaches it (a few hundred steps of next-token training on CPU, loss on the answer only) the
answers to the exact prompts this module sends: the teacher's JSON pairs for each chunk and
the judge's verdict for each of those pairs. Generation is greedy (temperature 0), so the
server then answers with what the model learnt: real HTTP, real generation, real parsing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from geomas.config import QAConfig
from geomas.ner.extract import ChunkEntities, ChunkEntity, EntitySet
from geomas.qa import QAPair, synthesize_qa
from geomas.qa.generate import ChunkRecord
from geomas.qa.judge import build_judge_messages, parse_verdict
from geomas.qa.llm import CACHE_DIR_NAME, ChatReply, LLMUsage, ResponseCache, parse_json
from geomas.qa.teacher import (
    TEACHER_ENTITY_TYPE,
    build_generate_messages,
    generate_teacher_pairs,
    parse_generated,
)

KEY = "sk-geomas-served-3b9d1c-SECRET"
KEY_ENV = "GEOMAS_TEST_SERVED_KEY"
NUM_PAIRS = 3

CHUNKS = [
    ChunkRecord("chunk-a", "doc-a",
                "Месторождение Агинское расположено в Камчатском крае. Средние содержания "
                "золота составляют 43,7 г/т. Рудные тела представлены кварцевыми жилами."),
    ChunkRecord("chunk-b", "doc-b",
                "Месторождение Кедровое расположено на Чукотке. Средние содержания серебра "
                "составляют 466,0 г/т. Руды вывозятся на обогатительную фабрику."),
    ChunkRecord("chunk-c", "doc-c", "Глава 2. Геология района"),  # too short for the teacher
]

GOOD = {"faithfulness": 5, "relevance": 5, "reason": "ответ подтверждается фрагментом"}
WRONG = {"faithfulness": 1, "relevance": 5, "reason": "во фрагменте другое значение"}
OFF = {"faithfulness": 5, "relevance": 1, "reason": "ответ не о том, что спрошено"}

#: What the teacher writes for each chunk: (question, answer, the judge's verdict). The wrong
#: answers share enough words with the chunk to pass the word-grounding check: only the
#: judge can tell them apart.
SCRIPT: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "chunk-a": [
        ("Где расположено месторождение Агинское?",
         "Месторождение Агинское расположено в Камчатском крае.", GOOD),
        ("Каковы средние содержания золота на месторождении Агинское?",
         "Средние содержания золота составляют 12,1 г/т.", WRONG),
        ("Когда открыто месторождение Агинское?",
         "Рудные тела представлены кварцевыми жилами.", OFF),
    ],
    "chunk-b": [
        ("Где расположено месторождение Кедровое?",
         "Месторождение Кедровое расположено на Чукотке.", GOOD),
        ("Каковы средние содержания серебра на месторождении Кедровое?",
         "Средние содержания серебра составляют 466,0 г/т.", GOOD),
        ("Куда вывозятся руды месторождения Кедровое?",
         "Руды вывозятся на металлургический комбинат.", {**WRONG, "faithfulness": 2}),
    ],
}


def _teacher_reply(chunk_id: str) -> str:
    items = [{"question": q, "answer": a} for q, a, _ in SCRIPT[chunk_id]]
    text = json.dumps(items, ensure_ascii=False)
    # one answer in a fenced block, as chat models often write it: the parser must cope
    return f"```json\n{text}\n```" if chunk_id == "chunk-b" else text


def _config(url: str, model: str, **qa: Any) -> QAConfig:
    teacher = {"base_url": url, "model": model, "api_key_env": KEY_ENV, "temperature": 0.0,
               "max_retries": 0, "timeout_s": 120, "workers": 2, **qa.pop("teacher", {})}
    return QAConfig.model_validate({"num_pairs": NUM_PAIRS, "teacher": teacher, **qa})


class _Scripted:
    """Answers from SCRIPT without a server: derives the judge prompts the stage will send."""

    def __init__(self, model: str) -> None:
        self.endpoint = SimpleNamespace(model=model)
        self.replies = {build_generate_messages(c.text, NUM_PAIRS)[-1]["content"]:
                        _teacher_reply(c.chunk_id) for c in CHUNKS if c.chunk_id in SCRIPT}

    def snapshot(self) -> LLMUsage:
        return LLMUsage()

    def mask(self, text: str) -> str:
        return text

    def ask(self, messages: list[dict[str, str]]) -> ChatReply:
        return ChatReply(content=self.replies[messages[-1]["content"]])


def _lessons(model: str) -> list[tuple[list[dict[str, str]], str]]:
    """(messages, the answer to learn) for every request of this module."""
    lessons = [(build_generate_messages(c.text, NUM_PAIRS), _teacher_reply(c.chunk_id))
               for c in CHUNKS if c.chunk_id in SCRIPT]
    cfg = _config("http://unused/v1", model)
    pairs = generate_teacher_pairs(CHUNKS, cfg, chat=_Scripted(model)).pairs
    verdicts = {(c, q): v for c, items in SCRIPT.items() for q, _, v in items}
    assert len(pairs) == sum(len(v) for v in SCRIPT.values())
    for pair in pairs:
        verdict = verdicts[(pair.chunk_id or "", pair.question)]
        lessons.append((build_judge_messages(pair), json.dumps(verdict, ensure_ascii=False)))
    return lessons


def _teach(model_dir: Path, lessons: list[tuple[list[dict[str, str]], str]]) -> int:
    """Train the tiny LM until greedy decoding gives every lesson's answer; the steps taken."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    seqs = []
    for messages, answer in lessons:
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
        target = tok(answer + tok.eos_token, add_special_tokens=False)["input_ids"]
        seqs.append((list(prompt), list(target)))
    width = max(len(p) + len(t) for p, t in seqs)
    assert width < 1024, f"a lesson has {width} tokens, more than the tiny LM's context"
    ids = torch.full((len(seqs), width), tok.pad_token_id)
    labels = torch.full((len(seqs), width), -100)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (p, t) in enumerate(seqs):
        ids[i, :len(p) + len(t)] = torch.tensor(p + t)
        labels[i, len(p):len(p) + len(t)] = torch.tensor(t)
        mask[i, :len(p) + len(t)] = 1
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    answer_at = labels[:, 1:] != -100

    def learnt(logits: torch.Tensor) -> bool:
        # every answer token (and the closing </s>) is the argmax after its true prefix, so
        # greedy decoding from the prompt writes exactly the answer and stops
        guess = logits[:, :-1].argmax(-1)
        return bool((guess[answer_at] == labels[:, 1:][answer_at]).all())

    model.train()
    for step in range(1, 801):
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        if step % 10 == 0 and learnt(out.logits.detach()):
            model.save_pretrained(model_dir)
            return step
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    raise AssertionError(f"the tiny LM did not learn its answers in 800 steps "
                         f"(loss {float(out.loss):.4f})")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running `transformers serve` and the model it serves."""

    url: str
    model: str
    log: Path
    steps: int

    def chat_requests(self) -> int:
        """Chat completion requests the server has answered (its uvicorn access log)."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return len(re.findall(r'"POST /v1/chat/completions HTTP/1\.1" 200', text))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from geomas.models.tiny import GENERAL_TEXTS, make_tiny_lm

    root = tmp_path_factory.mktemp("served")
    model_dir = root / "tiny-teacher"
    lessons = _lessons(str(model_dir))
    texts = [m["content"] for msgs, _ in lessons for m in msgs]
    make_tiny_lm(model_dir, [*texts, *(a for _, a in lessons), *GENERAL_TEXTS], seed=0,
                 vocab_size=1500)
    steps = _teach(model_dir, lessons)

    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    assert exe, "the `transformers` console script is missing (pip install transformers[serving])"
    port = _free_port()
    log = root / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--log-level", "info"],
            stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"transformers serve exited ({proc.returncode}):\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"transformers serve did not start in 180 s:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield Served(f"http://127.0.0.1:{port}/v1", str(model_dir), log, steps)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.fixture()
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY_ENV


def _no_key_in(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_teacher_mode_judge_and_cache(served: Served, key_env: str, tmp_path: Path) -> None:
    cfg = _config(served.url, served.model, mode="teacher", judge={"enabled": True})
    out = tmp_path / "qa" / "qa_pairs.json"
    entities = EntitySet(model_path=None)
    before = served.chat_requests()

    first = synthesize_qa(CHUNKS, entities, cfg, out)
    sent = served.chat_requests() - before

    # grounded pairs kept, with their lineage, context and verdict
    good = {(c, q) for c, items in SCRIPT.items() for q, _, v in items if v == GOOD}
    kept = first.kept.pairs
    assert {(p.chunk_id, p.question) for p in kept} == good
    texts = {c.chunk_id: c.text for c in CHUNKS}
    for p in kept:
        assert p.generator == f"teacher:{served.model}" and p.entity_type == TEACHER_ENTITY_TYPE
        assert p.doc_id == p.chunk_id.replace("chunk", "doc")
        assert p.source_text == texts[p.chunk_id or ""] and p.context
        assert p.context in p.source_text and p.answer.rstrip(".") in p.context
        assert p.judge is not None and (p.judge.faithfulness, p.judge.relevance) == (5, 5)
        assert p.judge.reason == GOOD["reason"] and p.judge.model == served.model

    # the others dropped by the judge, the verdict in the reject
    judged = [r for r in first.rejects if r.rule == "judge_rejected"]
    assert len(judged) == 3
    by_question = {r.question: r for r in judged}
    wrong = by_question["Каковы средние содержания золота на месторождении Агинское?"]
    assert wrong.judge and wrong.judge["faithfulness"] == 1 and wrong.judge["relevance"] == 5
    assert "faithfulness 1/5 < 4" in wrong.reason and WRONG["reason"] in wrong.reason
    off = by_question["Когда открыто месторождение Агинское?"]
    assert off.judge and off.judge["relevance"] == 1 and "relevance 1/5 < 4" in off.reason
    assert by_question["Куда вывозятся руды месторождения Кедровое?"].judge["faithfulness"] == 2
    short = [r for r in first.rejects if r.rule == "chunk_too_short"]
    assert [r.chunk_id for r in short] == ["chunk-c"]

    # on disk: verdicts with the kept pairs, rejects with theirs, the report's accounting
    rows = json.loads(out.read_text("utf-8"))
    assert [r["judge"]["faithfulness"] for r in rows] == [5] * len(good)
    rejects = [json.loads(line) for line in
               (out.parent / "qa_rejects.jsonl").read_text("utf-8").splitlines()]
    assert sum(r["rule"] == "judge_rejected" and r["judge"]["model"] == served.model
               for r in rejects) == 3
    report = json.loads((out.parent / "qa_summary.json").read_text("utf-8"))
    teacher, judge = report["teacher"], report["judge"]
    assert teacher["qa_mode"] == "teacher" and teacher["model"] == served.model
    assert teacher["generate"]["chunks"] == 2 and teacher["generate"]["pairs"] == 6
    assert (teacher["requests"], teacher["cache_hits"], teacher["errors"]) == (2, 0, 0)
    assert (judge["requests"], judge["cache_hits"], judge["errors"]) == (6, 0, 0)
    assert (judge["judge_kept"], judge["judge_rejected"]) == (3, 3)
    for usage in (teacher, judge):
        assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
        assert usage["seconds"] > 0
    assert report["pairs_by_generator"] == {f"teacher:{served.model}": 3}
    assert set(report["seconds"]) >= {"teacher", "judge"}
    assert sent == 8  # what the server saw: 2 teacher + 6 judge requests

    # the same run again: everything from the cache, nothing sent, the same outputs
    cache_files = sorted((out.parent / CACHE_DIR_NAME).rglob("*.json"))
    assert len(cache_files) == 8
    before = served.chat_requests()
    second = synthesize_qa(CHUNKS, entities, cfg, out)
    assert served.chat_requests() == before
    again = second.report
    assert again.teacher is not None and again.judge is not None
    assert (again.teacher["requests"], again.teacher["cache_hits"]) == (0, 2)
    assert (again.judge["requests"], again.judge["cache_hits"]) == (0, 6)
    assert again.teacher["prompt_tokens"] == again.judge["completion_tokens"] == 0
    assert json.loads(out.read_text("utf-8")) == rows
    _no_key_in(tmp_path)


def test_hybrid_mode_adds_teacher_pairs_to_local_ones(
    served: Served, key_env: str, tmp_path: Path,
) -> None:
    cfg = _config(served.url, served.model, mode="hybrid", teacher={"cache": False})
    text = CHUNKS[0].text
    start = text.index("золота составляют")
    end = text.index("г/т") + 3
    entities = EntitySet(model_path=None, items=[ChunkEntities(
        chunk_id="chunk-a", doc_id="doc-a",
        entities=[ChunkEntity(label="ORE_COMPONENT", text=text[start:end], confidence=0.99,
                              start=start, end=end)])])
    before = served.chat_requests()
    result = synthesize_qa(CHUNKS, entities, cfg, tmp_path / "qa_pairs.json")
    assert served.chat_requests() - before == 2  # no cache: both chunks asked again
    report = result.report
    by_generator = dict(report.pairs_by_generator)
    teacher_pairs = by_generator.pop(f"teacher:{served.model}")
    assert sum(by_generator.values()) >= 1  # and the local pairs
    # no judge here: the six teacher pairs are kept, except questions a local pair asks
    repeated = [r for r in result.rejects if r.rule == "duplicate_question"
                and r.reason.startswith("a local pair")]
    assert teacher_pairs + len(repeated) == 6 and teacher_pairs >= 4
    assert report.teacher is not None and report.teacher["qa_mode"] == "hybrid"
    assert report.teacher["requests"] == 2 and report.teacher["cache_hits"] == 0
    assert report.judge is None and not (tmp_path / CACHE_DIR_NAME).exists()
    # a chunk's local pairs come first, then its teacher pairs
    chunk_a = [str(p.generator) for p in result.kept.pairs if p.chunk_id == "chunk-a"]
    first = next(k for k, g in enumerate(chunk_a) if g.startswith("teacher:"))
    assert first >= 1 and all(g.startswith("teacher:") for g in chunk_a[first:])


# -- without a server ----------------------------------------------------------------------


def test_modes_need_an_endpoint() -> None:
    with pytest.raises(ValueError, match=r"qa.mode='teacher' needs teacher.base_url"):
        QAConfig(mode="teacher")
    with pytest.raises(ValueError, match=r"qa.judge.enabled needs judge.base_url"):
        QAConfig(judge={"enabled": True})
    # the judge may share the teacher's endpoint or name its own
    QAConfig(judge={"enabled": True}, teacher={"base_url": "http://x/v1", "model": "m"})
    QAConfig(judge={"enabled": True, "base_url": "http://j/v1", "model": "judge"})
    assert QAConfig().mode == "templates" and not QAConfig().judge.enabled


def test_parsing_is_robust() -> None:
    assert parse_json('Вот пары:\n```json\n[{"question": "Q?"}]\n```') == [{"question": "Q?"}]
    assert parse_json('Ответ: {"a": 1} и ещё текст') == {"a": 1}
    assert parse_json("нет JSON") is None
    assert parse_generated('{"pairs": [{"вопрос": "Где?", "ответ": "Там."}]}') == [
        {"вопрос": "Где?", "ответ": "Там."}]
    assert parse_generated('{"question": "Где?", "answer": "Там."}') == [
        {"question": "Где?", "answer": "Там."}]
    v = parse_verdict('```\n{"faithfulness": "4", "relevance": 5.0, "reason": "ок"}\n```', "m")
    assert v is not None and (v.faithfulness, v.relevance, v.reason, v.model) == (4, 5, "ок", "m")
    for bad in ('{"faithfulness": 6, "relevance": 5}', '{"faithfulness": 4}',
                '{"faithfulness": 4.5, "relevance": 5}', "оценка: отлично"):
        assert parse_verdict(bad) is None, bad


def test_pairs_without_judge_keep_their_keys(tmp_path: Path) -> None:
    from geomas.qa import load_qa_pairs, write_qa_pairs
    from geomas.qa.records import JudgeVerdict

    plain = QAPair(question="Где?", answer="Там.", entity_type="X", source_text="Там.",
                   context="Там.")
    judged = plain.model_copy(update={"judge": JudgeVerdict(faithfulness=5, relevance=4)})
    path = write_qa_pairs([plain, judged], tmp_path / "qa_pairs.json")
    rows = json.loads(path.read_text("utf-8"))
    assert "judge" not in rows[0] and rows[1]["judge"]["relevance"] == 4
    assert load_qa_pairs(path) == [plain, judged]


def test_cache_entries_are_whole_or_missing(tmp_path: Path) -> None:
    from geomas.qa.llm import Endpoint

    ep = Endpoint(base_url="http://h/v1/", model="m", api_key_env="K", timeout_s=1,
                  max_retries=0, temperature=0.0, max_tokens=8, workers=1)
    msgs = [{"role": "user", "content": "Привет"}]
    key = ResponseCache.key(ep, msgs)
    # the trailing slash of the API root does not matter; the temperature does
    assert key == ResponseCache.key(
        Endpoint(**{**ep.__dict__, "base_url": "http://h/v1"}), msgs)
    assert key != ResponseCache.key(Endpoint(**{**ep.__dict__, "temperature": 0.5}), msgs)
    cache = ResponseCache(tmp_path)
    assert cache.get(key) is None
    cache.put(key, {"content": "ответ"})
    assert cache.get(key) == {"content": "ответ"}
    cache.path(key).write_text('{"content": "обрыв', encoding="utf-8")  # a torn entry
    assert cache.get(key) is None
    assert not list(tmp_path.rglob("*.tmp"))
