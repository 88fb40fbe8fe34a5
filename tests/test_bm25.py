"""The eager BM25 index gives FTS5's own scores, and searches fall back to FTS5 when it is stale."""

from __future__ import annotations

import shutil
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


def fts_rank(kb: KnowledgeBase, match: str, weights: str, k: int) -> list[tuple[int, float]]:
    rows = kb.store.db.execute(
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


def test_ingest_saves_the_index(kb):
    idx = kb.keyword_index()
    assert idx is not None and idx.size == kb.store.counts()["passages"]
    assert bm25.index_bytes(kb.kb_dir) > 0


@pytest.mark.parametrize("query", QUERIES)
def test_keyword_scores_equal_fts5(kb, query):
    terms = expand_query(query)
    idx = kb.keyword_index()
    theirs = fts_rank(kb, fts_query(terms), "1, 0.5, 0.3", 20) if fts_query(terms) else []
    assert_same(idx.search(tokenize(terms), 20), theirs)


@pytest.mark.parametrize("quote", ["坚决做到“两个维护”", "全面从严治党永远在路上", "生产经营单位必须遵守本法"])
def test_quote_scores_equal_fts5_text_column(kb, quote):
    idx = kb.keyword_index()
    theirs = fts_rank(kb, f"terms : ({fts_query(quote)})", "1, 0, 0", 40)
    assert theirs, "the fixture should hold these words"
    assert_same(idx.search(tokenize(quote), 40, text_only=True), theirs)


def _fts(kb, terms, k, weights=None):
    """The ranking from SQLite FTS5 alone (the store's own query, always current)."""
    return kb.store.fts_bm25(terms, k, tuple(weights or kb.config.keyword_weights))


def test_filters_restrict_to_allowed_ids(kb):
    idx = kb.keyword_index()
    all_ids, _ = idx.search(tokenize("安全生产"), 50)
    allowed = np.array(sorted(all_ids[1::2]), dtype=np.int64)
    ids, _ = idx.search(tokenize("安全生产"), 50, allowed_ids=np.r_[allowed, 10**9])
    assert set(ids.tolist()) == set(allowed.tolist())


def test_other_weights_use_fts5(kb):
    ks = KeywordSearcher(kb, weights=(1.0, 0.0, 0.0))
    got = [(c.passage_id, c.score) for c in ks.search("安全生产", 10)]
    assert got == _fts(kb, expand_query("安全生产"), 10, (1.0, 0.0, 0.0))


def test_passages_newer_than_the_index_are_scored_by_fts5_and_merged(tmp_path):
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([MINI], cfg, embed=False, progress=False)
    new = tmp_path / "new.txt"
    new.write_text("关于推进青藏高原冰川保护的通知\n\n各地要加强冰川监测和安全生产。\n", encoding="utf-8")
    writer = KnowledgeBase(cfg)
    ingest_file(writer.store, new, [tmp_path], cfg)  # stored, but no index saved yet
    reader = KnowledgeBase(cfg, readonly=True)
    idx = reader.keyword_index()
    assert idx is not None and idx.behind
    hits = search(reader, "冰川监测", mode="keyword").hits
    assert hits and "冰川" in hits[0].passage.text
    # the merged list holds the newest passage among the older ones, scored by FTS5
    ks = KeywordSearcher(reader)
    merged = {c.passage_id for c in ks.search("安全生产冰川", 50)}
    assert merged == {pid for pid, _ in _fts(reader, expand_query("安全生产冰川"), 50)}
    writer.close()
    ingest([MINI, new], cfg, embed=False, progress=False)  # a small index is rebuilt at once
    idx = reader.keyword_index()
    assert idx is not None and not idx.behind and idx.size == reader.store.counts()["passages"]
    reader.close()


def test_far_behind_index_is_not_used(tmp_path, monkeypatch):
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([MINI], cfg, embed=False, progress=False)
    monkeypatch.setattr(SqliteBackend, "KEYWORD_USE_DRIFT", 0.0)
    monkeypatch.setattr(SqliteBackend, "KEYWORD_USE_MIN", 0)
    writer = KnowledgeBase(cfg)
    new = tmp_path / "new.txt"
    new.write_text("冰川保护的通知\n\n各地要加强冰川监测。\n", encoding="utf-8")
    ingest_file(writer.store, new, [tmp_path], cfg)
    reader = KnowledgeBase(cfg, readonly=True)
    assert reader.keyword_index() is None
    assert search(reader, "冰川监测", mode="keyword").hits
    writer.close()
    reader.close()


def test_missing_or_damaged_files_fall_back(tmp_path):
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([MINI], cfg, embed=False, progress=False)
    meta = bm25.read_meta(cfg.kb_dir)
    shutil.rmtree(cfg.kb_dir / meta["folder"])
    kb = KnowledgeBase(cfg, readonly=True)
    assert kb.keyword_index() is None
    assert search(kb, "安全生产", mode="keyword").hits
    kb.close()
    ingest([MINI], cfg, embed=False, progress=False)  # a writer rebuilds it
    kb = KnowledgeBase(cfg, readonly=True)
    assert kb.keyword_index() is not None
    kb.close()
