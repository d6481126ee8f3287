"""Process-wide output set-up (`configure_output`) and loop progress (`Progress`, `track`).

Progress is a rich bar on a terminal, elsewhere (a pod, CI, a file) a log line every
``GEOMAS_PROGRESS_INTERVAL`` seconds and a final one. Nothing here writes to stdout.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import MofNCompleteColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from geomas.errors import ConfigError

T = TypeVar("T")

#: Environment variable with the seconds between two progress log lines (0: every update).
INTERVAL_ENV = "GEOMAS_PROGRESS_INTERVAL"
#: The stderr console of the log handler and the bars: log lines print above a live bar.
console = Console(stderr=True)
log = logging.getLogger("geomas.progress")

# Third-party loggers kept at WARNING (DEBUG with --verbose); transformers and datasets at
# ERROR, as they warn about heads geomas builds and resizes on purpose.
_NOISY_LOGGERS = (
    "accelerate", "alembic", "bitsandbytes", "datasets", "docling", "docling_core", "filelock",
    "great_expectations", "httpx", "huggingface_hub", "mlflow", "peft", "sentence_transformers",
    "sqlalchemy", "transformers", "trl", "urllib3",
)
#: Read by the libraries at import; set by `configure_output` when unset and not verbose.
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "MLFLOW_LOGGING_LEVEL": "WARNING",
}
# Known useless messages {logger: pattern}: off the terminal, still in the log file.
_DEMOTED = {
    # ZenML disables MLflow autologging for fastai after every step; MLflow 3 has no fastai
    "zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker":
        r"^Failed to disable MLflow autologging",
    # a fresh ZenML config has no active stack; geomas activates its own right after
    "zenml.zen_stores.base_zen_store": r"^Setting the \w+ active stack to default\.$",
    "mlflow.pyfunc": r"^Passing a Python object as `python_model`",  # on purpose
    # a failed step reaches the user once, as geomas.runner.PipelineFailed
    "zenml.orchestrators.step_launcher": r"^Failed to run step",
    "zenml.orchestrators.local.local_orchestrator": r"^(Step \S+ failed\.|Skipping step )",
    # an optional CPU kernel package; the plain CPU kernel is used instead
    "bitsandbytes.backends.cpu.ops": r"^Failed to load CPU gemm_4bit_forward",
}
_file_handler: logging.Handler | None = None


class _StderrHandler(logging.StreamHandler):
    """A stream handler on whatever ``sys.stderr`` is at each record (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _demote(record: logging.LogRecord) -> bool:
    """Logger filter: pass a record on, unless demoted (then only the log file gets it)."""
    if not re.search(_DEMOTED[record.name], record.getMessage()):
        return True
    if _file_handler is not None:
        _file_handler.handle(record)
    return False


def configure_output(verbose: bool = False, log_file: Path | None = None) -> None:
    """Set up what geomas and its libraries print, for the whole process; again replaces it.

    ``geomas`` logs go to stderr (rich on a terminal, plain timestamped lines elsewhere);
    third-party loggers stay at WARNING/ERROR; known useless messages and Python warnings stay
    off the terminal; `QUIET_ENV` defaults are set.

    Args:
        verbose: Debug logs and every third-party message and warning on the terminal.
        log_file: Also append every record that passes, demoted ones and warnings here.
    """
    global _file_handler
    _reset()
    handler: logging.Handler
    if console.is_terminal:
        handler = RichHandler(console=console, show_path=verbose, show_time=False, markup=False)
    else:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    files: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        _file_handler = logging.FileHandler(log_file, encoding="utf-8")
        _file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        logging.getLogger().addHandler(_file_handler)
        files.append(_file_handler)
    geomas_logger = logging.getLogger("geomas")
    geomas_logger.handlers[:] = [handler, *files]
    geomas_logger.setLevel(logging.DEBUG if verbose or files else logging.INFO)
    geomas_logger.propagate = False  # ZenML's root handler would print everything twice

    for name in _NOISY_LOGGERS:
        quiet = logging.ERROR if name in ("transformers", "datasets") else logging.WARNING
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else quiet)
    # transformers/datasets read their environment at import: set those imported already
    for lib, bars_env in (("transformers", "HF_HUB_DISABLE_PROGRESS_BARS"),
                          ("datasets", "HF_DATASETS_DISABLE_PROGRESS_BARS")):
        lib_logging = getattr(getattr(sys.modules.get(lib), "utils", None), "logging", None)
        if lib_logging is not None:
            lib_logging.set_verbosity(logging.DEBUG if verbose else logging.ERROR)
            if not verbose and bars_env not in os.environ:  # the user's choice wins
                lib_logging.disable_progress_bar()
    if not verbose:
        for name in _DEMOTED:
            logging.getLogger(name).addFilter(_demote)
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)

    logging.captureWarnings(True)  # "py.warnings" records; ZenML's root handler uses stdout
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers[:] = [handler, *files] if verbose else files or [logging.NullHandler()]
    warnings_logger.propagate = False


