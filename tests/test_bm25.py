"""The eager BM25 index gives FTS5's own scores, and searches fall back to FTS5 when it is stale."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from yuanwen.ingest.pipeline import ingest, ingest_file
from yuanwen.search.api import search
from yuanwen.search.retrieve import KeywordSearcher, expand_query
from yuanwen import bm25
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.sqlite_backend import SqliteBackend
from yuanwen.text import fts_query, tokenize
from yuanwen.verify import verify

from .conftest import SAMPLE

MINI = Path(__file__).parent / "fixtures" / "mini"
QUERIES = ["安全生产", "关于安全生产的重要论述", "消防法", "全面从严治党", "2022年", "GDP增长", "党",
           "坚决做到两个维护", "第三条", "巡视整改怎么落实", "人民代表大会常务委员会", "zzzz不存在的词qq"]


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    cfg = Config(kb_dir=tmp_path_factory.mktemp("kb"))
    ingest([MINI, SAMPLE], cfg, embed=False, progress=False)
    base = KnowledgeBase(cfg)
    yield base
    base.close()


def reference(kb: KnowledgeBase) -> sqlite3.Connection:
    """SQLite FTS5 over the same keyword rows, in memory: the scores the index must give (the
    knowledge base itself kept such a table until schema 9)."""
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE passages_fts USING fts5(terms, heads, title, "
                "tokenize = 'unicode61 remove_diacritics 0')")
    for batch in kb.store.iter_fts_rows():
        con.executemany("INSERT INTO passages_fts(rowid, terms, heads, title) VALUES (?, ?, ?, ?)", batch)
    return con


def fts_rank(con: sqlite3.Connection, match: str, weights: str, k: int) -> list[tuple[int, float]]:
    rows = con.execute(
        f"SELECT rowid, -bm25(passages_fts, {weights}) s FROM passages_fts WHERE passages_fts MATCH ? "
        "ORDER BY s DESC, rowid LIMIT ?", [match, k]).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def assert_same(ours: tuple[np.ndarray, np.ndarray], theirs: list[tuple[int, float]]) -> None:
    ids, scores = ours
    assert len(ids) == len(theirs)
    np.testing.assert_allclose(scores, [s for _, s in theirs], rtol=1e-5)
    # the same passages at each score (order within exact ties is not defined by FTS5)
    by_score: dict[float, set[int]] = {}
    for i, s in theirs:
        by_score.setdefault(round(s, 4), set()).add(i)
    for i, s in zip(ids, scores):
        assert int(i) in by_score[round(float(s), 4)]


@pytest.fixture(scope="module")
def ref(kb):
    con = reference(kb)
    yield con
    con.close()


def test_ingest_saves_the_index(kb):
    idx = kb.keyword_index()
    assert idx.saved and idx.size == kb.store.counts()["passages"] and len(idx.segments) == 1
    assert bm25.index_bytes(kb.kb_dir) > 0
    assert "passages_fts" not in kb.store.db.table_names()  # the one keyword index (schema 9)


@pytest.mark.parametrize("query", QUERIES)
def test_keyword_scores_equal_fts5(kb, ref, query):
    terms = expand_query(query)
    idx = kb.keyword_index()
    theirs = fts_rank(ref, fts_query(terms), "1, 0.5, 0.3", 20) if fts_query(terms) else []
    assert_same(idx.search(tokenize(terms), 20, weights=(1.0, 0.5, 0.3)), theirs)


@pytest.mark.parametrize("quote", ["坚决做到“两个维护”", "全面从严治党永远在路上", "生产经营单位必须遵守本法"])
def test_quote_scores_equal_fts5_text_column(kb, ref, quote):
    idx = kb.keyword_index()
    theirs = fts_rank(ref, f"terms : ({fts_query(quote)})", "1, 0, 0", 40)
    assert theirs, "the fixture should hold these words"
    assert_same(idx.search(tokenize(quote), 40, text_only=True), theirs)


def test_filters_restrict_to_allowed_ids(kb):
    idx = kb.keyword_index()
    all_ids, _ = idx.search(tokenize("安全生产"), 50)
    allowed = np.array(sorted(all_ids[1::2]), dtype=np.int64)
    ids, _ = idx.search(tokenize("安全生产"), 50, allowed_ids=np.r_[allowed, 10**9])
    assert set(ids.tolist()) == set(allowed.tolist())


def test_other_weights_are_scored_from_the_same_postings(kb, ref):
    ks = KeywordSearcher(kb, weights=(1.0, 0.0, 0.0))
    got = [(c.passage_id, c.score) for c in ks.search("安全生产", 10)]
    theirs = fts_rank(ref, fts_query(expand_query("安全生产")), "1, 0, 0", 10)
    assert_same((np.array([i for i, _ in got]), np.array([s for _, s in got])), theirs)


def test_phrase_candidates_hold_every_term(kb):
    """Candidates for an exact text search (提法演变): the documents with a passage holding all
    of a phrase's terms, a superset of those holding the phrase itself."""
    phrase = tokenize("安全生产责任制")
    docs = kb.keyword().phrase_doc_ids([phrase])
    holding = {p.doc_id for p in kb.store.passages() if "安全生产责任制" in p.text}
    assert holding and holding <= docs
    assert kb.keyword().phrase_doc_ids([tokenize("冰川火山")]) == set()


