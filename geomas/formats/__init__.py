"""Dataset formats: canonical `Example` records and readers/writers for common formats."""

from geomas.formats.example import Example

__all__ = ["Example"]
