"""Eager BM25: the scores SQLite FTS5's ``bm25()`` gives, from posting lists held by numpy.

FTS5 ranks an OR query by scoring, one row at a time, every row that holds any query term.
Common bigrams (发展, 建设, 工作) occur in a large share of all passages, so keyword search and
quote lookup grew linearly with the collection (see docs/benchmarks.md). This index keeps, per
term, the passages holding it with the term's frequency in each column (one byte each,
usually); a query computes the few posting lists' scores with numpy, adds them up and takes the
top k. (It first kept each (term, passage) score precomputed, as bm25s does, in two sets: four
times the bytes on disk, for half the scoring time, which is a small part of a search.)

The scores are FTS5's own, term for term: k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5)/(n + 0.5))
floored at 1e-6, the term frequency weighted over the columns, and the row length counted over
all columns. Rankings and the evaluation figures therefore do not change (tests compare the
two). Two scorings share the postings: keyword search (columns weighted as
``KeywordSearcher.weights``) and quote candidates (the text column alone, as ``terms : (...)``
with weights 1, 0, 0, and idf counted over the text column; 0 for a term found only in a
heading or title).

The files describe the passages they were built from (count, id sum, max id). Passage ids
only grow, so when the store has changed since, the passages the index lacks are exactly those
above its max id: callers score them with FTS5 (``rowid > max_id``, a small range) and merge,
and hits of passages deleted since are dropped with the rest of a missing passage. An ingest
rebuilds the index when it is small (under 50k passages) or has drifted by more than 2%; in
between, scores of older passages keep the statistics of the last build. Past 10% drift, or
without an index, searches use FTS5 alone, which is always current.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import kb_error_from
from .store import Store

K1, B = 1.2, 0.75
META = "keyword.json"
# 3: term frequencies, scores computed when searched. Format 1 (two sets of precomputed scores,
# 16 bytes a posting against 6-7) is not read: a writer builds the index again (an ingest, or
# verify --repair) and searches use FTS5 meanwhile.
FORMAT = 3
_ARRAYS = ("ids", "indptr", "indices", "tf", "norm", "idf_kw", "idf_tx", "vocab")


@dataclass
class Postings:
    """Per term (CSR by term), the positions of the passages holding it and the term's frequency
    in each of the three columns there; scored with ``idf`` and the columns' ``weights`` (None:
    the text column alone), each passage's length entering through ``norm``."""

    indptr: np.ndarray
    indices: np.ndarray
    tf: np.ndarray  # (postings, 3) unsigned: text, heading path, title
    norm: np.ndarray  # per position: k1 * (1 - b + b * length / average length)
    idf: np.ndarray  # per term
    weights: np.ndarray | None

    def scores(self, term_ids: Iterable[int], n: int) -> np.ndarray:
        """Summed scores of ``term_ids`` for all ``n`` passage positions (0 where none occurs)."""
        idx, val = [], []
        for t in term_ids:
            a, b = int(self.indptr[t]), int(self.indptr[t + 1])
            rows = self.indices[a:b]
            f = (self.tf[a:b, 0].astype(np.float32) if self.weights is None
                 else self.tf[a:b].astype(np.float32) @ self.weights)
            idx.append(rows)
            val.append(self.idf[t] * f * np.float32(K1 + 1) / (f + self.norm[rows]))
        if not idx:
            return np.zeros(n)
        return np.bincount(np.concatenate(idx), weights=np.concatenate(val), minlength=n)


