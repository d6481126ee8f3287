"""Retraining on new data volume: watermark, threshold, idempotency key, lock."""

from geomas.trigger.check import RetrainDecision, check_retrain, decide
from geomas.trigger.watermark import (
    Watermark,
    champion_watermark,
    corpus_watermark,
    dataset_watermark,
)

__all__ = [
    "RetrainDecision",
    "Watermark",
    "champion_watermark",
    "check_retrain",
    "corpus_watermark",
    "dataset_watermark",
    "decide",
]
