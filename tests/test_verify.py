"""yuanwen verify: each kind of damage is found, and the repairable ones are repaired."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from yuanwen.ingest.pipeline import ingest
from yuanwen.cli import cli
from yuanwen.config import Config
from yuanwen.errors import KnowledgeBaseError
from yuanwen.index import INDEX_FILE
from yuanwen.kb import KnowledgeBase
from yuanwen.store import Store, content_hash
from yuanwen.verify import verify

from .conftest import MINI, SAMPLE


@pytest.fixture
def cfg(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    shutil.copy(SAMPLE, d / "report.txt")
    (d / "note.md").write_text("# 学习笔记\n\n坚持人民至上、生命至上。统筹发展和安全。\n", encoding="utf-8")
    c = Config(kb_dir=tmp_path / "kb")
    ingest([d], c, embedder="fake", progress=False)
    return c


def test_a_fresh_kb_verifies_clean(cfg):
    rep = verify(cfg)
    assert rep.ok and not rep.problems and not rep.repaired
    r = CliRunner().invoke(cli, ["verify", "--kb", str(cfg.kb_dir)])
    assert r.exit_code == 0 and "检查通过" in r.output


def _db(cfg):
    return Store(cfg.kb_dir).db


def test_a_damaged_keyword_index_is_found_and_rebuilt(cfg):
    """The keyword index files (the only keyword index from schema 9) gone or damaged: searches
    index the passages in memory (the same results, a slower start), verify says so, and
    --repair saves the index again."""
    from yuanwen import bm25

    meta = bm25.read_meta(cfg.kb_dir)
    (cfg.kb_dir / meta["folder"] / "gaps.npy").write_bytes(b"damaged")
    rep = verify(cfg)
    assert rep.ok and any("关键词索引文件缺失或已损坏" in n for n in rep.notes)
    rep = verify(cfg, repair=True)
    assert rep.ok and any("关键词索引文件缺失或已损坏" in r for r in rep.repaired)
    assert not any("关键词索引" in n for n in verify(cfg).notes)


def _as_graph(cfg):
    """The knowledge base of ``cfg`` with an HNSW graph saved (an exact index saves no file)."""
    cfg = replace(cfg, exact_index_max=3)
    kb = KnowledgeBase(cfg)
    kb.rebuild_index()
    kb.close()
    assert (cfg.kb_dir / INDEX_FILE).exists()
    return cfg


def test_missing_or_stale_faiss_is_rebuilt(cfg):
    cfg = _as_graph(cfg)
    (cfg.kb_dir / INDEX_FILE).unlink()
    rep = verify(cfg)
    assert any("向量索引文件缺失" in p for p in rep.problems)
    r = CliRunner().invoke(cli, ["verify", "--kb", str(cfg.kb_dir)])
    assert r.exit_code == 1
    assert verify(cfg, repair=True).ok and verify(cfg).ok
    # a vector added behind the index's back (e.g. an ingest killed before the index was saved)
    db = _db(cfg)
    with db.conn:
        db.execute("DELETE FROM embeddings WHERE content_hash = (SELECT content_hash FROM passages LIMIT 1)")
    rep = verify(cfg)
    assert any("不一致" in p for p in rep.problems) and any("尚未向量化" in n for n in rep.notes)
    assert verify(cfg, repair=True).ok


def test_bad_vectors_are_dropped_to_pending(cfg):
    db = _db(cfg)
    with db.conn:
        db.execute("UPDATE embeddings SET vector = ? WHERE rowid = 1", [np.zeros(10, np.float32).tobytes()])
    rep = verify(cfg)
    assert any("维度不是 64" in p for p in rep.problems)
    rep = verify(cfg, repair=True)
    assert rep.ok and any("重新向量化" in r for r in rep.repaired)
    assert any("尚未向量化" in n for n in verify(cfg).notes)


def test_orphans_are_deleted(cfg):
    db = _db(cfg)
    with db.conn:
        db.execute('INSERT INTO sentences(doc_id, passage_id, start, "end") VALUES (999, 99999, 0, 1)')
    assert any("不属于任何文档" in p for p in verify(cfg).problems)
    assert verify(cfg, repair=True).ok


def test_tampered_text_is_reported_not_repaired(cfg):
    db = _db(cfg)
    with db.conn:
        db.execute("UPDATE documents SET text = '改过的' || text WHERE path LIKE '%report.txt'")
    rep = verify(cfg)
    assert not rep.ok
    assert any("校验值不符" in p and "report.txt" in p for p in rep.problems)
    rep = verify(cfg, repair=True)  # without a way to re-read: kept as it is, and says so
    assert not rep.ok and any("未修复" in p for p in rep.problems)
    assert _db(cfg).execute("SELECT COUNT(*) FROM documents WHERE path LIKE '%report.txt'").fetchone()[0] == 1


def test_tampered_text_is_read_again_from_its_file(cfg):
    from yuanwen.ingest.pipeline import repair

    db = _db(cfg)
    with db.conn:
        db.execute('UPDATE passages SET "end" = "end" - 1 WHERE id = (SELECT MIN(id) FROM passages)')
    assert any("段落与文档正文对不上" in p for p in verify(cfg).problems)
    rep = repair(cfg)
    assert rep.ok and any("已从原文件重新读入" in r for r in rep.repaired)
    assert verify(cfg).ok
    kb = KnowledgeBase(cfg, readonly=True)  # the keyword index holds exactly the passages
    assert kb.keyword_index().size == kb.store.counts()["passages"]
    hits = kb.keyword().search("统筹发展和安全", 5, weights=(1.0, 0.0, 0.0))
    assert hits and all(p.text for p in kb.store.get_passages([i for i, _ in hits]).values())
    kb.close()


def test_migration_2_drops_the_unused_sentence_index(tmp_path):
    from yuanwen.store import SCHEMA_VERSION

    store = Store(tmp_path / "kb", create=True)
    with store.db.conn:  # a knowledge base from schema version 1
        store.db.execute("CREATE VIRTUAL TABLE sentences_fts USING fts5(terms)")
        store.set_meta("schema_version", "1")
    store.close()
    with pytest.raises(KnowledgeBaseError, match="yuanwen ingest"):
        Store(tmp_path / "kb", readonly=True)
    store = Store(tmp_path / "kb")  # a writer migrates
    assert store.schema_version() == SCHEMA_VERSION == 9
    assert "sentences_fts" not in store.db.table_names()
    assert "root" in store.db["documents"].columns_dict  # migration 3
    store.close()


def test_migration_6_keeps_sentences_as_offsets_only(tmp_path):
    """A knowledge base of schema 5 keeps a copy of each sentence's text; migration 6 drops it
    (the text is its document's between the offsets) and quote lookup reads the same sentences."""
    cfg = Config(kb_dir=tmp_path / "kb", embedder="fake")
    ingest([MINI], cfg, progress=False)
    store = Store(cfg.kb_dir)
    want = {d.id: store.document_sentences(d.id) for d in store.documents()}
    with store.db.conn:  # back to schema 5: the text column, filled
        store.db.execute("ALTER TABLE sentences ADD COLUMN text TEXT NOT NULL DEFAULT ''")
        store.db.execute('UPDATE sentences SET text = (SELECT substr(d.text, sentences.start + 1, '
                         'sentences."end" - sentences.start) FROM documents d WHERE d.id = sentences.doc_id)')
        store.set_meta("schema_version", "5")
    store.close()
    store = Store(cfg.kb_dir)  # a writer migrates
    assert "text" not in store.db["sentences"].columns_dict
    got = {d.id: store.document_sentences(d.id) for d in store.documents()}
    assert got == want and all(s.text for ss in got.values() for s in ss)
    store.close()
    assert verify(cfg).ok


def test_migration_7_keeps_the_text_once(tmp_path):
    """A knowledge base of schema 6 keeps a copy of each passage's text and the FTS5 table keeps
    a copy of its terms; migrations 7 and 9 drop both (a passage is its document's text between
    its offsets; the eager keyword index is the only one) and every search and quote reads the
    same."""
    from yuanwen.library import open_kb

    cfg = Config(kb_dir=tmp_path / "kb", embedder="fake")
    ingest([MINI], cfg, progress=False)
    lib = open_kb(cfg.kb_dir)

    def answers():
        out = []
        for q in ("统筹发展和安全", "安全生产责任制", "人民"):
            for mode in ("keyword", "hybrid"):
                out.append([(h.passage.id, round(h.score, 6), h.passage.text, h.passage.heading_path)
                            for h in lib.search(q, k=10, mode=mode).hits])
        res = lib.quote("坚持人民至上")
        out.append([res.verdict] + [(m.document.id, m.start, m.end, m.text, m.similarity) for m in res.matches])
        return out

    want = answers()
    lib.close()
    store = Store(cfg.kb_dir)
    passages = store.passages()
    with store.db.conn:  # back to schema 6: the passages' text, and the FTS5 table with content
        store.db.execute("ALTER TABLE passages ADD COLUMN text TEXT NOT NULL DEFAULT ''")
        store.db.execute('UPDATE passages SET text = (SELECT substr(d.text, passages.start + 1, '
                         'passages."end" - passages.start) FROM documents d WHERE d.id = passages.doc_id)')
        rows = [r for batch in store.iter_fts_rows() for r in batch]
        store.db.execute("CREATE VIRTUAL TABLE passages_fts USING fts5(terms, heads, title, "
                         "tokenize = 'unicode61 remove_diacritics 0')")
        store.db.conn.executemany("INSERT INTO passages_fts(rowid, terms, heads, title) VALUES (?, ?, ?, ?)", rows)
        store.set_meta("schema_version", "6")
    assert "passages_fts_content" in store.db.table_names()
    store.close()
    store = Store(cfg.kb_dir)  # a writer migrates
    assert "text" not in store.db["passages"].columns_dict
    assert "passages_fts" not in store.db.table_names()  # and from migration 9, no FTS5 at all
    assert store.passages() == passages
    store.close()
    lib = open_kb(cfg.kb_dir)
    assert answers() == want
    lib.close()
    assert verify(cfg).ok


def test_migration_8_stores_vectors_as_half_floats(tmp_path):
    """A knowledge base of schema 7 keeps float32 vectors; migration 8 stores them as 16-bit
    floats (half the bytes): semantic search ranks the same, scores move by under 1e-3, and a
    vector of another dimension is still reported."""
    from yuanwen.library import open_kb
    from yuanwen.store import vector_bytes

    cfg = Config(kb_dir=tmp_path / "kb", embedder="fake")
    ingest([MINI], cfg, progress=False)

    def answers():
        with open_kb(cfg.kb_dir) as lib:
            return {q: [(h.passage.id, h.score) for h in lib.search(q, k=8, mode="semantic").hits]
                    for q in ("统筹发展和安全", "安全生产责任制", "人民至上")}

    store = Store(cfg.kb_dir)
    dim = int(store.get_meta("dim"))
    rows = store.db.execute("SELECT content_hash, vector FROM embeddings").fetchall()
    assert rows and all(len(v) == vector_bytes(dim) == dim * 2 for _, v in rows)
    half = dict(rows)
    store.close()
    want = answers()
    store = Store(cfg.kb_dir)
    with store.db.conn:  # back to schema 7: float32 blobs, plus one of another dimension
        for h, v in rows:
            wide = np.frombuffer(v, dtype="<f2").astype("<f4").tobytes()
            store.db.execute("UPDATE embeddings SET vector = ? WHERE content_hash = ?", [wide, h])
        store.db.execute("INSERT INTO embeddings VALUES ('x' , ?)", [np.ones(3, np.float32).tobytes()])
        store.set_meta("schema_version", "7")
    store.close()
    store = Store(cfg.kb_dir)  # a writer migrates
    got = dict(store.db.execute("SELECT content_hash, vector FROM embeddings").fetchall())
    assert got.pop("x") == np.ones(3, np.float32).tobytes()  # copied as it was
    assert got == half  # the same half floats the new code stores
    assert store.bad_dimension_vectors(dim) == 1
    store.close()
    rep = verify(cfg)
    assert not rep.ok and any(f"1 个向量的维度不是 {dim}" in p for p in rep.problems), rep.problems
    assert verify(cfg, repair=True).ok and answers() == want


def test_half_float_vectors_rank_as_float32_ones_do():
    """The precision a stored vector keeps: for unit vectors of 384 components, cosine scores
    computed from the half floats differ from float32 ones by under 2e-4, and the top 10 of
    2,000 random passages for 50 queries is the same set up to near-ties."""
    from yuanwen.store import decode_vectors, encode_vectors

    rng = np.random.default_rng(7)
    base = rng.standard_normal((2000, 384)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[rng.choice(2000, 50)] + 0.9 * rng.standard_normal((50, 384)).astype(np.float32) / 19.6
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    half = decode_vectors(b"".join(encode_vectors(base)), 384)
    exact, stored = queries @ base.T, queries @ half.T
    assert np.abs(exact - stored).max() < 2e-4
    norms = np.linalg.norm(half, axis=1)
    assert np.abs(norms - 1).max() < 1e-3  # within verify's tolerance
    for e, s in zip(exact, stored):
        top_e, top_s = set(np.argsort(-e)[:10]), set(np.argsort(-s)[:10])
        tenth = np.sort(e)[-10]
        assert all(abs(e[i] - tenth) < 4e-4 for i in top_e ^ top_s)


# -- damaged documents and vectors (issue 10) --------------------------------------------------
def _plant_ghost(cfg, path: str) -> None:
    """A document row without passages, as a crash between the row and its passages left one
    before every write path became one transaction."""
    db = _db(cfg)
    with db.conn:
        db.execute("INSERT INTO documents(path, title, content_hash, text, root) VALUES (?, ?, ?, ?, ?)",
                   [path, "幽灵", content_hash("已入库的正文"), "已入库的正文", str(cfg.kb_dir.parent / "docs")])


def test_a_ghost_document_is_reported_and_read_again_from_its_file(cfg):
    from yuanwen.ingest.pipeline import repair

    ghost = cfg.kb_dir.parent / "docs" / "later.txt"
    ghost.write_text("关于加强安全生产的通知\n\n一、压实责任。各单位要落实安全生产责任制。\n", encoding="utf-8")
    _plant_ghost(cfg, str(ghost))
    rep = verify(cfg)
    assert not rep.ok and any("文档已损坏" in p and "later.txt" in p and "没有任何段落" in p
                              for p in rep.problems)
    r = CliRunner().invoke(cli, ["verify", "--kb", str(cfg.kb_dir)])
    assert r.exit_code == 1 and "later.txt" in r.output
    rep = repair(cfg)
    assert rep.ok and any("已从原文件重新读入" in x for x in rep.repaired), rep
    assert verify(cfg).ok
    store = Store(cfg.kb_dir, readonly=True)
    doc = store.document_by_path(str(ghost))
    assert doc and store.document_passages(doc["id"])
    store.close()


def test_a_ghost_whose_file_is_gone_is_removed_by_the_cli_repair(cfg):
    _plant_ghost(cfg, str(cfg.kb_dir.parent / "docs" / "gone.txt"))
    r = CliRunner().invoke(cli, ["verify", "--kb", str(cfg.kb_dir), "--repair"])
    assert r.exit_code == 0 and "原文件已不存在" in r.output, r.output
    assert verify(cfg).ok
    assert _db(cfg).execute("SELECT COUNT(*) FROM documents WHERE path LIKE '%gone.txt'").fetchone()[0] == 0


def test_passages_without_sentences_are_damage(cfg):
    db = _db(cfg)
    with db.conn:
        db.execute("DELETE FROM sentences WHERE passage_id = (SELECT MIN(id) FROM passages)")
    rep = verify(cfg)
    assert any("缺少句子记录" in p for p in rep.problems)
    from yuanwen.ingest.pipeline import repair

    assert repair(cfg).ok and verify(cfg).ok


def test_a_damaged_vector_is_found_and_never_left_in_the_index(cfg):
    """One stored vector of 3e36 became the top semantic hit of every query after a rebuild."""
    db = _db(cfg)
    with db.conn:
        db.execute("UPDATE embeddings SET vector = ? WHERE rowid = 1",
                   [np.full(64, 6e4, "<f2").tobytes()])  # as large as a stored (half) float gets
    rep = verify(cfg)
    assert any("向量已损坏" in p for p in rep.problems), rep.problems
    rep = verify(cfg, repair=True)
    assert rep.ok and any("向量已损坏" in r for r in rep.repaired)
    assert verify(cfg).ok


def test_a_damaged_vector_inside_the_faiss_file_is_found_and_rebuilt(cfg):
    """A file written before the vectors were kept in SQLite alone (vectors inside, index.json
    without "vectors"), one of them damaged: found, and rebuilt the new way."""
    import faiss

    from yuanwen.index import INDEX_META, FaissIndex, read_meta

    store = Store(cfg.kb_dir)
    index = FaissIndex.build(store, 64, "fake").index
    inner = faiss.downcast_index(index.index)
    xb = faiss.rev_swig_ptr(inner.get_xb(), index.ntotal * 64)
    xb[:64] = np.nan
    faiss.write_index(index, str(cfg.kb_dir / INDEX_FILE))
    meta = read_meta(cfg.kb_dir)
    del meta["vectors"]
    (cfg.kb_dir / INDEX_META).write_text(json.dumps(meta), encoding="utf-8")
    rep = verify(cfg)
    assert any("向量索引中有已损坏的向量" in p for p in rep.problems), rep.problems
    assert verify(cfg, repair=True).ok and verify(cfg).ok
    assert read_meta(cfg.kb_dir)["vectors"] == "sqlite"


def test_a_damaged_document_whose_file_is_gone_is_kept(cfg):
    """Repair never drops a document it cannot read again (only an empty ghost goes)."""
    from yuanwen.ingest.pipeline import repair

    db = _db(cfg)
    with db.conn:
        db.execute("UPDATE documents SET text = '改过的' || text WHERE path LIKE '%note.md'")
    (cfg.kb_dir.parent / "docs" / "note.md").unlink()
    rep = repair(cfg)
    assert not rep.ok and any("找不到原文件" in p for p in rep.problems)
    assert db.execute("SELECT COUNT(*) FROM documents WHERE path LIKE '%note.md'").fetchone()[0] == 1


def test_repair_reads_a_gbk_named_file_by_its_real_name(tmp_path):
    """A GBK file name is stored as its Chinese text; repair must open the real file, not
    delete the document as gone."""
    from yuanwen.ingest.pipeline import repair

    d = tmp_path / "docs"
    d.mkdir()
    real = os.path.join(os.fsencode(d), "防汛通知.txt".encode("gbk"))
    with open(real, "wb") as fh:
        fh.write("关于做好防汛工作的通知\n\n一、各地要落实防汛责任，做好汛期值班值守。\n".encode("utf-8"))
    cfg = Config(kb_dir=tmp_path / "kb")
    assert ingest([d], cfg, embedder="fake", progress=False).count("added") == 1
    db = _db(cfg)
    with db.conn:
        db.execute("DELETE FROM sentences")  # damage: passages without their sentences
    rep = repair(cfg)
    assert rep.ok and any("已从原文件重新读入" in r for r in rep.repaired), rep
    assert verify(cfg).ok
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 1
