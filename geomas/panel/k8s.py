"""The panel's Kubernetes launch path: one Job per run, in the geomas app image.

A run is the command the local worker runs (`geomas run data|training --config FILE --json`,
`geomas retrain check --config FILE --json`), in a Job of the panel's namespace. The config
file travels in a ConfigMap, mounted read-only; the Job gets the environment the retrain
CronJob gets (MLflow, ZenML, S3, each credential from a Secret), runs as the account that may
submit pipelines (`geomas-orchestrator`: on the Kubernetes stack every one of the three commands
submits ZenML's orchestrator Job through the Kubernetes API) and is hardened like the CronJob:
non-root, read-only root with a `/tmp` emptyDir, no retry, a deadline, and a TTL.

`job_manifest` builds the two objects (pure, no cluster); `create_job`, `job_status`,
`job_logs` and `delete_job` call the API with the official `kubernetes` client (imported
lazily; the `k8s` extra) and only with the verbs the panel's Role grants (charts/geomas and
k8s/base/panel.yaml): jobs create/get/list/delete, configmaps create/get/delete, pods list,
pods/log get.

The panel learns where to launch from its environment (the chart and k8s/ set it):
`RunJobSettings.from_env(os.environ)`, then
`job_manifest(run_id, pipeline, text, **settings.job_kwargs())`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from geomas.config.base import validation_message
from geomas.errors import ConfigError, GeomasError, InputError, MissingExtraError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

Pipeline = Literal["data", "training", "retrain-check"]
PIPELINES: tuple[str, ...] = get_args(Pipeline)

#: The command each pipeline runs, before `--config FILE --json` (the local worker's command).
COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("geomas", "run", "data"),
    "training": ("geomas", "run", "training"),
    "retrain-check": ("geomas", "retrain", "check"),
}

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
RUN_ID_LABEL = "geomas.panel/run-id"
PIPELINE_LABEL = "geomas.panel/pipeline"
COMPONENT = "panel-run"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

#: A run id becomes part of object names and a label value: lowercase letters, digits and
#: '-', starting and ending alphanumeric, at most 52 characters (`geomas-run-` + id fits the
#: 63 characters of the job-name label Kubernetes puts on the Job's pods).
RUN_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?")
NAME_PREFIX = "geomas-run-"
#: A ConfigMap holds at most 1 MiB.
MAX_CONFIG_BYTES = 1024 * 1024 - 4096

CONFIG_DIR = "/etc/geomas/run"
CONFIG_KEY = "config.yaml"
TMP_DIR = "/tmp"
DATA_DIR = "/data"

#: The env the retrain CronJob of k8s/base gets for MLflow, ZenML and S3 (the chart passes its
#: own, rendered with the same values as its CronJob's, in GEOMAS_PANEL_JOB_SETTINGS).
DEFAULT_ENV: tuple[dict[str, Any], ...] = (
    {"name": "MLFLOW_TRACKING_URI", "value": "http://geomas-mlflow:5000"},
    {"name": "ZENML_STORE_URL", "value": "http://geomas-zenml:8080"},
    {"name": "ZENML_STORE_API_KEY",
     "valueFrom": {"secretKeyRef": {"name": "geomas-zenml-api-key", "key": "api-key"}}},
    {"name": "AWS_ACCESS_KEY_ID",
     "valueFrom": {"secretKeyRef": {"name": "geomas-s3", "key": "AWS_ACCESS_KEY_ID"}}},
    {"name": "AWS_SECRET_ACCESS_KEY",
     "valueFrom": {"secretKeyRef": {"name": "geomas-s3", "key": "AWS_SECRET_ACCESS_KEY"}}},
    {"name": "MLFLOW_TRACKING_USERNAME",
     "valueFrom": {"secretKeyRef": {"name": "geomas-mlflow-auth", "key": "username"}}},
    {"name": "MLFLOW_TRACKING_PASSWORD",
     "valueFrom": {"secretKeyRef": {"name": "geomas-mlflow-auth", "key": "password"}}},
    {"name": "MLFLOW_S3_ENDPOINT_URL",
     "valueFrom": {"configMapKeyRef": {"name": "geomas-settings", "key": "s3_endpoint_url"}}},
)  # fmt: skip

#: Tied to the pod this module builds (its /tmp emptyDir, a read-only root): not settings.
SCRATCH_ENV: tuple[dict[str, str], ...] = (
    {"name": "HOME", "value": TMP_DIR},
    {"name": "GEOMAS_DATA_DIR", "value": f"{TMP_DIR}/geomas"},
    {"name": "ZENML_CONFIG_PATH", "value": f"{TMP_DIR}/geomas/zenml"},
    # egress to the internet is denied (NetworkPolicy): telemetry would only time out
    {"name": "ZENML_ANALYTICS_OPT_IN", "value": "false"},
    {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"},
)

#: The client waits for a synchronous pipeline: a day, the orchestrator's own deadline in
#: configs/k8s.yaml; the retrain check as long as the retrain CronJob's.
DEFAULT_DEADLINES: dict[str, int] = {"data": 86400, "training": 86400, "retrain-check": 3300}

#: The retrain CronJob's: the client only submits and waits.
DEFAULT_RESOURCES: dict[Literal["requests", "limits"], dict[str, str | int | float]] = {
    "requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}

#: Environment variables the panel reads its launch settings from.
IMAGE_ENV = "GEOMAS_PANEL_JOB_IMAGE"
NAMESPACE_ENV = "GEOMAS_PANEL_JOB_NAMESPACE"
SETTINGS_ENV = "GEOMAS_PANEL_JOB_SETTINGS"

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class RunJobSettings(BaseModel):
    """Where and how a run's Job runs: one deployment's values (defaults: k8s/base)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(min_length=1, description="The geomas app image (the panel's own).")
    namespace: str = Field(pattern=_DNS_LABEL, max_length=63,
                           description="The panel's namespace; its Role holds only there.")
    service_account: str = Field(
        default="geomas-orchestrator", pattern=_DNS_LABEL, max_length=253,
        description="The run's account: submitting a pipeline creates ZenML's orchestrator "
                    "Job, which the geomas-orchestrator Role allows (as for the retrain CronJob).")
    env: tuple[dict[str, Any], ...] = Field(
        default=DEFAULT_ENV, description="MLflow, ZenML and S3 settings, credentials as "
                                         "secretKeyRef: the retrain CronJob's.")
    data_claim: str | None = Field(
        default="geomas-data", pattern=_DNS_LABEL,
        description="PVC mounted at /data (the corpus: `geomas run data` checks "
                    "data.source_dir before it submits); None: no claim.")
    image_pull_secrets: tuple[str, ...] = ()
    active_deadline_seconds: dict[Pipeline, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict,
        description="Per pipeline, over DEFAULT_DEADLINES: how long a run's Job may take.")
    ttl_seconds_after_finished: int = Field(
        default=86400, ge=0, description="A finished Job, its pod and its ConfigMap are deleted "
                                         "after this (the panel records the outcome first).")
    resources: dict[Literal["requests", "limits"], dict[str, str | int | float]] = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_RESOURCES),
        description="The run container's requests and limits (the retrain CronJob's).")
    tmp_size_limit: str = "1Gi"
    run_as_user: int = Field(default=10001, ge=1)
    run_as_group: int = Field(default=10001, ge=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RunJobSettings:
        """The settings the deployment gives the panel (GEOMAS_PANEL_JOB_*).

        Raises:
            ConfigError: the image or namespace is not set, or the settings JSON is invalid.
        """
        missing = [name for name in (IMAGE_ENV, NAMESPACE_ENV) if not environ.get(name)]
        if missing:
            raise ConfigError(
                f"{' and '.join(missing)} not set: the panel launches runs as Kubernetes Jobs "
                "only when its deployment says where (charts/geomas panel.*, k8s/base/panel.yaml)")
        try:
            extra = json.loads(environ.get(SETTINGS_ENV) or "{}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{SETTINGS_ENV} is not JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise ConfigError(f"{SETTINGS_ENV} must be a JSON object, not {type(extra).__name__}")
        try:
            return cls(image=environ[IMAGE_ENV], namespace=environ[NAMESPACE_ENV], **extra)
        except ValidationError as exc:
            raise ConfigError(f"{SETTINGS_ENV}: {validation_message(exc)}") from exc

    def job_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `job_manifest`."""
        return self.model_dump()


def job_name(run_id: str) -> str:
    """The Job's and the ConfigMap's name for a run."""
    check_run_id(run_id)
    return f"{NAME_PREFIX}{run_id}"


def check_run_id(run_id: str) -> None:
    """Raise InputError unless `run_id` can name Kubernetes objects and label them."""
    if not isinstance(run_id, str) or RUN_ID.fullmatch(run_id) is None:
        raise InputError(
            f"run id {run_id!r} cannot name a Kubernetes Job: use 1-52 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit (e.g. a uuid4 hex)")


def _check_pipeline(pipeline: str) -> None:
    if pipeline not in COMMANDS:
        raise InputError(f"pipeline {pipeline!r} is not one of {', '.join(PIPELINES)}")


def _check_config(config_yaml: str) -> None:
    if not isinstance(config_yaml, str):
        raise InputError(f"the run config must be YAML text, not {type(config_yaml).__name__}")
    size = len(config_yaml.encode("utf-8"))
    if size > MAX_CONFIG_BYTES:
        raise InputError(f"the run config is {size} bytes; a ConfigMap holds at most "
                         f"{MAX_CONFIG_BYTES}: keep data out of the config file")
    try:
        parsed = yaml.safe_load(config_yaml)
    except yaml.YAMLError as exc:
        raise InputError(f"the run config is not valid YAML: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InputError("the run config must be a YAML mapping (sections such as project:, "
                         f"data:), not {type(parsed).__name__}")


def labels(run_id: str, pipeline: str) -> dict[str, str]:
    """Labels of a run's Job, its pod and its ConfigMap."""
    return {
        NAME_LABEL: "geomas",
        COMPONENT_LABEL: COMPONENT,
        PART_OF_LABEL: "geomas",
        RUN_ID_LABEL: run_id,
        PIPELINE_LABEL: pipeline,
    }


def command(pipeline: str) -> list[str]:
    """The container's command: what the local worker runs, with the mounted config."""
    _check_pipeline(pipeline)
    return [*COMMANDS[pipeline], "--config", f"{CONFIG_DIR}/{CONFIG_KEY}", "--json"]


def job_manifest(
    run_id: str, pipeline: Pipeline, config_yaml: str, *, image: str, namespace: str,
    service_account: str, **settings: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Job that runs one panel run, and the ConfigMap that holds its config file.

    Args:
        run_id: The panel's run id (lowercase letters, digits, '-'; at most 52 characters).
        pipeline: `data`, `training` or `retrain-check`.
        config_yaml: The run config file's text (a YAML mapping; under 1 MiB).
        image: The geomas app image.
        namespace: Where the Job runs (the panel's namespace).
        service_account: The run's ServiceAccount (`geomas-orchestrator`: it submits).
        **settings: Any other `RunJobSettings` field (env, data_claim, deadlines, ...).

    Returns:
        `(job, config_map)` as Kubernetes API objects (dicts); create them with `create_job`.

    Raises:
        InputError: the run id, pipeline or config cannot be used.
        ConfigError: a setting is invalid.
    """
    check_run_id(run_id)
    _check_pipeline(pipeline)
    _check_config(config_yaml)
    try:
        s = RunJobSettings(image=image, namespace=namespace, service_account=service_account,
                           **settings)
    except ValidationError as exc:
        raise ConfigError(f"panel job settings: {validation_message(exc)}") from exc
    name = job_name(run_id)
    meta = {"name": name, "namespace": s.namespace, "labels": labels(run_id, pipeline)}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": copy.deepcopy(meta),
        "immutable": True,
        "data": {CONFIG_KEY: config_yaml},
    }
    given = {e.get("name") for e in s.env}
    scratch = [dict(e) for e in SCRATCH_ENV if e["name"] not in given]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": TMP_DIR},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": name, "defaultMode": 0o444}},
        {"name": "tmp", "emptyDir": {"sizeLimit": s.tmp_size_limit}},
    ]
    if s.data_claim:
        mounts.append({"name": "data", "mountPath": DATA_DIR})
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": s.data_claim}})
    user = {"runAsNonRoot": True, "runAsUser": s.run_as_user, "runAsGroup": s.run_as_group}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": s.service_account,
        # the command submits ZenML's orchestrator Job: it calls the API with this token
        "automountServiceAccountToken": True,
        "enableServiceLinks": False,
        "securityContext": {**user, "fsGroup": s.run_as_group,
                            "fsGroupChangePolicy": "OnRootMismatch",
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "run",
            "image": s.image,
            "imagePullPolicy": "IfNotPresent",
            "command": command(pipeline),
            "env": [copy.deepcopy(e) for e in s.env] + scratch,
            "resources": copy.deepcopy(s.resources),
            "securityContext": {**user, "allowPrivilegeEscalation": False, "privileged": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "volumeMounts": mounts,
        }],
        "volumes": volumes,
    }
    if s.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in s.image_pull_secrets]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": copy.deepcopy(meta),
        "spec": {
            # a failed run is reported, not retried: a second submission would start a second
            # pipeline run
            "backoffLimit": 0,
            "activeDeadlineSeconds": s.active_deadline_seconds.get(
                pipeline, DEFAULT_DEADLINES[pipeline]),
            "ttlSecondsAfterFinished": s.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": labels(run_id, pipeline)}, "spec": pod_spec},
        },
    }
    return job, config_map


# --------------------------------------------------------------------------- the API


class KubernetesApiError(GeomasError):
    """The Kubernetes API refused or failed a call; `status` is its HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        """Keep the HTTP status the error is about."""
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class JobStatus:
    """A run's Job as the API sees it.

    `state` is `pending` (created, no pod running yet), `running`, `succeeded`, `failed`
    (`reason`: BackoffLimitExceeded, DeadlineExceeded, ...) or `missing` (no such Job: never
    created, deleted, or removed by its TTL).
    """

    run_id: str
    state: Literal["pending", "running", "succeeded", "failed", "missing"]
    reason: str = ""
    message: str = ""
    pods: tuple[str, ...] = ()
    exit_code: int | None = None


def _client(api_client: ApiClient | None) -> Any:
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise MissingExtraError(
            "launching panel runs on Kubernetes needs the kubernetes client: "
            "pip install 'geomas[k8s]'") from exc
    if api_client is None:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            try:
                config.load_kube_config()
            except (config.ConfigException, OSError) as exc:
                raise KubernetesApiError(
                    "no Kubernetes credentials: run the panel in the cluster with its "
                    f"ServiceAccount, or give it a kubeconfig ({exc})") from exc
        api_client = client.ApiClient()
    return client, api_client


def _api_error(exc: Exception, what: str) -> KubernetesApiError:
    status = int(getattr(exc, "status", 0) or 0)
    reason = getattr(exc, "reason", "") or str(exc)
    hint = " (the panel's Role does not allow it)" if status == 403 else ""
    return KubernetesApiError(f"Kubernetes API: {what} failed: {status} {reason}{hint}", status)


def _is_api_exception(exc: Exception) -> bool:
    from kubernetes.client.exceptions import ApiException

    return isinstance(exc, ApiException)


def create_job(
    manifests: tuple[dict[str, Any], dict[str, Any]], *, api_client: ApiClient | None = None
) -> str:
    """Create a run's Job, then its ConfigMap, owned by the Job (deleted with it).

    The Job comes first so that the ConfigMap can carry its owner reference without a patch
    (the Role has no patch verb); until the ConfigMap exists the kubelet waits to mount it.
    If the ConfigMap cannot be created, the Job is deleted again.

    Args:
        manifests: `(job, config_map)` from `job_manifest`.
        api_client: A `kubernetes.client.ApiClient`; None: the in-cluster account (else the
            kubeconfig).

    Returns:
        The Job's name.

    Raises:
        KubernetesApiError: the API refused a call (a Job of that name exists: 409).
        MissingExtraError: the kubernetes package is not installed.
    """
    job, config_map = manifests
    client, api = _client(api_client)
    namespace = job["metadata"]["namespace"]
    name = job["metadata"]["name"]
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    try:
        created = batch.create_namespaced_job(namespace, job)
    except Exception as exc:
        if _is_api_exception(exc):
            raise _api_error(exc, f"create Job {namespace}/{name}") from exc
        raise
    owned = copy.deepcopy(config_map)
    owned["metadata"]["ownerReferences"] = [{
        "apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": created.metadata.uid,
    }]
    try:
        core.create_namespaced_config_map(namespace, owned)
    except Exception as exc:
        if not _is_api_exception(exc):
            raise
        try:
            batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
        except Exception as cleanup:
            if not _is_api_exception(cleanup):
                raise
        raise _api_error(exc, f"create ConfigMap {namespace}/{name}") from exc
    return name


def job_status(run_id: str, *, namespace: str, api_client: ApiClient | None = None) -> JobStatus:
    """The state of a run's Job and the names of its pods.

    Raises:
        InputError: the run id is not a valid one.
        KubernetesApiError: the API refused a call.
    """
    name = job_name(run_id)
    client, api = _client(api_client)
    try:
        job = client.BatchV1Api(api).read_namespaced_job(name, namespace)
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=f"{JOB_NAME_LABEL}={name}").items
    except Exception as exc:
        if not _is_api_exception(exc):
            raise
        if getattr(exc, "status", 0) == 404:
            return JobStatus(run_id, "missing")
        raise _api_error(exc, f"read Job {namespace}/{name}") from exc
    names = tuple(sorted(p.metadata.name for p in pods))
    exit_code = _exit_code(pods)
    # a Job the controller has not looked at yet has no status
    status = job.status or client.V1JobStatus()
    for condition in status.conditions or []:
        if condition.status != "True":
            continue
        if condition.type in ("Complete", "SuccessCriteriaMet"):
            return JobStatus(run_id, "succeeded", condition.reason or "",
                             condition.message or "", names, exit_code)
        if condition.type in ("Failed", "FailureTarget"):
            return JobStatus(run_id, "failed", condition.reason or "",
                             condition.message or "", names, exit_code)
    if status.active and any(p.status is not None and p.status.phase == "Running" for p in pods):
        return JobStatus(run_id, "running", pods=names)
    waiting = [c.state.waiting for p in pods if p.status is not None
               for c in (p.status.container_statuses or [])
               if c.state is not None and c.state.waiting is not None]
    if waiting:
        return JobStatus(run_id, "pending", waiting[0].reason or "", waiting[0].message or "",
                         names)
    return JobStatus(run_id, "pending", pods=names)


def _exit_code(pods: list[Any]) -> int | None:
    for pod in pods:
        for c in (pod.status.container_statuses if pod.status is not None else None) or []:
            if c.state is not None and c.state.terminated is not None:
                return int(c.state.terminated.exit_code)
    return None


def job_logs(
    run_id: str, *, namespace: str, api_client: ApiClient | None = None,
    tail_lines: int | None = None,
) -> str:
    """The log of a run's pod: stdout and stderr together (the --json summary comes last).

    Empty when the pod has not started yet or is gone.

    Raises:
        KubernetesApiError: the API refused a call.
    """
    name = job_name(run_id)
    client, api = _client(api_client)
    core = client.CoreV1Api(api)
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=f"{JOB_NAME_LABEL}={name}").items
        if not pods:
            return ""
        pod = sorted(pods, key=lambda p: p.metadata.name)[-1].metadata.name
        kwargs = {"tail_lines": tail_lines} if tail_lines is not None else {}
        # raw bytes: the client's own str() of the body would give "b'...'" (kubernetes <37)
        response = core.read_namespaced_pod_log(pod, namespace, container="run",
                                                _preload_content=False, **kwargs)
        return bytes(response.data).decode("utf-8", errors="replace")
    except Exception as exc:
        if not _is_api_exception(exc):
            raise
        if getattr(exc, "status", 0) in (400, 404):  # not started yet, or gone
            return ""
        raise _api_error(exc, f"read the log of Job {namespace}/{name}") from exc


def delete_job(run_id: str, *, namespace: str, api_client: ApiClient | None = None) -> bool:
    """Delete a run's Job (its pod goes with it, the run stops) and its ConfigMap.

    Stopping the client does not stop a pipeline it already submitted: ZenML's orchestrator
    Job keeps running (stop that run in ZenML).

    Returns:
        Whether there was anything to delete.

    Raises:
        KubernetesApiError: the API refused a call.
    """
    name = job_name(run_id)
    client, api = _client(api_client)
    found = False
    for what, delete in (
        ("Job", lambda: client.BatchV1Api(api).delete_namespaced_job(
            name, namespace, propagation_policy="Background")),
        ("ConfigMap", lambda: client.CoreV1Api(api).delete_namespaced_config_map(
            name, namespace)),
    ):
        try:
            delete()
            found = True
        except Exception as exc:
            if not _is_api_exception(exc):
                raise
            if getattr(exc, "status", 0) != 404:
                raise _api_error(exc, f"delete {what} {namespace}/{name}") from exc
    return found
