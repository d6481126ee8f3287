"""The data pipeline: documents -> chunks -> validated chunks (later issues add the rest)."""

from __future__ import annotations

from zenml import pipeline

from geomas.config import IngestConfig, ValidationConfig
from steps.ingest_documents import ingest_documents
from steps.validate_chunks import validate_chunks


@pipeline(name="geomas_data")
def data_pipeline(
    source_dir: str,
    output_dir: str,
    ingest: IngestConfig,
    validation: ValidationConfig,
) -> None:
    """Parse a document folder into chunks and validate them with Great Expectations.

    Args:
        source_dir: Folder of documents.
        output_dir: Folder for chunks.json, rejects.jsonl and the validation report.
        ingest: Ingestion settings.
        validation: Validation settings.
    """
    chunks, _summary = ingest_documents(source_dir=source_dir, output_dir=output_dir,
                                        config=ingest)
    validate_chunks(chunks=chunks, config=validation, max_tokens=ingest.max_tokens,
                    report_dir=f"{output_dir}/validation")
