"""DOCX (.docx): paragraphs and tables in body order (python-docx), heading styles to
headings, core properties to ``meta``; the zip and the XML it holds are bounded first."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

from yuanwen.errors import ReadError
from yuanwen.models import ReadResult

from ._common import Reader, finish, mb

#: DOCX (zip) guards: total uncompressed size, and compression ratio for larger archives.
DOCX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
DOCX_MAX_RATIO = 100
DOCX_RATIO_MIN_SIZE = 5 * 1024 * 1024
#: XML parsed from a DOCX: the body (word/document.xml; 5 million characters of text with
#: Word's markup fit), and every other XML part (styles, numbering, headers, ...).
DOCX_MAX_DOCUMENT_XML = 64 * 1024 * 1024
DOCX_MAX_PART_XML = 16 * 1024 * 1024

_DOCX_CORRUPT = "DOCX 文件已损坏或不是 DOCX 格式"

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*([1-9])$", re.I)
_TITLE_STYLE = re.compile(r"^(?:title|标题)$", re.I)
_TEMPLATE_AUTHOR = "python-docx"


def _check_zip(data: bytes, path: Path) -> None:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise ReadError(path, _DOCX_CORRUPT) from exc
    with zf:
        infos = zf.infolist()
        names = {i.filename for i in infos}
        if "word/document.xml" not in names or "[Content_Types].xml" not in names:
            raise ReadError(path, _DOCX_CORRUPT)
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        # The XML actually parsed, bounded apart from the archive: stored padding can keep the
        # ratio low while one part holds hundreds of MB of XML (minutes and GBs to parse).
        for i in infos:
            name = i.filename.lower()
            if not name.endswith((".xml", ".rels")):
                continue
            limit = DOCX_MAX_DOCUMENT_XML if name == "word/document.xml" else DOCX_MAX_PART_XML
            if i.file_size > limit:
                raise ReadError(path, f"DOCX 内容异常庞大（{i.filename} 解压后 {mb(i.file_size)} MB，"
                                      f"上限 {mb(limit)} MB），可能是异常或恶意构造的文件，已拒绝读取")
    if total > DOCX_MAX_UNCOMPRESSED:
        limit = mb(DOCX_MAX_UNCOMPRESSED)
        raise ReadError(path, f"DOCX 解压后过大（{mb(total)} MB，上限 {limit} MB），可能是压缩炸弹，已拒绝读取")
    if total > DOCX_RATIO_MIN_SIZE and total > DOCX_MAX_RATIO * max(packed, 1):
        ratio = total // max(packed, 1)
        raise ReadError(path, f"DOCX 压缩比异常（{ratio} 倍），可能是压缩炸弹，已拒绝读取")


def _iter_block_items(body) -> Iterator:
    """Paragraph (w:p) and table (w:tbl) elements of the body in order, content controls opened."""
    from docx.oxml.ns import qn

    p_tag, tbl_tag, sdt_tag, content_tag = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")
    stack = [iter(body.iterchildren())]
    while stack:
        el = next(stack[-1], None)
        if el is None:
            stack.pop()
            continue
        if el.tag in (p_tag, tbl_tag):
            yield el
        elif el.tag == sdt_tag:
            content = el.find(content_tag)
            if content is not None:
                stack.append(iter(content.iterchildren()))


def _table_lines(table) -> list[str]:
    """One line per row: its cells' text, tab-separated; a merged cell once per row.

    The same text as python-docx's ``row.cells`` walk, in linear work: that walk finds each
    vertically merged cell's origin by recursing up the rows (quadratic, and a RecursionError
    past ~1,000 rows) and repeats a cell once per spanned grid column (``gridSpan`` is
    unbounded in the file).
    """
    from docx.table import _Cell

    lines: list[str] = []
    above: dict[int, object] = {}  # grid offset -> origin w:tc, in the row above
    for tr in table._tbl.tr_lst:
        row: dict[int, object] = {}
        offset = tr.grid_before
        cells: list[str] = []
        last = None
        for tc in tr.tc_lst:
            origin = tc
            if tc.vMerge == "continue":  # continues the cell above: its origin's text again
                origin = above.get(offset)
                if origin is None:
                    raise ValueError(f"no w:tc above grid offset {offset}")
            row[offset] = origin
            offset += tc.grid_span
            if origin is last:
                continue  # a merged cell repeats
            last = origin
            t = _Cell(origin, table).text.strip()
            if t:
                cells.append(t)
        above = row
        if cells:
            lines.append("\t".join(cells))
    return lines


def _core_properties(document):
    """The package's core properties, or None when it has none (no ``docProps/core.xml``):
    python-docx would make up defaults (title "Word Document"), which are not the file's."""
    from docx.opc.constants import RELATIONSHIP_TYPE as RT

    package = document.part.package
    try:
        package.part_related_by(RT.CORE_PROPERTIES)
    except KeyError:
        return None
    return package.core_properties


