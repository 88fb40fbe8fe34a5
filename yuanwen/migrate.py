"""Copy a knowledge base into another backend without embedding anything again.

``yuanwen migrate SRC DST`` (:func:`migrate`) reads SRC through the storage interfaces of
:mod:`yuanwen.backend` and writes DST through them, so it works between any two backends, in
either direction (SQLite to Milvus, Milvus to SQLite, SQLite to SQLite). What it copies:

- the meta that says how the knowledge base was built: the embedder, its dimension, the
  access ladder;
- documents with their ids, passages with their ids, offsets, heading paths and pages, and
  sentences (``save_document(..., keep_ids=True)``): saved packs and links name passage ids,
  and stay valid;
- the vectors (by passage-text hash, as the embedding cache holds them): nothing is embedded;
- recognised pages (OCR), accounts (password hashes as stored), the audit log (when DST has
  none yet), and the files of the folder: saved packs (``packs/``, ``accounts/<name>/packs``).

It is resumable: a document whose id DST holds already is skipped, and the vectors resume from
a checkpoint kept in DST's meta (``migrate_vectors``), so a run that is killed and started again
finishes the copy. DST must be empty, or hold only what an earlier run of the same migration
copied (``migrate_source`` in its meta names SRC's ``kb_id``); a DST built with another
embedder is refused. DST's indexes are brought in step at the end (for SQLite: the eager
keyword index and the FAISS file), so ``yuanwen verify`` passes and searches give the same
results.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from .backend import DESCRIPTOR, Backend, DocumentStore, open_backend
from .config import Config
from .embed import same_model
from .errors import EmbedderMismatchError, KnowledgeBaseError, UsageError
from .models import AuditEntry, Document, MigrateReport
from .store import DB_NAME, INGEST_LOCK, copy_audit_log

SOURCE_KEY = "migrate_source"  # DST meta: the kb_id of the knowledge base it is a copy of
VECTORS_KEY = "migrate_vectors"  # DST meta: how many of SRC's vectors are copied (the checkpoint)
DONE_KEY = "migrated_from"  # DST meta, once finished: where it came from and when
COPIED_META = ("embedder", "dim", "access_levels")  # meta keys copied as they are
FOLDERS = ("packs", "accounts")  # the folder's files that go along (saved packs)
BATCH_PASSAGES = 2000  # documents are written in transactions of about this many passages
VECTOR_BATCH = 2000

ProgressCallback = Callable[[str, int, int], None]
STAGE_DOCUMENTS = "复制文档"
STAGE_VECTORS = "复制向量"


def migrate(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, progress: bool = False,
            on_progress: ProgressCallback | None = None, config: Config | None = None) -> MigrateReport:
    """Copy the knowledge base in ``src`` into ``dst`` (see the module's docstring).

    ``dst`` is a folder made by ``yuanwen init`` (any backend), or absent or empty (then a
    SQLite knowledge base is made there). ``progress`` draws bars on the terminal;
    ``on_progress(stage, done, total)`` is called as work advances. ``config`` gives settings
    for the indexes (its ``kb_dir`` is ignored).
    """
    src_dir, dst_dir = Path(src), Path(dst)
    if not (src_dir / DB_NAME).exists() and not (src_dir / DESCRIPTOR).exists():
        raise KnowledgeBaseError(f"要迁移的知识库不存在：{src_dir}")
    if dst_dir.exists() and src_dir.resolve() == dst_dir.resolve():
        raise UsageError("迁移的源和目标是同一个知识库文件夹；请给目标另选一个文件夹")
    base = config or Config()
    started = time.perf_counter()
    with ExitStack() as stack:
        stack.enter_context(_writer_lock(src_dir))
        source = open_backend(src_dir, _config(base, src_dir), readonly=True)
        stack.callback(source.close)
        if dst_dir.exists() and any(dst_dir.iterdir()) and not _is_kb(dst_dir):
            raise UsageError(f"目标文件夹 {dst_dir} 不是空的，也不是知识库；请指定一个新文件夹，"
                             "或先用 yuanwen init 在那里建立知识库")
        dst_dir.mkdir(parents=True, exist_ok=True)
        stack.enter_context(_writer_lock(dst_dir))
        target = open_backend(dst_dir, _config(base, dst_dir), create=True)
        stack.callback(target.close)
        s, d = source.store, target.store
        report = MigrateReport(source=str(src_dir), target=str(dst_dir), source_backend=source.name,
                               target_backend=target.name, embedder=s.get_meta("embedder"))
        _check_target(s, d, src_dir, dst_dir)
        _copy_meta(s, d)
        report.files += int(copy_audit_log(src_dir, dst_dir))
        report.accounts = _copy_accounts(s, d, src_dir)
        _copy_documents(s, d, report, _Bars(progress, on_progress))
        _copy_vectors(s, d, report, _Bars(progress, on_progress))
        report.ocr_pages = _copy_ocr_pages(s, d)
        report.files += _copy_files(src_dir, dst_dir)
        _sync(target)
        with d.transaction():
            d.set_meta(DONE_KEY, f"{source.name}:{src_dir.resolve()}")
    report.seconds = time.perf_counter() - started
    return report


def _config(base: Config, kb_dir: Path) -> Config:
    import dataclasses

    return dataclasses.replace(base, kb_dir=kb_dir)


def _is_kb(kb_dir: Path) -> bool:
    return (kb_dir / DB_NAME).exists() or (kb_dir / DESCRIPTOR).exists()


@contextmanager
def _writer_lock(kb_dir: Path) -> Iterator[None]:
    """Hold the knowledge base's writer lock (ingests take turns with it), when its folder can
    be written: SRC is read while no ingest changes it, DST written while no other writer does."""
    if not kb_dir.is_dir() or not os.access(kb_dir, os.W_OK):
        yield  # a read-only source (a copy on a read-only medium): nobody writes it
        return
    lock = FileLock(str(kb_dir / INGEST_LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise KnowledgeBaseError(f"另一个导入或迁移任务正在写入知识库 {kb_dir}，请等它结束后再试") from None
    try:
        yield
    finally:
        lock.release()


def _check_target(s: DocumentStore, d: DocumentStore, src_dir: Path, dst_dir: Path) -> None:
    """Refuse a DST that holds documents other than an earlier run of this migration copied,
    or vectors of another embedder."""
    mine, theirs = s.get_meta("embedder"), d.get_meta("embedder")
    if mine and theirs and not same_model(mine, theirs):
        raise EmbedderMismatchError(
            f"目标知识库 {dst_dir} 使用向量模型 {theirs}，源知识库 {src_dir} 的向量由 {mine} 生成；"
            "迁移不重新向量化，请换一个空的目标文件夹")
    counts = d.counts()
    if not counts["documents"] and not counts["embedded"]:
        with d.transaction():
            d.set_meta(SOURCE_KEY, s.kb_id)
        return
    if d.get_meta(SOURCE_KEY) != s.kb_id:
        raise KnowledgeBaseError(
            f"目标知识库 {dst_dir} 已有 {counts['documents']} 篇文档，不是从 {src_dir} 迁移来的；"
            "迁移只能写入空的知识库（或续完同一次迁移），请换一个目标文件夹")


def _copy_meta(s: DocumentStore, d: DocumentStore) -> None:
    with d.transaction():
        for key in COPIED_META:
            value = s.get_meta(key)
            if value is not None and d.get_meta(key) is None:
                d.set_meta(key, value)


def _copy_accounts(s: Any, d: Any, src_dir: Path) -> int:
    """Accounts that DST lacks, as they are (role, clearance, password hash, last login); each
    one recorded in DST's audit log."""
    n = 0
    for account in s.accounts():
        if d.account(account.name) is not None:
            continue
        found = s.account(account.name)
        if found is None:
            continue
        acc, pw_hash = found
        entry = AuditEntry(ts=_now(), account="system", client="yuanwen migrate", action="account_add",
                           target=acc.name, detail={"migrated_from": str(src_dir), "role": acc.role,
                                                    "clearance": acc.clearance})
        d.save_account(acc, pw_hash, entry, new=True)
        n += 1
    return n


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Bars:
    """Progress bars on the terminal (tqdm) and/or a callback, one stage at a time."""

    def __init__(self, progress: bool, on_progress: ProgressCallback | None) -> None:
        self.progress, self.on_progress = progress, on_progress
        self.bar: Any = None
        self.stage, self.done, self.total = "", 0, 0

    def start(self, stage: str, total: int, unit: str, done: int = 0) -> None:
        self.stage, self.done, self.total = stage, done, total
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=stage, unit=unit, dynamic_ncols=True)
        if self.on_progress:
            self.on_progress(stage, done, total)

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.on_progress:
            self.on_progress(self.stage, self.done, self.total)

    def close(self) -> None:
        """The stage is over: a total that was an estimate becomes what was done."""
        if self.done != self.total:
            self.total = self.done
            if self.bar is not None:
                self.bar.total = self.done
                self.bar.refresh()
            if self.on_progress:
                self.on_progress(self.stage, self.done, self.total)
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _copy_documents(s: DocumentStore, d: DocumentStore, report: MigrateReport, bars: _Bars) -> None:
    """Every document of SRC that DST lacks, with its passages and sentences, ids kept; in
    transactions of about :data:`BATCH_PASSAGES` passages (a kill loses at most the open one)."""
    have = dict(d.all_paths())
    todo: list[int] = []
    for doc_id, path in sorted(s.all_paths()):
        if doc_id in have:
            if have[doc_id] != path:
                raise KnowledgeBaseError(
                    f"目标知识库中编号 {doc_id} 的文档（{have[doc_id]}）与源知识库的（{path}）不同；"
                    "迁移无法续完，请换一个空的目标文件夹")
            report.documents_skipped += 1
        else:
            todo.append(doc_id)
    total = s.counts()["passages"]
    skipped = d.counts()["passages"]  # those of the documents an earlier run copied
    bars.start(STAGE_DOCUMENTS, total, "段", done=skipped)
    try:
        batch: list[tuple[Document, list[Any], list[Any], dict[str, Any]]] = []
        size = 0
        for doc_id in todo:
            with s.snapshot():
                doc = s.get_document(doc_id, with_text=True)
                passages = s.document_passages(doc_id)
                sentences = s.document_sentences(doc_id)  # type: ignore[attr-defined]
                info = s.file_info(doc_id)  # type: ignore[attr-defined]
            batch.append((doc, passages, sentences, info))
            size += len(passages)
            if size >= BATCH_PASSAGES:
                _write(d, batch, report, bars)
                batch, size = [], 0
        if batch:
            _write(d, batch, report, bars)
    finally:
        bars.close()


