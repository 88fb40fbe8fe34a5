"""A knowledge base on disk: the store, the embedder that built it, and its vector index.

``KnowledgeBase`` is what ingest and search both open. The embedder is loaded only when
vectors are needed, so keyword search and quote lookup start without the model.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .config import Config
from .embed import (
    Embedder,
    default_embedder_name,
    embedder_name_of,
    get_embedder,
    model_id_of,
    same_model,
)
from .errors import EmbedderMismatchError
from .models import Filters
from .backend import Backend, KeywordIndex, VectorIndex, open_backend


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
        self.backend: Backend = open_backend(self.kb_dir, self.config, create=create, readonly=readonly)
        self.store = self.backend.store
        self._requested = embedder if embedder is not None else self.config.embedder
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()
        self._facets: tuple[tuple[int, int], dict[tuple[str, ...], dict[str, dict[str, int]]]] | None = None
        self._facets_lock = threading.Lock()
        self._last_query: tuple[str, np.ndarray] | None = None
        if isinstance(self._requested, Embedder):
            self._embedder = self._requested
        self.check_embedder()

    # -- embedder ------------------------------------------------------------------------
    @property
    def built_with(self) -> str | None:
        """The model_id of the embedder whose vectors this knowledge base holds."""
        return self.store.get_meta("embedder")

    def check_embedder(self) -> None:
        """Raise EmbedderMismatchError if the requested embedder did not build the vectors.
        A writer asked for the same remote model at a new address records that address."""
        stored = self.built_with
        req = self._requested
        if stored is None or req is None:
            return
        req_id = req.model_id if isinstance(req, Embedder) else model_id_of(req)
        if req_id is not None and not same_model(req_id, stored) and self.store.counts()["embedded"] > 0:
            raise EmbedderMismatchError(
                f"知识库 {self.kb_dir} 的向量由模型 {stored} 生成，当前指定的是 {req_id}。"
                f"请不指定 --embedder（沿用 {stored}），或运行 "
                f"yuanwen ingest <文件夹> --kb {self.kb_dir} --embedder {req} --reembed 用新模型重建向量"
            )
        if req_id is not None and req_id != stored and same_model(req_id, stored) and not self.readonly:
            # the same remote model at a new address (a moved embedding server)
            with self.store.transaction():
                self.store.set_meta("embedder", req_id)

    @property
    def embedder(self) -> Embedder:
        """The embedder for this knowledge base, loaded on first use."""
        with self._lock:
            if self._embedder is None:
                name = self._requested or embedder_name_of(self.built_with) or default_embedder_name()
                emb = get_embedder(name)
                stored = self.built_with
                if stored and not same_model(emb.model_id, stored) and self.store.counts()["embedded"] > 0:
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

    # -- the backend's indexes (see yuanwen.backend) --------------------------------------
    def keyword(self) -> KeywordIndex:
        """The keyword index; it takes ``Filters`` itself (filter push-down)."""
        return self.backend.keyword()

    def vectors(self) -> VectorIndex | None:
        """The vector index, or None while nothing is embedded; it takes ``Filters`` itself."""
        return self.backend.vectors()

    def vector_index(self, save: bool = False):
        """The SQLite backend's FAISS index, kept in step with the store (``save``: a writer
        saves it); see :meth:`yuanwen.sqlite_backend.SqliteBackend.vector_index`."""
        return self.backend.vector_index(save)

    def keyword_index(self, save: bool = False):
        """The SQLite backend's keyword index of every passage (None on Milvus); see
        :meth:`yuanwen.sqlite_backend.SqliteBackend.keyword_index`."""
        return self.backend.keyword_index(save)

    def rebuild_index(self):
        """Rebuild the vector index from the stored vectors and save it (writers only)."""
        return self.backend.rebuild_index()

    def facets(self, access: Sequence[str] = ()) -> dict[str, dict[str, int]]:
        """Documents per type (``by_type``), issuer (``by_issuer``), year (``by_year``) and format
        (``by_format``), most first: what search filters and overviews offer; only documents at
        the ``access`` levels when given. Counted again only when the database has changed
        (``Store.version``), so callers may ask on every page view."""
        key = tuple(access)
        with self._facets_lock:
            version = self.store.version()
            cached = self._facets[1].get(key) if self._facets and self._facets[0] == version else None
            if cached is None:
                st = self.store
                f = Filters(access=list(key))
                cached = {
                    "by_type": st.group_counts("doc_type", f),
                    "by_issuer": st.group_counts("issuer", f),
                    "by_year": st.group_counts("year", f),
                    "by_format": st.group_counts("format", f),  # txt, md, html, pdf, docx, doc, wps, ofd
                }
                if not self._facets or self._facets[0] != version:
                    self._facets = (version, {})
                self._facets[1][key] = cached
            return {k: dict(v) for k, v in cached.items()}

    def stats(self) -> dict:
        """What is in the knowledge base: counts, embedder, groupings, sizes on disk."""
        st = self.store
        out: dict = dict(st.counts())
        out["pending"] = out["passages"] - out["embedded"]
        out["ocr_pages"] = st.ocr_page_count()
        out["embedder"] = self.built_with
        out["dim"] = self.dim
        out.update(self.facets())
        out.update(self.backend.describe())
        out["backend"] = self.backend.name
        out["schema_version"] = st.schema_version()
        out["kb_dir"] = str(self.kb_dir)
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """The query's vector (the last one is kept: search and its confidence share it)."""
        last = self._last_query
        if last is not None and last[0] == text:
            return last[1]
        vec = self.embedder.encode_queries([text])[0]
        self._last_query = (text, vec)
        return vec

    def close(self) -> None:
        self.backend.close()

