"""`geomas retrain`: check for new data volume and retrain once per data hash; watch locally.

On a cluster the same check runs from the `geomas-retrain` CronJob (k8s/, charts/geomas) or the
scheduled `retrain_check` pipeline. `pause` / `resume` stop and restart all of them at once
(a flag in the MLflow ledger every check reads).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from geomas.cli.app import (
    DataDirOpt,
    JsonOpt,
    RunConfigOpt,
    TrackingUriOpt,
    out,
    print_json,
    retrain_app,
    run_config,
)

if TYPE_CHECKING:
    from geomas.config import RunConfig
    from geomas.trigger import RetrainDecision


def _print(d: RetrainDecision, as_json: bool) -> None:
    if as_json:
        print_json(d)
        return
    out.print(f"decision     : {d.outcome} ({d.reason})", markup=False, highlight=False)
    if d.data_hash:
        out.print(f"data hash    : {d.data_hash}", highlight=False)
    champion = f"v{d.champion_version}" if d.champion_version else "none"
    out.print(f"documents    : {d.corpus_docs} in the corpus, {d.new_docs} new vs champion "
              f"{champion} ({d.champion_docs if d.champion_docs is not None else '-'})"
              + (f", {d.new_docs_ratio:.1%}" if d.new_docs_ratio is not None else ""),
              highlight=False)
    out.print(f"QA pairs     : {d.qa_pairs if d.qa_pairs is not None else 'unknown'} now, "
              f"champion {d.champion_qa_pairs if d.champion_qa_pairs is not None else '-'}",
              highlight=False)
    if d.training_run:
        out.print(f"training run : {d.training_run}", highlight=False)
    if d.ledger_run_id:
        out.print(f"ledger run   : {d.ledger_run_id}", highlight=False)
    for g in d.gone_launches:
        done = (f"marked {g.status}" + (f", closed {', '.join(g.closed_runs)}"
                                        if g.closed_runs else "")) if g.marked else "dry run"
        out.print(f"gone launch  : ledger run {g.ledger_run_id} (data {g.data_hash[:12]}): "
                  f"{g.reason}; {done}", markup=False, highlight=False)


def _on_stack(config: Path, data_dir: Path | None, tracking_uri: str | None) -> RunConfig:
    """Load the run config and point MLflow/ZenML at its stack (where the ledger is)."""
    from geomas.runner import prepare_stack

    loaded = run_config(config, data_dir, tracking_uri)
    # ZenML prints progress on stdout; keep stdout for the result (--json)
    with contextlib.redirect_stdout(sys.stderr):
        prepare_stack(loaded)
    return loaded


def _check(config: Path, data_dir: Path | None, dry_run: bool, tracking_uri: str | None = None,
           retry_failed: bool = False) -> RetrainDecision:
    from geomas.runner import launch_pipelines
    from geomas.stack import ZenMLLaunchRuns
    from geomas.trigger import check_retrain

    loaded = _on_stack(config, data_dir, tracking_uri)
    # the pipelines print progress on stdout; keep stdout for the decision (--json)
    with contextlib.redirect_stdout(sys.stderr):
        return check_retrain(loaded, launch=launch_pipelines, dry_run=dry_run,
                             retry_failed=retry_failed, launch_runs=ZenMLLaunchRuns())


@retrain_app.command("check")
def check_cmd(
    config: RunConfigOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the decision only.")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Launch data whose last launch failed again (a failed launch "
        "is otherwise not repeated; one whose process died is).")] = False,
    clear: Annotated[str | None, typer.Option(
        "--clear", metavar="KEY", help="Drop the retrain ledger entries of this data hash (or "
        "a unique prefix: the 12 characters printed) and stop; the next check decides "
        "anew.")] = None,
    as_json: JsonOpt = False,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Compare the corpus with the champion's data watermark; retrain when over threshold."""
    if clear is not None:
        decision = _clear(config, data_dir, tracking_uri, clear)
    else:
        decision = _check(config, data_dir, dry_run, tracking_uri, retry_failed)
    _print(decision, as_json)
    if decision.outcome == "failed":
        raise typer.Exit(1)


