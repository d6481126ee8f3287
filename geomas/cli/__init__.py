"""The `geomas` command line: one module per command group, one error boundary (`main`).

Command names of the original tool keep working (makedataset, convert-annotations,
train-bert-ner, extract-entities, generate-qa-pairs, format-instruct-dataset, train-sft).
"""

from geomas.cli import (  # noqa: F401 - commands
    data,
    panel,
    registry,
    retrain,
    run,
    stack,
    training,
)
from geomas.cli.app import app, main

__all__ = ["app", "main"]
