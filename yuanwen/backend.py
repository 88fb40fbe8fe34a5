"""The storage seams: what a backend provides, and which backend a knowledge base uses.

A backend is three parts behind interfaces:

- a :class:`DocumentStore`: documents, passages, sentences, text slices, listing and facets,
  consistent read snapshots, and the embedding cache (vectors by content hash);
- a :class:`KeywordIndex`: BM25 over the same terms as :func:`yuanwen.text.tokenize`;
- a :class:`VectorIndex`: nearest passages to a query vector.

Both indexes take the :class:`~yuanwen.models.Filters` object itself (filter push-down), so a
backend evaluates filters natively before the ranking is cut: SQLite joins, a Milvus filter
expression, and so on. Retrieval (``yuanwen.search``) and ingest (``yuanwen.ingest``) call
these interfaces only; they never see SQL, table names or index files.

The first backend, ``sqlite``, is :mod:`yuanwen.sqlite_backend` (SQLite + FTS5, the eager
BM25 arrays of :mod:`yuanwen.bm25`, FAISS from :mod:`yuanwen.index`). A knowledge base folder
records its backend in ``kb.json`` (``{"backend": "sqlite", ...}``), as its database records
the embedder; a folder without that file is a ``sqlite`` knowledge base made before it existed.
To add a backend: implement :class:`Backend` and call :func:`register_backend`.
"""

from __future__ import annotations

import contextlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import KnowledgeBaseError
from .models import Document, Filters, OcrPage, Passage

DESCRIPTOR = "kb.json"  # beside the backend's files: which backend holds this knowledge base
DEFAULT_BACKEND = "sqlite"


