"""Export a study pack (学习材料汇编) as a Word document, a PDF or Markdown.

The Word layout follows GB/T 9704-2012 (党政机关公文格式), as offices lay out a handout: A4;
margins top 37 mm, bottom 35 mm, left 28 mm, right 26 mm (版心 156 × 225 mm); 28 pt line
spacing and a two-character first-line indent; the title in 2号 方正小标宋简体, centred;
section headings in 3号 黑体; body text in 3号 仿宋_GB2312, 28 characters a line (a character
spacing of -0.25 pt in the 156 mm 版心); the page number "— 1 —" in 4号 宋体 at the foot, on the
outside edge (odd pages right, even pages left); every text black. A contents page follows the
title: one entry per section, or, in a pack without sections, one per run of passages from one
document; Word is asked to refresh its page numbers on opening (``w:updateFields``). Section
titles are numbered once: a title the user numbered keeps its number, the others continue from
the last number written (三、甲 then 乙 gives 四、乙). Each passage is followed by its source as
摘编 give it (（摘自《……》，2022年10月16日）) or by the citation chosen when it was added; a
trainer's note follows as written.

Fonts: each run names its Chinese font in ``w:eastAsia``; the font table gives each 公文
font an alternative a stock system has (仿宋, 楷体, 黑体, 宋体) and the GB2312 character set,
so Word, WPS and LibreOffice fall back to a Chinese face of the same kind where the 公文
fonts are missing. A PDF is made from the .docx by LibreOffice (``soffice``) when it is
installed; it is never required.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
import shutil
import subprocess
import tempfile
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any, Iterable, Sequence

from docx import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING, WD_TAB_ALIGNMENT, WD_TAB_LEADER
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Mm, Pt, RGBColor

from yuanwen.conventions import CN_DIGITS, CN_NUMERAL_CHARS, cn_date, number_value
from yuanwen.errors import ExportError, UsageError
from yuanwen.models import Hit, PackItem, StudyPack

from .cite import article_of, inner_quotes

TITLE_FONT = "方正小标宋简体"
HEADING_FONT = "黑体"
BODY_FONT = "仿宋_GB2312"
NOTE_FONT = "楷体_GB2312"
PAGE_NUMBER_FONT = "宋体"
#: What each 公文 font falls back to where it is missing: the face of the same kind that
#: Windows ships (and that LibreOffice's replacement table knows), written into the font table.
FALLBACKS = {TITLE_FONT: "宋体", HEADING_FONT: "黑体", NOTE_FONT: "楷体", BODY_FONT: "仿宋",
             PAGE_NUMBER_FONT: "宋体", "楷体": "楷体", "仿宋": "仿宋"}
# Font-table entries: the PANOSE family class and pitch Word matches a missing font by.
_FONT_KIND = {TITLE_FONT: ("roman", "02000000000000000000"), HEADING_FONT: ("modern", "02010609060101010101"),
              NOTE_FONT: ("modern", "02010609030101010101"), BODY_FONT: ("modern", "02010609030101010101"),
              PAGE_NUMBER_FONT: ("auto", "02010600030101010101"), "楷体": ("modern", "02010609060101010101"),
              "仿宋": ("modern", "02010609060101010101")}
LATIN_FONT = "Times New Roman"

#: 字号 in points: 2号 22 pt, 3号 16 pt, 4号 14 pt.
SIZE_2, SIZE_3, SIZE_4 = 22, 16, 14
LINE_PITCH = 28  # points: 22 lines in the 225 mm 版心
INDENT = 2 * SIZE_3  # two characters of 3号
#: GB/T 9704-2012 page: A4, margins top 37 mm, bottom 35 mm, left 28 mm, right 26 mm.
PAGE_MM = (210, 297)
MARGINS_MM = {"top": 37, "bottom": 35, "left": 28, "right": 26}
FOOTER_MM = 25  # the page number's line sits about 7 mm below the 版心
LINES_PER_PAGE, CHARS_PER_LINE = 22, 28
#: The 版心's width in points (156 mm, 442.2 pt): 27 characters of 3号 (16 pt) fit, not 28.
TEXT_WIDTH_PT = (PAGE_MM[0] - MARGINS_MM["left"] - MARGINS_MM["right"]) / 25.4 * 72
#: Character spacing in twentieths of a point (Word's unit) that sets 28 characters of 3号 a
#: line: -0.3 pt, 15.7 pt a character, 439.6 pt a line. -0.25 pt (441 pt a line) would do too,
#: but LibreOffice then drops a comma or full stop it hangs past the end of a justified line;
#: with 2.6 pt to spare it drops none. (A Word character grid, ``w:docGrid
#: w:type="linesAndChars"``, would do this in Word, but LibreOffice spreads the characters of
#: one over two cells each.)
CHAR_SPACING = -6

#: How a passage's source is given: as 摘编 do it, or the citation chosen when it was added.
SOURCE_STYLES = {"excerpt": "摘自《……》，日期", "citation": "加入时选定的引文格式"}

# A section title the user numbered: 一、 / 第一部分 / 第三章 / （一） / 1. / 1、 (the number in ``n``)
_NUMBERED = re.compile(
    rf"^\s*(?:(?P<n>[{CN_NUMERAL_CHARS}]{{1,4}})[、．.]"
    rf"|第(?P<n2>[{CN_NUMERAL_CHARS}\d]{{1,5}})(?:编|部分|篇|章|节|单元|专题|讲)"
    rf"|[（(](?P<n3>[{CN_NUMERAL_CHARS}\d]{{1,4}})[)）]|(?P<n4>\d{{1,3}})(?:[、．]|\.(?!\d)))"
)
DEFAULT_SECTION = "未分组"

# What XML 1.0 cannot hold (and so a .docx cannot): C0 controls other than tab and newline,
# U+FFFE/U+FFFF and lone surrogates (a pair is never seen: Python strings hold code points).
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff]")
# OWASP CSV injection: cells starting with these are formulas to Excel, LibreOffice and
# Sheets. The full-width forms are included: some East Asian spreadsheet setups read them too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (C0 controls except tab and
    newline, U+FFFE, U+FFFF, lone surrogates), so it can go into a .docx or be encoded."""
    return _XML_ILLEGAL.sub("", text)


