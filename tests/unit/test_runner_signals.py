"""A SIGTERM stops a pipeline run even when it lands while a log line is being written.

CI caught a killed data run that went on to write its split files: ZenML's step signal handler
raised its interrupt inside `stream.write`, and the logging module caught it as a logging error.
These tests deliver the signal at exactly that point, with ZenML's real handler installed.
"""

from __future__ import annotations

import io
import logging
import os
import signal
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from zenml.enums import ExecutionMode
from zenml.exceptions import RunInterruptedException
from zenml.orchestrators.signal_handler import SignalHandler

from geomas.runner import stop_on_sigterm


class _SignalOnWrite(io.StringIO):
    """A log stream that sends this process SIGTERM in the middle of each write."""

    def write(self, s: str) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return super().write(s)


@pytest.fixture()
def step_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    # the real _handle (raise, then call the replaced handler); only the ZenML store lookup
    # that picks the exception type is left out
    monkeypatch.setattr(SignalHandler, "_finalize_shutdown",
                        lambda self: RunInterruptedException("The execution was interrupted."))
    log = logging.getLogger("geomas.tests.signal")
    handler = logging.StreamHandler(_SignalOnWrite())
    log.addHandler(handler)
    log.propagate = False
    previous = signal.getsignal(signal.SIGTERM)
    yield log
    log.removeHandler(handler)
    signal.signal(signal.SIGTERM, previous)


def _zenml_step_handler() -> SignalHandler:
    step_run = SimpleNamespace(name="extract_entities", id=None, pipeline_run_id=None)
    return SignalHandler(step_run=step_run,  # type: ignore[arg-type]
                         execution_mode=ExecutionMode.CONTINUE_ON_FAILURE)


def test_zenml_alone_loses_a_sigterm_that_lands_in_a_log_write(
    step_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cause: the interrupt is an Exception, and logging.Handler.emit swallows those."""
    with _zenml_step_handler():
        step_logger.info("chunk 12 of 40")
        went_on = True
    assert went_on
    assert "RunInterruptedException" in capsys.readouterr().err


def test_a_sigterm_in_a_log_write_ends_a_geomas_run_with_status_143(
    step_logger: logging.Logger,
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, stop_on_sigterm(), _zenml_step_handler():
        step_logger.info("chunk 12 of 40")
    assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_sigterm_between_steps_ends_a_geomas_run_with_status_143() -> None:
    with pytest.raises(SystemExit) as stopped, stop_on_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs at the next bytecode
            pass
    assert stopped.value.code == 143
