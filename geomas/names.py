"""Names shared across layers: stacks, stack components, pipelines and their steps.

The bottom layer (with geomas.errors): config validation, the stack adapter, the Kubernetes
settings and the steps all refer to these names without importing each other.
"""

from __future__ import annotations

#: Stack component names shared by the embedded stack and zenml_stack.yaml (Kubernetes):
#: steps refer to the tracker by this name on every stack.
TRACKER_NAME = "geomas-mlflow"
REGISTRY_NAME = "geomas-mlflow-registry"
LOCAL_STACK_NAME = "geomas-local"

#: The steps of each pipeline (ZenML pipeline name -> step names), so that configs can be
#: checked without importing the pipelines (ZenML, torch). tests/unit/test_k8s_settings.py
#: imports every module in pipelines/ and fails when this list and the code disagree.
PIPELINE_STEPS: dict[str, tuple[str, ...]] = {
    "geomas_data": (
        "ingest_documents",
        "validate_chunks",
        "extract_entities",
        "generate_qa",
        "validate_qa_pairs",
        "clean_dataset",
        "split_dataset",
        "format_dataset",
        "validate_examples",
    ),
    "geomas_training": ("train_model", "evaluate_model", "register_model", "promote_model"),
    "geomas_retrain_check": ("retrain_check",),
}


def all_step_names() -> tuple[str, ...]:
    """Every step of every geomas pipeline, in pipeline order."""
    return tuple(dict.fromkeys(s for steps in PIPELINE_STEPS.values() for s in steps))