def clean_pack(pack: StudyPack) -> StudyPack:
    """A copy of ``pack`` with :func:`xml_safe` applied to every string in it."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return xml_safe(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if dataclasses.is_dataclass(value):
            return dataclasses.replace(value, **{f.name: clean(getattr(value, f.name))
                                                 for f in dataclasses.fields(value)})
        return value

    return clean(pack)


def neutralise_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``= + - @``, a tab
    or a carriage return (or their full-width forms) gets a leading apostrophe, as OWASP
    advises; numbers and other values are returned as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """A CSV file (UTF-8 with a BOM, so Excel reads Chinese) with every cell passed through
    :func:`neutralise_cell`: the one way this project writes CSV for download."""
    buf = StringIO()
    writer = csv.writer(buf)
    writer.writerow([neutralise_cell(h) for h in header])
    for row in rows:
        writer.writerow([neutralise_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def item_from_hit(hit: Hit, style: str = "footnote") -> PackItem:
    """A pack item for a search hit, with its citation in ``style``."""
    return PackItem(
        text=hit.passage.text, title=hit.document.title,
        citation=hit.citation.format(style) if hit.citation else hit.document.title,
        heading_path=list(hit.passage.heading_path), passage_id=hit.passage.id,
        doc_id=hit.document.id, date=hit.document.date, access=hit.document.access,
    )


# -- what both formats share -------------------------------------------------------------------
def cn_count(n: int) -> str:
    """``n`` (1..99) as a Chinese numeral for a heading number (11 → 十一, 20 → 二十)."""
    digits = CN_DIGITS
    if not 1 <= n <= 99:
        return str(n)
    tens, ones = divmod(n, 10)
    return (("" if tens < 2 else digits[tens - 1]) + ("十" if tens else "") + (digits[ones - 1] if ones else ""))


def section_headings(titles: Sequence[str]) -> list[str]:
    """The section headings for ``titles``, numbered once: a title the user numbered
    (一、… / 第一部分… / （一）… / 1. …) keeps its number; another gets the number after the
    last one before it (一、二、… from the start; 三、甲 then 乙 gives 四、乙)."""
    out, last = [], 0
    for title in titles:
        title = title.strip()
        m = _NUMBERED.match(title)
        if m:
            written = next(g for g in m.group("n", "n2", "n3", "n4") if g)
            last = number_value(written) or last + 1
            out.append(title)
        else:
            last += 1
            out.append(f"{cn_count(last)}、{title}")
    return out


def _shown_sections(pack: StudyPack) -> list[tuple[str | None, list[PackItem]]]:
    """The sections to print with their headings; a pack whose only section is the default
    未分组 prints its passages without a heading."""
    if len(pack.sections) == 1 and pack.sections[0].title.strip() in (DEFAULT_SECTION, ""):
        return [(None, pack.sections[0].items)]
    return list(zip(section_headings([s.title for s in pack.sections]), (s.items for s in pack.sections)))


def contents(shown: list[tuple[str | None, list[PackItem]]]) -> list[tuple[str, int, int]]:
    """The contents entries of the sections ``shown`` as (label, section, first item): one per
    section, as 汇编 contents are; in a pack without sections, one per run of consecutive
    passages from one document (《标题》), never the same title twice in a row."""
    if shown and shown[0][0] is not None:
        return [(heading or "", si, 0) for si, (heading, _) in enumerate(shown)]
    out: list[tuple[str, int, int]] = []
    prev: object = None
    for si, (_, items) in enumerate(shown):
        for ii, item in enumerate(items):
            doc = item.doc_id if item.doc_id is not None else item.title
            if doc != prev:
                out.append((f"《{item.title}》", si, ii))
            prev = doc
    return out


def source_line(item: PackItem, source: str = "excerpt") -> str:
    """The line after a passage that says where it is from: ``（摘自《标题》第三条，2022年10月16日）``
    (``source="excerpt"``, as 摘编 do it) or the item's stored citation in brackets
    (``source="citation"``)."""
    if source not in SOURCE_STYLES:
        raise UsageError(f"不支持的出处格式 {source}；可选：{'、'.join(SOURCE_STYLES)}")
    if source == "citation" and item.citation.strip():
        return f"（{item.citation.strip().rstrip('。')}）"
    title = inner_quotes(item.title)
    where = article_of(item.heading_path)
    date = cn_date(item.date)
    return f"（摘自《{title}》{where}" + (f"，{date}" if date else "") + "）"


# -- Markdown ----------------------------------------------------------------------------------
_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\d*)([#+=.)-])")


def md_escape(text: str) -> str:
    """``text`` shown as written when rendered as Markdown: emphasis, code, link and table
    marks backslash-escaped (``**市`` stays ``**市``), HTML tags and entities written as
    text (``<b>`` stays ``<b>``), block marks at a line start (``#``, ``-``, ``1.``) escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    return "\n".join(_MD_LINE_START.sub(r"\1\\\2", line.lstrip(" \t")) for line in text.split("\n"))


def to_markdown(pack: StudyPack, source: str = "excerpt") -> str:
    """The pack as Markdown: title, contents, sections, each passage followed by its source
    and the trainer's note. Document text is escaped (:func:`md_escape`)."""
    pack = clean_pack(pack)
    e = md_escape
    lines = [f"# {e(pack.title)}", ""]
    if pack.subtitle:
        lines += [e(pack.subtitle), ""]
    shown = _shown_sections(pack)
    lines += ["## 目录", ""]
    if shown and shown[0][0] is None:
        lines += [f"{n}. {e(label)}" for n, (label, _, _) in enumerate(contents(shown), 1)]
    else:
        lines += [f"- {e(h or '')}（{len(items)} 段）" for h, items in shown]
    lines.append("")
    for heading, items in shown:
        if heading is not None:
            lines += [f"## {e(heading)}", ""]
        for item in items:
            lines += [e(p.strip()) + "\n" for p in item.text.split("\n") if p.strip()]
            lines += [e(source_line(item, source)), ""]
            if item.note.strip():
                lines += ["> " + e(item.note.strip()).replace("\n", "\n> "), ""]
    return "\n".join(lines)


# -- Word --------------------------------------------------------------------------------------
def _fonts(rpr, name: str, latin: str = LATIN_FONT) -> None:
    """Name ``name`` for East Asian text (w:eastAsia) and ``latin`` for Latin letters and digits,
    dropping theme fonts (which would override both)."""
    fonts = rpr.get_or_add_rFonts()
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)
    fonts.set(qn("w:eastAsia"), name)
    fonts.set(qn("w:ascii"), latin)
    fonts.set(qn("w:hAnsi"), latin)
    fonts.set(qn("w:cs"), latin)
    fonts.set(qn("w:hint"), "eastAsia")


