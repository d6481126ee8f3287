"""The IO and record layer: atomic writes, the JSON/JSONL reader, `Reject`, typed reports, text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from geomas.clean import clean_dataset
from geomas.clean.stage import clean_qa_pairs
from geomas.config import CleanConfig, QAConfig, SplitConfig
from geomas.errors import IngestError, InputError
from geomas.formats import Example, format_instruct_dataset, read_examples
from geomas.ingest import ingest_folder
from geomas.io import atomic_write_text, load_records, write_json, write_jsonl
from geomas.ner.extract import ChunkEntities, ChunkEntity, EntitySet
from geomas.qa import QAPair, synthesize_qa
from geomas.records import STAGE_KEYS, Reject
from geomas.report import stage_counts
from geomas.split import split_examples
from geomas.text import sentence_spans, token_spans, words

# --- atomic writes -------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_json(tmp_path / "sub" / "report.json", {"n": 1})  # the folder is created
    before = path.read_bytes()
    assert before == b'{\n  "n": 1\n}\n'
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, {"n": object()})
    with pytest.raises(TypeError):
        write_jsonl(path, [{"ok": 1}, {"bad": {1, 2}}])

    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "half")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]


def test_json_writers_keep_cyrillic_and_dump_models(tmp_path: Path) -> None:
    row = Example(id="1", instruction="Где?", output="Золото")
    text = write_jsonl(tmp_path / "a.jsonl", [row, {"x": "ё"}]).read_text(encoding="utf-8")
    assert text.splitlines()[1] == '{"x": "ё"}' and "\\u" not in text
    assert json.loads(text.splitlines()[0])["instruction"] == "Где?"
    assert write_json(tmp_path / "b.json", [1], indent=1, end="").read_text() == "[\n 1\n]"


# --- the reader ----------------------------------------------------------------------------------


def test_reader_names_the_file_and_line_of_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.jsonl: line 4 is not valid JSON .*per line"):
        load_records(path)
    path.write_text('[\n  {"a": 1},\n  {"a": 2}\n  {"a": 3}\n]\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.jsonl: line 4 is not valid JSON"):
        load_records(path)
    path.write_bytes(b'{"a": 1}\n{"a": "\xe0"}\n')
    with pytest.raises(InputError, match=r"line 2 is not UTF-8.*save the file as UTF-8"):
        load_records(path)
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"data\.jsonl is neither a JSON list .* nor JSON Lines"):
        load_records(path)
    with pytest.raises(InputError, match="does not exist"):
        load_records(tmp_path / "missing.json")


def test_reader_finds_the_container_and_each_records_line(tmp_path: Path) -> None:
    listed = tmp_path / "x.jsonl"
    listed.write_text('[\n  {"a": 1},\n\n  {"a": 2}\n]', encoding="utf-8")
    container, records = load_records(listed)
    assert container == "json" and [(r.line, r.index, r.value) for r in records] == [
        (2, 0, {"a": 1}), (4, 1, {"a": 2})
    ]
    lines = tmp_path / "y.json"
    lines.write_text('\n{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert [r.where() for r in load_records(lines)[1]] == ["line 2: record 0", "line 4: record 1"]
    empty = tmp_path / "z.json"
    empty.write_text(" \n", encoding="utf-8")
    assert load_records(empty) == ("jsonl", [])


# --- one alpaca reader ---------------------------------------------------------------------------


def test_one_reader_keeps_alpaca_provenance_for_every_caller(tmp_path: Path) -> None:
    path = tmp_path / "gui.jsonl"
    record = {"instruction": "Вопрос", "input": "", "output": "Ответ", "qa_id": "q1",
              "metadata": {"provider": "openai", "mode": "polish", "version": "1.0"}}
    write_jsonl(path, [record, {**record, "id": 7}])
    detected, by_position = read_examples(path), read_examples(path, "alpaca", ids="position")
    assert [e.id for e in detected] == ["gui:0", "7"]
    assert [e.id for e in by_position] == ["gui-1", "7"]
    for ex in (detected[0], by_position[0]):
        assert ex.meta == {"provider": "openai", "mode": "polish", "version": "1.0", "qa_id": "q1"}
    write_jsonl(path, [{**record, "metadata": "openai"}])
    with pytest.raises(InputError, match=r"line 1: record 0: 'metadata' must be an object"):
        read_examples(path)


# --- one Reject for every stage's rejects file ---------------------------------------------------


def _qa_pair(n: int, label: str, doc: str) -> dict[str, Any]:
    return QAPair(question=f"Вопрос {n}?", answer=f"ответ {n}", entity_type=label,
                  source_text=f"Текст {n}: ответ {n}.", context=f"Текст {n}: ответ {n}.",
                  doc_id=doc).model_dump()


def _round_trip(path: Path, stage: str) -> list[Reject]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, path
    rejects = [Reject.model_validate_json(line) for line in lines]
    for line, rej in zip(lines, rejects, strict=True):
        assert rej.stage == stage
        assert json.loads(line) == rej.model_dump()  # read back, written again: the same
        assert list(json.loads(line))[: len(STAGE_KEYS[stage])] == list(STAGE_KEYS[stage])
    return rejects


def test_every_stage_writes_the_one_reject_model_and_report_reads_typed_summaries(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    src = tmp_path / "docs"
    src.mkdir()
    (src / "empty.md").write_bytes(b"")
    (src / "notes.xyz").write_text("not a document", encoding="utf-8")
    with pytest.raises(IngestError, match="2 of 2 files were rejected"):
        ingest_folder(src, out, progress=False)
    ingest = _round_trip(out / "rejects.jsonl", "ingest")
    assert {r.rule for r in ingest} == {"empty_file", "unsupported_type"}
    assert ingest[0].model_dump()["doc_id"] is None  # a null the file has always carried

    chunk = {"chunk_id": "c1", "doc_id": "d1", "text": "Золото 5 г/т."}
    entity = ChunkEntity(label="ORE_COMPONENT", text="Золото", confidence=1.0, start=0, end=6)
    entities = EntitySet(model_path=None, items=[
        ChunkEntities(chunk_id="lost", doc_id="d1", entities=[entity])])
    synthesize_qa([chunk], entities, QAConfig(), out / "qa_pairs.json")
    (qa,) = _round_trip(out / "qa_rejects.jsonl", "qa")
    assert qa.rule == "unknown_chunk" and qa.model_dump()["template_id"] is None

    pairs = [QAPair.model_validate(_qa_pair(n, "ORE", f"d{n % 5}")) for n in range(12)]
    pairs.append(QAPair.model_validate(_qa_pair(0, "ORE", "d0")))  # an exact duplicate
    clean_qa_pairs(pairs, CleanConfig(profile="generic"), out)
    (clean,) = _round_trip(out / "clean_rejects.jsonl", "clean")
    assert clean.rule == "exact_dup" and clean.model_dump()["duplicate_of"] == clean.duplicate_of

    examples = [Example(id=f"e{n}", instruction="В?", output="О", label="A", group=f"g{n}")
                for n in range(20)] + [Example(id="rare", instruction="В?", output="О", label="R")]
    split = split_examples(examples, SplitConfig(policy="drop", min_samples_per_class=2))
    split.write_reports(out)
    (dropped,) = _round_trip(out / "split_rejects.jsonl", "split")
    assert dropped.id == "rare" and dropped.rule == "min_samples"

    qa_file = write_json(tmp_path / "qa.json", [_qa_pair(n, "ORE", f"d{n % 4}") for n in range(20)]
                         + [{"question": "Где?", "answer": "", "entity_type": "ORE"}])
    format_instruct_dataset(qa_file, tmp_path / "fmt" / "ds.json")
    (invalid,) = _round_trip(tmp_path / "fmt" / "ds_rejects.jsonl", "format")
    assert invalid.rule == "qa_invalid" and invalid.reason.endswith("answer is missing or empty")

    counts = {s.stage.split()[0]: (s.kept, s.rejected, s.by_rule) for s in stage_counts(out)}
    assert counts == {
        "ingest": (0, 2, {"empty_file": 1, "unsupported_type": 1}),
        "qa": (0, 1, {"unknown_chunk": 1}),
        "clean": (12, 1, {"exact_dup": 1}),
        "split": (20, 1, {"min_samples": 1}),
    }
    (out / "qa_summary.json").write_text('{"pairs": 3}', encoding="utf-8")
    with pytest.raises(ValidationError, match="QASummary"):  # a typed model, not dict keys
        stage_counts(out)


def test_clean_dataset_rejects_file_keeps_duplicate_of_only_when_set(tmp_path: Path) -> None:
    src = tmp_path / "raw.jsonl"
    row = {"id": "a", "instruction": "Опиши руды месторождения.", "input": "",
           "output": "Золото 5 г/т и серебро 10 г/т."}
    write_jsonl(src, [row, {**row, "id": "b"}, {**row, "id": "c", "output": ""}])
    clean_dataset(src, tmp_path / "clean.jsonl", "generic")
    rows = [r.model_dump() for r in _round_trip(tmp_path / "clean_rejects.jsonl", "clean")]
    rows.sort(key=lambda r: r["id"])
    assert rows == [
        {"stage": "clean", "rule": "exact_dup", "reason": rows[0]["reason"], "id": "b",
         "duplicate_of": "a"},
        {"stage": "clean", "rule": "empty", "reason": rows[1]["reason"], "id": "c"},
    ]


# --- one sentence splitter and one tokeniser -----------------------------------------------------


def test_one_tokeniser_with_documented_rules() -> None:
    text = "Золото 43,7 г/т."
    pieces = {rule: [text[s:e] for s, e in token_spans(text, rule)]  # type: ignore[arg-type]
              for rule in ("words", "words_and_marks", "razdel")}
    assert pieces == {
        "words": ["Золото", "43", "7", "г", "т"],
        "words_and_marks": ["Золото", "43", ",", "7", "г", "/", "т", "."],
        "razdel": ["Золото", "43,7", "г", "/", "т", "."],
    }
    assert words("Золото ЗОЛОТО") == ["золото", "золото"]


def test_one_sentence_splitter_with_paragraph_and_pdf_variants() -> None:
    text = "Первое предложение\n\nвторое. Третье.\n2. Геология\nРуды кварцевые."
    plain = [text[s:e] for s, e in sentence_spans(text)]
    by_paragraph = [text[s:e] for s, e in sentence_spans(text, paragraphs=True)]
    pdf = [text[s:e] for s, e in sentence_spans(text, pdf=True)]
    assert by_paragraph[:2] == ["Первое предложение", "второе."]
    assert len(plain) < len(by_paragraph)  # razdel alone runs across the blank line
    assert "2. Геология" in pdf and "Руды кварцевые." in pdf
