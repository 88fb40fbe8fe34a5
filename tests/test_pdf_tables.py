"""Ruled tables in text-layer PDFs: one line per row, cells tab-separated, in order, wrapped
cell text joined, the text around the table intact; rows split by a page break put together;
pages without a table read exactly as before; a passage never splits a row (PDF, HTML, DOCX).

The PDFs are made here: by hand (a content stream in pypdf, the non-embedded Adobe-GB1 font
``STSong-Light`` that every reader maps through its built-in CMap), and, where LibreOffice is
installed, from a Word table and from a real gov.cn HTML table of the shared corpus."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.pdfmake import cjk_pdf, text_op
from yuanwen.ingest.readers import doc as doc_reader
from yuanwen.ingest.readers import pdf as pdf_reader
from yuanwen.ingest.readers import read_file
from yuanwen.ingest.segment import segment

from .conftest import SHARED

IN_CI = bool(os.environ.get("CI"))
needs_soffice = pytest.mark.skipif(doc_reader.find_soffice() is None and not IN_CI,
                                   reason="LibreOffice (soffice) is not installed")
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared corpus not found at {SHARED}")

BEFORE = "各单位：现将重点任务分工印发给你们，请结合实际认真抓好落实。"
AFTER = "请认真贯彻执行。"
HEADER = ["序号", "任务", "牵头单位", "完成时限"]
ROWS = [
    ["1", ["健全安全生产责任体系，压实", "企业主体责任和部门监管责任"], "市应急管理局", "6月底前"],
    ["2", "开展重大事故隐患专项排查", ["市住房城乡", "建设局"], "年底前"],
    ["3", ["加强应急救援队伍建设，完善", "应急预案体系"], "市消防救援支队", ["2024年12", "月底前"]],
]
EXPECTED_ROWS = [
    "序号\t任务\t牵头单位\t完成时限",
    "1\t健全安全生产责任体系，压实企业主体责任和部门监管责任\t市应急管理局\t6月底前",
    "2\t开展重大事故隐患专项排查\t市住房城乡建设局\t年底前",
    "3\t加强应急救援队伍建设，完善应急预案体系\t市消防救援支队\t2024年12月底前",
]
COLS = [72, 112, 312, 422, 522]


# -- PDFs by hand ---------------------------------------------------------------------------
def _pdf(path: Path, pages: list[list[str]]) -> Path:
    """A PDF of A4 pages, each drawn by the content-stream operators given."""
    path.write_bytes(cjk_pdf(pages))
    return path


def _text(x: float, y: float, s: str, size: int = 12) -> str:
    return text_op(x, y, s, size)


def _table(top: float, rows: list[list], boxes: bool = False) -> tuple[list[str], float]:
    """Operators drawing ``rows`` as a ruled table from ``top`` down (stroked lines, or thin
    filled boxes as Word draws borders), and the y of its bottom rule."""
    ops: list[str] = []
    ys = [top]
    for row in rows:
        lines = max(len(c) if isinstance(c, list) else 1 for c in row)
        ys.append(ys[-1] - 6 - 15 * lines)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            for k, ln in enumerate(cell if isinstance(cell, list) else [cell]):
                if ln:
                    ops.append(_text(COLS[c] + 3, ys[r] - 14 - 15 * k, ln))
    for y in ys:
        ops.append(f"{COLS[0]} {y - 0.25} {COLS[-1] - COLS[0]} 0.5 re f" if boxes
                   else f"0.5 w {COLS[0]} {y} m {COLS[-1]} {y} l S")
    for x in COLS:
        ops.append(f"{x - 0.25} {ys[-1]} 0.5 {ys[0] - ys[-1]} re f" if boxes
                   else f"0.5 w {x} {ys[0]} m {x} {ys[-1]} l S")
    return ops, ys[-1]


def _table_page(boxes: bool = False) -> list[str]:
    ops = [_text(72, 760, "关于印发任务分工的通知"), _text(72, 730, BEFORE)]
    table, bottom = _table(700, [HEADER, *ROWS], boxes)
    return ops + table + [_text(72, bottom - 30, AFTER)]


def _rows(text: str) -> list[str]:
    return [ln for ln in text.split("\n") if "\t" in ln]


# -- hand-made PDFs -------------------------------------------------------------------------
@pytest.mark.parametrize("boxes", [False, True], ids=["stroked-rules", "filled-boxes"])
def test_ruled_table_rows_tab_separated_in_order(tmp_path, monkeypatch, boxes):
    path = _pdf(tmp_path / "t.pdf", [_table_page(boxes)])
    rr = read_file(path)
    assert rr.text.split("\n") == ["关于印发任务分工的通知", BEFORE, *EXPECTED_ROWS, AFTER]
    assert rr.text[rr.pages[0]:].startswith("关于")
    # without the table check (the reader before): the cells run into each other
    monkeypatch.setattr(pdf_reader, "_table_page_text", lambda reader, index: None)
    assert "1\t" not in read_file(path).text


def test_table_on_a_rotated_page(tmp_path):
    """A landscape page stored upright with ``/Rotate 90``: rows read as the page is shown."""
    from pypdf import PdfReader, PdfWriter

    ops = ["q 0 1 -1 0 595 0 cm", _text(72, 500, "关于印发任务分工的通知"), _text(72, 470, BEFORE)]
    table, bottom = _table(440, [HEADER, *ROWS])
    upright = _pdf(tmp_path / "upright.pdf", [[*ops, *table, _text(72, bottom - 30, AFTER), "Q"]])
    w = PdfWriter()
    for page in PdfReader(upright).pages:
        w.add_page(page.rotate(90))
    w.write(tmp_path / "rotated.pdf")
    assert read_file(tmp_path / "rotated.pdf").text.split("\n") == [
        "关于印发任务分工的通知", BEFORE, *EXPECTED_ROWS, AFTER]


def test_row_split_by_a_page_break_is_joined(tmp_path):
    first, _ = _table(700, [HEADER, ["1", "健全安全生产责任体系，压实", "市应急管理局", "6月"]])
    second, end = _table(780, [["", "企业主体责任", "", "底前"], ["2", "开展隐患排查", "市住房城乡建设局", "年底前"]])
    pages = [[_text(72, 760, BEFORE), *first, _text(290, 40, "— 1 —")],
             [*second, _text(72, end - 30, AFTER), _text(290, 40, "— 2 —")]]
    rr = read_file(_pdf(tmp_path / "split.pdf", pages))
    assert rr.text.split("\n") == [
        BEFORE, HEADER[0] + "\t" + "\t".join(HEADER[1:]),
        "1\t健全安全生产责任体系，压实企业主体责任\t市应急管理局\t6月底前",
        "2\t开展隐患排查\t市住房城乡建设局\t年底前", AFTER,
    ]
    assert rr.text[rr.pages[1]:].startswith("2\t开展隐患排查")  # page 2 starts after the joined row


def test_page_without_a_ruled_table_reads_as_before(tmp_path, monkeypatch):
    """A 版头 rule, a framed note (one box as wide as the text) and a two-column line are no
    table: the text is pypdf's, exactly as without the table check."""
    ops = [_text(200, 780, "某某市人民政府文件"), "1 0 0 RG 2 w 72 760 m 522 760 l S",
           _text(72, 730, "各区人民政府：现将有关事项通知如下。"),
           "0.5 w 70 700 m 524 700 l S 70 660 m 524 660 l S 70 700 m 70 660 l S 524 700 m 524 660 l S",
           _text(75, 685, "附注：本通知自印发之日起施行，请各单位认真贯彻执行。"),
           _text(72, 620, "抄送：市委办公室"), _text(400, 620, "2024年1月2日印发")]
    path = _pdf(tmp_path / "plain.pdf", [ops])
    with_check = read_file(path).text
    monkeypatch.setattr(pdf_reader, "_table_page_text", lambda reader, index: None)
    assert read_file(path).text == with_check
    assert "\t" not in with_check


