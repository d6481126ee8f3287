"""`geomas retrain check`: start training when enough new data has arrived, once per data hash.

1. A file lock in the project data dir lets one check run at a time; a second concurrent check
   returns `busy` at once. A pause (`geomas.trigger.pause`, tags on the ledger experiment)
   makes the check return `paused` here, before anything below runs or changes (a dry run
   still decides, and says it is paused).
2. The corpus watermark (document hashes under `data.source_dir`, QA pairs in
   `data.output_dir`) is compared with the champion's watermark (registry tags).
3. Launches in the retrain ledger (MLflow) whose process is gone (a check killed mid-launch)
   are marked failed, and the MLflow runs they left RUNNING closed as FAILED.
4. The data hash is the idempotency key: a completed or running launch for the same hash
   means no new run; a failed one only with `retry_failed` (a launch that died is retried).
5. Thresholds (`retrain:` in the run config) decide; a launch runs the data pipeline (cached
   per document) and the training pipeline, renewing its heartbeat in the ledger, and the
   ledger records how it ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from geomas.config import RetrainConfig, RunConfig
from geomas.errors import GeomasError
from geomas.trigger.ledger import GoneLaunch, LaunchRuns, LedgerEntry
from geomas.trigger.pause import RetrainPause, paused_state
from geomas.trigger.watermark import (
    Watermark,
    champion_watermark,
    corpus_watermark,
    count_qa_pairs,
    rejected_doc_ids,
)

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from mlflow import MlflowClient

LOCK_NAME = "retrain.lock"
Outcome = Literal["launch", "skip", "busy", "launched", "failed", "cleared", "paused"]
#: Runs the pipelines with these tags on their runs and returns the training run's name.
Launcher = Callable[[RunConfig, Mapping[str, str]], str]


class RetrainDecision(BaseModel):
    """What a check decided, with the numbers behind it."""

    outcome: Outcome
    reason: str
    data_hash: str | None = None
    corpus_docs: int = 0
    champion_docs: int | None = None
    new_docs: int = 0
    new_docs_ratio: float | None = None
    qa_pairs: int | None = None
    champion_qa_pairs: int | None = None
    new_qa_pairs: int | None = None
    champion_version: str | None = None
    ledger_run_id: str | None = None
    training_run: str | None = None
    gone_launches: list[GoneLaunch] = []
    #: the pause in force (outcome paused): who paused the checks, when and why
    pause: RetrainPause | None = None

    def numbers(self) -> dict[str, float]:
        """The numeric fields, for the ledger run's metrics."""
        values = {"corpus_docs": self.corpus_docs, "champion_docs": self.champion_docs,
                  "new_docs": self.new_docs, "new_docs_ratio": self.new_docs_ratio,
                  "qa_pairs": self.qa_pairs, "new_qa_pairs": self.new_qa_pairs}
        return {k: float(v) for k, v in values.items() if v is not None}


def decide(current: Watermark, champion: Watermark | None, config: RetrainConfig,
           champion_version: str | None = None) -> RetrainDecision:
    """Compare the corpus with the champion's data against the thresholds (no side effects)."""
    base = RetrainDecision(outcome="skip", reason="", data_hash=current.data_hash,
                           corpus_docs=current.docs, qa_pairs=current.qa_pairs,
                           champion_version=champion_version)
    if champion is None:
        if config.train_without_champion and current.docs > 0:
            return base.model_copy(update={"outcome": "launch", "new_docs": current.docs,
                                           "reason": "no champion yet"})
        return base.model_copy(update={"reason": "no champion yet and no documents"
                                       if current.docs == 0 else
                                       "no champion yet (train_without_champion is off)"})
    new_docs = len(set(current.doc_ids) - set(champion.doc_ids))
    ratio = new_docs / champion.docs if champion.docs else None
    new_qa = (current.qa_pairs - champion.qa_pairs
              if current.qa_pairs is not None and champion.qa_pairs is not None else None)
    checks: list[tuple[str, bool]] = []
    if config.min_new_docs is not None:
        checks.append((f"new documents {new_docs} >= {config.min_new_docs}"
                       if new_docs >= config.min_new_docs else
                       f"new documents {new_docs} < {config.min_new_docs}",
                       new_docs >= config.min_new_docs))
    if config.min_new_docs_ratio is not None:
        met = ratio is None and new_docs > 0 or ratio is not None and (
            ratio >= config.min_new_docs_ratio)
        shown = "n/a" if ratio is None else f"{ratio:.1%}"
        checks.append((f"new documents {shown} {'>=' if met else '<'} "
                       f"{config.min_new_docs_ratio:.1%} of the champion's", met))
    if config.min_new_qa_pairs is not None:
        met = new_qa is not None and new_qa >= config.min_new_qa_pairs
        shown = "unknown" if new_qa is None else str(new_qa)
        checks.append((f"new QA pairs {shown} {'>=' if met else '<'} "
                       f"{config.min_new_qa_pairs}", met))
    results = [ok for _, ok in checks]
    launch = all(results) if config.require == "all" else any(results)
    return base.model_copy(update={
        "outcome": "launch" if launch else "skip",
        "reason": "; ".join(text for text, _ in checks),
        "champion_docs": champion.docs, "new_docs": new_docs, "new_docs_ratio": ratio,
        "champion_qa_pairs": champion.qa_pairs, "new_qa_pairs": new_qa,
    })


