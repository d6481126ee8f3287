"""configs/k8s.yaml -> ZenML pod settings per step, and the config's validators.

ZenML binds its config dir once per process, so everything that imports ZenML (building the
settings, importing the pipelines, compiling them) runs once in a subprocess on a throwaway
ZenML store and reports JSON; the tests read that report.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from geomas.config import KubernetesConfig, RunConfig, load_config
from geomas.names import PIPELINE_STEPS, all_step_names

ROOT = Path(__file__).resolve().parents[2]
K8S_YAML = ROOT / "configs/k8s.yaml"
ORCH = "orchestrator.kubernetes"
GPU = "nvidia.com/gpu"
GPU_STEPS = {"train_model", "evaluate_model"}  # generate with / train a 7B model
MODEL_STEPS = GPU_STEPS | {"register_model"}  # read the base model files on /models
APP = "registry.example.com/geomas/app:0.1.0"
TRAINER = "registry.example.com/geomas/trainer:0.1.0"

# Runs in a fresh interpreter (cwd = repo root) with the data dir as argv[1], report as argv[2].
REPORT_SCRIPT = r'''
import importlib, json, sys
from pathlib import Path

from geomas.stack import activate_project, read_stack_file

data_dir, report = Path(sys.argv[1]), Path(sys.argv[2])
activate_project(data_dir)

from zenml.client import Client
from zenml.enums import StackComponentType as T
from zenml.pipelines.pipeline_definition import Pipeline
from zenml.steps import BaseStep

from geomas.config import RunConfig, load_config
from geomas.k8s import pipeline_settings, step_settings
from geomas.names import all_step_names
from geomas.runner import with_run_options

def dump(settings):
    return {k: v.model_dump(mode="json", exclude_unset=True) for k, v in settings.items()}

cfg = load_config(Path("configs/k8s.yaml"), RunConfig)
out = {
    "steps": {s: dump(v) for s, v in step_settings(cfg.kubernetes, all_step_names()).items()},
    "pipeline": dump(pipeline_settings(cfg.kubernetes)),
    "modules": {},
}
for path in sorted(Path("pipelines").glob("*.py")):
    if path.stem == "__init__":
        continue
    module = importlib.import_module(f"pipelines.{path.stem}")
    found = list(vars(module).values())
    pipelines = [p.name for p in found if isinstance(p, Pipeline)]
    steps = sorted(s.name for s in found if isinstance(s, BaseStep))
    out["modules"][path.stem] = {"pipelines": pipelines, "steps": steps}

# A stack with the orchestrator of zenml_stack.yaml (its S3 store would need s3fs and a bucket;
# compiling needs neither) and a tracker named like the steps' one.
client = Client()
orch = read_stack_file(Path("zenml_stack.yaml")).components["orchestrator"][0]
client.create_stack_component(name=orch.name, flavor=orch.flavor,
                              component_type=T.ORCHESTRATOR, configuration=orch.configuration)
client.create_stack_component(name="geomas-mlflow", flavor="mlflow",
                              component_type=T.EXPERIMENT_TRACKER,
                              configuration={"tracking_uri": f"sqlite:///{data_dir}/m.db"})
default = client.get_stack("default")
client.create_stack(name="k8s-compile", components={
    T.ORCHESTRATOR: orch.name,
    T.ARTIFACT_STORE: default.components[T.ARTIFACT_STORE][0].name,
    T.EXPERIMENT_TRACKER: "geomas-mlflow"})
client.activate_stack("k8s-compile")

def compile_(pipeline, params, with_params):
    configured = with_run_options(pipeline, cfg, params if with_params else None)
    configured.prepare(**params)
    args = dict(configured._run_args)  # what Pipeline._create_snapshot hands to _compile
    args.pop("prevent_build_reuse", None)
    snapshot, _, _ = configured._compile(steps=args.pop("step_configurations", None), **args)
    return {
        "steps": {n: dump(s.config.settings) for n, s in snapshot.step_configurations.items()},
        "pipeline": dump(snapshot.pipeline_configuration.settings),
    }

from pipelines.data_pipeline import data_pipeline
from pipelines.training_pipeline import training_pipeline

t, d = cfg.training, cfg.data
out["compiled_training"] = compile_(training_pipeline, dict(
    model=t.model, train_file=str(t.train_file), val_file=str(t.val_file),
    output_dir=str(t.output_dir), sft=t.sft, evaluation=t.evaluation, promotion=t.promotion,
    registered_model_name=t.registered_model_name), with_params=False)
data_params = dict(source_dir=str(d.source_dir), output_dir=str(d.output_dir), ingest=d.ingest,
                   validation=d.validation, ner=d.ner, qa=d.qa, clean=d.clean, split=d.split,
                   fmt=d.format, dataset_name=d.dataset_name)
out["compiled_data"] = compile_(data_pipeline, data_params, with_params=True)
no_ner = dict(data_params, ner=d.ner.model_copy(update={"model_path": None}))
out["compiled_data_no_ner"] = compile_(data_pipeline, no_ner, with_params=True)

# the scheduled retrain check: what `geomas retrain schedule` submits on this stack
from geomas.runner import retrain_check_pipeline_for
scheduled = retrain_check_pipeline_for(cfg, schedule=True, orchestrator_flavor="kubernetes")
scheduled.prepare(config_path="/app/configs/k8s.yaml", data_dir=None, dry_run=False)
args = dict(scheduled._run_args)
args.pop("prevent_build_reuse", None)
snapshot, schedule, _ = scheduled._compile(steps=args.pop("step_configurations", None), **args)
out["compiled_retrain"] = {
    "schedule": schedule.cron_expression if schedule else None,
    "steps": {n: dump(s.config.settings) for n, s in snapshot.step_configurations.items()},
    "pipeline": dump(snapshot.pipeline_configuration.settings),
}
report.write_text(json.dumps(out), encoding="utf-8")
'''


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("k8s_report")
    script = tmp / "report.py"
    script.write_text(REPORT_SCRIPT, encoding="utf-8")
    out = tmp / "report.json"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp / "data"), str(out)], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every step invoked by the runner is one ZenML applies settings to: no ignored step keys
    assert "cannot be applied to any pipeline step" not in proc.stderr + proc.stdout
    return dict(json.loads(out.read_text("utf-8")))


def _pod(settings: dict[str, Any]) -> dict[str, Any]:
    return dict(settings[ORCH]["pod_settings"])


def _volume_names(pod: dict[str, Any]) -> set[str]:
    return {v["name"] for v in pod.get("volumes", [])}


def test_gpu_toleration_node_selector_and_shm_only_on_gpu_steps(report: dict[str, Any]) -> None:
    for step, settings in report["steps"].items():
        pod = _pod(settings)
        resources = pod["resources"]
        if step in GPU_STEPS:
            assert resources["limits"][GPU] == resources["requests"][GPU] == "1"
            assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
            assert pod["node_selectors"] == {"nvidia.com/gpu.present": "true"}
            assert pod["additional_pod_spec_args"]["priority_class_name"] == "geomas-training"
            shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
            assert shm["emptyDir"]["medium"] == "Memory"
            assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["volume_mounts"]
        else:
            assert GPU not in resources["limits"] and GPU not in resources["requests"], step
            assert not pod.get("tolerations") and not pod.get("node_selectors"), step
            assert "dshm" not in _volume_names(pod), step
            assert "priority_class_name" not in pod["additional_pod_spec_args"], step


def test_model_cache_read_only_where_the_base_model_is_read(report: dict[str, Any]) -> None:
    for step, settings in report["steps"].items():
        pod = _pod(settings)
        if step in MODEL_STEPS:
            cache = next(v for v in pod["volumes"] if v["name"] == "model-cache")
            assert cache["persistentVolumeClaim"] == {"claimName": "geomas-model-cache",
                                                      "readOnly": True}
            assert {"name": "model-cache", "mountPath": "/models",
                    "readOnly": True} in pod["volume_mounts"]
        else:
            assert "model-cache" not in _volume_names(pod), step
        # the steps hand files to each other on the data volume
        assert {"name": "data", "mountPath": "/data"} in pod["volume_mounts"], step


def test_every_step_has_cpu_and_memory_requests_and_limits(report: dict[str, Any]) -> None:
    assert set(report["steps"]) == set(all_step_names())
    for step, settings in report["steps"].items():
        resources = _pod(settings)["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), (step, kind)
    assert _pod(report["steps"]["train_model"])["resources"]["limits"]["memory"] == "48Gi"


def test_step_pods_get_the_quiet_output_environment(report: dict[str, Any]) -> None:
    from geomas.progress import QUIET_ENV

    for step, settings in report["steps"].items():
        env = {e["name"]: e.get("value") for e in _pod(settings)["env"]}
        assert env["TRANSFORMERS_VERBOSITY"] == QUIET_ENV["TRANSFORMERS_VERBOSITY"], step
        assert set(QUIET_ENV) <= set(env), step


def test_every_pod_runs_non_root(report: dict[str, Any]) -> None:
    pods = [_pod(s) for s in report["steps"].values()]
    pods.append(report["pipeline"][ORCH]["orchestrator_pod_settings"])
    for pod in pods:
        container = pod["container_security_context"]
        assert container["runAsNonRoot"] is True
        assert container["runAsUser"] == 10001 and container["runAsGroup"] == 10001
        assert container["allowPrivilegeEscalation"] is False
        assert container["capabilities"] == {"drop": ["ALL"]}
        spec = pod["additional_pod_spec_args"]["security_context"]
        assert spec["runAsNonRoot"] is True and spec["runAsUser"] == 10001
        assert spec["fsGroup"] == 10001
        assert pod["labels"]["app.kubernetes.io/part-of"] == "geomas"


def test_images_and_labels(report: dict[str, Any]) -> None:
    for step, settings in report["steps"].items():
        image = TRAINER if step in GPU_STEPS else APP
        assert settings["docker"] == {"parent_image": image, "skip_build": True}, step
        component = "trainer" if step in GPU_STEPS else step
        assert _pod(settings)["labels"]["app.kubernetes.io/component"] == component
        # only the retrain check submits runs; other steps get the token-less account
        account = "geomas-orchestrator" if step == "retrain_check" else "geomas-step"
        assert settings[ORCH]["step_pod_service_account_name"] == account, step
    pipeline = report["pipeline"]
    assert pipeline["docker"] == {"parent_image": APP, "skip_build": True}
    assert pipeline[ORCH]["service_account_name"] == "geomas-orchestrator"
    orch_pod = pipeline[ORCH]["orchestrator_pod_settings"]
    assert orch_pod["labels"]["app.kubernetes.io/component"] == "orchestrator"
    assert orch_pod["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}
    assert not orch_pod.get("volumes")


def _compiled_orchestrator(settings: dict[str, Any]) -> dict[str, Any]:
    # ZenML rewrites `orchestrator.kubernetes` to `orchestrator:<component name>` when it
    # resolves the key against the stack: present only if ZenML accepted the key
    keys = [k for k in settings if k.startswith("orchestrator:")]
    assert keys == ["orchestrator:geomas-k8s-orchestrator"], list(settings)
    return dict(settings[keys[0]])


def test_zenml_compiles_the_training_pipeline_with_the_pod_settings(
    report: dict[str, Any],
) -> None:
    compiled = report["compiled_training"]
    assert set(compiled["steps"]) == set(PIPELINE_STEPS["geomas_training"])
    train = compiled["steps"]["train_model"]
    pod = _compiled_orchestrator(train)["pod_settings"]
    assert pod == _pod(report["steps"]["train_model"])
    assert pod["resources"]["limits"][GPU] == "1"
    assert train["docker"] == {"parent_image": TRAINER, "skip_build": True}
    promote = compiled["steps"]["promote_model"]
    assert GPU not in _compiled_orchestrator(promote)["pod_settings"]["resources"]["limits"]
    assert promote["docker"]["parent_image"] == APP
    pipeline = _compiled_orchestrator(compiled["pipeline"])
    assert pipeline["service_account_name"] == "geomas-orchestrator"
    assert compiled["pipeline"]["experiment_tracker:geomas-mlflow"] == {
        "experiment_name": "geomas"}


def test_data_pipeline_gets_settings_for_the_steps_it_invokes(report: dict[str, Any]) -> None:
    full = report["compiled_data"]["steps"]
    assert set(full) == set(PIPELINE_STEPS["geomas_data"])
    extract = _compiled_orchestrator(full["extract_entities"])["pod_settings"]
    assert extract["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    # without an NER model the pipeline stops after chunk validation
    assert set(report["compiled_data_no_ner"]["steps"]) == {"ingest_documents",
                                                            "validate_chunks"}


def test_static_step_list_matches_the_pipeline_modules(report: dict[str, Any]) -> None:
    found: dict[str, list[str]] = {}
    for module, content in report["modules"].items():
        assert len(content["pipelines"]) == 1, f"pipelines/{module}.py: one pipeline per module"
        found[content["pipelines"][0]] = content["steps"]
    assert found == {name: sorted(steps) for name, steps in PIPELINE_STEPS.items()}, (
        "geomas/names.py PIPELINE_STEPS is out of date with pipelines/*.py"
    )


# --------------------------------------------------------------------------- validators (no ZenML)


def _k8s() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(K8S_YAML.read_text("utf-8"))["kubernetes"])


def test_k8s_yaml_loads_through_run_config() -> None:
    cfg = load_config(K8S_YAML, RunConfig)
    assert cfg.project.stack == "geomas-k8s"
    assert cfg.kubernetes is not None
    assert cfg.kubernetes.image("train_model").endswith("trainer:0.1.0")
    assert cfg.training is not None and cfg.training.sft.method == "qlora"


def test_gpu_on_a_cpu_image_step_is_rejected() -> None:
    raw = _k8s()
    raw["steps"]["validate_chunks"] = {"resources": {"requests": {GPU: 1}, "limits": {GPU: 1}}}
    with pytest.raises(ValidationError, match=r"validate_chunks requests nvidia.com/gpu.*"
                                              r"kubernetes.steps.validate_chunks.image: trainer"):
        KubernetesConfig.model_validate(raw)


def test_unknown_step_name_is_rejected() -> None:
    raw = _k8s()
    raw["steps"]["train"] = raw["steps"].pop("train_model")
    with pytest.raises(ValidationError, match=r"\['train'\] are not steps.*train_model"):
        KubernetesConfig.model_validate(raw)


def test_requests_and_limits_are_both_required() -> None:
    raw = _k8s()
    del raw["defaults"]["resources"]["limits"]
    with pytest.raises(ValidationError, match="limits.cpu, limits.memory"):
        KubernetesConfig.model_validate(raw)


@pytest.mark.parametrize(("resources", "message"), [
    ({"requests": {"memory": "8Gi"}, "limits": {"memory": "4Gi"}}, "is above"),
    ({"requests": {GPU: 1}, "limits": {GPU: 2}}, "cannot overcommit"),
    ({"requests": {"cpu": "two"}, "limits": {}}, "not a Kubernetes quantity"),
    ({"requests": {GPU: "0.5"}, "limits": {GPU: "0.5"}}, "whole numbers"),
])
def test_impossible_resources_are_rejected(resources: dict[str, Any], message: str) -> None:
    raw = _k8s()
    raw["steps"]["train_model"]["resources"] = resources
    with pytest.raises(ValidationError, match=message):
        KubernetesConfig.model_validate(raw)


def test_volumes_and_mounts_must_fit_together() -> None:
    raw = _k8s()
    raw["steps"]["register_model"]["volumes"] = []
    with pytest.raises(ValidationError, match=r"register_model: volume mount 'model-cache'"):
        KubernetesConfig.model_validate(raw)
    raw = _k8s()
    raw["steps"]["train_model"]["volumes"].append(raw["defaults"]["volumes"][0])
    with pytest.raises(ValidationError, match=r"volumes \['data'\] are defined twice"):
        KubernetesConfig.model_validate(raw)
    raw = _k8s()
    raw["defaults"]["volume_mounts"] = [{"name": "data", "mount_path": "/data"}]
    with pytest.raises(ValidationError, match="camelCase"):
        KubernetesConfig.model_validate(raw)


def test_defaults_and_step_entries_merge() -> None:
    cfg = KubernetesConfig.model_validate(_k8s())
    train = cfg.pod("train_model")
    # lists appended to the defaults', mappings merged key by key, scalars replaced
    assert [v["name"] for v in train.volumes] == ["data", "dshm", "model-cache"]
    assert train.resources is not None
    assert train.resources.requests == {"cpu": "4", "memory": "32Gi", GPU: "1"}
    assert train.labels == {"app.kubernetes.io/part-of": "geomas"}
    assert train.security == cfg.defaults.security and train.image == "trainer"
    assert cfg.pod("validate_chunks") == cfg.defaults


def test_run_config_rejects_kubernetes_on_the_local_stack_and_relative_paths() -> None:
    raw = yaml.safe_load(K8S_YAML.read_text("utf-8"))
    local = copy.deepcopy(raw)
    local["project"]["stack"] = "geomas-local"
    with pytest.raises(ValidationError, match="need a Kubernetes stack"):
        RunConfig.model_validate(local)
    relative = copy.deepcopy(raw)
    relative["data"]["output_dir"] = "runs/data"
    with pytest.raises(ValidationError, match=r"data.output_dir \(runs/data\) is relative"):
        RunConfig.model_validate(relative)


def test_scheduled_retrain_check_is_a_forbid_cronjob(report: dict[str, Any]) -> None:
    """`geomas retrain schedule` on the Kubernetes stack: cron, Forbid, deadline, history."""
    compiled = report["compiled_retrain"]
    assert compiled["schedule"] == "0 * * * *"  # RetrainConfig.cron default
    # compiled settings are keyed by the stack's component: orchestrator:<name>
    (orchestrator,) = [v for k, v in compiled["pipeline"].items() if k.startswith("orchestrator")]
    assert orchestrator["concurrency_policy"] == "Forbid"
    assert orchestrator["starting_deadline_seconds"] == 600
    assert orchestrator["successful_jobs_history_limit"] == 3
    assert orchestrator["failed_jobs_history_limit"] == 3
    assert orchestrator["service_account_name"] == "geomas-orchestrator"
    (step,) = [v for k, v in compiled["steps"]["retrain_check"].items()
               if k.startswith("orchestrator")]
    # the check submits runs: the orchestrator's account, and no GPU
    assert step["step_pod_service_account_name"] == "geomas-orchestrator"
    assert GPU not in json.dumps(step["pod_settings"]["resources"])
