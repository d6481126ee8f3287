"""What geomas accepts from the model registry: pickle-free files under a signed manifest.

Anyone with write access to an MLflow registry can register a version and point an alias at
it, and `mlflow.pyfunc.load_model` of a pickled pyfunc runs whatever the pickle carries. So
geomas registers models as files it can read without executing anything (safetensors weights,
JSON configs, tokenizer files) plus a manifest of their sha256 digests and the settings needed
to load them, and its loaders never unpickle or run stored code: they download the files,
check every digest against the manifest, check the manifest against the digest recorded on the
version at registration and — when ``GEOMAS_REGISTRY_KEY`` is set — its HMAC signature, and
only then build the model from the files with geomas's own code.

The HMAC key is held by the registry writers (the training pipeline, people who promote);
without it a manifest can be forged by anyone who can write to the registry, but what it lists
can still only be data files, never code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from geomas.errors import GeomasError
from geomas.hashing import sha256_file

log = logging.getLogger(__name__)

#: Version tag: who registered the version ("geomas" for versions geomas wrote).
REGISTERED_BY_TAG = "geomas.registered_by"
#: Version tag: sha256 of the manifest file.
MANIFEST_TAG = "geomas.manifest_sha256"
#: Version tag: HMAC-SHA256 of the manifest digest (when the writer had a key).
SIGNATURE_TAG = "geomas.signature"
REGISTERED_BY = "geomas"
MANIFEST_NAME = "geomas_manifest.json"
SIGNATURE_NAME = "geomas_manifest.sig"
#: Environment variable with the registry signing key (or GEOMAS_REGISTRY_KEY_FILE: a file).
KEY_ENV = "GEOMAS_REGISTRY_KEY"
KEY_FILE_ENV = "GEOMAS_REGISTRY_KEY_FILE"

#: File suffixes a registered model folder may hold: data, never code or pickles.
SAFE_SUFFIXES = frozenset({".json", ".safetensors", ".txt", ".jinja", ".model", ".md"})
#: Pickle-based or executable files that are never registered nor loaded.
UNSAFE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".py", ".so",
                             ".npy", ".npz", ".joblib"})


class UntrustedModel(GeomasError):
    """A registry version geomas will not load.

    Not written by geomas, changed files, a bad signature or files that could execute code.
    """


class Manifest(BaseModel):
    """The files of a registered model folder and how to load them."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="adapter (causal-lm or sequence-classification) or ner.")
    files: dict[str, str] = Field(description="Relative path -> sha256, every file but the "
                                  "manifest and its signature.")
    settings: dict[str, Any] = Field(default_factory=dict,
                                     description="What the loader needs (base model path and "
                                     "fingerprint, 4-bit, dtype, task, prompt style...).")

    def digest(self) -> str:
        """sha256 of the canonical JSON (what the version tag and the signature cover)."""
        return hashlib.sha256(_canonical(self)).hexdigest()


