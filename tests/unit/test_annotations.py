"""Label Studio export → BIO conversion: exact alignment, resolution rule, formats, errors."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from geomas.errors import ConfigError, InputError
from geomas.ner.annotations import DATA_FILE, REPORT_FILE, ConversionReport, convert_annotations
from geomas.ner.bio import Span, bio_label_list, bio_to_spans
from geomas.ner.labels import GEO_LABELS

SpanKey = tuple[Any, int, int, str]


def _result(
    task_text: str, start: int, end: int, *labels: str, **value: Any
) -> dict[str, Any]:
    return {
        "id": f"r{start}-{end}",
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": {"start": start, "end": end, "text": task_text[start:end], "labels": list(labels),
                  **value},
    }


def _annotation(results: list[dict[str, Any]], ann_id: int = 1, **extra: Any) -> dict[str, Any]:
    return {"id": ann_id, "completed_by": 1, "result": results, "was_cancelled": False,
            "ground_truth": False, **extra}


def _task(task_id: int, text: str, spans: list[tuple[int, int, str]],
          **data: Any) -> dict[str, Any]:
    results = [_result(text, s, e, label) for s, e, label in spans]
    return {"id": task_id, "data": {"text": text, **data},
            "annotations": [_annotation(results, ann_id=task_id)], "predictions": []}


def _at(text: str, part: str, label: str) -> tuple[int, int, str]:
    start = text.index(part)
    return start, start + len(part), label


def _write(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return path


def _convert(
    tmp_path: Path, tasks: list[dict[str, Any]], **kwargs: Any
) -> tuple[ConversionReport, dict[str, Any], dict[str, Any]]:
    source = _write(tmp_path / "export.json", tasks)
    report = convert_annotations(source, tmp_path / "out", **kwargs)
    data = json.loads((tmp_path / "out" / DATA_FILE).read_text(encoding="utf-8"))
    alignment = json.loads((tmp_path / "out" / REPORT_FILE).read_text(encoding="utf-8"))
    return report, data, alignment


def _decoded(data: dict[str, Any]) -> set[SpanKey]:
    """Spans decoded from the BIO records, in task character offsets."""
    spans: set[SpanKey] = set()
    for rec in data["records"]:
        for sp in bio_to_spans(rec["text"], rec["offsets"], rec["ner_tags"]):
            spans.add((rec["task_id"], sp.start + rec["char_start"],
                       sp.end + rec["char_start"], sp.label))
    return spans


def _gold(tasks: list[dict[str, Any]]) -> set[SpanKey]:
    return {
        (t["id"], r["value"]["start"], r["value"]["end"], label)
        for t in tasks for r in t["annotations"][0]["result"] for label in r["value"]["labels"]
    }


def _reported(alignment: dict[str, Any]) -> set[SpanKey]:
    return {(u["task_id"], u["start"], u["end"], u["label"]) for u in alignment["unaligned_spans"]}


def _check_records(data: dict[str, Any], texts: dict[Any, str]) -> None:
    """Structural invariants every record must satisfy."""
    allowed = set(data["label_list"])
    for rec in data["records"]:
        task_text = texts[rec["task_id"]]
        assert rec["id"].startswith(f"{rec['task_id']}-")
        assert task_text[rec["char_start"]:rec["char_start"] + len(rec["text"])] == rec["text"]
        assert len(rec["tokens"]) == len(rec["offsets"]) == len(rec["ner_tags"]) > 0
        assert [rec["text"][s:e] for s, e in rec["offsets"]] == rec["tokens"]
        assert all(t.strip() == t and t for t in rec["tokens"])
        assert set(rec["ner_tags"]) <= allowed


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("unit", ["sentence", "task"])
def test_sample_corpus_round_trip_reproduces_gold_spans(
    sample_corpus: Path, tmp_path: Path, unit: str
) -> None:
    export = sample_corpus / "annotations" / "label_studio_export.json"
    tasks = json.loads(export.read_text(encoding="utf-8"))
    report = convert_annotations(export, tmp_path, unit=unit)  # type: ignore[arg-type]
    data = json.loads((tmp_path / DATA_FILE).read_text(encoding="utf-8"))
    alignment = json.loads((tmp_path / REPORT_FILE).read_text(encoding="utf-8"))

    gold = _gold(tasks)
    decoded = _decoded(data)
    share = len(gold & decoded) / len(gold)
    assert share >= 0.995
    assert gold - decoded <= _reported(alignment)  # nothing missing without a report entry
    assert decoded <= gold
    assert report.spans_total == len(gold)
    assert report.spans_aligned == len(gold & decoded)
    assert report.aligned_share == pytest.approx(share, abs=1e-6)

    texts = {t["id"]: t["data"]["text"] for t in tasks}
    _check_records(data, texts)
    assert {r["split"] for r in data["records"]} <= {"train", "test"}
    assert all(r["doc_name"].startswith("report_") for r in data["records"])
    if unit == "task":
        assert len(data["records"]) == len(tasks) == report.records
        assert all(r["text"] == texts[r["task_id"]] for r in data["records"])
    else:
        assert len(data["records"]) > 3 * len(tasks)  # sections split into sentences
        assert all("\n\n" not in r["text"] for r in data["records"])
    assert report.tokens == sum(len(r["tokens"]) for r in data["records"])
    assert report.data_path == str(tmp_path / DATA_FILE)


def test_random_spans_are_aligned_or_reported(sample_corpus: Path, tmp_path: Path) -> None:
    """Spans at arbitrary offsets (inside tokens, padded, overlapping, across sentences)."""
    export = sample_corpus / "annotations" / "label_studio_export.json"
    rng = random.Random(5)
    tasks = []
    for t in json.loads(export.read_text(encoding="utf-8"))[:12]:
        text = t["data"]["text"]
        spans = []
        for _ in range(25):
            start = rng.randrange(len(text))
            spans.append((start, min(len(text), start + rng.randint(1, 60)),
                          rng.choice(GEO_LABELS)))
        tasks.append(_task(t["id"], text, spans))
    report, data, alignment = _convert(tmp_path, tasks)

    decoded, reported = _decoded(data), _reported(alignment)
    texts = {t["id"]: t["data"]["text"] for t in tasks}
    for task_id, start, end, label in _gold(tasks):
        text = texts[task_id]
        trimmed = len(text[start:end]) - len(text[start:end].lstrip())
        s, e = start + trimmed, start + len(text[start:end].rstrip())
        assert ((task_id, s, e, label) in decoded or (task_id, s, e, label) in reported
                or (task_id, start, end, label) in reported)
    assert len(decoded) == report.spans_aligned > 0
    n_spans = sum(len(t["annotations"][0]["result"]) for t in tasks)
    assert report.spans_total == n_spans == report.spans_aligned + report.spans_unaligned
    assert set(report.unaligned_by_reason) <= {"overlap", "duplicate", "empty_after_trim"}
    _check_records(data, texts)
    for rec in data["records"]:  # decoded spans never overlap and sit on token boundaries
        spans = bio_to_spans(rec["text"], rec["offsets"], rec["ner_tags"])
        assert all(a.end <= b.start for a, b in itertools.pairwise(spans))


def test_label_list_puts_o_first_then_b_i_per_type(tmp_path: Path) -> None:
    text = "Золото 5 г/т."
    _, data, _ = _convert(tmp_path, [_task(1, text, [_at(text, "Золото", "ORE_COMPONENT")])])
    assert data["format"] == "geomas-bio-v1"
    assert data["entity_types"] == list(GEO_LABELS)
    expected = ["O"] + [f"{p}-{t}" for t in GEO_LABELS for p in ("B", "I")]
    assert data["label_list"] == expected == bio_label_list(GEO_LABELS)
    assert len(data["label_list"]) == 35


# --------------------------------------------------------------------------- alignment


def test_span_boundary_inside_token_splits_the_token(tmp_path: Path) -> None:
    glued = "Содержание золота43,7 г/т"
    hyphen = "Руды золото-кварцевые"
    tasks = [
        _task(1, glued, [_at(glued, "43,7 г/т", "ORE_COMPONENT")]),
        _task(2, hyphen, [_at(hyphen, "золото", "ORE_COMPONENT")]),
    ]
    report, data, alignment = _convert(tmp_path, tasks)

    first, second = data["records"]
    assert first["tokens"] == ["Содержание", "золота", "43,7", "г", "/", "т"]
    assert first["ner_tags"] == ["O", "O", "B-ORE_COMPONENT"] + ["I-ORE_COMPONENT"] * 3
    # razdel keeps «золото-кварцевые» whole; the span boundary splits it
    assert second["tokens"] == ["Руды", "золото", "-кварцевые"]
    assert second["ner_tags"] == ["O", "B-ORE_COMPONENT", "O"]
    assert bio_to_spans(second["text"], second["offsets"], second["ner_tags"]) == [
        Span(5, 11, "ORE_COMPONENT", "золото")
    ]
    assert _decoded(data) == _gold(tasks)
    assert report.aligned_share == 1.0
    assert alignment["unaligned_spans"] == []


def test_whitespace_is_trimmed_and_text_mismatch_noted(tmp_path: Path) -> None:
    text = "Руда содержит  пирит  и галенит."
    pad_start = text.index(" пирит") - 1
    results = [
        _result(text, pad_start, pad_start + len("  пирит  "), "MINERALOGICAL"),
        _result(text, text.index("галенит"), text.index("галенит") + 7, "MINERALOGICAL",
                text="сфалерит"),
        _result(text, text.index(" и "), text.index(" и ") + 1, "MINERALOGICAL"),
    ]
    task = {"id": 7, "data": {"text": text}, "annotations": [_annotation(results)]}
    report, data, alignment = _convert(tmp_path, [task])

    assert _decoded(data) == {(7, text.index("пирит"), text.index("пирит") + 5, "MINERALOGICAL"),
                              (7, text.index("галенит"), text.index("галенит") + 7,
                               "MINERALOGICAL")}
    notes = {n["reason"]: n for n in alignment["notes"]}
    assert notes["trimmed"]["text"] == "пирит"
    assert "сфалерит" in notes["text_mismatch"]["detail"]
    (empty,) = alignment["unaligned_spans"]
    assert empty["reason"] == "empty_after_trim"
    assert (report.spans_trimmed, report.text_mismatches) == (1, 1)
    assert (report.spans_total, report.spans_aligned) == (3, 2)


def test_out_of_range_and_unlabelled_spans_are_reported(tmp_path: Path) -> None:
    text = "Кварц."
    results = [_result(text, 0, 5, "MINERALOGICAL"), _result(text, 3, 40, "MINERALOGICAL"),
               _result(text, 0, 5)]
    task = {"id": 3, "data": {"text": text, "doc_name": "a.pdf"},
            "annotations": [_annotation(results)]}
    report, _, alignment = _convert(tmp_path, [task])
    reasons = {u["reason"]: u for u in alignment["unaligned_spans"]}
    assert set(reasons) == {"out_of_range", "no_label"}
    assert reasons["out_of_range"]["doc_name"] == "a.pdf"
    assert reasons["out_of_range"]["end"] == 40
    assert report.spans_total == 3 and report.spans_aligned == 1


def test_utf16_offsets_from_the_web_ui_are_mapped(tmp_path: Path) -> None:
    text = "🙂 Золото 5 г/т"
    start = text.index("Золото")
    result = _result(text, start + 1, start + 7, "ORE_COMPONENT", text="Золото")  # UTF-16 units
    task = {"id": 1, "data": {"text": text}, "annotations": [_annotation([result])]}
    _, data, alignment = _convert(tmp_path, [task])
    assert _decoded(data) == {(1, start, start + 6, "ORE_COMPONENT")}
    assert [n["reason"] for n in alignment["notes"]] == ["utf16_offsets"]


def test_sentence_records_merge_when_a_span_crosses_a_sentence_boundary(tmp_path: Path) -> None:
    text = "Руды золото-кварцевые. Содержание золота высокое. Климат резко континентальный."
    spans = [_at(text, "кварцевые. Содержание золота", "ORE_FORMATION"),
             _at(text, "Климат", "GENERAL_INFO")]
    _, data, alignment = _convert(tmp_path, [_task(1, text, spans)])
    assert [r["text"] for r in data["records"]] == [
        "Руды золото-кварцевые. Содержание золота высокое.", "Климат резко континентальный."]
    assert [r["id"] for r in data["records"]] == ["1-0", "1-1"]
    assert _decoded(data) == _gold([_task(1, text, spans)])
    assert alignment["unaligned_spans"] == []


# --------------------------------------------------------------------------- resolution rule


def test_overlapping_spans_keep_longer_then_earlier_then_label_order(tmp_path: Path) -> None:
    text = "Месторождение приурочено к зоне Перевального разлома северного простирания и падения."
    long_ = _at(text, "зоне Перевального разлома", "STRUCTURAL_TECTONIC")
    inner = _at(text, "Перевального", "GENERAL_INFO")
    tie_a = _at(text, "северного простирания", "STRUCTURAL_TECTONIC")  # 21 chars, earlier
    tie_b = _at(text, "простирания и падения", "GEODYNAMIC")  # 21 chars, later start
    same_a = _at(text, "Месторождение", "STUDY_INFO")
    same_b = _at(text, "Месторождение", "GENERAL_INFO")  # same span, earlier in label order
    dup = long_
    spans = [inner, long_, tie_b, tie_a, same_a, same_b, dup]
    report, data, alignment = _convert(tmp_path, [_task(1, text, spans)], unit="task")

    assert _decoded(data) == {(1, *long_), (1, *tie_a), (1, *same_b)}
    lost = {(u["start"], u["end"], u["label"]): u for u in alignment["unaligned_spans"]}
    assert {k: v["reason"] for k, v in lost.items()} == {
        inner: "overlap", tie_b: "overlap", same_a: "overlap", dup: "duplicate"}
    assert "зоне Перевального разлома" in lost[inner]["detail"]
    assert report.unaligned_by_reason == {"overlap": 3, "duplicate": 1}
    assert "longer first" in report.rule and "longer first" in alignment["rule"]


def test_multiple_annotations_use_ground_truth_else_latest(tmp_path: Path) -> None:
    text = "Золото и серебро."
    gold = [_result(text, 0, 6, "ORE_COMPONENT")]
    other = [_result(text, 9, 16, "ORE_COMPONENT")]
    newest = [_result(text, 0, 16, "ORE_COMPOSITION")]
    t1 = {"id": 1, "data": {"text": text}, "annotations": [
        _annotation(other, 11, updated_at="2024-03-01T00:00:00Z"),
        _annotation(gold, 12, ground_truth=True, updated_at="2024-01-01T00:00:00Z"),
        _annotation(newest, 13, was_cancelled=True, updated_at="2024-05-01T00:00:00Z"),
    ], "predictions": [{"result": newest}]}
    t2 = {"id": 2, "data": {"text": text}, "annotations": [
        _annotation(other, 21, created_at="2024-03-01T10:00:00Z"),
        _annotation(gold, 22, created_at="2024-02-01T00:00:00Z",
                    updated_at="2024-03-01T09:00:00+00:00"),
        _annotation(newest, 23, was_cancelled=True, updated_at="2024-05-01T00:00:00Z"),
        _annotation(newest, 24),  # no timestamp: ranks below timestamped ones
    ]}
    t3 = {"id": 3, "data": {"text": text}, "annotations": [_annotation(gold, 31),
                                                           _annotation(other, 32)]}
    t4 = {"id": 4, "data": {"text": text}, "annotations": [
        _annotation(newest, 41, was_cancelled=True)]}
    t5 = {"id": 5, "data": {"text": text}, "annotations": [], "predictions": [{"result": gold}]}
    report, data, alignment = _convert(tmp_path, [t1, t2, t3, t4, t5])

    assert _decoded(data) == {(1, 0, 6, "ORE_COMPONENT"), (2, 9, 16, "ORE_COMPONENT"),
                              (3, 9, 16, "ORE_COMPONENT")}  # t3: no timestamps, last wins
    assert {r["task_id"] for r in data["records"]} == {1, 2, 3}
    unused = {(u["task_id"], u["annotation_id"]): u["reason"]
              for u in alignment["unused_annotations"]}
    assert unused == {(1, 11): "not_selected", (1, 13): "cancelled", (2, 22): "not_selected",
                      (2, 23): "cancelled", (2, 24): "not_selected", (3, 31): "not_selected",
                      (4, 41): "cancelled"}
    assert {s["task_id"]: s["reason"] for s in alignment["skipped_tasks"]} == {
        4: "all_annotations_cancelled", 5: "no_annotation"}
    assert (report.tasks, report.tasks_converted, report.tasks_skipped) == (5, 3, 2)
    assert report.spans_total == report.spans_aligned == 3


def test_annotation_without_spans_gives_all_o_records(tmp_path: Path) -> None:
    text = "Климат района резко континентальный."
    task = {"id": 1, "data": {"text": text}, "annotations": [_annotation([])]}
    report, data, _ = _convert(tmp_path, [task])
    (rec,) = data["records"]
    assert set(rec["ner_tags"]) == {"O"}
    assert report.aligned_share == 1.0 and report.spans_total == 0


# --------------------------------------------------------------------------- formats


def _json_min(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Label Studio's JSON-MIN export gives for the same tasks (one row per annotation)."""
    rows = []
    for t in tasks:
        for ann in t["annotations"]:
            row: dict[str, Any] = {"id": t["id"], **t["data"], "annotator": ann["completed_by"],
                                   "annotation_id": ann["id"],
                                   "created_at": ann.get("created_at", "2024-01-01T00:00:00Z"),
                                   "updated_at": ann.get("updated_at", "2024-01-01T00:00:00Z"),
                                   "lead_time": 1.5}
            spans = [{"start": r["value"]["start"], "end": r["value"]["end"],
                      "text": r["value"]["text"], "labels": r["value"]["labels"]}
                     for r in ann["result"]]
            if spans:
                row["label"] = spans
            rows.append(row)
    return rows


