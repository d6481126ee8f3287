"""Retraining on new data volume: watermark, threshold, idempotency key, lock."""

from geomas.trigger.check import RetrainDecision, check_retrain, decide
from geomas.trigger.watermark import Watermark

__all__ = ["RetrainDecision", "Watermark", "check_retrain", "decide"]
