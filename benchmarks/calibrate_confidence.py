"""Calibrate and check when a hit is weak (``yuanwen.search.confidence``).

Runs the evaluation questions (``eval/questions.jsonl``, real questions users ask) and the
everyday off-topic questions (``eval/offtopic.jsonl``: cooking, sport, pets, games, finance...,
some sharing a word with the corpus) on a knowledge base built from ``../shared/corpus``, and
reports, per mode, with the thresholds as shipped:

- off-topic questions fully flagged (every hit weak): target at least 90%;
- real questions whose first hit is weak: target at most 5%.

With ``--grid`` it also lists the similarity thresholds that meet both targets for the model
that built the knowledge base (pick the middle of the band for
``yuanwen/data/similarity_thresholds.tsv``).

    python -m benchmarks.calibrate_confidence --kb bench_work/eval_kb [--grid]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from yuanwen.library import open_kb
from yuanwen.search import confidence

EVAL = Path(__file__).parent / "eval"


def _load(name: str) -> list[str]:
    return [json.loads(line)["query"] for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def figures(lib, real: list[str], off: list[str], mode: str) -> tuple[float, float, list]:
    """(share of off-topic fully flagged, share of real with a weak first hit, per-query evidence)."""
    evidence = []
    for kind, queries in (("real", real), ("off", off)):
        for q in queries:
            hits = lib.search(q, k=10, mode=mode).hits
            evidence.append((kind, q, [(h.similarity, h.coverage, h.weak) for h in hits]))
    off_flagged = [all(w for _, _, w in ev) for kind, _, ev in evidence if kind == "off"]
    real_weak = [bool(ev) and ev[0][2] or not ev for kind, _, ev in evidence if kind == "real"]
    return sum(off_flagged) / len(off_flagged), sum(real_weak) / len(real_weak), evidence


def grid(evidence: list) -> list[tuple[float, float, float]]:
    """(threshold, off-topic fully flagged, real first hit weak) for thresholds meeting both targets."""
    out = []
    for i in range(800, 951):
        t = i / 1000
        def weak(s, c):
            return (s is None or s < t) and c < confidence.COVERAGE_WITH_SIMILARITY
        off = [all(weak(s, c) for s, c, _ in ev) for kind, _, ev in evidence if kind == "off"]
        real = [not ev or weak(*ev[0][:2]) for kind, _, ev in evidence if kind == "real"]
        a, b = sum(off) / len(off), sum(real) / len(real)
        if a >= 0.9 and b <= 0.05:
            out.append((t, a, b))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True)
    ap.add_argument("--modes", default="hybrid,semantic,keyword")
    ap.add_argument("--grid", action="store_true", help="list the similarity thresholds that meet both targets")
    ap.add_argument("--json", help="write the figures to this file")
    a = ap.parse_args()
    real, off = _load("questions.jsonl"), _load("offtopic.jsonl")
    lib = open_kb(a.kb)
    print(f"model {lib.kb.built_with}; threshold {confidence.similarity_threshold(lib.kb)}; "
          f"{len(real)} real questions, {len(off)} off-topic")
    print("| mode | off-topic fully flagged | real questions with a weak first hit |")
    print("|---|---|---|")
    out = {}
    for mode in a.modes.split(","):
        flagged, weak_first, evidence = figures(lib, real, off, mode)
        out[mode] = {"off_topic_flagged": flagged, "real_weak_first": weak_first}
        print(f"| {mode} | {flagged:.1%} | {weak_first:.1%} |")
        missed = [q for kind, q, ev in evidence if kind == "off" and not all(w for _, _, w in ev)]
        if missed:
            print(f"  off-topic not fully flagged ({mode}): {'、'.join(missed)}")
        if a.grid and mode != "keyword":
            band = grid(evidence)
            if band:
                print(f"  thresholds meeting both targets ({mode}): {band[0][0]:.3f}..{band[-1][0]:.3f}")
            else:
                print(f"  no similarity threshold meets both targets ({mode})")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
