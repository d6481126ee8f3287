"""The data pipeline on the embedded stack, driven through the CLI as a user runs it.

Each run happens in a subprocess: ZenML binds its config dir once per process, and every test
project gets its own data dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GEOMAS = [sys.executable, "-m", "geomas.cli"]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
        timeout=900,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def project(sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from geomas.config import NerTrainConfig
    from geomas.models import make_tiny
    from geomas.ner.annotations import convert_annotations
    from geomas.ner.train import train_ner

    root = tmp_path_factory.mktemp("project")
    models = tmp_path_factory.mktemp("models")
    convert_annotations(sample_corpus / "annotations", models / "bio", progress=False)
    base = make_tiny("ner", models / "tiny", corpus_dir=sample_corpus)
    train_ner(models / "bio", NerTrainConfig(model_name=str(base), output_dir=models / "ner",
                                             epochs=20, learning_rate=2e-3,
                                             register_model=False), progress=False)
    (root / "run.yaml").write_text(
        "project:\n  data_dir: .geomas\n  experiment_name: geomas-test\n"
        f"data:\n  source_dir: {sample_corpus / 'docs'}\n  output_dir: out\n"
        "  ingest:\n    workers: 2\n"
        f"  ner:\n    model_path: {models / 'ner'}\n    min_confidence: 0.5\n"
        "  qa:\n    num_pairs: 2\n",
        encoding="utf-8",
    )
    first = _run([*GEOMAS, "run", "data", "--config", "run.yaml"], cwd=root)
    (root / "first_run.log").write_text(first.stdout + first.stderr, encoding="utf-8")
    return root


def test_outputs_and_rejects(project: Path, sample_corpus: Path) -> None:
    log = (project / "first_run.log").read_text("utf-8")
    assert "docling-native-pdf" in log, "the run must say which PDF parser ran"
    assert "geomas_chunks    : passed (report " in log
    chunks = json.loads((project / "out/chunks.json").read_text("utf-8"))
    manifest = json.loads((sample_corpus / "corpus_manifest.json").read_text("utf-8"))
    assert {c["source"] for c in chunks} == {d["file"] for d in manifest["documents"]}
    rejects = (project / "out/rejects.jsonl").read_text("utf-8").splitlines()
    assert len(rejects) == len(manifest["bad_files"]) == 4
    summary = json.loads((project / "out/validation/validation_summary.json").read_text("utf-8"))
    assert summary["success"] is True
    assert Path(summary["report_path"]).is_file()


def test_run_is_listed_by_zenml(project: Path) -> None:
    env = {"ZENML_CONFIG_PATH": str(project / ".geomas/zenml"),
           "ZENML_ANALYTICS_OPT_IN": "false"}
    zenml = str(Path(sys.executable).parent / "zenml")
    proc = _run([zenml, "pipeline", "runs", "list", "-o", "json"], cwd=project, env=env)
    runs = json.loads(proc.stdout[proc.stdout.index("{"):])["items"]
    assert [(r["pipeline"], r["status"], r["stack"]) for r in runs] == [
        ("geomas_data", "completed", "geomas-local")
    ]


def test_mlflow_run_in_sqlite_store(project: Path) -> None:
    import mlflow

    db = project / ".geomas/mlflow/mlflow.db"
    assert db.is_file()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name("geomas-test")
    assert exp is not None
    assert exp.artifact_location.startswith((project / ".geomas").resolve().as_uri())
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) >= 1
    metrics = runs[-1].data.metrics
    assert metrics["ingest.rejected"] == 4
    assert metrics["ingest.chunks"] > 0
    assert metrics["validate_chunks.success"] == 1.0
    assert runs[-1].data.params["ingest.pdf_parser"] == "docling-native-pdf"
    artifacts = {a.path for a in client.list_artifacts(runs[-1].info.run_id)}
    assert {"ingest", "validate_chunks"} <= artifacts
    assert metrics["ner.entities"] > 0


def test_documents_become_instruct_files(project: Path) -> None:
    import datasets

    out = project / "out"
    train = out / "instruct_dataset_train.json"
    val = out / "instruct_dataset_val.json"
    ds = datasets.load_dataset("json", data_files={"train": str(train), "val": str(val)})
    assert ds["train"].column_names == ["instruction", "input", "output"]
    assert ds["train"].num_rows > 0 and ds["val"].num_rows > 0
    assert "\n\nВопрос: " in ds["train"][0]["instruction"]
    # lineage: every example goes back to a QA pair, a chunk and a document
    qa = {p["qa_id"]: p for p in json.loads((out / "qa_pairs.json").read_text("utf-8"))}
    lineage = [json.loads(line) for line in
               (out / "instruct_dataset_train.lineage.jsonl").read_text("utf-8").splitlines()]
    assert len(lineage) == ds["train"].num_rows
    assert all(row["id"] in qa for row in lineage)
    docs = {"train": set(), "val": set()}
    for split in docs:
        for line in (out / f"instruct_dataset_{split}.lineage.jsonl").read_text().splitlines():
            docs[split].add(json.loads(line)["group"])
    assert not docs["train"] & docs["val"], "a document landed in two splits"
    # every stage accounted for its rejects
    for name in ("qa_rejects.jsonl", "clean_rejects.jsonl", "clean_report.json",
                 "split_report.json", "class_weights.json"):
        assert (out / name).is_file(), name
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / '.geomas/mlflow/mlflow.db'}")
    exp = client.get_experiment_by_name("geomas-test")
    metrics = client.search_runs([exp.experiment_id])[-1].data.metrics
    assert metrics["qa.kept"] == len(qa)
    assert metrics["clean.kept"] + metrics["clean.rejected"] == len(qa)
    assert metrics["split.train"] == ds["train"].num_rows


def test_entities_keep_lineage(project: Path) -> None:
    chunks = {c["chunk_id"]: c for c in
              json.loads((project / "out/chunks.json").read_text("utf-8"))}
    entities = json.loads((project / "out/entities.json").read_text("utf-8"))
    assert entities["model_path"]
    items = entities["items"]
    # NER reads the body chunks (ner.chunk_kinds); tables, TOCs and title pages are skipped
    body = [cid for cid, c in chunks.items() if c["kind"] == "body"]
    assert [i["chunk_id"] for i in items] == body
    assert len(body) < len(chunks)  # the sample reports have tables
    found = [(i, e) for i in items for e in i["entities"]]
    assert found
    for item, ent in found:
        chunk = chunks[item["chunk_id"]]
        assert item["doc_id"] == chunk["doc_id"]
        assert chunk["text"][ent["start"]:ent["end"]] == ent["text"]


def test_cli_flow_gives_the_pipelines_qa_pairs(project: Path, tmp_path: Path) -> None:
    """makedataset -> generate-qa-pairs -> format-instruct-dataset with the run config gives
    the QA pairs `geomas run data` gave: one stage function, one config, one set of defaults."""
    import yaml

    cfg = yaml.safe_load((project / "run.yaml").read_text("utf-8"))
    ner_model = cfg["data"]["ner"]["model_path"]
    config = str(project / "run.yaml")
    _run([*GEOMAS, "makedataset", cfg["data"]["source_dir"], "cli", "--config", config],
         cwd=tmp_path)
    _run([*GEOMAS, "generate-qa-pairs", "cli/chunks.json", ner_model, "cli/qa_pairs.json",
          "--config", config], cwd=tmp_path)
    _run([*GEOMAS, "format-instruct-dataset", "cli/qa_pairs.json", "cli/instruct_dataset.json",
          "--config", config], cwd=tmp_path)

    def pairs(path: Path) -> list[tuple[str, str, str, str]]:
        return sorted((p["qa_id"], p["question"], p["answer"], p["entity_type"])
                      for p in json.loads(path.read_text("utf-8")))

    pipeline_pairs = pairs(project / "out/qa_pairs.json")
    assert pipeline_pairs and pairs(tmp_path / "cli/qa_pairs.json") == pipeline_pairs
    # the low-confidence entities are dropped the same way (min_confidence 0.5 in both)
    ents = json.loads((project / "out/entities.json").read_text("utf-8"))
    assert all(e["confidence"] >= 0.5 for i in ents["items"] for e in i["entities"])
    # and both flows clean: every kept example of the CLI flow was kept by the pipeline
    cli_train = json.loads((tmp_path / "cli/instruct_dataset_train.json").read_text("utf-8"))
    cli_val = json.loads((tmp_path / "cli/instruct_dataset_val.json").read_text("utf-8"))
    run_train = json.loads((project / "out/instruct_dataset_train.json").read_text("utf-8"))
    run_val = json.loads((project / "out/instruct_dataset_val.json").read_text("utf-8"))
    key = lambda r: (r["instruction"], r["output"])  # noqa: E731
    assert sorted(map(key, cli_train + cli_val)) == sorted(map(key, run_train + run_val))


def test_nothing_written_outside_project(project: Path) -> None:
    # the project holds only what the user made plus .geomas and the outputs
    assert sorted(p.name for p in project.iterdir()) == [
        ".geomas", "first_run.log", "out", "run.yaml"
    ]


def test_rerun_is_incremental_and_init_idempotent(project: Path) -> None:
    second = _run([*GEOMAS, "run", "data", "--config", "run.yaml", "--json"], cwd=project)
    summary = json.loads(second.stdout)  # stdout holds the JSON summary and nothing else
    assert summary["pipeline"] == "geomas_data" and summary["status"] == "completed"
    assert summary["run_id"] and summary["run_name"]
    assert summary["ingest"]["parsed"] == 0 and summary["ingest"]["cached"] > 0
    stages = {s["stage"].split()[0]: s for s in summary["stages"]}
    assert stages["ingest"]["rejected"] == 4 and stages["qa"]["kept"] > 0
    assert Path(summary["outputs"]["instruct_dataset_train"]).is_file()
    assert Path(summary["outputs"]["qa_pairs"]).is_file()
    assert {v["suite"]: v["success"] for v in summary["validation"]} == {
        "geomas_chunks": True, "geomas_qa_pairs": True, "geomas_examples": True}
    init = _run([*GEOMAS, "init", "--data-dir", ".geomas"], cwd=project)
    assert "nothing (already set up)" in init.stdout


def test_validation_policy_fail_stops_the_run(project: Path, tmp_path: Path) -> None:
    src = tmp_path / "docs"
    src.mkdir()
    (src / "english.md").write_text("# Report\n\nThis deposit text is in English only.\n",
                                    encoding="utf-8")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"project:\n  data_dir: {project / '.geomas'}\n"
        f"data:\n  source_dir: {src}\n  output_dir: {tmp_path / 'out'}\n"
        "  validation:\n    policy: fail\n    profile: geology\n",
        encoding="utf-8",
    )
    proc = _run([*GEOMAS, "run", "data", "--config", str(cfg)], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    # one error line naming the failed step, not ZenML's tracebacks
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "step validate_chunks failed" in lines[-1], lines
    summary = json.loads((tmp_path / "out/validation/validation_summary.json").read_text("utf-8"))
    assert summary["success"] is False
    assert any("cyrillic" in str(r["column"]).lower()
               for r in summary["results"] if not r["success"])