def test_json_min_export_gives_the_same_data_as_full_export(
    sample_corpus: Path, tmp_path: Path
) -> None:
    export = sample_corpus / "annotations" / "label_studio_export.json"
    tasks = json.loads(export.read_text(encoding="utf-8"))
    full = convert_annotations(export, tmp_path / "full")
    min_path = _write(tmp_path / "min.json", _json_min(tasks))
    minimal = convert_annotations(min_path, tmp_path / "min")

    assert ((tmp_path / "full" / DATA_FILE).read_text(encoding="utf-8")
            == (tmp_path / "min" / DATA_FILE).read_text(encoding="utf-8"))
    assert full.spans_aligned == minimal.spans_aligned == len(_gold(tasks))


def test_json_min_rows_of_one_task_are_its_annotations(tmp_path: Path) -> None:
    text = "Золото и серебро."
    rows = [
        {"id": 9, "text": text, "annotation_id": 1, "updated_at": "2024-05-01T00:00:00Z",
         "label": [{"start": 0, "end": 6, "text": "Золото", "labels": ["ORE_COMPONENT"]}]},
        {"id": 9, "text": text, "annotation_id": 2, "updated_at": "2024-01-01T00:00:00Z",
         "label": [{"start": 9, "end": 16, "text": "серебро", "labels": ["ORE_COMPONENT"]}]},
    ]
    report, data, alignment = _convert(tmp_path, rows)
    assert _decoded(data) == {(9, 0, 6, "ORE_COMPONENT")}
    assert [u["annotation_id"] for u in alignment["unused_annotations"]] == [2]
    assert report.tasks == 1


