"""Imbalanced classification benchmark: unweighted CE vs class-weighted CE vs focal loss.

    .venv/bin/python bench/classify.py [--train 400] [--val 200] [--epochs 4] [--method qlora]
        [--seeds 0 1 2 3 4]

A synthetic Russian 3-class set (90 / 8 / 2 %): each text is random geology filler words plus
one or two class keywords; 10 % of texts also carry a keyword of another class (noise). The
tiny Llama (geomas models make-tiny lm) gets a classification head and is trained with
`geomas.train.classify.train_classifier` once per variant, same data and seed, for each seed
(a new data set, model init and order per seed). Prints and writes validation F1-macro (and
per-class F1) of each run, and the mean and standard deviation per variant, to
bench/results/classify.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SHARES = {"руда": 0.90, "нефть": 0.08, "вода": 0.02}
KEYWORDS = {
    "руда": ["золото", "кварцевая жила", "сульфиды", "рудное тело"],
    "нефть": ["скважина", "коллектор", "нефтеносный пласт", "дебит"],
    "вода": ["родник", "водоносный горизонт", "минерализация воды", "дренаж"],
}
FILLER = (
    "образец порода разрез участок глубина метр отбор описание слой керн зона контакт "
    "трещина серый плотный мелкозернистый район площадь карта профиль точка наблюдение"
).split()


def make_rows(n: int, rng: random.Random) -> list[dict[str, str]]:
    """``n`` records with the class shares of `SHARES` (at least one of each class)."""
    counts = {label: max(1, round(n * share)) for label, share in SHARES.items()}
    rows = []
    for label, count in counts.items():
        for _ in range(count):
            words = rng.sample(FILLER, 8)
            words += rng.sample(KEYWORDS[label], rng.choice([1, 2]))
            if rng.random() < 0.10:
                other = rng.choice([x for x in KEYWORDS if x != label])
                words.append(rng.choice(KEYWORDS[other]))
            rng.shuffle(words)
            rows.append({"text": " ".join(words), "label": label})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def main() -> None:
    """Run the three variants and print/write their figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--val", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--method", choices=["qlora", "lora", "full"], default="qlora")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/classify.json")
    args = parser.parse_args()

    import torch

    from geomas.config import TrainClassifierConfig
    from geomas.models import make_tiny
    from geomas.train.classify import train_classifier

    torch.set_num_threads(1)
    variants = {
        "unweighted_ce": {"loss": "ce"},
        "weighted_ce": {"loss": "weighted_ce"},
        "focal_g2": {"loss": "focal", "focal_gamma": 2.0},
        "ce_weighted_sampler": {"loss": "ce", "weighted_sampler": True},
    }
    runs: dict[str, list[dict[str, object]]] = {name: [] for name in variants}
    for seed in args.seeds:
        rng = random.Random(seed)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model = make_tiny("lm", root / "tiny", seed=seed)
            train = write_jsonl(root / "train.jsonl", make_rows(args.train, rng))
            val = write_jsonl(root / "val.jsonl", make_rows(args.val, rng))
            for name, update in variants.items():
                config = TrainClassifierConfig(
                    method=args.method,
                    num_train_epochs=args.epochs,
                    per_device_train_batch_size=16,
                    max_length=48,
                    learning_rate=args.lr,
                    early_stopping_patience=None,
                    save_total_limit=1,
                    logging_steps=5,
                    seed=seed,
                    **update,  # type: ignore[arg-type]
                )
                started = time.perf_counter()
                res = train_classifier(model, train, val, config, root / name)
                per_class = {k: round(v, 4) for k, v in res.per_class_f1.items()}
                runs[name].append({
                    "seed": seed,
                    "macro_f1": round(res.macro_f1, 4),
                    "weighted_f1": round(res.weighted_f1, 4),
                    "accuracy": round(res.accuracy, 4),
                    "per_class_f1": per_class,
                    "seconds": round(time.perf_counter() - started, 1),
                })
                print(f"seed {seed} {name:20s} F1-macro {res.macro_f1:.3f}  {per_class}")
    results: dict[str, dict[str, object]] = {}
    for name, rows in runs.items():
        macro = [float(r["macro_f1"]) for r in rows]  # type: ignore[arg-type]
        labels = sorted(rows[0]["per_class_f1"])  # type: ignore[call-overload]
        results[name] = {
            "macro_f1_mean": round(statistics.mean(macro), 4),
            "macro_f1_std": round(statistics.stdev(macro), 4) if len(macro) > 1 else 0.0,
            "per_class_f1_mean": {
                label: round(statistics.mean(
                    float(r["per_class_f1"][label]) for r in rows  # type: ignore[index]
                ), 4) for label in labels
            },
            "runs": rows,
        }
        print(f"{name:20s} F1-macro {results[name]['macro_f1_mean']:.3f} "
              f"± {results[name]['macro_f1_std']:.3f} over {len(rows)} seeds; per class "
              f"{results[name]['per_class_f1_mean']}")
    payload = {
        "setup": {
            "model": "tiny Llama (make_tiny lm), random init",
            "method": args.method,
            "train": args.train,
            "val": args.val,
            "shares": SHARES,
            "epochs": args.epochs,
            "learning_rate": args.lr,
            "seeds": args.seeds,
            "threads": 1,
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