def check_retrain(
    config: RunConfig,
    *,
    launch: Launcher,
    dry_run: bool = False,
    retry_failed: bool = False,
    launch_runs: LaunchRuns | None = None,
) -> RetrainDecision:
    """Decide whether new data warrants retraining and, unless `dry_run`, start it.

    Call with the project activated (`geomas.stack.activate_project`) and MLflow pointing at
    the project's tracking store.

    Args:
        config: The run config (`data`, `training` and `retrain` sections).
        launch: Runs the pipelines with the given tags on their runs and returns the training
            run's name: in this process `geomas.runner.launch_pipelines`; inside a pipeline
            step `subprocess_launch`.
        dry_run: Decide and report only: no lock wait, no ledger change, no pipeline. While
            paused, the decision the check would make is computed and returned as `paused`.
        retry_failed: Launch data whose last launch failed again.
        launch_runs: The stack's pipeline runs of a launch (`geomas.stack.ZenMLLaunchRuns`):
            a launch whose process is gone but whose runs go on on a remote orchestrator is
            not gone, one whose training run completed is completed, and unfinished runs of
            a dead local launch are marked failed. None: the ledger and MLflow only.

    Returns:
        The decision: skip, busy, paused, launched (the training run finished) or failed,
        with the gone launches it found (and closed).

    Raises:
        GeomasError: The run config has no `training:` section.
    """
    if config.training is None:
        raise GeomasError("retrain check needs a run config with a `training:` section")
    with _locked(config) as busy:
        if busy is not None:
            return busy
        pause = _paused(config)
        if pause is not None and not dry_run:
            # nothing is hashed, recovered or launched: the ledger stays as it is
            log.info("retrain check paused: %s", pause.describe())
            return RetrainDecision(outcome="paused", reason=pause.describe(), pause=pause)
        decision = _check_locked(config, dry_run=dry_run, launch=launch,
                                 retry_failed=retry_failed, launch_runs=launch_runs)
        if pause is None:
            return decision
        return decision.model_copy(update={  # a dry run: what the check would do unpaused
            "outcome": "paused", "pause": pause,
            "reason": f"{pause.describe()} (unpaused, this check would {decision.outcome}: "
                      f"{decision.reason})"})


def _paused(config: RunConfig) -> RetrainPause | None:
    """The pause in force for the project's checks (the ledger experiment's tags), or None."""
    import mlflow

    return paused_state(mlflow.MlflowClient(), config.project.experiment_name)


def clear_launches(config: RunConfig, key: str) -> RetrainDecision:
    """Drop the ledger entries of one data hash (`geomas retrain check --clear KEY`).

    Args:
        config: The run config (its experiment names the ledger).
        key: The data hash, or a unique prefix of it (12 characters are printed).

    Raises:
        InputError: no entry or several keys match `key`.
    """
    import mlflow

    from geomas.trigger import ledger

    with _locked(config) as busy:
        if busy is not None:
            return busy
        client = mlflow.MlflowClient()
        experiment = config.project.experiment_name
        experiment_id = ledger.ledger_experiment(client, experiment, create=False)
        full = ledger.find_key(client, experiment_id, key, experiment)
        assert experiment_id is not None
        dropped = ledger.clear(client, experiment_id, full)
        return RetrainDecision(
            outcome="cleared", data_hash=full,
            reason=f"dropped {len(dropped)} ledger entr{'y' if len(dropped) == 1 else 'ies'} "
                   f"for data {full[:12]} ({', '.join(dropped)}); the next check decides anew")


