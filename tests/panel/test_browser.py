"""The panel in a real browser: Chromium (Playwright) against `geomas panel` served by uvicorn.

One walk through the product as its users do it: an operator starts a data run and a training
run from the launch form and watches them finish live on the run page (the gate makes that
first version champion); the operator edits a copy of the config in the generated form (an
invalid value is refused on its field), and the weaker second version is scored against the
champion on the same examples and kept out; an approver forces it in with a reason and rolls
it back; the history names who moved what. Everything is real: the users file (argon2
hashes), the SQLite run records, the child-process runs, the embedded ZenML/MLflow stores.

Screenshots of each page go to the test's tmp dir, or to $GEOMAS_PANEL_SCREENSHOTS
(`GEOMAS_PANEL_SCREENSHOTS=docs/panel make test PYTEST_ARGS=tests/panel/test_browser.py`
regenerates docs/panel/*.png).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.panel.conftest import SECRET

# slow: a pre-trained tiny LM, a real data run and two training runs through the panel
# (~5 min on 2 cores); `make test` stays under 20 minutes, .ci/run runs it (`make test-slow`)
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCREENSHOTS_ENV = "GEOMAS_PANEL_SCREENSHOTS"
USERS = {"oleg": ("operator", "operator-pw-1"), "anna": ("approver", "approver-pw-1")}
MODEL = "geomas-sft"
DATA_STEPS = {"ingest_documents", "validate_chunks", "extract_entities", "generate_qa",
              "validate_qa_pairs", "clean_dataset", "split_dataset", "format_dataset",
              "validate_examples"}
RUN_TIMEOUT_MS = 600_000

# Records what the run page shows as it changes: every status text, and how often the steps
# table was redrawn with steps in it while the run was still running.
WATCH_JS = """() => {
  const status = document.getElementById("status");
  window.__seen = [status.textContent];
  window.__stepsWhileRunning = 0;
  window.__samePage = true;
  window.__notes = [];
  new MutationObserver(() => window.__notes.push(
      document.getElementById("steps-note").textContent))
    .observe(document.getElementById("steps-note"),
             {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => window.__seen.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
  new MutationObserver(() => {
    if (status.textContent === "running" && document.querySelectorAll("#steps tr").length > 1)
      window.__stepsWhileRunning += 1;
  }).observe(document.getElementById("steps"), {childList: true, subtree: true});
}"""


def chromium_path() -> str:
    """The system Chromium; the test fails (never skips) without one."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no Chromium found: install the Debian package `chromium` (apt-get install -y "
                "chromium; `make test` does it when run as root)", pytrace=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"the panel exited ({proc.returncode}):\n{log.read_text()}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return bool(json.loads(resp.read())["status"] == "ok")
    except OSError:
        return False


@pytest.fixture()
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def panel_url(tmp_path: Path) -> Iterator[str]:
    """A project (`make demo`'s corpus and settings: 24 generated reports with bad files, tiny
    NER, a pre-trained tiny LM; run config, users) served on a free port."""
    from geomas.config import NerTrainConfig
    from geomas.models import make_tiny
    from geomas.ner.annotations import convert_annotations
    from geomas.ner.train import train_ner
    from geomas.panel.auth import hash_password
    from geomas.sample import generate_sample_corpus

    root = tmp_path / "proj"
    models = root / "models"
    models.mkdir(parents=True)
    sample_corpus = root / "corpus"
    generate_sample_corpus(sample_corpus, docs=24, seed=0, with_bad_files=True)
    convert_annotations(sample_corpus / "annotations", models / "bio", progress=False)
    tiny_ner = make_tiny("ner", models / "tiny-ner", corpus_dir=sample_corpus)
    train_ner(models / "bio", NerTrainConfig(model_name=str(tiny_ner), output_dir=models / "ner",
                                             epochs=40, learning_rate=1e-3,
                                             register_model=False), progress=False)
    make_tiny("lm", models / "tiny-lm", corpus_dir=sample_corpus, pretrain_steps=300)
    out = root / "out"
    run_config = {
        "project": {"data_dir": str(root / ".geomas"), "experiment_name": "geomas-browser"},
        "data": {"source_dir": str(sample_corpus / "docs"), "output_dir": str(out),
                 "ner": {"model_path": str(models / "ner")}},
        "training": {"model": str(models / "tiny-lm"),
                     "train_file": str(out / "instruct_dataset_train.json"),
                     "val_file": str(out / "instruct_dataset_val.json"),
                     "test_file": str(out / "instruct_dataset_test.json"),
                     "output_dir": str(root / "sft"), "registered_model_name": MODEL,
                     "sft": {"method": "qlora", "tag": "browser", "max_length": 384,
                             "num_train_epochs": 8, "learning_rate": 0.005},
                     "evaluation": {"max_new_tokens": 48}}}
    (root / "configs").mkdir()
    (root / "configs" / "project.yaml").write_text(yaml.safe_dump(run_config))
    users = root / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [
        {"name": name, "role": role, "password_hash": hash_password(pw)}
        for name, (role, pw) in USERS.items()]}))
    panel_config = root / "panel.yaml"
    panel_config.write_text(yaml.safe_dump({"panel": {
        "run_config": str(root / "configs" / "project.yaml"),
        "configs_dir": str(root / "configs"), "users_file": str(users),
        "poll_seconds": 0.3}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")
           and k != "GEOMAS_MLFLOW_RESOLVED"}
    env.update({"GEOMAS_PANEL_SECRET": SECRET, "GEOMAS_PANEL_USERS_FILE": str(users)})
    port = _free_port()
    log = root / "panel.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "geomas.cli", "panel", "--config",
                                 str(panel_config), "--host", "127.0.0.1", "--port", str(port)],
                                cwd=root, env=env, stdout=fh, stderr=fh)
    try:
        deadline = time.monotonic() + 120
        while not _healthy(port, proc, log):
            assert time.monotonic() < deadline, f"the panel did not start:\n{log.read_text()}"
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture()
def page(panel_url: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package `playwright` is missing: pip install -e '.[dev]' "
                    "(no `playwright install`: the test drives the system Chromium)",
                    pytrace=False)
    executable = chromium_path()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=args)
        context = browser.new_context(base_url=panel_url,
                                      viewport={"width": 1280, "height": 800})
        tab = context.new_page()
        tab.set_default_timeout(30_000)
        try:
            yield tab
        finally:
            context.close()
            browser.close()