def _style(doc, name: str, font: str, size: float, *, bold: bool = False, align=None,
           indent: float | None = INDENT, outline: int | None = None, keep_next: bool = False,
           latin: str = LATIN_FONT, line: float = LINE_PITCH):
    """Set (or make) paragraph style ``name``: font, size, black, exact line spacing."""
    try:
        st = doc.styles[name]
    except KeyError:
        st = doc.styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        st.base_style = doc.styles["Normal"]
    rpr = st.element.get_or_add_rPr()
    for child in list(rpr):  # theme colours, spacing, underline of the built-in styles
        rpr.remove(child)
    st.font.size = Pt(size)
    st.font.bold = bold
    st.font.italic = False
    st.font.color.rgb = RGBColor(0, 0, 0)
    _fonts(st.element.get_or_add_rPr(), font, latin)
    ppr = st.element.get_or_add_pPr()
    for tag in ("w:pBdr", "w:contextualSpacing", "w:numPr"):
        for el in ppr.findall(qn(tag)):
            ppr.remove(el)
    pf = st.paragraph_format
    pf.line_spacing_rule = WD_LINE_SPACING.EXACTLY
    pf.line_spacing = Pt(line)
    pf.space_before = Pt(0)
    pf.space_after = Pt(0)
    pf.first_line_indent = Pt(indent) if indent else Pt(0)
    pf.left_indent = Pt(0)
    pf.alignment = align if align is not None else WD_ALIGN_PARAGRAPH.JUSTIFY
    pf.keep_with_next = keep_next
    pf.widow_control = True
    if outline is not None:
        for el in ppr.findall(qn("w:outlineLvl")):
            ppr.remove(el)
        lvl = OxmlElement("w:outlineLvl")
        lvl.set(qn("w:val"), str(outline))
        ppr.append(lvl)
    return st


