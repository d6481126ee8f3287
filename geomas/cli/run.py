"""`geomas run data|training`: launch a pipeline through geomas.runner and print its summary."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
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
    run_app,
    run_config,
)
from geomas.cli.data import print_ingest, print_validation
from geomas.errors import ConfigError

if TYPE_CHECKING:
    from geomas.config import RunConfig
    from geomas.report import StageCounts
    from geomas.runner import PipelineRunInfo

TagOpt = Annotated[list[str] | None, typer.Option(
    "--tag", metavar="KEY=VALUE", help="MLflow tag on every step's run and ZenML tag "
    "KEY=VALUE on the pipeline run (repeatable).")]


def _tags(tags: list[str] | None) -> dict[str, str]:
    parsed = {}
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--tag {item!r} is not KEY=VALUE; write e.g. --tag team=geo")
        parsed[key.strip()] = value.strip()
    return parsed


@run_app.command("data")
def run_data(config: RunConfigOpt, data_dir: DataDirOpt = None, as_json: JsonOpt = False,
             tracking_uri: TrackingUriOpt = None, tag: TagOpt = None) -> None:
    """Run the data pipeline: ingest -> validate -> NER -> QA -> clean -> split -> format."""
    from geomas.runner import run_data_pipeline

    tags = _tags(tag)
    loaded = run_config(config, data_dir, tracking_uri)
    info = _launch(lambda c: run_data_pipeline(c, tags), loaded, as_json)
    if info is None:
        return
    out.print(f"MLflow       : {info.tracking_uri} (experiment "
              f"{loaded.project.experiment_name})", markup=False)
    if info.ingest is not None:
        print_ingest(info.ingest)
    for suite in info.validation:
        print_validation(suite)
    _print_stages(info.stages)
    for name, path in info.outputs.items():
        if name.startswith(f"{loaded.data.dataset_name}_") and "lineage" not in name:
            out.print(f"dataset      : {path}", markup=False)
    out.print(f"outputs      : {info.output_dir}", markup=False)


@run_app.command("training")
def run_training(config: RunConfigOpt, data_dir: DataDirOpt = None,
                 as_json: JsonOpt = False, tracking_uri: TrackingUriOpt = None,
                 tag: TagOpt = None) -> None:
    """Run the training pipeline: train -> evaluate -> register -> promote."""
    from geomas.runner import run_training_pipeline

    tags = _tags(tag)
    info = _launch(lambda c: run_training_pipeline(c, tags),
                   run_config(config, data_dir, tracking_uri), as_json)
    if info is None:
        return
    reg = info.registered
    if reg is not None:
        out.print(f"registered   : {reg.name} v{reg.version} -> {reg.decision} ({reg.reason})",
                  markup=False)
        for alias, version in reg.aliases.items():
            out.print(f"  @{alias:<17}: v{version}", markup=False)
    out.print(f"adapter      : {Path(info.output_dir)}", markup=False)


def _launch(
    run: Callable[[RunConfig], PipelineRunInfo], config: RunConfig, as_json: bool
) -> PipelineRunInfo | None:
    """Run a pipeline; with --json print its summary (and return None), else its first line."""
    # ZenML and the steps may print on stdout; with --json stdout carries the summary only
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        info = run(config)
    if as_json:
        print_json(info)
        return None
    out.print(f"pipeline run : {info.run_name} ({info.status})", markup=False)
    return info


def _print_stages(stages: list[StageCounts]) -> None:
    from rich.table import Table

    table = Table(title="kept / rejected per stage")
    for col in ("stage", "kept", "rejected", "rejected by rule"):
        table.add_column(col)
    for st in stages:
        rules = ", ".join(f"{k} {v}" for k, v in sorted(st.by_rule.items()))
        table.add_row(st.stage, str(st.kept), str(st.rejected), rules)
    out.print(table)
