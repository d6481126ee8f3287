"""zenml_stack.yaml and `geomas stack import | local | show` on throwaway ZenML stores.

ZenML binds its config dir once per process: each scenario runs as one subprocess on its own
data dir, drives the CLI there with typer's CliRunner, checks the ZenML client, and reports
JSON. Nothing needs a cluster: importing only validates and registers the components.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / "zenml_stack.yaml"
SECRETS = {"geomas_s3": {"aws_access_key_id": "test-id", "aws_secret_access_key": "test-key"},
           "geomas_mlflow": {"username": "geomas", "password": "test-pass"}}

HARNESS = r'''
import json, sys
from pathlib import Path

from geomas.stack import activate_project

data, report = Path(sys.argv[1]), Path(sys.argv[2])
activate_project(data)

from typer.testing import CliRunner
from zenml.client import Client
from zenml.enums import StackComponentType as T

from geomas.cli import app

runner = CliRunner()
out = {}

def geomas(*args):
    r = runner.invoke(app, [*args, "--data-dir", str(data)])
    error = None
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        error = f"{type(r.exception).__name__}: {r.exception}"
    return {"code": r.exit_code, "output": r.output, "error": error}

def active():
    return Client().active_stack_model.name

def create_secrets():
    for name, values in SECRETS.items():
        Client().create_secret(name, values)
'''

IMPORT_SCENARIO = r'''
create_secrets()
# each component's configuration through its flavor's config class (secret references are
# resolved against the secrets above while validating)
import yaml
from zenml.stack.flavor import Flavor
out["config_classes"] = {}
for type_name, comps in yaml.safe_load(Path("zenml_stack.yaml").read_text())["components"].items():
    for comp in comps:
        flavor = Flavor.from_model(Client().get_flavor_by_name_and_type(
            name=comp["flavor"], component_type=T(type_name)))
        config = flavor.config_class(**comp["configuration"])
        out["config_classes"][type_name] = type(config).__name__
out["import"] = geomas("stack", "import")            # default file: ./zenml_stack.yaml
out["active_after_import"] = active()
out["again"] = geomas("stack", "import", "zenml_stack.yaml", "--activate")
out["active_after_activate"] = active()
out["show"] = geomas("stack", "show", "--json")

# ZenML's own CLI reads the file too (under another stack name: the components are reused)
# and `zenml stack export` writes back what the file says.
from click.testing import CliRunner as ClickRunner
from zenml.cli.cli import cli as zenml_cli
zr = ClickRunner().invoke(zenml_cli, ["stack", "import", "geomas-k8s-copy", "-f",
                                      "zenml_stack.yaml"])
out["zenml_import"] = {"code": zr.exit_code, "output": zr.output}
export = data / "export.yaml"
zr = ClickRunner().invoke(zenml_cli, ["stack", "export", "geomas-k8s", str(export)])
out["zenml_export"] = {"code": zr.exit_code, "output": zr.output,
                       "data": __import__("yaml").safe_load(export.read_text())}

# back to the embedded stack in the same store: refused, the tracker name is taken
out["local"] = geomas("stack", "local")
out["active_after_local"] = active()
tracker = Client().get_stack_component(T.EXPERIMENT_TRACKER, "geomas-mlflow")
out["tracker_uri_after_local"] = tracker.configuration["tracking_uri"]
'''

LOCAL_SCENARIO = r'''
out["first"] = geomas("stack", "local")
out["active_first"] = active()
Client().activate_stack("default")
out["active_moved"] = active()
out["show_moved"] = geomas("stack", "show")
out["back"] = geomas("stack", "local")
out["active_back"] = active()
out["stacks"] = sorted(s.name for s in Client().list_stacks(size=100).items)
create_secrets()
out["import_over_local"] = geomas("stack", "import", "zenml_stack.yaml")
out["active_end"] = active()
'''

ERROR_SCENARIO = r'''
import yaml
from geomas.config import RunConfig, load_config
from geomas.errors import StackError
from geomas.runner import prepare_stack

good = yaml.safe_load(Path("zenml_stack.yaml").read_text())

def variant(name, change):
    doc = json.loads(json.dumps(good))
    change(doc)
    path = data / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)

out["no_secrets"] = geomas("stack", "import", "zenml_stack.yaml")
create_secrets()
out["unknown_flavor"] = geomas("stack", "import", variant(
    "flavor", lambda d: d["components"]["orchestrator"][0].update(flavor="kubernetez")))
out["unknown_type"] = geomas("stack", "import", variant(
    "type", lambda d: d["components"].update(orchestrators=d["components"].pop("orchestrator"))))
out["unknown_key"] = geomas("stack", "import", variant(
    "key", lambda d: d["components"]["orchestrator"][0]["configuration"].update(namespace="x")))
out["literal_secret"] = geomas("stack", "import", variant(
    "literal", lambda d: d["components"]["artifact_store"][0]["configuration"].update(
        secret="minio-secret-key")))

from zenml.stack.flavor import Flavor
real = Flavor.from_model
def no_s3fs(model):
    if model.name == "s3":
        raise ModuleNotFoundError("No module named 's3fs'")
    return real(model)
Flavor.from_model = no_s3fs
out["missing_package"] = geomas("stack", "import", "zenml_stack.yaml")
Flavor.from_model = real
out["stacks"] = sorted(s.name for s in Client().list_stacks(size=100).items)

cfg = load_config(Path("configs/k8s.yaml"), RunConfig)
cfg = cfg.model_copy(update={"project": cfg.project.model_copy(update={"data_dir": data})})
try:
    prepare_stack(cfg)
except StackError as exc:
    out["run_without_stack"] = str(exc)
'''


def _scenario(body: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "scenario.py"
    script.write_text(f"SECRETS = {SECRETS!r}\n{HARNESS}\n{body}\n"
                      "report.write_text(json.dumps(out), encoding='utf-8')\n", encoding="utf-8")
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "data"), str(report)], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(json.loads(report.read_text("utf-8")))


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _scenario(IMPORT_SCENARIO, tmp_path_factory.mktemp("stack_import"))


def test_stack_file_names_the_shared_components() -> None:
    from geomas.names import REGISTRY_NAME, TRACKER_NAME
    from geomas.stack import read_stack_file

    spec = read_stack_file(STACK_FILE)
    assert spec.stack_name == "geomas-k8s"
    comps = {t: c[0] for t, c in spec.components.items()}
    assert comps["experiment_tracker"].name == TRACKER_NAME
    assert comps["model_registry"].name == REGISTRY_NAME
    orch = comps["orchestrator"].configuration
    assert orch["kubernetes_namespace"] == "geomas"
    assert orch["service_account_name"] == "geomas-orchestrator"
    store = comps["artifact_store"].configuration
    assert store["path"] == "s3://geomas-artifacts"
    assert store["client_kwargs"]["endpoint_url"] == "http://minio.geomas.svc:9000"
    assert comps["experiment_tracker"].configuration["tracking_uri"] == (
        "http://geomas-mlflow:5000")
    assert comps["image_builder"].flavor == "kaniko"
    assert comps["container_registry"].configuration["uri"] == "registry.example.com/geomas"
    # credentials only as ZenML secret references
    for comp in comps.values():
        for key, value in comp.configuration.items():
            if key in {"key", "secret", "token", "tracking_username", "tracking_password",
                       "tracking_token"}:
                assert isinstance(value, str) and value.startswith("{{"), (comp.name, key)


def test_import_registers_every_component_validated_by_its_flavor(
    imported: dict[str, Any],
) -> None:
    assert imported["config_classes"] == {
        "orchestrator": "KubernetesOrchestratorConfig",
        "artifact_store": "S3ArtifactStoreConfig",
        "container_registry": "BaseContainerRegistryConfig",
        "image_builder": "KanikoImageBuilderConfig",
        "experiment_tracker": "MLFlowExperimentTrackerConfig",
        "model_registry": "MLFlowModelRegistryConfig",
    }
    first = imported["import"]
    assert first["code"] == 0, first
    for item in ("orchestrator:geomas-k8s-orchestrator", "artifact_store:geomas-s3",
                 "container_registry:geomas-registry", "image_builder:geomas-kaniko",
                 "experiment_tracker:geomas-mlflow",
                 "model_registry:geomas-mlflow-registry", "stack:geomas-k8s"):
        assert f"created : {item}" in first["output"]
    assert "local ZenML store" in first["output"]  # the note about the ZenML server
    assert imported["active_after_import"] == "default"  # import alone does not activate
    again = imported["again"]
    assert again["code"] == 0 and "already imported" in again["output"], again
    assert imported["active_after_activate"] == "geomas-k8s"


def test_show_prints_the_active_stack_with_secret_references(
    imported: dict[str, Any],
) -> None:
    show = imported["show"]
    assert show["code"] == 0, show
    stack = json.loads(show["output"])
    assert stack["name"] == "geomas-k8s"
    by_type = {c["type"]: c for c in stack["components"]}
    assert by_type["orchestrator"]["flavor"] == "kubernetes"
    assert by_type["artifact_store"]["configuration"]["secret"] == (
        "{{geomas_s3.aws_secret_access_key}}")
    assert "test-key" not in show["output"] and "test-pass" not in show["output"]


def test_zenml_itself_imports_the_file_and_exports_the_same_stack(
    imported: dict[str, Any],
) -> None:
    assert imported["zenml_import"]["code"] == 0, imported["zenml_import"]
    assert imported["zenml_export"]["code"] == 0, imported["zenml_export"]
    exported = imported["zenml_export"]["data"]
    original = yaml.safe_load(STACK_FILE.read_text("utf-8"))
    assert exported["stack_name"] == original["stack_name"]
    assert exported["zenml_version"] == original["zenml_version"]

    def normal(components: dict[str, Any]) -> dict[str, Any]:
        return {t: [(c["name"], c["flavor"], c["configuration"]) for c in cs]
                for t, cs in components.items()}

    assert normal(exported["components"]) == normal(original["components"])


def test_local_refuses_to_repoint_the_imported_tracker(imported: dict[str, Any]) -> None:
    local = imported["local"]
    assert local["code"] != 0
    assert local["error"].startswith("StackError")
    assert "geomas-mlflow" in local["error"] and "another --data-dir" in local["error"]
    assert imported["active_after_local"] == "geomas-k8s"
    assert imported["tracker_uri_after_local"] == "http://geomas-mlflow:5000"


def test_local_switches_the_active_stack_back(tmp_path: Path) -> None:
    report = _scenario(LOCAL_SCENARIO, tmp_path)
    assert report["first"]["code"] == 0, report["first"]
    assert "geomas-local is active" in report["first"]["output"]
    assert report["active_first"] == "geomas-local"
    assert report["active_moved"] == "default"
    assert "active stack default" in report["show_moved"]["output"]
    assert report["back"]["code"] == 0, report["back"]
    assert report["active_back"] == "geomas-local"
    assert report["stacks"] == ["default", "geomas-local"]
    # the embedded stack's tracker holds the name the Kubernetes stack needs in this store
    clash = report["import_over_local"]
    assert clash["error"].startswith("StackError")
    assert "experiment_tracker 'geomas-mlflow' already exists" in clash["error"]
    assert report["active_end"] == "geomas-local"


def test_import_errors_name_the_problem_and_the_fix(tmp_path: Path) -> None:
    report = _scenario(ERROR_SCENARIO, tmp_path)
    no_secrets = report["no_secrets"]["error"]
    assert no_secrets.startswith("StackError")
    assert "geomas_mlflow (password, username)" in no_secrets
    assert "zenml secret create geomas_s3 --aws_access_key_id=..." in no_secrets
    flavor = report["unknown_flavor"]["error"]
    assert flavor.startswith("ConfigError") and "'kubernetez'" in flavor
    assert "kubernetes" in flavor.split("flavors for orchestrator:")[1]
    assert "unknown component type 'orchestrators'" in report["unknown_type"]["error"]
    assert "unknown configuration keys ['namespace']" in report["unknown_key"]["error"]
    literal = report["literal_secret"]["error"]
    assert literal.startswith("ConfigError") and "secret holds a literal secret" in literal
    missing = report["missing_package"]["error"]
    assert missing.startswith("MissingExtraError")
    assert "pip install 'geomas[k8s]' (s3fs)" in missing
    # nothing was half-imported by the failures
    assert report["stacks"] == ["default"]
    assert "stack 'geomas-k8s' is not registered" in report["run_without_stack"]
    assert "geomas stack import zenml_stack.yaml" in report["run_without_stack"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("components: [unclosed\n", "not valid YAML"),
    ("stack_name: x\ncomponents: {}\n", "is not a ZenML stack file"),
])
def test_bad_files_fail_with_one_red_line(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "stack.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "geomas.cli", "stack", "import", str(path),
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:")
    # the file is checked before ZenML is set up: no store was created
    assert not (tmp_path / "data/zenml").exists()
