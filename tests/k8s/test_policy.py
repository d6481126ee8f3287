"""Hardening policies (issue 14, item 7) on both deployments and on ZenML's pods.

Each policy is a function that returns its violations. The same functions run on
- the Helm chart, rendered with its defaults and as a Helm-only install (test_chart's renderer),
- the kustomize targets base, overlays/dev and overlays/prod (test_manifests' renderer),
- the orchestrator and step pods that ZenML builds from configs/k8s.yaml (ZenML's own pod
  manifest builder, in a subprocess: ZenML binds its config dir once per process),
and each is also run on a rendered object broken on purpose, so that no check can pass by
looking at nothing. Where one deployment has no object of a kind (k8s/ renders no server, no
Ingress; a chart cannot label the namespace it is installed into), the test says so.

Policies: Pod Security "restricted" (pods and namespace labels); read-only root filesystems
with writable volumes where the containers write; a default-deny NetworkPolicy, no flow open to
the internet, and the Kubernetes API reachable only at the configured endpoint and only by the
pods that create Jobs; ingresses only with TLS; MLflow's basic auth on, with credentials only
from Secrets; the ZenML server trusting forwarded headers only from configured addresses; the
deploy docs keeping keys out of the repository; the scheduled champion check (`geomas models
verify`) running for each served model, keeping its failed Jobs, with no Kubernetes API token
and network access to MLflow and DNS only.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_chart
import test_manifests
from test_manifests import Endpoint, connection_allowed, is_default_deny, one, pod_spec_of

ROOT = Path(__file__).resolve().parents[2]
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
PSS = "pod-security.kubernetes.io"

Obj = dict[str, Any]

CHART_CONFIGS = tuple(sorted(test_chart.CONFIGS))
DEPLOYMENTS = tuple(
    [f"chart:{config}" for config in CHART_CONFIGS]
    + [f"kustomize:{target}" for target in sorted(test_manifests.TARGETS)]
)


def objects_of(deployment: str) -> list[Obj]:
    """The rendered objects of a deployment (a deep copy: tests may break them)."""
    source, name = deployment.split(":", 1)
    if source == "chart":
        return copy.deepcopy(test_chart.rendered(name))
    return test_manifests.render(name)


def namespace_of(deployment: str) -> str:
    source, name = deployment.split(":", 1)
    return test_chart.NAMESPACE if source == "chart" else test_manifests.TARGETS[name]


def workloads(objects: list[Obj]) -> list[Obj]:
    return test_manifests.workloads(objects)


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def containers_of(spec: Obj) -> list[Obj]:
    return (
        spec.get("initContainers", [])
        + spec.get("containers", [])
        + spec.get("ephemeralContainers", [])
    )


def env_map(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env") or []}


@pytest.fixture(params=DEPLOYMENTS)
def deployment(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def chart_mlflow() -> Obj:
    return one(objects_of("chart:helm-only"), "Deployment", "geomas-mlflow")


def kustomize_cronjob() -> Obj:
    return one(objects_of("kustomize:overlays/prod"), "CronJob", "geomas-retrain")


# The champion check's CronJob in each renderer (k8s/ and the chart can run side by side).
VERIFY_CRONJOBS = {"chart": "geomas-chart-models-verify", "kustomize": "geomas-models-verify"}


def verify_cronjob_of(deployment: str, objects: list[Obj] | None = None) -> Obj:
    objects = objects_of(deployment) if objects is None else objects
    return one(objects, "CronJob", VERIFY_CRONJOBS[deployment.split(":", 1)[0]])


# Objects every breakage is tried on: rendered by Helm and by kustomize.
BROKEN_SOURCES: dict[str, Callable[[], Obj]] = {
    "chart mlflow": chart_mlflow,
    "kustomize retrain": kustomize_cronjob,
    "chart models-verify": lambda: verify_cronjob_of("chart:helm-only"),
    "kustomize models-verify": lambda: verify_cronjob_of("kustomize:overlays/prod"),
}


# --------------------------------------------------------------------------- 3. Pod Security

# Pod Security Standards, "restricted" profile (Kubernetes 1.33), which includes "baseline".
RESTRICTED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}  # fmt: skip
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def restricted_violations(spec: Obj) -> list[str]:
    """What in a pod spec the Pod Security Admission would refuse under "restricted"."""
    bad: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            bad.append(f"pod: {field}")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            bad.append(f"volume {volume['name']}: type {sorted(kinds)} is not allowed")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            bad.append(f"pod: unsafe sysctl {sysctl['name']}")
    containers = containers_of(spec)
    if not containers:
        bad.append("pod: no containers")
    for c in containers:
        name = c.get("name", "?")
        sc = c.get("securityContext") or {}
        if sc.get("privileged") is True:
            bad.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            bad.append(f"{name}: runAsNonRoot is not true")
        if 0 in (sc.get("runAsUser"), pod_sc.get("runAsUser")):
            bad.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            bad.append(f"{name}: seccompProfile is {seccomp}, not RuntimeDefault/Localhost")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            bad.append(f"{name}: capabilities do not drop ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            bad.append(f"{name}: adds capabilities {sorted(added)}")
        if sc.get("procMount", "Default") != "Default":
            bad.append(f"{name}: procMount {sc['procMount']}")
        for source in (sc, pod_sc):
            if (source.get("appArmorProfile") or {}).get("type") == "Unconfined":
                bad.append(f"{name}: AppArmor Unconfined")
            if (source.get("seLinuxOptions") or {}).get("type", "") not in SELINUX_TYPES:
                bad.append(f"{name}: SELinux type {source['seLinuxOptions']['type']}")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            bad.append(f"{name}: hostPort")
    return bad


def namespace_pss_violations(namespace: Obj) -> list[str]:
    """The namespace must enforce, audit and warn at "restricted"."""
    labels = namespace["metadata"].get("labels") or {}
    return [
        f"{PSS}/{mode} is {labels.get(f'{PSS}/{mode}')!r}, not 'restricted'"
        for mode in ("enforce", "audit", "warn")
        if labels.get(f"{PSS}/{mode}") != "restricted"
    ]


def test_every_pod_meets_pod_security_restricted(deployment: str) -> None:
    found = {
        f"{w['kind']}/{w['metadata']['name']}": restricted_violations(pod_spec_of(w))
        for w in workloads(objects_of(deployment))
    }
    assert found, "no pod template rendered"
    assert {k: v for k, v in found.items() if v} == {}


def _first_container(spec: Obj) -> Obj:
    return spec["containers"][0]


RESTRICTED_BREAKAGES: dict[str, tuple[Callable[[Obj], object], str]] = {
    "privilege escalation": (
        lambda s: _first_container(s)["securityContext"].update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation",
    ),
    "root user": (lambda s: s["securityContext"].update(runAsUser=0), "runAsUser 0"),
    "runAsNonRoot false": (
        lambda s: _first_container(s)["securityContext"].update(runAsNonRoot=False),
        "runAsNonRoot",
    ),
    "no seccomp": (
        lambda s: [
            sc.pop("seccompProfile", None)
            for sc in (s["securityContext"], _first_container(s)["securityContext"])
        ],
        "seccompProfile is None",
    ),
    "seccomp unconfined": (
        lambda s: _first_container(s)["securityContext"].update(
            seccompProfile={"type": "Unconfined"}
        ),
        "seccompProfile is Unconfined",
    ),
    "capabilities kept": (
        lambda s: _first_container(s)["securityContext"].pop("capabilities"),
        "do not drop ALL",
    ),
    "capability added": (
        lambda s: _first_container(s)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
        "SYS_ADMIN",
    ),
    "hostPath volume": (
        lambda s: s.setdefault("volumes", []).append({"name": "h", "hostPath": {"path": "/"}}),
        "hostPath",
    ),
    "host network": (lambda s: s.update(hostNetwork=True), "hostNetwork"),
    "hostPort": (
        lambda s: _first_container(s).setdefault("ports", []).append(
            {"containerPort": 80, "hostPort": 80}
        ),
        "hostPort",
    ),
    "privileged init container": (
        lambda s: s.setdefault("initContainers", []).append(
            {"name": "init", "securityContext": {"privileged": True}}
        ),
        "init: privileged",
    ),
}


@pytest.mark.parametrize("source", sorted(BROKEN_SOURCES))
@pytest.mark.parametrize("breakage", sorted(RESTRICTED_BREAKAGES))
def test_the_restricted_check_catches_a_broken_pod(source: str, breakage: str) -> None:
    spec = pod_spec_of(BROKEN_SOURCES[source]())
    assert restricted_violations(spec) == []
    breaker, expected = RESTRICTED_BREAKAGES[breakage]
    breaker(spec)
    found = restricted_violations(spec)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize("target", sorted(test_manifests.TARGETS))
def test_the_namespace_enforces_restricted(target: str) -> None:
    namespace = one(test_manifests.render(target), "Namespace", test_manifests.TARGETS[target])
    assert namespace_pss_violations(namespace) == []
    # The chart cannot label the namespace it is installed into (it does not create it): its
    # NOTES print the `kubectl label namespace` line for a Helm-only install.
    render = test_chart._renderer()
    if render is not None:
        notes = "".join(v for k, v in render({}).items() if k.endswith("NOTES.txt"))
        assert f"{PSS}/enforce=restricted" in notes


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda labels: labels.update({f"{PSS}/enforce": "baseline"}), "enforce is 'baseline'"),
        (lambda labels: labels.pop(f"{PSS}/audit"), "audit is None"),
        (lambda labels: labels.update({f"{PSS}/warn": "privileged"}), "warn is 'privileged'"),
    ],
    ids=["enforce-baseline", "no-audit", "warn-privileged"],
)
def test_the_namespace_check_catches_a_weaker_level(
    breakage: Callable[[dict[str, str]], object], expected: str
) -> None:
    namespace = one(test_manifests.render("overlays/prod"), "Namespace", "geomas")
    breakage(namespace["metadata"]["labels"])
    found = namespace_pss_violations(namespace)
    assert any(expected in v for v in found), found


# --------------------------------------------------------------------------- 4. read-only roots

# Environment variables that name a directory the process writes to.
WRITTEN_DIRS = (
    "HOME", "TMPDIR", "XDG_CACHE_HOME", "HF_HOME", "HF_DATASETS_CACHE", "ZENML_CONFIG_PATH",
    "GEOMAS_DATA_DIR", "MPLCONFIGDIR", "TRITON_CACHE_DIR",
)  # fmt: skip


def _mount_of(path: str, mounts: list[Obj]) -> Obj | None:
    under = [
        m for m in mounts
        if path == m["mountPath"].rstrip("/") or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]  # fmt: skip
    return max(under, key=lambda m: len(m["mountPath"]), default=None)


def writable_violations(spec: Obj, must_write: tuple[str, ...] = ()) -> list[str]:
    """Read-only root filesystems, and a writable volume wherever a container writes.

    A container writes to the directories its environment names (HOME, caches, ZenML's config,
    ...) and to `must_write`; each must be on a volume mounted read-write: an emptyDir, or a
    claim mounted without readOnly.
    """
    bad: list[str] = []
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        name = c.get("name", "?")
        if (c.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            bad.append(f"{name}: root filesystem is writable (readOnlyRootFilesystem not true)")
        env = env_map(c)
        paths = [(f"${k}", env[k]["value"]) for k in WRITTEN_DIRS if "value" in env.get(k, {})]
        paths += [(p, p) for p in must_write]
        mounts = c.get("volumeMounts") or []
        for label, path in paths:
            mount = _mount_of(path.rstrip("/"), mounts)
            if mount is None:
                bad.append(f"{name}: {label} ({path}) is on the read-only root")
                continue
            volume = volumes.get(mount["name"], {})
            claim = volume.get("persistentVolumeClaim")
            writable = "emptyDir" in volume or (claim is not None and not claim.get("readOnly"))
            if mount.get("readOnly") or not writable:
                bad.append(f"{name}: {label} ({path}) is on a read-only volume {mount['name']}")
    return bad


def test_every_container_has_a_read_only_root_and_writable_scratch(deployment: str) -> None:
    found = {
        f"{w['kind']}/{w['metadata']['name']}": writable_violations(pod_spec_of(w))
        for w in workloads(objects_of(deployment))
    }
    assert found
    assert {k: v for k, v in found.items() if v} == {}


def _tmp_mount(spec: Obj) -> Obj:
    return next(m for m in _first_container(spec)["volumeMounts"] if m["mountPath"] == "/tmp")


WRITABLE_BREAKAGES: dict[str, tuple[Callable[[Obj], object], str]] = {
    "writable root": (
        lambda s: _first_container(s)["securityContext"].pop("readOnlyRootFilesystem"),
        "root filesystem is writable",
    ),
    "writable root explicitly": (
        lambda s: _first_container(s)["securityContext"].update(readOnlyRootFilesystem=False),
        "root filesystem is writable",
    ),
    "no /tmp volume": (
        lambda s: _first_container(s)["volumeMounts"].remove(_tmp_mount(s)),
        "$HOME (/tmp) is on the read-only root",
    ),
    "/tmp mounted read-only": (
        lambda s: _tmp_mount(s).update(readOnly=True),
        "$HOME (/tmp) is on a read-only volume",
    ),
}


@pytest.mark.parametrize("source", sorted(BROKEN_SOURCES))
@pytest.mark.parametrize("breakage", sorted(WRITABLE_BREAKAGES))
def test_the_writable_check_catches_a_broken_pod(source: str, breakage: str) -> None:
    spec = pod_spec_of(BROKEN_SOURCES[source]())
    assert writable_violations(spec) == []
    breaker, expected = WRITABLE_BREAKAGES[breakage]
    breaker(spec)
    found = writable_violations(spec)
    assert any(expected in v for v in found), found


# ZenML's pods, built by ZenML itself from the settings geomas/k8s.py makes of configs/k8s.yaml.
ZENML_PODS_SCRIPT = r"""
import json, sys
from pathlib import Path

