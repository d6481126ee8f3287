"""SFT throughput benchmark: the same run with packing off and on (tokens/s, peak memory).

    .venv/bin/python bench/train.py [--model PATH_OR_ALIAS] [--method qlora] [--steps 30]
        [--max-length 256] [--batch-size 8] [--dataset FILE] [--out bench/results/train.json]

Without --model, a tiny Llama (geomas models make-tiny lm) is built; without --dataset, 200
Russian alpaca records (geomas.sample.synthetic_records.synthetic_geology_qa) are written. Each
configuration trains in its own subprocess (``--child``) so that peak memory figures do not mix:
process peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA (both as measured by
`geomas.train.run_sft`). The device and precision are what `train_sft` decides: fp32 on CPU,
bf16 (or fp16) compute on CUDA, so ``--model /path/to/7b --method qlora`` runs as-is on a GPU.

tokens/s counts real tokens: the trainer's non-padding input tokens (attention mask, or
``input_ids != pad_token_id`` for padding-free packed batches). Besides, the collator is wrapped
to count the positions actually fed to the model (padding included) and the loss tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1024**2


def _device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
    }
    try:
        import transformers
        import trl

        info["transformers"] = transformers.__version__
        info["trl"] = trl.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gb"] = round(props.total_memory / 1024**3, 1)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    return info


def _child(args: argparse.Namespace) -> None:
    """Train one configuration and write its figures to ``args.result``."""
    from geomas.config import TrainSFTConfig
    from geomas.train import prepare_sft, run_sft
    from geomas.train.factories import resolve_precision

    config = TrainSFTConfig(
        method=args.method,
        packing=args.packing == "on",
        max_length=args.max_length,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=args.learning_rate,
        activation_checkpointing=args.activation_checkpointing == "on",
        # No checkpoint writes inside the timed loop, no eval, no early stopping.
        save_strategy="steps",
        save_steps=10**9,
        early_stopping_patience=None,
        logging_steps=max(1, args.steps // 5),
        seed=0,
    )
    setup = prepare_sft(args.model, args.dataset, config, output_dir=args.workdir)
    counts = {"batches": 0, "positions": 0, "loss_tokens": 0}
    collate = setup.trainer.data_collator

    def counting_collator(features: Any) -> Any:
        batch = collate(features)
        counts["batches"] += 1
        counts["positions"] += int(batch["input_ids"].numel())
        if "labels" in batch:
            counts["loss_tokens"] += int((batch["labels"] != -100).sum())
        return batch

    setup.trainer.data_collator = counting_collator
    result = run_sft(setup)
    eff = setup.batch.batch_size * setup.batch.gradient_accumulation_steps
    figures = {
        "packing": config.packing,
        "device": setup.device,
        "precision": resolve_precision(config, setup.device),
        "batch_size": setup.batch.batch_size,
        "gradient_accumulation_steps": setup.batch.gradient_accumulation_steps,
        "global_step": result.global_step,
        "epochs": round(result.epochs, 3),
        "seconds": result.seconds,
        "tokens_seen": result.tokens_seen,
        "tokens_per_second": result.tokens_per_second,
        "tokens_per_step": round(result.tokens_seen / max(1, result.global_step), 1),
        "examples_per_step_rows": eff,
        "collated_batches": counts["batches"],
        "collated_positions": counts["positions"],
        "collated_loss_tokens": counts["loss_tokens"],
        "peak_memory_bytes": result.peak_memory_bytes,
        "peak_memory_mb": round(result.peak_memory_bytes / MB, 1),
        "memory_kind": result.memory_kind,
        "train_loss_first": result.train_loss[0][1] if result.train_loss else None,
        "train_loss_last": result.train_loss[-1][1] if result.train_loss else None,
        "train_records": setup.train_info.records,
    }
    Path(args.result).write_text(json.dumps(figures, indent=2), encoding="utf-8")


def _build_inputs(tmp: Path, args: argparse.Namespace) -> tuple[str, Path]:
    model = args.model
    if model is None:
        from geomas.models import make_tiny

        model = str(make_tiny("lm", tmp / "tiny"))
    dataset = args.dataset
    if dataset is None:
        from geomas.formats import write_examples
        from geomas.sample.synthetic_records import synthetic_geology_qa

        qa = synthetic_geology_qa(args.records, near_dup_share=0.0, seed=0)
        dataset = tmp / "sft_data.jsonl"
        write_examples(qa.examples, dataset, "alpaca", jsonl=True)
    return model, Path(dataset)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main() -> None:
    """Run both configurations in subprocesses and print/write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="alias, local folder or cached hub id")
    parser.add_argument("--dataset", type=Path, default=None, help="any geomas dataset format")
    parser.add_argument("--records", type=int, default=200, help="generated records (no --dataset)")
    parser.add_argument("--method", choices=("qlora", "lora", "full"), default="qlora")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--activation-checkpointing", choices=("on", "off"), default="on")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/train.json")
    # internal: one configuration in this process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--packing", choices=("on", "off"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="geomas-bench-train-") as tmp_s:
        tmp = Path(tmp_s)
        model, dataset = _build_inputs(tmp, args)
        for packing in ("off", "on"):
            result = tmp / f"result-{packing}.json"
            cmd = [
                sys.executable, str(Path(__file__).resolve()), "--child",
                "--model", model, "--dataset", str(dataset), "--method", args.method,
                "--steps", str(args.steps), "--max-length", str(args.max_length),
                "--batch-size", str(args.batch_size), "--grad-accum", str(args.grad_accum),
                "--learning-rate", str(args.learning_rate),
                "--activation-checkpointing", args.activation_checkpointing,
                "--packing", packing, "--workdir", str(tmp / f"run-{packing}"),
                "--result", str(result),
            ]
            print(f"== packing {packing}", flush=True)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT)
            runs[f"packing_{packing}"] = {
                **json.loads(result.read_text(encoding="utf-8")),
                "process_seconds": round(time.perf_counter() - t0, 1),
            }

    off, on = runs["packing_off"], runs["packing_on"]
    results = {
        "machine": _device_info(),
        "model": "tiny (make-tiny lm)" if args.model is None else args.model,
        "dataset": "synthetic_geology_qa alpaca" if args.dataset is None else str(args.dataset),
        "method": args.method,
        "steps": args.steps,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "gradient_accumulation_steps": args.grad_accum,
        "activation_checkpointing": args.activation_checkpointing == "on",
        **runs,
        "packing_vs_no_packing": {
            "tokens_per_second": _ratio(on["tokens_per_second"], off["tokens_per_second"]),
            "tokens_per_step": _ratio(on["tokens_per_step"], off["tokens_per_step"]),
            "seconds": _ratio(on["seconds"], off["seconds"]),
            "peak_memory": _ratio(on["peak_memory_bytes"], off["peak_memory_bytes"]),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
