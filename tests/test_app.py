"""The Streamlit app (app.py) driven headless with streamlit.testing.v1.AppTest.

The app runs in this process, so the fake embedder registered by tests/conftest.py is what
it loads for a knowledge base built with ``embedder="fake"``. The knowledge base reaches the
app through ``$YUANWEN_KB`` (pytest's own argv carries no ``--kb``).
"""

from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest
from streamlit.testing.v1 import AppTest

from yuanwen.ingest.pipeline import ingest
from pages_app import common as app_common
from yuanwen.search import pack as packops
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.models import PackItem, StudyPack
from yuanwen import uploads

from .conftest import ROOT, FakeEmbedder  # noqa: F401  (registers the "fake" embedder)

MINI = ROOT / "tests" / "fixtures" / "mini"
APP = str(ROOT / "app.py")
XSS_TEXT = (
    "关于页面显示安全的测试说明\n"
    "一、总体要求\n"
    "<script>alert(1)</script>页面必须把文档内容当作文字显示。请勿点击[点我](http://x)这样的链接。\n"
    "二、具体措施\n"
    "所有文字都要先转义再显示，确保不会执行任何脚本。\n"
)




@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, backend) -> Path:
    base = tmp_path_factory.mktemp("appkb")
    extra = base / "extra"
    extra.mkdir()
    (extra / "xss.txt").write_text(XSS_TEXT, encoding="utf-8")
    kb = base / "kb"
    report = ingest([MINI, extra], Config(kb_dir=kb), embedder="fake", progress=False)
    assert not report.failed, report.failed
    return kb


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def page_shown(at: AppTest) -> str:
    """The title of the page the app shows (each page starts with its header)."""
    return at.header[0].value


def goto(at: AppTest, slug: str) -> AppTest:
    """Open another page, as its link in the sidebar's navigation does."""
    return at.switch_page(f"pages_app/{app_common.PAGES[slug][1]}").run()


def html_values(at: AppTest) -> list[str]:
    return [e.value for e in at.get("html")]


def doc_id(kb_dir: Path, title_part: str) -> int:
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        return next(d.id for d in kb.store.documents() if title_part in d.title)
    finally:
        kb.close()


# -- 检索 --------------------------------------------------------------------------------------
def test_search_with_type_filter_writes_the_url(app):
    at = ok(app())
    at.text_input(key="s_q").input("安全生产")
    at.multiselect(key="s_types").select("地方性法规")
    at.radio(key="s_mode").set_value("关键词")
    ok(at.button(key="s_go").click().run())
    res = at.session_state["search_res"]
    assert res.hits and {h.document.doc_type for h in res.hits} == {"地方性法规"}
    titles = [v for v in html_values(at) if 'class="yw-title"' in v]
    assert titles and all("某市安全生产条例" in t for t in titles)
    assert any("<mark>安全生产</mark>" in v for v in html_values(at))
    assert at.query_params["q"] == "安全生产" and at.query_params["type"] == "地方性法规"
    assert at.query_params["mode"] == "keyword" and page_shown(at) == "检索"
    # each card offers the citation in a code block (with its copy button)
    assert any("某市安全生产条例" in c.value for c in at.code)


def test_search_is_restored_from_the_url(app):
    at = ok(app({"page": "search", "q": "强降雨", "issuer": "应急管理局", "mode": "keyword"}))
    assert at.text_input(key="s_q").value == "强降雨"
    assert at.radio(key="s_mode").value == "关键词"
    res = at.session_state["search_res"]
    assert res.hits and {h.document.issuer for h in res.hits} == {"区应急管理局"}


def test_bad_query_and_bad_date_are_shown_as_errors(app):
    at = ok(app({"q": "。，！"}))
    assert at.error and "标点" in at.error[0].value
    at = ok(app({"q": "安全", "since": "去年"}))
    assert at.error and "日期格式不对" in at.error[0].value and "去年" in at.error[0].value


def test_missing_kb_is_a_friendly_message(app, tmp_path):
    at = ok(app(kb=tmp_path / "nothing"))
    assert not at.error
    assert any("yuanwen ingest" in i.value and "知识库" in i.value for i in at.info)


