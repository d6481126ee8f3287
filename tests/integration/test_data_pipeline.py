"""The data pipeline on the embedded stack, driven through the CLI as a user runs it.

Each run happens in a subprocess: ZenML binds its config dir once per process, and every test
project gets its own data dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    # paths only: every stage runs on the config models' defaults, which the CLI shares
    (root / "run.yaml").write_text(
        "project:\n  data_dir: .geomas\n  experiment_name: geomas-test\n"
        f"data:\n  source_dir: {sample_corpus / 'docs'}\n  output_dir: out\n"
        f"  ner:\n    model_path: {models / 'ner'}\n",
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
    """makedataset -> generate-qa-pairs -> clean-dataset / format-instruct-dataset, with no
    config at all, give the chunks, QA pairs, cleaning and examples `geomas run data` gave with
    a run config of paths only: one stage function, one config model, one set of defaults."""
    import yaml

    cfg = yaml.safe_load((project / "run.yaml").read_text("utf-8"))
    ner_model = cfg["data"]["ner"]["model_path"]
    _run([*GEOMAS, "makedataset", cfg["data"]["source_dir"], "cli"], cwd=tmp_path)
    _run([*GEOMAS, "generate-qa-pairs", "cli/chunks.json", ner_model, "cli/qa_pairs.json"],
         cwd=tmp_path)
    _run([*GEOMAS, "clean-dataset", "cli/qa_pairs.json", "cli/clean/qa_pairs.json"],
         cwd=tmp_path)
    _run([*GEOMAS, "format-instruct-dataset", "cli/qa_pairs.json", "cli/instruct_dataset.json"],
         cwd=tmp_path)
    cli, run = tmp_path / "cli", project / "out"

    def load(path: Path) -> Any:
        return json.loads(path.read_text("utf-8"))

    # validated chunks (the input of NER) and the QA pairs, field by field and in order
    assert load(cli / "chunks.json") == load(run / "chunks.json")
    fields = ("qa_id", "chunk_id", "doc_id", "question", "answer", "entity_type", "context")
    cli_pairs = [tuple(p[f] for f in fields) for p in load(cli / "qa_pairs.json")]
    assert cli_pairs and cli_pairs == [tuple(p[f] for f in fields)
                                       for p in load(run / "qa_pairs.json")]
    # the low-confidence entities are dropped the same way (ner.min_confidence, default 0.5)
    ents = load(run / "entities.json")
    assert all(e["confidence"] >= 0.5 for i in ents["items"] for e in i["entities"])
    # clean-dataset removes the pairs the pipeline's clean step removed, by the same rules
    def rules(path: Path) -> list[tuple[str, str]]:
        return sorted((r["id"], r["rule"]) for r in map(json.loads,
                                                         path.read_text("utf-8").splitlines()))

    assert rules(cli / "clean/qa_pairs_rejects.jsonl") == rules(run / "clean_rejects.jsonl")
    assert len(load(cli / "clean/qa_pairs.json")) == load(run / "clean_report.json")["kept"]
    # format-instruct-dataset cleans and splits as the pipeline does: the same files
    for split in ("train", "val"):
        assert load(cli / f"instruct_dataset_{split}.json") == load(
            run / f"instruct_dataset_{split}.json"), split


def test_nothing_written_outside_project(project: Path) -> None:
    # the project holds only what the user made plus .geomas and the outputs
    assert sorted(p.name for p in project.iterdir()) == [
        ".geomas", "first_run.log", "out", "run.yaml"
    ]


@pytest.mark.slow
def test_rerun_is_incremental_and_init_idempotent(project: Path) -> None:
    second = _run([*GEOMAS, "run", "data", "--config", "run.yaml", "--json"], cwd=project)
    summary = json.loads(second.stdout)  # stdout holds the JSON summary and nothing else
    assert summary["pipeline"] == "geomas_data" and summary["status"] == "completed"
    assert summary["run_id"] and summary["run_name"]
    assert summary["ingest"]["parsed"] == 0 and summary["ingest"]["cached"] > 0
    stages = {s["stage"].split()[0]: s for s in summary["stages"]}
    assert stages["ingest"]["rejected"] == 4 and stages["qa"]["kept"] > 0
    assert Path(summary["outputs"]["instruct_dataset_train"]).is_file()
    # the run that wrote the split files is recorded next to them (a model version links it)
    from geomas.formats.instruct import data_run_of

    train_file = Path(summary["outputs"]["instruct_dataset_train"])
    record = json.loads((train_file.parent / "instruct_dataset_data_run.json").read_text("utf-8"))
    assert data_run_of(train_file) == record["data_pipeline_run_id"] and len(
        record["data_pipeline_run_id"]) == 36
    assert Path(summary["outputs"]["qa_pairs"]).is_file()
    assert {v["suite"]: v["success"] for v in summary["validation"]} == {
        "geomas_chunks": True, "geomas_qa_pairs": True, "geomas_examples": True}
    init = _run([*GEOMAS, "init", "--data-dir", ".geomas"], cwd=project)
    assert "nothing (already set up)" in init.stdout


@pytest.mark.slow
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
    assert "english.md: expect_column_values_to_be_between(cyrillic_share)" in lines[-1], lines
    summary = json.loads((tmp_path / "out/validation/validation_summary.json").read_text("utf-8"))
    assert summary["success"] is False
    assert any("cyrillic" in str(r["column"]).lower()
               for r in summary["results"] if not r["success"])


ENGLISH = "\n\n".join(
    "The Kedrovoe deposit is hosted by Devonian volcanic rocks; the ore bodies are quartz "
    f"veins {n} to {n + 3} m thick with silver grades of {100 + 10 * n} g/t." for n in range(12))
REFERENCES = "\n\n".join(
    f"{n}. Smith J., Brown K. Epithermal silver deposits of the North-East. Economic Geology, "
    f"{1990 + n}, vol. {80 + n}, pp. {100 + n}-{120 + n}." for n in range(1, 13))


def run_config_for(project: Path, src: Path, out: Path) -> Path:
    """A run config on `project`'s data dir and NER model, for another source folder."""
    import yaml

    ner = yaml.safe_load((project / "run.yaml").read_text("utf-8"))["data"]["ner"]
    cfg = out.parent / "run.yaml"
    cfg.write_text(yaml.safe_dump({
        "project": {"data_dir": str(project / ".geomas"), "experiment_name": "geomas-test"},
        "data": {"source_dir": str(src), "output_dir": str(out), "ner": ner},
    }), encoding="utf-8")
    return cfg


