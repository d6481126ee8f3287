"""Content hashes: the sha256 of a file's bytes (document ids, dataset and model fingerprints)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks (`hashlib.file_digest`)."""
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
