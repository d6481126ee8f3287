r"""QA pairs (``qa_pairs.json``, the original schema) → instruction `Example`\ s.

The conversion itself is `geomas.qa.records.qa_to_example` (instruction = task description
from `geomas.qa.templates.TASK_DESCRIPTIONS`, a blank line and ``Вопрос: <question>``;
input = context; output = answer; label = entity type; group = doc_id). This module adapts it
to raw records: empty texts are refused, and a pair without ``doc_id`` is grouped by a hash of
its source text, so pairs made from one chunk never land in different splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from geomas.formats.example import Example

#: Prefix of the group of a pair without doc_id: ``src-<sha1 of source_text>``.
SOURCE_GROUP_PREFIX = "src-"


def is_qa_pair(record: Any) -> bool:
    """Whether a record has the QA-pair keys ``question`` and ``answer``."""
    return isinstance(record, Mapping) and "question" in record and "answer" in record


def qa_pair_to_example(pair: Mapping[str, Any]) -> Example:
    """One raw QA pair record as an `Example`.

    Args:
        pair: A record of ``qa_pairs.json`` (the original five keys, optionally with geomas's
            lineage keys).

    Returns:
        The example; meta holds the pair's lineage (qa_id, chunk_id, doc_id, template...).

    Raises:
        ValueError: A text field is missing or empty, or the record does not fit `QAPair`
            (the message names the field).
    """
    from pydantic import ValidationError

    from geomas.qa.records import QAPair, qa_to_example

    for key in ("question", "answer", "entity_type"):
        value = pair.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key} is missing or empty")
    try:
        qa = QAPair.model_validate(dict(pair))
    except ValidationError as exc:
        raise ValueError("; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
            for err in exc.errors()
        )) from exc
    example = qa_to_example(qa)
    if example.group is None and qa.source_text:
        digest = hashlib.sha1(qa.source_text.encode("utf-8")).hexdigest()[:16]
        example = example.model_copy(update={"group": f"{SOURCE_GROUP_PREFIX}{digest}"})
    return example
