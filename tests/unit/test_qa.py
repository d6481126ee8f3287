"""Template QA synthesis on the sample corpus: invariants, variety, determinism, files, rejects."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from geomas.config import NerInferenceConfig, QAConfig
from geomas.errors import InputError
from geomas.ner.extract import ChunkEntities, ChunkEntity, EntitySet
from geomas.ner.labels import GEO_ENTITY_TYPES, GEO_LABELS
from geomas.qa import (
    TASK_DESCRIPTIONS,
    TEMPLATES,
    ChunkRecord,
    QAGenerator,
    QAPair,
    generate_qa_pairs,
    load_qa_pairs,
    qa_to_example,
    write_qa_pairs,
)
from geomas.qa.records import LINEAGE_KEYS, ORIGINAL_KEYS, QA_REJECTS_FILE, QA_SUMMARY_FILE
from geomas.qa.templates import placeholders
from geomas.qa.text import clause_span, context_window, find_deposit_name
from geomas.records import write_rejects
from geomas.text import sentence_spans

# --- fixtures ------------------------------------------------------------------------------


#: template questions only (no answer-first questions): the tests of the template path
TEMPLATES_ONLY = QAConfig(question_kinds={})

def _ls_tasks(corpus: Path) -> list[dict[str, Any]]:
    path = corpus / "annotations" / "label_studio_export.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def gold(sample_corpus: Path) -> tuple[list[ChunkRecord], EntitySet]:
    """Label Studio tasks of the sample corpus as chunks, their gold spans as entities."""
    chunks, items = [], []
    for task in _ls_tasks(sample_corpus):
        cid = f"task-{task['id']}"
        doc = task["data"]["doc_name"]
        chunks.append(ChunkRecord(chunk_id=cid, doc_id=doc, text=task["data"]["text"]))
        ents = [
            ChunkEntity(label=r["value"]["labels"][0], text=r["value"]["text"], confidence=1.0,
                        start=r["value"]["start"], end=r["value"]["end"])
            for r in task["annotations"][0]["result"]
        ]
        items.append(ChunkEntities(chunk_id=cid, doc_id=doc, entities=ents))
    return chunks, EntitySet(model_path=None, items=items)


def _flex(span: str) -> str:
    """A regex for a gold span in PDF-extracted text (line breaks, dashes normalised)."""
    out = []
    for part in re.split(r"(\s+)", span):
        if part.isspace():
            out.append(r"\s+")
        else:
            out.append("".join("[-–—]" if ch in "-–—" else re.escape(ch) for ch in part))
    return "".join(out)


@pytest.fixture(scope="module")
def ingested(
    sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[ChunkRecord], EntitySet]:
    """Real chunks from ingesting the sample corpus; gold spans located in the chunk texts."""
    from geomas.ingest import ingest_folder
    from geomas.qa import read_chunk_records

    out = tmp_path_factory.mktemp("qa_ingest")
    ingest_folder(sample_corpus / "docs", out, progress=False)
    chunks = read_chunk_records(out / "chunks.json")
    sources = {c["chunk_id"]: c["source"] for c in json.loads((out / "chunks.json").read_text())}
    spans: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for task in _ls_tasks(sample_corpus):
        for r in task["annotations"][0]["result"]:
            spans[task["data"]["doc_name"]].add((r["value"]["labels"][0], r["value"]["text"]))
    items = []
    for c in chunks:
        found: dict[tuple[int, int], ChunkEntity] = {}
        for label, span in sorted(spans[sources[c.chunk_id]]):
            for m in re.finditer(_flex(span), c.text):
                found.setdefault((m.start(), m.end()), ChunkEntity(
                    label=label, text=m.group(0), confidence=1.0, start=m.start(), end=m.end()))
        items.append(ChunkEntities(chunk_id=c.chunk_id, doc_id=c.doc_id,
                                   entities=sorted(found.values(), key=lambda e: e.start)))
    return out, chunks, EntitySet(model_path=None, items=items)


def _check_invariants(pairs: list[QAPair], max_context: int = 300) -> None:
    assert pairs
    for p in pairs:
        assert p.answer and p.answer in p.context, p
        assert p.answer in p.source_text
        assert p.context in p.source_text
        assert len(p.context) <= max_context
        assert p.entity_text and p.entity_text in p.answer
        assert p.source_text[p.entity_start:p.entity_end] == p.entity_text
        assert p.question.endswith("?") and re.search("[а-яё]", p.question)
        assert "{" not in p.question and "«»" not in p.question
        assert p.generator == "template"
        assert p.template_id and p.template_id.split(".")[0] == p.entity_type
        assert p.context == p.context.strip() and p.answer == p.answer.strip()
    assert len({p.qa_id for p in pairs}) == len(pairs)


# --- template QA on gold entities ------------------------------------------------------------


def test_original_constructor_gives_grounded_pairs(
    gold: tuple[list[ChunkRecord], EntitySet],
) -> None:
    chunks, entities = gold
    qa = QAGenerator(add_context=True, max_context_length=300, config=TEMPLATES_ONLY)
    result = qa.generate(chunks, entities)
    _check_invariants(result.pairs)
    per_chunk = Counter(p.chunk_id for p in result.pairs)
    assert max(per_chunk.values()) == 2  # num_pairs default of the original --num-pairs
    assert len(per_chunk) == len(chunks)
    # nothing dropped silently: every entity is a pair or a reject
    assert len(result.pairs) + len(result.rejects) == result.n_entities
    assert result.n_entities == sum(len(i.entities) for i in entities.items)
    for chunk_id, n in per_chunk.items():
        kinds = [p.entity_type for p in result.pairs if p.chunk_id == chunk_id]
        assert len(set(kinds)) == n, "diverse types first"


def test_three_templates_per_type_across_the_corpus(
    gold: tuple[list[ChunkRecord], EntitySet],
) -> None:
    chunks, entities = gold
    result = QAGenerator(num_pairs=100, config=TEMPLATES_ONLY).generate(chunks, entities)
    _check_invariants(result.pairs)
    used: dict[str, set[str]] = defaultdict(set)
    for p in result.pairs:
        used[p.entity_type].add(p.template_id or "")
    assert set(used) == set(GEO_LABELS)
    assert {t: len(ids) for t, ids in used.items() if len(ids) < 3} == {}
    # the {deposit} templates are filled with the deposit of each document
    with_deposit = [p for p in result.pairs if "{deposit}" in TEMPLATES[p.entity_type][
        int((p.template_id or "0.0").rsplit(".", 1)[1])]]
    assert with_deposit
    assert all(re.search(r"[А-ЯЁ][а-яё]+ое\b", p.question) for p in with_deposit)


def test_templates_and_task_descriptions_cover_all_types() -> None:
    from geomas.qa.generate import PROFILE_LABELS

    assert list(TASK_DESCRIPTIONS) == [*GEO_ENTITY_TYPES, *PROFILE_LABELS.values()]
    assert list(TEMPLATES) == list(GEO_ENTITY_TYPES)
    for label, variants in TEMPLATES.items():
        assert len(set(variants)) >= 3
        assert sum("deposit" not in placeholders(t) for t in variants) >= 3, label
        assert all(t.endswith("?") for t in variants)
        assert all(placeholders(t) <= {"entity", "deposit"} for t in variants)
    assert TASK_DESCRIPTIONS["ORE_COMPONENT"] == "Опиши содержания полезных компонентов в руде."


def test_deterministic_per_seed(gold: tuple[list[ChunkRecord], EntitySet]) -> None:
    chunks, entities = gold
    runs = [QAGenerator(seed=s).generate(chunks, entities) for s in (5, 5, 6)]
    dumps = [[p.model_dump() for p in r.pairs] for r in runs]
    assert dumps[0] == dumps[1]
    assert [r.model_dump() for r in runs[0].rejects] == [r.model_dump() for r in runs[1].rejects]
    assert dumps[0] != dumps[2]
    # ids depend on the chunk, span and template only
    again = QAGenerator(seed=5).generate(list(reversed(chunks)), entities)
    assert {p.qa_id for p in again.pairs} == {p.qa_id for p in runs[0].pairs}


def test_num_pairs_prefers_diverse_types_then_new_answers() -> None:
    text = ("Средние содержания составляют: золота 43,7 г/т, серебра 19,1 г/т. "
            "Прогнозные ресурсы золота оцениваются в 12 т. "
            "Рудные тела представлены кварцевыми жилами. Жила Северная прослежена на 317 м.")
    ents = [
        {"label": "ORE_COMPONENT", "text": "золота 43,7 г/т", "confidence": 0.99},
        {"label": "ORE_COMPONENT", "text": "серебра 19,1 г/т", "confidence": 0.98},
        {"label": "RESOURCE_POTENTIAL", "text": "ресурсы золота оцениваются в 12 т",
         "confidence": 0.9},
        {"label": "ORE_BODIES", "text": "кварцевыми жилами", "confidence": 0.9},
        {"label": "ORE_BODIES", "text": "Жила Северная прослежена на 317 м", "confidence": 0.8},
    ]
    for n in (1, 3, 4, 5):
        res = QAGenerator(num_pairs=n).generate_from_text(text, ents)
        assert len(res.pairs) == min(n, 5)
        kinds = [p.entity_type for p in res.pairs]
        assert len(set(kinds)) == min(n, 3)
        assert len(res.pairs) + len(res.rejects) == 5
        assert {r.rule for r in res.rejects} <= {"over_num_pairs"}
        if n == 4:  # the 4th pair comes from a sentence not used yet
            assert len({p.answer for p in res.pairs}) == 4


def test_every_rejected_candidate_has_a_rule_and_reason() -> None:
    long_sentence = "Руды " + ", ".join(["сульфидные"] * 40) + " и кварцевые."
    text = ("Месторождение Агинское расположено в Камчатском крае. Содержания золота достигают "
            f"43,7 г/т. {long_sentence}")
    ents = [
        {"label": "GENERAL_INFO", "text": "Камчатском крае", "start": 37, "end": 52,
         "confidence": 0.95},
        {"label": "GENERAL_INFO", "text": "Камчатском крае", "start": 37, "end": 52,
         "confidence": 0.95},
        {"label": "ORE_COMPONENT", "text": "золота достигают 43,7 г/т", "confidence": 0.2},
        {"label": "NOT_A_TYPE", "text": "Агинское", "confidence": 0.9},
        {"label": "ORE_COMPONENT", "text": "платины 5 г/т", "confidence": 0.9},
        {"label": "ORE_COMPOSITION", "text": "кварцевые", "confidence": 0.9},
        {"label": "ORE_COMPONENT", "text": "", "confidence": 0.9},
    ]
    qa = QAGenerator(max_context_length=120, min_entity_confidence=0.5)
    res = qa.generate_from_text(text, ents, chunk_id="c1", doc_id="d1")
    rules = Counter(r.rule for r in res.rejects)
    assert rules == {"duplicate_entity": 1, "low_confidence": 1, "unknown_entity_type": 1,
                     "entity_not_in_text": 2, "answer_too_long": 1}
    assert len(res.pairs) == 1 and res.pairs[0].entity_text == "Камчатском крае"
    for r in res.rejects:
        assert r.stage == "qa" and r.reason and r.chunk_id == "c1" and r.doc_id == "d1"
        assert r.entity is not None and "label" in r.entity
    too_long = next(r for r in res.rejects if r.rule == "answer_too_long")
    assert "max_context_length=120" in too_long.reason


def test_an_entity_that_is_most_of_its_answer_stays_out_of_the_question() -> None:
    text = "Предварительная разведка выполнялась в 1983–1985 гг. Работы продолжались."
    templates = {"STUDY_INFO": ("Что сообщается о работах: «{entity}»?",
                                "Когда и какими работами изучалось месторождение?")}
    qa = QAGenerator(templates=templates, config=QAConfig(question_kinds={}, answer_types={}))
    whole = [{"label": "STUDY_INFO", "text": "Предварительная разведка выполнялась в 1983–1985 гг"}]
    (pair,) = qa.generate_from_text(text, whole).pairs
    assert pair.question == "Когда и какими работами изучалось месторождение?"
    # a short entity may still be named in the question
    short = [{"label": "STUDY_INFO", "text": "Предварительная разведка"}]
    assert any("«Предварительная разведка»" in p.question for seed in range(8) for p in QAGenerator(
        templates=templates, config=QAConfig(question_kinds={}, answer_types={}, seed=seed),
    ).generate_from_text(text, short).pairs)


def test_duplicate_questions_in_a_chunk_are_rejected() -> None:
    text = "Из жильных минералов преобладают кварц и хлорит. Отмечаются кальцит и барит."
    ents = [{"label": "MINERALOGICAL", "text": t} for t in ("кварц", "хлорит", "кальцит")]
    qa = QAGenerator(num_pairs=10, templates={"MINERALOGICAL": ("Каков минеральный состав руд?",
                                                                "Какие минералы описаны?")})
    res = qa.generate_from_text(text, ents)
    assert len({p.question for p in res.pairs}) == len(res.pairs) == 2
    assert [r.rule for r in res.rejects] == ["duplicate_question"]


def test_clause_mode_answers_and_word_snapped_context() -> None:
    text = ("Средние по месторождению содержания составляют: серебра 466,0 г/т, свинца 4,22 %; "
            "прочие компоненты не оценивались.")
    ents = [{"label": "ORE_COMPONENT", "text": "серебра 466,0 г/т"},
            {"label": "ORE_COMPONENT", "text": "свинца 4,22 %"}]
    res = QAGenerator(answer_mode="clause", num_pairs=5,
                      config=TEMPLATES_ONLY).generate_from_text(text, ents)
    answers = {p.entity_text: p.answer for p in res.pairs}
    assert answers == {
        "серебра 466,0 г/т": "Средние по месторождению содержания составляют: серебра 466,0 г/т",
        "свинца 4,22 %": "свинца 4,22 %",
    }
    # a clause in a sentence longer than the limit: the context is cut at word boundaries
    long_text = ("Рудные тела сложены " + "кварцевыми, " * 30 + "золото 9 г/т, "
                 + "сульфидными, " * 30 + "агрегатами.")
    res = QAGenerator(answer_mode="clause", max_context_length=60).generate_from_text(
        long_text, [{"label": "ORE_COMPONENT", "text": "золото 9 г/т"}])
    (pair,) = res.pairs
    assert pair.answer == "золото 9 г/т"
    assert pair.answer in pair.context and len(pair.context) <= 60
    start = long_text.index(pair.context)
    end = start + len(pair.context)
    assert start == 0 or long_text[start - 1] == " "
    assert end == len(long_text) or long_text[end] in " ,"


def test_without_context_and_from_entities_without_offsets() -> None:
    text = "Месторождение Купол расположено в Чукотском автономном округе. Золото 12 г/т."
    res = QAGenerator(add_context=False).generate_from_text(
        text, [{"label": "GENERAL_INFO", "text": "Чукотском автономном округе"}])
    (pair,) = res.pairs
    assert pair.context == ""
    assert pair.answer == "Месторождение Купол расположено в Чукотском автономном округе."
    assert pair.entity_start == text.index("Чукотском")


def test_sentence_spans_on_pdf_text() -> None:
    text = ("Отчёт о результатах работ\nна Кедровом месторождении\n1. Общие сведения\n"
            "В административном отношении месторождение находится в Билибинском\nрайоне. "
            "Ближайший пункт - г. Билибино, связанный\nдорогой. Разведка выполнена в 1975 г. "
            "Билибинской партией (Фролов П. Е., 1975).\n2. Геологическая позиция\n"
            "На площади развиты риолиты. Коэффициенты концентрации достигают\n90. "
            "Бортовое содержание серебра 39,7 г/т.\nПрогнозные ресурсы оцениваются в 876,7 т.")
    got = [text[s:e] for s, e in sentence_spans(text, pdf=True)]
    assert "1. Общие сведения" in got or "Общие сведения" in got
    assert "2. Геологическая позиция" in got
    assert ("В административном отношении месторождение находится в Билибинском\nрайоне."
            in got)
    assert "Ближайший пункт - г. Билибино, связанный\nдорогой." in got
    assert "Разведка выполнена в 1975 г. Билибинской партией (Фролов П. Е., 1975)." in got
    assert "Коэффициенты концентрации достигают\n90." in got
    assert "Бортовое содержание серебра 39,7 г/т." in got
    assert "Прогнозные ресурсы оцениваются в 876,7 т." in got
    assert all(s == s.strip() for s in got)


def test_context_window_is_whole_sentences_within_the_limit() -> None:
    text = "Первое предложение. Второе предложение тут. Третье с ответом. Четвёртое. Пятое."
    sents = sentence_spans(text, pdf=True)
    ans = (text.index("Третье"), text.index("Третье") + len("Третье с ответом."))
    for limit in (17, 40, 60, 200):
        win = context_window(text, sents, ans, limit)
        assert win is not None
        s, e = win
        assert s <= ans[0] and e >= ans[1] and e - s <= limit
        assert text[s:e].endswith(".")
    assert context_window(text, sents, ans, 10) is None
    assert clause_span(text, sents[2], ans[0], ans[0] + 6) == (ans[0], ans[1] - 1)


def test_find_deposit_name() -> None:
    assert find_deposit_name(["В административном отношении Кедровое серебро-полиметаллическое\n"
                              "месторождение находится на Чукотке."]) == "Кедровое"
    assert find_deposit_name(["Месторождение Купол расположено в 90 км.",
                              "Месторождение Купол открыто в 1996 г."]) == "Купол"
    assert find_deposit_name(["Данное месторождение изучено слабо. Это данное месторождение."
                              ]) is None
    assert find_deposit_name(["Отчёт по месторождению Агинскому."]) is None


# --- files ------------------------------------------------------------------------------------


def test_qa_pairs_json_keys_and_round_trip(
    gold: tuple[list[ChunkRecord], EntitySet], tmp_path: Path,
) -> None:
    chunks, entities = gold
    result = QAGenerator().generate(chunks[:6], entities)
    path = write_qa_pairs(result.pairs, tmp_path / "qa_pairs.json")
    raw = path.read_text(encoding="utf-8")
    assert "\\u04" not in raw and "месторожд" in raw  # UTF-8, not escaped
    rows = json.loads(raw)
    assert isinstance(rows, list) and len(rows) == len(result.pairs)
    for row in rows:
        assert list(row) == [*ORIGINAL_KEYS, *LINEAGE_KEYS]
    assert load_qa_pairs(path) == result.pairs
    rej = write_rejects(tmp_path / QA_REJECTS_FILE, result.rejects)
    lines = [json.loads(line) for line in rej.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(result.rejects) > 0
    assert all(r["stage"] == "qa" and r["rule"] and r["reason"] for r in lines)


def test_load_reads_the_original_minimal_schema(tmp_path: Path) -> None:
    original = [{
        "question": "Каковы содержания полезных компонентов в золота 43,7 г/т?",
        "answer": "золота 43,7 г/т, серебра 19,1 г/т",
        "entity_type": "ORE_COMPONENT",
        "source_text": "Месторождение Агинское. Средние содержания: золота 43,7 г/т, серебра "
                       "19,1 г/т.",
        "context": "Средние содержания: золота 43,7 г/т, серебра 19,1 г/т.",
    }]
    path = tmp_path / "qa_pairs.json"
    path.write_text(json.dumps(original, ensure_ascii=False), encoding="utf-8")
    (pair,) = load_qa_pairs(path)
    assert pair.question == original[0]["question"] and pair.chunk_id is None
    assert pair.qa_id and load_qa_pairs(path)[0].qa_id == pair.qa_id
    ex = qa_to_example(pair)
    assert ex.instruction == ("Опиши содержания полезных компонентов в руде.\n\nВопрос: "
                              + original[0]["question"])
    assert ex.input == original[0]["context"] and ex.output == original[0]["answer"]
    path.write_text(json.dumps([{"question": "Где?"}]), encoding="utf-8")
    with pytest.raises(InputError, match="QA pair #0"):
        load_qa_pairs(path)
    with pytest.raises(InputError, match="does not exist"):
        load_qa_pairs(tmp_path / "missing.json")


def test_qa_to_example_carries_lineage(gold: tuple[list[ChunkRecord], EntitySet]) -> None:
    chunks, entities = gold
    pair = QAGenerator(config=TEMPLATES_ONLY).generate(chunks[:1], entities).pairs[0]
    ex = qa_to_example(pair)
    assert ex.id == pair.qa_id
    assert ex.instruction == f"{TASK_DESCRIPTIONS[pair.entity_type]}\n\nВопрос: {pair.question}"
    assert (ex.input, ex.output, ex.label, ex.group) == (
        pair.context, pair.answer, pair.entity_type, pair.doc_id)
    assert ex.meta["chunk_id"] == pair.chunk_id and ex.meta["template_id"] == pair.template_id
    assert ex.meta["generator"] == "template" and ex.meta["entity_start"] == pair.entity_start


# --- real chunks from PDFs/DOCX --------------------------------------------------------------


def test_pairs_on_ingested_chunks(ingested: tuple[Path, list[ChunkRecord], EntitySet]) -> None:
    _, chunks, entities = ingested
    assert sum(len(i.entities) for i in entities.items) > 200
    result = QAGenerator(num_pairs=50, config=TEMPLATES_ONLY).generate(chunks, entities)
    _check_invariants(result.pairs)
    assert len({p.entity_type for p in result.pairs}) == 17
    for p in result.pairs:  # section headings are not glued to answers
        assert not re.match(r"\d{1,2}\.\s+[А-ЯЁ]", p.answer), p.answer
    assert len(result.pairs) + len(result.rejects) == result.n_entities
    rules = Counter(r.rule for r in result.rejects)
    assert set(rules) <= {"sentence_fragment", "answer_too_long", "duplicate_question",
                          "answer_debris", "answer_type_mismatch"}
    # gold entities: the answer-type gates drop only the odd pair (a title glued to a heading,
    # a list of components asked about as grades)
    assert rules["answer_debris"] + rules["answer_type_mismatch"] <= 0.03 * result.n_entities
    assert len(result.pairs) > 0.8 * result.n_entities


@pytest.fixture(scope="module")
def random_ner(tmp_path_factory: pytest.TempPathFactory, sample_corpus: Path) -> Path:
    """A tiny token classifier with a random head: real inference code, arbitrary entities."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from geomas.models.tiny import corpus_texts, make_tiny_ner

    root = tmp_path_factory.mktemp("qa_ner")
    base = make_tiny_ner(root / "base", corpus_texts(sample_corpus), seed=0)
    labels = ["O"] + [f"{p}-{t}" for t in GEO_LABELS for p in ("B", "I")]
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)})
    model.save_pretrained(root / "model")
    AutoTokenizer.from_pretrained(base).save_pretrained(root / "model")
    return root / "model"


