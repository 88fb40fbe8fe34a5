"""What the CLI and the app both write (search/present.py), and the knowledge base's facets,
counted once per database version (yuanwen/kb.py)."""

from __future__ import annotations

import html
import shutil

from yuanwen.ingest.pipeline import ingest
from yuanwen.search.present import (HTML_DIFF, TEXT_DIFF, VERDICT_LABELS, ingest_summary, mark_terms,
                            render_diff, render_match)
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.models import DiffOp, Document, FileOutcome, IngestReport, QuoteMatch

from .conftest import ROOT, FakeEmbedder  # noqa: F401  (registers the "fake" embedder)

DIFF = [DiffOp("equal", "要", "要"), DiffOp("missing", "", "切实"), DiffOp("equal", "履行", "履行"),
        DiffOp("added", "<好>", ""), DiffOp("changed", "监督", "监管"), DiffOp("equal", "责任", "责任")]


def _match(text: str, diff: list[DiffOp], exact: bool = False) -> QuoteMatch:
    doc = Document(path="a.txt", title="文", text="前。" + text, content_hash="h")
    return QuoteMatch(document=doc, start=2, end=2 + len(text), text=text, match_start=3,
                      match_end=2 + len(text) - 1, similarity=90.0, exact=exact, diff=diff)


def test_text_diff_marks_each_kind():
    assert render_diff(DIFF) == "要[-切实-]履行{+<好>+}[~监督→监管~]责任"
    assert render_diff(DIFF, TEXT_DIFF) == render_diff(DIFF)


def test_html_diff_escapes_the_text_inside_its_markup():
    out = render_diff(DIFF, HTML_DIFF, html.escape)
    assert '<span class="yw-missing" title="原文有而引文缺">切实</span>' in out
    assert '<span class="yw-added" title="引文多出">&lt;好&gt;</span>' in out
    assert 'title="引文作：监督">监管<span class="yw-quote">〔引文作“监督”〕</span>' in out
    assert "<好>" not in out


def test_render_match_keeps_the_text_around_the_matched_span():
    m = _match("甲要切实履行监管责任乙", DIFF)
    assert render_match(m) == "甲要[-切实-]履行{+<好>+}[~监督→监管~]责任乙"
    exact = _match("甲<要>乙", [], exact=True)
    assert render_match(exact, HTML_DIFF, html.escape, "<mark>{text}</mark>") == "甲<mark>&lt;要&gt;</mark>乙"


def test_mark_terms_in_both_media():
    assert mark_terms("安全生产责任", ["安全"], "【", "】") == "【安全】生产责任"
    assert mark_terms("<安全>", ["安全"], "<mark>", "</mark>", html.escape) == "&lt;<mark>安全</mark>&gt;"


def test_ingest_summary_is_one_sentence():
    report = IngestReport(outcomes=[FileOutcome("a", "added"), FileOutcome("b", "failed", "坏"),
                                    FileOutcome("c", "pruned")])
    assert ingest_summary(report) == ("完成：新增 1 篇，更新 0 篇，未变 0 篇，重复 0 篇，失败 1 篇，"
                                      "删除 1 篇")
    assert ingest_summary(report, stopped=True, refused=2).startswith("中断：")
    assert "失败 3 篇" in ingest_summary(report, refused=2)
    assert set(VERDICT_LABELS) == {"exact", "close", "not_found"}


def test_facets_are_counted_once_per_database_version(tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "tests" / "fixtures" / "mini", src)
    extra = src.parent / "later"
    kb_dir = tmp_path / "kb"
    ingest([src], Config(kb_dir=kb_dir), embedder="fake", progress=False)
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    calls: list[str] = []
    counts = kb.store.group_counts
    monkeypatch.setattr(kb.store, "group_counts", lambda col, f=None: calls.append(col) or counts(col, f))
    try:
        first = kb.facets()
        assert kb.facets() == first and kb.stats()["by_type"] == first["by_type"]
        assert len(calls) == 4  # by_type, by_issuer, by_year, by_format: once
        first["by_type"].clear()  # callers get copies
        assert kb.facets()["by_type"]
        extra.mkdir()
        (extra / "新.md").write_text("---\ntitle: 新的通知\ndoc_type: 通报\n---\n正文一段。\n",
                                     encoding="utf-8")
        ingest([extra], Config(kb_dir=kb_dir), embedder="fake", progress=False)  # another connection
        assert "通报" in kb.facets()["by_type"] and len(calls) == 8
    finally:
        kb.close()


def test_cli_and_app_share_the_labels():
    app_src = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "pages_app").glob("*.py"))
    cli_src = (ROOT / "cli" / "__init__.py").read_text(encoding="utf-8")
    for src in (app_src, cli_src, (ROOT / "app.py").read_text(encoding="utf-8")):
        assert "原文一致" not in src and "新增 {" not in src  # written once, in search/present.py