def test_folder_of_two_exports(sample_corpus: Path, tmp_path: Path) -> None:
    export = sample_corpus / "annotations" / "label_studio_export.json"
    tasks = json.loads(export.read_text(encoding="utf-8"))
    half = len(tasks) // 2
    folder = tmp_path / "exports"
    _write(folder / "a_part.json", tasks[:half])
    _write(folder / "b_part.json", tasks[half:])
    (folder / "notes.txt").write_text("not an export", encoding="utf-8")

    report = convert_annotations(folder, tmp_path / "from_folder")
    convert_annotations(export, tmp_path / "from_file")
    assert report.files == 2 and report.tasks == len(tasks)
    assert ((tmp_path / "from_folder" / DATA_FILE).read_text(encoding="utf-8")
            == (tmp_path / "from_file" / DATA_FILE).read_text(encoding="utf-8"))


def test_same_task_id_in_two_exports_keeps_both(tmp_path: Path) -> None:
    text = "Кварц и кальцит."
    _write(tmp_path / "in" / "one.json", [_task(1, text, [(0, 5, "MINERALOGICAL")])])
    _write(tmp_path / "in" / "two.json", [_task(1, text, [(8, 15, "MINERALOGICAL")])])
    convert_annotations(tmp_path / "in", tmp_path / "out")
    data = json.loads((tmp_path / "out" / DATA_FILE).read_text(encoding="utf-8"))
    assert [r["id"] for r in data["records"]] == ["1-0", "two/1-0"]
    assert _decoded(data) == {(1, 0, 5, "MINERALOGICAL"), ("two/1", 8, 15, "MINERALOGICAL")}


