"""`geomas format-instruct-dataset QA OUT`: QA pairs or examples → OUT_train / OUT_val files.

As in the original tool, ``OUT = ./instruct_dataset.json`` gives ``./instruct_dataset_train.json``
and ``./instruct_dataset_val.json`` (``.jsonl`` with ``jsonl``), and ``split_ratio=0.9`` puts
90 % of the records into train. The split is grouped by document and stratified by entity
type (`geomas.split`). Next to the datasets go ``<stem>_split_report.json``,
``<stem>_class_weights.json``, ``<stem>_rejects.jsonl`` and, with the default lineage mode, one
``<file stem>.lineage.jsonl`` per dataset file.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from geomas.config import CleanConfig, FormatConfig, FormatType, SplitConfig
from geomas.errors import ConfigError, InputError
from geomas.formats.example import Example
from geomas.formats.io import dataset_stem, read_examples, write_examples
from geomas.formats.qa import is_qa_pair, qa_pair_to_example
from geomas.io import JSON_SUFFIXES, JSONL_SUFFIXES, load_records
from geomas.records import Reject, write_rejects

if TYPE_CHECKING:
    from geomas.split import SplitResult

logger = logging.getLogger(__name__)


class FormatReport(BaseModel):
    """What `format_instruct_dataset` read and wrote."""

    model_config = ConfigDict(extra="forbid")

    source: Path
    source_kind: str
    format_type: FormatType
    jsonl: bool
    lineage: str
    n_input: int
    n_rejected: int
    rejects_by_rule: dict[str, int]
    records: dict[str, int]
    files: dict[str, Path]
    split_ratio: float
    val_ratio: float
    test_ratio: float
    seed: int
    seconds: float


def output_paths(out: Path, *, jsonl: bool, splits: tuple[str, ...]) -> dict[str, Path]:
    """``OUT_<split>.json(l)`` for each split, in OUT's folder, as the original tool named them."""
    out = Path(out)
    has_suffix = out.name.endswith((*JSON_SUFFIXES, *JSONL_SUFFIXES))
    stem = dataset_stem(out) if has_suffix else out.name
    suffix = ".jsonl" if jsonl else ".json"
    return {name: out.with_name(f"{stem}_{name}{suffix}") for name in splits}


#: Next to the split files: which data pipeline run wrote them, and their sha256.
DATA_RUN_SUFFIX = "_data_run.json"


def _data_run_path(train_file: Path) -> Path:
    stem = dataset_stem(train_file)
    return Path(train_file).with_name(f"{stem.removesuffix('_train')}{DATA_RUN_SUFFIX}")


def write_data_run(files: dict[str, str], run_id: str) -> Path:
    """Record the data pipeline run that wrote the split files (``<name>_data_run.json``)."""
    from geomas.hashing import sha256_file
    from geomas.io import write_json

    digests = {split: sha256_file(Path(p)) for split, p in files.items()
               if not split.endswith("_lineage")}
    return write_json(_data_run_path(Path(files["train"])),
                      {"data_pipeline_run_id": run_id, "sha256": digests})


def data_run_of(train_file: Path) -> str | None:
    """The data pipeline run that wrote `train_file`, or None.

    None when there is no ``<name>_data_run.json`` or the file is no longer the one that run
    wrote (another sha256: written by hand or changed since).
    """
    import json

    from geomas.hashing import sha256_file

    path = _data_run_path(Path(train_file))
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        logger.warning("%s is not readable JSON; the data run of %s is unknown", path,
                       train_file)
        return None
    if record.get("sha256", {}).get("train") != sha256_file(Path(train_file)):
        logger.warning("%s was changed after the data run %s wrote it; its data run is unknown",
                       train_file, record.get("data_pipeline_run_id"))
        return None
    run = record.get("data_pipeline_run_id")
    return str(run) if run else None


def write_splits(result: SplitResult, out: Path, config: FormatConfig) -> dict[str, str]:
    """Write each split of `result` as ``OUT_<split>`` in ``config``'s format.

    Returns:
        Split name (and ``<split>_lineage`` for sidecars) -> written path.
    """
    names = tuple(result.splits())
    paths = output_paths(out, jsonl=config.jsonl, splits=names)
    files: dict[str, str] = {}
    for name, rows in result.splits().items():
        written = write_examples(rows, paths[name], config.format_type, config.jsonl,
                                 config.system_prompt, lineage=config.lineage)
        files[name] = str(written.path)
        if written.lineage_path is not None:
            files[f"{name}_lineage"] = str(written.lineage_path)
    return files