@pytest.mark.slow
def test_failing_document_is_excluded_and_the_rest_flows_on(
    project: Path, sample_corpus: Path, tmp_path: Path
) -> None:
    """Under the default policy a document in the wrong language is named, left out of NER and
    QA, and recorded; a Russian thesis whose bibliography is English is kept."""
    src = tmp_path / "docs"
    src.mkdir()
    for name in ("report_003_kumrochskoe.docx", "report_005_utyosnoe.docx"):
        shutil.copy(sample_corpus / "docs" / name, src / name)
    tasks = json.loads((sample_corpus / "annotations/label_studio_export.json").read_text("utf-8"))
    body = "\n\n".join(t["data"]["text"] for t in tasks
                        if t["data"]["doc_name"] == "report_001_kedrovoe.pdf")
    (src / "thesis.md").write_text(f"# Диссертация\n\n{body}\n\n## References\n\n{REFERENCES}\n",
                                   encoding="utf-8")
    (src / "english.md").write_text(f"# Report\n\n{ENGLISH}\n", encoding="utf-8")
    english_id = hashlib.sha256((src / "english.md").read_bytes()).hexdigest()
    cfg = run_config_for(project, src, tmp_path / "out")

    proc = _run([*GEOMAS, "run", "data", "--config", str(cfg)], cwd=tmp_path)

    out = tmp_path / "out"
    assert "geomas_chunks    : 1 of 4 documents excluded" in proc.stdout
    assert "excluded english.md: expect_column_values_to_be_between(cyrillic_share)" in (
        proc.stdout)
    rejects = [json.loads(x) for x in (out / "validation/rejects.jsonl").read_text().splitlines()]
    assert [(r["source"], r["doc_id"], r["stage"], r["rule"]) for r in rejects] == [
        ("english.md", english_id, "validate", "chunk_validation")]
    summary = json.loads((out / "validation/validation_summary.json").read_text("utf-8"))
    documents = {d["source"]: d for d in summary["documents"]}
    assert documents["english.md"]["excluded"] is True
    # the thesis's English references fail the Cyrillic check, within the tolerance
    assert documents["thesis.md"]["excluded"] is False
    assert "tolerated" in documents["thesis.md"]["failures"][0]
    # the excluded document reaches neither NER nor QA; the others do
    chunks = json.loads((out / "chunks.json").read_text("utf-8"))
    assert {c["source"] for c in chunks} == {"report_003_kumrochskoe.docx",
                                            "report_005_utyosnoe.docx", "thesis.md"}
    entities = json.loads((out / "entities.json").read_text("utf-8"))["items"]
    by_doc = {c["doc_id"]: c["source"] for c in chunks}
    assert {by_doc[i["doc_id"]] for i in entities} == set(by_doc.values())
    pairs = json.loads((out / "qa_pairs.json").read_text("utf-8"))
    assert pairs and english_id not in {p["doc_id"] for p in pairs}


