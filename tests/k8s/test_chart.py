"""charts/geomas: values and schema agree, templates only use values that exist, and the
rendered chart is valid Kubernetes 1.33 that meets the non-root / resource-limits policy.

Static checks need only PyYAML and jsonschema. Rendering needs real Helm: the
`helm-python-sdk` wheel (Helm's Go SDK as a C library, no binary) or a `helm` binary on PATH;
without either, the rendering tests skip and say so.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import json
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "geomas"
TEMPLATES = CHART / "templates"
K8S_VERSION = "1.33"
RELEASE, NAMESPACE = "geomas", "geomas"
UID = 10001
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"

Obj = dict[str, Any]

# A Helm-only install: everything k8s/ would otherwise provide, and every optional part on.
HELM_ONLY: Obj = {
    "rbac": {"create": True},
    "retrain": {"enabled": True, "extraArgs": ["--dry-run"]},
    "verify": {"models": ["geomas-sft", "geomas-ner"]},  # more than one served model
    "persistence": {"create": True, "storageClassName": "standard"},
    "mlflow": {
        "auth": {"enabled": True},
        "ingress": {"enabled": True, "host": "mlflow.example.com", "tlsSecretName": "tls"},
        "corsAllowedOrigins": ["https://mlflow.example.com"],
    },
    "zenml": {
        "ingress": {"enabled": True, "host": "zenml.example.com", "tlsSecretName": "tls-zenml"},
        "serverUrl": "https://zenml.example.com",
        "forwardedAllowIps": ["10.42.0.0/16"],  # the ingress controller's pods
    },
    "s3": {"endpointUrl": "http://minio.storage.svc:9000"},
    "panel": {
        "enabled": True,
        "image": {"repository": "registry.example.com/geomas/app", "tag": "0.1.0"},
        "ingress": {"enabled": True, "host": "panel.example.com", "tlsSecretName": "tls-panel"},
    },
    "imagePullSecrets": ["regcred"],
    # the retrain job and the orchestrator's RBAC are here: the API server's address is needed
    "networkPolicy": {"apiServer": {"cidrs": ["10.0.0.10/32"]}},
}
CONFIGS: dict[str, Obj] = {"defaults": {}, "helm-only": HELM_ONLY}


# --------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@functools.cache
def default_values() -> Obj:
    return load_yaml(CHART / "values.yaml")


@functools.cache
def schema() -> Obj:
    return json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))


def merge(base: Obj, override: Obj) -> Obj:
    """Helm's values merge: maps merge, anything else replaces, null deletes the key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def schema_errors(values: Obj) -> list[str]:
    validator = jsonschema.Draft7Validator(schema())
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(values)
    ]


def template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.is_file())


VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def values_refs(text: str) -> set[tuple[str, ...]]:
    return {tuple(m.group(1).lstrip(".").split(".")) for m in VALUES_REF.finditer(text)}


def leaf_paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaf_paths(value, (*prefix, key))
    else:
        yield prefix


def has_path(values: Obj, path: tuple[str, ...]) -> bool:
    node: Any = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


# --------------------------------------------------------------------------- static checks


def test_chart_yaml_has_required_fields() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == CHART.name
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", chart["version"]), chart["version"]
    assert isinstance(chart["appVersion"], str) and chart["appVersion"]
    assert len(chart["description"]) > 40


