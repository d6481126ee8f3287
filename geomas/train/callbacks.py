"""Hugging Face Trainer progress as `geomas.progress.Progress` instead of dicts on stdout."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from geomas.progress import Progress

log = logging.getLogger(__name__)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ProgressLogCallback(TrainerCallback):
    """Optimisation steps as a `Progress` with the latest loss and eval metric; logs at DEBUG."""

    def __init__(self, description: str, *, bar: bool = True) -> None:
        self.description, self.bar = description, bar
        self.progress: Progress | None = None
        self.latest: dict[str, str] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start the progress over ``state.max_steps`` steps."""
        if state.is_world_process_zero:
            self.progress = Progress(self.description, state.max_steps or None, unit="steps",
                                     bar=self.bar)
            self.progress.completed = state.global_step  # a resumed run starts at its checkpoint

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Advance to ``state.global_step``."""
        if self.progress is not None:
            self.progress.advance(state.global_step - self.progress.completed)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        """Log the dict at DEBUG; keep the latest loss and eval metric for the progress line."""
        if not state.is_world_process_zero or not logs:
            return
        metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in logs.items()
                            if k not in ("total_flos", "epoch", "step"))
        log.debug("%s step %d: %s", self.description, state.global_step, metrics)
        metric = args.metric_for_best_model or "loss"
        shown = ("loss", metric if metric.startswith("eval_") else f"eval_{metric}")
        self.latest.update({k: _fmt(logs[k]) for k in shown if k in logs})
        if self.progress is not None:
            self.progress.set_extra(", ".join(f"{k} {v}" for k, v in self.latest.items()))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Log the final line, noting a stop before ``max_steps``."""
        if self.progress is not None and state.max_steps and state.global_step < state.max_steps:
            self.latest["stopped early at epoch"] = _fmt(float(state.epoch or 0.0))
            self.progress.set_extra(", ".join(f"{k} {v}" for k, v in self.latest.items()))
        self.close()

    def close(self, failed: bool = False) -> None:
        """Close the progress, logging its final line (idempotent)."""
        if self.progress is not None:
            self.progress.close(failed=failed)
            self.progress = None


@contextmanager
def training_progress(trainer: Any, description: str, *, bar: bool = True) -> Iterator[None]:
    """Report ``trainer.train()`` inside the block as a `ProgressLogCallback`, not on stdout."""
    printing = (PrinterCallback, ProgressCallback)
    callbacks = trainer.callback_handler.callbacks
    callbacks[:] = [cb for cb in callbacks if not isinstance(cb, printing)]
    callback = ProgressLogCallback(description, bar=bar)
    trainer.add_callback(callback)
    failed = True
    try:
        yield
        failed = False
    finally:
        callback.close(failed=failed)
