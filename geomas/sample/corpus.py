"""Generate a synthetic corpus of Russian geological deposit reports with gold NER spans.

`generate_sample_corpus` writes born-digital PDFs and DOCX files into ``docs/``, a Label Studio
export with one task per report section into ``annotations/``, and ``corpus_manifest.json``.
Every report mentions all 17 entity types of `geomas.ner.labels.GEO_ENTITY_TYPES`; the gold
spans are computed from exactly the paragraph text written into the documents. The output is
byte-identical for the same ``seed`` and ``docs``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from geomas.errors import InputError
from geomas.io import write_json
from geomas.ner.labels import GEO_LABELS
from geomas.sample.templates import (
    FILLERS,
    SECTIONS,
    TEMPLATES,
    TITLES,
    DocContext,
    SectionSpec,
    build_context,
    parse_marked,
)
from geomas.sample.vocab import DEPOSIT_NAMES, DepositName, num
from geomas.sample.writers import (
    ENCRYPTED_OWNER_PASSWORD,
    ENCRYPTED_USER_PASSWORD,
    Report,
    Section,
    corrupt_pdf,
    not_a_document,
    render_docx,
    render_pdf,
    require_demo_extra,
)

logger = logging.getLogger(__name__)

# Name prefixes that make deposit names unique beyond the base list («Северо-Агинское»).
_NAME_PREFIXES: tuple[tuple[str, str], ...] = (
    ("", ""),
    ("Северо-", "severo_"),
    ("Южно-", "yuzhno_"),
    ("Восточно-", "vostochno_"),
    ("Западно-", "zapadno_"),
    ("Ново-", "novo_"),
    ("Верхне-", "verkhne_"),
    ("Нижне-", "nizhne_"),
)
MAX_DOCS = len(DEPOSIT_NAMES) * len(_NAME_PREFIXES)
TEST_FRACTION = 0.25
PARAGRAPH_SEPARATOR = "\n\n"
SPLIT_RULE = (
    "by document: n_test = round(0.25 * docs), at least 1 when docs >= 2 and 0 when docs == 1; "
    "the test documents are random.Random('geomas-sample:<seed>:split').sample(range(docs), "
    "n_test); all others are train"
)
ANNOTATIONS_NAME = "label_studio_export.json"
MANIFEST_NAME = "corpus_manifest.json"

Split = Literal["train", "test"]
Format = Literal["pdf", "docx"]
BadKind = Literal["corrupt", "encrypted", "empty", "not_a_document"]


class SampleDocument(BaseModel):
    """One generated report as recorded in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    doc_index: int
    format: Format
    split: Split
    pages: int | None
    deposit: str
    region: str
    deposit_type: str
    sections: int
    entity_counts: dict[str, int]


class BadFile(BaseModel):
    """A deliberately unusable file added with ``with_bad_files``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    kind: BadKind


class SampleCorpus(BaseModel):
    """Where the sample corpus was written and what it contains."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    out_dir: Path
    docs_dir: Path
    annotations_path: Path
    manifest_path: Path
    seed: int
    documents: tuple[SampleDocument, ...]
    bad_files: tuple[BadFile, ...]
    n_tasks: int
    n_entities: int

    @property
    def n_train(self) -> int:
        """Number of train documents."""
        return sum(d.split == "train" for d in self.documents)

    @property
    def n_test(self) -> int:
        """Number of test documents."""
        return sum(d.split == "test" for d in self.documents)


def _rng(seed: int, purpose: str) -> random.Random:
    """A generator for one purpose, so that e.g. document 3 does not depend on ``docs``."""
    return random.Random(f"geomas-sample:{seed}:{purpose}")


