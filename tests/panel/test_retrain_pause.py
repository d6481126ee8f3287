"""Pausing the retrain checks from the panel: operators only (auth + CSRF), a reason required,
shown on the overview, and honoured by the same `check_retrain` every scheduler runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.panel.conftest import Project, bearer, login, session_csrf

PAUSE = "/api/retrain/pause"
RESUME = "/api/retrain/resume"


class Launcher:
    """Records each launch; a paused check must not call it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def __call__(self, config: Any, tags: Mapping[str, str]) -> str:
        self.calls.append(dict(tags))
        return "geomas_training-1"


def _run_config(project: Project) -> Any:
    from geomas.config import RunConfig, load_config

    return load_config(project.run_config, RunConfig)


def _pause(client: Any) -> Any:
    return client.get("/api/overview", headers=bearer("viewer")).json()["retrain"]["pause"]


def test_pause_needs_an_operator_with_csrf_and_a_reason(client: Any, project: Project) -> None:
    from fastapi.testclient import TestClient

    anon = TestClient(client.app)
    body = {"reason": "maintenance"}
    assert anon.post(PAUSE, json=body).status_code == 401
    assert anon.post(RESUME).status_code == 401
    assert anon.post(PAUSE, json=body, headers=bearer("viewer")).status_code == 403
    assert anon.post(RESUME, headers=bearer("viewer")).status_code == 403
    login(client, "oleg")  # an operator's session without its CSRF token
    no_csrf = client.post(PAUSE, json=body)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["message"]
    assert client.post(RESUME).status_code == 403
    for bad in ({}, {"reason": ""}, {"reason": "   "}):
        refused = anon.post(PAUSE, json=bad, headers=bearer("operator"))
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.json()["detail"][0]["field"] == "reason"
    assert _pause(client) is None  # nothing was paused by any of them


def test_operator_pauses_overview_shows_it_checks_honour_it_and_resume_clears_it(
    client: Any, project: Project
) -> None:
    from geomas.trigger import check_retrain

    got = client.post(PAUSE, json={"reason": "new survey reports being uploaded"},
                      headers=bearer("operator"))
    assert got.status_code == 200, got.text
    state = got.json()
    assert (state["paused"], state["by"], state["reason"]) == (
        True, "oleg", "new survey reports being uploaded")

    overview = client.get("/api/overview", headers=bearer("viewer")).json()
    assert overview["retrain"]["pause"]["paused"] and overview["retrain"]["schedule"]["paused"]
    assert overview["retrain"]["pause"]["at"] == state["at"]
    assert "geomas retrain resume" in overview["retrain"]["pause"]["text"]
    assert "no ZenML store" in overview["zenml_schedule"]["note"]  # none in this data dir

    # what the CronJob, a cron or a panel retrain-check run calls sees the panel's pause
    launcher = Launcher()
    decision = check_retrain(_run_config(project), launch=launcher)
    assert decision.outcome == "paused" and launcher.calls == []
    assert "paused by oleg" in decision.reason
    assert "new survey reports being uploaded" in decision.reason

    login(client, "vera")
    page = client.get("/").text
    assert "Paused</b> by oleg" in page and "new survey reports being uploaded" in page
    assert "resumeRetrain()" not in page and "pauseRetrain()" not in page  # a viewer
    login(client, "oleg")
    page = client.get("/").text
    assert '<button onclick="resumeRetrain()">Resume</button>' in page
    assert '<button onclick="pauseRetrain()">' not in page

    resumed = client.post(RESUME, headers={"X-CSRF-Token": session_csrf(client)})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["lifted"]["reason"] == "new survey reports being uploaded"
    pause = _pause(client)
    assert (pause["paused"], pause["by"]) == (False, "oleg")
    page = client.get("/").text
    assert "<b>Active</b> (resumed by oleg" in page
    assert '<button onclick="pauseRetrain()">Pause</button>' in page
    assert check_retrain(_run_config(project), launch=launcher,
                         dry_run=True).outcome == "launch"
    assert launcher.calls == []