def test_passages_newer_than_the_index_are_indexed_in_memory(tmp_path):
    """A reader indexes the passages stored since the saved index in memory, a segment per
    change, and scores all with the statistics of all: the scores FTS5 gives over every row."""
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([MINI], cfg, embed=False, progress=False)
    writer = KnowledgeBase(cfg)
    reader = KnowledgeBase(cfg, readonly=True)
    assert len(reader.keyword_index().segments) == 1
    for i, text in enumerate(["关于推进青藏高原冰川保护的通知\n\n各地要加强冰川监测和安全生产。\n",
                              "冰川监测工作方案\n\n一、安全生产责任制落实到冰川监测站。\n"]):
        new = tmp_path / f"new{i}.txt"
        new.write_text(text, encoding="utf-8")
        ingest_file(writer.store, new, [tmp_path], cfg)  # stored, but no index saved
        idx = reader.keyword_index()
        assert idx.saved and len(idx.segments) >= 2  # the saved one, and the new passages in memory
        assert idx.size == reader.store.counts()["passages"]
    hits = search(reader, "冰川监测", mode="keyword").hits
    assert hits and "冰川" in hits[0].passage.text
    ref = reference(reader)
    for q in ("安全生产冰川", "冰川监测站", "安全生产"):
        terms = expand_query(q)
        assert_same(reader.keyword_index().search(tokenize(terms), 30, weights=(1.0, 0.5, 0.3)),
                    fts_rank(ref, fts_query(terms), "1, 0.5, 0.3", 30))
        assert_same(reader.keyword_index().search(tokenize(q), 30, text_only=True),
                    fts_rank(ref, f"terms : ({fts_query(q)})", "1, 0, 0", 30))
    ref.close()
    writer.close()
    ingest([MINI, tmp_path / "new0.txt", tmp_path / "new1.txt"], cfg, embed=False, progress=False)
    idx = reader.keyword_index()  # a small index is rebuilt and saved at once
    assert idx.saved and len(idx.segments) == 1 and idx.size == reader.store.counts()["passages"]
    reader.close()


def test_many_changes_keep_few_segments(tmp_path):
    """Segments of like size are indexed again as one (a binary counter): after 12 changes of
    one passage each, at most log2(12) + 1 segments beside the saved index."""
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([MINI], cfg, embed=False, progress=False)
    writer = KnowledgeBase(cfg)
    reader = KnowledgeBase(cfg, readonly=True)
    for i in range(12):
        new = tmp_path / f"n{i}.txt"
        new.write_text(f"第{i}号冰川监测通知\n\n各地要加强第{i}号冰川监测。\n", encoding="utf-8")
        ingest_file(writer.store, new, [tmp_path], cfg)
        idx = reader.keyword_index()
        assert idx.saved and len(idx.segments) - 1 <= 4 and idx.size == reader.store.counts()["passages"]
    ref = reference(reader)
    assert_same(reader.keyword_index().search(tokenize("冰川监测"), 50, weights=(1.0, 0.5, 0.3)),
                fts_rank(ref, fts_query("冰川监测"), "1, 0.5, 0.3", 50))
    ref.close()
    writer.close()
    reader.close()