def test_hostile_page_of_many_rules_is_bounded(tmp_path):
    """60,000 short rules: the rule budget stops the look, the page reads in time."""
    import time

    grid = " ".join(f"{72 + (i % 300) * 1.5} {100 + (i // 300) * 3} m {72 + (i % 300) * 1.5} {110 + (i // 300) * 3} l"
                    for i in range(60_000))
    ops = [_text(72, 760, BEFORE), "0.2 w " + grid + " S"]
    path = _pdf(tmp_path / "rules.pdf", [ops])
    t0 = time.monotonic()
    rr = read_file(path)
    assert time.monotonic() - t0 < 20
    assert rr.text.startswith(BEFORE)


@needs_shared
def test_shared_corpus_pdfs_read_as_before(monkeypatch):
    """The corpus's red-header PDFs hold no ruled table: not one character changes."""
    pdfs = sorted((SHARED / "policy").glob("*.pdf"))
    pdfs = [p for p in pdfs if p.stat().st_size < 1_000_000][:3]  # not the 224-page one (slow)
    assert pdfs
    now = [read_file(p) for p in pdfs]
    monkeypatch.setattr(pdf_reader, "_table_page_text", lambda reader, index: None)
    for p, rr in zip(pdfs, now):
        before = read_file(p)
        assert (rr.text, rr.pages) == (before.text, before.pages), p.name


