"""ZenML settings for running the pipelines as pods on the Kubernetes stack.

`configs/k8s.yaml`'s `kubernetes:` section (geomas.config.KubernetesConfig) becomes, per step,
ZenML `KubernetesOrchestratorSettings` (the pod: image's resources, GPU, tolerations, volumes,
non-root security context) and `DockerSettings` (the prebuilt app or trainer image, no build),
plus pipeline-level settings for the orchestrator pod. ZenML ignores a step's ResourceSettings
on Kubernetes, so CPU, memory and GPUs go in the pod settings' `resources`.

ZenML is imported inside the functions only: the project's ZenML config location must be set
(geomas.stack.activate_project) before anything imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from geomas.errors import ConfigError, MissingExtraError

if TYPE_CHECKING:
    from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

    from geomas.config import K8sPodConfig, K8sResources, K8sSecurity, KubernetesConfig

log = logging.getLogger(__name__)

#: Settings keys: `<component type>.<flavor>` applies only when the stack's orchestrator is
#: the Kubernetes one, so the same pipeline object stays runnable on the embedded stack.
ORCHESTRATOR_KEY = "orchestrator.kubernetes"
DOCKER_KEY = "docker"

PART_OF_LABEL = "app.kubernetes.io/part-of"
COMPONENT_LABEL = "app.kubernetes.io/component"

#: Scratch space of a step pod whose root filesystem is read-only: an emptyDir at /tmp (HOME,
#: the caches and ZenML's temporary artifact copies point there: configs/k8s.yaml `env`).
TMP_VOLUME: dict[str, Any] = {"name": "geomas-tmp", "emptyDir": {"sizeLimit": "4Gi"}}
TMP_MOUNT: dict[str, Any] = {"name": "geomas-tmp", "mountPath": "/tmp"}


def step_settings(
    config: KubernetesConfig, pipeline_steps: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """ZenML step settings for each step: its pod and its image.

    Args:
        config: The run config's `kubernetes:` section.
        pipeline_steps: Step (invocation) names of the pipeline that runs.

    Returns:
        `{step: {"orchestrator.kubernetes": KubernetesOrchestratorSettings, "docker":
        DockerSettings}}`, for `pipeline.with_options(step_configurations={step: {"settings":
        ...}})`.

    Raises:
        ConfigError: a volume, mount, toleration or env entry is not a valid Kubernetes object.
        MissingExtraError: the kubernetes package is not installed.
    """
    _require_kubernetes()
    from zenml.config import DockerSettings
    from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings

    out: dict[str, dict[str, Any]] = {}
    for step in pipeline_steps:
        pod = config.pod(step)
        component = "trainer" if pod.image == "trainer" else step
        out[step] = {
            ORCHESTRATOR_KEY: KubernetesOrchestratorSettings(
                pod_settings=_pod_settings(pod, pod.resources, component, where=f"step {step}"),
                step_pod_service_account_name=pod.service_account,
                **_orchestrator_options(config),
            ),
            DOCKER_KEY: DockerSettings(parent_image=config.image(step), skip_build=True),
        }
    return out


def pipeline_settings(config: KubernetesConfig) -> dict[str, Any]:
    """Pipeline-level ZenML settings: the orchestrator pod and the default (app) image.

    Returns:
        `{"orchestrator.kubernetes": ..., "docker": ...}` for `pipeline.with_options(settings=)`.

    Raises:
        MissingExtraError: the kubernetes package is not installed.
    """
    _require_kubernetes()
    from zenml.config import DockerSettings
    from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings

    orch = config.orchestrator
    # The orchestrator pod mounts nothing, not even the steps' /tmp emptyDir, and ZenML writes
    # its client config under $HOME: its root filesystem stays writable ("restricted" does not
    # ask for a read-only one).
    security = config.defaults.security
    if security is not None:
        security = security.model_copy(update={"read_only_root_filesystem": False})
    pod = config.defaults.model_copy(update={"volumes": [], "volume_mounts": [],
                                             "tolerations": [], "node_selectors": {},
                                             "priority_class": None, "security": security})
    return {
        ORCHESTRATOR_KEY: KubernetesOrchestratorSettings(
            service_account_name=orch.service_account,
            step_pod_service_account_name=config.defaults.service_account,
            orchestrator_pod_settings=_pod_settings(
                pod, orch.resources, "orchestrator", where="the orchestrator pod"
            ),
            **_orchestrator_options(config),
        ),
        DOCKER_KEY: DockerSettings(parent_image=config.images.app, skip_build=True),
    }


def _require_kubernetes() -> None:
    # ZenML's pod settings validate their volumes, tolerations, ... with the kubernetes client
    import importlib.util

    if importlib.util.find_spec("kubernetes") is None:
        raise MissingExtraError(
            "running on the Kubernetes stack needs the kubernetes client (and s3fs for the S3 "
            "artifact store): pip install 'geomas[k8s]'"
        )


def _orchestrator_options(config: KubernetesConfig) -> dict[str, Any]:
    # unset options keep ZenML's defaults
    return config.orchestrator.model_dump(
        exclude={"service_account", "resources"}, exclude_none=True
    )


def _quiet_env(env: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pod's env plus geomas's quiet-output defaults (the config's own entries win).

    A step pod runs ZenML's entrypoint, not the geomas CLI, so the library settings that
    `configure_output` puts in the environment have to come with the pod.
    """
    from geomas.progress import QUIET_ENV

    entries = list(env)
    given = {e.get("name") for e in entries}
    return entries + [{"name": k, "value": v} for k, v in QUIET_ENV.items() if k not in given]


