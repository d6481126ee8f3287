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
    cfg = NerTrainConfig(model_name=str(base), output_dir=root / "model", epochs=3,
                         batch_size=16, learning_rate=1e-3, early_stopping_patience=2)
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
    via_registry = mlflow.pyfunc.load_model("models:/geomas-ner/1").predict([text])[0]
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