# -- LibreOffice: a Word table, a real gov.cn table ------------------------------------------
def _fengong_docx(path: Path, n: int) -> Path:
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt

    d = Document()
    st = d.styles["Normal"]
    st.font.name = "SimSun"
    st.font.size = Pt(14)
    st.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")
    d.add_paragraph("关于印发重点任务分工方案的通知")
    d.add_paragraph(BEFORE)
    t = d.add_table(rows=1, cols=4)
    t.style = "Table Grid"
    for c, h in zip(t.rows[0].cells, HEADER):
        c.text = h
    for i in range(1, n + 1):
        cells = t.add_row().cells
        cells[0].text = str(i)
        cells[1].text = f"健全安全生产责任体系，压实企业主体责任和部门监管责任，建立健全全员安全生产责任制（第{i}项）"
        cells[2].text = "市应急管理局、市住房城乡建设局"
        cells[3].text = f"2024年{i % 12 + 1}月底前"
    d.add_paragraph(AFTER)
    d.save(path)
    return path


@pytest.fixture(scope="module")
def office_pdfs(tmp_path_factory):
    """Word tables (6 rows; 60 rows over several pages) and the shared corpus's 1996 gov.cn
    enrolment table (HTML), printed to PDF by LibreOffice."""
    soffice = doc_reader.find_soffice()
    assert soffice, "LibreOffice (soffice) is needed"
    out = tmp_path_factory.mktemp("office")
    srcs = [_fengong_docx(out / "short.docx", 6), _fengong_docx(out / "long.docx", 60)]
    html = SHARED / "policy" / "1996-07-17-国务院办公厅转发国家教委关于内地西藏班（校）扩大规模有关问题请示的通知.html"
    if html.is_file():
        srcs.append(out / "xizang.html")
        srcs[-1].write_bytes(html.read_bytes())
    subprocess.run([soffice, f"-env:UserInstallation={(out / 'profile').as_uri()}", "--headless", "--norestore",
                    "--convert-to", "pdf", "--outdir", str(out), *map(str, srcs)],
                   check=True, capture_output=True, timeout=240)
    return {s.stem: out / (s.stem + ".pdf") for s in srcs}


@needs_soffice
def test_word_table_printed_to_pdf(office_pdfs):
    text = read_file(office_pdfs["short"]).text
    lines = text.split("\n")
    assert lines[:3] == ["关于印发重点任务分工方案的通知", BEFORE, "\t".join(HEADER)]
    assert lines[3] == ("1\t健全安全生产责任体系，压实企业主体责任和部门监管责任，建立健全全员安全生产责任制（第1项）"
                        "\t市应急管理局、市住房城乡建设局\t2024年2月底前")
    assert [ln.split("\t")[0] for ln in _rows(text)] == ["序号", *map(str, range(1, 7))]
    assert lines[-1] == AFTER


