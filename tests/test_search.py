"""Search over a small Chinese fixture corpus: modes, fusion, filters, de-duplication, quotes, citations."""

from __future__ import annotations

from pathlib import Path

import pytest

from yuanwen.ingest.pipeline import ingest
from yuanwen.search.api import search
from yuanwen.search.cite import cite
from yuanwen.search.quote import lookup_quote
from yuanwen.search.retrieve import Candidate, fuse
from yuanwen.config import Config
from yuanwen.errors import BadQueryError, UsageError
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, Filters

MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture(scope="module")
def kb(tmp_path_factory, backend):
    cfg = Config(kb_dir=tmp_path_factory.mktemp("kb"))
    report = ingest([MINI], cfg, embedder="fake", progress=False)
    assert not report.failed
    base = KnowledgeBase(cfg, readonly=True)
    yield base
    base.close()


def titles(res) -> list[str]:
    return [h.document.title for h in res.hits]


def test_manifest_metadata_applies(kb):
    docs = {d.title: d for d in kb.store.documents()}
    assert docs["在全市安全生产工作会议上的讲话"].issuer == "张三"
    assert docs["某市安全生产条例"].doc_type == "地方性法规"


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_each_mode_finds_the_obvious_passage(kb, mode):
    res = search(kb, "企业主要负责人的安全生产责任", k=5, mode=mode)
    assert res.mode == mode and res.hits
    assert any("主要负责人" in h.passage.text for h in res.hits[:3])
    assert [h.rank for h in res.hits] == list(range(1, len(res.hits) + 1))


def test_fusion_mixes_minmax_scores():
    dense = [Candidate(1, 0.9), Candidate(2, 0.5), Candidate(3, 0.1)]
    sparse = [Candidate(3, 12.0), Candidate(4, 2.0)]
    fused = fuse(dense, sparse, dense_weight=0.6)
    scores = {c.passage_id: round(c.score, 3) for c in fused}
    assert scores == {1: 0.6, 2: 0.3, 3: 0.4, 4: 0.0}
    assert [c.passage_id for c in fused] == [1, 3, 2, 4]
    # only one side: its order is kept
    assert [c.passage_id for c in fuse([], sparse, 0.6)] == [3, 4]


def test_filter_by_type(kb):
    res = search(kb, "安全生产", k=10, filters=Filters(doc_types=["地方性法规"]))
    assert res.hits and set(titles(res)) == {"某市安全生产条例"}


def test_filter_by_issuer_substring(kb):
    res = search(kb, "防汛", k=10, filters=Filters(issuers=["应急管理局"]))
    assert res.hits and {h.document.issuer for h in res.hits} == {"区应急管理局"}


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_filter_by_dates(kb, mode):
    res = search(kb, "安全", k=10, mode=mode, filters=Filters(since="2022", until="2022-06-05"))
    assert res.hits and {h.document.date for h in res.hits} == {"2022-06-01"}
    res = search(kb, "安全", k=10, mode=mode, filters=Filters(until="2019"))
    assert res.hits and {h.document.date[:4] for h in res.hits} == {"2019"}


def test_filter_by_documents(kb):
    law = next(d for d in kb.store.documents() if d.doc_type == "地方性法规")
    res = search(kb, "防汛 安全", k=10, filters=Filters(doc_ids=[law.id]))
    assert res.hits and {h.document.id for h in res.hits} == {law.id}


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_filter_matching_nothing_returns_nothing(kb, mode):
    res = search(kb, "安全生产", k=10, mode=mode, filters=Filters(doc_types=["公报"]))
    assert res.hits == []


def test_filters_apply_before_the_cut(kb):
    """-k with a filter returns k matching hits when there are that many, not fewer."""
    unfiltered = search(kb, "安全生产 责任", k=2, mode="keyword")
    # the unfiltered top 2 hold other types: a filter applied after the cut would leave fewer
    assert any(h.document.doc_type != "地方性法规" for h in unfiltered.hits)
    res = search(kb, "安全生产 责任", k=2, mode="keyword", filters=Filters(doc_types=["地方性法规"]))
    assert len(res.hits) == 2 and all(h.document.doc_type == "地方性法规" for h in res.hits)