def test_generate_qa_pairs_writes_pairs_rejects_and_summary(
    ingested: tuple[Path, list[ChunkRecord], EntitySet], random_ner: Path, tmp_path: Path,
) -> None:
    chunks_dir, chunks, _ = ingested
    out = tmp_path / "qa" / "qa_pairs.json"
    cfg = QAConfig(seed=3, min_entity_confidence=0.02, question_kinds={})
    # a random head is unsure of everything: no NER confidence floor
    ner_cfg = NerInferenceConfig(min_confidence=0.0)
    summary = generate_qa_pairs(chunks_dir / "chunks.json", random_ner, out, num_pairs=3,
                                config=cfg, ner_config=ner_cfg, progress=False).report
    pairs = load_qa_pairs(out)
    rejects_text = (out.parent / QA_REJECTS_FILE).read_text("utf-8")
    rejects = [json.loads(x) for x in rejects_text.splitlines()]
    on_disk = json.loads((out.parent / QA_SUMMARY_FILE).read_text("utf-8"))
    assert on_disk["pairs"] == summary.pairs == len(pairs) > 0, summary.rejects_by_rule
    assert summary.rejected == len(rejects)
    assert summary.entities == len(pairs) + len(rejects)
    assert summary.num_pairs == 3 and max(Counter(p.chunk_id for p in pairs).values()) <= 3
    assert sum(summary.pairs_by_type.values()) == len(pairs)
    assert sum(summary.rejects_by_rule.values()) == len(rejects)
    assert summary.pairs_by_generator == {"template": len(pairs)}
    assert {c.chunk_id for c in chunks} >= {p.chunk_id for p in pairs}
    _check_invariants(pairs)
    assert all(r["rule"] and r["reason"] and r["stage"] == "qa" for r in rejects)
    again = tmp_path / "again" / "qa_pairs.json"
    generate_qa_pairs(chunks_dir / "chunks.json", random_ner, again, num_pairs=3, config=cfg,
                      ner_config=ner_cfg, progress=False)
    assert again.read_bytes() == out.read_bytes()


