"""Log trained model folders to MLflow as pyfunc models and register versions.

A model folder (weights, tokenizer, label map) is logged as a pyfunc artifact, so the registry
holds exactly the saved files and loads them back with the same loader geomas uses; no flavour
re-serialises weights. The pyfunc is "models from code" (`serving/`), never a pickle, and the
files carry a manifest that geomas checks before loading (`geomas.registry.trust`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel
from pydantic import BaseModel

from geomas.errors import InputError

log = logging.getLogger(__name__)

#: The models-from-code files MLflow runs when it serves a geomas model.
SERVING_CODE = Path(__file__).resolve().parent / "serving"


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
    """pyfunc wrapper: a list of texts -> a list of entity dicts per text.

    Logged as models from code (`serving/ner_model.py`); the `model_dir` artifact holds the
    model files and geomas's manifest, checked before loading (`geomas.registry.trust`).
    """

    def load_context(self, context: Any) -> None:
        """Verify and load the NER model folder logged as the `model_dir` artifact."""
        from geomas.registry.trust import verify_folder

        folder = Path(context.artifacts["model_dir"])
        verify_folder(folder)
        self.load_verified(folder)

    def load_verified(self, folder: Path) -> None:
        """Load from a verified model folder."""
        from geomas.ner.inference import load_bert_ner_model

        self.model = load_bert_ner_model(folder)

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
    kind: str = "ner",
    tags: Mapping[str, str] | None = None,
) -> str | None:
    """Log `model_dir` as a pickle-free pyfunc (models from code) and register a version.

    Only the folder's data files are logged (`geomas.registry.trust.stage_files`) with a
    manifest of their digests; the version is tagged as written by geomas.

    Returns:
        The registered version number, or None when not registering.
    """
    import mlflow

    from geomas.registry.trust import stage_files, version_tags, write_manifest

    with tempfile.TemporaryDirectory(prefix="geomas-model-") as tmp:
        staged = Path(tmp) / "model"
        stage_files(Path(model_dir), staged)
        write_manifest(staged, kind, {})
        trust = version_tags(staged)
        info = mlflow.pyfunc.log_model(
            name=artifact_name,
            python_model=str(SERVING_CODE / f"{kind}_model.py"),
            artifacts={"model_dir": str(staged)},
            registered_model_name=registered_model_name,
            pip_requirements=["geomas"],
        )
    version = getattr(info, "registered_model_version", None)
    if registered_model_name and version is not None:
        client = mlflow.MlflowClient()
        for k, v in {**(tags or {}), **trust}.items():
            client.set_model_version_tag(registered_model_name, str(version), k, str(v))
    return str(version) if version is not None else None


def load_registered_ner(uri: str) -> NerPyfunc:
    """Load a registered NER model (`models:/geomas-ner@champion`) after checking its files.

    Raises:
        UntrustedModel: not registered by geomas, changed files, bad signature, unsafe files.
    """
    from geomas.registry.trust import download_verified

    manifest, folder = download_verified(uri)
    if manifest.kind != "ner":
        raise InputError(f"{uri} is a {manifest.kind} model, not a NER model")
    model = NerPyfunc()
    model.load_verified(folder)
    return model
