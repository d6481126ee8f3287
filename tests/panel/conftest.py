"""Panel fixtures: a project in a tmp dir (corpus, run configs, users, embedded MLflow store)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

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


@pytest.fixture(autouse=True)
def _own_zenml_config_dir() -> Iterator[None]:
    """Each in-process panel is the first geomas project this process sees.

    The panel binds ZenML to its project's data dir (`geomas.stack.activate_project` refuses
    to switch once zenml is imported, "one geomas project per process"). Each panel test makes
    its own project, and other modules import zenml in this process too, so the data dir an
    earlier test pointed ZENML_CONFIG_PATH at is removed before each panel test and restored
    after it. Panels started as processes (the restart and browser tests) are not affected.
    """
    import os

    saved = os.environ.pop("ZENML_CONFIG_PATH", None)
    yield
    os.environ.pop("ZENML_CONFIG_PATH", None)
    if saved is not None:
        os.environ["ZENML_CONFIG_PATH"] = saved


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


# --------------------------------------------------------------------------- a Kubernetes API
# Jobs, ConfigMaps and pods of one namespace behind the real REST paths, for the kubernetes
# client (tests/panel/test_k8s_job.py, test_k8s_runs.py).

K8S_NS = "geomas"

class FakeApi:
    """Jobs, ConfigMaps and pods of one namespace behind the real REST paths."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.config_maps: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self.calls: list[tuple[str, str, str]] = []  # (api group, resource, verb)
        self.refuse: set[tuple[str, str]] = set()  # (resource, verb) answered 403


PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[a-z.]+)/v1)/namespaces/(?P<ns>[^/]+)/"
                  r"(?P<resource>[a-z]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>log))?$")


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _status(self, code: int, reason: str) -> None:
            self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "reason": reason, "code": code})  # fmt: skip

        def _handle(self, method: str) -> None:
            url = urlparse(self.path)
            match = PATH.match(url.path)
            assert match is not None, url.path
            group, resource, name = match["group"] or "", match["resource"], match["name"]
            assert match["ns"] == K8S_NS
            store = {"jobs": api.jobs, "configmaps": api.config_maps, "pods": api.pods}[resource]
            verb = {"POST": "create", "DELETE": "delete"}.get(
                method, "get" if name else "list")
            if match["sub"]:
                resource = "pods/log"
            api.calls.append((group, resource, verb))
            if (resource, verb) in api.refuse:
                return self._status(403, "Forbidden")
            if verb == "create":
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = body["metadata"]["name"]
                if key in store:
                    return self._status(409, "AlreadyExists")
                body["metadata"]["uid"] = str(uuid.uuid4())
                store[key] = body
                return self._send(201, body)
            if verb == "list":
                selector = parse_qs(url.query).get("labelSelector", [""])[0]
                wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
                items = [o for o in store.values()
                         if wanted.items() <= o["metadata"].get("labels", {}).items()]
                return self._send(200, {"kind": "List", "apiVersion": "v1", "metadata": {},
                                        "items": items})  # fmt: skip
            if name not in store:
                return self._status(404, "NotFound")
            if verb == "delete":
                del store[name]
                if resource == "jobs":  # the garbage collector: owned objects go too
                    for owned in list(api.config_maps):
                        refs = api.config_maps[owned]["metadata"].get("ownerReferences", [])
                        if any(r["kind"] == "Job" and r["name"] == name for r in refs):
                            del api.config_maps[owned]
                return self._send(200, {"kind": "Status", "apiVersion": "v1",
                                        "status": "Success"})  # fmt: skip
            if resource == "pods/log":
                return self._send(200, api.logs.get(name, ""), "text/plain")
            return self._send(200, store[name])

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._handle("DELETE")

    return Handler


@pytest.fixture()
def fake() -> Iterator[tuple[FakeApi, Any]]:
    from kubernetes import client

    api = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    config = client.Configuration()
    config.host = f"http://127.0.0.1:{server.server_address[1]}"
    api_client = client.ApiClient(config)
    try:
        yield api, api_client
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()
        thread.join()