from geomas.stack import activate_project

activate_project(Path(sys.argv[1]))

from kubernetes.client import ApiClient
from zenml.integrations.kubernetes.manifest_utils import build_pod_manifest

from geomas.config import RunConfig, load_config
from geomas.k8s import ORCHESTRATOR_KEY, pipeline_settings, step_settings
from geomas.names import all_step_names

cfg = load_config(Path("configs/k8s.yaml"), RunConfig)
api = ApiClient()

def pod(settings, account):
    manifest = build_pod_manifest(pod_name=None, image_name="image", command=["python"],
                                  args=[], privileged=False, pod_settings=settings,
                                  service_account_name=account)
    return api.sanitize_for_serialization(manifest)

pods = {}
for step, settings in step_settings(cfg.kubernetes, all_step_names()).items():
    orch = settings[ORCHESTRATOR_KEY]
    pods[step] = pod(orch.pod_settings, orch.step_pod_service_account_name)
orch = pipeline_settings(cfg.kubernetes)[ORCHESTRATOR_KEY]
pods[sys.argv[3]] = pod(orch.orchestrator_pod_settings, orch.service_account_name)
Path(sys.argv[2]).write_text(json.dumps(pods), encoding="utf-8")
"""
ORCHESTRATOR = "<orchestrator>"


@pytest.fixture(scope="module")
def zenml_pods_json(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("zenml_pods")
    script = tmp / "pods.py"
    script.write_text(ZENML_PODS_SCRIPT, encoding="utf-8")
    out = tmp / "pods.json"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp / "data"), str(out), ORCHESTRATOR],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_text("utf-8")


@pytest.fixture()
def zenml_pods(zenml_pods_json: str) -> dict[str, Obj]:
    """{step name or <orchestrator>: the Pod ZenML would create}, a fresh copy per test."""
    return dict(json.loads(zenml_pods_json))


def test_zenml_pods_meet_restricted(zenml_pods: dict[str, Obj]) -> None:
    from geomas.names import all_step_names

    assert set(zenml_pods) == {*all_step_names(), ORCHESTRATOR}
    found = {name: restricted_violations(pod["spec"]) for name, pod in zenml_pods.items()}
    assert {k: v for k, v in found.items() if v} == {}


def test_step_pods_have_a_read_only_root_and_writable_tmp(zenml_pods: dict[str, Obj]) -> None:
    steps = {k: v for k, v in zenml_pods.items() if k != ORCHESTRATOR}
    # ZenML stages artifacts in the temp dir, the steps' libraries cache under HOME and HF_HOME
    found = {name: writable_violations(pod["spec"], ("/tmp",)) for name, pod in steps.items()}
    assert {k: v for k, v in found.items() if v} == {}
    for name, pod in steps.items():
        (container,) = pod["spec"]["containers"]
        env = env_map(container)
        assert env["HOME"]["value"] == "/tmp", name
        assert env["HF_HOME"]["value"].startswith("/tmp/"), name
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        scratch = volumes[_mount_of("/tmp", container["volumeMounts"])["name"]]
        assert "sizeLimit" in scratch["emptyDir"], name  # bounded: no node disk filled up
    # The orchestrator pod mounts no volume (tests/unit/test_k8s_settings.py pins that): its
    # root stays writable, which "restricted" allows. Recorded here so that it is a decision.
    orchestrator = zenml_pods[ORCHESTRATOR]["spec"]
    assert not orchestrator.get("volumes")
    assert "main: root filesystem is writable (readOnlyRootFilesystem not true)" in (
        writable_violations(orchestrator)
    )


def test_the_step_pod_checks_catch_a_broken_step_pod(zenml_pods: dict[str, Obj]) -> None:
    spec = zenml_pods["train_model"]["spec"]
    assert writable_violations(spec, ("/tmp",)) == restricted_violations(spec) == []
    (container,) = spec["containers"]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]
    container["securityContext"]["allowPrivilegeEscalation"] = None
    assert any("(/tmp) is on the read-only root" in v for v in writable_violations(spec, ("/tmp",)))
    assert any("allowPrivilegeEscalation" in v for v in restricted_violations(spec))


# --------------------------------------------------------------------------- 2, 5. network

INTERNET = ("93.184.216.34", "8.8.8.8", "1.1.1.1")
WIDEST_FLOW_PREFIX = 8  # an allowed range wider than /8 is "the internet"
WIDEST_APISERVER_PREFIX = {4: 16, 6: 48}


def default_deny_violations(policies: list[Obj], namespace: str) -> list[str]:
    """A policy in the namespace selects every pod and denies both directions."""
    if any(p["metadata"].get("namespace") == namespace and is_default_deny(p) for p in policies):
        return []
    return [f"no default-deny NetworkPolicy (podSelector {{}}, Ingress+Egress) in {namespace}"]


def open_flow_violations(policies: list[Obj]) -> list[str]:
    """Rules that open a direction to everything: no peers at all, or a /0 .. /7 ipBlock."""
    bad: list[str] = []
    for policy in policies:
        name = policy["metadata"]["name"]
        for direction, peers_key in (("egress", "to"), ("ingress", "from")):
            for i, rule in enumerate(policy["spec"].get(direction) or []):
                if not rule.get(peers_key):
                    bad.append(f"{name}: {direction}[{i}] has no {peers_key}: any address")
                for peer in rule.get(peers_key) or []:
                    cidr = (peer.get("ipBlock") or {}).get("cidr")
                    if cidr and ipaddress.ip_network(cidr).prefixlen < WIDEST_FLOW_PREFIX:
                        bad.append(f"{name}: {direction}[{i}] allows {cidr}")
    return bad


def apiserver_egress_violations(
    policies: list[Obj], namespace: str, api_cidrs: list[str]
) -> list[str]:
    """The Kubernetes API is reachable only at `api_cidrs`, and only by the Job creators.

    `api_cidrs` come from where the deployment's value is set (chart values, kustomize patch),
    not from the rendering: the rendered policies are what is checked, by behaviour.
    """
    bad: list[str] = []
    creators = {
        kind: Endpoint({PART_OF: "geomas", COMPONENT: kind}, namespace)
        for kind in ("retrain", "orchestrator", "retrain_check", "panel", "panel-run")
    }
    step = Endpoint({PART_OF: "geomas", COMPONENT: "training"}, namespace)
    stranger = Endpoint({NAME: "something-else"}, namespace)
    for cidr in api_cidrs:
        network = ipaddress.ip_network(cidr)
        if network.prefixlen < WIDEST_APISERVER_PREFIX[network.version]:
            bad.append(f"API server range {cidr} is wider than one cluster's endpoints")
        api = Endpoint(ip=str(network.network_address))
        for kind, pod in creators.items():
            if not connection_allowed(policies, pod, api, 6443):
                bad.append(f"{kind} cannot reach the API server {api.ip}:6443")
        for who, pod in (("step pod", step), ("unlabelled pod", stranger)):
            if connection_allowed(policies, pod, api, 6443):
                bad.append(f"{who} reaches the API server {api.ip}")
        if connection_allowed(policies, creators["orchestrator"], api, 22):
            bad.append(f"orchestrator reaches {api.ip} on port 22")
    for kind, pod in creators.items():
        for address in INTERNET:
            for port in (443, 6443):
                if connection_allowed(policies, pod, Endpoint(ip=address), port):
                    bad.append(f"{kind} reaches {address}:{port} (not the API server)")
    return bad


def api_cidrs_of(deployment: str) -> list[str]:
    """The API server ranges the deployment's configuration gives."""
    source, name = deployment.split(":", 1)
    if source == "kustomize":
        return test_manifests.apiserver_cidrs(name)
    values = test_chart.merge(test_chart.default_values(), test_chart.CONFIGS[name])
    return list(values["networkPolicy"]["apiServer"]["cidrs"])


def policies_of(deployment: str) -> list[Obj]:
    return of_kind(objects_of(deployment), "NetworkPolicy")


def test_a_default_deny_policy_and_no_open_flows(deployment: str) -> None:
    policies = policies_of(deployment)
    assert default_deny_violations(policies, namespace_of(deployment)) == []
    assert open_flow_violations(policies) == []


def test_the_api_server_is_reachable_only_at_the_configured_endpoint(deployment: str) -> None:
    cidrs = api_cidrs_of(deployment)
    if deployment == "chart:defaults":
        # chart next to k8s/: it leaves the API server to k8s/'s policy and allows none itself
        assert cidrs == []
    else:
        assert cidrs, "the deployment gives no API server address"
    policies, namespace = policies_of(deployment), namespace_of(deployment)
    assert apiserver_egress_violations(policies, namespace, cidrs) == []


def _apiserver_policy(policies: list[Obj]) -> Obj:
    (policy,) = [p for p in policies if "apiserver" in p["metadata"]["name"]]
    return policy


