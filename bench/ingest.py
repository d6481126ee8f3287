"""Ingestion benchmark: pages/s of geomas ingestion vs a raw-text baseline, and re-run cost.

Only PDFs are measured (generated Russian reports plus the third-party corpus PDFs).
Baseline: pypdfium2's raw text layer, page by page in one process — no layout analysis, no
structure, no chunking: the floor any PDF text extraction has to pay. geomas: docling's
NativePdfPipeline + HybridChunker through `ingest_folder` (hashing, manifest, rejects), cold
and then re-run on the unchanged folder (content-hash cache).

    .venv/bin/python bench/ingest.py [--docs 40] [--workers 2] [--out bench/results/ingest.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import pypdfium2

from geomas.config import IngestConfig
from geomas.ingest import ingest_folder
from geomas.sample import generate_sample_corpus

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY = ROOT.parent / "shared" / "corpus" / "pdf"


def baseline_pages_per_s(pdfs: list[Path]) -> tuple[int, float, int]:
    """Extract the raw text layer of every page with pdfium; return pages, seconds, chars."""
    t0 = time.perf_counter()
    pages = chars = 0
    for path in pdfs:
        doc = pypdfium2.PdfDocument(str(path))
        for page in doc:
            textpage = page.get_textpage()
            chars += len(textpage.get_text_range())
            textpage.close()
            page.close()
            pages += 1
        doc.close()
    return pages, time.perf_counter() - t0, chars


def main() -> None:
    """Run the benchmark and print/write its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=120, help="generated Russian reports")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ingest.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        generate_sample_corpus(Path(tmp) / "corpus", docs=args.docs, seed=123)
        src.mkdir()
        for pdf in (Path(tmp) / "corpus" / "docs").glob("*.pdf"):
            shutil.copy(pdf, src / pdf.name)
        if THIRD_PARTY.is_dir():
            for pdf in THIRD_PARTY.glob("*.pdf"):
                shutil.copy(pdf, src / f"thirdparty_{pdf.name}")
        pdfs = sorted(src.glob("*.pdf"))

        b_pages, b_secs, _ = baseline_pages_per_s(pdfs)
        out = Path(tmp) / "out"
        cfg = IngestConfig(workers=args.workers, max_failure_ratio=1.0)
        cold = ingest_folder(src, out, cfg, progress=False).report
        warm = ingest_folder(src, out, cfg, progress=False).report
        single = ingest_folder(src, Path(tmp) / "out1", IngestConfig(workers=1),
                               progress=False).report
        manifest = json.loads((Path(tmp) / "out1" / "documents.json").read_text("utf-8"))
        per_doc_secs = sum(d["seconds"] or 0.0 for d in manifest)

    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{__import__('os').cpu_count()} cores",
        "files": cold.files,
        "pdf_files": len(pdfs),
        "pdf_pages": b_pages,
        "baseline_pdfium_raw_text": {
            "seconds": round(b_secs, 3), "pages_per_s": round(b_pages / b_secs, 1)},
        f"geomas_native_workers{args.workers}": {
            "seconds": cold.seconds,
            "pages_per_s": round(cold.pages_parsed / cold.seconds, 1),
            "chunks": cold.chunks,
            "parser": cold.pdf_parser,
        },
        "geomas_native_workers1": {
            "seconds": single.seconds,
            "pages_per_s": round(single.pages_parsed / single.seconds, 1),
            "conversion_and_chunking_seconds": round(per_doc_secs, 3),
            "steady_state_pages_per_s": round(single.pages_parsed / per_doc_secs, 1),
        },
        "rerun_unchanged": {
            "seconds": warm.seconds,
            "parsed": warm.parsed,
            "cached": warm.cached,
            "rerun_over_cold_ratio": round(warm.seconds / cold.seconds, 4),
        },
        "baseline_over_native_steady_state_ratio": round(
            (b_pages / b_secs) / (single.pages_parsed / per_doc_secs), 1
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
