"""Which tokenisation for keyword search? BM25 (FTS5) over the same passages, three ways.

    python -m benchmarks.tokenisation --kb KB

Character bigrams (what 原文 uses), jieba words (search mode), and FTS5's own ``trigram``
tokenizer, each judged on benchmarks/eval/questions.jsonl (keyword search alone) and on the
quote set (is the source passage first?).
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import jieba

from benchmarks.evaluate import Judge, load, metrics
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.text import fold_width, tokenize

jieba.setLogLevel(60)


def jieba_terms(text: str) -> list[str]:
    return [w for w in jieba.cut_for_search(fold_width(text)) if tokenize(w)]


SCHEMES = {
    "bigram": ("unicode61", lambda t: " ".join(tokenize(t))),
    "jieba": ("unicode61", lambda t: " ".join(jieba_terms(t))),
    "trigram": ("trigram", fold_width),
}


def query_of(scheme: str, q: str) -> str:
    if scheme == "bigram":
        terms = tokenize(q)
    elif scheme == "jieba":
        terms = jieba_terms(q)
    else:  # trigram: every 3-character window of the folded query
        f = "".join(fold_width(q).split())
        terms = [f[i : i + 3] for i in range(max(1, len(f) - 2))]
    terms = list(dict.fromkeys(t.replace('"', "") for t in terms if t.strip()))
    return " OR ".join(f'"{t}"' for t in terms)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    args = ap.parse_args()
    kb = KnowledgeBase(Config(kb_dir=Path(args.kb)), readonly=True)
    judge = Judge(kb)
    rows = [(p.id, p.doc_id, p.start, p.end, p.text) for p in kb.store.passages()]
    meta = {r[0]: (r[1], r[2], r[3]) for r in rows}
    qs, quotes = load("questions.jsonl"), [q for q in load("quotes.jsonl") if q["source"]]
    print("| tokenisation | questions R@1 | R@5 | MRR@10 | quotes: source first |")
    print("|---|---|---|---|---|")
    for name, (tokenizer, prep) in SCHEMES.items():
        db = sqlite3.connect(":memory:")
        db.execute(f"CREATE VIRTUAL TABLE f USING fts5(t, tokenize='{tokenizer}')")
        db.executemany("INSERT INTO f(rowid, t) VALUES (?, ?)", [(r[0], prep(r[4])) for r in rows])
        ranks = []
        for q in qs:
            ids = [r[0] for r in db.execute(
                "SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT 10", [query_of(name, q["query"])])]
            rank = next((i + 1 for i, pid in enumerate(ids) if judge.relevant(*meta[pid], q["relevant"])), None)
            ranks.append(rank)
        first = 0
        for q in quotes:
            ids = [r[0] for r in db.execute(
                "SELECT rowid FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT 1", [query_of(name, q["query"])])]
            if ids and any(s < meta[ids[0]][2] and meta[ids[0]][1] < e
                           for s, e in judge.spans(meta[ids[0]][0], q["source"])):
                first += 1
        r1, r5, mrr = metrics(ranks)
        print(f"| {name} | {r1:.3f} | {r5:.3f} | {mrr:.3f} | {first / len(quotes):.3f} |", flush=True)


if __name__ == "__main__":
    main()