# What follows w:color in a run's properties (w:spacing first), by the OOXML schema's order.
_AFTER_COLOR = ("w:spacing", "w:w", "w:kern", "w:position", "w:sz", "w:szCs", "w:highlight", "w:u",
                "w:effect", "w:bdr", "w:shd", "w:fitText", "w:vertAlign", "w:rtl", "w:cs", "w:em",
                "w:lang", "w:eastAsianLayout", "w:specVanish", "w:oMath")
# What follows w:updateFields in the document settings, by the schema's order.
_AFTER_UPDATE_FIELDS = ("w:hdrShapeDefaults", "w:footnotePr", "w:endnotePr", "w:compat", "w:docVars",
                        "w:rsids", "m:mathPr", "w:attachedSchema", "w:themeFontLang", "w:clrSchemeMapping",
                        "w:doNotIncludeSubdocsInStats", "w:doNotAutoCompressPictures", "w:forceUpgrade",
                        "w:captions", "w:readModeInkLockDown", "w:smartTagType", "sl:schemaLibrary",
                        "w:shapeDefaults", "w:doNotEmbedSmartTags", "w:decimalSymbol", "w:listSeparator")


def _setup_styles(doc) -> None:
    """Document defaults and the styles the pack uses, every one black with explicit fonts."""
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    _fonts(rpr, BODY_FONT)
    for el in rpr.findall(qn("w:lang")):
        rpr.remove(el)
    rpr.append(parse_xml(f'<w:lang {nsdecls("w")} w:val="zh-CN" w:eastAsia="zh-CN" w:bidi="ar-SA"/>'))
    rpr.insert_element_before(parse_xml(f'<w:color {nsdecls("w")} w:val="000000"/>'), *_AFTER_COLOR)
    for tag in ("w:sz", "w:szCs"):  # 3号 by default
        for el in rpr.findall(qn(tag)):
            el.set(qn("w:val"), str(SIZE_3 * 2))
    ppr = defaults.find(qn("w:pPrDefault")).find(qn("w:pPr"))
    for el in ppr.findall(qn("w:spacing")):
        ppr.remove(el)
    normal = _style(doc, "Normal", BODY_FONT, SIZE_3).element.get_or_add_rPr()
    # 28 characters a line; the styles based on Normal (all the others) inherit it
    normal.insert_element_before(parse_xml(f'<w:spacing {nsdecls("w")} w:val="{CHAR_SPACING}"/>'),
                                 *_AFTER_COLOR[1:])
    _style(doc, "Title", TITLE_FONT, SIZE_2, align=WD_ALIGN_PARAGRAPH.CENTER, indent=None, keep_next=True,
           line=36)
    _style(doc, "Subtitle", NOTE_FONT, SIZE_3, align=WD_ALIGN_PARAGRAPH.CENTER, indent=None, keep_next=True)
    _style(doc, "Heading 1", HEADING_FONT, SIZE_3, outline=0, keep_next=True)
    _style(doc, "TOC Heading", HEADING_FONT, SIZE_3, align=WD_ALIGN_PARAGRAPH.CENTER, indent=None, keep_next=True)
    _style(doc, "toc 1", BODY_FONT, SIZE_3, indent=None)
    _style(doc, "汇编出处", NOTE_FONT, SIZE_3, align=WD_ALIGN_PARAGRAPH.RIGHT, indent=None)
    _style(doc, "汇编出处（长）", NOTE_FONT, SIZE_3)
    _style(doc, "汇编按语", NOTE_FONT, SIZE_3).paragraph_format.left_indent = Pt(INDENT)
    _style(doc, "footer", PAGE_NUMBER_FONT, SIZE_4, indent=None, latin=PAGE_NUMBER_FONT, line=SIZE_4 * 1.2)
    for name in ("Title", "Subtitle", "Heading 1", "TOC Heading"):
        doc.styles[name].font.bold = False
    # every style black, the ones a user may apply later too (Heading 3, Quote, ...)
    for colour in doc.styles.element.iter(qn("w:color")):
        for attr in ("w:themeColor", "w:themeShade", "w:themeTint"):
            colour.attrib.pop(qn(attr), None)
        colour.set(qn("w:val"), "000000")


