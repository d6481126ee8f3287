"""Step: convert a folder of documents into chunks (geomas.ingest)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.config import IngestConfig
from geomas.ingest import ChunkSet, IngestSummary, ingest_folder
from geomas.names import TRACKER_NAME
from geomas.tracking import log_artifacts, log_stage_metrics, log_stage_params


@step(experiment_tracker=TRACKER_NAME, enable_cache=False)
def ingest_documents(
    source_dir: str, output_dir: str, config: IngestConfig
) -> tuple[Annotated[ChunkSet, "chunks"], Annotated[IngestSummary, "ingest_summary"]]:
    """Parse documents with docling and chunk them; bad files go to rejects.jsonl.

    Not cached by ZenML: the folder's content can change under the same path, and ingestion
    is already incremental by content hash.

    Args:
        source_dir: Folder of PDF/DOCX/HTML/Markdown files.
        output_dir: Where chunks.json, documents.json and rejects.jsonl are written.
        config: Parser and chunking settings.

    Returns:
        The chunks with page counts, and the run summary.
    """
    result = ingest_folder(Path(source_dir), Path(output_dir), config, progress=False)
    summary = result.report
    counts = {
        k: getattr(summary, k)
        for k in ("files", "parsed", "cached", "rejected", "duplicates", "chunks", "pages_parsed",
                  "pages_ocr")
    }
    log_stage_params("ingest", {"pdf_parser": summary.pdf_parser, "max_tokens": config.max_tokens})
    log_stage_metrics("ingest", {**counts, "seconds": summary.seconds})
    log_artifacts("ingest", Path(summary.rejects_path), Path(summary.manifest_path))
    log_metadata(metadata={"pdf_parser": summary.pdf_parser, **counts})
    return result.kept, summary
