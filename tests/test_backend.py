"""The storage seams (yuanwen.backend): the knowledge base records its backend, the SQLite
backend implements the interfaces, and both indexes take Filters themselves (push-down)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from yuanwen.backend import (
    DESCRIPTOR,
    Backend,
    DocumentStore,
    KeywordIndex,
    VectorIndex,
    backend_names,
    open_backend,
    read_descriptor,
)
from yuanwen.config import Config
from yuanwen.errors import KnowledgeBaseError
from yuanwen.ingest.pipeline import ingest
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Filters
from yuanwen.sqlite_backend import SqliteBackend
from yuanwen.store import Store

MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("kb")
    report = ingest([MINI], Config(kb_dir=d, embedder="fake"), progress=False)
    assert not report.failed
    return d


def test_the_knowledge_base_records_its_backend(kb_dir):
    assert json.loads((kb_dir / DESCRIPTOR).read_text(encoding="utf-8"))["backend"] == "sqlite"
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    assert isinstance(kb.backend, SqliteBackend) and kb.stats()["backend"] == "sqlite"
    kb.close()
    assert "sqlite" in backend_names()


def test_the_sqlite_backend_implements_the_interfaces(kb_dir):
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    assert isinstance(kb.backend, Backend)
    assert isinstance(kb.store, Store) and isinstance(kb.store, DocumentStore)
    assert isinstance(kb.keyword(), KeywordIndex) and isinstance(kb.vectors(), VectorIndex)
    kb.close()


def _doc_types(kb: KnowledgeBase, ids: list[int]) -> set[str]:
    passages = kb.store.get_passages(ids)
    return {kb.store.get_document(p.doc_id, with_text=False).doc_type for p in passages.values()}


def check_filters_pushed_down(kb: KnowledgeBase) -> None:
    """Filters narrow both indexes' rankings (not the unfiltered top k cut afterwards), and
    scores are BM25 (higher first) and inner products of unit vectors; on the mini fixture."""
    weights = tuple(kb.config.keyword_weights)
    everything = kb.keyword().search("安全生产", 50, weights=weights)
    assert len(_doc_types(kb, [i for i, _ in everything])) > 1
    scores = [s for _, s in everything]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)  # BM25, higher first
    only = Filters(doc_types=["地方性法规"])
    kept = kb.keyword().search("安全生产", 50, only, weights=weights)
    assert kept and _doc_types(kb, [i for i, _ in kept]) == {"地方性法规"}
    assert [i for i, _ in kept] == [i for i, _ in everything if i in dict(kept)]

    qvec = kb.encode_query("安全生产责任")
    near = kb.vectors().search(qvec, 50)
    assert len(_doc_types(kb, [i for i, _ in near])) > 1
    near_kept = kb.vectors().search(qvec, 50, only)
    assert near_kept and _doc_types(kb, [i for i, _ in near_kept]) == {"地方性法规"}
    scores = [s for _, s in near_kept]
    assert scores == sorted(scores, reverse=True) and np.isfinite(scores).all()
    # inner products of unit vectors, as the SQLite backend's FAISS gives
    vecs = dict(zip(*next(kb.store.passage_vectors([near[0][0]], 64))))
    assert abs(float(vecs[near[0][0]] @ qvec) - near[0][1]) < 1e-4
    assert kb.keyword().search("安全生产", 5, Filters(since="2999-01-01"), weights=weights) == []
    assert kb.vectors().search(qvec, 5, Filters(until="2000")) == []
    years = Filters(since="2021", until="2021-12-31")
    assert {kb.store.get_document(kb.store.passage_doc_ids([i])[i]).date[:4]
            for i, _ in kb.keyword().search("安全", 50, years, weights=weights)} == {"2021"}
    issuer = kb.keyword().search("安全", 50, Filters(issuers=["应急管理"]), weights=weights)
    assert issuer and {kb.store.get_document(p.doc_id).issuer for p in kb.store.get_passages(
        [i for i, _ in issuer]).values()} == {"区应急管理局"}
    some = kb.store.documents()[0].id
    assert some not in {p.doc_id for p in kb.store.get_passages(
        [i for i, _ in kb.vectors().search(qvec, 50, Filters(exclude_doc_ids=[some]))]).values()}


def test_filters_are_pushed_down_to_both_indexes(kb_dir):
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        check_filters_pushed_down(kb)
    finally:
        kb.close()


def test_a_knowledge_base_from_before_the_descriptor_opens_as_sqlite(tmp_path):
    d = tmp_path / "kb"
    ingest([MINI], Config(kb_dir=d, embedder="fake"), embed=False, progress=False)
    (d / DESCRIPTOR).unlink()
    assert read_descriptor(d) == {"backend": "sqlite"}
    kb = KnowledgeBase(Config(kb_dir=d), readonly=True)  # a reader writes nothing
    assert kb.backend.name == "sqlite" and not (d / DESCRIPTOR).exists()
    kb.close()
    KnowledgeBase(Config(kb_dir=d)).close()  # a writer records it
    assert read_descriptor(d)["backend"] == "sqlite"


def test_unknown_or_damaged_descriptor_is_a_clear_error(tmp_path):
    d = tmp_path / "kb"
    ingest([MINI], Config(kb_dir=d, embedder="fake"), embed=False, progress=False)
    (d / DESCRIPTOR).write_text('{"backend": "elastic"}', encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="elastic 后端，本版本不支持"):
        KnowledgeBase(Config(kb_dir=d), readonly=True)
    (d / DESCRIPTOR).write_text("{not json", encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="已损坏") as err:
        KnowledgeBase(Config(kb_dir=d), readonly=True)
    assert DESCRIPTOR in str(err.value)
    with pytest.raises(KnowledgeBaseError, match="不是 other"):
        (d / DESCRIPTOR).write_text('{"backend": "sqlite"}', encoding="utf-8")
        open_backend(d, Config(kb_dir=d), backend="other")
