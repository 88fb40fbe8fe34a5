"""Quote verdicts on absent and on real quotes, with documents held out of the knowledge base.

A drafter's quote that is in no document must be ``not_found``, even when a document says
something similar in the same formulaic words; a real quote remembered with a few characters
wrong must be ``close`` (or ``exact``) with its source. This script:

1. copies a knowledge base of ``../shared/corpus`` (``--kb``, e.g. the evaluation one) into
   ``--work`` and deletes every fifth document of the shared .txt/.md files from the copy;
2. takes official-sounding sentences from those held-out documents that share no 10-character
   run with any kept document: they are absent, and lookups must say ``not_found``;
3. takes sentences of kept documents, perturbed as memory does (``benchmarks.make_quotes``:
   exact, fragment, dropped characters, swapped words, light paraphrase): lookups must find
   them (``exact`` for exact and fragment, else ``close``) in their source document;
4. reports verdict accuracy on each set and the similarities that separate them.

The two sets are kept in ``eval/heldout_quotes.jsonl`` (made once with the default seed, then
read back, so every run asks the same quotes); ``--remake`` makes them again.

    python -m benchmarks.calibrate_quotes --kb bench_work/eval_kb --work bench_work/quotes
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
from pathlib import Path

from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.search.quote import lookup_quote

from .make_quotes import SHARED, perturb, sentences_of

SETS = Path(__file__).resolve().parent / "eval" / "heldout_quotes.jsonl"

PER_DOC = 3  # absent sentences taken from one held-out document at most
RUN = 10  # characters: a sentence sharing a run this long with a kept document is not absent


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def held_out_split(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(kept, held out): every fifth file, in path order, is held out."""
    return [f for i, f in enumerate(files) if i % 5], [f for i, f in enumerate(files) if not i % 5]


MARKUP = re.compile(r"&[#A-Za-z0-9]+;|<[^>]+>")  # raw HTML in a Markdown file: no one quotes that


def _sentences(f: Path) -> list[str]:
    return [s for s in sentences_of(f) if not MARKUP.search(s)]


def make_sets(kept: list[Path], held: list[Path], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    kept_text = "\n".join(_squash(f.read_text(encoding="utf-8", errors="replace")) for f in kept)
    grams = {kept_text[i : i + RUN] for i in range(len(kept_text) - RUN + 1)}
    absent = []
    for f in rng.sample(held, len(held)) * PER_DOC:
        used = {r["query"] for r in absent}
        sents = [s for s in _sentences(f) if s not in used and not any(
            _squash(s)[i : i + RUN] in grams for i in range(len(_squash(s)) - RUN + 1))]
        if sents:
            absent.append({"query": rng.choice(sents), "file": f.relative_to(SHARED).as_posix(),
                           "expect": "not_found"})
        if len(absent) >= n:
            break
    real = []
    kinds = ["exact", "fragment", "drop", "swap", "paraphrase"]
    for f in rng.sample(kept, len(kept)) * 2:
        sents = _sentences(f)
        if not sents:
            continue
        s, kind = rng.choice(sents), kinds[len(real) % len(kinds)]
        q = perturb(s, kind, rng)
        # a fragment or a sentence that is also elsewhere has no single source: skip it
        if not q or _squash(kept_text).count(_squash(q if kind != "exact" else s)) > 1:
            continue
        real.append({"query": q, "kind": kind, "file": f.relative_to(SHARED).as_posix(),
                     "expect": "exact" if kind in ("exact", "fragment") else "close"})
        if len(real) >= n:
            break
    return absent, real


def run(kb: KnowledgeBase, rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        res = lookup_quote(kb, r["query"])
        files = [m.document.path for m in res.matches]
        right = res.verdict == r["expect"] and (r["expect"] == "not_found" or any(
            p.endswith(r["file"]) for p in files))
        out.append({**r, "verdict": res.verdict, "similarity": round(res.similarity, 1), "right": right,
                    "matched": res.matches[0].text[:60] if res.matches else ""})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True, help="a knowledge base of ../shared/corpus (copied, not changed)")
    ap.add_argument("--work", required=True, help="where the copy with documents held out goes")
    ap.add_argument("-n", type=int, default=60, help="quotes per set")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--json", help="write every lookup to this file")
    ap.add_argument("--remake", action="store_true", help=f"make the quote sets again (else read {SETS.name})")
    a = ap.parse_args()

    files = sorted(p for p in SHARED.rglob("*") if p.suffix in (".txt", ".md") and p.name != "CORPUS.md")
    kept, held = held_out_split(files)
    work = Path(a.work)
    if not (work / "held_out.json").exists():
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(a.kb, work, ignore=shutil.ignore_patterns("ingest.lock"))
        kb = KnowledgeBase(Config(kb_dir=work))
        held_paths = {str(f) for f in held}
        gone = [d.id for d in kb.store.documents() if d.path in held_paths]
        with kb.store.transaction():
            for doc_id in gone:
                kb.store.delete_document(doc_id)
        kb.store.prune_orphan_vectors()
        kb.backend.sync_keyword()
        kb.rebuild_index()
        kb.close()
        (work / "held_out.json").write_text(json.dumps(sorted(held_paths), ensure_ascii=False), encoding="utf-8")
        print(f"held out {len(gone)} documents of {len(files)}")
    if SETS.exists() and not a.remake:
        rows = [json.loads(x) for x in SETS.read_text(encoding="utf-8").splitlines() if x.strip()]
        absent = [r for r in rows if r["expect"] == "not_found"]
        real = [r for r in rows if r["expect"] != "not_found"]
    else:
        absent, real = make_sets(kept, held, a.n, a.seed)
        SETS.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in absent + real), encoding="utf-8")
    kb = KnowledgeBase(Config(kb_dir=work), readonly=True)
    results = run(kb, absent) + run(kb, real)
    kb.close()
    for name, rows in (("absent", [r for r in results if r["expect"] == "not_found"]),
                       ("real", [r for r in results if r["expect"] != "not_found"])):
        acc = sum(r["right"] for r in rows) / len(rows)
        print(f"{name}: {len(rows)} quotes, verdict accuracy {acc:.3f}")
        for r in rows:
            if not r["right"]:
                print(f"  wrong: {r.get('kind', 'absent')} {r['verdict']} {r['similarity']} "
                      f"{r['query'][:40]} -> {r['matched'][:40]}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
