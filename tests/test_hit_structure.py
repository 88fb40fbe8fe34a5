"""Hits respect the document's structure, and do not depend on how many are asked for.

A merged hit (neighbouring passages shown as one) never crosses a heading: its heading path is
the path of every passage it shows. And the first N hits are the same whatever ``k`` is: ``-k 3``
lists a prefix of ``-k 10``. Checked on the bundled sample (the founding document) and on real
documents of ``../shared/corpus``, in every mode, with the fake embedder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest
from yuanwen.kb import KnowledgeBase
from yuanwen.search.api import search
from yuanwen.search.cite import cite

from .conftest import SAMPLE, SHARED

QUERIES = ["安全生产责任制", "关于安全生产的重要论述", "怎么落实巡视整改", "高质量发展", "生态环境保护",
           "防汛抗旱", "全面从严治党", "乡村振兴"]
SHARED_DOCS = ["reports", "speeches", "policy"]  # folders of ../shared/corpus, a few files of each


@pytest.fixture(scope="module")
def kb(tmp_path_factory, backend):
    docs = tmp_path_factory.mktemp("docs")
    shutil.copy(SAMPLE, docs / SAMPLE.name)
    if SHARED.is_dir():
        for folder in SHARED_DOCS:
            for f in sorted((SHARED / folder).glob("*"))[:4]:
                if f.suffix in (".md", ".txt", ".html"):
                    shutil.copy(f, docs / f.name)
    cfg = Config(kb_dir=tmp_path_factory.mktemp("kb"))
    report = ingest([docs], cfg, embedder="fake", progress=False)
    assert not report.failed
    base = KnowledgeBase(cfg, readonly=True)
    yield base
    base.close()


def _key(hit) -> tuple:
    p = hit.passage
    return p.doc_id, p.start, p.end, tuple(p.heading_path), p.text


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_a_hit_never_crosses_a_heading(kb, mode):
    checked = 0
    for q in QUERIES:
        for hit in search(kb, q, k=25, mode=mode).hits:
            shown = [p for p in kb.store.document_passages(hit.passage.doc_id)
                     if p.start < hit.passage.end and p.end > hit.passage.start]
            assert shown and all(p.heading_path == hit.passage.heading_path for p in shown), (
                q, hit.passage.heading_path, [p.heading_path for p in shown])
            assert hit.citation == cite(hit.document, hit.passage.heading_path, hit.passage.page)
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_fewer_results_are_a_prefix_of_more(kb, mode):
    for q in QUERIES:
        by_k = {k: [_key(h) for h in search(kb, q, k=k, mode=mode).hits] for k in (1, 3, 10, 30)}
        assert by_k[3] == by_k[10][:3] and by_k[1] == by_k[3][:1], q
        assert by_k[10] == by_k[30][:10], q


def test_the_sample_labels_its_best_hit_where_the_words_are(kb):
    """The issue's case: 安全生产责任制 on the founding document, the default 10 results."""
    sample = next(d for d in kb.store.documents() if Path(d.path).name == SAMPLE.name)
    hits = [h for h in search(kb, "安全生产责任制", k=10, mode="keyword").hits if h.document.id == sample.id]
    assert hits
    for hit in hits:
        if "安全生产责任" in hit.passage.text:
            section = hit.passage.heading_path[0] if hit.passage.heading_path else ""
            where = sample_text_section(kb, sample.id, hit.passage.start + hit.passage.text.index("安全生产责任"))
            assert section == where


def sample_text_section(kb, doc_id: int, offset: int) -> str:
    """The level-1 heading of the passage that holds ``offset``."""
    for p in kb.store.document_passages(doc_id):
        if p.start <= offset < p.end:
            return p.heading_path[0] if p.heading_path else ""
    raise AssertionError(offset)
