"""The ``sqlite`` backend: SQLite (:mod:`yuanwen.store`), the eager BM25 keyword index
(:mod:`yuanwen.bm25`) and FAISS (:mod:`yuanwen.index`), behind the interfaces of
:mod:`yuanwen.backend`.

Filters are pushed down as SQL: the keyword index and FAISS search only among the passage ids
that pass (``Store.filtered_passage_ids``). The indexes are derived from the database and kept
in step with it here: readers catch up in memory, writers rebuild and save (``save=True``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import bm25
from .backend import DESCRIPTOR, Backend, KeywordIndex, VectorIndex, register_backend, write_descriptor
from .bm25 import EagerBM25, LiveBM25
from .index import FaissIndex, index_bytes, read_meta
from .models import Filters
from .store import Store
from .text import tokenize


class SqliteKeyword(KeywordIndex):
    """FTS5's BM25 scores, from the eager keyword index of every passage (:class:`LiveBM25`)."""

    def __init__(self, backend: SqliteBackend) -> None:
        self.backend = backend

    def search(self, terms: str, k: int, filters: Filters | None = None, *,
               weights: tuple[float, float, float], text_only: bool = False) -> list[tuple[int, float]]:
        store = self.backend.store
        index = self.backend.keyword_index()
        allowed = store.filtered_passage_ids(filters)
        ids, scores = index.search(tokenize(terms), k, allowed, weights=tuple(weights), text_only=text_only)
        return [(int(i), float(s)) for i, s in zip(ids, scores)]

    def phrase_doc_ids(self, phrases: Sequence[Sequence[str]]) -> set[int]:
        index = self.backend.keyword_index()
        ids = [int(i) for ph in phrases if ph for i in index.passages_with_all(ph)]
        return set(self.backend.store.passage_doc_ids(ids).values()) if ids else set()


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
        self._keyword: LiveBM25 | None = None  # every passage, as of _keyword_version
        self._keyword_loaded: EagerBM25 | None = None  # the one on disk
        self._keyword_tails: list[EagerBM25] = []  # the passages newer than it, in memory
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
    def _saved_keyword(self, mtime: int) -> EagerBM25 | None:
        """The saved keyword index (loaded again when ``keyword.json``'s ``mtime`` changed), or
        None when there is none, it is damaged, or it was built for another database (one
        replaced under the same folder). The caller holds the lock."""
        if self._keyword_loaded is None or mtime != self._keyword_mtime:
            self._keyword_loaded, self._keyword_mtime = EagerBM25.load(self.kb_dir), mtime
            self._keyword_tails = []
        main = self._keyword_loaded
        return main if main is not None and main.state.get("kb_id") == self.store.kb_id else None

    def has_saved_keyword_index(self) -> bool:
        """Whether the saved keyword index is there and usable (nothing is indexed to say so)."""
        with self._lock:
            return self._saved_keyword(bm25.meta_mtime(self.kb_dir)) is not None

    def _keyword_tail(self, after: int) -> EagerBM25:
        """A segment of the passages with ids above ``after``, in memory."""
        tail = EagerBM25.build(self.store, after=after)
        tail.state["after"] = after
        return tail

    def keyword_index(self, save: bool = False) -> LiveBM25:
        """The keyword index of every passage: the saved one, and the passages stored since it
        was built, indexed in memory (a segment per change; neighbouring segments of like size
        are indexed again as one). Without a saved index (none yet, damaged, or built for
        another database) a reader indexes every passage in memory.

        A writer (``save``) builds and saves it again when it is missing or stale past the
        rebuild thresholds (deleted passages count: their statistics stay until then).
        """
        with self._lock:
            # the database's version and the index file's: a writer may save the index
            # without changing the database (an ingest that found nothing new)
            version = (*self.store.version(), bm25.meta_mtime(self.kb_dir))
            if version == self._keyword_version and not save:
                return self._keyword  # type: ignore[return-value]
            state = self.store.passages_state()
            main = self._saved_keyword(version[2])
            drift = 0
            if main is not None:
                covered = self.store.count_passages(upto=main.state["max_id"])
                drift = (state["count"] - covered) + (main.size - covered)  # added + deleted
            if save and state["count"] and (
                    main is None
                    or drift and (main.size < self.KEYWORD_REBUILD_BELOW or drift > self.KEYWORD_REBUILD_DRIFT * main.size)):
                main = EagerBM25.build(self.store)
                main.save(self.kb_dir)
                version = (*self.store.version(), bm25.meta_mtime(self.kb_dir))
                self._keyword_loaded, self._keyword_mtime, self._keyword_tails = main, version[2], []
            # the passages above the saved index's: a chain of segments, each from the last one's
            # max id (ids only grow), started again on another saved index
            base = main.state["max_id"] if main is not None else 0
            tails = self._keyword_tails
            if tails and tails[0].state["after"] != base:
                tails = []
            top = tails[-1].state["max_id"] if tails else base
            if state["max_id"] > top:
                tails = [*tails, self._keyword_tail(top)]
                # a segment no more than twice the next one's size is indexed again with it, as a
                # binary counter carries: O(log n) segments, each passage indexed O(log n) times
                while len(tails) >= 2 and tails[-2].size <= 2 * tails[-1].size:
                    tails = [*tails[:-2], self._keyword_tail(tails[-2].state["after"])]
            self._keyword_tails = tails
            segments = ([main] if main is not None else []) + [t for t in tails if t.size]
            self._keyword = LiveBM25(segments, saved=main is not None)
            self._keyword_version = version
            return self._keyword


register_backend(SqliteBackend.name, SqliteBackend)
