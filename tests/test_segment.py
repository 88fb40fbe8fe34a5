"""Tests for ingest.segment: headings, enumerations, sentences, passages and their invariants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yuanwen.ingest.segment import segment, split_sentences
from yuanwen.models import Heading, Passage, Sentence

ROOT = Path(__file__).resolve().parents[1]
FOUNDING = ROOT / "corpus" / "000_dc0b083f46e91fc1.txt"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"

_WS = re.compile(r"\s")
_ENDS = "。！？；!?;"
_CLOSERS = "”’」』）)〕】》\"'"


def check_invariants(text: str, passages: list[Passage], sentences: list[Sentence],
                     body_end: int | None = None, max_chars: int = 480) -> None:
    """The contract of segment(), checked on any input."""
    limit = len(text) if body_end is None else max(0, min(body_end, len(text)))
    assert [p.seq for p in passages] == list(range(len(passages)))
    prev_end = 0
    for p in passages:
        assert p.text == text[p.start : p.end]
        assert p.text.strip(), "empty passage"
        assert not p.text[0].isspace() and not p.text[-1].isspace()
        assert prev_end <= p.start < p.end <= limit, "passages out of order, overlapping or past body_end"
        prev_end = p.end
        assert all(isinstance(e, str) and e and e == e.strip() for e in p.heading_path), p.heading_path
        assert p.para >= 1
    # Every non-whitespace character before body_end lies in exactly one passage.
    covered = sum(len(_WS.sub("", p.text)) for p in passages)
    assert covered == len(_WS.sub("", text[:limit]))
    # Sentences: verbatim, trimmed, in order, inside their passage.
    prev_end = 0
    for s in sentences:
        assert s.text == text[s.start : s.end] and s.text.strip()
        assert not s.text[0].isspace() and not s.text[-1].isspace()
        assert s.start >= prev_end
        prev_end = s.end
        p = passages[s.passage_seq]
        assert p.start <= s.start and s.end <= p.end
    assert sum(len(_WS.sub("", s.text)) for s in sentences) == covered
    # Passages hold whole sentences, and only single sentences exceed max_chars.
    by_passage: dict[int, list[Sentence]] = {}
    for s in sentences:
        by_passage.setdefault(s.passage_seq, []).append(s)
    for p in passages:
        own = by_passage.get(p.seq, [])
        assert own and own[0].start == p.start and own[-1].end == p.end
        if len(p.text) > max_chars:
            assert len(own) == 1, f"passage {p.seq} of {len(p.text)} chars has {len(own)} sentences"


def passage_at(passages: list[Passage], offset: int) -> Passage:
    return next(p for p in passages if p.start <= offset < p.end)


# -- the founding document ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def founding() -> tuple[str, list[Passage], list[Sentence]]:
    text = FOUNDING.read_text(encoding="utf-8")
    passages, sentences = segment(text)
    return text, passages, sentences


def test_founding_invariants(founding):
    text, passages, sentences = founding
    check_invariants(text, passages, sentences)
    assert 30 <= len(passages) <= 150


def test_founding_title_has_empty_path(founding):
    text, passages, _ = founding
    assert passages[0].start == 0 and passages[0].heading_path == []
    assert passages[0].text.startswith("市应急管理局党委2022年履行全面从严治党主体责任情况报告")


def test_founding_enumeration_paths(founding):
    text, passages, _ = founding
    first = ["一、着力提高政治站位，加强党对应急管理工作的全面领导", "一是坚决做到“两个维护”"]
    # The third paragraph (the 一、 heading line) and the 一是 paragraph under it.
    assert passage_at(passages, text.index("一、着力提高政治站位")).heading_path == first
    assert passage_at(passages, text.index("一是坚决做到")).heading_path == first
    third = [p for p in passages if p.para == 3]
    assert third and third[0].heading_path == first
    # Later passages of the same enumeration item keep the item.
    item_end = text.index("二是坚决落实反馈意见整改")
    for p in passages:
        if text.index("一是坚决做到") <= p.start < item_end:
            assert p.heading_path == first
    assert passage_at(passages, item_end).heading_path == [
        "一、着力提高政治站位，加强党对应急管理工作的全面领导", "二是坚决落实反馈意见整改"]
    second = "二、强化创新理论武装，推动主题学习宣传教育实践活动走深走实"
    assert passage_at(passages, text.index("二是深入贯彻党的二十大精神")).heading_path == [
        second, "二是深入贯彻党的二十大精神"]
    assert passage_at(passages, text.index("五是深入推进精神文明建设")).heading_path == [
        second, "五是深入推进精神文明建设"]


def test_founding_depth_and_plain_paragraphs(founding):
    text, passages, _ = founding
    # The document uses 一、 headings and 一是 items only: two levels at most, and they exist.
    assert max(len(p.heading_path) for p in passages) == 2
    # A plain paragraph after an enumeration item is no longer part of the item.
    p = passage_at(passages, text.index("在总结成绩的同时"))
    assert p.heading_path == ["六、主动履职尽责，以新安全格局保障新发展格局"]


def test_founding_sentences(founding):
    text, passages, sentences = founding
    for s in sentences:
        line_end = text.find("\n", s.end)
        rest = text[s.end : line_end if line_end >= 0 else len(text)]
        if rest.strip():  # not the end of a line: the sentence ends at a sentence end (+ closers)
            assert s.text.rstrip(_CLOSERS)[-1] in _ENDS, s.text[-10:]
        inner = s.text.rstrip(_CLOSERS)[:-1]
        assert not any(c in "。！？；" for c in inner), s.text
    assert max(len(p.text) for p in passages) <= 480


# -- headings --------------------------------------------------------------------------------
LAW = """# 中华人民共和国示例法

