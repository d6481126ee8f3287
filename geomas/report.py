"""Per-stage kept/rejected counts of a data-pipeline output folder (read from its reports)."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from geomas.clean.stage import CLEAN_REPORT_FILE, CleanStageReport
from geomas.ingest.records import IngestSummary
from geomas.ingest.run import SUMMARY_FILE
from geomas.qa.records import QA_SUMMARY_FILE, QASummary
from geomas.split.core import SPLIT_REPORT_NAME, SplitReport
from geomas.validate.chunks import REJECT_RULE, REPORT_DIR
from geomas.validate.suite import SUMMARY_FILE as VALIDATION_SUMMARY_FILE
from geomas.validate.suite import ValidationSummary

M = TypeVar("M", bound=BaseModel)


class StageCounts(BaseModel):
    """One stage: records kept, records rejected, rejects per rule."""

    stage: str
    kept: int
    rejected: int
    by_rule: dict[str, int]


def _load(path: Path, model: type[M]) -> M | None:
    return model.model_validate_json(path.read_bytes()) if path.is_file() else None


def stage_counts(output_dir: Path) -> list[StageCounts]:
    """Collect the counts every stage wrote into `output_dir`, from its typed report."""
    out = Path(output_dir)
    stages: list[StageCounts] = []
    if (ingest := _load(out / SUMMARY_FILE, IngestSummary)) is not None:
        stages.append(StageCounts(stage="ingest (files)", kept=ingest.files - ingest.rejected,
                                  rejected=ingest.rejected, by_rule=ingest.rejects_by_rule))
    chunks = _load(out / REPORT_DIR / VALIDATION_SUMMARY_FILE, ValidationSummary)
    if chunks is not None and chunks.n_documents is not None:
        n = len(chunks.excluded)
        stages.append(StageCounts(stage="validate (documents)", kept=chunks.n_documents - n,
                                  rejected=n, by_rule={REJECT_RULE: n} if n else {}))
    if (qa := _load(out / QA_SUMMARY_FILE, QASummary)) is not None:
        stages.append(StageCounts(stage="qa (entities -> pairs)", kept=qa.pairs,
                                  rejected=qa.rejected, by_rule=qa.rejects_by_rule))
    if (clean := _load(out / CLEAN_REPORT_FILE, CleanStageReport)) is not None:
        stages.append(StageCounts(
            stage="clean (pairs)", kept=clean.kept, rejected=clean.removed,
            by_rule={k: v for k, v in clean.counts.items() if v and k != "normalize"},
        ))
    if (split := _load(out / SPLIT_REPORT_NAME, SplitReport)) is not None:
        stages.append(StageCounts(
            stage="split (examples)", kept=sum(split.records.values()),
            rejected=split.n_rejected,
            by_rule={"min_samples": split.n_rejected} if split.n_rejected else {},
        ))
    return stages
