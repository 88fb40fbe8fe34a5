"""The SQLite and Milvus Lite backends side by side, on the same collection and evaluation set.

    python -m benchmarks.backends [--size 100000] [--eval-kb KB] [--work bench_work]
                                  [--out docs/benchmarks/backends.json]
    python -m benchmarks --backends ...          # the same, from the main benchmark command

One resampled collection (:mod:`benchmarks.synth`, the one the scaling benchmarks build) is
ingested into a SQLite knowledge base and into a Milvus Lite one (a local ``milvus.db``, whose
server, the real Milvus engine, runs as a subprocess of the process that opens it). Each gets the
same random unit vector per passage text (seeded by its content hash). Every measured step runs
in its own process (``benchmarks.worker``): the store stage (passages/s), the vectors, then the
four query kinds (``task_latency``), with the peak RSS of the step's process **and** of the Milvus
server subprocess (polled from ``/proc``), and the knowledge base folder's size on disk.

Quality: ``--eval-kb`` is an embedded SQLite knowledge base of ``../shared/corpus`` and ``corpus/``;
it is copied by ``yuanwen migrate`` (vectors copied, nothing re-embedded) into a Milvus Lite one
under ``--work``, and the evaluation set (:mod:`benchmarks.evaluate`) runs on both, with the
overlap of their hybrid top 5 per question.

:func:`section` is the part of docs/benchmarks.md written from ``--out`` (``report.write`` adds it
when the file exists). Not in ``--quick``: the Milvus store stage alone takes minutes at 100k.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "docs" / "benchmarks" / "backends.json"
BACKENDS = ("sqlite", "milvus")
MODES = ("keyword", "semantic", "hybrid", "quote")


# -- measuring helpers (used inside the worker processes) --------------------------------------
def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc: the Milvus Lite server is a subprocess)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                parent[int(d)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def _hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@contextmanager
def child_memory(every: float = 0.25) -> Iterator[dict]:
    """Poll the descendants this process starts while the block runs; the dict gets
    ``server_peak_rss_mb``: the largest peak RSS (VmHWM) of any of them (0 when there were none)."""
    out: dict = {"server_peak_rss_mb": 0.0}
    stop = threading.Event()
    before = set(_children(os.getpid()))  # started before the block: not its own

    def poll() -> None:
        while True:
            for pid in set(_children(os.getpid())) - before:
                hwm = _hwm_mb(pid)
                if hwm and hwm > out["server_peak_rss_mb"]:
                    out["server_peak_rss_mb"] = hwm
            if stop.wait(every):
                return

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder`` (the whole knowledge base on disk)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def unit_vectors(hashes: list[str], dim: int = 384) -> np.ndarray:
    """One random unit vector per content hash (the same on both backends)."""
    out = np.empty((len(hashes), dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        seed = int.from_bytes(hashlib.blake2b(h.encode(), digest_size=8).digest(), "little")
        out[i] = np.random.default_rng(seed).standard_normal(dim, dtype=np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


# -- worker tasks (registered in benchmarks.worker.TASKS) ---------------------------------------
def task_bk_store(a: dict) -> dict:
    """The store stage (no embedding) into a new knowledge base on ``a["backend"]``."""
    from yuanwen.ingest.pipeline import ingest

    from yuanwen.config import Config
    from yuanwen.kb import KnowledgeBase
    from yuanwen.library import init_kb

    kb_dir = Path(a["kb"])
    with child_memory() as mem:
        init_kb(kb_dir, backend=a["backend"])
        t0 = time.perf_counter()
        rep = ingest(a["paths"], config=Config(kb_dir=kb_dir), embed=False, progress=False)
        secs = time.perf_counter() - t0
        kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
        counts = kb.store.counts()
        kb.close()
    return {"seconds": secs, "passages": counts["passages"], "documents": counts["documents"],
            "failed": [o.path for o in rep.outcomes if o.status == "failed"], "disk_bytes": folder_bytes(kb_dir),
            **mem}


def task_bk_vectors(a: dict) -> dict:
    """The stand-in embedding: a unit vector per passage text saved, then the index brought up to date."""
    from benchmarks import workload
    from yuanwen.config import Config
    from yuanwen.kb import KnowledgeBase

    kb_dir = Path(a["kb"])
    with child_memory() as mem:
        kb = KnowledgeBase(Config(kb_dir=kb_dir), embedder=workload.RandomEmbedder())
        kb.claim_embedder()
        t0 = time.perf_counter()
        saved = 0
        while True:
            batch = kb.store.pending_passages(limit=20_000)
            if not batch:
                break
            hashes = [h for h, _ in batch]
            kb.store.save_vectors(hashes, unit_vectors(hashes))
            saved += len(hashes)
        store_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        kb.rebuild_index()
        index_s = time.perf_counter() - t0
        kind = kb.backend.describe().get("index_type")
        kb.close()
    return {"vectors": saved, "vector_store_s": store_s, "index_build_s": index_s, "index_kind": kind,
            "disk_bytes": folder_bytes(kb_dir), **mem}


def task_bk_latency(a: dict) -> dict:
    """``benchmarks.worker.task_latency`` (keyword, semantic, hybrid, quote), with the Milvus
    server's memory and the folder's size."""
    from benchmarks.worker import task_latency

    with child_memory() as mem:
        out = task_latency(a)
    return {**out, "disk_bytes": folder_bytes(Path(a["kb"])), **mem}


def task_bk_quality(a: dict) -> dict:
    """The evaluation set on one knowledge base (full ``search()`` per mode, quote lookup), and
    each question's hybrid top 5 (passage ids) for the overlap between backends."""
    from yuanwen.search.api import search

    from benchmarks.evaluate import eval_questions, eval_quotes, load
    from yuanwen.config import Config
    from yuanwen.kb import KnowledgeBase

    with child_memory() as mem:
        kb = KnowledgeBase(Config(kb_dir=Path(a["kb"])), readonly=True)
        modes = [eval_questions(kb, m) for m in ("keyword", "semantic", "hybrid")]
        quotes = eval_quotes(kb)
        top5 = {q["id"]: [h.passage.id for h in search(kb, q["query"], k=5, mode="hybrid").hits]
                for q in load("questions.jsonl")}
        passages = kb.store.counts()["passages"]
        kb.close()
    return {"modes": modes, "quotes": quotes, "top5": top5, "passages": passages, **mem}


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}