def format_instruct_dataset(
    source: Path,
    out: Path,
    *,
    format_type: FormatType | None = None,
    split_ratio: float | None = None,
    jsonl: bool | None = None,
    system_prompt: str | None = None,
    seed: int | None = None,
    config: FormatConfig | None = None,
    split: SplitConfig | None = None,
    clean: CleanConfig | None = None,
) -> FormatReport:
    """Turn QA pairs (or an examples file) into train/val(/test) instruction datasets.

    The keyword options override ``config`` / ``split``; ``None`` keeps their values, so the
    defaults live in `FormatConfig` and `SplitConfig` only.

    Args:
        source: ``qa_pairs.json`` in the original schema (JSON list or JSONL), or a dataset
            file of any supported format (read with `read_examples`).
        out: The output name; ``dir/name.json`` writes ``dir/name_train.json`` etc.
        format_type: Output format.
        split_ratio: Train share (0.9 = 90 % train), as the original ``--split-ratio``.
        jsonl: JSON Lines output (``.jsonl`` files).
        system_prompt: System prompt for examples without one.
        seed: Split seed.
        config: Format settings; ``None``: `FormatConfig` defaults.
        split: Split settings (policy, grouping, test share); ``None``: `SplitConfig`
            defaults.
        clean: Cleaning settings: records are cleaned (`geomas.clean.clean_examples`, as in the
            data pipeline's clean step) before the split; ``None``: no cleaning.

    Returns:
        The report, with every file written.

    Raises:
        ConfigError: The options contradict each other (vertex as a JSON list...).
        InputError: The source cannot be read, holds no valid records, or cannot be split.
    """
    from geomas.split import LEDGER_NAME, split_with_ledger

    started = time.perf_counter()
    overrides = {"format_type": format_type, "split_ratio": split_ratio, "jsonl": jsonl,
                 "system_prompt": system_prompt}
    try:
        cfg = FormatConfig.model_validate((config or FormatConfig()).model_dump() | {
            key: value for key, value in overrides.items() if value is not None
        })
        split_cfg = cfg.split_config(split)
        if seed is not None:
            split_cfg = SplitConfig.model_validate({**split_cfg.model_dump(), "seed": seed})
    except (ValidationError, ValueError) as exc:
        raise ConfigError(f"format-instruct-dataset options are invalid: {exc}") from exc
    source = Path(source)
    examples, rejects, kind, n_input = _load(source)
    logger.info("Read %d records (%s) from %s; %d rejected", n_input, kind, source, len(rejects))
    if clean is not None:
        from geomas.clean.clean import clean_examples

        cleaned = clean_examples(examples, clean)
        examples = cleaned.kept
        rejects.extend(cleaned.rejects)
    # the split ledger lives next to the train file: documents keep their split across runs
    first = output_paths(Path(out), jsonl=cfg.jsonl, splits=("train",))["train"]
    ledger = first.with_name(f"{dataset_stem(first)[: -len('_train')]}_{LEDGER_NAME}")
    result = split_with_ledger(examples, split_cfg, ledger)
    rejects.extend(result.rejects)

    files = {name: Path(path) for name, path in write_splits(result, Path(out), cfg).items()}
    train = files["train"]
    prefix = f"{dataset_stem(train)[: -len('_train')]}_"
    files.update(result.write_reports(train.parent, prefix=prefix, rejects=False))
    files["split_ledger"] = ledger
    # One rejects file for the whole command: invalid pairs and the split's small-class drops.
    files["rejects"] = write_rejects(train.with_name(f"{prefix}rejects.jsonl"), rejects)
    return FormatReport(
        source=source,
        source_kind=kind,
        format_type=cfg.format_type,
        jsonl=cfg.jsonl,
        lineage=cfg.lineage,
        n_input=n_input,
        n_rejected=len(rejects),
        rejects_by_rule=dict(sorted(Counter(rej.rule for rej in rejects).items())),
        records={name: len(rows) for name, rows in result.splits().items()},
        files=files,
        split_ratio=split_cfg.train_ratio,
        val_ratio=split_cfg.val_ratio,
        test_ratio=split_cfg.test_ratio,
        seed=split_cfg.seed,
        seconds=time.perf_counter() - started,
    )


def _load(source: Path) -> tuple[list[Example], list[Reject], str, int]:
    """Examples from QA pairs (bad pairs and duplicates rejected) or from a dataset file."""
    _, located = load_records(source)
    if not located:
        raise InputError(f"{source} holds no records")
    if not is_qa_pair(located[0].value):
        read = read_examples(source)
        unique, dupes = _dedupe(read, [])
        return unique, dupes, "examples", len(read)
    examples: list[Example] = []
    rejects: list[Reject] = []
    for rec in located:
        pair = rec.value if isinstance(rec.value, dict) else None
        try:
            if pair is None:
                raise ValueError(f"record is a {type(rec.value).__name__}, not a JSON object")
            examples.append(qa_pair_to_example(pair))
        except ValueError as exc:
            qa_id = (pair or {}).get("qa_id")
            rejects.append(Reject(
                id=str(qa_id) if qa_id is not None else None, stage="format", rule="qa_invalid",
                reason=f"line {rec.line}: {exc}", label=(pair or {}).get("entity_type"),
            ))
    if not examples:
        raise InputError(
            f"{source}: none of the {len(located)} QA pairs is valid (first reason: "
            f"{rejects[0].reason}); see the QA schema: question, answer, entity_type, context"
        )
    kept, rejects = _dedupe(examples, rejects)
    return kept, rejects, "qa_pairs", len(located)


def _dedupe(
    examples: list[Example], rejects: list[Reject]
) -> tuple[list[Example], list[Reject]]:
    """Keep the first example of each id; later ones are rejected (rule duplicate_id)."""
    seen: set[str] = set()
    kept = []
    for ex in examples:
        if ex.id in seen:
            rejects.append(Reject(
                id=ex.id, stage="format", rule="duplicate_id", label=ex.label, group=ex.group,
                reason=f"id {ex.id!r} occurs earlier in the input (same QA pair twice?)",
            ))
            continue
        seen.add(ex.id)
        kept.append(ex)
    return kept, rejects
