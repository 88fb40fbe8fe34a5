"""Readers and the read_file dispatcher (yuanwen.ingest.readers), on files made in tmp_path and the shared corpus."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from yuanwen.ingest.readers import docx as docx_reader
from yuanwen.ingest.readers import SUPPORTED_SUFFIXES, read_file
from yuanwen.ingest.readers.txt import join_split_lines
from yuanwen.ingest.walk import iter_files
from yuanwen.errors import ReadError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"

BODY = (
    "关于加强安全生产工作的通知\n"
    "各区县人民政府：\n"
    "　　为认真贯彻落实《中华人民共和国安全生产法》，现就有关事项通知如下。\n"
    "一、提高认识\n"
    "组织传达学习贯彻**次，××同志参加，全文见国发〔2024〕1号。\n"
)


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


# ---------------------------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("encoder", "encoding"),
    [
        (lambda s: s.encode("utf-8"), "utf-8"),
        (lambda s: s.encode("utf-8-sig"), "utf-8-sig"),
        (lambda s: s.encode("gb18030"), "gb18030"),
        (lambda s: s.encode("gbk"), "gb18030"),
        (lambda s: s.encode("utf-16"), "utf-16-le"),
        (lambda s: s.encode("utf-16-le"), "utf-16-le"),
        (lambda s: s.replace("\n", "\r\n").encode("gbk"), "gb18030"),
    ],
)
def test_txt_in_any_encoding_reads_the_same(tmp_path, encoder, encoding):
    rr = read_file(_write(tmp_path, "通知.txt", encoder(BODY)))
    assert rr.text == BODY.rstrip("\n")
    assert rr.format == "txt"
    assert rr.encoding == encoding
    assert "**次，××" in rr.text and "〔2024〕" in rr.text


def test_txt_rejoins_lines_cut_by_link_extraction(tmp_path):
    raw = (
        "\u200b\n\n政府工作报\n告\n\n——2017年3月5日在第十二届全国人民代表大会第五次会议上\n\n"
        "国务院总理\n\u3000李克强\n\n各位代表：\n\n"
        "切实贯彻《\n会计法\n》，提高会计信息质量。严格执行《\n建筑法\n》、《\n招标投标法\n》。\n\n"
        "今年广义货币M\n2\n和社会融资规模余额预期增长均为12%左右。\n\n"
        "国内生产总值达到74.4\n\u200b\n万亿元，增长6.7%。\n\n"
        "主要是：\n一、2011年工作回顾\n过去一年，我们取得了新的成就。\n"
        "国务院\n2018年1月2日\n同志们：\n"
    )
    rr = read_file(_write(tmp_path, "report.txt", raw))
    lines = rr.text.split("\n")
    assert lines[0] == "政府工作报告"
    assert "切实贯彻《会计法》，提高会计信息质量。严格执行《建筑法》、《招标投标法》。" in lines
    assert "今年广义货币M2和社会融资规模余额预期增长均为12%左右。" in lines
    assert "国内生产总值达到74.4万亿元，增长6.7%。" in lines
    # headings, dates, bylines and salutations stay on their own lines
    for kept in ["国务院总理", "\u3000李克强", "各位代表：", "一、2011年工作回顾", "国务院", "2018年1月2日",
                 "同志们：", "——2017年3月5日在第十二届全国人民代表大会第五次会议上"]:
        assert kept in lines
    assert "\u200b" not in rr.text


def test_join_leaves_ordinary_text_alone():
    text = "第一章 总则\n第一条 为了规范工作，制定本办法。\n第二条 本办法适用于全市。\n\n附件：\n1.名单\n2.表格"
    assert join_split_lines(text) == text


def test_empty_and_blank_files(tmp_path):
    with pytest.raises(ReadError, match="文件为空"):
        read_file(_write(tmp_path, "empty.txt", b""))
    with pytest.raises(ReadError, match="没有可读文字"):
        read_file(_write(tmp_path, "blank.txt", " \n\u3000\n\u200b\n"))
    with pytest.raises(ReadError, match="没有可读文字"):
        read_file(_write(tmp_path, "blank.md", "---\ntitle: 空\n---\n<!-- nothing -->\n"))


def test_binary_file_named_txt(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"
    with pytest.raises(ReadError, match="二进制") as err:
        read_file(_write(tmp_path, "picture.txt", png * 4))
    assert err.value.path.name == "picture.txt"


def test_unsupported_suffix(tmp_path):
    with pytest.raises(ReadError) as err:
        read_file(_write(tmp_path, "data.xyz", "内容"))
    assert "不支持的文件类型 .xyz" in err.value.reason
    assert "支持 .txt .md .markdown .html .htm .pdf .docx" in err.value.reason  # from the registry


def test_oversized_file(tmp_path):
    p = _write(tmp_path, "big.txt", "安全生产" * 1000)
    with pytest.raises(ReadError, match="文件过大") as err:
        read_file(p, max_bytes=1024)
    assert "MB" in err.value.reason
    assert read_file(p, max_bytes=100_000).text.startswith("安全生产")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ReadError, match="不存在"):
        read_file(tmp_path / "nope.txt")
    with pytest.raises(ReadError, match="文件夹"):
        read_file(tmp_path)


def test_suffix_is_case_insensitive(tmp_path):
    rr = read_file(_write(tmp_path, "通知.TXT", BODY))
    assert rr.format == "txt"


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------
MD = """---
title: "某市安全生产条例"
Issuer: 某市人民代表大会常务委员会
date: 2021-06-10
doc_type: 地方性法规
---

