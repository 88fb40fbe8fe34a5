"""The ``sqlite`` backend: SQLite + FTS5 (:mod:`yuanwen.store`), the eager BM25 arrays
(:mod:`yuanwen.bm25`) and FAISS (:mod:`yuanwen.index`), behind the interfaces of
:mod:`yuanwen.backend`.

Filters are pushed down as SQL: FTS5 joins the documents table; the eager keyword index and
FAISS search only among the passage ids that pass (``Store.filtered_passage_ids``). The
indexes are derived from the database and kept in step with it here: readers catch up or
fall back, writers rebuild and save (``save=True``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25
from .backend import DESCRIPTOR, Backend, KeywordIndex, VectorIndex, register_backend, write_descriptor
from .bm25 import EagerBM25
from .index import FaissIndex, index_bytes, read_meta
from .models import Filters
from .store import Store
from .text import tokenize

TEXT_ONLY = (1.0, 0.0, 0.0)  # bm25() weights that score the passage text column alone


class SqliteKeyword(KeywordIndex):
    """FTS5's BM25, served from the eager index when it is usable; passages newer than that
    index are scored by FTS5 over their id range and merged; FTS5 alone otherwise."""

    def __init__(self, backend: SqliteBackend) -> None:
        self.backend = backend

    def search(self, terms: str, k: int, filters: Filters | None = None, *,
               weights: tuple[float, float, float], text_only: bool = False) -> list[tuple[int, float]]:
        store = self.backend.store
        weights = TEXT_ONLY if text_only else tuple(weights)
        index = self.backend.keyword_index()
        if index is None or (not text_only and index.weights != weights):
            return store.fts_bm25(terms, k, weights, filters, text_only=text_only)
        ids, scores = index.search(tokenize(terms), k, store.filtered_passage_ids(filters), text_only=text_only)
        out = [(int(i), float(s)) for i, s in zip(ids, scores)]
        if index.behind:  # passages newer than the index: FTS5 over that id range only
            out += store.fts_bm25(terms, k, weights, filters, text_only=text_only, after=index.state["max_id"])
            out.sort(key=lambda c: (-c[1], c[0]))
        return out[:k]


class FaissVectors(VectorIndex):
    """FAISS (flat or HNSW, see :mod:`yuanwen.index`), searched among the filtered ids."""

    def __init__(self, backend: SqliteBackend, index: FaissIndex) -> None:
        self.backend = backend
        self.index = index

    @property
    def size(self) -> int:
        return self.index.size

    def search(self, query: np.ndarray, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        ids, scores = self.index.search(query, k, self.backend.store.filtered_passage_ids(filters))
        return [(int(i), float(s)) for i, s in zip(ids, scores)]


class SqliteBackend(Backend):
    """One knowledge base folder: ``yuanwen.db``, ``vectors.faiss`` (+ ``index.json``) and
    ``keyword-*/`` (+ ``keyword.json``)."""

    name = "sqlite"

    KEYWORD_REBUILD_BELOW = 50_000  # a writer rebuilds a smaller stale keyword index every time
    KEYWORD_REBUILD_DRIFT = 0.02  # ... a larger one once this share of passages changed
    KEYWORD_USE_DRIFT = 0.10  # past this share (and KEYWORD_USE_MIN passages), FTS5 alone
    KEYWORD_USE_MIN = 1000

    def __init__(self, kb_dir: Path, config: Any, descriptor: dict[str, Any],
                 create: bool = False, readonly: bool = False) -> None:
        self.kb_dir = Path(kb_dir)
        self.config = config
        self.store = Store(self.kb_dir, create=create, readonly=readonly)
        if not readonly and not (self.kb_dir / DESCRIPTOR).exists():
            write_descriptor(self.kb_dir, {"backend": self.name, **descriptor})
        self._lock = threading.Lock()
        self._index: FaissIndex | None = None
        self._index_version: tuple[int, int] | None = None
        self._keyword: EagerBM25 | None = None  # the usable one (None: FTS5 alone)
        self._keyword_loaded: EagerBM25 | None = None  # the one on disk
        self._keyword_mtime = -1
        self._keyword_version: tuple[int, ...] | None = None
        self._keyword_search = SqliteKeyword(self)

    # -- the interfaces ------------------------------------------------------------------
    def keyword(self) -> KeywordIndex:
        return self._keyword_search

    def vectors(self) -> VectorIndex | None:
        index = self.vector_index()
        return None if index is None else FaissVectors(self, index)

    def sync_keyword(self) -> None:
        self.keyword_index(save=True)  # rebuilt and saved only when stale

    def sync_vectors(self) -> None:
        self.vector_index(save=True)  # caught up (or rebuilt) and saved only when stale

    def describe(self) -> dict[str, Any]:
        db = self.store.path
        return {
            "db_bytes": sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists()),
            "index_type": (read_meta(self.kb_dir) or {}).get("kind"),
            "index_bytes": index_bytes(self.kb_dir),
            "keyword_index_bytes": bm25.index_bytes(self.kb_dir),
        }

    # -- FAISS, kept in step with the store -----------------------------------------------
    def _dim_and_model(self) -> tuple[int | None, str | None]:
        d = self.store.get_meta("dim")
        return (int(d) if d else None), self.store.get_meta("embedder")

    def vector_index(self, save: bool = False) -> FaissIndex | None:
        """The FAISS index, or None when nothing is embedded yet; caught up with the store
        (or rebuilt) if stale, and then saved, with ``save``, by a writer.

        Staleness is checked only when the database has changed since the last call
        (``Store.version``), so searches do not recount the embedded passages each time.
        """
        with self._lock:
            version = self.store.version()
            if self._index is not None and save and self._index.keeps_gone:
                self._index = None  # never save an index that holds removed ids: reload or rebuild
            if self._index is not None and version == self._index_version:
                return self._index
            dim, built = self._dim_and_model()
            if dim is None or built is None:
                return None
            state = self.store.embedded_state()
            idx = self._index
            if idx is not None and idx.state != state:
                same_model = idx.dim == dim and idx.embedder == built
                if same_model and idx.catch_up(self.store, self.config.exact_index_max, keep_gone=not save,
                                               state=state):
                    if save:
                        idx.save(self.kb_dir)
                else:
                    idx = None
            if idx is None:
                idx = FaissIndex.load(
                    self.kb_dir, self.store, dim, built, self.config.exact_index_max,
                    save_if_rebuilt=save, state=state,
                )
            self._index = idx
            self._index_version = version
            return self._index

    def rebuild_index(self) -> FaissIndex | None:
        """Rebuild the FAISS file from stored vectors and save it (writers only)."""
        dim, built = self._dim_and_model()
        if dim is None or built is None:
            return None
        idx = FaissIndex.build(self.store, dim, built, self.config.exact_index_max)
        idx.save(self.kb_dir)
        with self._lock:
            self._index, self._index_version = idx, self.store.version()
        return idx

    # -- the eager keyword index, kept in step with the store ------------------------------
    def keyword_index(self, save: bool = False) -> EagerBM25 | None:
        """The eager BM25 index, or None when there is none or it is too far behind (then
        keyword scoring uses FTS5). ``index.behind`` says that newer passages exist, which
        :class:`SqliteKeyword` scores with FTS5 and merges (see :mod:`yuanwen.bm25`).

        A writer (``save``) rebuilds and saves it when it is missing, built with other
        weights, or stale past the rebuild thresholds; readers never build it.
        """
        with self._lock:
            # the database's version and the index file's: a writer may save the index
            # without changing the database (an ingest that found nothing new)
            version = (*self.store.version(), bm25.meta_mtime(self.kb_dir))
            if version == self._keyword_version and not save:
                return self._keyword
            state = self.store.passages_state()
            if self._keyword_loaded is None or version[2] != self._keyword_mtime:
                self._keyword_loaded, self._keyword_mtime = EagerBM25.load(self.kb_dir), version[2]
            idx = self._keyword_loaded
            if idx is not None and idx.state.get("kb_id") != state["kb_id"]:
                idx = None  # built for another database (one replaced under the same folder)
            drift = 0
            if idx is not None:
                covered = self.store.count_passages(upto=idx.state["max_id"])
                drift = (state["count"] - covered) + (idx.size - covered)  # added + deleted
                idx.behind = state["max_id"] > idx.state["max_id"]
                if drift > max(self.KEYWORD_USE_DRIFT * idx.size, self.KEYWORD_USE_MIN):
                    idx = None
            weights = tuple(self.config.keyword_weights)
            if save and state["count"] and (
                    idx is None or idx.weights != weights
                    or drift and (idx.size < self.KEYWORD_REBUILD_BELOW or drift > self.KEYWORD_REBUILD_DRIFT * idx.size)):
                idx = EagerBM25.build(self.store, weights)
                idx.save(self.kb_dir)
                version = (*self.store.version(), bm25.meta_mtime(self.kb_dir))
                self._keyword_loaded, self._keyword_mtime = idx, version[2]
            self._keyword, self._keyword_version = idx, version
            return idx


register_backend(SqliteBackend.name, SqliteBackend)
