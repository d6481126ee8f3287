"""NER on real transformers: train a tiny model, extract, register and load back via MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from geomas.config import NerTrainConfig
from geomas.errors import ConfigError, InputError
from geomas.ner.annotations import convert_annotations
from geomas.ner.inference import decode_bio, load_bert_ner_model
from geomas.ner.train import resolve_model_path, split_records, train_and_log


@pytest.fixture(scope="module")
def trained(sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from geomas.models import make_tiny

    root = tmp_path_factory.mktemp("ner")
    convert_annotations(sample_corpus / "annotations", root / "bio", progress=False)
    base = make_tiny("ner", root / "tiny", corpus_dir=sample_corpus, seed=0)
    # enough epochs that the model tags entities on held-out text (its density reference)
    cfg = NerTrainConfig(model_name=str(base), output_dir=root / "model", epochs=8,
                         batch_size=16, learning_rate=3e-3, early_stopping_patience=3)
    result = train_and_log(root / "bio", cfg, data_dir=root / ".geomas", progress=False)
    (root / "result.json").write_text(result.model_dump_json(), encoding="utf-8")
    return {"root": root, "model": root / "model", "base": base, "data": root / ".geomas"}


def test_training_writes_model_labels_and_scores(trained: dict[str, Path]) -> None:
    model_dir = trained["model"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "label_map.json",
                 "evaluation_results.json"):
        assert (model_dir / name).is_file(), name
    results = json.loads((model_dir / "evaluation_results.json").read_text("utf-8"))
    assert results["eval_split"] == "test" and results["n_test"] > 0
    assert 0.0 <= results["micro_f1"] <= 1.0
    labels = json.loads((model_dir / "label_map.json").read_text("utf-8"))["label_list"]
    assert labels[0] == "O" and len(labels) == 35
    assert not (model_dir / "checkpoints").exists()


def test_registered_in_mlflow_and_loads_back(trained: dict[str, Path]) -> None:
    import mlflow

    result = json.loads((trained["root"] / "result.json").read_text("utf-8"))
    assert result["registered_version"] == "1"
    uri = f"sqlite:///{trained['data'] / 'mlflow/mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    version = client.get_model_version("geomas-ner", "1")
    assert version.tags["eval_split"] == "test"
    run = client.get_run(result["mlflow_run_id"])
    assert run.data.metrics["ner.micro_f1"] == pytest.approx(result["micro_f1"])
    text = "Месторождение Агинское расположено в Камчатском крае. Содержание золота 43,7 г/т."
    from geomas.registry.mlflow_models import load_registered_ner

    # geomas's loader checks the signed files; the version holds no pickle
    via_registry = load_registered_ner("models:/geomas-ner/1").predict(None, [text])[0]
    logged = {a.path for a in client.list_artifacts(version.run_id, "ner_model")}
    assert "ner_model/python_model.pkl" not in logged and "ner_model/ner_model.py" in logged, logged
    direct = load_bert_ner_model(trained["model"]).extract_entities(text).entities
    assert [(e.label, e.start, e.end) for e in via_registry] == [
        (e.label, e.start, e.end) for e in direct
    ]


def test_original_python_example_runs_unchanged(trained: dict[str, Path]) -> None:
    script = textwrap.dedent(f"""
        from geomas.core.inference.bert_ner_inference import load_bert_ner_model

        # Загрузить модель
        ner_model = load_bert_ner_model("{trained['model']}")

        # Извлечь сущности
        text = "Месторождение Агинское содержит золото 43,7 г/т и серебро 19,1 г/т."
        result = ner_model.extract_entities(text)

        # Вывести результаты
        for entity in result.entities:
            print(f"{{entity.label}}: {{entity.text}} (confidence: {{entity.confidence:.3f}})")
        print("done", len(result.entities))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("done")
    from geomas.ner import load_bert_ner_model as public_loader

    assert public_loader is load_bert_ner_model


