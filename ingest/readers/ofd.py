"""OFD (.ofd, GB/T 33190): the text objects of each page in reading order, tables row by row.

An OFD file is a zip of XML parts: ``OFD.xml`` -> ``DocBody/DocRoot`` (``Document.xml``) ->
``Pages/Page/@BaseLoc`` (each page's ``Content.xml``, plus the page templates it names). Text
is in ``TextObject/TextCode`` elements placed by the object's ``Boundary`` and ``CTM`` and the
code's ``X``/``Y``/``DeltaX``/``DeltaY``. This reader (no OFD library reads real files well
enough to be worth a dependency):

* places every text code on the page and groups codes into lines by baseline;
* finds ruled tables from the thin ``PathObject`` boxes that draw their rules: text inside a
  cell becomes that cell's text, and a row of cells becomes one line, cells separated by a tab
  (a passage never splits a line, so never a row); a line with a very wide gap (``版记``) is
  kept as cells too;
* hands the other lines, with their indents, to the PDF reader's repair
  (:func:`~ingest.readers.pdf.repair_pdf_pages`): lines joined into paragraphs by layout,
  page numbers (``— 1 —``) and running heads dropped, page offsets recorded;
* reads ``DocInfo`` (title, author, creation date; ``CustomData`` named like a metadata field,
  e.g. ``发文机关``) into ``meta``; the text's own 版头/落款 still decide title, issuer and 文号.

Signatures, seals (``Signs/``) and annotations (``Annots/``, stamps) are not text and are not
read. A file without any text object (a scan) is refused with a reason, never stored empty.

Hostile files are bounded before anything is parsed: member count, each XML part's size, the
total uncompressed size and the compression ratio; XML is parsed by lxml without entities,
DTDs or network access (a part declaring a DTD is refused); pages past ``MAX_PAGES`` and a
time budget stop the read with a Chinese reason naming the file (ReadError carries the path).
"""

from __future__ import annotations

import io
import math
import posixpath
import re
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from yuanwen.errors import ReadError
from yuanwen.models import ReadResult

from ._common import Reader, finish, mb
from .pdf import MAX_PAGE_CHARS, _clean_line, page_list, repair_pdf_pages

__all__ = ["READER", "read_ofd_bytes"]

# ---------------------------------------------------------------------------------------------
# Limits against hostile files
# ---------------------------------------------------------------------------------------------
MAX_MEMBERS = 20_000
MAX_PAGES = 2_000
#: One XML part (a page's content, the document's resources) once uncompressed.
MAX_PART_XML = 32 * 1024 * 1024
MAX_UNCOMPRESSED = 300 * 1024 * 1024
MAX_RATIO = 100
RATIO_MIN_SIZE = 5 * 1024 * 1024
#: Text codes on one page (a real A4 page holds a few thousand) and rules looked at for tables.
MAX_PAGE_CODES = 50_000
MAX_PAGE_RULES = 5_000
TIME_BUDGET_S = 120.0

_CORRUPT = "OFD 文件已损坏或不是 OFD 格式（缺少 OFD.xml 或文档结构不完整）；请重新获取完整的文件后再导入"
_NO_TEXT = "OFD 文件没有文字层（可能是扫描件），需要文字识别（OCR）后才能导入"
_DTD = "OFD 文件中的 XML 含有 DTD 或实体声明（{part}），可能是恶意构造的文件，已拒绝读取"
_TOO_MANY_MEMBERS = "OFD 文件内部条目过多（{n} 个，上限 {max} 个），可能是异常或恶意构造的文件，已拒绝读取"
_TOO_BIG_PART = "OFD 内容异常庞大（{part} 解压后 {size} MB，上限 {max} MB），可能是压缩炸弹，已拒绝读取"
_TOO_BIG = "OFD 解压后过大（{size} MB，上限 {max} MB），可能是压缩炸弹，已拒绝读取"
_RATIO = "OFD 压缩比异常（{ratio} 倍），可能是压缩炸弹，已拒绝读取"
_TOO_MANY_PAGES = "OFD 页数过多（{n} 页，上限 {max} 页）；请拆分成较小的文件后再导入"
_TOO_SLOW = "OFD 解析超时（超过 {s} 秒，可能是异常或恶意构造的文件）；请用原软件另存后再导入"
_SKIPPED = "{pages}无法读取（内容损坏或异常庞大），这些页未导入"

