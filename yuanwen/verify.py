"""Check a knowledge base and repair what can be repaired (``yuanwen verify [--repair]``).

Checks: SQLite integrity and schema version; every passage is a verbatim slice of its
document and every document's text matches its hash; no orphan passages or sentences; the
FTS table holds exactly one row per passage; stored vectors have the recorded
dimension; the FAISS file holds exactly the embedded passage ids; the eager keyword index
matches the passages (when it does not, searches use FTS5: a note, not a problem). Repairs: orphans deleted,
FTS rows rebuilt, bad vectors dropped (they become pending), the FAISS file rebuilt from the
stored vectors, the keyword index rebuilt. A passage that does not match its document can only be fixed by ingesting
that file again, which the report says.
"""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np

from .config import Config
from .index import INDEX_FILE, INDEX_META, read_meta
from .kb import KnowledgeBase
from .models import VerifyReport
from .store import SCHEMA_VERSION, content_hash
from .text import fts_document


def verify(config: Config, repair: bool = False) -> VerifyReport:
    """Check the knowledge base of ``config``; with ``repair``, fix what can be fixed."""
    rep = VerifyReport()
    kb = KnowledgeBase(config, readonly=not repair)
    try:
        _check_sqlite(kb, rep)
        _check_documents(kb, rep)
        _check_orphans(kb, rep, repair)
        _check_fts(kb, rep, repair)
        _check_vectors(kb, rep, repair)
        _check_faiss(kb, rep, repair)
        _check_keyword(kb, rep, repair)
    finally:
        kb.close()
    return rep


def _check_sqlite(kb: KnowledgeBase, rep: VerifyReport) -> None:
    result = kb.store.db.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        rep.problems.append(f"SQLite 数据库损坏：{result}。请从备份恢复，或删除知识库后重新导入")
    v = kb.store.schema_version()
    if v != SCHEMA_VERSION:
        rep.problems.append(f"格式版本为 {v}，应为 {SCHEMA_VERSION}")


def _check_documents(kb: KnowledgeBase, rep: VerifyReport) -> None:
    db = kb.store.db
    bad_hash, bad_slices = [], []
    for doc_id, path, text, chash in db.execute("SELECT id, path, text, content_hash FROM documents"):
        if content_hash(text or "") != chash:
            bad_hash.append(path)
        for pid, start, end, ptext in db.execute(
            'SELECT id, start, "end", text FROM passages WHERE doc_id = ?', [doc_id]
        ):
            if text[start:end] != ptext:
                bad_slices.append(path)
                break
    for path in bad_hash:
        rep.problems.append(f"文档正文与其校验值不符：{path}。请重新导入该文件")
    for path in bad_slices:
        rep.problems.append(f"段落与文档正文对不上：{path}。请重新导入该文件")


