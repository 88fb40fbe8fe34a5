"""The FAISS index is caught up with the store instead of rebuilt, and equals a rebuild."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from yuanwen.ingest.pipeline import _embed_stage, ingest, ingest_file
from yuanwen.search.api import search
from yuanwen.config import Config
from yuanwen.index import INDEX_FILE, INDEX_META, FaissIndex, read_meta
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


def test_the_exact_index_is_built_from_the_stored_vectors_and_never_saved(tmp_path, builds):
    """Vectors are stored once (issue 16, 7b): the exact index is built on open, each time."""
    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([a], cfg, embedder="fake", progress=False)
    assert len(builds) == 1
    ingest([a, b], cfg, embedder="fake", progress=False)
    shutil.rmtree(b)
    ingest([a, tmp_path / "b"], cfg, embedder="fake", prune=True, progress=False)
    assert len(builds) == 3 and not (cfg.kb_dir / INDEX_FILE).exists()
    assert read_meta(cfg.kb_dir)["vectors"] == "sqlite"
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
    saved = (cfg.kb_dir / INDEX_META).stat().st_mtime_ns
    writer = KnowledgeBase(cfg)
    for f in sorted(b.iterdir()):
        ingest_file(writer.store, f, [b], cfg)
    _embed_stage(writer, cfg, IngestReport(), progress=False)  # vectors stored, FAISS not saved
    n = len(builds)
    assert reader.vector_index().size > before
    assert len(builds) == n, "caught up in memory, not rebuilt"
    assert (cfg.kb_dir / INDEX_META).stat().st_mtime_ns == saved, "readers never save"
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


# -- the approximate index: its recall, filtered search and where it takes over -------------
def _clustered(n: int, dim: int = 64, centres: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around ``centres`` random directions (topics), and 200 queries drawn
    the same way. The spread is wide enough that the graph's settings matter: at 30k vectors
    efSearch 64 finds about 0.975 of the exact top 10 and 128 about 0.988."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        x = c[rng.integers(0, centres, m)] + 1.25 * rng.standard_normal((m, dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(200)


def _exact_top(xb: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> set[int]:
    ids = np.arange(len(xb)) if allowed is None else allowed
    s = xb[ids] @ q
    return set(ids[np.argsort(-s, kind="stable")[:k]].tolist())


def test_the_approximate_index_finds_98_percent_of_the_exact_top_10():
    from yuanwen.index import HNSW_EF_SEARCH

    xb, xq = _clustered(30_000)
    idx = FaissIndex.from_vectors(np.arange(len(xb)), xb, exact_max=20_000)
    assert idx.kind == "hnsw"
    assert HNSW_EF_SEARCH >= 50, "hybrid search asks for 50 candidates"
    found = [set(idx.search(q, 10)[0].tolist()) for q in xq]
    recall = np.mean([len(f & _exact_top(xb, q, 10)) / 10 for f, q in zip(found, xq)])
    assert recall >= 0.98, recall
    ids, scores = idx.search(xq[0], 10)
    np.testing.assert_allclose(scores, xb[ids] @ xq[0], rtol=1e-5)  # exact scores of what it finds


@pytest.mark.parametrize(("share", "unindexed"), [(0.003, False), (0.003, True), (0.15, False), (0.5, False)])
def test_filtered_search_of_the_graph_returns_only_allowed_ids_and_their_top(share, unindexed):
    """Narrow filters are exact (their vectors looked up, or the stored vectors scanned when an
    allowed passage is not indexed yet or there are many); wide ones walk the graph."""
    xb, xq = _clustered(25_000, seed=1)
    ids = np.arange(len(xb)) * 7 + 3  # passage ids are not row numbers
    idx = FaissIndex.from_vectors(ids, xb, exact_max=0)
    assert idx.kind == "hnsw"
    rng = np.random.default_rng(2)
    rows = np.sort(rng.choice(len(xb), size=int(share * len(xb)), replace=False))
    allowed = np.append(ids[rows], 5) if unindexed else ids[rows]  # 5: a passage not (yet) in the index
    hits = 0.0
    for q in xq[:50]:
        got, scores = idx.search(q, 10, allowed)
        assert len(got) == 10 and set(got.tolist()) <= set(allowed.tolist())
        assert list(scores) == sorted(scores, reverse=True)
        truth = {int(ids[r]) for r in _exact_top(xb, q, 10, rows)}
        hits += len(truth & set(got.tolist())) / 10
    assert hits / 50 >= (0.999 if share <= 0.2 else 0.97)  # narrow filters are searched exactly


def test_the_exact_index_becomes_a_graph_past_the_threshold(tmp_path, builds):
    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([a], cfg, embedder="fake", progress=False)
    count = KnowledgeBase(cfg, readonly=True).store.embedded_state()["count"]
    cfg = Config(kb_dir=tmp_path / "kb", exact_index_max=count)  # at the threshold: still exact
    kb = KnowledgeBase(cfg)
    assert kb.vector_index(save=True).kind == "flat"
    kb.close()
    ingest([a, b], cfg, embedder="fake", progress=False)  # past it: rebuilt as a graph, not caught up
    assert len(builds) == 3  # (an exact index is built on every open; then the graph)
    kb = KnowledgeBase(cfg, readonly=True)
    idx = kb.vector_index()
    assert idx.kind == "hnsw" and idx.size == kb.store.embedded_state()["count"] > count
    from yuanwen.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, read_meta

    assert read_meta(cfg.kb_dir)["hnsw"] == {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION,
                                             "efSearch": idx.ef_search(), "storage": "float32"}
    assert idx.ef_search() == HNSW_EF_SEARCH and idx.ef_search(500) == 500
    assert {h.document.title for q in QUERIES for h in search(kb, q, mode="semantic").hits}
    kb.close()


def test_a_writer_turns_a_saved_exact_index_past_a_lowered_threshold_into_a_graph(tmp_path, builds):
    a, _ = _folders(tmp_path)
    ingest([a], Config(kb_dir=tmp_path / "kb"), embedder="fake", progress=False)  # exact, saved
    lowered = Config(kb_dir=tmp_path / "kb", exact_index_max=3)
    reader = KnowledgeBase(lowered, readonly=True)
    assert reader.vector_index().kind == "flat" and len(builds) == 2, "a reader uses the saved kind as it is"
    writer = KnowledgeBase(lowered)
    assert writer.vector_index(save=True).kind == "hnsw" and len(builds) == 3
    writer.close()
    reader.close()
    from yuanwen.index import read_meta

    assert read_meta(tmp_path / "kb")["kind"] == "hnsw"


def test_an_hnsw_file_holds_the_graph_and_reads_its_vectors_from_sqlite(tmp_path, builds):
    """The graph file keeps no copy of the vectors (a one-byte placeholder each); opened, it
    searches exactly as the graph that was saved, and a file written with its vectors inside
    (before schema 7) still opens, and is written the new way by the next writer."""
    import faiss

    a, b = _folders(tmp_path)
    cfg = Config(kb_dir=tmp_path / "kb", exact_index_max=3)
    ingest([a, b], cfg, embedder="fake", progress=False)
    kb = KnowledgeBase(cfg, readonly=True)
    idx = kb.vector_index()
    assert idx.kind == "hnsw" and len(builds) == 1, "read from the file, not built"
    fresh = FaissIndex.build(kb.store, kb.dim, kb.built_with, cfg.exact_index_max)
    vectors = idx.size * kb.dim * 4  # what the file would hold besides the graph
    whole = len(faiss.serialize_index(fresh.index))
    assert (cfg.kb_dir / INDEX_FILE).stat().st_size <= whole - vectors + 2 * idx.size + 1024
    ids = kb.store.embedded_ids()
    np.testing.assert_array_equal(idx.index.reconstruct_batch(ids), fresh.index.reconstruct_batch(ids))
    for q in QUERIES:
        v = kb.encode_query(q)
        assert idx.search(v, 5)[0].tolist() == fresh.search(v, 5)[0].tolist()
        allowed = ids[::2]
        assert idx.search(v, 3, allowed)[0].tolist() == fresh.search(v, 3, allowed)[0].tolist()
    kb.close()
    # a file of the old kind: the whole index, vectors inside, and no "vectors" in index.json
    faiss.write_index(fresh.index, str(cfg.kb_dir / INDEX_FILE))
    meta = read_meta(cfg.kb_dir)
    del meta["vectors"]
    (cfg.kb_dir / INDEX_META).write_text(json.dumps(meta), encoding="utf-8")
    kb = KnowledgeBase(cfg, readonly=True)
    assert kb.vector_index().size == len(ids) and len(builds) == 2  # (the fresh one above)
    kb.close()
    from yuanwen.verify import verify

    assert verify(cfg, repair=False).ok
    kb = KnowledgeBase(cfg)
    kb.rebuild_index()
    kb.close()
    assert read_meta(cfg.kb_dir)["vectors"] == "sqlite"
    assert (cfg.kb_dir / INDEX_FILE).stat().st_size <= whole - vectors + 2 * idx.size + 1024
