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

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

from .config import Config
from .errors import DamagedKnowledgeBaseError, damaged_message, kb_error_from
from .index import INDEX_FILE, INDEX_META, VECTORS_IN_SQLITE, read_meta
from .kb import KnowledgeBase
from .models import FileOutcome, VerifyReport
from .store import SCHEMA_VERSION, DamagedDocument, Store, content_hash, file_of


#: Re-reads one document's file into the store (``ingest.pipeline.ingest_file`` bound to a
#: config): given the store, the stored path and the folder it was ingested from, it returns
#: the file's outcome. The core cannot import ``ingest``; the repair entry point passes it.
Reread = Callable[[Store, str, "str | None"], FileOutcome]

#: How far a stored vector's length may be from 1 (vectors are stored L2-normalised).
NORM_TOLERANCE = 1e-3


def verify(config: Config, repair: bool = False, reread: Reread | None = None) -> VerifyReport:
    """Check the knowledge base of ``config``; with ``repair``, fix what can be fixed.

    A damaged document (no passages, passages without sentences, damaged text) is read again
    by a repair from its file, through ``reread``; one that cannot be read again is kept as it
    is, unless it holds no passage at all (then it is removed).
    """
    rep = VerifyReport()
    try:
        kb = KnowledgeBase(config, readonly=not repair)
    except DamagedKnowledgeBaseError as exc:  # e.g. a damaged header: the file does not open
        rep.problems.append(str(exc))
        return rep
    try:
        if kb.backend.name == "milvus":
            _verify_milvus(kb, rep, repair, reread)
            return rep
        if not _check_sqlite(kb, rep):
            return rep  # damaged pages: the other checks could not read it, nor a repair fix it
        _check_documents(kb, rep, repair, reread)
        _check_orphans(kb, rep, repair)
        _check_vectors(kb, rep, repair)
        _check_vector_values(kb, rep, repair)
        _check_faiss(kb, rep, repair)
        _check_keyword(kb, rep, repair)
    except sqlite3.DatabaseError as exc:  # damage that quick_check does not see (bad text)
        err = kb_error_from(exc, kb.kb_dir)
        if not isinstance(err, DamagedKnowledgeBaseError):
            raise (err or exc) from exc
        rep.problems.append(str(err))
    finally:
        kb.close()
    return rep


def _check_sqlite(kb: KnowledgeBase, rep: VerifyReport) -> bool:
    """SQLite's own check and the schema version; False when the database is damaged."""
    try:
        result = "; ".join(kb.store.quick_check()[:3])
    except sqlite3.DatabaseError as exc:
        result = str(exc)
    if result != "ok":
        rep.problems.append(damaged_message(kb.kb_dir, f"SQLite 检查结果：{result[:300]}"))
        return False
    v = kb.store.schema_version()
    if v != SCHEMA_VERSION:
        rep.problems.append(f"格式版本为 {v}，应为 {SCHEMA_VERSION}")
    return True


def _damaged_text(kb: KnowledgeBase) -> list[DamagedDocument]:
    """Documents whose stored text is damaged: not UTF-8, not matching its hash, or not
    holding its passages verbatim (a passage is the text between its offsets, which must still
    hash as the passage did when it was stored)."""
    out = []
    # read as bytes: damaged text (invalid UTF-8) would make SQLite's decoding raise
    for doc_id, raw_path, raw_text, chash, root, fs_path in kb.store.raw_documents():
        path = raw_path.decode("utf-8", "replace")
        try:
            text = raw_text.decode("utf-8")
        except UnicodeDecodeError:
            reason = "存储的正文不是有效的 UTF-8 文字"
        else:
            if content_hash(text) != chash:
                reason = "正文与其校验值不符"
            elif any(content_hash(text[start:end]) != phash
                     for start, end, phash in kb.store.raw_passages(doc_id)):
                reason = "段落与文档正文对不上"
            else:
                continue
        out.append(DamagedDocument(doc_id, path, reason, root, file_of(path, fs_path)))
    return out