def test_long_text_windows_and_batching_agree(trained: dict[str, Path]) -> None:
    model = load_bert_ner_model(trained["model"], max_length=32, stride=8, batch_size=4)
    sentence = "Средние содержания золота составляют 12,4 г/т, серебра 51,3 г/т. "
    long_text = sentence * 40  # far beyond one 32-token window
    one = model.extract_entities(long_text)
    spans = [(e.start, e.end) for e in one.entities]
    assert spans == sorted(spans)
    assert all(long_text[e.start:e.end] == e.text for e in one.entities)
    texts = [long_text, "Пирит и халькопирит.", "", sentence]
    batched = model.extract_batch(texts, batch_size=3)
    singles = [model.extract_entities(t) for t in texts]
    assert [[(e.label, e.start, e.end) for e in r.entities] for r in batched] == [
        [(e.label, e.start, e.end) for e in r.entities] for r in singles
    ]
    assert batched[2].entities == []


def test_decode_bio_rules() -> None:
    text = "золото 43,7 г/т серебро"
    offsets = [(0, 6), (7, 11), (12, 15), (16, 23)]
    ents = decode_bio(text, offsets, ["B-ORE_COMPONENT", "I-ORE_COMPONENT", "I-ORE_COMPONENT",
                                      "I-MINERALOGICAL"], [0.9, 0.8, 0.7, 0.5])
    assert [(e.label, e.text) for e in ents] == [("ORE_COMPONENT", "золото 43,7 г/т"),
                                                  ("MINERALOGICAL", "серебро")]
    assert ents[0].confidence == pytest.approx(0.8)


def test_split_never_shares_a_document() -> None:
    recs = [{"id": f"{d}-{i}", "doc_name": f"doc{d}", "split": "test" if d == 9 else "train",
             "tokens": ["a"], "ner_tags": ["O"]} for d in range(10) for i in range(3)]
    train, val, test = split_records(recs, 0.2, seed=1)
    docs = [{r["doc_name"] for r in part} for part in (train, val, test)]
    assert docs[2] == {"doc9"}
    assert not (docs[0] & docs[1]) and not (docs[0] & docs[2]) and not (docs[1] & docs[2])
    assert len(docs[1]) == 2


def test_unknown_model_name_says_how_to_provide_weights() -> None:
    with pytest.raises(ConfigError, match="not a local folder and not in the local Hugging Face"):
        resolve_model_path("DeepPavlov/rubert-base-cased-not-cached")


def test_bad_training_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="convert-annotations"):
        train_and_log(tmp_path, NerTrainConfig(model_name="x", output_dir=tmp_path / "m",
                                               register_model=False), data_dir=tmp_path)
    bad = tmp_path / "bert_training_data.json"
    bad.write_text(json.dumps({"label_list": ["O"], "records": [
        {"tokens": ["a", "b"], "ner_tags": ["O"]}]}), encoding="utf-8")
    with pytest.raises(InputError, match="record 0 has 2 tokens but 1 tags"):
        train_and_log(tmp_path, NerTrainConfig(model_name="x", output_dir=tmp_path / "m",
                                               register_model=False), data_dir=tmp_path)


@pytest.mark.slow
def test_tiny_ner_generalises_to_unseen_documents(tmp_path: Path) -> None:
    """Trained on generated training documents, scored on generated documents it never saw."""
    from geomas.models import make_tiny
    from geomas.sample import generate_sample_corpus

    corpus = tmp_path / "corpus"
    generate_sample_corpus(corpus, docs=24, seed=0)
    convert_annotations(corpus / "annotations", tmp_path / "bio", progress=False)
    base = make_tiny("ner", tmp_path / "tiny", corpus_dir=corpus, seed=0)
    cfg = NerTrainConfig(model_name=str(base), output_dir=tmp_path / "model", epochs=40,
                         batch_size=16, learning_rate=1e-3, register_model=False)
    result = train_and_log(tmp_path / "bio", cfg, data_dir=tmp_path / ".geomas", progress=False)
    assert result.eval_split == "test" and result.n_test > 0
    assert result.micro_f1 >= 0.80, result.per_type


def test_training_records_the_models_own_entity_density(trained: dict[str, Path]) -> None:
    from geomas.ner.shift import load_ner_profile

    profile = load_ner_profile(trained["model"])
    assert profile is not None
    results = json.loads((trained["model"] / "evaluation_results.json").read_text("utf-8"))
    assert profile.texts == results["n_test"] and profile.chars > 0
    assert profile.density == pytest.approx(1000 * profile.entities / profile.chars, abs=1e-3)
    assert profile.density > 0 and profile.gold_density and profile.gold_density > 0
    # densities per confidence floor: what a document tagged at that floor is compared with
    at = [profile.density_at[k] for k in ("0.0", "0.3", "0.5", "0.7", "0.9")]
    assert at[0] == profile.density and at == sorted(at, reverse=True)
    assert profile.reference_density(0.5) == profile.density_at["0.5"]
    assert profile.reference_density(0.6) == profile.density_at["0.5"]
    assert 0 < profile.confidence["p10"] <= profile.confidence["p50"] <= profile.confidence[
        "p90"] <= 1


