"""Links into the MLflow UI (panel config `mlflow_ui_url`): each model version to its page and
its run's page, a run page to its pipeline run's MLflow run; none without the setting."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.panel.conftest import MODEL, Project, bearer, login, make_app

UI = "http://mlflow.example:5000/"
ROOT = "http://mlflow.example:5000/#"


@pytest.fixture()
def linked(project: Project) -> Iterator[Any]:
    """The panel with `mlflow_ui_url` set."""
    from fastapi.testclient import TestClient

    raw = yaml.safe_load(project.panel_config.read_text())
    raw["panel"]["mlflow_ui_url"] = UI
    project.panel_config.write_text(yaml.safe_dump(raw))
    with TestClient(make_app(project)) as test_client:
        yield test_client


def _versions(project: Project) -> tuple[str, str, str, str]:
    """v1 from a training run (experiment `geomas`, as the pipeline logs), v2 without a run.

    Returns:
        (experiment id, run id, v1, v2)
    """
    import mlflow

    from geomas.tracking import ensure_experiment

    client = mlflow.MlflowClient()
    experiment_id = str(ensure_experiment("geomas", project.data_dir))
    run_id = client.create_run(experiment_id, run_name="geomas_training-2026_01_05-10_00_00_1"
                               ).info.run_id
    client.create_registered_model(MODEL)
    v1 = str(client.create_model_version(MODEL, source="/nowhere", run_id=run_id).version)
    v2 = str(client.create_model_version(MODEL, source="/nowhere").version)
    return experiment_id, run_id, v1, v2


def test_model_versions_link_to_their_mlflow_pages(linked: Any, project: Project) -> None:
    experiment_id, run_id, v1, v2 = _versions(project)
    model = linked.get(f"/api/models/{MODEL}", headers=bearer("viewer")).json()
    links = {v["version"]: v["links"] for v in model["versions"]}
    assert links == {
        v1: {"version": f"{ROOT}/models/{MODEL}/versions/{v1}",
             "run": f"{ROOT}/experiments/{experiment_id}/runs/{run_id}"},
        v2: {"version": f"{ROOT}/models/{MODEL}/versions/{v2}"},  # no run, no run link
    }
    login(linked, "vera")
    page = linked.get(f"/models/{MODEL}").text
    assert f'href="{ROOT}/models/{MODEL}/versions/{v1}"' in page
    assert f'href="{ROOT}/models/{MODEL}/versions/{v2}"' in page
    assert f'href="{ROOT}/experiments/{experiment_id}/runs/{run_id}"' in page
    assert page.count('class="mlflow-run"') == 1


def test_no_mlflow_links_without_the_ui_url(client: Any, project: Project) -> None:
    _versions(project)
    model = client.get(f"/api/models/{MODEL}", headers=bearer("viewer")).json()
    assert [v["links"] for v in model["versions"]] == [{}, {}]
    login(client, "vera")
    page = client.get(f"/models/{MODEL}").text
    assert "#/models/" not in page and "mlflow-version" not in page and "<th>MLflow</th>" \
        not in page


def _record(linked: Any, zenml_run_name: str | None, config_text: str) -> int:
    from geomas.panel.store import RunRecord

    panel = linked.app.state.panel
    with panel.runs.sessions() as db:
        rec = RunRecord(pipeline="training", user="oleg", status="succeeded", exit_code=0,
                        config_name="project.yaml", config_text=config_text,
                        config_sha256=hashlib.sha256(config_text.encode()).hexdigest(),
                        zenml_run_name=zenml_run_name)
        db.add(rec)
        db.commit()
        return int(rec.id)


def test_a_run_page_links_its_mlflow_run_else_its_experiment(linked: Any,
                                                             project: Project) -> None:
    experiment_id, run_id, _v1, _v2 = _versions(project)
    text = project.run_config.read_text()
    known = _record(linked, "geomas_training-2026_01_05-10_00_00_1", text)
    unknown = _record(linked, None, text)  # failed before its summary named the ZenML run
    got = linked.get(f"/api/runs/{known}", headers=bearer("viewer")).json()
    assert got["links"]["mlflow"] == f"{ROOT}/experiments/{experiment_id}/runs/{run_id}"
    assert linked.get(f"/api/runs/{unknown}", headers=bearer("viewer")).json()["links"][
        "mlflow"] == f"{ROOT}/experiments/{experiment_id}"
    # a config logging to an experiment that does not exist yet: the UI's front page
    other = yaml.safe_load(text)
    other["project"]["experiment_name"] = "elsewhere"
    elsewhere = _record(linked, "geomas_training-2026_01_05-10_00_00_1", yaml.safe_dump(other))
    assert linked.get(f"/api/runs/{elsewhere}", headers=bearer("viewer")).json()["links"][
        "mlflow"] == UI
    listed = {r["id"]: r["links"] for r in linked.get("/api/runs", headers=bearer(
        "viewer")).json()}
    assert listed[known]["mlflow"] == UI  # the list does no lookups
    login(linked, "vera")
    page = linked.get(f"/runs/{known}").text
    assert (f'<a id="mlflow-link" href="{ROOT}/experiments/{experiment_id}/runs/{run_id}">'
            in page)