@needs_soffice
def test_long_table_over_pages_one_row_per_line_never_split(office_pdfs):
    rr = read_file(office_pdfs["long"])
    rows = _rows(rr.text)
    assert [r.split("\t")[0] for r in rows] == ["序号", *map(str, range(1, 61))]
    assert all(len(r.split("\t")) == 4 and r.endswith("月底前") for r in rows[1:])
    assert len(rr.pages) > 3
    _assert_rows_whole(rr.text)


@needs_soffice
@needs_shared
def test_real_gov_cn_table_printed_to_pdf(office_pdfs):
    if "xizang" not in office_pdfs:
        pytest.skip("the 1996 HTML is not in the shared corpus")
    text = read_file(office_pdfs["xizang"]).text
    rows = _rows(text)
    assert "总计\t1445\t555\t1600\t1800\t2000" in rows
    assert "江苏\t100\t100\t120\t140\t200" in rows
    assert "福建\t45（扩招）\t5\t45\t50\t50" in rows
    assert rows[-1] == "安徽\t45\t0\t45\t45\t45"
    # the body paragraphs on the table's pages are joined as on any page
    assert any(ln.startswith("（一）加强政府的责任。") and ln.endswith("人、财、物的投入。") for ln in text.split("\n"))


# -- segmentation: a passage never splits a row ---------------------------------------------
def _assert_rows_whole(text: str, max_chars: int = 480) -> None:
    passages, _ = segment(text)
    rows = 0
    for ls, line in _line_spans(text):
        if "\t" not in line or len(line) > max_chars:
            continue
        rows += 1
        holding = [p for p in passages if p.start < ls + len(line) and p.end > ls]
        assert len(holding) == 1 and holding[0].start <= ls and holding[0].end >= ls + len(line), line
    assert rows


def _line_spans(text: str):
    pos = 0
    for line in text.split("\n"):
        yield pos, line
        pos += len(line) + 1


_LONG_TASK = ("健全安全生产责任体系。压实企业主体责任和部门监管责任；建立健全全员安全生产责任制。"
              "开展重大事故隐患专项排查整治行动。加强应急救援队伍建设，完善应急预案体系；定期组织开展实战化演练。")


@pytest.mark.parametrize("reps", [1, 3, 4])
def test_segment_keeps_long_rows_whole(reps):
    rows = [f"{i}\t{_LONG_TASK * reps}\t市应急管理局\t2024年{i % 12 + 1}月底前" for i in range(1, 25)]
    text = BEFORE * 4 + "\n" + "\t".join(HEADER) + "\n" + "\n".join(rows) + "\n" + AFTER
    assert max(map(len, rows)) > 260 or reps == 1  # longer than a passage's target size
    _assert_rows_whole(text)


def test_html_and_docx_long_tables_rows_whole(tmp_path):
    from docx import Document

    cells = [(str(i), _LONG_TASK * 3 + f"（第{i}项）", "市应急管理局", f"{i}月底前") for i in range(1, 21)]
    html = tmp_path / "t.html"
    html.write_text("<html><body><p>" + BEFORE + "</p><table>"
                    + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in cells)
                    + "</table><p>" + AFTER + "</p></body></html>", encoding="utf-8")
    d = Document()
    d.add_paragraph(BEFORE)
    t = d.add_table(rows=0, cols=4)
    for row in cells:
        for c, v in zip(t.add_row().cells, row):
            c.text = v
    d.add_paragraph(AFTER)
    d.save(tmp_path / "t.docx")
    for path in (html, tmp_path / "t.docx"):
        text = read_file(path).text
        assert len(_rows(text)) == 20, path.suffix
        _assert_rows_whole(text)
