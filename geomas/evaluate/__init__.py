"""Evaluating fine-tuned models: answer metrics, generation, forgetting probe, plots.

Heavy libraries (torch, transformers, matplotlib, sklearn, mlflow) are imported inside the
functions that need them, so importing this package stays cheap.
"""

from geomas.evaluate.classification import (
    ClassReport,
    ClassScores,
    class_report,
    confusion_matrix_plot,
)
from geomas.evaluate.forgetting import (
    ForgettingReport,
    forgetting_probe,
    general_texts,
    perplexity,
    read_texts,
)
from geomas.evaluate.generation import (
    Comparison,
    EvalReport,
    MetricDelta,
    Prediction,
    build_prompt,
    compare,
    evaluate_model,
    generate_answers,
)
from geomas.evaluate.metrics import (
    METRIC_NAMES,
    UnicodeWordTokenizer,
    bertscore,
    corpus_scores,
    exact_match,
    normalize_answer,
    rouge_l,
    token_f1,
    word_tokens,
)
from geomas.evaluate.plots import log_eval_to_mlflow, loss_curve, metric_bars

__all__ = [
    "METRIC_NAMES",
    "ClassReport",
    "ClassScores",
    "Comparison",
    "EvalReport",
    "ForgettingReport",
    "MetricDelta",
    "Prediction",
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
    "read_texts",
    "rouge_l",
    "token_f1",
    "word_tokens",
]
