"""Try more ranking signals, and a learned combination of them, with 5-fold cross-validation.

    python -m benchmarks.learn_ranking --kb KB [--context]

For each evaluation question the hybrid searcher's top 50 candidates are taken with their named
signals (``keyword``, ``semantic``, ``title``, ``understood``, raw ``bm25`` and ``cosine``), and
more signals are computed for each: the query's word coverage of the passage and of its heading
path, the best bigram coverage of a two-sentence window, the passage length, document evidence
(other strong candidates of the same document), the document's year and kind, the rank on each
side. ``--context`` adds the cosine of the query with the passage embedded together with its
title and heading path (slow: every candidate is embedded again).

It then reports candidate-level Recall@1, Recall@5 and MRR@10 for:
- the shipped ranking (the fused score as it is);
- each extra signal added to it, at a few weights;
- two learned combinations fitted on four folds and measured on the fifth: a pairwise logistic
  model, and coordinate ascent on MRR + Recall@1 starting from the shipped weights.
Figures and the decisions taken from them are in ``docs/search.md``.
"""

from __future__ import annotations

import argparse
import math
import random
import re
from pathlib import Path

import numpy as np
from yuanwen.search.confidence import query_terms, share_found
from yuanwen.search.retrieve import HybridSearcher, expand_query

from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.text import tokenize

from .evaluate import Judge, load

SHIPPED = {"sem": 0.6, "kw": 0.4, "title": 0.2, "und": 0.5}
_LAW_TYPES = ("法律", "行政法规", "地方性法规", "部门规章")


def collect(kb: KnowledgeBase, context: bool = False) -> list[list[dict]]:
    """Per question, its candidates' signals and whether each is relevant."""
    judge, searcher = Judge(kb), HybridSearcher(kb)
    docs = {d.id: d for d in kb.store.documents()}
    out = []
    for q in load("questions.jsonl"):
        cands = searcher.search(q["query"], 50)
        ps = kb.store.get_passages([c.passage_id for c in cands])
        terms, bigrams = query_terms(q["query"]), set(tokenize(expand_query(q["query"])))
        by_cos = sorted(cands, key=lambda c: -c.signals.get("cosine", -1.0))
        by_bm25 = sorted(cands, key=lambda c: -c.signals.get("bm25", -1.0))
        sem_rank = {c.passage_id: i for i, c in enumerate(by_cos)}
        kw_rank = {c.passage_id: i for i, c in enumerate(by_bm25)}
        rows = []
        for c in cands:
            p, d = ps[c.passage_id], docs[ps[c.passage_id].doc_id]
            sents = [s for s in re.split(r"(?<=[。！？；])", p.text) if s.strip()]
            window = max((len(bigrams & set(tokenize("".join(sents[i:i + 2])))) / max(1, len(bigrams))
                          for i in range(len(sents))), default=0.0)
            rows.append({**c.signals, "score": c.score, "doc": p.doc_id, "semr": sem_rank[c.passage_id],
                         "kwr": kw_rank[c.passage_id], "cov": share_found(terms, p.text),
                         "hcov": share_found(terms, " ".join(p.heading_path)), "window": window,
                         "len": math.log(len(p.text) + 1) / 6, "year": d.year or 0,
                         "law": float((d.doc_type or "") in _LAW_TYPES),
                         "rel": judge.relevant(p.doc_id, p.start, p.end, q["relevant"])})
            if context:
                head = "，".join(p.heading_path)
                rows[-1]["_ctx"] = f"{d.title}。{head}。{p.text}" if head else f"{d.title}。{p.text}"
        if context and rows:
            vecs = kb.embedder.embed_batch([r.pop("_ctx") for r in rows], "passage")
            for r, s in zip(rows, (vecs @ kb.encode_query(q["query"])).tolist()):
                r["ctx_cos"] = s
        out.append(rows)
    return out


