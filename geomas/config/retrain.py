"""Retraining on new data volume: thresholds and the schedule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from geomas.config.base import StrictModel


class RetrainConfig(StrictModel):
    """`geomas retrain check`: when new data volume starts the training pipeline.

    New volume is measured against the champion's data watermark: documents (by content hash)
    in `data.source_dir` that the champion did not see, and QA pairs in `data.output_dir` beyond
    the champion's count. The thresholds that are set are combined by `require`.
    """

    min_new_docs: int | None = Field(
        default=5, ge=1, description="New documents (absolute) that trigger; None: not used."
    )
    min_new_docs_ratio: float | None = Field(
        default=None, gt=0.0,
        description="New documents relative to the champion's (0.2 = 20 % more); None: not used.",
    )
    min_new_qa_pairs: int | None = Field(
        default=None, ge=1, description="QA pairs beyond the champion's count; None: not used."
    )
    require: Literal["any", "all"] = Field(
        default="any", description="any: one threshold met is enough; all: every set one."
    )
    train_without_champion: bool = Field(
        default=True, description="With no champion yet, the first check trains one."
    )
    run_data_pipeline: bool = Field(
        default=True,
        description="Run the data pipeline before training (ingest is cached per document, so "
        "only new documents are parsed).",
    )
    cron: str = Field(
        default="0 * * * *", pattern=r"^\S+( \S+){4}$",
        description="Schedule of the retrain_check pipeline (five cron fields).",
    )
    starting_deadline_seconds: int = Field(
        default=600, ge=10, description="A scheduled check that cannot start by then is skipped."
    )
    launch_heartbeat_seconds: float = Field(
        default=60.0, ge=1.0,
        description="How often a running launch renews its heartbeat in the retrain ledger; a "
        "check on another host counts a launch with no heartbeat for 5 intervals as gone (on "
        "the same host the launching process itself is looked up).",
    )
    stale_launch_hours: float = Field(
        default=24.0, gt=0,
        description="A ledger entry without a recorded process (written by an older geomas) "
        "still marked running after this long no longer blocks a new launch for the same data.",
    )

    @model_validator(mode="after")
    def _some_threshold(self) -> RetrainConfig:
        if (self.min_new_docs, self.min_new_docs_ratio, self.min_new_qa_pairs) == (None,) * 3:
            raise ValueError(
                "retrain: set at least one of min_new_docs, min_new_docs_ratio, "
                "min_new_qa_pairs (otherwise nothing could ever trigger a retrain)"
            )
        return self