# A table row's placeholder in the text given to the PDF repair: private-use characters it
# leaves alone (start, end, and the row's index in hexadecimal digits from ``_DIGIT0``).
_ROW_START, _ROW_END, _DIGIT0 = "\ue000", "\ue001", 0xE010
#: A gap this many ems wide inside a line splits it into cells.
_CELL_GAP_EM = 4.0
#: A PathObject this thin (mm) is a table rule.
_RULE_THIN = 1.2


# ---------------------------------------------------------------------------------------------
# The package: bounded zip, safe XML
# ---------------------------------------------------------------------------------------------
class _Package:
    def __init__(self, data: bytes, path: Path) -> None:
        self.path = path
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            raise ReadError(path, _CORRUPT) from exc
        if len(infos) > MAX_MEMBERS:
            raise ReadError(path, _TOO_MANY_MEMBERS.format(n=len(infos), max=MAX_MEMBERS))
        self.names: dict[str, zipfile.ZipInfo] = {}
        for i in infos:
            self.names.setdefault(i.filename.lstrip("/").lower(), i)
            if i.filename.lower().endswith(".xml") and i.file_size > MAX_PART_XML:
                raise ReadError(path, _TOO_BIG_PART.format(
                    part=i.filename, size=mb(i.file_size), max=mb(MAX_PART_XML)))
        total = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        if total > MAX_UNCOMPRESSED:
            raise ReadError(path, _TOO_BIG.format(size=mb(total), max=mb(MAX_UNCOMPRESSED)))
        if total > RATIO_MIN_SIZE and total > MAX_RATIO * max(packed, 1):
            raise ReadError(path, _RATIO.format(ratio=total // max(packed, 1)))

    def has(self, name: str) -> bool:
        return name.lower() in self.names

    def xml(self, name: str):
        """The parsed part ``name`` (a path from the package root); ReadError if missing or bad."""
        from lxml import etree

        info = self.names.get(name.lower())
        if info is None:
            raise ReadError(self.path, _CORRUPT)
        try:
            with self.zf.open(info) as fh:
                raw = fh.read(MAX_PART_XML + 1)  # the header's size may lie; never read past it
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as exc:
            raise ReadError(self.path, _CORRUPT) from exc
        if len(raw) > MAX_PART_XML:
            raise ReadError(self.path, _TOO_BIG_PART.format(
                part=info.filename, size=f">{mb(MAX_PART_XML)}", max=mb(MAX_PART_XML)))
        if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
            raise ReadError(self.path, _DTD.format(part=info.filename))
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                                 load_dtd=False, dtd_validation=False, remove_comments=True)
        try:
            root = etree.fromstring(raw, parser)
        except etree.XMLSyntaxError as exc:
            raise ReadError(self.path, _CORRUPT) from exc
        tree = root.getroottree()
        if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # e.g. a UTF-16 part
            raise ReadError(self.path, _DTD.format(part=info.filename))
        return root


def _local(el) -> str:
    tag = el.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(el, name: str):
    for c in el:
        if _local(c) == name:
            return c
    return None


def _children(el, name: str) -> list:
    return [c for c in el if _local(c) == name]


def _text_of(el, name: str) -> str:
    c = _child(el, name) if el is not None else None
    return (c.text or "").strip() if c is not None else ""


def _resolve(base_dir: str, loc: str) -> str:
    """A ``BaseLoc``/``DocRoot`` path: absolute (``/Doc_0/...``) from the root, else from ``base_dir``."""
    loc = loc.strip().replace("\\", "/")
    joined = loc.lstrip("/") if loc.startswith("/") else posixpath.join(base_dir, loc)
    return posixpath.normpath(joined).lstrip("/")


# ---------------------------------------------------------------------------------------------
# Text on a page
# ---------------------------------------------------------------------------------------------
@dataclass
class _Run:
    """A piece of text on one line: x from ``x0`` to ``x1``, baseline ``y`` (mm, y down)."""

    x0: float
    x1: float
    y: float
    size: float
    text: str


@dataclass
class _Rules:
    h: list[tuple[float, float, float]] = field(default_factory=list)  # y, x0, x1
    v: list[tuple[float, float, float]] = field(default_factory=list)  # x, y0, y1


def _floats(s: str | None) -> list[float]:
    if not s:
        return []
    out = []
    for t in s.split():
        try:
            v = float(t)
        except ValueError:
            return []
        if not math.isfinite(v):
            return []
        out.append(v)
    return out


def _deltas(s: str | None, n: int) -> list[float]:
    """``DeltaX``/``DeltaY``: numbers, with ``g COUNT VALUE`` for a repeated value; at most ``n``."""
    if not s:
        return []
    toks = s.split()
    out: list[float] = []
    i = 0
    try:
        while i < len(toks) and len(out) < n:
            if toks[i] == "g" and i + 2 < len(toks):
                count, value = int(float(toks[i + 1])), float(toks[i + 2])
                out.extend([value] * max(0, min(count, n - len(out))))
                i += 3
            else:
                out.append(float(toks[i]))
                i += 1
    except ValueError:
        return out
    return [d if math.isfinite(d) else 0.0 for d in out]


def _ctm(el) -> tuple[float, float, float, float, float, float]:
    m = _floats(el.get("CTM"))
    return tuple(m) if len(m) == 6 else (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)  # type: ignore[return-value]


def _wide(ch: str) -> bool:
    return ord(ch) >= 0x2E80


def _text_runs(obj, ox: float, oy: float) -> list[_Run]:
    """The runs of one TextObject: each TextCode, split where characters move to another line."""
    box = _floats(obj.get("Boundary"))
    if len(box) < 2:
        return []
    a, b, c, d, e, f = _ctm(obj)
    scale = math.sqrt(abs(a * d - b * c)) or 1.0
    size = (_floats(obj.get("Size")) or [3.5])[0] * scale
    if not (0 < size < 1000):
        return []
    bx, by = box[0] + ox, box[1] + oy
    runs: list[_Run] = []
    x = y = 0.0
    for code in obj.iter():
        if _local(code) != "TextCode":
            continue
        text = code.text or ""
        if not text:
            continue
        xs, ys = _floats(code.get("X")), _floats(code.get("Y"))
        if xs:
            x = xs[0]
        if ys:
            y = ys[0]
        dxs = _deltas(code.get("DeltaX"), len(text) - 1)
        dys = _deltas(code.get("DeltaY"), len(text) - 1)
        cur: list[str] = []
        start: tuple[float, float] | None = None
        end_x = 0.0
        gap_next = False  # the previous character moved the pen well past its own width
        for i, ch in enumerate(text):
            px, py = bx + a * x + c * y + e, by + b * x + d * y + f
            # A new run on another line (vertical text, a jump), or after a wide gap (a space
            # between Latin words, the gap between two cells of a line).
            if start is not None and (abs(py - start[1]) > 0.3 * size or gap_next):
                runs.append(_Run(start[0], max(end_x, start[0]), start[1], size, "".join(cur)))
                cur, start = [], None
            adv = (1.0 if _wide(ch) else 0.5) * size / scale
            if ch.isprintable():
                if start is None:
                    start = (px, py)
                cur.append(ch)
                end_x = bx + a * (x + adv) + c * y + e
            step = adv
            if i < len(text) - 1:
                step = dxs[i] if i < len(dxs) else (dxs[-1] if dxs else adv)
                y += dys[i] if i < len(dys) else 0.0
            gap_next = ch.isprintable() and step > adv + (0.4 if _wide(ch) else 0.45) * size / scale
            x += step
        if cur and start is not None:
            runs.append(_Run(start[0], max(end_x, start[0]), start[1], size, "".join(cur)))
    return runs


def _collect(el, ox: float, oy: float, runs: list[_Run], rules: _Rules, budget: list[int],
             depth: int = 0) -> None:
    """Text runs and table rules under ``el`` (layers, page blocks), in document order."""
    if depth > 32:
        return
    for obj in el:
        name = _local(obj)
        if name == "TextObject":
            budget[0] -= 1
            if budget[0] >= 0:
                runs.extend(_text_runs(obj, ox, oy))
        elif name == "PathObject":
            box = _floats(obj.get("Boundary"))
            if len(box) == 4 and len(rules.h) + len(rules.v) < MAX_PAGE_RULES:
                x, y, w, h = box[0] + ox, box[1] + oy, box[2], box[3]
                if h <= _RULE_THIN and w >= 2 * _RULE_THIN:
                    rules.h.append((y + h / 2, x, x + w))
                elif w <= _RULE_THIN and h >= 2 * _RULE_THIN:
                    rules.v.append((x + w / 2, y, y + h))
        elif name in ("Layer", "PageBlock"):
            _collect(obj, ox, oy, runs, rules, budget, depth + 1)
        elif name == "CompositeObject":
            continue  # vector graphics units (seals, logos): not text


def _cell_of(run: _Run, rules: _Rules) -> tuple[float, float, float] | None:
    """(left rule x, top rule y, width) of the ruled cell holding ``run``, or None."""
    cx, cy = run.x0 + 0.5 * run.size, run.y - 0.35 * run.size
    tol = 0.6
    top = max((y for y, x0, x1 in rules.h if y <= cy and x0 - tol <= cx <= x1 + tol), default=None)
    bottom = min((y for y, x0, x1 in rules.h if y >= cy and x0 - tol <= cx <= x1 + tol), default=None)
    left = max((x for x, y0, y1 in rules.v if x <= cx and y0 - tol <= cy <= y1 + tol), default=None)
    right = min((x for x, y0, y1 in rules.v if x >= cx and y0 - tol <= cy <= y1 + tol), default=None)
    if top is None or bottom is None or left is None or right is None:
        return None
    return (round(left, 1), round(top, 1), right - left)


def _lines_of(runs: list[_Run]) -> list[list[_Run]]:
    """Runs grouped into lines by baseline, top to bottom, each line left to right."""
    lines: list[list[_Run]] = []
    for r in sorted(runs, key=lambda r: (r.y, r.x0)):
        if lines:
            last = lines[-1]
            ref = sum(x.y for x in last) / len(last)
            if abs(r.y - ref) <= 0.35 * max(r.size, last[0].size):
                last.append(r)
                continue
        lines.append([r])
    return [sorted(ln, key=lambda r: r.x0) for ln in lines]


def _join_runs(line: list[_Run], split_cells: bool) -> list[str]:
    """A line's text; with ``split_cells``, split into cells at gaps wider than a few ems."""
    cells: list[str] = []
    cur = ""
    prev: _Run | None = None
    for r in line:
        if prev is not None:
            gap = r.x0 - prev.x1
            em = max(min(r.size, prev.size), 0.1)
            if split_cells and gap >= _CELL_GAP_EM * em and cur.strip():
                cells.append(cur)
                cur = ""
            elif (gap > 0.3 * em and cur and cur[-1].isascii() and cur[-1].isalnum()
                  and r.text[:1].isascii() and r.text[:1].isalnum()):
                cur += " "
        cur += r.text
        prev = r
    if cur.strip():
        cells.append(cur)
    return [c.strip() for c in cells]


def _join_cell_lines(parts: list[str]) -> str:
    out = ""
    for p in parts:
        if out and out[-1].isascii() and out[-1].isalnum() and p[:1].isascii() and p[:1].isalnum():
            out += " "
        out += p
    return out


def _page_layout(runs: list[_Run], rules: _Rules, em: float, left: float,
                 rows_out: list[list[str]]) -> str:
    """One page as lines of text for :func:`repair_pdf_pages`: leading spaces give the indent
    in ems. A table row goes in as a short placeholder (its index in ``rows_out``, in
    private-use characters), so that it neither joins a paragraph nor sets the page's width."""
    cells: dict[tuple[float, float, float], list[_Run]] = {}
    free: list[_Run] = []
    if rules.h and rules.v:
        for r in runs:
            key = _cell_of(r, rules)
            (cells.setdefault(key, []) if key else free).append(r)
    else:
        free = list(runs)
    # Rows: cells sharing a top rule. A lone cell as wide as the text (a page border, a framed
    # note) holds text, not a table.
    rows: dict[float, list[tuple[float, float, list[_Run]]]] = {}
    for (x, y, w), rs in cells.items():
        rows.setdefault(y, []).append((x, w, rs))
    span = (max(r.x1 for r in runs) - min(r.x0 for r in runs)) if runs else 0.0
    items: list[tuple[float, float, list[str], bool]] = []  # (y, x, cells, a ruled row)
    for y, row in rows.items():
        if len(row) == 1 and row[0][1] > 0.6 * span:
            free.extend(row[0][2])
            continue
        texts = []
        for _, _, rs in sorted(row, key=lambda c: c[0]):
            t = _clean_line(_join_cell_lines([" ".join(_join_runs(ln, False)) for ln in _lines_of(rs)]),
                            False)
            if t:
                texts.append(t)
        if texts:
            x0 = min(r.x0 for _, _, rs in row for r in rs)
            items.append((y, x0, texts, True))
    for ln in _lines_of(free):
        parts = _join_runs(ln, True)
        parts = [c for c in (_clean_line(p, False) for p in parts) if c] if len(parts) > 1 else parts
        if parts:
            items.append((ln[0].y - 0.8 * ln[0].size, ln[0].x0, parts, len(parts) > 1))
    items.sort(key=lambda t: (t[0], t[1]))
    out = []
    for _, x0, parts, is_row in items:
        indent = max(0, round((x0 - left) / em)) if em > 0 else 0
        if not is_row:
            out.append(" " * min(indent, 60) + parts[0])
            continue
        rows_out.append(parts)
        out.append(" " * min(indent, 60) + _ROW_START + _encode(len(rows_out) - 1) + _ROW_END)
    return "\n".join(out)


def _encode(k: int) -> str:
    return "".join(chr(_DIGIT0 + int(d, 16)) for d in f"{k:x}")


def _unwrap_rows(text: str, pages: list[int], rows: list[list[str]]) -> tuple[str, list[int]]:
    """Placeholders out: each table row on a line of its own, cells tab-separated; offsets moved."""
    out: list[str] = []
    n = 0
    pos = [0] * (len(text) + 1)
    i = 0
    break_next = False
    while i < len(text):
        ch = text[i]
        if ch == _ROW_START:
            j = text.find(_ROW_END, i)
            if j < 0:
                j = len(text) - 1
            if n and out[-1] != "\n":
                out.append("\n")
                n += 1
            for k in range(i, j + 1):
                pos[k] = n
            digits = "".join(f"{ord(c) - _DIGIT0:x}" for c in text[i + 1:j] if _DIGIT0 <= ord(c) < _DIGIT0 + 16)
            row = "\t".join(rows[int(digits, 16)]) if digits else ""
            out.append(row)
            n += len(row)
            break_next = True
            i = j + 1
            continue
        if break_next and ch != "\n":
            out.append("\n")
            n += 1
        break_next = False
        pos[i] = n
        out.append(ch)
        n += 1
        i += 1
    pos[len(text)] = n
    return "".join(out), [pos[min(p, len(text))] for p in pages]


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------
_PRODUCER = re.compile(r"(?i)ofd|©|\(c\)|\d+\.\d+\.\d+|\.(?:cn|com|net)\b|suwell|foxit|数科|书生|福昕")
#: CustomData names that are metadata fields (``ingest.metadata.HINT_KEYS``) are passed on.
_CUSTOM_KEYS = ("标题", "题名", "发文机关", "发布机关", "发文字号", "文号", "成文日期", "发文日期",
                "文种", "公文种类")


def _doc_info(body) -> dict[str, str]:
    info = _child(body, "DocInfo")
    meta: dict[str, str] = {}
    if info is None:
        return meta
    title = _text_of(info, "Title")
    if title:
        meta["ofd_title"] = title
    author = _text_of(info, "Author")
    if author and author != _text_of(info, "Creator") and not _PRODUCER.search(author):
        meta["ofd_author"] = author
    created = _text_of(info, "CreationDate")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", created[:10]):
        meta["created"] = created[:10]
    customs = _child(info, "CustomDatas")
    for cd in _children(customs, "CustomData") if customs is not None else []:
        name, value = (cd.get("Name") or "").strip(), (cd.text or "").strip()
        if name in _CUSTOM_KEYS and value:
            meta.setdefault(name, value)
    return meta


# ---------------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------------
def read_ofd_bytes(data: bytes, path: Path) -> ReadResult:
    """The text of the OFD file ``data`` (its first document), repaired, with page offsets."""
    path = Path(path)
    if not data:
        raise ReadError(path, "文件为空")
    pkg = _Package(data, path)
    if not pkg.has("OFD.xml"):
        raise ReadError(path, _CORRUPT)
    ofd = pkg.xml("OFD.xml")
    body = _child(ofd, "DocBody")
    root_loc = _text_of(body, "DocRoot") if body is not None else ""
    if not root_loc:
        raise ReadError(path, _CORRUPT)
    doc_path = _resolve("", root_loc)
    doc_dir = posixpath.dirname(doc_path)
    doc = pkg.xml(doc_path)
    meta = _doc_info(body)

    pages_el = _child(doc, "Pages")
    page_els = _children(pages_el, "Page") if pages_el is not None else []
    if len(page_els) > MAX_PAGES:
        raise ReadError(path, _TOO_MANY_PAGES.format(n=len(page_els), max=MAX_PAGES))
    if not page_els:
        raise ReadError(path, "OFD 文件没有任何页面；请检查文件是否完整")
    common = _child(doc, "CommonData")
    templates: dict[str, str] = {}
    for t in _children(common, "TemplatePage") if common is not None else []:
        if t.get("ID") and t.get("BaseLoc"):
            templates[t.get("ID")] = _resolve(doc_dir, t.get("BaseLoc"))

    deadline = time.monotonic() + TIME_BUDGET_S
    page_content: list[tuple[list[_Run], _Rules]] = []
    skipped: list[int] = []
    for n, page_el in enumerate(page_els, 1):
        if time.monotonic() > deadline:
            raise ReadError(path, _TOO_SLOW.format(s=int(TIME_BUDGET_S)))
        runs: list[_Run] = []
        rules = _Rules()
        budget = [MAX_PAGE_CODES]
        try:
            loc = _resolve(doc_dir, page_el.get("BaseLoc") or "")
            page = pkg.xml(loc)
            parts = []
            for tpl in _children(page, "Template"):
                tloc = templates.get(tpl.get("TemplateID") or "")
                if tloc and pkg.has(tloc):
                    parts.append(pkg.xml(tloc))
            parts.append(page)
            for part in parts:
                content = _child(part, "Content")
                if content is not None:
                    _collect(content, 0.0, 0.0, runs, rules, budget)
        except ReadError as exc:
            if "DTD" in exc.reason or "压缩炸弹" in exc.reason or "恶意" in exc.reason:
                raise
            skipped.append(n)
            runs = []
        if budget[0] < 0 or sum(len(r.text) for r in runs) > MAX_PAGE_CHARS:
            skipped.append(n)
            runs = []
        page_content.append((runs, rules))
    if len(skipped) == len(page_els):
        raise ReadError(path, _CORRUPT)

    all_runs = [r for runs, _ in page_content for r in runs if r.text.strip()]
    if not all_runs:
        raise ReadError(path, _NO_TEXT)
    # Indents in ems of the body text: the commonest font size, from the leftmost body line.
    sizes = Counter()
    for r in all_runs:
        sizes[round(r.size, 1)] += len(r.text)
    em = sizes.most_common(1)[0][0] or 1.0
    body_runs = [r for r in all_runs if abs(r.size - em) < 0.15 * em] or all_runs
    left = min(r.x0 for r in body_runs)
    rows: list[list[str]] = []
    raw_pages = [_page_layout(runs, rules, em, left, rows) for runs, rules in page_content]
    text, offsets = repair_pdf_pages(raw_pages)
    text, offsets = _unwrap_rows(text, offsets, rows)
    if not text.strip():
        raise ReadError(path, _NO_TEXT)
    result = finish(text, "ofd", [], meta, None, offsets)
    if not result.text.strip():
        raise ReadError(path, _NO_TEXT)
    if skipped:
        result.meta["skipped_pages"] = ",".join(map(str, skipped))
        result.warnings.append(_SKIPPED.format(pages=page_list(skipped)))
    return result


READER = Reader("ofd", (".ofd",), read_ofd_bytes)
