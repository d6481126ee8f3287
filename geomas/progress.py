"""What geomas shows while it works: quiet third-party output and progress that survives a pod log.

Two things live here, both process-wide:

- `configure_output` — called once by the CLI: the ``geomas`` log handler on stderr, an optional
  log file, the levels and message filters that keep third-party libraries (docling, ZenML,
  MLflow, transformers, ...) off the terminal, and the environment defaults those libraries read
  when they are first imported.
- `Progress` / `track` — progress for the long loops of the library (ingest, NER, QA, generation,
  training steps). On a terminal it draws a rich bar; anywhere else (a pod, CI, a redirected
  file) it logs one line every ``GEOMAS_PROGRESS_INTERVAL`` seconds (default 10) and always a
  final one::

      ingest: 12/40 files (30%), 1.9 files/s, eta 15 s

Progress never writes to stdout: stdout carries results (``--json``).

This module is a bottom layer: it imports only the standard library, rich and geomas.errors.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console

from geomas.errors import ConfigError

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = [
    "DEFAULT_INTERVAL",
    "INTERVAL_ENV",
    "QUIET_ENV",
    "Progress",
    "bar_possible",
    "configure_output",
    "console",
    "progress_interval",
    "track",
]

T = TypeVar("T")

#: Environment variable with the seconds between two progress log lines (0: every update).
INTERVAL_ENV = "GEOMAS_PROGRESS_INTERVAL"
#: Seconds between two progress log lines when `INTERVAL_ENV` is not set.
DEFAULT_INTERVAL = 10.0
#: A loop shorter than this logs its final line at DEBUG (a one-text NER call is no news).
QUIET_SECONDS = 2.0

#: The stderr console shared by the log handler and the progress bars, so that log lines are
#: printed above a live bar instead of tearing it.
console = Console(stderr=True)

log = logging.getLogger("geomas.progress")

# Third-party loggers kept at WARNING (DEBUG with --verbose). "py.warnings" is handled apart.
_NOISY_LOGGERS = (
    "accelerate",
    "alembic",
    "bitsandbytes",
    "datasets",
    "docling",
    "docling_core",
    "filelock",
    "great_expectations",
    "httpx",
    "huggingface_hub",
    "mlflow",
    "peft",
    "sentence_transformers",
    "sqlalchemy",
    "transformers",
    "trl",
    "urllib3",
)
# These report model-loading details as warnings ("Some weights ... were not initialized", the
# LOAD REPORT table); geomas builds and resizes heads on purpose, so keep them at ERROR.
_ERROR_ONLY_LOGGERS = ("transformers", "datasets")

#: Read by the libraries when they are first imported; `configure_output` sets them (when unset
#: and not verbose). Processes that never run the CLI (pods running a ZenML step) can get them
#: from their environment.
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    # MLflow replaces its logger's handler and level when imported; this is the level it takes.
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}

# Known messages that say nothing to a geomas user: (logger name, pattern, why).
_DEMOTED: tuple[tuple[str, str, str], ...] = (
    (
        "zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker",
        r"^Failed to disable MLflow autologging",
        # After every step ZenML switches MLflow autologging off for eight frameworks, including
        # fastai, whose MLflow flavour MLflow 3 no longer ships; nothing is left on to disable.
        "fastai autologging",
    ),
    (
        "zenml.zen_stores.base_zen_store",
        r"^Setting the \w+ active stack to default\.$",
        # A fresh ZenML config has no active stack; geomas activates its own right after.
        "zenml default stack",
    ),
    (
        "mlflow.pyfunc",
        r"^Passing a Python object as `python_model`",
        # geomas logs its NER pyfunc wrapper as an object on purpose (the class is importable).
        "pyfunc cloudpickle",
    ),
    (
        "zenml.orchestrators.step_launcher",
        r"^Failed to run step",
        # A failed step reaches the user once, as geomas.runner.PipelineFailed naming the step
        # and its error; ZenML keeps the traceback in the step run (exception_info).
        "step failure, reported by the runner",
    ),
    (
        "zenml.orchestrators.local.local_orchestrator",
        r"^(Step \S+ failed\.|Skipping step )",
        # ZenML's traceback of a failed step and the downstream steps it skips (same reason).
        "step failure traceback, reported by the runner",
    ),
    (
        "bitsandbytes.backends.cpu.ops",
        r"^Failed to load CPU gemm_4bit_forward",
        # An optional CPU speed-up kernel package; the plain CPU kernel is used instead.
        "bitsandbytes CPU kernel",
    ),
)

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"


class _StderrHandler(logging.StreamHandler):
    """A stream handler on whatever ``sys.stderr`` is at each record (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _Demote(logging.Filter):
    """Keep a known, useless third-party message off the terminal; the log file still gets it."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.pattern.search(record.getMessage()):
            return True
        if _STATE.file_handler is not None and record.levelno >= _STATE.file_handler.level:
            _STATE.file_handler.handle(record)
        return False


class _State:
    """What `configure_output` installed, so that calling it again replaces it."""

    def __init__(self) -> None:
        self.file_handler: logging.Handler | None = None
        self.filters: list[tuple[logging.Logger, logging.Filter]] = []


_STATE = _State()


def configure_output(verbose: bool = False, log_file: Path | None = None) -> None:
    """Set up what geomas and its libraries print, for the whole process.

    - ``geomas`` loggers: INFO (DEBUG when verbose) to stderr, through a rich handler on a
      terminal and as plain one-line records (with a timestamp) anywhere else.
    - Third-party loggers (docling, ZenML's MLflow tracker, MLflow, transformers, datasets,
      accelerate, PEFT, TRL, bitsandbytes, ...): WARNING, transformers and datasets ERROR;
      everything with ``verbose``. Known useless messages (ZenML's "Failed to disable MLflow
      autologging for ['fastai']" after every step, its "Setting the global active stack to
      default." on a fresh project, MLflow's pyfunc pickling notice, bitsandbytes' missing
      optional CPU kernel) are kept off the terminal (the log file still gets them).
    - Python warnings (deprecations from the libraries) go to the log file, or nowhere; with
      ``verbose`` they are shown.
    - Environment defaults read by the libraries at import (``TRANSFORMERS_VERBOSITY=error``,
      ``HF_HUB_DISABLE_PROGRESS_BARS=1``, ``MLFLOW_LOGGING_LEVEL=WARNING``, ...) when not
      verbose; values already set by the user win.

    Calling it again replaces the previous set-up.

    Args:
        verbose: Debug logs and every third-party message and warning on the terminal.
        log_file: Also write every geomas log record (DEBUG), third-party records that pass the
            levels above, demoted messages and Python warnings to this file (appended).
    """
    _reset()
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.INFO
    handler: logging.Handler
    if console.is_terminal:
        handler = RichHandler(console=console, show_path=verbose, show_time=False, markup=False)
    else:
        # A pod log, CI or a redirected file: one line per record, never wrapped at 80 columns.
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(_PLAIN_FORMAT))
    handler.setLevel(level)
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(logging.Formatter(_LOG_FORMAT))
        _STATE.file_handler = file_handler
        handlers.append(file_handler)
        logging.getLogger().addHandler(file_handler)
    geomas_logger = logging.getLogger("geomas")
    geomas_logger.handlers[:] = handlers
    # DEBUG reaches the log file; the terminal handler keeps its own level.
    geomas_logger.setLevel(logging.DEBUG if verbose or log_file is not None else logging.INFO)
    # ZenML puts a console handler on the root logger; propagating would print everything twice.
    geomas_logger.propagate = False

    for name in _NOISY_LOGGERS:
        third = logging.DEBUG if verbose else logging.WARNING
        if name in _ERROR_ONLY_LOGGERS and not verbose:
            third = logging.ERROR
        logging.getLogger(name).setLevel(third)
    _quiet_imported_libraries(verbose)

    if not verbose:
        for logger_name, pattern, _why in _DEMOTED:
            target = logging.getLogger(logger_name)
            demote = _Demote(pattern)
            target.addFilter(demote)
            _STATE.filters.append((target, demote))
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)

    # Warnings become records of the "py.warnings" logger (ZenML turns this on at import too,
    # and would print them on stdout through its root handler).
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    if verbose:
        warnings_logger.handlers[:] = [handler] + handlers[1:]
    else:
        warnings_logger.handlers[:] = handlers[1:] or [logging.NullHandler()]
    warnings_logger.propagate = False


def _reset() -> None:
    """Undo what the last `configure_output` installed."""
    if _STATE.file_handler is not None:
        logging.getLogger().removeHandler(_STATE.file_handler)
        _STATE.file_handler.close()
        _STATE.file_handler = None
    for target, demote in _STATE.filters:
        target.removeFilter(demote)
    _STATE.filters = []


def _quiet_imported_libraries(verbose: bool) -> None:
    """Apply the levels to libraries imported before us, whose own set-up ran already.

    transformers and datasets keep a verbosity and a progress-bar switch of their own (read
    from the environment at import: "Loading weights" bars, SFTTrainer's "Tokenizing ..."
    dataset bars); once imported, only their API changes them.
    """
    level = logging.DEBUG if verbose else logging.ERROR
    for name, bars_env in (
        ("transformers", "HF_HUB_DISABLE_PROGRESS_BARS"),
        ("datasets", "HF_DATASETS_DISABLE_PROGRESS_BARS"),
    ):
        utils_logging = getattr(getattr(sys.modules.get(name), "utils", None), "logging", None)
        if utils_logging is None:
            continue
        utils_logging.set_verbosity(level)
        if not verbose and bars_env not in os.environ:  # the user's explicit choice wins
            utils_logging.disable_progress_bar()


def progress_interval() -> float:
    """Seconds between two progress log lines: ``GEOMAS_PROGRESS_INTERVAL`` or 10.

    Raises:
        ConfigError: the variable is not a number of seconds >= 0.
    """
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects nan
        raise ConfigError(
            f"{INTERVAL_ENV}={raw!r} is not a number of seconds >= 0; set it to e.g. 10, "
            "or unset it"
        )
    return value


def _format_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 90:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _format_rate(rate: float) -> str:
    if rate >= 100:
        return f"{rate:.0f}"
    if rate >= 10:
        return f"{rate:.1f}"
    return f"{rate:.2g}" if rate < 1 else f"{rate:.1f}"


def bar_possible() -> bool:
    """Whether a live bar can be drawn: stderr is a terminal and no ZenML step is running.

    Inside a step ZenML captures stderr writes into the step's stored logs (and prefixes them
    with the step name), so a live bar would be stored frame by frame; progress is logged as
    lines there. ZenML is only asked when something else imported it already.
    """
    if not console.is_terminal:
        return False
    step_context = getattr(sys.modules.get("zenml.steps.step_context"), "StepContext", None)
    current = getattr(step_context, "get", None)
    return not (callable(current) and current() is not None)


class _SharedBar:
    """One rich live display per process; nested progress adds a row to it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.progress: RichProgress | None = None
        self.users = 0

    def add(self, description: str, total: int | None) -> TaskID:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        with self.lock:
            if self.progress is None:
                self.progress = RichProgress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TaskProgressColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=True,
                    # stdout is for results; only this console's own output goes above the bar
                    redirect_stdout=False,
                    redirect_stderr=False,
                )
                self.progress.start()
            self.users += 1
            return self.progress.add_task(description, total=total)

    def advance(self, task: TaskID, n: float) -> None:
        if self.progress is not None:
            self.progress.advance(task, n)

    def remove(self, task: TaskID) -> None:
        with self.lock:
            if self.progress is None:
                return
            self.progress.remove_task(task)
            self.users -= 1
            if self.users <= 0:
                self.progress.stop()
                self.progress = None
                self.users = 0


