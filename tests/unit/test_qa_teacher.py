"""The LLM teacher through the real openai client against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from geomas.config import QAConfig, TeacherConfig
from geomas.errors import ConfigError
from geomas.ner.labels import GEO_LABELS
from geomas.qa import QAGenerator, QAPair, generate_qa_pairs, write_qa_pairs
from geomas.qa.teacher import (
    MASK,
    TeacherError,
    apply_teacher,
    clean_question,
    grounding,
)
from geomas.records import write_rejects

KEY = "sk-geomas-test-7f3c9e1b-SECRET"
KEY_ENV = "GEOMAS_TEST_TEACHER_KEY"
MODEL = "tiny-teacher"

GROUNDED_AGINSKOE = "Средние содержания золота составляют 43,7 г/т."
UNGROUNDED = "Руды богаты алмазами, платиной и нефтью по данным космической съёмки."
REWRITTEN = "Вопрос: «Какие содержания золота установлены на Агинском месторождении?»"

TEXTS = {
    "Агинское": "Месторождение Агинское расположено в Камчатском крае. Средние содержания "
                "золота составляют 43,7 г/т.",
    "Кедровое": "Месторождение Кедровое расположено на Чукотке. Средние содержания серебра "
                "составляют 466,0 г/т.",
    "Ольховое": "Месторождение Ольховое расположено в Чаунском районе. Средние содержания "
                "меди составляют 0,89 %.",
    "Купол": "Месторождение Купол расположено в Чукотском округе. Средние содержания золота "
             "составляют 12,1 г/т.",
    "Майское": "Месторождение Майское расположено в Чаунском районе. Средние содержания "
               "золота составляют 9,8 г/т.",
}
ENTITY = re.compile(r"(?:золота|серебра|меди) составляют [\d,]+ (?:г/т|%)")


@dataclass
class FakeLLM:
    """A tiny OpenAI-compatible server: POST /v1/chat/completions with canned behaviour."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, body: dict[str, Any], auth: str) -> tuple[int, dict[str, Any]]:
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        context = user.split("Фрагмент отчёта:\n", 1)[1].split("\n\n", 1)[0]
        marker = next((m for m in TEXTS if m in context), "default")
        with self.lock:
            self.calls[marker] += 1
            n = self.calls[marker]
        if marker == "Ольховое":  # a failing upstream that even echoes the credentials
            return 500, {"error": {"message": f"upstream failure for {auth}",
                                   "type": "server_error"}}
        if marker == "Купол" and n == 1:
            return 500, {"error": {"message": "temporary failure", "type": "server_error"}}
        if marker == "Майское":
            content = "   "
        elif "Переформулируй" in system:
            content = REWRITTEN if marker == "Агинское" else "Каков состав руд на участке?"
        elif marker == "Агинское":
            content = GROUNDED_AGINSKOE
        elif marker == "Кедровое":
            content = UNGROUNDED
        else:  # grounded: the context's first sentence
            content = "Ответ: " + context.split(". ")[0] + "."
        return 200, {
            "id": f"cmpl-{len(self.requests)}", "object": "chat.completion", "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }


@pytest.fixture()
def llm() -> Iterator[FakeLLM]:
    fake = FakeLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            auth = self.headers.get("Authorization", "")
            with fake.lock:
                fake.requests.append({"path": self.path, "auth": auth, "body": body})
            status, payload = (
                fake.reply(body, auth) if self.path == "/v1/chat/completions"
                else (404, {"error": {"message": "not found"}})
            )
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 500:
                self.send_header("retry-after-ms", "5")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_port}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture()
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY_ENV


def _template_pairs() -> list[QAPair]:
    qa = QAGenerator(num_pairs=1)
    pairs = []
    for name, text in TEXTS.items():
        ent = ENTITY.search(text)
        assert ent
        res = qa.generate_from_text(
            text, [{"label": "ORE_COMPONENT", "text": ent.group(0), "start": ent.start(),
                    "end": ent.end()}], chunk_id=f"chunk-{name}", doc_id=f"doc-{name}")
        pairs.extend(res.pairs)
    assert len(pairs) == len(TEXTS)
    return pairs