def _font_table(doc) -> None:
    """Add the 公文 fonts to the font table, each with its fallback (``w:altName``), the GB2312
    character set and its PANOSE family, so an application without them substitutes a Chinese
    face of the same kind."""
    part = next(p for p in doc.part.package.iter_parts() if str(p.partname) == "/word/fontTable.xml")
    xml = part.blob.decode("utf-8")
    entries = []
    for name, (family, panose) in _FONT_KIND.items():
        alt = FALLBACKS.get(name)
        alt_xml = f'<w:altName w:val="{alt}"/>' if alt and alt != name else ""
        entries.append(f'<w:font w:name="{name}">{alt_xml}<w:panose1 w:val="{panose}"/><w:charset w:val="86"/>'
                       f'<w:family w:val="{family}"/><w:pitch w:val="fixed"/>'
                       '<w:sig w:usb0="00000001" w:usb1="080E0000" w:usb2="00000010" w:usb3="00000000" '
                       'w:csb0="00040000" w:csb1="00000000"/></w:font>')
    part._blob = xml.replace("</w:fonts>", "".join(entries) + "</w:fonts>").encode("utf-8")


def _page_setup(doc) -> None:
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    sec.page_width, sec.page_height = Mm(PAGE_MM[0]), Mm(PAGE_MM[1])
    sec.top_margin, sec.bottom_margin = Mm(MARGINS_MM["top"]), Mm(MARGINS_MM["bottom"])
    sec.left_margin, sec.right_margin = Mm(MARGINS_MM["left"]), Mm(MARGINS_MM["right"])
    sec.header_distance = Mm(15)
    sec.footer_distance = Mm(FOOTER_MM)
    sec.gutter = Mm(0)
    doc.settings.odd_and_even_pages_header_footer = True
    # 22 lines on a page: Word and LibreOffice snap East Asian text to this line grid. (28
    # characters a line come from Normal's character spacing, CHAR_SPACING.)
    sect_pr = sec._sectPr
    for el in sect_pr.findall(qn("w:docGrid")):
        sect_pr.remove(el)
    sect_pr.append(parse_xml(f'<w:docGrid {nsdecls("w")} w:type="lines" w:linePitch="{LINE_PITCH * 20}"/>'))
    settings = doc.settings.element
    for el in settings.findall(qn("w:themeFontLang")):
        el.set(qn("w:eastAsia"), "zh-CN")
    # Word refreshes the contents' page numbers (estimated here) when it opens the file; it
    # asks first (更新域). LibreOffice and WPS compute them by themselves.
    for el in settings.findall(qn("w:updateFields")):
        settings.remove(el)
    settings.insert_element_before(parse_xml(f'<w:updateFields {nsdecls("w")} w:val="true"/>'),
                                   *_AFTER_UPDATE_FIELDS)
    _page_number(doc, sec.footer.paragraphs[0], WD_ALIGN_PARAGRAPH.RIGHT)
    _page_number(doc, sec.even_page_footer.paragraphs[0], WD_ALIGN_PARAGRAPH.LEFT)


