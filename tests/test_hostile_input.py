"""Hostile input (issue 10, "nothing lost, nothing hangs"): every reader is linear on runs of
spaces, deep nesting and many styles; DOCX XML is bounded; garbage text is refused; damaged
UTF-8 goes in with a note; and each file is parsed under a deadline and a memory limit.

Inputs are sized so that the old quadratic code takes far longer than the bound (seconds to
minutes) while the linear code takes a small fraction of it. The hostile cases run in the
bounded parse worker itself (ingest/sandbox.py): a regression fails with the worker's timeout
or memory message instead of hanging the test run.
"""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yuanwen.ingest.readers import docx as docx_reader
from yuanwen.ingest.readers import html as html_reader
from yuanwen.ingest import sandbox
from yuanwen.ingest.normalise import clean_text, decode_text, garbage_share, is_garbage
from yuanwen.ingest.pipeline import ingest
from yuanwen.ingest.readers import read_file
from yuanwen.ingest.readers.docx import read_docx_bytes
from yuanwen.ingest.readers.html import read_html_bytes
from yuanwen.ingest.sandbox import BoundedParser, parse_file
from yuanwen.config import Config
from yuanwen.errors import ReadError

HERE = "tests.test_hostile_input"
MEMORY_MB = 1536  # the worker's address-space limit for the hostile cases


# ---------------------------------------------------------------------------------------------
# Builders (used in this process and in the worker)
# ---------------------------------------------------------------------------------------------
_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_CT = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
       '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
       '<Default Extension="xml" ContentType="application/xml"/>'
       '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
       'officedocument.wordprocessingml.document.main+xml"/>{styles}</Types>')
_STYLES_CT = ('<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-'
              'officedocument.wordprocessingml.styles+xml"/>')
_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
         'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
         'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
_DOC_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
             'package/2006/relationships">{rel}</Relationships>')
_STYLES_REL = ('<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
               'relationships/styles" Target="styles.xml"/>')