# -- 引文核对 ----------------------------------------------------------------------------------
def check_quote(app, text: str) -> AppTest:
    at = ok(app({"page": "quote"}))
    at.text_area(key="q_text").input(text)
    return ok(at.button(key="q_go").click().run())


def test_quote_exact_lists_every_source_earliest_first(app):
    at = check_quote(app, "遇有强降雨时，要提前转移危险区域群众")
    assert any("原文一致" in m.value for m in at.markdown)
    titles = [v for v in html_values(at) if 'class="yw-title"' in v]
    assert len(titles) == 2 and "市人民政府办公室" in titles[0] and "转发稿" in titles[1]
    assert any("<mark>遇有强降雨时，要提前转移危险区域群众</mark>" in v for v in html_values(at))
    assert len(at.code) == 2 and "2022年6月1日" in at.code[0].value
    ok(at.button(key="quote_view_0").click().run())  # 在文中查看: the quoted words are marked
    focused = next(v for v in html_values(at) if 'class="yw-passage yw-focus"' in v)
    assert "<mark>遇有强降雨时，要提前转移危险区域群众</mark>" in focused


def test_quote_close_marks_the_differences(app):
    at = check_quote(app, "各行业主管部门要按照管行业必须管安全的要求，认真履行监管责任")
    assert any("有出入" in m.value for m in at.markdown)
    body = next(v for v in html_values(at) if "yw-passage" in v)
    assert 'class="yw-missing"' in body and "切实" in body
    assert 'class="yw-added"' in body or 'class="yw-changed"' in body
    assert at.code  # the citation


def test_quote_not_found(app):
    at = check_quote(app, "要把青年干部派到信访接待一线蹲点锻炼，每人每年不少于三十天")
    assert any("未找到" in m.value for m in at.markdown)
    assert not at.code


def test_quote_verdict_once_ctrl_enter_and_a_link_to_share(app):
    """Applying the text (Ctrl+Enter) runs the check without the button; the verdict is said once;
    the URL then holds the quote, and opening that URL checks it again."""
    at = ok(app({"page": "quote"}))
    text = "各行业主管部门要按照管行业必须管安全的要求，认真履行监管责任"
    ok(at.text_area(key="q_text").input(text).run())
    said = [m.value for m in at.markdown if "有出入" in m.value]
    assert len(said) == 1 and "相似度" in said[0]
    assert at.query_params["text"] == text
    again = ok(app({"page": "quote", "text": text}))
    assert [m.value for m in again.markdown if "有出入" in m.value] == said


def test_quote_too_short_is_an_error(app):
    at = check_quote(app, "安全生产")
    assert at.error and "至少" in at.error[0].value


