"""Classification scores (per class, macro and weighted F1) and a confusion-matrix plot.

For tasks whose answers are class labels (the ``classification`` dataset format, entity types).
All numbers come from scikit-learn; a class with no predictions scores 0 precision instead of
raising sklearn's ``UndefinedMetricWarning``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict

from geomas.errors import InputError
from geomas.evaluate.metrics import check_pairs
from geomas.evaluate.plots import new_figure, save_figure


class ClassScores(BaseModel):
    """Precision, recall, F1 and support of one class."""

    model_config = ConfigDict(extra="forbid")

    precision: float
    recall: float
    f1: float
    support: int


class ClassReport(BaseModel):
    """Per-class and averaged scores of a classifier, with the confusion matrix."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    per_class: dict[str, ClassScores]
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_f1: float
    support: int
    confusion: list[list[int]]

    def metrics(self) -> dict[str, float]:
        """Accuracy and the averaged scores, for MLflow."""
        averaged = {"accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1"}
        return self.model_dump(include=averaged)


def _labels(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None
) -> list[str]:
    check_pairs(y_pred, y_true, "true labels")
    if labels is None:
        return sorted(set(y_true) | set(y_pred))
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise InputError(f"labels has duplicates: {labels}")
    unknown = sorted((set(y_true) | set(y_pred)) - set(labels))
    if unknown:
        raise InputError(
            f"labels {unknown} occur in y_true/y_pred but not in labels={labels}; add them to "
            "labels (or pass labels=None to use every label that occurs)"
        )
    return labels


def class_report(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None
) -> ClassReport:
    """Per-class precision/recall/F1 and macro/weighted averages (sklearn).

    Args:
        y_true: True labels.
        y_pred: Predicted labels, in the same order.
        labels: Every class, in report order (classes with no examples included, scoring 0);
            ``None``: the sorted labels that occur in either list.

    Returns:
        The report; a class with no predictions (or no examples) scores 0 where undefined.

    Raises:
        InputError: The lists differ in length or are empty, or a label is missing from
            ``labels``.
    """
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    names = _labels(y_true, y_pred, labels)
    raw = cast(
        dict[str, Any],
        classification_report(
            list(y_true), list(y_pred), labels=names, output_dict=True, zero_division=0
        ),
    )
    per_class = {
        name: ClassScores(
            precision=float(raw[name]["precision"]),
            recall=float(raw[name]["recall"]),
            f1=float(raw[name]["f1-score"]),
            support=int(raw[name]["support"]),
        )
        for name in names
    }
    matrix = confusion_matrix(list(y_true), list(y_pred), labels=names)
    return ClassReport(
        labels=names,
        per_class=per_class,
        # With labels given, sklearn reports "micro avg" instead of accuracy; compute it directly.
        accuracy=float(accuracy_score(list(y_true), list(y_pred))),
        macro_precision=float(raw["macro avg"]["precision"]),
        macro_recall=float(raw["macro avg"]["recall"]),
        macro_f1=float(raw["macro avg"]["f1-score"]),
        weighted_f1=float(raw["weighted avg"]["f1-score"]),
        support=len(y_true),
        confusion=matrix.tolist(),
    )


def confusion_matrix_plot(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    out_path: Path,
    labels: Sequence[str] | None = None,
    *,
    normalize: Literal["true", "pred", "all"] | None = None,
    title: str = "Confusion matrix",
) -> Path:
    """Write a confusion-matrix PNG (sklearn ``ConfusionMatrixDisplay``).

    Args:
        y_true: True labels.
        y_pred: Predicted labels, in the same order.
        out_path: PNG file to write.
        labels: Class order on both axes; ``None``: the sorted labels that occur.
        normalize: ``None`` for counts, or sklearn's ``true``/``pred``/``all`` shares.
        title: Chart title.

    Returns:
        ``out_path``.

    Raises:
        InputError: As `class_report`.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    names = _labels(y_true, y_pred, labels)
    size = max(4.5, 0.6 * len(names) + 2.5)
    figure = new_figure(size, size)
    ax = figure.add_subplot()
    ConfusionMatrixDisplay.from_predictions(
        list(y_true),
        list(y_pred),
        labels=names,
        normalize=normalize,
        ax=ax,
        colorbar=False,
        xticks_rotation="vertical" if len(names) > 6 else "horizontal",
        values_format=".2f" if normalize else "d",
    )
    ax.set_title(title)
    return save_figure(figure, out_path)
