"""The pages render for a logged-in user; the overview reads the corpus against the
thresholds; the CLI refuses to serve without a secret."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from tests.panel.conftest import Project, bearer, login


def test_overview_api_and_pages(client: Any, project: Project) -> None:
    overview = client.get("/api/overview", headers=bearer("viewer")).json()
    decision = overview["retrain"]["decision"]
    # one document, no champion: the same decision `geomas retrain check --dry-run` makes
    assert (decision["outcome"], decision["corpus_docs"], decision["reason"]) == (
        "launch", 1, "no champion yet")
    assert overview["retrain"]["schedule"]["cron"] == "0 * * * *"
    assert "does not exist" in overview["model_note"]
    login(client, "oleg")
    for path in ("/", "/runs", "/corpus"):
        page = client.get(path)
        assert page.status_code == 200 and "Log out" in page.text, path
    assert "report-1.pdf" in client.get("/corpus").text
    assert "fail-data.yaml" in client.get("/runs").text


def test_serving_without_a_secret_is_refused(project: Project) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GEOMAS_PANEL_SECRET"}
    proc = subprocess.run([sys.executable, "-m", "geomas.cli", "panel", "--config",
                           str(project.panel_config)], capture_output=True, text=True,
                          env=env, cwd=project.root, check=False, timeout=60)
    assert proc.returncode == 1
    assert "GEOMAS_PANEL_SECRET is not set" in proc.stderr and "--dev" in proc.stderr
