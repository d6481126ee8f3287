"""Run a Great Expectations suite on a DataFrame, keep an HTML report and apply the policy.

This is the shared runner behind every geomas validation (chunks now; QA pairs and formatted
records later): a caller builds a DataFrame with one row per record and the columns its
expectations need, plus a list of GX expectation objects, and `run_suite` does the rest.

GX runs in an ephemeral (in-memory) data context whose only file output is a Data Docs site
under ``report_dir``, so a run never creates a ``gx/`` project folder in the working directory
and never writes anything outside ``report_dir``. Analytics are switched off in the context
config, which GX 1.x honours like ``GX_ANALYTICS_ENABLED=false`` (either one set to false
disables them; GX 1.24 ships no analytics client at all), so a run makes no network calls.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse
from urllib.request import url2pathname

from pydantic import BaseModel, ConfigDict, Field

from geomas.errors import ValidationFailed
from geomas.io import write_json

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.checkpoint.checkpoint import CheckpointResult
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations.expectation import Expectation

logger = logging.getLogger(__name__)

Policy = Literal["fail", "warn"]

SUMMARY_FILE = "validation_summary.json"
NO_RECORDS_PAGE = "no_records.html"
DOCS_DIR = "data_docs"
DOCS_SITE = "geomas"
N_EXAMPLES = 5
# GX keeps this many offending rows per expectation for Data Docs; the summary shows fewer.
_PARTIAL_UNEXPECTED = 20


class ExpectationOutcome(BaseModel):
    """The result of one expectation, small enough to log and keep as JSON."""

    model_config = ConfigDict(extra="forbid")

    expectation: str = Field(
        description="GX expectation type, e.g. expect_column_values_to_be_unique."
    )
    column: str | None = Field(description="Checked column; 'a,b' for column-pair expectations.")
    success: bool
    unexpected_count: int = Field(default=0, ge=0)
    examples: list[str] = Field(
        default_factory=list,
        description="Ids of a few offending records (never their full text).",
    )
    error: str | None = Field(default=None, description="Exception GX raised while checking.")

    def describe(self) -> str:
        """One line for logs and error messages."""
        where = f"({self.column})" if self.column else ""
        if self.error:
            return f"{self.expectation}{where}: error: {self.error}"
        text = f"{self.expectation}{where}: {self.unexpected_count} unexpected"
        if self.examples:
            text += f", e.g. {', '.join(self.examples)}"
        return text


class ValidationSummary(BaseModel):
    """What a validation run found; written as ``validation_summary.json`` in the report dir."""

    model_config = ConfigDict(extra="forbid")

    suite: str
    success: bool
    policy: Policy
    n_records: int = Field(ge=0, description="Rows validated (chunks for the chunk suite).")
    results: list[ExpectationOutcome] = Field(default_factory=list)
    report_path: Path = Field(
        description=(
            "HTML report of this run: the Data Docs validation page, or a short page saying "
            "that there were no records."
        ),
    )

    @property
    def n_chunks(self) -> int:
        """Alias of `n_records` for the chunk suite."""
        return self.n_records

    @property
    def failed(self) -> list[ExpectationOutcome]:
        """The expectations that did not pass."""
        return [r for r in self.results if not r.success]


def run_suite(
    frame: pd.DataFrame,
    expectations: Sequence[Expectation],
    *,
    suite_name: str,
    report_dir: Path,
    policy: Policy,
    id_column: str,
    record_kind: str = "records",
) -> ValidationSummary:
    """Validate ``frame`` with ``expectations`` and apply ``policy``.

    Writes a Data Docs site to ``report_dir/data_docs`` (``index.html``, the validation page and
    ``static/``) and ``report_dir/validation_summary.json``, both before the policy is applied,
    so a failed run still leaves its report. An empty ``frame`` runs no expectation (GX would
    pass them all); it gets ``report_dir/no_records.html`` instead of a Data Docs page.

    Args:
        frame: One row per record, holding the columns the expectations check and
            ``id_column``. Keep long text out of it: GX copies offending values into the HTML.
        expectations: Fresh GX expectation objects (they are bound to a new suite).
        suite_name: Suite name; also names the Data Docs pages.
        report_dir: Folder for the report; created when missing.
        policy: ``fail`` raises `ValidationFailed` when any expectation fails or there are no
            records; ``warn`` logs a warning and returns a summary with ``success=False``.
        id_column: Column whose values identify offending records in the summary.
        record_kind: Plural noun for the records, used in messages ("chunks").

    Returns:
        The summary of the run.

    Raises:
        ValidationFailed: Under policy ``fail``, when an expectation failed or ``frame`` is empty.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    if frame.empty:
        # GX would pass every expectation on an empty table; say plainly that nothing ran.
        page = _write_no_records_page(report_dir, suite_name, record_kind)
        summary = ValidationSummary(
            suite=suite_name, success=False, policy=policy, n_records=0, report_path=page
        )
        write_json(report_dir / SUMMARY_FILE, summary, end="")
        _apply_policy(
            summary,
            f"{suite_name}: no {record_kind} to validate; check that the previous stage "
            f"produced {record_kind} (summary: {report_dir / SUMMARY_FILE})",
        )
        return summary

    context = _gx_context(report_dir / DOCS_DIR)
    result = _run_checkpoint(context, frame, expectations, suite_name, id_column)
    order = {e.id: i for i, e in enumerate(expectations)}
    summary = _summarize(context, result, suite_name, policy, len(frame), id_column, order)
    write_json(report_dir / SUMMARY_FILE, summary, end="")
    if summary.success:
        logger.info("%s: %d expectations passed on %d %s; report: %s", suite_name,
                    len(summary.results), summary.n_records, record_kind, summary.report_path)
    else:
        failed = summary.failed
        _apply_policy(
            summary,
            f"{suite_name}: {len(failed)} of {len(summary.results)} expectations failed on "
            f"{summary.n_records} {record_kind}: "
            + "; ".join(r.describe() for r in failed)
            + f". HTML report: {summary.report_path}",
        )
    return summary