@contextmanager
def _locked(config: RunConfig) -> Iterator[RetrainDecision | None]:
    """Hold the data dir's retrain lock; yields a `busy` decision when another check has it."""
    from filelock import FileLock, Timeout

    data_dir = Path(config.project.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield RetrainDecision(outcome="busy",
                              reason=f"another retrain check holds {data_dir / LOCK_NAME}")
        return
    try:
        yield None
    finally:
        lock.release()


def _recover(client: MlflowClient, config: RunConfig, experiment_id: str, dry_run: bool,
             launch_runs: LaunchRuns | None) -> list[GoneLaunch]:
    """Find the `launched` entries whose process is gone; unless dry run, close them."""
    from geomas.trigger import ledger

    found = []
    pipelines = client.get_experiment_by_name(config.project.experiment_name)
    experiment_ids = [str(pipelines.experiment_id)] if pipelines is not None else []
    for entry in ledger.entries(client, experiment_id, status="launched"):
        reason = ledger.gone_reason(entry, config.retrain.launch_heartbeat_seconds,
                                    config.retrain.stale_launch_hours * 3600)
        if reason is None:
            continue
        runs = launch_runs.runs(entry.run_id) if launch_runs is not None else []
        if any(r.in_progress and not r.local for r in runs):
            continue  # its pipelines go on without it (a remote orchestrator): still running
        status: ledger.Status = "failed"
        trained = [r for r in runs if r.pipeline == "geomas_training" and r.status == "completed"]
        if trained:
            status = "completed"
            reason += f"; its training run {trained[0].name} completed"
        gone = GoneLaunch(ledger_run_id=entry.run_id, data_hash=entry.key, reason=reason,
                          status=status)
        if not dry_run:
            closed = ledger.close_gone(client, entry, reason, experiment_ids, status)
            unfinished = [r for r in runs if r.in_progress]
            if unfinished and launch_runs is not None:
                closed += launch_runs.fail(unfinished, reason)
            gone = gone.model_copy(update={"closed_runs": closed, "marked": True})
            log.warning("retrain ledger run %s (data %s): %s; marked %s", entry.run_id,
                        entry.key[:12], reason, status)
        found.append(gone)
    return found


def _blocking(entries: list[LedgerEntry], gone: dict[str, str],
              retry_failed: bool) -> str | None:
    """Why the ledger forbids launching this data again, or None.

    The newest entry that did not die decides: completed or still running blocks; failed
    blocks unless `retry_failed`. Launches whose process died never block.

    Args:
        entries: The data's ledger entries, newest first.
        gone: Launches found gone by this check (dry run: not yet marked) -> their status.
        retry_failed: A failed launch does not block.
    """
    for entry in entries:
        if entry.run_id in gone:
            entry = entry.model_copy(update={"status": gone[entry.run_id], "failure": "gone"})
        if entry.status == "failed" and entry.failure == "gone":
            continue
        if entry.status == "completed":
            return f"was already completed (ledger run {entry.run_id})"
        if entry.status == "launched":
            return (f"was already launched and is still running (ledger run {entry.run_id}, "
                    f"{entry.where()})")
        if retry_failed:
            return None
        return (f"failed in its last launch (ledger run {entry.run_id}: "
                f"{entry.note[:200] or 'no note'}); fix the cause and run `geomas retrain check "
                f"--retry-failed`, or drop it with `--clear {entry.key[:12]}`")
    return None


def _check_locked(config: RunConfig, *, dry_run: bool, launch: Launcher, retry_failed: bool,
                  launch_runs: LaunchRuns | None) -> RetrainDecision:
    import mlflow

    from geomas.registry.promotion import CHAMPION, alias_version
    from geomas.trigger import ledger

    assert config.training is not None
    name = config.training.registered_model_name
    client = mlflow.MlflowClient()
    current = corpus_watermark(config.data.source_dir, config.data.ingest.extensions,
                               qa_pairs=count_qa_pairs(config.data.output_dir),
                               max_file_bytes=config.data.ingest.max_file_bytes)
    known_bad = rejected_doc_ids(config.data.output_dir)
    if known_bad & set(current.doc_ids):
        # a file ingest already rejected is not new data, however often it is checked
        current = Watermark(doc_ids=tuple(set(current.doc_ids) - known_bad),
                            qa_pairs=current.qa_pairs)
    champion = champion_watermark(name, client)
    decision = decide(current, champion, config.retrain,
                      champion_version=alias_version(name, CHAMPION, client))
    experiment_id = ledger.ledger_experiment(client, config.project.experiment_name,
                                             create=decision.outcome == "launch" and not dry_run)
    gone: list[GoneLaunch] = []
    if experiment_id is not None:
        gone = _recover(client, config, experiment_id, dry_run, launch_runs)
        decision = decision.model_copy(update={"gone_launches": gone})
    if decision.outcome != "launch":
        return decision
    assert experiment_id is not None or dry_run
    previous = (ledger.entries(client, experiment_id, current.data_hash)
                if experiment_id is not None else [])
    why = _blocking(previous, {g.ledger_run_id: g.status for g in gone}, retry_failed)
    if why is not None:
        return decision.model_copy(update={
            "outcome": "skip", "ledger_run_id": previous[0].run_id if previous else None,
            "reason": f"data {current.data_hash[:12]} {why}; {decision.reason}",
        })
    if dry_run:
        return decision
    assert experiment_id is not None
    run_id = ledger.open_launch(client, experiment_id, current.data_hash, decision.numbers())
    log.info("retraining: %s (data %s)", decision.reason, current.data_hash[:12])
    try:
        with ledger.heartbeat(client, run_id, config.retrain.launch_heartbeat_seconds):
            training_run = launch(config, {ledger.LAUNCH_TAG: run_id})
    except BaseException as exc:
        # interrupted (Ctrl-C, SystemExit): the data did not fail, the next check retries it
        ledger.close_launch(client, run_id, "failed", f"{type(exc).__name__}: {exc}",
                            failure="error" if isinstance(exc, Exception) else "gone")
        if isinstance(exc, GeomasError):
            return decision.model_copy(update={"outcome": "failed", "ledger_run_id": run_id,
                                               "reason": f"{decision.reason}; failed: {exc}"})
        raise
    ledger.close_launch(client, run_id, "completed", training_run)
    return decision.model_copy(update={"outcome": "launched", "ledger_run_id": run_id,
                                       "training_run": training_run})


def subprocess_launch(config_path: Path, data_dir: Path | None = None) -> Launcher:
    """A launcher that runs `geomas run data` / `geomas run training` as child processes.

    Used where the check itself runs inside a pipeline step (the scheduled `retrain_check`
    pipeline): ZenML does not start a pipeline from inside a running step, while a child
    process submits a new run to the stack as a user's command would. The children inherit
    this process's MLflow URIs (the environment) and get the launch's tags as `--tag`.
    """
    import json
    import subprocess
    import sys

    def launch(config: RunConfig, tags: Mapping[str, str]) -> str:
        extra = ["--data-dir", str(data_dir)] if data_dir is not None else []
        for key, value in sorted(tags.items()):
            extra += ["--tag", f"{key}={value}"]
        commands = (["data"] if config.retrain.run_data_pipeline else []) + ["training"]
        summary: dict[str, object] = {}
        for name in commands:
            proc = subprocess.run(
                [sys.executable, "-m", "geomas.cli", "run", name, "--json",
                 "--config", str(config_path), *extra],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-3:]
                raise GeomasError(f"`geomas run {name}` failed ({proc.returncode}): "
                                  + " | ".join(tail))
            try:
                summary = json.loads(proc.stdout)
            except json.JSONDecodeError as exc:
                raise GeomasError(f"`geomas run {name} --json` printed no JSON summary: "
                                  f"{exc}") from exc
        return str(summary["run_name"])

    return launch