def _paragraph_style_names(document) -> tuple[dict[str, str], str]:
    """Paragraph style id -> UI name, and the default paragraph style's name, read once.

    ``Paragraph.style`` looks the style up by XPath for every paragraph (and scans every
    style for the default when a paragraph names none): quadratic in paragraphs x styles.
    Same answers: the first ``w:style`` with an id wins; one of another type gives the default.
    """
    from docx.enum.style import WD_STYLE_TYPE
    from docx.oxml.ns import qn
    from docx.styles import BabelFish

    by_id: dict[str, str | None] = {}  # None: the first style with this id is no paragraph style
    default = ""
    for el in document.styles.element.iterchildren(qn("w:style")):
        try:
            is_para = el.type == WD_STYLE_TYPE.PARAGRAPH
        except (KeyError, ValueError, AttributeError):
            is_para = False
        name = el.name_val
        ui = BabelFish.internal2ui(name) if name is not None else ""
        sid = el.styleId
        if sid and sid not in by_id:
            by_id[sid] = ui if is_para else None
        if is_para and el.default:
            default = ui  # the last default wins
    return {k: v for k, v in by_id.items() if v is not None} | {
        k: default for k, v in by_id.items() if v is None}, default


def read_docx_bytes(data: bytes, path: Path) -> ReadResult:
    """DOCX: paragraphs and tables in body order, heading styles to :class:`Heading`,
    core properties (title, author, created) to ``meta``."""
    _check_zip(data, path)
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(io.BytesIO(data))
        body = document.element.body
        style_names, default_style = _paragraph_style_names(document)
        lines: list[str] = []
        heads: list[tuple[int, int]] = []  # line index, level
        meta: dict[str, str] = {}
        for el in _iter_block_items(body):
            if el.tag.endswith("}tbl"):
                lines.extend(_table_lines(Table(el, document)))
                continue
            para = Paragraph(el, document)
            text = para.text
            try:
                style_id = el.style
            except (KeyError, AttributeError, ValueError):
                style_id = None
            style = style_names.get(style_id, default_style) if style_id else default_style
            m = _HEADING_STYLE.match(style or "")
            level = int(m.group(1)) if m else (0 if _TITLE_STYLE.match(style or "") else None)
            if level is not None and text.strip():
                text = text.strip()
                heads.append((len(lines), level))
                if level == 0:
                    meta.setdefault("title", text)
            lines.append(text)
        cp = _core_properties(document)
        core_title = (cp.title or "").strip() if cp is not None else ""
        if core_title:  # a Title-styled paragraph is what the reader sees; it wins
            if "title" not in meta:
                meta["title"] = core_title
            elif meta["title"] != core_title:
                meta["core_title"] = core_title
        if cp is not None and cp.author and cp.author.strip() and cp.author != _TEMPLATE_AUTHOR:
            meta["author"] = cp.author.strip()
        created = cp.created if cp is not None else None
        if created is not None and not (cp.author == _TEMPLATE_AUTHOR and created.year == 2013):
            meta["created"] = created.date().isoformat()
    except ReadError:
        raise
    except Exception as exc:  # python-docx/lxml raise many kinds on a damaged package
        raise ReadError(path, _DOCX_CORRUPT) from exc

    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    headings = [(starts[i], starts[i] + len(lines[i]), lv) for i, lv in heads]
    return finish("\n".join(lines), "docx", headings, meta, None)


READER = Reader("docx", (".docx",), read_docx_bytes)