# 某市安全生产条例

<!-- INFO END -->

<div style="color:red;
text-align:center">某市人大常委会公告</div>

## 第一章　总则

第一条 为了加强安全生产工作，根据《中华人民共和国安全生产法》和《关于修改<中华人民共和国安全生产法>的决定》，制定本条例。

### &emsp;&emsp;一、工作目标 ###

&emsp;&emsp;组织传达学习贯彻**次，××同志，**重点**不变。详见[附件一](/files/a.pdf)。

---
"""


def test_markdown_front_matter_headings_and_markup(tmp_path):
    rr = read_file(_write(tmp_path, "law.md", MD))
    assert rr.format == "md" and rr.encoding == "utf-8"
    assert rr.meta["title"] == "某市安全生产条例"
    assert rr.meta["issuer"] == "某市人民代表大会常务委员会"
    assert rr.meta["date"] == "2021-06-10"
    assert rr.meta["doc_type"] == "地方性法规"
    assert [(h.level, h.text) for h in rr.headings] == [
        (1, "某市安全生产条例"), (2, "第一章　总则"), (3, "一、工作目标")]
    for h in rr.headings:
        assert rr.text[h.start:h.end] == h.text
    text = rr.text
    assert not text.startswith("---") and "title:" not in text
    assert "#" not in text and "<!--" not in text and "<div" not in text and "&emsp;" not in text
    assert "某市人大常委会公告" in text.split("\n")
    assert "<中华人民共和国安全生产法>" in text  # not a tag
    assert "组织传达学习贯彻**次，××同志，**重点**不变。详见附件一。" in text
    assert "\n\n\n" not in text


def test_markdown_is_parsed_as_commonmark_but_keeps_what_the_document_says(tmp_path):
    """markdown-it-py parses; the text stays as written where Markdown would change it."""
    md = ("##一、总体要求\n\n"
          "表彰*个集体和*名同志，**市，\\_转义\\_，&amp;\n\n"
          "1. 加强领导。\n2. 落实责任。\n\n- 条目一\n\n> 引用的话\n\n"
          "[链接文字](http://x.cn) 与 ![图片说明](a.png) 和 <http://a.cn>\n\n"
          "    缩进的段落，不是代码\n\n```\n代码 **保持**\n```\n\n"
          "二、分级标题\n======\n\n<div align=\"center\">居中<b>加粗</b></div>\n\n正文<br>换行\n")
    rr = read_file(_write(tmp_path, "cases.md", md))
    assert [(h.level, h.text) for h in rr.headings] == [(2, "一、总体要求"), (1, "二、分级标题")]
    lines = rr.text.split("\n")
    assert "表彰*个集体和*名同志，**市，_转义_，&" in lines  # masked values are not emphasis
    assert {"1. 加强领导。", "2. 落实责任。", "- 条目一"} <= set(lines)  # list numbers stay
    assert "引用的话" in lines and "链接文字 与  和 http://a.cn" in lines  # no image alt text
    assert "缩进的段落，不是代码" in lines and "代码 **保持**" in lines
    assert "居中加粗" in lines and "正文" in lines and "换行" in lines
    for h in rr.headings:
        assert rr.text[h.start:h.end] == h.text


def test_markdown_without_front_matter_keeps_leading_rule_text(tmp_path):
    rr = read_file(_write(tmp_path, "note.markdown", "---\n正文第一段，不是元数据。\n---\n第二段。\n"))
    assert rr.meta == {}
    assert "正文第一段，不是元数据。" in rr.text


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
GOV = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="{charset}">
<title>国务院办公厅关于调整领导小组组成人员的通知</title>
<style>p {{ color: red }}</style><script>var x = "脚本不是正文";</script></head>
<body><nav>首页 &gt; 政策</nav>
<div class="wrap"><table><tbody><tr><td>
 <table class="bd1"><tbody>
  <tr><td><b>索 引 号：</b></td><td>000014349/2018-00205</td>
      <td><b>主题分类：</b></td><td>国务院组织机构\\其他</td></tr>
  <tr><td><b>发文机关：</b></td><td>国务院办公厅</td>
      <td><b>成文日期：</b></td><td>2018年11月05日</td></tr>
  <tr><td><b>标　　题：</b></td><td colspan="3">国务院办公厅关于调整领导小组组成人员的通知</td></tr>
  <tr><td><b>发文字号：</b></td><td>国办函〔2018〕74号</td>
      <td><b>发布日期：</b></td><td>2018年11月12日</td></tr>
 </tbody></table>
 <table class="bd1"><tbody><tr><td><b>主 题 词：</b></td><td></td></tr></tbody></table>
</td></tr></tbody></table>
<table><tbody><tr><td class="b12c" id="UCAP-CONTENT">
 <p style="text-align: center;"><span>国务院办公厅关于调整</span></p>
 <p style="text-align: center;"><span>领导小组组成人员的通知</span></p>
 <p style="text-align: center;">国办函〔2018〕74号</p> <p><br> </p>
 <p>各省、自治区、直辖市人民政府：</p>
 <h2>一、总体要求</h2>
 <p style="text-indent: 2em;">根据工作需要，<script>document.write("广告")</script>现将名单通知如下：代码 &lt;script&gt;alert(1)&lt;/script&gt; 原样保留。</p>
 <p>组　长：韩　正　　国务院副总理</p>
 <p style="display:none">隐藏文字</p>
 <p style="text-align: right;">国务院办公厅&nbsp;&nbsp;&nbsp;&nbsp;</p>
 <p style="text-align: right;">2018年11月5日&nbsp;&nbsp;</p>
 <table><tr><td>成员</td><td>张三</td></tr><tr><td>职务</td><td>副部长</td></tr></table>
</td></tr></tbody></table>
<div id="qr_container">扫一扫在手机打开当前页</div>
</div></body></html>
"""


