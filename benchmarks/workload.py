"""What the speed benchmarks run: the queries, a stand-in query encoder, and small measuring helpers.

Search queries are the evaluation questions plus the evaluation quotes used as searches (211);
quote lookups are the evaluation quotes plus 100 sentences of the collection itself, each with
one character dropped (210). Collections built from resampled sentences carry random unit
vectors (embedding a million passages with the real model would take two days on 2 cores), so
their query vectors come from :class:`RandomEmbedder`: a deterministic random unit vector per
text, which costs microseconds. Query encoding with the real model is timed separately.
"""

from __future__ import annotations

import hashlib
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.evaluate import load
from yuanwen.embed import Embedder, register_embedder

RANDOM_ID = "bench/random-unit-384"


class RandomEmbedder(Embedder):
    """A random unit vector per text (seeded by its hash): the cost of a lookup, no model."""

    model_id = RANDOM_ID
    dim = 384

    def embed_batch(self, texts: Sequence[str], role: str) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim, dtype=np.float32)
        return out


register_embedder("bench-random", RandomEmbedder)


def search_queries() -> list[str]:
    """The evaluation questions, then the evaluation quotes as plain searches (211 queries)."""
    return [q["query"] for q in load("questions.jsonl")] + [q["query"] for q in load("quotes.jsonl")]


def quote_queries(sentences: Sequence[str], n: int = 100, seed: int = 7) -> list[str]:
    """The evaluation quotes plus ``n`` of ``sentences`` with one character dropped."""
    rng = np.random.default_rng(seed)
    pool = [s for s in sentences if 12 <= len(s) <= 120]
    picked = [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]
    out = []
    for s in picked:
        cut = int(rng.integers(1, len(s) - 1))
        out.append(s[:cut] + s[cut + 1 :])
    return [q["query"] for q in load("quotes.jsonl")] + out


def timed(fn: Callable[[str], object], queries: Sequence[str], warmup: int = 10) -> list[float]:
    """Milliseconds per query, after ``warmup`` untimed calls."""
    for q in queries[:warmup]:
        fn(q)
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def summary(ms: Sequence[float]) -> dict:
    """p50, p95 and mean of a list of milliseconds."""
    xs = sorted(ms)
    return {"n": len(xs), "p50_ms": statistics.median(xs), "p95_ms": xs[min(len(xs) - 1, int(0.95 * len(xs)))],
            "mean_ms": statistics.fmean(xs)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    On Linux this is VmHWM, the high-water mark of this program's own memory: ``ru_maxrss``
    carries the parent's figure across fork and exec, so a small step started by a large
    parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def machine() -> dict:
    """What the figures were measured on."""
    import os

    import faiss

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    import sqlite3

    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "memory": mem,
            "os": platform.platform(), "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "faiss": faiss.__version__}


# The reference that search.retrieve.named_documents (title trigram index) must agree with:
# kept in the library, measured here against the indexed version.
from yuanwen.search.retrieve import named_documents_by_alignment as named_documents_plain  # noqa: E402,F401
