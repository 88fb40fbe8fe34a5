"""The FAISS index is caught up with the store instead of rebuilt, and equals a rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from yuanwen.ingest.pipeline import _embed_stage, ingest, ingest_file
from yuanwen.search.api import search
from yuanwen.config import Config
from yuanwen.index import FaissIndex
from yuanwen.kb import KnowledgeBase
from yuanwen.models import IngestReport

MINI = Path(__file__).parent / "fixtures" / "mini"
QUERIES = ["安全生产责任", "汛期安全防范", "应急管理", "会议讲话"]


@pytest.fixture
def builds(monkeypatch):
    """Counts full index builds."""
    calls = []
    real = FaissIndex.build.__func__

    def counting(cls, *a, **kw):
        calls.append(1)
        return real(cls, *a, **kw)

    monkeypatch.setattr(FaissIndex, "build", classmethod(counting))
    return calls


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(MINI, a)
    b.mkdir()
    for name in ("law.md", "speech.txt"):
        (a / name).rename(b / name)
    return a, b


def _ids(idx: FaissIndex) -> list[int]:
    import faiss

    return sorted(faiss.vector_to_array(idx.index.id_map).tolist())


def assert_equals_rebuild(kb: KnowledgeBase) -> None:
    idx = kb.vector_index()
    fresh = FaissIndex.build(kb.store, kb.dim, kb.built_with, kb.config.exact_index_max)
    assert _ids(idx) == _ids(fresh) == kb.store.embedded_ids().tolist()
    for q in QUERIES:
        v = kb.encode_query(q)
        a, b = idx.search(v, 5), fresh.search(v, 5)
        assert a[0].tolist() == b[0].tolist()
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5)


def test_adding_and_pruning_documents_catch_up_the_exact_index(tmp_path, builds):
    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([a], cfg, embedder="fake", progress=False)
    assert len(builds) == 1
    ingest([a, b], cfg, embedder="fake", progress=False)
    shutil.rmtree(b)
    ingest([a, tmp_path / "b"], cfg, embedder="fake", prune=True, progress=False)
    assert len(builds) == 1, "caught up, not rebuilt"
    kb = KnowledgeBase(cfg, readonly=True)
    assert_equals_rebuild(kb)
    from yuanwen.verify import verify

    rep = verify(cfg)
    assert not rep.problems
    kb.close()


def test_hnsw_catches_up_additions_and_rebuilds_for_removals(tmp_path, builds):
    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb", exact_index_max=3)
    ingest([a], cfg, embedder="fake", progress=False)
    ingest([a, b], cfg, embedder="fake", progress=False)
    assert len(builds) == 1
    kb = KnowledgeBase(cfg, readonly=True)
    assert kb.vector_index().kind == "hnsw"
    assert _ids(kb.vector_index()) == kb.store.embedded_ids().tolist()
    kb.close()
    shutil.rmtree(b)
    ingest([a, tmp_path / "b"], cfg, embedder="fake", prune=True, progress=False)
    assert len(builds) == 2, "an HNSW graph cannot remove: rebuilt"


def test_a_reader_catches_up_in_memory_while_the_writer_has_not_saved(tmp_path, builds):
    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([a], cfg, embedder="fake", progress=False)
    reader = KnowledgeBase(cfg, readonly=True)
    before = reader.vector_index().size
    saved = (cfg.kb_dir / "vectors.faiss").stat().st_mtime_ns
    writer = KnowledgeBase(cfg)
    for f in sorted(b.iterdir()):
        ingest_file(writer.store, f, [b], cfg)
    _embed_stage(writer, cfg, IngestReport(), progress=False)  # vectors stored, FAISS not saved
    assert reader.vector_index().size > before
    assert len(builds) == 1
    assert (cfg.kb_dir / "vectors.faiss").stat().st_mtime_ns == saved, "readers never save"
    assert_equals_rebuild(reader)
    titles = {h.document.title for q in QUERIES for h in search(reader, q, mode="semantic").hits}
    assert "在全市安全生产工作会议上的讲话" in titles
    writer.close()
    reader.close()


def test_an_hnsw_reader_keeps_removed_ids_and_drops_them_from_hits(tmp_path, builds):
    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb", exact_index_max=3)
    ingest([a, b], cfg, embedder="fake", progress=False)
    reader = KnowledgeBase(cfg, readonly=True)
    n = reader.vector_index().size
    writer = KnowledgeBase(cfg)
    gone = [d for d in writer.store.documents() if d.path.endswith("speech.txt")][0]
    writer.store.delete_document(gone.id)
    idx = reader.vector_index()
    assert idx.size == n and idx.keeps_gone and len(builds) == 1
    for q in QUERIES:
        assert all(h.document.id != gone.id for h in search(reader, q, mode="semantic").hits)
    writer.close()
    reader.close()


def test_index_files_beside_a_replaced_database_are_not_reused(tmp_path, builds):
    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([a], cfg, embedder="fake", progress=False)
    for f in cfg.kb_dir.glob("yuanwen.db*"):
        f.unlink()  # the database replaced; vectors.faiss and the keyword index stay behind
    ingest([b], cfg, embedder="fake", progress=False)
    assert len(builds) == 2
    kb = KnowledgeBase(cfg, readonly=True)
    assert kb.keyword_index().state["kb_id"] == kb.store.kb_id
    assert_equals_rebuild(kb)
    hits = [h for q in QUERIES for m in ("keyword", "semantic") for h in search(kb, q, mode=m).hits]
    assert hits and all(h.document.path.startswith(str(b)) for h in hits)
    assert all(h.passage.text == kb.store.document_slice(h.document.id, h.passage.start, h.passage.end)
               for h in hits)
    kb.close()