# -- 文档 --------------------------------------------------------------------------------------
def test_document_text_is_never_rendered_as_html_or_markdown(app, kb_dir):
    at = ok(app({"page": "docs", "doc": str(doc_id(kb_dir, "页面显示安全"))}))
    htmls = html_values(at)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in v for v in htmls)
    assert any("[点我](http://x)" in v for v in htmls)  # literal, not a link
    everything = htmls + [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("<script>alert" in v for v in everything)
    assert not any('href="http://x"' in v for v in everything)
    # the outline: one entry per heading, linking to the passage anchors
    nav = next(v for v in htmls if "yw-outline" in v)
    assert "一、总体要求" in nav and "二、具体措施" in nav and 'href="#yw-p-' in nav
    assert page_shown(at) == "文档" and at.query_params["doc"]


def test_an_old_style_link_opens_its_page_and_each_page_keeps_its_query(app, kb_dir):
    doc = doc_id(kb_dir, "页面显示安全")
    at = ok(app({"page": "docs", "doc": str(doc), "q": "防汛", "mode": "keyword"}))
    assert page_shown(at) == "文档" and "page" not in at.query_params  # the page is the path now
    assert at.query_params["doc"] == str(doc) and "q" not in at.query_params
    ok(goto(at, "search"))  # the search the link carried ran, and its query is back in the URL
    assert page_shown(at) == "检索" and at.session_state["search_res"].hits
    assert at.query_params["q"] == "防汛" and at.query_params["mode"] == "keyword"


def test_view_in_document_from_a_hit(app):
    at = ok(app({"q": "防汛责任人", "mode": "keyword"}))
    hit = at.session_state["search_res"].hits[0]
    ok(at.button(key=f"hit_view_{hit.passage.id}").click().run())
    assert page_shown(at) == "文档" and at.query_params["doc"] == str(hit.document.id)
    focused = [v for v in html_values(at) if 'class="yw-passage yw-focus"' in v]
    assert len(focused) == 1 and f'id="yw-p-{hit.passage.id}"' in focused[0]
    assert any("scrollIntoView" in v for v in html_values(at))
    # 相关论述: under the passage the reader came to, the closest passages of other documents
    assert any("相关论述" in e.label for e in at.expander)
    related = [b for b in at.button if b.key and b.key.startswith(f"rel_view_{hit.passage.id}_")]
    assert related
    ok(related[0].click().run())
    assert page_shown(at) == "文档" and at.query_params["doc"] != str(hit.document.id)


def test_filter_documents_and_add_a_passage(app, kb_dir):
    at = ok(app({"page": "docs"}))
    at.multiselect(key="d_types").select("地方性法规").run()
    assert at.selectbox(key="d_pick").options == ["某市安全生产条例　2019-09-20　地方性法规"]
    assert not [b for b in at.button if b.key and b.key.startswith("doc_add_")]  # none until one is picked
    pid = next(int(v.split('data-pid="')[1].split('"')[0]) for v in html_values(at) if "data-pid=" in v)
    ok(at.text_input(key="doc_sel").input(str(pid)).run())  # what a click on the passage does
    assert any(f'id="yw-p-{pid}"' in v and "yw-selected" in v for v in html_values(at))
    ok(at.button(key=f"doc_add_{pid}").click().run())
    assert at.button(key=f"doc_add_{pid}").disabled  # 已在汇编中
    pack = at.session_state["pack"]
    assert packops.item_count(pack) == 1 and pack.sections[0].items[0].title == "某市安全生产条例"


# -- 学习材料汇编 ------------------------------------------------------------------------------
def test_pack_collect_arrange_and_export(app, download, monkeypatch):
    from yuanwen.library import Library

    built: list[str] = []
    pack_bytes = Library.pack_bytes

    def counting(pack, fmt, source="excerpt"):
        built.append(fmt)
        return pack_bytes(pack, fmt, source)

    monkeypatch.setattr(Library, "pack_bytes", staticmethod(counting))
    at = ok(app({"q": "安全生产", "mode": "keyword"}))
    hits = at.session_state["search_res"].hits
    assert len(hits) >= 2
    ok(at.button(key=f"hit_add_{hits[0].passage.id}").click().run())
    ok(at.button(key=f"hit_add_{hits[1].passage.id}").click().run())
    assert at.button(key=f"hit_add_{hits[0].passage.id}").disabled  # already in the pack

    ok(goto(at, "pack"))
    assert page_shown(at) == "学习材料汇编"
    at.text_input(key="pk_title").input("安全生产专题学习").run()
    at.text_input(key="pk_new_section").input("二、防汛工作")
    ok(at.button(key="pk_add_section").click().run())
    pack = at.session_state["pack"]
    assert [s.title for s in pack.sections] == ["未分组", "二、防汛工作"]
    first, second = pack.sections[0].items
    # move the second item up, then the (new) second one to the other section, add a note
    ok(at.button(key=f"pk_up_0_1_{second.passage_id}").click().run())
    assert [i.passage_id for i in at.session_state["pack"].sections[0].items] == [
        second.passage_id, first.passage_id]
    at.selectbox(key=f"pk_move_0_1_{first.passage_id}").set_value("2. 二、防汛工作").run()
    ok(at)
    at.text_area(key=f"pk_note_1_0_{first.passage_id}").input("重点学习").run()
    pack = ok(at).session_state["pack"]
    assert pack.title == "安全生产专题学习"
    assert [len(s.items) for s in pack.sections] == [1, 1]
    assert pack.sections[1].items[0].note == "重点学习"

    # no export was built while the pack was arranged: each file is built when clicked
    assert built == []
    button = at.get("download_button")
    docx_button = next(b for b in button if b.proto.label.startswith("导出 Word"))
    data, file_name = download(docx_button)
    assert file_name == "安全生产专题学习.docx" and built == ["docx"]
    from tests.docx_checks import check_gongwen_docx
    from yuanwen.search.export import source_line

    text = "\n".join(p.text for p in check_gongwen_docx(data, pack).paragraphs)
    item = pack.sections[1].items[0]
    # numbered once: the user's 二、 is kept, 未分组 is numbered 一、
    assert "安全生产专题学习" in text and "二、防汛工作" in text and "二、二、" not in text
    assert "一、未分组" in text
    assert item.text.split("\n")[0] in text and source_line(item) in text
    assert "重点学习" in text and "按：" not in text
    md_button = next(b for b in button if b.proto.label.startswith("导出 Markdown"))
    md = download(md_button)[0].decode("utf-8")
    assert md.startswith("# 安全生产专题学习") and "重点学习" in md and "按：" not in md
    # the citation style chosen when the passages were added, instead of 摘自
    at.radio(key="pk_source").set_value("citation").run()
    docx_button = next(b for b in ok(at).get("download_button") if b.proto.label.startswith("导出 Word"))
    check_gongwen_docx(download(docx_button)[0], pack, "citation")
    json_button = next(b for b in at.get("download_button") if b.proto.label.startswith("下载汇编文件"))
    assert Library.load_pack(download(json_button)[0]) == pack
    assert built == ["docx", "md", "docx", "json"]

    ok(at.button(key=f"pk_del_0_0_{second.passage_id}").click().run())
    assert packops.item_count(at.session_state["pack"]) == 1


def _pdf_pack(at) -> None:
    hits = at.session_state["search_res"].hits
    ok(at.button(key=f"hit_add_{hits[0].passage.id}").click().run())
    ok(goto(at, "pack"))


def test_pack_page_without_libreoffice_says_how_to_get_a_pdf(app, monkeypatch):
    monkeypatch.setenv("YUANWEN_SOFFICE", "")
    at = ok(app({"q": "安全生产", "mode": "keyword"}))
    _pdf_pack(at)
    assert any("LibreOffice" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key == "pk_pdf_make"]


@pytest.mark.slow
def test_pack_page_makes_a_pdf_through_libreoffice(app, media):
    from yuanwen.library import Library

    if not Library.pdf_available():
        pytest.skip("LibreOffice is not installed")
    at = ok(app({"q": "安全生产", "mode": "keyword"}))
    _pdf_pack(at)
    ok(at.button(key="pk_pdf_make").click().run())
    pdf = next(b for b in at.get("download_button") if b.proto.label == "下载 PDF")
    data, name = media[Path(pdf.proto.url).stem]
    assert data.startswith(b"%PDF") and name.endswith(".pdf")


def test_pack_operations_are_pure():
    item = PackItem(text="甲", title="文", citation="《文》。", passage_id=1)
    p0 = StudyPack()
    p1 = packops.add_item(p0, item)
    assert p0.sections == [] and p1.sections[0].title == "未分组"
    assert packops.add_item(p1, item) == p1  # no duplicates
    p2 = packops.add_section(p1, "第二组")
    p2 = packops.add_item(p2, PackItem(text="乙", title="文", citation="c", passage_id=2))
    assert [len(s.items) for s in p2.sections] == [1, 1]
    p3 = packops.move_item(p2, 1, 0, -1)  # past the top: to the end of the previous section
    assert [len(s.items) for s in p3.sections] == [2, 0]
    p4 = packops.remove_section(packops.move_to_section(p3, 0, 0, 1), 1)
    assert [i.passage_id for i in p4.sections[0].items] == [2, 1]
    with pytest.raises(Exception, match="没有第"):
        packops.set_note(p4, 0, 5, "x")


# -- 知识库 ------------------------------------------------------------------------------------
def test_stats_page(app):
    at = ok(app({"page": "kb"}))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["文档"] == "5 篇" and metrics["已向量化"] == "100%"
    assert any(m.value.startswith("**按格式**：") and "篇" in m.value for m in at.markdown)
    assert any(m.value.startswith("**向量模型**：") and "bigram" in m.value and m.value.endswith("64")
               for m in at.markdown)  # in full, not cut


def test_upload_creates_the_kb_reports_failures_and_neutralises_paths(app, tmp_path, monkeypatch):
    monkeypatch.setenv("YUANWEN_EMBEDDER", "fake")
    kb = tmp_path / "work" / "kb"
    at = ok(app({"page": "kb"}, kb=kb))
    assert any("还没有知识库" in i.value for i in at.info)
    good = "关于做好防汛工作的通知\n各单位：\n请各单位做好防汛准备，落实值班制度。\n".encode("utf-8")
    at.file_uploader(key="upload_0").set_value([
        ("empty.txt", b"", "text/plain"),
        ("[点我](http://x).txt", b"", "text/plain"),
        ("../../evil.txt", good.replace("防汛".encode(), "防火".encode()), "text/plain"),
        ("通知.txt", good, "text/plain"),
    ]).run()
    ok(at.button(key="up_go").click().run())
    errors = [e.value for e in at.error]
    assert any("empty\\.txt" in e and "文件为空" in e for e in errors)
    # a user-chosen name is shown literally: Markdown in it is escaped, never a link
    assert any(r"\[点我\]\(http\://x\)" in e for e in errors)
    assert any("新增 2 篇" in s.value and "失败 2 篇" in s.value for s in at.success)
    uploads = kb / "uploads"
    assert sorted(p.name for p in uploads.iterdir() if not p.name.startswith(".")) == [
        "empty.txt", "evil.txt", "x).txt", "通知.txt"]  # "/" in a name: only its last part
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "work" / "evil.txt").exists()
    # the new documents are seen at once (the cached knowledge base was dropped)
    goto(at, "search")
    at.text_input(key="s_q").input("值班制度")
    ok(at.button(key="s_go").click().run())
    assert {h.document.title for h in at.session_state["search_res"].hits} >= {"关于做好防汛工作的通知"}


