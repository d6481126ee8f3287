"""Kubernetes pod settings per pipeline step (configs/k8s.yaml `kubernetes:`)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from geomas.config.base import StrictModel
from geomas.names import all_step_names

#: Kubernetes quantity: a decimal number, an optional exponent and an optional suffix.
_QUANTITY = re.compile(
    r"^([0-9]+(?:\.[0-9]+)?)(?:[eE]([+-]?[0-9]+))?(m|k|Ki|Mi|Gi|Ti|Pi|Ei|M|G|T|P|E)?$"
)
_QUANTITY_FACTOR = {
    None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def k8s_quantity(value: str) -> float:
    """The numeric value of a Kubernetes quantity ("500m" -> 0.5, "2Gi" -> 2147483648.0).

    Raises:
        ValueError: `value` is not a Kubernetes quantity.
    """
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 16Gi)"
        )
    number, exponent, suffix = match.groups()
    return float(number) * 10.0 ** int(exponent or 0) * _QUANTITY_FACTOR[suffix]


def is_gpu_resource(name: str) -> bool:
    """Whether a resource name is a GPU (nvidia.com/gpu, amd.com/gpu, ...)."""
    return name.endswith("/gpu")


class K8sImages(StrictModel):
    """Container images of the pods (built from docker/)."""

    app: str = Field(
        min_length=1, pattern=r"^\S+$", description="CPU image: every step but training."
    )
    trainer: str = Field(
        min_length=1, pattern=r"^\S+$", description="CUDA image: the GPU steps (training)."
    )


class K8sResources(StrictModel):
    """Resource requests and limits of a pod's main container (Kubernetes names and units)."""

    requests: dict[str, str] = Field(
        default_factory=dict, description="e.g. {cpu: 500m, memory: 2Gi, nvidia.com/gpu: 1}."
    )
    limits: dict[str, str] = Field(default_factory=dict, description="e.g. {cpu: 2, memory: 4Gi}.")

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _numbers_as_strings(cls, value: Any) -> Any:
        # YAML reads `cpu: 2` and `nvidia.com/gpu: 1` as numbers; Kubernetes takes strings.
        if isinstance(value, dict):
            return {
                k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v
                for k, v in value.items()
            }
        return value

    @model_validator(mode="after")
    def _quantities(self) -> K8sResources:
        for kind, values in (("requests", self.requests), ("limits", self.limits)):
            for name, value in values.items():
                try:
                    amount = k8s_quantity(value)
                except ValueError as exc:
                    raise ValueError(f"resources.{kind}[{name!r}]: {exc}") from None
                if "/" in name and amount != int(amount):
                    raise ValueError(
                        f"resources.{kind}[{name!r}] = {value!r}: extended resources such as "
                        "GPUs are whole numbers"
                    )
        for name in self.requests.keys() & self.limits.keys():
            request, limit = k8s_quantity(self.requests[name]), k8s_quantity(self.limits[name])
            if request > limit:
                raise ValueError(
                    f"resources.requests[{name!r}] ({self.requests[name]}) is above "
                    f"resources.limits[{name!r}] ({self.limits[name]}); Kubernetes rejects the pod"
                )
            if "/" in name and request != limit:
                raise ValueError(
                    f"resources.requests[{name!r}] ({self.requests[name]}) differs from its "
                    f"limit ({self.limits[name]}); Kubernetes cannot overcommit extended "
                    "resources such as GPUs: give the same number in both"
                )
        return self

    @property
    def gpus(self) -> tuple[str, ...]:
        """GPU resource names requested or limited."""
        return tuple(sorted(n for n in self.requests.keys() | self.limits.keys()
                            if is_gpu_resource(n)))


class K8sSecurity(StrictModel):
    """Who the containers run as: never root (the images create this user)."""

    run_as_user: int = Field(ge=1, description="UID of the container processes (not 0).")
    run_as_group: int = Field(ge=1, description="Primary GID of the container processes.")
    fs_group: int | None = Field(
        default=None, ge=1, description="Group that owns mounted volumes (writable PVCs)."
    )
    read_only_root_filesystem: bool = Field(
        default=False, description="Mount the image's root filesystem read-only."
    )


def _check_k8s_entries(
    field: str, entries: list[dict[str, Any]], required: tuple[str, ...]
) -> None:
    for i, entry in enumerate(entries):
        snake = sorted(k for k in entry if "_" in k)
        if snake:
            raise ValueError(
                f"{field}[{i}] uses {snake}: Kubernetes field names are camelCase "
                "(mountPath, readOnly, emptyDir, persistentVolumeClaim, claimName)"
            )
        missing = [k for k in required if not entry.get(k)]
        if missing:
            raise ValueError(f"{field}[{i}] has no {', '.join(missing)}: {entry}")


