"""Metadata from Chinese official-writing conventions, manifests and overrides."""

from __future__ import annotations

import csv
import datetime as dt
import os
import re
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yuanwen.ingest.metadata import (
    DOC_TYPE_SUFFIXES,
    apply_overrides,
    doc_type_of,
    extract_metadata,
    find_manifest_entry,
    is_masked,
    load_manifest,
    parse_date,
)
from yuanwen.errors import ReadError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "000_dc0b083f46e91fc1.txt"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CONGRESS = SHARED / "reports" / "2022-10-16-党的二十大报告.txt"

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared corpus not found at {SHARED}")

# A gov.cn style 意见: title wrapped over two lines, 文号 under it, signature block, 版记.
NOTICE = """国务院办公厅关于推进
政务新媒体健康有序发展的意见
国办发〔2018〕123号
各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
　　政务新媒体是移动互联网时代党和政府联系群众、服务群众、凝聚群众的重要渠道。为推动政务新媒体健康有序发展，经国务院同意，现提出如下意见。
　　一、总体要求
　　以习近平新时代中国特色社会主义思想为指导，全面贯彻党的十九大和十九届二中、三中全会精神。
　　二、明确工作职责
　　国务院办公厅是全国政务新媒体工作的主管单位。
国务院办公厅
2018年12月7日
（此件公开发布）

────────────────────────────
抄送：党中央各部门，全国人大常委会办公厅，
　　全国政协办公厅，国家监委，最高人民法院，最高人民检察院。
────────────────────────────
国务院办公厅秘书局　　　　　　　　2018年12月27日印发
"""

# The layout of the Party congress reports in the shared corpus.
CONGRESS_LIKE = """高举中国特色社会主义伟大旗帜



为全面建设社会主义现代化国家而团结奋斗



——在中国共产党第二十次全国代表大会上的报告


（2022年10月16日）


习　近　平


同志们：

现在，我代表第十九届中央委员会向大会作报告。
"""


def meta(text: str, name: str = "doc.txt", hints: dict | None = None) -> dict:
    return extract_metadata(text, Path(name), hints)


# ---------------------------------------------------------------------------------------------
# real documents and realistic samples
# ---------------------------------------------------------------------------------------------
def test_founding_document():
    m = meta(SAMPLE.read_text(encoding="utf-8"), SAMPLE.name)
    assert m["title"] == "市应急管理局党委2022年履行全面从严治党主体责任情况报告"
    assert m["issuer"] == "市应急管理局党委"
    assert m["date"] == "2022" and m["doc_type"] == "报告"
    assert m["doc_number"] is None and m["doc_number_masked"] is False
    assert m["body_end"] is None  # no 版记: the whole text is body
    assert set(m) == {"title", "issuer", "date", "doc_number", "doc_number_masked", "doc_type",
                      "body_end", "extra"}


def test_gov_notice_all_fields_and_banji():
    m = meta(NOTICE, "notice.txt")
    assert m["title"] == "国务院办公厅关于推进政务新媒体健康有序发展的意见"
    assert m["issuer"] == "国务院办公厅"
    assert m["date"] == "2018-12-07"  # 成文日期, not the 印发 date
    assert m["doc_number"] == "国办发〔2018〕123号" and m["doc_number_masked"] is False
    assert m["doc_type"] == "意见"
    # the 版记 (from its rule line on) is metadata, not body
    end = m["body_end"]
    assert end is not None and NOTICE[end:].startswith("────")
    body = NOTICE[:end]
    assert "抄送" not in body and "印发" not in body and "（此件公开发布）" in body
    assert body.rstrip().endswith("（此件公开发布）")
    assert m["extra"]["cc"] == "党中央各部门，全国人大常委会办公厅，全国政协办公厅，国家监委，最高人民法院，最高人民检察院"
    assert m["extra"]["printed_by"] == "国务院办公厅秘书局"
    assert m["extra"]["printed_date"] == "2018-12-27"