def _login(page: Any, user: str) -> None:
    page.goto("/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", USERS[user][1])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator("nav span").inner_text() == f"{user} ({USERS[user][0]})"


def _logout(page: Any) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login$"))
    page.goto("/runs")  # the session is gone: back to the login form
    page.wait_for_url(re.compile(r"/login$"))


def _field(page: Any, path: str) -> Any:
    """The generated form's input for a run-config field (`training.sft.learning_rate`)."""
    return page.locator(f'#launch [name="f.{path}"]')


def _launch(page: Any, pipeline: str, fields: dict[str, str] | None = None) -> int:
    """Start a run from the generated launch form (preset project.yaml, `fields` changed);
    returns its id (the form redirects to its page)."""
    page.goto("/runs?preset=project.yaml")
    page.select_option("#launch select[name=pipeline]", pipeline)
    for path, value in (fields or {}).items():
        _field(page, path).fill(value)
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def _watch_until_done(page: Any, run_id: int) -> dict[str, Any]:
    """Wait on the run page's DOM (no reload) until the run ends; what it showed meanwhile."""
    from playwright.sync_api import expect

    assert page.locator("h1").inner_text().startswith(f"Run {run_id}")
    page.evaluate(WATCH_JS)
    expect(page.locator("#status")).to_have_text(re.compile("^(succeeded|failed|stopped)$"),
                                                 timeout=RUN_TIMEOUT_MS)
    status = page.locator("#status").inner_text()
    assert status == "succeeded", page.locator("#log").inner_text()[-3000:]
    # the steps table is filled from ZenML once more after the end
    expect(page.locator("#steps tr td:nth-child(2)").first).to_have_text("completed")
    expect(page.locator("#steps-note")).to_have_text("")
    seen = page.evaluate("window.__seen")
    shown = {
        "same_page": page.evaluate("window.__samePage === true"),
        "statuses": [s for i, s in enumerate(seen) if i == 0 or s != seen[i - 1]],
        "steps_while_running": page.evaluate("window.__stepsWhileRunning"),
        "steps_notes": sorted(set(page.evaluate("window.__notes"))),
        "steps": {row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text()
                  for row in page.locator("#steps tr").all()[1:]},
        "exit": page.locator("#exit").inner_text().strip(),
        "log": page.locator("#log").inner_text(),
    }
    return shown


def _version_row(page: Any, version: str) -> dict[str, str]:
    cells = page.locator(f"#version-{version} td")
    names = ("version", "aliases", "metrics", "scored_on", "gate", "decision")
    return {name: cells.nth(i).inner_text() for i, name in enumerate(names)}


