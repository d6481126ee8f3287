"""Document ingestion: docling conversion, chunking, content-hash manifest, rejects."""

from geomas.ingest.records import ChunkSet, IngestSummary
from geomas.ingest.run import ingest_folder, load_chunks

__all__ = ["ChunkSet", "IngestSummary", "ingest_folder", "load_chunks"]
