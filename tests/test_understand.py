"""Queries that name what they want: the year, kind of document, issuer or speaker a query names
lift the documents that have them, and the front ends say what was understood."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from yuanwen.cli import cli
from yuanwen.ingest.pipeline import ingest
from yuanwen.search.api import search
from yuanwen.search.understand import document_match, understand

from yuanwen.config import Config

from .conftest import copy_shared

FILES = ["reports/2025-03-05-2025年政府工作报告.txt", "reports/2025-01-13-2025年河北省政府工作报告.txt",
         "reports/2025-01-14-2025年北京市政府工作报告.txt", "reports/2024-03-05-2024年政府工作报告.txt",
         "speeches/2020-07-21-在企业家座谈会上的讲话.txt", "reports/2012-11-08-党的十八大报告.txt",
         "reports/1982-09-01-党的十二大报告.txt", "laws/2007-08-30-突发事件应对法.md",
         "laws/2024-06-28-突发事件应对法.md"]
QUERY = "2025年政府工作报告对安全生产和防灾减灾作了哪些安排"


@pytest.fixture(scope="module", params=[True, False], ids=["manifest", "no-manifest"])
def kb_dir(request, tmp_path_factory) -> Path:
    docs = copy_shared(FILES, tmp_path_factory.mktemp("docs"), manifest=request.param)
    d = tmp_path_factory.mktemp("kb")
    assert not ingest([docs], Config(kb_dir=d), embedder="fake", progress=False).failed
    return d


@pytest.mark.parametrize(("query", "labels"), [
    (QUERY, ["2025年", "政府工作报告"]),
    ("北京2025年政府工作报告 科技创新", ["2025年", "地方政府工作报告", "北京"]),
    ("十九大报告讲了什么", ["党代会报告", "第十九次全国代表大会"]),
    ("总书记在企业家座谈会上讲了什么", ["讲话", "习近平"]),
    ("三大攻坚战和五大发展理念", []),  # not meetings, not years
    ("怎么落实巡视整改", []),
    ("十八大以来全面从严治党取得了哪些成效", []),  # a time, not the congress's report
    ("怎样组织学习宣传二十大精神", []),  # studied in other documents
    ("十四五开局那年的经济增速目标", ["2021年"]),
    ("十三五收官之年的脱贫攻坚", ["2020年"]),
    ("新修订的突发事件应对法怎么保护个人信息", ["现行版本"]),
    ("修订以前", []),
])
def test_what_a_query_names(kb, query, labels):
    assert understand(kb, query).labels() == labels


def test_the_national_report_is_meant_when_the_state_council_is_named(kb):
    assert understand(kb, "国务院今年的政府工作报告对基层减负提出了什么要求").doc_types == ["政府工作报告"]
    assert understand(kb, "北京今年的政府工作报告").doc_types == ["政府工作报告（地方）"]


def test_a_facts_year_also_matches_the_report_that_reviews_it(kb):
    """河南2024年粮食总产量 is in the 2025 report (its review of 2024): that report half matches;
    a year that names the report (2024年政府工作报告) is the report's own year only."""
    docs = {Path(d.path).name: d for d in kb.store.documents()}
    beijing_2025 = docs["2025-01-14-2025年北京市政府工作报告.txt"]
    national_2024 = docs["2024-03-05-2024年政府工作报告.txt"]
    fact = understand(kb, "北京2024年地区生产总值增长了多少")
    assert fact.years == ["2024"] and fact.fact_years == ["2024"]
    assert document_match(fact, beijing_2025) == 0.5 and document_match(fact, national_2024) == 0.0
    named = understand(kb, "2024年政府工作报告怎么讲安全生产")
    assert named.fact_years == [] and document_match(named, national_2024) == 1.0
    res = search(kb, "北京2024年地区生产总值增长了多少", k=3)
    assert "北京" in res.hits[0].document.title


def test_a_named_congress_brings_its_report(kb):
    """十八大提出的… asks for the 18th congress's report, even when another report shares the words
    (the 12th's 收入成倍增长); 十八大以来 does not."""
    res = search(kb, "十八大提出的收入倍增目标是拿哪一年做基数的", k=3)
    assert res.understood == ["第十八次全国代表大会"]
    assert "十八大报告" in Path(res.hits[0].document.path).name
    assert res.hits[0].signals.get("understood", 0) > 0


def test_the_version_in_force_is_preferred_when_asked(kb):
    query = "新修订的突发事件应对法对应急处置中收集的个人信息有什么要求"
    res = search(kb, query, k=3)
    assert "现行版本" in res.understood
    top = res.hits[0].document
    assert "突发事件应对法" in top.title and top.date.startswith("2024")
    assert "现行版本" not in search(kb, "突发事件应对法对个人信息有什么要求", k=3).understood


def test_the_named_report_comes_first(kb):
    res = search(kb, QUERY, k=5)
    assert res.understood == ["2025年", "政府工作报告"]
    top = res.hits[0].document
    assert "2025年" in top.title and "政府工作报告" in top.title and "省" not in top.title and "市" not in top.title
    plain = search(kb, QUERY, k=5, understand=False)
    assert plain.understood == []


def test_keyword_and_semantic_modes_are_not_changed(kb):
    for mode in ("keyword", "semantic"):
        assert search(kb, QUERY, k=5, mode=mode).understood == []


def test_cli_says_what_it_understood_and_can_turn_it_off(kb_dir):
    out = CliRunner().invoke(cli, ["search", QUERY, "--kb", str(kb_dir), "-k", "3"]).output
    assert out.startswith("已识别：2025年 · 政府工作报告")
    data = json.loads(CliRunner().invoke(cli, ["search", QUERY, "--kb", str(kb_dir), "--json"]).output)
    assert data["understood"] == ["2025年", "政府工作报告"]
    data = json.loads(CliRunner().invoke(
        cli, ["search", QUERY, "--kb", str(kb_dir), "--json", "--no-understand"]).output)
    assert data["understood"] == []


def test_the_app_shows_it_and_can_turn_it_off(kb_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from .conftest import APP

    monkeypatch.setenv("YUANWEN_KB", str(kb_dir))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update({"q": QUERY})
    at.run()
    assert not at.exception
    assert any("已识别：2025年 · 政府工作报告" in c.value for c in at.caption)
    at.checkbox(key="s_understand").uncheck()
    at.button(key="s_go").click().run()
    assert not at.exception and not any("已识别" in c.value for c in at.caption)
    assert at.query_params["understand"] == "0" and at.session_state["search_res"].understood == []