def _clear(config: Path, data_dir: Path | None, tracking_uri: str | None,
           key: str) -> RetrainDecision:
    from geomas.trigger.check import clear_launches

    loaded = _on_stack(config, data_dir, tracking_uri)  # the ledger is on the stack's MLflow
    with contextlib.redirect_stdout(sys.stderr):
        return clear_launches(loaded, key)


ActorOpt = Annotated[str | None, typer.Option(
    "--actor", help="Who does it (default: GEOMAS_ACTOR, else the OS user); recorded with the "
    "pause and shown by every paused check.")]


@retrain_app.command("pause")
def pause_cmd(
    config: RunConfigOpt,
    reason: Annotated[str, typer.Option(
        "--reason", help="Why (required): every paused check prints it, and the panel shows it.")],
    actor: ActorOpt = None,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Pause every retrain check of the project (CronJob, ZenML schedule, cron, panel runs)."""
    import mlflow

    from geomas.registry.audit import current_actor
    from geomas.trigger.pause import RESUME_HINT, pause

    loaded = _on_stack(config, data_dir, tracking_uri)
    state = pause(mlflow.MlflowClient(), loaded.project.experiment_name, current_actor(actor),
                  reason)
    out.print(f"paused       : retrain checks return `paused` until resumed (by {state.by} at "
              f"{state.at}: {state.reason}); {RESUME_HINT}", markup=False, highlight=False)


@retrain_app.command("resume")
def resume_cmd(
    config: RunConfigOpt,
    actor: ActorOpt = None,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Lift a pause: the next retrain check decides from the thresholds again."""
    import mlflow

    from geomas.registry.audit import current_actor
    from geomas.trigger.pause import resume

    loaded = _on_stack(config, data_dir, tracking_uri)
    lifted = resume(mlflow.MlflowClient(), loaded.project.experiment_name, current_actor(actor))
    if lifted is None:
        out.print("resumed      : retrain checks were not paused; nothing changed",
                  highlight=False)
        return
    out.print(f"resumed      : retrain checks decide from the thresholds again (paused by "
              f"{lifted.by} at {lifted.at}: {lifted.reason})", markup=False, highlight=False)


@retrain_app.command("watch")
def watch_cmd(
    config: RunConfigOpt,
    interval: Annotated[float, typer.Option("--interval", min=1.0,
                                            help="Seconds between checks.")] = 3600.0,
    max_checks: Annotated[int | None, typer.Option("--max-checks", min=1,
                                                   help="Stop after N checks.")] = None,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Run `retrain check` every --interval seconds on this machine (Ctrl-C stops)."""
    done = 0
    try:
        while max_checks is None or done < max_checks:
            _print(_check(config, data_dir, dry_run=False, tracking_uri=tracking_uri),
                   as_json=False)
            done += 1
            if max_checks is None or done < max_checks:
                time.sleep(interval)
    except KeyboardInterrupt:
        out.print("stopped")


@retrain_app.command("schedule")
def schedule_cmd(
    config: RunConfigOpt,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Register the retrain_check pipeline on `retrain.cron` (a CronJob on Kubernetes)."""
    from geomas.runner import run_retrain_check_pipeline

    loaded = run_config(config, data_dir, tracking_uri)
    run_retrain_check_pipeline(loaded, config, schedule=True)
    out.print(f"scheduled    : geomas_retrain_check at '{loaded.retrain.cron}' on stack "
              f"{loaded.project.stack} (concurrency Forbid, starting deadline "
              f"{loaded.retrain.starting_deadline_seconds} s)", highlight=False)


@retrain_app.command("run-pipeline")
def run_pipeline_cmd(
    config: RunConfigOpt,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide only.")] = False,
    data_dir: DataDirOpt = None,
    tracking_uri: TrackingUriOpt = None,
) -> None:
    """Run the retrain_check pipeline once now (what the schedule runs), and print its decision."""
    from geomas.runner import run_retrain_check_pipeline

    loaded = run_config(config, data_dir, tracking_uri)
    with contextlib.redirect_stdout(sys.stderr):
        info = run_retrain_check_pipeline(loaded, config, dry_run=dry_run)
    assert info is not None
    from zenml.client import Client

    decision = Client().get_pipeline_run(info.run_id).steps["retrain_check"].outputs[
        "retrain_decision"][0].load()
    out.print(f"pipeline run : {info.run_name}", highlight=False)
    _print(decision, as_json=False)
