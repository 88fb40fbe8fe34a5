"""Eager BM25: the scores SQLite FTS5's ``bm25()`` gave, from posting lists held by numpy.

FTS5 ranks an OR query by scoring, one row at a time, every row that holds any query term.
Common bigrams (发展, 建设, 工作) occur in a large share of all passages, so keyword search and
quote lookup grew linearly with the collection (see docs/benchmarks.md). This index keeps, per
term, the passages holding it with the term's frequency in each column; a query computes the
few posting lists' scores with numpy, adds them up and takes the top k. (It first kept each
(term, passage) score precomputed, as bm25s does, in two sets: four times the bytes on disk,
for half the scoring time, which is a small part of a search.)

A posting takes three bytes (format 4): the gap from the list's previous passage position in
16 bits, and a one-byte code for its (text, heading, title) frequencies, a row of a table of the
distinct triples, most frequent first. The few values that do not fit (a gap of 65,535 or more,
a triple past the 255th) are kept apart, by posting, and put back when a list is read
(:class:`_Narrow`). Format 3 took seven bytes a posting: a 32-bit position and three bytes.

The scores are FTS5's own, term for term: k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5)/(n + 0.5))
floored at 1e-6, the term frequency weighted over the columns, and the row length counted over
all columns. Rankings and the evaluation figures therefore do not change (tests compare the
two). Two scorings share the postings: keyword search (columns weighted as
``KeywordSearcher.weights``) and quote candidates (the text column alone, as ``terms : (...)``
with weights 1, 0, 0, and idf counted over the text column; 0 for a term found only in a
heading or title).

The saved index describes the passages it was built from (count, id sum, max id). Passage ids
only grow, so the passages stored since are exactly those above its max id: they are indexed
in memory, in small segments (:class:`LiveBM25`), and every segment is scored with the
statistics of all together, so a passage scores as it would in one index of everything (FTS5
scored a row with its whole table's statistics too). Hits of passages deleted since are dropped
with the rest of a missing passage; their statistics stay until the index is built again. An
ingest builds and saves the index again when it is small (under 50k passages) or more than 2%
of the passages changed since. This is the only keyword index: SQLite's FTS5 table, which gave
these scores before, was dropped in schema 9 (its postings were 1.4 times the raw text).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import kb_error_from
from .store import Store

K1, B = 1.2, 0.75
META = "keyword.json"
# 4: gaps and frequency codes, three bytes a posting. Formats 1 (two sets of precomputed scores,
# 16 bytes a posting) and 3 (positions and frequencies, 7 bytes) are not read: a writer builds
# the index again (an ingest, or verify --repair) and readers index the passages in memory
# meanwhile.
FORMAT = 4
_ARRAYS = ("ids", "indptr", "gaps", "gaps_at", "gaps_wide", "codes", "codes_at", "codes_wide",
           "tf_table", "lengths", "df_kw", "df_tx", "vocab")


@dataclass
class _Narrow:
    """Non-negative integers stored in a narrow type (``small``); a value too large for it is
    stored as the type's largest value, and its own value in ``wide`` at the same rank as its
    position in ``at`` (ascending)."""

    small: np.ndarray
    at: np.ndarray
    wide: np.ndarray

    @classmethod
    def encode(cls, values: np.ndarray, dtype: type, offset: int = 0) -> "_Narrow":
        """``values`` (an integer array) in ``dtype``; ``offset`` is added to ``at``."""
        top = np.iinfo(dtype).max
        big = values >= top
        return cls(np.where(big, top, values).astype(dtype), np.flatnonzero(big) + offset,
                   values[big].astype(np.int64))

    @classmethod
    def join(cls, parts: list["_Narrow"]) -> "_Narrow":
        """Parts encoded one after the other (with their offsets) as one."""
        if not parts:
            return cls(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))
        return cls(np.concatenate([p.small for p in parts]), np.concatenate([p.at for p in parts]),
                   np.concatenate([p.wide for p in parts]))

    def decode(self, a: int, b: int) -> np.ndarray:
        """The values at positions ``a`` to ``b`` (int64)."""
        v = self.small[a:b].astype(np.int64)
        lo, hi = np.searchsorted(self.at, (a, b))
        if hi > lo:
            v[self.at[lo:hi] - a] = self.wide[lo:hi]
        return v


@dataclass
class Lists:
    """The posting lists (CSR by term): per posting, the gap from the list's previous passage
    position (for the first: its position + 1), and the code of its term frequencies, a row of
    ``tf_table`` (text, heading path, title)."""

    indptr: np.ndarray
    gaps: _Narrow
    codes: _Narrow
    tf_table: np.ndarray  # (distinct triples, 3), most frequent first

    def read(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Term ``t``'s passage positions and frequency codes."""
        a, b = int(self.indptr[t]), int(self.indptr[t + 1])
        return np.cumsum(self.gaps.decode(a, b)) - 1, self.codes.decode(a, b)