@pytest.mark.parametrize("name, expected", [
    ("../../evil.txt", "evil.txt"),
    ("..\\..\\windows\\evil.docx", "evil.docx"),
    ("/etc/passwd", "passwd"),
    ("..", "upload"),
    ("...txt", "upload.txt"),
    ("a/../../b.PDF", "b.pdf"),
    ("关于<做好>防汛工作的通知（2022）.txt", "关于_做好_防汛工作的通知（2022）.txt"),
    ("CON.txt", "_CON.txt"),
    ("x\x00y\n.md", "x_y.md"),
])
def test_safe_filename(name, expected):
    assert uploads.safe_filename(name) == expected


def test_upload_target_stays_in_its_folder(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    for name in ("../../evil.txt", "../x.md", "/abs/y.pdf", "ok.txt"):
        assert uploads.upload_target(folder, name).parent == folder
    (folder / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(Exception, match="不安全"):
        uploads.upload_target(folder, "link.txt")


def test_highlight_escapes_before_marking():
    out = app_common.highlight("<b>安全</b> & lt", ["安全", "lt"])
    assert out == "&lt;b&gt;<mark>安全</mark>&lt;/b&gt; &amp; <mark>lt</mark>"
    assert app_common.highlight("ＡＢＣ规定", ["abc"]) == "<mark>ＡＢＣ</mark>规定"


def test_kb_dir_from_argv(monkeypatch, tmp_path):
    monkeypatch.setenv("YUANWEN_KB", str(tmp_path / "env"))
    assert app_common.kb_dir_from_argv(["--kb", str(tmp_path / "arg")]) == tmp_path / "arg"
    assert app_common.kb_dir_from_argv(["-q", "tests/x.py"]) == tmp_path / "env"


def test_a_hit_using_a_formulation_shows_its_full_wording(app, monkeypatch):
    """Beside a hit that uses a 提法, the app shows its full wording and source."""
    from yuanwen.vocab import Formulation

    from yuanwen.search import retrieve

    fake = Formulation("防汛责任", (), "防汛工作各级责任人的职责", "某市防汛办公室（2024）")
    monkeypatch.setattr(retrieve, "_formulation_names", lambda: (("防汛责任", fake),))
    at = ok(app({"q": "防汛责任人", "mode": "keyword"}))
    assert any("提法「防汛责任」：防汛工作各级责任人的职责（出处：某市防汛办公室（2024））" in c.value
               for c in at.caption)