def test_adjacent_passages_are_not_listed_twice(kb):
    """Neighbours in one section are merged into one hit; across a heading they stay apart
    (a hit never crosses a heading, see test_hit_structure.py)."""
    res = search(kb, "安全生产 责任 防汛 预警", k=20, mode="hybrid")
    seen: dict[int, list] = {}
    for h in res.hits:
        first, last = h.passage.seq, h.passage.seq + _passage_count(kb, h) - 1
        for lo, hi, path in seen.get(h.document.id, []):
            if lo - 1 <= last and first <= hi + 1:  # touching: only across a heading
                assert path != h.passage.heading_path
        seen.setdefault(h.document.id, []).append((first, last, h.passage.heading_path))
    texts = [h.passage.text for h in res.hits]
    assert len(texts) == len(set(texts))


def _passage_count(kb, hit) -> int:
    return sum(1 for p in kb.store.document_passages(hit.document.id)
               if p.start < hit.passage.end and p.end > hit.passage.start)


def test_hits_carry_source_and_highlights(kb):
    res = search(kb, "防汛责任人", k=3)
    h = res.hits[0]
    assert h.document.title and h.citation and h.citation.footnote.endswith("。")
    assert h.passage.start < h.passage.end
    assert any(t in h.passage.text for t in h.matched_terms)


@pytest.mark.parametrize("query", ["", "   ", "。，！？…", "安" * 3000])
def test_bad_queries(kb, query):
    with pytest.raises(BadQueryError):
        search(kb, query)


def test_bad_mode(kb):
    with pytest.raises(UsageError):
        search(kb, "安全", mode="fuzzy")


# -- quotes --------------------------------------------------------------------------------
def test_quote_exact_ignores_width_and_spaces(kb):
    res = lookup_quote(kb, "企业主要负责人是本单位安全生产第一责任人， 对本单位的安全生产工作全面负责")
    assert res.verdict == "exact" and res.similarity == 100
    m = res.matches[0]
    assert "第一责任人" in m.text and m.diff == []
    doc = kb.store.get_document(m.document.id)
    assert doc.text[m.start:m.end] == m.text


def test_quote_close_with_diff(kb):
    # dropped 切实, changed 职责 -> 责任, added 认真
    res = lookup_quote(kb, "各行业主管部门要按照管行业必须管安全的要求，认真履行监管责任")
    assert res.verdict == "close" and 60 <= res.similarity < 100
    kinds = {op.kind for op in res.matches[0].diff}
    assert {"equal", "missing", "changed"} <= kinds or {"equal", "missing", "added"} <= kinds
    missing = "".join(op.original for op in res.matches[0].diff if op.kind in ("missing", "changed"))
    assert "切实" in missing


def test_quote_not_found(kb):
    res = lookup_quote(kb, "要把青年干部派到信访接待一线蹲点锻炼，每人每年不少于三十天")
    assert res.verdict == "not_found" and res.matches == []


def test_quote_in_several_documents_earliest_first(kb):
    res = lookup_quote(kb, "遇有强降雨时，要提前转移危险区域群众")
    assert res.verdict == "exact"
    dates = [m.document.date for m in res.matches]
    assert dates == ["2022-06-01", "2022-06-10"]


def test_quote_too_short(kb):
    with pytest.raises(BadQueryError, match="至少"):
        lookup_quote(kb, "安全生产")


# -- citations -----------------------------------------------------------------------------
def _doc(**kw) -> Document:
    base = dict(path="x", title="t", text="", content_hash="h")
    base.update(kw)
    return Document(**base)


def test_citation_official_document_both_styles():
    d = _doc(title="国务院办公厅关于推进政务新媒体健康有序发展的意见", issuer="国务院办公厅",
             date="2018-12-07", doc_number="国办发〔2018〕123号", doc_type="意见")
    c = cite(d)
    assert c.footnote == "国务院办公厅：《关于推进政务新媒体健康有序发展的意见》（国办发〔2018〕123号），2018年12月7日。"
    assert c.gbt7714 == "国务院办公厅. 国务院办公厅关于推进政务新媒体健康有序发展的意见: 国办发〔2018〕123号[Z]. 2018-12-07."


