"""OCR quality and speed through the product's own reading path: character error rate (CER) per
scan condition, pages per second, and the founding document's heading paths.

    python -m benchmarks.ocr_cer --out DIR            # the full run (~100 pages, 10-15 minutes on 2 cores)
    python -m benchmarks.ocr_cer --out DIR --quick    # about 10 pages
    python -m benchmarks.ocr_cer --out DIR --engine-only   # baseline: the bare engine, no product code

Test scans (``tests/scans.py``) are made from documents whose text is known:

* the founding document (``../shared/samples/doc/000_dc0b083f46e91fc1.doc``, converted to PDF by
  LibreOffice); its reference is its source text (``corpus/000_dc0b083f46e91fc1.txt``) when all
  pages are scanned, else the text layer of the pages scanned as the product reads it;
* one page of each text-layer PDF of the shared corpus (``../shared/corpus/policy/*.pdf``),
  whose reference is that page's text as the product reads it
  (``yuanwen.ingest.readers.read_file(path).text``, cut at the page offsets).

Each is rendered at 300 dpi, degraded per condition (``tests.scans.CONDITIONS``) and written as an
image-only PDF, a multi-page TIFF, or PNG/JPEG files; then read with
``yuanwen.ingest.ocr.read_with_ocr`` (in this process; the engine is started once, before the
timing, by a warm-up page). CER is the edit distance over the reference length after NFKC,
whitespace and page-number lines removed (``tests.scans.cer``); the per-condition figure pools
all pages (total edits over total reference characters). Pages per second are wall-clock, with
the machine's core count and load average beside them.

Heading paths: the founding document's text version and each whole-document scan are segmented
as ``ingest.sandbox.parse_file`` does it (metadata, then ``segment``), and each passage of the
text version is matched to the OCR passage that most of its characters align to; the report
counts the passages whose heading paths are the same.

Writes ``DIR/ocr_cer.md`` (the tables), ``DIR/ocr_cer.json`` (every item, with its worst
differences) and ``DIR/texts/`` (each recognised text); the scans are kept under ``DIR/scans/``.
``--engine-only`` reads the same scans with RapidOCR directly (PDF pages rendered at 170 dpi,
lines joined with newlines): the baseline the product's layout and repair are measured against.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests import scans

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT.parent / "shared" / "corpus" / "policy"
TARGET_CLEAN, TARGET_DEGRADED = 0.02, 0.05

#: (file-name prefix in ../shared/corpus/policy, 0-based page, label)
CORPUS_PAGES = [
    ("2024-01-21-", 0, "redhdr_joint"),  # joint red header (two issuers + 文件), 文号, title
    ("2024-01-23-", 0, "redhdr_bold"),   # red header, bold body, full-width digits
    ("2024-03-24-", 0, "redhdr_body"),   # red header line, long body
    ("2024-03-08-", 1, "body"),          # plain body page, headings （一）（二）
]


@dataclass
class Item:
    """One scan to read: a source, its pages, a condition, a file format."""

    source: str              # "founding" or a CORPUS_PAGES label
    condition: str
    fmt: str                 # "pdf", "tiff", "png" or "jpeg"
    pages: list[int] | None  # 0-based pages of the source PDF; None: all
    files: list[Path] = field(default_factory=list)
    reference: str = ""
    n_pages: int = 0

    @property
    def name(self) -> str:
        pages = "all" if self.pages is None else "+".join(str(p + 1) for p in self.pages)
        return f"{self.source}.p{pages}.{self.condition}.{self.fmt}"


def plan(quick: bool, conditions: list[str]) -> list[Item]:
    """The scans to make and read."""
    if quick:
        items = [Item("founding", "clean", "pdf", None),
                 Item("founding", "seal", "pdf", [0]),
                 Item("founding", "badscan", "pdf", [1]),
                 Item("redhdr_joint", "phone", "jpeg", [0]),
                 Item("body", "fax", "tiff", [1]),
                 Item("redhdr_body", "clean", "png", [0]),
                 Item("redhdr_bold", "skew", "pdf", [0])]
        return [it for it in items if it.condition in conditions]
    # every condition on the whole founding document, and on a red-header page and a body page
    # of the corpus; the other corpus pages clean only
    items = [Item("founding", c, "pdf", None) for c in conditions]
    for _, page, label in CORPUS_PAGES:
        deg = label in ("redhdr_joint", "body")
        items += [Item(label, c, "pdf", [page]) for c in conditions if deg or c == "clean"]
    # the other file formats, under the conditions they usually come with
    if "fax" in conditions:
        items.append(Item("founding", "fax", "tiff", None))
    for _, page, label in CORPUS_PAGES[:2]:
        items += [Item(label, c, f, [page]) for c, f in (("clean", "png"), ("phone", "jpeg")) if c in conditions]
    return items


# ---------------------------------------------------------------------------------------------
# Sources, references and scans
# ---------------------------------------------------------------------------------------------
def source_pdf(source: str, work: Path) -> Path:
    if source == "founding":
        return scans.founding_document_pdf(work)
    prefix = next(p for p, _, label in CORPUS_PAGES if label == source)
    [pdf] = sorted(POLICY.glob(prefix + "*.pdf"))
    return pdf


def page_texts(pdf: Path) -> list[str]:
    """Each page's text as the product reads the PDF (the reader's page offsets)."""
    from yuanwen.ingest.readers import read_file

    rr = read_file(pdf)
    starts = list(rr.pages) + [len(rr.text)]
    return [rr.text[starts[i]:starts[i + 1]] for i in range(len(rr.pages))]


def prepare(items: list[Item], work: Path, seed: int) -> None:
    """Make each item's scan files and its reference text."""
    texts: dict[str, list[str]] = {}
    renders: dict[tuple[str, tuple | None], list] = {}
    out = work / "scans"
    out.mkdir(parents=True, exist_ok=True)
    for it in items:
        pdf = source_pdf(it.source, work)
        if str(pdf) not in texts:
            texts[str(pdf)] = page_texts(pdf)
        pages = texts[str(pdf)]
        if it.pages is None and it.source == "founding":
            it.reference = scans.FOUNDING_TEXT.read_text(encoding="utf-8")
        else:
            it.reference = "\n".join(pages[p] for p in (it.pages if it.pages is not None else range(len(pages))))
        key = (str(pdf), tuple(it.pages) if it.pages is not None else None)
        if key not in renders:
            renders[key] = scans.render_pdf(pdf, scans.SCAN_DPI, it.pages)
        images = scans.degrade_pages(renders[key], it.condition, seed)
        it.n_pages = len(images)
        stem = it.name.rsplit(".", 1)[0]
        if it.fmt == "pdf":
            it.files = [scans.write_pdf(images, out / f"{stem}.pdf")]
        elif it.fmt == "tiff":
            it.files = [scans.write_tiff(images, out / f"{stem}.tif")]
        else:
            it.files = scans.write_images(images, out, stem, it.fmt)


