"""Step: synthesise question-answer pairs from chunks and their entities (geomas.qa)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.config import QAConfig
from geomas.ingest import ChunkSet
from geomas.names import TRACKER_NAME
from geomas.ner.extract import EntitySet
from geomas.qa import QA_PAIRS_FILE, QASet, QASummary, synthesize_qa
from geomas.tracking import log_stage_metrics


@step(experiment_tracker=TRACKER_NAME)
def generate_qa(
    chunks: ChunkSet, entities: EntitySet, config: QAConfig, output_dir: str
) -> tuple[Annotated[QASet, "qa_pairs"], Annotated[QASummary, "qa_summary"]]:
    """Template QA pairs (optionally rewritten/answered by the LLM teacher).

    Args:
        chunks: Validated chunks.
        entities: Entities per chunk from the NER step.
        config: Templates, context length, pairs per chunk, teacher.
        output_dir: Where qa_pairs.json, qa_rejects.jsonl and qa_summary.json go.

    Returns:
        The kept pairs and the stage summary.
    """
    out = Path(output_dir) / QA_PAIRS_FILE
    result = synthesize_qa(chunks.chunks, entities, config, out)
    summary = result.report
    log_stage_metrics("qa", {"kept": summary.pairs, "rejected": summary.rejected,
                             **{f"rejected.{k}": v for k, v in summary.rejects_by_rule.items()}})
    log_metadata(metadata={"kept": summary.pairs, "rejected": summary.rejected,
                           "rejects_by_rule": summary.rejects_by_rule})
    return result.kept, summary
