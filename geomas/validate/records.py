"""Great Expectations suites on QA pairs and on formatted instruction examples.

As with chunks, GX sees a derived table (ids, lengths, shares, flags), never the texts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geomas.config import ValidationConfig
from geomas.errors import InputError
from geomas.formats.example import Example
from geomas.text import cyrillic_share
from geomas.validate.suite import ValidationSummary, run_suite

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

QA_SUITE = "geomas_qa_pairs"
EXAMPLE_SUITE = "geomas_examples"
QA_REQUIRED = ("question", "answer", "entity_type", "source_text", "context")


def qa_frame(pairs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per QA pair: id, lengths, Cyrillic share, grounding flags."""
    import pandas as pd

    rows = []
    for k, p in enumerate(pairs):
        missing = [f for f in QA_REQUIRED if f not in p]
        if missing:
            raise InputError(f"QA pair #{k} (qa_id={p.get('qa_id')!r}) lacks {', '.join(missing)}")
        context = p["context"] or ""
        answer = p["answer"] or ""
        # Teacher answers are written by the LLM, not cut from the text; the teacher already
        # rejects answers whose words are not grounded in the context.
        by_teacher = str(p.get("generator") or "").startswith("teacher:")
        rows.append({
            "qa_id": p.get("qa_id") or None,
            "entity_type": p["entity_type"],
            "question_chars": len(p["question"] or ""),
            "answer_chars": len(answer),
            "context_chars": len(context),
            "question_cyrillic": cyrillic_share(p["question"] or ""),
            "answer_in_context": bool(answer)
            and (by_teacher or answer in context or not context),
            "answer_in_source": bool(answer)
            and (by_teacher or answer in (p["source_text"] or "")),
        })
    frame = pd.DataFrame(rows, columns=["qa_id", "entity_type", "question_chars", "answer_chars",
                                        "context_chars", "question_cyrillic",
                                        "answer_in_context", "answer_in_source"])
    return frame.astype({"question_cyrillic": "Float64"})


def validate_qa_pairs(
    pairs: Sequence[Mapping[str, Any]],
    config: ValidationConfig,
    *,
    entity_types: Sequence[str],
    max_context_length: int,
    report_dir: Path,
) -> ValidationSummary:
    """Run the QA-pair suite.

    Checks: ids unique, non-empty question/answer, known entity type, context within the limit,
    answer grounded in context and source, questions in the profile's script.
    """
    import great_expectations.expectations as gxe

    expectations = [
        gxe.ExpectColumnValuesToNotBeNull(column="qa_id"),
        gxe.ExpectColumnValuesToBeUnique(column="qa_id"),
        gxe.ExpectColumnValuesToBeBetween(column="question_chars", min_value=5),
        gxe.ExpectColumnValuesToBeBetween(column="answer_chars", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="context_chars", max_value=max_context_length),
        gxe.ExpectColumnValuesToBeInSet(column="entity_type", value_set=list(entity_types)),
        gxe.ExpectColumnValuesToBeInSet(column="answer_in_context", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="answer_in_source", value_set=[True]),
        gxe.ExpectColumnValuesToBeBetween(
            column="question_cyrillic", min_value=config.cyrillic_min, mostly=config.mostly
        ),
    ]
    return run_suite(qa_frame(pairs), expectations, suite_name=QA_SUITE, report_dir=report_dir,
                     policy=config.policy, id_column="qa_id", record_kind="QA pairs")


def example_frame(examples: Sequence[Example], split_of: Mapping[str, str]) -> pd.DataFrame:
    """One row per example: id, split, lengths, label, group, Cyrillic share of its text."""
    import pandas as pd

    rows = [{
        "id": e.id,
        "split": split_of.get(e.id),
        "instruction_chars": len(e.instruction),
        "output_chars": len(e.output),
        "label": e.label,
        "group": e.group,
        # the same text the cleaning stage's script rule judges
        "text_cyrillic": cyrillic_share(f"{e.instruction}\n{e.input}\n{e.output}"),
    } for e in examples]
    frame = pd.DataFrame(rows, columns=["id", "split", "instruction_chars", "output_chars",
                                        "label", "group", "text_cyrillic"])
    return frame.astype({"text_cyrillic": "Float64"})


def validate_examples(
    splits: Mapping[str, Sequence[Example]],
    config: ValidationConfig,
    *,
    report_dir: Path,
    max_chars: int | None = None,
) -> ValidationSummary:
    """Run the formatted-records suite over all splits.

    Checks: ids unique across splits, no empty instruction or output, label and group present,
    instruction+input+output in the profile's script (as the cleaning rule judges it).
    """
    import great_expectations.expectations as gxe

    split_of = {e.id: name for name, exs in splits.items() for e in exs}
    examples = [e for exs in splits.values() for e in exs]
    limit = max_chars or config.max_chars
    expectations = [
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToNotBeNull(column="split"),
        gxe.ExpectColumnValuesToBeBetween(column="instruction_chars", min_value=1,
                                          max_value=limit),
        gxe.ExpectColumnValuesToBeBetween(column="output_chars", min_value=1, max_value=limit),
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnValuesToNotBeNull(column="group"),
        gxe.ExpectColumnValuesToBeBetween(
            column="text_cyrillic", min_value=config.cyrillic_min, mostly=config.mostly
        ),
    ]
    return run_suite(example_frame(examples, split_of), expectations, suite_name=EXAMPLE_SUITE,
                     report_dir=report_dir, policy=config.policy, id_column="id",
                     record_kind="examples")
