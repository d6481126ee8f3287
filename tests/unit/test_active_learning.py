"""Active learning: export-annotations -> review in Label Studio -> convert-annotations -> train.

The first model is the cold start of active learning: the tiny encoder with an untrained,
seeded token-classification head (sharpened so that it predicts a handful of spans per chunk
with spread confidences), saved the way train-bert-ner saves models. Its predictions are as
wrong as a first model's are, which is what a reviewer corrects. The loop then trains a real
model on the corrected export and exports again with it.
"""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from geomas.config import NerInferenceConfig, NerTrainConfig
from geomas.errors import ConfigError, InputError
from geomas.ner.active import export_annotations, label_config_path
from geomas.ner.annotations import convert_annotations
from geomas.ner.bio import bio_label_list, bio_to_spans
from geomas.ner.inference import load_bert_ner_model
from geomas.ner.labels import GEO_LABELS

ASTRAL = "\U0001d6fc"  # MATHEMATICAL ITALIC SMALL ALPHA: one code point, two UTF-16 units


def _cold_start_model(base: Path, out: Path) -> Path:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    labels = bio_label_list(GEO_LABELS)
    torch.manual_seed(0)
    model = AutoModelForTokenClassification.from_pretrained(
        str(base), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={x: i for i, x in enumerate(labels)}, local_files_only=True)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 0.2)
        model.classifier.bias.zero_()
        model.classifier.bias[0] = 4.0  # "O" most of the time
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base), local_files_only=True).save_pretrained(str(out))
    (out / "label_map.json").write_text(json.dumps(
        {"label_list": labels, "entity_types": list(GEO_LABELS)}), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def loop(sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """chunks.json made of the sample corpus's sections, a tiny encoder, the cold-start model."""
    from geomas.models import make_tiny

    root = tmp_path_factory.mktemp("active")
    gold = json.loads((sample_corpus / "annotations" / "label_studio_export.json")
                      .read_text("utf-8"))
    chunks: list[dict[str, Any]] = []
    for task in gold[:18]:
        data = task["data"]
        chunks.append({"chunk_id": f"{data['doc_name']}#{task['id']}",
                       "doc_id": f"sha-{data['doc_index']}", "source": data["doc_name"],
                       "text": data["text"], "kind": "body"})
    chunks.insert(3, {"chunk_id": "table-1", "doc_id": chunks[0]["doc_id"],
                      "source": chunks[0]["source"], "kind": "table",
                      "text": "Рудное тело | Запасы золота, т\n1 | 12,4"})
    chunks.append({**chunks[5], "chunk_id": "duplicate"})  # a tie with chunks[5]
    chunks.append({**chunks[7], "chunk_id": "astral", "text": f"{ASTRAL} " + chunks[7]["text"]})
    chunks_path = root / "chunks.json"
    chunks_path.write_text(json.dumps(chunks, ensure_ascii=False), encoding="utf-8")
    base = make_tiny("ner", root / "tiny", corpus_dir=sample_corpus, seed=0)
    cold = _cold_start_model(base, root / "cold")
    full = export_annotations(chunks_path, cold, root / "tasks.json", progress=False)
    gold_spans = {t["data"]["text"]: [(r["value"]["start"], r["value"]["end"],
                                       r["value"]["labels"][0])
                                      for r in t["annotations"][0]["result"]] for t in gold}
    return {"root": root, "chunks_path": chunks_path, "chunks": chunks, "base": base,
            "cold": cold, "full": full, "gold": gold_spans}


def _tasks(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text("utf-8"))


def test_tasks_are_label_studio_imports_with_lineage_and_exact_offsets(loop: dict) -> None:
    tasks = _tasks(loop["root"] / "tasks.json")
    by_id = {c["chunk_id"]: c for c in loop["chunks"]}
    body = [c for c in loop["chunks"] if c["kind"] == "body"]
    assert len(tasks) == len(body) == loop["full"].report.tasks
    assert loop["full"].report.skipped_by_kind == {"table": 1}
    assert {t["data"]["chunk_id"] for t in tasks} == {c["chunk_id"] for c in body}
    result_ids = []
    for task in tasks:
        assert set(task) == {"data", "predictions"}
        data, chunk = task["data"], by_id[task["data"]["chunk_id"]]
        assert (data["text"], data["doc_id"], data["source"], data["kind"]) == (
            chunk["text"], chunk["doc_id"], chunk["source"], "body")
        assert data["doc_name"] == chunk["source"]
        [prediction] = task["predictions"]
        assert prediction["model_version"] == "cold"
        for r in prediction["result"]:
            assert (r["from_name"], r["to_name"], r["type"]) == ("label", "text", "labels")
            value = r["value"]
            assert data["text"][value["start"]:value["end"]] == value["text"]
            assert value["text"] == value["text"].strip() and value["text"]
            assert len(value["labels"]) == 1 and value["labels"][0] in GEO_LABELS
            assert 0.0 < r["score"] <= 1.0
            result_ids.append(r["id"])
    assert len(result_ids) == len(set(result_ids)) == loop["full"].report.predicted_spans
    assert loop["full"].report.predicted_spans >= 3 * len(tasks)  # the cold model guesses

    # offsets are code points: after the astral character they are Python string indices
    astral = next(t for t in tasks if t["data"]["chunk_id"] == "astral")
    after = [r["value"] for r in astral["predictions"][0]["result"] if r["value"]["start"] > 0]
    assert after and all(astral["data"]["text"][v["start"]:v["end"]] == v["text"]
                         for v in after)

    # the labelling config names what the tasks use
    view = ET.fromstring(label_config_path(loop["root"] / "tasks.json").read_text("utf-8"))
    labels_el, text_el = view.find("Labels"), view.find("Text")
    assert labels_el is not None and text_el is not None
    assert (labels_el.get("name"), labels_el.get("toName")) == ("label", "text")
    assert [x.get("value") for x in labels_el.findall("Label")] == list(GEO_LABELS)
    assert (text_el.get("name"), text_el.get("value")) == ("text", "$text")


def test_least_confident_chunks_come_first(loop: dict) -> None:
    tasks = _tasks(loop["root"] / "tasks.json")
    body = [c for c in loop["chunks"] if c["kind"] == "body"]
    model = load_bert_ner_model(loop["cold"])
    words = model.predict_words([c["text"] for c in body])
    # the measure, recomputed here: geometric mean of each word's top-tag probability
    keyed = sorted((statistics.geometric_mean(w.scores), min(w.scores), k)
                   for k, w in enumerate(words))
    assert [t["data"]["chunk_id"] for t in tasks] == [body[k]["chunk_id"] for *_, k in keyed]
    assert [t["data"]["rank"] for t in tasks] == list(range(1, len(tasks) + 1))
    for task, (conf, low, _) in zip(tasks, keyed, strict=True):
        assert task["data"]["confidence"] == pytest.approx(conf, abs=1e-6)
        assert task["predictions"][0]["score"] == task["data"]["confidence"]
        assert task["data"]["min_word_confidence"] == pytest.approx(low, abs=1e-6)
    assert tasks[0]["data"]["confidence"] < tasks[-1]["data"]["confidence"]
    # a tie (the same text twice) goes to the chunk that comes first in chunks.json
    order = [t["data"]["chunk_id"] for t in tasks]
    original = loop["chunks"][5]["chunk_id"]
    assert order.index("duplicate") == order.index(original) + 1

    # the word probabilities are the model's: a plain forward pass gives the same numbers
    import torch

    text = "Содержание золота 43,7 г/т."
    [w] = model.predict_words([text])
    enc = model.tokenizer([text[s:e] for s, e in w.offsets], is_split_into_words=True,
                          return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(model.model(**enc).logits[0], dim=-1)
    ids = enc.word_ids(0)
    firsts = [ids.index(k) for k in range(len(w.offsets))]
    assert w.scores == pytest.approx([float(probs[p].max()) for p in firsts], abs=1e-5)
    assert w.tags == [model.id2label[int(probs[p].argmax())] for p in firsts]


def test_limit_and_kinds(loop: dict, tmp_path: Path) -> None:
    full = [t.data.chunk_id for t in loop["full"].kept.tasks]
    top = export_annotations(loop["chunks_path"], loop["cold"], tmp_path / "top.json", limit=3,
                             progress=False)
    assert [t["data"]["chunk_id"] for t in _tasks(tmp_path / "top.json")] == full[:3]
    assert (top.report.tasks, top.report.candidates, top.report.limit) == (3, len(full), 3)
    cfg = NerInferenceConfig(chunk_kinds=("body", "table"))
    both = export_annotations(loop["chunks_path"], loop["cold"], tmp_path / "both.json",
                              config=cfg, progress=False)
    assert both.report.skipped_by_kind == {} and both.report.tasks == len(full) + 1
    assert "table-1" in {t.data.chunk_id for t in both.kept.tasks}


def test_bad_input_is_one_clear_error(loop: dict, tmp_path: Path) -> None:
    chunks, cold = loop["chunks_path"], loop["cold"]
    with pytest.raises(InputError, match="nope.json does not exist; make chunks.json with"):
        export_annotations(tmp_path / "nope.json", cold, tmp_path / "t.json", progress=False)
    (tmp_path / "empty.json").write_text("[]", encoding="utf-8")
    with pytest.raises(InputError, match="empty.json holds no chunks; make it with"):
        export_annotations(tmp_path / "empty.json", cold, tmp_path / "t.json", progress=False)
    (tmp_path / "tables.json").write_text(json.dumps([loop["chunks"][3]]), encoding="utf-8")
    with pytest.raises(InputError, match=r"no chunks of kinds \['body'\].*--kinds"):
        export_annotations(tmp_path / "tables.json", cold, tmp_path / "t.json", progress=False)
    with pytest.raises(InputError, match="no label_map.json.*train-bert-ner"):
        export_annotations(chunks, loop["base"], tmp_path / "t.json", progress=False)
    with pytest.raises(ConfigError, match="limit must be at least 1"):
        export_annotations(chunks, cold, tmp_path / "t.json", limit=0, progress=False)
    with pytest.raises(InputError, match="is a folder"):
        export_annotations(chunks, cold, tmp_path, progress=False)
    assert not (tmp_path / "t.json").exists()


def test_cli_command(loop: dict, tmp_path: Path) -> None:
    from geomas.cli import app

    out = tmp_path / "cli" / "tasks.json"
    result = CliRunner().invoke(app, [
        "export-annotations", str(loop["chunks_path"]), str(out), "--ner-model",
        str(loop["cold"]), "--limit", "2", "--kinds", "body,table"])
    assert result.exit_code == 0, result.output
    assert "2 tasks of 21 chunks" in result.output  # 20 body chunks and the table
    both = export_annotations(loop["chunks_path"], loop["cold"], tmp_path / "both.json",
                              config=NerInferenceConfig(chunk_kinds=("body", "table")),
                              progress=False)
    assert [t["data"]["chunk_id"] for t in _tasks(out)] == [
        t.data.chunk_id for t in both.kept.tasks[:2]]
    assert label_config_path(out).is_file()
    # a model folder that train-bert-ner did not write: one red line naming file and fix
    proc = subprocess.run(
        [sys.executable, "-m", "geomas.cli", "export-annotations", str(loop["chunks_path"]),
         str(tmp_path / "x.json"), "--ner-model", str(loop["base"])],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 3 and "Traceback" not in proc.stderr
    assert "label_map.json" in proc.stderr and "train-bert-ner" in proc.stderr


def _label_studio_export(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Label Studio exports for imported tasks: ids, and predictions kept as they were."""
    return [{"id": k, **copy.deepcopy(t), "annotations": [], "meta": {}}
            for k, t in enumerate(tasks, start=1)]


def _annotate(task: dict[str, Any], result: list[dict[str, Any]], *, cancelled: bool = False
              ) -> None:
    task["annotations"].append({
        "id": 1000 + task["id"], "completed_by": 1, "result": result,
        "was_cancelled": cancelled, "ground_truth": False,
        "created_at": "2026-11-02T10:00:00.000000Z", "updated_at": "2026-11-02T10:05:00.000000Z",
        "lead_time": 42.0, "task": task["id"]})


def _spans(result: list[dict[str, Any]]) -> set[tuple[int, int, str]]:
    return {(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result}


def test_reviewed_export_converts_and_trains(loop: dict, tmp_path: Path) -> None:
    from geomas.ner.train import train_ner

    export = _label_studio_export(_tasks(loop["root"] / "tasks.json"))
    # the reviewer works down the list; tasks with a few predictions make each edit visible
    rich = [t for t in export if len(t["predictions"][0]["result"]) >= 3
            and t["data"]["chunk_id"] != "astral"]
    accepted, relabelled, pruned, completed, cancelled = rich[:5]
    astral = next(t for t in export if t["data"]["chunk_id"] == "astral")
    expected: dict[int, set[tuple[int, int, str]]] = {}

    for task in (accepted, astral):  # accept the predictions as they are
        result = copy.deepcopy(task["predictions"][0]["result"])
        _annotate(task, result)
        expected[task["id"]] = _spans(result)

    result = copy.deepcopy(relabelled["predictions"][0]["result"])  # fix one label
    old = result[0]["value"]["labels"][0]
    result[0]["value"]["labels"] = ["ORE_COMPONENT" if old != "ORE_COMPONENT" else "ORE_BODIES"]
    _annotate(relabelled, result)
    expected[relabelled["id"]] = _spans(result)
    assert expected[relabelled["id"]] != _spans(relabelled["predictions"][0]["result"])

    result = copy.deepcopy(pruned["predictions"][0]["result"])  # delete one wrong span
    wrong = result.pop(1)
    _annotate(pruned, result)
    expected[pruned["id"]] = _spans(result)

    # add a span the model missed (from the corpus's gold), dropping predictions it overlaps
    text = completed["data"]["text"]
    predicted = _spans(completed["predictions"][0]["result"])
    s, e, label = next(g for g in loop["gold"][text] if g not in predicted)
    result = [r for r in copy.deepcopy(completed["predictions"][0]["result"])
              if r["value"]["end"] <= s or r["value"]["start"] >= e]
    result.append({"id": "added", "from_name": "label", "to_name": "text", "type": "labels",
                   "origin": "manual",
                   "value": {"start": s, "end": e, "text": text[s:e], "labels": [label]}})
    _annotate(completed, result)
    expected[completed["id"]] = _spans(result)

    _annotate(cancelled, copy.deepcopy(cancelled["predictions"][0]["result"]), cancelled=True)
    export_path = tmp_path / "project-1-at-2026-11-02.json"
    export_path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")

    report = convert_annotations(export_path, tmp_path / "bio", progress=False)
    assert report.tasks == len(export)
    assert report.tasks_converted == len(expected) == 5
    assert report.tasks_skipped == len(export) - 5  # not reviewed, or cancelled
    assert (report.spans_unaligned, report.text_mismatches) == (0, 0)
    full_report = json.loads(Path(report.report_path).read_text("utf-8"))
    assert not [n for n in full_report["notes"] if n["reason"] == "utf16_offsets"]
    assert {s["task_id"]: s["reason"] for s in full_report["skipped_tasks"]}[
        cancelled["id"]] == "all_annotations_cancelled"

    data = json.loads(Path(report.data_path).read_text("utf-8"))
    found: dict[int, set[tuple[int, int, str]]] = {}
    doc_names: dict[int, set[str]] = {}
    for rec in data["records"]:
        spans = bio_to_spans(rec["text"], rec["offsets"], rec["ner_tags"])
        found.setdefault(rec["task_id"], set()).update(
            (sp.start + rec["char_start"], sp.end + rec["char_start"], sp.label) for sp in spans)
        doc_names.setdefault(rec["task_id"], set()).add(rec["doc_name"])
    # the human annotations, not the predictions, are the training data
    assert found == expected
    assert (wrong["value"]["start"], wrong["value"]["end"], wrong["value"]["labels"][0]) \
        not in found[pruned["id"]]
    by_id = {t["id"]: t for t in export}
    assert all(names == {by_id[k]["data"]["source"]} for k, names in doc_names.items())

    cfg = NerTrainConfig(model_name=str(loop["base"]), output_dir=tmp_path / "model", epochs=1,
                         batch_size=16, learning_rate=1e-3)
    trained = train_ner(tmp_path / "bio", cfg, progress=False)
    assert trained.n_train > 0
    for name in ("config.json", "model.safetensors", "tokenizer.json", "label_map.json"):
        assert (tmp_path / "model" / name).is_file(), name
    # the next round starts from the model trained on the corrections
    again = export_annotations(loop["chunks_path"], tmp_path / "model", tmp_path / "round2.json",
                               limit=4, progress=False)
    assert again.report.tasks == 4 and again.report.model_version == "model"