# ---------------------------------------------------------------------------------------------
# Readers: the product, or the bare engine
# ---------------------------------------------------------------------------------------------
def product_reader():
    """``read_with_ocr`` of the product: path -> ReadResult."""
    from yuanwen.ingest.ocr import read_with_ocr

    return read_with_ocr


def engine_only_reader(threads: int):
    """Baseline: RapidOCR on each page image, lines joined with newlines; no layout, no repair."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageSequence
    from rapidocr import RapidOCR

    from yuanwen.models import ReadResult

    engine = RapidOCR(params={"Global.log_level": "error",
                              "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                              "EngineConfig.onnxruntime.inter_op_num_threads": 1})

    def images(path: Path):
        if path.suffix.lower() == ".pdf":
            doc = pdfium.PdfDocument(str(path))
            try:
                for page in doc:
                    yield page.render(scale=170 / 72).to_pil().convert("RGB")
            finally:
                doc.close()
        else:
            with Image.open(path) as im:
                for frame in ImageSequence.Iterator(im):
                    yield frame.convert("RGB")

    def read(path) -> ReadResult:
        path = Path(path)
        pages, done = [], []
        for n, im in enumerate(images(path), 1):
            out = engine(im)
            pages.append("\n".join(out.txts or ()))
            done.append(n)
        return ReadResult(text="\n".join(pages), format="engine-only",
                          meta={"ocr_pages": ",".join(map(str, done))})

    return read


def _ocr_page_count(rr) -> int:
    pages = rr.meta.get("ocr_pages")
    if pages is None:
        return 0
    if isinstance(pages, str):
        return len([p for p in pages.replace(" ", ",").split(",") if p.strip()])
    return len(pages)


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------
def worst_differences(reference: str, hypothesis: str, n: int = 25) -> list[list[str]]:
    """The first ``n`` differences between the normalised texts: [op, reference, hypothesis]."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = scans.normalise_for_cer(reference), scans.normalise_for_cer(hypothesis)
    out = []
    for op in Levenshtein.opcodes(ref, hyp):
        if op.tag != "equal":
            out.append([op.tag, ref[op.src_start:op.src_end][:40], hyp[op.dest_start:op.dest_end][:40]])
            if len(out) >= n:
                break
    return out


