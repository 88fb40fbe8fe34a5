"""The ingest pipeline: files -> stored, segmented, keyword-indexed documents -> vectors -> FAISS.

Stage 1 (seconds) reads, segments and stores each file in its own transaction, with the FTS
rows, so everything is keyword-searchable at once. Stage 2 embeds pending passages in batches,
committing each batch, so an interrupted embedding resumes where it stopped. Stage 3 rebuilds
the FAISS file from the stored vectors. Only one ingest writes to a knowledge base at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from tqdm import tqdm

from yuanwen.backend import writers_at_once
from yuanwen.config import Config
from yuanwen.embed import Embedder
from yuanwen.errors import (DiskFullError, KnowledgeBaseError, OcrNeeded, ReadError, YuanwenError,
                            kb_error_from)
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, FileOutcome, IngestReport, OcrPage, VerifyReport
from yuanwen.store import INGEST_LOCK, Store, check_kb_dir, content_hash
from yuanwen.uploads import UPLOAD_DIR
from yuanwen import access as _access
from yuanwen.verify import verify

from .metadata import find_manifest_entry, manifest_problems
from .readers import check_file
from .walk import Skipped, in_shard, os_reason, printable_path, walk
from . import embed_workers, ocr, sandbox

log = logging.getLogger(__name__)

LOCK_NAME = INGEST_LOCK
#: Called as work advances: (stage, done, total), stage "读取入库" (files), "文字识别" (the
#: pages of one scanned file) or "向量化" (passages). The app's upload progress uses it; the CLI's tqdm bars are driven by the same
#: reporter (:class:`_Progress`).
ProgressCallback = Callable[[str, int, int], None]


class _Progress:
    """One stage's progress: a tqdm bar on the terminal (when ``bar``) and the callback."""

    def __init__(self, stage: str, unit: str, total: int, bar: bool,
                 callback: ProgressCallback | None, leave: bool = True) -> None:
        self.stage, self.total, self.done, self.callback = stage, total, 0, callback
        self.bar = tqdm(total=total, desc=stage, unit=unit, disable=not bar, dynamic_ncols=True,
                        leave=leave)
        self._tell()

    def _tell(self) -> None:
        if self.callback is not None:
            self.callback(self.stage, self.done, self.total)

    def update(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(n)
        self._tell()

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def ingest_lock(kb_dir: Path, wait: float = 0, shard: tuple[int, int] | None = None) -> FileLock:
    """The lock that makes ingests into one knowledge base take turns; on a Milvus server,
    ingests of different shares of a folder each take their share's and write at once."""
    Path(kb_dir).mkdir(parents=True, exist_ok=True)
    name = LOCK_NAME
    if shard is not None and writers_at_once(Path(kb_dir)):
        name = f"ingest-share-{shard[0]}-of-{shard[1]}.lock"
    return FileLock(str(Path(kb_dir) / name), timeout=wait)


def ingest(
    paths: Sequence[Path | str],
    config: Config | None = None,
    embedder: str | Embedder | None = None,
    prune: bool = False,
    reembed: bool = False,
    embed: bool = True,
    progress: bool = True,
    wait: float = 0,
    follow_links: bool = False,
    on_progress: ProgressCallback | None = None,
    shard: tuple[int, int] | None = None,
) -> IngestReport:
    """Ingest files and folders (recursively) into the knowledge base of ``config``.

    Unchanged files are skipped by hash, changed ones replaced, identical texts stored once;
    with ``prune``, documents whose files are gone (under ``paths``) are dropped. A file that
    cannot be read is reported in the returned report and the others go on. Special files
    (FIFOs, devices) are never read; symlinks leading outside ``paths`` are skipped unless
    ``follow_links`` (see :mod:`ingest.walk`).

    ``shard=(i, N)`` takes share ``i`` of ``N`` of the files (by a hash of each file's path under
    the folder named, :func:`ingest.walk.in_shard`), prunes only within that share and embeds the
    passages of that share's documents: N machines (or processes) that name the same folder with
    shares 1..N ingest it into one shared knowledge base (a Milvus server) at once, each file
    once.
    """
    config = config or Config()
    with _locked(config, wait, shard):
        kb = KnowledgeBase(config, embedder=None if reembed else embedder, create=True)
        try:
            if reembed:
                with kb.store.transaction():
                    kb.store.drop_vectors()
                    kb.store.set_meta("embedder", None)
                    kb.store.set_meta("dim", None)
                kb = _reopen(kb, config, embedder)
            report = IngestReport()
            try:
                _run_stages(kb, [Path(p) for p in paths], config, report, prune, embed, progress,
                            follow_links, on_progress, shard)
            except Exception as exc:  # e.g. the disk filled: say why, with what went in before it
                err = kb_error_from(exc, config.kb_dir)
                if err is None:
                    raise
                err.report = report  # type: ignore[attr-defined]
                if err is exc:
                    raise
                raise err from exc
            return report
        finally:
            kb.close()


def _run_stages(kb: KnowledgeBase, paths: list[Path], config: Config, report: IngestReport,
                prune: bool, embed: bool, progress: bool, follow_links: bool,
                on_progress: ProgressCallback | None = None, shard: tuple[int, int] | None = None) -> None:
    with sandbox.bounded_parsing(config):  # one parse worker for this ingest
        _store_stage(kb.store, paths, config, report, prune, progress, follow_links, on_progress, shard)
    if embed:
        only = None if shard is None else _shard_doc_ids(kb.store, paths, shard)
        _embed_stage(kb, config, report, progress, on_progress, only)
    t0 = time.perf_counter()
    kb.backend.sync_keyword()  # the indexes in step with the store (SQLite: rebuilt when stale)
    t1 = time.perf_counter()
    kb.backend.sync_vectors()
    report.keyword_index_seconds, report.vector_index_seconds = t1 - t0, time.perf_counter() - t1


@contextmanager
def _locked(config: Config, wait: float, shard: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold the knowledge base's ingest lock (every writer takes it), or say who holds it."""
    check_kb_dir(config.kb_dir, write=True)  # a file, or read-only: say so before making the lock
    lock = ingest_lock(config.kb_dir, wait, shard)
    try:
        lock.acquire()
    except Timeout:
        raise KnowledgeBaseError(
            f"另一个导入任务正在写入知识库 {config.kb_dir}，请等它结束后再试"
        ) from None
    try:
        yield
    finally:
        lock.release()


def repair(config: Config | None = None, wait: float = 0) -> VerifyReport:
    """``yuanwen verify --repair``: check the knowledge base and fix what can be fixed, under
    the ingest lock; a damaged document is read again from its file (with the manifest of the
    folder it was ingested from) when the file is still there."""
    config = config or Config()
    with _locked(config, wait):
        return verify(config, repair=True, reread=lambda store, path, root: ingest_file(
            store, Path(path), [Path(root)] if root else [], config))


def delete_documents(config: Config, doc_ids: Sequence[int], wait: float = 0) -> int:
    """Remove documents with their passages, sentences and keyword rows, and their vectors
    from the index, under the ingest lock; a file the app uploaded for them (under the
    knowledge base's ``uploads/``) goes too, so the next ingest does not bring it back.
    Returns how many were removed."""
    with _locked(config, wait):
        kb = KnowledgeBase(config, create=False)
        try:
            uploads = (Path(config.kb_dir) / UPLOAD_DIR).resolve()
            done = 0
            for doc_id in doc_ids:
                source = kb.store.source_file(doc_id)
                kb.store.delete_document(doc_id)
                done += 1
                if source and Path(source).resolve().is_relative_to(uploads):
                    Path(source).unlink(missing_ok=True)
            kb.store.prune_orphan_vectors()
            kb.backend.sync_keyword()
            kb.backend.sync_vectors()
            return done
        finally:
            kb.close()


def _reopen(kb: KnowledgeBase, config: Config, embedder: str | Embedder | None) -> KnowledgeBase:
    kb.close()
    return KnowledgeBase(config, embedder=embedder, create=True)


# -- stage 1: read, segment, store ---------------------------------------------------------
def _store_stage(store: Store, paths: list[Path], config: Config, report: IngestReport,
                 prune: bool, progress: bool, follow_links: bool = False,
                 on_progress: ProgressCallback | None = None, shard: tuple[int, int] | None = None) -> None:
    t0 = time.perf_counter()
    try:
        _store_files(store, paths, config, report, prune, progress, follow_links, on_progress, shard)
    finally:  # also when a full disk stops it: the summary gives the time it ran
        report.store_seconds = time.perf_counter() - t0


def _store_files(store: Store, paths: list[Path], config: Config, report: IngestReport,
                 prune: bool, progress: bool, follow_links: bool,
                 on_progress: ProgressCallback | None = None, shard: tuple[int, int] | None = None) -> None:
    key_roots = [Path(_key(p)) for p in paths]  # as stored: for pruning
    seen: set[str] = set()  # every key this run walked, whatever became of it
    unread: list[Path] = []  # folders that could not be listed: nothing under them is pruned

    def fail(path: str, reason: str) -> None:
        if path in seen:  # a path named twice, or named and found in a folder
            return
        seen.add(path)
        report.outcomes.append(FileOutcome(path, "failed", reason))
        if progress:
            tqdm.write(f"失败 {path}：{reason}", file=sys.stderr)

    walkable = []
    for p in paths:
        problem = _path_problem(p)
        if problem:
            fail(printable_path(p), problem)
        else:
            walkable.append(p)
    roots = [Path(os.path.abspath(p)) for p in walkable]  # real paths: for opening and manifests
    files: list[Path] = []
    for item in walk(walkable, follow_links):
        if isinstance(item, Skipped):
            key = _key(item.path)
            fail(key, item.reason)
            if item.folder:
                unread.append(Path(key))
        elif _in_share(_key(item), key_roots, shard):
            files.append(item)
    for bad in manifest_problems(files, roots):
        report.outcomes.append(FileOutcome(
            str(bad.path), "failed", f"{bad.reason}；其所在文件夹的文件已按各自正文提取元数据导入"))
    claimed: dict[str, str] = {}  # key -> the real path it stands for
    bar = _Progress("读取入库", "文件", len(files), progress, on_progress)
    for f in files:
        key, real = _key(f), os.path.abspath(f)
        if claimed.setdefault(key, real) != real:  # two names that differ only in their encoding
            outcome = FileOutcome(key, "failed", "文件名不是 UTF-8 编码，解码后与另一个文件同名，"
                                                 "已跳过；请把文件名改为 UTF-8 编码后再导入")
        else:
            outcome = ingest_file(store, f, roots, config, _OcrRun(report, progress, on_progress))
        seen.add(outcome.path)
        report.outcomes.append(outcome)
        report.passages_stored += outcome.passages
        bar.update()
        if outcome.status == "failed" and progress:
            bar.write(f"失败 {outcome.path}：{outcome.reason}")
    bar.close()
    _settle_twins(store, report)
    if prune:
        for doc_id, path in store.all_paths():
            if path in seen or not _under(Path(path), key_roots) or _under(Path(path), unread):
                continue
            if not _in_share(path, key_roots, shard):
                continue  # another share's file: its own ingest prunes it
            if _gone(path):
                store.delete_document(doc_id)
                report.outcomes.append(FileOutcome(path, "pruned", "文件已不存在", doc_id))
        store.prune_orphan_vectors()


def _settle_twins(store: Store, report: IngestReport) -> None:
    """Writers at once (shares ingested on several machines) can each store the same text under
    paths of their own before either sees the other's: the document with the lowest id stays,
    the others become its aliases, as one writer would have made them. Every writer does this
    after its files, so the one that finishes last sees both (and two that look at once do the
    same)."""
    mine = {o.content_hash: o for o in report.outcomes if o.status in ("added", "updated") and o.content_hash}
    for chash, docs in store.twins(mine).items():
        keep_id, keep_path = docs[0]
        levels = store.document_access([d for d, _ in docs])
        level = levels.get(keep_id)
        ladder = _ladder(store)
        for doc_id, path in docs[1:]:  # one copy, readable only as the strictest path says
            level = _access.stricter(ladder, level, levels.get(doc_id)) or level
            for alias in store.get_document(doc_id, with_text=False).extra.get("aliases") or []:
                store.add_alias(keep_id, alias)  # (its own twins within its share)
            store.add_alias(keep_id, path, replaced_doc_id=doc_id)
        if level and level != levels.get(keep_id):
            store.set_document_access(keep_id, level)
        o = mine[chash]
        if o.doc_id != keep_id:
            report.passages_stored -= o.passages
            o.status, o.reason, o.doc_id, o.passages = (
                "duplicate", f"与已入库的 {keep_path} 内容相同，只保存一份", keep_id, 0)


def _shard_doc_ids(store: Store, paths: list[Path], shard: tuple[int, int]) -> list[int]:
    """The stored documents that fall in ``shard`` of the folders ``paths``."""
    key_roots = [Path(_key(p)) for p in paths]
    return [doc_id for doc_id, path in store.all_paths()
            if _under(Path(path), key_roots) and _in_share(path, key_roots, shard)]


def _in_share(key: str, key_roots: list[Path], shard: tuple[int, int] | None) -> bool:
    """Whether the file stored as ``key`` falls in ``shard`` of the folders ``key_roots`` (every
    file does when there is no shard)."""
    return shard is None or in_shard(key, _root_of(key, key_roots), shard)


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _key(path: Path | str) -> str:
    """The stored path of a file: absolute, symlinks not followed, and printable (a GBK file
    name becomes its Chinese text; the file itself is still opened by its real name)."""
    return printable_path(os.path.abspath(path))


def _path_problem(path: Path) -> str | None:
    """Why a path named for ingest cannot be walked at all, or None."""
    try:
        os.lstat(path)
        os.stat(path)  # a symlink that loops can be neither walked nor read
    except (FileNotFoundError, NotADirectoryError):
        return None if os.path.islink(path) else "路径不存在"  # a dangling link: the reader says so
    except OSError as exc:
        return os_reason(exc)
    return None


def _about(exc: OSError, path: Path) -> bool:
    """Whether an OS error concerns the file itself (not, say, a worker process that failed)."""
    return exc.filename is not None and os.path.abspath(os.fspath(exc.filename)) == os.path.abspath(path)


def _gone(path: str) -> bool:
    """Whether a stored document's file is known to be gone (not merely unreachable now)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except (OSError, ValueError):
        return False
    return False


@dataclass
class _OcrRun:
    """Where OCR of an ingest reports: the run's report, the bar, the app's callback."""

    report: IngestReport | None = None
    progress: bool = False
    on_progress: ProgressCallback | None = None


def ingest_file(store: Store, path: Path, roots: list[Path], config: Config,
                ocr_run: _OcrRun | None = None) -> FileOutcome:
    """Read, segment and store one file; never raises for a bad file."""
    key = _key(path)
    try:
        return _ingest_file(store, path, key, roots, config, ocr_run or _OcrRun())
    except ReadError as exc:
        return FileOutcome(key, "failed", exc.reason)
    except KnowledgeBaseError:
        raise
    except sqlite3.DatabaseError as exc:  # the store failed (disk full, damaged): stop, say why
        raise (kb_error_from(exc, store.kb_dir) or exc) from exc
    except OSError as exc:
        if _about(exc, path):  # e.g. no permission to open it, or it vanished after the walk
            return FileOutcome(key, "failed", os_reason(exc))
        err = kb_error_from(exc, store.kb_dir)
        if isinstance(err, DiskFullError):  # no later file can go in either
            raise err from exc
        log.exception("unexpected error while ingesting %s", key)
        return FileOutcome(key, "failed", f"处理时出错（{type(exc).__name__}: {exc}）")
    except Exception as exc:  # a bug or an unforeseen file: report it, keep going
        log.exception("unexpected error while ingesting %s", key)
        return FileOutcome(key, "failed", f"处理时出错（{type(exc).__name__}: {exc}）")


def _ingest_file(store: Store, path: Path, key: str, roots: list[Path], config: Config,
                 ocr_run: _OcrRun) -> FileOutcome:
    st = check_file(path, config.max_file_bytes)
    fhash = file_hash(path)
    existing = store.document_by_path(key)
    override = find_manifest_entry(path, roots)
    level = _wanted_access(store, path, config.access, override.get("access"))
    if existing and existing["file_hash"] == fhash and not (config.ocr and _left_for_ocr(existing)):
        # asked for another level: that is all that changes (the file's own front matter,
        # recorded when it was read, still counts: the stricter wins)
        level = _access.stricter(_ladder(store), level, _declared_access(store, existing)) if level else None
        if level and existing["access"] != level:
            store.set_document_access(existing["id"], level)
            return FileOutcome(key, "unchanged", f"访问级别改为{level}", existing["id"])
        return FileOutcome(key, "unchanged", doc_id=existing["id"])

    # Read, metadata and segmentation run in a worker under a deadline and a memory limit.
    try:
        parsed = sandbox.parse(path, override, config, name=Path(key), ocr={} if config.ocr else None)
    except OcrNeeded as need:
        if not config.ocr:
            raise ReadError(path, f"{need.reason}（本次导入关闭了文字识别）") from need
        pages = _recognise(store, path, fhash, need, config, ocr_run)
        parsed = sandbox.parse(path, override, config, name=Path(key), ocr=pages)
    rr = parsed.read
    # front matter may name the level too (access: 内部); the strictest level given wins
    declared = (parsed.meta.get("extra") or {}).pop("access", None)
    level = _wanted_access(store, path, level, declared)
    declared = declared.strip() if declared else None
    chash = content_hash(rr.text)
    if existing and existing["content_hash"] == chash:
        store.touch_document(existing["id"], fhash, st.st_mtime)
        extra = json.loads(existing["extra"] or "{}")
        old_extra = dict(extra)
        extra.pop(DECLARED_ACCESS, None)
        if declared:  # the front matter may have changed while the text did not
            extra[DECLARED_ACCESS] = declared
        relevelled = bool(level and existing["access"] != level)
        if relevelled:
            store.set_document_access(existing["id"], level)
        note = f"访问级别改为{level}" if relevelled else "内容未变（仅文件字节不同）"
        if config.ocr and _left_for_ocr(existing):  # its scanned pages gave no text: done with them
            extra.pop("ocr_skipped", None)
            note = "扫描页没有识别出文字"
        if extra != old_extra:
            store.update_document_extra(existing["id"], extra)
        return FileOutcome(key, "unchanged", note, existing["id"])
    twin = store.document_by_hash(chash)
    if twin and twin["path"] != key:
        # this path used to hold other text: that document goes in the same transaction
        store.add_alias(twin["id"], key, replaced_doc_id=existing["id"] if existing else None)
        twin_level = store.document_access([twin["id"]]).get(twin["id"])
        stricter = _access.stricter(_ladder(store), level, twin_level)
        if stricter and stricter != twin_level:  # one copy, readable only as the stricter path says
            store.set_document_access(twin["id"], stricter)
        return FileOutcome(key, "duplicate", f"与已入库的 {twin['path']} 内容相同，只保存一份", twin["id"])

    meta, passages, sentences = parsed.meta, parsed.passages, parsed.sentences
    if not passages:
        raise ReadError(path, "没有可检索的正文")
    extra = dict(meta.get("extra") or {})
    if declared:  # the level the file itself names (front matter): counted at later ingests too
        extra[DECLARED_ACCESS] = declared
    ocr_info = _ocr_info(rr.meta)
    if ocr_info:
        extra["ocr"] = ocr_info
    if rr.meta.get("ocr_skipped"):  # read with OCR off: recognised at the next ingest with it on
        extra["ocr_skipped"] = [int(p) for p in rr.meta["ocr_skipped"].split(",") if p.isdigit()]
    if rr.meta:
        extra.setdefault("source_meta", {k: v for k, v in rr.meta.items()
                                         if isinstance(v, str) and not k.startswith("ocr_")})
    doc = Document(
        path=key, title=meta.get("title") or Path(key).stem, text=rr.text, content_hash=chash,
        issuer=meta.get("issuer"), date=meta.get("date"), doc_number=meta.get("doc_number"),
        doc_number_masked=bool(meta.get("doc_number_masked")), doc_type=meta.get("doc_type"),
        pages=rr.pages, extra=extra, access=level,
    )
    file_info = {
        "file_hash": fhash, "format": rr.format, "encoding": rr.encoding,
        "size_bytes": st.st_size, "mtime": st.st_mtime, "root": _root_of(key, [Path(_key(r)) for r in roots]),
        # a name that is not UTF-8 is stored as its decoded text: keep its bytes to open it again
        "fs_path": os.fsencode(os.path.abspath(path)) if key != os.path.abspath(path) else None,
        "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    doc_id = store.save_document(doc, passages, sentences, file_info)
    status = "updated" if existing else "added"
    return FileOutcome(key, status, doc_id=doc_id, passages=len(passages), warnings=list(rr.warnings),
                       content_hash=chash)


def _recognise(store: Store, path: Path, file_hash: str, need: OcrNeeded, config: Config,
               run: _OcrRun) -> dict[int, OcrPage]:
    """The pages ``need`` names, recognised by OCR one at a time in the bounded OCR worker, each
    kept in the knowledge base as soon as it is done (an interrupted ingest resumes at the next
    page); pages kept by an earlier run are not recognised again."""
    if len(need.pages) > config.ocr_max_pages:
        raise ReadError(path, f"需要文字识别的页数过多（{len(need.pages)} 页，上限 {config.ocr_max_pages} 页，"
                              f"约需 {len(need.pages) * 5 // 60} 分钟）；请拆分成较小的文件后再导入")
    why = ocr.available()
    if why:
        raise ReadError(path, why)
    engine = ocr.engine_id()
    pages: dict[int, OcrPage] = {}
    todo: list[int] = []
    for n in need.pages:
        cached = store.ocr_page(file_hash, n, engine)
        if cached is not None:
            pages[n] = cached
        else:
            todo.append(n)
    if run.report is not None:
        run.report.ocr_pages_cached += len(pages)
    if not todo:
        return pages
    bar = _Progress("文字识别", "页", len(todo), run.progress, run.on_progress, leave=False)
    t0 = time.perf_counter()
    try:
        for n in todo:
            try:
                page = sandbox.recognise_page(path, n, config)
            except ReadError as exc:
                raise ReadError(path, f"第 {n} 页文字识别失败：{exc.reason}") from exc
            store.save_ocr_page(file_hash, page)
            pages[n] = page
            if run.report is not None:
                run.report.ocr_pages += 1
            bar.update()
    finally:
        bar.close()
        if run.report is not None:
            run.report.ocr_seconds += time.perf_counter() - t0
    return pages


def _ladder(store: Store) -> list[str]:
    return _access.parse_levels(store.get_meta(_access.LEVELS_META))


DECLARED_ACCESS = "declared_access"  # documents.extra key: the level the file's front matter names


def _declared_access(store: Store, row: dict[str, Any]) -> str | None:
    """The level a stored document's own front matter named, if it is still on the ladder."""
    try:
        declared = json.loads(row.get("extra") or "{}").get(DECLARED_ACCESS)
    except ValueError:
        return None
    return declared if declared in _ladder(store) else None


def _wanted_access(store: Store, path: Path, *given: str | None) -> str | None:
    """The strictest of the access levels given for a file (``--access``, the manifest's
    ``access`` column, front matter), None when none is; ReadError for a level the knowledge
    base does not have (the file is not stored rather than stored as 公开)."""
    ladder = _ladder(store)
    for level in given:
        if level and level.strip() not in ladder:
            raise ReadError(path, f"未知的访问级别「{level.strip()}」；本知识库的级别（由低到高）：{'、'.join(ladder)}")
    return _access.stricter(ladder, *[x.strip() for x in given if x])


def _left_for_ocr(row: dict[str, Any]) -> bool:
    """Whether a stored document was read with OCR off and has scanned pages left out."""
    try:
        return bool(json.loads(row.get("extra") or "{}").get("ocr_skipped"))
    except (ValueError, TypeError, AttributeError):
        return False


def _ocr_info(meta: dict[str, str]) -> dict[str, Any] | None:
    """A reader's notes on recognised pages as the document keeps them: the pages, each
    page's confidence and the engine (see :func:`ingest.readers.scanned.ocr_meta`)."""
    if not meta.get("ocr_pages"):
        return None
    pages = [int(p) for p in meta["ocr_pages"].split(",") if p.strip().isdigit()]
    conf: dict[str, float] = {}
    for item in (meta.get("ocr_confidence") or "").split(","):
        n, _, c = item.partition(":")
        if n.strip().isdigit() and c:
            conf[n.strip()] = round(float(c), 3)
    return {"pages": pages, "confidence": conf, "engine": meta.get("ocr_engine", "")}


def _root_of(key: str, roots: list[Path]) -> str:
    """The ingested folder that holds ``key`` (the nearest), else the file's own folder."""
    p = Path(key)
    best = max((r for r in roots if r != p and r in p.parents), key=lambda r: len(r.parts), default=None)
    return str(best if best is not None else p.parent)


def file_hash(path: Path) -> str:
    """The hash a file is known by (its bytes; unchanged files are skipped by it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


# -- stage 2: embed ---------------------------------------------------------------------
def _embed_stage(kb: KnowledgeBase, config: Config, report: IngestReport, progress: bool,
                 on_progress: ProgressCallback | None = None, only: Sequence[int] | None = None) -> None:
    """Embed the pending passages (of the documents ``only``, when given: a shard's)."""
    if only is not None and not only:
        return
    total = kb.store.count_pending(doc_ids=only)
    if total == 0:
        return
    emb = kb.claim_embedder()
    workers = max(1, int(config.embed_workers or 1))
    recipe = embed_workers.worker_recipe(emb) if workers > 1 else None
    if workers > 1 and recipe is None:
        msg = (f"向量模型 {emb.model_id} 无法在其他进程中加载（没有可按名称加载的模型名，"
               "也不能序列化），改为单进程向量化")
        log.warning(msg)
        if progress:
            tqdm.write(f"注意：{msg}", file=sys.stderr)
        workers = 1
    t0 = time.perf_counter()
    bar = _Progress("向量化", "段", total, progress, on_progress)
    done = [0]

    def saved(hashes: list[str], vecs: Any) -> None:
        kb.store.save_vectors(hashes, vecs)  # one committed batch: the resume point
        done[0] += len(hashes)
        bar.update(len(hashes))

    try:
        if recipe is not None:
            _embed_parallel(kb, config, emb, recipe, workers, saved, only)
        else:
            _embed_serial(kb, config, emb, saved, only)
    except YuanwenError as exc:  # a worker that died: the caller shows what went in before it
        if getattr(exc, "report", None) is None:
            exc.report = report  # type: ignore[attr-defined]
        raise
    finally:
        bar.close()
        report.passages_embedded += done[0]
        report.embed_seconds += time.perf_counter() - t0


def _embed_serial(kb: KnowledgeBase, config: Config, emb: Embedder,
                  saved: Callable[[list[str], Any], None], only: Sequence[int] | None = None) -> None:
    while True:
        batch = kb.store.pending_passages(limit=config.embed_batch_size * 8, doc_ids=only)
        if not batch:
            break
        for i in range(0, len(batch), config.embed_batch_size):
            chunk = batch[i : i + config.embed_batch_size]
            saved([h for h, _ in chunk], emb.encode_passages([t for _, t in chunk]))


def _embed_parallel(kb: KnowledgeBase, config: Config, emb: Embedder,
                    recipe: embed_workers.WorkerRecipe, workers: int,
                    saved: Callable[[list[str], Any], None], only: Sequence[int] | None = None) -> None:
    """Embed pending passages in ``workers`` processes: this process reads chunks of pending
    passages, keeps every worker busy with one, and commits each chunk's vectors as it comes
    back (in whatever order the workers finish). Passages in flight are not handed out twice."""
    size = config.embed_batch_size
    queued: list[list[tuple[str, str]]] = []  # read, not yet handed to a worker
    in_flight: dict[int, list[tuple[str, str]]] = {}
    taken: set[str] = set()  # hashes queued or in flight
    seq = 0
    exhausted = False
    with embed_workers.EmbedPool(recipe, workers, emb.model_id) as pool:
        while True:
            if not queued and not exhausted and pool.idle():
                # the oldest pending passages, less those already taken: at most len(taken)
                # of the first rows are taken (they are the oldest unsaved ones)
                rows = kb.store.pending_passages(limit=len(taken) + size * 4 * workers, doc_ids=only)
                fresh = [r for r in rows if r[0] not in taken]
                exhausted = not fresh
                queued = [fresh[i : i + size] for i in range(0, len(fresh), size)]
                taken.update(h for h, _ in fresh)
            while queued and pool.idle():
                chunk = queued.pop(0)
                pool.submit(seq, [t for _, t in chunk])
                in_flight[seq] = chunk
                seq += 1
            if not in_flight:
                break
            got, vecs = pool.next_result()
            chunk = in_flight.pop(got)
            hashes = [h for h, _ in chunk]
            saved(hashes, vecs)
            taken.difference_update(hashes)


def embed_pending(config: Config | None = None, embedder: str | Embedder | None = None,
                  progress: bool = True) -> IngestReport:
    """Embed whatever is stored but not yet embedded (e.g. after an interrupted ingest)."""
    return ingest([], config=config, embedder=embedder, progress=progress)