NETWORK_SOURCES = ("chart:helm-only", "kustomize:overlays/prod")
NetworkCheck = Callable[[list[Obj], str, list[str]], list[str]]
NETWORK_BREAKAGES: dict[str, tuple[Callable[[list[Obj]], object], NetworkCheck, str]] = {
    "default deny removed": (
        lambda ps: ps.remove(next(p for p in ps if is_default_deny(p))),
        lambda ps, ns, cidrs: default_deny_violations(ps, ns),
        "no default-deny",
    ),
    "default deny selects some pods": (
        lambda ps: next(p for p in ps if is_default_deny(p))["spec"].update(
            podSelector={"matchLabels": {PART_OF: "geomas"}}
        ),
        lambda ps, ns, cidrs: default_deny_violations(ps, ns),
        "no default-deny",
    ),
    "0.0.0.0/0 egress added": (
        lambda ps: ps[0]["spec"].setdefault("egress", []).append(
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}
        ),
        lambda ps, ns, cidrs: open_flow_violations(ps),
        "allows 0.0.0.0/0",
    ),
    "egress rule without peers": (
        lambda ps: ps[0]["spec"].setdefault("egress", []).append({"ports": [{"port": 443}]}),
        lambda ps, ns, cidrs: open_flow_violations(ps),
        "has no to: any address",
    ),
    "API server opened to 0.0.0.0/0": (
        lambda ps: _apiserver_policy(ps)["spec"]["egress"][0]["to"][0]["ipBlock"].update(
            cidr="0.0.0.0/0"
        ),
        apiserver_egress_violations,
        "orchestrator reaches 93.184.216.34:443",
    ),
    "API server policy selects step pods": (
        lambda ps: _apiserver_policy(ps)["spec"].update(
            podSelector={"matchLabels": {PART_OF: "geomas"}}
        ),
        apiserver_egress_violations,
        "step pod reaches the API server",
    ),
    "API server policy without the scheduled check": (
        lambda ps: _apiserver_policy(ps)["spec"]["podSelector"]["matchExpressions"][0][
            "values"
        ].remove("retrain_check"),
        apiserver_egress_violations,
        "retrain_check cannot reach the API server",
    ),
}


@pytest.mark.parametrize("source", NETWORK_SOURCES)
@pytest.mark.parametrize("breakage", sorted(NETWORK_BREAKAGES))
def test_the_network_checks_catch_a_broken_policy_set(source: str, breakage: str) -> None:
    policies, ns, cidrs = policies_of(source), namespace_of(source), api_cidrs_of(source)
    breaker, check, expected = NETWORK_BREAKAGES[breakage]
    assert check(policies, ns, cidrs) == []
    breaker(policies)
    found = check(policies, ns, cidrs)
    assert any(expected in v for v in found), found


def test_a_too_wide_api_server_range_is_reported() -> None:
    policies = policies_of("kustomize:overlays/prod")
    _apiserver_policy(policies)["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] = "10.0.0.0/8"
    found = apiserver_egress_violations(policies, "geomas", ["10.0.0.0/8"])
    assert "API server range 10.0.0.0/8 is wider than one cluster's endpoints" in found


def chart_flow_cases(ns: str) -> list[tuple[str, Endpoint, Endpoint, int, bool]]:
    """What each part of a Helm-only install needs, and a few things it must not do."""
    pod = functools.partial(Endpoint, namespace=ns)
    mlflow = pod({PART_OF: "geomas", NAME: "geomas-mlflow"})
    zenml = pod({PART_OF: "geomas", NAME: "geomas-zenml"})
    retrain = pod({PART_OF: "geomas", NAME: "geomas-retrain", COMPONENT: "retrain"})
    step = pod({PART_OF: "geomas", COMPONENT: "trainer"})
    stranger = pod({NAME: "something-else"})
    postgres = pod({NAME: "postgresql"})
    minio = pod({NAME: "minio"})
    dns = Endpoint({"k8s-app": "kube-dns"}, "kube-system")
    controller = Endpoint({NAME: "ingress-nginx"}, "ingress-nginx")
    other_ns = Endpoint({PART_OF: "geomas", COMPONENT: "trainer"}, "other-team")
    internet = Endpoint(ip=INTERNET[0])
    return [
        ("step -> dns", step, dns, 53, True),
        ("step -> mlflow", step, mlflow, 5000, True),
        ("step -> zenml", step, zenml, 8080, True),
        ("step -> minio", step, minio, 9000, True),
        ("retrain -> mlflow", retrain, mlflow, 5000, True),
        ("mlflow -> postgres", mlflow, postgres, 5432, True),
        ("zenml -> mysql port", zenml, postgres, 3306, True),
        ("mlflow -> minio", mlflow, minio, 9000, True),
        ("ingress controller -> mlflow", controller, mlflow, 5000, True),
        ("ingress controller -> zenml", controller, zenml, 8080, True),
        ("step -> postgres", step, postgres, 5432, False),
        ("stranger -> mlflow", stranger, mlflow, 5000, False),
        ("stranger -> postgres", stranger, postgres, 5432, False),
        ("other namespace -> mlflow", other_ns, mlflow, 5000, False),
        ("mlflow -> internet", mlflow, internet, 443, False),
        ("mlflow -> internet db port", mlflow, internet, 5432, False),
        ("step -> internet", step, internet, 443, False),
        ("ingress controller -> step", controller, step, 8080, False),
        ("mlflow -> step", mlflow, step, 8080, False),
    ]


def test_the_chart_allows_each_part_exactly_what_it_needs() -> None:
    policies = policies_of("chart:helm-only")
    cases = chart_flow_cases(test_chart.NAMESPACE)
    wrong = [
        f"{name}: expected {'allowed' if expected else 'denied'}"
        for name, src, dst, port, expected in cases
        if connection_allowed(policies, src, dst, port) is not expected
    ]
    assert wrong == []
    # not vacuous: with the default deny alone nothing flows
    deny = [p for p in policies if is_default_deny(p)]
    assert not any(connection_allowed(deny, s, d, port) for _, s, d, port, _ in cases)


@pytest.mark.parametrize("source", NETWORK_SOURCES)
def test_zenml_pods_reach_what_they_need(source: str, zenml_pods: dict[str, Obj]) -> None:
    """The labels ZenML's pods really get, against each deployment's policies."""
    policies, ns = policies_of(source), namespace_of(source)
    api = Endpoint(ip=str(ipaddress.ip_network(api_cidrs_of(source)[0]).network_address))
    mlflow = Endpoint({PART_OF: "geomas", NAME: "geomas-mlflow"}, ns)
    zenml = Endpoint({PART_OF: "geomas", NAME: "geomas-zenml"}, ns)
    minio = Endpoint({NAME: "minio"}, ns)
    wrong = []
    for name, pod in zenml_pods.items():
        me = Endpoint(pod["metadata"]["labels"], ns)
        creates_jobs = pod["spec"]["serviceAccountName"] == "geomas-orchestrator"
        for target, port, expected in (
            (mlflow, 5000, True),
            (zenml, 8080, True),
            (minio, 9000, True),
            (api, 6443, creates_jobs),
            (Endpoint(ip=INTERNET[1]), 443, False),
        ):
            if connection_allowed(policies, me, target, port) is not expected:
                wrong.append(f"{name} -> {target.labels.get(NAME) or target.ip}:{port}")
    assert wrong == []
    assert {n for n, p in zenml_pods.items() if p["spec"]["serviceAccountName"] ==
            "geomas-orchestrator"} == {"retrain_check", ORCHESTRATOR}  # fmt: skip


# --------------------------------------------------------------------------- 6. ingress, schema


def ingress_tls_violations(ingress: Obj) -> list[str]:
    """Every host the Ingress serves is covered by a TLS entry with a certificate Secret."""
    covered = {
        host
        for tls in ingress["spec"].get("tls") or []
        if tls.get("secretName")
        for host in tls.get("hosts") or []
    }
    return [
        f"{ingress['metadata']['name']}: host {rule.get('host', '*')} is served without TLS"
        for rule in ingress["spec"].get("rules") or []
        if rule.get("host") not in covered
    ]


def test_ingresses_serve_tls_only(deployment: str) -> None:
    ingresses = of_kind(objects_of(deployment), "Ingress")
    if deployment == "chart:helm-only":
        assert {i["metadata"]["name"] for i in ingresses} == {
            "geomas-mlflow", "geomas-zenml", "geomas-panel"
        }
    else:
        assert ingresses == []  # k8s/ exposes nothing; the chart's ingresses are off by default
    assert [v for i in ingresses for v in ingress_tls_violations(i)] == []


def test_the_tls_check_catches_a_plain_http_ingress() -> None:
    ingress = one(objects_of("chart:helm-only"), "Ingress", "geomas-mlflow")
    assert ingress_tls_violations(ingress) == []
    ingress["spec"]["tls"][0]["hosts"] = ["other.example.com"]
    assert ingress_tls_violations(ingress) == [
        "geomas-mlflow: host mlflow.example.com is served without TLS"
    ]
    del ingress["spec"]["tls"]
    assert len(ingress_tls_violations(ingress)) == 1


PLAIN_MLFLOW_INGRESS: Obj = {"mlflow": {"ingress": {"enabled": True, "host": "m.example.com"}}}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param(PLAIN_MLFLOW_INGRESS, "mlflow/ingress/tlsSecretName", id="mlflow-no-tls"),
        pytest.param(
            {"zenml": {"ingress": {"enabled": True, "host": "z.example.com"}}},
            "zenml/ingress/tlsSecretName",
            id="zenml-no-tls",
        ),
        pytest.param(
            test_chart.merge(
                PLAIN_MLFLOW_INGRESS,
                {"mlflow": {"auth": {"enabled": False}, "ingress": {"tlsSecretName": "tls"}}},
            ),
            "mlflow/auth/enabled",
            id="mlflow-ingress-without-auth",
        ),
        pytest.param(
            test_chart.merge(
                PLAIN_MLFLOW_INGRESS,
                {"mlflow": {"auth": {"enabled": False}, "ingress": {"allowInsecure": True}}},
            ),
            "mlflow/auth/enabled",
            id="insecure-does-not-excuse-no-auth",
        ),
        pytest.param({"zenml": {"forwardedAllowIps": ["*"]}},
                     "zenml/forwardedAllowIps/0", id="ips-*"),
        pytest.param({"zenml": {"forwardedAllowIps": ["0.0.0.0/0"]}},
                     "zenml/forwardedAllowIps/0", id="ips-any"),
        pytest.param({"zenml": {"forwardedAllowIps": []}},
                     "zenml/forwardedAllowIps", id="ips-none"),
        pytest.param(
            {"networkPolicy": {"apiServer": {"cidrs": ["0.0.0.0/0"]}}},
            "networkPolicy/apiServer/cidrs/0",
            id="apiserver-any",
        ),
        pytest.param(
            {"networkPolicy": {"apiServer": {"cidrs": ["10.0.0.0/8"]}}},
            "networkPolicy/apiServer/cidrs/0",
            id="apiserver-too-wide",
        ),
        pytest.param({"retrain": {"enabled": True}},
                     "networkPolicy/apiServer/cidrs", id="retrain-without-apiserver"),
        pytest.param({"rbac": {"create": True}},
                     "networkPolicy/apiServer/cidrs", id="rbac-without-apiserver"),
        pytest.param(
            {"networkPolicy": {"database": {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}}},
            "networkPolicy/database/to/0",
            id="database-anywhere",
        ),
        pytest.param(
            {"networkPolicy": {"s3": {"to": [{"ipBlock": {"cidr": "::/0"}}]}}},
            "networkPolicy/s3/to/0",
            id="s3-anywhere-v6",
        ),
        pytest.param({"mlflow": {"auth": {"defaultPermission": "ALL"}}},
                     "mlflow/auth/defaultPermission", id="perm"),
        pytest.param({"verify": {"failedJobsHistoryLimit": 0}},
                     "verify/failedJobsHistoryLimit", id="verify-failures-not-kept"),
    ],
)  # fmt: skip
def test_values_schema_refuses_insecure_settings(override: Obj, expected: str) -> None:
    errors = test_chart.schema_errors(test_chart.merge(test_chart.default_values(), override))
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize(
    "override",
    [
        pytest.param({"mlflow": {"ingress": {"enabled": True, "host": "m.example.com",
                                             "tlsSecretName": "tls"}}}, id="mlflow-tls"),
        pytest.param(test_chart.merge(PLAIN_MLFLOW_INGRESS,
                                      {"mlflow": {"ingress": {"allowInsecure": True}}}),
                     id="mlflow-insecure-allowed"),
        pytest.param({"zenml": {"forwardedAllowIps": ["10.42.0.0/16", "fd00::/8", "10.0.0.5"]}},
                     id="ips"),
        pytest.param({"retrain": {"enabled": True}, "rbac": {"create": True},
                      "networkPolicy": {"apiServer": {"cidrs": ["10.0.0.10/32", "fd00::1/128"]}}},
                     id="apiserver"),
        pytest.param({"networkPolicy": {"create": False}, "retrain": {"enabled": True}},
                     id="no-policies-no-apiserver-needed"),
    ],
)  # fmt: skip
def test_values_schema_accepts_the_secure_settings(override: Obj) -> None:
    assert test_chart.schema_errors(test_chart.merge(test_chart.default_values(), override)) == []