@pytest.mark.slow
def test_interrupted_data_run_leaves_its_new_documents_new(
    project: Path, sample_corpus: Path, tmp_path: Path
) -> None:
    """SIGTERM a data run right after ingest; train on the previous complete dataset.

    documents.json then lists the new documents, but no train file holds them: the version's
    watermark names exactly the documents behind its train/val/test files, and the next
    retrain check counts the others as new.
    """
    import signal
    import time

    import mlflow
    import yaml

    from geomas.formats import read_examples
    from geomas.hashing import sha256_file
    from geomas.models import make_tiny
    from geomas.trigger.watermark import champion_watermark

    ner = yaml.safe_load((project / "run.yaml").read_text("utf-8"))["data"]["ner"]["model_path"]
    reports = sorted((sample_corpus / "docs").glob("report_*"))
    assert len(reports) >= 6
    (tmp_path / "corpus").mkdir()
    for path in reports[:4]:
        shutil.copy(path, tmp_path / "corpus" / path.name)
    make_tiny("lm", tmp_path / "tiny-lm", corpus_dir=sample_corpus)
    (tmp_path / "run.yaml").write_text(
        "project:\n  data_dir: .geomas\n  experiment_name: geomas-interrupted\n"
        f"data:\n  source_dir: corpus\n  output_dir: out\n  ner:\n    model_path: {ner}\n"
        "training:\n  model: tiny-lm\n  train_file: out/instruct_dataset_train.json\n"
        "  val_file: out/instruct_dataset_val.json\n"
        "  test_file: out/instruct_dataset_test.json\n  output_dir: sft\n"
        "  sft:\n    method: qlora\n    max_length: 256\n    epochs: 1\n"
        "  evaluation:\n    max_new_tokens: 4\n"
        "retrain:\n  min_new_docs: 2\n  run_data_pipeline: false\n",
        encoding="utf-8",
    )
    _run([*GEOMAS, "run", "data", "--config", "run.yaml"], cwd=tmp_path)
    out = tmp_path / "out"
    split_files = [out / f"instruct_dataset_{s}.json" for s in ("train", "val", "test")]
    before = [sha256_file(p) for p in split_files]
    trained_docs = {sha256_file(p) for p in reports[:4]}

    for path in reports[4:]:
        shutil.copy(path, tmp_path / "corpus" / path.name)
    proc = subprocess.Popen([*GEOMAS, "run", "data", "--config", "run.yaml"], cwd=tmp_path,
                            env=dict(os.environ), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 600
    for line in proc.stdout:  # the ingest step's last line: "ingested N files: ..."
        seen.append(line)
        if " ingested " in line and " files: " in line:
            break
        assert time.monotonic() < deadline, "".join(seen[-40:])
    else:
        raise AssertionError("the data run ended before ingest finished:\n" + "".join(seen))
    os.killpg(proc.pid, signal.SIGTERM)
    rest, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0, "".join(seen) + rest
    listed = json.loads((out / "documents.json").read_text("utf-8"))
    assert len({d["doc_id"] for d in listed
                if d.get("status") in ("parsed", "cached")}) == len(reports)
    # the split files are still those of the complete run
    assert [sha256_file(p) for p in split_files] == before

    _run([*GEOMAS, "run", "training", "--config", "run.yaml"], cwd=tmp_path)
    _run([*GEOMAS, "promote", "geomas-sft", "1", "--force", "--reason", "test champion",
          "--data-dir", ".geomas"], cwd=tmp_path)
    behind = {str(e.group) for p in split_files for e in read_examples(p)}
    assert behind == trained_docs
    uri = f"sqlite:///{tmp_path / '.geomas/mlflow/mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mark = champion_watermark("geomas-sft", mlflow.MlflowClient(uri, registry_uri=uri))
    assert mark is not None and set(mark.doc_ids) == trained_docs

    check = _run([*GEOMAS, "retrain", "check", "--config", "run.yaml", "--json", "--dry-run"],
                 cwd=tmp_path)
    decision = json.loads(check.stdout)
    assert decision["new_docs"] == len(reports) - 4 and decision["outcome"] == "launch", decision