def _field(paragraph, instr: str, cached: str, style_run=None) -> None:
    """A complex field (``PAGE``, ``PAGEREF …``) in ``paragraph`` showing ``cached`` until the
    application computes it."""
    def run_with(el) -> None:
        r = paragraph.add_run()
        r._r.append(el)
        if style_run:
            style_run(r)

    begin = OxmlElement("w:fldChar")
    begin.set(qn("w:fldCharType"), "begin")
    run_with(begin)
    code = OxmlElement("w:instrText")
    code.set(qn("xml:space"), "preserve")
    code.text = f" {instr} "
    run_with(code)
    sep = OxmlElement("w:fldChar")
    sep.set(qn("w:fldCharType"), "separate")
    run_with(sep)
    r = paragraph.add_run(cached)
    if style_run:
        style_run(r)
    end = OxmlElement("w:fldChar")
    end.set(qn("w:fldCharType"), "end")
    run_with(end)


def _page_number(doc, p, align) -> None:
    """"— 1 —" in 4号 宋体 at the outside edge, one character in from it."""
    p.style = doc.styles["footer"]
    p.alignment = align
    pf = p.paragraph_format
    if align == WD_ALIGN_PARAGRAPH.RIGHT:
        pf.right_indent = Pt(SIZE_4)
    else:
        pf.left_indent = Pt(SIZE_4)

    def look(r) -> None:
        r.font.size = Pt(SIZE_4)
        r.font.color.rgb = RGBColor(0, 0, 0)
        _fonts(r._element.get_or_add_rPr(), PAGE_NUMBER_FONT, PAGE_NUMBER_FONT)

    look(p.add_run("— "))
    _field(p, "PAGE", "1", look)
    look(p.add_run(" —"))


def _bookmark(paragraph, name: str, bid: int) -> None:
    start = OxmlElement("w:bookmarkStart")
    start.set(qn("w:id"), str(bid))
    start.set(qn("w:name"), name)
    end = OxmlElement("w:bookmarkEnd")
    end.set(qn("w:id"), str(bid))
    paragraph._p.insert(1 if paragraph._p.pPr is not None else 0, start)
    paragraph._p.append(end)


def _lines(text: str, indent_chars: int = 2) -> int:
    """Lines a paragraph of ``text`` takes at 28 characters a line (half-width characters count
    half), for the page numbers a contents page shows before an application recomputes them."""
    width = sum(0.5 if ord(c) < 0x2E80 else 1 for c in text) + indent_chars
    return max(1, math.ceil(width / CHARS_PER_LINE))


# A block of the body: (style, text, bookmark). Style "Normal+gap" is Normal with a blank line before.
_Block = tuple[str, str, str | None]


def _body_blocks(shown: list[tuple[str | None, list[PackItem]]], source: str) -> list[_Block]:
    """The paragraphs of the body in order, the ones a contents entry points to bookmarked."""
    marks = {(si, ii) for _, si, ii in contents(shown)}
    blocks: list[_Block] = []
    for si, (heading, items) in enumerate(shown):
        if heading is not None:
            blocks.append(("Heading 1", heading, f"_yw_s{si}"))
        for ii, item in enumerate(items):
            mark = f"_yw_p{si}_{ii}" if heading is None and (si, ii) in marks else None
            paras = [t.strip() for t in item.text.split("\n") if t.strip()] or [""]
            for k, para in enumerate(paras):
                blocks.append(("Normal" if k or ii == 0 else "Normal+gap", para, mark if k == 0 else None))
            src = source_line(item, source)
            blocks.append(("汇编出处" if _lines(src, 0) == 1 else "汇编出处（长）", src, None))
            if item.note.strip():
                for line in item.note.strip().split("\n"):
                    if line.strip():
                        blocks.append(("汇编按语", line.strip(), None))
    return blocks


