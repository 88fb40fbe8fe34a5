"""PDF reader (the text layer; scanned pages from OCR) and the repair of text extracted from PDFs.

:func:`read_pdf` opens a PDF with pypdf, extracts each page's text and hands the pages to
:func:`repair_pdf_pages`, which undoes what PDF layout does to Chinese text:

* hard line breaks inside sentences are joined, also across page boundaries; a line break
  stays where a paragraph ends: before an indented line (pages are extracted in pypdf's layout
  mode, which keeps the first-line indent), after a short line that ends a sentence, before a
  heading such as ``一、`` ``（一）`` ``1.`` ``第一条`` ``附件`` after sentence-final
  punctuation, before the next item of a numbered list, around a date line;
* spaces that extraction puts between Chinese characters (and between Chinese and digits) go;
  spaces between Latin words stay;
* page-number lines (``— 1 —``, ``- 1 -``, ``－1－``, ``第 1 页``, a bare number at the top or
  bottom of every page) and running headers/footers repeated on many pages go;
* full-width digits ``０-９`` become ASCII digits;
* on pages whose fonts map Chinese punctuation to ASCII (``落实.`` ``«方案»``), the punctuation
  is mapped back (``落实。`` ``《方案》``).

A page with a ruled table (:func:`_table_page_text`) is laid out from its characters with
pypdfium2, as the OFD reader lays out its pages (:mod:`.layout`): each row one line, cells
separated by a tab, wrapped cell text joined; the repair keeps rows on lines of their own and
joins a row that a page break split. Other pages are read by pypdf alone.

Everything else is kept verbatim (full-width punctuation, 〔〕, 《》, ``**``, ``××``). Paragraphs
are separated by one ``\\n``; page N's text starts at ``pages[N-1]``.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import threading
import time
import unicodedata
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from yuanwen.conventions import (
    CJK_PUNCT, CN_DIGITS, CN_NUMERAL_CHARS, CN_SMALL, FULLWIDTH_DIGITS, HAN, HAN_SUPPLEMENTARY, cn_int,
    page_ranges,
)
from yuanwen.errors import OcrNeeded, ReadError
from yuanwen.models import OcrPage, ReadResult

from ..normalise import is_garbage
from ._common import NO_TEXT, Reader, finish, read_bytes
from .layout import (
    RULE_THIN, Rules, Run, join_split_rows, page_lines, snap_rules, table_rows, take_rows, unwrap_rows,
)
from .scanned import ocr_meta, ocr_page_text

__all__ = ["read_pdf", "repair_pdf_pages", "READER"]

# ---------------------------------------------------------------------------------------------
# Limits against hostile files
# ---------------------------------------------------------------------------------------------
#: A page with more extracted characters (spaces aside) is skipped; a real A4 page holds ~3,000.
MAX_PAGE_CHARS = 100_000
#: Reading stops with a ReadError once extraction has taken this long (checked between pages).
TIME_BUDGET_S = 300.0
#: Tighter pypdf limits than its defaults (75 MB per stream), applied while reading.
_PYPDF_LIMITS = {
    "zlib_maximum_output_length": 20_000_000,
    "lzw_maximum_output_length": 20_000_000,
    "run_length_maximum_output_length": 20_000_000,
    "brotli_maximum_output_length": 20_000_000,
    "array_based_stream_maximum_output_length": 20_000_000,
    "stream_decoding_work_maximum_length": 60_000_000,
    "xform_maximum_invocations_per_extraction": 1_000,
}

_ENCRYPTED = "PDF 已加密，无法读取；请先解除密码保护后再导入"
_ENCRYPTED_UNSUPPORTED = "PDF 已加密（加密方式无法处理）；请先解除密码保护后再导入"
_NOT_PDF = "不是有效的 PDF 文件（缺少 %PDF 文件头）；请确认文件格式，或另存为 PDF 后再导入"
_CORRUPT = "PDF 文件已损坏或不完整，无法解析；请重新获取完整的文件后再导入"
_NO_TEXT = "PDF 没有文字层（可能是扫描件），需要文字识别（OCR）后才能导入"
_NOTHING_RECOGNISED = "PDF 没有文字层，文字识别（OCR）也没有识别出文字（空白页，或图像中没有清晰的文字）"
_NO_PAGES = "PDF 没有任何页面；请检查文件是否完整"
_TOO_MANY = "PDF 页数过多（{n} 页，上限 {max} 页）；请拆分成较小的文件后再导入"
_TOO_SLOW = "PDF 解析超时（超过 {s} 秒，可能是异常或恶意构造的文件）；请另存为新的 PDF 后再导入"
_TOO_BIG = "PDF 内容异常庞大（可能是压缩炸弹），已停止解析；请确认文件来源后另存为新的 PDF 再导入"
_GARBLED_ALL = ("PDF 的文字层是乱码（{pages}：字体缺少 Unicode 映射，提取出的不是文字），"
                "无法导入；请先做 OCR，或另存为带正确文字层的 PDF 后再导入")
_GARBLED_SOME = "{pages}的文字层是乱码（字体缺少 Unicode 映射），这些页未导入"
_ALL_PAGES_FAILED = "PDF 所有页面都无法提取文字（文件可能已损坏）；请另存为新的 PDF 后再导入"


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------
def read_pdf(path: Path, max_pages: int = 2000, ocr: Mapping[int, OcrPage] | None = None) -> ReadResult:
    """Read the text layer of the PDF at ``path``, repaired, with page offsets and PDF info.

    Raises :class:`ReadError` for encrypted, damaged, textless (scanned) or oversized PDFs.
    ``meta`` holds ``pdf_title``, ``pdf_author``, ``created`` (ISO) when the PDF info has
    them, and ``skipped_pages`` (comma-separated page numbers) when some pages failed.

    Pages without a text layer that hold an image (scanned pages), and pages whose text layer
    is garbled, are read from ``ocr`` (page number -> recognised page) when it is given:
    :class:`OcrNeeded` names the pages it lacks. Without ``ocr``, a PDF with no text at all
    raises :class:`OcrNeeded` for its scanned pages, and scanned pages of a PDF that has text
    elsewhere are left out, as before.
    """
    path = Path(path)
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, FileNotDecryptedError
    except ImportError as exc:  # pragma: no cover - pypdf is a dependency
        raise ReadError(path, "读取 PDF 需要 pypdf；请先安装：pip install pypdf") from exc

    data = read_bytes(path)
    if not data:
        raise ReadError(path, "文件为空")
    if b"%PDF-" not in data[:1024]:
        raise ReadError(path, _NOT_PDF)

    with _limits():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    decrypted = reader.decrypt("")
                except (DependencyError, NotImplementedError) as exc:
                    raise ReadError(path, _ENCRYPTED_UNSUPPORTED) from exc
                except Exception as exc:
                    raise ReadError(path, _ENCRYPTED) from exc
                if not decrypted:  # PasswordType.NOT_DECRYPTED == 0
                    raise ReadError(path, _ENCRYPTED)
            # The page count the file declares, checked before the page tree is walked (a huge
            # tree takes long to walk, and a failure there would call the file damaged).
            declared = _declared_page_count(reader)
            if declared is not None and declared > max_pages:
                raise ReadError(path, _TOO_MANY.format(n=declared, max=max_pages))
            n_pages = len(reader.pages)
        except ReadError:
            raise
        except FileNotDecryptedError as exc:
            raise ReadError(path, _ENCRYPTED) from exc
        except MemoryError as exc:
            raise ReadError(path, _TOO_BIG) from exc
        except Exception as exc:  # any pypdf (or lower level) error while opening or parsing
            raise ReadError(path, _CORRUPT) from exc
        if n_pages == 0:
            raise ReadError(path, _NO_PAGES)
        if n_pages > max_pages:
            raise ReadError(path, _TOO_MANY.format(n=n_pages, max=max_pages))

        meta = _pdf_meta(reader)
        raw_pages: list[str] = []
        skipped: list[int] = []
        deadline = time.monotonic() + TIME_BUDGET_S
        for i in range(n_pages):
            if time.monotonic() > deadline:
                raise ReadError(path, _TOO_SLOW.format(s=int(TIME_BUDGET_S)))
            try:
                text = _page_text(reader, i)
            except FileNotDecryptedError as exc:
                raise ReadError(path, _ENCRYPTED) from exc
            except Exception:  # pypdf errors and limits, MemoryError, RecursionError, ...
                text = None
            if text is None or len(text) - text.count(" ") > MAX_PAGE_CHARS:
                skipped.append(i + 1)
                text = ""
            raw_pages.append(text)
        scanned = [i + 1 for i, t in enumerate(raw_pages)
                   if not t.strip() and i + 1 not in skipped and _has_image(reader, i)]

    if len(skipped) == n_pages:
        raise ReadError(path, _ALL_PAGES_FAILED)
    # Pages whose text is not language (CID fonts without a ToUnicode map) are refused: stored,
    # they would be searchable and quotable garbage. OCR reads them when it is on.
    garbled = [i + 1 for i, t in enumerate(raw_pages) if is_garbage(t)]
    for page in garbled:
        raw_pages[page - 1] = ""
    has_text = any(t.strip() for t in raw_pages)
    if not has_text and not scanned and not garbled:
        # no text anywhere and no image found (inline images, text drawn as paths): a scan in a
        # form the image check does not see; every readable page is rendered and recognised
        scanned = [i + 1 for i in range(n_pages) if i + 1 not in skipped]
    recognise = sorted(set(scanned) | set(garbled))
    if recognise and (ocr is not None or not has_text):
        missing = [n for n in recognise if ocr is None or n not in ocr]
        if missing:
            reason = _GARBLED_ALL.format(pages=page_list(garbled)) if not scanned else _NO_TEXT
            raise OcrNeeded(path, missing, n_pages, reason)
        assert ocr is not None
        for n in recognise:
            raw_pages[n - 1] = ocr_page_text(ocr[n])
        meta.update(ocr_meta(ocr, recognise))
        garbled = []
    elif recognise:  # OCR off: the text pages go in; the pages left for OCR are remembered
        meta["ocr_skipped"] = ",".join(map(str, recognise))
    if garbled and not any(t.strip() for t in raw_pages):
        raise ReadError(path, _GARBLED_ALL.format(pages=page_list(garbled)))
    text, offsets = repair_pdf_pages(raw_pages)
    if not text.strip():
        raise ReadError(path, _NOTHING_RECOGNISED if "ocr_pages" in meta else _NO_TEXT)
    if skipped:
        meta["skipped_pages"] = ",".join(map(str, skipped))
    warnings = []
    if garbled:
        meta["garbled_pages"] = ",".join(map(str, garbled))
        warnings.append(_GARBLED_SOME.format(pages=page_list(garbled)))
    return ReadResult(text=text, format="pdf", pages=offsets, meta=meta, warnings=warnings)


def _has_image(reader, index: int) -> bool:
    """Whether page ``index`` draws an image (directly or in a form): a scanned page."""
    try:
        res = reader.pages[index].get("/Resources")
        res = res.get_object() if res is not None else None
        xobjects = res.get("/XObject") if res is not None else None
        todo = [xobjects.get_object()] if xobjects is not None else []
        seen = 0
        while todo and seen < 200:
            for obj in todo.pop().values():
                seen += 1
                obj = obj.get_object()
                kind = obj.get("/Subtype")
                if kind == "/Image":
                    return True
                if kind == "/Form":
                    inner = obj.get("/Resources")
                    inner = inner.get_object().get("/XObject") if inner is not None else None
                    if inner is not None:
                        todo.append(inner.get_object())
    except Exception:  # noqa: BLE001 - a damaged resource dictionary: not a scan we can tell
        return False
    return False


def page_list(pages: list[int]) -> str:
    """Page numbers for the user, runs joined: ``第 3、5–7 页``."""
    return f"第 {page_ranges(pages)} 页"


def _declared_page_count(reader) -> int | None:
    """``/Root /Pages /Count``: the number of pages the file says it has; None if unreadable."""
    try:
        count = reader.trailer["/Root"]["/Pages"]["/Count"]
        return int(count)
    except Exception:  # noqa: BLE001 - a damaged tree is found (and named) by the full walk
        return None


@contextlib.contextmanager
def _limits() -> Iterator[None]:
    """pypdf's resource limits, tightened for the duration of a read (where pypdf has them)."""
    try:
        from pypdf import apply_configuration, get_configuration
    except ImportError:  # older pypdf: its module-level defaults apply
        yield
        return
    known = {k: v for k, v in _PYPDF_LIMITS.items() if hasattr(get_configuration(), k)}
    with apply_configuration(**known):
        yield