def features(rows: list[dict], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' feature matrix (named features, each about 0..1) and relevance labels."""
    if not rows:
        return np.zeros((0, len(names))), np.zeros(0, bool)
    max_cos = max(r.get("cosine", 0.0) for r in rows)
    max_bm25 = max(r.get("bm25", 0.0) for r in rows) or 1.0
    ctx = [r.get("ctx_cos", 0.0) for r in rows]
    lo, hi = min(ctx), max(ctx)
    per_doc: dict[int, list[float]] = {}
    for r in rows:
        per_doc.setdefault(r["doc"], []).append(r.get("semantic", 0) + r.get("keyword", 0))
    X = []
    for r, c in zip(rows, ctx):
        same = sorted(per_doc[r["doc"]], reverse=True)
        f = {"sem": r.get("semantic", 0) / 0.6, "kw": r.get("keyword", 0) / 0.4,
             "title": float(r.get("title", 0) > 0), "und": r.get("understood", 0) / 0.5,
             "rrf_sem": 1 / (5 + r["semr"]), "rrf_kw": 1 / (5 + r["kwr"]),
             "cos_gap": r["cosine"] - max_cos if "cosine" in r else -0.05,
             "bm25_ratio": r.get("bm25", 0) / max_bm25, "cov": r["cov"], "hcov": r["hcov"],
             "window": r["window"], "len": r["len"], "doc_evidence": sum(same[1:4]) / 3,
             "recency": (r["year"] - 1950) / 75 if r["year"] else 0.5, "law": r["law"],
             "ctx": (c - lo) / (hi - lo) if hi > lo else 0.0}
        X.append([f[n] for n in names])
    return np.array(X), np.array([r["rel"] for r in rows], bool)


def metrics(data: list[tuple[np.ndarray, np.ndarray]], w: np.ndarray, idx: list[int]) -> np.ndarray:
    """Recall@1, Recall@5, MRR@10 of the ranking by ``X @ w`` over the questions ``idx``."""
    out = np.zeros(3)
    for i in idx:
        X, y = data[i]
        order = np.lexsort((np.arange(len(y)), -(X @ w))) if len(y) else []
        rank = next((n + 1 for n, j in enumerate(order) if y[j]), None)
        out += [rank == 1, bool(rank) and rank <= 5, 1 / rank if rank and rank <= 10 else 0]
    return out / max(1, len(idx))


def fit_pairwise(data, idx, l2: float = 1e-3, epochs: int = 300, lr: float = 0.5) -> np.ndarray:
    """A linear model fitted by logistic loss on (relevant - other) candidate pairs."""
    pairs = [a - b for i in idx for a in data[i][0][data[i][1]] for b in data[i][0][~data[i][1]]]
    D = np.array(pairs)
    w = np.zeros(D.shape[1])
    w[0] = 1.0
    for _ in range(epochs):
        g = -(D * (1 / (1 + np.exp(D @ w)))[:, None]).mean(0) + l2 * w
        w -= lr * g
    return w


def fit_ascent(data, idx, start: np.ndarray, rounds: int = 4) -> np.ndarray:
    """Coordinate ascent on MRR@10 + Recall@1 / 2, from the shipped weights."""
    w = start.copy()
    score = lambda v: float(metrics(data, v, idx) @ [0.5, 0, 1])
    best = score(w)
    for _ in range(rounds):
        moved = False
        for j in range(len(w)):
            for step in (-0.2, -0.1, -0.05, 0.05, 0.1, 0.2):
                v = w.copy()
                v[j] += step
                s = score(v)
                if s > best + 1e-9:
                    best, w, moved = s, v, True
        if not moved:
            break
    return w


def _fmt(m: np.ndarray) -> str:
    return " | ".join(f"{x:.3f}" for x in m)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True)
    ap.add_argument("--context", action="store_true", help="also try title+heading context vectors (slow)")
    args = ap.parse_args()
    kb = KnowledgeBase(Config(kb_dir=Path(args.kb)), readonly=True)
    questions = collect(kb, args.context)
    base_names = list(SHIPPED)
    extra = ["rrf_sem", "rrf_kw", "cos_gap", "bm25_ratio", "cov", "hcov", "window", "len", "doc_evidence",
             "recency", "law"] + (["ctx"] if args.context else [])
    names = base_names + extra
    data = [features(rows, names) for rows in questions]
    shipped = np.array([SHIPPED.get(n, 0.0) for n in names])
    everyone = list(range(len(data)))
    print(f"{len(data)} questions, {sum(len(y) for _, y in data)} candidates; relevant in the pool: "
          f"{sum(bool(y.any()) for _, y in data) / len(data):.3f}\n")
    print("| ranking | R@1 | R@5 | MRR@10 |\n|---|---|---|---|")
    print(f"| shipped | {_fmt(metrics(data, shipped, everyone))} |")
    for j, n in enumerate(extra, len(base_names)):
        for w in (0.05, 0.1, 0.2):
            v = shipped.copy()
            v[j] = w
            print(f"| shipped + {w} x {n} | {_fmt(metrics(data, v, everyone))} |")
    ids = everyone[:]
    random.Random(0).shuffle(ids)
    folds = [ids[k::5] for k in range(5)]
    for label, cols in (("shipped signals", base_names), ("all signals", names)):
        sel = [names.index(n) for n in cols]
        sub = [(X[:, sel], y) for X, y in data]
        res = {"shipped weights": [], "pairwise logistic": [], "coordinate ascent": []}
        for k in range(5):
            test = folds[k]
            train = [i for i in ids if i not in set(test)]
            res["shipped weights"].append(metrics(sub, shipped[sel], test))
            res["pairwise logistic"].append(metrics(sub, fit_pairwise(sub, train), test))
            res["coordinate ascent"].append(metrics(sub, fit_ascent(sub, train, shipped[sel]), test))
        for how, ms in res.items():
            print(f"| 5-fold CV, {label}, {how} | {_fmt(np.mean(ms, axis=0))} |")


if __name__ == "__main__":
    main()