def test_a_joint_red_header_names_both_issuers_and_keeps_the_title():
    text = ("山东省人民政府安全生产委员会文件\n山东省人民政府消防安全委员会\n鲁安发〔2024〕1号\n"
            "山东省人民政府安全生产委员会\n山东省人民政府消防安全委员会\n关于切实做好消防安全防控工作的紧急通知\n"
            "各市人民政府，省有关部门、单位：\n为切实做好当前火灾防控工作，现将有关事项紧急通知如下。\n")
    m = meta(text, "joint.txt")
    assert m["title"].endswith("关于切实做好消防安全防控工作的紧急通知")
    assert m["title"].startswith("山东省人民政府安全生产委员会") and m["doc_type"] == "通知"
    assert m["doc_number"] == "鲁安发〔2024〕1号"
    assert "山东省人民政府消防安全委员会" in m["issuer"] and "山东省人民政府安全生产委员会" in m["issuer"]


def test_banji_with_printing_organ_line_and_crlf_free_offsets():
    text = ("关于做好汛期安全防范工作的通知\n各区人民政府：\n现就有关事项通知如下。\n市人民政府办公室\n"
            "2022年6月1日\n\n抄送：市委办公室。\n印发机关：市人民政府办公室　印发日期：2022年6月2日\n")
    m = meta(text)
    assert text[m["body_end"]:].startswith("抄送：市委办公室")
    assert m["extra"]["cc"] == "市委办公室"
    assert m["extra"]["printed_by"] == "市人民政府办公室" and m["extra"]["printed_date"] == "2022-06-02"
    assert m["date"] == "2022-06-01" and m["issuer"] == "市人民政府办公室"


def test_body_sentences_are_not_banji():
    text = "关于报送材料的通知\n各单位：\n请于月底前将材料抄送市政府办公室。\n抄送市应急管理局备案。\n市政府办公室于2022年6月2日印发\n"
    assert meta(text)["body_end"] is None


def test_masked_doc_number_kept_verbatim_and_masked_dates_not_parsed():
    text = ("中共××市委办公室文件\n*党办发〔2022〕*号\n关于做好党建工作的通知\n各区委，市委各部门：\n"
            "　　现将有关事项通知如下。\n中共××市委办公室\n20**年**月**日\n")
    m = meta(text, "masked.txt")
    assert m["doc_number"] == "*党办发〔2022〕*号" and m["doc_number_masked"] is True
    assert m["title"] == "关于做好党建工作的通知" and m["doc_type"] == "通知"
    assert m["issuer"] == "中共××市委办公室"  # the 版头 names the organ
    assert m["date"] is None  # 20**年**月**日 is no date
    m2 = meta(text.replace("20**年**月**日", "2022年××月××日"), "masked.txt")
    assert m2["date"] is None
    for value in ("20**年1月1日", "2022年××月", "2022年12月**日", "20XX年", "＊＊＊＊年"):
        assert parse_date(value) is None, value


@pytest.mark.parametrize("number, masked", [
    ("国办发〔2022〕6号", False), ("*党办发〔2022〕6号", True), ("安委办〔2024〕1号", False),
    ("鲁安发〔2024〕1号", False), ("××办发〔2022〕3号", True), ("国办发〔20XX〕12号", True),
    ("＊＊发〔2021〕1号", True),
])
def test_doc_number_forms(number, masked):
    for written in (number, number.replace("〔", "[").replace("〕", "]"),
                    number.replace("〔", "（").replace("〕", "）")):
        m = meta(f"关于开展安全生产检查的通知\n{written}\n各单位：\n请认真贯彻执行。\n")
        assert m["doc_number"] == written and m["doc_number_masked"] is masked
        assert is_masked(written) is masked


def test_doc_number_only_looked_for_near_the_top():
    body = "\n".join(f"第{i}段正文内容，继续推进各项工作。" for i in range(30))
    m = meta(f"关于开展安全生产检查的通知\n各单位：\n{body}\n国办发〔2018〕1号\n")
    assert m["doc_number"] is None


def test_chinese_numeral_dates():
    m = meta("关于做好防汛工作的通知\n各单位：\n请做好防汛工作。\n市应急管理局\n二〇二二年十月十六日\n")
    assert m["date"] == "2022-10-16" and m["issuer"] == "市应急管理局"
    assert parse_date("二〇二二年十月十六日") == "2022-10-16"
    assert parse_date("二○一八年十二月七日") == "2018-12-07"
    assert parse_date("二〇二〇年一月三十一日") == "2020-01-31"
    assert parse_date("２０１８年１２月７日") == "2018-12-07"
    assert parse_date("2018年2月30日") is None  # impossible dates are no dates


