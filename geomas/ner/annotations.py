"""Label Studio exports to BIO token-classification data (`geomas convert-annotations`).

Reads Label Studio JSON exports — the full format (tasks with ``data`` and ``annotations``)
and JSON-MIN (one flat row per annotation: data fields at top level, the spans under the
labels control's name) — and writes ``bert_training_data.json`` (format ``geomas-bio-v1``)
plus ``alignment_report.json``.

Resolution rule (also written into the report as ``rule``):

1. Annotation per task: annotations with ``was_cancelled: true`` are skipped; predictions
   and drafts are never used. Of the remaining ones, those marked ``ground_truth`` win;
   among the candidates the one with the latest ``updated_at`` (else ``created_at``) is used,
   annotations without a timestamp ranking below timestamped ones, and a tie going to the one
   listed last. JSON-MIN rows with the same ``id`` are annotations of one task. A task with no
   usable annotation gives no records and is listed under ``skipped_tasks``; the annotations
   not used are listed under ``unused_annotations``.
2. Spans of the chosen annotation: a span with several labels counts once per label.
   Offsets are trimmed of surrounding whitespace. A span out of the text's range, empty after
   trimming or without a label is dropped.
3. Overlaps: spans are ranked longer first, then earlier start, then the label's position in
   the label set, then export order; a span is kept unless it overlaps a span ranked above
   it (reason ``overlap``); a repeat of a kept span with the same label is dropped with
   reason ``duplicate``.
4. Tokens are razdel tokens, split at every kept span boundary that falls inside one, so
   every kept span is a whole number of tokens.
5. Records: with ``unit="sentence"``, paragraphs (blank-line separated) are split by
   ``razdel.sentenize``, and consecutive sentences are merged when a kept span or a token
   crosses the boundary, so no span is cut; with ``unit="task"``, one record per task.

Every span of a chosen annotation that is not exactly reproduced by decoding the BIO tags
is listed in ``alignment_report.json`` with its task, document, offsets, text, label and
reason; the converter checks this by decoding every record it writes.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from geomas.errors import ConfigError, InputError
from geomas.io import atomic_write_text, write_json
from geomas.ner.bio import bio_label_list, bio_to_spans, spans_to_bio, tokenize
from geomas.ner.labels import GEO_LABELS
from geomas.progress import track
from geomas.text import sentence_spans

log = logging.getLogger(__name__)

DATA_FILE = "bert_training_data.json"
REPORT_FILE = "alignment_report.json"
FORMAT = "geomas-bio-v1"
PROGRESS_MIN_TASKS = 500

RESOLUTION_RULE = (
    "annotation per task: cancelled annotations skipped, predictions and drafts ignored; "
    "ground_truth ones win; among the candidates the latest updated_at (else created_at) is "
    "used, annotations without a timestamp ranking below timestamped ones, ties to the one "
    "listed last; JSON-MIN rows with the same id are annotations of one task. "
    "spans: one per label; offsets trimmed of surrounding whitespace; out_of_range, "
    "empty_after_trim and no_label spans dropped. "
    "overlaps: ranked longer first, then earlier start, then label order in the label set, then "
    "export order; a span overlapping a higher-ranked kept span is dropped (overlap), a repeat "
    "of a kept span with the same label is dropped (duplicate). "
    "tokens: razdel, split at every kept span boundary inside a token. "
    "records: unit=sentence: razdel.sentenize within blank-line paragraphs, consecutive "
    "sentences merged when a kept span or token crosses the boundary; unit=task: one per task."
)

Unit = Literal["sentence", "task"]
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")  # one code point, two UTF-16 units


class ConversionReport(BaseModel):
    """Counts and paths of one conversion; the per-span lists are in ``alignment_report.json``.

    ``spans_total`` counts the spans (one per label) of the annotations used, and
    ``spans_total == spans_aligned + spans_unaligned``; ``per_label`` gives ``total`` and
    ``aligned`` per label after ``label_map``.
    """

    model_config = ConfigDict(extra="forbid")

    source: str
    unit: Unit
    files: int
    tasks: int
    tasks_converted: int
    tasks_skipped: int
    annotations_unused: int
    records: int
    tokens: int
    spans_total: int
    spans_aligned: int
    spans_unaligned: int
    aligned_share: float
    unaligned_by_reason: dict[str, int]
    per_label: dict[str, dict[str, int]]
    spans_trimmed: int
    text_mismatches: int
    results_ignored: dict[str, int]
    data_path: str
    report_path: str
    rule: str = RESOLUTION_RULE


@dataclass
class _Annotation:
    id: Any
    completed_by: Any
    ground_truth: bool
    timestamp: datetime | None
    results: list[dict[str, Any]]
    position: int


@dataclass
class _Task:
    file: Path
    index: int
    id: Any
    text: str
    doc_name: str | None
    split: str | None
    annotations: list[_Annotation] = field(default_factory=list)
    cancelled: list[_Annotation] = field(default_factory=list)

    def where(self) -> str:
        return f"task at index {self.index} (id {self.id!r}) in {self.file}"


@dataclass
class _Labels:
    """The label set, its order and the label map, validated."""

    names: tuple[str, ...]
    order: dict[str, int]
    mapping: dict[str, str]
    unknown: dict[str, tuple[int, str]] = field(default_factory=dict)

    def resolve(self, label: str, task: _Task) -> str | None:
        """The label after the map, or None (recorded) when it is outside the label set."""
        mapped = self.mapping.get(label, label)
        if mapped in self.order:
            return mapped
        count, where = self.unknown.get(label, (0, task.where()))
        self.unknown[label] = (count + 1, where)
        return None

    def check(self) -> None:
        """Raise for the labels `resolve` did not know, all at once."""
        if not self.unknown:
            return
        found = "; ".join(f"{label!r} ({n} span{'s' if n > 1 else ''}, first in {where})"
                          for label, (n, where) in self.unknown.items())
        raise ConfigError(
            f"unknown label{'s' if len(self.unknown) > 1 else ''} {found}; allowed labels: "
            f"{', '.join(self.names)}. Map them with label_map (--label-map) or pass the "
            "project's label set with labels (--labels)"
        )


@dataclass
class _Outcome:
    """What converting the tasks gave."""

    records: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0
    unaligned: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    total: Counter[str] = field(default_factory=Counter)
    aligned: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)


# --------------------------------------------------------------------------- reading


def _load_json(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); export it from Label Studio "
                         "as JSON or JSON-MIN") from exc
    if not isinstance(data, list):
        raise InputError(f"{path} holds a JSON {type(data).__name__}, not a list of tasks; "
                         "export it from Label Studio as JSON or JSON-MIN")
    return data


def _source_files(source: Path) -> list[Path]:
    if source.is_dir():
        files = sorted(p for p in source.glob("*.json") if p.is_file())
        if not files:
            raise InputError(f"{source} holds no *.json files; put Label Studio exports there")
        return files
    if not source.is_file():
        raise InputError(f"{source} does not exist; give a Label Studio export or its folder")
    return [source]


def _timestamp(value: Any, where: str) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"{where}: timestamp {value!r} is not an ISO date string")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{where}: timestamp {value!r} is not an ISO date") from exc
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _int(value: Any, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: {what} is {value!r}, not an integer character offset "
                         "(only Text labels are supported, not HyperText/xpath ones)")
    return value


def _full_task(raw: dict[str, Any], path: Path, index: int) -> _Task:
    data = raw.get("data")
    where = f"task at index {index} (id {raw.get('id')!r}) in {path}"
    if not isinstance(data, dict):
        raise InputError(f"{where}: data is {type(data).__name__}, not an object")
    text = data.get("text")
    if not isinstance(text, str):
        raise InputError(f"{where} has no data.text (a string)")
    task = _Task(path, index, raw.get("id", index), text, _opt_str(data.get("doc_name")),
                 _opt_str(data.get("split")))
    annotations = raw.get("annotations") or []
    if not isinstance(annotations, list):
        raise InputError(f"{where}: annotations is not a list")
    for k, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise InputError(f"{where}: annotation {k} is not an object")
        results = ann.get("result") or []
        if not isinstance(results, list):
            raise InputError(f"{where}: annotation {k} has a result that is not a list")
        a_where = f"{where}, annotation {k}"
        parsed = _Annotation(
            id=ann.get("id", k),
            completed_by=ann.get("completed_by"),
            ground_truth=bool(ann.get("ground_truth")),
            timestamp=_timestamp(ann.get("updated_at") or ann.get("created_at"), a_where),
            results=results,
            position=k,
        )
        (task.cancelled if ann.get("was_cancelled") else task.annotations).append(parsed)
    return task


def _is_span_list(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return bool(items) and all(
        isinstance(v, dict) and "start" in v and "end" in v and "labels" in v for v in items
    )


def _min_row(raw: dict[str, Any], path: Path, index: int) -> _Task:
    where = f"task at index {index} (id {raw.get('id')!r}) in {path}"
    text = raw.get("text")
    if not isinstance(text, str):
        raise InputError(f"{where} has no text: a full export needs data.text, a JSON-MIN row "
                         "a top-level text field")
    results: list[dict[str, Any]] = []
    for key, value in raw.items():
        if key != "text" and _is_span_list(value):
            for v in value if isinstance(value, list) else [value]:
                results.append({"type": "labels", "from_name": key, "value": v})
    task = _Task(path, index, raw.get("id", index), text, _opt_str(raw.get("doc_name")),
                 _opt_str(raw.get("split")))
    task.annotations.append(_Annotation(
        id=raw.get("annotation_id", index),
        completed_by=raw.get("annotator"),
        ground_truth=bool(raw.get("ground_truth")),
        timestamp=_timestamp(raw.get("updated_at") or raw.get("created_at"), where),
        results=results,
        position=index,
    ))
    return task


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _read_file(path: Path, seen: dict[Any, Path]) -> list[_Task]:
    tasks: dict[Any, _Task] = {}
    for index, raw in enumerate(_load_json(path)):
        if not isinstance(raw, dict):
            raise InputError(f"task at index {index} in {path} is a {type(raw).__name__}, "
                             "not an object")
        full = "data" in raw or "annotations" in raw
        task = _full_task(raw, path, index) if full else _min_row(raw, path, index)
        key = task.id
        if key in tasks:
            if full or tasks[key].text != task.text:
                raise InputError(f"{task.where()}: task id {key!r} already used by the task at "
                                 f"index {tasks[key].index}; give each task its own id")
            tasks[key].annotations += task.annotations  # JSON-MIN: one row per annotation
            continue
        if key in seen:
            # the same id in another export (another project): keep both, qualified by file
            task.id = f"{path.stem}/{key}"
            log.info("Task id %r of %s also occurs in %s; using %r", key, path, seen[key],
                     task.id)
        tasks[key] = task
    for key in tasks:
        seen.setdefault(key, path)
    return list(tasks.values())


def _choose(task: _Task) -> tuple[_Annotation | None, list[_Annotation]]:
    """The annotation to use and the ones not used (see the module docstring, rule 1)."""
    if not task.annotations:
        return None, []
    floor = datetime.min.replace(tzinfo=UTC)
    best = max(task.annotations, key=lambda a: (
        a.ground_truth, a.timestamp is not None, a.timestamp or floor, a.position))
    return best, [a for a in task.annotations if a is not best]


# --------------------------------------------------------------------------- spans


def _utf16_to_codepoints(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Map UTF-16 offsets (what the Label Studio web UI counts) to code points."""
    units = 0
    cs = ce = None
    for i, ch in enumerate(text):
        if units == start:
            cs = i
        if units == end:
            ce = i
        units += 2 if ord(ch) > 0xFFFF else 1
    if units == end:
        ce = len(text)
    return (cs, ce) if cs is not None and ce is not None else None


