"""Step: extract geological entities from chunks with the trained NER model (geomas.ner)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.config import NerInferenceConfig
from geomas.ingest import ChunkSet
from geomas.names import TRACKER_NAME
from geomas.ner.extract import EntitySet, extract_chunk_entities
from geomas.tracking import log_stage_metrics, log_stage_params


@step(experiment_tracker=TRACKER_NAME)
def extract_entities(
    chunks: ChunkSet, config: NerInferenceConfig, output_dir: str
) -> Annotated[EntitySet, "entities"]:
    """Run NER over every chunk; writes entities.json next to chunks.json.

    Args:
        chunks: Validated chunks.
        config: Model folder and batching; no model means the stage is skipped.
        output_dir: The data output folder.

    Returns:
        Entities per chunk with lineage (chunk_id, doc_id).
    """
    result = extract_chunk_entities(chunks.chunks, config, Path(output_dir))
    counts = result.counts
    log_stage_params("ner", {"model_path": result.model_path})
    log_stage_metrics("ner", {"entities": sum(counts.values()), "chunks": len(result.items),
                              **{f"label.{k}": v for k, v in counts.items()}})
    log_metadata(metadata={"entities": sum(counts.values()), "by_label": counts})
    return result
