"""Checks that an exported study pack (.docx) is laid out as GB/T 9704-2012 asks; shared by
the library, CLI and app tests."""

from __future__ import annotations

import io
import itertools
import re

import docx
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Mm, Pt

from yuanwen.models import StudyPack
from yuanwen.search.export import section_headings, source_line

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _close(a: int, b: int, tol: int = Mm(0.2)) -> bool:
    return abs(int(a) - int(b)) <= tol


def check_gongwen_docx(data: bytes, pack: StudyPack, source: str = "excerpt") -> docx.Document:
    """Assert the layout of ``data`` (``pack`` exported as .docx); return the opened document."""
    d = docx.Document(io.BytesIO(data))
    sec = d.sections[0]
    # A4 and the margins of GB/T 9704-2012
    assert _close(sec.page_width, Mm(210)) and _close(sec.page_height, Mm(297))
    assert _close(sec.top_margin, Mm(37)) and _close(sec.bottom_margin, Mm(35))
    assert _close(sec.left_margin, Mm(28)) and _close(sec.right_margin, Mm(26))
    # page numbers "— 1 —" at the foot, odd pages right, even pages left, 4号 宋体
    assert d.settings.odd_and_even_pages_header_footer
    for footer, align in ((sec.footer, WD_ALIGN_PARAGRAPH.RIGHT), (sec.even_page_footer, WD_ALIGN_PARAGRAPH.LEFT)):
        xml = footer._element.xml
        assert re.search(r"<w:instrText[^>]*>\s*PAGE\s*</w:instrText>", xml), xml
        p = footer.paragraphs[0]
        assert p.text.startswith("— ") and p.text.endswith(" —") and p.alignment == align
        assert all(r.font.size in (None, Pt(14)) for r in p.runs)
        assert {r._element.rPr.rFonts.get(qn("w:eastAsia")) for r in p.runs} == {"宋体"}
    # fonts and sizes of the styles used
    for name, font, size in (("Normal", "仿宋_GB2312", 16), ("Title", "方正小标宋简体", 22),
                             ("Heading 1", "黑体", 16)):
        st = d.styles[name]
        assert st.element.rPr.rFonts.get(qn("w:eastAsia")) == font, name
        assert st.font.size == Pt(size), name
    normal = d.styles["Normal"].paragraph_format
    assert normal.line_spacing == Pt(28) and normal.first_line_indent == Pt(32)
    # 28 characters of 3号 a line: Normal's character spacing (twentieths of a point) fits 28
    # in the 156 mm 版心 and not 29; the grid is one of lines only (a character grid makes
    # LibreOffice spread the characters); Word is asked to refresh the contents' page numbers
    spacing = d.styles["Normal"].element.rPr.find(qn("w:spacing"))
    char_pt = 16 + int(spacing.get(qn("w:val"))) / 20
    width_pt = (sec.page_width - sec.left_margin - sec.right_margin) / 12700
    assert 28 * char_pt <= width_pt < 29 * char_pt, (char_pt, width_pt)
    grid = sec._sectPr.find(qn("w:docGrid"))
    assert grid.get(qn("w:type")) == "lines" and grid.get(qn("w:linePitch")) == str(28 * 20)
    update = d.settings.element.find(qn("w:updateFields"))
    assert update is not None and update.get(qn("w:val")) == "true"
    assert d.styles["Title"].paragraph_format.alignment == WD_ALIGN_PARAGRAPH.CENTER
    # every text black: no colour but black anywhere, no theme colours
    for xml in (d.element.xml, d.styles.element.xml, sec.footer._element.xml, sec.even_page_footer._element.xml):
        colours = set(re.findall(r'<w:color [^>]*w:val="([^"]+)"', xml))
        assert colours <= {"000000", "auto"}, colours
        assert not re.search(r"<w:color [^>]*w:themeColor", xml)
    paras = d.paragraphs
    texts = [p.text for p in paras]
    # numbering applied once
    assert not any(re.match(r"^([一二三四五六七八九十]+、)\1", t) for t in texts), texts
    # title, then the contents page, then the body on a new page
    assert texts[0] == pack.title and paras[0].style.name == "Title"
    toc = texts.index("目　录")
    body = next(i for i, p in enumerate(paras) if p.paragraph_format.page_break_before)
    entries = [p for p in paras[toc + 1:body] if p.text.strip()]
    assert entries and all("PAGEREF" in p._p.xml for p in entries)
    headings = [p.text for p in paras[body:] if p.style.name == "Heading 1"]
    named = not (len(pack.sections) == 1 and pack.sections[0].title == "未分组")
    labels = [e.text.split("\t")[0] for e in entries]
    if named:
        assert headings == section_headings([s.title for s in pack.sections])
        assert labels == headings
    else:  # one entry per run of passages from one document: no title twice in a row
        assert all(a != b for a, b in itertools.pairwise(labels)), labels
    # each passage followed by its source; no document title as a heading per passage
    at = body
    for s in pack.sections:
        for item in s.items:
            lines = [t.strip() for t in item.text.split("\n") if t.strip()]
            at = texts.index(lines[-1], at)
            assert texts[at + 1] == source_line(item, source), (texts[at + 1], item)
            assert paras[at + 1].style.name.startswith("汇编出处")
            if item.note:
                assert texts[at + 2] == item.note.strip()
            at += 1
    assert all(p.style.name in ("Heading 1", "Normal") or p.style.name.startswith("汇编")
               for p in paras[body:]), {p.style.name for p in paras[body:]}
    return d