_WIDE_GAP = re.compile(r"\S {4,}\S")


def _page_text(reader, index: int) -> str:
    """One page's text: layout mode (keeps indentation, a paragraph cue), else plain mode;
    a page with a ruled table is laid out from its characters (:func:`_table_page_text`).

    Plain mode (content-stream order) is used when layout mode fails, finds no text, or the
    page looks like several columns side by side, which layout mode would interleave. The
    table check comes after pypdf has read the page within its limits (a page it refuses never
    reaches pdfium).
    """
    page = reader.pages[index]
    try:
        text = page.extract_text(extraction_mode="layout", layout_mode_space_vertically=False,
                                 layout_mode_strip_rotated=False)
    except MemoryError:
        raise
    except Exception:
        text = None
    if text is None or not text.strip() or _looks_multi_column(text):
        text = page.extract_text()
    if text and text.strip():
        table = _table_page_text(reader, index)
        if table is not None:
            text = table
    if index == len(reader.pages) - 1:  # pages are read in order: the last one closes pdfium's
        _close_pdfium(reader)
    return text


def _looks_multi_column(text: str) -> bool:
    """True when many lines of a layout-mode page hold a wide gap (columns side by side)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    gapped = sum(1 for ln in lines if _WIDE_GAP.search(ln) and not _TOC_END.search(ln))
    return gapped >= 5 and gapped >= 0.3 * len(lines)


# ---------------------------------------------------------------------------------------------
# Ruled tables (pypdfium2: character boxes and the paths that draw the rules)
# ---------------------------------------------------------------------------------------------
#: Page objects (paths, text, forms) and path segments looked at per page for table rules.
MAX_PAGE_OBJECTS = 20_000
MAX_PAGE_SEGMENTS = 200_000
MAX_PAGE_RULES = 5_000
_PT_MM = 25.4 / 72  # PDF points to millimetres (the unit of :mod:`.layout`)
_PDFIUM_LOCK = threading.Lock()  # PDFium is not thread-safe
_PDFIUM_DOCS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pypdf reader -> doc


def _table_page_text(reader, index: int) -> str | None:
    """Page ``index`` laid out from its characters when it holds a ruled table (two cells or
    more in a row), each row one line of cells (:func:`~ingest.readers.layout.page_lines`);
    None for any other page (read as before) or when pypdfium2 cannot read it."""
    with _PDFIUM_LOCK:
        doc = _pdfium_doc(reader)
        if doc is None:
            return None
        try:
            page = doc[index]
        except Exception:  # noqa: BLE001 - pdfium cannot load the page: pypdf's text stands
            return None
        try:
            return _laid_out_table_page(page)
        except Exception:  # noqa: BLE001 - same: a table is a refinement, never a failure
            return None
        finally:
            page.close()


def _pdfium_doc(reader):
    """The pypdfium2 document of ``reader``'s bytes, opened once per reader; None if it fails."""
    if reader in _PDFIUM_DOCS:
        return _PDFIUM_DOCS[reader]
    doc = None
    try:
        import pypdfium2 as pdfium

        data = reader.stream.getvalue()
        doc = pdfium.PdfDocument(data)
        weakref.finalize(reader, doc.close)  # a read that stops early closes it with the reader
    except Exception:  # noqa: BLE001 - pypdfium2 missing or the file beyond it: no tables
        doc = None
    _PDFIUM_DOCS[reader] = doc
    return doc


