"""Uploads stay inside the corpus folder; promote/rollback record the logged-in user."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.panel.conftest import MODEL, Project, bearer, login, session_csrf


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_file():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_path_traversal_upload_is_refused_and_writes_nothing(client: Any,
                                                            project: Project) -> None:
    tmp_root = project.root.parent
    before = _tree(tmp_root)
    for name in ("../../x.pdf", "../x.pdf", "/tmp/x.pdf", str(tmp_root / "x.pdf"),
                 "..\\..\\x.pdf", "sub/x.pdf", "C:x.pdf", ".hidden.pdf", ".."):
        # ("C:\\x.pdf" never arrives as such: python-multipart keeps only "x.pdf" of it)
        got = client.post("/api/corpus/upload", headers=bearer("operator"),
                          files={"file": (name, b"%PDF-1.4 evil", "application/pdf")})
        assert got.status_code == 400, (name, got.text)
        assert "file name" in got.json()["message"]
    assert _tree(tmp_root) == before
    assert not Path("/tmp/x.pdf").exists()


def test_upload_stores_dedups_and_limits(client: Any, project: Project) -> None:
    ok = client.post("/api/corpus/upload", headers=bearer("operator"),
                     files={"file": ("Отчёт 2024 <b>.PDF", b"%PDF-1.4 new", "application/pdf")})
    assert ok.status_code == 201, ok.text
    stored = ok.json()["name"]
    assert (project.corpus / stored).read_bytes() == b"%PDF-1.4 new"
    again = client.post("/api/corpus/upload", headers=bearer("operator"),
                        files={"file": ("other-name.pdf", b"%PDF-1.4 new", "application/pdf")})
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["duplicate_of"] == stored
    wrong = client.post("/api/corpus/upload", headers=bearer("operator"),
                        files={"file": ("x.exe", b"MZ", "application/octet-stream")})
    assert wrong.status_code == 400 and ".pdf" in wrong.json()["message"]
    big = client.post("/api/corpus/upload", headers=bearer("operator"),
                      files={"file": ("big.pdf", b"x" * 5000, "application/pdf")})
    assert big.status_code == 413 and "max_upload_bytes" in big.json()["message"]
    names = {d["name"] for d in client.get("/api/corpus", headers=bearer("viewer")).json()[
        "documents"]}
    assert names == {"report-1.pdf", stored}
    assert sorted(p.name for p in project.corpus.iterdir()) == sorted(names)  # no leftovers


def _register(versions: list[dict[str, float]]) -> list[str]:
    import mlflow

    from geomas.registry.promotion import record_metrics

    client = mlflow.MlflowClient()
    client.create_registered_model(MODEL)
    out = []
    for metrics in versions:
        version = str(client.create_model_version(MODEL, source="/nowhere").version)
        record_metrics(MODEL, version, metrics)
        out.append(version)
    return out


def test_promote_and_rollback_record_the_logged_in_user(client: Any, project: Project) -> None:
    v1, v2, v3 = _register([{"token_f1": 0.5, "perplexity_ratio": 1.0},
                            {"token_f1": 0.7, "perplexity_ratio": 1.0},
                            {"token_f1": 0.1, "perplexity_ratio": 1.0}])
    login(client, "anna")
    csrf = {"X-CSRF-Token": session_csrf(client)}
    assert client.post(f"/api/models/{MODEL}/promote", json={"version": v1},
                       headers=csrf).status_code == 200
    got = client.post(f"/api/models/{MODEL}/promote", json={"version": v2}, headers=csrf)
    assert got.status_code == 200 and got.json()["decision"] == "promoted", got.text
    # an operator may not move the champion
    assert client.post(f"/api/models/{MODEL}/promote", json={"version": v3},
                       headers=bearer("operator")).status_code == 403
    # a worse version: refused by the gate; force needs a reason
    worse = client.post(f"/api/models/{MODEL}/promote", json={"version": v3}, headers=csrf)
    assert worse.status_code == 409 and "force" in worse.json()["message"]
    no_reason = client.post(f"/api/models/{MODEL}/promote", json={"version": v3, "force": True},
                            headers=csrf)
    assert no_reason.status_code == 409 and "reason" in no_reason.json()["message"]
    back = client.post(f"/api/models/{MODEL}/rollback", json={"reason": "v2 answers worse"},
                       headers=bearer("approver"))
    assert back.status_code == 200 and back.json()["version"] == v1, back.text
    model = client.get(f"/api/models/{MODEL}", headers=bearer("viewer")).json()
    assert model["champion"] == v1
    assert {v["version"]: v["aliases"] for v in model["versions"]} == {
        v1: ["champion"], v2: [], v3: []}  # the rollback cleared previous-champion
    assert {v["version"]: v["metrics"]["token_f1"] for v in model["versions"]} == {
        v1: 0.5, v2: 0.7, v3: 0.1}
    assert "Model geomas-sft" in client.get(f"/models/{MODEL}").text
    # `geomas models history` (the CLI, a separate process) shows who moved it
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")
           and k != "GEOMAS_MLFLOW_RESOLVED"}
    proc = subprocess.run([sys.executable, "-m", "geomas.cli", "models", "history", MODEL,
                           "--json", "--config", str(project.run_config)],
                          capture_output=True, text=True, env=env, cwd=project.root, check=False)
    assert proc.returncode == 0, proc.stderr
    moves = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(m["action"], m["to_version"], m["actor"]) for m in moves] == [
        ("promote", v1, "anna"), ("promote", v2, "anna"), ("rollback", v1, "anna")]
    assert moves[-1]["reason"].endswith("reason: v2 answers worse")
    hist = client.get(f"/api/models/{MODEL}/history", headers=bearer("viewer")).json()
    assert [h["actor"] for h in hist] == ["anna"] * 3


def test_models_page_shows_the_sample_generations_of_champion_and_challenger(
    client: Any, project: Project
) -> None:
    """The table the training run logged (prompt, reference, base, tuned, champion answers)
    is on the models page for the champion and the challenger, and in the API."""
    import mlflow

    from geomas.registry.promotion import promote_if_better
    from geomas.tracking import ensure_experiment

    mlflow_client = mlflow.MlflowClient()
    mlflow_client.create_registered_model(MODEL)
    exp = ensure_experiment("panel-samples", project.data_dir)
    table = {"columns": ["id", "prompt", "reference", "base", "tuned", "champion"],
             "data": [["e1", "Что такое керн?", "Образец породы.", "керн керн",
                       "Образец породы из скважины.", None]]}
    with mlflow.start_run(experiment_id=exp):
        mlflow.log_dict(table, "eval/sample_generations.json")
        run_id = mlflow.active_run().info.run_id
    version = str(mlflow_client.create_model_version(MODEL, source="/nowhere",
                                                     run_id=run_id).version)
    bare = str(mlflow_client.create_model_version(MODEL, source="/nowhere").version)
    promote_if_better(MODEL, version, {"token_f1": 0.4, "perplexity_ratio": 1.0})
    mlflow_client.set_registered_model_alias(MODEL, "challenger", bare)

    got = client.get(f"/api/models/{MODEL}/versions/{version}/samples",
                     headers=bearer("viewer"))
    assert got.status_code == 200 and got.json()["rows"] == table["data"], got.text
    missing = client.get(f"/api/models/{MODEL}/versions/{bare}/samples", headers=bearer("viewer"))
    assert missing.status_code == 404 and "no sample generations" in missing.text
    login(client, "vera")
    page = client.get(f"/models/{MODEL}").text
    assert f'id="samples-{version}"' in page and "Образец породы из скважины." in page
    assert f'id="samples-{bare}"' in page and "no sample generations" in page
