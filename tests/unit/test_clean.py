"""Dataset cleaning and merging: every rule on crafted records, dedup on generated QA data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from geomas.clean import (
    RULE_ORDER,
    CleanResult,
    clean_dataset,
    clean_examples,
    diversity_report,
    grounding_share,
    instruction_template,
    merge_datasets,
    normalize_text,
    read_alpaca,
    write_alpaca,
)
from geomas.clean import dedup as dedup_module
from geomas.clean.rules import char_stats
from geomas.config import CleanConfig
from geomas.errors import InputError
from geomas.formats.example import Example
from geomas.sample.synthetic_records import synthetic_geology_qa
from geomas.text import cyrillic_share

CONTEXT = (
    "Месторождение Агинское расположено в Быстринском районе Камчатского края. "
    "Средние по месторождению содержания составляют: золота 43,7 г/т, серебра 19,1 г/т. "
    "Рудные тела представлены кварцевыми и кварц-адуляровыми жилами мощностью до 4,5 м."
)
# A chunk-sized context (~150 words) for several questions.
LONG_CONTEXT = CONTEXT + (
    " Вмещающими породами являются андезиты, дациты и их туфы кирганикской свиты позднего мела."
    " Месторождение приурочено к Быстринской вулкано-тектонической депрессии, ограниченной"
    " разломами северо-восточного простирания. Главные рудные минералы представлены самородным"
    " золотом, электрумом, акантитом, пиритом и халькопиритом. Околорудные изменения выражены"
    " окварцеванием, адуляризацией и серицитизацией пород. Температуры гомогенизации флюидных"
    " включений в кварце составляют 190–280 °C. Месторождение открыто в 1975 году Быстринской"
    " поисковой партией, детальная разведка проведена в 1981–1986 годах. Утверждённые запасы"
    " золота категорий С1+С2 составляют 48,1 т при среднем содержании 12,4 г/т. Извлечение"
    " золота при гравитационно-цианистой переработке руд достигает 91,5 %."
)
LEGAL_OUTPUT = (
    "В СУД\n\nИСТЕЦ: Иванов И. И.\nОТВЕТЧИК: ООО «Услуги»\n\nИСКОВОЕ ЗАЯВЛЕНИЕ\n\n"
    "МОТИВИРОВОЧНАЯ ЧАСТЬ:\nСогласно ст. 309 ГК РФ обязательства должны исполняться "
    "надлежащим образом.\n\nРЕЗОЛЮТИВНАЯ ЧАСТЬ:\nПРОШУ СУД взыскать с ответчика долг."
)


# Another question about CONTEXT: a distinct record.
OTHER_QA = {
    "instruction": "Опиши морфологию рудных тел.\n\nВопрос: Чем представлены рудные тела?",
    "output": "кварцевыми и кварц-адуляровыми жилами",
}


def ex(i: int | str, **fields: Any) -> Example:
    """A valid geological QA example; `fields` override its parts."""
    values: dict[str, Any] = {
        "id": f"r{i}",
        "instruction": "Опиши содержания полезных компонентов в руде.\n\nВопрос: Каковы "
        "содержания золота и серебра?",
        "input": CONTEXT,
        "output": "золота 43,7 г/т, серебра 19,1 г/т",
        "meta": {"doc_id": "d1", "n": str(i)},
    }
    values.update(fields)
    return Example(**values)


def rejects_by_id(result: CleanResult) -> dict[str, dict[str, Any]]:
    return {str(r.id): r.model_dump() for r in result.rejects}  # as in clean_rejects.jsonl


def assert_accounted(result: CleanResult, n_input: int) -> None:
    """kept + rejected == input, and the per-rule counts match the rejects."""
    assert len(result.kept) + len(result.rejects) == n_input == result.n_input
    assert sum(result.removed.values()) == len(result.rejects)
    assert list(result.counts) == list(RULE_ORDER)
    for rule, n in result.removed.items():
        assert n == sum(1 for r in result.rejects if r.rule == rule), rule
    for r in result.rejects:
        assert r.stage == "clean" and r.rule in RULE_ORDER and r.reason


# ----------------------------------------------------------------------------- near-dup


@pytest.fixture(scope="module")
def generated() -> tuple[Any, CleanResult]:
    data = synthetic_geology_qa(4000, near_dup_share=0.1, seed=7)
    return data, clean_examples(data.examples, CleanConfig(profile="geology"))


def test_generated_data_is_realistic_geological_qa(generated: tuple[Any, CleanResult]) -> None:
    data, _ = generated
    first = data.examples[0]
    assert "\n\nВопрос: " in first.instruction
    assert cyrillic_share(first.input) and cyrillic_share(first.input) > 0.9  # type: ignore[operator]
    # Several questions share one chunk as input, as QA synthesis produces them.
    groups = [e.group for e in data.examples if e.id not in data.near_dup_of]
    assert len(set(groups)) < 0.7 * len(groups)
    assert len(data.near_dup_of) == 400


def test_injected_near_duplicates_are_removed_and_distinct_records_kept(
    generated: tuple[Any, CleanResult],
) -> None:
    data, result = generated
    assert_accounted(result, len(data.examples))
    rejects = rejects_by_id(result)
    injected = set(data.near_dup_of)
    caught = injected & rejects.keys()
    assert len(caught) / len(injected) >= 0.95
    wrongly = [r for i, r in rejects.items() if i not in injected]
    assert len(wrongly) / (len(data.examples) - len(injected)) <= 0.01, wrongly[:3]
    # The dropped copy points at its original, which is kept.
    kept_ids = {e.id for e in result.kept}
    for i in caught:
        assert rejects[i]["rule"] in ("near_dup", "exact_dup")
        assert rejects[i]["duplicate_of"] == data.near_dup_of[i]
        assert rejects[i]["duplicate_of"] in kept_ids
    near = [r for r in result.rejects if r.rule == "near_dup"]
    assert near and all("Jaccard" in r.reason for r in near)


def test_different_questions_on_one_long_context_are_not_near_dups() -> None:
    a = ex(1, input=LONG_CONTEXT, output="золота 43,7 г/т")
    b = ex(
        2,
        instruction="Опиши морфологию рудных тел.\n\nВопрос: Чем представлены рудные тела?",
        input=LONG_CONTEXT,
        output="кварцевыми и кварц-адуляровыми жилами",
    )
    assert clean_examples([a, b], CleanConfig()).counts["near_dup"] == 0
    # Without the question-or-answer check the shared context alone makes them near-dups.
    off = clean_examples([a, b], CleanConfig(near_dup_question_or_answer=False))
    assert [r.model_dump() for r in off.rejects] == [
        {
            "stage": "clean",
            "rule": "near_dup",
            "reason": off.rejects[0].reason,
            "id": "r2",
            "duplicate_of": "r1",
        }
    ]


def test_extractive_pairs_with_different_questions_and_answers_are_kept() -> None:
    # Both questions and answers are clauses of the input: all their shingles are the input's.
    context = (
        "Средние по месторождению содержания составляют: золота 12,6 г/т, серебра 8,5 г/т. "
        "В рудных столбах содержание золота достигает 67,6 г/т."
    )
    task = "Опиши содержания полезных компонентов в руде.\n\nВопрос: Какие сведения о полезных "
    a = ex(1, input=context, instruction=task + "компонентах руд связаны с «золота 12,6 г/т»?",
           output="Средние по месторождению содержания составляют: золота 12,6 г/т")
    b = ex(2, input=context,
           instruction=task + "компонентах руд связаны с «золота достигает 67,6 г/т»?",
           output="В рудных столбах содержание золота достигает 67,6 г/т")
    assert clean_examples([a, b], CleanConfig()).counts["near_dup"] == 0
    # The same question with an edited answer is still a near-duplicate.
    c = ex(3, input=context, instruction=a.instruction,
           output="Средние по месторождению содержания составляют: золота 12,8 г/т")
    result = clean_examples([a, b, c], CleanConfig())
    assert rejects_by_id(result)["r3"]["duplicate_of"] == "r1"
    assert "question 1.00" in rejects_by_id(result)["r3"]["reason"]


def test_near_dedup_is_deterministic_and_bucket_prefilter_is_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = synthetic_geology_qa(1500, seed=3)
    records = [(e.instruction, e.input, e.output) for e in data.examples]
    kwargs: dict[str, Any] = {"threshold": 0.85, "num_perm": 128, "shingle_words": 2}
    first = dedup_module.near_duplicates(records, **kwargs)
    assert first == dedup_module.near_duplicates(records, **kwargs)
    # Records alone in all their LSH buckets skip the index; sending all through it agrees.
    monkeypatch.setattr(
        dedup_module, "_shares_a_bucket", lambda sig, bands, rows: [True] * len(sig)
    )
    assert dedup_module.near_duplicates(records, **kwargs) == first


def test_lsh_bands_find_pairs_at_the_threshold() -> None:
    bands, rows = dedup_module.lsh_bands(0.85, 128)
    assert bands * rows <= 128
    assert 1 - (1 - 0.85**rows) ** bands >= dedup_module.LSH_RECALL_AT_THRESHOLD


# ------------------------------------------------------------------------ exact dedup


def test_exact_duplicates_removed_with_duplicate_of_and_counts_add_up() -> None:
    records = [
        ex(1),
        ex(2, output="ЗОЛОТА 43,7  г/т, серебра 19,1 г/т"),  # case and spacing only
        ex(3, **OTHER_QA),
        ex(4),
        ex(5, instruction="", output="x"),  # empty instruction
        ex(6, **OTHER_QA, input=LONG_CONTEXT),
    ]
    result = clean_examples(records, CleanConfig())
    assert_accounted(result, len(records))
    rejects = rejects_by_id(result)
    assert rejects["r2"]["rule"] == rejects["r4"]["rule"] == "exact_dup"
    assert rejects["r2"]["duplicate_of"] == rejects["r4"]["duplicate_of"] == "r1"
    assert rejects["r5"] == {"stage": "clean", "rule": "empty", "id": "r5",
                             "reason": "instruction is empty"}
    assert "duplicate_of" not in rejects["r5"]
    assert result.counts["exact_dup"] == 2 and result.counts["empty"] == 1
    # Kept records keep their ids and meta.
    assert [e.id for e in result.kept] == ["r1", "r3", "r6"]
    assert result.kept[0].meta == {"doc_id": "d1", "n": "1"}


def test_duplicate_ids_are_reported() -> None:
    result = clean_examples([ex(1), ex(1, **OTHER_QA)], CleanConfig())
    assert len(result.kept) == 2
    assert result.warnings and "occur more than once" in result.warnings[0]


# ----------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Запасы место-\nрождения утверждены.", "Запасы месторождения утверждены."),
        ("руд-\n\n- 5 -\n\nное тело", "рудное тело"),  # page break inside the word
        ("золото-кварцевый тип", "золото-кварцевый тип"),  # a real compound stays
        ("Южно-\nКумрочское месторождение", "Южно-Кумрочское месторождение"),
        ("в северо-\nвосточном направлении", "в северо-восточном направлении"),
        ("место\u00ad\n  рождение", "месторождение"),  # soft hyphen at a line break
        ("a\u00a0\u00a0b\u200b c\ufeff", "a b c"),
        ("Текст.\nСтр. 3\nДальше.", "Текст.\nДальше."),
        ("Текст.\n- 12 -\nДальше.", "Текст.\nДальше."),
        ("Текст.\n  Страница 3 из 10  \nДальше.", "Текст.\nДальше."),
        ("Абзац один.\n\n\n\nАбзац   два.  ", "Абзац один.\n\nАбзац два."),
        ("Страница 3 из 10", ""),
        ("Содержание 12 г/т\n3 / 10\n", "Содержание 12 г/т"),
        ("Таблица\n12\n15", "Таблица\n12\n15"),  # bare numbers are data, not furniture
    ],
)
def test_normalize_text(raw: str, clean: str) -> None:
    assert normalize_text(raw) == clean


def test_running_headers_and_dataset_evidence_for_hyphens() -> None:
    header = "ОТЧЁТ О ГЕОЛОГОРАЗВЕДОЧНЫХ РАБОТАХ"
    page = f"{header}\nРудные тела кварцевые.\n{header}\nЖилы мощные.\n{header}\nКонец."
    records = [
        ex(1, input=page + "\nЗолото-\nкварцевый тип руд.\nНовое место-\nрождение."),
        ex(2, output="Золото-кварцевый тип, золото 43,7 г/т"),
    ]
    result = clean_examples(records, CleanConfig(grounding=False))
    text = result.kept[0].input
    assert header not in text
    assert "Рудные тела кварцевые.\nЖилы мощные.\nКонец." in text
    # The dataset writes «золото-кварцевый» with a hyphen elsewhere: the hyphen stays.
    assert "Золото-кварцевый тип руд." in text
    assert "Новое месторождение." in text
    assert result.counts["normalize"] == 1
    assert result.normalization == {
        "records_changed": 1, "furniture_lines": 3, "dehyphenated": 1, "hyphens_kept": 1,
    }
    # Switched off, the header and the split words stay.
    off = clean_examples(records, CleanConfig(grounding=False, dehyphenate=False,
                                              furniture_repeat_min=0))
    assert header in off.kept[0].input and "место-\nрождение" in off.kept[0].input


# ----------------------------------------------------------------------------- filters


def test_cyrillic_filter_on_geology_off_on_generic() -> None:
    english = ex(
        2,
        instruction="Describe the ore.\n\nQuestion: What is the gold grade?",
        input="The deposit hosts quartz veins with gold grades of 43.7 g/t.",
        output="gold 43.7 g/t",
    )
    geology = clean_examples([ex(1), english], CleanConfig(profile="geology"))
    reject = rejects_by_id(geology)["r2"]
    assert reject["rule"] == "script"
    assert "min_cyrillic_share[geology]=0.5" in reject["reason"]
    generic = clean_examples([ex(1), english], CleanConfig(profile="generic"))
    assert [e.id for e in generic.kept] == ["r1", "r2"]
    assert generic.counts["script"] == 0


def test_legal_profile_requires_the_motivating_part() -> None:
    legal = {"instruction": "Составь исковое заявление по фактическим обстоятельствам дела.",
             "input": "Истец заключил договор с ответчиком на оказание услуг."}
    records = [
        ex(1, **legal, output=LEGAL_OUTPUT),
        ex(2, **legal, output=LEGAL_OUTPUT.replace("МОТИВИРОВОЧНАЯ ЧАСТЬ:\n", "")),
        ex(3, **legal, output="Исковое заявление.\nМотивировочная  часть: согласно ст. 15 ГК РФ"),
    ]
    result = clean_examples(records, CleanConfig(profile="legal"))
    assert [e.id for e in result.kept] == ["r1", "r3"]
    reject = rejects_by_id(result)["r2"]
    assert reject["rule"] == "profile"
    assert "legal profile" in reject["reason"] and "мотивировочн" in reject["reason"]
    # Grounding is off for legal: generated documents are not extracts of the facts.
    assert result.counts["grounding"] == 0
    # The geology profile has no such requirement.
    assert clean_examples(records[1:2], CleanConfig(profile="geology")).counts["profile"] == 0


def test_grounding_rule() -> None:
    assert grounding_share("золото 43,7 г/т", CONTEXT) == 1.0  # «золото» ~ «золота»
    assert grounding_share("медь и никель", CONTEXT) == 0.0
    assert grounding_share("а", CONTEXT) is None
    records = [
        ex(1),
        ex(2, output="Месторождение медно-никелевое, никеля 1,2 %, меди 0,8 %"),
        ex(3, input="", output="Месторождение медно-никелевое"),  # nothing to ground in
    ]
    result = clean_examples(records, CleanConfig(profile="geology"))
    reject = rejects_by_id(result)["r2"]
    assert reject["rule"] == "grounding" and "grounding_min_share=0.5" in reject["reason"]
    assert [e.id for e in result.kept] == ["r1", "r3"]
    assert clean_examples(records, CleanConfig(grounding=False)).counts["grounding"] == 0
    assert clean_examples(records, CleanConfig(profile="generic", grounding=True)).counts[
        "grounding"
    ] == 1


def test_length_garbage_and_empty_rules() -> None:
    config = CleanConfig(profile="generic", max_output_chars=500, near_dedup=False)
    records = [
        ex(1),
        ex(2, output=""),
        ex(3, output="а" * 501),
        ex(4, output="▒▒▓▓ ░░ ■■ □□ ◆◆ 43,7 г/т ▒▒▓▓ ░░"),
        ex(5, output="золото ============ 43,7 г/т"),
        ex(6, output="золото золото золото золото"),
        ex(7, input="", output="12,3 45,6 78,9 10,1 11,2 13,4 15,6 17,8 19,0 21,2 " * 5),
        ex(8, output="золото-золото, да да да"),  # three in a row is allowed
    ]
    result = clean_examples(records, config)
    rules = {i: r["rule"] for i, r in rejects_by_id(result).items()}
    assert rules == {"r2": "empty", "r3": "length", "r4": "garbage", "r5": "garbage",
                     "r6": "garbage", "r7": "garbage"}
    reasons = rejects_by_id(result)
    assert "max_output_chars=500" in reasons["r3"]["reason"]
    assert "of the output's non-space characters, above max_symbol_share" in reasons["r4"]["reason"]
    assert "12 repeated '=' characters" in reasons["r5"]["reason"]
    assert "'золото' occurs 4 times" in reasons["r6"]["reason"]
    assert "min_letter_share" in reasons["r7"]["reason"]
    assert_accounted(result, len(records))


def test_char_stats_match_text_module() -> None:
    texts = [CONTEXT, LEGAL_OUTPUT, "English and русский", "", "12 34", "x\ufffd\ufffd", "ёЁѣ"]
    for text, stats in zip(texts, char_stats(texts, batch=3), strict=True):
        share = cyrillic_share(text)
        assert (stats.cyrillic / stats.letters if stats.letters else None) == share
        assert stats.visible == len("".join(text.split()))
    assert char_stats(["аааа  бб"])[0].longest_run == 4


# --------------------------------------------------------------------------- diversity


def test_diversity_report() -> None:
    records = [
        ex(1, instruction="Опиши руды.\n\nВопрос: Каковы содержания золота?"),
        ex(2, instruction="Опиши руды.\n\nВопрос: Каковы содержания серебра?"),
        ex(3, instruction="Опиши руды.\n\nВопрос: Каковы содержания серебра?"),
        ex(4, instruction="Ответь на вопрос: где расположено месторождение?"),
    ]
    report = diversity_report(records, top=5)
    assert report.records == 4
    assert report.instructions.distinct == 3
    assert report.templates.distinct == 2
    assert report.templates.most_common_share == 0.75
    assert report.templates.top[0].text == "Опиши руды." and report.templates.top[0].count == 3
    assert report.instructions.top[0].count == 2  # only repeated ones are listed
    assert len(report.instructions.top) == 1
    assert report.patterns.distinct == 2
    assert instruction_template("Вопрос: где?") == "(question only)"
    # clean_examples reports diversity of what it kept.
    result = clean_examples(records, CleanConfig(grounding=False, near_dedup=False))
    assert result.diversity.records == 3  # r3 is an exact duplicate of r2


# ------------------------------------------------------------------ files: clean, merge


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def alpaca(i: int, **extra: Any) -> dict[str, Any]:
    e = ex(i)
    return {"instruction": e.instruction, "input": e.input, "output": e.output, **extra}


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_clean_dataset_writes_output_rejects_and_report(tmp_path: Path, suffix: str) -> None:
    rows = [
        alpaca(1, id="a"),
        alpaca(2, id="b"),  # exact duplicate of a
        {"id": "c", "instruction": "Describe.", "input": "", "output": "English only text"},
        {**alpaca(4, id="d"), **OTHER_QA},
    ]
    src = write_jsonl(tmp_path / "raw.jsonl", rows)
    out = tmp_path / f"clean{suffix}"
    report = clean_dataset(src, out, "geology")
    kept = read_alpaca(out)
    assert [e.id for e in kept] == ["a", "d"]
    if suffix == ".json":
        assert isinstance(json.loads(out.read_text(encoding="utf-8")), list)
    rejects = [json.loads(line) for line in
               (tmp_path / "clean_rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["id"]: r["rule"] for r in rejects} == {"b": "exact_dup", "c": "script"}
    saved = json.loads((tmp_path / "clean_clean_report.json").read_text(encoding="utf-8"))
    assert saved == report.model_dump(mode="json")
    assert report.records_in == 4 and report.kept == 2 and report.removed == 2
    assert report.counts["exact_dup"] == 1 and report.counts["script"] == 1
    assert report.diversity.records == 2
    assert report.config["profile"] == "geology"
    # --profile wins over the config's profile.
    legal = clean_dataset(src, out, "legal", config=CleanConfig(profile="geology"))
    assert legal.profile == "legal" and legal.counts["profile"] == 3  # a, b, d


def test_clean_dataset_refuses_to_overwrite_its_input(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "raw.jsonl", [alpaca(1)])
    with pytest.raises(InputError, match="is the input"):
        clean_dataset(src, src, "geology")
    with pytest.raises(InputError, match="unknown dataset suffix"):
        clean_dataset(src, tmp_path / "out.csv", "geology")


def test_bad_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "raw.jsonl"
    src.write_text(json.dumps(alpaca(1)) + "\n\n" + '{"instruction": "x", "output": \n',
                   encoding="utf-8")
    with pytest.raises(InputError, match=r"raw\.jsonl: line 3 is not valid JSON"):
        clean_dataset(src, tmp_path / "out.jsonl", "geology")
    write_jsonl(src, [alpaca(1), {"instruction": "x"}])
    with pytest.raises(InputError, match=r"raw\.jsonl: line 2: record 1: record has no 'output'"):
        read_alpaca(src)
    write_jsonl(src, [alpaca(1), ["not", "an", "object"]])
    with pytest.raises(InputError, match="line 2: record 1 is a list, not a JSON object"):
        read_alpaca(src)
    write_jsonl(src, [alpaca(1, output=5)])
    with pytest.raises(InputError, match="line 1: record 0: 'output' must be a string"):
        read_alpaca(src)
    listed = tmp_path / "raw.json"
    listed.write_text(json.dumps([alpaca(1), {"output": "y"}]), encoding="utf-8")
    with pytest.raises(InputError, match=r"raw\.json: line 1: record 1: record has no 'instr"):
        read_alpaca(listed)
    with pytest.raises(InputError, match="does not exist"):
        read_alpaca(tmp_path / "missing.jsonl")


def test_reader_keeps_lineage_and_numbers_missing_ids(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "qa.jsonl", [
        alpaca(1, qa_id="q1", metadata={"provider": "openai"}, meta={"doc_id": "d"}),
        alpaca(2, id=7, label="ORE_COMPONENT", system="Ты геолог."),
    ])
    first, second = read_alpaca(src)
    assert first.id == "qa-1" and second.id == "7"
    assert first.meta == {"provider": "openai", "doc_id": "d", "qa_id": "q1"}
    assert second.label == "ORE_COMPONENT" and second.system == "Ты геолог."
    out = tmp_path / "copy.json"
    write_alpaca([first, second], out)
    assert read_alpaca(out) == [first, second]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_merge_keeps_provenance_and_makes_ids_unique(tmp_path: Path, suffix: str) -> None:
    gui = write_jsonl(tmp_path / "dataset_20250828.jsonl", [
        alpaca(1, id="1", metadata={
            "provider": "openai", "mode": "polish", "timestamp": "2025-08-28T23:14:59.007455",
            "version": "1.0", "local_response": "Фактические обстоятельства...",
        }),
        alpaca(2, id="2", metadata={"provider": "local", "mode": "draft"}),
    ])
    older = tmp_path / "dataset_20250801.json"
    older.write_text(json.dumps([alpaca(3, id="1"), alpaca(4)], ensure_ascii=False),
                     encoding="utf-8")
    out = tmp_path / f"merged{suffix}"
    report = merge_datasets([gui, older], out)
    merged = read_alpaca(out)
    assert [e.id for e in merged] == ["1", "2", "dataset_20250801:1", "dataset_20250801-2"]
    assert len({e.id for e in merged}) == 4
    first = merged[0].meta
    assert first["source_file"] == str(gui)
    assert (first["provider"], first["mode"], first["timestamp"], first["version"]) == (
        "openai", "polish", "2025-08-28T23:14:59.007455", "1.0"
    )
    assert merged[2].meta == {"source_file": str(older), "original_id": "1"}
    assert report.records == 4 and report.renamed_ids == 1
    assert [(i.records, i.renamed_ids) for i in report.inputs] == [(2, 0), (2, 1)]
    assert report.inputs[0].providers == {"openai": 1, "local": 1}
    assert report.inputs[0].modes == {"polish": 1, "draft": 1}


def test_merge_lifts_nested_metadata_from_other_readers(tmp_path: Path) -> None:
    def reader(path: Path) -> list[Example]:
        return [ex(1, meta={"metadata": {"provider": "openai", "mode": "polish"}})]

    out = tmp_path / "m.jsonl"
    merge_datasets([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], out, reader=reader)
    a, b = read_alpaca(out)
    assert a.meta["provider"] == "openai" and a.meta["mode"] == "polish"
    assert (a.id, b.id) == ("r1", "b:r1")
    with pytest.raises(InputError, match="also an input"):
        merge_datasets([out], out)
    with pytest.raises(InputError, match="at least one input"):
        merge_datasets([], out)


# ----------------------------------------------------------------------------- config


def test_clean_config_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="min_output_chars"):
        CleanConfig(min_output_chars=10, max_output_chars=5)
    with pytest.raises(ValueError, match="min_cyrillic_share has no entry"):
        CleanConfig(profile="legal", min_cyrillic_share={"geology": 0.5})
    with pytest.raises(ValueError, match="not a valid regular expression"):
        CleanConfig(furniture_patterns=("стр[",))
    with pytest.raises(ValueError, match=r"not in \[0, 1\]"):
        CleanConfig(min_cyrillic_share={"geology": 1.5})
    with pytest.raises(ValueError, match="near_dup_typo"):
        CleanConfig.model_validate({"near_dup_typo": 1})
    assert CleanConfig().grounding_on and not CleanConfig(profile="legal").grounding_on
