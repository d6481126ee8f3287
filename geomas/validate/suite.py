"""Run a Great Expectations suite on a DataFrame, keep an HTML report and apply the policy.

This is the shared runner behind every geomas validation (chunks now; QA pairs and formatted
records later): a caller builds a DataFrame with one row per record and the columns its
expectations need, plus a list of GX expectation objects, and `run_suite` does the rest.

GX runs in an ephemeral (in-memory) data context whose only file output is a Data Docs site
under ``report_dir``, so a run never creates a ``gx/`` project folder in the working directory
and never writes anything outside ``report_dir``. Analytics are switched off in the context
config, which GX 1.x honours like ``GX_ANALYTICS_ENABLED=false`` (either one set to false
disables them; GX 1.24 ships no analytics client at all), so a run makes no network calls.

Records that come from documents (chunks) can be judged per document (`DocumentRule`): GX
returns every offending row with its document, geomas groups them, and each document with
failing records is named with the expectation, its count and what to do. Under policy
``exclude_document`` a failing document is left out and the run goes on; under ``fail`` the
error names the files.
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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

Policy = Literal["exclude_document", "fail", "warn"]

SUMMARY_FILE = "validation_summary.json"
NO_RECORDS_PAGE = "no_records.html"
DOCS_DIR = "data_docs"
DOCS_SITE = "geomas"
N_EXAMPLES = 5
# GX keeps this many offending rows per expectation for Data Docs; the summary shows fewer.
_PARTIAL_UNEXPECTED = 20
# An error message names at most this many documents (all of them are in the summary).
_NAMED_DOCUMENTS = 10


@dataclass(frozen=True)
class DocumentRule:
    """How a suite's records are judged per document.

    Attributes:
        column: Frame column naming each record's document (its file path).
        doc_id_column: Frame column with the document's id, copied into the summary.
        tolerance: Checked column -> share of a document's records with a value in that column
            that may fail before the document fails; columns left out tolerate none.
        hints: Checked column -> what to do about a failure, ending each failure line.
        max_excluded_ratio: ``exclude_document`` stops when excluded / all documents exceeds
            this (and always when every document would be excluded).
        record_noun: Plural noun of the records in failure lines ("chunks").
        document_values: Column holding one value per document -> document -> what was
            measured (with the limit); a failure on such a column is described by that line
            instead of a count of records.
    """

    column: str
    doc_id_column: str | None = None
    tolerance: Mapping[str, float] = field(default_factory=dict)
    hints: Mapping[str, str] = field(default_factory=dict)
    max_excluded_ratio: float = 0.5
    record_noun: str = "records"
    document_values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


class DocumentFailure(BaseModel):
    """A document with records that failed expectations, named by its file."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="The document's file (path in the source folder).")
    doc_id: str | None = None
    n_records: int = Field(ge=0, description="Its records in the validated table.")
    excluded: bool = Field(
        description="Left out of the downstream data (policy exclude_document)."
    )
    failures: list[str] = Field(
        description="One line per expectation its records failed: how many of its records, "
        "example ids, and what to do (or that the share is tolerated)."
    )

    def describe(self) -> str:
        """One line naming the file and what failed in it."""
        return f"{self.source}: {'; '.join(self.failures)}"


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
    success: bool = Field(
        description="fail/warn: every expectation passed. exclude_document with a document "
        "rule: no document was excluded (`results` keep GX's verdict per expectation, which "
        "also counts tolerated records)."
    )
    policy: Policy
    n_records: int = Field(ge=0, description="Rows validated (chunks for the chunk suite).")
    results: list[ExpectationOutcome] = Field(default_factory=list)
    n_documents: int | None = Field(
        default=None, description="Documents the records come from (suites judged per document)."
    )
    documents: list[DocumentFailure] = Field(
        default_factory=list,
        description="Documents with failing records, each named by its file: excluded ones "
        "and (exclude_document) ones whose failures were tolerated.",
    )
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

    @property
    def excluded(self) -> list[DocumentFailure]:
        """The documents left out under policy exclude_document."""
        return [d for d in self.documents if d.excluded]


