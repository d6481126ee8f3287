"""geomas.progress: progress lines without a terminal, and the process-wide output set-up."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from geomas import progress as progress_mod
from geomas.errors import ConfigError
from geomas.progress import INTERVAL_ENV, Progress, configure_output, track

REPO = Path(__file__).resolve().parents[2]
GEOMAS = REPO / ".venv" / "bin" / "geomas"
FASTAI_LOGGER = "zenml.integrations.mlflow.experiment_trackers.mlflow_experiment_tracker"
FASTAI_MESSAGE = "Failed to disable MLflow autologging for the following frameworks: ['fastai']."


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.INFO) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture()
def lines() -> Iterator[_Lines]:
    logger = logging.getLogger("test.progress")
    handler = _Lines()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A monotonic clock the test moves by hand."""
    now = SimpleNamespace(t=1000.0)
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: now.t)
    return now


def test_without_a_terminal_lines_come_every_interval_with_counts_and_rate(
    lines: _Lines, clock: SimpleNamespace
) -> None:
    logger = logging.getLogger("test.progress")
    with Progress("ingest", total=40, unit="files", interval=10, logger=logger) as bar:
        assert not bar.use_bar  # pytest's captured stderr is no terminal
        for _ in range(12):
            clock.t += 0.5  # 12 files in 6 s: under the interval, nothing yet
            bar.advance()
        assert lines.messages() == []
        clock.t += 4.0  # 10 s since the start
        bar.advance()
        clock.t += 1.0
        bar.advance()  # 1 s after the last line: quiet again
    messages = lines.messages()
    assert messages == [
        "ingest: 13/40 files (32%), 1.30 files/s, eta 00:20",
        "ingest: 14/40 files (35%), 1.27 files/s, done in 00:11",
    ]


def test_interval_from_the_environment_and_unknown_total(
    lines: _Lines, clock: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "0")
    logger = logging.getLogger("test.progress")
    with Progress("qa", unit="chunks", logger=logger) as bar:
        for _ in range(3):
            clock.t += 2.0
            bar.advance()
        bar.set_extra("loss 1.25")
        clock.t += 2.0
        bar.advance()
    assert lines.messages() == [
        "qa: 1 chunks, 0.50 chunks/s, 00:02 elapsed",
        "qa: 2 chunks, 0.50 chunks/s, 00:04 elapsed",
        "qa: 3 chunks, 0.50 chunks/s, 00:06 elapsed",
        "qa: 4 chunks, 0.50 chunks/s, 00:08 elapsed, loss 1.25",
        "qa: 4 chunks, 0.50 chunks/s, done in 00:08, loss 1.25",
    ]


def test_a_short_loop_logs_its_final_line_at_debug_and_an_error_says_so(
    lines: _Lines, clock: SimpleNamespace
) -> None:
    logger = logging.getLogger("test.progress")
    with Progress("ner", total=2, unit="windows", interval=10, logger=logger) as bar:
        bar.advance(2)
    assert lines.messages() == []
    assert lines.messages(logging.DEBUG) == [
        "ner: 2/2 windows (100%), 0.00 windows/s, done in 00:00"]
    with pytest.raises(RuntimeError), Progress("ner", 5, interval=10, logger=logger) as bar:
        bar.advance()
        raise RuntimeError("boom")
    assert lines.messages()[-1].endswith("(stopped by an error)")


def test_track_yields_every_item_and_reports(
    lines: _Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "0")
    monkeypatch.setattr(progress_mod, "log", logging.getLogger("test.progress"))
    assert list(track(["a", "b", "c"], "hashing", unit="files")) == ["a", "b", "c"]
    assert [m.split(",")[0] for m in lines.messages()] == [
        "hashing: 1/3 files (33%)", "hashing: 2/3 files (67%)", "hashing: 3/3 files (100%)",
    ]
    assert "done in" in lines.messages()[-1]
    # stopping early is no error
    first = next(iter(track(iter(range(5)), "hashing", total=5)))
    assert first == 0


@pytest.mark.parametrize("raw", ["soon", "-1", "nan"])
def test_a_bad_interval_names_the_variable(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, raw)
    with pytest.raises(ConfigError, match=INTERVAL_ENV):
        Progress("ingest", 3)


@pytest.mark.parametrize("last_step", [4, 3])
def test_trainer_progress_logs_instead_of_printing(
    last_step: int, lines: _Lines, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from transformers import DefaultFlowCallback, PrinterCallback, ProgressCallback

    from geomas.train import callbacks

    monkeypatch.setenv(INTERVAL_ENV, "0")
    monkeypatch.setattr(callbacks, "log", logging.getLogger("test.progress"))
    monkeypatch.setattr(progress_mod, "log", logging.getLogger("test.progress"))
    handler = SimpleNamespace(
        callbacks=[PrinterCallback(), DefaultFlowCallback(), ProgressCallback()])
    trainer = SimpleNamespace(callback_handler=handler, add_callback=handler.callbacks.append)
    args = SimpleNamespace(metric_for_best_model="eval_loss")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=4, global_step=0, epoch=1.0)
    with callbacks.training_progress(trainer, "sft"):
        assert [type(cb) for cb in handler.callbacks] == [
            DefaultFlowCallback, callbacks.ProgressLogCallback]
        cb = handler.callbacks[-1]
        cb.on_train_begin(args, state, None)
        for step in range(1, last_step + 1):
            state.global_step = step
            cb.on_step_end(args, state, None)
            cb.on_log(args, state, None, logs={"loss": 2.0 / step, "grad_norm": 1.0, "epoch": 1.0})
        cb.on_log(args, state, None, logs={"eval_loss": 0.75, "epoch": 1.0})
        cb.on_train_end(args, state, None)
    assert capsys.readouterr().out == ""
    info = lines.messages()
    assert info[0].startswith("sft: 1/4 steps (25%)")
    if last_step == 4:
        assert info[-1].startswith("sft: 4/4 steps (100%)")
        assert info[-1].endswith("loss 0.5, eval_loss 0.75")
    else:
        assert info[-1].startswith("sft: 3/4 steps (75%)")
        assert info[-1].endswith("loss 0.6667, eval_loss 0.75, stopped early at epoch 1")
    debug = [m for m in lines.messages(logging.DEBUG) if m not in info]
    assert f"sft step {last_step}: loss {2 / last_step:.4g}, grad_norm 1" in debug