def test_generate_qa_pairs_input_errors(random_ner: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        generate_qa_pairs(tmp_path / "none.json", random_ner, tmp_path / "qa.json")
    empty = tmp_path / "chunks.json"
    empty.write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="no chunks"):
        generate_qa_pairs(empty, random_ner, tmp_path / "qa.json")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"chunk_id": "x"}]', encoding="utf-8")
    with pytest.raises(InputError, match="text"):
        generate_qa_pairs(bad, random_ner, tmp_path / "qa.json")


# --- config -------------------------------------------------------------------------------------


def test_qa_config_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholders \['mineral'\]"):
        QAConfig(templates={"MINERALOGICAL": ("Что такое {mineral}?",)})
    with pytest.raises(ValueError, match="every template needs"):
        QAConfig(templates={"MINERALOGICAL": ("Что на месторождении {deposit}?",)})
    with pytest.raises(ValueError, match="add_context"):
        QAConfig(add_context=False, teacher={"enabled": True, "base_url": "http://x/v1",
                                             "model": "m", "mode": "answer"})
    with pytest.raises(ValueError, match="teacher.base_url"):
        QAConfig(teacher={"enabled": True})
    with pytest.raises(ValueError):
        QAConfig(num_pairs=0)
    with pytest.raises(ValueError, match="max_context"):
        QAConfig(max_context_lenght=10)  # type: ignore[call-arg]
    assert QAGenerator(add_context=True, max_context_length=300).config == QAConfig()