def test_citation_speech_in_newspaper():
    d = _doc(title="高举中国特色社会主义伟大旗帜 为全面建设社会主义现代化国家而团结奋斗", issuer="习近平",
             date="2022-10-16", doc_type="讲话",
             extra={"publication": {"name": "人民日报", "date": "2022-10-26", "page": "1"}})
    c = cite(d)
    assert c.footnote == ("习近平：《高举中国特色社会主义伟大旗帜 为全面建设社会主义现代化国家而团结奋斗》，"
                          "《人民日报》2022年10月26日，第1版。")
    assert c.gbt7714.endswith("[N]. 人民日报, 2022-10-26(1).")


def test_citation_with_missing_fields_prints_only_what_is_known():
    c = cite(_doc(title="学习笔记"))
    assert c.footnote == "《学习笔记》。" and c.gbt7714 == "学习笔记[Z]."
    c = cite(_doc(title="在科学家座谈会上的讲话", issuer="习近平", doc_type="讲话", date="2020-09-11"))
    assert c.footnote == "习近平：《在科学家座谈会上的讲话》（2020年9月11日）。"
    c = cite(_doc(title="中华人民共和国安全生产法", doc_type="法律", date="2021-06-10",
                  issuer="全国人民代表大会常务委员会"), heading_path=["第一章 总则", "第三条"])
    assert c.footnote == "《中华人民共和国安全生产法》第三条，2021年6月10日。"
    c = cite(_doc(title="某通知", date="2024"), page=3)
    assert c.footnote == "《某通知》，2024年，第3页。" and c.gbt7714 == "某通知[Z]. 2024: 3."


def test_footnote_citation_of_a_notice_names_issuer_number_date_and_place():
    d = _doc(title="国务院办公厅关于加强2024年防汛抗旱工作的通知", issuer="国务院办公厅",
             date="2024-05-20", doc_number="国办发〔2024〕6号", doc_type="通知")
    assert cite(d).footnote == "国务院办公厅：《关于加强2024年防汛抗旱工作的通知》（国办发〔2024〕6号），2024年5月20日。"
    assert cite(d, ["第二章 职责", "第十条"], page=4).footnote == (
        "国务院办公厅：《关于加强2024年防汛抗旱工作的通知》（国办发〔2024〕6号），2024年5月20日，第十条，第4页。")
    # two issuers; a 《》 inside the title becomes 〈〉
    d = _doc(title="国务院、中央军委关于印发《某某规定》的通知", issuer="国务院、中央军委", date="2020-01-02",
             doc_type="通知")
    assert cite(d).footnote == "国务院、中央军委：《关于印发〈某某规定〉的通知》，2020年1月2日。"
    # an issuer that is not at the start of the title is printed before it, once
    d = _doc(title="关于做好某项工作的公告", issuer="山西省能源局", date="2021-07-13", doc_type="公告")
    assert cite(d).footnote == "山西省能源局：《关于做好某项工作的公告》，2021年7月13日。"
    # a 文号 already in the title is not repeated
    d = _doc(title="某某办法（应急管理部令第1号）", issuer="应急管理部", doc_number="应急管理部令第1号",
             doc_type="部门规章", date="2019-07-01")
    assert cite(d, ["第一章 总则", "第三条"]).footnote == "《某某办法（应急管理部令第1号）》第三条，2019年7月1日。"


def test_footnote_citation_of_an_untyped_document_cites_a_law_only_when_its_title_names_one():
    # no type: a notice keeps its issuer, and its 文号 comes before the article and page
    d = _doc(title="国务院办公厅关于加强2024年防汛抗旱工作的通知", issuer="国务院办公厅",
             date="2024-05-20", doc_number="国办发〔2024〕6号")
    assert cite(d, ["第十条"], page=4).footnote == (
        "国务院办公厅：《关于加强2024年防汛抗旱工作的通知》（国办发〔2024〕6号），2024年5月20日，第十条，第4页。")
    # no type, but the title names a law (…法, …条例, …办法): the article follows the title
    for title in ("中华人民共和国安全生产法（2021年修正）", "安全生产许可证条例", "某某管理办法（试行）"):
        law = _doc(title=title, issuer="全国人民代表大会常务委员会", date="2021-06-10")
        assert cite(law, ["第一章 总则", "第三条"]).footnote == f"《{title}》第三条，2021年6月10日。"
    # a 文号 comes straight after the title, the article after it
    rule = _doc(title="某某规定", issuer="应急管理部", doc_number="应急管理部令第2号", date="2019-07-01",
                doc_type="部门规章")
    assert cite(rule, ["第三条"]).footnote == "《某某规定》（应急管理部令第2号）第三条，2019年7月1日。"
    # …方法 / …做法 name no law
    d = _doc(title="基层治理的工作方法", issuer="某某县委", date="2020-01-02")
    assert cite(d, ["第三条"]).footnote == "某某县委：《基层治理的工作方法》，2020年1月2日，第三条。"


