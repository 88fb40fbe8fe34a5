"""Retrieval quality on the evaluation set: Recall@1, Recall@5, MRR@10 per mode, and quote lookup.

    python -m benchmarks.evaluate --kb KB [--modes hybrid,semantic,keyword] [--json OUT]

The knowledge base must hold ../shared/corpus and corpus/ (``yuanwen ingest ../shared/corpus corpus``).
A hit is relevant when it comes from the listed file and its span overlaps the place where the
listed snippet occurs (whitespace and width ignored). A quote lookup is right when its first
source holds the original sentence (any document that holds it verbatim counts: duplicated
laws and speeches are real sources too) and its verdict is the expected one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from yuanwen.search.api import search
from yuanwen.search.quote import QuoteConfig, lookup_quote
from yuanwen.search.retrieve import FusionConfig
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.text import fold_map

EVAL = Path(__file__).resolve().parent / "eval"


def load(name: str) -> list[dict]:
    return [json.loads(x) for x in (EVAL / name).read_text(encoding="utf-8").splitlines() if x.strip()]


class Judge:
    """Answers 'is this span relevant to that query' from the stored document texts."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.docs = {d.path: d.id for d in kb.store.documents()}
        self._spans: dict[tuple[int, str], list[tuple[int, int]]] = {}
        self._folded: dict[int, tuple[str, list[int]]] = {}

    def doc_ids(self, file: str) -> list[int]:
        tail = file.split("/", 1)[1] if file.startswith("corpus/") else file
        return [i for p, i in self.docs.items() if p.replace("\\", "/").endswith("/" + tail)]

    def spans(self, doc_id: int, snippet: str) -> list[tuple[int, int]]:
        key = (doc_id, snippet)
        if key not in self._spans:
            if doc_id not in self._folded:
                self._folded[doc_id] = fold_map(self.kb.store.get_document(doc_id).text)
            text, offs = self._folded[doc_id]
            sf, _ = fold_map(snippet)
            out, pos = [], text.find(sf)
            while pos >= 0 and sf:
                out.append((offs[pos], offs[pos + len(sf) - 1] + 1))
                pos = text.find(sf, pos + 1)
            self._spans[key] = out
        return self._spans[key]

    def relevant(self, hit_doc: int, start: int, end: int, rel: list[dict]) -> bool:
        for r in rel:
            if hit_doc in self.doc_ids(r["file"]):
                if any(s < end and start < e for s, e in self.spans(hit_doc, r["contains"])):
                    return True
        return False


def metrics(ranks: list[int | None]) -> tuple[float, float, float]:
    """Recall@1, Recall@5 and MRR@10 from the rank of the first relevant hit of each query
    (None: none in the top 10)."""
    n = len(ranks)
    return (sum(r == 1 for r in ranks) / n, sum(bool(r) and r <= 5 for r in ranks) / n,
            sum(1 / r for r in ranks if r) / n)


def eval_questions(kb: KnowledgeBase, mode: str, fusion: FusionConfig | None = None) -> dict:
    judge = Judge(kb)
    ranks: list[int | None] = []
    times, misses = [], []
    qs = load("questions.jsonl")
    for q in qs:
        t0 = time.perf_counter()
        res = search(kb, q["query"], k=10, mode=mode, fusion=fusion)
        times.append((time.perf_counter() - t0) * 1000)
        rank = next((h.rank for h in res.hits
                     if judge.relevant(h.document.id, h.passage.start, h.passage.end, q["relevant"])), None)
        ranks.append(rank)
        if not rank:
            misses.append(q["id"])
    r1, r5, mrr = metrics(ranks)
    return {"mode": mode, "n": len(qs), "recall@1": r1, "recall@5": r5, "mrr@10": mrr,
            "p50_ms": statistics.median(times), "misses": misses}


def eval_quotes(kb: KnowledgeBase, cfg: QuoteConfig | None = None) -> dict:
    judge = Judge(kb)
    qs = load("quotes.jsonl")
    right = verdict_ok = 0
    by_kind: dict[str, list[int]] = {}
    times, wrong = [], []
    for q in qs:
        t0 = time.perf_counter()
        res = lookup_quote(kb, q["query"], cfg)
        times.append((time.perf_counter() - t0) * 1000)
        if q["expect"] == "not_found":
            ok = res.verdict == "not_found"
        else:
            m = res.matches[0] if res.matches else None
            ok = bool(m) and any(judge.spans(m.document.id, q["source"])) and \
                any(s < m.end and m.start < e for s, e in judge.spans(m.document.id, q["source"]))
        v_ok = res.verdict == q["expect"]
        right += ok
        verdict_ok += v_ok
        by_kind.setdefault(q["kind"], []).append(int(ok))
        if not ok or not v_ok:
            wrong.append({"id": q["id"], "kind": q["kind"], "verdict": res.verdict,
                          "similarity": round(res.similarity, 1), "source_found": ok})
    n = len(qs)
    return {"n": n, "recall@1": right / n, "verdict_accuracy": verdict_ok / n,
            "by_kind": {k: sum(v) / len(v) for k, v in by_kind.items()},
            "p50_ms": statistics.median(times), "wrong": wrong}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True)
    ap.add_argument("--modes", default="keyword,semantic,hybrid")
    ap.add_argument("--no-quotes", action="store_true")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    kb = KnowledgeBase(Config(kb_dir=Path(args.kb)), readonly=True)
    out = {"questions": [eval_questions(kb, m) for m in args.modes.split(",")]}
    if not args.no_quotes:
        out["quotes"] = eval_quotes(kb)
    print("| mode | Recall@1 | Recall@5 | MRR@10 | p50 ms |")
    print("|---|---|---|---|---|")
    for r in out["questions"]:
        print(f"| {r['mode']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['mrr@10']:.3f} | {r['p50_ms']:.0f} |")
    if "quotes" in out:
        qr = out["quotes"]
        print(f"\nquotes: Recall@1 {qr['recall@1']:.3f}, verdict accuracy {qr['verdict_accuracy']:.3f}, "
              f"p50 {qr['p50_ms']:.0f} ms, by kind {qr['by_kind']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
