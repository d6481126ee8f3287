"""Step: the champion/challenger gate."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from geomas.config import PromotionConfig
from geomas.names import TRACKER_NAME
from geomas.stack import sync_zenml_stages
from geomas.tracking import log_stage_metrics
from geomas.train.flow import AdapterEval, GateResult, gate


@step(experiment_tracker=TRACKER_NAME, enable_cache=False)
def promote_model(
    version: str, evaluation: AdapterEval, registered_model_name: str, config: PromotionConfig
) -> Annotated[GateResult, "promotion"]:
    """Promote the version to champion when it beats its base and the champion safely.

    The ZenML Model Control Plane stages then follow the registry aliases (champion ->
    production, challenger -> staging, the rest archived).

    Args:
        version: The registered version.
        evaluation: Its evaluation.
        registered_model_name: e.g. geomas-sft.
        config: Metric, margin, forgetting limit.

    Returns:
        The decision.
    """
    result = gate(registered_model_name, version, evaluation, config)
    sync_zenml_stages(registered_model_name)
    log_stage_metrics("promote", {"promoted": result.promoted})
    log_metadata(metadata=result.model_dump())
    return result