def _check_gov(rr):
    assert rr.format == "html"
    m = rr.meta
    assert m["issuer"] == "国务院办公厅"
    assert m["date"] == "2018-11-05"
    assert m["published"] == "2018-11-12"
    assert m["doc_number"] == "国办函〔2018〕74号"
    assert m["title"] == "国务院办公厅关于调整领导小组组成人员的通知"
    assert m["index_no"] == "000014349/2018-00205"
    assert m["topic"] == "国务院组织机构\\其他"
    assert m["html_title"] == "国务院办公厅关于调整领导小组组成人员的通知"
    lines = rr.text.split("\n")
    assert lines[:3] == ["国务院办公厅关于调整", "领导小组组成人员的通知", "国办函〔2018〕74号"]
    assert "根据工作需要，现将名单通知如下：代码 <script>alert(1)</script> 原样保留。" in lines
    assert "组　长：韩　正　　国务院副总理" in lines
    assert "国务院办公厅" in lines and "2018年11月5日" in lines
    assert "成员\t张三" in lines and "职务\t副部长" in lines
    for junk in ["脚本不是正文", "广告", "color", "首页", "隐藏文字", "索 引 号", "主 题 词", "扫一扫", "&nbsp;", "\xa0"]:
        assert junk not in rr.text
    assert not re.search(r"[ \t]$", rr.text, re.M) and "\n\n\n" not in rr.text
    assert [(h.level, h.text) for h in rr.headings] == [(2, "一、总体要求")]
    h = rr.headings[0]
    assert rr.text[h.start:h.end] == h.text


def test_gov_cn_page(tmp_path):
    rr = read_file(_write(tmp_path, "gov.html", GOV.format(charset="utf-8")))
    _check_gov(rr)
    assert rr.encoding == "utf-8"


def test_gov_cn_page_declared_gb2312(tmp_path):
    rr = read_file(_write(tmp_path, "gov.htm", GOV.format(charset="gb2312").encode("gbk")))
    _check_gov(rr)
    assert rr.encoding == "gb18030"