@pytest.fixture()
def restore_logging() -> Iterator[None]:
    names = ["geomas", "py.warnings", FASTAI_LOGGER, "transformers", "mlflow"]
    saved = {
        n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers),
            logging.getLogger(n).propagate)
        for n in names
    }
    env = dict(os.environ)
    yield
    progress_mod._reset()
    for n, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(n)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
    os.environ.clear()
    os.environ.update(env)
    logging.captureWarnings(False)


def test_configure_output_keeps_known_noise_off_the_terminal(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    log_file = tmp_path / "logs" / "geomas.log"
    configure_output(verbose=False, log_file=log_file)
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    assert logging.getLogger("mlflow").level == logging.WARNING

    zenml_logger = logging.getLogger(FASTAI_LOGGER)
    terminal = _Lines()
    zenml_logger.addHandler(terminal)
    try:
        zenml_logger.warning(FASTAI_MESSAGE)
        zenml_logger.warning("Run with id 42 not found in MLflow tracking server.")
    finally:
        zenml_logger.removeHandler(terminal)
    assert terminal.messages() == ["Run with id 42 not found in MLflow tracking server."]
    zenml_store = logging.getLogger("zenml.zen_stores.base_zen_store")
    zenml_store.addHandler(terminal)
    try:
        zenml_store.warning("Setting the %s active stack to default.", "global")
    finally:
        zenml_store.removeHandler(terminal)
    assert len(terminal.messages()) == 1
    logging.getLogger("geomas.ingest").debug("a debug detail")
    text = log_file.read_text(encoding="utf-8")
    assert FASTAI_MESSAGE in text and "a debug detail" in text

    configure_output(verbose=True)  # verbose: nothing is hidden, and the filter is gone
    terminal = _Lines()
    zenml_logger.addHandler(terminal)
    try:
        zenml_logger.warning(FASTAI_MESSAGE)
    finally:
        zenml_logger.removeHandler(terminal)
    assert terminal.messages() == [FASTAI_MESSAGE]


def test_makedataset_without_a_terminal_logs_progress_lines(
    tmp_path: Path, sample_corpus: Path
) -> None:
    """The real CLI, its output in a file (as in a pod): progress lines with counts appear."""
    out_file = tmp_path / "output.txt"
    env = {**os.environ, INTERVAL_ENV: "0", "COLUMNS": "200"}
    with out_file.open("w") as sink:
        proc = subprocess.run(
            [str(GEOMAS) if GEOMAS.exists() else "geomas", "makedataset",
             str(sample_corpus / "docs"), str(tmp_path / "out")],
            stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, timeout=300,
            check=False,
        )
    text = out_file.read_text(encoding="utf-8")
    assert proc.returncode == 0, text
    documents = len([p for p in (sample_corpus / "docs").iterdir() if p.is_file()])
    counts = [
        (int(done), int(total))
        for done, total in re.findall(r"ingest: (\d+)/(\d+) files \(\d+%\), [\d.]+ files/s", text)
    ]
    assert len(counts) >= 3, text
    assert all(total == counts[0][1] for _, total in counts) and counts[0][1] >= 3
    assert counts[0][0] < counts[-1][0] == counts[-1][1]
    assert counts[-1][1] <= documents
    assert "done in" in text


def test_a_terminal_gets_a_bar_but_not_inside_a_zenml_step(
    lines: _Lines, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    monkeypatch.setattr(progress_mod, "console", Console(stderr=True, force_terminal=True))
    monkeypatch.delitem(sys.modules, "zenml.steps.step_context", raising=False)
    assert progress_mod.bar_possible()
    running = SimpleNamespace(StepContext=SimpleNamespace(get=lambda: object()))
    monkeypatch.setitem(sys.modules, "zenml.steps.step_context", running)
    assert not progress_mod.bar_possible()
    idle = SimpleNamespace(StepContext=SimpleNamespace(get=lambda: None))
    monkeypatch.setitem(sys.modules, "zenml.steps.step_context", idle)
    assert progress_mod.bar_possible()
    assert not Progress("x", 1, bar=False).use_bar
    logger = logging.getLogger("test.progress")
    with Progress("x", 3, interval=0, logger=logger) as bar:  # a bar: no periodic lines
        assert bar.use_bar
        bar.advance(2)
    assert lines.messages() == [] and lines.messages(logging.DEBUG)[0].startswith("x: 2/3")
    out, err = capsys.readouterr()
    assert out == "" and "x" in err
