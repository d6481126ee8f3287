"""Entity extraction over ingested chunks (the data pipeline's `extract_entities` stage)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from geomas.config import NerInferenceConfig
from geomas.ingest.records import Chunk
from geomas.io import write_json

log = logging.getLogger(__name__)

ENTITIES_FILE = "entities.json"


class ChunkEntity(BaseModel):
    """An entity found in a chunk; offsets are relative to the chunk text."""

    label: str
    text: str
    confidence: float
    start: int
    end: int


class ChunkEntities(BaseModel):
    """Entities of one chunk, with the chunk's lineage."""

    chunk_id: str
    doc_id: str
    entities: list[ChunkEntity]


class EntitySet(BaseModel):
    """The entities artifact: per-chunk entities plus the model that produced them."""

    model_path: str | None
    min_confidence: float = Field(
        default=0.0, description="The confidence floor the entities were extracted with.")
    items: list[ChunkEntities] = Field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Entities per label."""
        return dict(Counter(e.label for item in self.items for e in item.entities))


def extract_chunk_entities(
    chunks: list[Chunk], config: NerInferenceConfig, output_dir: Path | None = None,
    *, progress: bool = False,
) -> EntitySet:
    """Run the NER model over the chunks of `config.chunk_kinds` (batched); write entities.json.

    Chunks of other kinds (tables, tables of contents, front matter by default) get no
    entities, so QA makes no pairs from them. With no model configured the result is empty and
    says so (model_path None).
    """
    skipped = Counter(getattr(c, "kind", "body") for c in chunks
                      if getattr(c, "kind", "body") not in config.chunk_kinds)
    if skipped:
        log.info("NER skips %d chunks by kind (ner.chunk_kinds=%s): %s", sum(skipped.values()),
                 list(config.chunk_kinds), dict(skipped))
    chunks = [c for c in chunks if getattr(c, "kind", "body") in config.chunk_kinds]
    if config.model_path is None:
        log.info("no NER model configured (ner.model_path); entity extraction skipped")
        result = EntitySet(model_path=None)
    else:
        from geomas.ner.inference import load_bert_ner_model

        model = load_bert_ner_model(
            config.model_path, max_length=config.max_length, stride=config.stride,
            batch_size=config.batch_size, min_confidence=config.min_confidence,
        )
        found = model.extract_batch([c.text for c in chunks], progress=progress)
        result = EntitySet(
            model_path=str(config.model_path),
            min_confidence=config.min_confidence,
            items=[
                ChunkEntities(
                    chunk_id=c.chunk_id, doc_id=c.doc_id,
                    entities=[ChunkEntity(**e.__dict__) for e in r.entities],
                )
                for c, r in zip(chunks, found, strict=True)
            ],
        )
        log.info("extracted %d entities from %d chunks",
                 sum(len(i.entities) for i in result.items), len(chunks))
    if output_dir is not None:
        write_json(Path(output_dir) / ENTITIES_FILE, result.model_dump(), indent=1, end="")
    return result
