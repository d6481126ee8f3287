"""Evaluating fine-tuned models: answer metrics, generation, forgetting probe, plots.

Heavy libraries (torch, transformers, matplotlib, sklearn, mlflow) are imported inside the
functions that need them, so importing this package stays cheap.
"""

from geomas.evaluate.classification import class_report, confusion_matrix_plot
from geomas.evaluate.forgetting import ForgettingReport, forgetting_probe, general_texts, perplexity
from geomas.evaluate.generation import build_prompt, compare, evaluate_model, generate_answers
from geomas.evaluate.metrics import (
    UnicodeWordTokenizer,
    bertscore,
    corpus_scores,
    exact_match,
    normalize_answer,
    rouge_l,
    token_f1,
)
from geomas.evaluate.plots import log_eval_to_mlflow, loss_curve, metric_bars

__all__ = [
    "ForgettingReport",
    "UnicodeWordTokenizer",
    "bertscore",
    "build_prompt",
    "class_report",
    "compare",
    "confusion_matrix_plot",
    "corpus_scores",
    "evaluate_model",
    "exact_match",
    "forgetting_probe",
    "general_texts",
    "generate_answers",
    "log_eval_to_mlflow",
    "loss_curve",
    "metric_bars",
    "normalize_answer",
    "perplexity",
    "rouge_l",
    "token_f1",
]
