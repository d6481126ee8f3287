"""Document ingestion: docling conversion, chunking, content-hash manifest, rejects."""

from geomas.ingest.records import Chunk, ChunkSet
from geomas.ingest.run import IngestSummary, ingest_folder, load_chunk_set, load_chunks

__all__ = [
    "Chunk",
    "ChunkSet",
    "IngestSummary",
    "ingest_folder",
    "load_chunk_set",
    "load_chunks",
]
