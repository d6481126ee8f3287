"""Dataset formats: canonical `Example` records and readers/writers for common formats.

Light to import: `datasets`, TRL and scikit-learn are imported only by the functions that
use them.
"""

from geomas.formats.codecs import (
    FORMAT_TYPES,
    LINEAGE_KEY,
    TRL_NATIVE,
    detect_format,
    parse_text,
    render_prompt,
    render_text,
    user_content,
)
from geomas.formats.example import Example, ExampleSet
from geomas.formats.instruct import FormatReport, format_instruct_dataset, output_paths
from geomas.formats.io import (
    WrittenDataset,
    lineage_path,
    read_examples,
    read_lineage,
    write_examples,
)
from geomas.formats.qa import qa_pair_to_example
from geomas.formats.records import AlpacaRecord
from geomas.formats.trl import formatting_func_for, trl_map_for
from geomas.formats.validate import DatasetIssue, DatasetReport, validate_dataset

__all__ = [
    "FORMAT_TYPES",
    "LINEAGE_KEY",
    "TRL_NATIVE",
    "AlpacaRecord",
    "DatasetIssue",
    "DatasetReport",
    "Example",
    "ExampleSet",
    "FormatReport",
    "WrittenDataset",
    "detect_format",
    "format_instruct_dataset",
    "formatting_func_for",
    "lineage_path",
    "output_paths",
    "parse_text",
    "qa_pair_to_example",
    "read_examples",
    "read_lineage",
    "render_prompt",
    "render_text",
    "trl_map_for",
    "user_content",
    "validate_dataset",
    "write_examples",
]
