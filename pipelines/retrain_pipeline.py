"""The retrain_check pipeline: one step that retrains when enough new data has arrived.

Scheduled with a cron `Schedule` (`geomas retrain schedule`); on the Kubernetes orchestrator
the schedule becomes a CronJob (concurrency forbidden, starting deadline from the config).
"""

from __future__ import annotations

from zenml import pipeline

from steps.retrain_check import retrain_check


@pipeline(name="geomas_retrain_check", enable_cache=False)
def retrain_check_pipeline(
    config_path: str, data_dir: str | None = None, dry_run: bool = False
) -> None:
    """Check the corpus against the champion's data watermark and launch training if due.

    Args:
        config_path: Run config path, as the step's pod or process sees it.
        data_dir: Project data dir override.
        dry_run: Decide only.
    """
    retrain_check(config_path=config_path, data_dir=data_dir, dry_run=dry_run)
