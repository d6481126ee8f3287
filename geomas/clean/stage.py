"""The cleaning stage of the data pipeline: QA pairs -> cleaned examples, with rejects."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from geomas.clean.clean import clean_examples
from geomas.config import CleanConfig
from geomas.formats.example import ExampleSet
from geomas.io import write_json
from geomas.qa.records import QAPair, qa_to_example
from geomas.records import StageResult, write_rejects

CLEAN_REJECTS_FILE = "clean_rejects.jsonl"
CLEAN_REPORT_FILE = "clean_report.json"


class CleanStageReport(BaseModel):
    """Kept/removed counts per rule and instruction diversity of the cleaning stage."""

    records_in: int
    kept: int
    removed: int
    counts: dict[str, int]
    diversity: dict[str, object]
    rejects_path: str
    report_path: str


def clean_qa_pairs(
    pairs: list[QAPair], config: CleanConfig, output_dir: Path
) -> StageResult[ExampleSet, CleanStageReport]:
    """Turn QA pairs into examples and clean them; write rejects and the report."""
    result = clean_examples([qa_to_example(p) for p in pairs], config)
    output_dir = Path(output_dir)
    rejects_path = output_dir / CLEAN_REJECTS_FILE
    report_path = output_dir / CLEAN_REPORT_FILE
    write_rejects(rejects_path, result.rejects)
    report = CleanStageReport(
        records_in=result.n_input,
        kept=len(result.kept),
        removed=len(result.rejects),
        counts=result.counts,
        diversity=result.diversity.model_dump(mode="json"),
        rejects_path=str(rejects_path),
        report_path=str(report_path),
    )
    write_json(report_path, report)
    return StageResult(kept=ExampleSet(examples=result.kept), rejects=result.rejects,
                       report=report)
