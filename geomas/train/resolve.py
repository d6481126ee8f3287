"""Which base model a run trains: aliases (configs/models.yaml), local folders, cached hub ids.

geomas never downloads weights: a hub id must already be in the local Hugging Face cache.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from geomas.config import ModelAlias, ModelAliases, load_yaml
from geomas.errors import ConfigError
from geomas.hashing import sha256_file

DEFAULT_MODELS_FILE = Path("configs/models.yaml")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class ResolvedModel(BaseModel):
    """A base model found on disk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Short name for output folders: the hub repo name or the folder name."""
    requested: str
    source: Literal["alias", "local", "hub-cache"]
    path: Path
    hub_id: str | None = None
    alias: str | None = None
    config_path: Path | None = None
    """The alias's default TrainSFTConfig file."""


def load_model_aliases(path: Path = DEFAULT_MODELS_FILE) -> dict[str, ModelAlias]:
    """Read configs/models.yaml through `ModelAliases`.

    Raises:
        ConfigError: Missing, malformed or invalid file.
    """
    raw = load_yaml(Path(path))
    try:
        return dict(ModelAliases.model_validate(raw).models)
    except ValidationError as exc:
        raise ConfigError(f"model aliases file {path} is invalid:\n{exc}") from exc


def resolve_model(model: str, models_file: Path | None = DEFAULT_MODELS_FILE) -> ResolvedModel:
    """Find the base model for ``model``: an alias, a local folder, or a cached hub id.

    Args:
        model: Alias name from ``models_file``, a local model folder, or a hub id.
        models_file: The aliases file; ``None`` or a missing default file: no aliases.

    Raises:
        ConfigError: Unknown alias/folder, an alias pointing nowhere, or a hub id that is not in
            the local Hugging Face cache (the message says how to provide the weights).
    """
    aliases: dict[str, ModelAlias] = {}
    if models_file is not None and (
        Path(models_file).is_file() or Path(models_file) != DEFAULT_MODELS_FILE
    ):
        aliases = load_model_aliases(models_file)
    if model in aliases:
        entry = aliases[model]
        found = _locate(entry.path_or_id, alias=model, hint=entry.description)
        return found.model_copy(
            update={
                "requested": model,
                "source": "alias",
                "alias": model,
                "config_path": entry.config,
            }
        )
    return _locate(model, alias=None, known=sorted(aliases))


def _locate(
    path_or_id: str, *, alias: str | None, known: list[str] | None = None, hint: str = ""
) -> ResolvedModel:
    folder = Path(path_or_id).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ConfigError(
                f"model folder {folder} has no config.json; pass a Hugging Face model folder"
            )
        return ResolvedModel(
            name=folder.resolve().name, requested=path_or_id, source="local", path=folder
        )
    where = f"alias {alias!r} points to {path_or_id!r}, which" if alias else f"{path_or_id!r}"
    if _HUB_ID.match(path_or_id) and not path_or_id.startswith((".", "/")):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            snapshot = Path(snapshot_download(path_or_id, local_files_only=True))
        except LocalEntryNotFoundError as exc:
            raise ConfigError(
                f"{where} is not a local folder and not in the local Hugging Face cache; "
                "geomas never downloads weights. Provide them with `hf download "
                f"{path_or_id}` on a machine with network access (then copy the cache, "
                "HF_HOME), or pass a local model folder"
            ) from exc
        return ResolvedModel(
            name=path_or_id.split("/")[-1],
            requested=path_or_id,
            source="hub-cache",
            path=snapshot,
            hub_id=path_or_id,
        )
    if re.fullmatch(r"[\w.-]+", path_or_id) and not path_or_id.startswith("."):
        # an owner-less hub id of the classic models (bert-base-multilingual-cased) counts
        # when it is in the local cache; otherwise it is most likely a mistyped folder
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            snapshot = Path(snapshot_download(path_or_id, local_files_only=True))
        except LocalEntryNotFoundError:
            pass
        else:
            return ResolvedModel(name=path_or_id, requested=path_or_id, source="hub-cache",
                                 path=snapshot, hub_id=path_or_id)
    hint = f" ({hint})" if hint else ""
    if known:
        hint += f"; known aliases: {known}"
    raise ConfigError(
        f"{where} is neither a model alias, a local model folder nor a hub id (owner/name)" + hint
    )


def model_fingerprint(path: Path) -> dict[str, object]:
    """sha256 of a model folder's config.json and weight files, and one over all of them."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    per_file = {"config.json": sha256_file(path / "config.json")}
    per_file.update({p.name: sha256_file(p) for p in files})
    combined = hashlib.sha256()
    for name, digest in per_file.items():
        combined.update(f"{name}\0{digest}\n".encode())
    return {"sha256": combined.hexdigest(), "files": per_file}