def test_missing_or_damaged_files_are_indexed_in_memory(tmp_path):
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([MINI], cfg, embed=False, progress=False)
    kb = KnowledgeBase(cfg, readonly=True)
    want = search(kb, "安全生产", mode="keyword").hits
    kb.close()
    meta = bm25.read_meta(cfg.kb_dir)
    shutil.rmtree(cfg.kb_dir / meta["folder"])
    kb = KnowledgeBase(cfg, readonly=True)
    idx = kb.keyword_index()
    assert not idx.saved and idx.size == kb.store.counts()["passages"]
    got = search(kb, "安全生产", mode="keyword").hits
    assert [(h.passage.id, round(h.score, 5)) for h in got] == [(h.passage.id, round(h.score, 5)) for h in want]
    assert any("关键词索引文件缺失" in n for n in verify(cfg).notes)
    kb.close()
    ingest([MINI], cfg, embed=False, progress=False)  # a writer rebuilds it
    kb = KnowledgeBase(cfg, readonly=True)
    assert kb.keyword_index().saved
    kb.close()


def test_postings_keep_every_gap_and_frequency_past_the_narrow_types():
    """Three bytes a posting (format 4): a 16-bit gap and a one-byte frequency code. Gaps of
    65,535 and more, and triples past the 255 most frequent, are kept apart: every list reads
    back exactly (positions up to 3 million, 600 distinct triples, one of them over 255)."""
    rng = np.random.default_rng(3)
    n_terms, n = 40, 3_000_000
    lists, tfs = [], []
    for t in range(n_terms):
        size = int(rng.integers(0, (200, 60, 5000)[t % 3])) if t % 7 else 0  # some lists empty
        rows = np.unique(rng.choice((200, n, n)[t % 3], size, replace=False))  # dense; wide gaps
        tf = np.stack([rng.integers(1, 30, len(rows)), rng.integers(0, 5, len(rows)),
                       rng.integers(0, 4, len(rows))], axis=1)
        lists.append(rows)
        tfs.append(tf)
    tfs[1][:1] = (300, 0, 1)  # a run like 哈哈哈… in one passage: wide frequencies
    counts = np.array([len(r) for r in lists])
    sort = bm25._CountingSort(counts, np.uint16)
    for t, (rows, tf) in enumerate(zip(lists, tfs)):  # rows arrive in ascending order per term
        sort.add(np.full(len(rows), t, dtype=np.int32), rows.astype(np.int32), tf.astype(np.uint16))
    packed = sort.narrow(chunk=10_000)  # chunks end inside lists
    assert packed.gaps.small.dtype == np.uint16 and packed.codes.small.dtype == np.uint8
    assert len(packed.gaps.at) and len(packed.codes.at) and len(packed.tf_table) > 255
    for t, (rows, tf) in enumerate(zip(lists, tfs)):
        got_rows, codes = packed.read(t)
        assert np.array_equal(got_rows, rows)
        assert np.array_equal(packed.tf_table[codes], tf)


def test_a_format_3_index_is_not_read_and_a_writer_builds_it_again(tmp_path):
    """An index of the earlier format is left to FTS5 until the next writer saves format 4."""
    import json

    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([MINI], cfg, embed=False, progress=False)
    meta = json.loads((cfg.kb_dir / bm25.META).read_text(encoding="utf-8"))
    assert meta["format"] == bm25.FORMAT == 4
    meta["format"] = 3
    (cfg.kb_dir / bm25.META).write_text(json.dumps(meta), encoding="utf-8")
    assert bm25.EagerBM25.load(cfg.kb_dir) is None
    ingest([MINI], cfg, embed=False, progress=False)  # nothing new; the writer rebuilds it
    assert bm25.EagerBM25.load(cfg.kb_dir) is not None
