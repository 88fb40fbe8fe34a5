"""Speed, memory and quality benchmarks, side by side with bm25s and txtai: writes docs/benchmarks.md.

    python -m benchmarks                 # full run: 10k, 100k and 1M passages (about 40 minutes)
    python -m benchmarks --quick         # smoke run: 10k passages, under 5 minutes
    python -m benchmarks --eval-kb KB    # quality on an embedded kb of ../shared/corpus + corpus/
    python -m benchmarks --backends [--sizes 100000] [--eval-kb KB]   # SQLite and Milvus Lite side
                                         # by side only (benchmarks/backends.py; not in --quick)

Every measured step runs in its own process (``benchmarks.worker``), so each peak RSS is that
step's own. Collections are built under ``--work`` (default ``bench_work/``, ignored by git) and
reused by later runs only with ``--reuse``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"


def run_worker(task: str, args: dict, log) -> dict:
    """One step in a fresh process; returns its JSON result (raises if it failed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", task, json.dumps(args)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    shown = {k: (v[:80] + "…" if isinstance(v, str) and len(v) > 80 else v) for k, v in args.items()}
    log.write(f"## {task} {json.dumps(shown, ensure_ascii=False)}\n{proc.stderr[-4000:]}\n")
    log.flush()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step {task} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def embed_sample(limit: int) -> list[str]:
    """Files of the shared corpus, smallest first, until about ``limit`` characters of text."""
    files = sorted((p for p in SHARED.rglob("*") if p.suffix in {".txt", ".md"} and p.is_file()),
                   key=lambda p: (p.stat().st_size, p.name))
    out, total = [], 0
    for p in files[len(files) // 3 :]:  # skip the stubs: typical documents
        out.append(str(p))
        total += p.stat().st_size // 3
        if total >= limit:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k passages only, small embedding sample")
    ap.add_argument("--sizes", help="collection sizes in passages, e.g. 10000,100000,1000000")
    ap.add_argument("--peers-max", type=int, default=100_000, help="largest size the peers run at")
    ap.add_argument("--eval-kb", help="an embedded kb of ../shared/corpus and corpus/ for the quality table")
    ap.add_argument("--work", default=str(ROOT / "bench_work"))
    ap.add_argument("--reuse", action="store_true", help="reuse collections already built under --work")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--previous", help="results JSON of an earlier run, for before/after store-stage figures")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite --out and its plots from the figures saved beside it (no measuring)")
    ap.add_argument("--backends", action="store_true",
                    help="only the SQLite / Milvus Lite side by side (benchmarks/backends.py) at --sizes "
                         "(default 100000), with --eval-kb for quality; writes docs/benchmarks/backends.json")
    args = ap.parse_args()
    if args.backends:
        sys.path.insert(0, str(ROOT))
        from benchmarks import backends

        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        with open(work / "bench.log", "a", encoding="utf-8") as log:
            backends.run(int((args.sizes or "100000").split(",")[0]), work, args.eval_kb, backends.RESULT, log,
                         command=" ".join(["python -m benchmarks", *sys.argv[1:]]))
        print(backends.section())
        return
    if args.report_only:
        sys.path.insert(0, str(ROOT))
        from benchmarks import report

        res = json.loads(Path(args.out).with_suffix(".json").read_text(encoding="utf-8"))
        report.write(res, Path(args.out))
        print(f"wrote {args.out} from {Path(args.out).with_suffix('.json')}")
        return
    if not SHARED.is_dir():
        raise SystemExit(f"the shared corpus is needed at {SHARED}")
    sizes = [int(x) for x in (args.sizes or ("10000" if args.quick else "10000,100000,1000000")).split(",")]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = open(work / "bench.log", "a", encoding="utf-8")
    sys.path.insert(0, str(ROOT))
    from benchmarks import report, synth, workload

    t_start = time.perf_counter()
    res: dict = {"machine": workload.machine(), "quick": args.quick, "started": time.strftime("%Y-%m-%d %H:%M"),
                 "command": " ".join(["python -m benchmarks", *sys.argv[1:]]), "sizes": {}}
    if args.previous:
        prev = json.loads(Path(args.previous).read_text(encoding="utf-8"))
        res["previous"] = {"file": Path(args.previous).name, "started": prev.get("started"),
                           "ingest_store": prev.get("ingest_store"),
                           "sizes": {k: {"store": v.get("store"), "vectors": v.get("vectors")}
                                     for k, v in prev.get("sizes", {}).items()}}
    steps = 3 + 4 * len(sizes) + (1 if args.eval_kb else 0)
    bar = tqdm(total=steps, desc="benchmarks", unit="step")

    # 1. ingest: the store stage on the whole shared corpus, then embedding on a sample
    corpus_kb = work / "corpus_kb"
    shutil.rmtree(corpus_kb, ignore_errors=True)
    res["ingest_store"] = run_worker("store", {"kb": str(corpus_kb), "paths": [str(SHARED), str(ROOT / "corpus")]}, log)
    bar.update()
    sample_kb = work / "embed_kb"
    shutil.rmtree(sample_kb, ignore_errors=True)
    res["ingest_embed"] = run_worker("embed", {"kb": str(sample_kb), "paths": embed_sample(15_000 if args.quick else 90_000)}, log)
    bar.update()
    res["encode"] = run_worker("encode", {}, log)
    bar.update()

    # 2. quality on the evaluation set: ours and the peers' (keyword only without vectors)
    if args.eval_kb:
        from yuanwen.ingest.pipeline import ingest
        from yuanwen.config import Config

        ingest([SHARED, ROOT / "corpus"], Config(kb_dir=Path(args.eval_kb)), progress=False)  # brings it up to date
        res["quality"] = run_worker("quality", {"kb": args.eval_kb}, log)
        res["latency_real"] = run_worker("latency", {"kb": args.eval_kb}, log)
        bar.update()
    else:
        res["quality"] = run_worker("quality", {"kb": str(corpus_kb)}, log)
    # 3. resampled collections: build, then latency, then peers
    material = synth.source_material(corpus_kb)
    material["passage_chars"] = synth.chars_per_passage(material)
    for n in sizes:
        folder = work / f"synth_{n}"
        kb = folder / "kb"
        row: dict = {}
        if not (args.reuse and (kb / "index.json").exists()):
            shutil.rmtree(folder, ignore_errors=True)
            row["files"] = synth.make_collection(material, folder / "docs", n)
            row["store"] = run_worker("store", {"kb": str(kb), "paths": [str(folder / "docs")]}, log)
            bar.update()
            row["vectors"] = run_worker("vectors", {"kb": str(kb)}, log)
        else:
            row.update(json.loads((folder / "build.json").read_text(encoding="utf-8")))
            bar.update()
        (folder / "build.json").write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
        bar.update()
        row["latency"] = run_worker("latency", {"kb": str(kb)}, log)
        bar.update()
        if n <= args.peers_max:
            row["peers"] = run_worker("peers", {"kb": str(kb)}, log)
        row["add_one"] = run_worker("add_one", {"kb": str(kb), "text": synth.one_document(material, seed=n)}, log)
        res["sizes"][str(n)] = row
        res["total_s"] = time.perf_counter() - t_start
        _save(res, args.out)
        report.write(res, Path(args.out))  # a partial report after each size

    bar.close()
    res["total_s"] = time.perf_counter() - t_start
    _save(res, args.out)
    report.write(res, Path(args.out))
    print(f"wrote {args.out} in {res['total_s'] / 60:.1f} min")


def _save(res: dict, out: str) -> None:
    p = Path(out).with_suffix(".json")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
