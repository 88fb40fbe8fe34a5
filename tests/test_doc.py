"""Legacy Word (.doc) and Kingsoft WPS (.wps): the real samples against their source texts,
content sniffing (a DOCX or HTML named .doc), tables, damaged and random files, the path
without LibreOffice, and the app's upload."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from yuanwen.ingest.readers import doc as doc_reader
from yuanwen.ingest.readers import read_file

from yuanwen.errors import ReadError

from .conftest import SHARED

SAMPLES = SHARED.parent / "samples" / "doc"
SOURCES = {
    "000_dc0b083f46e91fc1.doc": SHARED.parent / "seeds" / "000_dc0b083f46e91fc1.txt",
    "2020-07-21-在企业家座谈会上的讲话.doc": SHARED / "speeches" / "2020-07-21-在企业家座谈会上的讲话.txt",
}
IN_CI = bool(os.environ.get("CI"))

needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"samples not found at {SAMPLES}")
# In CI a missing LibreOffice is a failure (the tests run and say so), elsewhere a skip.
needs_soffice = pytest.mark.skipif(doc_reader.find_soffice() is None and not IN_CI,
                                   reason="LibreOffice (soffice) is not installed")


def _fold(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _match_share(a: str, b: str) -> float:
    a, b = _fold(a), _fold(b)
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return sum(m.size for m in sm.get_matching_blocks()) / max(len(a), len(b), 1)


def _to_doc(src: Path, out_dir: Path) -> Path:
    """``src`` saved as Word 97-2003 by LibreOffice (for tests that need a .doc of known content)."""
    soffice = doc_reader.find_soffice()
    assert soffice, "LibreOffice (soffice) is needed"
    subprocess.run([soffice, f"-env:UserInstallation={(out_dir / 'profile').as_uri()}", "--headless",
                    "--norestore", "--convert-to", "doc:MS Word 97", "--outdir", str(out_dir), str(src)],
                   check=True, capture_output=True, timeout=120)
    return out_dir / (src.stem + ".doc")


def _ingest(paths: list[Path], kb: Path):
    from yuanwen.library import open_kb

    with open_kb(kb, embedder="fake", readonly=False) as lib:
        report = lib.ingest(paths)
        docs = {Path(d.path).name: (d, lib.document_passages(d.id)) for d in lib.documents()}
    return report, docs


# -- the real samples -----------------------------------------------------------------------
@needs_samples
@needs_soffice
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_sample_text_matches_its_source(name):
    t0 = time.perf_counter()
    rr = read_file(SAMPLES / name)
    took = time.perf_counter() - t0
    assert rr.format == "doc"
    assert _match_share(rr.text, SOURCES[name].read_text(encoding="utf-8")) >= 0.99
    assert took < doc_reader.CONVERT_TIMEOUT_S


@needs_samples
@needs_soffice
def test_samples_ingest_with_the_headings_and_metadata_of_the_text_version(tmp_path):
    docs_dir, txt_dir = tmp_path / "doc", tmp_path / "txt"
    docs_dir.mkdir()
    txt_dir.mkdir()
    for name, source in SOURCES.items():
        shutil.copy(SAMPLES / name, docs_dir / name)
        shutil.copy(source, txt_dir / (Path(name).stem + ".txt"))
    report, from_doc = _ingest([docs_dir], tmp_path / "kb_doc")
    assert not report.failed, [(o.path, o.reason) for o in report.failed]
    _, from_txt = _ingest([txt_dir], tmp_path / "kb_txt")
    assert len(from_doc) == 2
    for name, (d, passages) in from_doc.items():
        t, t_passages = from_txt[Path(name).stem + ".txt"]
        assert (d.title, d.issuer, d.date, d.doc_number) == (t.title, t.issuer, t.date, t.doc_number)
        paths = [p.heading_path for p in passages]
        assert paths == [p.heading_path for p in t_passages]
    d, passages = from_doc["000_dc0b083f46e91fc1.doc"]
    assert d.title == "市应急管理局党委2022年履行全面从严治党主体责任情况报告"
    assert any(p.heading_path and p.heading_path[0].startswith("一、着力提高政治站位") for p in passages)


# -- content, not name ----------------------------------------------------------------------
def test_a_docx_named_doc_is_read_as_docx(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("关于做好防汛工作的通知", level=1)
    d.add_paragraph("请各单位做好防汛准备，落实值班制度。")
    f = tmp_path / "通知.doc"
    d.save(str(f))
    rr = read_file(f)
    assert rr.format == "docx"
    assert "落实值班制度" in rr.text and [h.text for h in rr.headings] == ["关于做好防汛工作的通知"]


def test_an_html_page_named_doc_is_read_as_html(tmp_path):
    f = tmp_path / "网页.doc"
    f.write_text('<html xmlns:w="urn:schemas-microsoft-com:office:word"><body><h1>工作要点</h1>'
                 "<p>一是加强组织领导。二是压实工作责任。</p></body></html>", encoding="utf-8")
    rr = read_file(f)
    assert rr.format == "html" and "压实工作责任" in rr.text


@needs_soffice
def test_an_rtf_named_doc_goes_through_libreoffice(tmp_path):
    f = tmp_path / "r.doc"
    f.write_bytes(rb"{\rtf1\ansi\ansicpg936{\fonttbl{\f0 SimSun;}}\f0 \u20851?\u20110?\u36890?\u30693?\par}")
    rr = read_file(f)
    assert rr.format == "rtf" and rr.text.strip() == "关于通知"


@needs_soffice
def test_tables_in_a_doc_are_kept_row_by_row_and_wps_is_read(tmp_path):
    import docx

    d = docx.Document()
    d.add_heading("任务分工", level=1)
    d.add_paragraph("各项任务分工如下：")
    rows = [("序号", "任务", "责任单位"), ("1", "完善应急预案", "市应急局"), ("2", "开展隐患排查", "各区政府")]
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            table.cell(r, c).text = cell
    d.add_paragraph("请认真落实。")
    src = tmp_path / "fengong.docx"
    d.save(str(src))
    binary = _to_doc(src, tmp_path)
    assert binary.read_bytes().startswith(doc_reader.OLE_MAGIC)
    rr = read_file(binary)
    lines = rr.text.split("\n")
    assert [ln for ln in lines if "\t" in ln] == ["\t".join(r) for r in rows]
    assert lines.index("各项任务分工如下：") < lines.index("序号\t任务\t责任单位") < lines.index("请认真落实。")
    assert [h.text for h in rr.headings] == ["任务分工"]
    # Kingsoft WPS writes the Word binary format into its .wps files
    wps = tmp_path / "fengong.wps"
    shutil.copy(binary, wps)
    rr = read_file(wps)
    assert rr.format == "wps" and "1\t完善应急预案\t市应急局" in rr.text


# -- damaged, random, no converter, too slow ------------------------------------------------
def _broken_ole(sample: bytes) -> bytes:
    """The OLE2 magic and header, its sector allocation table pointing nowhere."""
    return sample[:0x4C] + b"\xfe\xff\xff\x7f" * 109 + sample[0x200:]


@needs_samples
@needs_soffice
def test_broken_and_random_files_are_refused_by_name_and_the_rest_goes_in(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    sample = (SAMPLES / "2020-07-21-在企业家座谈会上的讲话.doc").read_bytes()
    (folder / "good.doc").write_bytes(sample)
    (folder / "broken.doc").write_bytes(_broken_ole(sample))
    (folder / "truncated.doc").write_bytes(sample[:2048])
    (folder / "random.doc").write_bytes(os.urandom(20_000))
    report, docs = _ingest([folder], tmp_path / "kb")
    assert set(docs) == {"good.doc"}
    reasons = {Path(o.path).name: o.reason for o in report.failed}
    assert set(reasons) == {"broken.doc", "truncated.doc", "random.doc"}
    assert "结构已损坏" in reasons["broken.doc"] and "结构已损坏" in reasons["truncated.doc"]
    assert "不是有效的 Word 文件" in reasons["random.doc"]


def test_a_broken_ole_file_is_refused_with_its_name(tmp_path):
    header = doc_reader.OLE_MAGIC + bytes(0x200 - 8)
    f = tmp_path / "坏文件.doc"
    f.write_bytes(header + os.urandom(4096))
    with pytest.raises(ReadError, match="坏文件.doc.*结构已损坏"):
        read_file(f)


@needs_samples
def test_without_libreoffice_the_message_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(doc_reader, "find_soffice", lambda: None)
    f = tmp_path / "讲话.doc"
    shutil.copy(SAMPLES / "2020-07-21-在企业家座谈会上的讲话.doc", f)
    with pytest.raises(ReadError, match="讲话.doc.*需要 LibreOffice.*请安装 LibreOffice"):
        read_file(f)
    # the parse worker is another process: the same through the environment and a real ingest
    monkeypatch.setenv("YUANWEN_SOFFICE", str(tmp_path / "no-such-soffice"))
    report, docs = _ingest([f], tmp_path / "kb")
    assert not docs and "请安装 LibreOffice" in report.failed[0].reason


@needs_samples
@needs_soffice
def test_a_conversion_past_its_time_is_stopped(tmp_path):
    data = (SAMPLES / "000_dc0b083f46e91fc1.doc").read_bytes()
    t0 = time.perf_counter()
    with pytest.raises(ReadError, match="转换超时"):
        doc_reader.convert_to_docx(data, ".doc", tmp_path / "x.doc", timeout_s=0.05)
    assert time.perf_counter() - t0 < 15


# -- the app ---------------------------------------------------------------------------------
@pytest.fixture
def kb_dir(tmp_path):
    return tmp_path / "unused_kb"


@needs_samples
@needs_soffice
def test_the_kb_page_accepts_doc_and_wps_uploads(app, tmp_path, monkeypatch):
    from pages_app import kb_page

    assert {"doc", "wps"} <= set(kb_page.UPLOAD_TYPES)
    monkeypatch.setenv("YUANWEN_EMBEDDER", "fake")
    kb = tmp_path / "kb"
    at = app({"page": "kb"}, kb=kb)
    assert not at.exception
    data = (SAMPLES / "2020-07-21-在企业家座谈会上的讲话.doc").read_bytes()
    at.file_uploader(key="upload_0").set_value([
        ("讲话.doc", data, "application/msword"), ("坏.wps", os.urandom(5000), "application/octet-stream"),
    ]).run()
    at.button(key="up_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("新增 1 篇" in s.value and "失败 1 篇" in s.value for s in at.success)
    assert any(r"坏\.wps" in e.value and "不是有效的 WPS 文件" in e.value for e in at.error)  # Markdown-escaped


def test_sniff():
    assert doc_reader.sniff(doc_reader.OLE_MAGIC + b"x") == "ole"
    assert doc_reader.sniff(b"PK\x03\x04rest") == "docx"
    assert doc_reader.sniff(b"\xef\xbb\xbf{\\rtf1\\ansi") == "rtf"
    assert doc_reader.sniff(b"MIME-Version: 1.0\r\nContent-Type: multipart/related") == "mht"
    assert doc_reader.sniff(b"<!DOCTYPE html><html><body>x") == "html"
    assert doc_reader.sniff(b"\x00\x01\x02 not a document") == "unknown"