class EagerBM25:
    """FTS5-equal BM25 scores over ``passages_fts``, searchable without SQLite."""

    def __init__(self, ids: np.ndarray, vocab: list[str], keyword: Postings, text: Postings,
                 weights: tuple[float, float, float], state: dict[str, int]) -> None:
        self.ids = ids  # passage id at each position, ascending
        self.terms = {t: i for i, t in enumerate(vocab)}
        self.vocab = vocab
        self.keyword = keyword
        self.text = text
        self.weights = tuple(float(w) for w in weights)
        self.state = state  # the passages it was built from: count, id sum, max id
        # Set by KnowledgeBase.keyword_index: passages newer than state["max_id"] exist, which
        # callers score with FTS5 (``rowid > max_id``) and merge.
        self.behind = False

    @property
    def size(self) -> int:
        return len(self.ids)

    # -- building ------------------------------------------------------------------------
    @classmethod
    def build(cls, store: Store, weights: tuple[float, float, float], chunk: int = 20_000) -> "EagerBM25":
        """Read the FTS5 rows (the exact terms FTS5 indexed) and compute every score.

        One pass collects, per chunk of rows, each (passage, term) pair with its term frequency
        in the three columns (14 bytes a pair); then the pairs are placed chunk by chunk by a
        counting sort, so memory stays near the size of the finished index.
        """
        state = store.passages_state()
        words: dict[str, int] = {}  # terms longer than two characters (ASCII words, numbers)
        term_of_code: dict[int, int] = {}
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        ids_l, lens_l = [], []
        offset = 0
        for batch in store.iter_fts_rows(chunk):
            ids_l.append(np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch)))
            keys, length = [], np.zeros(len(batch), dtype=np.int64)
            for c in (1, 2, 3):
                row, code = _term_codes([r[c] or "" for r in batch], words)
                length += np.bincount(row, minlength=len(batch))
                keys.append((row << 45) | (code << 2) | (c - 1))
            k = np.sort(np.concatenate(keys))
            first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
            counts = np.diff(np.r_[first, len(k)])
            uniq = k[first]
            pair = uniq >> 2
            new_pair = np.r_[True, pair[1:] != pair[:-1]]
            tf = np.zeros((int(new_pair.sum()), 3), dtype=np.uint16)
            tf[np.cumsum(new_pair) - 1, uniq & 3] = np.minimum(counts, 65535)
            pairs = pair[new_pair]
            codes, inverse = np.unique(pairs & ((1 << 43) - 1), return_inverse=True)
            tid = np.fromiter((term_of_code.setdefault(int(c), len(term_of_code)) for c in codes),
                              dtype=np.int32, count=len(codes))
            parts.append(((pairs >> 43).astype(np.int32) + offset, tid[inverse.ravel()], tf))
            lens_l.append(length)
            offset += len(batch)
        n, v = offset, len(term_of_code)
        ids = np.concatenate(ids_l) if ids_l else np.zeros(0, dtype=np.int64)
        lengths = np.concatenate(lens_l).astype(np.float32) if lens_l else np.zeros(0, dtype=np.float32)
        avgdl = float(lengths.sum(dtype=np.float64)) / n if n else 1.0
        df_any, df_text = np.zeros(v, dtype=np.int64), np.zeros(v, dtype=np.int64)
        for _, terms, tf in parts:
            df_any += np.bincount(terms, minlength=v)
            df_text += np.bincount(terms[tf[:, 0] > 0], minlength=v)

        def idf(df: np.ndarray) -> np.ndarray:
            out = np.log((n - df + 0.5) / (df + 0.5))
            out[out <= 0] = 1e-6
            return out.astype(np.float32)

        norm = np.float32(K1) * (np.float32(1 - B) + np.float32(B) * lengths / np.float32(avgdl or 1.0))
        wide = any(int(tf.max(initial=0)) > 255 for _, _, tf in parts)  # a run like 哈哈哈… in one passage
        sort = _CountingSort(df_any, np.uint16 if wide else np.uint8)
        while parts:
            rows, terms, tf = parts.pop(0)  # freed as it goes
            sort.add(terms, rows, tf)
        longs = {i: t for t, i in words.items()}
        vocab = [""] * v
        for code, i in term_of_code.items():
            vocab[i] = _code_term(code, longs)
        keyword = Postings(sort.indptr, sort.indices, sort.tf, norm, idf(df_any), np.asarray(weights, dtype=np.float32))
        text = Postings(sort.indptr, sort.indices, sort.tf, norm, idf(df_text), None)
        return cls(ids, vocab, keyword, text, tuple(weights), state)

    # -- files ---------------------------------------------------------------------------
    def save(self, kb_dir: Path) -> None:
        """Write the arrays to a new folder, then switch ``keyword.json`` to it atomically.

        The arrays are written under a temporary name (``.keyword-*.tmp``) and the folder renamed
        once complete; on any failure (a full disk) what was written is removed and the index
        in use stays as it was. A full or read-only disk raises KnowledgeBaseError."""
        kb_dir = Path(kb_dir)
        name = f"keyword-{time.time_ns()}"
        folder = kb_dir / name
        part = kb_dir / f".{name}.tmp"
        tmp = kb_dir / (META + ".tmp")
        try:
            part.mkdir()
            blob = np.frombuffer("\n".join(self.vocab).encode("utf-8"), dtype=np.uint8)
            k = self.keyword
            arrays = [self.ids, k.indptr, k.indices, k.tf, k.norm, k.idf, self.text.idf, blob]
            for a, arr in zip(_ARRAYS, arrays):
                np.save(part / f"{a}.npy", arr)
            os.rename(part, folder)
            meta = {"format": FORMAT, "folder": name, "weights": list(self.weights), "state": self.state,
                    "passages": self.size, "terms": len(self.vocab)}
            tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
            os.replace(tmp, kb_dir / META)
        except BaseException as exc:
            # judged before the clean-up frees the space (numpy's short write has no errno)
            err = kb_error_from(exc, kb_dir) if isinstance(exc, OSError) else None
            for p in (part, folder):
                shutil.rmtree(p, ignore_errors=True)
            tmp.unlink(missing_ok=True)
            if err is not None:
                raise err from exc
            raise
        for old in [*kb_dir.glob("keyword-*"), *kb_dir.glob(".keyword-*.tmp")]:
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)  # Windows keeps files a reader maps

    @classmethod
    def load(cls, kb_dir: Path) -> "EagerBM25 | None":
        """The saved index (whatever passages it was built from), or None when there is none
        or its files are damaged."""
        meta = read_meta(kb_dir)
        if not meta or meta.get("format") != FORMAT or not meta.get("state"):
            return None
        state = meta["state"]
        folder = Path(kb_dir) / meta["folder"]
        try:
            arr = {a: np.load(folder / f"{a}.npy", mmap_mode="r") for a in _ARRAYS}
        except (OSError, ValueError):
            return None
        vocab = bytes(arr["vocab"]).decode("utf-8").split("\n") if len(arr["vocab"]) else []
        if len(arr["ids"]) != state["count"] or len(arr["norm"]) != state["count"] or arr["tf"].ndim != 2:
            return None
        norm = np.asarray(arr["norm"])  # small, read at random: in memory
        weights = tuple(meta["weights"])
        keyword = Postings(arr["indptr"], arr["indices"], arr["tf"], norm, np.asarray(arr["idf_kw"]),
                           np.asarray(weights, dtype=np.float32))
        text = Postings(arr["indptr"], arr["indices"], arr["tf"], norm, np.asarray(arr["idf_tx"]), None)
        return cls(np.asarray(arr["ids"]), vocab, keyword, text, weights, state)

    # -- searching -----------------------------------------------------------------------
    def search(self, terms: Iterable[str], k: int, allowed_ids: np.ndarray | None = None,
               text_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (passage ids, scores) for the distinct ``terms``, as FTS5 would rank an OR
        query of them; ``text_only`` scores the text column alone (quote candidates)."""
        post = self.text if text_only else self.keyword
        tids = [self.terms[t] for t in dict.fromkeys(terms) if t in self.terms]
        scores = post.scores(tids, self.size)
        if allowed_ids is not None:
            allowed = np.asarray(allowed_ids, dtype=np.int64)
            pos = np.searchsorted(self.ids, allowed)
            inside = pos < self.size
            pos, allowed = pos[inside], allowed[inside]
            mask = np.zeros(self.size, dtype=bool)
            mask[pos[self.ids[pos] == allowed]] = True
            scores = np.where(mask, scores, 0.0)
        hits = np.flatnonzero(scores > 0)
        if k <= 0:
            hits = hits[:0]
        elif len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        order = np.lexsort((self.ids[hits], -scores[hits]))
        hits = hits[order]
        return self.ids[hits], scores[hits]


_LONG = 1 << 42  # codes at or above this are words of three or more characters


def _term_codes(texts: list[str], words: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """(row, code) of every space-separated term of ``texts``, vectorised: a term of one or two
    characters is coded by its code points (``c1 << 21 | c2``), a longer one by ``words``."""
    joined = "\n".join(texts)
    cp = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    sep = (cp == 32) | (cp == 10)
    edge = np.diff(np.r_[0, (~sep).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    row = np.cumsum(cp == 10)[starts] if len(starts) else np.zeros(0, dtype=np.int64)
    size = ends - starts
    second = np.where(size >= 2, cp[np.minimum(starts + 1, len(cp) - 1)], 0)
    code = (cp[starts] << 21) | second
    for i in np.flatnonzero(size > 2):
        code[i] = _LONG + words.setdefault(joined[starts[i] : ends[i]], len(words))
    return row.astype(np.int64), code


def _code_term(code: int, longs: dict[int, str]) -> str:
    if code >= _LONG:
        return longs[code - _LONG]
    low = code & 0x1FFFFF
    return chr(code >> 21) + (chr(low) if low else "")


class _CountingSort:
    """Postings filled chunk by chunk: each term's slots are known from its count, and rows
    arrive in ascending order, so each posting list comes out sorted by passage."""

    def __init__(self, counts: np.ndarray, tf_dtype: type) -> None:
        self.indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.indptr[1:])
        self.cursor = self.indptr[:-1].copy()
        self.indices = np.empty(int(self.indptr[-1]), dtype=np.int32)
        self.tf = np.empty((int(self.indptr[-1]), 3), dtype=tf_dtype)

    def add(self, terms: np.ndarray, rows: np.ndarray, tf: np.ndarray) -> None:
        """Place the postings of ``terms`` in ``rows`` with their term frequencies."""
        if not len(terms):
            return
        order = np.argsort(terms, kind="stable")
        t = terms[order]
        pos = np.arange(len(t))
        group_start = np.maximum.accumulate(np.where(np.r_[True, t[1:] != t[:-1]], pos, 0))
        dest = self.cursor[t] + (pos - group_start)
        self.indices[dest] = rows[order]
        self.tf[dest] = tf[order]
        self.cursor += np.bincount(t, minlength=len(self.cursor))


def read_meta(kb_dir: Path) -> dict | None:
    """The description in ``keyword.json``, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(kb_dir) / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def meta_mtime(kb_dir: Path) -> int:
    """When ``keyword.json`` last changed (0 when there is none): a cheap key for caches."""
    try:
        return (Path(kb_dir) / META).stat().st_mtime_ns
    except OSError:
        return 0


def index_bytes(kb_dir: Path) -> int:
    """Size on disk of the current keyword index (0 when there is none)."""
    meta = read_meta(kb_dir)
    if not meta:
        return 0
    folder = Path(kb_dir) / meta.get("folder", "")
    return sum(p.stat().st_size for p in folder.glob("*.npy")) if folder.is_dir() else 0
