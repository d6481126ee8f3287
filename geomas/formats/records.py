"""Records shared by the dataset stages: a rejected record with its rule and reason."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RejectStage = Literal["format", "split"]


class RecordReject(BaseModel):
    """One record left out of a dataset, with the machine-readable rule and a readable reason."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(description="The record's id, when it has one.")
    stage: RejectStage
    rule: str = Field(description="Short cause, e.g. min_samples or qa_invalid.")
    reason: str
    label: str | None = None
    group: str | None = None


def write_rejects(path: Path, rejects: Iterable[RecordReject]) -> Path:
    """Write rejects as JSON Lines (an empty file when there are none) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for rej in rejects:
            fh.write(json.dumps(rej.model_dump(), ensure_ascii=False) + "\n")
    return path
