"""Grouped, stratified, seeded dataset splits with a small-class policy and class weights."""

from geomas.split.core import (
    UNLABELLED,
    SplitResult,
    class_weights,
    split_examples,
    split_with_ledger,
)
from geomas.split.ledger import LEDGER_NAME, SplitLedger, load_ledger

__all__ = ["LEDGER_NAME", "UNLABELLED", "SplitLedger", "SplitResult", "class_weights",
           "load_ledger", "split_examples", "split_with_ledger"]
