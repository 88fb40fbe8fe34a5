"""Recognised pages into text: the layout of OCR lines on a page image, for the PDF repair.

OCR (:mod:`ingest.ocr`) gives each page as boxes of text lines with the engine's confidence.
:func:`ocr_page_text` lays a page out as the PDF reader's text-layer pages look (one line per
printed line, in reading order, the leading spaces giving the indent in characters), so that
:func:`~ingest.readers.pdf.repair_pdf_pages` joins wrapped lines into paragraphs, drops page
numbers and running heads, and restores Chinese punctuation exactly as for a text-layer PDF;
headings (``一、`` ``（一）``) and 一是/二是 then segment as in any other document.

Reading order follows the 公文 layout top to bottom: boxes whose vertical centres overlap form
one printed line, read left to right (a joint red header's ``文件`` beside its two issuers, a
版记 line with 印发机关 and date); a line with a gap of four characters or more is kept as cells
(a table row, the 版记), one line, cells separated by a tab. Lines the engine is unsure of
(score under 0.5: stray marks, a seal's star) are left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from yuanwen.models import OcrLine, OcrPage

from .layout import row_line

__all__ = ["ocr_page_text", "ocr_meta", "MIN_LINE_SCORE"]

#: Lines recognised with less confidence are dropped (noise, seal ornaments).
MIN_LINE_SCORE = 0.5
#: A gap this many characters wide inside a printed line separates cells.
_CELL_GAP = 4.0


def _kept(page: OcrPage) -> list[OcrLine]:
    """The page's lines that count as text: not blank, scored at least :data:`MIN_LINE_SCORE`."""
    return [ln for ln in page.lines if ln.text.strip() and ln.score >= MIN_LINE_SCORE]


def _display_len(s: str) -> float:
    """Characters in ems: CJK and full-width 1, ASCII half."""
    return sum(0.5 if ch.isascii() else 1.0 for ch in s if not ch.isspace())


def _em(lines: list[OcrLine]) -> float:
    """The body text's character advance in pixels (median over lines of 4+ characters)."""
    per = [(ln.box[2] - ln.box[0]) / _display_len(ln.text) for ln in lines if _display_len(ln.text) >= 4]
    if not per:
        per = [(ln.box[3] - ln.box[1]) for ln in lines]
    return max(statistics.median(per), 1.0)


def _rows(lines: list[OcrLine]) -> list[list[OcrLine]]:
    """Boxes grouped into printed lines by overlapping vertical centres, top to bottom."""
    rows: list[list[OcrLine]] = []
    for ln in sorted(lines, key=lambda ln: (ln.box[1] + ln.box[3]) / 2):
        cy, h = (ln.box[1] + ln.box[3]) / 2, ln.box[3] - ln.box[1]
        if rows:
            last = rows[-1]
            ry = sum((r.box[1] + r.box[3]) / 2 for r in last) / len(last)
            rh = min(r.box[3] - r.box[1] for r in last)
            if abs(cy - ry) <= 0.5 * min(h, rh):
                last.append(ln)
                continue
        rows.append([ln])
    return [sorted(r, key=lambda ln: ln.box[0]) for r in rows]


def _cells(row: list[OcrLine], em: float) -> list[str]:
    """A printed line's text, split into cells at gaps of :data:`_CELL_GAP` characters."""
    cells: list[str] = []
    cur = ""
    prev: OcrLine | None = None
    for ln in row:
        text = ln.text.strip()
        if prev is not None:
            gap = ln.box[0] - prev.box[2]
            if gap >= _CELL_GAP * em and cur:
                cells.append(cur)
                cur = ""
            elif cur and cur[-1].isascii() and cur[-1].isalnum() and text[:1].isascii() and text[:1].isalnum():
                cur += " "
        cur += text
        prev = ln
    if cur:
        cells.append(cur)
    return cells


def ocr_page_text(page: OcrPage) -> str:
    """One recognised page as text-layer lines for :func:`repair_pdf_pages`; a printed line
    of several cells goes in as a table row (:func:`~ingest.readers.layout.row_line`), which
    the repair keeps on a line of its own, cells tab-separated."""
    lines = _kept(page)
    if not lines:
        return ""
    em = _em(lines)
    rows = _rows(lines)
    widest = max(r[-1].box[2] - r[0].box[0] for r in rows)
    full = [r[0].box[0] for r in rows if r[-1].box[2] - r[0].box[0] >= 0.6 * widest]
    left = min(full or [r[0].box[0] for r in rows])
    out: list[str] = []
    for row in rows:
        cells = _cells(row, em)
        indent = " " * min(60, max(0, round((row[0].box[0] - left) / em)))
        out.append(indent + (cells[0] if len(cells) == 1 else row_line(cells)))
    return "\n".join(out)


def ocr_meta(ocr: Mapping[int, OcrPage], pages: list[int]) -> dict[str, str]:
    """What a reader records about its recognised ``pages`` that gave text (a page that read
    as nothing, a logo or a blank, is not recognised text): their numbers, each page's
    confidence (``3:0.981``: the scores of the lines kept, weighted by length) and the engine. The pipeline stores it as ``extra["ocr"]``."""
    pages = [n for n in pages if _kept(ocr[n])]
    conf = []
    for n in pages:
        kept = _kept(ocr[n])
        chars = sum(len(ln.text) for ln in kept)
        c = sum(ln.score * len(ln.text) for ln in kept) / chars if chars else None
        conf.append(f"{n}:{c:.3f}" if c is not None else f"{n}:")
    engines = sorted({ocr[n].engine for n in pages if ocr[n].engine})
    return {"ocr_pages": ",".join(map(str, pages)), "ocr_confidence": ",".join(conf),
            "ocr_engine": "; ".join(engines)}
