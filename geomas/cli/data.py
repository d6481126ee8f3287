"""Data commands of the original tool and their neighbours: documents -> datasets.

makedataset, convert-annotations, extract-entities, export-annotations, generate-qa-pairs,
clean-dataset, merge-datasets, format-instruct-dataset, validate-dataset, sample-corpus. Each
calls the same stage function as the pipeline's step, with the same config model (and its
defaults).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from geomas.cli.app import (
    app,
    field_option,
    out,
    overrides,
    progress_enabled,
    section,
)
from geomas.config import (
    CleanConfig,
    FormatConfig,
    IngestConfig,
    NerInferenceConfig,
    QAConfig,
    SplitConfig,
    ValidationConfig,
)
from geomas.errors import InputError

if TYPE_CHECKING:
    from geomas.validate import ValidationSummary

ConfigFileOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Run config (configs/local.yaml) or a YAML with the "
                 "command's sections; options given on the command line win."),
]
PdfParserOpt = field_option(IngestConfig, "pdf_parser")
LayoutOpt = field_option(IngestConfig, "layout_artifacts_path", "--layout-artifacts")
MaxTokensOpt = field_option(IngestConfig, "max_tokens")
TokenizerOpt = field_option(IngestConfig, "tokenizer")
WorkersOpt = field_option(IngestConfig, "workers")
FailureRatioOpt = field_option(IngestConfig, "max_failure_ratio")
OcrOpt = field_option(IngestConfig, "ocr")
NumPairsOpt = field_option(QAConfig, "num_pairs")
QAModeOpt = field_option(QAConfig, "mode")
CleanProfileOpt = field_option(CleanConfig, "profile")
FormatTypeOpt = field_option(FormatConfig, "format_type")
SplitRatioOpt = field_option(FormatConfig, "split_ratio")
SystemPromptOpt = field_option(FormatConfig, "system_prompt")
JsonlOpt = field_option(FormatConfig, "jsonl", "--jsonl/--json-list")
SeedOpt = field_option(SplitConfig, "seed")
BatchSizeOpt = field_option(NerInferenceConfig, "batch_size")
ValidationPolicyOpt = field_option(ValidationConfig, "policy", "--validation-policy")


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
    config: ConfigFileOpt = None,
    pdf_parser: PdfParserOpt = None,
    layout_artifacts: LayoutOpt = None,
    max_tokens: MaxTokensOpt = None,
    tokenizer: TokenizerOpt = None,
    workers: WorkersOpt = None,
    max_failure_ratio: FailureRatioOpt = None,
    validation_policy: ValidationPolicyOpt = None,
    ocr: OcrOpt = None,
) -> None:
    """Parse documents into OUTPUT/chunks.json and validate their chunks per document.

    As in the data pipeline, a document whose chunks fail validation is left out of
    chunks.json (policy exclude_document); rejects go to OUTPUT/rejects.jsonl and
    OUTPUT/validation/rejects.jsonl.
    """
    from geomas.ingest import ingest_folder
    from geomas.validate.chunks import REPORT_DIR, validate_chunk_set

    ingest_config = section(config, IngestConfig, "ingest", overrides(
        pdf_parser=pdf_parser, layout_artifacts_path=layout_artifacts, max_tokens=max_tokens,
        tokenizer=tokenizer, workers=workers, max_failure_ratio=max_failure_ratio, ocr=ocr,
    ))
    validation = section(config, ValidationConfig, "validation",
                         overrides(policy=validation_policy))
    result = ingest_folder(source, output, ingest_config, progress=progress_enabled())
    print_ingest(result.report)
    validated = validate_chunk_set(
        result.kept, validation, max_tokens=ingest_config.max_tokens,
        report_dir=output / REPORT_DIR, chunks_path=Path(result.report.chunks_path),
    )
    print_validation(validated.report)


def print_ingest(summary: Any) -> None:
    """The ingest summary, as makedataset and `run data` print it."""
    out.print(f"PDF parser   : {summary.pdf_parser}")
    out.print(
        f"files {summary.files}: parsed {summary.parsed}, cached {summary.cached}, "
        f"rejected {summary.rejected}, duplicates {summary.duplicates} -> {summary.chunks} chunks"
        f" in {summary.seconds:.1f}s"
    )
    if summary.pages_ocr:
        out.print(f"OCR          : {summary.pages_ocr} pages recognised (tesseract)")
    for rule, n in sorted(summary.rejects_by_rule.items()):
        out.print(f"  rejected ({rule}): {n}", markup=False)
    out.print(f"chunks       : {summary.chunks_path}", markup=False)
    out.print(f"documents    : {summary.manifest_path}", markup=False)
    out.print(f"rejects      : {summary.rejects_path}", markup=False)


def print_validation(summary: ValidationSummary) -> None:
    """A suite's verdict and each excluded document, as makedataset and `run data` print it."""
    if summary.success:
        verdict = "passed"
    elif summary.excluded:
        verdict = f"{len(summary.excluded)} of {summary.n_documents} documents excluded"
    else:
        verdict = "FAILED"
    out.print(f"{summary.suite:<17}: {verdict} (report {summary.report_path})", markup=False)
    for doc in summary.excluded:
        out.print(f"  excluded {doc.describe()}", markup=False)


