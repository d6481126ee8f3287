"""`geomas retrain check`: start training when enough new data has arrived, once per data hash.

1. A file lock in the project data dir lets one check run at a time; a second concurrent check
   returns `busy` at once.
2. The corpus watermark (document hashes under `data.source_dir`, QA pairs in
   `data.output_dir`) is compared with the champion's watermark (registry tags).
3. The data hash is the idempotency key: a completed or running launch for the same hash in the
   retrain ledger (MLflow) means no new run.
4. Thresholds (`retrain:` in the run config) decide; a launch runs the data pipeline (cached
   per document) and the training pipeline, and the ledger records how it ended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from geomas.config import RetrainConfig, RunConfig
from geomas.errors import GeomasError
from geomas.trigger.watermark import (
    Watermark,
    champion_watermark,
    corpus_watermark,
    count_qa_pairs,
    rejected_doc_ids,
)

log = logging.getLogger(__name__)

LOCK_NAME = "retrain.lock"
Outcome = Literal["launch", "skip", "busy", "launched", "failed"]


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
    launch: Callable[[RunConfig], str],
    dry_run: bool = False,
) -> RetrainDecision:
    """Decide whether new data warrants retraining and, unless `dry_run`, start it.

    Call with the project activated (`geomas.stack.activate_project`) and MLflow pointing at
    the project's tracking store.

    Args:
        config: The run config (`data`, `training` and `retrain` sections).
        dry_run: Decide and report only: no lock wait, no ledger entry, no pipeline.
        launch: Runs the pipelines and returns the training run's name: in this process
            `geomas.runner.launch_pipelines`; inside a pipeline step `subprocess_launch`.

    Returns:
        The decision: skip, busy, launched (the training run finished) or failed.

    Raises:
        GeomasError: The run config has no `training:` section.
    """
    from filelock import FileLock, Timeout

    if config.training is None:
        raise GeomasError("retrain check needs a run config with a `training:` section")
    data_dir = Path(config.project.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(data_dir / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return RetrainDecision(outcome="busy",
                               reason=f"another retrain check holds {data_dir / LOCK_NAME}")
    try:
        return _check_locked(config, dry_run=dry_run, launch=launch)
    finally:
        lock.release()


def _check_locked(config: RunConfig, *, dry_run: bool,
                  launch: Callable[[RunConfig], str]) -> RetrainDecision:
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
    if decision.outcome != "launch":
        return decision
    experiment_id = ledger.ledger_experiment(client, config.project.experiment_name)
    blocking = ledger.blocking_launch(client, experiment_id, current.data_hash,
                                      config.retrain.stale_launch_hours * 3600)
    if blocking is not None:
        run_id, status = blocking
        return decision.model_copy(update={
            "outcome": "skip", "ledger_run_id": run_id,
            "reason": f"data {current.data_hash[:12]} was already {status} (ledger run "
                      f"{run_id}); {decision.reason}",
        })
    if dry_run:
        return decision
    run_id = ledger.open_launch(client, experiment_id, current.data_hash, decision.numbers())
    log.info("retraining: %s (data %s)", decision.reason, current.data_hash[:12])
    try:
        training_run = launch(config)
    except BaseException as exc:
        ledger.close_launch(client, run_id, "failed", f"{type(exc).__name__}: {exc}")
        if isinstance(exc, GeomasError):
            return decision.model_copy(update={"outcome": "failed", "ledger_run_id": run_id,
                                               "reason": f"{decision.reason}; failed: {exc}"})
        raise
    ledger.close_launch(client, run_id, "completed", training_run)
    return decision.model_copy(update={"outcome": "launched", "ledger_run_id": run_id,
                                       "training_run": training_run})



def subprocess_launch(
    config_path: Path, data_dir: Path | None = None
) -> Callable[[RunConfig], str]:
    """A launcher that runs `geomas run data` / `geomas run training` as child processes.

    Used where the check itself runs inside a pipeline step (the scheduled `retrain_check`
    pipeline): ZenML does not start a pipeline from inside a running step, while a child
    process submits a new run to the stack as a user's command would.
    """
    import json
    import subprocess
    import sys

    def launch(config: RunConfig) -> str:
        extra = ["--data-dir", str(data_dir)] if data_dir is not None else []
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
