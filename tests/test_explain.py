"""A ranking is a list of named signals: each hit says what its score is made of (--explain)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from yuanwen.cli import cli
from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest
from yuanwen.search.api import search

from .conftest import MINI

PARTS = ("semantic", "keyword", "title", "understood", "document")


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, backend) -> Path:
    """The mini fixture on each backend (read only)."""
    d = tmp_path_factory.mktemp("kb")
    assert not ingest([MINI], Config(kb_dir=d), embedder="fake", progress=False).failed
    return d


def test_hybrid_scores_are_the_sum_of_their_signals(kb):
    for q in ("企业主要负责人的安全生产责任", "某市安全生产条例关于应急救援的规定", "防汛"):
        for hit in search(kb, q, k=5).hits:
            parts = {k: v for k, v in hit.signals.items() if k in PARTS}
            assert parts and sum(parts.values()) == pytest.approx(hit.score), (q, hit.signals)
            assert {"bm25", "cosine"} & set(hit.signals)  # the raw score of at least one side


def test_a_named_document_shows_its_title_boost(kb):
    hit = search(kb, "某市安全生产条例关于应急救援的规定", k=1).hits[0]
    assert hit.document.title == "某市安全生产条例" and hit.signals.get("title", 0) > 0


def test_single_mode_signals_are_the_raw_scores(kb):
    for hit in search(kb, "安全生产责任", k=3, mode="keyword").hits:
        assert hit.signals == {"bm25": pytest.approx(hit.score)}
    for hit in search(kb, "安全生产责任", k=3, mode="semantic").hits:
        assert hit.signals == {"cosine": pytest.approx(hit.score)}


def test_explain_in_the_cli_and_the_json(kb_dir):
    out = CliRunner().invoke(cli, ["search", "企业主要负责人的安全生产责任", "--kb", str(kb_dir), "-k", "3",
                                   "--explain"]).output
    lines = [ln for ln in out.splitlines() if "排序依据：" in ln]
    assert len(lines) == 3 and all("语义" in ln and "关键词" in ln and "=" in ln for ln in lines)
    data = json.loads(CliRunner().invoke(cli, ["search", "防汛", "--kb", str(kb_dir), "--json"]).output)
    assert all(set(h["signals"]) & {"semantic", "keyword"} for h in data["hits"])
