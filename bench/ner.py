"""NER inference benchmark: chunks/s batched vs one text at a time, same model, same chunks.

    .venv/bin/python bench/ner.py [--docs 24] [--model DIR] [--batch-size 32]

Without --model, a tiny NER (geomas models make-tiny ner) is built and trained for a few
epochs on a generated corpus; with --model, any trained NER folder is used (e.g. a rubert).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Run the benchmark and print/write its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ner.json")
    args = parser.parse_args()

    import torch

    from geomas.config import IngestConfig, NerTrainConfig
    from geomas.ingest import ingest_folder
    from geomas.models import make_tiny
    from geomas.ner.annotations import convert_annotations
    from geomas.ner.inference import load_bert_ner_model
    from geomas.ner.train import train_ner
    from geomas.sample import generate_sample_corpus

    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        generate_sample_corpus(tmp / "corpus", docs=args.docs, seed=5)
        ingested = ingest_folder(tmp / "corpus/docs", tmp / "data", IngestConfig(workers=2),
                                 progress=False)
        chunks = [c.text for c in ingested.kept.chunks]
        model_dir = args.model
        if model_dir is None:
            convert_annotations(tmp / "corpus/annotations", tmp / "bio", progress=False)
            base = make_tiny("ner", tmp / "tiny", corpus_dir=tmp / "corpus")
            model_dir = tmp / "model"
            train_ner(tmp / "bio", NerTrainConfig(model_name=str(base), output_dir=model_dir,
                                                  epochs=3, learning_rate=1e-3,
                                                  register_model=False), progress=False)
        model = load_bert_ner_model(model_dir, batch_size=args.batch_size)
        model.extract_batch(chunks[:4])  # warm-up
        t0 = time.perf_counter()
        singles = [model.extract_entities(c) for c in chunks]
        t_single = time.perf_counter() - t0
        t0 = time.perf_counter()
        batched = model.extract_batch(chunks)
        t_batch = time.perf_counter() - t0
        same = [[(e.label, e.start, e.end) for e in r.entities] for r in singles] == [
            [(e.label, e.start, e.end) for e in r.entities] for r in batched]

    results = {
        "machine": f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "device": str(next(model.model.parameters()).device),
        "model": "tiny (make-tiny ner)" if args.model is None else str(args.model),
        "chunks": len(chunks),
        "mean_chunk_chars": round(sum(map(len, chunks)) / len(chunks)),
        "one_at_a_time": {"seconds": round(t_single, 3),
                          "chunks_per_s": round(len(chunks) / t_single, 1)},
        f"batched_{args.batch_size}": {"seconds": round(t_batch, 3),
                                       "chunks_per_s": round(len(chunks) / t_batch, 1)},
        "speedup": round(t_single / t_batch, 2),
        "identical_entities": same,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
