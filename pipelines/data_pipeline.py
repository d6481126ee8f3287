"""The data pipeline: documents -> chunks -> entities -> QA pairs -> clean -> split -> files."""

from __future__ import annotations

from zenml import pipeline

from geomas.config import (
    CleanConfig,
    FormatConfig,
    IngestConfig,
    NerInferenceConfig,
    QAConfig,
    SplitConfig,
    ValidationConfig,
)
from geomas.ingest.run import CHUNKS_FILE
from geomas.validate.chunks import REPORT_DIR
from steps.clean_dataset import clean_dataset
from steps.extract_entities import extract_entities
from steps.format_dataset import format_dataset
from steps.generate_qa import generate_qa
from steps.ingest_documents import ingest_documents
from steps.split_dataset import split_dataset
from steps.validate_chunks import validate_chunks
from steps.validate_examples import validate_examples
from steps.validate_qa_pairs import validate_qa_pairs


@pipeline(name="geomas_data")
def data_pipeline(
    source_dir: str,
    output_dir: str,
    ingest: IngestConfig,
    validation: ValidationConfig,
    ner: NerInferenceConfig,
    qa: QAConfig,
    clean: CleanConfig,
    split: SplitConfig,
    fmt: FormatConfig,
    dataset_name: str = "instruct_dataset",
) -> None:
    """Documents to train/val instruction files, validated at each stage.

    Without an NER model (``ner.model_path``) the run stops after chunk validation.

    Args:
        source_dir: Folder of documents.
        output_dir: Folder for every stage's outputs, rejects and reports.
        ingest: Ingestion settings.
        validation: Validation policy and thresholds (all suites); documents whose chunks
            fail are left out of NER and QA under policy exclude_document.
        ner: NER model for entity extraction.
        qa: QA synthesis settings (templates, context, teacher).
        clean: Cleaning rules.
        split: Split ratios, grouping, stratification, small-class policy.
        fmt: Output format of the instruction files.
        dataset_name: Stem of the instruction files (<name>_train.json, ...).
    """
    chunks, _summary = ingest_documents(source_dir=source_dir, output_dir=output_dir,
                                        config=ingest)
    # documents whose chunks fail validation are left out here (policy exclude_document)
    validated, _validation, _report = validate_chunks(
        chunks=chunks, config=validation, max_tokens=ingest.max_tokens,
        report_dir=f"{output_dir}/{REPORT_DIR}", chunks_path=f"{output_dir}/{CHUNKS_FILE}",
    )
    if ner.model_path is None:
        return
    entities = extract_entities(chunks=validated, config=ner, output_dir=output_dir)
    qa_pairs, _qa_summary = generate_qa(chunks=validated, entities=entities, config=qa,
                                        output_dir=output_dir)
    validate_qa_pairs(qa_pairs=qa_pairs, config=validation,
                      max_context_length=qa.max_context_length,
                      report_dir=f"{output_dir}/validation_qa")
    examples, _clean_report = clean_dataset(qa_pairs=qa_pairs, config=clean,
                                            output_dir=output_dir,
                                            after=["validate_qa_pairs"])
    splits = split_dataset(examples=examples, config=split, output_dir=output_dir)
    format_dataset(splits=splits, config=fmt, output_dir=output_dir, name=dataset_name)
    validate_examples(splits=splits, config=validation,
                      report_dir=f"{output_dir}/validation_examples")