def helm_refusal(values: Obj) -> str | None:
    """Why Helm refuses to render `values` with the chart (None: it renders them)."""
    errors: tuple[type[BaseException], ...] = (subprocess.CalledProcessError,)
    try:
        import helm_python
    except ImportError:
        pass
    else:
        errors += (helm_python.HelmError,)
    try:
        test_chart.render_objects(values)
    except errors as exc:
        return str(getattr(exc, "stderr", None) or exc)
    return None


def test_helm_refuses_an_ingress_without_tls() -> None:
    refusal = helm_refusal(PLAIN_MLFLOW_INGRESS)
    assert refusal is not None and "/mlflow/ingress/tlsSecretName" in refusal, refusal


def test_helm_renders_an_insecure_ingress_only_when_allowed() -> None:
    values = test_chart.merge(
        PLAIN_MLFLOW_INGRESS, {"mlflow": {"ingress": {"allowInsecure": True}}}
    )
    ingress = one(test_chart.render_objects(values), "Ingress", "geomas-mlflow")
    assert "tls" not in ingress["spec"]
    # the opt-out is explicit, and the policy check still names the plain-HTTP host
    assert ingress_tls_violations(ingress) == [
        "geomas-mlflow: host m.example.com is served without TLS"
    ]


def test_helm_refuses_an_mlflow_ingress_without_auth() -> None:
    values = test_chart.merge(
        PLAIN_MLFLOW_INGRESS,
        {"mlflow": {"auth": {"enabled": False}, "ingress": {"tlsSecretName": "tls"}}},
    )
    refusal = helm_refusal(values)
    assert refusal is not None and "/mlflow/auth/enabled" in refusal, refusal


# --------------------------------------------------------------------------- 1. MLflow auth

SECRET_ENV = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


def _from_secret(env: dict[str, Obj], name: str) -> bool:
    return "secretKeyRef" in (env.get(name, {}).get("valueFrom") or {})


def mlflow_server_auth_violations(deployment_obj: Obj) -> list[str]:
    """The MLflow server runs the basic-auth app with its settings and admin from Secrets."""
    spec = pod_spec_of(deployment_obj)
    (server,) = [c for c in spec["containers"] if c["name"] == "mlflow"]
    bad: list[str] = []
    if "--app-name=basic-auth" not in server.get("args", []):
        bad.append("mlflow server without --app-name=basic-auth")
    env = env_map(server)
    for name in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD",
                 "MLFLOW_FLASK_SERVER_SECRET_KEY"):  # fmt: skip
        if not _from_secret(env, name):
            bad.append(f"{name} does not come from a Secret")
    config = env.get("MLFLOW_AUTH_CONFIG_PATH", {}).get("value")
    if config is None:
        bad.append("no MLFLOW_AUTH_CONFIG_PATH: MLflow would use its packaged auth config")
        return bad
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    mount = _mount_of(config, server.get("volumeMounts") or [])
    if mount is None:
        bad.append(f"{config} is not on a volume")
    elif "configMap" in volumes.get(mount["name"], {}):
        bad.append(f"{config} comes from a ConfigMap: its database URI holds a password")
    writers = [
        c for c in spec.get("initContainers") or []
        if env_map(c).get("MLFLOW_AUTH_CONFIG_PATH", {}).get("value") == config
        and mount is not None
        and any(m["name"] == mount["name"] and not m.get("readOnly")
                for m in c.get("volumeMounts") or [])
    ]  # fmt: skip
    if mount is not None and "secret" not in volumes.get(mount["name"], {}) and not writers:
        bad.append(f"nothing writes {config} before the server starts")
    for c in containers_of(spec):
        for name, entry in env_map(c).items():
            if SECRET_ENV.search(name) and "value" in entry:
                bad.append(f"{c['name']}: {name} is a literal value, not a secretKeyRef")
    return bad


def mlflow_client_auth_violations(container: Obj) -> list[str]:
    """A container that talks to MLflow logs in with credentials from a Secret."""
    env = env_map(container)
    if "MLFLOW_TRACKING_URI" not in env:
        return []
    return [
        f"{container['name']}: {name} does not come from a Secret"
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
        if not _from_secret(env, name)
    ]


def test_mlflow_auth_is_on_by_default() -> None:
    assert test_chart.default_values()["mlflow"]["auth"]["enabled"] is True
    # no password, or anything like one, in values.yaml
    text = (test_chart.CHART / "values.yaml").read_text("utf-8")
    assert not re.search(r"^\s*(admin_)?password\s*:", text, re.M | re.I)


@pytest.mark.parametrize("config", CHART_CONFIGS)
def test_the_mlflow_server_runs_basic_auth(config: str) -> None:
    server = one(objects_of(f"chart:{config}"), "Deployment", "geomas-mlflow")
    assert mlflow_server_auth_violations(server) == []


def test_mlflow_clients_log_in(deployment: str) -> None:
    clients = [
        c
        for w in workloads(objects_of(deployment))
        for c in pod_spec_of(w)["containers"]
        if "MLFLOW_TRACKING_URI" in env_map(c)
    ]
    assert clients, "no MLflow client rendered"  # the champion check at least
    assert [v for c in clients for v in mlflow_client_auth_violations(c)] == []


MLFLOW_AUTH_BREAKAGES: dict[str, tuple[Callable[[Obj], object], str]] = {
    "no basic-auth app": (
        lambda spec: spec["containers"][0]["args"].remove("--app-name=basic-auth"),
        "without --app-name=basic-auth",
    ),
    "admin password inline": (
        lambda spec: env_map(spec["containers"][0])["MLFLOW_AUTH_ADMIN_PASSWORD"].update(
            {"value": "admin", "valueFrom": None}
        ),
        "MLFLOW_AUTH_ADMIN_PASSWORD does not come from a Secret",
    ),
    "no config path": (
        lambda spec: spec["containers"][0]["env"].remove(
            env_map(spec["containers"][0])["MLFLOW_AUTH_CONFIG_PATH"]
        ),
        "no MLFLOW_AUTH_CONFIG_PATH",
    ),
    "config never written": (
        lambda spec: spec.pop("initContainers"),
        "nothing writes /etc/mlflow-auth/basic_auth.ini",
    ),
    "config from a ConfigMap": (
        lambda spec: next(v for v in spec["volumes"] if v["name"] == "auth-config").update(
            {"configMap": {"name": "x"}, "emptyDir": None}
        ),
        "comes from a ConfigMap",
    ),
}


@pytest.mark.parametrize("breakage", sorted(MLFLOW_AUTH_BREAKAGES))
def test_the_mlflow_auth_check_catches_a_broken_server(breakage: str) -> None:
    server = chart_mlflow()
    breaker, expected = MLFLOW_AUTH_BREAKAGES[breakage]
    breaker(pod_spec_of(server))
    found = mlflow_server_auth_violations(server)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize("source", ["chart:helm-only", "kustomize:overlays/prod"])
def test_the_client_auth_check_catches_a_client_without_credentials(source: str) -> None:
    cron = one(objects_of(source), "CronJob", "geomas-retrain")
    (container,) = pod_spec_of(cron)["containers"]
    assert mlflow_client_auth_violations(container) == []
    container["env"] = [e for e in container["env"] if e["name"] != "MLFLOW_TRACKING_PASSWORD"]
    assert mlflow_client_auth_violations(container) == [
        "retrain-check: MLFLOW_TRACKING_PASSWORD does not come from a Secret"
        if source.startswith("chart")
        else "retrain: MLFLOW_TRACKING_PASSWORD does not come from a Secret"
    ]


def test_the_auth_config_the_chart_writes_is_what_mlflow_reads(tmp_path: Path) -> None:
    """Run the init container's script, then MLflow's own reader on its file."""
    spec = pod_spec_of(chart_mlflow())
    (init,) = spec["initContainers"]
    assert init["command"][:2] == ["python", "-c"]
    path = tmp_path / "basic_auth.ini"
    uri = "postgresql://mlflow:p%40ss%25w0rd@db:5432/mlflow"  # URL-encoded "p@ss%w0rd"
    permission = env_map(init)["AUTH_DEFAULT_PERMISSION"]["value"]
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": uri, "MLFLOW_AUTH_CONFIG_PATH": str(path),
           "AUTH_DEFAULT_PERMISSION": permission}  # fmt: skip
    subprocess.run(
        [sys.executable, "-c", init["command"][2]], env=env, cwd=tmp_path, check=True, timeout=60
    )
    assert uri not in path.read_text("utf-8")  # the % are doubled for configparser
    # MLflow's own reader, loaded by path: the package mlflow.server.auth needs Flask-WTF (the
    # mlflow[auth] extra, which the server image needs and the test environment lacks)
    reader = (
        "import importlib.util, json, pathlib, mlflow\n"
        "path = pathlib.Path(mlflow.__file__).parent / 'server' / 'auth' / 'config.py'\n"
        "spec = importlib.util.spec_from_file_location('mlflow_auth_config', path)\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(module.read_auth_config()._asdict()))\n"
    )
    env.update(MLFLOW_AUTH_ADMIN_USERNAME="admin", MLFLOW_AUTH_ADMIN_PASSWORD="from-the-secret")
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, cwd=tmp_path, check=True, capture_output=True,
        text=True, timeout=120,
    ).stdout  # fmt: skip
    config = json.loads(out.strip().splitlines()[-1])
    assert config["database_uri"] == uri
    assert config["default_permission"] == "READ"
    assert config["admin_username"] == "admin"
    assert config["admin_password"] == "from-the-secret"
    assert config["authorization_function"] == (
        "mlflow.server.auth:authenticate_request_basic_auth"
    )