# --------------------------------------------------------------------------- labels


def test_unknown_label_is_a_config_error_naming_it(tmp_path: Path) -> None:
    text = "Содержание золота 5 г/т."
    tasks = [_task(1, text, [_at(text, "золота", "ORE_COMPONENT")]),
             _task(2, text, [_at(text, "золота", "METAL")]),
             _task(3, text, [_at(text, "золота", "METAL"), _at(text, "5 г/т", "GRADE")])]
    with pytest.raises(ConfigError, match=r"'METAL' \(2 spans.*id 2.*'GRADE'.*ORE_COMPONENT"):
        _convert(tmp_path, tasks)
    assert not (tmp_path / "out" / DATA_FILE).exists()


def test_label_map_maps_unknown_labels(tmp_path: Path) -> None:
    text = "Содержание золота 5 г/т."
    _, data, _ = _convert(tmp_path, [_task(1, text, [_at(text, "золота", "METAL")])],
                          label_map={"METAL": "ORE_COMPONENT"})
    assert _decoded(data) == {(1, *_at(text, "золота", "ORE_COMPONENT"))}

    with pytest.raises(ConfigError, match="NOT_A_TYPE"):
        _convert(tmp_path, [_task(1, text, [])], label_map={"METAL": "NOT_A_TYPE"})