@app.command("convert-annotations")
def convert_annotations_cmd(
    source: Annotated[Path, typer.Argument(help="Label Studio JSON export (file or folder).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for bert_training_data.json.")],
    labels: Annotated[
        str | None, typer.Option("--labels", help="Comma-separated label set (default: 17 geo).")
    ] = None,
    label_map: Annotated[
        Path | None, typer.Option("--label-map", help="JSON {old_label: new_label}.")
    ] = None,
    unit: Annotated[Literal["sentence", "task"], typer.Option(
        "--unit", help="Training records per sentence or per task.")] = "sentence",
) -> None:
    """Convert Label Studio annotations to BIO training data (with an alignment report)."""
    from geomas.errors import ConfigError
    from geomas.ner.annotations import convert_annotations

    mapping = None
    if label_map is not None:
        try:
            mapping = json.loads(label_map.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--label-map {label_map}: {exc}") from exc
    label_set = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
    report = convert_annotations(source, out_dir, labels=label_set, label_map=mapping, unit=unit)
    out.print(report.model_dump_json(indent=1))


@app.command("extract-entities")
def extract_entities_cmd(
    model: Annotated[Path, typer.Argument(help="Trained NER model folder.")],
    input_file: Annotated[
        Path | None,
        typer.Option("--input-file", help="Text file, or chunks.json (one result per chunk)."),
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Text to analyse.")] = None,
    output_file: Annotated[Path | None, typer.Option("--output-file", help="entities.json")]
    = None,
    batch_size: BatchSizeOpt = None,
    config: ConfigFileOpt = None,
) -> None:
    """Extract geological entities from a text, a text file or chunks.json."""
    from geomas.ner.inference import load_bert_ner_model, write_entities

    if (input_file is None) == (text is None):
        raise InputError("give exactly one of --input-file or --text")
    cfg = section(config, NerInferenceConfig, "ner", overrides(batch_size=batch_size))
    ner = load_bert_ner_model(model, max_length=cfg.max_length, stride=cfg.stride,
                              batch_size=cfg.batch_size, min_confidence=cfg.min_confidence)
    ids: list[str] | None = None
    if text is not None:
        texts = [text]
    else:
        assert input_file is not None
        if not input_file.is_file():
            raise InputError(f"input file {input_file} does not exist")
        if input_file.suffix == ".json":
            from geomas.ingest import load_chunks

            chunks = load_chunks(input_file)
            texts = [c["text"] for c in chunks]
            ids = [c.get("chunk_id", str(i)) for i, c in enumerate(chunks)]
        else:
            texts = [input_file.read_text(encoding="utf-8")]
    results = ner.extract_batch(texts, progress=progress_enabled())
    if output_file is not None:
        write_entities(results, output_file, ids)
        n = sum(len(r.entities) for r in results)
        out.print(f"{n} entities from {len(texts)} texts -> {output_file}")
    else:
        for r in results:
            for e in r.entities:
                out.print(f"{e.label}: {e.text} (confidence: {e.confidence:.3f})", markup=False)


@app.command("export-annotations")
def export_annotations_cmd(
    chunks: Annotated[Path, typer.Argument(help="chunks.json from makedataset.")],
    output: Annotated[Path, typer.Argument(help="Label Studio tasks JSON to write.")],
    ner_model: Annotated[Path, typer.Option(
        "--ner-model", help="Trained NER model folder (train-bert-ner).")],
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Most tasks, the least confident chunks first (default: all).")]
    = None,
    kinds: Annotated[str | None, typer.Option(
        "--kinds", help="Comma-separated chunk kinds to send (config default: body).")] = None,
    batch_size: BatchSizeOpt = None,
    config: ConfigFileOpt = None,
) -> None:
    """Write Label Studio tasks with NER pre-annotations, least confident chunks first.

    Correct them in Label Studio, export JSON, then convert-annotations and train-bert-ner.
    """
    from geomas.ner.active import export_annotations

    kind_list = [x.strip() for x in kinds.split(",") if x.strip()] if kinds else None
    cfg = section(config, NerInferenceConfig, "ner", overrides(
        batch_size=batch_size, chunk_kinds=kind_list))
    report = export_annotations(chunks, ner_model, output, limit=limit, config=cfg,
                                progress=progress_enabled()).report
    out.print(f"{report.tasks} tasks of {report.candidates} chunks -> {report.out_path}",
              markup=False)
    if report.tasks:
        out.print(f"confidence   : {report.confidence_first:.4f} (first) .. "
                  f"{report.confidence_last:.4f} (last)", markup=False)
    out.print(f"pre-annotated: {report.predicted_spans} spans", markup=False)
    for kind, n in report.skipped_by_kind.items():
        out.print(f"  skipped ({kind}): {n}", markup=False)
    out.print(f"label config : {report.label_config_path}", markup=False)


@app.command("generate-qa-pairs")
def generate_qa_pairs_cmd(
    chunks: Annotated[Path, typer.Argument(help="chunks.json from makedataset.")],
    ner_model: Annotated[Path, typer.Argument(help="Trained NER model folder.")],
    output: Annotated[Path, typer.Argument(help="qa_pairs.json to write.")],
    num_pairs: NumPairsOpt = None,
    mode: QAModeOpt = None,
    config: ConfigFileOpt = None,
) -> None:
    """Synthesise Russian QA pairs from the entities in each chunk (original command).

    With a run config the `ner:` and `qa:` sections apply exactly as in `geomas run data`
    (`qa.teacher` and `qa.judge` give the LLM endpoints for --mode teacher/hybrid).
    """
    from geomas.qa import generate_qa_pairs

    qa_cfg = section(config, QAConfig, "qa", overrides(num_pairs=num_pairs, mode=mode))
    ner_cfg = section(config, NerInferenceConfig, "ner", {})
    summary = generate_qa_pairs(chunks, ner_model, output, None, qa_cfg, ner_config=ner_cfg,
                                progress=progress_enabled()).report
    out.print(f"{summary.pairs} QA pairs from {summary.chunks} chunks -> {summary.out_path}")
    for rule, n in summary.rejects_by_rule.items():
        out.print(f"  rejected ({rule}): {n}", markup=False)
    out.print(f"rejects      : {summary.rejects_path}", markup=False)


@app.command("clean-dataset")
def clean_dataset_cmd(
    source: Annotated[Path, typer.Argument(
        help="Dataset JSON/JSONL (any supported format), or qa_pairs.json.")],
    output: Annotated[Path, typer.Argument(help="Cleaned dataset (.json or .jsonl).")],
    profile: CleanProfileOpt = None,
    config: ConfigFileOpt = None,
) -> None:
    """Normalise, filter and deduplicate a dataset; rejects and a per-rule report beside it."""
    from geomas.clean import clean_dataset
    from geomas.clean.io import read_dataset

    cfg = section(config, CleanConfig, "clean", overrides(profile=profile))
    report = clean_dataset(source, output, cfg.profile, cfg, reader=read_dataset)
    out.print(f"kept {report.kept} of {report.records_in} -> {report.output_path}")
    for rule, n in report.counts.items():
        if n:
            out.print(f"  {rule}: {n}", markup=False)
    out.print(f"rejects      : {report.rejects_path}", markup=False)
    out.print(f"report       : {report.report_path}", markup=False)


@app.command("merge-datasets")
def merge_datasets_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="Input files, then the output file.")],
) -> None:
    """Merge JSON/JSONL datasets keeping provenance (source file, provider, mode, timestamp)."""
    from geomas.clean import merge_datasets

    if len(inputs) < 2:
        raise InputError("give at least one input file and the output file")
    report = merge_datasets(inputs[:-1], inputs[-1])
    out.print(report.model_dump_json(indent=1))


