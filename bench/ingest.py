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

ocr: OCR pages vs native pages in the same run. The first `--ocr-pages` pages of a real
Russian PDF (../shared/corpus/real-ru/labour_code.pdf) as they are (text layer) and as an
image-only copy (each page rendered by pypdfium2 at `--ocr-dpi`, grey, saved as a PDF by
Pillow: what a scan of the printed pages looks like), each through `ingest_folder` with the
same settings (``ocr: auto``, workers=1): pages/s of each, their ratio, and the word recall of
the OCR text against the native text.

legacy: seconds per legacy .doc against the DOCX it was made from: real-ru DOCX files saved as
.doc by LibreOffice, each set through `ingest_folder` (workers=1); the difference is
LibreOffice's conversion to DOCX (a fresh throwaway profile per file).

    .venv/bin/python bench/ingest.py [--only corpus|large|ocr|legacy] [--docs 40] [--workers 2]
        [--ocr-pages 6] [--out bench/results/ingest.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import resource
import shutil
import subprocess
import tempfile
import time
from collections import Counter
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
REAL_RU = ROOT.parent / "shared" / "corpus" / "real-ru"
LEGACY_SOURCES = ("ukrf_excerpt.docx", "pp87_project_docs.docx", "tz_gas_upravlenie.docx")
PARTS = ("corpus", "large", "ocr", "legacy")


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
    parser.add_argument("--only", choices=PARTS, default=None,
                        help="run one part only (default: all)")
    parser.add_argument("--docs", type=int, default=120, help="generated Russian reports")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--large-sections", type=int, default=50,
                        help="sections of the large PDF (50 give 263 pages)")
    parser.add_argument("--large-cases", default=",".join(LARGE_CASES),
                        help=f"comma-separated subset of {', '.join(LARGE_CASES)}")
    parser.add_argument("--ocr-pdf", type=Path, default=REAL_RU / "labour_code.pdf")
    parser.add_argument("--ocr-pages", type=int, default=6, help="first pages of --ocr-pdf")
    parser.add_argument("--ocr-dpi", type=int, default=300, help="resolution of the scan")
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
    if args.only in (None, "ocr"):
        results["ocr"] = run_ocr(args.ocr_pdf, args.ocr_pages, args.ocr_dpi)
    if args.only in (None, "legacy"):
        results["legacy_doc"] = run_legacy([REAL_RU / name for name in LEGACY_SOURCES])
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


def _words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (Tesseract, LibreOffice)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _ingest_one_by_one(src: Path, out: Path, config: IngestConfig) -> dict[str, Any]:
    """Ingest a folder in this process (workers=1): report, CPU seconds, records and texts.

    CPU seconds count the child processes too, and hold up on a busy machine where wall
    seconds do not.
    """
    cpu0 = _cpu_seconds()
    report = ingest_folder(src, out, config, progress=False).report
    cpu = _cpu_seconds() - cpu0
    manifest = json.loads((out / "documents.json").read_text("utf-8"))
    chunks = json.loads((out / "chunks.json").read_text("utf-8"))
    texts: dict[str, list[str]] = {}
    for chunk in chunks:
        texts.setdefault(chunk["source"], []).append(chunk["text"])
    return {"report": report, "cpu_seconds": cpu, "docs": {d["source"]: d for d in manifest},
            "texts": {k: "\n".join(v) for k, v in texts.items()}}


def write_pages(src: pypdfium2.PdfDocument, pages: list[int], out: Path) -> None:
    """Save `pages` (0-based) of `src` as a PDF of their own, text layer and all."""
    part = pypdfium2.PdfDocument.new()
    part.import_pages(src, pages)
    part.save(str(out))
    part.close()


