"""Which ``checkpoint-*`` folder a resumed run continues from: the newest whose save finished.

The Hugging Face Trainer saves a checkpoint in a fixed order: the weights (adapter or full
model, with tokenizer and ``training_args.bin``), then ``optimizer.pt`` and ``scheduler.pt``
(``scaler.pt`` under fp16), ``rng_state.pth``, and ``trainer_state.json`` last. A process
killed during a save leaves a folder without the later files; a disk that fills up leaves a
file cut short. Resuming from such a folder crashes (no ``trainer_state.json``) or, worse,
silently restarts the optimizer (the Trainer skips a missing ``optimizer.pt``).

A checkpoint is complete when every file a finished save of geomas' trainers writes is there
(they never set ``save_only_model`` and train in one process) and whole: the JSON files parse,
``trainer_state.json`` names the folder's step, each safetensors file is as long as its header
says, and each torch pickle is a readable zip archive (the zip directory is written last, so a
cut-short file has none). Checking is cheap: headers and zip directories only, no tensor loads.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from geomas.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE = "trainer_state.json"
#: Optimizer, scheduler and RNG state: written by every finished single-process save.
TRAINING_STATE_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth")
#: Other torch pickles a save may write; checked when present.
OPTIONAL_PICKLES = ("scaler.pt", "training_args.bin")
#: (weights file, the config file that loads it), in the Trainer's order of preference.
WEIGHTS = (
    ("adapter_model.safetensors", "adapter_config.json"),
    ("adapter_model.bin", "adapter_config.json"),
    ("model.safetensors", None),
    ("model.safetensors.index.json", None),
    ("pytorch_model.bin", None),
    ("pytorch_model.bin.index.json", None),
)


@dataclass(frozen=True)
class CheckpointScan:
    """The checkpoints of one output folder, newest first, as far as the newest complete one."""

    output_dir: Path
    newest_complete: Path | None
    """The checkpoint a resumed run uses; None when no folder is complete."""
    skipped: tuple[tuple[Path, str], ...]
    """Incomplete checkpoints newer than `newest_complete` (all of them when it is None)."""

    @property
    def any(self) -> bool:
        """Whether the folder holds any ``checkpoint-*`` folder, complete or not."""
        return self.newest_complete is not None or bool(self.skipped)

    def skipped_text(self) -> str:
        """``checkpoint-6: missing trainer_state.json (...); checkpoint-4: ...`` for messages."""
        return "; ".join(f"{path.name}: {reason}" for path, reason in self.skipped)


def checkpoint_folders(output_dir: Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders of ``output_dir``, highest step first."""
    if not output_dir.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in output_dir.iterdir()
        if (match := CHECKPOINT_DIR.match(path.name)) and path.is_dir()
    ]
    return [path for _, path in sorted(found, reverse=True)]


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None when it is.

    Args:
        folder: A ``checkpoint-<step>`` folder written by the Hugging Face Trainer.

    Returns:
        None for a complete checkpoint, else one phrase naming the missing or damaged files,
        e.g. ``missing rng_state.pth, trainer_state.json (save interrupted)``.
    """
    missing = [name for name in (*TRAINING_STATE_FILES, TRAINER_STATE)
               if not (folder / name).is_file()]
    damaged: list[str] = []
    weights = next((pair for pair in WEIGHTS if (folder / pair[0]).is_file()), None)
    if weights is None:
        missing.insert(0, "the weights file")
    else:
        weights_file, config_file = weights
        if config_file is not None and not (folder / config_file).is_file():
            missing.insert(0, config_file)
        elif config_file is not None:
            damaged += _json_problems(folder / config_file)
        damaged += _weights_problems(folder / weights_file)
    if (folder / TRAINER_STATE).is_file():
        damaged += _state_problems(folder)
    for name in (*TRAINING_STATE_FILES, *OPTIONAL_PICKLES):
        if (folder / name).is_file():
            damaged += _pickle_problems(folder / name)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)} (save interrupted)")
    problems += damaged
    return ", ".join(problems) or None


def scan_checkpoints(output_dir: Path) -> CheckpointScan:
    """Check ``output_dir``'s checkpoints newest first, down to the first complete one."""
    skipped: list[tuple[Path, str]] = []
    for folder in checkpoint_folders(output_dir):
        problem = checkpoint_problem(folder)
        if problem is None:
            return CheckpointScan(output_dir, folder, tuple(skipped))
        skipped.append((folder, problem))
    return CheckpointScan(output_dir, None, tuple(skipped))


