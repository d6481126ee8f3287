"""Dataset formats: shapes, round trips, TRL preparation, format-instruct-dataset, validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from geomas.config import FormatConfig, SplitConfig
from geomas.errors import ConfigError, InputError
from geomas.formats import (
    FORMAT_TYPES,
    TRL_NATIVE,
    Example,
    format_instruct_dataset,
    formatting_func_for,
    lineage_path,
    output_paths,
    parse_text,
    read_examples,
    render_text,
    trl_map_for,
    user_content,
    validate_dataset,
    write_examples,
)
from geomas.formats.qa import qa_pair_to_example

# --- a small realistic dataset -------------------------------------------------------------------

QA_PAIRS: list[dict[str, Any]] = [
    {
        "question": "Каковы содержания полезных компонентов на месторождении Агинское?",
        "answer": "Средние содержания составляют: золота 43,7 г/т, серебра 19,1 г/т.",
        "entity_type": "ORE_COMPONENT",
        "source_text": "Месторождение Агинское расположено в Камчатском крае. Средние содержания "
                       "составляют: золота 43,7 г/т, серебра 19,1 г/т.",
        "context": "Средние по месторождению содержания составляют: золота 43,7 г/т, "
                   "серебра 19,1 г/т.",
        "qa_id": "qa-0001", "doc_id": "doc-aginskoe", "chunk_id": "doc-aginskoe:0003",
    },
    {
        "question": "Где расположено месторождение Агинское?",
        "answer": "Месторождение Агинское расположено в Камчатском крае, в 20 км от пос. Мильково.",
        "entity_type": "GENERAL_INFO",
        "source_text": "Месторождение Агинское расположено в Камчатском крае, в 20 км от "
                       "пос. Мильково.\n\nКлимат района резко континентальный.",
        "context": "Месторождение Агинское расположено в Камчатском крае, в 20 км от "
                   "пос. Мильково.\n\nКлимат района резко континентальный.",
        "qa_id": "qa-0002", "doc_id": "doc-aginskoe", "chunk_id": "doc-aginskoe:0001",
    },
    {
        "question": "Какие минералы слагают руды месторождения Кедровое?",
        "answer": "Главные рудные минералы — пирит, арсенопирит и самородное золото.",
        "entity_type": "MINERALOGICAL",
        "source_text": "Главные рудные минералы — пирит, арсенопирит и самородное золото.",
        "context": "Главные рудные минералы — пирит, арсенопирит и самородное золото.",
        "qa_id": "qa-0003", "doc_id": "doc-kedrovoe", "chunk_id": "doc-kedrovoe:0007",
    },
    {
        "question": "Какова морфология рудных тел?",
        "answer": "Рудные тела представлены крутопадающими жилами мощностью 0,5–3,2 м.",
        "entity_type": "ORE_BODIES",
        "source_text": "Рудные тела представлены крутопадающими жилами мощностью 0,5–3,2 м.",
        "context": "",
        "qa_id": "qa-0004", "doc_id": "doc-kedrovoe", "chunk_id": "doc-kedrovoe:0009",
    },
]


def sample_examples() -> list[Example]:
    """Four QA pairs and two hand-written examples (one with a system prompt, one bare)."""
    examples = [qa_pair_to_example(pair) for pair in QA_PAIRS]
    examples.append(Example(
        id="ex-5",
        instruction="Опиши запасы и ресурсный потенциал месторождения.\n\nВопрос: Каковы запасы?",
        input="Запасы золота категорий C1+C2 составляют 12,4 т.",
        output="Запасы золота категорий C1+C2 — 12,4 т.",
        system="Ты — геолог, отвечающий по тексту отчёта.",
        label="RESOURCE_POTENTIAL",
        group="doc-sopka",
        meta={"page": 14, "source_file": "sopka.pdf"},
    ))
    examples.append(Example(
        id="ex-6",
        instruction="Перечисли источники информации о месторождении.",
        output="Фондовые отчёты ФГБУ «Росгеолфонд», 1987–2004 гг.",
        label="INFO_SOURCES",
    ))
    return examples


def dump(path: Path, records: Any, *, jsonl: bool = False) -> Path:
    if jsonl:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    else:
        text = json.dumps(records, ensure_ascii=False, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


# --- shapes and round trips ----------------------------------------------------------------------


def test_qa_pair_becomes_the_original_instruction_shape() -> None:
    ex = qa_pair_to_example(QA_PAIRS[0])
    assert ex.instruction == (
        "Опиши содержания полезных компонентов в руде.\n\n"
        "Вопрос: Каковы содержания полезных компонентов на месторождении Агинское?"
    )
    assert ex.input == QA_PAIRS[0]["context"]
    assert ex.output == QA_PAIRS[0]["answer"]
    assert (ex.id, ex.label, ex.group) == ("qa-0001", "ORE_COMPONENT", "doc-aginskoe")
    assert ex.meta == {
        "qa_id": "qa-0001", "doc_id": "doc-aginskoe", "chunk_id": "doc-aginskoe:0003",
        "entity_type": "ORE_COMPONENT",
    }


def test_qa_pair_without_doc_id_is_grouped_by_its_source_text() -> None:
    a = {k: v for k, v in QA_PAIRS[0].items() if k not in ("doc_id", "qa_id")}
    b = {**a, "question": "Какое содержание серебра?", "answer": "серебра 19,1 г/т"}
    ea, eb = qa_pair_to_example(a), qa_pair_to_example(b)
    assert ea.group == eb.group and ea.group is not None and ea.group.startswith("src-")
    assert ea.id != eb.id  # content-derived ids
    with pytest.raises(ValueError, match="answer is missing or empty"):
        qa_pair_to_example({**a, "answer": " "})
    with pytest.raises(ValueError, match="context: Field required"):
        qa_pair_to_example({k: v for k, v in a.items() if k != "context"})


def test_written_record_shapes(tmp_path: Path) -> None:
    ex = sample_examples()[4]  # has a system prompt and an input
    user = ex.instruction + "\n\n" + ex.input
    shapes = {}
    for fmt in FORMAT_TYPES:
        path = write_examples([ex], tmp_path / f"{fmt}.jsonl", fmt, True, lineage="none").path
        shapes[fmt] = json.loads(path.read_text(encoding="utf-8"))
    assert shapes["alpaca"] == {
        "instruction": ex.instruction, "input": ex.input, "output": ex.output, "system": ex.system,
    }
    assert shapes["messages"] == {"messages": [
        {"role": "system", "content": ex.system},
        {"role": "user", "content": user},
        {"role": "assistant", "content": ex.output},
    ]}
    assert shapes["sharegpt"] == {"conversations": [
        {"from": "system", "value": ex.system},
        {"from": "human", "value": user},
        {"from": "gpt", "value": ex.output},
    ]}
    assert shapes["text"] == {"text": (
        f"{ex.system}\n\n### Инструкция:\n{ex.instruction}\n\n### Вход:\n{ex.input}\n\n"
        f"### Ответ:\n{ex.output}"
    )}
    pc = shapes["prompt-completion"]
    assert pc["prompt"] + pc["completion"] == shapes["text"]["text"]
    assert pc["prompt"].endswith("### Ответ:\n") and pc["completion"] == ex.output
    assert shapes["vertex"] == {
        "systemInstruction": {"role": "system", "parts": [{"text": ex.system}]},
        "contents": [
            {"role": "user", "parts": [{"text": user}]},
            {"role": "model", "parts": [{"text": ex.output}]},
        ],
    }
    assert shapes["classification"] == {"text": user, "label": "RESOURCE_POTENTIAL"}


def test_bare_instruction_has_no_input_section_and_no_system() -> None:
    ex = sample_examples()[5]
    text = render_text(ex)
    assert text == f"### Инструкция:\n{ex.instruction}\n\n### Ответ:\n{ex.output}"
    assert parse_text(text) == {
        "system": None, "instruction": ex.instruction, "input": "", "output": ex.output,
    }


@pytest.mark.parametrize(
    ("fmt", "jsonl"),
    [
        (f, jsonl)
        for f in FORMAT_TYPES
        if f != "classification"  # lossy by design: tested below
        for jsonl in (False, True)
        if jsonl or f != "vertex"  # Vertex AI reads JSON Lines only
    ],
)
def test_round_trip_with_sidecar_lineage(tmp_path: Path, fmt: str, jsonl: bool) -> None:
    examples = sample_examples()
    path = tmp_path / ("data.jsonl" if jsonl else "data.json")
    written = write_examples(examples, path, fmt, jsonl)  # type: ignore[arg-type]
    assert written.lineage == "sidecar" and written.lineage_path == lineage_path(path)
    assert written.lineage_path.name == "data.lineage.jsonl"
    assert read_examples(path) == examples  # ids, labels, groups, meta and input split restored
    assert validate_dataset(path).valid


@pytest.mark.parametrize("fmt", [f for f in FORMAT_TYPES if f not in ("vertex", "classification")])
def test_round_trip_with_inline_lineage(tmp_path: Path, fmt: str) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / "d.jsonl", fmt, True, lineage="inline").path  # type: ignore[arg-type]
    assert not lineage_path(path).exists()
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first["lineage"]["id"] == "qa-0001"
    assert read_examples(path) == examples
    assert validate_dataset(path).valid


def test_without_lineage_ids_are_positions_and_a_stale_sidecar_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    write_examples(sample_examples(), path, "messages", True)
    assert lineage_path(path).exists()
    write_examples(sample_examples(), path, "messages", True, lineage="none")
    assert not lineage_path(path).exists()
    back = read_examples(path)
    assert [ex.id for ex in back[:2]] == ["d:0", "d:1"]
    assert back[0].label is None and back[0].input == ""  # the merge cannot be undone
    assert back[0].instruction == sample_examples()[0].instruction + "\n\n" + QA_PAIRS[0]["context"]


def test_classification_keeps_text_and_label(tmp_path: Path) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / "c.jsonl", "classification", True).path
    back = read_examples(path)
    assert [(b.instruction, b.input, b.label, b.output) for b in back] == [
        (e.instruction, e.input, e.label, e.label) for e in examples
    ]
    unlabelled = Example(id="x", instruction="Вопрос", output="Ответ")
    with pytest.raises(InputError, match="no label"):
        write_examples([unlabelled], tmp_path / "u.jsonl", "classification", True)


def test_system_prompt_fills_examples_without_one(tmp_path: Path) -> None:
    path = write_examples(
        sample_examples(), tmp_path / "a.json", "alpaca", False, system_prompt="Ты — геолог."
    ).path
    records = json.loads(path.read_text(encoding="utf-8"))
    assert {r["system"] for r in records} == {
        "Ты — геолог.", "Ты — геолог, отвечающий по тексту отчёта.",
    }


def test_vertex_refuses_json_lists_and_inline_lineage(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="jsonl"):
        write_examples(sample_examples(), tmp_path / "v.json", "vertex", False)
    with pytest.raises(InputError, match="sidecar"):
        write_examples(sample_examples(), tmp_path / "v.jsonl", "vertex", True, lineage="inline")
    with pytest.raises(ValueError, match="jsonl=true"):
        FormatConfig(format_type="vertex")


def test_reader_finds_the_container_from_the_content(tmp_path: Path) -> None:
    records = [{"instruction": "Вопрос", "input": "", "output": "Ответ"}] * 2
    as_list = dump(tmp_path / "list.jsonl", records)  # a JSON list saved as .jsonl
    as_lines = dump(tmp_path / "lines.json", records, jsonl=True)
    assert [e.output for e in read_examples(as_list)] == ["Ответ", "Ответ"]
    assert [e.id for e in read_examples(as_lines)] == ["lines:0", "lines:1"]


def test_reader_names_the_line_of_a_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    good = {"messages": [{"role": "user", "content": "В"}, {"role": "assistant", "content": "О"}]}
    two_turns = {"messages": good["messages"] * 2}
    dump(path, [good, good, two_turns], jsonl=True)
    with pytest.raises(InputError, match=r"line 3: record 2: .*one user turn"):
        read_examples(path)
    dump(path, [good, {"text": "другой формат"}], jsonl=True)
    with pytest.raises(InputError, match="line 2.*one file holds one format"):
        read_examples(path)


def test_sidecar_out_of_step_is_an_error(tmp_path: Path) -> None:
    path = write_examples(sample_examples(), tmp_path / "a.json", "alpaca", False).path
    lines = lineage_path(path).read_text(encoding="utf-8").splitlines()
    lineage_path(path).write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="out of step"):
        read_examples(path)


# --- TRL: SFTTrainer dataset preparation --------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geomas.models import make_tiny

    return make_tiny("lm", tmp_path_factory.mktemp("tiny") / "lm")


def _load(path: Path, tmp_path: Path) -> Any:
    import datasets

    return datasets.load_dataset(
        "json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf-cache")
    )


def _trainer(tiny_lm: Path, tmp_path: Path, dataset: Any, **kwargs: Any) -> Any:
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    formatting_func = kwargs.pop("formatting_func", None)
    args = SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_length=512,
        report_to="none",
        bf16=False,
        use_cpu=True,
        # TRL sets the deprecated gradient_checkpointing=True; the new name avoids the warning.
        activation_checkpointing=False,
        **kwargs,
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    return SFTTrainer(
        model=str(tiny_lm), args=args, train_dataset=dataset, processing_class=tokenizer,
        formatting_func=formatting_func,
    ), tokenizer


def _trained_text(row: dict[str, Any], tokenizer: Any) -> str:
    """The tokens that carry loss, decoded."""
    ids = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    return str(tokenizer.decode(ids))


def test_trl_native_formats_are_exactly_messages_prompt_completion_text() -> None:
    assert TRL_NATIVE == {"messages", "prompt-completion", "text"}


@pytest.mark.parametrize("jsonl", [False, True], ids=["json", "jsonl"])
def test_trl_prepares_messages_natively_with_assistant_only_loss(
    tiny_lm: Path, tmp_path: Path, jsonl: bool
) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / f"m.{'jsonl' if jsonl else 'json'}", "messages",
                          jsonl, lineage="inline").path
    trainer, tok = _trainer(tiny_lm, tmp_path, _load(path, tmp_path), assistant_only_loss=True)
    prepared = trainer.train_dataset
    assert {"input_ids", "labels"} <= set(prepared.column_names)
    for row, ex in zip(prepared, examples, strict=True):
        assert _trained_text(row, tok) == ex.output + "</s>"  # only the answer and its stop
        assert row["input_ids"][0] == tok.bos_token_id


def test_trl_prepares_prompt_completion_natively_with_completion_only_loss(
    tiny_lm: Path, tmp_path: Path
) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / "pc.jsonl", "prompt-completion", True).path
    trainer, tok = _trainer(tiny_lm, tmp_path, _load(path, tmp_path))
    prepared = trainer.train_dataset
    for row, ex in zip(prepared, examples, strict=True):
        assert _trained_text(row, tok) == ex.output + "</s>"
        assert tok.decode(row["input_ids"], skip_special_tokens=True) == render_text(ex, ex.system)


def test_trl_prepares_text_natively_on_every_token(tiny_lm: Path, tmp_path: Path) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / "t.json", "text", False).path
    trainer, tok = _trainer(tiny_lm, tmp_path, _load(path, tmp_path))
    for row, ex in zip(trainer.train_dataset, examples, strict=True):
        assert row["labels"] == row["input_ids"]
        assert tok.decode(row["input_ids"], skip_special_tokens=True) == render_text(ex, ex.system)


def test_inline_lineage_column_survives_a_training_step(tiny_lm: Path, tmp_path: Path) -> None:
    path = write_examples(sample_examples(), tmp_path / "m.jsonl", "messages", True,
                          lineage="inline").path
    dataset = _load(path, tmp_path)
    assert "lineage" in dataset.column_names  # heterogeneous meta loads as a Json feature
    trainer, _ = _trainer(tiny_lm, tmp_path, dataset, max_steps=1,
                          per_device_train_batch_size=2, save_strategy="no", logging_steps=1)
    trainer.train()
    assert trainer.state.global_step == 1


@pytest.mark.parametrize("fmt", ["alpaca", "vertex"])
def test_alpaca_and_vertex_are_not_trl_formats(tiny_lm: Path, tmp_path: Path, fmt: str) -> None:
    path = write_examples(sample_examples(), tmp_path / "d.jsonl", fmt, True).path  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="text"):  # SFTTrainer looks for a text column
        _trainer(tiny_lm, tmp_path, _load(path, tmp_path))


def test_sharegpt_roles_are_not_converted_by_trl(tiny_lm: Path, tmp_path: Path) -> None:
    from jinja2.exceptions import TemplateError

    path = write_examples(sample_examples(), tmp_path / "s.json", "sharegpt", False).path
    # TRL renames from/value to role/content but keeps "human"/"gpt", unknown to the template.
    with pytest.raises(TemplateError, match="unsupported chat role human"):
        _trainer(tiny_lm, tmp_path, _load(path, tmp_path))


def test_trl_tokenizes_sharegpt_conversations_even_with_a_formatting_function(
    tiny_lm: Path, tmp_path: Path
) -> None:
    from jinja2.exceptions import TemplateError

    path = write_examples(sample_examples(), tmp_path / "s.json", "sharegpt", False).path
    with pytest.raises(TemplateError, match="unsupported chat role human"):
        _trainer(tiny_lm, tmp_path, _load(path, tmp_path), formatting_func=lambda row: "текст")
    with pytest.raises(InputError, match="trl_map_for"):
        formatting_func_for("sharegpt")
    for native in sorted(TRL_NATIVE):
        with pytest.raises(InputError, match="TRL-native"):
            formatting_func_for(native)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["alpaca", "vertex"])
def test_formatting_func_feeds_non_native_formats(
    tiny_lm: Path, tmp_path: Path, fmt: str
) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / "d.jsonl", fmt, True).path  # type: ignore[arg-type]
    trainer, tok = _trainer(tiny_lm, tmp_path, _load(path, tmp_path),
                            formatting_func=formatting_func_for(fmt))  # type: ignore[arg-type]
    for row, ex in zip(trainer.train_dataset, examples, strict=True):
        if fmt == "vertex":  # the user turn merges instruction and input; the row cannot split it
            ex = ex.model_copy(update={"instruction": user_content(ex), "input": ""})
        assert tok.decode(row["input_ids"], skip_special_tokens=True) == render_text(ex, ex.system)
        assert row["labels"] == row["input_ids"]  # a formatting function trains on every token


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "vertex"])
def test_trl_map_converts_to_messages_with_assistant_only_loss(
    tiny_lm: Path, tmp_path: Path, fmt: str
) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / "d.jsonl", fmt, True).path  # type: ignore[arg-type]
    raw = _load(path, tmp_path)
    converted = raw.map(trl_map_for(fmt), remove_columns=raw.column_names)  # type: ignore[arg-type]
    trainer, tok = _trainer(tiny_lm, tmp_path, converted, assistant_only_loss=True)
    for row, ex in zip(trainer.train_dataset, examples, strict=True):
        assert _trained_text(row, tok) == ex.output + "</s>"


def test_trl_map_to_prompt_completion(tiny_lm: Path, tmp_path: Path) -> None:
    examples = sample_examples()
    path = write_examples(examples, tmp_path / "a.json", "alpaca", False).path
    raw = _load(path, tmp_path)
    converted = raw.map(trl_map_for("alpaca", "prompt-completion"), remove_columns=raw.column_names)
    trainer, tok = _trainer(tiny_lm, tmp_path, converted)
    for row, ex in zip(trainer.train_dataset, examples, strict=True):
        assert _trained_text(row, tok) == ex.output + "</s>"


def test_classification_is_not_sft_data() -> None:
    with pytest.raises(InputError, match="sequence classification"):
        formatting_func_for("classification")
    with pytest.raises(InputError, match="sequence classification"):
        trl_map_for("classification")


def test_classification_fits_a_sequence_classification_model(tiny_lm: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = write_examples(sample_examples(), tmp_path / "c.jsonl", "classification", True).path
    dataset = _load(path, tmp_path).class_encode_column("label")
    names = dataset.features["label"].names
    assert names == sorted({ex.label for ex in sample_examples() if ex.label})
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    encoded = dataset.map(
        lambda batch: tok(batch["text"], truncation=True, max_length=256), batched=True
    )
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_lm, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    batch = tok.pad(
        [{"input_ids": r["input_ids"], "attention_mask": r["attention_mask"]} for r in encoded],
        return_tensors="pt",
    )
    out = model(**batch, labels=torch.tensor(encoded["label"]))
    assert out.logits.shape == (len(encoded), len(names))
    assert torch.isfinite(out.loss)


# --- format-instruct-dataset -------------------------------------------------------------------

ENTITY_TYPES = ["ORE_COMPONENT", "GENERAL_INFO", "MINERALOGICAL", "ORE_BODIES", "STRATIGRAPHY"]


def synthetic_qa_pairs(n_docs: int = 30, per_doc: int = 8) -> list[dict[str, Any]]:
    pairs = []
    for d in range(n_docs):
        for k in range(per_doc):
            label = ENTITY_TYPES[(d + k) % len(ENTITY_TYPES)]
            pairs.append({
                "question": f"Вопрос {k} о месторождении №{d}: что известно ({label})?",
                "answer": f"Ответ {k}: содержание золота {d + k},{k} г/т.",
                "entity_type": label,
                "source_text": f"Отчёт {d}. Фрагмент {k}. Содержание золота {d + k},{k} г/т.",
                "context": f"Фрагмент {k}: содержание золота {d + k},{k} г/т.",
                "qa_id": f"qa-{d:03d}-{k}",
                "doc_id": f"doc-{d:03d}",
                "chunk_id": f"doc-{d:03d}:{k:04d}",
            })
    return pairs


def test_format_instruct_dataset_writes_train_and_val_like_the_original(tmp_path: Path) -> None:
    qa = dump(tmp_path / "qa_pairs.json", synthetic_qa_pairs())
    report = format_instruct_dataset(qa, tmp_path / "instruct_dataset.json",
                                     format_type="alpaca", split_ratio=0.9)
    train = tmp_path / "instruct_dataset_train.json"
    val = tmp_path / "instruct_dataset_val.json"
    assert report.files["train"] == train and report.files["val"] == val
    train_rows = json.loads(train.read_text(encoding="utf-8"))
    val_rows = json.loads(val.read_text(encoding="utf-8"))
    assert set(train_rows[0]) == {"instruction", "input", "output"}  # exactly the original keys
    first = next(p for p in synthetic_qa_pairs() if p["qa_id"] == "qa-000-0")
    row = next(r for r in train_rows + val_rows if r["output"] == first["answer"])
    assert row["instruction"] == (
        f"Опиши содержания полезных компонентов в руде.\n\nВопрос: {first['question']}"
    )
    assert row["input"] == first["context"]
    assert len(train_rows) + len(val_rows) == 240 and report.records == {"train": 216, "val": 24}
    # grouped by document: no doc_id in both files (lineage sidecars name the docs)
    docs = {
        name: {json.loads(line)["group"] for line in
               lineage_path(report.files[name]).read_text(encoding="utf-8").splitlines()}
        for name in ("train", "val")
    }
    assert docs["train"].isdisjoint(docs["val"]) and len(docs["val"]) == 3
    for key in ("split_report", "class_weights", "rejects"):
        assert report.files[key].is_file()
    assert report.files["split_report"].name == "instruct_dataset_split_report.json"
    assert validate_dataset(train).valid and validate_dataset(val).valid


def test_format_instruct_dataset_jsonl_and_other_formats(tmp_path: Path) -> None:
    qa = dump(tmp_path / "qa_pairs.jsonl", synthetic_qa_pairs(), jsonl=True)
    report = format_instruct_dataset(qa, tmp_path / "out" / "ds.json", format_type="messages",
                                     jsonl=True, system_prompt="Ты — геолог.", seed=7)
    train = tmp_path / "out" / "ds_train.jsonl"
    assert report.files["train"] == train and report.seed == 7
    lines = train.read_text(encoding="utf-8").splitlines()
    assert len(lines) == report.records["train"]
    first = json.loads(lines[0])
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert first["messages"][0]["content"] == "Ты — геолог."


def test_format_instruct_dataset_with_a_test_split_and_vertex(tmp_path: Path) -> None:
    qa = dump(tmp_path / "qa.json", synthetic_qa_pairs(n_docs=40))
    report = format_instruct_dataset(
        qa, tmp_path / "v.jsonl", config=FormatConfig(format_type="vertex", jsonl=True),
        split=SplitConfig(val_ratio=0.1, test_ratio=0.1), split_ratio=0.8,
    )
    assert set(report.records) == {"train", "val", "test"}
    assert report.records == {"train": 256, "val": 32, "test": 32}
    assert report.files["test"].name == "v_test.jsonl"


def test_format_instruct_dataset_rejects_bad_pairs_and_duplicates(tmp_path: Path) -> None:
    pairs = synthetic_qa_pairs()
    pairs[3] = {**pairs[3], "answer": "  "}
    pairs.append(dict(pairs[10]))
    pairs.append(["not", "an", "object"])  # type: ignore[arg-type]
    qa = dump(tmp_path / "qa.json", pairs)
    report = format_instruct_dataset(qa, tmp_path / "ds.json")
    assert report.n_input == 242
    assert report.rejects_by_rule == {"duplicate_id": 1, "qa_invalid": 2}
    rejects = [json.loads(line) for line in
               report.files["rejects"].read_text(encoding="utf-8").splitlines()]
    assert {r["rule"] for r in rejects} == {"duplicate_id", "qa_invalid"}
    assert any("answer is missing or empty" in r["reason"] for r in rejects)


def test_format_instruct_dataset_reformats_an_examples_file(tmp_path: Path) -> None:
    qa = dump(tmp_path / "qa.json", synthetic_qa_pairs())
    first = format_instruct_dataset(qa, tmp_path / "a.json")
    second = format_instruct_dataset(first.files["train"], tmp_path / "b.json",
                                     format_type="text", split_ratio=0.8)
    assert second.source_kind == "examples" and second.n_input == first.records["train"]
    row = json.loads((tmp_path / "b_train.json").read_text(encoding="utf-8"))[0]
    assert row["text"].startswith("### Инструкция:\nОпиши")


def test_format_instruct_dataset_option_errors(tmp_path: Path) -> None:
    qa = dump(tmp_path / "qa.json", synthetic_qa_pairs())
    with pytest.raises(ConfigError, match="jsonl=true"):
        format_instruct_dataset(qa, tmp_path / "v.json", format_type="vertex")
    with pytest.raises(ConfigError, match="split_ratio"):
        format_instruct_dataset(qa, tmp_path / "x.json", split_ratio=1.5)
    single_doc = [{**p, "doc_id": "one"} for p in synthetic_qa_pairs(n_docs=2)]
    with pytest.raises(InputError, match="group_by=None"):
        format_instruct_dataset(dump(tmp_path / "one.json", single_doc), tmp_path / "o.json")


def test_output_paths_follow_the_original_naming(tmp_path: Path) -> None:
    assert output_paths(Path("./instruct_dataset.json"), jsonl=False, splits=("train", "val")) == {
        "train": Path("./instruct_dataset_train.json"), "val": Path("./instruct_dataset_val.json"),
    }
    assert output_paths(Path("d/x.json"), jsonl=True, splits=("train",)) == {
        "train": Path("d/x_train.jsonl"),
    }
    assert output_paths(Path("d/x"), jsonl=False, splits=("val",)) == {"val": Path("d/x_val.json")}


# --- validate-dataset ----------------------------------------------------------------------------


def _issues(report: Any) -> list[tuple[str, int | None]]:
    return [(i.rule, i.line) for i in report.issues]


def test_valid_files_of_every_format_pass(tmp_path: Path) -> None:
    for fmt in FORMAT_TYPES:
        path = write_examples(sample_examples(), tmp_path / f"{fmt}.jsonl", fmt, True).path
        report = validate_dataset(path)
        assert report.valid and report.issues == [], (fmt, report.issues)
        assert report.format_type == fmt and report.container == "jsonl" and report.records == 6


def test_invalid_utf8_is_reported_per_line(tmp_path: Path) -> None:
    rows = [json.dumps({"text": f"Руда {n}"}, ensure_ascii=False) for n in range(5)]
    encoded = [row.encode("cp1251" if n in (2, 4) else "utf-8") for n, row in enumerate(rows)]
    path = tmp_path / "enc.jsonl"
    path.write_bytes(b"\n".join(encoded) + b"\n")
    report = validate_dataset(path)
    assert _issues(report) == [("encoding", 3), ("encoding", 5)]
    assert not report.valid and report.records == 5


def test_bom_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"text": "Руда"}).encode() + b"\n")
    assert _issues(validate_dataset(path)) == [("bom", 1)]


def test_container_mismatches(tmp_path: Path) -> None:
    rows = [{"text": "Первая"}, {"text": "Вторая"}]
    assert _issues(validate_dataset(dump(tmp_path / "list.jsonl", rows))) == [("container", 1)]
    assert _issues(validate_dataset(dump(tmp_path / "lines.json", rows, jsonl=True))) == [
        ("container", 1)
    ]
    pretty = dump(tmp_path / "obj.jsonl", {"data": rows})
    report = validate_dataset(pretty)
    assert _issues(report) == [("container", 1)] and "'data'" in report.issues[0].message
    csv = tmp_path / "x.jsonl"
    csv.write_text("text,label\nРуда,ORE\n", encoding="utf-8")
    assert _issues(validate_dataset(csv)) == [("container", 1)]
    empty = tmp_path / "empty.json"
    empty.write_text("  \n", encoding="utf-8")
    assert _issues(validate_dataset(empty)) == [("empty_file", None)]
    assert _issues(validate_dataset(dump(tmp_path / "none.json", []))) == [("empty_file", 1)]


def test_jsonl_syntax_errors_are_all_listed(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        '{"text": "а"}\n{"text": "б",}\n\n{"text": "в"}\n{"text": "г"\n', encoding="utf-8"
    )
    report = validate_dataset(path)
    assert _issues(report) == [("syntax", 2), ("blank_line", 3), ("syntax", 5)]
    assert report.records == 2


def test_json_list_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('[\n  {"text": "а"},\n  {"text": "б"}\n  {"text": "в"}\n]\n', encoding="utf-8")
    report = validate_dataset(path)
    # the missing comma after line 3 is found where the next record starts, as json reports it
    assert _issues(report) == [("syntax", 4)]
    assert report.records == 2


def test_json_list_problems_carry_the_line_where_the_record_starts(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Вопрос 1", "input": "", "output": "Ответ 1"},
        {"instruction": "Вопрос 2", "input": "", "output": ""},  # empty output
        {"instruction": "Вопрос 3", "input": 5, "output": "Ответ 3"},  # wrong type
        {"instruction": "Вопрос 4", "output": "Ответ 4", "extra": 1},  # keys differ
        ["not", "an", "object"],
        {"prompt": "П", "completion": "К"},  # another format
        {"question": "?"},  # no format at all
        {"instruction": "Вопрос 1", "input": "", "output": "Ответ 1"},  # duplicate of record 0
    ]
    path = dump(tmp_path / "a.json", rows)  # indent=2: each alpaca record spans 5 lines
    lines = path.read_text(encoding="utf-8").splitlines()
    start = {k: n for k, n in enumerate(
        [i + 1 for i, line in enumerate(lines) if line in ("  {", "  [")]
    )}
    report = validate_dataset(path)
    assert [(i.rule, i.line, i.record, i.field) for i in report.issues] == [
        ("empty_field", start[1], 1, "output"),
        ("wrong_type", start[2], 2, "input"),
        ("keys", start[3], 3, None),
        ("not_object", start[4], 4, None),
        ("mixed_format", start[5], 5, None),
        ("unknown_format", start[6], 6, None),
        ("duplicate", start[7], 7, None),
    ]
    assert report.format_type == "alpaca"
    assert [i.severity for i in report.issues].count("warning") == 1  # the duplicate


def test_chat_records_are_checked_turn_by_turn(tmp_path: Path) -> None:
    rows = [
        {"messages": [{"role": "user", "content": "Где?"},
                      {"role": "assistant", "content": "Там"}]},
        {"messages": [{"role": "human", "content": "Где?"},
                      {"role": "assistant", "content": ""}]},
        {"messages": [{"role": "user", "content": "Где?"}]},
        {"messages": "Где?"},
    ]
    report = validate_dataset(dump(tmp_path / "m.jsonl", rows, jsonl=True))
    assert [(i.rule, i.line, i.field) for i in report.issues] == [
        ("bad_role", 2, "messages[0].role"),
        ("empty_field", 2, "messages[1].content"),
        ("missing_field", 3, "messages"),
        ("wrong_type", 4, "messages"),
    ]
    vertex = [
        {"contents": [{"role": "user", "parts": [{"text": "Где?"}]},
                      {"role": "assistant", "parts": [{"text": "Там"}]}]},
        {"contents": [{"role": "user", "parts": []}, {"role": "model", "parts": [{"text": 1}]}]},
    ]
    report = validate_dataset(dump(tmp_path / "v.jsonl", vertex, jsonl=True))
    assert [(i.rule, i.line, i.field) for i in report.issues] == [
        ("bad_role", 1, "contents[1].role"),
        ("missing_field", 1, "contents"),
        ("wrong_type", 2, "contents[0].parts"),
        ("wrong_type", 2, "contents[1].parts[0].text"),
    ]


def test_classification_label_types(tmp_path: Path) -> None:
    rows = [{"text": "Руда", "label": "ORE"}, {"text": "Руда", "label": 3},
            {"text": "Руда", "label": True}, {"text": "Руда", "label": " "}]
    report = validate_dataset(dump(tmp_path / "c.jsonl", rows, jsonl=True))
    assert [(i.rule, i.line) for i in report.issues] == [("wrong_type", 3), ("empty_field", 4)]


def test_strict_raises_with_every_error(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": ""}\n{"text": 1}\n{"text": "ok"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"2 errors:\n.*line 1.*\n.*line 2"):
        validate_dataset(path, strict=True)
    with pytest.raises(InputError, match="does not exist"):
        validate_dataset(tmp_path / "missing.jsonl")