def measure(items: list[Item], read, work: Path) -> tuple[list[dict], dict]:
    """A row per item (CER, seconds, differences); and the ReadResult of each whole-document
    scan of the founding document (for the heading paths), by item name."""
    texts = work / "texts"
    texts.mkdir(exist_ok=True)
    rows, whole = [], {}
    for k, it in enumerate(items, 1):
        t0, c0 = time.perf_counter(), time.process_time()
        hyp_parts, ocr_pages, errors = [], 0, []
        for f in it.files:
            try:
                rr = read(f)
            except Exception as exc:  # noqa: BLE001 - a failed read is a result too
                errors.append(f"{f.name}: {type(exc).__name__}: {exc}")
                continue
            hyp_parts.append(rr.text)
            ocr_pages += _ocr_page_count(rr)
            if it.source == "founding" and it.pages is None:
                whole[it.name] = (rr, f)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        hyp = "\n".join(hyp_parts)
        (texts / f"{it.name}.txt").write_text(hyp, encoding="utf-8")
        ref_n = len(scans.normalise_for_cer(it.reference))
        ref_np = len(scans.normalise_for_cer(it.reference, punctuation=False))
        row = {
            "name": it.name, "source": it.source, "condition": it.condition, "format": it.fmt,
            "pages": it.n_pages, "ocr_pages": ocr_pages, "seconds": seconds, "cpu_seconds": cpu,
            "ref_chars": ref_n, "ref_chars_np": ref_np,
            "cer": scans.cer(it.reference, hyp), "cer_np": scans.cer(it.reference, hyp, punctuation=False),
            "errors": errors, "differences": worst_differences(it.reference, hyp),
        }
        rows.append(row)
        print(f"[{k}/{len(items)}] {it.name:40s} {it.n_pages:2d} p {seconds:6.1f} s  CER {row['cer']:.2%}"
              f"  no punct {row['cer_np']:.2%}" + (f"  ERRORS {errors}" if errors else ""), flush=True)
    return rows, whole


def _segment(rr, path: Path):
    """Passages of a read file, as ``ingest.sandbox.parse_file`` makes them."""
    from yuanwen.config import Config
    from yuanwen.ingest.metadata import extract_metadata
    from yuanwen.ingest.segment import segment

    cfg = Config()
    meta = extract_metadata(rr.text, path, hints=rr.meta)
    passages, _ = segment(rr.text, headings=rr.headings, pages=rr.pages, body_end=meta.get("body_end"),
                          target_chars=cfg.passage_target_chars, max_chars=cfg.passage_max_chars)
    return passages


def _path_key(path: list[str]) -> tuple[str, ...]:
    return tuple(scans.normalise_for_cer(h) for h in path)