# --------------------------------------------------------------------------- 7. forwarded headers


def forwarded_ips_violations(container: Obj) -> list[str]:
    """uvicorn believes X-Forwarded-* only from listed addresses: no '*', no /0."""
    args = container.get("args") or []
    if "--proxy-headers" not in args and "FORWARDED_ALLOW_IPS" not in env_map(container):
        return []
    given = [a.split("=", 1)[1] for a in args if a.startswith("--forwarded-allow-ips=")]
    env_value = env_map(container).get("FORWARDED_ALLOW_IPS", {}).get("value")
    if env_value is not None:
        given.append(env_value)
    if not given:
        return [f"{container['name']}: --proxy-headers without --forwarded-allow-ips"]
    bad = []
    for entry in (e.strip() for value in given for e in value.split(",")):
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            bad.append(f"{container['name']}: forwarded headers trusted from {entry!r}")
            continue
        if network.prefixlen == 0:
            bad.append(f"{container['name']}: forwarded headers trusted from {entry}")
    return bad


def _servers(objects: list[Obj]) -> list[Obj]:
    return [c for w in of_kind(objects, "Deployment") for c in pod_spec_of(w)["containers"]]


def test_zenml_trusts_forwarded_headers_only_from_the_configured_range(deployment: str) -> None:
    objects = objects_of(deployment)
    if deployment.startswith("kustomize"):
        # k8s/ runs no tracking server (the chart does), only the panel, which takes no
        # forwarded headers
        assert [c["name"] for c in _servers(objects)] == ["panel"]
        assert [v for c in _servers(objects) for v in forwarded_ips_violations(c)] == []
        return
    zenml = container_named(objects, "geomas-zenml")
    trusted = next(a for a in zenml["args"] if a.startswith("--forwarded-allow-ips="))
    values = test_chart.merge(test_chart.default_values(), test_chart.CONFIGS[deployment[6:]])
    assert trusted.split("=", 1)[1].split(",") == values["zenml"]["forwardedAllowIps"]
    assert [v for c in _servers(objects) for v in forwarded_ips_violations(c)] == []


def container_named(objects: list[Obj], deployment_name: str) -> Obj:
    (container,) = pod_spec_of(one(objects, "Deployment", deployment_name))["containers"]
    return container


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        ("*", "trusted from '*'"),
        ("10.42.0.0/16,0.0.0.0/0", "trusted from 0.0.0.0/0"),
        ("::/0", "trusted from ::/0"),
        (None, "without --forwarded-allow-ips"),
    ],
)
def test_the_forwarded_ips_check_catches_a_trust_everyone_server(
    trusted: str | None, expected: str
) -> None:
    zenml = container_named(objects_of("chart:helm-only"), "geomas-zenml")
    assert forwarded_ips_violations(zenml) == []
    zenml["args"] = [a for a in zenml["args"] if not a.startswith("--forwarded-allow-ips=")]
    if trusted is not None:
        zenml["args"].append(f"--forwarded-allow-ips={trusted}")
    assert [v for v in forwarded_ips_violations(zenml) if expected in v], forwarded_ips_violations(
        zenml
    )


# --------------------------------------------------------------------------- 8. keys in the docs

SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.S | re.M)
HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?[^\n]*\n.*?^\s*\1\s*$", re.S | re.M)
# (what the command does with the file, pattern whose group 1 is the path)
FILE_USES = (
    ("writes", re.compile(r"(?<![<>&\d-])>>?\s*(?!&)([^\s;|&)]+)")),
    ("writes", re.compile(r"\btee\s+(?:-a\s+)?([^\s;|&)]+)")),
    ("writes", re.compile(r"--output-file[= ]\s*([^\s;|&)]+)")),
    ("reads", re.compile(r"\$\(cat\s+([^\s;|&)]+)\)")),
    ("reads", re.compile(r"--from(?:-env)?-file=(?:[\w.-]+=)?([^\s;|&)]+)")),
)
VARIABLE = re.compile(r"^\$\{?(\w+)\}?(/|$)")
OUTSIDE = re.compile(r"^(~|/|\$HOME\b|\$\{HOME\}|\$\(mktemp\b)")
# Files the docs write or read in the working tree that hold no credential.
NOT_SECRETS = {"zenml_stack.kind.yaml", "/dev/null"}


def shell_blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in SHELL_BLOCK.finditer(markdown)]


def file_uses(commands: str) -> Iterator[tuple[str, str]]:
    """(writes|reads, path) of each file a block of shell commands writes or reads."""
    text = HEREDOC.sub("", commands)  # a here-document's body is data, not commands
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line)  # comments
        for what, pattern in FILE_USES:
            for match in pattern.finditer(line):
                yield what, match.group(1).strip("'\"")


def secret_file_violations(blocks: list[str], whole_text: str) -> list[str]:
    """Files with keys that the commands put into, or take from, the working tree.

    A path is outside the repository when it is absolute, under ~ or $HOME, from mktemp, or in
    a variable that the text sets to such a path. Anything else is relative to where the reader
    stands, the repository root.
    """
    bad = []
    for block in blocks:
        for what, path in file_uses(block):
            if path in NOT_SECRETS or OUTSIDE.match(path):
                continue
            variable = VARIABLE.match(path)
            if variable:
                values = re.findall(rf"\b{variable.group(1)}=(\S+)", whole_text)
                if values and all(OUTSIDE.match(v.strip("'\"")) for v in values):
                    continue
                bad.append(f"{what} {path}: ${variable.group(1)} is not set outside the repo")
                continue
            bad.append(f"{what} {path} in the repository")
    return bad


def secret_file_names(blocks: list[str]) -> set[str]:
    """Names of the key files the commands use (system files such as /etc/hosts aside)."""
    return {
        Path(path).name
        for block in blocks
        for _, path in file_uses(block)
        if path not in NOT_SECRETS and not path.startswith("/")
    }


def not_ignored(names: set[str]) -> set[str]:
    """Names that git would track at the repository root or in a subfolder."""
    paths = [p for name in sorted(names) for p in (name, f"docs/{name}")]
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=ROOT,
        input="\n".join(paths) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode in (0, 1), proc.stderr  # 1: none ignored
    ignored = set(proc.stdout.split())
    return {name for name in names if not {name, f"docs/{name}"} <= ignored}


@functools.cache
def deploy_texts() -> dict[str, tuple[list[str], str]]:
    """{document: (its shell command blocks, its whole text)} for every deploy instruction."""
    texts = {}
    for path in (ROOT / "docs" / "deploy.md", ROOT / "k8s" / "README.md"):
        text = path.read_text("utf-8")
        texts[str(path.relative_to(ROOT))] = (shell_blocks(text), text)
    render = test_chart._renderer()
    if render is not None:
        rendered = render(test_chart.HELM_ONLY)
        notes = "".join(v for k, v in rendered.items() if k.endswith("NOTES.txt"))
        texts["charts/geomas NOTES.txt"] = ([notes], notes)
    return texts


def test_the_docs_keep_keys_outside_the_repository() -> None:
    texts = deploy_texts()
    assert len(shell_blocks(texts["docs/deploy.md"][1])) > 10  # the parser sees the blocks
    found = {doc: secret_file_violations(blocks, text) for doc, (blocks, text) in texts.items()}
    assert {k: v for k, v in found.items() if v} == {}


def test_gitignore_excludes_the_key_files_the_docs_name() -> None:
    names = set().union(*(secret_file_names(blocks) for blocks, _ in deploy_texts().values()))
    assert {"zenml-api-key.txt", "s3-secret-access-key.txt"} <= names
    assert not_ignored(names) == set()


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("cat > basic_auth.ini <<'EOF'\n[mlflow]\nadmin_password = x\nEOF\n",
         "writes basic_auth.ini in the repository"),
        ("zenml service-account create x --output-file zenml-api-key.txt\n",
         "writes zenml-api-key.txt in the repository"),
        ('kubectl create secret generic s --from-literal=k="$(cat ./s3-key.txt)"\n',
         "reads ./s3-key.txt in the repository"),
        ("kubectl create secret generic s --from-file=api-key=./zenml-api-key.txt\n",
         "reads ./zenml-api-key.txt in the repository"),
        ("echo $KEY | tee -a keys.txt\n", "writes keys.txt in the repository"),
        ("KEYS=secrets\nopenssl rand -hex 32 > $KEYS/k.txt\n", "$KEYS is not set outside"),
    ],
    ids=["heredoc-ini", "output-file", "cat", "from-file", "tee", "relative-variable"],
)  # fmt: skip
def test_the_docs_check_catches_a_key_written_into_the_repo(snippet: str, expected: str) -> None:
    found = secret_file_violations([snippet], snippet)
    assert any(expected in v for v in found), found


def test_the_docs_check_accepts_keys_outside_the_repo() -> None:
    snippet = (
        "export SECRETS_DIR=~/.config/geomas/secrets\n"
        'zenml service-account create x --output-file "$SECRETS_DIR/zenml-api-key.txt"\n'
        "echo 127.0.0.1 geomas-zenml | sudo tee -a /etc/hosts  # > not-a-file\n"
        "command 2>&1 >/dev/null\n"
    )
    assert secret_file_violations([snippet], snippet) == []


def test_the_gitignore_check_sees_a_tracked_name() -> None:
    assert not_ignored({"zenml-api-key.txt", "README.md"}) == {"README.md"}


# --------------------------------------------------------------------------- 9. champion check

# A stand-in for the image's `geomas`: records its arguments, and fails like `geomas models
# verify` (exit 1, a problem line on stderr) for the models named in STUB_FAILING.
GEOMAS_STUB = """
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_CALLS"], "a", encoding="utf-8") as out:
    out.write(json.dumps(args) + "\\n")
if args and args[-1] in json.loads(os.environ["STUB_FAILING"]):
    print(f"{args[-1]}: champion v3 was set outside geomas: no audited move", file=sys.stderr)
    sys.exit(1)
"""


def run_check(
    container: Obj, tmp: Path, failing: frozenset[str] = frozenset()
) -> tuple[int, list[list[str]]]:
    """Run a container's command and args with the stub `geomas` first on PATH.

    Returns the exit code and the arguments of every `geomas` call, in order.
    """
    bin_dir = tmp / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    stub = bin_dir / "geomas"
    stub.write_text(f"#!{sys.executable}\n{GEOMAS_STUB}", encoding="utf-8")
    stub.chmod(0o755)
    calls = tmp / "calls.jsonl"
    calls.unlink(missing_ok=True)
    proc = subprocess.run(
        [*(container.get("command") or []), *(container.get("args") or [])],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB_CALLS": str(calls),
             "STUB_FAILING": json.dumps(sorted(failing))},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = calls.read_text("utf-8").splitlines() if calls.exists() else []
    return proc.returncode, [json.loads(line) for line in lines]


def configured_models(deployment: str) -> list[str]:
    """The models the deployment's configuration names (chart values, k8s/base's args)."""
    source, name = deployment.split(":", 1)
    if source == "kustomize":
        base = test_chart.load_yaml(ROOT / "k8s" / "base" / "cronjob-models-verify.yaml")
        return list(pod_spec_of(base)["containers"][0]["args"])
    values = test_chart.merge(test_chart.default_values(), test_chart.CONFIGS[name])
    return list(values["verify"]["models"])