def _teacher(url: str, **kw: Any) -> TeacherConfig:
    base: dict[str, Any] = {"enabled": True, "base_url": url, "model": MODEL,
                            "api_key_env": KEY_ENV, "mode": "answer", "max_retries": 1,
                            "timeout_s": 10, "workers": 3}
    return TeacherConfig(**{**base, **kw})


def _by_chunk(items: list[Any]) -> dict[str, Any]:
    return {x.chunk_id.removeprefix("chunk-"): x for x in items}


def _assert_no_key(paths: list[Path], *texts: str) -> None:
    for p in paths:
        assert KEY not in p.read_text(encoding="utf-8"), p
    for t in texts:
        assert KEY not in t


def test_answer_mode_grounding_errors_and_secrecy(
    llm: FakeLLM, key_env: str, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    pairs = _template_pairs()
    result = apply_teacher(pairs, _teacher(llm.url))

    # the real client sent the key from the environment, to the chat completions route
    assert {r["auth"] for r in llm.requests} == {f"Bearer {KEY}"}
    assert {r["path"] for r in llm.requests} == {"/v1/chat/completions"}
    assert {r["body"]["model"] for r in llm.requests} == {MODEL}
    assert all("по-русски" in r["body"]["messages"][0]["content"] for r in llm.requests)
    assert llm.calls["Купол"] == 2  # one retry after the 500
    assert llm.calls["Ольховое"] == 2

    kept = _by_chunk(result.pairs)
    rejects = _by_chunk(result.rejects)
    assert kept["Агинское"].generator == f"teacher:{MODEL}"
    assert kept["Агинское"].answer == GROUNDED_AGINSKOE
    assert kept["Купол"].generator == f"teacher:{MODEL}"
    assert kept["Купол"].answer in kept["Купол"].context
    # failures keep the template pair (keep_template_on_failure) and are recorded
    for name in ("Кедровое", "Ольховое", "Майское"):
        assert kept[name].generator == "template"
    assert rejects["Кедровое"].rule == "teacher_ungrounded"
    assert UNGROUNDED[:40] in rejects["Кедровое"].reason
    assert rejects["Ольховое"].rule == "teacher_error"
    assert "500" in rejects["Ольховое"].reason and MASK in rejects["Ольховое"].reason
    assert rejects["Майское"].rule == "teacher_invalid"
    assert set(rejects) == {"Кедровое", "Ольховое", "Майское"}
    for r in result.rejects:
        assert r.stage == "qa" and r.qa_id and r.question and r.entity
    usage = {k: result.stats.pop(k) for k in ("prompt_tokens", "completion_tokens", "seconds")}
    assert result.stats == {"model": MODEL, "mode": "answer", "pairs": 5, "requests": 5,
                            "cache_hits": 0, "errors": 1, "teacher": 2, "teacher_error": 1,
                            "teacher_invalid": 1, "teacher_ungrounded": 1}
    # the usage of the four answered requests (the server's canned 10 + 10 tokens each)
    assert usage["prompt_tokens"] == usage["completion_tokens"] == 40 and usage["seconds"] > 0
    assert result.failure_message() is None  # 1 error in 5 is below max_error_ratio 0.5

    files = [write_qa_pairs(result.pairs, tmp_path / "qa_pairs.json"),
             write_rejects(tmp_path / "qa_rejects.jsonl", result.rejects)]
    out, err = capsys.readouterr()
    assert "teacher request for pair" in caplog.text  # the error was logged...
    _assert_no_key(files, caplog.text, out, err)  # ...without the key


def test_failures_can_drop_the_template_pair(llm: FakeLLM, key_env: str) -> None:
    result = apply_teacher(_template_pairs(), _teacher(llm.url, keep_template_on_failure=False,
                                                       max_retries=0))
    assert sorted(_by_chunk(result.pairs)) == ["Агинское"]  # Купол gets no retry here
    assert Counter(r.rule for r in result.rejects) == {
        "teacher_error": 2, "teacher_ungrounded": 1, "teacher_invalid": 1}
    assert result.failure_message() is None
    llm.calls.clear()  # Купол fails once more
    strict = apply_teacher(_template_pairs(), _teacher(llm.url, max_retries=0,
                                                       max_error_ratio=0.3))
    assert strict.failure_message() and "teacher.max_error_ratio" in (
        strict.failure_message() or "")


def test_rewrite_mode_changes_only_the_question(llm: FakeLLM, key_env: str) -> None:
    pairs = _template_pairs()
    result = apply_teacher(pairs, _teacher(llm.url, mode="rewrite"))
    before = _by_chunk(pairs)
    after = _by_chunk(result.pairs)
    assert after["Агинское"].question == (
        "Какие содержания золота установлены на Агинском месторождении?")
    for name in ("Агинское", "Кедровое", "Купол"):
        assert after[name].generator == f"teacher:{MODEL}"
        assert after[name].answer == before[name].answer
        assert after[name].context == before[name].context
        assert after[name].qa_id == before[name].qa_id
    assert all("Переформулируй" in r["body"]["messages"][0]["content"] for r in llm.requests)


def test_missing_key_variable_is_a_config_error(
    llm: FakeLLM, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV):
        apply_teacher(_template_pairs(), _teacher(llm.url))
    assert llm.requests == []


def test_grounding_and_cleanup() -> None:
    ctx = "Средние содержания золота составляют 43,7 г/т."
    assert grounding("Содержания золота: 43,7 г/т", ctx) == 1.0
    assert grounding("Золото и алмазы", ctx) == 0.0
    assert grounding("", ctx) == 0.0
    assert clean_question("Вопрос: «Где находится месторождение?»\nПояснение") == (
        "Где находится месторождение?")


@pytest.fixture(scope="module")
def ner_and_chunks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A random-head tiny token classifier and a chunks.json of the texts above."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from geomas.models.tiny import make_tiny_ner

    root = tmp_path_factory.mktemp("qa_teacher")
    base = make_tiny_ner(root / "base", list(TEXTS.values()) * 3, seed=0, vocab_size=300)
    labels = ["O"] + [f"{p}-{t}" for t in GEO_LABELS for p in ("B", "I")]
    torch.manual_seed(1)
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)})
    model.save_pretrained(root / "model")
    AutoTokenizer.from_pretrained(base).save_pretrained(root / "model")
    chunks = [{"chunk_id": f"c{k}", "doc_id": f"d{k}", "text": t}
              for k, t in enumerate(TEXTS.values())]
    (root / "chunks.json").write_text(json.dumps(chunks, ensure_ascii=False), encoding="utf-8")
    return root / "model", root / "chunks.json"