def test_parse_date_forms():
    assert parse_date("2018-12-07") == "2018-12-07"
    assert parse_date("2018/12/7") == "2018-12-07"
    assert parse_date("2018.12.7") == "2018-12-07"
    assert parse_date("20181207") == "2018-12-07"
    assert parse_date("2018年12月") == "2018-12"
    assert parse_date("2018-12") == "2018-12"
    assert parse_date("2018") == "2018" and parse_date("2018年") == "2018"
    assert parse_date("") is None and parse_date(None) is None and parse_date("去年") is None


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_parse_date_round_trip(d):
    digits = "〇一二三四五六七八九"

    def cn(n: int) -> str:
        tens, ones = divmod(n, 10)
        return (("" if tens == 1 else digits[tens]) + "十" if tens else "") + (digits[ones] if ones else "")

    assert parse_date(f"{d.year}年{d.month}月{d.day}日") == d.isoformat()
    cn_year = "".join(digits[int(c)] for c in str(d.year))
    assert parse_date(f"{cn_year}年{cn(d.month)}月{cn(d.day)}日") == d.isoformat()


def test_speech_with_star_mark():
    text = ("不断开拓当代中国马克思主义政治经济学新境界※习近平今天，中央政治局进行第二十八次集体学习。"
            "我们要立足我国国情。※这是习近平总书记2015年11月23日在十八届中央政治局第二十八次集体学习时的讲话。")
    m = meta(text, "2015-11-23-speech.txt")
    assert m["title"] == "不断开拓当代中国马克思主义政治经济学新境界"
    assert m["extra"]["speaker"] == "习近平" and m["issuer"] == "习近平"
    assert m["date"] == "2015-11-23" and m["extra"]["date_from"] == "end_note"
    assert m["doc_type"] == "讲话"


def test_run_on_speech_with_date_after_title():
    text = "在打好精准脱贫攻坚战座谈会上的讲话（2018年2月12日）习近平党的十八大以后，我先后在延安召开座谈会。"
    m = meta(text)
    assert m["title"] == "在打好精准脱贫攻坚战座谈会上的讲话"
    assert m["date"] == "2018-02-12" and m["extra"]["speaker"] == "习近平" and m["doc_type"] == "讲话"


def test_newspaper_speech_publication_and_dateline():
    text = ("同志们：今天，我们召开企业家座谈会。（新华社北京7月21日电）"
            "《 人民日报 》（ 2020年07月22日 02 版）")
    m = meta(text, "2020-07-21-在企业家座谈会上的讲话.txt")
    assert m["title"] == "在企业家座谈会上的讲话" and m["doc_type"] == "讲话"
    assert m["extra"]["publication"] == {"name": "人民日报", "date": "2020-07-22", "page": "2"}
    assert m["date"] == "2020-07-21"
    assert meta(text, "speech.txt")["date"] == "2020-07-21"  # from the dateline alone


def test_party_congress_report_format():
    m = meta(CONGRESS_LIKE)
    assert m["title"] == ("高举中国特色社会主义伟大旗帜 为全面建设社会主义现代化国家而团结奋斗"
                          "——在中国共产党第二十次全国代表大会上的报告")
    assert m["date"] == "2022-10-16" and m["extra"]["speaker"] == "习近平" and m["doc_type"] == "报告"


@pytest.mark.skipif(not CONGRESS.is_file(), reason=f"{CONGRESS} not found")
def test_party_congress_report_real_file():
    m = meta(CONGRESS.read_text(encoding="utf-8"), CONGRESS.name)
    assert m["title"].startswith("高举中国特色社会主义伟大旗帜")
    assert m["title"].endswith("——在中国共产党第二十次全国代表大会上的报告")
    assert m["extra"]["speaker"] == "习近平" and m["issuer"] == "习近平"
    assert m["date"] == "2022-10-16" and m["extra"]["date_from"] == "header"
    assert m["doc_type"] == "报告"


def test_government_work_report_heading_block():
    text = ("\u200b\n\n政府工作报\n告\n\n——2017年3月5日在第十二届全国人民代表大会第五次会议上\n\n"
            "国务院总理\n\u3000李克强\n\n各位代表：\n现在，我代表国务院，向大会报告政府工作。\n")
    m = meta(text)
    assert m["title"] == "政府工作报告" and m["doc_type"] == "报告"
    assert m["date"] == "2017-03-05"
    assert m["extra"]["speaker"] == "李克强" and m["extra"]["speaker_title"] == "国务院总理"


