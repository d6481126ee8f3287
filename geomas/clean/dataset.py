"""`clean_dataset`: the file-level cleaning behind ``geomas clean-dataset IN OUT --profile``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from geomas.clean.clean import clean_examples
from geomas.clean.diversity import DiversityReport
from geomas.clean.io import Reader, is_jsonl, read_alpaca, write_alpaca
from geomas.config import CleanConfig, Profile
from geomas.errors import InputError
from geomas.io import write_json
from geomas.records import write_rejects

log = logging.getLogger(__name__)

REJECTS_SUFFIX = "_rejects.jsonl"
REPORT_SUFFIX = "_clean_report.json"


class CleanReport(BaseModel):
    """Paths, counts and diversity of one `clean_dataset` run (``<stem>_clean_report.json``)."""

    input_path: str
    output_path: str
    rejects_path: str
    report_path: str
    profile: Profile
    records_in: int
    kept: int
    removed: int
    counts: dict[str, int] = Field(
        description="Per rule, in order: records removed; for normalize, records changed."
    )
    normalization: dict[str, int]
    diversity: DiversityReport
    warnings: list[str]
    seconds: dict[str, float]
    config: dict[str, Any] = Field(description="The CleanConfig that ran.")


def clean_dataset(
    in_path: Path,
    out_path: Path,
    profile: Profile,
    config: CleanConfig | None = None,
    reader: Reader | None = None,
) -> CleanReport:
    """Clean a JSON/JSONL dataset file; write the kept records, the rejects and a report.

    Outputs, next to `out_path`: the cleaned records (a JSON list or JSONL by the suffix of
    `out_path`), ``<stem>_rejects.jsonl`` (one line per removed record: stage, rule, reason,
    id, duplicate_of) and ``<stem>_clean_report.json`` (the returned `CleanReport`).

    Args:
        in_path: The dataset to clean.
        out_path: Where the cleaned dataset goes (.json or .jsonl).
        profile: geology, legal or generic; overrides ``config.profile``.
        config: Cleaning settings; the defaults when None.
        reader: ``reader(path) -> list[Example]``; alpaca-style JSON/JSONL when None.

    Returns:
        The report that was also written to ``<stem>_clean_report.json``.

    Raises:
        InputError: Unreadable input (the message names the file and line), OUT equal to IN,
            or an output suffix other than .json/.jsonl.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.resolve() == in_path.resolve():
        raise InputError(f"output {out_path} is the input file; choose another path")
    is_jsonl(out_path)  # fail on a bad suffix before the work
    # Validated again: the profile must have a min_cyrillic_share entry, for example.
    cfg = CleanConfig.model_validate({**(config or CleanConfig()).model_dump(), "profile": profile})
    rejects_path = out_path.with_name(out_path.stem + REJECTS_SUFFIX)
    report_path = out_path.with_name(out_path.stem + REPORT_SUFFIX)
    t = time.perf_counter()
    examples = (reader or read_alpaca)(in_path)
    result = clean_examples(examples, cfg)
    write_alpaca(result.kept, out_path)
    write_rejects(rejects_path, result.rejects)
    report = CleanReport(
        input_path=str(in_path),
        output_path=str(out_path),
        rejects_path=str(rejects_path),
        report_path=str(report_path),
        profile=cfg.profile,
        records_in=result.n_input,
        kept=len(result.kept),
        removed=len(result.rejects),
        counts=result.counts,
        normalization=result.normalization,
        diversity=result.diversity,
        warnings=result.warnings,
        seconds={**result.seconds, "total": round(time.perf_counter() - t, 3)},
        config=cfg.model_dump(mode="json"),
    )
    write_json(report_path, report)
    log.info("wrote %d of %d records to %s", report.kept, report.records_in, out_path)
    return report