def _check_documents(kb: KnowledgeBase, rep: VerifyReport, repair: bool, reread: Reread | None) -> None:
    """Documents a reader cannot use whole (a ghost without passages, passages without
    sentences, damaged text): reported; a repair removes each one and reads it again from its
    file when the file is still there. A document whose file cannot be found is kept unless
    it is a ghost (which holds nothing a reader can find anyway)."""
    for d in kb.store.damaged_documents() + _damaged_text(kb):
        msg = f"文档已损坏：{d.path}：{d.reason}"
        if not repair:
            rep.problems.append(msg + "；运行 yuanwen verify --repair 可从原文件重新读入")
            continue
        if reread is None or not os.path.exists(d.file):
            if not d.empty:
                why = "找不到原文件" if reread is not None else "需从原文件重新读入"
                rep.problems.append(f"{msg}；{why}，未修复：请运行 yuanwen verify --repair，"
                                    "或从备份恢复")
                continue
            kb.store.delete_document(d.id)
            where = "原文件已不存在" if reread is not None else "未重新读入"
            rep.repaired.append(f"{msg}：已删除（{where}；可用 yuanwen ingest 重新导入）")
            continue
        # blank hashes: the file is read and stored again, replacing the damaged rows in one
        # transaction; if it cannot be read, the document stays as it was
        old_hashes = kb.store.swap_hashes(d.id, "", "")
        outcome = reread(kb.store, d.file, d.root)
        if outcome.status in ("added", "updated", "duplicate"):
            rep.repaired.append(f"{msg}：已从原文件重新读入（{outcome.passages} 段）")
        else:
            kb.store.swap_hashes(d.id, *old_hashes)
            rep.problems.append(f"{msg}：重新读入失败（{outcome.reason or outcome.status}），已保持原样")