def _metric(text: str, key: str) -> float:
    found = re.search(rf"(?m)^{re.escape(key)}=([-\d.eE+]+)$", text)
    assert found, f"{key} not shown in {text!r}"
    return float(found.group(1))


def _history(page: Any) -> list[tuple[str, ...]]:
    """The history table: (action, from, to, actor, forced, reason) per move."""
    return [tuple(row.locator("td").nth(i).inner_text() for i in range(1, 7))
            for row in page.locator("#history tr").all()[1:]]


def _move(page: Any, button: Any, reason: str, force: bool) -> None:
    """Fill reason/force and press a promote or roll-back button; the page reloads itself."""
    from playwright.sync_api import expect

    page.fill("#reason", reason)
    page.locator("#force").set_checked(force)
    page.evaluate("window.__beforeMove = true")
    button.click()
    page.wait_for_function("window.__beforeMove === undefined")
    page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text(f"Model {MODEL}")


def _refused_move(page: Any, button: Any, reason: str) -> str:
    """Press a promote button for a move the gate calls unsafe, without force: the message."""
    from playwright.sync_api import expect

    page.fill("#reason", reason)
    page.locator("#force").set_checked(False)
    button.click()
    expect(page.locator("#result")).to_contain_text("error 409")
    return str(page.locator("#result").inner_text())