def _estimate_pages(blocks: list[_Block], front_lines: int) -> dict[str, int]:
    """The page each bookmark of ``blocks`` is estimated to fall on: the body starts on the page
    after the ``front_lines`` lines of the title and contents, on the 22-line grid; a heading
    near a page's foot moves to the next page. (Only a first guess, shown until the application
    computes the real numbers.)"""
    line_no = math.ceil(front_lines / LINES_PER_PAGE) * LINES_PER_PAGE
    pages: dict[str, int] = {}
    for style, text, mark in blocks:
        need = _lines(text, 0 if style == "汇编出处" else 2)
        if style == "Normal+gap" or (style == "Heading 1" and line_no % LINES_PER_PAGE):
            need += 1
        if style == "Heading 1" and line_no % LINES_PER_PAGE > LINES_PER_PAGE - 3:
            line_no = math.ceil(line_no / LINES_PER_PAGE) * LINES_PER_PAGE
        if mark:
            pages[mark] = line_no // LINES_PER_PAGE + 1
        line_no += need
    return pages


def to_docx(pack: StudyPack, source: str = "excerpt") -> bytes:
    """The pack as a .docx file (bytes) laid out by GB/T 9704-2012 (see the module's
    docstring), with each passage's source in ``source`` style (:data:`SOURCE_STYLES`).
    Characters that XML cannot hold are left out (:func:`xml_safe`)."""
    pack = clean_pack(pack)
    source_line(PackItem(text="", title="", citation=""), source)  # refuse an unknown style early
    doc = DocxDocument()
    doc.core_properties.title = pack.title
    doc.core_properties.language = "zh-CN"
    _setup_styles(doc)
    _font_table(doc)
    _page_setup(doc)
    body = doc.paragraphs[0]._p.getparent() if doc.paragraphs else None
    if body is not None:
        body.remove(doc.paragraphs[0]._p)

    shown = _shown_sections(pack)
    entries = [(label, f"_yw_s{si}" if shown[si][0] is not None else f"_yw_p{si}_{ii}")
               for label, si, ii in contents(shown)]
    # The body, laid out first so that the contents page can say where each entry starts.
    blocks = _body_blocks(shown, source)
    pages = _estimate_pages(blocks, 2 + (1 if pack.subtitle else 0) + 2 + len(entries))

    # title and contents
    doc.add_paragraph(pack.title, style="Title")
    if pack.subtitle:
        doc.add_paragraph(pack.subtitle, style="Subtitle")
    doc.add_paragraph("", style="Subtitle")
    doc.add_paragraph("目　录", style="TOC Heading")
    doc.add_paragraph("", style="TOC Heading")
    width = Mm(PAGE_MM[0] - MARGINS_MM["left"] - MARGINS_MM["right"])
    for label, mark in entries:
        p = doc.add_paragraph(style="toc 1")
        p.paragraph_format.tab_stops.add_tab_stop(width, WD_TAB_ALIGNMENT.RIGHT, WD_TAB_LEADER.MIDDLE_DOT)
        p.add_run(f"{label}\t")
        _field(p, f"PAGEREF {mark} \\h", str(pages.get(mark, 1)))

    bid = 0
    for k, (style, text, mark) in enumerate(blocks):
        p = doc.add_paragraph(text, style="Normal" if style == "Normal+gap" else style)
        if k == 0:
            p.paragraph_format.page_break_before = True  # the body starts on a new page
        elif style in ("Normal+gap", "Heading 1"):
            p.paragraph_format.space_before = Pt(LINE_PITCH)  # a blank line between passages
        if k + 1 < len(blocks) and blocks[k + 1][0].startswith("汇编出处") and _lines(text) <= 4:
            # a source stays with the end of a short paragraph (a long one may break before it,
            # rather than leave half a page empty)
            p.paragraph_format.keep_with_next = True
        if mark:
            bid += 1
            _bookmark(p, mark, bid)
    buf = BytesIO()
    doc.save(buf)
    return buf.getvalue()