def test_law_title_note_dates_and_enacting_body():
    text = ("# 中华人民共和国档案法\n\n1987年9月5日 第六届全国人民代表大会常务委员会第二十二次会议通过\n\n"
            "2020年6月20日 第十三届全国人民代表大会常务委员会第十九次会议修订\n\n<!-- INFO END -->\n\n"
            "## 第一章 总 则\n\n第一条 为了加强档案管理，制定本法。\n")
    m = meta(text, "档案法.md")
    assert m["title"] == "中华人民共和国档案法" and m["doc_type"] == "法律"
    assert m["date"] == "2020-06-20"  # the latest revision in the 题注
    assert m["issuer"] == "全国人民代表大会常务委员会"
    # the date a regulation takes effect is not its date
    reg = "# 医疗事故处理条例\n\n2002年4月4日 中华人民共和国国务院令第351号公布\n\n2002年9月1日 施行\n\n第一条 为了正确处理医疗事故，制定本条例。\n"
    m = meta(reg, "r.md")
    assert m["date"] == "2002-04-04" and m["issuer"] == "国务院" and m["doc_type"] == "条例"


def test_red_header_markdown_with_front_matter():
    text = ("---\nlang: 'zh-cn'\nsidebar: true\n---\n\n<div style=\"color:red;\n font-size:48px\">国务院安全生产委员会文件</div>\n"
            "<p style=\"text-align:center\">安委会[2024]2号</p>\n\n## 国务院安全生产委员会关于印发《安全生产治本攻坚三年行动方案"
            "（2024—2026年）》的通知\n\n各省、自治区、直辖市人民政府：\n\n&emsp;&emsp;现印发给你们，请认真贯彻落实。\n\n"
            "<p style=\"text-align:right\">国务院安全生产委员会</p>\n<p style=\"text-align:right\">2024年1月21日</p>\n")
    m = meta(text, "x.md")
    assert m["title"] == "国务院安全生产委员会关于印发《安全生产治本攻坚三年行动方案（2024—2026年）》的通知"
    assert m["doc_number"] == "安委会[2024]2号" and m["issuer"] == "国务院安全生产委员会"
    assert m["date"] == "2024-01-21" and m["doc_type"] == "通知"


# ---------------------------------------------------------------------------------------------
# hints, fallbacks, the type table
# ---------------------------------------------------------------------------------------------
def test_hints_win_over_text_but_pdf_title_is_only_a_fallback():
    hints = {"title": "国务院办公厅关于推进政务新媒体健康有序发展的意见", "issuer": "国务院办公厅（信息表）",
             "date": "2018年12月07日", "doc_number": "国办发〔2018〕123号"}
    m = meta("某标题的通知\n各单位：\n正文。\n", hints=hints)
    assert m["title"] == hints["title"] and m["issuer"] == "国务院办公厅（信息表）"
    assert m["date"] == "2018-12-07" and m["doc_number"] == "国办发〔2018〕123号"
    assert m["doc_type"] == "意见"
    # pdf_title never beats the text's title
    m = meta(NOTICE, hints={"pdf_title": "Microsoft Word - 文件1.doc"})
    assert m["title"] == "国务院办公厅关于推进政务新媒体健康有序发展的意见"
    # without a title in the text: html_title, then a plausible pdf_title, then the file name
    no_title = "各位代表：\n现在，我代表国务院向大会作报告。\n"
    assert meta(no_title, hints={"html_title": "关于某事的通知_国务院部门文件_中国政府网"})["title"] == "关于某事的通知"
    assert meta(no_title, "a.pdf", {"pdf_title": "关于开展安全检查的通知"})["title"] == "关于开展安全检查的通知"
    assert meta(no_title, "2024-03-08-泰安关于安全的通知.pdf", {"pdf_title": "Microsoft Word - x.doc"})["title"] == "泰安关于安全的通知"


def test_file_name_fallback_strips_date_prefix_and_gives_the_date():
    m = meta("同志们：今天我们开会。", "2020-09-11-在科学家座谈会上的讲话.txt")
    assert m["title"] == "在科学家座谈会上的讲话" and m["date"] == "2020-09-11"
    assert m["doc_type"] == "讲话" and m["extra"]["date_from"] == "file_name"