2024年1月1日 第十四届全国人民代表大会常务委员会第七次会议通过

## 第一章 总则

第一条 为了规范示例工作，制定本法。

第二条 本法适用于示例活动。

第三条 示例工作应当遵循下列原则：
（一）依法办事；
（二）公开透明。
有关部门应当加强监督。

## 第二章 法律责任

第四条 违反本法规定的，依法追究责任。
第五条 本法自公布之日起施行。
"""


def test_law_chapters_and_articles():
    passages, sentences = segment(LAW)
    check_invariants(LAW, passages, sentences)
    at = lambda s: passage_at(passages, LAW.index(s)).heading_path  # noqa: E731
    assert passages[0].heading_path == []  # the "# title" line is the title, not a heading
    assert at("中华人民共和国示例法") == []
    assert at("第一条") == ["第一章 总则", "第一条"]
    assert at("本法适用于") == ["第一章 总则", "第二条"]
    # Items of an article are part of the article, not headings.
    assert at("（二）公开透明") == ["第一章 总则", "第三条"]
    assert at("有关部门应当加强监督") == ["第一章 总则", "第三条"]
    assert at("违反本法规定") == ["第二章 法律责任", "第四条"]
    assert at("本法自公布之日起施行") == ["第二章 法律责任", "第五条"]
    # An article starts its own passage; the chapter heading stays with its first article.
    assert passage_at(passages, LAW.index("## 第一章")) is passage_at(passages, LAW.index("第一条"))
    assert passage_at(passages, LAW.index("第二条")).start == LAW.index("第二条")


def test_law_without_markdown_and_references():
    text = "第一章　总则\n第一条　为了规范工作，制定本条例。\n第二条至第五条相应删除。\n第二章 附则\n第六条 本条例自发布之日起施行。\n"
    passages, sentences = segment(text)
    check_invariants(text, passages, sentences)
    assert passage_at(passages, text.index("为了规范")).heading_path == ["第一章　总则", "第一条"]
    # "第二条至第五条……" refers to articles: it is body text of 第一条.
    assert passage_at(passages, text.index("第二条至")).heading_path == ["第一章　总则", "第一条"]
    assert passage_at(passages, text.index("本条例自发布")).heading_path == ["第二章 附则", "第六条"]


NESTED = """关于做好示例工作的通知

