"""Grouped, stratified, seeded dataset splits with a small-class policy and class weights."""

from geomas.split.core import (
    CLASS_WEIGHTS_NAME,
    SPLIT_REJECTS_NAME,
    SPLIT_REPORT_NAME,
    SPLITS,
    UNLABELLED,
    ClassSplitStats,
    ShareViolation,
    SplitReport,
    SplitResult,
    class_key,
    class_weights,
    split_examples,
)

__all__ = [
    "CLASS_WEIGHTS_NAME",
    "SPLITS",
    "SPLIT_REJECTS_NAME",
    "SPLIT_REPORT_NAME",
    "UNLABELLED",
    "ClassSplitStats",
    "ShareViolation",
    "SplitReport",
    "SplitResult",
    "class_key",
    "class_weights",
    "split_examples",
]
