"""Data validation with Great Expectations: suites, HTML reports, the policy.

Policies: exclude_document (chunks judged per document), fail, warn.
"""

from geomas.validate.chunks import CHUNK_SUITE, validate_chunk_set, validate_chunks
from geomas.validate.suite import DocumentFailure, ValidationSummary, run_suite

__all__ = ["CHUNK_SUITE", "DocumentFailure", "ValidationSummary", "run_suite",
           "validate_chunk_set", "validate_chunks"]