def _reset() -> None:
    """Undo what the last `configure_output` installed."""
    global _file_handler
    for name in _DEMOTED:
        logging.getLogger(name).removeFilter(_demote)
    if _file_handler is not None:
        logging.getLogger().removeHandler(_file_handler)
        _file_handler.close()
        _file_handler = None


def progress_interval() -> float:
    """Seconds between two progress log lines: ``GEOMAS_PROGRESS_INTERVAL`` or 10.

    Raises:
        ConfigError: the variable is not a number of seconds >= 0.
    """
    raw = os.environ.get(INTERVAL_ENV, "").strip() or "10"
    try:
        if (value := float(raw)) >= 0:  # also rejects nan
            return value
    except ValueError:
        pass
    raise ConfigError(f"{INTERVAL_ENV}={raw!r} is not a number of seconds >= 0, e.g. 10")


def bar_possible() -> bool:
    """Whether a live bar can be drawn: stderr is a terminal and no ZenML step is running."""
    step = getattr(sys.modules.get("zenml.steps.step_context"), "StepContext", None)
    return console.is_terminal and (step is None or step.get() is None)


class Progress:
    """Progress of one loop (a context manager; call `advance`): a bar or periodic log lines.

    Lines go to ``logger`` at INFO at most every ``interval`` seconds, and a final one on close
    (at DEBUG when the loop took under 2 s without a periodic line).

    Args:
        description: The first word of each line (``"ingest"``).
        total: How many units there are; ``None`` when unknown.
        unit: The plural unit name (``"files"``).
        bar: Draw a bar when `bar_possible`; ``False`` always logs lines.
        interval: Seconds between lines; default `progress_interval`.
        logger: Where the lines go (default ``geomas.progress``).
    """

    def __init__(self, description: str, total: int | None = None, *, unit: str = "items",
                 bar: bool = True, interval: float | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.interval = progress_interval() if interval is None else interval
        self.logger = logger or log
        self.completed = self.lines = 0
        self.started = self._last_line = time.monotonic()
        self.extra = ""
        self.use_bar = bar and bar_possible()
        self._bar = RichProgress(
            *RichProgress.get_default_columns(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True, redirect_stdout=False, redirect_stderr=False,
            disable=not self.use_bar)
        self._task = self._bar.add_task(description, total=total)
        self._bar.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        # GeneratorExit: the consumer of `track` stopped early, which is no error
        self.close(failed=exc_type is not None and not issubclass(exc_type, GeneratorExit))

    def set_extra(self, text: str) -> None:
        """Text appended to the next lines, e.g. the latest training loss."""
        self.extra = text

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units done; log a line if the interval has passed."""
        self.completed += n
        self._bar.advance(self._task, n)
        now = time.monotonic()
        if not self.use_bar and (self.total is None or self.completed < self.total) and (
                now - self._last_line >= self.interval):
            self._last_line = now
            self.lines += 1
            self.logger.info("%s", self.line())

    def line(self, final: bool = False) -> str:
        """The status line, e.g. ``ingest: 12/40 files (30%), 1.90 files/s, eta 00:15``."""
        from tqdm import tqdm

        elapsed = time.monotonic() - self.started
        rate = self.completed / elapsed if elapsed > 0 else 0.0
        done = f"{self.completed}/{self.total}" if self.total else str(self.completed)
        share = f" ({100 * self.completed / self.total:.0f}%)" if self.total else ""
        when = f"done in {tqdm.format_interval(elapsed)}" if final else (
            f"eta {tqdm.format_interval((self.total - self.completed) / rate)}"
            if self.total and rate > 0 else f"{tqdm.format_interval(elapsed)} elapsed")
        parts = [f"{self.description}: {done} {self.unit}{share}",
                 f"{tqdm.format_sizeof(rate)} {self.unit}/s", when, self.extra]
        return ", ".join(p for p in parts if p)

    def close(self, failed: bool = False) -> None:
        """Remove the bar and log the final line."""
        self._bar.stop()
        if failed:
            self.logger.info("%s (stopped by an error)", self.line())
        else:
            quiet = self.lines == 0 and time.monotonic() - self.started < 2.0
            self.logger.log(logging.DEBUG if quiet else logging.INFO, "%s", self.line(final=True))


def track(iterable: Iterable[T], description: str, *, total: int | None = None,
          unit: str = "items", bar: bool = True) -> Iterator[T]:
    """Yield the items of ``iterable`` while reporting `Progress` (total: its len if any)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(description, total, unit=unit, bar=bar) as progress:
        for item in iterable:
            yield item
            progress.advance()
