"""Where a knowledge base's disk goes, against its raw text (issue 16, point 7b).

    python -m benchmarks.disk KB [KB ...] [--out docs/benchmarks/disk.json]
    python -m benchmarks.disk --collection 100000 --work DIR   (build one, then measure it)

``--collection N`` first builds a resampled collection of about N passages under DIR, as the
main benchmark does (store stage, then random unit vectors and the FAISS index), so the
vectors are counted too. For each SQLite knowledge base folder: the bytes of every table and index in ``yuanwen.db``
(SQLite's ``dbstat``), the keyword index and vector index files, the whole folder, and the raw
text (the UTF-8 bytes of every document's text), each also as a multiple of the raw text.
:func:`markdown` is the table docs/benchmarks.md shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "docs" / "benchmarks" / "disk.json"
GROUPS = {  # dbstat names -> what they hold
    "documents": "documents (metadata and the text)",
    "passages": "passages (offsets, heading path; a copy of the text before schema 7)",
    "sentences": "sentences",
    "embeddings": "vectors (one per distinct passage text; float32, 16-bit from schema 8)",
    "passages_fts_content": "FTS5 content (the bigram terms, stored; none from schema 7)",
    "passages_fts_data": "FTS5 index (postings; none from schema 9)",
}


def measure(kb: Path) -> dict:
    """The sizes of one knowledge base folder, in bytes."""
    from yuanwen.store import Store

    store = Store(kb, readonly=True)
    try:
        tables = store.space_by_table()
        text = tables.pop("raw_text")
        counts = store.counts()
        version = store.schema_version()
    finally:
        store.close()
    files = {"yuanwen.db": (kb / "yuanwen.db").stat().st_size}
    for p in kb.iterdir():
        if p.is_dir() and p.name.startswith("keyword-"):
            files["keyword index"] = files.get("keyword index", 0) + sum(f.stat().st_size for f in p.iterdir())
        elif p.suffix == ".faiss" or p.name.startswith("vectors"):
            files["vector index"] = files.get("vector index", 0) + p.stat().st_size
    total = sum(f.stat().st_size for f in kb.rglob("*") if f.is_file())
    return {"kb": str(kb), "schema_version": int(version), "raw_text_bytes": text, "counts": counts,
            "tables": tables, "files": files, "total_bytes": total}


def markdown(res: dict) -> str:
    """The before/after table of ``res`` (``runs``: labelled measurements of one corpus)."""
    runs = res["runs"]
    out = [f"{res['note']}\n",
           "| | " + " | ".join(f"{r['label']} (schema {r['schema_version']})" for r in runs) + " |",
           "|---|" + "---|" * len(runs)]

    def row(label: str, values: list[int]) -> None:
        cells = [f"{v / 2**20:,.1f} MiB ({v / r['raw_text_bytes']:.1f}x)" for v, r in zip(values, runs)]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    row("raw text (UTF-8)", [r["raw_text_bytes"] for r in runs])
    for name, label in GROUPS.items():
        row(label, [r["tables"].get(name, 0) for r in runs])
    row("other tables and SQL indexes", [sum(v for k, v in r["tables"].items() if k not in GROUPS) for r in runs])
    row("yuanwen.db", [r["files"]["yuanwen.db"] for r in runs])
    row("eager keyword index files", [r["files"].get("keyword index", 0) for r in runs])
    if any("vector index" in r["files"] for r in runs):
        row("FAISS file (schema 7: the HNSW graph only)", [r["files"].get("vector index", 0) for r in runs])
    row("**whole folder**", [r["total_bytes"] for r in runs])
    row("all but the vectors and the graph", [r["total_bytes"] - r["tables"].get("embeddings", 0)
                                             - r["files"].get("vector index", 0) for r in runs])
    return "\n".join(out) + "\n"


def build_collection(n: int, work: Path) -> Path:
    """A resampled collection of about ``n`` passages under ``work``, stored and given random
    unit vectors and its FAISS index (each step in its own process, as the main benchmark)."""
    from benchmarks import synth
    from benchmarks.__main__ import SHARED, run_worker

    work.mkdir(parents=True, exist_ok=True)
    with open(work / "build.log", "w", encoding="utf-8") as log:
        corpus_kb = work / "corpus_kb"
        if not (corpus_kb / "yuanwen.db").exists():
            run_worker("store", {"kb": str(corpus_kb), "paths": [str(SHARED), str(ROOT / "corpus")]}, log)
        material = synth.source_material(corpus_kb)
        material["passage_chars"] = synth.chars_per_passage(material)
        synth.make_collection(material, work / "docs", n)
        kb = work / "kb"
        run_worker("store", {"kb": str(kb), "paths": [str(work / "docs")]}, log)
        run_worker("vectors", {"kb": str(kb)}, log)
    return kb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kbs", nargs="*", help="knowledge base folders (SQLite), LABEL=FOLDER to name one")
    ap.add_argument("--collection", type=int, help="first build a resampled collection of this many passages")
    ap.add_argument("--work", default=str(ROOT / "bench_work" / "disk"), help="where --collection builds")
    ap.add_argument("--label", default="", help="the label of the --collection run")
    ap.add_argument("--note", default="", help="what was measured (the line above the table)")
    ap.add_argument("--out", default=str(RESULT))
    args = ap.parse_args(sys.argv[1:])
    runs = []
    if args.collection:
        kb = build_collection(args.collection, Path(args.work))
        runs.append({"label": args.label or f"{args.collection:,} passages", **measure(kb)})
    for spec in args.kbs:
        label, _, folder = spec.rpartition("=")
        runs.append({"label": label or Path(folder).name, **measure(Path(folder))})
    res = {"note": args.note, "runs": runs}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    print(markdown(res))


if __name__ == "__main__":
    main()
