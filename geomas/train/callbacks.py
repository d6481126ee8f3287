"""Trainer progress through geomas instead of dicts printed on stdout.

The Hugging Face `Trainer` reports with `ProgressCallback` (a tqdm bar that also writes every log
dict, ``{'loss': ..., 'grad_norm': ...}``) or, with ``disable_tqdm``, `PrinterCallback`
(``print(logs)`` on stdout). `training_progress` swaps both for `ProgressLogCallback`: a
`geomas.progress.Progress` over the optimisation steps (a bar on a terminal, periodic lines in a
pod), the latest loss and evaluation metric on that line, and every log dict at DEBUG on the
``geomas`` logger. Metrics still reach MLflow and ``trainer.state.log_history`` unchanged.

Imported only where transformers is imported anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from transformers import PrinterCallback, ProgressCallback, TrainerCallback

from geomas.progress import Progress

log = logging.getLogger(__name__)

#: Log keys that are not metrics.
_SKIP_KEYS = frozenset({"total_flos", "epoch", "step"})


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class ProgressLogCallback(TrainerCallback):
    """Steps as geomas progress; log dicts as DEBUG lines; nothing on stdout.

    Args:
        description: The first word of the progress lines (``"sft"``, ``"ner-train"``).
        bar: Allow a bar on a terminal (see `geomas.progress.Progress`).
    """

    def __init__(self, description: str, *, bar: bool = True) -> None:
        self.description = description
        self.bar = bar
        self.progress: Progress | None = None
        self._step = 0
        self._latest: dict[str, str] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Start the progress over ``state.max_steps`` optimisation steps."""
        if state.is_world_process_zero:
            self.close()
            self.progress = Progress(
                self.description, total=state.max_steps or None, unit="steps", bar=self.bar
            )
            # a resumed run starts at its checkpoint's step
            self._step = state.global_step
            self.progress.completed = state.global_step
            self._latest = {}

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Advance by the steps done since the last call."""
        if self.progress is not None:
            self.progress.advance(state.global_step - self._step)
            self._step = state.global_step

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Log the dict at DEBUG; show the latest loss and eval metric on the progress line."""
        if not state.is_world_process_zero or not logs:
            return
        shown = {k: v for k, v in logs.items() if k not in _SKIP_KEYS}
        log.debug(
            "%s step %d: %s",
            self.description,
            state.global_step,
            ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()),
        )
        if self.progress is None:
            return
        keys = ["loss"]
        if args.metric_for_best_model:
            name = args.metric_for_best_model
            keys.append(name if name.startswith("eval_") else f"eval_{name}")
        self._latest.update({k: _fmt(logs[k]) for k in keys if k in logs})
        self.progress.set_extra(", ".join(f"{k} {v}" for k, v in self._latest.items()))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Log the final line (saying so when training stopped before ``max_steps``)."""
        if self.progress is not None and state.max_steps and state.global_step < state.max_steps:
            self._latest["stopped early at epoch"] = _fmt(float(state.epoch or 0.0))
            self.progress.set_extra(", ".join(f"{k} {v}" for k, v in self._latest.items()))
        self.close()

    def close(self, failed: bool = False) -> None:
        """Close the progress (idempotent)."""
        if self.progress is not None:
            self.progress.close(failed=failed)
            self.progress = None


def quiet_trainer(trainer: Any, description: str, *, bar: bool = True) -> ProgressLogCallback:
    """Replace the trainer's printing callbacks by a `ProgressLogCallback`; return it."""
    for printing in (PrinterCallback, ProgressCallback):
        while any(isinstance(cb, printing) for cb in trainer.callback_handler.callbacks):
            trainer.remove_callback(printing)
    callback = ProgressLogCallback(description, bar=bar)
    trainer.add_callback(callback)
    return callback


@contextmanager
def training_progress(trainer: Any, description: str, *, bar: bool = True) -> Iterator[None]:
    """Report ``trainer.train()`` run inside the block as geomas progress (see module doc).

    The bar is removed even when training raises.
    """
    callback = quiet_trainer(trainer, description, bar=bar)
    failed = True
    try:
        yield
        failed = False
    finally:
        callback.close(failed=failed)