@runtime_checkable
class DocumentStore(Protocol):
    """Documents, passages, sentences and the embedding cache of one knowledge base.

    Offsets are character offsets into ``Document.text``. Reads inside ``snapshot()`` see one
    consistent state; writes go inside ``transaction()`` and are all or nothing.
    """

    kb_dir: Path
    kb_id: str | None

    # -- state and consistency
    def version(self) -> tuple[int, int]:
        """Changes whenever the stored data changes (caches are keyed on it)."""

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """All writes inside commit together or not at all; nested calls join."""

    def snapshot(self) -> contextlib.AbstractContextManager[None]:
        """Reads inside see one consistent state, whatever a writer does meanwhile."""

    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str | None) -> None: ...
    def close(self) -> None: ...

    # -- documents
    def get_document(self, doc_id: int, with_text: bool = True) -> Document: ...

    def documents(self, with_text: bool = False, filters: Filters | None = None) -> list[Document]:
        """Documents that pass ``filters``, by date then title."""

    def document_by_path(self, path: str) -> dict[str, Any] | None: ...
    def document_by_hash(self, chash: str) -> dict[str, Any] | None: ...
    def twins(self, hashes: Iterable[str]) -> dict[str, list[tuple[int, str]]]: ...
    def titles(self) -> list[tuple[int, str]]: ...
    def all_paths(self) -> list[tuple[int, str]]: ...

    def document_slice(self, doc_id: int, start: int, end: int) -> str:
        """``text[start:end]`` of one document, without reading all of it."""

    def group_counts(self, column: str) -> dict[str, int]:
        """Documents per value of ``doc_type``, ``issuer`` or ``year`` (the facets)."""

    def counts(self) -> dict[str, int]: ...

    def source_file(self, doc_id: int) -> str | None:
        """The path to open a document's original file by."""

    # -- recognised pages (OCR), kept per file hash and page so an ingest resumes
    def ocr_page(self, file_hash: str, page: int, engine: str) -> OcrPage | None: ...
    def save_ocr_page(self, file_hash: str, page: OcrPage) -> None: ...
    def ocr_page_count(self) -> int:
        """Pages of stored documents whose text was recognised by OCR."""

    # -- passages and sentences
    def get_passages(self, ids: Iterable[int]) -> dict[int, Passage]: ...
    def document_passages(self, doc_id: int) -> list[Passage]: ...
    def passages(self) -> list[Passage]: ...
    def passage_doc_ids(self, passage_ids: Sequence[int]) -> dict[int, int]: ...

    def passage_heads(self, ids: Iterable[int]) -> tuple[dict[int, Passage], dict[int, str]]:
        """Passages by id, their text left out where reading it costs (then ``""``: read the
        ones needed with :meth:`get_passages`), and for each a key that equal texts share."""

    def sentence_span(self, doc_id: int, start: int, end: int) -> tuple[int, int] | None:
        """The span of the sentences of ``doc_id`` that overlap ``start``..``end``."""

    # -- the embedding cache
    def pending_passages(self, limit: int | None = None,
                         doc_ids: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """(content hash, text) of passages with no vector yet (of ``doc_ids`` only, if given)."""

    def count_pending(self, doc_ids: Sequence[int] | None = None) -> int:
        """How many distinct passage texts :meth:`pending_passages` would give in all."""

    def save_vectors(self, hashes: Sequence[str], vectors: np.ndarray) -> None: ...

    def passage_vectors(self, ids: Sequence[int], dim: int) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """(passage ids, their vectors) of the embedded ones among ``ids``, in batches."""
    def embedded_ids(self) -> np.ndarray: ...
    def embedded_state(self) -> dict[str, int]: ...
    def passages_state(self) -> dict[str, int]: ...


class KeywordIndex(ABC):
    """BM25 over the terms of :func:`yuanwen.text.tokenize` (CJK bigrams, ASCII words)."""

    @abstractmethod
    def search(self, terms: str, k: int, filters: Filters | None = None, *,
               weights: tuple[float, float, float], text_only: bool = False) -> list[tuple[int, float]]:
        """The top ``k`` (passage id, score) pairs, higher first, among passages whose documents
        pass ``filters``. ``weights`` weigh the passage text, its heading path and its document's
        title; ``text_only`` scores the text alone (its own idf), as quote lookup needs."""

    @abstractmethod
    def phrase_doc_ids(self, phrases: Sequence[Sequence[str]]) -> set[int]:
        """Documents with a passage whose keyword terms hold one of ``phrases`` (runs of
        consecutive terms of :func:`yuanwen.text.tokenize`), or a few more: candidates for an
        exact text search, which reads their text."""


class VectorIndex(ABC):
    """Dense retrieval over the stored passage vectors (unit length; inner product)."""

    @property
    @abstractmethod
    def size(self) -> int:
        """How many passages it holds."""

    @abstractmethod
    def search(self, query: np.ndarray, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """The top ``k`` (passage id, similarity) pairs for one query vector, higher first,
        among passages whose documents pass ``filters``."""


class Backend(ABC):
    """One knowledge base's storage: its document store and its two indexes."""

    name: str
    store: DocumentStore

    @abstractmethod
    def keyword(self) -> KeywordIndex:
        """The keyword index (always present: a backend keeps it in step with the store)."""

    @abstractmethod
    def vectors(self) -> VectorIndex | None:
        """The vector index, or None while nothing is embedded."""

    def sync_keyword(self) -> None:
        """Bring the keyword index in step with the store and keep it (writers, after an
        ingest). Nothing to do for a backend that indexes as it stores."""

    def sync_vectors(self) -> None:
        """The same for the vector index."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Sizes and kinds for ``stats``: ``db_bytes``, ``index_type``, ``index_bytes``,
        ``keyword_index_bytes``."""

    def close(self) -> None:
        self.store.close()


BackendFactory = Callable[..., Backend]
_BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``name`` a backend: ``factory(kb_dir, config, descriptor, create=, readonly=)``."""
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    """The registered backends."""
    _load_built_in()
    return sorted(_BACKENDS)


def _load_built_in(name: str | None = None) -> None:
    if DEFAULT_BACKEND not in _BACKENDS:
        from . import sqlite_backend  # noqa: F401 - registers itself
    if name == "milvus" and name not in _BACKENDS:
        from . import milvus_backend  # noqa: F401 - registers itself; imports pymilvus only on open


def read_descriptor(kb_dir: Path) -> dict[str, Any]:
    """What ``kb.json`` says (``{"backend": "sqlite"}`` when there is none)."""
    path = Path(kb_dir) / DESCRIPTOR
    try:
        raw = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):  # (a folder that is not one: the backend says so)
        return {"backend": DEFAULT_BACKEND}
    except OSError as exc:
        raise KnowledgeBaseError(f"无法读取知识库描述文件 {path}（{exc.strerror}）；请检查读取权限") from exc
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("backend"), str):
            raise ValueError("no backend")
    except ValueError as exc:
        raise KnowledgeBaseError(
            f"知识库描述文件 {path} 已损坏；若这是 SQLite 知识库，把它的内容改为 "
            f'{{"backend": "{DEFAULT_BACKEND}"}} 即可') from exc
    return data


SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")  # a Milvus server, not a Lite file


def writers_at_once(kb_dir: Path) -> bool:
    """Whether ingests on several machines may write the knowledge base at once (shares of a
    folder): a Milvus server's, whose writers each take ids from a lane of their own."""
    d = read_descriptor(kb_dir)
    return d["backend"] == "milvus" and str(d.get("uri") or "").startswith(SERVER_SCHEMES)


def write_descriptor(kb_dir: Path, data: dict[str, Any]) -> None:
    """Write ``kb.json`` atomically (a temporary file renamed over it); one that holds a
    ``token`` is readable by its owner only (mode 600) from the start."""
    path = Path(kb_dir) / DESCRIPTOR
    tmp = path.with_name(f".{DESCRIPTOR}.{os.getpid()}.tmp")
    mode = 0o600 if data.get("token") else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    os.chmod(tmp, mode)  # an old temporary file keeps its mode through O_CREAT
    os.replace(tmp, path)


def open_backend(kb_dir: Path, config: Any, create: bool = False, readonly: bool = False,
                 backend: str | None = None) -> Backend:
    """Open the backend that ``kb_dir`` records (``backend`` names it for a new one)."""
    _load_built_in()
    descriptor = read_descriptor(kb_dir)
    if backend is not None and (Path(kb_dir) / DESCRIPTOR).exists() and descriptor["backend"] != backend:
        raise KnowledgeBaseError(
            f"知识库 {kb_dir} 使用的是 {descriptor['backend']} 后端，不是 {backend}")
    name = backend or descriptor["backend"]
    _load_built_in(name)
    factory = _BACKENDS.get(name)
    if factory is None:
        raise KnowledgeBaseError(
            f"知识库 {kb_dir} 使用 {name} 后端，本版本不支持（可用：{'、'.join(sorted(_BACKENDS))}）")
    return factory(Path(kb_dir), config, {**descriptor, "backend": name}, create=create, readonly=readonly)