def _entry(task: _Task, start: int, end: int, label: str | None, source_label: str | None,
           reason: str, detail: str = "") -> dict[str, Any]:
    text = task.text[start:end] if 0 <= start <= end <= len(task.text) else ""
    return {"file": task.file.name, "task_id": task.id, "doc_name": task.doc_name,
            "start": start, "end": end, "text": text, "label": label,
            "source_label": source_label, "reason": reason, "detail": detail}


def _task_spans(
    task: _Task, annotation: _Annotation, labels: _Labels, out: _Outcome
) -> list[tuple[int, int, str]]:
    """Valid, trimmed, non-overlapping spans of one annotation; drops go to ``out``."""
    text = task.text
    candidates: list[tuple[int, int, str, str, int]] = []
    for k, result in enumerate(annotation.results):
        where = f"{task.where()}, annotation {annotation.id!r}, result {k}"
        if not isinstance(result, dict):
            raise InputError(f"{where} is not an object")
        value = result.get("value")
        if not isinstance(value, dict) or "labels" not in value:
            out.ignored[str(result.get("type", "unknown"))] += 1
            continue
        raw_labels = value["labels"]
        if not isinstance(raw_labels, list) or not all(isinstance(x, str) for x in raw_labels):
            raise InputError(f"{where}: value.labels is not a list of strings")
        start = _int(value.get("start"), "value.start", where)
        end = _int(value.get("end"), "value.end", where)
        given = value.get("text")
        in_range = 0 <= start <= end <= len(text)
        if isinstance(given, str) and (not in_range or text[start:end] != given):
            mapped = _utf16_to_codepoints(text, start, end) if _ASTRAL.search(text) else None
            if mapped and text[mapped[0]:mapped[1]] == given:
                out.notes.append(_entry(task, *mapped, None, None, "utf16_offsets",
                                        f"Label Studio offsets {start}-{end} are UTF-16 units"))
                start, end = mapped
            elif in_range:
                out.notes.append(_entry(task, start, end, None, None, "text_mismatch",
                                        f"value.text is {given!r}; the offsets were used"))
        if not raw_labels:
            out.unaligned.append(_entry(task, start, end, None, None, "no_label"))
            continue
        for source_label in raw_labels:
            label = labels.resolve(source_label, task)
            if label is None:
                continue  # convert_annotations raises for it once all tasks are read
            out.total[label] += 1
            if not 0 <= start <= end <= len(text):
                out.unaligned.append({**_entry(task, start, end, label, source_label,
                                               "out_of_range",
                                               f"text has {len(text)} characters"),
                                      "text": given if isinstance(given, str) else ""})
                continue
            s, e = start, end
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if s == e:
                out.unaligned.append(_entry(task, start, end, label, source_label,
                                            "empty_after_trim"))
                continue
            if (s, e) != (start, end):
                out.notes.append(_entry(task, s, e, label, source_label, "trimmed",
                                        f"offsets {start}-{end} trimmed to {s}-{e}"))
            candidates.append((s, e, label, source_label, len(candidates)))

    ranked = sorted(candidates, key=lambda c: (c[0] - c[1], c[0], labels.order[c[2]], c[4]))
    kept: list[tuple[int, int, str]] = []  # sorted by start, non-overlapping
    kept_starts: list[int] = []
    for s, e, label, source_label, _ in ranked:
        i = bisect.bisect_right(kept_starts, s)
        clash = [kept[j] for j in (i - 1, i) if 0 <= j < len(kept)
                 and kept[j][0] < e and s < kept[j][1]]
        if clash:
            ks, ke, kl = clash[0]
            same = (ks, ke, kl) == (s, e, label)
            out.unaligned.append(_entry(
                task, s, e, label, source_label, "duplicate" if same else "overlap",
                f"kept span {ks}-{ke} {kl} {task.text[ks:ke]!r}"))
            continue
        kept.insert(i, (s, e, label))
        kept_starts.insert(i, s)
    return kept