# -- the run ------------------------------------------------------------------------------------
def run(size: int, work: Path, eval_kb: str | None, out: Path, log, command: str | None = None) -> dict:
    """Build (or reuse) the collection, measure both backends, write ``out``; returns the figures."""
    from benchmarks import synth, workload
    from benchmarks.__main__ import SHARED, run_worker

    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"machine": workload.machine(), "started": time.strftime("%Y-%m-%d %H:%M"),
                 "command": command or " ".join(["python -m benchmarks.backends", *sys.argv[1:]]), "size": size,
                 "backends": {}}
    try:
        from importlib.metadata import version

        res["milvus"] = {"pymilvus": version("pymilvus"), "milvus-lite": version("milvus-lite")}
    except Exception:  # noqa: BLE001 - only a label
        res["milvus"] = {}
    t_start = time.perf_counter()
    load0 = os.getloadavg()[0]
    corpus_kb = work / "corpus_kb"
    if not (corpus_kb / "yuanwen.db").exists():
        run_worker("store", {"kb": str(corpus_kb), "paths": [str(SHARED), str(ROOT / "corpus")]}, log)
    docs = work / f"synth_{size}" / "docs"
    if not docs.is_dir():  # the same collection python -m benchmarks builds (same seed)
        material = synth.source_material(corpus_kb)
        material["passage_chars"] = synth.chars_per_passage(material)
        synth.make_collection(material, docs, size)
    for name in ("milvus", "sqlite"):  # the slow one first
        kb = work / f"backends_{size}" / name
        shutil.rmtree(kb, ignore_errors=True)
        row = {"store": run_worker("bk_store", {"kb": str(kb), "backend": name, "paths": [str(docs)]}, log)}
        print(f"{name}: store {row['store']['seconds']:.0f} s", file=sys.stderr, flush=True)
        row["vectors"] = run_worker("bk_vectors", {"kb": str(kb)}, log)
        row["latency"] = run_worker("bk_latency", {"kb": str(kb)}, log)
        res["backends"][name] = row
        _save(res, out)
    if eval_kb:
        mkb = work / "eval_milvus"
        if not (mkb / "kb.json").exists():
            from yuanwen.library import init_kb, migrate_kb

            shutil.rmtree(mkb, ignore_errors=True)
            init_kb(mkb, backend="milvus")
            t0 = time.perf_counter()
            migrate_kb(Path(eval_kb), mkb)
            res["migrate_s"] = time.perf_counter() - t0
        res["quality"] = {"sqlite": run_worker("bk_quality", {"kb": eval_kb}, log),
                          "milvus": run_worker("bk_quality", {"kb": str(mkb)}, log)}
    res["total_s"] = time.perf_counter() - t_start
    res["loadavg"] = [load0, os.getloadavg()[0]]
    _save(res, out)
    return res