@pytest.mark.slow
def test_domain_shift_warns_and_skips_ner_templates(
    real_ru: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """The demo's NER (trained as `make demo` trains it) on a real decree and on two reports."""
    from geomas.config import IngestConfig, NerInferenceConfig, QAConfig
    from geomas.ingest.run import ingest_folder
    from geomas.models import make_tiny
    from geomas.qa.generate import generate_qa_pairs
    from geomas.sample import generate_sample_corpus

    corpus = tmp_path / "corpus"
    generate_sample_corpus(corpus, docs=24, seed=0)
    convert_annotations(corpus / "annotations", tmp_path / "bio", progress=False)
    base = make_tiny("ner", tmp_path / "tiny", corpus_dir=corpus, seed=0)
    model = tmp_path / "model"
    train_and_log(tmp_path / "bio", NerTrainConfig(
        model_name=str(base), output_dir=model, epochs=40, batch_size=16, learning_rate=1e-3,
        register_model=False), data_dir=tmp_path / ".geomas", progress=False)
    src = tmp_path / "src"
    src.mkdir()
    reports = sorted(p.name for p in (corpus / "docs").glob("report_*"))[:2]
    for name in reports:
        (src / name).write_bytes((corpus / "docs" / name).read_bytes())
    # a government decree on project documentation: real Russian, far from the sample reports
    (src / "pp87_project_docs.docx").write_bytes((real_ru / "pp87_project_docs.docx").read_bytes())
    ingest_folder(src, tmp_path / "out", IngestConfig(), progress=False)
    ner_cfg = NerInferenceConfig()  # the CLI's and the pipeline's floor, 0.5
    out = tmp_path / "qa" / "qa_pairs.json"
    with caplog.at_level("WARNING", logger="geomas.ner.shift"):
        summary = generate_qa_pairs(tmp_path / "out" / "chunks.json", model, out,
                                    config=QAConfig(), ner_config=ner_cfg, progress=False).report
    on_disk = json.loads((out.parent / "qa_summary.json").read_text("utf-8"))["ner_shift"]
    docs = json.loads((tmp_path / "out" / "documents.json").read_text("utf-8"))
    by_name = {d["source"]: d["doc_id"] for d in docs}
    law = on_disk[by_name["pp87_project_docs.docx"]]
    assert law["shifted"] and law["action"] == "ner_templates_skipped", (law, on_disk)
    assert law["ratio"] > QAConfig().ner_shift.max_ratio
    assert any("NER DOMAIN SHIFT" in r.message and "pp87_project_docs.docx" in r.message
               for r in caplog.records)
    for name in reports:
        assert not on_disk[by_name[name]]["shifted"], (name, on_disk[by_name[name]])
    pairs = json.loads(out.read_text("utf-8"))
    law_id = by_name["pp87_project_docs.docx"]
    assert not [p for p in pairs if p["doc_id"] == law_id and p["generator"] == "template"]
    assert [p for p in pairs if p["doc_id"] != law_id and p["generator"] == "template"]
    assert summary.rejects_by_rule.get("off_profile", 0) > 0  # a decree is off-profile too
    # with legal templates allowed, the shift alone keeps the decree's NER entities out
    legal_too = QAConfig(template_profiles=("geology", "legal"))
    again = generate_qa_pairs(tmp_path / "out" / "chunks.json", model, tmp_path / "qa2" / "q.json",
                              config=legal_too, ner_config=ner_cfg, progress=False)
    assert not [p for p in again.kept.pairs if p.doc_id == law_id and p.generator == "template"]
    assert again.report.rejects_by_rule.get("ner_domain_shift", 0) > 0
    assert {r.rule for r in again.rejects if r.doc_id == law_id and r.entity} <= {
        "ner_domain_shift", "low_confidence"}