# --------------------------------------------------------------------------- records


def _crossed(cut: int, intervals: Sequence[tuple[int, int]], starts: Sequence[int]) -> bool:
    """Whether a sorted, non-overlapping interval list has one with start < cut < end."""
    i = bisect.bisect_left(starts, cut) - 1
    return i >= 0 and intervals[i][1] > cut


def _record_ranges(
    text: str, offsets: list[tuple[int, int]], spans: list[tuple[int, int, str]], unit: Unit
) -> Iterator[tuple[int, int]]:
    """Character ranges of the records of one task."""
    if unit == "task":
        if offsets:
            yield 0, len(text)
        return
    tok_starts = [s for s, _ in offsets]
    span_iv = [(s, e) for s, e, _ in spans]
    span_starts = [s for s, _ in span_iv]
    cuts = [c for c, _ in sentence_spans(text, paragraphs=True)[1:]
            if not _crossed(c, span_iv, span_starts) and not _crossed(c, offsets, tok_starts)]
    lo = 0
    for hi in [*cuts, len(text)]:
        a, b = bisect.bisect_left(tok_starts, lo), bisect.bisect_left(tok_starts, hi)
        if a < b:
            yield offsets[a][0], offsets[b - 1][1]
        lo = hi


def _convert_task(
    task: _Task, annotation: _Annotation, labels: _Labels, unit: Unit, out: _Outcome
) -> None:
    spans = _task_spans(task, annotation, labels, out)
    offsets = tokenize(task.text, [b for s, e, _ in spans for b in (s, e)])
    tags, misaligned = spans_to_bio(offsets, spans)
    for s, e, label in misaligned:  # only if razdel left a non-space character uncovered
        out.unaligned.append(_entry(task, s, e, label, None, "not_token_aligned"))
    expected = set(spans) - set(misaligned)
    tok_starts = [s for s, _ in offsets]
    decoded: set[tuple[int, int, str]] = set()
    for n, (rs, re_) in enumerate(_record_ranges(task.text, offsets, spans, unit)):
        a, b = bisect.bisect_left(tok_starts, rs), bisect.bisect_left(tok_starts, re_)
        rec_text = task.text[rs:re_]
        rec_offsets = [[s - rs, e - rs] for s, e in offsets[a:b]]
        rec_tags = tags[a:b]
        record: dict[str, Any] = {"id": f"{task.id}-{n}", "task_id": task.id}
        if task.doc_name is not None:
            record["doc_name"] = task.doc_name
        if task.split is not None:
            record["split"] = task.split
        record.update(text=rec_text, char_start=rs,
                      tokens=[rec_text[s:e] for s, e in rec_offsets],
                      offsets=rec_offsets, ner_tags=rec_tags)
        out.records.append(record)
        out.tokens += b - a
        decoded.update((sp.start + rs, sp.end + rs, sp.label)
                       for sp in bio_to_spans(rec_text, rec_offsets, rec_tags))
    for s, e, label in sorted(expected - decoded):  # a record cut through a span: a bug
        out.unaligned.append(_entry(task, s, e, label, None, "crosses_unit_boundary"))
    for _, _, label in expected & decoded:
        out.aligned[label] += 1
    if decoded - expected:
        raise RuntimeError(f"{task.where()}: BIO decoding gave spans that were not annotated: "
                           f"{sorted(decoded - expected)[:3]}")


