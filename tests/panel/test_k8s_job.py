"""geomas.panel.k8s: the Job (and ConfigMap) the panel creates for a run, and its API calls.

The manifests are validated against the Kubernetes 1.33 schemas (strict) for every pipeline;
the deployment-level checks (Pod Security, read-only roots, network, RBAC) run on the Jobs the
deployed panel would create in tests/k8s/test_policy.py. The API helpers run against a small
fake API server speaking the real REST paths through the official client, which records every
call: each one must be a verb the panel's Role (k8s/base/panel.yaml) grants.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from geomas.errors import ConfigError, InputError
from geomas.panel import k8s
from geomas.panel.k8s import RunJobSettings, job_manifest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (ROOT / "configs" / "k8s.yaml").read_text("utf-8")
NS = "geomas"
IMAGE = "registry.example.com/geomas/app:0.1.0"
KW: dict[str, Any] = {"image": IMAGE, "namespace": NS, "service_account": "geomas-orchestrator"}
PIPELINES = ("data", "training", "retrain-check")
RUN = "3f2a9c0d1e"


def schema_errors(obj: dict[str, Any]) -> list[str]:
    try:
        kubernetes_validate.validate(obj, "1.33", strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{obj['kind']}: {'.'.join(map(str, error.path))}: {error.message}"]
    return []


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_job_and_config_map_are_valid_kubernetes_1_33(pipeline: str) -> None:
    job, config_map = job_manifest(RUN, pipeline, CONFIG, **KW)  # type: ignore[arg-type]
    assert schema_errors(job) == schema_errors(config_map) == []
    assert job["metadata"]["name"] == config_map["metadata"]["name"] == f"geomas-run-{RUN}"
    assert job["metadata"]["namespace"] == config_map["metadata"]["namespace"] == NS


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        ("data", ["geomas", "run", "data"]),
        ("training", ["geomas", "run", "training"]),
        ("retrain-check", ["geomas", "retrain", "check"]),
    ],
)
def test_the_job_runs_the_local_workers_command_on_the_mounted_config(
    pipeline: str, expected: list[str]
) -> None:
    job, config_map = job_manifest(RUN, pipeline, CONFIG, **KW)  # type: ignore[arg-type]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == [*expected, "--config", "/etc/geomas/run/config.yaml",
                                    "--json"]  # fmt: skip
    assert config_map["data"] == {"config.yaml": CONFIG}
    assert config_map["immutable"] is True
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/geomas/run")
    assert mount["readOnly"] is True
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]


def test_labels_security_and_lifetime() -> None:
    job, config_map = job_manifest(RUN, "training", CONFIG, **KW)
    expected = {
        "app.kubernetes.io/name": "geomas",
        "app.kubernetes.io/component": "panel-run",
        "app.kubernetes.io/part-of": "geomas",
        "geomas.panel/run-id": RUN,
        "geomas.panel/pipeline": "training",
    }
    template = job["spec"]["template"]
    assert job["metadata"]["labels"] == config_map["metadata"]["labels"] == expected
    assert template["metadata"]["labels"] == expected
    spec = template["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == "geomas-orchestrator"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "sizeLimit" in next(v for v in spec["volumes"] if v["name"] == tmp["name"])["emptyDir"]
    env = {e["name"]: e for e in container["env"]}
    assert env["HOME"]["value"] == "/tmp"
    assert env["ZENML_CONFIG_PATH"]["value"].startswith("/tmp/")
    # credentials only from Secrets
    for name in ("ZENML_STORE_API_KEY", "AWS_SECRET_ACCESS_KEY", "MLFLOW_TRACKING_PASSWORD"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 86400
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    check, _ = job_manifest(RUN, "retrain-check", CONFIG, **KW)
    assert check["spec"]["activeDeadlineSeconds"] == 3300  # the retrain CronJob's


def test_the_default_env_is_the_k8s_retrain_cronjobs() -> None:
    """k8s/ gives the panel no env list: the default must be what its retrain job gets."""
    cron = yaml.safe_load((ROOT / "k8s" / "base" / "cronjob-retrain.yaml").read_text("utf-8"))
    (container,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    job, _ = job_manifest(RUN, "data", CONFIG, **KW)
    (run,) = job["spec"]["template"]["spec"]["containers"]
    assert run["env"] == container["env"]
    assert run["resources"] == container["resources"]
    mounts = {m["mountPath"]: m["name"] for m in run["volumeMounts"]}
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"] == {"claimName": "geomas-data"}


def test_settings_change_the_job() -> None:
    job, _ = job_manifest(
        RUN, "data", CONFIG, **KW, data_claim=None, image_pull_secrets=("regcred",),
        active_deadline_seconds={"data": 600}, ttl_seconds_after_finished=0,
        env=({"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"},),
    )
    spec = job["spec"]["template"]["spec"]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert "/data" not in {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert job["spec"]["activeDeadlineSeconds"] == 600
    assert job["spec"]["ttlSecondsAfterFinished"] == 0
    assert spec["containers"][0]["env"][0] == {"name": "MLFLOW_TRACKING_URI",
                                               "value": "http://mlflow:5000"}  # fmt: skip
    assert schema_errors(job) == []


@pytest.mark.parametrize(
    "run_id",
    ["", "Run1", "run_1", "-abc", "abc-", "a" * 53, "../etc", "a b", "ünï", 17],
)
def test_a_run_id_that_cannot_name_a_job_is_refused(run_id: Any) -> None:
    with pytest.raises(InputError, match="cannot name a Kubernetes Job"):
        job_manifest(run_id, "data", CONFIG, **KW)


@pytest.mark.parametrize("run_id", ["1", "a" * 52, uuid.uuid4().hex, str(uuid.uuid4())])
def test_run_ids_that_fit(run_id: str) -> None:
    job, _ = job_manifest(run_id, "data", CONFIG, **KW)
    assert len(job["metadata"]["name"]) <= 63
    assert schema_errors(job) == []


@pytest.mark.parametrize("pipeline", ["Data", "train", "retrain_check", "retrain", ""])
def test_an_unknown_pipeline_is_refused(pipeline: str) -> None:
    with pytest.raises(InputError, match="is not one of data, training, retrain-check"):
        job_manifest(RUN, pipeline, CONFIG, **KW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("- a\n- b\n", "must be a YAML mapping"),
        ("project: [\n", "not valid YAML"),
        ("a: " + "x" * (1024 * 1024), "a ConfigMap holds at most"),
        (b"project: {}", "must be YAML text"),
    ],
    ids=["list", "broken", "too-big", "bytes"],
)
def test_a_config_a_configmap_cannot_carry_is_refused(config: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        job_manifest(RUN, "data", config, **KW)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"namespace": "Geomas"}, "namespace"),
        ({"service_account": "a_b"}, "service_account"),
        ({"image": ""}, "image"),
        ({"active_deadline_seconds": {"data": 0}}, "active_deadline_seconds"),
        ({"active_deadline_seconds": {"train": 60}}, "active_deadline_seconds"),
        ({"replicas": 2}, "replicas"),
    ],
)
def test_invalid_settings_are_refused_with_the_field(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        job_manifest(RUN, "data", CONFIG, **{**KW, **override})


def test_settings_from_the_panels_environment() -> None:
    env = {"GEOMAS_PANEL_JOB_IMAGE": IMAGE, "GEOMAS_PANEL_JOB_NAMESPACE": "geomas-dev",
           "GEOMAS_PANEL_JOB_SETTINGS": json.dumps({"data_claim": "other-claim"})}
    settings = RunJobSettings.from_env(env)
    assert (settings.image, settings.namespace, settings.data_claim) == (
        IMAGE, "geomas-dev", "other-claim")
    job, _ = job_manifest(RUN, "data", CONFIG, **settings.job_kwargs())
    assert job["metadata"]["namespace"] == "geomas-dev"
    with pytest.raises(ConfigError, match="GEOMAS_PANEL_JOB_IMAGE not set"):
        RunJobSettings.from_env({"GEOMAS_PANEL_JOB_NAMESPACE": "g"})
    with pytest.raises(ConfigError, match="GEOMAS_PANEL_JOB_SETTINGS is not JSON"):
        RunJobSettings.from_env({**env, "GEOMAS_PANEL_JOB_SETTINGS": "{"})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        RunJobSettings.from_env({**env, "GEOMAS_PANEL_JOB_SETTINGS": "[]"})
    with pytest.raises(ConfigError, match="datta_claim"):
        RunJobSettings.from_env({**env, "GEOMAS_PANEL_JOB_SETTINGS": '{"datta_claim": "x"}'})


# --------------------------------------------------------------------------- the API


def panel_role_grants() -> set[tuple[str, str, str]]:
    docs = yaml.safe_load_all((ROOT / "k8s" / "base" / "panel.yaml").read_text("utf-8"))
    (role,) = [d for d in docs if d["kind"] == "Role"]
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"]
            for r in rule["resources"] for v in rule["verbs"]}  # fmt: skip


POD = f"geomas-run-{RUN}-x7k2p"


def _put(api: Any, pod: dict[str, Any]) -> None:
    api.pods[pod["metadata"]["name"]] = pod


def _pod(run_id: str, phase: str, **state: Any) -> dict[str, Any]:
    name = f"geomas-run-{run_id}-x7k2p"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS,
                         "labels": {"batch.kubernetes.io/job-name": f"geomas-run-{run_id}"}},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "run", "ready": False, "restartCount": 0, "image": IMAGE,
                 "imageID": "", "state": state}] if state else []}}  # fmt: skip


def test_a_run_is_created_watched_read_and_deleted_with_the_roles_verbs_only(
    fake: tuple[Any, Any],
) -> None:
    api, api_client = fake
    manifests = job_manifest(RUN, "data", CONFIG, **KW)
    assert k8s.job_status(RUN, namespace=NS, api_client=api_client).state == "missing"
    assert k8s.create_job(manifests, api_client=api_client) == f"geomas-run-{RUN}"
    job, config_map = api.jobs[f"geomas-run-{RUN}"], api.config_maps[f"geomas-run-{RUN}"]
    assert config_map["data"] == {"config.yaml": CONFIG}
    # the ConfigMap is owned by the Job: deleted with it (also by the Job's TTL)
    (owner,) = config_map["metadata"]["ownerReferences"]
    assert owner == {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                     "uid": job["metadata"]["uid"]}  # fmt: skip
    assert k8s.job_status(RUN, namespace=NS, api_client=api_client).state == "pending"
    _put(api, _pod(RUN, "Pending", waiting={"reason": "ErrImagePull", "message": "nope"}))
    status = k8s.job_status(RUN, namespace=NS, api_client=api_client)
    assert (status.state, status.reason) == ("pending", "ErrImagePull")
    job["status"] = {"active": 1}
    _put(api, _pod(RUN, "Running", running={"startedAt": "2025-01-01T00:00:00Z"}))
    assert k8s.job_status(RUN, namespace=NS, api_client=api_client).state == "running"
    api.logs[POD] = 'progress\n{"run_id": "r1"}\n'
    assert k8s.job_logs(RUN, namespace=NS, api_client=api_client).endswith('{"run_id": "r1"}\n')
    job["status"] = {"failed": 1, "conditions": [
        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
         "message": "Job was active longer than specified deadline"}]}  # fmt: skip
    _put(api, _pod(RUN, "Failed", terminated={"exitCode": 1, "reason": "Error"}))
    status = k8s.job_status(RUN, namespace=NS, api_client=api_client)
    assert (status.state, status.reason, status.exit_code) == ("failed", "DeadlineExceeded", 1)
    assert status.pods == (POD,)
    assert k8s.delete_job(RUN, namespace=NS, api_client=api_client) is True
    assert api.jobs == api.config_maps == {}
    assert k8s.delete_job(RUN, namespace=NS, api_client=api_client) is False
    # every call was one the panel's Role grants; what these helpers leave unused is only
    # reading: watching Jobs and pods, listing Jobs, reading a pod or a run's config back
    used = set(api.calls)
    grants = panel_role_grants()
    assert used <= grants, used - grants
    assert grants - used == {("batch", "jobs", "watch"), ("", "pods", "watch"),
                             ("", "pods", "get"), ("batch", "jobs", "list"),
                             ("", "configmaps", "get")}  # fmt: skip


def test_a_succeeded_run(fake: tuple[Any, Any]) -> None:
    api, api_client = fake
    k8s.create_job(job_manifest(RUN, "retrain-check", CONFIG, **KW), api_client=api_client)
    api.jobs[f"geomas-run-{RUN}"]["status"] = {"succeeded": 1, "conditions": [
        {"type": "Complete", "status": "True"}]}  # fmt: skip
    assert k8s.job_status(RUN, namespace=NS, api_client=api_client).state == "succeeded"


def test_a_second_job_for_the_same_run_is_refused(fake: tuple[Any, Any]) -> None:
    _, api_client = fake
    manifests = job_manifest(RUN, "data", CONFIG, **KW)
    k8s.create_job(manifests, api_client=api_client)
    with pytest.raises(k8s.KubernetesApiError, match="create Job geomas/geomas-run-") as info:
        k8s.create_job(manifests, api_client=api_client)
    assert info.value.status == 409


def test_a_refused_config_map_deletes_the_job_again(fake: tuple[Any, Any]) -> None:
    api, api_client = fake
    api.refuse.add(("configmaps", "create"))
    with pytest.raises(k8s.KubernetesApiError, match="Role does not allow it") as info:
        k8s.create_job(job_manifest(RUN, "data", CONFIG, **KW), api_client=api_client)
    assert info.value.status == 403
    assert api.jobs == {}  # no Job left waiting for a ConfigMap that never comes


def test_a_refused_call_is_one_clear_error(fake: tuple[Any, Any]) -> None:
    api, api_client = fake
    api.refuse.add(("jobs", "get"))
    with pytest.raises(k8s.KubernetesApiError, match="read Job geomas/geomas-run-.*403"):
        k8s.job_status(RUN, namespace=NS, api_client=api_client)
    with pytest.raises(InputError):
        k8s.job_status("Bad", namespace=NS, api_client=api_client)
