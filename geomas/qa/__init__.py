"""QA synthesis: template question-answer pairs from entities, an optional LLM teacher."""

from geomas.qa.generate import (
    ChunkRecord,
    QAGenerator,
    generate_qa_pairs,
    read_chunk_records,
    synthesize_qa,
)
from geomas.qa.records import (
    QA_PAIRS_FILE,
    QAPair,
    QASet,
    QASummary,
    load_qa_pairs,
    qa_to_example,
    write_qa_pairs,
)
from geomas.qa.templates import TASK_DESCRIPTIONS, TEMPLATES

__all__ = [
    "QA_PAIRS_FILE",
    "TASK_DESCRIPTIONS",
    "TEMPLATES",
    "ChunkRecord",
    "QAGenerator",
    "QAPair",
    "QASet",
    "QASummary",
    "generate_qa_pairs",
    "load_qa_pairs",
    "qa_to_example",
    "read_chunk_records",
    "synthesize_qa",
    "write_qa_pairs",
]