@app.command("format-instruct-dataset")
def format_instruct_dataset_cmd(
    qa: Annotated[Path, typer.Argument(help="qa_pairs.json (or any dataset file).")],
    output: Annotated[Path, typer.Argument(help="OUT.json -> OUT_train.json, OUT_val.json.")],
    format_type: FormatTypeOpt = None,
    split_ratio: SplitRatioOpt = None,
    jsonl: JsonlOpt = None,
    system_prompt: SystemPromptOpt = None,
    seed: SeedOpt = None,
    config: ConfigFileOpt = None,
    clean: Annotated[bool, typer.Option(
        "--clean/--no-clean", help="Clean the records first (the `clean:` section), as the "
        "data pipeline does.")] = True,
) -> None:
    """Write instruction datasets (train/val) from QA pairs, like the original tool."""
    from geomas.formats.instruct import format_instruct_dataset

    fmt = section(config, FormatConfig, "format", overrides(
        format_type=format_type, split_ratio=split_ratio, jsonl=jsonl,
        system_prompt=system_prompt))
    split = section(config, SplitConfig, "split", overrides(seed=seed))
    report = format_instruct_dataset(
        qa, output, config=fmt, split=split,
        clean=section(config, CleanConfig, "clean", {}) if clean else None,
    )
    for name, n in report.records.items():
        out.print(f"{name:<6}: {n} records -> {report.files[name]}", markup=False)
    if report.n_rejected:
        out.print(f"rejected: {report.n_rejected} -> {report.files['rejects']}", markup=False)


@app.command("validate-dataset")
def validate_dataset_cmd(
    path: Annotated[Path, typer.Argument(help="Dataset JSON/JSONL file.")],
) -> None:
    """Check a dataset file: JSON vs JSONL, UTF-8, field consistency, empty fields."""
    from geomas.formats.validate import validate_dataset

    report = validate_dataset(path)
    for problem in report.issues:
        out.print(str(problem), markup=False)
    if not report.valid:
        raise InputError(f"{path}: {len(report.errors)} errors")
    out.print(f"{path}: valid ({report.records} records, format {report.format_type})")
