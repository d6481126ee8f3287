"""The geomas error hierarchy: messages say what was wrong, with which value, and what to do."""

from __future__ import annotations


class GeomasError(Exception):
    """Base class for every error geomas raises on purpose."""


class ConfigError(GeomasError):
    """A configuration file or option is missing or invalid."""


class InputError(GeomasError):
    """User input (a file, folder or record) cannot be used."""


class IngestError(GeomasError):
    """Document ingestion failed as a whole (too many rejects, nothing to read)."""


class ValidationFailed(GeomasError):
    """A data validation suite failed under policy `fail`."""


class StackError(GeomasError):
    """The embedded ZenML/MLflow stack could not be set up."""


class MissingExtraError(GeomasError):
    """An optional dependency is missing; the message names the extra to install."""


class TrackingUnreachable(StackError):
    """The MLflow tracking or registry server does not answer; `uri` is the (masked) URI."""

    def __init__(self, message: str, uri: str = "") -> None:
        """Keep the URI the error is about."""
        super().__init__(message)
        self.uri = uri