def verify_command_violations(container: Obj, models: list[str], tmp: Path) -> list[str]:
    """`geomas models verify NAME` runs once per model, and any failure fails the Job."""
    bad: list[str] = []
    wanted = [["models", "verify", model] for model in models]
    code, calls = run_check(container, tmp)
    if calls != wanted:
        bad.append(f"runs geomas {calls}, not `models verify` once for each of {models}")
    if code != 0:
        bad.append(f"exits {code} although every model passed")
    for model in models:
        code, calls = run_check(container, tmp, frozenset({model}))
        if code == 0:
            bad.append(f"exits 0 although {model} failed: no failed Job, no alert")
        if calls != wanted:
            bad.append(f"with {model} failing, runs geomas {calls}")
    return bad


def verify_job_violations(objects: list[Obj], cronjob: Obj) -> list[str]:
    """Failures stay visible as failed Jobs; the pod has no Kubernetes API credentials."""
    bad: list[str] = []
    spec = cronjob["spec"]
    job = spec["jobTemplate"]["spec"]
    pod = pod_spec_of(cronjob)
    if spec.get("concurrencyPolicy") != "Forbid":
        bad.append("concurrencyPolicy is not Forbid")
    if spec.get("suspend"):
        bad.append("suspended")
    kept = spec.get("failedJobsHistoryLimit")
    if not isinstance(kept, int) or kept < 1:
        bad.append(f"failedJobsHistoryLimit {kept}: failed Jobs, the alert signal, are not kept")
    if "ttlSecondsAfterFinished" in job:
        bad.append("ttlSecondsAfterFinished deletes failed Jobs")
    if job.get("backoffLimit") != 0:
        bad.append(f"backoffLimit {job.get('backoffLimit')}, not 0")
    if not isinstance(job.get("activeDeadlineSeconds"), int):
        bad.append("no activeDeadlineSeconds")
    account = pod.get("serviceAccountName") or "default"
    accounts = [o for o in objects if o["kind"] == "ServiceAccount"
                and o["metadata"]["name"] == account]  # fmt: skip
    # The pod's setting wins; unset, the account's does (a token unless it says false).
    account_mounts = not accounts or accounts[0].get("automountServiceAccountToken") is not False
    mounts = pod.get("automountServiceAccountToken")
    if mounts is True or (mounts is None and account_mounts):
        bad.append("the pod mounts a service-account token")
    if not accounts:
        bad.append(f"runs as ServiceAccount {account}, which is not its own")
    elif account_mounts:
        bad.append(f"ServiceAccount {account} mounts a token")
    for binding in objects:
        if binding["kind"] in ("RoleBinding", "ClusterRoleBinding") and any(
            s.get("kind") == "ServiceAccount" and s.get("name") == account
            for s in binding.get("subjects") or []
        ):
            bad.append(f"ServiceAccount {account} is bound to {binding['roleRef']['name']}")
    others = [w["metadata"]["name"] for w in workloads(objects) if w is not cronjob
              and pod_spec_of(w).get("serviceAccountName") == account]  # fmt: skip
    if others:
        bad.append(f"ServiceAccount {account} is shared with {others}")
    return bad


def verify_network_violations(
    policies: list[Obj], namespace: str, labels: dict[str, str], api_cidrs: list[str]
) -> list[str]:
    """The check's pod reaches MLflow and DNS, and nothing else: no API server, S3 or ZenML."""
    me = Endpoint(labels, namespace)
    pod = functools.partial(Endpoint, namespace=namespace)
    dns = Endpoint({"k8s-app": "kube-dns"}, "kube-system")
    needed = [
        ("MLflow", pod({PART_OF: "geomas", NAME: "geomas-mlflow"}), 5000, "TCP"),
        ("DNS", dns, 53, "UDP"),
        ("DNS over TCP", dns, 53, "TCP"),
    ]
    refused = [
        ("ZenML", pod({PART_OF: "geomas", NAME: "geomas-zenml"}), 8080),
        ("MinIO", pod({NAME: "minio"}), 9000),
        ("MinIO over TLS", pod({NAME: "minio"}), 443),
        ("PostgreSQL", pod({NAME: "postgresql"}), 5432),
        ("a step pod", pod({PART_OF: "geomas", COMPONENT: "training"}), 8080),
        *[(f"the internet {ip}", Endpoint(ip=ip), 443) for ip in INTERNET],
        *[
            (f"the API server {cidr}", Endpoint(ip=str(ipaddress.ip_network(cidr)[0])), port)
            for cidr in api_cidrs
            for port in (443, 6443)
        ],
    ]
    bad = [f"cannot reach {what}:{port}/{protocol}" for what, peer, port, protocol in needed
           if not connection_allowed(policies, me, peer, port, protocol)]  # fmt: skip
    bad += [f"reaches {what}:{port}" for what, peer, port in refused
            if connection_allowed(policies, me, peer, port)]  # fmt: skip
    return bad


def verify_labels(cronjob: Obj) -> dict[str, str]:
    return dict(test_manifests.pod_template_of(cronjob)["metadata"]["labels"])


def test_the_champion_check_runs_verify_for_each_served_model(
    deployment: str, tmp_path: Path
) -> None:
    (container,) = pod_spec_of(verify_cronjob_of(deployment))["containers"]
    models = configured_models(deployment)
    assert models, "no model configured"
    assert verify_command_violations(container, models, tmp_path) == []


def test_the_champion_check_keeps_its_failures_and_has_no_api_token(deployment: str) -> None:
    objects = objects_of(deployment)
    assert verify_job_violations(objects, verify_cronjob_of(deployment, objects)) == []


def test_the_champion_check_reaches_mlflow_and_dns_only(deployment: str) -> None:
    cronjob = verify_cronjob_of(deployment)
    found = verify_network_violations(
        policies_of(deployment), namespace_of(deployment), verify_labels(cronjob),
        api_cidrs_of(deployment),
    )  # fmt: skip
    assert found == []


def test_with_k8s_and_the_chart_together_both_checks_reach_mlflow_only() -> None:
    """Policies add up: installed side by side, neither's allows open more for either check."""
    chart, kustomize = "chart:defaults", "kustomize:overlays/prod"
    policies = policies_of(chart) + policies_of(kustomize)
    cidrs = api_cidrs_of(kustomize)
    for deployment in (chart, kustomize):
        labels = verify_labels(verify_cronjob_of(deployment))
        assert verify_network_violations(policies, "geomas", labels, cidrs) == [], deployment


def test_the_champion_check_fails_without_a_model(tmp_path: Path) -> None:
    """An empty model list is an error, not a silent pass."""
    for deployment in ("chart:defaults", "kustomize:base"):
        (container,) = pod_spec_of(verify_cronjob_of(deployment))["containers"]
        container["args"] = []
        code, calls = run_check(container, tmp_path)
        assert code != 0 and calls == [], deployment


@pytest.mark.parametrize(
    ("verify", "expected"),
    [
        ({"models": []}, "/verify/models"),
        ({"models": ["--help"]}, "/verify/models/0"),
        ({"failedJobsHistoryLimit": 0}, "/verify/failedJobsHistoryLimit"),
    ],
    ids=["no-model", "option-as-model", "failures-not-kept"],
)
def test_helm_refuses_a_champion_check_that_cannot_alert(verify: Obj, expected: str) -> None:
    refusal = helm_refusal({"verify": verify})
    assert refusal is not None and expected in refusal, refusal


def _verify_container(objects: list[Obj], cronjob: Obj) -> Obj:
    return pod_spec_of(cronjob)["containers"][0]


def _swallow_failures(objects: list[Obj], cronjob: Obj) -> None:
    container = _verify_container(objects, cronjob)
    container["command"] = [part.replace('exit "$rc"', "exit 0") for part in container["command"]]


def _apiserver_egress_for_the_check(objects: list[Obj], cronjob: Obj) -> None:
    expression = _apiserver_policy(of_kind(objects, "NetworkPolicy"))["spec"]["podSelector"][
        "matchExpressions"
    ][0]
    expression["values"].append(verify_labels(cronjob)[COMPONENT])


def _into_the_shared_egress(objects: list[Obj], cronjob: Obj) -> None:
    for policy in of_kind(objects, "NetworkPolicy"):
        if policy["metadata"]["name"].endswith("allow-tracking-egress"):
            policy["spec"]["podSelector"].pop("matchExpressions")


def _without_the_mlflow_allow(objects: list[Obj], cronjob: Obj) -> None:
    (policy,) = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["metadata"]["name"].endswith("allow-models-verify-egress")
    ]
    objects.remove(policy)


def _token_from_the_account(objects: list[Obj], cronjob: Obj) -> None:
    pod = pod_spec_of(cronjob)
    pod.pop("automountServiceAccountToken")
    one(objects, "ServiceAccount", pod["serviceAccountName"])["automountServiceAccountToken"] = True


VerifyCheck = Callable[[list[Obj], Obj, str, Path], list[str]]


def _job_check(objects: list[Obj], cronjob: Obj, deployment: str, tmp: Path) -> list[str]:
    return verify_job_violations(objects, cronjob)


def _command_check(objects: list[Obj], cronjob: Obj, deployment: str, tmp: Path) -> list[str]:
    return verify_command_violations(
        _verify_container(objects, cronjob), configured_models(deployment), tmp
    )


def _network_check(objects: list[Obj], cronjob: Obj, deployment: str, tmp: Path) -> list[str]:
    return verify_network_violations(
        of_kind(objects, "NetworkPolicy"), namespace_of(deployment), verify_labels(cronjob),
        api_cidrs_of(deployment),
    )  # fmt: skip


VERIFY_BREAKAGES: dict[str, tuple[Callable[[list[Obj], Obj], object], VerifyCheck, str]] = {
    "API-server egress added": (
        _apiserver_egress_for_the_check,
        _network_check,
        "reaches the API server",
    ),
    "in the shared MLflow+ZenML egress": (_into_the_shared_egress, _network_check, "reaches ZenML"),
    "its MLflow allow removed": (
        _without_the_mlflow_allow,
        _network_check,
        "cannot reach MLflow:5000",
    ),
    "token automount on": (
        lambda objects, cron: pod_spec_of(cron).update(automountServiceAccountToken=True),
        _job_check,
        "the pod mounts a service-account token",
    ),
    "token automount left to an account that mounts one": (
        _token_from_the_account,
        _job_check,
        "the pod mounts a service-account token",
    ),
    "runs as the orchestrator": (
        lambda objects, cron: pod_spec_of(cron).update(serviceAccountName="geomas-orchestrator"),
        _job_check,
        "ServiceAccount geomas-orchestrator is bound to geomas-orchestrator",
    ),
    "runs as the default account": (
        lambda objects, cron: pod_spec_of(cron).pop("serviceAccountName"),
        _job_check,
        "runs as ServiceAccount default, which is not its own",
    ),
    "failed Jobs not kept": (
        lambda objects, cron: cron["spec"].update(failedJobsHistoryLimit=0),
        _job_check,
        "failed Jobs, the alert signal, are not kept",
    ),
    "failed Jobs deleted by a TTL": (
        lambda objects, cron: cron["spec"]["jobTemplate"]["spec"].update(
            ttlSecondsAfterFinished=60
        ),
        _job_check,
        "ttlSecondsAfterFinished",
    ),
    "retries": (
        lambda objects, cron: cron["spec"]["jobTemplate"]["spec"].update(backoffLimit=3),
        _job_check,
        "backoffLimit 3, not 0",
    ),
    "overlapping runs": (
        lambda objects, cron: cron["spec"].update(concurrencyPolicy="Allow"),
        _job_check,
        "concurrencyPolicy is not Forbid",
    ),
    "failures swallowed": (_swallow_failures, _command_check, "no failed Job, no alert"),
    "a served model dropped": (
        lambda objects, cron: _verify_container(objects, cron)["args"].pop(),
        _command_check,
        "not `models verify` once for each of",
    ),
}