def test_schema_is_valid_and_closed() -> None:
    jsonschema.Draft7Validator.check_schema(schema())

    def open_objects(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                if node.get("additionalProperties") is not False:
                    yield where
            for key, value in node.items():
                yield from open_objects(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from open_objects(value, f"{where}/{i}")

    assert list(open_objects(schema(), "#")) == []


def test_default_values_match_schema() -> None:
    assert schema_errors(default_values()) == []


def test_every_values_key_is_in_the_schema() -> None:
    # additionalProperties: false catches unknown keys; this catches a required key the schema
    # has but values.yaml forgot (no documented default).
    def schema_paths(node: Obj, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
        if "$ref" in node:
            node = schema()["definitions"][node["$ref"].split("/")[-1]]
        props = node.get("properties")
        if not props:
            yield prefix
            return
        for key, sub in props.items():
            if key in node.get("required", []):
                yield from schema_paths(sub, (*prefix, key))

    missing = [
        ".".join(p)
        for p in schema_paths(schema())
        if p != ("global",) and not has_path(default_values(), p)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param({"mlflow": {"replicaz": 2}}, "'replicaz' was unexpected", id="typo"),
        pytest.param({"retrian": {"enabled": True}}, "'retrian' was unexpected", id="top-typo"),
        pytest.param(
            {"retrain": {"enabled": "yes"}}, "'yes' is not of type 'boolean'", id="wrong-type"
        ),
        pytest.param({"zenml": {"port": "8080"}}, "'8080' is not of type 'integer'", id="str-port"),
        pytest.param(
            {"mlflow": {"replicas": -1}}, "-1 is less than the minimum of 0", id="negative-replicas"
        ),
        pytest.param(
            {"securityContext": {"runAsUser": 0}}, "0 is less than the minimum of 1", id="root"
        ),
        pytest.param(
            {"zenml": {"resources": {"limits": None}}},
            "'limits' is a required property",
            id="no-limits",
        ),
        pytest.param(
            {"retrain": {"resources": {"requests": {"cpu": "lots", "memory": "1Gi"}}}},
            "'lots'",
            id="bad-quantity",
        ),
        pytest.param({"mlflow": {"allowedHosts": []}}, "should be non-empty", id="no-hosts"),
        pytest.param({"s3": {"endpointUrl": "minio:9000"}}, "does not match", id="bad-url"),
        pytest.param({"verify": {"models": []}}, "should be non-empty", id="no-models"),
        pytest.param(
            {"verify": {"models": ["--help"]}}, "does not match", id="model-read-as-option"
        ),
        pytest.param(
            {"verify": {"models": ["geomas-sft", "geomas-sft"]}},
            "non-unique elements",
            id="same-model-twice",
        ),
    ],
)
def test_bad_values_are_rejected(override: Obj, expected: str) -> None:
    errors = schema_errors(merge(default_values(), override))
    assert errors, f"{override} was accepted"
    assert any(expected in e for e in errors), errors


def test_templates_parse_as_text() -> None:
    files = template_files()
    assert {p.name for p in files} >= {
        "_helpers.tpl",
        "NOTES.txt",
        "mlflow.yaml",
        "zenml.yaml",
        "retrain-cronjob.yaml",
        "models-verify-cronjob.yaml",
        "rbac.yaml",
        "test-mlflow.yaml",
    }
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.count("{{") == text.count("}}"), f"{path.name}: unbalanced {{{{ }}}}"
        opened = len(re.findall(r"{{-?\s*(?:if|range|with|define)\b", text))
        closed = len(re.findall(r"{{-?\s*end\s*-?}}", text))
        assert opened == closed, f"{path.name}: {opened} blocks opened, {closed} closed"


def test_templates_reference_only_existing_values() -> None:
    values = default_values()
    unknown = [
        f"{path.relative_to(CHART)}: .Values.{'.'.join(ref)}"
        for path in template_files()
        for ref in sorted(values_refs(path.read_text(encoding="utf-8")))
        if not has_path(values, ref)
    ]
    assert unknown == []


def test_every_value_is_used_by_a_template() -> None:
    refs = set().union(*(values_refs(p.read_text(encoding="utf-8")) for p in template_files()))
    unused = [
        ".".join(leaf)
        for leaf in leaf_paths(default_values())
        if not any(leaf[: len(ref)] == ref for ref in refs)
    ]
    assert unused == []


def test_test_hook_is_annotated() -> None:
    text = (TEMPLATES / "tests" / "test-mlflow.yaml").read_text(encoding="utf-8")
    assert re.search(r"^\s+helm\.sh/hook:\s*test\s*$", text, re.M)
    assert "/health" in text


def test_zenml_server_matches_the_client() -> None:
    # A ZenML client refuses a server of another version.
    assert default_values()["zenml"]["image"]["tag"] == importlib.metadata.version("zenml")


def test_mlflow_server_flags_exist() -> None:
    """Every `--flag` the chart passes to `mlflow server` exists in the installed MLflow."""
    with warnings.catch_warnings():
        # mlflow.pyfunc warns about its own type hints on import
        warnings.simplefilter("ignore")
        from mlflow.cli import server

    known = {opt for param in server.params for opt in param.opts}
    app_names = next(p for p in server.params if "--app-name" in p.opts).type.choices
    text = (TEMPLATES / "mlflow.yaml").read_text(encoding="utf-8")
    start = text.index("- server")
    args = text[start : text.index("env:", start)]
    flags = set(re.findall(r"^\s*- (--[a-z-]+)", args, re.M))
    assert flags >= {"--allowed-hosts", "--serve-artifacts", "--artifacts-destination"}
    assert flags - known == set()
    assert "basic-auth" in app_names
    # the backend store URI comes from the environment the option reads
    assert next(p for p in server.params if "--backend-store-uri" in p.opts).envvar == (
        "MLFLOW_BACKEND_STORE_URI"
    )


# --------------------------------------------------------------------------- rendering


def _renderer() -> Callable[[Obj], dict[str, str]] | None:
    try:
        import helm_python
    except ImportError:
        helm_python = None
    if helm_python is not None:

        def render_sdk(values: Obj) -> dict[str, str]:
            with helm_python.Chart.load(str(CHART)) as chart:
                return dict(chart.render(values, name=RELEASE, namespace=NAMESPACE))

        return render_sdk
    helm = shutil.which("helm")
    if helm is not None:

        def render_cli(values: Obj) -> dict[str, str]:
            out = subprocess.run(
                [helm, "template", RELEASE, str(CHART), "-n", NAMESPACE, "-f", "-"],
                input=yaml.safe_dump(values),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return {"stdout": out}

        return render_cli
    return None


def render_objects(values: Obj) -> list[Obj]:
    render = _renderer()
    if render is None:
        pytest.skip("no Helm here: install helm-python-sdk (dev extra) or put helm on PATH")
    docs = render(values)
    return [
        obj
        for name, text in docs.items()
        if not name.endswith("NOTES.txt")
        for obj in yaml.safe_load_all(text)
        if obj
    ]


@functools.cache
def rendered(config: str) -> list[Obj]:
    objects = render_objects(CONFIGS[config])
    assert objects
    return objects


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def pod_specs(obj: Obj) -> list[Obj]:
    spec = obj.get("spec", {})
    if obj["kind"] == "Pod":
        return [spec]
    if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return [spec["template"]["spec"]]
    if obj["kind"] == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    return []


def container(obj: Obj) -> Obj:
    (spec,) = pod_specs(obj)
    (only,) = spec["containers"]
    return only


def env_of(obj: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(obj).get("env", [])}


def secret_ref(name: str, key: str) -> Obj:
    return {"secretKeyRef": {"name": name, "key": key}}


def policy_violations(obj: Obj) -> list[str]:
    """Non-root, no privilege, seccomp, requests and limits: for every pod of the chart."""
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    bad: list[str] = []
    for spec in pod_specs(obj):
        psc = spec.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or psc.get("runAsUser") != UID:
            bad.append(f"{where}: pod must run as non-root uid {UID}")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            bad.append(f"{where}: pod seccomp must be RuntimeDefault")
        for c in spec.get("initContainers", []) + spec["containers"]:
            csc = c.get("securityContext", {})
            if csc.get("runAsNonRoot") is not True or csc.get("runAsUser") != UID:
                bad.append(f"{where}/{c['name']}: not non-root {UID}")
            if csc.get("allowPrivilegeEscalation") is not False:
                bad.append(f"{where}/{c['name']}: allowPrivilegeEscalation must be false")
            if csc.get("privileged"):
                bad.append(f"{where}/{c['name']}: privileged")
            if csc.get("capabilities", {}).get("drop") != ["ALL"]:
                bad.append(f"{where}/{c['name']}: capabilities must drop ALL")
            if csc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                bad.append(f"{where}/{c['name']}: seccomp must be RuntimeDefault")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in res.get(part, {}):
                        bad.append(f"{where}/{c['name']}: no {part}.{resource}")
    return bad


def test_policy_check_sees_violations() -> None:
    broken = {
        "kind": "Pod",
        "metadata": {"name": "bad"},
        "spec": {"containers": [{"name": "c", "image": "x", "resources": {"requests": {}}}]},
    }
    assert len(policy_violations(broken)) >= 8


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_rendered_objects_are_valid_kubernetes(config: str) -> None:
    errors = []
    for obj in rendered(config):
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert errors == []


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_rendered_pods_meet_policy(config: str) -> None:
    objects = rendered(config)
    assert [o for o in objects if pod_specs(o)], "no workloads rendered"
    assert [v for obj in objects for v in policy_violations(obj)] == []


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_rendered_objects_are_labelled_and_namespaced(config: str) -> None:
    for obj in rendered(config):
        meta = obj["metadata"]
        assert meta["namespace"] == NAMESPACE, meta["name"]
        assert meta["labels"][PART_OF] == "geomas", meta["name"]
        assert meta["labels"][NAME] and meta["labels"]["app.kubernetes.io/component"]
        for spec in pod_specs(obj):
            assert "automountServiceAccountToken" in spec, meta["name"]


def test_defaults_render_the_servers_and_the_champion_check() -> None:
    objects = rendered("defaults")
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert names == {
        ("Deployment", "geomas-mlflow"),
        ("Service", "geomas-mlflow"),
        ("Deployment", "geomas-zenml"),
        ("Service", "geomas-zenml"),
        ("Pod", "geomas-mlflow-test"),
        ("CronJob", "geomas-chart-models-verify"),
        ("ServiceAccount", "geomas-chart-models-verify"),
    } | {
        ("NetworkPolicy", name)
        for name in (
            "geomas-chart-default-deny",
            "geomas-chart-allow-dns-egress",
            "geomas-chart-allow-tracking-egress",
            "geomas-chart-allow-mlflow-ingress",
            "geomas-chart-allow-zenml-ingress",
            "geomas-chart-allow-s3-egress",
            "geomas-chart-allow-s3-ingress-0",  # MinIO in the namespace (the default store)
            "geomas-allow-db-egress",
            "geomas-chart-allow-db-ingress-0",  # PostgreSQL/MySQL in the namespace
            "geomas-chart-allow-models-verify-egress",
        )
    }


@pytest.mark.parametrize(("server", "port"), [("geomas-mlflow", 5000), ("geomas-zenml", 8080)])
def test_services_select_their_pods(server: str, port: int) -> None:
    objects = rendered("defaults")
    deploy, svc = find(objects, "Deployment", server), find(objects, "Service", server)
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[NAME] == server
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert deploy["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert [p["port"] for p in svc["spec"]["ports"]] == [port]
    probes = container(deploy)
    for probe in ("readinessProbe", "livenessProbe"):
        assert probes[probe]["httpGet"]["path"] == "/health"


def test_mlflow_server_command() -> None:
    deploy = find(rendered("defaults"), "Deployment", "geomas-mlflow")
    c = container(deploy)
    assert c["command"] == ["mlflow"] and c["args"][0] == "server"
    assert "--serve-artifacts" in c["args"]
    assert "--artifacts-destination=s3://geomas-artifacts/mlflow" in c["args"]
    hosts = next(a for a in c["args"] if a.startswith("--allowed-hosts=")).split("=", 1)[1]
    assert {"geomas-mlflow:*", "localhost:*"} <= set(hosts.split(","))
    assert "--app-name=basic-auth" in c["args"]  # auth is on by default
    env = env_of(deploy)
    assert env["MLFLOW_BACKEND_STORE_URI"] == secret_ref("geomas-mlflow-db", "uri")
    assert env["AWS_ACCESS_KEY_ID"] == secret_ref("geomas-s3", "AWS_ACCESS_KEY_ID")
    assert env["AWS_SECRET_ACCESS_KEY"] == secret_ref("geomas-s3", "AWS_SECRET_ACCESS_KEY")


def test_mlflow_auth_and_ingress() -> None:
    objects = rendered("helm-only")
    deploy = find(objects, "Deployment", "geomas-mlflow")
    args = container(deploy)["args"]
    assert "--app-name=basic-auth" in args
    hosts = next(a for a in args if a.startswith("--allowed-hosts=")).split(",")
    assert "mlflow.example.com" in hosts  # the ingress host passes MLflow's host check
    env = env_of(deploy)
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == secret_ref(
        "geomas-mlflow-auth", "flask-secret-key"
    )
    assert env["MLFLOW_AUTH_ADMIN_USERNAME"] == secret_ref("geomas-mlflow-auth", "username")
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"] == secret_ref("geomas-mlflow-auth", "password")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.storage.svc:9000"
    # the INI file is written at start into memory, not mounted from a Secret or ConfigMap
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["auth-config"]["emptyDir"]["medium"] == "Memory"
    for server in ("geomas-mlflow", "geomas-zenml"):
        find(objects, "Ingress", server)
        find(objects, "NetworkPolicy", f"{server}-allow-ingress-controller")


def test_zenml_server() -> None:
    deploy = find(rendered("defaults"), "Deployment", "geomas-zenml")
    assert container(deploy)["image"] == "zenmldocker/zenml-server:0.98.0"
    env = env_of(deploy)
    assert env["ZENML_STORE_URL"] == secret_ref("geomas-zenml-db", "url")
    assert env["ZENML_SERVER_JWT_SECRET_KEY"]["secretKeyRef"]["optional"] is True
    mounts = {m["mountPath"] for m in container(deploy)["volumeMounts"]}
    assert env["ZENML_CONFIG_PATH"] in mounts  # writable for uid 10001 (the image owns /zenml)


def test_zenml_can_be_turned_off() -> None:
    objects = render_objects({"zenml": {"enabled": False}})
    assert not [o for o in objects if o["metadata"]["name"].startswith("geomas-zenml")]
    policy = find(objects, "NetworkPolicy", "geomas-allow-db-egress")
    (selector,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert selector["values"] == ["geomas-mlflow"]


def test_retrain_cronjob() -> None:
    objects = rendered("helm-only")
    cron = find(objects, "CronJob", "geomas-retrain")
    spec = cron["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    c = container(cron)
    assert c["image"] == "registry.example.com/geomas/app:0.1.0"
    assert c["command"] + c["args"] == [
        "geomas", "retrain", "check", "--config", "/app/configs/k8s.yaml", "--dry-run",
    ]  # fmt: skip
    env = env_of(cron)
    assert env["MLFLOW_TRACKING_URI"] == "http://geomas-mlflow:5000"
    assert env["ZENML_STORE_URL"] == "http://geomas-zenml:8080"
    assert env["ZENML_STORE_API_KEY"] == secret_ref("geomas-zenml-api-key", "api-key")
    assert env["AWS_ACCESS_KEY_ID"] == secret_ref("geomas-s3", "AWS_ACCESS_KEY_ID")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.storage.svc:9000"
    assert env["MLFLOW_TRACKING_USERNAME"] == secret_ref("geomas-mlflow-auth", "username")
    (pod,) = pod_specs(cron)
    assert pod["serviceAccountName"] == "geomas-orchestrator"
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"geomas-data"}


def test_retrain_cronjob_matches_k8s_base() -> None:
    """The chart's CronJob (Helm-only installs) runs what k8s/base's runs."""
    base = load_yaml(ROOT / "k8s" / "base" / "cronjob-retrain.yaml")
    ours = find(rendered("helm-only"), "CronJob", "geomas-retrain")
    theirs_c, ours_c = container(base), container(ours)
    ours_cmd = [a for a in ours_c["command"] + ours_c["args"] if a != "--dry-run"]
    assert theirs_c.get("command", []) + theirs_c.get("args", []) == ours_cmd
    assert set(env_of(base)) <= set(env_of(ours))
    assert pod_specs(base)[0]["serviceAccountName"] == pod_specs(ours)[0]["serviceAccountName"]
    for key in ("schedule", "timeZone", "concurrencyPolicy", "startingDeadlineSeconds"):
        assert base["spec"][key] == ours["spec"][key], key


def test_models_verify_cronjob() -> None:
    objects = rendered("helm-only")
    cron = find(objects, "CronJob", "geomas-chart-models-verify")
    spec = cron["spec"]
    assert spec["schedule"] == "*/15 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert 0 < job["activeDeadlineSeconds"] < 15 * 60
    assert "ttlSecondsAfterFinished" not in job  # failed Jobs, the alert signal, stay
    c = container(cron)
    # the app image, as the retrain job's; one `geomas models verify` per model (test_policy
    # runs the command)
    assert c["image"] == container(find(objects, "CronJob", "geomas-retrain"))["image"]
    assert c["args"] == ["geomas-sft", "geomas-ner"]
    assert "geomas models verify" in " ".join(c["command"])
    env = env_of(cron)
    assert env["MLFLOW_TRACKING_URI"] == "http://geomas-mlflow:5000"
    assert env["MLFLOW_TRACKING_USERNAME"] == secret_ref("geomas-mlflow-auth", "username")
    assert env["MLFLOW_TRACKING_PASSWORD"] == secret_ref("geomas-mlflow-auth", "password")
    # it reads the registry only: no S3 keys, no ZenML key, no claim
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ZENML_STORE_API_KEY"} & set(env)
    (pod,) = pod_specs(cron)
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    # its own account, without a token and without any binding
    assert pod["serviceAccountName"] == "geomas-chart-models-verify"
    assert pod["automountServiceAccountToken"] is False
    account = find(objects, "ServiceAccount", "geomas-chart-models-verify")
    assert account["automountServiceAccountToken"] is False
    bound = {s["name"] for b in objects if b["kind"].endswith("RoleBinding") for s in b["subjects"]}
    assert "geomas-chart-models-verify" not in bound


def test_models_verify_can_be_turned_off() -> None:
    objects = render_objects({"verify": {"enabled": False}})
    assert [o["metadata"]["name"] for o in objects if "verify" in o["metadata"]["name"]] == []


def test_models_verify_cronjob_matches_k8s_base() -> None:
    """The chart's champion check runs what k8s/base's runs, on the same terms."""
    base = load_yaml(ROOT / "k8s" / "base" / "cronjob-models-verify.yaml")
    ours = find(rendered("defaults"), "CronJob", "geomas-chart-models-verify")
    theirs_c, ours_c = container(base), container(ours)
    for key in ("command", "args", "resources"):
        assert theirs_c[key] == ours_c[key], key
    assert set(env_of(base)) == set(env_of(ours))
    for key in ("schedule", "timeZone", "concurrencyPolicy", "startingDeadlineSeconds",
                "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):  # fmt: skip
        assert base["spec"][key] == ours["spec"][key], key
    for key in ("backoffLimit", "activeDeadlineSeconds"):
        assert base["spec"]["jobTemplate"]["spec"][key] == ours["spec"]["jobTemplate"]["spec"][key]
    assert pod_specs(base)[0]["volumes"] == pod_specs(ours)[0]["volumes"]


def test_rbac_matches_k8s_base_and_has_no_secrets() -> None:
    objects = rendered("helm-only")
    role = find(objects, "Role", "geomas-orchestrator")
    assert not [r for r in role["rules"] if {"secrets", "*"} & set(r["resources"])]
    theirs = load_yaml(ROOT / "k8s" / "base" / "role.yaml")

    def grants(rules: list[Obj]) -> set[tuple[str, str, str]]:
        return {
            (group, res, verb)
            for r in rules
            for group in r["apiGroups"]
            for res in r["resources"]
            for verb in r["verbs"]
        }

    assert grants(role["rules"]) == grants(theirs["rules"])
    binding = find(objects, "RoleBinding", "geomas-orchestrator")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "geomas-orchestrator", "namespace": NAMESPACE}
    ]
    find(objects, "ServiceAccount", "geomas-orchestrator")
    for claim in ("geomas-model-cache", "geomas-data"):
        pvc = find(objects, "PersistentVolumeClaim", claim)
        assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_helm_test_pod() -> None:
    pod = find(rendered("defaults"), "Pod", "geomas-mlflow-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    script = " ".join(container(pod)["command"])
    assert "http://geomas-mlflow:5000/health" in script


def test_chart_defaults_match_the_zenml_stack() -> None:
    """zenml_stack.yaml points the pods at this chart's MLflow and at the same S3 bucket."""
    stack = load_yaml(ROOT / "zenml_stack.yaml")["components"]
    values = default_values()
    (tracker,) = stack["experiment_tracker"]
    assert (
        tracker["configuration"]["tracking_uri"]
        == f"http://geomas-mlflow:{values['mlflow']['port']}"
    )
    (store,) = stack["artifact_store"]
    bucket = store["configuration"]["path"].removeprefix("s3://").split("/")[0]
    assert bucket == values["s3"]["bucket"]
    endpoint = store["configuration"]["client_kwargs"]["endpoint_url"]
    assert endpoint == values["s3"]["endpointUrl"]