def make_docx(body: str, styles: str | None = None, pad: int = 0) -> bytes:
    """A minimal DOCX (no docProps/core.xml) with ``body`` inside ``w:body``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT.format(styles=_STYLES_CT if styles else ""))
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/_rels/document.xml.rels", _DOC_RELS.format(rel=_STYLES_REL if styles else ""))
        z.writestr("word/document.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                                        f"<w:document {_W}><w:body>{body}</w:body></w:document>")
        if styles:
            z.writestr("word/styles.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                                          f"<w:styles {_W}>{styles}</w:styles>")
        if pad:  # stored, incompressible-looking bulk that keeps the compression ratio low
            z.writestr("word/media/pad.bin", os.urandom(pad), compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def _para(text: str, style: str | None = None) -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{ppr}<w:r><w:t>{text}</w:t></w:r></w:p>"


def make_pdf(n_pages: int, fanout: int = 1000) -> bytes:
    """A PDF of ``n_pages`` blank pages in a two-level page tree, written directly (fast)."""
    objs: list[bytes] = []
    n_mid = -(-n_pages // fanout)
    first_mid, first_page = 3, 3 + n_mid
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{first_mid + i} 0 R" for i in range(n_mid))
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} /MediaBox [0 0 100 100] >>".encode())
    for m in range(n_mid):
        pages = range(m * fanout, min(n_pages, (m + 1) * fanout))
        kids = " ".join(f"{first_page + p} 0 R" for p in pages)
        objs.append(f"<< /Type /Pages /Parent 2 0 R /Kids [{kids}] /Count {len(pages)} >>".encode())
    for p in range(n_pages):
        objs.append(f"<< /Type /Page /Parent {first_mid + p // fanout} 0 R >>".encode())
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def _hostile(case: str) -> tuple[str, bytes]:
    """The file name and bytes of a named hostile input."""
    if case == "nested_tables":  # finding 2: 20,000 nested tables (old: 28 s, 3 GB)
        n = 20_000
        return "t.html", ("<html><body>" + "<table><tr><td>格" * n + "</td></tr></table>" * n
                          + "</body></html>").encode()
    if case == "txt_spaces":  # finding 3: one run of 60,000 spaces (old: > 400 s)
        return "s.txt", ("标题\n正文开始" + " " * 60_000 + "结束。\n").encode()
    if case == "txt_spaces_trailing":
        return "s.txt", ("标题\n正文。" + " \t\u3000" * 20_000 + "下一段。" + "\u3000 " * 30_000).encode()
    if case == "html_nbsp":  # 20,000 &nbsp; (old: 92 s)
        return "n.html", ("<html><body><p>正文" + "&nbsp;" * 20_000 + "结束。</p><p>二" + " " * 20_000
                          + "</p></body></html>").encode()
    if case == "md_spaces":  # ATX heading and front matter with long runs of spaces
        return "m.md", ("---\ntitle: 标题" + " " * 30_000 + "x\n---\n# 标题" + " " * 30_000 + "尾\n\n正文"
                        + " " * 30_000 + "。\n").encode()
    if case == "printed_spaces":  # the 版记 printed-by line, the signature line (old: minutes)
        return "p.txt", ("关于做好工作的通知\n各单位：\n正文。\n国务院办公厅" + "\u3000" * 40_000
                         + "2018年12月27日印发\n国务院办公厅" + " " * 40_000 + "2018年\n").encode()
    if case == "segment_gaps":  # sentence breaks: runs of tabs, of ellipses
        return "g.txt", ("第一章" + "\t" * 40_000 + "正文\n" + "…" * 40_000 + "x\n" + " " * 3
                         + "\u3000" + "\t" * 40_000 + "完。\n").encode()
    if case == "short_lines":  # 1.2 M short lines rejoined into one (old: quadratic concatenation,
        # 17.7 s for 600,000, so over a minute here; now about 3 s)
        return "l.txt", ("短行\n" * 1_200_000).encode()
    if case == "docx_styles":  # finding 4: many styles, each used (old: minutes)
        n = 3_000
        styles = "".join(f'<w:style w:type="paragraph" w:styleId="S{i}"><w:name w:val="S{i}"/></w:style>'
                         for i in range(n))
        return "s.docx", make_docx("".join(_para("正文。", f"S{i}") for i in range(n)), styles)
    if case == "docx_paragraphs":  # 80,000 paragraphs in ~1 KB (old: 24 s for 40,000)
        return "p.docx", make_docx(_para("开头。") + "<w:p/>" * 80_000)
    if case == "docx_vmerge":  # 3,000 rows of one vertically merged cell (old: RecursionError)
        tc = '<w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc><w:tc><w:p><w:r><w:t>行</w:t></w:r></w:p></w:tc>'
        first = ('<w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr><w:p><w:r><w:t>合并</w:t></w:r></w:p>'
                 '</w:tc><w:tc><w:p/></w:tc>')
        rows = f"<w:tr>{first}</w:tr>" + f"<w:tr>{tc}</w:tr>" * 3_000
        return "v.docx", make_docx(_para("表格如下：") + f"<w:tbl>{rows}</w:tbl>")
    if case == "docx_gridspan":  # one cell spanning a billion grid columns
        tc = ('<w:tc><w:tcPr><w:gridSpan w:val="1000000000"/></w:tcPr><w:p><w:r><w:t>宽</w:t></w:r>'
              '</w:p></w:tc>')
        return "w.docx", make_docx(_para("表格：") + f"<w:tbl><w:tr>{tc}{tc}</w:tr></w:tbl>")
    raise KeyError(case)


def run_case(path: Path, override: dict, config: Config, name: Path | None = None) -> dict:
    """Worker target: build the named input, read + metadata + segment it, time it."""
    import tempfile

    case = override["case"]
    fname, data = _hostile(case) if case != "fuzz" else (override["name"], override["data"])
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / fname
        p.write_bytes(data)
        t0 = time.perf_counter()
        try:
            parsed = parse_file(p, {}, config)
            outcome = {"text": parsed.read.text[:200], "chars": len(parsed.read.text),
                       "passages": len(parsed.passages), "warnings": parsed.read.warnings}
        except ReadError as exc:
            outcome = {"error": exc.reason}
    outcome["seconds"] = time.perf_counter() - t0
    return outcome


def slow_parse(path: Path, override: dict, config: Config, name: Path | None = None):
    """Worker target: a parser that hangs on ``*hang*`` files, hogs memory on ``*hog*`` ones
    and dies on ``*crash*`` ones; others are parsed normally."""
    if "hang" in path.name:
        time.sleep(3600)
    if "hog" in path.name:
        hog = [bytearray(64 * 1024 * 1024) for _ in range(1024)]  # 64 GB, 64 MB at a time
        return len(hog)
    if "crash" in path.name:
        os._exit(7)
    return parse_file(path, override, config, name)


@pytest.fixture(scope="module")
def worker():
    with BoundedParser(timeout_s=60, memory_mb=MEMORY_MB, target=f"{HERE}:run_case") as bp:
        yield bp


def _run(worker: BoundedParser, case: str, **extra) -> dict:
    return worker.parse(Path(case), {"case": case, **extra}, Config(kb_dir=Path("unused")))


# ---------------------------------------------------------------------------------------------
# Finding 2: nested HTML tables
# ---------------------------------------------------------------------------------------------
def test_nested_tables_are_linear(worker):
    out = _run(worker, "nested_tables")
    assert "error" not in out, out
    assert out["seconds"] < 5, out["seconds"]  # old: 28 s and 3.15 GB (past the 1.5 GB limit)


def test_nested_tables_memory_is_linear():
    import tracemalloc

    n = 4000
    data = ("<table><tr><td>格" * n + "</td></tr></table>" * n).encode()
    tracemalloc.start()
    try:
        read_html_bytes(data, Path("t.html"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 60 * 1024 * 1024, peak / 1e6  # old: ~300 MB (tuple of the stack per event)


def test_html_event_bound(monkeypatch):
    monkeypatch.setattr(html_reader, "HTML_MAX_EVENTS", 1000)
    with pytest.raises(ReadError, match="HTML 结构过于复杂"):
        read_html_bytes(b"<p>x</p>" * 2000, Path("x.html"))


def test_info_table_nested_in_layout_table_is_still_hidden():
    page = ("<html><body><table><tr><td><table><tr><td>发文机关：</td><td>国务院</td></tr>"
            "<tr><td>成文日期：</td><td>2024年01月02日</td></tr></table></td></tr></table>"
            "<p>正文第一段。</p></body></html>").encode()
    rr = read_html_bytes(page, Path("x.html"))
    assert rr.meta["issuer"] == "国务院" and rr.meta["date"] == "2024-01-02"
    assert rr.text == "正文第一段。"


# ---------------------------------------------------------------------------------------------
# Finding 3: runs of spaces
# ---------------------------------------------------------------------------------------------
def test_clean_text_is_linear_on_60000_spaces():
    t0 = time.perf_counter()
    assert clean_text("甲" + " " * 60_000 + "乙\n" + "丙" + "\t" * 60_000) == "甲" + " " * 60_000 + "乙\n丙"
    assert time.perf_counter() - t0 < 2


SPACE_BOUNDS_S = {"short_lines": 30}
DOCX_BOUNDS_S = {"docx_paragraphs": 12}


@pytest.mark.parametrize("case", ["txt_spaces", "txt_spaces_trailing", "html_nbsp", "md_spaces",
                                  "printed_spaces", "segment_gaps", "short_lines"])
def test_space_runs_parse_fast(worker, case):
    out = _run(worker, case)
    assert "error" not in out, out
    # each bound is far below what the old quadratic code took on the same input, and far above
    # what the linear code takes on a loaded 2-core machine: a regression, not noise, fails it
    assert out["seconds"] < SPACE_BOUNDS_S.get(case, 3), (case, out["seconds"])


# ---------------------------------------------------------------------------------------------
# Finding 4: DOCX
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["docx_styles", "docx_paragraphs", "docx_vmerge", "docx_gridspan"])
def test_docx_work_is_linear(worker, case):
    out = _run(worker, case)
    assert "error" not in out, out
    assert out["seconds"] < DOCX_BOUNDS_S.get(case, 4), (case, out["seconds"])


def test_docx_vertical_merge_text():
    _, data = _hostile("docx_vmerge")
    rr = read_docx_bytes(data, Path("v.docx"))
    lines = rr.text.split("\n")
    assert lines[:3] == ["表格如下：", "合并", "合并\t行"] and len(lines) == 3002


def test_docx_xml_bounded_apart_from_the_zip_guard(monkeypatch):
    monkeypatch.setattr(docx_reader, "DOCX_MAX_DOCUMENT_XML", 1024 * 1024)
    body = _para("这是正文。" * 50) * 2000  # ~2 MB of XML, highly compressible
    data = make_docx(body, pad=len(body.encode()) // 50)  # ratio ~50: passes the zip guard
    with pytest.raises(ReadError, match=r"word/document.xml 解压后 1.5 MB，上限 1.0 MB"):
        read_docx_bytes(data, Path("big.docx"))
    monkeypatch.setattr(docx_reader, "DOCX_MAX_PART_XML", 1024)
    styles = "".join(f'<w:style w:type="paragraph" w:styleId="S{i}"><w:name w:val="S{i}"/></w:style>'
                     for i in range(100))
    with pytest.raises(ReadError, match="styles.xml"):
        read_docx_bytes(make_docx(_para("正文。"), styles), Path("s.docx"))


def test_docx_without_core_properties_has_no_made_up_title():
    rr = read_docx_bytes(make_docx(_para("通知正文。")), Path("x.docx"))
    assert "title" not in rr.meta and "author" not in rr.meta and "created" not in rr.meta


# ---------------------------------------------------------------------------------------------
# Finding 14: mojibake
# ---------------------------------------------------------------------------------------------
def _garbage(n: int, seed: int = 0) -> str:
    rnd = random.Random(seed)
    pools = [(0xE000, 0xF8FF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0xFFFD, 0xFFFD)]
    return "".join(chr(rnd.randint(*rnd.choice(pools))) for _ in range(n))


def test_garbage_share_separates_language_from_garbage():
    assert garbage_share("国务院关于印发《方案》的通知，2024年第1号。Section 3 ① ■ ★")[0] == 0
    assert garbage_share("\ufffd" * 50)[0] == 1
    assert is_garbage(_garbage(400))
    assert is_garbage("".join(chr(random.Random(1).randint(1, 30000)) for _ in range(2000)))  # chr(CID)
    assert not is_garbage("姓名：王㛃。" * 10)  # a rare character in a name is not garbage


def test_garbled_pdf_pages_are_refused_with_their_numbers(monkeypatch, tmp_path):
    from yuanwen.ingest.readers import pdf as pdf_mod

    pages = ["第一页正文，内容完整。", _garbage(300, 1), "第三页正文，内容完整。", _garbage(300, 2),
             _garbage(300, 3)]
    monkeypatch.setattr(pdf_mod, "_page_text", lambda reader, i: pages[i])
    p = tmp_path / "x.pdf"
    p.write_bytes(make_pdf(5))
    rr = read_file(p)
    assert rr.text == "第一页正文，内容完整。第三页正文，内容完整。"
    assert rr.meta["garbled_pages"] == "2,4,5"
    assert rr.warnings == ["第 2、4–5 页的文字层是乱码（字体缺少 Unicode 映射），这些页未导入"]
    pages[0] = pages[2] = _garbage(300, 4)
    with pytest.raises(ReadError, match="乱码（第 1–5 页"):
        read_file(p)


def test_garbled_text_file_is_refused(tmp_path):
    p = tmp_path / "g.txt"
    p.write_text(_garbage(2000), encoding="utf-8")
    with pytest.raises(ReadError, match="乱码"):
        read_file(p)


def test_no_real_pdf_page_is_garbage(shared_corpus):
    from pypdf import PdfReader

    from yuanwen.ingest.readers.pdf import _page_text

    pdfs = sorted(shared_corpus.rglob("*.pdf"))
    assert pdfs
    for p in pdfs:
        reader = PdfReader(str(p))
        for i in range(min(len(reader.pages), 6)):  # (the whole corpus was checked: max share 0.0)
            share, n = garbage_share(_page_text(reader, i))
            assert share < 0.05, (p.name, i + 1, share)  # refusal threshold: 0.3


# ---------------------------------------------------------------------------------------------
# Finding 16: page count, core properties (above), damaged UTF-8
# ---------------------------------------------------------------------------------------------
def test_huge_pdf_is_too_many_pages_not_damaged(tmp_path):
    p = tmp_path / "big.pdf"
    p.write_bytes(make_pdf(100_000))
    t0 = time.perf_counter()
    with pytest.raises(ReadError, match=r"页数过多（100000 页，上限 2000 页）"):
        read_file(p)
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("damage", [b"\xff", b"\x00", b"\xc3\x28\xa0\xa1"])
def test_damaged_utf8_goes_in_with_a_count(tmp_path, damage):
    good = ("第一条　为了规范管理，制定本办法。\n" * 200).encode("utf-8")
    data = good[:300] + damage + good[300:]
    text, enc, replaced = decode_text(data, Path("x.txt"))
    assert enc == "utf-8" and replaced >= 1
    p = tmp_path / "x.txt"
    p.write_bytes(data)
    rr = read_file(p)
    assert len(rr.warnings) == 1 and f"有 {replaced} 个字符无法按 UTF-8 编码识别" in rr.warnings[0]
    assert "\x00" not in rr.text and rr.text.count("第一条") == 200


def test_binary_and_gb_text_are_not_mistaken_for_damaged_utf8(tmp_path):
    with pytest.raises(ReadError, match="二进制"):
        decode_text(bytes(range(256)) * 64, Path("b.txt"))
    gb = ("abc def " * 300 + "第一条 规范管理").encode("gb18030")
    text, enc, replaced = decode_text(gb, Path("g.txt"))
    assert enc == "gb18030" and replaced == 0 and text.endswith("第一条 规范管理")


# ---------------------------------------------------------------------------------------------
# The bounded worker
# ---------------------------------------------------------------------------------------------
def test_a_hanging_file_is_cut_off_and_the_next_goes_in(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a_hang.txt").write_text("关于开展检查的通知\n各单位：\n请认真开展检查。\n", encoding="utf-8")
    (docs / "b_ok.txt").write_text("关于做好工作的通知\n各单位：\n请认真做好工作。\n", encoding="utf-8")
    cfg = Config(kb_dir=tmp_path / "kb", parse_timeout_s=2)
    t0 = time.perf_counter()
    with sandbox.bounded_parsing(cfg, target=f"{HERE}:slow_parse"):
        report = ingest([docs], cfg, embed=False, progress=False)
    assert time.perf_counter() - t0 < 30
    by_name = {Path(o.path).name: o for o in report.outcomes}
    assert by_name["a_hang.txt"].status == "failed"
    assert by_name["a_hang.txt"].reason == "解析超时（超过 2 秒），文件可能异常或过于复杂；已跳过"
    assert by_name["b_ok.txt"].status == "added"


def test_memory_limit_and_crash_are_reported_and_the_worker_restarts(tmp_path):
    ok = tmp_path / "ok.txt"
    ok.write_text("关于做好工作的通知\n请认真做好工作。\n", encoding="utf-8")
    hog, crash = tmp_path / "hog.txt", tmp_path / "crash.txt"
    hog.write_text("x", encoding="utf-8")
    crash.write_text("x", encoding="utf-8")
    cfg = Config(kb_dir=tmp_path / "kb")
    with BoundedParser(timeout_s=60, memory_mb=512, target=f"{HERE}:slow_parse") as bp:
        assert bp.parse(ok, {}, cfg).read.text.startswith("关于做好工作的通知")
        if sys.platform != "win32":
            with pytest.raises(ReadError) as exc:
                bp.parse(hog, {}, cfg)
            assert exc.value.reason == "解析所需内存超过上限（0.5 GB），文件可能异常或过于复杂；已跳过"
        with pytest.raises(ReadError, match="解析进程意外退出（退出码 7）"):
            bp.parse(crash, {}, cfg)
        assert bp.parse(ok, {}, cfg).passages
        assert bp.starts >= 2


def test_ingest_parses_in_the_bounded_worker_by_default(tmp_path, monkeypatch):
    calls = []
    real = BoundedParser.parse

    def counting(self, path, *a, **k):
        calls.append((Path(path).name, self.timeout_s, self.memory_mb))
        return real(self, path, *a, **k)

    monkeypatch.setattr(BoundedParser, "parse", counting)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("关于做好工作的通知\n请认真做好工作。\n", encoding="utf-8")
    report = ingest([docs], Config(kb_dir=tmp_path / "kb"), embed=False, progress=False)
    assert report.count("added") == 1
    assert calls == [("a.txt", 120.0, 4096)]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_worker_dies_with_its_parent(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
        from pathlib import Path
        from yuanwen.ingest.sandbox import BoundedParser
        from yuanwen.config import Config
        p = Path({str(tmp_path / "ok.txt")!r}); p.write_text("正文。", encoding="utf-8")
        bp = BoundedParser(timeout_s=60)
        bp.parse(p, {{}}, Config(kb_dir=Path({str(tmp_path / "kb")!r})))
        print(bp._proc.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        os.kill(pid, 0)  # the worker is alive
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            try:  # reap it if it became our child's zombie... it is not ours: just wait
                time.sleep(0.1)
            except KeyboardInterrupt:  # pragma: no cover
                raise
        else:
            pytest.fail(f"worker {pid} outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()


# ---------------------------------------------------------------------------------------------
# Property: random bytes, random nesting, random whitespace runs at every reader
# ---------------------------------------------------------------------------------------------
_SUFFIXES = [".txt", ".md", ".html", ".docx", ".pdf"]
_WS = [" ", "\t", "\u3000", "\xa0", "\n", "\r\n", "&nbsp;", "&emsp;", "…", "*", "#", "-", "."]
_TAGS = ["table", "tr", "td", "div", "p", "span", "ul", "li", "h1", "pre", "b", "blockquote"]


@st.composite
def hostile_files(draw):
    suffix = draw(st.sampled_from(_SUFFIXES))
    kind = draw(st.sampled_from(["bytes", "nesting", "whitespace"]))
    if kind == "bytes":
        data = draw(st.binary(min_size=1, max_size=4096))
        if suffix == ".pdf" and draw(st.booleans()):
            data = b"%PDF-1.7\n" + data
        if suffix == ".docx" and draw(st.booleans()):
            data = make_docx(data.decode("latin-1").replace("<", "").replace("&", ""))
        return suffix, data
    if kind == "nesting":
        depth = draw(st.one_of(st.integers(1, 100), st.sampled_from([2_000, 8_000])))
        tags = draw(st.lists(st.sampled_from(_TAGS), min_size=1, max_size=4))
        opening = "".join(f"<{t}>" for t in tags)
        closing = "".join(f"</{t}>" for t in reversed(tags))
        text = draw(st.sampled_from(["正文。", "", "第一条", "&nbsp;"]))
        if suffix == ".md":
            return suffix, (">" * min(depth, 2000) + " 正文。\n" + "  " * depth + "- 项\n").encode()
        if suffix == ".docx":
            inner = "<w:tbl><w:tr><w:tc>" * min(depth, 500) + _para("正文。") + "</w:tc></w:tr></w:tbl>" * min(depth, 500)
            return suffix, make_docx(_para("开头。") + inner)
        return ".html", (opening * depth + text + closing * draw(st.integers(0, depth))).encode()
    lengths = st.one_of(st.integers(1, 300), st.sampled_from([5_000, 20_000, 60_000]))
    runs = draw(st.lists(st.tuples(st.sampled_from(_WS), lengths), min_size=1, max_size=6))
    words = ["国务院办公厅", "2018年12月27日印发", "第一章", "一、", "（一）", "1.", "。", "x", "# 标题",
             "---", "title: 标题", "<p>", "签发人：", "抄送：", "第 1 页", "来源：新华社", "国办发〔2024〕1号",
             "\n关于印发方案的通知", "\n", ""]
    body = "".join(draw(st.sampled_from(words)) + ch * n for ch, n in runs) + "正文结束。"
    if suffix == ".docx":
        return suffix, make_docx(_para(body.replace("&", "").replace("<", "")))
    if suffix == ".pdf":
        return ".txt", body.encode()
    return suffix, body.encode()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(item=hostile_files())
def test_every_reader_is_bounded_on_hostile_input(worker, item):
    suffix, data = item
    out = _run(worker, "fuzz", name=f"f{suffix}", data=data)  # ReadError here: timeout / memory
    assert out["seconds"] < 5, (suffix, len(data), out)


def test_shared_corpus_files_parse_the_same_in_the_worker(shared_corpus, worker):
    files = [p for p in sorted(shared_corpus.rglob("*")) if p.suffix in (".txt", ".md", ".html", ".pdf")]
    cfg = Config(kb_dir=Path("unused"))
    with BoundedParser(timeout_s=120) as bp:
        for p in files[::25]:
            here, there = parse_file(p, {}, cfg), bp.parse(p, {}, cfg)
            assert there.read == here.read and there.passages == here.passages
            assert there.meta == here.meta and there.sentences == here.sentences
