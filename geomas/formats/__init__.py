"""Dataset formats: canonical `Example` records and readers/writers for common formats.

Light to import: `datasets`, TRL and scikit-learn are imported only by the functions that
use them.
"""

from geomas.formats.codecs import (
    FORMAT_TYPES,
    TRL_NATIVE,
    detect_format,
    parse_text,
    render_text,
    user_content,
)
from geomas.formats.example import Example, ExampleSet
from geomas.formats.instruct import format_instruct_dataset, output_paths
from geomas.formats.io import lineage_path, read_examples, write_examples
from geomas.formats.trl import formatting_func_for, trl_map_for
from geomas.formats.validate import validate_dataset

__all__ = [
    "FORMAT_TYPES",
    "TRL_NATIVE",
    "Example",
    "ExampleSet",
    "detect_format",
    "format_instruct_dataset",
    "formatting_func_for",
    "lineage_path",
    "output_paths",
    "parse_text",
    "read_examples",
    "render_text",
    "trl_map_for",
    "user_content",
    "validate_dataset",
    "write_examples",
]