def _write(d: DocumentStore, batch: list[tuple[Document, list[Any], list[Any], dict[str, Any]]],
           report: MigrateReport, bars: _Bars) -> None:
    with d.transaction():
        for doc, passages, sentences, info in batch:
            d.save_document(doc, passages, sentences, info, keep_ids=True)  # type: ignore[attr-defined]
    for _doc, passages, sentences, _info in batch:
        report.documents += 1
        report.passages += len(passages)
        report.sentences += len(sentences)
    bars.advance(sum(len(b[1]) for b in batch))


def _copy_vectors(s: DocumentStore, d: DocumentStore, report: MigrateReport, bars: _Bars) -> None:
    """SRC's vectors, by passage-text hash, from the checkpoint on (each batch and the
    checkpoint committed together where DST has transactions). The checkpoint is "how many,
    the last hash": when SRC changed since (the hash at that place differs), or DST's embedded
    passages do not add up at the end, every vector is copied again (saving one is idempotent)."""
    dim = s.get_meta("dim")
    if not dim or not s.get_meta("embedder"):
        return  # nothing embedded (a keyword-only knowledge base)
    width = int(dim) * 4
    count, _, last = (d.get_meta(VECTORS_KEY) or "0:").partition(":")
    done = int(count or 0)
    total = _vector_total(s)
    for again in (False, True):
        bars.start(STAGE_VECTORS, total, "个", done=min(done, total))
        seen = skipped = 0
        try:
            for hashes, blobs in s.iter_vectors(VECTOR_BATCH):  # type: ignore[attr-defined]
                n = len(hashes)
                start = min(n, max(0, done - seen))  # how many of this batch were copied before
                if start and seen + start == done and hashes[start - 1] != last:
                    start = done = 0  # SRC changed since the checkpoint: from here on, all again
                seen += n
                skipped += start
                if start == n:
                    continue
                keep = [(h, b) for h, b in zip(hashes[start:], blobs[start:]) if len(b) == width]
                with d.transaction():
                    if keep:
                        vecs = np.frombuffer(b"".join(b for _, b in keep), dtype=np.float32).reshape(len(keep), -1)
                        d.save_vectors([h for h, _ in keep], vecs)
                    d.set_meta(VECTORS_KEY, f"{seen}:{hashes[-1]}")
                report.vectors += len(keep)
                bars.advance(n - start)
        finally:
            bars.close()
        report.vectors_skipped = skipped
        if again or d.counts()["embedded"] == s.counts()["embedded"]:
            return
        done, last = 0, ""  # they do not add up: copy them all once more


def _vector_total(s: DocumentStore) -> int:
    counted = getattr(s, "count_vectors", None)
    if counted is not None:
        return int(counted())
    return int(s.counts()["embedded"])


def _copy_ocr_pages(s: Any, d: Any) -> int:
    """Recognised pages DST lacks (where SRC can list them)."""
    pages = getattr(s, "ocr_pages", None)
    if pages is None:
        return 0
    n = 0
    for file_hash, page in pages():
        if d.ocr_page(file_hash, page.page, page.engine) is None:
            d.save_ocr_page(file_hash, page)
            n += 1
    return n


def _copy_files(src_dir: Path, dst_dir: Path) -> int:
    """The saved packs (``packs/``, ``accounts/<name>/packs/``) that DST lacks; lock files and
    temporary files stay behind."""
    n = 0
    for folder in FOLDERS:
        root = src_dir / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name.startswith(".") or path.name.endswith(".tmp"):
                continue
            target = dst_dir / path.relative_to(src_dir)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            shutil.copy2(path, tmp)
            os.replace(tmp, target)
            n += 1
    return n


def _sync(target: Backend) -> None:
    """DST's indexes in step with what was copied (SQLite: keyword index and FAISS file)."""
    target.sync_keyword()
    target.sync_vectors()