def test_html_without_content_id_uses_body(tmp_path):
    page = ("<html><head><title>标题</title></head><body>"
            "<h1>中华人民共和国煤炭法</h1><p>&nbsp;&nbsp;&nbsp;&nbsp;第一条　为了合理开发利用。</p>"
            "<p>\n</p><p>第二条<br>适用本法。</p><noscript>请启用脚本</noscript></body></html>")
    rr = read_file(_write(tmp_path, "law.html", page))
    assert rr.text == "中华人民共和国煤炭法\n第一条　为了合理开发利用。\n第二条\n适用本法。"
    assert rr.meta == {"html_title": "标题"}
    assert [(h.level, h.text, h.start) for h in rr.headings] == [(1, "中华人民共和国煤炭法", 0)]


@pytest.mark.parametrize(("page", "text"), [
    # libxml2 closes a <p> at the first block in it: the content runs to the end of the <p>'s parent
    ('<body><div>导航</div><div><p id="UCAP-CONTENT"><div>正文一。</div><div>正文二。</div></p></div>'
     "<div>页脚</div></body>", "正文一。\n正文二。"),
    # an unclosed content cell ends with its table: the footer below does not leak in
    ('<table><tr><td id="UCAP-CONTENT"><p>正文</table><div>扫一扫在手机打开当前页</div>', "正文"),
    ("<p>正文。</p><!-- 没有结束的注释 <p>后文</p>", "正文。"),  # an unterminated comment is not text
    ('<div><span style="display:none">隐藏</div><p>后文</p>', "后文"),  # a hidden span left open ends with its block
    ("<p>甲 <!--c--> 乙&ensp;丙&hellip;&#x4e00;</p><p>a < b 且 c<d</p>", "甲  乙\u2002丙…一\na < b 且 c"),
])
def test_broken_html_is_read_as_a_browser_would(tmp_path, page, text):
    """libxml2 (through lxml) balances the tags as an HTML5 parser does."""
    assert read_file(_write(tmp_path, "page.html", page)).text == text


def test_deeply_nested_html_is_safe(tmp_path):
    depth = 20000
    page = "<html><body>" + "<div><span>" * depth + "深层正文。" + "</span></div>" * depth + "</body></html>"
    rr = read_file(_write(tmp_path, "deep.html", page))
    assert rr.text == "深层正文。"


# ---------------------------------------------------------------------------------------------
# DOCX
# ---------------------------------------------------------------------------------------------
def _make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_paragraph("关于做好安全生产工作的通知", style="Title")
    d.add_paragraph("各区应急管理局：")
    d.add_heading("一、总体要求", level=1)
    d.add_paragraph("组织传达学习贯彻**次，××同志参加。")
    d.add_heading("（一）工作目标", level=2)
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "单位"
    table.cell(0, 1).text = "责任人"
    table.cell(1, 0).text = "安全科"
    table.cell(1, 1).text = "张三"
    d.add_paragraph("表后的段落。")
    d.core_properties.title = "旧模板标题"
    d.core_properties.author = "办公室"
    import datetime as dt

    d.core_properties.created = dt.datetime(2024, 3, 8, 9, 30)
    d.save(path)
    return path


def test_docx_paragraphs_headings_tables_and_properties(tmp_path):
    rr = read_file(_make_docx(tmp_path / "通知.docx"))
    assert rr.format == "docx"
    assert rr.text.split("\n") == [
        "关于做好安全生产工作的通知", "各区应急管理局：", "一、总体要求", "组织传达学习贯彻**次，××同志参加。",
        "（一）工作目标", "单位\t责任人", "安全科\t张三", "表后的段落。",
    ]
    assert [(h.level, h.text) for h in rr.headings] == [
        (0, "关于做好安全生产工作的通知"), (1, "一、总体要求"), (2, "（一）工作目标")]
    for h in rr.headings:
        assert rr.text[h.start:h.end] == h.text
    assert rr.meta["title"] == "关于做好安全生产工作的通知"
    assert rr.meta["core_title"] == "旧模板标题"
    assert rr.meta["author"] == "办公室"
    assert rr.meta["created"] == "2024-03-08"


