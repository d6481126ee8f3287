"""Evaluation plots as PNG files, and logging reports and plots to the active MLflow run.

Figures are drawn on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), never
through ``pyplot``'s global state, so importing or calling this module does not change the
process-wide backend or leave figures open.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from geomas.errors import InputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)


class MetricsReport(Protocol):
    """Anything with metrics for MLflow: `EvalReport`, `Comparison`, `ForgettingReport`..."""

    def metrics(self) -> dict[str, float]:
        """Metric name -> value."""
        ...


def new_figure(width: float = 7.0, height: float = 4.5) -> Figure:
    """A matplotlib figure on its own Agg canvas (no pyplot, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, out_path: Path) -> Path:
    """Write ``figure`` as a PNG (parent folders created) and return the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, format="png")
    return out_path


def loss_curve(log_history: Sequence[Mapping[str, Any]], out_path: Path) -> Path:
    """Plot train and eval loss against the step.

    Args:
        log_history: ``Trainer.state.log_history``: dicts with ``step`` and ``loss`` (train
            logs) or ``eval_loss`` (evaluation logs); other entries are ignored.
        out_path: PNG file to write.

    Returns:
        ``out_path``.

    Raises:
        InputError: No entry has a step and a loss.
    """
    labels = {"loss": "train", "eval_loss": "eval"}
    series = {
        key: [(float(entry["step"]), float(entry[key])) for entry in log_history
              if key in entry and "step" in entry]
        for key in labels
    }
    if not any(series.values()):
        raise InputError(
            "the log history has no entry with 'step' and 'loss' or 'eval_loss'; pass "
            "trainer.state.log_history after training"
        )
    figure = new_figure()
    ax = figure.add_subplot()
    for key, points in series.items():
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None, label=labels[key])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(figure, out_path)


def metric_bars(
    base: Mapping[str, float],
    tuned: Mapping[str, float],
    out_path: Path,
    *,
    labels: tuple[str, str] = ("base", "tuned"),
    title: str = "Base vs fine-tuned",
) -> Path:
    """Grouped bar chart of the metrics the two score dicts share.

    Args:
        base: Scores of the base (or previous) model, e.g. ``EvalReport.scores``.
        tuned: Scores of the fine-tuned model.
        out_path: PNG file to write.
        labels: Legend names of the two models.
        title: Chart title.

    Returns:
        ``out_path``.

    Raises:
        InputError: The dicts share no metric.
    """
    names = [name for name in base if name in tuned]
    if not names:
        raise InputError(
            f"base ({sorted(base)}) and tuned ({sorted(tuned)}) scores share no metric"
        )
    figure = new_figure()
    ax = figure.add_subplot()
    width = 0.38
    xs = list(range(len(names)))
    for offset, label, scores in ((-width / 2, labels[0], base), (width / 2, labels[1], tuned)):
        bars = ax.bar([x + offset for x in xs], [scores[n] for n in names], width, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(xs, names)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend()
    return save_figure(figure, out_path)


def log_eval_to_mlflow(
    report: MetricsReport, plots: Sequence[Path] = (), *, stage: str = "eval"
) -> bool:
    """Log a report's metrics, its JSON and the plots to the active MLflow run, if any.

    Metrics are named ``<stage>.<metric>``; the report (a pydantic model) is stored as
    ``<stage>/report.json`` and the plots under ``<stage>/``.

    Args:
        report: `EvalReport`, `Comparison`, `ForgettingReport` or `ClassReport`.
        plots: PNG files to attach.
        stage: Prefix of metric names and artifact folder.

    Returns:
        Whether anything was logged (``False`` outside an active run).

    Raises:
        InputError: A plot file does not exist.
    """
    import mlflow

    missing = [str(p) for p in plots if not Path(p).is_file()]
    if missing:
        raise InputError(f"plot files not found: {missing}; write the plots before logging them")

    from geomas.tracking import log_artifacts, log_stage_metrics

    if mlflow.active_run() is None:
        logger.debug("no active MLflow run; %s report not logged", stage)
        return False
    log_stage_metrics(stage, report.metrics())
    dump = getattr(report, "model_dump", None)
    if callable(dump):
        mlflow.log_dict(dump(mode="json"), f"{stage}/report.json")
    log_artifacts(stage, *plots)
    return True
