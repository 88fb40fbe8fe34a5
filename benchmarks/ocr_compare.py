#!/usr/bin/env python3
"""Compare offline OCR engines on rendered policy-document pages with known text.

Three steps, each a subcommand (so that each engine can run in its own venv):

  python -m benchmarks.ocr_compare prepare [--corpus DIR] [--out DIR]
      Render chosen pages of text-layer PDFs at 150/200/300 dpi with pypdfium2,
      make degraded copies of the 300 dpi page (tests.scans.degrade: grey, noise,
      skew, jpeg, seal, phone, badscan, fax), and store the text layer as the
      reference (refs.json).
  python -m benchmarks.ocr_compare run --engine NAME [--threads N] [--out DIR]
      OCR every prepared image with one engine; write results/NAME.json with
      lines (text, box, score) and seconds per image.
      NAME: rapidocr_onnxruntime  (pip rapidocr_onnxruntime 1.4.x, PP-OCRv4)
            rapidocr              (pip rapidocr 3.x, bundled PP-OCRv6 small)
            add ":maxside=N" to raise the Global max_side_len (default 2000).
  python -m benchmarks.ocr_compare report [--out DIR]
      CER table (engine x condition), reading-order dump, paragraph joining demo.

CER = Levenshtein(ref, hyp) / len(ref) on NFKC-normalised text with all
whitespace and page-number lines ("— 1 —") removed, quote and bracket variants
folded (tests.scans.normalise_for_cer(fold=True)).  The CER through the product's
own reading path is measured by benchmarks/ocr_cer.py.  Also reported:
  cer_np  : same with punctuation removed as well (search only needs the chars)
  bag     : order-free error (multiset difference) — separates recognition
            errors from reading-order errors.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import time
import unicodedata
from collections import Counter
from pathlib import Path

from tests.scans import degrade, edit_distance, normalise_for_cer, render_pdf

HERE = Path(__file__).resolve().parent.parent / "bench_work" / "ocr"
DEFAULT_CORPUS = str(Path(__file__).resolve().parents[2] / "shared" / "corpus" / "policy")

# (file-name prefix, page index, label, degrade?)  — 4 pages of ordinary text
PAGES = [
    ("2024-01-21-", 0, "redhdr_joint", True),   # red joint header (two issuers + 文件), 文号, title
    ("2024-01-23-", 0, "redhdr_bold", False),   # red header, bold body, full-width digits
    ("2024-03-24-", 0, "redhdr_body", False),   # red header line + long body
    ("2024-03-08-", 1, "body", True),           # plain body page
]
DPIS = [100, 150, 200, 300]
DEGRADE = ["grey", "noise", "skew", "jpeg", "seal", "phone", "badscan", "fax"]  # tests.scans.CONDITIONS


# ---------------------------------------------------------------- text utils
# Normalisation, edit distance and the degradations live in tests/scans.py (shared with the
# OCR tests and benchmarks/ocr_cer.py); this script folds quote and bracket variants, as the
# engine comparison in docs/formats.md did.
def norm(s: str) -> str:
    return normalise_for_cer(s, fold=True)


def nopunct(s: str) -> str:
    return "".join(c for c in s if unicodedata.category(c)[0] in "LN")


def cer(ref: str, hyp: str) -> float:
    """CER of two texts already normalised by :func:`norm`."""
    return edit_distance(ref, hyp) / max(1, len(ref))


def bag_err(ref: str, hyp: str) -> float:
    r, h = Counter(ref), Counter(hyp)
    return max(sum((r - h).values()), sum((h - r).values())) / max(1, len(ref))


# ---------------------------------------------------------------- prepare
def prepare(args):
    import pypdfium2 as pdfium
    out = Path(args.out)
    (out / "img").mkdir(parents=True, exist_ok=True)
    refs, items = {}, []
    for prefix, pno, label, deg in PAGES:
        [pdf] = glob.glob(os.path.join(args.corpus, prefix + "*.pdf"))
        doc = pdfium.PdfDocument(pdf)
        page = doc[pno]
        raw = page.get_textpage().get_text_range()
        refs[label] = {"pdf": os.path.basename(pdf), "page": pno, "raw": raw, "ref": norm(raw)}
        for dpi in DPIS:
            [im] = render_pdf(pdf, dpi, [pno])
            name = f"{label}@{dpi}"
            im.save(out / "img" / f"{name}.png")
            items.append({"name": name, "page": label, "cond": f"{dpi}dpi", "size": im.size})
            if dpi == 300 and deg:
                for k in DEGRADE:
                    dim = degrade(im, k)
                    n2 = f"{label}@300+{k}"
                    dim.save(out / "img" / f"{n2}.png")
                    items.append({"name": n2, "page": label, "cond": f"300+{k}", "size": dim.size})
    (out / "refs.json").write_text(json.dumps(refs, ensure_ascii=False, indent=1))
    (out / "items.json").write_text(json.dumps(items, indent=1))
    print(f"{len(items)} images, refs for {len(refs)} pages -> {out}")


# ---------------------------------------------------------------- engines
def make_engine(spec: str, threads: int):
    """Return f(PIL.Image) -> list of (text, box[4][2], score)."""
    name, _, opt = spec.partition(":")
    maxside = int(opt.split("=")[1]) if opt.startswith("maxside=") else None
    if name == "rapidocr_onnxruntime":
        from rapidocr_onnxruntime import RapidOCR
        kw = dict(intra_op_num_threads=threads, inter_op_num_threads=1)
        if maxside:
            kw["max_side_len"] = maxside
        eng = RapidOCR(**kw)

        def run(img):
            res, _ = eng(img)
            return [(t, [list(map(float, p)) for p in b], float(s)) for b, t, s in (res or [])]
        return run
    if name == "rapidocr":
        from rapidocr import RapidOCR
        params = {"EngineConfig.onnxruntime.intra_op_num_threads": threads,
                  "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                  "Global.log_level": "warning"}
        if maxside:
            params["Global.max_side_len"] = maxside
        eng = RapidOCR(params=params)

        def run(img):
            r = eng(img)
            if r.txts is None:
                return []
            return [(t, b.tolist(), float(s)) for t, b, s in zip(r.txts, r.boxes, r.scores)]
        return run
    raise ValueError(name)


def run(args):
    from PIL import Image
    out = Path(args.out)
    items = json.loads((out / "items.json").read_text())
    if args.only:
        items = [i for i in items if re.search(args.only, i["name"])]
    t0 = time.perf_counter()
    eng = make_engine(args.engine, args.threads)
    init_s = time.perf_counter() - t0
    eng(Image.open(out / "img" / f"{items[0]['name']}.png").convert("RGB"))  # warm-up
    res = {"engine": args.engine, "threads": args.threads, "init_s": init_s, "pages": {}}
    for it in items:
        im = Image.open(out / "img" / f"{it['name']}.png").convert("RGB")
        t, c = time.perf_counter(), time.process_time()
        lines = eng(im)
        dt, dc = time.perf_counter() - t, time.process_time() - c
        res["pages"][it["name"]] = {"seconds": dt, "cpu_seconds": dc, "lines": lines}
        print(f"{it['name']:28s} {dt:6.2f}s wall {dc:6.2f}s cpu {len(lines):3d} lines", flush=True)
    (out / "results").mkdir(exist_ok=True)
    dest = out / "results" / f"{args.engine.replace(':', '_')}.json"
    if args.only and dest.exists():  # merge a partial rerun into earlier results
        old = json.loads(dest.read_text())
        old["pages"].update(res["pages"])
        res = old
    dest.write_text(
        json.dumps(res, ensure_ascii=False))


# ---------------------------------------------------------------- paragraphs
def join_paragraphs(lines, indent_chars=1.5, short_chars=1.0):
    """Group OCR lines (text, box, score) into paragraphs by geometry.

    Sort by top y, then x; a new paragraph starts when a line is indented by
    more than `indent_chars` character heights from the page's left text edge,
    or when the previous line stopped more than `short_chars` char heights
    before the right edge, or the vertical gap is > 1.2 line heights.
    Chinese lines are concatenated without a space.
    """
    if not lines:
        return []
    rows = []
    for t, b, s in lines:
        xs = [p[0] for p in b]; ys = [p[1] for p in b]
        rows.append((min(ys), min(xs), max(xs), max(ys), t))
    rows.sort(key=lambda r: (r[0] + r[3]) / 2)
    # boxes whose vertical centres lie within half a line height share a row
    grouped, row = [], [rows[0]]
    for r in rows[1:]:
        c, pc = (r[0] + r[3]) / 2, (row[-1][0] + row[-1][3]) / 2
        if abs(c - pc) < 0.5 * (row[-1][3] - row[-1][0]):
            row.append(r)
        else:
            grouped.append(row); row = [r]
    grouped.append(row)
    rows = []
    for g in grouped:
        g.sort(key=lambda r: r[1])
        rows.append((min(r[0] for r in g), g[0][1], g[-1][2], max(r[3] for r in g),
                     "".join(r[4] for r in g)))
    left = sorted(r[1] for r in rows)[len(rows) // 10]
    right = sorted(r[2] for r in rows)[-max(1, len(rows) // 10)]
    paras, cur, prev = [], "", None
    for y0, x0, x1, y1, t in rows:
        hgt = y1 - y0
        if prev is not None:
            py0, px0, px1, py1 = prev
            new = (x0 - left > indent_chars * hgt or right - px1 > short_chars * hgt
                   or y0 - py1 > 1.2 * hgt)
            if new:
                paras.append(cur); cur = ""
        cur += t
        prev = (y0, x0, x1, y1)
    paras.append(cur)
    return paras


# ---------------------------------------------------------------- report
def report(args):
    out = Path(args.out)
    refs = json.loads((out / "refs.json").read_text())
    items = json.loads((out / "items.json").read_text())
    engines = [json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))]
    conds = []
    for it in items:
        if it["cond"] not in conds:
            conds.append(it["cond"])
    print("threads:", {e["engine"]: e["threads"] for e in engines})
    print("\n## Per condition (mean over pages): CER / CER-no-punct / bag-err / wall s per page (cpu s)\n")
    hdr = "| condition | pages | " + " | ".join(e["engine"] for e in engines) + " |"
    print(hdr)
    print("|" + "---|" * (2 + len(engines)))
    summary = {}
    for c in conds:
        its = [i for i in items if i["cond"] == c]
        cells = []
        for e in engines:
            vals = [(cer(refs[i["page"]]["ref"], norm("\n".join(l[0] for l in e["pages"][i["name"]]["lines"]))),
                     cer(nopunct(refs[i["page"]]["ref"]), nopunct(norm("\n".join(l[0] for l in e["pages"][i["name"]]["lines"])))),
                     bag_err(refs[i["page"]]["ref"], norm("\n".join(l[0] for l in e["pages"][i["name"]]["lines"]))),
                     e["pages"][i["name"]]["seconds"],
                     e["pages"][i["name"]].get("cpu_seconds", float("nan"))) for i in its if i["name"] in e["pages"]]
            if not vals:
                cells.append("—"); continue
            m = [sum(v[k] for v in vals) / len(vals) for k in range(5)]
            summary[(e["engine"], c)] = m
            cells.append(f"{m[0]*100:.1f}% / {m[1]*100:.1f}% / {m[2]*100:.1f}% / {m[3]:.1f}s ({m[4]:.1f} cpu)")
        print(f"| {c} | {len(its)} | " + " | ".join(cells) + " |")

    print("\n## Per page and condition: CER% (order-sensitive) [bag%]\n")
    print("| image | " + " | ".join(e["engine"] for e in engines) + " |")
    print("|" + "---|" * (1 + len(engines)))
    for it in items:
        cells = []
        for e in engines:
            p = e["pages"].get(it["name"])
            if not p:
                cells.append("—"); continue
            hyp = norm("\n".join(l[0] for l in p["lines"]))
            ref = refs[it["page"]]["ref"]
            cells.append(f"{cer(ref, hyp)*100:.1f} [{bag_err(ref, hyp)*100:.1f}]")
        print(f"| {it['name']} | " + " | ".join(cells) + " |")

    if args.verbose:
        for e in engines:
            print(f"\n## Reading order, {e['engine']}, redhdr_joint@200 (engine order: y0 x0 score text)\n")
            p = e["pages"].get("redhdr_joint@200")
            for t, b, s in (p["lines"] if p else [])[:14]:
                print(f"  {b[0][1]:6.0f} {b[0][0]:6.0f} {s:.3f} {t}")
            print("\n  paragraphs (join_paragraphs) for body@200:")
            p = e["pages"].get("body@200")
            for para in join_paragraphs(p["lines"] if p else []):
                print("   ¶", para[:60] + ("…" if len(para) > 60 else ""))
        # show worst diffs for the first engine vs ref on one page
        import difflib
        for e in engines:
            for nm in args.diff or []:
                p = e["pages"].get(nm)
                if not p:
                    continue
                ref = refs[nm.split("@")[0]]["ref"]
                hyp = norm("\n".join(l[0] for l in p["lines"]))
                sm = difflib.SequenceMatcher(None, ref, hyp, autojunk=False)
                errs = [(op, ref[a:b], hyp[c:d]) for op, a, b, c, d in sm.get_opcodes() if op != "equal"]
                print(f"\n## diffs {e['engine']} {nm}: {errs[:40]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["prepare", "run", "report"])
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--out", default=str(HERE / "work"))
    ap.add_argument("--engine", default="rapidocr")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="regex on image names")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--diff", nargs="*", help="image names to show diffs for")
    args = ap.parse_args()
    {"prepare": prepare, "run": run, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