def _check_orphans(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    db = kb.store.db
    n_p = db.execute(
        "SELECT COUNT(*) FROM passages WHERE doc_id NOT IN (SELECT id FROM documents)").fetchone()[0]
    n_s = db.execute(
        "SELECT COUNT(*) FROM sentences WHERE passage_id NOT IN (SELECT id FROM passages)").fetchone()[0]
    if not (n_p or n_s):
        return
    msg = f"有 {n_p} 个段落、{n_s} 个句子不属于任何文档"
    if repair:
        with db.conn:
            db.execute("DELETE FROM passages WHERE doc_id NOT IN (SELECT id FROM documents)")
            db.execute("DELETE FROM sentences WHERE passage_id NOT IN (SELECT id FROM passages)")
        rep.repaired.append(msg + "：已删除")
    else:
        rep.problems.append(msg)


def _fts_mismatch(kb: KnowledgeBase, table: str, fts: str) -> tuple[int, int]:
    db = kb.store.db
    missing = db.execute(f"SELECT COUNT(*) FROM {table} WHERE id NOT IN (SELECT rowid FROM {fts})").fetchone()[0]
    extra = db.execute(f"SELECT COUNT(*) FROM {fts} WHERE rowid NOT IN (SELECT id FROM {table})").fetchone()[0]
    return missing, extra


def _check_fts(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    missing, extra = _fts_mismatch(kb, "passages", "passages_fts")
    if not (missing or extra):
        return
    msg = f"关键词索引与段落不同步（缺 {missing} 条，多 {extra} 条）"
    if repair:
        _rebuild_fts(kb)
        rep.repaired.append(msg + "：已重建")
    else:
        rep.problems.append(msg)


def _rebuild_fts(kb: KnowledgeBase) -> None:
    db = kb.store.db
    with db.conn:
        db.execute("DELETE FROM passages_fts")
        rows = db.execute(
            "SELECT p.id, p.text, p.heading_path, d.title FROM passages p "
            "JOIN documents d ON d.id = p.doc_id").fetchall()
        db.conn.executemany(
            "INSERT INTO passages_fts(rowid, terms, heads, title) VALUES (?, ?, ?, ?)",
            [(pid, fts_document(t), fts_document(" ".join(json.loads(h))), fts_document(title or ""))
             for pid, t, h, title in rows])


def _check_vectors(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    db = kb.store.db
    dim = kb.dim
    counts = kb.store.counts()
    pending = counts["passages"] - counts["embedded"]
    if pending:
        rep.notes.append(f"有 {pending} 个段落尚未向量化（可关键词检索）；运行 yuanwen ingest 可补齐")
    if dim is None:
        if counts["embedded"]:
            rep.problems.append("知识库有向量但没有记录向量模型和维度")
        return
    bad = db.execute("SELECT COUNT(*) FROM embeddings WHERE length(vector) != ?", [dim * 4]).fetchone()[0]
    if bad:
        msg = f"{bad} 个向量的维度不是 {dim}"
        if repair:
            with db.conn:
                db.execute("DELETE FROM embeddings WHERE length(vector) != ?", [dim * 4])
            rep.repaired.append(msg + "：已删除，这些段落将在下次导入时重新向量化")
        else:
            rep.problems.append(msg)


def _check_faiss(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    if kb.dim is None or kb.built_with is None:
        return
    problem = _faiss_problem(kb)
    if problem is None:
        return
    if repair:
        kb.rebuild_index()
        rep.repaired.append(problem + "：已按数据库中的向量重建")
    else:
        rep.problems.append(problem + "（搜索时会在内存中临时重建；用 --repair 修复）")


def _faiss_problem(kb: KnowledgeBase) -> str | None:
    kb_dir = Path(kb.kb_dir)
    state = kb.store.embedded_state()
    if not (kb_dir / INDEX_FILE).exists() or not (kb_dir / INDEX_META).exists():
        return "向量索引文件缺失" if state["count"] else None
    meta = read_meta(kb_dir)
    try:
        index = faiss.read_index(str(kb_dir / INDEX_FILE))
    except (RuntimeError, OSError):
        meta = None
    if meta is None:
        return "向量索引文件已损坏"
    if meta.get("state") != state or index.ntotal != state["count"]:
        return f"向量索引与数据库不一致（索引 {index.ntotal} 条，数据库 {state['count']} 条）"
    ids = np.sort(faiss.vector_to_array(index.id_map)) if hasattr(index, "id_map") else None
    if ids is None or not np.array_equal(ids, kb.store.embedded_ids()):
        return "向量索引中的编号与数据库段落编号不一致"
    return None


def _check_keyword(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    if kb.store.passages_state()["count"] == 0 or kb.keyword_index() is not None:
        return
    msg = "关键词加速索引缺失或与段落不一致（检索会改用 SQLite 全文索引，结果相同，只是较慢）"
    if repair:
        kb.keyword_index(save=True)
        rep.repaired.append(msg + "：已重建")
    else:
        rep.notes.append(msg + "；运行 yuanwen ingest 或 yuanwen verify --repair 可重建")
