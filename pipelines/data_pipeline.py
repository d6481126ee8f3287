"""The data pipeline: documents -> chunks -> validated chunks -> entities (more to come)."""

from __future__ import annotations

from zenml import pipeline

from geomas.config import IngestConfig, NerInferenceConfig, ValidationConfig
from steps.extract_entities import extract_entities
from steps.ingest_documents import ingest_documents
from steps.validate_chunks import validate_chunks


@pipeline(name="geomas_data")
def data_pipeline(
    source_dir: str,
    output_dir: str,
    ingest: IngestConfig,
    validation: ValidationConfig,
    ner: NerInferenceConfig,
) -> None:
    """Parse documents into chunks, validate them, and extract entities.

    Args:
        source_dir: Folder of documents.
        output_dir: Folder for chunks.json, rejects.jsonl and the validation report.
        ingest: Ingestion settings.
        validation: Validation settings.
        ner: NER model for entity extraction (skipped when no model is configured).
    """
    chunks, _summary = ingest_documents(source_dir=source_dir, output_dir=output_dir,
                                        config=ingest)
    _validation, _report = validate_chunks(
        chunks=chunks, config=validation, max_tokens=ingest.max_tokens,
        report_dir=f"{output_dir}/validation",
    )
    extract_entities(chunks=chunks, config=ner, output_dir=output_dir,
                     after=["validate_chunks"])