def test_docx_core_title_without_title_paragraph(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("正文。")
    d.core_properties.title = "文档属性里的标题"
    d.save(tmp_path / "t.docx")
    rr = read_file(tmp_path / "t.docx")
    assert rr.meta["title"] == "文档属性里的标题"
    assert "author" not in rr.meta and "created" not in rr.meta  # python-docx template defaults
    assert rr.headings == []


def test_docx_uppercase_suffix(tmp_path):
    src = _make_docx(tmp_path / "a.docx")
    upper = tmp_path / "B.DOCX"
    upper.write_bytes(src.read_bytes())
    assert read_file(upper).format == "docx"


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a zip file at all",
        b"PK\x03\x04" + bytes(200),
        "伪装成 DOCX 的文本".encode(),
    ],
)
def test_corrupt_docx(tmp_path, data):
    with pytest.raises(ReadError, match="DOCX 文件已损坏或不是 DOCX 格式"):
        read_file(_write(tmp_path, "bad.docx", data))


def test_zip_without_document_part(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "不是 Word 文档")
    with pytest.raises(ReadError, match="DOCX 文件已损坏"):
        read_file(_write(tmp_path, "zip.docx", buf.getvalue()))


def test_truncated_docx(tmp_path):
    data = _make_docx(tmp_path / "ok.docx").read_bytes()
    with pytest.raises(ReadError, match="DOCX 文件已损坏"):
        read_file(_write(tmp_path, "cut.docx", data[: len(data) // 2]))


def _bomb(path: Path, size: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", b"\x00" * size)
    return path


def test_docx_zip_bomb_ratio_is_refused(tmp_path):
    p = _bomb(tmp_path / "bomb.docx", 8 * 1024 * 1024)
    assert p.stat().st_size < 100_000
    with pytest.raises(ReadError, match="压缩炸弹"):
        read_file(p)


def test_docx_uncompressed_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(docx_reader, "DOCX_MAX_UNCOMPRESSED", 1024 * 1024)
    with pytest.raises(ReadError, match="解压后过大"):
        read_file(_bomb(tmp_path / "large.docx", 2 * 1024 * 1024))


# ---------------------------------------------------------------------------------------------
# iter_files
# ---------------------------------------------------------------------------------------------
def test_iter_files_walks_sorted_and_skips(tmp_path):
    root = tmp_path / "docs"
    (root / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    for name in ["b/2.md", "b/1.TXT", "a.html", "manifest.csv", ".hidden.txt", ".git/x.txt",
                 "notes.xyz", "c.docx", "d.pdf", "e.htm"]:
        (root / name).write_text("内容", encoding="utf-8")
    explicit = tmp_path / "other.xyz"
    explicit.write_text("x", encoding="utf-8")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_files([root, explicit, root / "a.html"])]
    assert got == ["docs/a.html", "docs/c.docx", "docs/d.pdf", "docs/e.htm", "docs/b/1.TXT", "docs/b/2.md",
                   "other.xyz"]
    missing = tmp_path / "missing.txt"
    assert list(iter_files([missing])) == [missing]


def test_supported_suffixes():
    assert set(SUPPORTED_SUFFIXES) >= {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}


# ---------------------------------------------------------------------------------------------
# The shared corpus
# ---------------------------------------------------------------------------------------------
def _shared(sub: str) -> Path:
    d = SHARED / sub
    if not d.is_dir():
        pytest.skip(f"shared corpus not found at {d}")
    return d


def test_shared_policy_html(tmp_path):
    folder = _shared("policy")
    pages = sorted(folder.glob("*.html"))
    assert pages
    gov = 0
    for p in pages:
        rr = read_file(p)
        assert rr.text.strip() and rr.meta.get("html_title")
        assert not re.search(r"</?[a-zA-Z][a-zA-Z0-9]*[ >]", rr.text), p.name
        assert not re.search(r"[ \t]$", rr.text, re.M) and "\n\n\n" not in rr.text
        assert "扫一扫在手机打开当前页" not in rr.text
        for h in rr.headings:
            assert rr.text[h.start:h.end] == h.text
        if b"UCAP-CONTENT" in p.read_bytes():
            gov += 1
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", rr.meta["date"]), p.name
            assert rr.meta["issuer"], p.name
            assert rr.meta["title"], p.name
            assert p.name.startswith(rr.meta["date"]), p.name
            assert "索 引 号" not in rr.text and "发文机关" not in rr.text
    assert gov >= 10


def test_shared_reports_txt():
    folder = _shared("reports")
    heading = re.compile(r"^[\s\u3000]*([一二三四五六七八九十]+、\S*|（[一二三四五六七八九十]+）\S*)")
    for p in sorted(folder.glob("*.txt")):
        rr = read_file(p)
        assert "\u200b" not in rr.text and "\r" not in rr.text
        out_lines = [ln.strip("\u3000 ") for ln in rr.text.split("\n")]
        starts = set(out_lines)
        raw = p.read_text(encoding="utf-8")
        for line in raw.splitlines():
            m = heading.match(line)
            if m:  # numbered headings still begin a line of their own
                s = line.strip("\u3000 \u200b")
                assert s in starts or any(o.startswith(s) for o in out_lines), (p.name, s)
    r2017 = read_file(folder / "2017-03-05-2017年政府工作报告.txt")
    lines = r2017.text.split("\n")
    assert lines[0] == "政府工作报告"
    assert any("广义货币M2和社会融资规模" in ln for ln in lines)
    assert any(ln.startswith("党的十八届六中全会正式明确习近平总书记的核心地位") for ln in lines)
    r2012 = read_file(folder / "2012-03-05-2012年政府工作报告.txt")
    assert "一、2011年工作回顾" in r2012.text.split("\n")


def test_shared_markdown():
    folder = _shared("laws")
    files = sorted(folder.glob("*.md"))[:30]
    for p in files:
        rr = read_file(p)
        assert rr.headings, p.name
        assert "<!--" not in rr.text and not rr.text.startswith("#")
        for h in rr.headings:
            assert rr.text[h.start:h.end] == h.text
    policy = _shared("policy")
    for p in sorted(policy.glob("*.md")):
        rr = read_file(p)
        assert "&emsp;" not in rr.text and "<div" not in rr.text and "<p" not in rr.text
        assert "pageclass" in rr.meta
        assert any(h.text.startswith("一、") for h in rr.headings)


def test_shared_pdf_dispatch():
    folder = _shared("policy")
    try:
        import yuanwen.ingest.readers.pdf  # noqa: F401
    except ImportError:
        pytest.skip("the PDF reader is not available")
    pdfs = sorted(folder.glob("*.pdf"), key=lambda p: p.stat().st_size)
    if not pdfs:
        pytest.skip("no PDF in the shared corpus")
    rr = read_file(pdfs[0])
    assert rr.format == "pdf"
    assert rr.text == rr.text.strip() and "\r" not in rr.text
    for start in rr.pages:
        assert 0 <= start <= len(rr.text)


# ---------------------------------------------------------------------------------------------
# The reader registry (ingest/readers)
# ---------------------------------------------------------------------------------------------
def test_registry_lists_every_format_once():
    from yuanwen.ingest import readers

    names = [r.name for r in readers.readers()]
    assert names == ["txt", "md", "html", "pdf", "docx", "doc", "ofd", "image"]
    assert readers.SUPPORTED_SUFFIXES == tuple(s for r in readers.readers() for s in r.suffixes)
    assert readers.upload_types() == [s.lstrip(".") for s in readers.SUPPORTED_SUFFIXES]
    assert readers.reader_for("A.PDF").name == "pdf" and readers.reader_for("x.htm").name == "html"
    assert readers.reader_for("x.xyz") is None and readers.reader_for("README") is None
    # Text formats carry the text limit; DOCX and PDF only the caller's.
    limits = {r.name: r.max_bytes for r in readers.readers()}
    assert limits == {"txt": readers.TEXT_MAX_BYTES, "md": readers.TEXT_MAX_BYTES,
                      "html": readers.TEXT_MAX_BYTES, "pdf": None, "docx": None, "doc": None, "ofd": None,
                      "image": None}


def test_a_registered_reader_is_dispatched_to_and_walked(tmp_path, monkeypatch):
    from yuanwen.ingest import readers
    from yuanwen.ingest.walk import iter_files as walk_files
    from yuanwen.models import ReadResult

    monkeypatch.setattr(readers, "_BY_SUFFIX", dict(readers._BY_SUFFIX))  # restored afterwards
    monkeypatch.setattr(readers, "SUPPORTED_SUFFIXES", readers.SUPPORTED_SUFFIXES)

    def read_rst(data, path):
        return ReadResult(text=data.decode("utf-8").upper(), format="rst")

    readers.register(readers.Reader("rst", (".RST",), read_rst, max_bytes=10))
    assert readers.SUPPORTED_SUFFIXES[-1] == ".rst" and "rst" in readers.upload_types()
    p = _write(tmp_path, "a.rst", "abc")
    rr = read_file(p)
    assert (rr.text, rr.format) == ("ABC", "rst")
    assert list(walk_files([tmp_path])) == [p]
    with pytest.raises(ReadError, match="文件过大"):
        read_file(_write(tmp_path, "b.rst", "x" * 11))
    with pytest.raises(ValueError, match="already"):
        readers.register(readers.Reader("other", (".txt",), read_rst))