def test_entities_need_letters_length_and_no_stop_words(
    gold: tuple[list[ChunkRecord], EntitySet],
) -> None:
    text = ("Добыча нефти составила 41,7 млн т; содержание Au достигает 4,3 г/т, "
            "и это выше среднего по району.")
    ents = [{"label": "ORE_COMPONENT", "text": t, "confidence": 0.99}
            for t in ("т", "и", "это", "41,7", "Au", "нефти")]
    res = QAGenerator().generate_from_text(text, ents, chunk_id="c1", doc_id="d1")
    rules = {r.entity["text"]: r.rule for r in res.rejects if r.entity}
    assert rules["т"] == "entity_too_short" and rules["и"] == "entity_too_short"
    assert rules["это"] == "stop_word" and rules["41,7"] == "no_letters"
    assert "Au" not in rules and "нефти" not in rules  # an element symbol and a real word
    assert "qa.min_entity_chars=3" in next(r.reason for r in res.rejects
                                           if r.rule == "entity_too_short")
    # the gold entities of the sample corpus keep their pairs (>= 90 % of them)
    chunks, entities = gold
    before = QAGenerator(config=QAConfig(min_entity_chars=1)).generate(chunks, entities)
    after = QAGenerator().generate(chunks, entities)
    assert len(after.pairs) >= 0.9 * len(before.pairs) > 0


