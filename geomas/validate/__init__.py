"""Data validation with Great Expectations: suites, HTML reports and the fail/warn policy."""

from geomas.validate.chunks import CHUNK_SUITE, validate_chunks
from geomas.validate.suite import ValidationSummary, run_suite

__all__ = ["CHUNK_SUITE", "ValidationSummary", "run_suite", "validate_chunks"]
