"""Ingestion benchmark: pages/s of geomas ingestion vs a raw-text baseline, and re-run cost.

Two parts (``--only`` picks one; both run by default):

corpus: only PDFs are measured (generated Russian reports plus the third-party corpus PDFs).
Baseline: pypdfium2's raw text layer, page by page in one process — no layout analysis, no
structure, no chunking: the floor any PDF text extraction has to pay. geomas: docling's
NativePdfPipeline + HybridChunker through `ingest_folder` (hashing, manifest, rejects), cold
and then re-run on the unchanged folder (content-hash cache).

large: one generated 263-page table-heavy Russian report (`bench/tablepdf.py`), through
docling's own converter (NativePdfPipeline with docling's defaults, page and picture images
off: convert only, then convert + docling-core's HybridChunker) and through geomas
(`ingest_folder`, workers=1, on a folder holding just that PDF). Each case runs in a fresh
spawned process, so its peak RSS is its own.

    .venv/bin/python bench/ingest.py [--only corpus|large] [--docs 40] [--workers 2]
        [--out bench/results/ingest.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pypdfium2
from tablepdf import write_table_report

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


def _rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _docling_converter() -> Any:
    """docling's own converter for the native pipeline: its defaults, images off."""
    from docling.datamodel.base_models import InputFormat
    from docling.datamodel.pipeline_options import NativePdfPipelineOptions
    from docling.document_converter import DocumentConverter, NativePdfFormatOption

    opts = NativePdfPipelineOptions(generate_page_images=False, generate_picture_images=False)
    return DocumentConverter(
        format_options={InputFormat.PDF: NativePdfFormatOption(pipeline_options=opts)})


def large_case(case: str, pdf: str, tmp: str) -> dict[str, Any]:
    """Run one large-PDF case in this (fresh) process; return seconds, pages and peak RSS."""
    # imports first, for every case alike: the figures are for the work, not the imports
    import docling.document_converter  # noqa: F401
    from docling_core.transforms.chunker.hybrid_chunker import HybridChunker

    from geomas.ingest.tokens import WordTokenizer

    base = _rss_mb()
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if case == "geomas":
        src = Path(tmp) / "src"
        src.mkdir(exist_ok=True)
        shutil.copy(pdf, src / Path(pdf).name)
        report = ingest_folder(src, Path(tmp) / "out", IngestConfig(workers=1),
                               progress=False).report
        seconds = time.perf_counter() - t0
        manifest = json.loads((Path(tmp) / "out" / "documents.json").read_text("utf-8"))
        out.update(pages=report.pages_parsed, chunks=report.chunks,
                   conversion_and_chunking_seconds=manifest[0]["seconds"])
    else:
        result = _docling_converter().convert(pdf)
        out.update(pages=len(result.pages), text_items=len(result.document.texts))
        if case == "docling_convert_chunk":
            # docling-core's default tokenizer is a Hugging Face download; geomas's offline
            # word counter stands in, every other HybridChunker setting is docling's default
            chunker = HybridChunker(tokenizer=WordTokenizer(max_tokens=256))
            out["chunks"] = sum(1 for _ in chunker.chunk(dl_doc=result.document))
        seconds = time.perf_counter() - t0
    out.update(seconds=round(seconds, 2), pages_per_s=round(out["pages"] / seconds, 2),
               rss_after_imports_mb=round(base), peak_rss_mb=round(_rss_mb()))
    return out


LARGE_CASES = ("docling_convert", "docling_convert_chunk", "geomas")


def run_large(sections: int, cases: tuple[str, ...] = LARGE_CASES) -> dict[str, Any]:
    """The large table-heavy PDF through docling and geomas, each case in a fresh process."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "field_development_report.pdf"
        pages = write_table_report(pdf, n_sections=sections)
        results: dict[str, Any] = {"pdf_pages": pages, "pdf_bytes": pdf.stat().st_size}
        for case in cases:
            case_tmp = Path(tmp) / case
            case_tmp.mkdir()
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                results[case] = pool.submit(large_case, case, str(pdf), str(case_tmp)).result()
            print(case, json.dumps(results[case]), flush=True)
    g = results.get("geomas")
    for ref in ("docling_convert", "docling_convert_chunk"):
        d = results.get(ref)
        if g is None or d is None:
            continue
        results[f"geomas_over_{ref}"] = {
            "seconds": round(g["seconds"] / d["seconds"], 2),
            "peak_rss": round(g["peak_rss_mb"] / d["peak_rss_mb"], 2),
        }
    return results


def main() -> None:
    """Run the benchmark and print/write its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=("corpus", "large"), default=None,
                        help="run one part only (default: both)")
    parser.add_argument("--docs", type=int, default=120, help="generated Russian reports")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--large-sections", type=int, default=50,
                        help="sections of the large PDF (50 give 263 pages)")
    parser.add_argument("--large-cases", default=",".join(LARGE_CASES),
                        help=f"comma-separated subset of {', '.join(LARGE_CASES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/ingest.json")
    args = parser.parse_args()

    # a part that is not run keeps its last figures in the results file
    results: dict[str, Any] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text(encoding="utf-8"))
    results["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    if args.only in (None, "corpus"):
        results.update(run_corpus(args.docs, args.workers))
    if args.only in (None, "large"):
        cases = tuple(c for c in args.large_cases.split(",") if c)
        unknown = set(cases) - set(LARGE_CASES)
        if unknown:
            parser.error(f"unknown --large-cases {', '.join(sorted(unknown))}")
        results["large_table_pdf"] = run_large(args.large_sections, cases)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(results, indent=2, ensure_ascii=False))


def run_corpus(docs: int, workers: int) -> dict[str, Any]:
    """The generated corpus and third-party PDFs: baseline, geomas cold, warm and 1 worker."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        generate_sample_corpus(Path(tmp) / "corpus", docs=docs, seed=123)
        src.mkdir()
        for pdf in (Path(tmp) / "corpus" / "docs").glob("*.pdf"):
            shutil.copy(pdf, src / pdf.name)
        if THIRD_PARTY.is_dir():
            for pdf in THIRD_PARTY.glob("*.pdf"):
                shutil.copy(pdf, src / f"thirdparty_{pdf.name}")
        pdfs = sorted(src.glob("*.pdf"))

        b_pages, b_secs, _ = baseline_pages_per_s(pdfs)
        out = Path(tmp) / "out"
        cfg = IngestConfig(workers=workers, max_failure_ratio=1.0)
        cold = ingest_folder(src, out, cfg, progress=False).report
        warm = ingest_folder(src, out, cfg, progress=False).report
        single = ingest_folder(src, Path(tmp) / "out1", IngestConfig(workers=1),
                               progress=False).report
        manifest = json.loads((Path(tmp) / "out1" / "documents.json").read_text("utf-8"))
        per_doc_secs = sum(d["seconds"] or 0.0 for d in manifest)

    return {
        "files": cold.files,
        "pdf_files": len(pdfs),
        "pdf_pages": b_pages,
        "baseline_pdfium_raw_text": {
            "seconds": round(b_secs, 3), "pages_per_s": round(b_pages / b_secs, 1)},
        f"geomas_native_workers{workers}": {
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


if __name__ == "__main__":
    main()
