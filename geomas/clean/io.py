"""Alpaca JSON/JSONL reading and writing for the cleaning and merging commands.

`clean_dataset` and `merge_datasets` take any ``reader(path) -> list[Example]``; `read_alpaca` is
the default. Records are `AlpacaRecord`s: the legal guide's ``metadata`` (provider, mode,
timestamp, version...), ``meta`` and any other keys end up in `Example.meta`, and the writer
puts id, system, label, group and meta at the top level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from geomas.errors import InputError
from geomas.formats.example import Example
from geomas.formats.io import read_examples
from geomas.formats.records import AlpacaRecord
from geomas.io import JSON_SUFFIXES, JSONL_SUFFIXES, write_json, write_jsonl

Reader = Callable[[Path], list[Example]]


def is_jsonl(path: Path) -> bool:
    """Whether `path` names a JSON Lines file (else a JSON list); other suffixes are errors.

    Raises:
        InputError: The suffix is neither .json nor .jsonl/.ndjson.
    """
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return True
    if suffix in JSON_SUFFIXES:
        return False
    raise InputError(
        f"{path}: unknown dataset suffix {path.suffix!r}; use .jsonl (one record per line) "
        "or .json (a list of records)"
    )


def read_dataset(path: Path) -> list[Example]:
    """A dataset file of any format (`read_examples`), or qa_pairs.json.

    QA pairs become examples the way the data pipeline's clean step makes them
    (`geomas.qa.records.qa_to_example`: ids are the qa_ids), so `geomas clean-dataset
    qa_pairs.json` removes the records the pipeline removes.

    Raises:
        InputError: Unreadable file or records (the message names the file and line).
    """
    from geomas.formats.qa import is_qa_pair
    from geomas.io import load_records
    from geomas.qa.records import load_qa_pairs, qa_to_example

    located = load_records(path)[1]
    if located and is_qa_pair(located[0].value):
        return [qa_to_example(pair) for pair in load_qa_pairs(path)]
    return read_examples(path)


def read_alpaca(path: Path) -> list[Example]:
    """Read a JSON list or JSON Lines file of alpaca records (`read_examples`, alpaca format).

    Records without an id get ``<file stem>-<line>`` (JSONL) or ``<file stem>-<n>`` (JSON
    list, 1-based).

    Raises:
        InputError: Unreadable file, invalid JSON or an unusable record; the message names the
            file and the line.
    """
    return read_examples(path, "alpaca", ids="position")


def write_alpaca(examples: Sequence[Example], path: Path) -> None:
    """Write examples as alpaca records: JSONL or a JSON list, by the suffix of `path`.

    Raises:
        InputError: `path` has neither a .json nor a .jsonl/.ndjson suffix.
    """
    path = Path(path)
    records = [AlpacaRecord.from_example(ex).model_dump(exclude_none=True) for ex in examples]
    if is_jsonl(path):
        write_jsonl(path, records)
    else:
        write_json(path, records)
