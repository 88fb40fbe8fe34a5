"""The ingest pipeline: files -> stored, segmented, keyword-indexed documents -> vectors -> FAISS.

Stage 1 (seconds) reads, segments and stores each file in its own transaction, with the FTS
rows, so everything is keyword-searchable at once. Stage 2 embeds pending passages in batches,
committing each batch, so an interrupted embedding resumes where it stopped. Stage 3 rebuilds
the FAISS file from the stored vectors. Only one ingest writes to a knowledge base at a time.
"""

from __future__ import annotations

import hashlib
import os
import sys
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout
from tqdm import tqdm

from yuanwen.config import Config
from yuanwen.embed import Embedder
from yuanwen.errors import KnowledgeBaseError, ReadError
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, FileOutcome, IngestReport
from yuanwen.store import Store, content_hash

from .metadata import apply_overrides, extract_metadata, find_manifest_entry
from .read import check_file, iter_files, read_file
from .segment import segment

log = logging.getLogger(__name__)

LOCK_NAME = "ingest.lock"
ProgressFactory = Callable[..., tqdm]


def ingest_lock(kb_dir: Path, wait: float = 0) -> FileLock:
    """The lock that makes ingests into one knowledge base take turns."""
    Path(kb_dir).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(kb_dir) / LOCK_NAME), timeout=wait)


def ingest(
    paths: Sequence[Path | str],
    config: Config | None = None,
    embedder: str | Embedder | None = None,
    prune: bool = False,
    reembed: bool = False,
    embed: bool = True,
    progress: bool = True,
    wait: float = 0,
) -> IngestReport:
    """Ingest files and folders (recursively) into the knowledge base of ``config``.

    Unchanged files are skipped by hash, changed ones replaced, identical texts stored once;
    with ``prune``, documents whose files are gone (under ``paths``) are dropped. A file that
    cannot be read is reported in the returned report and the others go on.
    """
    config = config or Config()
    lock = ingest_lock(config.kb_dir, wait)
    try:
        lock.acquire()
    except Timeout:
        raise KnowledgeBaseError(
            f"另一个导入任务正在写入知识库 {config.kb_dir}，请等它结束后再试"
        ) from None
    try:
        kb = KnowledgeBase(config, embedder=None if reembed else embedder, create=True)
        try:
            if reembed:
                kb.store.drop_vectors()
                kb.store.set_meta("embedder", None)
                kb.store.set_meta("dim", None)
                kb = _reopen(kb, config, embedder)
            report = IngestReport()
            _store_stage(kb.store, [Path(p) for p in paths], config, report, prune, progress)
            if embed:
                _embed_stage(kb, config, report, progress)
            t0 = time.perf_counter()
            kb.keyword_index(save=True)  # rebuilt and saved only when stale
            t1 = time.perf_counter()
            kb.vector_index(save=True)  # caught up (or rebuilt) and saved only when stale
            report.keyword_index_seconds, report.vector_index_seconds = t1 - t0, time.perf_counter() - t1
            return report
        finally:
            kb.close()
    finally:
        lock.release()


def _reopen(kb: KnowledgeBase, config: Config, embedder: str | Embedder | None) -> KnowledgeBase:
    kb.close()
    return KnowledgeBase(config, embedder=embedder, create=True)


# -- stage 1: read, segment, store ---------------------------------------------------------
def _store_stage(store: Store, paths: list[Path], config: Config, report: IngestReport,
                 prune: bool, progress: bool) -> None:
    t0 = time.perf_counter()
    roots = [Path(os.path.abspath(p)) for p in paths]
    for p in paths:
        if not p.exists():
            report.outcomes.append(FileOutcome(str(p), "failed", "路径不存在"))
    files = list(iter_files([p for p in paths if p.exists()]))
    seen: set[str] = set()
    bar = tqdm(files, desc="读取入库", unit="文件", disable=not progress, dynamic_ncols=True)
    for f in bar:
        outcome = ingest_file(store, f, roots, config)
        seen.add(outcome.path)
        report.outcomes.append(outcome)
        report.passages_stored += outcome.passages
        if outcome.status == "failed" and progress:
            bar.write(f"失败 {outcome.path}：{outcome.reason}", file=sys.stderr)
    if prune:
        for doc_id, path in store.all_paths():
            if path in seen or not _under(Path(path), roots):
                continue
            if not Path(path).exists():
                store.delete_document(doc_id)
                report.outcomes.append(FileOutcome(path, "pruned", "文件已不存在", doc_id))
        store.prune_orphan_vectors()
    report.store_seconds = time.perf_counter() - t0


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def ingest_file(store: Store, path: Path, roots: list[Path], config: Config) -> FileOutcome:
    """Read, segment and store one file; never raises for a bad file."""
    key = os.path.abspath(path)  # absolute, without following symlinks
    try:
        return _ingest_file(store, path, key, roots, config)
    except ReadError as exc:
        return FileOutcome(key, "failed", exc.reason)
    except KnowledgeBaseError:
        raise
    except Exception as exc:  # a bug or an unforeseen file: report it, keep going
        log.exception("unexpected error while ingesting %s", path)
        return FileOutcome(key, "failed", f"处理时出错（{type(exc).__name__}: {exc}）")