@pytest.mark.parametrize("source", NETWORK_SOURCES)
@pytest.mark.parametrize("breakage", sorted(VERIFY_BREAKAGES))
def test_the_champion_check_checks_catch_a_broken_copy(
    source: str, breakage: str, tmp_path: Path
) -> None:
    objects = objects_of(source)
    cronjob = verify_cronjob_of(source, objects)
    breaker, check, expected = VERIFY_BREAKAGES[breakage]
    assert check(objects, cronjob, source, tmp_path) == []
    breaker(objects, cronjob)
    found = check(objects, cronjob, source, tmp_path)
    assert any(expected in v for v in found), found


# --------------------------------------------------------------------------- 10. the panel

# Where the panel is deployed: k8s/base/panel.yaml (every kustomize target) and the chart's
# panel.* (on in the Helm-only configuration, off by default).
PANEL_DEPLOYMENTS = ("chart:helm-only", *(f"kustomize:{t}" for t in sorted(test_manifests.TARGETS)))
PANEL = "geomas-panel"
RUN_PIPELINES = ("data", "training", "retrain-check")

# Exactly what launching and watching run Jobs takes (geomas/panel/k8s.py; the panel may watch).
PANEL_NEEDS = (
    {("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")}
    | {("", "configmaps", verb) for verb in ("create", "get", "delete")}
    | {("", "pods", verb) for verb in ("get", "list", "watch")}
    | {("", "pods/log", "get")}
)


def panel_role_violations(role: Obj) -> list[str]:
    """The panel's Role grants exactly PANEL_NEEDS: no wildcard, no Secret, nothing more."""
    bad = test_manifests.role_violations(role)
    for i, rule in enumerate(role.get("rules") or []):
        if rule.get("resourceNames"):
            bad.append(f"rule {i}: resourceNames (the run objects have per-run names)")
    granted = test_manifests.grants(role)
    bad += [f"grants {verb} on {group or 'core'}/{resource}"
            for group, resource, verb in sorted(granted - PANEL_NEEDS)]  # fmt: skip
    bad += [f"lacks {verb} on {group or 'core'}/{resource}"
            for group, resource, verb in sorted(PANEL_NEEDS - granted)]  # fmt: skip
    return bad


def panel_account_violations(objects: list[Obj]) -> list[str]:
    """The panel runs as its own account, bound to its own Role only, with a token."""
    bad: list[str] = []
    spec = pod_spec_of(one(objects, "Deployment", PANEL))
    if spec.get("serviceAccountName") != PANEL:
        bad.append(f"the panel runs as {spec.get('serviceAccountName')}, not {PANEL}")
    if spec.get("automountServiceAccountToken") is not True:
        bad.append("the panel has no API token: it cannot create run Jobs")
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = [s for s in binding.get("subjects") or [] if s.get("name") == PANEL]
        if not subjects:
            continue
        if binding["kind"] == "ClusterRoleBinding" or binding["roleRef"] != {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": PANEL
        }:
            bad.append(f"{PANEL} is bound by {binding['kind']}/{binding['metadata']['name']} "
                       f"to {binding['roleRef']['name']}")
        for subject in subjects:
            if subject.get("namespace") != binding["metadata"].get("namespace"):
                bad.append(f"{binding['metadata']['name']} binds {PANEL} of another namespace")
    others = [w["metadata"]["name"] for w in workloads(objects)
              if w["metadata"]["name"] != PANEL
              and pod_spec_of(w).get("serviceAccountName") == PANEL]  # fmt: skip
    if others:
        bad.append(f"{PANEL}'s account is shared with {others}")
    return bad


@pytest.mark.parametrize("deployment", PANEL_DEPLOYMENTS)
def test_the_panel_role_allows_exactly_what_the_panel_needs(deployment: str) -> None:
    objects = objects_of(deployment)
    role = one(objects, "Role", PANEL)
    assert panel_role_violations(role) == []
    # the exact rules, as written in both sources
    assert role["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"],
         "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]  # fmt: skip
    assert panel_account_violations(objects) == []


def test_the_chart_renders_no_panel_by_default() -> None:
    assert [o for o in objects_of("chart:defaults") if "panel" in o["metadata"]["name"]] == []


def _rule(group: str, resource: str, *verbs: str) -> Obj:
    return {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}


PANEL_ROLE_BREAKAGES: dict[str, tuple[Callable[[Obj], object], str]] = {
    "secrets added": (lambda r: r["rules"].append(_rule("", "secrets", "get")),
                      "grants secrets"),
    "wildcard verbs on jobs": (lambda r: r["rules"][0].update(verbs=["*"]),
                               "wildcard verbs"),
    "wildcard resources": (lambda r: r["rules"].append(_rule("", "*", "get")),
                           "wildcard resources"),
    "configmaps patch": (lambda r: r["rules"][1]["verbs"].append("patch"),
                         "grants patch on core/configmaps"),
    "configmaps list": (lambda r: r["rules"][1]["verbs"].append("list"),
                        "grants list on core/configmaps"),
    "pods exec": (lambda r: r["rules"].append(_rule("", "pods/exec", "create")),
                  "grants pods/exec"),
    "cronjobs": (lambda r: r["rules"].append(_rule("batch", "cronjobs", "create")),
                 "grants create on batch/cronjobs"),
    "pods/log dropped": (lambda r: r["rules"].pop(), "lacks get on core/pods/log"),
    "no delete on jobs": (lambda r: r["rules"][0]["verbs"].remove("delete"),
                          "lacks delete on batch/jobs"),
}  # fmt: skip


@pytest.mark.parametrize("source", ["chart:helm-only", "kustomize:overlays/prod"])
@pytest.mark.parametrize("breakage", sorted(PANEL_ROLE_BREAKAGES))
def test_the_panel_role_check_catches_a_broken_role(source: str, breakage: str) -> None:
    role = one(objects_of(source), "Role", PANEL)
    assert panel_role_violations(role) == []
    breaker, expected = PANEL_ROLE_BREAKAGES[breakage]
    breaker(role)
    found = panel_role_violations(role)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda objs: one(objs, "RoleBinding", PANEL)["roleRef"].update(name="admin"),
         "to admin"),
        (lambda objs: pod_spec_of(one(objs, "Deployment", PANEL)).update(
            serviceAccountName="geomas-orchestrator"), "runs as geomas-orchestrator"),
        (lambda objs: pod_spec_of(one(objs, "CronJob", "geomas-retrain")).update(
            serviceAccountName=PANEL), "shared with ['geomas-retrain']"),
    ],
    ids=["bound-to-admin", "runs-as-orchestrator", "account-shared"],
)  # fmt: skip
def test_the_panel_account_check_catches_a_broken_binding(
    breakage: Callable[[list[Obj]], object], expected: str
) -> None:
    objects = objects_of("kustomize:overlays/prod")
    breakage(objects)
    found = panel_account_violations(objects)
    assert any(expected in v for v in found), found


def panel_network_violations(
    policies: list[Obj], namespace: str, api_cidrs: list[str], ingress_namespace: str | None
) -> list[str]:
    """The panel: in from its labelled clients (and the ingress controller) on 8080; out to
    DNS, MLflow, ZenML and the API server only."""
    pod = functools.partial(Endpoint, namespace=namespace)
    me = pod({PART_OF: "geomas", NAME: PANEL, COMPONENT: "panel"})
    dns = Endpoint({"k8s-app": "kube-dns"}, "kube-system")
    api = [Endpoint(ip=str(ipaddress.ip_network(c).network_address)) for c in api_cidrs]
    out_needed = [("MLflow", pod({PART_OF: "geomas", NAME: "geomas-mlflow"}), 5000),
                  ("ZenML", pod({PART_OF: "geomas", NAME: "geomas-zenml"}), 8080),
                  ("DNS", dns, 53), *[(f"the API server {a.ip}", a, 6443) for a in api]]
    out_refused = [("MinIO", pod({NAME: "minio"}), 9000),
                   ("PostgreSQL", pod({NAME: "postgresql"}), 5432),
                   ("a step pod", pod({PART_OF: "geomas", COMPONENT: "training"}), 8080),
                   *[(f"the internet {ip}", Endpoint(ip=ip), 443) for ip in INTERNET]]
    in_needed = [("a labelled client", pod({"geomas.panel/client": "true"}))]
    if ingress_namespace:
        in_needed.append(("the ingress controller", Endpoint({NAME: "x"}, ingress_namespace)))
    in_refused = [("a step pod", pod({PART_OF: "geomas", COMPONENT: "training"})),
                  ("the retrain job", pod({PART_OF: "geomas", COMPONENT: "retrain"})),
                  ("an unlabelled pod", pod({NAME: "something-else"})),
                  ("a labelled client elsewhere", Endpoint({"geomas.panel/client": "true"},
                                                           "other-team"))]  # fmt: skip
    bad = [f"cannot reach {what}:{port}" for what, peer, port in out_needed
           if not connection_allowed(policies, me, peer, port,
                                     "UDP" if port == 53 else "TCP")]  # fmt: skip
    bad += [f"reaches {what}:{port}" for what, peer, port in out_refused
            if connection_allowed(policies, me, peer, port)]  # fmt: skip
    bad += [f"{what} cannot reach it on 8080" for what, peer in in_needed
            if not connection_allowed(policies, peer, me, 8080)]  # fmt: skip
    bad += [f"{what} reaches it on 8080" for what, peer in in_refused
            if connection_allowed(policies, peer, me, 8080)]  # fmt: skip
    bad += [f"{what} reaches it on 22" for what, peer in in_needed
            if connection_allowed(policies, peer, me, 22)]  # fmt: skip
    return bad


def _ingress_namespace(deployment: str) -> str | None:
    return "ingress-nginx" if deployment == "chart:helm-only" else None


@pytest.mark.parametrize("deployment", PANEL_DEPLOYMENTS)
def test_the_panel_reaches_exactly_what_it_needs(deployment: str) -> None:
    labels = test_manifests.pod_template_of(one(objects_of(deployment), "Deployment", PANEL))
    assert {k: labels["metadata"]["labels"][k] for k in (PART_OF, NAME, COMPONENT)} == {
        PART_OF: "geomas", NAME: PANEL, COMPONENT: "panel"}
    found = panel_network_violations(
        policies_of(deployment), namespace_of(deployment), api_cidrs_of(deployment),
        _ingress_namespace(deployment))  # fmt: skip
    assert found == []


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda ps: _apiserver_policy(ps)["spec"]["podSelector"]["matchExpressions"][0][
            "values"].remove("panel"), "cannot reach the API server"),
        (lambda ps: next(p for p in ps if p["metadata"]["name"].endswith(
            "allow-panel-ingress"))["spec"]["ingress"][0]["from"][0].update(
            namespaceSelector={}), "a labelled client elsewhere reaches it"),
        (lambda ps: next(p for p in ps if p["metadata"]["name"].endswith(
            "allow-s3-egress"))["spec"]["podSelector"].pop("matchExpressions"),
         "reaches MinIO"),
    ],
    ids=["no-api", "open-to-every-namespace", "s3-for-the-panel"],
)  # fmt: skip
def test_the_panel_network_check_catches_a_broken_policy_set(
    breakage: Callable[[list[Obj]], object], expected: str
) -> None:
    source = "kustomize:overlays/prod"
    policies, ns, cidrs = policies_of(source), namespace_of(source), api_cidrs_of(source)
    assert panel_network_violations(policies, ns, cidrs, None) == []
    breakage(policies)
    found = panel_network_violations(policies, ns, cidrs, None)
    assert any(expected in v for v in found), found


