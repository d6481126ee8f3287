"""The `geomas` command line. Command names of the original tool keep working."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from geomas.errors import GeomasError

app = typer.Typer(
    name="geomas",
    help="Domain documents -> instruction datasets -> QLoRA-tuned LLM, as ZenML pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(help="Run a ZenML pipeline on the active stack.", no_args_is_help=True)
app.add_typer(run_app, name="run")

console = Console(stderr=True)
out = Console()
_STATE: dict[str, Any] = {"verbose": False}

DEFAULT_DATA_DIR = Path(".geomas")

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="GEOMAS_DATA_DIR",
        help="Project data dir for the embedded stack (default .geomas, or the config's).",
    ),
]


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    level = logging.DEBUG if verbose else logging.INFO
    handler = RichHandler(console=console, show_path=verbose, show_time=False, markup=False)
    root = logging.getLogger("geomas")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("docling", "docling_core", "great_expectations", "mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs and full tracebacks.")
    ] = False,
) -> None:
    _STATE["verbose"] = verbose
    _setup_logging(verbose)


def _project(data_dir: Path | None) -> Path:
    """Activate the project data dir before anything imports ZenML."""
    from geomas.stack import activate_project

    return activate_project(data_dir or DEFAULT_DATA_DIR)


@app.command()
def init(data_dir: DataDirOpt = None) -> None:
    """Create the embedded stack (ZenML + MLflow on SQLite) in the project data dir."""
    from geomas.stack import ensure_experiment, ensure_local_stack

    path = _project(data_dir)
    info = ensure_local_stack(path)
    ensure_experiment("geomas", path)
    out.print(f"stack [bold]{info.stack_name}[/] is active")
    out.print(f"  ZenML config : {info.zenml_config_dir}")
    out.print(f"  MLflow       : {info.tracking_uri}")
    out.print(f"  created      : {', '.join(info.created) or 'nothing (already set up)'}")


@app.command("sample-corpus")
def sample_corpus(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write docs/ and annotations/ to.")],
    docs: Annotated[int, typer.Option("--docs", min=1, help="Number of reports.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 0,
    with_bad_files: Annotated[
        bool,
        typer.Option(
            "--with-bad-files", help="Add corrupt, encrypted, empty and non-document files."
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing corpus.")]
    = False,
) -> None:
    """Generate Russian geological deposit reports (PDF + DOCX) with gold entity annotations."""
    from geomas.sample import generate_sample_corpus

    corpus = generate_sample_corpus(
        out_dir, docs=docs, seed=seed, with_bad_files=with_bad_files, overwrite=overwrite
    )
    out.print(corpus.model_dump_json(indent=1))


@app.command()
def makedataset(
    source: Annotated[Path, typer.Argument(help="Folder of PDF/DOCX/HTML/Markdown files.")],
    output: Annotated[Path, typer.Argument(help="Output folder (chunks.json and more).")],
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML with an `ingest:` section or run config.")
    ] = None,
    pdf_parser: Annotated[
        str | None, typer.Option("--pdf-parser", help="auto | native | layout")
    ] = None,
    layout_artifacts: Annotated[
        Path | None, typer.Option("--layout-artifacts", help="docling layout weights folder.")
    ] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", help="Tokens per chunk.")]
    = None,
    tokenizer: Annotated[
        Path | None, typer.Option("--tokenizer", help="Local HF tokenizer folder for counting.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Parallel processes.")] = None,
    max_failure_ratio: Annotated[
        float | None,
        typer.Option("--max-failure-ratio", help="Exit non-zero above this reject share."),
    ] = None,
) -> None:
    """Parse documents into OUTPUT/chunks.json (rejects in OUTPUT/rejects.jsonl)."""
    from geomas.config import IngestConfig
    from geomas.ingest import ingest_folder

    base: dict[str, Any] = {}
    if config is not None:
        from geomas.config import load_yaml

        raw = load_yaml(config)
        base = dict(raw.get("ingest") or raw.get("data", {}).get("ingest") or {})
    overrides = {
        "pdf_parser": pdf_parser,
        "layout_artifacts_path": layout_artifacts,
        "max_tokens": max_tokens,
        "tokenizer": tokenizer,
        "workers": workers,
        "max_failure_ratio": max_failure_ratio,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    ingest_config = _validated(IngestConfig, base, "ingest options")
    summary = ingest_folder(source, output, ingest_config, progress=sys.stderr.isatty())
    _print_ingest(summary)


def _print_ingest(summary: Any) -> None:
    out.print(f"PDF parser   : {summary.pdf_parser}")
    out.print(
        f"files {summary.files}: parsed {summary.parsed}, cached {summary.cached}, "
        f"rejected {summary.rejected}, duplicates {summary.duplicates} -> {summary.chunks} chunks"
        f" in {summary.seconds:.1f}s"
    )
    for rule, n in sorted(summary.rejects_by_rule.items()):
        out.print(f"  rejected ({rule}): {n}", markup=False)
    out.print(f"chunks       : {summary.chunks_path}")
    out.print(f"documents    : {summary.manifest_path}")
    out.print(f"rejects      : {summary.rejects_path}")


def _validated(model: Any, data: dict[str, Any], what: str) -> Any:
    from pydantic import ValidationError

    from geomas.errors import ConfigError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {what}:\n{exc}") from exc


@run_app.command("data")
def run_data(
    config: Annotated[Path, typer.Option("--config", help="Run config YAML (configs/local.yaml).")],
    data_dir: DataDirOpt = None,
) -> None:
    """Run the data pipeline (ingest -> validate) on the embedded stack."""
    from geomas.config import RunConfig, load_config

    run_config = load_config(config, RunConfig)
    if data_dir is not None:
        run_config = run_config.model_copy(
            update={"project": run_config.project.model_copy(update={"data_dir": data_dir})}
        )
    _project(run_config.project.data_dir)
    from geomas.runner import run_data_pipeline

    info = run_data_pipeline(run_config)
    summary_path = Path(info.output_dir) / "ingest_summary.json"
    out.print(f"pipeline run : {info.run_name} ({info.status})")
    experiment = run_config.project.experiment_name
    out.print(f"MLflow       : {info.tracking_uri} (experiment {experiment})")
    if summary_path.exists():
        from geomas.ingest import IngestSummary

        _print_ingest(IngestSummary.model_validate_json(summary_path.read_text("utf-8")))
    report = Path(info.output_dir) / "validation" / "validation_summary.json"
    if report.exists():
        data = json.loads(report.read_text("utf-8"))
        out.print(f"validation   : {'passed' if data['success'] else 'FAILED'} "
                  f"(report {data['report_path']})")


def main() -> None:
    """Console-script entry point: one red line on a geomas error, traceback with -v."""
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    try:
        app()
    except GeomasError as exc:
        if _STATE["verbose"]:
            console.print_exception()
        console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