@pytest.mark.parametrize("title, dtype", [
    ("国务院办公厅关于印发“无废城市”建设试点工作方案的通知", "通知"),
    ("国务院办公厅关于加快发展体育竞赛表演产业的指导意见", "意见"),
    ("国务院关于2018年度国家科学技术奖励的决定", "决定"),
    ("第十三届全国人民代表大会第五次会议关于政府工作报告的决议", "决议"),
    ("中国共产党第十九届中央委员会第六次全体会议公报", "公报"),
    ("国务院办公厅关于山西、安徽省四起特大煤矿瓦斯爆炸事故调查处理情况的通报", "通报"),
    ("国务院关于河北雄安新区总体规划（2018—2035年）的批复", "批复"),
    ("国务院办公厅关于黄金经济政策有关问题的复函", "函"),
    ("国务院办公厅关于印发国家粮食应急预案的函", "函"),
    ("国务院办公厅对十届全国人大四次会议第2996号建议的答复", "答复"),
    ("社会救助暂行办法", "办法"),
    ("国务院关于特大安全事故行政责任追究的规定", "规定"),
    ("北京市安全生产条例", "条例"),
    ("中华人民共和国个人所得税法实施条例", "条例"),
    ("中华人民共和国档案法", "法律"),
    ("中华人民共和国宪法修正案（2018年）", "法律"),
    ("中华人民共和国消防救援衔标志式样和佩带办法", "办法"),
    ("安全生产治本攻坚三年行动方案（2024—2026年）", "方案"),
    ("国家职业教育改革实施规划", "规划"),
    ("国家中长期科学和技术发展规划纲要", "纲要"),
    ("在全国抗击新冠肺炎疫情表彰大会上的讲话（人民日报稿）", "讲话"),
    ("团结合作战胜疫情 共同构建人类卫生健康共同体——在第73届世界卫生大会视频会议开幕式上的致辞", "讲话"),
    ("构建新发展格局 实现互利共赢——在亚太经合组织工商领导人对话会上的主旨演讲", "讲话"),
    ("在全省安全生产工作会议上的发言", "讲话"),
    ("习近平给北京科技大学全体巴基斯坦留学生的回信", "回信"),
    ("2025年北京市政府工作报告", "报告"),
    ("市应急管理局党委2022年履行全面从严治党主体责任情况报告", "报告"),
    ("党的二十大精神学习材料", "学习材料"), ("安全生产法学习辅导", "学习材料"), ("应急管理知识问答", "学习材料"),
    ("关于霍州煤电集团有限责任公司方山店坪煤矿14个智能化建设项目评定结果的公告", "公告"),
    ("不断开拓当代中国马克思主义政治经济学新境界", None),
    ("", None),
])
def test_doc_type_table(title, dtype):
    assert doc_type_of(title) == dtype


def test_doc_type_table_is_data():
    assert DOC_TYPE_SUFFIXES["复函"] == "函" and DOC_TYPE_SUFFIXES["回信"] == "回信"
    assert {"讲话", "报告", "通知", "意见", "法律", "学习材料"} <= set(DOC_TYPE_SUFFIXES.values()) | {"法律"}


@pytest.mark.parametrize("title, issuer", [
    ("国务院办公厅关于加强三级公立医院绩效考核工作的意见", "国务院办公厅"),
    ("国务院、中央军委关于同意武警总部后勤部机关等迁址新建的批复", "国务院、中央军委"),
    ("中共中央 国务院关于实施乡村振兴战略的意见", "中共中央 国务院"),
    ("国务院办公厅转发民政部关于清理整顿社会团体意见的通知", "国务院办公厅"),
    ("国务院办公厅对全国政协十届三次会议第2741号提案的答复", "国务院办公厅"),
    ("关于举一反三抓好国务院安委会明查暗访发现问题整改工作的通知", None),
    ("在科学家座谈会上的讲话", None),
])
def test_issuer_from_title(title, issuer):
    assert meta(f"{title}\n各单位：\n正文内容。\n")["issuer"] == issuer


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("国务院办公厅关于通知意见年月日〔〕号抄送印发：，。\n 　*×─0123456789二〇十")), max_size=400))
def test_never_fails_and_body_end_is_an_offset(text):
    m = meta(text)
    assert m["body_end"] is None or 0 <= m["body_end"] <= len(text)
    assert m["title"]
    assert m["date"] is None or re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", m["date"])


