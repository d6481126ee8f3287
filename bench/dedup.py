"""Dedup benchmark: exact + near-duplicate removal on synthetic Russian geological QA records.

Records come from `geomas.sample.synthetic_records` (the sample corpus's sentence templates:
chunks of 3-12 sentences, 1-3 questions per chunk sharing the chunk as input); about 10 % are
copies of earlier records with one or two small edits (adjacent words swapped, punctuation
changed, a digit of a number changed). The whole `clean_examples` runs; the dedup figure is the
time of its exact_dup and near_dup rules.

    .venv/bin/python bench/dedup.py [--records 100000] [--near-dup-share 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

from geomas.clean import clean_examples
from geomas.clean.dedup import lsh_bands
from geomas.config import CleanConfig
from geomas.sample.synthetic_records import synthetic_geology_qa

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Run the benchmark and print/write its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--near-dup-share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/dedup.json")
    args = parser.parse_args()

    t0 = time.perf_counter()
    data = synthetic_geology_qa(args.records, near_dup_share=args.near_dup_share, seed=args.seed)
    generate_s = time.perf_counter() - t0
    config = CleanConfig(profile="geology")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    result = clean_examples(data.examples, config)
    clean_s = time.perf_counter() - t0

    removed = {r["id"]: r for r in result.rejects}
    injected = set(data.near_dup_of)
    caught = injected & removed.keys()
    wrongly = [r for i, r in removed.items() if i not in injected]
    dedup_s = result.seconds.get("exact_dup", 0.0) + result.seconds.get("near_dup", 0.0)
    by_edits = {
        n: round(
            sum(1 for i in injected if data.edits[i] == n and i in removed)
            / max(1, sum(1 for i in injected if data.edits[i] == n)),
            4,
        )
        for n in sorted(set(data.edits.values()))
    }
    bands, rows = lsh_bands(config.near_dup_threshold, config.near_dup_num_perm)
    figures = {
        "records": len(data.examples),
        "injected_near_dups": len(injected),
        "dedup_seconds": round(dedup_s, 2),
        "dedup_records_per_s": round(len(data.examples) / dedup_s),
        "exact_dup_seconds": result.seconds.get("exact_dup"),
        "near_dup_seconds": result.seconds.get("near_dup"),
        "clean_seconds_all_rules": round(clean_s, 2),
        "clean_seconds_by_phase": result.seconds,
        "generate_seconds": round(generate_s, 2),
        "injected_removed_share": round(len(caught) / max(1, len(injected)), 4),
        "injected_removed_share_by_edits": by_edits,
        "distinct_wrongly_removed": len(wrongly),
        "distinct_wrongly_removed_share": round(
            len(wrongly) / max(1, len(data.examples) - len(injected)), 6
        ),
        "wrongly_removed_by_rule": {
            rule: sum(1 for r in wrongly if r["rule"] == rule)
            for rule in sorted({r["rule"] for r in wrongly})
        },
        "removed_by_rule": result.removed,
        "settings": {
            "near_dup_threshold": config.near_dup_threshold,
            "near_dup_num_perm": config.near_dup_num_perm,
            "near_dup_shingle_words": config.near_dup_shingle_words,
            "near_dup_question_or_answer": config.near_dup_question_or_answer,
            "lsh_bands_x_rows": [bands, rows],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min_before": round(load_before[0], 2),
            "python": platform.python_version(),
            "numpy": version("numpy"),
            "datasketch": version("datasketch"),
        },
    }
    print(
        f"{figures['records']} records ({figures['injected_near_dups']} injected near-dups): "
        f"dedup {figures['dedup_seconds']} s ({figures['dedup_records_per_s']} records/s; "
        f"exact {figures['exact_dup_seconds']} s, near {figures['near_dup_seconds']} s), "
        f"all rules {figures['clean_seconds_all_rules']} s"
    )
    print(
        f"injected near-dups removed: {figures['injected_removed_share']:.2%} "
        f"(by number of edits: {by_edits}); distinct records wrongly removed: "
        f"{figures['distinct_wrongly_removed']} ({figures['distinct_wrongly_removed_share']:.4%})"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