def _close_pdfium(reader) -> None:
    with _PDFIUM_LOCK:
        doc = _PDFIUM_DOCS.pop(reader, None)
        if doc is not None:
            doc.close()


def _laid_out_table_page(page) -> str | None:
    left, bottom, right, top = page.get_bbox()
    rot = page.get_rotation() % 360

    def to_mm(x: float, y: float) -> tuple[float, float]:
        """User space (points, y up) to the page as shown (mm, y down, rotation applied)."""
        if rot == 90:
            x, y = y - bottom, x - left
        elif rot == 180:
            x, y = right - x, y - bottom
        elif rot == 270:
            x, y = top - y, right - x
        else:
            x, y = x - left, top - y
        return x * _PT_MM, y * _PT_MM

    rules = _page_rules(page, to_mm)
    if len(rules.h) < 2 or len(rules.v) < 2:
        return None
    runs = _page_runs(page, to_mm)
    if runs is None:
        return None
    rules = snap_rules(rules)
    ruled, _ = table_rows(runs, rules)
    if not any(len(cells) >= 2 for _, _, cells in ruled):
        return None
    sizes: Counter[float] = Counter()
    for r in runs:
        sizes[round(r.size, 1)] += len(r.text)
    em = sizes.most_common(1)[0][0] or 1.0
    body = [r for r in runs if abs(r.size - em) < 0.15 * em] or runs
    return page_lines(runs, rules, em, min(r.x0 for r in body))


