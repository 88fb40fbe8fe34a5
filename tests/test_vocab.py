"""Vocabularies kept as data (yuanwen/data/): each loads, and means what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from yuanwen.search.retrieve import expand_query
from yuanwen.conventions import HAN
from yuanwen.vocab import doc_type_endings, doc_types, doc_types_cited_as, info_labels, meetings, question_words, speakers


def test_meetings_table_lists_every_congress_once():
    table = meetings()
    shorts = [m.short for m in table]
    assert len(shorts) == len(set(shorts)) >= 20
    by_short = {m.short: m for m in table}
    assert by_short["十九大"].full == "第十九次全国代表大会" and by_short["十九大"].stands_alone
    assert by_short["二十大"].full == "第二十次全国代表大会"
    assert not by_short["三大"].stands_alone and not by_short["十大"].stands_alone


@pytest.mark.parametrize("query", ["三大攻坚战", "五大发展理念", "四大考验", "十大工程", "党的三大作风",
                                   "三大法宝", "扩大内需，大力推进", "二十九大类"])
def test_the_n_major_things_are_never_taken_for_a_congress(query):
    """The old rule turned 三大攻坚战 into 第三次全国代表大会 (and could boost its title)."""
    assert "全国代表大会" not in expand_query(query)


@pytest.mark.parametrize("query,full", [
    ("十九大对主要矛盾的判断", "第十九次全国代表大会"), ("二十大报告", "第二十次全国代表大会"),
    ("党的十八大以来", "第十八次全国代表大会"), ("党的三大召开的时间", "第三次全国代表大会"),
    ("党的七大", "第七次全国代表大会"), ("二十一大", "第二十一次全国代表大会"),
    ("十九届四中全会精神", "第十九届中央委员会第四次全体会议")])
def test_congress_short_names_get_their_full_names(query, full):
    assert full in expand_query(query)
    assert expand_query(query).count("全国代表大会") <= 1 or "届" in query


# -- document types: one list for metadata (title endings) and citations -----------------------

def test_document_types_are_one_list_shared_by_metadata_and_citations():
    from yuanwen.ingest.metadata import DOC_TYPE_SUFFIXES
    from yuanwen.search.cite import LAW_TYPES, REPORT_TYPES, SPEECH_TYPES

    table = doc_types()
    names = [t.name for t in table]
    assert len(names) == len(set(names)) >= 30
    endings = [e for t in table for e in t.endings]
    assert len(endings) == len(set(endings)), "an ending names two types"
    assert DOC_TYPE_SUFFIXES == doc_type_endings()
    assert set(DOC_TYPE_SUFFIXES.values()) <= set(names), "metadata gives a type the list lacks"
    assert (SPEECH_TYPES, LAW_TYPES, REPORT_TYPES) == tuple(
        doc_types_cited_as(c) for c in ("speech", "law", "report"))
    assert {"讲话", "致辞", "回信"} <= SPEECH_TYPES and {"法律", "条例"} <= LAW_TYPES
    assert {"报告", "政府工作报告"} <= REPORT_TYPES


@pytest.mark.parametrize("title,dtype,citation", [
    ("国务院办公厅关于推进政务新媒体健康有序发展的意见", "意见", ""),
    ("关于同意建立某某制度的复函", "函", ""),
    ("2023年国务院政府工作报告", "报告", "report"),
    ("在全国抗击新冠肺炎疫情表彰大会上的致辞", "讲话", "speech"),
    ("某某安全生产条例（试行）", "条例", "law"),
    ("中华人民共和国安全生产法", "法律", "law"),
])
def test_a_title_ending_names_a_type_and_the_type_says_how_it_is_cited(title, dtype, citation):
    from yuanwen.ingest.metadata import doc_type_of

    assert doc_type_of(title) == dtype
    assert {t.name: t.citation for t in doc_types()}[dtype] == citation


def test_a_speech_type_from_a_manifest_is_cited_with_its_speaker():
    from yuanwen.search.cite import cite
    from yuanwen.models import Document

    doc = Document(path="a.txt", title="在某会议上的讲话", text="", content_hash="h", issuer="李某某",
                   doc_type="讲话（文章节选）", date="2020-09-08")
    assert cite(doc).footnote == "李某某：《在某会议上的讲话》（2020年9月8日）。"
    assert cite(Document(path="b.txt", title="某某报告", text="", content_hash="h",
                         doc_type="党代会报告")).gbt7714.endswith("[R].")


# -- speakers -----------------------------------------------------------------------------------

def test_speakers_are_names_listed_once():
    from yuanwen.ingest.metadata import KNOWN_SPEAKERS

    names = speakers()
    assert KNOWN_SPEAKERS == names and "习近平" in names and "李强" in names
    assert len(names) == len(set(names)) >= 20
    assert all(re.fullmatch(f"[{HAN}]{{2,3}}", n) for n in names)


@pytest.mark.parametrize("name", ["李强", "温家宝", "江泽民"])
def test_a_listed_speaker_is_found_in_run_on_text(name):
    """Run-on text (line breaks lost) names its speaker only by a name from the list."""
    from yuanwen.ingest.metadata import extract_metadata

    text = (f"不断开拓新境界※{name}今天，中央政治局进行集体学习。我们要立足我国国情。"
            f"※这是{name}同志2015年11月23日在中央政治局集体学习时的讲话。")
    m = extract_metadata(text, Path("x.txt"))
    assert m["extra"]["speaker"] == name and m["issuer"] == name


# -- gov.cn info-table labels -------------------------------------------------------------------

def test_info_labels_map_each_label_once():
    table = info_labels()
    labels = [x.label for x in table]
    assert len(labels) == len(set(labels)) >= 8
    by_label = {x.label: x for x in table}
    assert by_label["发文字号"].key == "doc_number" and by_label["发文机关"].key == "issuer"
    assert {x.label for x in table if x.is_date} == {"成文日期", "发布日期"}


def test_a_gov_cn_info_table_fills_the_metadata(tmp_path):
    from yuanwen.ingest.readers import read_file

    rows = [("索引号", "000014349/2018-00123"), ("发文机关", "国务院办公厅"), ("成 文 日 期", "2018年12月07日"),
            ("发文字号", "国办发〔2018〕123号"), ("发布日期", "2018-12-27"), ("标题", "关于推进政务新媒体健康有序发展的意见")]
    cells = "".join(f"<tr><td><b>{k}：</b></td><td>{v}</td></tr>" for k, v in rows)
    page = (f"<html><body><table>{cells}</table><div><p>国务院办公厅关于推进政务新媒体健康有序发展的意见</p>"
            "<p>各省、自治区、直辖市人民政府：政务新媒体是移动互联网时代党和政府联系群众的重要渠道。</p></div></body></html>")
    path = tmp_path / "gov.html"
    path.write_text(page, encoding="utf-8")
    meta = read_file(path).meta
    assert meta["issuer"] == "国务院办公厅" and meta["doc_number"] == "国办发〔2018〕123号"
    assert meta["date"] == "2018-12-07" and meta["published"] == "2018-12-27"
    assert meta["index_no"] == "000014349/2018-00123"


# -- question words -----------------------------------------------------------------------------

def test_question_words_are_listed_once_each_before_any_word_it_holds():
    words = question_words()
    assert len(words) == len(set(words)) >= 20 and {"什么", "哪些", "怎么", "如何"} <= set(words)
    for i, w in enumerate(words):
        for shorter in words[:i]:
            assert shorter not in w, f"{w} comes after {shorter}, which it holds: {w} is never dropped whole"


@pytest.mark.parametrize("query,kept", [("局党委是怎么抓巡视整改的", "巡视整改"), ("安全生产有哪些要求", "安全生产"),
                                        ("什么样的干部是好干部", "好干部"), ("请问如何开展审计整改呢", "审计整改")])
def test_question_words_are_dropped_from_keyword_queries(query, kept):
    out = expand_query(query)
    assert kept in out
    assert not any(w in out for w in question_words())


# -- 提法 (yuanwen/data/formulations.tsv) -------------------------------------------------------
def test_the_glossary_has_a_hundred_formulations_each_with_wording_and_source():
    from yuanwen.vocab import formulations

    fs = formulations()
    assert len(fs) >= 100
    names = [n for f in fs for n in (f.term, *f.aliases)]
    assert len(names) == len(set(names)), "a short form is listed twice"
    for f in fs:
        assert f.term and f.full and f.source and f.full != f.term, f
        assert len(f.full) > len(f.term)
    terms = {f.term for f in fs}
    assert {"两个维护", "四个意识", "四个自信", "两个确立", "五位一体", "四个全面", "三大攻坚战",
            "新发展理念", "六稳", "六保", "十四五"} <= terms


@pytest.mark.parametrize(("text", "terms"), [
    ("坚决做到“两个维护”，增强“四个意识”", ["两个维护", "四个意识"]),
    ("“十四五”时期", ["十四五"]),
    ("14五时期", ["十四五"]),  # Arabic numerals fold to the same entry
    ("打好三大攻坚战", ["三大攻坚战"]),
    ("防汛抗旱工作", []),
])
def test_formulations_are_found_by_their_short_forms(text, terms):
    from yuanwen.search.retrieve import formulations_in

    assert sorted(f.term for f in formulations_in(text)) == sorted(terms)


def test_a_query_for_a_short_form_finds_the_passage_that_spells_it_out(tmp_path):
    """Keyword search adds the full wording: 两个维护 finds a passage that never says 两个维护."""
    from yuanwen.config import Config
    from yuanwen.ingest.pipeline import ingest
    from yuanwen.kb import KnowledgeBase
    from yuanwen.search.api import search

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("关于加强党的政治建设的意见\n\n全体党员要坚决维护习近平总书记党中央的核心、全党的核心地位，"
                                "坚决维护党中央权威和集中统一领导。\n", encoding="utf-8")
    (docs / "b.txt").write_text("关于做好防汛工作的通知\n\n各地要加强汛期值班值守，确保安全度汛。\n", encoding="utf-8")
    cfg = Config(kb_dir=tmp_path / "kb")
    ingest([docs], cfg, embed=False, progress=False)
    kb = KnowledgeBase(cfg, readonly=True)
    hits = search(kb, "两个维护", k=3, mode="keyword").hits
    assert hits and "坚决维护党中央权威" in hits[0].passage.text
    kb.close()