def compare_heading_paths(text_passages, ocr_passages) -> dict:
    """How many of the text version's passages land, by character alignment, in an OCR passage
    with the same heading path (headings compared after CER normalisation)."""
    from rapidfuzz.distance import Levenshtein

    def flat(passages):
        chars, owner = [], []
        for i, p in enumerate(passages):
            t = scans.normalise_for_cer(p.text)
            chars.append(t)
            owner += [i] * len(t)
        return "".join(chars), owner

    ref, ref_owner = flat(text_passages)
    hyp, hyp_owner = flat(ocr_passages)
    votes: list[Counter] = [Counter() for _ in text_passages]
    for op in Levenshtein.opcodes(ref, hyp):
        if op.tag in ("equal", "replace"):
            for d in range(min(op.src_end - op.src_start, op.dest_end - op.dest_start)):
                votes[ref_owner[op.src_start + d]][hyp_owner[op.dest_start + d]] += 1
    same, mismatches = 0, []
    for i, p in enumerate(text_passages):
        if not votes[i]:
            mismatches.append({"passage": i, "text": p.heading_path, "ocr": None})
            continue
        j = votes[i].most_common(1)[0][0]
        if _path_key(p.heading_path) == _path_key(ocr_passages[j].heading_path):
            same += 1
        else:
            mismatches.append({"passage": i, "text": p.heading_path, "ocr": ocr_passages[j].heading_path})
    distinct = lambda ps: list(dict.fromkeys(_path_key(p.heading_path) for p in ps))  # noqa: E731
    return {"text_passages": len(text_passages), "ocr_passages": len(ocr_passages), "same": same,
            "distinct_paths_equal": distinct(text_passages) == distinct(ocr_passages),
            "mismatches": mismatches[:20]}


