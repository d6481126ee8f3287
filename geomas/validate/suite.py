"""Run a Great Expectations suite on a DataFrame, keep an HTML report and apply the policy.

This is the shared runner behind every geomas validation (chunks now; QA pairs and formatted
records later): a caller builds a DataFrame with one row per record and the columns its
expectations need, plus a list of GX expectation objects, and `run_suite` does the rest.

GX runs in an ephemeral (in-memory) data context whose only file output is a Data Docs site
under ``report_dir``, so a run never creates a ``gx/`` project folder in the working directory
and never writes anything outside ``report_dir``. Analytics are disabled in the context config
(GX 1.x reads that flag before ``GX_ANALYTICS_ENABLED``), so no usage statistics leave the
machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse
from urllib.request import url2pathname

from pydantic import BaseModel, ConfigDict, Field

from geomas.errors import ValidationFailed

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.checkpoint.checkpoint import CheckpointResult
    from great_expectations.data_context import EphemeralDataContext
    from great_expectations.expectations.expectation import Expectation

logger = logging.getLogger(__name__)

Policy = Literal["fail", "warn"]

SUMMARY_FILE = "validation_summary.json"
DOCS_DIR = "data_docs"
DOCS_SITE = "geomas"
N_EXAMPLES = 5
# GX keeps this many offending rows per expectation for Data Docs; the summary shows fewer.
_PARTIAL_UNEXPECTED = 20


class ExpectationOutcome(BaseModel):
    """The result of one expectation, small enough to log and keep as JSON."""

    model_config = ConfigDict(extra="forbid")

    expectation: str = Field(description="GX expectation type, e.g. expect_column_values_to_be_unique.")
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
    report_path: Path | None = Field(
        default=None,
        description="The Data Docs HTML page of this validation run; None when nothing ran.",
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
    so a failed run still leaves its report.

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
        summary = ValidationSummary(suite=suite_name, success=False, policy=policy, n_records=0)
        _write_summary(summary, report_dir)
        _apply_policy(
            summary,
            f"{suite_name}: no {record_kind} to validate; check that the previous stage "
            f"produced {record_kind} (summary: {report_dir / SUMMARY_FILE})",
        )
        return summary

    context = _gx_context(report_dir / DOCS_DIR)
    result = _run_checkpoint(context, frame, expectations, suite_name, id_column)
    summary = _summarize(context, result, suite_name, policy, len(frame), id_column)
    _write_summary(summary, report_dir)
    if summary.success:
        logger.info(
            "%s: %d expectations passed on %d %s; report: %s",
            suite_name,
            len(summary.results),
            summary.n_records,
            record_kind,
            summary.report_path,
        )
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
) -> ValidationSummary:
    outcomes: list[ExpectationOutcome] = []
    report_path: Path | None = None
    for identifier, suite_result in result.run_results.items():
        outcomes.extend(_outcome(r.to_json_dict(), id_column) for r in suite_result.results)
        report_path = _docs_page(context, identifier)
    return ValidationSummary(
        suite=suite_name,
        success=bool(result.success),
        policy=policy,
        n_records=n_records,
        results=outcomes,
        report_path=report_path,
    )


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
    examples: list[str] = []
    for row in result.get("partial_unexpected_index_list") or []:
        value = row.get(id_column) if isinstance(row, dict) else row
        ref = "<null>" if value is None else str(value)
        if ref not in examples:
            examples.append(ref)
        if len(examples) == N_EXAMPLES:
            break
    info = raw.get("exception_info") or {}
    error = info.get("exception_message") if info.get("raised_exception") else None
    return ExpectationOutcome(
        expectation=str(config["type"]),
        column=column,
        success=bool(raw["success"]),
        unexpected_count=int(result.get("unexpected_count") or 0),
        examples=examples,
        error=error,
    )


def _docs_page(context: EphemeralDataContext, identifier: Any) -> Path | None:
    urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE)
    for entry in urls:
        url = entry.get("site_url")
        if url and url.startswith("file://"):
            path = Path(url2pathname(urlparse(url).path))
            if path.is_file():
                return path
    logger.warning("GX built no Data Docs page for %s", identifier)
    return None


def _write_summary(summary: ValidationSummary, report_dir: Path) -> None:
    (report_dir / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2), encoding="utf-8")


def _apply_policy(summary: ValidationSummary, message: str) -> None:
    if summary.policy == "fail":
        raise ValidationFailed(
            f"{message}. Fix the data, or set validation.policy to 'warn' to continue anyway"
        )
    logger.warning("%s (policy 'warn': continuing)", message)