# --------------------------------------------------------------------------- public API


def _labels(labels: Sequence[str] | None, label_map: Mapping[str, str] | None) -> _Labels:
    if isinstance(labels, str):
        raise ConfigError(f"labels must be a list of entity types, got the string {labels!r}")
    names = tuple(GEO_LABELS if labels is None else labels)
    if not names:
        raise ConfigError("labels is empty; give at least one entity type")
    bad = [x for x in names if not isinstance(x, str) or not x or x != x.strip() or x == "O"]
    if bad:
        raise ConfigError(f"labels {bad!r} are not valid entity types (non-empty, no surrounding "
                          "spaces, not 'O')")
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        raise ConfigError(f"labels lists {dupes} more than once; give each entity type once")
    mapping = dict(label_map or {})
    wrong = {k: v for k, v in mapping.items() if v not in names}
    if wrong:
        raise ConfigError(f"label_map maps to labels outside the label set: {wrong}; allowed "
                          f"targets: {', '.join(names)}")
    return _Labels(names, {x: i for i, x in enumerate(names)}, mapping)


def _bio_json(entity_types: Sequence[str], records: list[dict[str, Any]]) -> str:
    """The data file with one record per line: readable and diffable, still plain JSON."""
    head = json.dumps({"format": FORMAT, "entity_types": list(entity_types),
                       "label_list": bio_label_list(entity_types)}, ensure_ascii=False)
    lines = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    return f'{head[:-1]}, "records": [\n{lines}\n]}}\n'


