"""geomas: domain documents -> instruction datasets -> QLoRA-tuned LLM, as ZenML pipelines."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("geomas")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