def _page_rules(page, to_mm) -> Rules:
    """The horizontal and vertical straight edges of the page's visible paths, in mm."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    rules = Rules()
    budget = [MAX_PAGE_OBJECTS, MAX_PAGE_SEGMENTS]
    fill, stroke = ctypes.c_int(), ctypes.c_int()
    px, py = ctypes.c_float(), ctypes.c_float()
    r, g, b, a = (ctypes.c_uint() for _ in range(4))
    matrix = pdfium_c.FS_MATRIX()

    def visible(obj) -> bool:
        if not pdfium_c.FPDFPath_GetDrawMode(obj, fill, stroke):
            return False
        if stroke.value:
            ok = pdfium_c.FPDFPageObj_GetStrokeColor(obj, r, g, b, a)
            return not ok or (a.value > 0 and min(r.value, g.value, b.value) < 240)
        if fill.value:
            ok = pdfium_c.FPDFPageObj_GetFillColor(obj, r, g, b, a)
            return not ok or (a.value > 0 and min(r.value, g.value, b.value) < 240)
        return False

    def edges(obj, outer: list[tuple[float, ...]]) -> None:
        if not pdfium_c.FPDFPageObj_GetMatrix(obj, matrix):
            return
        chain = [(matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f), *outer]
        n = pdfium_c.FPDFPath_CountSegments(obj)
        if n <= 0 or n > budget[1]:
            budget[1] = 0
            return
        budget[1] -= n
        start = prev = None
        for i in range(n):
            seg = pdfium_c.FPDFPath_GetPathSegment(obj, i)
            if not seg or not pdfium_c.FPDFPathSegment_GetPoint(seg, px, py):
                return
            x, y = px.value, py.value
            for ma, mb, mc, md, me, mf in chain:
                x, y = ma * x + mc * y + me, mb * x + md * y + mf
            point = to_mm(x, y)
            kind = pdfium_c.FPDFPathSegment_GetType(seg)
            if kind == pdfium_c.FPDF_SEGMENT_MOVETO:
                start = prev = point
                continue
            if kind == pdfium_c.FPDF_SEGMENT_LINETO and prev is not None:
                _edge(prev, point, rules)
            prev = point
            if pdfium_c.FPDFPathSegment_GetClose(seg) and start is not None:
                _edge(prev, start, rules)
                prev = start

    def walk(get, count: int, outer: list[tuple[float, ...]], depth: int) -> None:
        for i in range(count):
            budget[0] -= 1
            if budget[0] < 0 or budget[1] <= 0 or len(rules.h) + len(rules.v) >= MAX_PAGE_RULES:
                return
            obj = get(i)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_PATH and visible(obj):
                edges(obj, outer)
            elif kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 8:
                if not pdfium_c.FPDFPageObj_GetMatrix(obj, matrix):
                    continue
                m = (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)
                walk(lambda k, o=obj: pdfium_c.FPDFFormObj_GetObject(o, k),
                     pdfium_c.FPDFFormObj_CountObjects(obj), [m, *outer], depth + 1)

    walk(lambda k: pdfium_c.FPDFPage_GetObject(page, k), pdfium_c.FPDFPage_CountObjects(page), [], 0)
    return rules


def _edge(p: tuple[float, float], q: tuple[float, float], rules: Rules) -> None:
    """A straight edge from ``p`` to ``q`` (mm) as a rule when it is horizontal or vertical."""
    (x0, y0), (x1, y1) = p, q
    if abs(y1 - y0) <= 0.2 and abs(x1 - x0) >= 2 * RULE_THIN:
        rules.h.append(((y0 + y1) / 2, min(x0, x1), max(x0, x1)))
    elif abs(x1 - x0) <= 0.2 and abs(y1 - y0) >= 2 * RULE_THIN:
        rules.v.append(((x0 + x1) / 2, min(y0, y1), max(y0, y1)))


def _page_runs(page, to_mm) -> list[Run] | None:
    """The page's characters as runs of text (a run ends at a space, a gap or a new line),
    in mm; None when the page holds more characters than a page may."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        n = textpage.count_chars()
        if n <= 0 or n > MAX_PAGE_CHARS:
            return None
        ox, oy = ctypes.c_double(), ctypes.c_double()
        box = pdfium_c.FS_RECTF()
        runs: list[Run] = []
        cur: Run | None = None
        for i in range(n):
            code = pdfium_c.FPDFText_GetUnicode(textpage, i)
            if pdfium_c.FPDFText_IsGenerated(textpage, i) == 1 or not code:
                continue
            ch = chr(code) if code < 0x110000 else "\ufffd"
            if ch.isspace() or not ch.isprintable():
                cur = None
                continue
            if not pdfium_c.FPDFText_GetCharOrigin(textpage, i, ox, oy):
                continue
            if not pdfium_c.FPDFText_GetLooseCharBox(textpage, i, box):
                continue
            corners = [to_mm(box.left, box.bottom), to_mm(box.right, box.top)]
            x0, x1 = min(c[0] for c in corners), max(c[0] for c in corners)
            y0, y1 = min(c[1] for c in corners), max(c[1] for c in corners)
            _, base = to_mm(ox.value, oy.value)
            size = pdfium_c.FPDFText_GetFontSize(textpage, i) * _PT_MM
            if not 0.5 < size < 200:
                size = max(y1 - y0, 0.5)
            if cur is not None and (abs(base - cur.y) <= 0.3 * size
                                    and cur.x1 - 0.5 * size <= x0 <= cur.x1 + 0.3 * size):
                cur.text += ch
                cur.x1 = max(cur.x1, x1)
                continue
            cur = Run(x0, x1, base, size, ch)
            runs.append(cur)
        return runs
    finally:
        textpage.close()


