"""The OFD reader (ingest/readers/ofd.py) on the real samples, through a real ingest, in the
app's uploader, and against hostile files."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path

import pytest
from yuanwen.ingest.readers import read_file, upload_types

from tests.conftest import SHARED
from yuanwen.errors import OcrNeeded, ReadError

SAMPLES = SHARED.parent / "samples" / "ofd"
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"OFD samples not found at {SAMPLES}")

NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'


def _ofd(pages: list[str] | None = None, document: str | None = None, extra: dict | None = None,
         compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A minimal OFD package: OFD.xml -> Doc_0/Document.xml -> one Content.xml per page."""
    pages = pages if pages is not None else [_page("第一页正文。")]
    if document is None:
        refs = "".join(f'<ofd:Page ID="{i + 10}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages)))
        document = f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {NS}><ofd:Pages>{refs}</ofd:Pages></ofd:Document>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        zf.writestr("OFD.xml", f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD {NS} Version="1.0" DocType="OFD">'
                               "<ofd:DocBody><ofd:DocInfo><ofd:Title>测试</ofd:Title></ofd:DocInfo>"
                               "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>")
        zf.writestr("Doc_0/Document.xml", document)
        for i, page in enumerate(pages):
            zf.writestr(f"Doc_0/Pages/Page_{i}/Content.xml", page)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def _page(*lines: str, size: float = 5.0) -> str:
    objs = "".join(
        f'<ofd:TextObject ID="{i + 1}" Boundary="30 {30 + 8 * i} 150 7" Font="1" Size="{size}">'
        f'<ofd:TextCode X="0" Y="{size}">{line}</ofd:TextCode></ofd:TextObject>'
        for i, line in enumerate(lines))
    return (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {NS}><ofd:Content><ofd:Layer ID="100">'
            f"{objs}</ofd:Layer></ofd:Content></ofd:Page>")


# ---------------------------------------------------------------------------------------------
# The samples
# ---------------------------------------------------------------------------------------------
@needs_samples
def test_red_header_pifu_text_in_reading_order_page_numbers_dropped():
    rr = read_file(SAMPLES / "pifu-luqiao-weisheng.ofd")
    assert rr.format == "ofd"
    lines = rr.text.split("\n")
    assert lines[:4] == ["测试符路桥区卫生局文件", "路卫发〔2011〕76号", "关于同意张阿三同志辞职的批复", "区中医院："]
    # wrapped lines joined into paragraphs
    assert "张阿三，男，1978年2月出生，籍贯江西新建，2001年9月参加工作，本科学历，主治医师，系区中医院职工。" in lines
    assert "根据《浙江省专业技术人员和管理人员辞职暂行办法》（浙人才〔1993〕73号）文件精神" in rr.text
    assert "— 1 —" not in rr.text and "— 2 —" not in rr.text
    # page 2 starts at the 落款
    assert len(rr.pages) == 2 and rr.text[rr.pages[1]:].startswith("测试符路桥区卫生局办公室\n2011年3月10日")
    # the 版记 line keeps its two parts apart
    assert lines[-1] == "测试符路桥区卫生局办公室\t2011年3月10日印发"


@needs_samples
def test_essay_paragraphs_reassembled_across_text_objects_and_pages():
    rr = read_file(SAMPLES / "nalai-zhuyi.ofd")
    paras = rr.text.split("\n")
    assert paras[:2] == ["拿来主义", "鲁迅"]
    assert paras[2].startswith("中国一向是所谓“闭关主义”，自己不去，别人也不许来。自从给枪炮打破了大门之后")
    assert paras[2].endswith("也可以算得显出一点进步了。")
    assert "但我们没有人根据了“礼尚往来”的仪节，说道：拿来！" in paras
    # a paragraph running over the page break is one paragraph
    assert "如果反对这宅子的旧主人，怕给他的东西染污了，徘徊不敢走进门，是孱头" in rr.text
    assert paras[-1].endswith("没有拿来的，文艺不能自成为新文艺。")
    assert len(rr.pages) == 2 and 0 < rr.pages[1] < len(rr.text)


@needs_samples
def test_numbered_poetry_lines_over_several_pages():
    rr = read_file(SAMPLES / "shiju.ofd")
    lines = rr.text.split("\n")
    assert lines[0] == "1、一日不见兮，思之如狂。――《凤求凰·琴歌》"
    assert "10、红豆生南国，春来发几枝。――《相思》" in lines
    assert "19、欲穷千里目，更上一层楼。――《登鹳雀楼》" in lines
    assert len(rr.pages) == 11 and rr.pages == sorted(rr.pages)


@needs_samples
def test_form_table_rows_kept_in_order_cells_tab_separated():
    rr = read_file(SAMPLES / "shouwen-chuli.ofd")
    lines = rr.text.split("\n")
    rows = [
        "来文文号\t府办专督〔2020〕24号\t来文单位\t市人民政府办公室",
        "来文日期\t阅文时限",
        "收文日期\t2020年06月15日11:28:09\t单位收文编号\tX 725",
        "收文机关\t秘书股\t收文登记人\t陈小明",
        "紧急程度\t常规\t公开方式\t不公开\t公文处理类型\t签阅",
        "公文标题\t市委主要领导同志调研后续落实事项的通知",
    ]
    at = [lines.index(r) for r in rows]
    assert at == sorted(at) and at[-1] - at[0] == len(rows) - 1
    assert lines[0] == "XX市政府文件处理"
    opinion = next(ln for ln in lines if ln.startswith("拟办意见\t"))
    assert "1、呈小明、张三、国伟、李四同志阅示；2、呈王五同志阅处；" in opinion
    # the stamps (annotations) and the annotation's remark are not text
    assert "测试文本注释" not in rr.text


@needs_samples
def test_spec_page_table_and_docinfo():
    rr = read_file(SAMPLES / "ofd-spec-11.4.ofd")
    lines = rr.text.split("\n")
    i = lines.index("名称\t类型\t说明\t可选/必选")
    assert lines[i + 1] == "CodePosition\txs:int\tTextCode中字符编码的起始位置，从0开始\t必选"
    assert lines[i + 2].startswith("CodeCount\txs:int\t变换关系中字符的数量") and lines[i + 2].endswith("默认为1\t可选")
    assert lines[i + 4] == "Glyphs\tST_Array\t变换关系中字型索引列表\t可选"
    assert ("字型的索引跟具体的字型文件紧密相关，同一个字型在不同的字型文件中的索引值并不一样，"
            "因此当使用到字型变换时，宜将对应的字型文件嵌入到文书类版式文档中。") in lines
    assert rr.meta["ofd_title"] == "11.4 字型变换" and rr.meta["ofd_author"] == "朱文荣"
    assert rr.meta["created"] == "2012-06-05" and len(rr.pages) == 4


@needs_samples
def test_no_text_layer_is_reported_with_a_reason():
    with pytest.raises(ReadError) as e:
        read_file(SAMPLES / "no-text-layer.ofd")
    assert "没有文字层" in e.value.reason and "OCR" in e.value.reason
    assert e.value.path.name == "no-text-layer.ofd"
    # With OCR on there is nothing to recognise either: its pages are vector paths and seals
    with pytest.raises(ReadError) as e:
        read_file(SAMPLES / "no-text-layer.ofd", ocr={})
    assert "页面只有图形和印章" in e.value.reason and not isinstance(e.value, OcrNeeded)


# ---------------------------------------------------------------------------------------------
# Hostile files
# ---------------------------------------------------------------------------------------------
def _bomb() -> bytes:
    page = _page("正文。")
    pad = page.replace("</ofd:Layer>", "<!--" + " " * (40 * 1024 * 1024) + "--></ofd:Layer>")
    return _ofd([pad])


def _billion_laughs() -> bytes:
    ents = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
    page = (f'<?xml version="1.0"?><!DOCTYPE ofd:Page [{ents}]><ofd:Page {NS}><ofd:Content><ofd:Layer ID="1">'
            '<ofd:TextObject ID="2" Boundary="30 30 150 7" Font="1" Size="5"><ofd:TextCode X="0" Y="5">'
            "&lol9;</ofd:TextCode></ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>")
    return _ofd([page])


def _external_entity(target: Path) -> bytes:
    page = (f'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file://{target}">]><ofd:Page {NS}>'
            '<ofd:Content><ofd:Layer ID="1"><ofd:TextObject ID="2" Boundary="30 30 150 7" Font="1" Size="5">'
            '<ofd:TextCode X="0" Y="5">&xxe;</ofd:TextCode></ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>')
    return _ofd([page])


def _many_pages(n: int = 5000) -> bytes:
    refs = "".join(f'<ofd:Page ID="{i}" BaseLoc="Pages/Page_0/Content.xml"/>' for i in range(n))
    doc = f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {NS}><ofd:Pages>{refs}</ofd:Pages></ofd:Document>'
    return _ofd([_page("一页。")], document=doc)


def test_hostile_files_are_refused_by_name(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("机密内容不可泄露", encoding="utf-8")
    cases = {
        "bomb.ofd": (_bomb(), "压缩炸弹"),
        "laughs.ofd": (_billion_laughs(), "DTD"),
        "xxe.ofd": (_external_entity(secret), "DTD"),
        "pages.ofd": (_many_pages(), "页数过多"),
        "notzip.ofd": (b"PK\x03\x04 not really a zip", "已损坏"),
    }
    for name, (data, words) in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        with pytest.raises(ReadError) as e:
            read_file(f)
        assert words in e.value.reason, (name, e.value.reason)
        assert e.value.path == f and "OFD" in e.value.reason
    assert len(_bomb()) < 1024 * 1024  # the bomb is small on disk


def test_minimal_package_reads_and_template_text_comes_first(tmp_path):
    tpl = _page("模板页眉文字")
    doc = (f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {NS}><ofd:CommonData>'
           '<ofd:TemplatePage ID="5" BaseLoc="Tpls/Tpl_0/Content.xml"/></ofd:CommonData><ofd:Pages>'
           '<ofd:Page ID="10" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>')
    page = _page("", "正文第一段。").replace("<ofd:Content>", '<ofd:Template TemplateID="5"/><ofd:Content>')
    f = tmp_path / "t.ofd"
    f.write_bytes(_ofd([page], document=doc, extra={"Doc_0/Tpls/Tpl_0/Content.xml": tpl}))
    rr = read_file(f)
    assert rr.text.split("\n") == ["模板页眉文字", "正文第一段。"]


# ---------------------------------------------------------------------------------------------
# A real ingest, the CLI's stats and the app's uploader
# ---------------------------------------------------------------------------------------------
@needs_samples
def test_ingest_finds_pifu_metadata_and_refuses_bad_files_by_name(tmp_path):
    from yuanwen.ingest.pipeline import ingest

    from yuanwen.config import Config
    from yuanwen.kb import KnowledgeBase

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pifu-luqiao-weisheng.ofd", "no-text-layer.ofd", "shouwen-chuli.ofd"):
        shutil.copy(SAMPLES / name, src / name)
    (src / "bomb.ofd").write_bytes(_bomb())
    (src / "laughs.ofd").write_bytes(_billion_laughs())
    (src / "pages.ofd").write_bytes(_many_pages())
    report = ingest([src], Config(kb_dir=tmp_path / "kb"), embedder="fake", progress=False)
    failed = {Path(o.path).name: o.reason for o in report.failed}
    assert set(failed) == {"no-text-layer.ofd", "bomb.ofd", "laughs.ofd", "pages.ofd"}, failed
    assert "页面只有图形和印章" in failed["no-text-layer.ofd"]
    assert report.count("added") == 2

    base = KnowledgeBase(Config(kb_dir=tmp_path / "kb"), readonly=True)
    try:
        docs = {Path(d.path).name: d for d in base.store.documents()}
        assert set(docs) == {"pifu-luqiao-weisheng.ofd", "shouwen-chuli.ofd"}  # nothing stored empty
        d = docs["pifu-luqiao-weisheng.ofd"]
        assert d.title == "关于同意张阿三同志辞职的批复"
        assert d.issuer == "路桥区卫生局"
        assert d.doc_number == "路卫发〔2011〕76号"
        assert d.date == "2011-03-10"
        # a passage never splits a table row: each row lies whole inside one passage
        form = next(x for x in base.store.documents(with_text=True) if x.path.endswith("shouwen-chuli.ofd"))
        rows = [ln for ln in form.text.split("\n") if "\t" in ln]
        passages = [ps.text for ps in base.store.document_passages(form.id)]
        assert len(rows) >= 7
        for row in rows:
            assert any(row in t for t in passages), row
    finally:
        base.close()


@pytest.fixture
def kb_dir(tmp_path) -> Path:
    """The app fixture's knowledge base: an empty folder (the upload test builds its own)."""
    return tmp_path / "empty_kb"


def test_ofd_is_an_upload_type_and_the_kb_page_takes_it(app, tmp_path, monkeypatch):
    assert "ofd" in upload_types()
    monkeypatch.setenv("YUANWEN_EMBEDDER", "fake")
    kb = tmp_path / "kb"
    at = app({"page": "kb"}, kb=kb)
    assert not at.exception
    data = _ofd([_page("关于做好防汛工作的通知", "各单位要落实防汛责任制，做好值班值守工作。")])
    at.file_uploader(key="upload_0").set_value([("防汛通知.ofd", data, "application/ofd")]).run()
    at.button(key="up_go").click().run()
    assert not at.exception
    assert any("新增 1 篇" in s.value for s in at.success), [s.value for s in at.success] + [e.value for e in at.error]
    assert (kb / "uploads" / "防汛通知.ofd").is_file()