def resume_checkpoint(output_dir: Path) -> Path:
    """The checkpoint ``--resume`` continues from: the newest complete one in ``output_dir``.

    Logs one line per newer, incomplete checkpoint it skips, naming what is missing or damaged.

    Raises:
        ConfigError: ``output_dir`` holds no ``checkpoint-*`` folder.
        InputError: It holds checkpoint folders but none is complete.
    """
    scan = scan_checkpoints(output_dir)
    if scan.newest_complete is None and not scan.skipped:
        raise ConfigError(
            f"resume requested but {output_dir} holds no checkpoint-* folder; run without resume"
        )
    if scan.newest_complete is None:
        raise InputError(
            f"resume requested but {output_dir} holds no complete checkpoint "
            f"({scan.skipped_text()}); delete those checkpoint folders and run without resume, "
            "or choose another output dir / tag"
        )
    for folder, reason in scan.skipped:
        logger.warning("skipping %s: %s; resuming from %s", folder.name, reason,
                       scan.newest_complete.name)
    if not scan.skipped:
        logger.info("resuming from %s", scan.newest_complete.name)
    return scan.newest_complete


def refuse_fresh_run(output_dir: Path) -> None:
    """Refuse a run without ``--resume`` into a folder that holds checkpoints of an earlier run.

    Any ``checkpoint-*`` folder counts, complete or not (the new run's saves would mix with
    it); the message offers resuming only when a complete checkpoint exists, and names it.

    Raises:
        ConfigError: ``output_dir`` holds a ``checkpoint-*`` folder.
    """
    scan = scan_checkpoints(output_dir)
    if scan.newest_complete is not None:
        raise ConfigError(
            f"{output_dir} already holds checkpoints ({scan.newest_complete.name}) from an "
            "earlier run; resume it, or choose another output dir / tag, or delete the folder"
        )
    if scan.skipped:
        raise ConfigError(
            f"{output_dir} already holds checkpoints from an earlier run, none complete "
            f"({scan.skipped_text()}); delete those checkpoint folders, or choose another "
            "output dir / tag"
        )


def _json_problems(path: Path) -> list[str]:
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return [f"{path.name} unreadable ({type(exc).__name__})"]
    return []


def _state_problems(folder: Path) -> list[str]:
    path = folder / TRAINER_STATE
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return [f"{TRAINER_STATE} unreadable ({type(exc).__name__})"]
    recorded = state.get("global_step") if isinstance(state, dict) else None
    if not isinstance(recorded, int):
        return [f"{TRAINER_STATE} has no global_step"]
    # the Trainer names the folder after the step it saves, so they must agree
    match = CHECKPOINT_DIR.match(folder.name)
    if match is not None and recorded != int(match.group(1)):
        return [f"{TRAINER_STATE} is for step {recorded}, not {match.group(1)}"]
    return []


def _weights_problems(path: Path) -> list[str]:
    if path.name.endswith(".index.json"):
        try:
            index = json.loads(path.read_bytes())
            shards = sorted(set(index["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return [f"{path.name} unreadable ({type(exc).__name__})"]
        problems = []
        for shard in shards:
            shard_path = path.parent / shard
            if not shard_path.is_file():
                problems.append(f"missing {shard} (save interrupted)")
            else:
                problems += _weights_problems(shard_path)
        return problems
    if path.suffix == ".safetensors":
        return _safetensors_problems(path)
    return _pickle_problems(path)


def _safetensors_problems(path: Path) -> list[str]:
    """A safetensors file is 8 bytes of header length, a JSON header, then the tensor bytes."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            length = int.from_bytes(fh.read(8), "little")
            if size < 8 or length > size - 8:
                return [f"{path.name} truncated ({size} bytes, header cut short)"]
            header = json.loads(fh.read(length))
        end = max((int(entry["data_offsets"][1]) for key, entry in header.items()
                   if key != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        return [f"{path.name} unreadable ({type(exc).__name__})"]
    expected = 8 + length + end
    if size < expected:
        return [f"{path.name} truncated ({size} of {expected} bytes)"]
    if size > expected:
        return [f"{path.name} is {size} bytes, its header describes {expected}"]
    return []


def _pickle_problems(path: Path) -> list[str]:
    """torch.save writes a zip archive whose directory comes last: a cut-short file has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{path.name} unreadable ({type(exc).__name__}, cut short?)"]
    return []