#: Values PDF producers put in the info dictionary when the author typed nothing.
_PLACEHOLDERS = {
    "", "标题", "作者", "主题", "创建者", "生产者", "关键字", "科目", "无标题", "untitled", "title",
    "author", "user", "administrator", "admin", "owner", "unknown", "none", "null",
}


def _pdf_meta(reader) -> dict[str, str]:
    """``pdf_title``, ``pdf_author`` and ``created`` from the PDF info, placeholders left out."""
    meta: dict[str, str] = {}
    try:
        info = reader.metadata
        if info is None:
            return meta
        items = {str(k): info.get(k) for k in ("/Title", "/Author", "/CreationDate")}
    except Exception:
        return meta
    for key, name in (("/Title", "pdf_title"), ("/Author", "pdf_author")):
        value = _info_str(items.get(key))
        if value and value.strip().lower() not in _PLACEHOLDERS:
            meta[name] = value.strip()
    created = _pdf_date(_info_str(items.get("/CreationDate")))
    if created:
        meta["created"] = created
    return meta


def _info_str(value) -> str | None:
    if value is None:
        return None
    try:
        s = str(value)
    except Exception:
        return None
    s = "".join(ch for ch in s if ch.isprintable() or ch == " ")
    return s or None


_PDF_DATE = re.compile(
    r"[(\s]*(?:D:)?(?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?"
    r"(?:(?P<z>Z)|(?P<sign>[+-])(?P<th>\d{2})'?(?P<tm>\d{2})?'?)?"
)


def _pdf_date(value: str | None) -> str | None:
    """A PDF date (``D:20240122082428+08'00'``, also wrapped in parentheses) as ISO 8601."""
    if not value:
        return None
    m = _PDF_DATE.match(value)
    if not m:
        return None
    g = m.groupdict()
    try:
        dt = datetime(int(g["y"]), int(g["mo"] or 1), int(g["d"] or 1), int(g["h"] or 0),
                      int(g["mi"] or 0), int(g["s"] or 0))
    except ValueError:
        return None
    tz = None
    if g["z"]:
        tz = timezone.utc
    elif g["sign"]:
        hours, minutes = int(g["th"]), int(g["tm"] or 0)
        if hours <= 14 and minutes < 60:
            delta = timedelta(hours=hours, minutes=minutes)
            tz = timezone(-delta if g["sign"] == "-" else delta)
    if tz is not None:
        dt = dt.replace(tzinfo=tz)
    return dt.isoformat()


# ---------------------------------------------------------------------------------------------
# Repair
# ---------------------------------------------------------------------------------------------
_HAN = HAN + HAN_SUPPLEMENTARY
# Han and CJK punctuation and full-width forms (not full-width digits, which become ASCII first).
_CJK = f"{_HAN}{CJK_PUNCT}"
_SPACES = " \t\u00a0\u2002\u2003\u2009"  # not U+3000: an ideographic space is a typed character
_WS_ALL = _SPACES + "\u3000\u200b\ufeff"

# Spaces between two CJK characters, or between CJK and a digit (``2024 年`` ``第 14 组``).
_CJK_GAP = re.compile(
    f"(?<=[{_CJK}])[{_SPACES}]+(?=[{_CJK}0-9])|(?<=[0-9])[{_SPACES}]+(?=[{_CJK}])"
)
_MULTI_SPACE = re.compile(f"[{_SPACES}]{{2,}}")

_DASH = "—–\\-－―─‒~～_·•"
_PAGE_DECORATED = re.compile(
    rf"[{_DASH}]+\s*[0-9０-９]{{1,4}}\s*[{_DASH}]*"
    rf"|[{_DASH}]*\s*[0-9０-９]{{1,4}}\s*[{_DASH}]+"
    r"|第\s*[0-9０-９]{1,4}\s*页(?:\s*[,，/／]?\s*共\s*[0-9０-９]{1,4}\s*页)?"
    r"|共\s*[0-9０-９]{1,4}\s*页\s*[,，]?\s*第\s*[0-9０-９]{1,4}\s*页"
    r"|[0-9０-９]{1,4}\s*[/／]\s*[0-9０-９]{1,4}"
    r"|(?i:page\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?)"
)
_PAGE_BARE = re.compile(r"[0-9０-９]{1,4}")