def _canonical(manifest: Manifest) -> bytes:
    return json.dumps(manifest.model_dump(mode="json"), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def registry_key() -> bytes | None:
    """The signing key from GEOMAS_REGISTRY_KEY or the file named by GEOMAS_REGISTRY_KEY_FILE."""
    value = os.environ.get(KEY_ENV)
    if value:
        return value.encode("utf-8")
    path = os.environ.get(KEY_FILE_ENV)
    if path:
        try:
            return Path(path).read_bytes().strip()
        except OSError as exc:
            raise UntrustedModel(f"{KEY_FILE_ENV}={path} cannot be read ({exc}); point it at "
                                 "the registry key file or unset it") from exc
    return None


def sign(digest: str, key: bytes) -> str:
    """HMAC-SHA256 of a manifest digest."""
    return hmac.new(key, digest.encode("ascii"), hashlib.sha256).hexdigest()


def stage_files(src: Path, dest: Path) -> list[str]:
    """Copy the loadable files of a model folder to `dest`; return the names left out.

    Only top-level files with a `SAFE_SUFFIXES` suffix are copied: checkpoints (optimizer
    state, pickled RNG state), ``training_args.bin`` and PyTorch ``.bin`` weights stay behind.

    Raises:
        UntrustedModel: the folder has no safetensors weights to register.
    """
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    skipped = []
    for path in sorted(src.iterdir()):
        if path.is_file() and not path.is_symlink() and path.suffix.lower() in SAFE_SUFFIXES:
            shutil.copy2(path, dest / path.name)
        else:
            skipped.append(path.name + ("/" if path.is_dir() else ""))
    if not any(dest.glob("*.safetensors")):
        raise UntrustedModel(f"{src} holds no .safetensors weights; save the model with "
                             "safe_serialization (the default) before registering it")
    return skipped


def write_manifest(folder: Path, kind: str, settings: Mapping[str, Any]) -> Manifest:
    """Write `MANIFEST_NAME` (and `SIGNATURE_NAME` when a key is set) into a staged folder."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256_file(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name not in (MANIFEST_NAME, SIGNATURE_NAME)}
    manifest = Manifest(kind=kind, files=files, settings=dict(settings))
    (folder / MANIFEST_NAME).write_bytes(_canonical(manifest))
    key = registry_key()
    if key is not None:
        (folder / SIGNATURE_NAME).write_text(sign(manifest.digest(), key), encoding="ascii")
    return manifest


def version_tags(folder: Path) -> dict[str, str]:
    """The trust tags of a staged folder: registered by geomas, manifest digest, signature."""
    folder = Path(folder)
    tags = {REGISTERED_BY_TAG: REGISTERED_BY,
            MANIFEST_TAG: hashlib.sha256((folder / MANIFEST_NAME).read_bytes()).hexdigest()}
    sig = folder / SIGNATURE_NAME
    if sig.is_file():
        tags[SIGNATURE_TAG] = sig.read_text("ascii").strip()
    return tags


def verify_folder(folder: Path, *, expected_digest: str | None = None,
                  expected_signature: str | None = None, what: str | None = None) -> Manifest:
    """Check a downloaded model folder against its manifest; return the manifest.

    Args:
        folder: The folder holding `MANIFEST_NAME` and the files it lists.
        expected_digest: The manifest sha256 recorded on the registry version.
        expected_signature: The signature recorded on the version.
        what: Names the model in errors (``geomas-sft v3``).

    Raises:
        UntrustedModel: no manifest, a file changed, missing or not listed, an unsafe file,
            a manifest other than the registered one, or a missing/bad signature while
            GEOMAS_REGISTRY_KEY is set.
    """
    folder = Path(folder)
    name = what or str(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise UntrustedModel(f"{name}: no {MANIFEST_NAME}: not registered by geomas (or before "
                             "geomas signed its versions); re-register it with geomas")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if expected_digest is not None and digest != expected_digest:
        raise UntrustedModel(f"{name}: {MANIFEST_NAME} has sha256 {digest[:12]}…, the version "
                             f"was registered with {expected_digest[:12]}…; its files were "
                             "replaced — do not use this version")
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValueError as exc:
        raise UntrustedModel(f"{name}: {MANIFEST_NAME} is not a geomas manifest ({exc})"
                             ) from exc
    key = registry_key()
    if key is not None:
        sig_path = folder / SIGNATURE_NAME
        found = sig_path.read_text("ascii").strip() if sig_path.is_file() else None
        if found is None or not hmac.compare_digest(found, sign(manifest.digest(), key)):
            raise UntrustedModel(f"{name}: the manifest signature is missing or does not match "
                                 f"{KEY_ENV}; it was not registered by a holder of the key")
        if expected_signature is not None and expected_signature != found:
            raise UntrustedModel(f"{name}: the signature recorded on the version differs from "
                                 "the one in its files")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.name not in (MANIFEST_NAME, SIGNATURE_NAME)}
    unsafe = sorted(p for p in present | set(manifest.files)
                    if Path(p).suffix.lower() not in SAFE_SUFFIXES)
    if unsafe:
        raise UntrustedModel(f"{name}: files that could run code when loaded ({', '.join(unsafe)}"
                             "); geomas loads only safetensors and JSON/text files")
    extra = sorted(present - set(manifest.files))
    missing = sorted(set(manifest.files) - present)
    if extra or missing:
        raise UntrustedModel(f"{name}: files differ from its manifest (not listed: {extra}, "
                             f"missing: {missing}); do not use this version")
    changed = sorted(rel for rel, sha in manifest.files.items()
                     if sha256_file(folder / rel) != sha)
    if changed:
        raise UntrustedModel(f"{name}: files changed since registration: {', '.join(changed)}")
    return manifest


def parse_model_uri(uri: str) -> tuple[str, str]:
    """(name, version or @alias) of ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``.

    Raises:
        UntrustedModel: not a registry URI.
    """
    if not uri.startswith("models:/"):
        raise UntrustedModel(f"{uri} is not a registry URI (models:/NAME@ALIAS or "
                             "models:/NAME/VERSION)")
    rest = uri[len("models:/"):].strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return name, "@" + alias
    name, _, version = rest.rpartition("/")
    if not name or not version:
        raise UntrustedModel(f"{uri}: expected models:/NAME/VERSION or models:/NAME@ALIAS")
    return name, version


def download_verified(uri: str, client: Any = None) -> tuple[Manifest, Path]:
    """Download a registered geomas model's files and verify them; (manifest, folder).

    Only files are downloaded; nothing is unpickled or run. The version must carry
    `REGISTERED_BY_TAG` and `MANIFEST_TAG`; its files must match the manifest, the manifest
    its tag, and (with a key) the signature.

    Raises:
        UntrustedModel: any check fails (the message names the version and what to do).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = client or mlflow.MlflowClient()
    name, ref = parse_model_uri(uri)
    try:
        mv = (client.get_model_version_by_alias(name, ref[1:]) if ref.startswith("@")
              else client.get_model_version(name, ref))
    except MlflowException as exc:
        raise UntrustedModel(f"{uri}: no such registered version ({exc.message})") from exc
    what = f"{name} v{mv.version}"
    tags = dict(mv.tags)
    if tags.get(REGISTERED_BY_TAG) != REGISTERED_BY or MANIFEST_TAG not in tags:
        raise UntrustedModel(f"{what} was not registered by geomas (no {REGISTERED_BY_TAG}/"
                             f"{MANIFEST_TAG} tags); geomas does not load it — register models "
                             "with geomas, and move aliases with `geomas promote`")
    try:
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{mv.version}"))
    except (MlflowException, OSError) as exc:
        raise UntrustedModel(f"{what}: its files could not be downloaded ({exc})") from exc
    found = sorted(local.rglob(MANIFEST_NAME))
    if len(found) != 1:
        raise UntrustedModel(f"{what}: expected one {MANIFEST_NAME} in its files, found "
                             f"{len(found)}; re-register it with geomas")
    folder = found[0].parent
    manifest = verify_folder(folder, expected_digest=tags[MANIFEST_TAG],
                             expected_signature=tags.get(SIGNATURE_TAG), what=what)
    return manifest, folder