# ---------------------------------------------------------------------------------------------
# manifest.csv and overrides
# ---------------------------------------------------------------------------------------------
def _write_csv(path: Path, rows: list[list[str]], bom: bool = True) -> None:
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_manifest_in_tmp_path_both_levels(tmp_path):
    root = tmp_path / "docs"
    (root / "laws" / "sub").mkdir(parents=True)
    for rel in ("laws/a.md", "laws/sub/b.txt", "top.txt", "laws/other.md"):
        (root / rel).write_text("标题\n正文。\n", encoding="utf-8")
    _write_csv(root / "manifest.csv", [
        ["file", "title", "issuer", "date", "doc_type", "doc_number", "source"],
        ["laws/a.md", "外层标题", "外层机关", "2020-01-02", "法律", "", "外层来源"],
        ["./laws\\sub\\b.txt", "乙", "", "2021/3/4", "通知", "国办发〔2021〕1号", ""],
        ["top.txt", "顶层", "机关", "", "", "", ""],
    ])
    _write_csv(root / "laws" / "manifest.csv", [
        ["file", "title", "issuer", "date", "doc_type"],
        ["a.md", "内层标题", "", "2020-06-20", ""],
    ], bom=False)
    top = load_manifest(root)
    assert set(top) == {"laws/a.md", "laws/sub/b.txt", "top.txt"}
    assert top["top.txt"] == {"title": "顶层", "issuer": "机关"}  # empty fields dropped
    assert load_manifest(root / "laws") == {"a.md": {"title": "内层标题", "date": "2020-06-20"}}
    assert load_manifest(root / "laws" / "sub") == {}

    entry = find_manifest_entry(root / "laws" / "a.md", [root])
    assert entry == {"title": "内层标题", "issuer": "外层机关", "date": "2020-06-20", "doc_type": "法律",
                     "source": "外层来源"}  # the nearer manifest wins field by field
    assert find_manifest_entry(root / "laws" / "sub" / "b.txt", [root])["doc_number"] == "国办发〔2021〕1号"
    assert find_manifest_entry(root / "laws" / "other.md", [root]) == {}
    # ingesting only the laws folder: the outer manifest is above the root and not read
    assert find_manifest_entry(root / "laws" / "a.md", [root / "laws"]) == {"title": "内层标题",
                                                                            "date": "2020-06-20"}
    # a single file given as the root: its own folder's manifest
    assert find_manifest_entry(root / "top.txt", [root / "top.txt"])["title"] == "顶层"


