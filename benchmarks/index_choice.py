"""Exact (IndexFlatIP) or approximate (HNSW) FAISS index: where does the switch pay?

    python -m benchmarks.index_choice [--sizes 25000,100000,200000,400000]

Random unit vectors of e5-small's dimension (384) stand in for passages; queries are stored
vectors plus noise, so each has true near neighbours. Reports one-query latency (p50, ms) of
both indexes, HNSW build time and its Recall@10 against the exact answer. Used to set
``Config.exact_index_max``.
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def p50(fn, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q.reshape(1, -1))
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def run(n: int, dim: int = 384, nq: int = 200, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    xb = unit(rng.standard_normal((n, dim), dtype=np.float32))
    xq = unit(xb[rng.integers(0, n, nq)] + 0.08 * rng.standard_normal((nq, dim), dtype=np.float32))
    flat = faiss.IndexFlatIP(dim)
    flat.add(xb)
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(xb)
    build = time.perf_counter() - t0
    hnsw.hnsw.efSearch = 96
    _, truth = flat.search(xq, 10)
    _, approx = hnsw.search(xq, 10)
    recall = float(np.mean([len(set(a) & set(t)) / 10 for a, t in zip(approx, truth)]))
    return {"n": n, "flat_ms": p50(lambda q: flat.search(q, 50), xq),
            "hnsw_ms": p50(lambda q: hnsw.search(q, 50), xq), "hnsw_build_s": build,
            "hnsw_recall@10": recall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="25000,100000,200000,400000")
    args = ap.parse_args()
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    print("| vectors | flat p50 ms | HNSW p50 ms | HNSW build s | HNSW Recall@10 |")
    print("|---|---|---|---|---|")
    for n in (int(x) for x in args.sizes.split(",")):
        r = run(n)
        print(f"| {r['n']:,} | {r['flat_ms']:.1f} | {r['hnsw_ms']:.2f} | {r['hnsw_build_s']:.0f} | "
              f"{r['hnsw_recall@10']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
