"""Log trained model folders to MLflow as pyfunc models and register versions.

A model folder (weights, tokenizer, label map) is logged as a pyfunc artifact, so the registry
holds exactly the saved files and loads them back with the same loader geomas uses; no flavour
re-serialises weights.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel
from pydantic import BaseModel

log = logging.getLogger(__name__)


class RegisteredVersion(BaseModel):
    """A model version registered in the MLflow model registry."""

    name: str
    version: str
    run_id: str | None
    model_uri: str
    aliases: list[str] = []
    tags: dict[str, str] = {}


class EntityOut(BaseModel):
    """One entity as the registered NER model returns it."""

    label: str
    text: str
    confidence: float
    start: int
    end: int


class NerPyfunc(PythonModel):
    """pyfunc wrapper: a list of texts -> a list of entity dicts per text."""

    def load_context(self, context: Any) -> None:
        """Load the NER model folder logged as the `model_dir` artifact."""
        from geomas.ner.inference import load_bert_ner_model

        self.model = load_bert_ner_model(context.artifacts["model_dir"])

    def predict(
        self, context: Any, model_input: list[str], params: dict[str, Any] | None = None
    ) -> list[list[EntityOut]]:
        """Extract entities from each text."""
        return [
            [EntityOut(**e.__dict__) for e in r.entities]
            for r in self.model.extract_batch(list(model_input))
        ]


def log_and_register(
    model_dir: Path,
    *,
    artifact_name: str,
    registered_model_name: str | None,
    python_model: PythonModel,
    tags: Mapping[str, str] | None = None,
) -> str | None:
    """Log `model_dir` as a pyfunc model in the active run and register a version.

    Returns:
        The registered version number, or None when not registering.
    """
    import mlflow

    info = mlflow.pyfunc.log_model(
        name=artifact_name,
        python_model=python_model,
        artifacts={"model_dir": str(model_dir)},
        registered_model_name=registered_model_name,
        pip_requirements=["geomas"],
    )
    version = getattr(info, "registered_model_version", None)
    if registered_model_name and version is not None and tags:
        client = mlflow.MlflowClient()
        for k, v in tags.items():
            client.set_model_version_tag(registered_model_name, str(version), k, str(v))
    return str(version) if version is not None else None
