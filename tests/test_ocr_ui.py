"""Text recognised by OCR, as users see it: the reader's notice and its 「显示原件页面」 view, the
confidence beside citations on the search and quote pages, and the CLI (``yuanwen page``, the
recognised-text lines of show, search and quote).

No OCR model is needed: the knowledge base is built from ordinary files (a two-page PDF with a
text layer among them) and that PDF is then marked as recognised, as the pipeline marks a scan
(``extra["ocr"]``); its pages render as any PDF's do.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from tests import pdfmake
from tests.pdfmake import lines_page
from yuanwen.cli import cli
from yuanwen.ingest.pipeline import ingest

from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase

from .conftest import ROOT, FakeEmbedder  # noqa: F401  (registers the "fake" embedder)

MINI = ROOT / "tests" / "fixtures" / "mini"
TITLE = "关于做好冬季消防安全工作的通知"
PAGES = [
    [TITLE, "各单位：", "一、全面排查火灾隐患。各单位要每周检查一次消防通道",
     "和安全出口，发现问题立即整改，不留死角。"],
    ["二、加强消防演练。各单位要在春节前组织一次全员消防演练，",
     "确保人人会用灭火器、人人会逃生。", "市消防安全委员会", "2024年1月5日"],
]
CONFIDENCE = {"1": 0.9734, "2": 0.9912}


def cjk_pdf(pages: list[list[str]]) -> bytes:
    """A PDF whose pages hold these Chinese lines as a text layer."""
    return pdfmake.cjk_pdf([lines_page(lines) for lines in pages])


def build_kb(base: Path) -> tuple[Path, int, Path]:
    """The mini corpus and a two-page PDF, ingested with the fake embedder; the PDF is then
    marked as recognised by OCR. Returns (knowledge base, the PDF's document id, the PDF)."""
    scans = base / "scans"
    scans.mkdir(parents=True)
    pdf = scans / "notice.pdf"
    pdf.write_bytes(cjk_pdf(PAGES))
    kb_dir = base / "kb"
    report = ingest([MINI, scans], Config(kb_dir=kb_dir), embedder="fake", progress=False)
    assert not report.failed, report.failed
    kb = KnowledgeBase(Config(kb_dir=kb_dir))
    try:
        doc = next(d for d in kb.store.documents() if d.title == TITLE)
        kb.store.update_document_extra(doc.id, {**doc.extra, "ocr": {
            "pages": [1, 2], "confidence": CONFIDENCE, "engine": "rapidocr (test)"}})
    finally:
        kb.close()
    return kb_dir, doc.id, pdf


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[Path, int, Path]:
    return build_kb(tmp_path_factory.mktemp("ocrui"))


@pytest.fixture
def kb_dir(scanned) -> Path:
    return scanned[0]


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def plain(text: str) -> str:
    """Text as shown: Markdown escapes removed."""
    return text.replace("\\", "")


def html_values(at: AppTest) -> list[str]:
    return [e.value for e in at.get("html")]


def pngs(media: dict) -> list[bytes]:
    return [data for data, _ in media.values() if isinstance(data, bytes) and data[:8] == b"\x89PNG\r\n\x1a\n"]


# -- the reader --------------------------------------------------------------------------------
def test_reader_says_which_pages_are_recognised(app, scanned):
    at = ok(app({"page": "docs", "doc": str(scanned[1])}))
    notice = plain(" ".join(i.value for i in at.info))
    assert "全文 2 页为识别文本" in notice and "97.3%–99.1%" in notice
    assert "识别文本，引用前请核对原件" in notice
    assert any("rapidocr (test)" in plain(c.value) for c in at.caption)
    # the passages on a recognised page are marked where the page starts, with its confidence
    tags = [v for v in html_values(at) if "yw-ocr-tag" in v]
    assert tags and "第 1 页　识别文本　识别置信度 97.3%" in tags[0]
    assert all("yw-ocr" in v for v in html_values(at) if "data-pid=" in v)
    # the original page is not shown until asked for
    assert at.toggle(key="d_scan_show").value is False and not at.get("image")


def test_reader_shows_the_original_page_beside_its_text(app, scanned, media):
    at = ok(app({"page": "docs", "doc": str(scanned[1])}))
    ok(at.toggle(key="d_scan_show").set_value(True).run())
    pages = at.selectbox(key="d_scan_page")
    assert pages.value == 1 and len(pages.options) == 2  # the document's pages, no more
    assert pages.options[1] == "第 2 页（识别文本，识别置信度 99.1%）"
    assert len(at.get("image")) == 1 and pngs(media)
    text = next(v for v in html_values(at) if "yw-scan-text" in v)
    assert "全面排查火灾隐患" in text and "加强消防演练" not in text
    assert at.query_params["scan"] == "1"  # a link to this view
    ok(at.selectbox(key="d_scan_page").set_value(2).run())
    text = next(v for v in html_values(at) if "yw-scan-text" in v)
    assert "加强消防演练" in text and "全面排查火灾隐患" not in text
    assert len(at.get("image")) == 1 and at.query_params["scan"] == "2"
    assert len(set(pngs(media))) == 2  # page 2 is another image


def test_selecting_a_passage_shows_its_page_and_says_it_is_recognised(app, scanned):
    at = ok(app({"page": "docs", "doc": str(scanned[1])}))
    ok(at.toggle(key="d_scan_show").set_value(True).run())
    ok(at.selectbox(key="d_scan_page").set_value(2).run())
    pid = next(int(v.split('data-pid="')[1].split('"')[0]) for v in html_values(at)
               if "data-pid=" in v and "加强消防演练" in v)
    ok(at.text_input(key="doc_sel").input(str(pid)).run())
    # the page of the passage the reader selected is the one shown, with the passage marked
    assert at.selectbox(key="d_scan_page").value == 2
    assert "<mark>" in next(v for v in html_values(at) if "yw-scan-text" in v)
    assert any("识别文本（原件第 2 页，识别置信度 99.1%）" in c.value for c in at.caption)


def test_a_link_opens_the_original_page(app, scanned):
    at = ok(app({"page": "docs", "doc": str(scanned[1]), "scan": "2"}))
    assert at.toggle(key="d_scan_show").value is True
    assert at.selectbox(key="d_scan_page").value == 2 and at.get("image")


def test_a_document_read_from_its_text_has_no_notice(app, kb_dir):
    at = ok(app({"page": "docs", "doc": "1", "scan": "1"}))
    assert not at.info and not [t for t in at.toggle if t.key == "d_scan_show"]
    passages = [v for v in html_values(at) if "data-pid=" in v]
    assert passages and not any("yw-ocr" in v for v in passages) and "scan" not in at.query_params


def test_original_file_gone_is_a_warning_not_a_traceback(tmp_path, monkeypatch):
    kb_dir, doc_id, pdf = build_kb(tmp_path)
    pdf.unlink()
    monkeypatch.setenv("YUANWEN_KB", str(kb_dir))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update({"page": "docs", "doc": str(doc_id), "scan": "1"})
    at = ok(at.run())
    warning = plain(" ".join(w.value for w in at.warning))
    assert "无法显示原件第 1 页" in warning and "原件已不在入库时的位置" in warning
    assert not at.get("image") and not at.error
    assert any("全面排查火灾隐患" in v for v in html_values(at))  # the text is still there


# -- search and quote ----------------------------------------------------------------------------
def test_search_hit_on_recognised_text_gives_the_confidence(app, scanned):
    at = ok(app({"q": "消防演练", "mode": "keyword"}))
    hits = at.session_state["search_res"].hits
    hit = next(h for h in hits if h.document.id == scanned[1])
    assert hit.citation.recognised
    assert any("识别置信度 99.1%" in c.value and "引用前请核对原件" in c.value for c in at.caption)
    others = [h for h in hits if h.document.id != scanned[1]]
    assert all(not [b for b in at.button if b.key == f"hit_scan_{h.passage.id}"] for h in others)
    ok(at.button(key=f"hit_scan_{hit.passage.id}").click().run())  # 对照原件
    assert at.header[0].value == "文档" and at.query_params["doc"] == str(scanned[1])
    assert at.toggle(key="d_scan_show").value is True and at.selectbox(key="d_scan_page").value == 2


def test_quote_on_recognised_text_says_differences_may_be_recognition_errors(app, scanned):
    at = ok(app({"page": "quote"}))
    at.text_area(key="q_text").input("各单位要在春节前组织一次全员消防演习，确保人人会用灭火器")
    ok(at.button(key="q_go").click().run())
    assert any("有出入" in m.value for m in at.markdown)
    captions = [c.value for c in at.caption]
    assert any("识别置信度 99.1%" in c for c in captions)
    assert any("差异可能来自识别错误" in c and "第 2 页" in c for c in captions)
    ok(at.button(key="quote_scan_0").click().run())
    assert at.selectbox(key="d_scan_page").value == 2 and at.get("image")


def test_exact_quote_on_recognised_text_has_no_recognition_warning(app):
    at = ok(app({"page": "quote"}))
    at.text_area(key="q_text").input("各单位要在春节前组织一次全员消防演练")
    ok(at.button(key="q_go").click().run())
    assert any("原文一致" in m.value for m in at.markdown)
    captions = [c.value for c in at.caption]
    assert any("识别置信度 99.1%" in c for c in captions)
    assert not any("识别错误" in c for c in captions)


def test_excerpts_give_the_confidence_under_the_source(app):
    at = ok(app({"page": "excerpts"}))
    at.text_input(key="ex_q").input("消防演练")
    ok(at.button(key="ex_go").click().run())
    assert any(t.value.startswith("出处：") and "识别文本" in t.value for t in at.text)
    assert any("识别文本（原件第 2 页，识别置信度 99.1%）" in c.value for c in at.caption)


# -- the CLI -------------------------------------------------------------------------------------
def test_cli_page_writes_the_page_image(scanned, tmp_path):
    kb_dir, doc_id, _ = scanned
    out = tmp_path / "p2.png"
    r = CliRunner().invoke(cli, ["page", str(doc_id), "2", "-o", str(out), "--kb", str(kb_dir)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "已保存原件第 2 页" in r.output and "识别置信度 99.1%" in r.output
    from PIL import Image

    assert max(Image.open(out).size) <= 1400
    r = CliRunner().invoke(cli, ["page", str(doc_id), "3", "-o", str(out), "--kb", str(kb_dir)])
    assert r.exit_code == 1 and "没有第 3 页" in r.output and "Traceback" not in r.output


def test_cli_page_when_the_file_is_gone(tmp_path):
    kb_dir, doc_id, pdf = build_kb(tmp_path)
    pdf.unlink()
    out = tmp_path / "p1.png"
    r = CliRunner().invoke(cli, ["page", str(doc_id), "1", "-o", str(out), "--kb", str(kb_dir)])
    assert r.exit_code == 1 and "原件已不在入库时的位置" in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_cli_show_search_and_quote_say_recognised_text(scanned):
    kb_dir, doc_id, _ = scanned
    runner = CliRunner()
    r = runner.invoke(cli, ["show", str(doc_id), "--kb", str(kb_dir)])
    assert r.exit_code == 0, r.output
    assert "识别文本：第 1–2 页（共 2 页），识别置信度 97.3%–99.1%" in r.output
    assert "识别文本（识别置信度 97.3%）" in r.output
    r = runner.invoke(cli, ["show", str(doc_id), "--json", "--kb", str(kb_dir)])
    assert '"recognised_pages": {"1": 0.9734, "2": 0.9912}' in r.output
    r = runner.invoke(cli, ["search", "消防演练", "--mode", "keyword", "-k", "1", "--kb", str(kb_dir)])
    lines = r.output.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith("出处："))
    assert "识别文本" in lines[at]
    assert lines[at + 1].strip() == "识别置信度：99.1%（原件第 2 页，识别文本，请核对原件）"
    # hits of documents read from their text have no such line
    r = runner.invoke(cli, ["search", "安全", "--mode", "keyword", "-k", "20", "--kb", str(kb_dir)])
    lines = r.output.splitlines()
    sources = [i for i, ln in enumerate(lines) if ln.strip().startswith("出处：")]
    assert any("识别文本" not in lines[i] for i in sources) and any("识别文本" in lines[i] for i in sources)
    for i in sources:
        assert ("识别文本" in lines[i]) == lines[i + 1].strip().startswith("识别置信度："), lines[i:i + 2]
    r = runner.invoke(cli, ["quote", "各单位要在春节前组织一次全员消防演习，确保人人会用灭火器",
                            "--kb", str(kb_dir)])
    assert "识别置信度：99.1%" in r.output
    assert f"差异可能来自识别错误，请核对原件第 2 页（yuanwen page {doc_id} 2 -o 页面.png）" in r.output