# Headings and list items that start a paragraph.
_HEADING = re.compile(
    rf"(?:第[{CN_NUMERAL_CHARS}0-9]+[编章节条款部分]"
    rf"|[{CN_SMALL}百]+、"
    rf"|[（(][{CN_SMALL}百0-9]+[)）]"
    r"|[0-9]{1,3}(?:[、．]|\.(?![0-9]))"
    r"|[①-⑳]"
    rf"|附件[0-9{CN_SMALL}]*[:：]?$"
    rf"|附件[0-9{CN_SMALL}]+"
    r"|附[:：]"
    r")"
)
_SENTENCE_FINAL = set("。！？；：!?;:")
_CLOSERS = set("”’」』）)》〕】")

# Pages whose fonts map Chinese punctuation to ASCII: ``落实.`` ``单位:`` ``«方案»``.
_ASCII_AFTER_HAN = re.compile(f"(?<=[{_HAN}])[,.:;]")
_CJK_STYLE_PUNCT = re.compile("[，。：；]")
_ASCII_PUNCT_MAP = {",": "，", ".": "。", ":": "：", ";": "；", "?": "？", "!": "！"}


@dataclass
class _Line:
    text: str  # cleaned, stripped
    indent: int  # leading whitespace characters in the extracted line
    page: int
    width: float = 0.0  # right edge in em: indent + text width


def repair_pdf_pages(pages: list[str]) -> tuple[str, list[int]]:
    """Repair the extracted text of each page and join the pages into one text.

    Returns the text and, for each page, the offset at which it starts (page N starts at
    ``offsets[N-1]``; a page without text starts where the next text goes). Paragraphs are
    separated by one ``\\n``; a sentence running over a page boundary is joined. Table rows
    (row lines of :func:`~ingest.readers.layout.row_line`) come out on lines of their own,
    cells separated by a tab.
    """
    pages = join_split_rows(pages, lambda s: _page_number_key(s) is not None)
    pages, rows = take_rows(pages, lambda s: _clean_line(s, False))
    text, offsets = _repair(pages)
    if rows:
        text, offsets = unwrap_rows(text, offsets, rows)
    return text, offsets


def _repair(pages: list[str]) -> tuple[str, list[int]]:
    """:func:`repair_pdf_pages` without the table rows (placeholders pass through)."""
    raw = [[_split_indent(line) for line in (page or "").splitlines()] for page in pages]
    raw = [[(ind, s) for ind, s in page if s] for page in raw]
    _drop_page_furniture(raw)

    lines: list[_Line] = []
    for p, page in enumerate(raw):
        cjk_ascii = _page_uses_ascii_punct(page)
        for ind, s in page:
            s = _clean_line(s, cjk_ascii)
            if s:
                lines.append(_Line(s, ind, p))
    for ln in lines:
        ln.width = ln.indent + _text_width(ln.text)
    doc_full = _full_width(lines)
    page_full = {
        p: _full_width(group, fallback=doc_full)
        for p, group in _by_page(lines).items()
    }
    margin = _left_margin(lines, doc_full)
    # The head of the first page (版头, 发文字号, title), up to the first sentence: its short
    # lines stand alone (a wrapped title is joined by the metadata step, not here).
    head_end = next((i for i, ln in enumerate(lines) if _ends_sentence(ln.text)), len(lines))
    head_end = min(head_end, sum(1 for ln in lines if ln.page == (lines[0].page if lines else 0)))

    out: list[str] = []
    length = 0
    offsets: list[int] = []
    state = _Paragraph()
    for i, ln in enumerate(lines):
        sep = ""
        if i == 0:
            state = _Paragraph(marker=_list_marker(ln.text), page=ln.page, first=0)
        else:
            prev = lines[i - 1]
            sep = _separator(prev, ln, state, page_full[prev.page], margin, head=i <= head_end)
            if sep == "\n":
                state = _Paragraph(marker=_list_marker(ln.text), page=ln.page, first=i)
            else:
                if i - 1 != state.first and prev.page == state.page:
                    state.ref = prev.width if state.ref is None else max(state.ref, prev.width)
                if ln.page != state.page:
                    state.page, state.ref = ln.page, None  # widths compare within a page
        out.append(sep)
        length += len(sep)
        while len(offsets) <= ln.page:
            offsets.append(length)
        out.append(ln.text)
        length += len(ln.text)
    while len(offsets) < len(pages):
        offsets.append(length)
    return "".join(out), offsets


def _split_indent(line: str) -> tuple[int, str]:
    """The leading whitespace width (characters; a tab counts 2) and the stripped line."""
    stripped = line.lstrip(_WS_ALL)
    lead = line[: len(line) - len(stripped)]
    return len(lead) + lead.count("\t"), stripped.rstrip(_WS_ALL)


def _page_number_key(s: str) -> str | None:
    """``"decorated"`` for a page-number line, ``"bare"`` for a lone number, else None."""
    t = s.strip(_WS_ALL)
    if _PAGE_DECORATED.fullmatch(t):
        return "decorated"
    if _PAGE_BARE.fullmatch(t):
        return "bare"
    return None


def _furniture_key(s: str) -> str:
    """A running header/footer compared without spaces and with any number as ``#``."""
    t = re.sub(f"[{_WS_ALL}]+", "", s)
    return re.sub("[0-9０-９]+", "#", t)