def _save(res: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")


# -- the report -----------------------------------------------------------------------------------
def _ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def top5_overlap(q: dict) -> float:
    """Mean share of the SQLite hybrid top 5 that the Milvus top 5 also holds, per question."""
    a, b = q["sqlite"]["top5"], q["milvus"]["top5"]
    shares = [len(set(a[k]) & set(b.get(k, []))) / len(a[k]) for k in a if a[k]]
    return sum(shares) / max(len(shares), 1)


def section(path: Path = RESULT) -> str:
    """The docs/benchmarks.md section for the figures in ``path`` ("" when there are none)."""
    if not path.exists():
        return ""
    r = json.loads(path.read_text(encoding="utf-8"))
    bk = r["backends"]
    if not all(n in bk for n in BACKENDS):
        return ""
    s, m = bk["sqlite"], bk["milvus"]
    L: list[str] = []
    w = L.append
    mv = r.get("milvus", {})
    w("## Backends side by side: SQLite and Milvus Lite\n")
    w(f"Generated by `{r['command']}` on {r['started']} ({r.get('total_s', 0) / 60:.0f} minutes; raw figures in "
      f"`benchmarks/backends.json`). The same resampled collection ({s['store']['documents']:,} documents; "
      "`benchmarks/synth.py`) is ingested into a SQLite knowledge base and a Milvus Lite one "
      f"(milvus-lite {mv.get('milvus-lite', '?')}, pymilvus {mv.get('pymilvus', '?')}; a local `milvus.db`: "
      "the Milvus engine runs as a subprocess of the process that opens it), both with the same random unit "
      "vector per passage text; each step in its own process. Latencies exclude query encoding, as above. "
      f"Dense index: SQLite's FAISS index is `{s['vectors']['index_kind']}` at this size; Milvus Lite's is "
      f"`{m['vectors']['index_kind']}` (Milvus Lite 2.5 builds only FLAT, IVF_FLAT and AUTOINDEX locally; "
      "a Milvus server also builds HNSW)."
      + (f" Load average on this shared machine: {r['loadavg'][0]:.1f} at the start, {r['loadavg'][1]:.1f} at the end."
         if r.get("loadavg") else "") + (f" {r['note']}" if r.get("note") else "") + "\n")
    w("| | SQLite | Milvus Lite | Milvus / SQLite |")
    w("|---|---|---|---|")

    def row(label: str, a: float, b: float, fmt) -> None:
        w(f"| {label} | {fmt(a)} | {fmt(b)} | {b / a:.2f}x |" if a else f"| {label} | {fmt(a)} | {fmt(b)} | |")

    w(f"| passages | {s['store']['passages']:,} | {m['store']['passages']:,} | |")
    row("store stage (passages/s)", s["store"]["passages"] / s["store"]["seconds"],
        m["store"]["passages"] / m["store"]["seconds"], lambda x: f"{x:,.0f}")
    row("vectors saved + index (s)", s["vectors"]["vector_store_s"] + s["vectors"]["index_build_s"],
        m["vectors"]["vector_store_s"] + m["vectors"]["index_build_s"], lambda x: f"{x:,.1f}")
    for mode in MODES:
        a, b = s["latency"]["modes"][mode], m["latency"]["modes"][mode]
        row(f"{mode} p50 (ms)", a["p50_ms"], b["p50_ms"], _ms)
        row(f"{mode} p95 (ms)", a["p95_ms"], b["p95_ms"], _ms)
    row("open (s: indexes, or connecting and loading collections)", s["latency"]["open_s"],
        m["latency"]["open_s"], lambda x: f"{x:.1f}")
    row("search process peak RSS", s["latency"]["peak_rss_mb"], m["latency"]["peak_rss_mb"],
        lambda x: f"{x:,.0f} MiB")
    w(f"| Milvus server subprocess peak RSS, searching | - | {m['latency']['server_peak_rss_mb']:,.0f} MiB | |")
    row("search process + server", s["latency"]["peak_rss_mb"],
        m["latency"]["peak_rss_mb"] + m["latency"]["server_peak_rss_mb"], lambda x: f"{x:,.0f} MiB")
    row("store stage peak RSS (process)", s["store"]["peak_rss_mb"], m["store"]["peak_rss_mb"],
        lambda x: f"{x:,.0f} MiB")
    w(f"| Milvus server subprocess peak RSS, storing | - | {m['store']['server_peak_rss_mb']:,.0f} MiB | |")
    row("store stage: process + server", s["store"]["peak_rss_mb"],
        m["store"]["peak_rss_mb"] + m["store"]["server_peak_rss_mb"], lambda x: f"{x:,.0f} MiB")
    row("knowledge base on disk", s["latency"]["disk_bytes"], m["latency"]["disk_bytes"], _mib)
    w("")
    lat = {md: m["latency"]["modes"][md]["p50_ms"] / s["latency"]["modes"][md]["p50_ms"] for md in MODES}
    both = m["latency"]["peak_rss_mb"] + m["latency"]["server_peak_rss_mb"]
    w(f"**Reading it.** On one machine Milvus Lite is {'slower' if min(lat.values()) > 1 else 'not faster'} than "
      "SQLite: p50 " + ", ".join(f"{md} {v:.1f}x" for md, v in lat.items()) + " SQLite's time, and the store "
      f"stage runs at {m['store']['passages'] / m['store']['seconds']:,.0f} passages/s against "
      f"{s['store']['passages'] / s['store']['seconds']:,.0f}. Every read a search makes (passages, document rows, "
      "text slices, sentence spans) is a gRPC call to the server process, where SQLite reads its file in "
      "the search process; quote lookup makes such calls for each candidate passage it aligns, so it loses "
      "most. Memory moves from the search process to the server, which holds the loaded collections "
      f"(text, BM25 sparse vectors, dense vectors): the two together are {both / s['latency']['peak_rss_mb']:.1f}x "
      "SQLite's search process. Milvus Lite is the test double of a Milvus cluster (the same engine and API, "
      "one process), not a single-machine speed-up: one office PC is better served by the SQLite backend; "
      "Milvus pays off when the collection or the users outgrow one machine and its query nodes share the "
      "work.\n")
    q = r.get("quality")
    if q:
        qs, qm = q["sqlite"], q["milvus"]
        w(f"**Quality** on the evaluation set ({qs['modes'][0]['n']} questions, {qs['quotes']['n']} quotes; real "
          f"vectors, query encoding included in p50): the embedded knowledge base of the shared corpus "
          f"({qs['passages']:,} passages) and its copy made by `yuanwen migrate` into Milvus Lite (vectors "
          "copied, nothing embedded again" + (f"; the copy took {r['migrate_s'] / 60:.1f} minutes" if r.get("migrate_s") else "")
          + ").\n")
        w("| mode | Recall@1 SQLite / Milvus | Recall@5 SQLite / Milvus | MRR@10 SQLite / Milvus | p50 SQLite / Milvus |")
        w("|---|---|---|---|---|")
        for a, b in zip(qs["modes"], qm["modes"], strict=True):
            w(f"| {a['mode']} | {a['recall@1']:.3f} / {b['recall@1']:.3f} | {a['recall@5']:.3f} / {b['recall@5']:.3f} | "
              f"{a['mrr@10']:.3f} / {b['mrr@10']:.3f} | {_ms(a['p50_ms'])} / {_ms(b['p50_ms'])} ms |")
        a, b = qs["quotes"], qm["quotes"]
        w(f"| quote lookup | {a['recall@1']:.3f} / {b['recall@1']:.3f} | | | {_ms(a['p50_ms'])} / {_ms(b['p50_ms'])} ms |")
        worst = max(abs(x["recall@5"] - y["recall@5"]) for x, y in zip(qs["modes"], qm["modes"], strict=True))
        off = [f"{x['mode']} ({y['recall@5'] - x['recall@5']:+.3f} on Milvus)"
               for x, y in zip(qs["modes"], qm["modes"], strict=True) if abs(x["recall@5"] - y["recall@5"]) > 0.02]
        w(f"\nLargest Recall@5 difference between the backends: {worst:.3f} (target: within 0.02"
          + (f"; outside it: {', '.join(off)}" if off else ": met") + "). Hybrid top 5 overlap (share of SQLite's "
          f"top 5 that Milvus also returns, per question): {top5_overlap(q):.3f}. Semantic search ranks the same copied "
          "vectors on both. Keyword search differs by design: Milvus scores one BM25 "
          "field holding the text, heading and title terms together, with Milvus's own idf, where SQLite weighs "
          "text, headings and title 1 / 0.5 / 0.3 (`yuanwen/milvus_backend.py`). The p50 column includes query "
          "encoding, and the two runs shared the machine with other jobs: compare speed in the table above.\n")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000, help="collection size in passages")
    ap.add_argument("--eval-kb", help="an embedded SQLite kb of ../shared/corpus and corpus/ (read, and "
                                      "copied into Milvus by yuanwen migrate)")
    ap.add_argument("--work", default=str(ROOT / "bench_work"))
    ap.add_argument("--out", default=str(RESULT))
    args = ap.parse_args(sys.argv[1:])
    sys.path.insert(0, str(ROOT))
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "bench.log", "a", encoding="utf-8") as log:
        run(args.size, work, args.eval_kb, Path(args.out), log)
    print(section(Path(args.out)))


if __name__ == "__main__":
    main()
