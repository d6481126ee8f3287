"""Shared fixtures. The environment is made offline before anything imports ZenML/MLflow/HF."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"

for key, value in {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def third_party_pdfs() -> Path:
    """The docling project's test PDFs with ground truth (../shared/corpus)."""
    pdf_dir = CORPUS / "pdf"
    if not pdf_dir.is_dir():
        pytest.fail(f"{pdf_dir} is missing: the shared corpus is part of the checkout layout")
    return pdf_dir


@pytest.fixture(scope="session")
def sample_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated Russian corpus with the four kinds of bad files."""
    from geomas.sample import generate_sample_corpus

    out = tmp_path_factory.mktemp("sample_corpus")
    generate_sample_corpus(out, docs=6, seed=7, with_bad_files=True)
    return out


@pytest.fixture()
def copy_tree(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a folder into the test's tmp dir and return the copy."""

    def _copy(src: Path, name: str = "src") -> Path:
        dst = tmp_path / name
        shutil.copytree(src, dst)
        return dst

    return _copy
