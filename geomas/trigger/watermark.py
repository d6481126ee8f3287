"""Data watermarks: which documents (sha256 of their bytes) and how many QA pairs a model saw.

A watermark is written on every registered version by the training pipeline (version tags
`watermark.*` and the run artifact `watermark.json` with the document ids), and computed for
the corpus as it is now; the retrain check compares the two.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, field_validator

from geomas.errors import InputError

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)

DATA_HASH_TAG = "watermark.data_hash"
DOCS_TAG = "watermark.docs"
QA_PAIRS_TAG = "watermark.qa_pairs"
WATERMARK_ARTIFACT = "watermark.json"
#: documents.json statuses of documents whose chunks went into the dataset
_USED = {"parsed", "cached"}


class Watermark(BaseModel):
    """A set of documents (by content hash) and the number of QA pairs made from them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    doc_ids: tuple[str, ...]
    """Sorted, distinct sha256 of the documents' bytes (sorted and de-duplicated on input)."""
    qa_pairs: int | None = None
    """QA pairs in the dataset (None: not known, e.g. the corpus before the data pipeline)."""

    @field_validator("doc_ids")
    @classmethod
    def _sorted(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))

    @property
    def docs(self) -> int:
        """Number of distinct documents."""
        return len(self.doc_ids)

    @property
    def data_hash(self) -> str:
        """The idempotency key: sha256 over the sorted document ids."""
        return hashlib.sha256("\n".join(self.doc_ids).encode("ascii")).hexdigest()

    def tags(self) -> dict[str, str]:
        """Registry version tags that carry the watermark."""
        tags = {DATA_HASH_TAG: self.data_hash, DOCS_TAG: str(self.docs)}
        if self.qa_pairs is not None:
            tags[QA_PAIRS_TAG] = str(self.qa_pairs)
        return tags


def corpus_watermark(source_dir: Path, extensions: Iterable[str],
                     qa_pairs: int | None = None, max_file_bytes: int | None = None) -> Watermark:
    """The documents under `source_dir` now: sha256 of every file ingest would convert.

    Files with other suffixes, empty files and files over `max_file_bytes` are left out, as
    ingest rejects them.

    Raises:
        InputError: `source_dir` is not a folder.
    """
    from geomas.hashing import sha256_file
    from geomas.ingest.run import discover

    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise InputError(f"corpus folder {source_dir} does not exist")
    allowed = {s.lower() for s in extensions}
    # links out of the folder, FIFOs, bad names, oversized files: not data
    files, _skipped = discover(source_dir, max_bytes=max_file_bytes)
    ids = []
    for path in files:
        if path.suffix.lower() in allowed and path.stat().st_size > 0:
            try:
                ids.append(sha256_file(path))
            except OSError as exc:  # unreadable: ingest rejects it too
                log.warning("retrain check skips %s: %s", path, exc)
    return Watermark(doc_ids=tuple(ids), qa_pairs=qa_pairs)


def count_qa_pairs(output_dir: Path) -> int | None:
    """QA pairs in the data pipeline's qa_pairs.json, or None when it has not run there."""
    path = Path(output_dir) / "qa_pairs.json"
    if not path.is_file():
        return None
    try:
        return len(json.loads(path.read_text("utf-8")))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); re-run the data pipeline") from exc


def files_watermark(files: Iterable[Path], output_dir: Path | None = None) -> Watermark:
    """The documents behind the exact dataset files a version used (train, val, test).

    Each example's document is its ``group`` (``meta.doc_id`` when it has none): lineage from
    the records themselves, never a folder listing — after a data run that was stopped after
    ingest, documents.json lists documents that no QA pair or train file holds yet, and those
    must count as new for the next retrain check. QA pairs: the pairs in `output_dir`'s
    qa_pairs.json that belong to these documents (None without one).

    Raises:
        InputError: a file cannot be read as a dataset.
    """
    from geomas.formats import read_examples

    doc_ids: set[str] = set()
    for path in files:
        rows = read_examples(Path(path))
        docs = {str(ex.group or ex.meta.get("doc_id") or "") for ex in rows}
        if "" in docs:
            log.warning("%s: %d records name no document (written with lineage: none?); they "
                        "count for no document in the version's watermark", path,
                        sum(1 for ex in rows if not (ex.group or ex.meta.get("doc_id"))))
        doc_ids |= docs - {""}
    qa_pairs = None
    qa_path = Path(output_dir) / "qa_pairs.json" if output_dir is not None else None
    if qa_path is not None and qa_path.is_file():
        try:
            pairs = json.loads(qa_path.read_text("utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{qa_path} is not valid JSON ({exc}); re-run the data pipeline"
                             ) from exc
        qa_pairs = sum(1 for p in pairs if isinstance(p, dict) and p.get("doc_id") in doc_ids)
    return Watermark(doc_ids=tuple(sorted(doc_ids)), qa_pairs=qa_pairs)


def champion_watermark(name: str, client: MlflowClient | None = None) -> Watermark | None:
    """The watermark of `name@champion`; None when there is no champion.

    A champion registered without a watermark (before geomas wrote them, or outside the
    training pipeline) gives an empty document set, so the whole corpus counts as new.
    """
    import mlflow

    from geomas.registry.promotion import CHAMPION, alias_version

    client = client or mlflow.MlflowClient()
    version = alias_version(name, CHAMPION, client)
    if version is None:
        return None
    mv = client.get_model_version(name, version)
    if DATA_HASH_TAG not in mv.tags:
        log.warning("%s v%s has no data watermark; every document counts as new", name, version)
        return Watermark(doc_ids=(), qa_pairs=None)
    doc_ids: tuple[str, ...] = ()
    if mv.run_id:
        local = client.download_artifacts(mv.run_id, WATERMARK_ARTIFACT)
        doc_ids = tuple(json.loads(Path(local).read_text("utf-8"))["doc_ids"])
    qa = mv.tags.get(QA_PAIRS_TAG)
    mark = Watermark(doc_ids=doc_ids, qa_pairs=int(qa) if qa else None)
    if mark.data_hash != mv.tags[DATA_HASH_TAG]:
        raise InputError(
            f"{name} v{version}: {WATERMARK_ARTIFACT} does not match its {DATA_HASH_TAG} tag; "
            "the run's artifacts were changed"
        )
    return mark


def record_watermark(name: str, version: str, mark: Watermark,
                     client: MlflowClient | None = None) -> None:
    """Tag a version with a watermark and log the document ids to the active MLflow run."""
    import mlflow

    client = client or mlflow.MlflowClient()
    for key, value in mark.tags().items():
        client.set_model_version_tag(name, str(version), key, value)
    if mlflow.active_run() is not None:
        mlflow.log_dict({"doc_ids": list(mark.doc_ids), "qa_pairs": mark.qa_pairs,
                         "data_hash": mark.data_hash}, WATERMARK_ARTIFACT)


def rejected_doc_ids(output_dir: Path) -> set[str]:
    """Documents the last ingest rejected (corrupt, encrypted...): never counted as new data."""
    from geomas.ingest.run import MANIFEST_FILE

    manifest = Path(output_dir) / MANIFEST_FILE
    if not manifest.is_file():
        return set()
    records = json.loads(manifest.read_text("utf-8"))
    return {r["doc_id"] for r in records if r.get("status") == "rejected" and r.get("doc_id")}