def _pod_settings(
    pod: K8sPodConfig, resources: K8sResources | None, component: str, where: str
) -> KubernetesPodSettings:
    from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

    for field, kind in (("volumes", "V1Volume"), ("volume_mounts", "V1VolumeMount"),
                        ("tolerations", "V1Toleration"), ("env", "V1EnvVar")):
        for i, entry in enumerate(getattr(pod, field)):
            _check_kubernetes_object(entry, kind, f"{where}: {field}[{i}]")
    spec_args: dict[str, Any] = {}
    container_security: dict[str, Any] = {}
    volumes, mounts = list(pod.volumes), list(pod.volume_mounts)
    if pod.security is not None:
        container_security, spec_args["security_context"] = _security_contexts(pod.security)
        # a read-only root needs somewhere to write, unless the config mounts its own /tmp
        if pod.security.read_only_root_filesystem and not any(
            m["mountPath"].rstrip("/") == "/tmp" for m in mounts
        ):
            volumes.append(dict(TMP_VOLUME))
            mounts.append(dict(TMP_MOUNT))
    if pod.priority_class:
        spec_args["priority_class_name"] = pod.priority_class
    return KubernetesPodSettings(
        resources=resources.model_dump() if resources is not None else {},
        node_selectors=dict(pod.node_selectors),
        tolerations=list(pod.tolerations),
        volumes=volumes,
        volume_mounts=mounts,
        env=_quiet_env(pod.env),
        labels={COMPONENT_LABEL: component, **pod.labels},
        annotations=dict(pod.annotations),
        image_pull_secrets=list(pod.image_pull_secrets),
        container_security_context=container_security,
        additional_pod_spec_args=spec_args,
    )


def _security_contexts(sec: K8sSecurity) -> tuple[dict[str, Any], dict[str, Any]]:
    """Container and pod security contexts (camelCase, as the Kubernetes API takes them).

    Non-root, no privilege escalation, no capabilities, the runtime's seccomp profile: what
    the Pod Security Standard "restricted" asks for.
    """
    container = {
        "runAsNonRoot": True,
        "runAsUser": sec.run_as_user,
        "runAsGroup": sec.run_as_group,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": sec.read_only_root_filesystem,
        "capabilities": {"drop": ["ALL"]},
    }
    pod: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": sec.run_as_user,
        "runAsGroup": sec.run_as_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if sec.fs_group is not None:
        pod["fsGroup"] = sec.fs_group
    return container, pod


def _check_kubernetes_object(entry: dict[str, Any], kind: str, where: str) -> None:
    """Reject what Kubernetes would reject; ZenML itself only logs a warning for it."""
    from zenml.integrations.kubernetes import serialization_utils

    try:
        serialization_utils.deserialize_kubernetes_model(entry, kind)
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"kubernetes {where} is not a valid {kind} {entry}: {exc}") from exc
