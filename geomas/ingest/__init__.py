"""Document ingestion: docling conversion, chunking, content-hash manifest, rejects."""

from geomas.ingest.run import IngestSummary, ingest_folder, load_chunks

__all__ = ["IngestSummary", "ingest_folder", "load_chunks"]