def heading_paths(whole: dict, work: Path) -> dict[str, dict]:
    """The heading-path comparison for each whole-document scan of the founding document:
    against its text version (``.txt``), and against the text-layer PDF it was scanned from
    (the same PDF repair, so only what OCR changes)."""
    from yuanwen.config import Config
    from yuanwen.ingest.sandbox import parse_file

    versions = {"txt": parse_file(scans.FOUNDING_TEXT, {}, Config()).passages,
                "pdf": parse_file(scans.founding_document_pdf(work), {}, Config()).passages}
    out = {}
    for name, (rr, path) in whole.items():
        ocr = _segment(rr, path)
        for version, passages in versions.items():
            out[f"{name} vs {version}"] = r = compare_heading_paths(passages, ocr)
            print(f"heading paths, {name} against the {version} version: {r['same']}/{r['text_passages']} "
                  f"passages ({r['ocr_passages']} OCR passages)", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def _pooled(rows: list[dict]) -> tuple[float, float]:
    edits = sum(r["cer"] * r["ref_chars"] for r in rows)
    edits_np = sum(r["cer_np"] * r["ref_chars_np"] for r in rows)
    return (edits / max(1, sum(r["ref_chars"] for r in rows)),
            edits_np / max(1, sum(r["ref_chars_np"] for r in rows)))


def report(rows: list[dict], headings: dict, engine: str, warmup_s: float, quick: bool) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [
        f"# OCR character error rate per condition ({engine})", "",
        f"{'Quick run' if quick else 'Full run'}, {time.strftime('%Y-%m-%d %H:%M')}: {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} at the end; engine start and warm-up {warmup_s:.1f} s (not in pages/s).",
        "CER: edit distance / reference characters after NFKC, whitespace and page-number lines removed, "
        "pooled over the pages of each row. Targets: "
        f"≤ {TARGET_CLEAN:.0%} on clean 300 dpi renders, ≤ {TARGET_DEGRADED:.0%} on degraded ones.", "",
        "| condition | format | pages | CER | CER without punctuation | pages/s | target met |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["condition"], r["format"]), []).append(r)
    order = {c: i for i, c in enumerate(scans.CONDITIONS)}
    for (cond, fmt), rs in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1])):
        c, cnp = _pooled(rs)
        pages = sum(r["pages"] for r in rs)
        secs = sum(r["seconds"] for r in rs)
        target = TARGET_CLEAN if cond == "clean" else TARGET_DEGRADED
        lines.append(f"| {cond} | {fmt.upper()} | {pages} | {c:.2%} | {cnp:.2%} | {pages / secs:.2f} | "
                     f"{'yes' if c <= target else '**no**'} |")
    c, cnp = _pooled(rows)
    pages, secs = sum(r["pages"] for r in rows), sum(r["seconds"] for r in rows)
    lines.append(f"| **all** | | {pages} | {c:.2%} | {cnp:.2%} | {pages / secs:.2f} | |")

    lines += ["", "## Per source (CER / without punctuation)", ""]
    sources = list(dict.fromkeys(r["source"] for r in rows))
    conds = sorted({(r["condition"], r["format"]) for r in rows}, key=lambda k: (order.get(k[0], 99), k[1]))
    lines.append("| condition | " + " | ".join(sources) + " |")
    lines.append("|---|" + "---|" * len(sources))
    for cond, fmt in conds:
        cells = []
        for s in sources:
            rs = [r for r in rows if r["source"] == s and r["condition"] == cond and r["format"] == fmt]
            cells.append(f"{_pooled(rs)[0]:.1%} / {_pooled(rs)[1]:.1%}" if rs else "—")
        lines.append(f"| {cond} ({fmt.upper()}) | " + " | ".join(cells) + " |")

    if headings:
        lines += ["", "## Heading paths: the founding document's text version (txt) and text-layer PDF (pdf) "
                  "against its scans", "",
                  "| scan vs version | passages (version) | passages (OCR) | same heading path | distinct paths equal |",
                  "|---|---:|---:|---:|---|"]
        for name, h in headings.items():
            lines.append(f"| {name} | {h['text_passages']} | {h['ocr_passages']} | "
                         f"{h['same']} ({h['same'] / max(1, h['text_passages']):.0%}) | "
                         f"{'yes' if h['distinct_paths_equal'] else 'no'} |")
    failed = [r for r in rows if r["errors"]]
    if failed:
        lines += ["", "## Reads that failed", ""] + [f"- {r['name']}: {'; '.join(r['errors'])}" for r in failed]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the scans, texts and report (not in the repo)")
    ap.add_argument("--quick", action="store_true", help="about 10 pages")
    ap.add_argument("--engine-only", action="store_true", help="baseline: the bare engine, no product code")
    ap.add_argument("--threads", type=int, default=2, help="engine threads for --engine-only")
    ap.add_argument("--conditions", default=",".join(scans.CONDITIONS), help="comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-headings", action="store_true", help="skip the heading-path comparison")
    args = ap.parse_args(argv)
    conditions = [c for c in args.conditions.split(",") if c]
    unknown = set(conditions) - set(scans.CONDITIONS)
    if unknown:
        ap.error(f"unknown conditions: {sorted(unknown)}")
    work = Path(args.out).resolve()
    if ROOT in work.parents or work == ROOT:
        ap.error("--out must be outside the repository")
    work.mkdir(parents=True, exist_ok=True)

    items = plan(args.quick, conditions)
    t = time.perf_counter()
    prepare(items, work, args.seed)
    print(f"{len(items)} scans, {sum(it.n_pages for it in items)} pages, made in "
          f"{time.perf_counter() - t:.0f} s -> {work / 'scans'}", flush=True)

    read = engine_only_reader(args.threads) if args.engine_only else product_reader()
    engine = "bare RapidOCR engine, --engine-only baseline" if args.engine_only else "read_with_ocr"
    # warm-up: start the engine on one small page so the timing is of recognition only
    t = time.perf_counter()
    warm = scans.render_pdf(scans.founding_document_pdf(work), 72, [0])
    read(scans.write_images(warm, work / "warmup", "warmup", "png")[0])
    warmup_s = time.perf_counter() - t

    rows, whole = measure(items, read, work)
    headings = {} if args.no_headings else heading_paths(whole, work)
    text = report(rows, headings, engine, warmup_s, args.quick)
    (work / "ocr_cer.md").write_text(text, encoding="utf-8")
    (work / "ocr_cer.json").write_text(json.dumps(
        {"engine": engine, "quick": args.quick, "cores": os.cpu_count(), "warmup_s": warmup_s,
         "rows": rows, "headings": headings}, ensure_ascii=False, indent=1), encoding="utf-8")
    print()
    print(text)
    print(f"written: {work / 'ocr_cer.md'}, {work / 'ocr_cer.json'}, {work / 'texts'}")


if __name__ == "__main__":
    sys.exit(main())