def _deposit_names(seed: int, docs: int) -> list[DepositName]:
    """Unique deposit names (with their Latin slugs), in a seed-dependent order."""
    order = list(range(len(DEPOSIT_NAMES)))
    _rng(seed, "names").shuffle(order)
    names = []
    for i in range(docs):
        prefix, slug_prefix = _NAME_PREFIXES[i // len(order)]
        base = DEPOSIT_NAMES[order[i % len(order)]]
        names.append(DepositName(prefix + base.nom, prefix + base.masc, slug_prefix + base.slug))
    return names


def _split(seed: int, docs: int) -> list[Split]:
    n_test = 0 if docs < 2 else max(1, round(TEST_FRACTION * docs))
    test = set(_rng(seed, "split").sample(range(docs), n_test))
    return ["test" if i in test else "train" for i in range(docs)]


def _formats(seed: int, docs: int) -> list[Format]:
    """About a quarter DOCX (at least one when docs >= 2), the rest PDF."""
    n_docx = (docs + 2) // 4
    docx_idx = set(_rng(seed, "formats").sample(range(docs), n_docx))
    return ["docx" if i in docx_idx else "pdf" for i in range(docs)]


def _table(ctx: DocContext) -> tuple[tuple[str, ...], ...]:
    c0, c1 = ctx.c0, ctx.c1
    header = (
        "Рудное тело",
        f"{c0.sym}, {c0.unit}",
        f"{c1.sym}, {c1.unit}",
        "Руда, тыс. т",
        f"Запасы {c0.sym}, {c0.metal_unit}",
    )
    rows = [
        (
            f"{ctx.profile.body.nom.capitalize()} {row.name}",
            num(row.grade0, c0.decimals),
            num(row.grade1, c1.decimals),
            num(row.ore_kt, 0),
            num(c0.metal(row.ore_kt, row.grade0), 2),
        )
        for row in ctx.bodies
    ]
    total = (
        "Итого",
        num(ctx.grade0, c0.decimals),
        num(ctx.grade1, c1.decimals),
        num(ctx.total_ore_kt, 0),
        num(ctx.total_metal0, 2),
    )
    return (header, *rows, total)


def _section_text(
    spec: SectionSpec,
    ctx: DocContext,
    r: random.Random,
    pools: dict[str, list[Callable[[DocContext, random.Random], str]]],
) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Draw the sentences of one section; return its paragraphs and spans in the joined text."""
    sentences: list[str] = []
    for label in spec.types:
        pool = pools[label]
        k = min(len(pool), r.randint(2, 3))
        if k == 0:
            raise RuntimeError(f"no template left for {label} in section {spec.key}")
        # Random templates, but in their catalogue order: location before coordinates,
        # discovery before exploration.
        chosen = sorted((pool.pop() for _ in range(k)), key=TEMPLATES[label].index)
        sentences += [template(ctx, r) for template in chosen]
    fillers = r.sample(FILLERS[spec.key], min(len(FILLERS[spec.key]), r.randint(1, 2)))
    for filler in fillers:
        # Never before the first sentence: a section opens with its main statement.
        sentences.insert(r.randint(1, len(sentences)), filler(ctx, r))
    cut = r.randint(2, len(sentences) - 2) if len(sentences) >= 6 else len(sentences)
    marked_paragraphs = [" ".join(sentences[:cut]), " ".join(sentences[cut:])]
    paragraphs: list[str] = []
    spans: list[tuple[int, int, str]] = []
    offset = 0
    for marked in filter(None, marked_paragraphs):
        plain, local = parse_marked(marked)
        if plain != " ".join(plain.split()):
            raise RuntimeError(f"template produced irregular whitespace: {plain!r}")
        if paragraphs:
            offset += len(PARAGRAPH_SEPARATOR)
        spans += [(offset + a, offset + b, label) for a, b, label in local]
        paragraphs.append(plain)
        offset += len(plain)
    return paragraphs, spans


def _build_report(
    seed: int, index: int, name: DepositName
) -> tuple[Report, DocContext, list[tuple[str, str, list[tuple[int, int, str]]]]]:
    """Draw one report; return it, its context and ``(heading, task_text, spans)`` per section."""
    r = _rng(seed, f"doc:{index}")
    ctx = build_context(r, name)
    pools = {}
    for label, templates in TEMPLATES.items():
        pool = list(templates)
        r.shuffle(pool)
        pools[label] = pool
    sections: list[Section] = []
    tasks: list[tuple[str, str, list[tuple[int, int, str]]]] = []
    for number, spec in enumerate(SECTIONS, start=1):
        heading = f"{number}. {r.choice(spec.headings)}"
        paragraphs, spans = _section_text(spec, ctx, r, pools)
        table = _table(ctx) if spec.has_table else None
        caption = (
            f"Таблица 1 – Запасы {ctx.name.gen} месторождения по рудным телам" if table else None
        )
        sections.append(Section(heading, tuple(paragraphs), table, caption))
        tasks.append((heading, PARAGRAPH_SEPARATOR.join(paragraphs), spans))
    report = Report(
        title=r.choice(TITLES)(ctx),
        author=ctx.authors[0],
        subject=f"{ctx.name.nom} {ctx.profile.kind_adj} месторождение, {ctx.region.nom}",
        sections=tuple(sections),
    )
    return report, ctx, tasks


def _result_id(seed: int, task_id: int, k: int) -> str:
    return hashlib.sha1(f"{seed}:{task_id}:{k}".encode()).hexdigest()[:10]


def _ls_task(
    seed: int,
    task_id: int,
    text: str,
    spans: list[tuple[int, int, str]],
    data: dict[str, Any],
) -> dict[str, Any]:
    """One task of a Label Studio JSON export (full format) with a completed annotation."""
    result = [
        {
            "id": _result_id(seed, task_id, k),
            "from_name": "label",
            "to_name": "text",
            "type": "labels",
            "origin": "manual",
            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]},
        }
        for k, (start, end, label) in enumerate(spans)
    ]
    return {
        "id": task_id,
        "data": {"text": text, **data},
        "annotations": [
            {
                "id": task_id,
                "completed_by": 1,
                "result": result,
                "was_cancelled": False,
                "ground_truth": True,
                "created_at": "2024-01-01T00:00:00.000000Z",
                "updated_at": "2024-01-01T00:00:00.000000Z",
                "lead_time": 0.0,
                "task": task_id,
            }
        ],
        "predictions": [],
        "meta": {},
    }


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> tuple[Path, Path]:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output path {out_dir} exists and is not a folder; choose a folder path")
    docs_dir = out_dir / "docs"
    ann_dir = out_dir / "annotations"
    if docs_dir.is_dir() and any(docs_dir.iterdir()):
        if not overwrite:
            raise InputError(
                f"{docs_dir} already contains files; choose an empty output folder or pass "
                "overwrite=True (CLI: --overwrite) to replace the previous sample corpus"
            )
        logger.info("Removing the previous sample corpus in %s", out_dir)
        shutil.rmtree(docs_dir)
    if overwrite and ann_dir.is_dir():
        shutil.rmtree(ann_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    return docs_dir, ann_dir


def _write_bad_files(seed: int, docs_dir: Path) -> list[BadFile]:
    r = _rng(seed, "bad-files")
    report, _, _ = _build_report(seed, -1, DepositName("Закрытое", "Закрытый", "zakrytoe"))
    encrypted, _ = render_pdf(report, encrypt=True)
    files: list[tuple[str, BadKind, bytes]] = [
        ("corrupt.pdf", "corrupt", corrupt_pdf(r)),
        ("encrypted.pdf", "encrypted", encrypted),
        ("empty.pdf", "empty", b""),
        ("photo.jpg", "not_a_document", not_a_document(r)),
    ]
    bad = []
    for file_name, kind, data in files:
        (docs_dir / file_name).write_bytes(data)
        bad.append(BadFile(file=file_name, kind=kind))
    return bad


def _bad_file_entry(bad: BadFile) -> dict[str, str]:
    entry = bad.model_dump()
    if bad.kind == "encrypted":
        entry |= {
            "user_password": ENCRYPTED_USER_PASSWORD,
            "owner_password": ENCRYPTED_OWNER_PASSWORD,
        }
    return entry


def generate_sample_corpus(
    out_dir: Path,
    docs: int = 12,
    seed: int = 0,
    with_bad_files: bool = False,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SampleCorpus:
    """Write a synthetic corpus of Russian deposit reports with gold entity annotations.

    Layout of ``out_dir``:

    - ``docs/report_NNN_<deposit>.pdf|.docx``: about 3/4 PDF (2+ pages, embedded DejaVu Sans),
      1/4 DOCX; each report has a title, six numbered sections and a reserves table.
    - ``annotations/label_studio_export.json``: Label Studio export, one task per section;
      ``data.text`` is the section's paragraphs joined by a blank line (heading, caption and
      table excluded), spans are code-point offsets into it.
    - ``corpus_manifest.json``: seed, split rule, documents with pages and entity counts,
      bad files.

    Args:
        out_dir: Output folder; created if missing.
        docs: Number of reports, 1 to `MAX_DOCS`.
        seed: Seed of every random choice; the same seed and ``docs`` give identical bytes.
        with_bad_files: Also write ``corrupt.pdf``, ``encrypted.pdf``, ``empty.pdf`` and
            ``photo.jpg`` into ``docs/`` to exercise rejection paths.
        overwrite: Replace ``docs/`` and ``annotations/`` of a previous corpus in ``out_dir``.
        progress: Called as ``progress(done, total)`` after each report (e.g. a progress bar).

    Returns:
        Paths and counts of what was written.

    Raises:
        InputError: ``docs`` is out of range, ``out_dir`` is a file, or ``out_dir/docs`` is not
            empty and ``overwrite`` is false.
        MissingExtraError: reportlab or python-docx is missing (``pip install 'geomas[demo]'``).
    """
    if not 1 <= docs <= MAX_DOCS:
        raise InputError(f"docs must be between 1 and {MAX_DOCS}, got {docs}")
    require_demo_extra()  # before anything in out_dir is replaced
    out_dir = Path(out_dir)
    docs_dir, ann_dir = _prepare_out_dir(out_dir, overwrite)

    names = _deposit_names(seed, docs)
    splits = _split(seed, docs)
    formats = _formats(seed, docs)
    documents: list[SampleDocument] = []
    ls_tasks: list[dict[str, Any]] = []
    for index in range(docs):
        report, ctx, tasks = _build_report(seed, index, names[index])
        file_name = f"report_{index + 1:03d}_{names[index].slug}.{formats[index]}"
        pages: int | None = None
        if formats[index] == "pdf":
            data, pages = render_pdf(report)
        else:
            data = render_docx(report)
        (docs_dir / file_name).write_bytes(data)

        counts: Counter[str] = Counter()
        for heading, text, spans in tasks:
            counts.update(label for _, _, label in spans)
            task_id = len(ls_tasks) + 1
            meta = {
                "doc_name": file_name,
                "doc_index": index,
                "split": splits[index],
                "section": heading,
            }
            ls_tasks.append(_ls_task(seed, task_id, text, spans, meta))
        missing = [label for label in GEO_LABELS if not counts[label]]
        if missing:
            raise RuntimeError(f"report {file_name} lacks entity types {missing}")
        documents.append(
            SampleDocument(
                file=file_name,
                doc_index=index,
                format=formats[index],
                split=splits[index],
                pages=pages,
                deposit=ctx.name.nom,
                region=ctx.region.nom,
                deposit_type=ctx.profile.key,
                sections=len(tasks),
                entity_counts={label: counts[label] for label in GEO_LABELS},
            )
        )
        logger.debug("Wrote %s (%s, %s pages)", file_name, splits[index], pages)
        if progress is not None:
            progress(index + 1, docs)

    bad_files = _write_bad_files(seed, docs_dir) if with_bad_files else []

    annotations_path = ann_dir / ANNOTATIONS_NAME
    write_json(annotations_path, ls_tasks)
    manifest_path = out_dir / MANIFEST_NAME
    n_entities = sum(sum(d.entity_counts.values()) for d in documents)
    manifest = {
        "generator": "geomas.sample.generate_sample_corpus",
        "seed": seed,
        "docs": docs,
        "split_rule": SPLIT_RULE,
        "task_text": "section paragraphs joined by a blank line; heading, caption, table excluded",
        "docs_dir": "docs",
        "annotations": f"annotations/{ANNOTATIONS_NAME}",
        "entity_types": list(GEO_LABELS),
        "documents": [d.model_dump() for d in documents],
        "bad_files": [_bad_file_entry(b) for b in bad_files],
        "totals": {
            "documents": docs,
            "train": splits.count("train"),
            "test": splits.count("test"),
            "tasks": len(ls_tasks),
            "entities": n_entities,
        },
    }
    write_json(manifest_path, manifest)
    corpus = SampleCorpus(
        out_dir=out_dir,
        docs_dir=docs_dir,
        annotations_path=annotations_path,
        manifest_path=manifest_path,
        seed=seed,
        documents=tuple(documents),
        bad_files=tuple(bad_files),
        n_tasks=len(ls_tasks),
        n_entities=n_entities,
    )
    logger.info(
        "Sample corpus: %d documents (%d train, %d test), %d tasks, %d entities, "
        "%d bad files in %s",
        docs,
        corpus.n_train,
        corpus.n_test,
        len(ls_tasks),
        n_entities,
        len(bad_files),
        out_dir,
    )
    return corpus
