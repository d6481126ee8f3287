"""Panel fixtures: a project in a tmp dir (corpus, run configs, users, embedded MLflow store)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

SECRET = "s" * 48
PASSWORDS = {"vera": "viewer-pw-1", "oleg": "operator-pw-1", "anna": "approver-pw-1"}
ROLES = {"vera": "viewer", "oleg": "operator", "anna": "approver"}
TOKENS = {"viewer": "tok-viewer-0123456789", "operator": "tok-operator-0123456789",
          "approver": "tok-approver-0123456789"}
MODEL = "geomas-sft"


@dataclass
class Project:
    """A panel project on disk."""

    root: Path
    corpus: Path
    run_config: Path
    panel_config: Path
    users_file: Path
    data_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture(scope="session")
def users_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users with argon2 hashes and token digests (hashing once per session: argon2 is slow)."""
    from geomas.panel.auth import hash_password, token_digest

    users = [{"name": name, "role": ROLES[name], "password_hash": hash_password(pw),
              "tokens": [token_digest(TOKENS[ROLES[name]])]} for name, pw in PASSWORDS.items()]
    path = tmp_path_factory.mktemp("users") / "users.yaml"
    path.write_text(yaml.safe_dump({"users": users}))
    return path


@pytest.fixture()
def project(tmp_path: Path, users_yaml: Path) -> Project:
    root = tmp_path / "proj"
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "report-1.pdf").write_bytes(b"%PDF-1.4 first report\n")
    (root / "configs").mkdir()
    data_dir = root / ".geomas"
    base = {"project": {"data_dir": str(data_dir)},
            "data": {"source_dir": str(corpus), "output_dir": str(root / "out")},
            "training": {"model": str(root / "no-model"),
                         "train_file": str(root / "out" / "missing_train.json"),
                         "val_file": str(root / "out" / "missing_val.json"),
                         "output_dir": str(root / "sft")}}
    run_config = root / "configs" / "project.yaml"
    run_config.write_text(yaml.safe_dump(base))
    # a data run whose corpus folder does not exist: the real CLI fails in pre-flight, fast
    failing = {**base, "data": {"source_dir": str(root / "no-such-corpus"),
                                "output_dir": str(root / "out")}}
    (root / "configs" / "fail-data.yaml").write_text(yaml.safe_dump(failing))
    users = root / "users.yaml"
    users.write_text(users_yaml.read_text())
    panel_config = root / "panel.yaml"
    panel_config.write_text(yaml.safe_dump({"panel": {
        "run_config": str(run_config), "configs_dir": str(root / "configs"),
        "users_file": str(users), "max_upload_bytes": 4096, "poll_seconds": 0.2,
        "stop_timeout_seconds": 5}}))
    return Project(root=root, corpus=corpus, run_config=run_config, panel_config=panel_config,
                   users_file=users, data_dir=data_dir)


def make_app(project: Project) -> Any:
    from geomas.cli.panel import load_panel_config
    from geomas.panel.app import create_app
    from geomas.panel.auth import load_users

    settings = load_panel_config(project.panel_config)
    return create_app(settings, SECRET, load_users(project.users_file), workdir=project.root)


@pytest.fixture()
def client(project: Project) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(make_app(project)) as test_client:
        yield test_client


def login(client: Any, user: str, password: str | None = None) -> Any:
    """Log in through the form; returns the response. The session cookie stays in `client`."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"username": user, "password":
                                       password if password is not None else PASSWORDS[user],
                                       "csrf_token": token}, follow_redirects=False)


def session_csrf(client: Any) -> str:
    """The logged-in session's CSRF token, as the pages embed it."""
    page = client.get("/runs")
    return re.search(r"const CSRF = \"([^\"]+)\"", page.text).group(1)  # type: ignore[union-attr]