def _drop_page_furniture(pages: list[list[tuple[int, str]]]) -> None:
    """Remove page-number lines and running headers/footers, in place."""
    drop: set[tuple[int, int]] = set()
    # Decorated page numbers (``— 1 —``, ``第 1 页``) wherever they stand on their own line.
    for p, page in enumerate(pages):
        for i, (_, s) in enumerate(page):
            if _page_number_key(s) == "decorated":
                drop.add((p, i))
    # Bare numbers as the first or last line of a page, when their values follow the page
    # numbers with one fixed shift on several pages (or equal the page number in a short file).
    bare: list[tuple[int, int, int]] = []  # (page, line index, value - page number)
    for p, page in enumerate(pages):
        rest = [i for i in range(len(page)) if (p, i) not in drop]
        for i in {rest[0], rest[-1]} if rest else ():
            if len(rest) > 1 and _page_number_key(page[i][1]) == "bare":
                value = int(page[i][1].translate(FULLWIDTH_DIGITS))
                bare.append((p, i, value - (p + 1)))
    if bare:
        shift, count = Counter(d for _, _, d in bare).most_common(1)[0]
        if count >= max(2, math.ceil(0.3 * len(pages))) or (len(pages) <= 2 and shift == 0):
            drop |= {(p, i) for p, i, d in bare if d == shift}
    # Running headers/footers: the same short line (numbers aside) first or last on many pages.
    if len(pages) >= 3:
        need = max(3, math.ceil(0.5 * len(pages)))
        for _ in range(2):  # a two-line header: its second line is an edge once the first goes
            seen: Counter[str] = Counter()
            edges: list[tuple[int, int]] = []
            for p, page in enumerate(pages):
                rest = [i for i in range(len(page)) if (p, i) not in drop]
                if len(rest) < 2:
                    continue
                for i in {rest[0], rest[-1]}:
                    edges.append((p, i))
                seen.update({_furniture_key(page[i][1]) for i in {rest[0], rest[-1]}})
            furniture = {
                k for k, c in seen.items()
                if c >= need and 2 <= len(k) <= 40 and not re.search("[。！？；]", k)
            }
            if not furniture:
                break
            drop |= {(p, i) for p, i in edges if _furniture_key(pages[p][i][1]) in furniture}
    for p, page in enumerate(pages):
        page[:] = [ln for i, ln in enumerate(page) if (p, i) not in drop]


def _page_uses_ascii_punct(page: list[tuple[int, str]]) -> bool:
    """True when a page writes Chinese sentence punctuation as ASCII (``落实.`` ``单位:``)."""
    text = "\n".join(s for _, s in page)
    ascii_hits = len(_ASCII_AFTER_HAN.findall(text))
    return ascii_hits >= 3 and ascii_hits > 2 * len(_CJK_STYLE_PUNCT.findall(text))


def _map_ascii_punct(s: str) -> str:
    """ASCII punctuation used as Chinese punctuation, mapped to its full-width form."""
    out = list(s)
    n = len(s)
    for i, ch in enumerate(s):
        before = s[i - 1] if i else ""
        after = s[i + 1] if i + 1 < n else ""
        cjk_before = bool(before) and _is_cjk(before)
        cjk_after = bool(after) and _is_cjk(after)
        if ch in _ASCII_PUNCT_MAP:
            # after Chinese (or a closing bracket), not inside a number like 3.5 or 1,000
            if (cjk_before or before in _CLOSERS or before in "»") and not (
                after.isascii() and after.isalnum()
            ):
                out[i] = _ASCII_PUNCT_MAP[ch]
        elif ch == "«":
            out[i] = "《"
        elif ch == "»":
            out[i] = "》"
        elif ch == "(":
            if cjk_before or cjk_after or not before or _fullwidth_digit(after):
                out[i] = "（"
        elif ch == ")":
            if cjk_before or cjk_after or not after or _fullwidth_digit(before):
                out[i] = "）"
    return "".join(out)


def _fullwidth_digit(ch: str) -> bool:
    return "０" <= ch <= "９" if ch else False


def _is_cjk(ch: str) -> bool:
    return bool(_CJK_CHAR.match(ch))


_CJK_CHAR = re.compile(f"[{_CJK}]")


def _clean_line(s: str, cjk_ascii: bool) -> str:
    """One line's repair: punctuation (on ASCII-punctuation pages), spaces, full-width digits."""
    if cjk_ascii:
        s = _map_ascii_punct(s)
    s = s.translate(FULLWIDTH_DIGITS)
    s = _CJK_GAP.sub("", s)
    s = _MULTI_SPACE.sub(" ", s)
    return s.strip(_WS_ALL)


def _text_width(s: str) -> float:
    """Width in em: wide characters 1, others 0.5, spaces 0 (they are layout artefacts)."""
    w = 0.0
    for ch in s:
        if ch in _WS_ALL and ch != "\u3000":
            continue
        w += 1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.5
    return w


def _by_page(lines: list[_Line]) -> dict[int, list[_Line]]:
    groups: dict[int, list[_Line]] = {}
    for ln in lines:
        groups.setdefault(ln.page, []).append(ln)
    return groups


def _full_width(lines: list[_Line], fallback: float | None = None) -> float:
    """The right edge of a full body line: the most common right edge of the longer lines.

    With ``fallback``, fewer than four long lines give ``fallback`` (a page with little text).
    """
    widths = [round(ln.width) for ln in lines if ln.width >= 8]
    if fallback is not None and len(widths) < 4:
        return fallback
    if not widths:
        return math.inf  # no line long enough to have been wrapped: every line stands alone
    counts = Counter(widths)
    top = max(widths)
    candidates = [w for w in counts if w >= 0.6 * top]  # ignore short title/signature lines
    return float(max(candidates, key=lambda w: (counts[w], w)))


