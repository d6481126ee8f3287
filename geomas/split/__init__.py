"""Grouped, stratified, seeded dataset splits with a small-class policy and class weights."""

from geomas.split.core import UNLABELLED, SplitResult, class_weights, split_examples

__all__ = ["UNLABELLED", "SplitResult", "class_weights", "split_examples"]
