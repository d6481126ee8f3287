"""Step: the retrain check (geomas.trigger), for the scheduled retrain_check pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from geomas.config import RunConfig, load_config
from geomas.stack import ZenMLLaunchRuns
from geomas.trigger import RetrainDecision, check_retrain
from geomas.trigger.check import subprocess_launch


@step(enable_cache=False)
def retrain_check(
    config_path: str, data_dir: str | None = None, dry_run: bool = False
) -> Annotated[RetrainDecision, "retrain_decision"]:
    """Compare the corpus with the champion's data; start data + training runs when due.

    Args:
        config_path: Run config (data, training, retrain sections) as seen by the step.
        data_dir: Project data dir overriding the config's (lock and embedded stores).
        dry_run: Decide only.

    Returns:
        The decision with its numbers.
    """
    config = load_config(Path(config_path), RunConfig)
    if data_dir is not None:
        config = config.model_copy(
            update={"project": config.project.model_copy(update={"data_dir": Path(data_dir)})}
        )
    decision = check_retrain(
        config, dry_run=dry_run,
        launch=subprocess_launch(Path(config_path), Path(data_dir) if data_dir else None),
        launch_runs=ZenMLLaunchRuns(),
    )
    log_metadata(metadata=decision.model_dump(mode="json"))
    return decision