def panel_env(deployment: str, objects: list[Obj]) -> dict[str, str]:
    """The panel container's environment as the kubelet would give it (the namespace
    resolved); secretKeyRef entries left out."""
    (container,) = pod_spec_of(one(objects, "Deployment", PANEL))["containers"]
    env = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif (entry.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath") == (
            "metadata.namespace"
        ):
            env[entry["name"]] = namespace_of(deployment)
    return env


def run_jobs_of(deployment: str, objects: list[Obj]) -> dict[str, tuple[Obj, Obj]]:
    """{pipeline: (Job, ConfigMap)} that the deployed panel would create for a run."""
    from geomas.panel.k8s import RunJobSettings, job_manifest

    settings = RunJobSettings.from_env(panel_env(deployment, objects))
    config = (ROOT / "configs" / "k8s.yaml").read_text("utf-8")
    return {
        pipeline: job_manifest(f"0f3a{i}c9", pipeline, config,  # type: ignore[arg-type]
                               **settings.job_kwargs())
        for i, pipeline in enumerate(RUN_PIPELINES)
    }


@pytest.mark.parametrize("deployment", PANEL_DEPLOYMENTS)
def test_the_run_jobs_the_panel_creates_pass_every_check(deployment: str) -> None:
    """For each pipeline: valid 1.33 objects; the pod checks of every other workload."""
    objects = objects_of(deployment)
    panel_image = pod_spec_of(one(objects, "Deployment", PANEL))["containers"][0]["image"]
    found: dict[str, list[str]] = {}
    for pipeline, (job, config_map) in run_jobs_of(deployment, objects).items():
        spec = pod_spec_of(job)
        (container,) = spec["containers"]
        assert container["image"] == panel_image, pipeline  # the panel's own (replaced) image
        found[pipeline] = (
            test_manifests.schema_errors(job) + test_manifests.schema_errors(config_map)
            + restricted_violations(spec) + writable_violations(spec, ("/tmp",))
            + test_manifests.pod_spec_violations(spec) + test_chart.policy_violations(job)
            + mlflow_client_auth_violations(container)
            + test_manifests.env_secret_violations(container)
        )  # fmt: skip
    assert found == {p: [] for p in RUN_PIPELINES}


@pytest.mark.parametrize("deployment", PANEL_DEPLOYMENTS)
def test_run_jobs_get_what_the_retrain_job_gets(deployment: str) -> None:
    """The same env for MLflow, ZenML and S3, the same account, the same network."""
    objects = objects_of(deployment)
    retrain = one(objects, "CronJob", "geomas-retrain")
    (retrain_c,) = pod_spec_of(retrain)["containers"]
    scratch = {"HOME", "GEOMAS_DATA_DIR", "ZENML_CONFIG_PATH", "ZENML_ANALYTICS_OPT_IN",
               "MLFLOW_DISABLE_TELEMETRY"}  # fmt: skip
    services = [e for e in retrain_c["env"] if e["name"] not in scratch]
    policies, ns = policies_of(deployment), namespace_of(deployment)
    api = Endpoint(ip=str(ipaddress.ip_network(api_cidrs_of(deployment)[0]).network_address))
    targets = [("MLflow", Endpoint({PART_OF: "geomas", NAME: "geomas-mlflow"}, ns), 5000),
               ("ZenML", Endpoint({PART_OF: "geomas", NAME: "geomas-zenml"}, ns), 8080),
               ("MinIO", Endpoint({NAME: "minio"}, ns), 9000),
               ("the API server", api, 6443)]  # fmt: skip
    retrain_me = Endpoint(test_manifests.pod_template_of(retrain)["metadata"]["labels"], ns)
    # what the retrain job reaches, and the internet, which it does not
    assert all(connection_allowed(policies, retrain_me, peer, port) for _, peer, port in targets)
    for pipeline, (job, config_map) in run_jobs_of(deployment, objects).items():
        spec = pod_spec_of(job)
        (container,) = spec["containers"]
        assert [e for e in container["env"] if e["name"] not in scratch] == services, pipeline
        assert {e["name"] for e in container["env"]} >= scratch
        # every run submits a pipeline (on the Kubernetes stack `geomas run data|training`
        # creates ZenML's orchestrator Job as `geomas retrain check` does): the retrain job's
        # account, with its token and Role
        assert spec["serviceAccountName"] == pod_spec_of(retrain)["serviceAccountName"]
        assert spec["automountServiceAccountToken"] is True
        binding = one(objects, "RoleBinding", spec["serviceAccountName"])
        role = one(objects, "Role", binding["roleRef"]["name"])
        assert ("batch", "jobs", "create") in test_manifests.grants(role)
        me = Endpoint(test_manifests.pod_template_of(job)["metadata"]["labels"], ns)
        wrong = [what for what, peer, port in targets
                 if not connection_allowed(policies, me, peer, port)]  # fmt: skip
        wrong += [ip for ip in INTERNET for port in (443, 6443)
                  if connection_allowed(policies, me, Endpoint(ip=ip), port)]  # fmt: skip
        assert wrong == [], pipeline
        # the config file: the run's ConfigMap, mounted read-only, named on the command line
        mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
        volume = next(v for v in spec["volumes"] if v["name"] == "config")
        assert mount["readOnly"] is True
        assert volume["configMap"]["name"] == config_map["metadata"]["name"]
        config_arg = container["command"][container["command"].index("--config") + 1]
        assert config_arg == f"{mount['mountPath']}/{next(iter(config_map['data']))}"
        # no retry, a deadline, a TTL
        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] > 0
        assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_a_run_job_without_its_api_allow_cannot_submit() -> None:
    """Not vacuous: without panel-run in the API server policy a run Job cannot submit."""
    source = "kustomize:overlays/prod"
    objects = objects_of(source)
    job, _ = run_jobs_of(source, objects)["data"]
    policies = of_kind(objects, "NetworkPolicy")
    me = Endpoint(test_manifests.pod_template_of(job)["metadata"]["labels"], "geomas")
    api = Endpoint(ip=str(ipaddress.ip_network(api_cidrs_of(source)[0]).network_address))
    assert connection_allowed(policies, me, api, 6443)
    _apiserver_policy(policies)["spec"]["podSelector"]["matchExpressions"][0]["values"].remove(
        "panel-run")
    assert not connection_allowed(policies, me, api, 6443)
    spec = pod_spec_of(job)
    spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    spec["containers"][0]["volumeMounts"] = [
        m for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] != "/tmp"]
    assert any("root filesystem is writable" in v for v in writable_violations(spec, ("/tmp",)))
    assert any("(/tmp) is on the read-only root" in v
               for v in writable_violations(spec, ("/tmp",)))  # fmt: skip


def test_the_panel_writes_only_to_its_volumes() -> None:
    for deployment in PANEL_DEPLOYMENTS:
        spec = pod_spec_of(one(objects_of(deployment), "Deployment", PANEL))
        assert writable_violations(spec, ("/tmp", "/var/lib/geomas-panel")) == [], deployment
        (container,) = spec["containers"]
        env = env_map(container)
        users = env["GEOMAS_PANEL_USERS_FILE"]["value"]
        mount = _mount_of(users, container["volumeMounts"])
        assert mount is not None and mount["readOnly"] is True, deployment
        volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
        assert "secret" in volume, deployment  # the users file comes from a Secret
        assert _from_secret(env, "GEOMAS_PANEL_SECRET"), deployment
        assert env["GEOMAS_PANEL_DATABASE_URL"]["value"].startswith(
            "sqlite:////var/lib/geomas-panel/"), deployment
        assert container["command"][:2] == ["geomas", "panel"], deployment


PLAIN_PANEL_INGRESS: Obj = {
    "panel": {"enabled": True, "ingress": {"enabled": True, "host": "p.example.com"}},
    "networkPolicy": {"apiServer": {"cidrs": ["10.0.0.10/32"]}},
}


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        pytest.param(PLAIN_PANEL_INGRESS, "panel/ingress/tlsSecretName", id="panel-no-tls"),
        pytest.param({"panel": {"enabled": True}}, "networkPolicy/apiServer/cidrs",
                     id="panel-without-apiserver"),
        pytest.param({"panel": {"runs": {"activeDeadlineSeconds": {"data": 0}}}},
                     "panel/runs/activeDeadlineSeconds/data", id="panel-no-deadline"),
        pytest.param({"panel": {"database": {"urlSecret": {"name": "Bad_Name"}}}},
                     "panel/database/urlSecret/name", id="panel-db-secret-name"),
    ],
)  # fmt: skip
def test_values_schema_refuses_an_insecure_panel(override: Obj, expected: str) -> None:
    errors = test_chart.schema_errors(test_chart.merge(test_chart.default_values(), override))
    assert any(e.startswith(expected) for e in errors), errors


def test_values_schema_accepts_a_panel_with_tls_or_an_explicit_opt_out() -> None:
    tls = test_chart.merge(PLAIN_PANEL_INGRESS, {"panel": {"ingress": {"tlsSecretName": "t"}}})
    insecure = test_chart.merge(PLAIN_PANEL_INGRESS,
                                {"panel": {"ingress": {"allowInsecure": True}}})
    for values in (tls, insecure):
        assert test_chart.schema_errors(test_chart.merge(test_chart.default_values(), values)) == []


def test_helm_refuses_a_panel_ingress_without_tls() -> None:
    refusal = helm_refusal(PLAIN_PANEL_INGRESS)
    assert refusal is not None and "/panel/ingress/tlsSecretName" in refusal, refusal


def test_a_panel_with_a_database_url_reaches_the_database_only_then() -> None:
    values = test_chart.merge(test_chart.HELM_ONLY, {"panel": {"database": {
        "urlSecret": {"name": "geomas-panel-db", "key": "url"}}}})
    objects = test_chart.render_objects(values)
    spec = pod_spec_of(one(objects, "Deployment", PANEL))
    env = env_map(spec["containers"][0])
    assert env["GEOMAS_PANEL_DATABASE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "geomas-panel-db", "key": "url"}}
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"
                and o["metadata"]["name"] == "geomas-panel-db"]  # fmt: skip
    panel = Endpoint({PART_OF: "geomas", NAME: PANEL, COMPONENT: "panel"}, "geomas")
    postgres = Endpoint({NAME: "postgresql"}, "geomas")
    assert connection_allowed(of_kind(objects, "NetworkPolicy"), panel, postgres, 5432)
    assert not connection_allowed(policies_of("chart:helm-only"), panel, postgres, 5432)
    assert [e for o in objects for e in test_manifests.schema_errors(o)] == []