LAW = ("Статья 81. Расторжение трудового договора по инициативе работодателя. Трудовой договор "
       "может быть расторгнут работодателем в случаях ликвидации организации либо прекращения "
       "деятельности индивидуальным предпринимателем, сокращения численности или штата "
       "работников организации. Увольнение по основанию, предусмотренному пунктом 2 части "
       "первой настоящей статьи, допускается, если невозможно перевести работника с его "
       "письменного согласия на другую имеющуюся у работодателя работу. Федеральным законом "
       "может быть установлена административная ответственность должностных лиц.")
PHYSICS = ("Закон сохранения энергии утверждает, что энергия замкнутой системы остаётся "
           "постоянной. Кинетическая энергия тела пропорциональна его массе и квадрату "
           "скорости. Электрон движется в магнитном поле по окружности под действием силы "
           "Лоренца, а частота обращения не зависит от скорости электрона.")


@pytest.mark.parametrize(("text", "profile"), [(LAW, "legal"), (PHYSICS, "other")])
def test_documents_off_the_geology_profile_get_no_template_pairs(
    text: str, profile: str, tmp_path: Path,
) -> None:
    # entities a geology NER might tag on such text
    words = ["работодателя", "организации", "энергии", "массе", "Федеральным законом"]
    chunks = [ChunkRecord(chunk_id="c1", doc_id="doc-x", text=text)]
    ents = [ChunkEntity(label="GENERAL_INFO", text=w, confidence=0.99, start=text.index(w),
                        end=text.index(w) + len(w)) for w in words if w in text]
    assert ents
    res = QAGenerator().generate(chunks, EntitySet(model_path=None, items=[
        ChunkEntities(chunk_id="c1", doc_id="doc-x", entities=ents)]))
    assert [p for p in res.pairs if p.generator == "template"] == []
    entity_rejects = [r for r in res.rejects if r.entity]
    assert {r.rule for r in entity_rejects} == {"off_profile"}
    assert len(entity_rejects) == len(ents)
    assert res.profiles["doc-x"]["profile"] == profile
    assert f"document profile {profile}" in entity_rejects[0].reason
    # the same text is a geology document if the config says so: the gate is the profile
    open_cfg = QAConfig(template_profiles=("geology", "legal"), answer_types={},
                        profiles={**QAConfig().profiles})
    if profile == "legal":
        assert QAGenerator(config=open_cfg).generate(chunks, EntitySet(
            model_path=None, items=[ChunkEntities(chunk_id="c1", doc_id="doc-x",
                                                  entities=ents)])).pairs


def test_sample_reports_are_geology_and_keep_their_pairs(
    gold: tuple[list[ChunkRecord], EntitySet],
) -> None:
    chunks, entities = gold
    res = QAGenerator().generate(chunks, entities)
    assert {p["profile"] for p in res.profiles.values()} == {"geology"}
    # before issue 12: templates only, every profile, no entity rules, no answer-type gates
    before = QAConfig(template_profiles=("geology", "legal"), question_kinds={},
                      answer_types={}, min_entity_chars=1)
    open_res = QAGenerator(config=before).generate(chunks, entities)
    assert len(res.pairs) >= 0.9 * len(open_res.pairs) > 0
    assert "off_profile" not in res.rejects_by_rule