def test_footnote_citation_of_a_law_article_and_a_speech():
    law = _doc(title="中华人民共和国安全生产法", doc_type="法律", date="2021-06-10",
               issuer="全国人民代表大会常务委员会")
    assert cite(law, ["第一章 总则", "第三条"]).footnote == "《中华人民共和国安全生产法》第三条，2021年6月10日。"
    speech = _doc(title="在科学家座谈会上的讲话", issuer="习近平", doc_type="讲话", date="2020-09-11")
    assert cite(speech).footnote == "习近平：《在科学家座谈会上的讲话》（2020年9月11日）。"
    speech.extra = {"speaker": "习近平", "publication": {"name": "人民日报", "date": "2020-09-12", "page": "2"}}
    assert cite(speech).footnote == "习近平：《在科学家座谈会上的讲话》，《人民日报》2020年9月12日，第2版。"
    report = _doc(title="沿着有中国特色的社会主义道路前进", issuer="中共中央（赵紫阳）", doc_type="党代会报告",
                  date="1987-10-25")
    assert cite(report).footnote == "赵紫阳：《沿着有中国特色的社会主义道路前进》（1987年10月25日）。"


@pytest.mark.parametrize("raw,iso", [("2018", "2018"), ("2018-3", "2018-03"), ("2018-03-01", "2018-03-01"),
                                     ("2018/3/1", "2018-03-01"), ("2018年3月1日", "2018-03-01"), ("2018年", "2018"),
                                     (None, None), ("", None)])
def test_date_bounds_are_normalised(raw, iso):
    from yuanwen.search.api import parse_date_bound

    assert parse_date_bound(raw) == iso


@pytest.mark.parametrize("raw", ["去年", "2018-13", "18-03-01", "2018-02-40"])
def test_bad_date_bounds_are_usage_errors(kb, raw):
    with pytest.raises(UsageError, match="日期"):
        search(kb, "安全", filters=Filters(since=raw))


def test_highlight_spans_merge_touching_terms():
    from yuanwen.search.api import highlight_spans

    text = "坚持安全生产，ＡＢＣ安全"
    assert highlight_spans(text, ["安全", "生产", "abc"]) == [(2, 6), (7, 12)]
    assert highlight_spans(text, []) == []


def test_meeting_abbreviations_expand_for_keyword_search():
    from yuanwen.search.retrieve import expand_query

    assert "第十九次全国代表大会" in expand_query("十九大对主要矛盾的判断")
    assert "第十九届中央委员会第四次全体会议" in expand_query("十九届四中全会精神")
    assert expand_query("扩大内需，大力推进") == "扩大内需，大力推进"


def test_a_named_document_is_preferred(kb):
    from yuanwen.search.retrieve import named_documents

    titles = dict(kb.store.titles())
    named = named_documents(kb, "安全生产条例对主要负责人有什么要求")
    assert {titles[i] for i in named} == {"某市安全生产条例"}
    assert named_documents(kb, "安全生产", max_docs=1) == set()  # in two titles: names neither
    res = search(kb, "安全生产条例对主要负责人有什么要求", k=3)
    assert res.hits[0].document.title == "某市安全生产条例"


@pytest.mark.parametrize("query", [
    "安全生产法关于生产经营单位的规定", "消防法第三条", "二十大报告中关于全面从严治党的论述", "安全生产",
    "政府工作报告", "生产", "关于巡视整改的讲话", "中华人民共和国", "ab", "十九大以来"])
def test_named_documents_equals_aligning_every_title(kb, query):
    from yuanwen.search.retrieve import named_documents, named_documents_by_alignment

    assert named_documents(kb, query) == named_documents_by_alignment(kb, query)
