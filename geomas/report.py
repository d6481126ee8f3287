"""Per-stage kept/rejected counts of a data-pipeline output folder (read from its reports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class StageCounts(BaseModel):
    """One stage: records kept, records rejected, rejects per rule."""

    stage: str
    kept: int
    rejected: int
    by_rule: dict[str, int]


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def stage_counts(output_dir: Path) -> list[StageCounts]:
    """Collect the counts every stage wrote into `output_dir`."""
    out = Path(output_dir)
    stages: list[StageCounts] = []
    if (ingest := _load(out / "ingest_summary.json")) is not None:
        stages.append(StageCounts(stage="ingest (files)",
                                  kept=ingest["files"] - ingest["rejected"],
                                  rejected=ingest["rejected"], by_rule=ingest["rejects_by_rule"]))
    if (qa := _load(out / "qa_summary.json")) is not None:
        stages.append(StageCounts(stage="qa (entities -> pairs)", kept=qa["pairs"],
                                  rejected=qa["rejected"], by_rule=qa["rejects_by_rule"]))
    if (clean := _load(out / "clean_report.json")) is not None:
        stages.append(StageCounts(
            stage="clean (pairs)", kept=clean["kept"], rejected=clean["removed"],
            by_rule={k: v for k, v in clean["counts"].items() if v and k != "normalize"},
        ))
    if (split := _load(out / "split_report.json")) is not None:
        stages.append(StageCounts(
            stage="split (examples)", kept=sum(split["records"].values()),
            rejected=split["n_rejected"], by_rule={"min_samples": split["n_rejected"]}
            if split["n_rejected"] else {},
        ))
    return stages
