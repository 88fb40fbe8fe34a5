"""Tune hybrid fusion on the evaluation questions (candidate lists cached, so variants are cheap).

    python -m benchmarks.tune_fusion --kb KB

Prints Recall@1/@5 and MRR@10 for keyword, semantic and each fusion setting tried, so the
default in ``search.retrieve.FusionConfig`` is chosen by measurement, not intuition.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from benchmarks.evaluate import Judge, load, metrics
from search.retrieve import FusionConfig, KeywordSearcher, SemanticSearcher, fuse_ranked
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase


def score(ranked_ids: list[int], judge: Judge, kb: KnowledgeBase, rel: list[dict]) -> int | None:
    ps = kb.store.get_passages(ranked_ids[:10])
    seen: list = []
    rank = 0
    for pid in ranked_ids:
        p = ps.get(pid)
        if p is None:
            continue
        if any(t.doc_id == p.doc_id and abs(t.seq - p.seq) <= 1 for t in seen):
            continue
        seen.append(p)
        rank += 1
        if rank > 10:
            return None
        if judge.relevant(p.doc_id, p.start, p.end, rel):
            return rank
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    args = ap.parse_args()
    kb = KnowledgeBase(Config(kb_dir=Path(args.kb)), readonly=True)
    judge = Judge(kb)
    qs = load("questions.jsonl")
    kw, se = KeywordSearcher(kb), SemanticSearcher(kb)
    cache = []
    for q in qs:
        cache.append((q, kw.search(q["query"], 100), se.search(q["query"], 100)))
    def report(name, fn):
        ranks = [score(fn(s, d, q["query"]), judge, kb, q["relevant"]) for q, s, d in cache]
        r1, r5, mrr = metrics(ranks)
        print(f"{name:40s} R@1 {r1:.3f}  R@5 {r5:.3f}  MRR@10 {mrr:.3f}")
    report("keyword", lambda s, d, q: [c.passage_id for c in s])
    report("semantic", lambda s, d, q: [c.passage_id for c in d])
    for w, depth, dw, tw in itertools.product([0.5, 0.6, 0.7], [50], [0.0, 0.3], [0.0, 0.1, 0.2, 0.3]):
        cfg = FusionConfig(dense_weight=w, depth=depth, doc_weight=dw, title_weight=tw)
        report(f"minmax w={w} depth={depth} doc={dw} title={tw}",
               lambda s, d, q, cfg=cfg: [c.passage_id for c in fuse_ranked(kb, d[:cfg.depth], s[:cfg.depth], cfg, q)])


if __name__ == "__main__":
    main()