def test_custom_label_set(tmp_path: Path) -> None:
    text = "Истец ООО «Рудник» подал иск в Арбитражный суд."
    spans = [_at(text, "ООО «Рудник»", "ORG"), _at(text, "Арбитражный суд", "COURT")]
    report, data, _ = _convert(tmp_path, [_task(1, text, spans)], labels=["ORG", "COURT"])
    assert data["entity_types"] == ["ORG", "COURT"]
    assert data["label_list"] == ["O", "B-ORG", "I-ORG", "B-COURT", "I-COURT"]
    assert _decoded(data) == _gold([_task(1, text, spans)])
    assert report.per_label == {"ORG": {"total": 1, "aligned": 1},
                                "COURT": {"total": 1, "aligned": 1}}
    with pytest.raises(ConfigError, match="ORE_COMPONENT"):
        _convert(tmp_path, [_task(1, text, [(0, 5, "ORE_COMPONENT")])], labels=["ORG"])
    with pytest.raises(ConfigError, match="more than once"):
        _convert(tmp_path, [_task(1, text, [])], labels=["ORG", "ORG"])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "is not valid JSON"),
        ('{"data": {"text": "x"}}', "not a list of tasks"),
        ('[{"id": 1, "data": {"text": "a"}}, {"id": 2, "data": {"doc_name": "b"}}]',
         r"task at index 1 \(id 2\).*has no data.text"),
        ('[{"id": 5, "foo": 1}]', r"task at index 0 \(id 5\).*has no text"),
        ('[{"id": 1, "data": {"text": "abc"}, "annotations": [{"result": '
         '[{"type": "labels", "value": {"start": "/p[1]", "end": 2, "labels": ["X"]}}]}]}]',
         "value.start"),
        ('[{"id": 1, "data": {"text": "a"}}, {"id": 1, "data": {"text": "b"}}]',
         "already used"),
        ("[3]", "task at index 0"),
    ],
)
def test_malformed_export_is_an_input_error_naming_the_file(
    tmp_path: Path, content: str, match: str
) -> None:
    path = tmp_path / "broken_export.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match) as info:
        convert_annotations(path, tmp_path / "out")
    assert "broken_export.json" in str(info.value)


