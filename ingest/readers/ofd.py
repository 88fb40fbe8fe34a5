"""OFD (.ofd, GB/T 33190): the text objects of each page in reading order, tables row by row.

An OFD file is a zip of XML parts: ``OFD.xml`` -> ``DocBody/DocRoot`` (``Document.xml``) ->
``Pages/Page/@BaseLoc`` (each page's ``Content.xml``, plus the page templates it names). Text
is in ``TextObject/TextCode`` elements placed by the object's ``Boundary`` and ``CTM`` and the
code's ``X``/``Y``/``DeltaX``/``DeltaY``. This reader (no OFD library reads real files well
enough to be worth a dependency):

* places every text code on the page and groups codes into lines by baseline;
* finds ruled tables from the thin ``PathObject`` boxes that draw their rules and lays the page
  out with :func:`~ingest.readers.layout.page_lines`: text inside a cell becomes that cell's
  text, and a row of cells becomes one line, cells separated by a tab (a passage never splits
  a line, so never a row); a line with a very wide gap (``版记``) is kept as cells too;
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
from collections.abc import Mapping
from pathlib import Path

from yuanwen.errors import OcrNeeded, ReadError
from yuanwen.models import OcrPage, ReadResult

from ._common import Reader, finish, mb
from .layout import RULE_THIN, Rules, Run, page_lines
from .pdf import MAX_PAGE_CHARS, page_list, repair_pdf_pages
from .scanned import ocr_meta, ocr_page_text

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
#: An embedded page scan larger than this is refused (a 600 dpi colour A4 page is ~25 MB).
MAX_IMAGE_BYTES = 64 * 1024 * 1024
TIME_BUDGET_S = 120.0

_CORRUPT = "OFD 文件已损坏或不是 OFD 格式（缺少 OFD.xml 或文档结构不完整）；请重新获取完整的文件后再导入"
_NO_TEXT = "OFD 文件没有文字层（可能是扫描件），需要文字识别（OCR）后才能导入"
_ONLY_GRAPHICS = ("OFD 文件没有文字：页面只有图形和印章（没有文字对象，也没有可识别的扫描图像）；"
                  "请用原软件导出带文字的 OFD 或 PDF 后再导入")
_DTD = "OFD 文件中的 XML 含有 DTD 或实体声明（{part}），可能是恶意构造的文件，已拒绝读取"
_TOO_MANY_MEMBERS = "OFD 文件内部条目过多（{n} 个，上限 {max} 个），可能是异常或恶意构造的文件，已拒绝读取"
_TOO_BIG_PART = "OFD 内容异常庞大（{part} 解压后 {size} MB，上限 {max} MB），可能是压缩炸弹，已拒绝读取"
_TOO_BIG = "OFD 解压后过大（{size} MB，上限 {max} MB），可能是压缩炸弹，已拒绝读取"
_RATIO = "OFD 压缩比异常（{ratio} 倍），可能是压缩炸弹，已拒绝读取"
_TOO_MANY_PAGES = "OFD 页数过多（{n} 页，上限 {max} 页）；请拆分成较小的文件后再导入"
_TOO_SLOW = "OFD 解析超时（超过 {s} 秒，可能是异常或恶意构造的文件）；请用原软件另存后再导入"
_SKIPPED = "{pages}无法读取（内容损坏或异常庞大），这些页未导入"



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

    def raw(self, name: str, limit: int) -> bytes:
        """The bytes of member ``name`` (an image), at most ``limit``; ReadError past it."""
        info = self.names.get(name.lower())
        if info is None:
            raise ReadError(self.path, _CORRUPT)
        try:
            with self.zf.open(info) as fh:
                raw = fh.read(limit + 1)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as exc:
            raise ReadError(self.path, _CORRUPT) from exc
        if len(raw) > limit:
            raise ReadError(self.path, _TOO_BIG_PART.format(part=info.filename, size=f">{mb(limit)}",
                                                            max=mb(limit)))
        return raw

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


def _text_runs(obj, ox: float, oy: float) -> list[Run]:
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
    runs: list[Run] = []
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
                runs.append(Run(start[0], max(end_x, start[0]), start[1], size, "".join(cur)))
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
            runs.append(Run(start[0], max(end_x, start[0]), start[1], size, "".join(cur)))
    return runs


def _collect(el, ox: float, oy: float, runs: list[Run], rules: Rules, budget: list[int],
             depth: int = 0, images: list[tuple[str, float]] | None = None) -> None:
    """Text runs and table rules under ``el`` (layers, page blocks), in document order; with
    ``images``, the images drawn too (resource id, area)."""
    if depth > 32:
        return
    for obj in el:
        name = _local(obj)
        if name == "ImageObject" and images is not None and len(images) < 1000:
            box = _floats(obj.get("Boundary"))
            images.append((obj.get("ResourceID") or "", box[2] * box[3] if len(box) == 4 else 0.0))
        elif name == "TextObject":
            budget[0] -= 1
            if budget[0] >= 0:
                runs.extend(_text_runs(obj, ox, oy))
        elif name == "PathObject":
            box = _floats(obj.get("Boundary"))
            if len(box) == 4 and len(rules.h) + len(rules.v) < MAX_PAGE_RULES:
                x, y, w, h = box[0] + ox, box[1] + oy, box[2], box[3]
                if h <= RULE_THIN and w >= 2 * RULE_THIN:
                    rules.h.append((y + h / 2, x, x + w))
                elif w <= RULE_THIN and h >= 2 * RULE_THIN:
                    rules.v.append((x + w / 2, y, y + h))
        elif name in ("Layer", "PageBlock"):
            _collect(obj, ox, oy, runs, rules, budget, depth + 1, images)
        elif name == "CompositeObject":
            continue  # vector graphics units (seals, logos): not text


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
class _Document:
    """The first document of an OFD package: its pages, page templates and image resources."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.path = path = Path(path)
        if not data:
            raise ReadError(path, "文件为空")
        self.pkg = pkg = _Package(data, path)
        if not pkg.has("OFD.xml"):
            raise ReadError(path, _CORRUPT)
        ofd = pkg.xml("OFD.xml")
        self.body = body = _child(ofd, "DocBody")
        root_loc = _text_of(body, "DocRoot") if body is not None else ""
        if not root_loc:
            raise ReadError(path, _CORRUPT)
        doc_path = _resolve("", root_loc)
        self.dir = posixpath.dirname(doc_path)
        self.doc = doc = pkg.xml(doc_path)
        pages_el = _child(doc, "Pages")
        self.pages = _children(pages_el, "Page") if pages_el is not None else []
        if len(self.pages) > MAX_PAGES:
            raise ReadError(path, _TOO_MANY_PAGES.format(n=len(self.pages), max=MAX_PAGES))
        if not self.pages:
            raise ReadError(path, "OFD 文件没有任何页面；请检查文件是否完整")
        self.common = _child(doc, "CommonData")
        self.templates: dict[str, str] = {}
        for t in _children(self.common, "TemplatePage") if self.common is not None else []:
            if t.get("ID") and t.get("BaseLoc"):
                self.templates[t.get("ID")] = _resolve(self.dir, t.get("BaseLoc"))

    def page(self, n: int) -> tuple[list[Run], Rules, list[tuple[str, float]], list[int]]:
        """Page ``n`` (1-based): its text runs, table rules and images (resource id, area), and
        what is left of its text-object budget."""
        runs: list[Run] = []
        rules = Rules()
        images: list[tuple[str, float]] = []
        budget = [MAX_PAGE_CODES]
        page = self.pkg.xml(_resolve(self.dir, self.pages[n - 1].get("BaseLoc") or ""))
        parts = []
        for tpl in _children(page, "Template"):
            tloc = self.templates.get(tpl.get("TemplateID") or "")
            if tloc and self.pkg.has(tloc):
                parts.append(self.pkg.xml(tloc))
        parts.append(page)
        for part in parts:
            content = _child(part, "Content")
            if content is not None:
                _collect(content, 0.0, 0.0, runs, rules, budget, images=images)
        return runs, rules, images, budget

    def media(self) -> dict[str, str]:
        """Image resources: ID -> the package path of its file (DocumentRes and PublicRes)."""
        out: dict[str, str] = {}
        for kind in ("DocumentRes", "PublicRes"):
            for el in _children(self.common, kind) if self.common is not None else []:
                loc = _resolve(self.dir, (el.text or "").strip())
                if not loc or not self.pkg.has(loc):
                    continue
                res = self.pkg.xml(loc)
                base = _resolve(posixpath.dirname(loc), res.get("BaseLoc") or "")
                medias = _child(res, "MultiMedias")
                for m in _children(medias, "MultiMedia") if medias is not None else []:
                    f = _text_of(m, "MediaFile")
                    if m.get("ID") and f:
                        out.setdefault(m.get("ID"), _resolve(base, f))
        return out