def test_operator_runs_pipelines_and_approver_moves_the_champion_in_a_browser(
        page: Any, screenshots: Path) -> None:
    from playwright.sync_api import expect

    def shot(name: str, full_page: bool = False) -> None:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=full_page)

    # -- the operator logs in and starts a data run from the launch form
    page.goto("/")
    page.wait_for_url(re.compile(r"/login$"))  # nothing without a session
    shot("login")
    _login(page, "oleg")
    expect(page.locator("h1")).to_have_text("Overview")
    data_id = _launch(page, "data")
    data = _watch_until_done(page, data_id)
    assert data["same_page"] and data["exit"] == "0"
    assert data["statuses"][-1] == "succeeded" and "running" in data["statuses"], data
    # steps appeared while the run was still going, then all completed
    assert data["steps_while_running"] > 0, data
    assert set(data["steps"]) == DATA_STEPS, data["steps"]
    assert set(data["steps"].values()) == {"completed"}, data["steps"]
    assert re.search(r"ingest: (\d+)/\1 files", data["log"]), data["log"][:2000]
    # the ZenML run cell fills in live too (no reload)
    expect(page.locator("#zenml-run")).to_contain_text("geomas_data")
    shot("run")

    # -- a training run with the preset as it is: v1 beats its base, and with no champion
    # yet the gate makes it champion
    train_id = _launch(page, "training")
    train = _watch_until_done(page, train_id)
    assert train["same_page"] and train["statuses"][-1] == "succeeded", train
    assert {"train_model", "evaluate_model", "register_model"} <= set(train["steps"])
    page.goto("/models")
    expect(page.locator("h1")).to_have_text(f"Model {MODEL}")
    v1 = _version_row(page, "1")
    assert v1["aliases"] == "champion", (v1, train["log"][-3000:])
    assert v1["decision"].startswith("promoted\n"), v1
    assert _metric(v1["metrics"], "token_f1") > _metric(v1["metrics"], "base_token_f1"), v1
    assert page.locator("#version-1 button", has_text="promote").count() == 0  # operator

    # -- an edited copy in the generated form: a value the config model refuses comes back
    # on its field and starts nothing; then a weaker setting (2 epochs instead of 8)
    page.goto("/runs?preset=project.yaml")
    page.select_option("#launch select[name=pipeline]", "training")
    _field(page, "training.sft.num_train_epochs").fill("0")
    page.get_by_role("button", name="Start").click()
    error = page.locator('#launch .err[data-field="training.sft.num_train_epochs"]')
    expect(error).to_contain_text("greater than")
    assert page.url.endswith("/runs")  # the form again, no run page
    assert _field(page, "training.sft.num_train_epochs").input_value() == "0"  # kept as typed
    error.scroll_into_view_if_needed()
    shot("launch-error")
    page.goto("/runs")
    assert len(page.locator("table").last.locator("tr").all()) == 3  # header + 2 runs
    second_id = _launch(page, "training", {"training.sft.num_train_epochs": "2"})
    second = _watch_until_done(page, second_id)
    assert second["statuses"][-1] == "succeeded", second
    assert "num_train_epochs: 2" in (page.locator("details pre").text_content() or "")
    page.goto("/models")
    assert page.locator("main p").first.inner_text().startswith("champion v1 · challenger v2")
    v1, v2 = _version_row(page, "1"), _version_row(page, "2")
    assert (v1["aliases"], v2["aliases"]) == ("champion", "challenger")
    # side by side: both versions' scores, from the same test examples (same file digest)
    for row in (v1, v2):
        for key in ("token_f1", "rouge_l", "exact_match", "base_token_f1"):
            assert 0.0 <= _metric(row["metrics"], key) <= 1.0, row
    assert re.fullmatch(r"test · \d+ examples\nsha256 [0-9a-f]{12}", v2["scored_on"]), v2
    assert v1["scored_on"] == v2["scored_on"]
    # v2 beats its base, so the gate re-scored champion v1 on v2's test examples, side by
    # side: v2's own scores, v1's on the same examples, the gain and its interval; not better
    # beyond the margin and the noise, v2 stays out
    assert v2["decision"].startswith("rejected\n"), v2
    gate = {k: _metric(v2["gate"], f"gate.{k}")
            for k in ("n", "challenger", "champion", "gain", "ci_low", "ci_high")}
    assert gate["n"] == int(v2["scored_on"].split(" ")[2]), v2
    assert gate["challenger"] == pytest.approx(_metric(v2["metrics"], "token_f1")), v2
    assert gate["champion"] == pytest.approx(_metric(v1["metrics"], "token_f1"), abs=0.02)
    assert gate["gain"] == pytest.approx(gate["challenger"] - gate["champion"], abs=1e-9)
    assert gate["ci_low"] <= gate["gain"] <= gate["ci_high"], v2
    assert "vs champion" in v2["decision"], v2
    _logout(page)

    # -- the approver moves the champion by hand through the same rules as the CLI: a version
    # worse than the champion on the gate's metric needs the override and a reason; then a
    # rollback with a reason restores v1
    _login(page, "anna")
    page.goto("/models")
    v2_worse = _metric(v2["metrics"], "token_f1") < _metric(v1["metrics"], "token_f1")
    promote_v2 = page.locator("#version-2 button", has_text="promote")
    if v2_worse:
        refused = _refused_move(page, promote_v2, "try v2 live")
        assert "force" in refused, refused
        assert _version_row(page, "1")["aliases"] == "champion"
    _move(page, promote_v2, "try v2 live", force=v2_worse)
    assert page.locator("main p").first.inner_text().startswith("champion v2")
    if not v2_worse:
        # v1 scores below champion v2: promoting it back by hand is the unsafe move here
        refused = _refused_move(page, page.locator("#version-1 button", has_text="promote"),
                                "back to v1")
        assert "force" in refused, refused
        assert page.locator("main p").first.inner_text().startswith("champion v2")
    shot("models-refused", full_page=True)
    _move(page, page.get_by_role("button", name="Roll back"), "v2 answers worse",
          force=False)
    # back to v1; the rollback used up previous-champion
    assert page.locator("main p").first.inner_text() == (
        "champion v1 · challenger v- · previous champion v-")
    assert _version_row(page, "2")["decision"].startswith("rolled_back")
    history = _history(page)
    assert [row[:5] for row in history] == [
        ("gate", "-", "1", "oleg", "False"), ("promote", "1", "2", "anna", str(v2_worse)),
        ("rollback", "2", "1", "anna", "False")], history
    assert history[0][5] == "no champion yet", history
    assert history[1][5].endswith("reason: try v2 live"), history
    assert history[2][5] == "restored by rollback from version 2; reason: v2 answers worse"
    shot("models", full_page=True)

    # -- the other pages, as the approver sees them now
    page.goto("/runs")
    rows = page.locator("table").last.locator("tr").all()[1:]
    assert [(r.locator("td").nth(1).inner_text(), r.locator("td").nth(2).inner_text(),
             r.locator("td").nth(3).inner_text()) for r in rows] == [
        ("training", "succeeded", "oleg"), ("training", "succeeded", "oleg"),
        ("data", "succeeded", "oleg")]
    shot("runs")
    page.goto("/corpus")
    statuses = [r.locator("td").nth(1).inner_text()
                for r in page.locator("table").last.locator("tr").all()[1:]]
    assert "rejected" in statuses and "parsed" in statuses, statuses
    shot("corpus")
    page.goto("/")
    overview = page.locator("main").inner_text()
    assert f"{MODEL}: champion v1, challenger v-" in " ".join(overview.split())
    shot("overview")