def test_generate_qa_pairs_with_teacher(
    llm: FakeLLM, key_env: str, ner_and_chunks: tuple[Path, Path], tmp_path: Path,
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    model, chunks = ner_and_chunks
    cfg = QAConfig(teacher=_teacher(llm.url, max_retries=0, max_error_ratio=0.9))
    out = tmp_path / "qa_pairs.json"
    summary = generate_qa_pairs(chunks, model, out, num_pairs=2, config=cfg, progress=False).report
    assert summary.teacher is not None and summary.teacher["requests"] == len(llm.requests)
    assert summary.pairs_by_generator.get(f"teacher:{MODEL}", 0) >= 1
    assert summary.rejects_by_rule.get("teacher_error", 0) >= 1  # the Ольховое chunk
    rows = json.loads(out.read_text("utf-8"))
    assert len(rows) == summary.pairs
    files = [out, tmp_path / "qa_rejects.jsonl", tmp_path / "qa_summary.json"]

    # an unreachable endpoint: every request fails, the run fails after writing its outputs
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    down = tmp_path / "down" / "qa_pairs.json"
    cfg_down = QAConfig(teacher=_teacher(dead, max_retries=0, timeout_s=5))
    with pytest.raises(TeacherError, match="max_error_ratio"):
        generate_qa_pairs(chunks, model, down, num_pairs=2, config=cfg_down, progress=False)
    kept = json.loads(down.read_text("utf-8"))
    assert kept and not any(r["generator"].startswith("teacher:") for r in kept)  # all local
    files += [down, down.parent / "qa_rejects.jsonl", down.parent / "qa_summary.json"]
    out_text, err_text = capsys.readouterr()
    _assert_no_key(files, caplog.text, out_text, err_text)
