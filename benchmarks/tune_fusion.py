"""Tune hybrid fusion on the evaluation questions.

    python -m benchmarks.tune_fusion --kb KB

Prints Recall@1/@5 and MRR@10 for keyword, semantic and each fusion setting tried, so the
default in ``search.retrieve.FusionConfig`` is chosen by measurement, not intuition. Every
setting is scored on exactly the hits ``search.api.search`` returns (merged neighbours, dedup,
the cut at 10), through ``benchmarks.evaluate.eval_questions``: what is tuned is what users see.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from benchmarks.evaluate import eval_questions
from yuanwen.search.retrieve import FusionConfig
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    args = ap.parse_args()
    kb = KnowledgeBase(Config(kb_dir=Path(args.kb)), readonly=True)

    def report(name: str, mode: str, fusion: FusionConfig | None = None) -> None:
        m = eval_questions(kb, mode, fusion)
        print(f"{name:40s} R@1 {m['recall@1']:.3f}  R@5 {m['recall@5']:.3f}  MRR@10 {m['mrr@10']:.3f}")

    report("keyword", "keyword")
    report("semantic", "semantic")
    for w, depth, dw, tw in itertools.product([0.5, 0.6, 0.7], [50], [0.0, 0.3], [0.0, 0.1, 0.2, 0.3]):
        cfg = FusionConfig(dense_weight=w, depth=depth, doc_weight=dw, title_weight=tw)
        report(f"minmax w={w} depth={depth} doc={dw} title={tw}", "hybrid", cfg)


if __name__ == "__main__":
    main()