def convert_annotations(
    source: Path,
    out_dir: Path,
    *,
    labels: Sequence[str] | None = None,
    label_map: Mapping[str, str] | None = None,
    unit: Unit = "sentence",
    progress: bool = True,
) -> ConversionReport:
    """Convert Label Studio exports to BIO training data with an alignment report.

    Writes ``out_dir/bert_training_data.json``::

        {"format": "geomas-bio-v1", "entity_types": [...],
         "label_list": ["O", "B-<type>", "I-<type>", ...],
         "records": [{"id": "<task id>-<n>", "task_id", "doc_name"?, "split"?, "text",
                      "char_start", "tokens", "offsets", "ner_tags"}]}

    (``offsets`` are relative to the record ``text``, which is
    ``task_text[char_start:char_start + len(text)]``), and ``out_dir/alignment_report.json``:
    the `ConversionReport` fields plus ``unaligned_spans`` (every span not reproduced exactly,
    with its reason), ``notes`` (trimmed spans, text mismatches), ``skipped_tasks`` and
    ``unused_annotations``. The rule that resolves annotations and overlaps is in the module
    docstring.

    Args:
        source: A Label Studio JSON or JSON-MIN export, or a folder of them (``*.json``,
            read in name order).
        out_dir: Output folder; created if missing.
        labels: The entity types (a domain profile's label set); default: the 17 geo types.
        label_map: Export label → label of the set, for projects that named labels otherwise.
        unit: ``sentence`` (records are sentences, merged where a span crosses) or ``task``.
        progress: Show a progress bar when there are many tasks.

    Returns:
        Counts, aligned share, output paths and the resolution rule.

    Raises:
        InputError: a missing or malformed export, naming the file, the task and the problem.
        ConfigError: a label outside the label set and not mapped, a bad label set or
            label map, or an unknown unit.
    """
    if unit not in ("sentence", "task"):
        raise ConfigError(f"unit must be 'sentence' or 'task', got {unit!r}")
    label_set = _labels(labels, label_map)
    source, out_dir = Path(source), Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output path {out_dir} is a file; give a folder")

    files = _source_files(source)
    seen: dict[Any, Path] = {}
    tasks = [t for path in files for t in _read_file(path, seen)]
    log.info("Read %d tasks from %d file(s) under %s", len(tasks), len(files), source)

    out = _Outcome()
    skipped: list[dict[str, Any]] = []
    unused: list[dict[str, Any]] = []
    converted = 0
    for task in track(tasks, "convert-annotations", unit="tasks",
                      bar=progress and len(tasks) >= PROGRESS_MIN_TASKS):
        chosen, others = _choose(task)
        for ann, reason in [*((a, "not_selected") for a in others),
                            *((a, "cancelled") for a in task.cancelled)]:
            unused.append({"file": task.file.name, "task_id": task.id,
                           "doc_name": task.doc_name, "annotation_id": ann.id,
                           "completed_by": ann.completed_by, "results": len(ann.results),
                           "reason": reason})
        if chosen is None:
            reason = "all_annotations_cancelled" if task.cancelled else "no_annotation"
            skipped.append({"file": task.file.name, "task_id": task.id,
                            "doc_name": task.doc_name, "reason": reason})
            continue
        _convert_task(task, chosen, label_set, unit, out)
        converted += 1

    label_set.check()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path, report_path = out_dir / DATA_FILE, out_dir / REPORT_FILE
    records, unaligned, notes, aligned = out.records, out.unaligned, out.notes, out.aligned
    n_aligned = sum(aligned.values())
    n_total = n_aligned + len(unaligned)  # includes no_label spans, which have no label count
    report = ConversionReport(
        source=str(source),
        unit=unit,
        files=len(files),
        tasks=len(tasks),
        tasks_converted=converted,
        tasks_skipped=len(skipped),
        annotations_unused=len(unused),
        records=len(records),
        tokens=out.tokens,
        spans_total=n_total,
        spans_aligned=n_aligned,
        spans_unaligned=len(unaligned),
        aligned_share=round(n_aligned / n_total, 6) if n_total else 1.0,
        unaligned_by_reason=dict(Counter(u["reason"] for u in unaligned).most_common()),
        per_label={x: {"total": out.total[x], "aligned": aligned[x]} for x in label_set.names},
        spans_trimmed=sum(n["reason"] == "trimmed" for n in notes),
        text_mismatches=sum(n["reason"] == "text_mismatch" for n in notes),
        results_ignored=dict(out.ignored),
        data_path=str(data_path),
        report_path=str(report_path),
    )
    atomic_write_text(data_path, _bio_json(label_set.names, records))
    full_report = {**report.model_dump(mode="json"), "unaligned_spans": unaligned,
                   "notes": notes, "skipped_tasks": skipped, "unused_annotations": unused}
    write_json(report_path, full_report, indent=1)
    log.info("Converted %d/%d tasks into %d records (%d tokens); %d/%d spans aligned (%.2f%%); "
             "wrote %s", converted, len(tasks), len(records), out.tokens, n_aligned, n_total,
             100 * report.aligned_share, data_path)
    if unaligned:
        log.warning("%d spans not in the BIO data (%s); see %s", len(unaligned),
                    report.unaligned_by_reason, report_path)
    return report