def _idf(n: int, df: np.ndarray) -> np.ndarray:
    """FTS5's idf: ln((N - n + 0.5) / (n + 0.5)), 1e-6 where that is not positive."""
    out = np.log((n - df + 0.5) / (df + 0.5))
    out[out <= 0] = 1e-6
    return out


class EagerBM25:
    """The posting lists of some passages (all of them, or the newest: see :class:`LiveBM25`),
    with what their scores need: each passage's length and each term's document frequency."""

    def __init__(self, ids: np.ndarray, vocab: list[str], lists: Lists, lengths: np.ndarray,
                 df_any: np.ndarray, df_text: np.ndarray, state: dict[str, int]) -> None:
        self.ids = ids  # passage id at each position, ascending
        self.terms = {t: i for i, t in enumerate(vocab)}
        self.vocab = vocab
        self.lists = lists
        self.lengths = lengths  # per position: the row's terms over all columns
        self.total_length = float(np.sum(lengths, dtype=np.float64))
        self.df_any = df_any  # per term: passages holding it in any column
        self.df_text = df_text  # ... in the text column
        self.state = state  # the passages it was built from: count, id sum, max id, kb id
        self._freq: dict[tuple[float, ...] | None, np.ndarray] = {}

    @property
    def size(self) -> int:
        return len(self.ids)

    def freq(self, weights: tuple[float, float, float] | None) -> np.ndarray:
        """The weighted term frequency of each code (``None``: the text column alone)."""
        if weights not in self._freq:
            table = self.lists.tf_table.astype(np.float32)
            self._freq[weights] = (table[:, 0].copy() if weights is None
                                   else table @ np.asarray(weights, dtype=np.float32))
        return self._freq[weights]

    # -- building ------------------------------------------------------------------------
    @classmethod
    def build(cls, store: Store, after: int = 0, chunk: int = 20_000) -> "EagerBM25":
        """The posting lists of the passages with ids above ``after`` (all: 0), from their
        keyword terms (:meth:`Store.iter_fts_rows`).

        One pass collects, per chunk of rows, each (passage, term) pair with its term frequency
        in the three columns (14 bytes a pair); then the pairs are placed chunk by chunk by a
        counting sort, so memory stays near the size of the finished index.
        """
        words: dict[str, int] = {}  # terms longer than two characters (ASCII words, numbers)
        term_of_code: dict[int, int] = {}
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        ids_l, lens_l = [], []
        offset = 0
        for batch in store.iter_fts_rows(chunk, after=after):
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
        v = len(term_of_code)
        ids = np.concatenate(ids_l) if ids_l else np.zeros(0, dtype=np.int64)
        lengths = np.concatenate(lens_l).astype(np.float32) if lens_l else np.zeros(0, dtype=np.float32)
        df_any, df_text = np.zeros(v, dtype=np.int64), np.zeros(v, dtype=np.int64)
        for _, terms, tf in parts:
            df_any += np.bincount(terms, minlength=v)
            df_text += np.bincount(terms[tf[:, 0] > 0], minlength=v)
        wide = any(int(tf.max(initial=0)) > 255 for _, _, tf in parts)  # a run like 哈哈哈… in one passage
        sort = _CountingSort(df_any, np.uint16 if wide else np.uint8)
        while parts:
            rows, terms, tf = parts.pop(0)  # freed as it goes
            sort.add(terms, rows, tf)
        longs = {i: t for t, i in words.items()}
        vocab = [""] * v
        for code, i in term_of_code.items():
            vocab[i] = _code_term(code, longs)
        state = {"count": len(ids), "id_sum": int(ids.sum()), "max_id": int(ids.max(initial=after)),
                 "kb_id": store.kb_id}
        return cls(ids, vocab, sort.narrow(), lengths, df_any.astype(np.int32), df_text.astype(np.int32), state)

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
            li = self.lists
            arrays = [self.ids, li.indptr, li.gaps.small, li.gaps.at, li.gaps.wide, li.codes.small,
                      li.codes.at, li.codes.wide, li.tf_table, self.lengths, self.df_any, self.df_text, blob]
            for a, arr in zip(_ARRAYS, arrays):
                np.save(part / f"{a}.npy", arr)
            os.rename(part, folder)
            meta = {"format": FORMAT, "folder": name, "state": self.state,
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
        v = len(vocab)
        if (len(arr["ids"]) != state["count"] or len(arr["lengths"]) != state["count"]
                or arr["tf_table"].ndim != 2 or len(arr["gaps"]) != len(arr["codes"])
                or len(arr["indptr"]) != v + 1 or len(arr["df_kw"]) != v or len(arr["df_tx"]) != v):
            return None

        def narrow(name: str) -> _Narrow:
            return _Narrow(arr[name], np.asarray(arr[name + "_at"]), np.asarray(arr[name + "_wide"]))

        lists = Lists(arr["indptr"], narrow("gaps"), narrow("codes"), np.asarray(arr["tf_table"]))
        # the lengths are read at random: in memory
        return cls(np.asarray(arr["ids"]), vocab, lists, np.asarray(arr["lengths"]), np.asarray(arr["df_kw"]),
                   np.asarray(arr["df_tx"]), state)


class LiveBM25:
    """The keyword index of every passage: the saved index (``segments[0]``, when there is
    one) and, for the passages stored since it was built, small ones built in memory. A query
    is scored on each with the statistics of all of them together (passages, their total
    length, each term's document frequency), as FTS5 scores a row with its table's; hits of
    passages deleted since a segment was built are dropped by the callers with the rest of a
    missing passage."""

    def __init__(self, segments: list[EagerBM25], saved: bool) -> None:
        self.segments = segments
        self.saved = saved  # segments[0] is the saved index

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def max_id(self) -> int:
        return max((s.state["max_id"] for s in self.segments), default=0)

    @property
    def state(self) -> dict[str, int]:
        """The passages it holds (count, max id) and the database they are from."""
        return {"count": self.size, "max_id": self.max_id,
                "kb_id": self.segments[0].state.get("kb_id") if self.segments else None}

    def search(self, terms: Iterable[str], k: int, allowed_ids: np.ndarray | None = None,
               weights: tuple[float, float, float] = (1.0, 0.0, 0.0),
               text_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (passage ids, scores) for the distinct ``terms``, as FTS5 would rank an OR
        query of them with the columns weighted by ``weights``; ``text_only`` scores the text
        column alone, as ``terms : (...)`` with weights 1, 0, 0 (quote candidates)."""
        uniq = list(dict.fromkeys(terms))
        n = self.size
        if not uniq or not n or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        avgdl = sum(s.total_length for s in self.segments) / n or 1.0
        df = np.zeros(len(uniq), dtype=np.int64)
        found = []
        for s in self.segments:
            at = [(j, s.terms[t]) for j, t in enumerate(uniq) if t in s.terms]
            found.append(at)
            source = s.df_text if text_only else s.df_any
            for j, tid in at:
                df[j] += int(source[tid])
        idf = _idf(n, df)
        all_ids, all_scores = [], []
        for s, at in zip(self.segments, found):
            if not at:
                continue
            ids, scores = _top(s, at, idf, None if text_only else tuple(weights), avgdl, k, allowed_ids)
            all_ids.append(ids)
            all_scores.append(scores)
        if not all_ids:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        ids, scores = np.concatenate(all_ids), np.concatenate(all_scores)
        order = np.lexsort((ids, -scores))[:k]
        return ids[order], scores[order]

    def passages_with_all(self, terms: Sequence[str]) -> np.ndarray:
        """Ids of the passages holding every one of ``terms`` (in any column)."""
        out = []
        for s in self.segments:
            if not all(t in s.terms for t in terms):
                continue
            rows = None
            for t in dict.fromkeys(terms):
                got, _ = s.lists.read(s.terms[t])
                rows = got if rows is None else np.intersect1d(rows, got, assume_unique=True)
                if not len(rows):
                    break
            if rows is not None and len(rows):
                out.append(s.ids[rows])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _top(s: EagerBM25, at: list[tuple[int, int]], idf: np.ndarray, weights: tuple[float, float, float] | None,
         avgdl: float, k: int, allowed_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of segment ``s`` for its terms ``at`` ((query term, term id) pairs)."""
    freq = s.freq(weights)
    idx, val = [], []
    for j, tid in at:
        rows, codes = s.lists.read(tid)
        f = freq[codes]
        norm = np.float32(K1) * (np.float32(1 - B) + np.float32(B) * s.lengths[rows] / np.float32(avgdl))
        idx.append(rows)
        val.append(np.float32(idf[j]) * f * np.float32(K1 + 1) / (f + norm))
    scores = np.bincount(np.concatenate(idx), weights=np.concatenate(val), minlength=s.size)
    if allowed_ids is not None:
        allowed = np.asarray(allowed_ids, dtype=np.int64)
        pos = np.searchsorted(s.ids, allowed)
        inside = pos < s.size
        pos, allowed = pos[inside], allowed[inside]
        mask = np.zeros(s.size, dtype=bool)
        mask[pos[s.ids[pos] == allowed]] = True
        scores = np.where(mask, scores, 0.0)
    hits = np.flatnonzero(scores > 0)
    if len(hits) > k:
        hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
    return s.ids[hits], scores[hits]


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

    def narrow(self, chunk: int = 1 << 24) -> Lists:
        """The filled postings as gaps and frequency codes, a chunk at a time (the wide arrays
        are freed as they are replaced)."""
        n = len(self.indices)
        starts = np.zeros(n, dtype=bool)
        starts[self.indptr[:-1][np.diff(self.indptr) > 0]] = True
        gaps = []
        for s in range(0, n, chunk):
            cur = self.indices[s : s + chunk].astype(np.int64)
            prev = np.empty_like(cur)
            prev[1:] = cur[:-1]
            prev[:1] = self.indices[s - 1] if s else -1
            gaps.append(_Narrow.encode(np.where(starts[s : s + chunk], cur + 1, cur - prev), np.uint16, s))
        del starts
        self.indices = np.zeros(0, dtype=np.int32)
        # the distinct frequency triples, most frequent first, and each posting's row among them
        shift = 16 if self.tf.dtype == np.uint16 else 8
        key = np.empty(n, dtype=np.int64)
        for s in range(0, n, chunk):
            tf = self.tf[s : s + chunk].astype(np.int64)
            key[s : s + len(tf)] = tf[:, 0] | (tf[:, 1] << shift) | (tf[:, 2] << (2 * shift))
        self.tf = np.zeros((0, 3), dtype=np.uint8)
        uniq, counts = np.unique(key, return_counts=True)
        rank = np.empty(len(uniq), dtype=np.int64)
        rank[np.argsort(-counts, kind="stable")] = np.arange(len(uniq))
        codes = [_Narrow.encode(rank[np.searchsorted(uniq, key[s : s + chunk])], np.uint8, s)
                 for s in range(0, n, chunk)]
        by_rank = uniq[np.argsort(rank)]
        mask = (1 << shift) - 1
        table = np.stack([by_rank & mask, (by_rank >> shift) & mask, by_rank >> (2 * shift)], axis=1)
        return Lists(self.indptr, _Narrow.join(gaps), _Narrow.join(codes), table.astype(np.uint16).reshape(-1, 3))


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
