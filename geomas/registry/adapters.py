"""Register LoRA/QLoRA adapters in MLflow and load them back bit-for-bit.

`mlflow.transformers.log_model` re-initialises the adapted layers of a PEFT model whose base is a
local folder (and fails on a 4-bit base), so an adapter is logged as a pyfunc model instead: the
adapter folder is the artifact, and the base model is referenced by path and fingerprinted with
sha256. Loading rebuilds the base exactly as training did (4-bit NF4 or full precision) and
applies the adapter with `PeftModel.from_pretrained`, which reproduces the trained logits.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from mlflow.pyfunc import PythonModel

from geomas.errors import GeomasError, InputError
from geomas.hashing import sha256_file
from geomas.registry.mlflow_models import SERVING_CODE, RegisteredVersion
from geomas.registry.trust import stage_files, version_tags, write_manifest

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase

    from geomas.evaluate.generation import PromptStyle

log = logging.getLogger(__name__)

ComputeDtype = Literal["float32", "bfloat16", "float16"]
#: What the adapted model does: answer (causal LM) or label texts (sequence classification,
#: `geomas train-classifier`, whose folder holds label_map.json).
Task = Literal["causal-lm", "sequence-classification"]

#: Default registered model name of supervised fine-tuned adapters.
SFT_MODEL_NAME = "geomas-sft"
#: Default registered model name of sequence classifiers.
CLS_MODEL_NAME = "geomas-cls"
#: Alias a freshly registered version gets; promotion moves it on (see geomas.registry.promotion).
CHALLENGER_ALIAS = "challenger"
#: Version tag with the base fingerprint, to see in the UI which base an adapter needs.
BASE_SHA256_TAG = "base_sha256"
DEFAULT_MAX_NEW_TOKENS = 128

# Files whose bytes define a base model's behaviour; tokenizer files travel with the adapter.
_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


class BaseModelMismatch(GeomasError):
    """The base model an adapter was trained on is missing or has changed since logging."""


def base_model_files(base_dir: Path) -> list[Path]:
    """The files that `base_fingerprint` hashes: config.json and the weight files.

    Raises:
        BaseModelMismatch: `base_dir` is not a model folder (no config.json or no weights).
    """
    base_dir = Path(base_dir)
    config = base_dir / "config.json"
    if not config.is_file():
        raise BaseModelMismatch(
            f"base model folder {base_dir} has no config.json; point base_model_path at the "
            "folder the adapter was trained on"
        )
    weights = sorted({p for pattern in _WEIGHT_PATTERNS for p in base_dir.glob(pattern)})
    if not weights:
        raise BaseModelMismatch(
            f"base model folder {base_dir} has no weight files ({', '.join(_WEIGHT_PATTERNS)})"
        )
    return [config, *weights]


def base_file_digests(base_dir: Path) -> dict[str, str]:
    """sha256 of each file of `base_model_files`, keyed by file name."""
    return {p.name: sha256_file(p) for p in base_model_files(base_dir)}


def base_fingerprint(digests: Mapping[str, str]) -> str:
    """One sha256 over `base_file_digests` (the base model's file names and contents)."""
    joined = "".join(f"{name}\0{sha}\n" for name, sha in sorted(digests.items()))
    return hashlib.sha256(joined.encode()).hexdigest()


def git_sha(path: Path | None = None) -> str | None:
    """The commit checked out at `path` (default: the current directory), or None.

    None outside a git checkout or where git is not installed; a dirty tree still returns HEAD.
    """
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                              text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = proc.stdout.strip()
    return sha if proc.returncode == 0 and sha else None


def quantization_config(compute_dtype: ComputeDtype) -> Any:
    """The 4-bit NF4 double-quant `BitsAndBytesConfig` adapters are trained and served with."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )


def _check_dtype(compute_dtype: str) -> ComputeDtype:
    allowed = get_args(ComputeDtype)
    if compute_dtype not in allowed:
        raise InputError(f"compute_dtype {compute_dtype!r} is not supported; use one of {allowed}")
    return compute_dtype  # type: ignore[return-value]


def load_base_and_adapter(
    base_model_path: Path,
    adapter_dir: Path,
    *,
    load_in_4bit: bool,
    compute_dtype: str,
    expected_sha256: str | None = None,
    expected_files: Mapping[str, str] | None = None,
    task: Task = "causal-lm",
) -> tuple[PeftModel, PreTrainedTokenizerBase]:
    """Load the base model as training did and apply the adapter; eval mode, on CPU for 4-bit.

    Args:
        base_model_path: Folder of the base model.
        adapter_dir: PEFT adapter folder (`save_pretrained` output); its tokenizer is used when
            it has one, else the base model's.
        load_in_4bit: Quantise the base to 4-bit NF4 (QLoRA) instead of loading it in
            `compute_dtype`.
        compute_dtype: Compute dtype of 4-bit layers, or the dtype of a full-precision base.
        expected_sha256: `base_fingerprint` recorded at logging; checked when given.
        expected_files: Per-file digests recorded at logging; name the changed files.
        task: causal-lm, or sequence-classification (the head's labels come from the
            adapter folder's label_map.json).

    Raises:
        BaseModelMismatch: The base folder is missing or its fingerprint differs.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    base = Path(base_model_path)
    dtype = _check_dtype(compute_dtype)
    if not base.is_dir():
        raise BaseModelMismatch(
            f"base model folder {base} does not exist; the adapter needs the base it was "
            "trained on at that path (copy it there or re-register the adapter)"
        )
    if expected_sha256 is not None:
        got_files = base_file_digests(base)
        got = base_fingerprint(got_files)
        if got != expected_sha256:
            want = expected_files or {}
            changed = sorted(n for n in {*got_files, *want} if want.get(n) != got_files.get(n))
            detail = f" (changed files: {', '.join(changed)})" if expected_files else ""
            raise BaseModelMismatch(
                f"base model at {base} has sha256 {got}, but the adapter was logged with "
                f"{expected_sha256}{detail}; restore the original base model or retrain and "
                "register the adapter on this one"
            )
    kwargs: dict[str, Any]
    if load_in_4bit:
        kwargs = {"device_map": {"": 0} if torch.cuda.is_available() else "cpu",
                  "quantization_config": quantization_config(dtype)}
    else:
        kwargs = {"dtype": getattr(torch, dtype)}
    tok_dir = adapter_dir if (Path(adapter_dir) / "tokenizer_config.json").is_file() else base
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    if task == "sequence-classification":
        labels = _label_map(Path(adapter_dir))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForSequenceClassification.from_pretrained(
            str(base), num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            pad_token_id=tokenizer.pad_token_id, **kwargs,
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(str(base), **kwargs)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    peft_model.eval()
    return peft_model, tokenizer


def _label_map(adapter_dir: Path) -> list[str]:
    import json

    path = adapter_dir / "label_map.json"
    if not path.is_file():
        raise InputError(
            f"{adapter_dir} has no label_map.json; a classifier folder is written by "
            "`geomas train-classifier`"
        )
    return list(json.loads(path.read_text("utf-8"))["labels"])


def classify_texts(model: Any, tokenizer: Any, texts: list[str]) -> list[str]:
    """The label with the highest logit for each text (one text at a time, no padding)."""
    import torch

    device = next(model.parameters()).device
    id2label = model.config.id2label
    out = []
    for text in texts:
        enc = {k: v.to(device) for k, v in tokenizer(text, return_tensors="pt").items()}
        with torch.no_grad():
            logits = model(**enc).logits
        out.append(str(id2label[int(logits[0].argmax())]))
    return out


class PeftAdapterPyfunc(PythonModel):
    """pyfunc wrapper of a PEFT adapter on a fingerprinted local base.

    Questions -> answers (task causal-lm), or texts -> labels (task sequence-classification).
    Logged as MLflow "models from code" (`geomas/registry/serving/adapter_model.py`): nothing
    is pickled. The artifact `adapter_dir` holds the adapter files and the geomas manifest
    (`geomas.registry.trust`) with `base_model_path`, `base_sha256`, `base_files`,
    `load_in_4bit`, `compute_dtype`, `task` and `prompt_style` (the prompts the adapter was
    trained on); loading checks the files against it first.
    """

    def load_context(self, context: Any) -> None:
        """Verify the adapter files, fingerprint-check the base, load it, apply the adapter.

        Raises:
            UntrustedModel: The files are not those geomas registered.
            BaseModelMismatch: The base model is missing or changed since logging.
        """
        from geomas.registry.trust import verify_folder

        folder = Path(context.artifacts["adapter_dir"])
        self.load_verified(verify_folder(folder).settings, folder)

    def load_verified(self, settings: Mapping[str, Any], adapter_dir: Path) -> None:
        """Load from a verified adapter folder and its manifest settings."""
        self.task = settings.get("task", "causal-lm")
        self.prompt_style = settings.get("prompt_style")
        self.model, self.tokenizer = load_base_and_adapter(
            Path(settings["base_model_path"]), Path(adapter_dir),
            load_in_4bit=bool(settings["load_in_4bit"]),
            compute_dtype=str(settings["compute_dtype"]),
            expected_sha256=settings["base_sha256"], expected_files=settings.get("base_files"),
            task=self.task,
        )

    def predict(
        self, context: Any, model_input: list[str], params: dict[str, Any] | None = None
    ) -> list[str]:
        """Answers (greedy; `params["max_new_tokens"]` caps them), or labels for a classifier."""
        if self.task == "sequence-classification":
            return classify_texts(self.model, self.tokenizer, list(model_input))
        max_new_tokens = int((params or {}).get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        return generate_answers(self.model, self.tokenizer, list(model_input),
                                max_new_tokens=max_new_tokens, prompt_style=self.prompt_style)


def generate_answers(
    model: Any, tokenizer: Any, questions: list[str], *, max_new_tokens: int,
    prompt_style: PromptStyle | None = None,
) -> list[str]:
    """Greedy answers to questions, each asked as an instruction in the trained prompt style.

    Args:
        model: The PEFT model.
        tokenizer: Its tokenizer.
        questions: The questions.
        max_new_tokens: Most tokens per answer.
        prompt_style: ``alpaca`` or ``chat_template``: how the adapter was trained (recorded at
            registration); None: the chat template when the tokenizer has one.
    """
    from geomas.evaluate.generation import generate_answers as generate
    from geomas.evaluate.generation import prompt_style_for
    from geomas.formats import Example

    style = prompt_style_for(None, tokenizer) if prompt_style is None else prompt_style
    examples = [Example(id=f"q{i}", instruction=q, output="") for i, q in enumerate(questions)]
    return generate(model, tokenizer, examples, max_new_tokens, batch_size=8,
                    prompt_style=style)


def trained_prompt_style(adapter_dir: Path) -> PromptStyle | None:
    """The prompt style the adapter was trained in, from its training_config.json (or None)."""
    import json

    from geomas.evaluate.generation import prompt_style_for

    path = Path(adapter_dir) / "training_config.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text("utf-8"))
    target = (record.get("config") or {}).get("target_format") or (
        (record.get("dataset") or {}).get("train") or {}).get("target_format")
    return prompt_style_for(target, None) if target else None


def _signature(from_type_hints: Any) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema

    strings = Schema([ColSpec(DataType.string)])
    params = ParamSchema([ParamSpec("max_new_tokens", DataType.long, DEFAULT_MAX_NEW_TOKENS)])
    if from_type_hints:
        return ModelSignature(from_type_hints.inputs, from_type_hints.outputs, params=params)
    return ModelSignature(inputs=strings, outputs=strings, params=params)


def log_adapter(
    adapter_dir: Path,
    *,
    base_model_path: Path,
    load_in_4bit: bool,
    compute_dtype: str,
    registered_model_name: str = SFT_MODEL_NAME,
    tags: Mapping[str, Any] | None = None,
    artifact_name: str = "model",
    task: Task = "causal-lm",
    base_files: Mapping[str, str] | None = None,
) -> RegisteredVersion:
    """Log an adapter folder as a pyfunc model, register a version and alias it `challenger`.

    Logs into the active MLflow run (see `mlflow_run`). The base model is not copied: it is
    referenced by its absolute path and sha256, checked again when the version is loaded.

    Args:
        adapter_dir: PEFT adapter folder (`save_pretrained` output, optionally with tokenizer).
        base_model_path: Folder of the base model the adapter was trained on.
        load_in_4bit: Whether the base is loaded 4-bit (QLoRA) for serving.
        compute_dtype: `float32`, `bfloat16` or `float16`.
        registered_model_name: Registered model to add a version to.
        tags: Version tags (dataset hash and sizes, ZenML run id, git sha, base model...);
            values are stored as strings, None values are skipped.
        artifact_name: Name of the logged model in the run.
        task: causal-lm (answers) or sequence-classification (labels; the folder holds
            label_map.json).
        base_files: `base_file_digests` of the base, when the caller has just computed them
            (the evaluation does): hashing a 7B base takes tens of seconds.

    Returns:
        The registered version, with its tags and the `challenger` alias.

    Raises:
        InputError: `adapter_dir` is not a PEFT adapter folder or `compute_dtype` is unknown.
        BaseModelMismatch: `base_model_path` is not a model folder.
    """
    import mlflow
    from mlflow.models import set_signature

    adapter_dir = Path(adapter_dir).resolve()
    base = Path(base_model_path).resolve()
    if not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(
            f"{adapter_dir} has no adapter_config.json; pass the folder written by "
            "PeftModel.save_pretrained"
        )
    dtype = _check_dtype(compute_dtype)
    files = dict(base_files) if base_files is not None else base_file_digests(base)
    fingerprint = base_fingerprint(files)
    settings = {
        "base_model_path": str(base),
        "base_sha256": fingerprint,
        "base_files": files,
        "load_in_4bit": bool(load_in_4bit),
        "compute_dtype": dtype,
        "task": task,
        "prompt_style": trained_prompt_style(adapter_dir) if task == "causal-lm" else None,
    }
    with tempfile.TemporaryDirectory(prefix="geomas-adapter-") as tmp:
        staged = Path(tmp) / "adapter"
        skipped = stage_files(adapter_dir, staged)
        if skipped:
            log.info("not registered from %s (checkpoints, pickles): %s", adapter_dir,
                     ", ".join(skipped))
        write_manifest(staged, "adapter", settings)
        trust = version_tags(staged)
        info = mlflow.pyfunc.log_model(
            name=artifact_name,
            python_model=str(SERVING_CODE / "adapter_model.py"),
            artifacts={"adapter_dir": str(staged)},
            pip_requirements=["geomas"],
        )
    # The type hints give the input/output schema; params only come from an input example,
    # whose validation would load the model at logging time, so they are added afterwards.
    # Without a params schema, pyfunc predict drops `max_new_tokens`.
    set_signature(info.model_uri, _signature(info.signature))
    client = mlflow.MlflowClient()
    all_tags = {k: str(v) for k, v in (tags or {}).items() if v is not None}
    all_tags.setdefault(BASE_SHA256_TAG, fingerprint)
    all_tags.update(trust)
    version = register_version(client, registered_model_name, info.model_uri, all_tags,
                               alias=CHALLENGER_ALIAS)
    log.info("registered %s version %s as %s", registered_model_name, version, CHALLENGER_ALIAS)
    mv = client.get_model_version(registered_model_name, version)
    return RegisteredVersion(name=registered_model_name, version=version, run_id=mv.run_id,
                             model_uri=info.model_uri, aliases=list(mv.aliases), tags=dict(mv.tags))


def register_version(client: Any, name: str, model_uri: str, tags: Mapping[str, str],
                     alias: str) -> str:
    """Create a version of `name` from `model_uri` with its tags and alias, as a transaction.

    The intent (tags and alias for the version about to be created, and the run that logged
    the model) is stored first; a failure after the version exists is completed by the next
    registry call or `geomas models repair`, so no version stays untagged and unaliased.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from geomas.registry import journal

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    journal.repair_pending(name, client)
    run = mlflow.active_run()
    intent = journal.Intent(op="register", model=name,
                            run_id=run.info.run_id if run is not None else None,
                            version_tags={journal.NEW_VERSION: dict(tags)},
                            set_aliases={alias: journal.NEW_VERSION})
    journal.begin(client, intent)
    version = str(mlflow.register_model(model_uri, name).version)
    journal.apply(client, intent.with_version(version))
    return version


def load_registered_adapter(uri: str) -> PeftAdapterPyfunc:
    """Load a registered adapter (`models:/geomas-sft@champion`) after checking its files.

    Nothing stored in the registry is unpickled or executed: the version must carry geomas's
    trust tags, its downloaded files must match the signed manifest (`geomas.registry.trust`),
    and the model is built from them by this module's code.

    Raises:
        UntrustedModel: The version was not registered by geomas, its files changed, its
            signature is bad, or it holds files that could run code.
        BaseModelMismatch: The base model is missing or changed since the version was logged.
    """
    from geomas.registry.trust import download_verified

    manifest, folder = download_verified(uri)
    if manifest.kind != "adapter":
        raise InputError(f"{uri} is a {manifest.kind} model, not an adapter")
    model = PeftAdapterPyfunc()
    model.load_verified(manifest.settings, folder)
    return model


def load_adapter_model(uri: str) -> tuple[PeftModel, PreTrainedTokenizerBase]:
    """`load_registered_adapter` as (PEFT model, tokenizer)."""
    model = load_registered_adapter(uri)
    return model.model, model.tokenizer