def _check_orphans(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    n_p, n_s = kb.store.orphan_counts()
    if not (n_p or n_s):
        return
    msg = f"有 {n_p} 个段落、{n_s} 个句子不属于任何文档"
    if repair:
        kb.store.delete_orphans()
        rep.repaired.append(msg + "：已删除")
    else:
        rep.problems.append(msg)


def _check_vectors(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    dim = kb.dim
    counts = kb.store.counts()
    pending = counts["passages"] - counts["embedded"]
    if pending:
        rep.notes.append(f"有 {pending} 个段落尚未向量化（可关键词检索）；运行 yuanwen ingest 可补齐")
    if dim is None:
        if counts["embedded"]:
            rep.problems.append("知识库有向量但没有记录向量模型和维度")
        return
    _check_dimensions(kb, rep, repair, dim)


def _check_dimensions(kb: KnowledgeBase, rep: VerifyReport, repair: bool, dim: int, then: str = "") -> bool:
    """Vectors whose dimension is not ``dim``: deleted with ``repair`` (True when some were),
    else a problem; ``then`` is what the problem adds to the advice."""
    bad = kb.store.bad_dimension_vectors(dim)
    if not bad:
        return False
    msg = f"{bad} 个向量的维度不是 {dim}"
    if repair:
        kb.store.delete_bad_dimension_vectors(dim)
        rep.repaired.append(msg + "：已删除，这些段落将在下次导入时重新向量化")
        return True
    rep.problems.append(msg + ("；运行 yuanwen verify --repair 可删除" + then if then else ""))
    return False


def _bad_norm(norms: np.ndarray) -> np.ndarray:
    """Lengths that no stored vector may have: not finite, or neither 1 nor 0 (an embedder
    leaves a text with nothing to embed as the zero vector)."""
    return ~np.isfinite(norms) | ((np.abs(norms - 1) > NORM_TOLERANCE) & (norms != 0))


def _check_vector_values(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    """Every stored vector is finite and of unit length: one damaged vector scores 1e36 and
    becomes the top semantic hit of every query."""
    dim = kb.dim
    if dim is None:
        return
    bad: list[str] = []
    for hashes, blobs in kb.store.iter_vectors():
        ok = [i for i, b in enumerate(blobs) if len(b) == dim * 4]
        if not ok:
            continue
        vecs = np.frombuffer(b"".join(blobs[i] for i in ok), dtype=np.float32).reshape(-1, dim)
        with np.errstate(all="ignore"):
            norms = np.linalg.norm(vecs.astype(np.float64), axis=1)
        bad += [hashes[ok[i]] for i in np.flatnonzero(_bad_norm(norms))]
    if not bad:
        return
    msg = f"{len(bad)} 个向量已损坏（含非有限值或长度不为 1）"
    if repair:
        kb.store.delete_vectors(bad)
        rep.repaired.append(msg + "：已删除，这些段落将在下次导入时重新向量化")
    else:
        rep.problems.append(msg + "；运行 yuanwen verify --repair 可修复")


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
    if not (kb_dir / INDEX_META).exists():
        return "向量索引文件缺失" if state["count"] else None
    meta = read_meta(kb_dir)
    graph_only = meta is not None and meta.get("vectors") == VECTORS_IN_SQLITE
    if graph_only and meta.get("kind") != "hnsw":
        return None  # an exact index is built from the stored vectors on open: nothing is saved
    if not (kb_dir / INDEX_FILE).exists():
        return "向量索引文件缺失" if state["count"] else None
    try:
        index = faiss.read_index(str(kb_dir / INDEX_FILE))
    except (RuntimeError, OSError):
        meta = None
    if meta is None:
        return "向量索引文件已损坏"
    if index.ntotal != state["count"]:
        return f"向量索引与数据库不一致（索引 {index.ntotal} 条，数据库 {state['count']} 条）"
    if meta.get("state") != state:
        return f"向量索引与数据库不一致（都是 {index.ntotal} 条，但所含段落不同：导入中断时留下的旧索引）"
    ids = np.sort(faiss.vector_to_array(index.id_map)) if hasattr(index, "id_map") else None
    if ids is None or not np.array_equal(ids, kb.store.embedded_ids()):
        return "向量索引中的编号与数据库段落编号不一致"
    if not graph_only and _faiss_has_bad_vectors(index):  # else its vectors are SQLite's, checked there
        return "向量索引中有已损坏的向量（含非有限值或长度不为 1）"
    return None


def _faiss_has_bad_vectors(index: faiss.Index, batch: int = 20000) -> bool:
    """True if any vector held by the FAISS index is not finite or not of unit length."""
    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    for start in range(0, index.ntotal, batch):
        n = min(batch, index.ntotal - start)
        try:
            vecs = inner.reconstruct_n(start, n)
        except RuntimeError:  # an index type that cannot give its vectors back
            return False
        with np.errstate(all="ignore"):
            if _bad_norm(np.linalg.norm(vecs.astype(np.float64), axis=1)).any():
                return True
    return False


def _check_keyword(kb: KnowledgeBase, rep: VerifyReport, repair: bool) -> None:
    if kb.store.passages_state()["count"] == 0:
        return
    saved = kb.backend.has_saved_keyword_index()
    if repair:  # saved again when missing or stale (documents read again above change it)
        kb.keyword_index(save=True)
    if saved:
        return
    msg = "关键词索引文件缺失或已损坏（每次打开知识库都要在内存中重新索引全部段落，检索结果相同，只是首次检索较慢）"
    if repair:
        rep.repaired.append(msg + "：已重建")
    else:
        rep.notes.append(msg + "；运行 yuanwen ingest 或 yuanwen verify --repair 可重建")


# -- a Milvus knowledge base (yuanwen.milvus_backend) -------------------------------------------
def _verify_milvus(kb: KnowledgeBase, rep: VerifyReport, repair: bool, reread: Reread | None) -> None:
    """The checks of a Milvus knowledge base: its collections are there; every document has
    its passages, sentences and text rows, and its passages match its text; no passage, vector
    or text row belongs to no document; once an embedder is recorded, every passage has a
    vector of the recorded dimension, finite and of unit length."""
    state = kb.store.quick_check()
    if state != ["ok"]:
        rep.problems.append(f"Milvus 知识库不完整：{'；'.join(state)}")
        return
    if repair:
        for r in kb.store.release_dead_lanes():
            rep.repaired.append(f"本机中断的导入（进程 {r.get('pid')}，{r.get('since')} 开始）占用的写入通道：已释放")
    for r in kb.store.foreign_lanes().values():
        rep.notes.append(f"{r.get('host')} 上的导入（进程 {r.get('pid')}，{r.get('since')} 开始）正在写入，"
                         "其未写完的记录不算作问题；若它已中断，在那台机器上运行 yuanwen verify --repair")
    _check_documents(kb, rep, repair, reread)
    n_p, n_other = kb.store.orphan_counts()
    if n_p or n_other:
        msg = f"有 {n_p} 个段落、{n_other} 条向量或正文记录不属于任何文档（导入中断留下）"
        if repair:
            kb.store.delete_orphans()
            rep.repaired.append(msg + "：已删除")
        else:
            rep.problems.append(msg + "；运行 yuanwen verify --repair 可删除")
    dim = kb.dim
    counts = kb.store.counts()
    pending = kb.store.count_pending()
    if dim is None or kb.built_with is None:
        if counts["embedded"]:
            rep.problems.append("知识库有向量但没有记录向量模型和维度")
        elif counts["passages"]:
            rep.notes.append(f"有 {counts['passages']} 个段落尚未向量化（可关键词检索）；运行 yuanwen ingest 可补齐")
        return
    if _check_dimensions(kb, rep, repair, dim, "，再运行 yuanwen ingest 重新向量化"):
        pending = kb.store.count_pending()
    if pending:
        rep.problems.append(f"已记录向量模型 {kb.built_with}，但有 {pending} 种段落文字没有向量（语义检索找不到它们）；"
                            "运行 yuanwen ingest 可补齐")
    _check_vector_values(kb, rep, repair)