def run_suite(
    frame: pd.DataFrame,
    expectations: Sequence[Expectation],
    *,
    suite_name: str,
    report_dir: Path,
    policy: Policy,
    id_column: str,
    record_kind: str = "records",
    documents: DocumentRule | None = None,
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
            records; ``warn`` logs a warning and returns a summary with ``success=False``;
            ``exclude_document`` (with ``documents``) judges each document and marks the failing
            ones excluded in the summary, and without ``documents`` acts as ``fail``.
        id_column: Column whose values identify offending records in the summary.
        record_kind: Plural noun for the records, used in messages ("chunks").
        documents: Judge the records per document (the summary names each document with
            failing records); None: the suite is judged as a whole.

    Returns:
        The summary of the run.

    Raises:
        ValidationFailed: Under policy ``fail``, when an expectation failed or ``frame`` is empty;
            under ``exclude_document``, when ``frame`` is empty, an expectation cannot be
            judged per document (it errored), or more documents failed than
            ``documents.max_excluded_ratio`` allows. Messages name the documents' files.
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
    group = documents.column if documents is not None else None
    result = _run_checkpoint(context, frame, expectations, suite_name, id_column, group)
    order = {e.id: i for i, e in enumerate(expectations)}
    summary, offending = _summarize(context, result, suite_name, policy, len(frame), id_column,
                                    order, group)
    if documents is not None:
        summary = _judge_documents(summary, offending, frame, documents)
    write_json(report_dir / SUMMARY_FILE, summary, end="")
    if documents is not None and policy == "exclude_document":
        _apply_document_policy(summary, documents, record_kind)
    elif summary.success:
        logger.info("%s: %d expectations passed on %d %s; report: %s", suite_name,
                    len(summary.results), summary.n_records, record_kind, summary.report_path)
    else:
        failed = summary.failed
        # failures traced to documents are named by file; the rest (errors) by expectation
        untraced = failed if documents is None else _unjudged(summary)
        details = "; ".join(filter(None, [_name_documents(summary.documents),
                                          *(r.describe() for r in untraced)]))
        in_documents = (f" in {len(summary.documents)} of {summary.n_documents} documents"
                        if summary.documents else "")
        _apply_policy(
            summary,
            f"{suite_name}: {len(failed)} of {len(summary.results)} expectations failed on "
            f"{summary.n_records} {record_kind}{in_documents}: {details}. HTML report: "
            f"{summary.report_path}",
            per_document=documents is not None,
        )
    return summary


def _judge_documents(
    summary: ValidationSummary,
    offending: Sequence[Mapping[str, list[str]]],
    frame: pd.DataFrame,
    rule: DocumentRule,
) -> ValidationSummary:
    """The summary with each document that has failing records named.

    Under exclude_document every expectation's offending rows count, and a document whose
    failures exceed the rule's tolerance is marked excluded. Under fail/warn only the
    expectations that failed as a whole are traced to documents, and nothing is tolerated or
    excluded.
    """
    per_document = summary.policy == "exclude_document"
    sizes = frame.groupby(rule.column, sort=False).size()
    judged = {col: frame.groupby(rule.column, sort=False)[col].count()
              for col in rule.tolerance if col in frame.columns}
    doc_ids: dict[str, str] = {}
    if rule.doc_id_column is not None:
        firsts = frame.drop_duplicates(rule.column)
        doc_ids = dict(zip(firsts[rule.column].astype(str), firsts[rule.doc_id_column].astype(str),
                           strict=True))
    lines: dict[str, list[str]] = defaultdict(list)
    failing: set[str] = set()
    for outcome, by_doc in zip(summary.results, offending, strict=True):
        if not per_document and outcome.success:
            continue
        column = outcome.column or ""
        tolerance = rule.tolerance.get(column, 0.0) if per_document else 0.0
        for source, ids in by_doc.items():
            counted = judged.get(column)
            total = int((counted if counted is not None else sizes).get(source, len(ids)))
            measured = rule.document_values.get(column, {}).get(source)
            text = (f"{outcome.expectation}({column}) failed: {measured}" if measured else
                    f"{outcome.expectation}({column}) failed on {len(ids)} of {total} "
                    f"{rule.record_noun}, e.g. {', '.join(ids[:3])}")
            # a small epsilon: 1 of 2 chunks is within a tolerance of 0.5
            if len(ids) > tolerance * total + 1e-9:
                failing.add(source)
                text += f": {rule.hints.get(column, 'see the HTML report')}"
            else:
                text += (f" (tolerated: up to {tolerance:.0%} of a document's "
                         f"{rule.record_noun} may fail this check)")
            lines[source].append(text)
    found = [
        DocumentFailure(source=source, doc_id=doc_ids.get(source),
                        n_records=int(sizes.get(source, 0)),
                        excluded=per_document and source in failing, failures=lines[source])
        for source in sorted(lines)
    ]
    update: dict[str, Any] = {"n_documents": len(sizes), "documents": found}
    if per_document:
        update["success"] = not failing and not _unjudged(summary)
    return summary.model_copy(update=update)


def _unjudged(summary: ValidationSummary) -> list[ExpectationOutcome]:
    """Failures no document can be blamed for (an error, or a failure without offending rows)."""
    return [r for r in summary.results if r.error or (not r.success and not r.unexpected_count)]


def _name_documents(documents: Sequence[DocumentFailure]) -> str:
    named = "; ".join(d.describe() for d in documents[:_NAMED_DOCUMENTS])
    if len(documents) > _NAMED_DOCUMENTS:
        named += f"; and {len(documents) - _NAMED_DOCUMENTS} more documents ({SUMMARY_FILE})"
    return named


def _apply_document_policy(
    summary: ValidationSummary, rule: DocumentRule, record_kind: str
) -> None:
    """Apply exclude_document: log each excluded document by its file, or stop.

    It stops when the suite cannot be judged per document or too many documents failed.
    """
    suite = summary.suite
    unjudged = _unjudged(summary)
    if unjudged:
        raise ValidationFailed(
            f"{suite}: {'; '.join(r.describe() for r in unjudged)}: this cannot be traced to "
            f"documents, so no document can be excluded for it. HTML report: "
            f"{summary.report_path}. Fix the data or settings, or set validation.policy to "
            "'warn' to continue anyway"
        )
    for doc in summary.documents:
        if not doc.excluded:
            logger.info("%s: kept %s", suite, doc.describe())
    excluded = summary.excluded
    if not excluded:
        logger.info("%s: %d documents (%d %s) passed; report: %s", suite, summary.n_documents,
                    summary.n_records, record_kind, summary.report_path)
        return
    n_documents = summary.n_documents or len(excluded)
    ratio = len(excluded) / n_documents
    if len(excluded) == n_documents or ratio > rule.max_excluded_ratio:
        limit = ("every document failed" if len(excluded) == n_documents else
                 f"{ratio:.0%} is above validation.max_excluded_ratio "
                 f"{rule.max_excluded_ratio:.0%}")
        raise ValidationFailed(
            f"{suite}: {len(excluded)} of {n_documents} documents failed ({limit}): "
            f"{_name_documents(excluded)}. So many failing documents point at the corpus or "
            "the settings (validation.profile?) rather than a few bad files: fix them, raise "
            "validation.max_excluded_ratio, or set validation.policy to 'warn'. HTML report: "
            f"{summary.report_path}"
        )
    for doc in excluded:
        logger.warning("%s: excluded %s", suite, doc.describe())
    names = ", ".join(d.source for d in excluded[:_NAMED_DOCUMENTS])
    if len(excluded) > _NAMED_DOCUMENTS:
        names += f" and {len(excluded) - _NAMED_DOCUMENTS} more"
    logger.warning("%s: %d of %d documents excluded (%s; policy exclude_document), the run "
                   "goes on; report: %s", suite, len(excluded), n_documents, names,
                   summary.report_path)


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
    group_column: str | None = None,
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
            # COMPLETE lists every offending row (with its document) so that a suite judged per
            # document sees all of them; SUMMARY keeps only the first few.
            result_format={
                "result_format": "SUMMARY" if group_column is None else "COMPLETE",
                "unexpected_index_column_names": [id_column]
                + ([group_column] if group_column else []),
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
    group_column: str | None = None,
) -> tuple[ValidationSummary, list[dict[str, list[str]]]]:
    """The summary, and per expectation the ids of its offending rows by ``group_column``."""
    outcomes: list[ExpectationOutcome] = []
    offending: list[dict[str, list[str]]] = []
    report_path: Path | None = None
    for identifier, suite_result in result.run_results.items():
        # GX returns results in its own order; keep the caller's, which the report reads in.
        results = sorted(
            suite_result.results,
            key=lambda r: order.get(r.expectation_config.id if r.expectation_config else None, 0),
        )
        for r in results:
            raw = r.to_json_dict()
            outcomes.append(_outcome(raw, id_column))
            offending.append(_by_group(raw, id_column, group_column) if group_column else {})
        report_path = _docs_page(context, identifier)
    if report_path is None:
        raise RuntimeError(
            f"Great Expectations built no Data Docs page for suite {suite_name!r} under "
            f"site {DOCS_SITE!r}; this is a bug in geomas.validate"
        )
    summary = ValidationSummary(suite=suite_name, success=bool(result.success), policy=policy,
                                n_records=n_records, results=outcomes, report_path=report_path)
    return summary, offending


def _by_group(raw: dict[str, Any], id_column: str, group_column: str) -> dict[str, list[str]]:
    """Ids of every offending row (result format COMPLETE), grouped by ``group_column``."""
    groups: dict[str, list[str]] = defaultdict(list)
    for row in (raw.get("result") or {}).get("unexpected_index_list") or []:
        if isinstance(row, dict):
            group, value = row.get(group_column), row.get(id_column)
            groups["<unknown>" if group is None else str(group)].append(
                "<null>" if value is None else str(value))
    return dict(groups)


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


def _apply_policy(summary: ValidationSummary, message: str, *, per_document: bool = False
                  ) -> None:
    # exclude_document reaches here only for suites not judged per document: it acts as fail
    if summary.policy in ("fail", "exclude_document"):
        alternative = ("'exclude_document' to leave the failing documents out, or 'warn' to "
                       "continue with them" if per_document else "'warn' to continue anyway")
        raise ValidationFailed(
            f"{message}. Fix the data, or set validation.policy to {alternative}"
        )
    logger.warning("%s (policy 'warn': continuing)", message)
