"""Export a study pack (学习材料汇编) as a Word document or Markdown.

The Word layout follows the conventions of official study material: the title in
方正小标宋简体 (falling back to 华文中宋/宋体), section headings in 黑体, body text in
仿宋_GB2312 (falling back to 仿宋), citations after each passage in 楷体. A contents list
comes after the title; each passage carries its source so the pack can be quoted from.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from io import BytesIO, StringIO
from pathlib import Path
from typing import Any, Iterable, Sequence

from docx import Document as DocxDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt

from yuanwen.conventions import cn_numeral
from yuanwen.models import Hit, PackItem, StudyPack

TITLE_FONT = "方正小标宋简体"
HEADING_FONT = "黑体"
BODY_FONT = "仿宋_GB2312"
NOTE_FONT = "楷体_GB2312"
# Word picks the first installed font only through the theme; name fallbacks explicitly.
FALLBACKS = {TITLE_FONT: "宋体", HEADING_FONT: "SimHei", BODY_FONT: "仿宋", NOTE_FONT: "楷体"}

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
        doc_id=hit.document.id, date=hit.document.date,
    )


def _section_label(i: int, title: str) -> str:
    return f"{cn_numeral(i + 1)}、{title}"


def to_markdown(pack: StudyPack) -> str:
    """The pack as Markdown: title, contents, sections, passages with citations and notes."""
    pack = clean_pack(pack)
    lines = [f"# {pack.title}", ""]
    if pack.subtitle:
        lines += [pack.subtitle, ""]
    lines += ["## 目录", ""]
    for i, s in enumerate(pack.sections):
        lines.append(f"- {_section_label(i, s.title)}（{len(s.items)} 段）")
    lines.append("")
    n = 0
    for i, s in enumerate(pack.sections):
        lines += [f"## {_section_label(i, s.title)}", ""]
        for item in s.items:
            n += 1
            lines += [f"**{n}. {item.title}**", ""]
            if item.heading_path:
                lines += [f"*{' › '.join(item.heading_path)}*", ""]
            lines += ["> " + item.text.replace("\n", "\n> "), "", f"出处：{item.citation}", ""]
            if item.note:
                lines += [f"按：{item.note}", ""]
    return "\n".join(lines)


def _set_font(run, name: str, size: float, bold: bool = False) -> None:
    run.font.name = FALLBACKS.get(name, name)
    run.font.size = Pt(size)
    run.font.bold = bold
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), name)
    fonts.set(qn("w:ascii"), FALLBACKS.get(name, name))
    fonts.set(qn("w:hAnsi"), FALLBACKS.get(name, name))


def to_docx(pack: StudyPack) -> bytes:
    """The pack as a .docx file (bytes) that opens in Word and LibreOffice. Characters that
    XML cannot hold are left out (:func:`xml_safe`)."""
    pack = clean_pack(pack)
    doc = DocxDocument()
    doc.core_properties.title = pack.title
    normal = doc.styles["Normal"]
    normal.font.size = Pt(16)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)

    p = doc.add_paragraph(style="Title")
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    _set_font(p.add_run(pack.title), TITLE_FONT, 22)
    if pack.subtitle:
        p = doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _set_font(p.add_run(pack.subtitle), NOTE_FONT, 16)

    p = doc.add_paragraph(style="Heading 1")
    _set_font(p.add_run("目　录"), HEADING_FONT, 16)
    for i, s in enumerate(pack.sections):
        p = doc.add_paragraph()
        _set_font(p.add_run(f"{_section_label(i, s.title)}（{len(s.items)} 段）"), BODY_FONT, 16)
    doc.add_page_break()

    n = 0
    for i, s in enumerate(pack.sections):
        p = doc.add_paragraph(style="Heading 1")
        _set_font(p.add_run(_section_label(i, s.title)), HEADING_FONT, 16)
        for item in s.items:
            n += 1
            p = doc.add_paragraph(style="Heading 2")
            _set_font(p.add_run(f"{n}. {item.title}"), HEADING_FONT, 16)
            if item.heading_path:
                p = doc.add_paragraph()
                _set_font(p.add_run(" › ".join(item.heading_path)), NOTE_FONT, 14)
            for para in item.text.split("\n"):
                p = doc.add_paragraph()
                p.paragraph_format.first_line_indent = Pt(32)
                p.paragraph_format.line_spacing = Pt(28)
                _set_font(p.add_run(para), BODY_FONT, 16)
            p = doc.add_paragraph()
            _set_font(p.add_run(f"出处：{item.citation}"), NOTE_FONT, 14)
            if item.note:
                p = doc.add_paragraph()
                _set_font(p.add_run(f"按：{item.note}"), NOTE_FONT, 14)
    buf = BytesIO()
    doc.save(buf)
    return buf.getvalue()


def save_pack(pack: StudyPack, path: Path) -> Path:
    """Write the pack to ``path`` as .docx or .md, by its suffix."""
    path = Path(path)
    if path.suffix.lower() == ".docx":
        path.write_bytes(to_docx(pack))
    elif path.suffix.lower() in (".md", ".markdown"):
        path.write_text(to_markdown(pack), encoding="utf-8")
    else:
        from yuanwen.errors import UsageError

        raise UsageError(f"不支持导出为 {path.suffix or '无扩展名'}；请用 .docx 或 .md")
    return path