def test_missing_source_and_empty_folder_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        convert_annotations(tmp_path / "nope.json", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no \\*.json"):
        convert_annotations(tmp_path / "empty", tmp_path / "out")


def test_unknown_unit_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="paragraph"):
        convert_annotations(tmp_path, tmp_path / "out", unit="paragraph")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bio_to_spans


def test_bio_to_spans_tolerates_i_without_b() -> None:
    text = "кварц пирит галенит сфалерит"
    offsets = [(0, 5), (6, 11), (12, 19), (20, 28)]
    tags = ["I-MIN", "I-MIN", "I-ORE", "B-ORE"]
    assert bio_to_spans(text, offsets, tags) == [
        Span(0, 11, "MIN", "кварц пирит"), Span(12, 19, "ORE", "галенит"),
        Span(20, 28, "ORE", "сфалерит")]
    assert bio_to_spans(text, offsets, ["O", "B-X", "O", "I-X"]) == [
        Span(6, 11, "X", "пирит"), Span(20, 28, "X", "сфалерит")]
    with pytest.raises(InputError, match="'X-MIN'"):
        bio_to_spans(text, offsets, ["O", "X-MIN", "O", "O"])
    with pytest.raises(InputError, match="4 token offsets but 3 tags"):
        bio_to_spans(text, offsets, ["O", "O", "O"])