# -- PDF ---------------------------------------------------------------------------------------
_SOFFICE_PLACES = ("/usr/bin/soffice", "/usr/local/bin/soffice", "/opt/libreoffice/program/soffice",
                   "/Applications/LibreOffice.app/Contents/MacOS/soffice",
                   r"C:\Program Files\LibreOffice\program\soffice.exe",
                   r"C:\Program Files (x86)\LibreOffice\program\soffice.exe")


def find_soffice() -> str | None:
    """The LibreOffice program (``soffice``) when it is installed, else None. ``YUANWEN_SOFFICE``
    names it explicitly (an empty value: none)."""
    if "YUANWEN_SOFFICE" in os.environ:
        named = os.environ["YUANWEN_SOFFICE"]
        return named if named and Path(named).is_file() else None
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    opt = sorted(Path("/opt").glob("libreoffice*/program/soffice")) if Path("/opt").is_dir() else []
    return next((p for p in (*_SOFFICE_PLACES, *map(str, opt)) if Path(p).is_file()), None)


def pdf_available() -> bool:
    """Whether a pack can be exported as PDF here (LibreOffice is installed)."""
    return find_soffice() is not None


def docx_to_pdf(data: bytes, timeout: float = 180) -> bytes:
    """A .docx (bytes) converted to PDF by LibreOffice (``soffice --headless --convert-to pdf``),
    run with a profile of its own so that an open LibreOffice does not get in the way. Raises
    :class:`ExportError` with a Chinese message when LibreOffice is missing or fails."""
    soffice = find_soffice()
    if soffice is None:
        raise ExportError("未找到 LibreOffice（soffice），无法导出 PDF。请安装 LibreOffice 后重试，"
                          "或导出 Word（.docx）后用 Word / WPS 另存为 PDF")
    with tempfile.TemporaryDirectory(prefix="yuanwen-pdf-") as tmp:
        src = Path(tmp) / "pack.docx"
        src.write_bytes(data)
        profile = Path(tmp, "profile").as_uri()
        cmd = [soffice, f"-env:UserInstallation={profile}", "--headless", "--norestore",
               "--convert-to", "pdf", "--outdir", tmp, str(src)]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ExportError(f"LibreOffice 转换 PDF 超时（{int(timeout)} 秒）；请稍后重试，或导出 Word 后另存为 PDF") from None
        except OSError as exc:
            raise ExportError(f"无法运行 LibreOffice（{soffice}）：{exc.strerror or exc}") from None
        out = Path(tmp) / "pack.pdf"
        if done.returncode != 0 or not out.is_file():
            why = (done.stderr or done.stdout).decode("utf-8", "replace").strip()[-200:]
            raise ExportError(f"LibreOffice 未能转换 PDF（退出码 {done.returncode}）{('：' + why) if why else ''}")
        return out.read_bytes()


def to_pdf(pack: StudyPack, source: str = "excerpt") -> bytes:
    """The pack as a PDF: its Word layout (:func:`to_docx`) converted by LibreOffice."""
    return docx_to_pdf(to_docx(pack, source))


EXPORT_FORMATS = {"docx": "Word", "pdf": "PDF", "md": "Markdown"}


def pack_to_bytes(pack: StudyPack, fmt: str, source: str = "excerpt") -> bytes:
    """``pack`` as ``docx``, ``pdf`` or ``md`` (UTF-8)."""
    if fmt == "docx":
        return to_docx(pack, source)
    if fmt == "pdf":
        return to_pdf(pack, source)
    if fmt in ("md", "markdown"):
        return to_markdown(pack, source).encode("utf-8")
    raise UsageError(f"不支持导出为 {fmt}；请用 docx、pdf 或 md")


def write_export(pack: StudyPack, path: Path, source: str = "excerpt") -> Path:
    """Write the pack to ``path`` as .docx, .pdf or .md, by its suffix."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("docx", "pdf", "md", "markdown"):
        raise UsageError(f"不支持导出为 {path.suffix or '无扩展名'}；请用 .docx、.pdf 或 .md")
    path.write_bytes(pack_to_bytes(pack, suffix, source))
    return path