def _gx_context(docs_dir: Path) -> EphemeralDataContext:
    """An in-memory GX context whose only output is a Data Docs site in ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
        analytics_enabled=False,
        # GX's tqdm bars would print to stderr on every run; the CLI has its own progress.
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _run_checkpoint(
    context: EphemeralDataContext,
    frame: pd.DataFrame,
    expectations: Sequence[Expectation],
    suite_name: str,
    id_column: str,
) -> CheckpointResult:
    import great_expectations as gx

    batch = (
        context.data_sources.add_pandas("geomas")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("all")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=suite_name,
            validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])],
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": [id_column],
                "partial_unexpected_count": _PARTIAL_UNEXPECTED,
            },
        )
    )
    return checkpoint.run(batch_parameters={"dataframe": frame})


def _summarize(
    context: EphemeralDataContext,
    result: CheckpointResult,
    suite_name: str,
    policy: Policy,
    n_records: int,
    id_column: str,
    order: dict[str | None, int],
) -> ValidationSummary:
    outcomes: list[ExpectationOutcome] = []
    report_path: Path | None = None
    for identifier, suite_result in result.run_results.items():
        # GX returns results in its own order; keep the caller's, which the report reads in.
        results = sorted(
            suite_result.results,
            key=lambda r: order.get(r.expectation_config.id if r.expectation_config else None, 0),
        )
        outcomes.extend(_outcome(r.to_json_dict(), id_column) for r in results)
        report_path = _docs_page(context, identifier)
    if report_path is None:
        raise RuntimeError(
            f"Great Expectations built no Data Docs page for suite {suite_name!r} under "
            f"site {DOCS_SITE!r}; this is a bug in geomas.validate"
        )
    return ValidationSummary(suite=suite_name, success=bool(result.success), policy=policy,
                             n_records=n_records, results=outcomes, report_path=report_path)


def _outcome(raw: dict[str, Any], id_column: str) -> ExpectationOutcome:
    config = raw["expectation_config"]
    kwargs = config.get("kwargs", {})
    if "column" in kwargs:
        column: str | None = str(kwargs["column"])
    elif "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    elif "column_list" in kwargs:
        column = ",".join(map(str, kwargs["column_list"]))
    else:
        column = None
    result = raw.get("result") or {}
    values = [row.get(id_column) if isinstance(row, dict) else row
              for row in result.get("partial_unexpected_index_list") or []]
    refs = ("<null>" if value is None else str(value) for value in values)
    examples = list(dict.fromkeys(refs))[:N_EXAMPLES]
    return ExpectationOutcome(
        expectation=str(config["type"]),
        column=column,
        success=bool(raw["success"]),
        unexpected_count=int(result.get("unexpected_count") or 0),
        examples=examples,
        error=_exception_message(raw.get("exception_info") or {}),
    )


def _exception_message(info: dict[str, Any]) -> str | None:
    # GX reports an exception either flat or keyed by the metric that raised it.
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")
    return None


def _docs_page(context: EphemeralDataContext, identifier: Any) -> Path | None:
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
    for entry in urls:
        url = entry.get("site_url")
        if url and url.startswith("file://"):
            path = Path(url2pathname(urlparse(url).path))
            if path.is_file():
                return path
    return None


def _write_no_records_page(report_dir: Path, suite_name: str, record_kind: str) -> Path:
    page = report_dir / NO_RECORDS_PAGE
    title = html.escape(suite_name)
    page.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>No {html.escape(record_kind)} to validate: "
        "no expectation was run.</p></body></html>\n",
        encoding="utf-8",
    )
    return page


def _apply_policy(summary: ValidationSummary, message: str) -> None:
    if summary.policy == "fail":
        raise ValidationFailed(
            f"{message}. Fix the data, or set validation.policy to 'warn' to continue anyway"
        )
    logger.warning("%s (policy 'warn': continuing)", message)
