"""Dataset cleaning and merging: normalise, filter, deduplicate, report instruction diversity.

`clean_examples` works on `Example`s (rules in a fixed order, every removed record with its
rule and reason); `clean_dataset` and `merge_datasets` are the file-level functions behind
``geomas clean-dataset`` and ``geomas merge-datasets``.
"""

from geomas.clean.clean import CleanResult, clean_examples
from geomas.clean.dataset import clean_dataset
from geomas.clean.diversity import diversity_report, instruction_template
from geomas.clean.io import read_alpaca, write_alpaca
from geomas.clean.merge import merge_datasets
from geomas.clean.normalize import normalize_text
from geomas.clean.rules import RULE_ORDER, grounding_share

__all__ = [
    "RULE_ORDER",
    "CleanResult",
    "clean_dataset",
    "clean_examples",
    "diversity_report",
    "grounding_share",
    "instruction_template",
    "merge_datasets",
    "normalize_text",
    "read_alpaca",
    "write_alpaca",
]