def _ingest_file(store: Store, path: Path, key: str, roots: list[Path], config: Config) -> FileOutcome:
    st = check_file(path, config.max_file_bytes)
    file_hash = _file_hash(path)
    existing = store.document_by_path(key)
    if existing and existing["file_hash"] == file_hash:
        return FileOutcome(key, "unchanged", doc_id=existing["id"])

    rr = read_file(path, max_bytes=config.max_file_bytes, max_chars=config.max_text_chars)
    chash = content_hash(rr.text)
    if existing and existing["content_hash"] == chash:
        with store.db.conn:
            store.db.execute(
                "UPDATE documents SET file_hash = ?, mtime = ? WHERE id = ?",
                [file_hash, st.st_mtime, existing["id"]],
            )
        return FileOutcome(key, "unchanged", "内容未变（仅文件字节不同）", existing["id"])
    twin = store.document_by_hash(chash)
    if twin and twin["path"] != key:
        _record_alias(store, twin["id"], key)
        if existing:  # this path used to hold other text: that document is gone now
            store.delete_document(existing["id"])
        return FileOutcome(key, "duplicate", f"与已入库的 {twin['path']} 内容相同，只保存一份", twin["id"])

    meta = extract_metadata(rr.text, path, hints=rr.meta)
    meta = apply_overrides(meta, find_manifest_entry(path, roots))
    passages, sentences = segment(
        rr.text, headings=rr.headings, pages=rr.pages, body_end=meta.get("body_end"),
        target_chars=config.passage_target_chars, max_chars=config.passage_max_chars,
    )
    if not passages:
        raise ReadError(path, "没有可检索的正文")
    extra = dict(meta.get("extra") or {})
    if rr.meta:
        extra.setdefault("source_meta", {k: v for k, v in rr.meta.items() if isinstance(v, str)})
    doc = Document(
        path=key, title=meta.get("title") or path.stem, text=rr.text, content_hash=chash,
        issuer=meta.get("issuer"), date=meta.get("date"), doc_number=meta.get("doc_number"),
        doc_number_masked=bool(meta.get("doc_number_masked")), doc_type=meta.get("doc_type"),
        pages=rr.pages, extra=extra,
    )
    file_info = {
        "file_hash": file_hash, "format": rr.format, "encoding": rr.encoding,
        "size_bytes": st.st_size, "mtime": st.st_mtime,
        "ingested_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    doc_id = store.save_document(doc, passages, sentences, file_info)
    status = "updated" if existing else "added"
    return FileOutcome(key, status, doc_id=doc_id, passages=len(passages))


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


def _record_alias(store: Store, doc_id: int, alias: str) -> None:
    row = store.db.execute("SELECT extra FROM documents WHERE id = ?", [doc_id]).fetchone()
    extra = json.loads(row[0] or "{}") if row else {}
    aliases = extra.setdefault("aliases", [])
    if alias not in aliases:
        aliases.append(alias)
        store.update_document_extra(doc_id, extra)


# -- stage 2: embed ---------------------------------------------------------------------
def _embed_stage(kb: KnowledgeBase, config: Config, report: IngestReport, progress: bool) -> None:
    total = kb.store.count_pending()
    if total == 0:
        return
    emb = kb.claim_embedder()
    t0 = time.perf_counter()
    done = 0
    bar = tqdm(total=total, desc="向量化", unit="段", disable=not progress, dynamic_ncols=True)
    try:
        while True:
            batch = kb.store.pending_passages(limit=config.embed_batch_size * 8)
            if not batch:
                break
            for i in range(0, len(batch), config.embed_batch_size):
                chunk = batch[i : i + config.embed_batch_size]
                vecs = emb.encode_passages([t for _, t in chunk])
                kb.store.save_vectors([h for h, _ in chunk], vecs)
                done += len(chunk)
                bar.update(len(chunk))
    finally:
        bar.close()
        report.passages_embedded += done
        report.embed_seconds += time.perf_counter() - t0


def embed_pending(config: Config | None = None, embedder: str | Embedder | None = None,
                  progress: bool = True) -> IngestReport:
    """Embed whatever is stored but not yet embedded (e.g. after an interrupted ingest)."""
    return ingest([], config=config, embedder=embedder, progress=progress)