def _left_margin(lines: list[_Line], full: float) -> int:
    """The indent of body lines (usually 0): the least indent of a full-width line."""
    body = [ln.indent for ln in lines if ln.width >= full - 1.5]
    return min(body) if body else min((ln.indent for ln in lines), default=0)


@dataclass
class _Paragraph:
    """The paragraph being built: its list marker, its page, and its continuation-line width."""

    marker: tuple[str, int] | None = None
    page: int = 0
    first: int = 0  # index of the paragraph's first line
    ref: float | None = None  # widest continuation line so far of this paragraph on ``page``


_MARKERS = (
    ("cn", re.compile(f"([{CN_SMALL}]{{1,3}})、")),
    ("pcn", re.compile(f"[（(]([{CN_SMALL}]{{1,3}})[)）]")),
    ("par", re.compile(r"[（(]([0-9]{1,3})[)）]")),
    ("dot", re.compile(r"([0-9]{1,3})(?:[．]|\.(?![0-9]))")),
    ("comma", re.compile(r"([0-9]{1,3})、")),
    ("circ", re.compile(r"([①-⑳])")),
)


def _list_marker(s: str) -> tuple[str, int] | None:
    """The style and number of a list marker at the start of ``s`` (``一、`` -> ("cn", 1))."""
    for style, rx in _MARKERS:
        m = rx.match(s)
        if not m:
            continue
        t = m.group(1)
        if style in ("cn", "pcn"):
            value = cn_int(t) or None
        elif style == "circ":
            value = ord(t) - ord("①") + 1
        else:
            value = int(t)
        return (style, value) if value is not None else None
    return None


_DATE_LINE = re.compile(
    f"(?:[0-9]{{4}}|[〇○零{CN_DIGITS}]{{4}})年[0-9{CN_SMALL}]{{1,2}}月"
    f"(?:[0-9{CN_SMALL}]{{1,3}}日)?"
)
_TOC_END = re.compile(r"(?:(?<!\.)\.{3,}+|(?<!…)…++|(?<!·)·{3,}+)\s*+[0-9]+$")  # linear: runs tried once


def _starts_paragraph(ln: _Line, margin: int) -> bool:
    return ln.indent >= margin + 2


def _ends_sentence(p: str) -> bool:
    if p[-1] in _SENTENCE_FINAL:
        return True
    i = len(p) - 1
    while i > 0 and p[i] in _CLOSERS:
        i -= 1
    return i < len(p) - 1 and p[i] in _SENTENCE_FINAL


def _separator(prev: _Line, ln: _Line, para: _Paragraph, full: float, margin: int,
               head: bool = False) -> str:
    """What goes between ``prev`` and ``ln``: a line break when ``ln`` starts a paragraph,
    else ``''`` (or ``' '`` between Latin words)."""
    p, s = prev.text, ln.text
    if p[-1] in "《“‘（(〔【「『" or s[0] in "，。、；：！？）》〕】」』”’,.;:!?)":
        return _glue(p, s)  # a line never ends on an opening or starts on a closing mark
    if _starts_paragraph(ln, margin):
        return "\n"  # indented: a new paragraph, or a centred line (title, signature)
    if prev.indent >= margin + 4:
        return "\n"  # after a centred or right-aligned line (title, signature, date)
    if _DATE_LINE.fullmatch(s) or _DATE_LINE.fullmatch(p):
        return "\n"  # a date on a line of its own (成文日期)
    marker = _list_marker(s)
    if marker and para.marker and marker[0] == para.marker[0] and marker[1] == para.marker[1] + 1:
        return "\n"  # the next item of the list this paragraph belongs to
    ends_sentence = _ends_sentence(p)
    heading_next = bool(_HEADING.match(s))
    if ends_sentence and heading_next:
        return "\n"
    if _TOC_END.search(p):
        return "\n"  # a table-of-contents entry ends with its page number
    ref = min(para.ref, full) if (para.ref is not None and para.page == prev.page) else full
    if prev.width < ref - 1.5:  # a short line
        if ends_sentence or heading_next or head or prev.width < 0.6 * full:
            return "\n"
        if _HEADING.match(p) and _is_short_heading(p):
            return "\n"  # e.g. ``一、总体要求`` on a line of its own
        if _HEADING.match(p) and prev.width < ref - 4 and p[-1] not in "，、；：,;:":
            return "\n"  # a long heading line ending well short of the margin
    return _glue(p, s)


def _is_short_heading(p: str) -> bool:
    return len(p) <= 20 and not re.search("[，,、]", p[3:])


def _glue(p: str, s: str) -> str:
    """What goes between two joined pieces: a space between Latin words, else nothing."""
    a, b = p[-1], s[0]
    if a.isascii() and b.isascii() and a.isalnum() and b.isalnum() and (a.isalpha() or b.isalpha()):
        return " "
    return ""


# ---------------------------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------------------------
def finish_pdf(rr: ReadResult, path: Path) -> ReadResult:
    """``rr`` cleaned like every reader's text, page starts and headings moved along."""
    heads = [(h.start, h.end, h.level) for h in rr.headings]
    out = finish(rr.text, "pdf", heads, dict(rr.meta), rr.encoding, rr.pages)
    if not out.text.strip():
        raise ReadError(path, NO_TEXT)
    out.warnings = list(rr.warnings)
    return out


def read(_: bytes | Path, path: Path, ocr: Mapping[int, OcrPage] | None = None) -> ReadResult:
    """The registry's entry: the PDF at ``path`` read, repaired and cleaned."""
    return finish_pdf(read_pdf(path, ocr=ocr), path)


READER = Reader("pdf", (".pdf",), read, reads_path=True, judge_text=False, ocr=True)