各有关单位：现将有关事项通知如下。
一、总体要求
（一）指导思想。坚持以人民为中心，全面推进各项工作。
1.加强学习。认真学习有关文件。
（1）集中学习
每月组织一次集中学习。
（2）个人自学。每人每周自学不少于三小时。
2.强化培训。组织开展专题培训。
（二）工作目标
到2025年，基本建成示例体系。
二、主要任务
（一）加强组织领导。各地区要高度重视，切实加强领导。
三、保障措施
要加强督促检查。
"""


def test_nesting_and_popping():
    passages, sentences = segment(NESTED)
    check_invariants(NESTED, passages, sentences)
    at = lambda s: passage_at(passages, NESTED.index(s)).heading_path  # noqa: E731
    assert at("关于做好示例工作的通知") == []
    assert at("现将有关事项") == []
    assert at("坚持以人民为中心") == ["一、总体要求", "（一）指导思想"]
    assert at("认真学习有关文件") == ["一、总体要求", "（一）指导思想", "1.加强学习"]
    assert at("每月组织一次") == ["一、总体要求", "（一）指导思想", "1.加强学习", "（1）集中学习"]
    assert at("每人每周自学") == ["一、总体要求", "（一）指导思想", "1.加强学习", "（2）个人自学"]
    assert at("组织开展专题培训") == ["一、总体要求", "（一）指导思想", "2.强化培训"]  # pops （2）
    assert at("基本建成示例体系") == ["一、总体要求", "（二）工作目标"]  # pops 2.
    assert at("各地区要高度重视") == ["二、主要任务", "（一）加强组织领导"]  # pops （二）
    assert at("要加强督促检查") == ["三、保障措施"]
    assert max(len(p.heading_path) for p in passages) == 4


def test_same_line_heading_and_body():
    text = "（一）加强组织领导。各地区要高度重视，切实加强组织领导。各部门要密切配合。\n"
    passages, sentences = segment(text)
    check_invariants(text, passages, sentences)
    assert len(passages) == 1
    assert passages[0].heading_path == ["（一）加强组织领导"]
    assert passages[0].text == text.strip()  # the heading text stays searchable in the passage
    assert [s.text for s in sentences] == ["（一）加强组织领导。", "各地区要高度重视，切实加强组织领导。", "各部门要密切配合。"]


def test_long_numbered_paragraph_uses_lead_clause():
    lead = "会同中央党校集中开展重点行业领域生产经营单位主要负责人专题安全教育培训，并组织各地开展全员培训"
    text = f"一、主要任务\n1.{lead}。各地要抓好落实。\n2．健全工作机制：各地区要建立制度。\n"
    passages, _ = segment(text)
    p1 = passage_at(passages, text.index("1."))
    elem = p1.heading_path[-1]
    assert elem.startswith("1.会同中央党校") and len(elem) <= 42 and not elem.endswith("，")
    assert passage_at(passages, text.index("2．")).heading_path == ["一、主要任务", "2．健全工作机制"]


def test_chinese_numerals_and_skipped_levels():
    text = "十一、第十一部分工作\n正文一。\n（二十三）第二十三项\n正文二。\n二十三、另一部分\n（1）跳级的小项\n正文三。\n2.5亿元用于建设。\n"
    passages, sentences = segment(text)
    check_invariants(text, passages, sentences)
    at = lambda s: passage_at(passages, text.index(s)).heading_path  # noqa: E731
    assert at("正文一") == ["十一、第十一部分工作"]
    assert at("正文二") == ["十一、第十一部分工作", "（二十三）第二十三项"]
    assert at("正文三") == ["二十三、另一部分", "（1）跳级的小项"]
    assert at("2.5亿元") == ["二十三、另一部分", "（1）跳级的小项"]  # a decimal, not a heading


def test_markdown_and_given_headings():
    md = "# 工作方案\n\n## 背景\n\n一些背景情况。\n\n## 一、主要任务\n\n### 加强领导\n\n要加强领导。\n"
    passages, sentences = segment(md)
    check_invariants(md, passages, sentences)
    at = lambda s: passage_at(passages, md.index(s)).heading_path  # noqa: E731
    assert at("一些背景情况") == ["背景"]
    assert at("要加强领导") == ["一、主要任务", "加强领导"]
    # DOCX-style headings given by offsets (the text carries no marks).
    doc = "工作方案\n总体安排\n正文甲。\n具体措施\n正文乙。\n"
    heads = [Heading(doc.index("总体安排"), doc.index("总体安排") + 4, 1, "总体安排"),
             Heading(doc.index("具体措施"), doc.index("具体措施") + 4, 2, "具体措施")]
    passages, sentences = segment(doc, headings=heads)
    check_invariants(doc, passages, sentences)
    assert passage_at(passages, doc.index("正文甲")).heading_path == ["总体安排"]
    assert passage_at(passages, doc.index("正文乙")).heading_path == ["总体安排", "具体措施"]


def test_enumeration_inside_paragraph():
    filler = "这是一段较长的说明文字，用来让当前段落达到合理的长度。" * 4
    text = f"一、工作要求\n{filler}一是加强领导，压实责任。{filler}二是强化保障。{filler}\n下一段落。\n"
    passages, sentences = segment(text, target_chars=120, max_chars=300)
    check_invariants(text, passages, sentences, max_chars=300)
    p1 = passage_at(passages, text.index("一是加强领导"))
    p2 = passage_at(passages, text.index("二是强化保障"))
    assert p1.start == text.index("一是加强领导") and p1.heading_path == ["一、工作要求", "一是加强领导，压实责任"]
    assert p2.start == text.index("二是强化保障") and p2.heading_path == ["一、工作要求", "二是强化保障"]
    # The item ends with its paragraph.
    assert passage_at(passages, text.index("下一段落")).heading_path == ["一、工作要求"]


# -- sentences and passages --------------------------------------------------------------------
def test_sentence_ends_and_closers():
    text = "他说：“要加强领导！”大家表示同意。是否可行？请研究；另行通知……\n没有标点的一行\n"
    spans = split_sentences(text, 0, text.index("\n"))
    assert [text[a:b] for a, b in spans] == ["他说：“要加强领导！”", "大家表示同意。", "是否可行？", "请研究；", "另行通知……"]
    passages, sentences = segment(text)
    assert [s.text for s in sentences][-1] == "没有标点的一行"
    check_invariants(text, passages, sentences)


def test_sentence_offsets_exclude_whitespace():
    text = "\u3000\u3000第一句话。  第二句话。\u3000\n"
    _, sentences = segment(text)
    assert [(s.text, text[s.start : s.end]) for s in sentences] == [("第一句话。", "第一句话。"), ("第二句话。", "第二句话。")]


def test_packing_respects_sizes_and_paragraphs():
    para = "这是一个用于测试的句子，长度大约二十个字。"  # 21 chars
    text = "\n".join(para * 12 for _ in range(5)) + "\n"
    passages, sentences = segment(text, target_chars=100, max_chars=200)
    check_invariants(text, passages, sentences, max_chars=200)
    assert all(len(p.text) <= 200 for p in passages)
    assert all(len(p.text) <= 130 for p in passages)  # about target
    # No passage crosses a line once it is half full.
    for p in passages:
        if "\n" in p.text:
            assert p.text.index("\n") < 50


def test_run_on_sentence_is_cut():
    text = "标题\n" + "没有句号的长句子，" * 150 + "\n" + "无标点" * 400 + "\n"
    passages, sentences = segment(text, target_chars=260, max_chars=480)
    check_invariants(text, passages, sentences)
    assert all(len(p.text) <= 480 for p in passages)
    cuts = [s for s in sentences if s.text.endswith("，")]
    assert cuts, "the comma run-on should be cut after commas"


def test_single_long_sentence_kept_whole():
    sent = "长" * 600 + "。"  # longer than max_chars, shorter than 2 * max_chars: kept whole
    text = "前一句。" + sent + "后一句。\n"
    passages, sentences = segment(text)
    check_invariants(text, passages, sentences)
    assert any(p.text == sent for p in passages)


def test_pages():
    text = "第一页的第一句。第一页的第二句。\n" + "第二页的内容。\n" * 3 + "第三页的开头。\n"
    p2 = text.index("第二页")
    p3 = text.index("第三页")
    passages, _ = segment(text, pages=[0, p2, p3], target_chars=10, max_chars=20)
    for p in passages:
        expected = 1 if p.start < p2 else 2 if p.start < p3 else 3
        assert p.page == expected
    assert {p.page for p in passages} == {1, 2, 3}
    passages, _ = segment(text)
    assert all(p.page is None for p in passages)


def test_body_end():
    body = "关于示例的通知\n一、要求\n请认真贯彻执行。\n"
    text = body + "抄送：各有关单位。\n示例办公室 2024年1月1日印发\n"
    passages, sentences = segment(text, body_end=len(body))
    check_invariants(text, passages, sentences, body_end=len(body))
    assert passages[-1].end <= len(body)
    assert "抄送" not in "".join(p.text for p in passages)
    assert all(s.end <= len(body) for s in sentences)


def test_para_numbers():
    text = "标题\n\n第一段。\n\n\n第二段，" + "内容" * 250 + "。\n第三段。\n"  # the 2nd paragraph > max_chars
    passages, _ = segment(text)
    assert passages[0].para == 1
    assert passage_at(passages, text.index("第二段")).para == 3
    assert passage_at(passages, text.index("第三段")).para == 4


def test_empty_and_blank():
    assert segment("") == ([], [])
    assert segment(" \n\u3000\n\n") == ([], [])
    assert segment("正文。", body_end=0) == ([], [])


# -- property tests ----------------------------------------------------------------------------
_FRAGMENTS = [
    "一、", "十二、", "（一）", "(三)", "1.", "12．", "3、", "（1）", "(2)", "第一章 ", "第二节 ", "第三条 ",
    "第十条", "一是", "二是", "第一，", "## ", "# ", "　", " ", "\t", "。", "，", "、", "；", "！", "？", "：",
    "“", "”", "）", "……", "2.5", "&emsp;", "**", "加强组织领导", "各地区要", "深入贯彻", "落实", "abc", "\u3000\u3000",
]
_fragment = st.one_of(
    st.sampled_from(_FRAGMENTS),
    st.text(alphabet="工作要求安全生产管理制度。，；", min_size=1, max_size=30),
    st.text(alphabet="长" * 5 + "，", min_size=50, max_size=400),
)
_line = st.lists(_fragment, max_size=25).map("".join)
_doc = st.lists(_line, max_size=30).map("\n".join)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_doc, target=st.integers(20, 300), extra=st.integers(0, 300), cut=st.floats(0, 1.2),
       with_end=st.booleans())
def test_property_invariants(text, target, extra, cut, with_end):
    max_chars = target + extra
    body_end = int(len(text) * cut) if with_end else None
    passages, sentences = segment(text, body_end=body_end, target_chars=target, max_chars=max_chars)
    check_invariants(text, passages, sentences, body_end=body_end, max_chars=max_chars)


@settings(max_examples=80, deadline=None)
@given(text=_doc, data=st.data())
def test_property_pages_and_headings(text, data):
    n = len(text)
    pages = sorted({0, *data.draw(st.lists(st.integers(0, max(n, 1)), max_size=5))})
    heads = []
    for _ in range(data.draw(st.integers(0, 3))):
        if n:
            a = data.draw(st.integers(0, n - 1))
            heads.append(Heading(a, min(n, a + 5), data.draw(st.integers(1, 4)), text[a : a + 5] or "x"))
    passages, sentences = segment(text, headings=heads, pages=pages)
    check_invariants(text, passages, sentences)
    for p in passages:
        assert p.page == max(1, sum(1 for s in pages if s <= p.start))


# -- the shared corpus -----------------------------------------------------------------------
def _shared_files() -> list[Path]:
    if not SHARED.is_dir():
        return []
    out: list[Path] = []
    for folder in ("laws", "policy", "reports", "speeches"):
        files = sorted(p for p in (SHARED / folder).glob("*") if p.suffix in (".txt", ".md"))
        out.extend(files[:: max(1, len(files) // 4)][:5])
    return out


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared corpus not found at {SHARED}")
@pytest.mark.parametrize("path", _shared_files(), ids=lambda p: f"{p.parent.name}/{p.name[:20]}")
def test_shared_corpus_invariants(path: Path):
    text = path.read_text(encoding="utf-8")
    passages, sentences = segment(text)
    check_invariants(text, passages, sentences)
    assert passages
    if path.parent.name == "laws" and "\n第一条" in text:
        p = passage_at(passages, text.index("\n第一条") + 1)
        assert p.heading_path and p.heading_path[-1] == "第一条"
