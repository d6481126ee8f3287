"""The CronJob policy of the scheduled retrain_check pipeline on Kubernetes (no ZenML here)."""

from __future__ import annotations

from typing import Any

from geomas.config import RetrainConfig

SCHEDULE_NAME = "geomas-retrain-check"
#: CronJob history kept by the Kubernetes orchestrator for the scheduled check.
JOBS_HISTORY = 3


def cronjob_policy(config: RetrainConfig) -> dict[str, Any]:
    """KubernetesOrchestratorSettings fields for the scheduled check's CronJob.

    `Forbid`: a check still running when the next is due makes the next one skip, so two
    checks never overlap; a check that cannot start within the deadline is dropped.
    """
    return {
        "concurrency_policy": "Forbid",
        "starting_deadline_seconds": config.starting_deadline_seconds,
        "successful_jobs_history_limit": JOBS_HISTORY,
        "failed_jobs_history_limit": JOBS_HISTORY,
    }
