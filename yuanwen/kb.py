"""A knowledge base on disk: the store, the embedder that built it, and its vector index.

``KnowledgeBase`` is what ingest and search both open. The embedder is loaded only when
vectors are needed, so keyword search and quote lookup start without the model.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from .config import Config
from .embed import Embedder, default_embedder_name, get_embedder
from .errors import EmbedderMismatchError
from . import bm25
from .bm25 import KeywordIndex
from .index import VectorIndex, index_bytes, read_meta
from .store import Store


class KnowledgeBase:
    """One knowledge base folder, opened for reading or writing."""

    def __init__(
        self,
        config: Config | None = None,
        embedder: str | Embedder | None = None,
        create: bool = False,
        readonly: bool = False,
    ) -> None:
        self.config = config or Config()
        self.kb_dir = Path(self.config.kb_dir)
        self.readonly = readonly
        self.store = Store(self.kb_dir, create=create, readonly=readonly)
        self._requested = embedder if embedder is not None else self.config.embedder
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._index_version: tuple[int, int] | None = None
        self._keyword: KeywordIndex | None = None  # the usable one (None: FTS5 alone)
        self._keyword_loaded: KeywordIndex | None = None  # the one on disk
        self._keyword_mtime = -1
        self._keyword_version: tuple[int, ...] | None = None
        self._lock = threading.Lock()
        self._facets: tuple[tuple[int, int], dict[str, dict[str, int]]] | None = None
        self._facets_lock = threading.Lock()
        if isinstance(self._requested, Embedder):
            self._embedder = self._requested
        self.check_embedder()

    # -- embedder ------------------------------------------------------------------------
    @property
    def built_with(self) -> str | None:
        """The model_id of the embedder whose vectors this knowledge base holds."""
        return self.store.get_meta("embedder")

    def check_embedder(self) -> None:
        """Raise EmbedderMismatchError if the requested embedder did not build the vectors."""
        stored = self.built_with
        req = self._requested
        if stored is None or req is None:
            return
        req_id = req.model_id if isinstance(req, Embedder) else _id_of_name(req)
        if req_id is not None and req_id != stored and self.store.counts()["embedded"] > 0:
            raise EmbedderMismatchError(
                f"知识库 {self.kb_dir} 的向量由模型 {stored} 生成，当前指定的是 {req_id}。"
                f"请不指定 --embedder（沿用 {stored}），或运行 "
                f"yuanwen ingest <文件夹> --kb {self.kb_dir} --embedder {req} --reembed 用新模型重建向量"
            )

    @property
    def embedder(self) -> Embedder:
        """The embedder for this knowledge base, loaded on first use."""
        with self._lock:
            if self._embedder is None:
                name = self._requested or _name_of_id(self.built_with) or default_embedder_name()
                emb = get_embedder(name)
                stored = self.built_with
                if stored and emb.model_id != stored and self.store.counts()["embedded"] > 0:
                    raise EmbedderMismatchError(
                        f"知识库 {self.kb_dir} 的向量由模型 {stored} 生成，当前加载的是 {emb.model_id}。"
                        f"请用 --embedder 指定生成它的模型，或用 --reembed 重建向量"
                    )
                self._embedder = emb
            return self._embedder

    def claim_embedder(self) -> Embedder:
        """Record the embedder in the knowledge base (before the first vector is written)."""
        emb = self.embedder
        with self.store.transaction():
            self.store.set_meta("embedder", emb.model_id)
            self.store.set_meta("dim", str(emb.dim))
        return emb

    @property
    def dim(self) -> int | None:
        d = self.store.get_meta("dim")
        return int(d) if d else None

    # -- vector index --------------------------------------------------------------------
    def vector_index(self, save: bool = False) -> VectorIndex | None:
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
            dim, built = self.dim, self.built_with
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
                idx = VectorIndex.load(
                    self.kb_dir, self.store, dim, built, self.config.exact_index_max,
                    save_if_rebuilt=save, state=state,
                )
            self._index = idx
            self._index_version = version
            return self._index

    KEYWORD_REBUILD_BELOW = 50_000  # a writer rebuilds a smaller stale keyword index every time
    KEYWORD_REBUILD_DRIFT = 0.02  # ... a larger one once this share of passages changed
    KEYWORD_USE_DRIFT = 0.10  # past this share (and KEYWORD_USE_MIN passages), FTS5 alone
    KEYWORD_USE_MIN = 1000

    def keyword_index(self, save: bool = False) -> KeywordIndex | None:
        """The eager BM25 index, or None when there is none or it is too far behind (then
        keyword scoring uses FTS5). ``index.behind`` says that newer passages exist, which
        callers score with FTS5 and merge (see :mod:`yuanwen.bm25`).

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
                self._keyword_loaded, self._keyword_mtime = KeywordIndex.load(self.kb_dir), version[2]
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
                idx = KeywordIndex.build(self.store, weights)
                idx.save(self.kb_dir)
                version = (*self.store.version(), bm25.meta_mtime(self.kb_dir))
                self._keyword_loaded, self._keyword_mtime = idx, version[2]
            self._keyword, self._keyword_version = idx, version
            return idx

    def rebuild_index(self) -> VectorIndex | None:
        """Rebuild the FAISS file from stored vectors and save it (writers only)."""
        dim, built = self.dim, self.built_with
        if dim is None or built is None:
            return None
        idx = VectorIndex.build(self.store, dim, built, self.config.exact_index_max)
        idx.save(self.kb_dir)
        with self._lock:
            self._index, self._index_version = idx, self.store.version()
        return idx

    def facets(self) -> dict[str, dict[str, int]]:
        """Documents per type (``by_type``), issuer (``by_issuer``) and year (``by_year``),
        most first: what search filters and overviews offer. Counted again only when the
        database has changed (``Store.version``), so callers may ask on every page view."""
        with self._facets_lock:
            version = self.store.version()
            if self._facets is None or self._facets[0] != version:
                st = self.store
                self._facets = (version, {
                    "by_type": st.group_counts("doc_type"),
                    "by_issuer": st.group_counts("issuer"),
                    "by_year": st.group_counts("year"),
                })
            return {k: dict(v) for k, v in self._facets[1].items()}

    def stats(self) -> dict:
        """What is in the knowledge base: counts, embedder, groupings, sizes on disk."""
        st = self.store
        out: dict = dict(st.counts())
        out["pending"] = out["passages"] - out["embedded"]
        out["embedder"] = self.built_with
        out["dim"] = self.dim
        out.update(self.facets())
        out["index_type"] = (read_meta(self.kb_dir) or {}).get("kind")
        out["index_bytes"] = index_bytes(self.kb_dir)
        out["keyword_index_bytes"] = bm25.index_bytes(self.kb_dir)
        db = st.path
        out["db_bytes"] = sum(
            p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists()
        )
        out["schema_version"] = st.schema_version()
        out["kb_dir"] = str(self.kb_dir)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        return self.embedder.encode_queries([text])[0]

    def close(self) -> None:
        self.store.close()


def _id_of_name(name: str) -> str | None:
    """The model_id an embedder name will produce, without loading it where possible."""
    from .embed import _REGISTRY, _parse_st_id, default_prompts, load_plugins

    load_plugins()
    if name in _REGISTRY:
        return getattr(_REGISTRY[name], "model_id", None) or None
    if name.startswith(("st:", "st/")):
        model, q, p = _parse_st_id(name[3:])
        dq, dp = default_prompts(model)
        q = dq if q is None else q
        p = dp if p is None else p
        base = Path(model).expanduser()
        mid = f"st/{base.resolve().name if base.exists() else model}"
        return mid + (f"|q={q}|p={p}" if q or p else "")
    return name


def _name_of_id(model_id: str | None) -> str | None:
    """The embedder name to load for a stored model_id."""
    if not model_id:
        return None
    from .embed import _REGISTRY, load_plugins

    load_plugins()
    for name, factory in _REGISTRY.items():
        if getattr(factory, "model_id", None) == model_id:
            return name
    if model_id.startswith("st/"):
        return "st:" + model_id[3:]
    return model_id