def test_manifest_cache_sees_changes_and_bad_manifests_say_why(tmp_path):
    _write_csv(tmp_path / "manifest.csv", [["file", "title"], ["a.txt", "旧"]])
    assert load_manifest(tmp_path)["a.txt"]["title"] == "旧"
    _write_csv(tmp_path / "manifest.csv", [["file", "title"], ["a.txt", "新标题"]])
    os.utime(tmp_path / "manifest.csv", ns=(1, 2_000_000_000_000_000_000))
    assert load_manifest(tmp_path)["a.txt"]["title"] == "新标题"
    _write_csv(tmp_path / "manifest.csv", [["name", "title"], ["a.txt", "x"]])
    with pytest.raises(ReadError, match="file 列"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_bytes("file,title\na.txt,标题\n".encode("gbk"))
    with pytest.raises(ReadError, match="UTF-8"):
        load_manifest(tmp_path)


@needs_shared
def test_shared_manifests_at_both_levels():
    top = load_manifest(SHARED)
    laws = load_manifest(SHARED / "laws")
    assert "laws/2020-06-20-档案法.md" in top and "2020-06-20-档案法.md" in laws
    assert top["laws/2020-06-20-档案法.md"]["title"] == laws["2020-06-20-档案法.md"]["title"] == "中华人民共和国档案法"
    assert "file" not in laws["2020-06-20-档案法.md"]
    assert "date" not in laws["北京市安全生产条例.md"]  # empty in the CSV
    law = SHARED / "laws" / "2020-06-20-档案法.md"
    for roots in ([SHARED], [SHARED / "laws"], [law]):
        e = find_manifest_entry(law, roots)
        assert e["issuer"] == "全国人民代表大会常务委员会" and e["date"] == "2020-06-20", roots


def test_apply_overrides():
    m = meta(NOTICE)
    out = apply_overrides(m, {"title": "覆盖标题", "date": "2018/12/8", "doc_number": "国办发〔2018〕**号",
                              "doc_type": "意见", "speaker": "某某", "source_repo": "x/y", "issuer": " "})
    assert out["title"] == "覆盖标题" and out["date"] == "2018-12-08"
    assert out["doc_number"] == "国办发〔2018〕**号" and out["doc_number_masked"] is True
    assert out["issuer"] == "国务院办公厅"  # empty values do not override
    assert out["extra"]["speaker"] == "某某" and out["extra"]["source_repo"] == "x/y"
    assert out["extra"]["cc"] == m["extra"]["cc"] and out["body_end"] == m["body_end"]
    assert m["title"] != "覆盖标题" and "source_repo" not in m["extra"]  # the input is not changed
    # an unreadable date keeps the extracted one; a plain 文号 clears the masked flag
    out = apply_overrides({**m, "doc_number": "*发〔2018〕1号", "doc_number_masked": True},
                          {"date": "去年冬天", "doc_number": "国办发〔2018〕123号", "发文字号": ""})
    assert out["date"] == "2018-12-07" and out["extra"]["date_raw"] == "去年冬天"
    assert out["doc_number_masked"] is False
    assert apply_overrides(m, {"date": "2018年12月"})["date"] == "2018-12"
    assert apply_overrides(m, {}) == {**m, "extra": m["extra"]}


# ---------------------------------------------------------------------------------------------
# agreement with the shared corpus manifest
# ---------------------------------------------------------------------------------------------
# The manifest's finer types, and the types our table gives for them.
COARSE = {
    "政府工作报告": {"报告"}, "政府工作报告（地方）": {"报告"}, "党代会报告": {"报告"},
    "行政法规": {"条例", "办法", "规定"}, "地方性法规": {"条例", "办法", "规定"},
    "部门规章": {"条例", "办法", "规定"}, "讲话（文章节选）": {"讲话"}, "致辞": {"讲话"}, "演讲": {"讲话"},
}


def _norm(s: str | None) -> str:
    s = unicodedata.normalize("NFKC", s or "")
    return re.sub(r"\s+", "", s).replace("—", "-").replace("–", "-")


@needs_shared
def test_agreement_with_shared_manifest():
    """Every .txt/.md file: title/date/type against the manifest, per folder.

    ``path`` runs see the real file name (its ``YYYY-MM-DD-`` prefix is a fallback date and
    title); ``text`` runs see only the text (file name ``doc.txt``).
    """
    manifest = load_manifest(SHARED)
    stats: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for f in sorted(SHARED.rglob("*")):
        if f.suffix not in (".txt", ".md") or f.name == "manifest.csv":
            continue
        rel = f.relative_to(SHARED).as_posix()
        row = manifest.get(rel)
        if not row:
            continue
        text = f.read_text(encoding="utf-8")
        for mode, p in (("path", f), ("text", Path("doc" + f.suffix))):
            m = extract_metadata(text, p)
            c = stats[(rel.split("/")[0], mode)]
            c["n"] += 1
            c["title"] += _norm(m["title"]) == _norm(row.get("title"))
            want = row.get("doc_type", "")
            c["type"] += m["doc_type"] == want or m["doc_type"] in COARSE.get(want, set())
            c["issuer"] += _norm(m["issuer"]) == _norm(row.get("issuer"))
            if row.get("date"):
                c["dated"] += 1
                c["date"] += m["date"] == row["date"]
                c["year"] += (m["date"] or "")[:4] == row["date"][:4]
    rates = {}
    print()
    for (folder, mode), c in sorted(stats.items()):
        r = {k: c[k] / (c["dated"] if k in ("date", "year") else c["n"]) for k in ("title", "date", "year", "type", "issuer")}
        rates[(folder, mode)] = r
        print(f"{folder:9s} {mode:5s} n={c['n']:3d} " + " ".join(f"{k}={v:.0%}" for k, v in r.items()))
    # floors measured on this corpus (see the printed table); the misses are manifest data the
    # text does not hold (revision dates of regulations, titles of reports that start 各位代表：)
    assert rates[("laws", "text")]["title"] >= 0.95
    assert rates[("laws", "text")]["date"] >= 0.65
    assert rates[("laws", "text")]["type"] >= 0.95
    assert rates[("reports", "text")]["date"] >= 0.5
    assert rates[("reports", "path")]["date"] >= 0.95
    assert rates[("reports", "path")]["type"] >= 0.95
    assert rates[("speeches", "path")]["title"] >= 0.85
    assert rates[("speeches", "text")]["date"] >= 0.75
    assert rates[("speeches", "path")]["type"] >= 0.95