def write_scan(pdf: Path, pages: int, dpi: int, text_out: Path, scan_out: Path) -> int:
    """The first `pages` pages of `pdf` as they are, and as an image-only (scanned) PDF."""
    from PIL import Image

    src = pypdfium2.PdfDocument(str(pdf))
    n = min(pages, len(src))
    write_pages(src, list(range(n)), text_out)
    images: list[Image.Image] = []
    for i in range(n):
        page = src[i]
        images.append(page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L"))
        page.close()
    src.close()
    images[0].save(str(scan_out), "PDF", save_all=True, append_images=images[1:],
                   resolution=float(dpi))
    return n


def run_ocr(pdf: Path, pages: int, dpi: int) -> dict[str, Any]:
    """Pages/s of OCR pages vs native pages, same settings (ocr: auto), same run, workers=1."""
    import docling.document_converter  # noqa: F401 - imports before the clock starts

    with tempfile.TemporaryDirectory() as tmp:
        native_src, scan_src = Path(tmp) / "native", Path(tmp) / "scan"
        native_src.mkdir()
        scan_src.mkdir()
        n = write_scan(pdf, pages, dpi, native_src / "pages.pdf", scan_src / "pages.pdf")
        cfg = IngestConfig(workers=1, ocr="auto")
        # the first document of a process loads the dictionaries (hygiene, text quality):
        # two other pages of the same PDF go through first, unmeasured
        warm = Path(tmp) / "warm"
        warm.mkdir()
        with pypdfium2.PdfDocument(str(pdf)) as doc:
            write_pages(doc, [n % len(doc), (n + 1) % len(doc)], warm / "warm.pdf")
        ingest_folder(warm, Path(tmp) / "out_warm", cfg, progress=False)
        runs = {name: _ingest_one_by_one(src, Path(tmp) / f"out_{name}", cfg)
                for name, src in (("native", native_src), ("ocr", scan_src))}
    out: dict[str, Any] = {"pdf": pdf.name, "pages": n, "scan_dpi": dpi,
                           "ocr_setting": cfg.ocr, "ocr_dpi": cfg.ocr_dpi}
    for name, run in runs.items():
        doc = run["docs"]["pages.pdf"]
        seconds = doc["seconds"]
        out[name] = {
            "status": doc["status"], "parser": doc["parser"],
            "pages_ocr": run["report"].model_dump().get("pages_ocr"),
            "document_seconds": seconds,
            "pages_per_s": round(n / seconds, 3) if seconds else None,
            "end_to_end_seconds": run["report"].seconds,
            "cpu_seconds_per_page": round(run["cpu_seconds"] / n, 3),
        }
    native_text = runs["native"]["texts"].get("pages.pdf", "")
    ocr_text = runs["ocr"]["texts"].get("pages.pdf", "")
    if native_text and ocr_text:
        ref, got = _words(native_text), _words(ocr_text)
        out["ocr_word_recall_vs_native"] = round(sum((ref & got).values()) / sum(ref.values()), 4)
    if out["native"]["pages_per_s"] and out["ocr"]["pages_per_s"]:
        out["native_over_ocr_pages_per_s"] = round(
            out["native"]["pages_per_s"] / out["ocr"]["pages_per_s"], 1)
        out["ocr_over_native_cpu_per_page"] = round(
            out["ocr"]["cpu_seconds_per_page"] / out["native"]["cpu_seconds_per_page"], 1)
    out["load_average_1min_after"] = round(os.getloadavg()[0], 2)
    print("ocr", json.dumps(out, ensure_ascii=False), flush=True)
    return out


def run_legacy(docx_files: list[Path]) -> dict[str, Any]:
    """Seconds per .doc (LibreOffice to DOCX, then docling) vs the same DOCX, workers=1."""
    import docling.document_converter  # noqa: F401 - imports before the clock starts

    soffice = shutil.which(IngestConfig().legacy.soffice)
    if soffice is None:
        return {"error": "no soffice: install libreoffice-writer-nogui (make system-deps)"}
    with tempfile.TemporaryDirectory() as tmp:
        docx_src, doc_src = Path(tmp) / "docx", Path(tmp) / "doc"
        docx_src.mkdir()
        doc_src.mkdir()
        for path in docx_files:
            shutil.copy(path, docx_src)
            with tempfile.TemporaryDirectory() as profile:
                subprocess.run([soffice, f"-env:UserInstallation={Path(profile).as_uri()}",
                                "--headless", "--convert-to", "doc", "--outdir", str(doc_src),
                                str(path)], check=True, capture_output=True, timeout=600)
        cfg = IngestConfig(workers=1)
        warm = Path(tmp) / "warm"  # the first document of a process loads the dictionaries
        warm.mkdir()
        shutil.copy(docx_files[0], warm)
        ingest_folder(warm, Path(tmp) / "out_warm", cfg, progress=False)
        docx_run = _ingest_one_by_one(docx_src, Path(tmp) / "out_docx", cfg)
        doc_run = _ingest_one_by_one(doc_src, Path(tmp) / "out_doc", cfg)
        doc_bytes = {p.name: p.stat().st_size for p in doc_src.iterdir()}
    files = []
    for path in docx_files:
        a = docx_run["docs"][path.name]
        b = doc_run["docs"][path.with_suffix(".doc").name]
        ref, got = _words(docx_run["texts"][path.name]), _words(
            doc_run["texts"][path.with_suffix(".doc").name])
        files.append({
            "docx": path.name, "docx_bytes": path.stat().st_size,
            "docx_seconds": a["seconds"], "doc_seconds": b["seconds"],
            "libreoffice_seconds": round(b["seconds"] - a["seconds"], 2),
            "doc_over_docx": round(b["seconds"] / a["seconds"], 1),
            "doc_parser": b["parser"],
            "doc_bytes": doc_bytes[path.with_suffix(".doc").name],
            "word_recall_doc_vs_docx": round(sum((ref & got).values()) / sum(ref.values()), 4),
        })
    out = {"files": files,
           "docx_seconds_total": round(sum(f["docx_seconds"] for f in files), 2),
           "doc_seconds_total": round(sum(f["doc_seconds"] for f in files), 2),
           "docx_cpu_seconds": round(docx_run["cpu_seconds"], 2),
           "doc_cpu_seconds": round(doc_run["cpu_seconds"], 2),
           "load_average_1min_after": round(os.getloadavg()[0], 2)}
    print("legacy", json.dumps(out, ensure_ascii=False), flush=True)
    return out


if __name__ == "__main__":
    main()