class K8sPodConfig(StrictModel):
    """Pod settings of a step; `kubernetes.defaults` for every step, `steps.<name>` on top.

    A step's settings are the defaults merged with its entry: the entry's values win, mappings
    (labels, resources.requests, ...) are merged key by key and lists (volumes, mounts,
    tolerations, env) are appended to the defaults' lists.
    """

    image: Literal["app", "trainer"] | None = Field(
        default=None, description="Which of kubernetes.images runs the step; unset: app."
    )
    service_account: str | None = Field(default=None, min_length=1)
    resources: K8sResources | None = None
    security: K8sSecurity | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    node_selectors: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes Toleration objects (camelCase)."
    )
    priority_class: str | None = Field(
        default=None, min_length=1, description="PriorityClass of the pod (priorityClassName)."
    )
    volumes: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes Volume objects (camelCase)."
    )
    volume_mounts: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes VolumeMount objects (camelCase)."
    )
    env: list[dict[str, Any]] = Field(
        default_factory=list, description="Kubernetes EnvVar objects for the main container."
    )
    image_pull_secrets: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shapes(self) -> K8sPodConfig:
        for field, mapping in (("labels", self.labels), ("node_selectors", self.node_selectors)):
            for key, value in mapping.items():
                if not _LABEL_KEY.fullmatch(key):
                    raise ValueError(f"{field}: {key!r} is not a valid Kubernetes label key")
                if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
                    raise ValueError(
                        f"{field}[{key!r}] = {value!r} is not a valid Kubernetes label value "
                        "(63 characters at most: letters, digits, - _ .)"
                    )
        _check_k8s_entries("volumes", self.volumes, ("name",))
        _check_k8s_entries("volume_mounts", self.volume_mounts, ("name", "mountPath"))
        _check_k8s_entries("env", self.env, ("name",))
        _check_k8s_entries("tolerations", self.tolerations, ())
        return self

    def merged(self, override: K8sPodConfig) -> K8sPodConfig:
        """These settings with `override` on top (see the class docstring)."""
        return K8sPodConfig.model_validate(
            _merge_settings(self.model_dump(exclude_unset=True),
                            override.model_dump(exclude_unset=True))
        )


def _merge_settings(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge_settings(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(override, list):
        return [*base, *override]
    return override


class K8sOrchestratorOptions(StrictModel):
    """ZenML Kubernetes orchestrator settings for the run (unset: ZenML's default)."""

    service_account: str = Field(
        min_length=1, description="Service account of the orchestrator pod (starts step pods)."
    )
    resources: K8sResources | None = Field(
        default=None, description="Requests and limits of the orchestrator pod."
    )
    synchronous: bool | None = Field(
        default=None, description="Wait for the run to finish (ZenML default: true)."
    )
    max_parallelism: int | None = Field(default=None, ge=1, description="Step pods at once.")
    backoff_limit_margin: int | None = Field(
        default=None,
        ge=0,
        description="Extra pod start attempts per step job beyond the step's retries.",
    )
    orchestrator_job_backoff_limit: int | None = Field(default=None, ge=0)
    ttl_seconds_after_finished: int | None = Field(
        default=None, ge=0, description="Keep finished jobs this long before cleanup."
    )
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Kill a job (run or step) that runs longer."
    )
    pod_stop_grace_period: int | None = Field(default=None, ge=1)
    # The CronJob policy of scheduled runs (concurrency, starting deadline, history) comes from
    # the `retrain:` section (geomas.trigger.schedule), the only pipeline that is scheduled.


class KubernetesConfig(StrictModel):
    """Pods of the pipeline steps on the Kubernetes stack (zenml_stack.yaml).

    GPUs go in the step's `resources` (ZenML ignores step ResourceSettings on Kubernetes).
    """

    images: K8sImages
    orchestrator: K8sOrchestratorOptions
    defaults: K8sPodConfig = Field(description="Settings of every step's pod.")
    steps: dict[str, K8sPodConfig] = Field(
        default_factory=dict, description="Per-step additions, keyed by step name."
    )

    @model_validator(mode="after")
    def _steps(self) -> KubernetesConfig:
        known = all_step_names()
        unknown = sorted(set(self.steps) - set(known))
        if unknown:
            raise ValueError(
                f"kubernetes.steps: {unknown} are not steps of any geomas pipeline; "
                f"known steps: {', '.join(known)}"
            )
        for step in known:
            self._check_step(step, self.pod(step))
        return self

    def _check_step(self, step: str, pod: K8sPodConfig) -> None:
        where = f"kubernetes.steps.{step}" if step in self.steps else "kubernetes.defaults"
        res = pod.resources or K8sResources()
        missing = [f"{kind}.{name}" for kind in ("requests", "limits") for name in ("cpu", "memory")
                   if name not in getattr(res, kind)]
        if missing:
            raise ValueError(
                f"step {step}: resources need cpu and memory requests and limits, missing "
                f"{', '.join(missing)}; set them in kubernetes.defaults.resources or "
                f"kubernetes.steps.{step}.resources"
            )
        gpus = res.gpus
        if gpus and pod.image != "trainer":
            raise ValueError(
                f"step {step} requests {', '.join(gpus)} but runs the CPU app image; set "
                f"kubernetes.steps.{step}.image: trainer (the CUDA image) or drop the GPU "
                f"from {where}.resources"
            )
        if pod.security is None:
            raise ValueError(
                f"step {step} has no security settings; every pod runs non-root: set "
                "kubernetes.defaults.security (run_as_user, run_as_group)"
            )
        names = [v["name"] for v in pod.volumes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(
                f"step {step}: volumes {dup} are defined twice (defaults + "
                f"kubernetes.steps.{step}); give the step's volumes other names"
            )
        paths = [m["mountPath"] for m in pod.volume_mounts]
        dup = sorted({p for p in paths if paths.count(p) > 1})
        if dup:
            raise ValueError(f"step {step}: more than one volume is mounted at {dup}")
        for mount in pod.volume_mounts:
            if mount["name"] not in names:
                raise ValueError(
                    f"step {step}: volume mount {mount['name']!r} at {mount['mountPath']} has "
                    f"no volume of that name (volumes: {names or 'none'})"
                )

    def pod(self, step: str) -> K8sPodConfig:
        """The merged pod settings of `step` (defaults, then the step's entry)."""
        override = self.steps.get(step)
        return self.defaults if override is None else self.defaults.merged(override)

    def image(self, step: str) -> str:
        """The image that runs `step`."""
        return self.images.trainer if self.pod(step).image == "trainer" else self.images.app