def page_scan(data: bytes, path: Path, page: int):
    """The scanned image of OFD page ``page`` (its largest image), decoded with the image
    reader's bounds, for OCR; ReadError when the page holds no image."""
    from .image import frame

    doc = _Document(data, Path(path))
    if not 1 <= page <= len(doc.pages):
        raise ReadError(path, f"OFD 没有第 {page} 页")
    _, _, images, _ = doc.page(page)
    media = doc.media()
    for rid, _ in sorted(images, key=lambda i: -i[1]):
        loc = media.get(rid)
        if loc and doc.pkg.has(loc):
            return frame(doc.pkg.raw(loc, MAX_IMAGE_BYTES), Path(path), 1)
    raise ReadError(path, f"OFD 第 {page} 页没有可识别的页面图像")


def read_ofd_bytes(data: bytes, path: Path, ocr: Mapping[int, OcrPage] | None = None) -> ReadResult:
    """The text of the OFD file ``data`` (its first document), repaired, with page offsets.

    Pages without text objects that draw an image (a scan packed as OFD) are read from ``ocr``
    as the PDF reader does (:class:`OcrNeeded` names the pages it lacks)."""
    path = Path(path)
    doc = _Document(data, path)
    meta = _doc_info(doc.body)
    page_els = doc.pages

    deadline = time.monotonic() + TIME_BUDGET_S
    page_content: list[tuple[list[Run], Rules]] = []
    skipped: list[int] = []
    scanned: list[int] = []
    for n in range(1, len(page_els) + 1):
        if time.monotonic() > deadline:
            raise ReadError(path, _TOO_SLOW.format(s=int(TIME_BUDGET_S)))
        try:
            runs, rules, images, budget = doc.page(n)
        except ReadError as exc:
            if "DTD" in exc.reason or "压缩炸弹" in exc.reason or "恶意" in exc.reason:
                raise
            skipped.append(n)
            runs, rules, images, budget = [], Rules(), [], [0]
        if budget[0] < 0 or sum(len(r.text) for r in runs) > MAX_PAGE_CHARS:
            skipped.append(n)
            runs = []
        elif images and not any(r.text.strip() for r in runs):
            scanned.append(n)
        page_content.append((runs, rules))
    if len(skipped) == len(page_els):
        raise ReadError(path, _CORRUPT)

    all_runs = [r for runs, _ in page_content for r in runs if r.text.strip()]
    if scanned and (ocr is not None or not all_runs):
        missing = [n for n in scanned if ocr is None or n not in ocr]
        if missing:
            raise OcrNeeded(path, missing, len(page_els), _NO_TEXT)
    elif not all_runs:  # nothing to recognise either: graphics, seals
        raise ReadError(path, _NO_TEXT if ocr is None else _ONLY_GRAPHICS)
    # Indents in ems of the body text: the commonest font size, from the leftmost body line.
    em, left = 1.0, 0.0
    if all_runs:
        sizes = Counter()
        for r in all_runs:
            sizes[round(r.size, 1)] += len(r.text)
        em = sizes.most_common(1)[0][0] or 1.0
        body_runs = [r for r in all_runs if abs(r.size - em) < 0.15 * em] or all_runs
        left = min(r.x0 for r in body_runs)
    raw_pages = [page_lines(runs, rules, em, left) for runs, rules in page_content]
    if scanned and ocr is not None:
        for n in scanned:
            raw_pages[n - 1] = ocr_page_text(ocr[n])
        meta.update(ocr_meta(ocr, scanned))
    text, offsets = repair_pdf_pages(raw_pages)
    if not text.strip():
        raise ReadError(path, _NO_TEXT)
    result = finish(text, "ofd", [], meta, None, offsets)
    if not result.text.strip():
        raise ReadError(path, _NO_TEXT)
    if skipped:
        result.meta["skipped_pages"] = ",".join(map(str, skipped))
        result.warnings.append(_SKIPPED.format(pages=page_list(skipped)))
    return result


READER = Reader("ofd", (".ofd",), read_ofd_bytes, ocr=True)