_BAR = _SharedBar()


class Progress:
    """Progress of one loop: a bar on a terminal, periodic log lines elsewhere.

    Use as a context manager and call `advance` as work completes::

        with Progress("ingest", total=len(files), unit="files") as bar:
            for path in files:
                convert(path)
                bar.advance()

    Log lines go to the ``geomas.progress`` logger at INFO, at most one every
    ``GEOMAS_PROGRESS_INTERVAL`` seconds (default 10; 0 logs every update), and one final line
    on close (at DEBUG when the loop took under 2 s without a periodic line).

    Args:
        description: What is being done, the first word of each line (``"ingest"``).
        total: How many units there are; ``None`` when unknown.
        unit: The plural unit name (``"files"``).
        bar: Draw a bar when `bar_possible` (a terminal, outside a ZenML step); ``False``
            always logs lines. The ``progress: bool`` parameters of the library end up here.
        interval: Seconds between log lines; default from `progress_interval`.
        logger: Where the lines go (default ``geomas.progress``).

    Raises:
        ConfigError: ``GEOMAS_PROGRESS_INTERVAL`` is not a number of seconds.
    """

    def __init__(
        self,
        description: str,
        total: int | None = None,
        *,
        unit: str = "items",
        bar: bool = True,
        interval: float | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.interval = progress_interval() if interval is None else interval
        self.logger = logger or log
        self.use_bar = bar and bar_possible()
        self.completed = 0
        self.lines = 0
        self.started = time.monotonic()
        self._last_line = self.started
        self._task: TaskID | None = None
        self._closed = False
        self._extra = ""
        if self.use_bar:
            self._task = _BAR.add(description, total)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # GeneratorExit: the consumer of `track` stopped early, which is no error
        self.close(failed=exc_type is not None and not issubclass(exc_type, GeneratorExit))

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Units per second so far."""
        elapsed = self.elapsed
        return self.completed / elapsed if elapsed > 0 else 0.0

    def set_extra(self, text: str) -> None:
        """Text appended to the next lines, e.g. the latest training loss."""
        self._extra = text

    def advance(self, n: int = 1) -> None:
        """Record ``n`` more units done; log a line if the interval has passed."""
        self.completed += n
        if self._task is not None:
            _BAR.advance(self._task, n)
            return
        if self.total is not None and self.completed >= self.total:
            return  # the final line follows on close
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.lines += 1
            self.logger.info("%s", self.line())

    def line(self, final: bool = False) -> str:
        """The status line, e.g. ``ingest: 12/40 files (30%), 1.9 files/s, eta 15 s``."""
        rate = self.rate
        if self.total:
            share = 100 * self.completed / self.total
            text = f"{self.description}: {self.completed}/{self.total} {self.unit} ({share:.0f}%)"
        else:
            text = f"{self.description}: {self.completed} {self.unit}"
        text += f", {_format_rate(rate)} {self.unit}/s"
        if final:
            text += f", done in {_format_seconds(self.elapsed)}"
        elif self.total and rate > 0:
            text += f", eta {_format_seconds((self.total - self.completed) / rate)}"
        else:
            text += f", {_format_seconds(self.elapsed)} elapsed"
        if self._extra:
            text += f", {self._extra}"
        return text

    def close(self, failed: bool = False) -> None:
        """Remove the bar and log the final line (once)."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            _BAR.remove(self._task)
            self._task = None
        if failed:
            self.logger.info("%s (stopped by an error)", self.line())
            return
        quiet = self.lines == 0 and self.elapsed < QUIET_SECONDS
        self.logger.log(logging.DEBUG if quiet else logging.INFO, "%s", self.line(final=True))


def track(
    iterable: Iterable[T],
    description: str,
    *,
    total: int | None = None,
    unit: str = "items",
    bar: bool = True,
) -> Iterator[T]:
    """Yield the items of ``iterable`` while reporting progress (see `Progress`).

    Args:
        iterable: The items.
        description: What is being done (``"hashing"``).
        total: How many items; default ``len(iterable)`` when it has one.
        unit: The plural unit name.
        bar: Allow a bar on a terminal.

    Yields:
        The items, unchanged.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(description, total, unit=unit, bar=bar) as progress:
        for item in iterable:
            yield item
            progress.advance()
