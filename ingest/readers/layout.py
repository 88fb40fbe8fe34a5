"""Text placed on a page, laid out as lines for the PDF repair; ruled tables kept row by row.

The readers that place text themselves (OFD, the table pages of text-layer PDFs) describe a
page as :class:`Run` pieces of text (position and font size, millimetres, y growing downwards)
and the :class:`Rules` that draw its tables. :func:`page_lines` turns them into what
:func:`~ingest.readers.pdf.repair_pdf_pages` takes: one line per printed line, top to bottom,
leading spaces giving the indent in ems, and each table row as a *row line*
(:func:`row_line`): the row's cells in reading order, in markers that the repair recognises.

The repair (:func:`take_rows` before it joins lines, :func:`unwrap_rows` after) puts a short
placeholder in place of each row line, so that a row neither joins a paragraph nor sets the
page's width, and then the row back on a line of its own, cells separated by a tab. A passage
never splits a line, so it never splits a row.

A ruled cell is the box between the nearest rules around its text; the cells sharing a top
rule form a row; the lines of text inside a cell are joined (wrapped cell text is one cell).
A lone cell as wide as the text (a page border, a framed note) holds text, not a table. A line
outside any cell with a gap of several ems (the ``版记``: 抄送 on the left, date on the right)
is kept as cells too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "CELL_GAP_EM",
    "RULE_THIN",
    "Rules",
    "Run",
    "join_split_rows",
    "page_lines",
    "row_line",
    "snap_rules",
    "table_rows",
    "take_rows",
    "unwrap_rows",
]

#: A gap this many ems wide inside a line splits it into cells.
CELL_GAP_EM = 4.0
#: A drawn box this thin (mm) is a table rule.
RULE_THIN = 1.2

# A row line: its cells between these two characters (control pictures ␞ ␟, which no official
# document uses; the garbage test counts them as text), separated by tabs.
ROW_OPEN, ROW_CLOSE, CELL_SEP = "\u241e", "\u241f", "\t"
# The placeholder of a row inside the repair: noncharacters (never text), the row's index in
# hexadecimal digits from ``_DIGIT0``.
_PH_START, _PH_END, _DIGIT0 = "\ufdd0", "\ufdd1", 0xFDE0
_NONCHARS = {c: None for c in range(0xFDD0, 0xFDF0)}


@dataclass
class Run:
    """A piece of text on one line: x from ``x0`` to ``x1``, baseline ``y`` (mm, y down)."""

    x0: float
    x1: float
    y: float
    size: float
    text: str


@dataclass
class Rules:
    """The table rules of a page: horizontal ``(y, x0, x1)`` and vertical ``(x, y0, y1)``."""

    h: list[tuple[float, float, float]] = field(default_factory=list)
    v: list[tuple[float, float, float]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Row lines and their placeholders
# ---------------------------------------------------------------------------------------------
def row_line(cells: list[str]) -> str:
    """A table row as one line of page text for :func:`~ingest.readers.pdf.repair_pdf_pages`."""
    clean = [" ".join(c.replace(CELL_SEP, " ").split("\n")) for c in cells]
    return ROW_OPEN + CELL_SEP.join(clean) + ROW_CLOSE


def take_rows(pages: list[str], clean: Callable[[str], str]) -> tuple[list[str], list[list[str]]]:
    """Each row line of ``pages`` replaced by a placeholder (indent kept); the rows, their
    cells passed through ``clean`` and empty ones left out. A row with no text goes."""
    rows: list[list[str]] = []
    out: list[str] = []
    for page in pages:
        if not page or (ROW_OPEN not in page and not any(0xFDD0 <= ord(c) < 0xFDF0 for c in page)):
            out.append(page)
            continue
        lines = []
        for line in page.translate(_NONCHARS).split("\n"):
            body = line.strip()
            if len(body) >= 2 and body[0] == ROW_OPEN and body[-1] == ROW_CLOSE:
                cells = [c for c in (clean(c) for c in body[1:-1].split(CELL_SEP)) if c]
                if not cells:
                    continue
                rows.append(cells)
                lines.append(line[: len(line) - len(line.lstrip())] + _PH_START
                             + _encode(len(rows) - 1) + _PH_END)
            else:
                lines.append(line)
        out.append("\n".join(lines))
    return out, rows


def _encode(k: int, digit0: int = _DIGIT0) -> str:
    return "".join(chr(digit0 + int(d, 16)) for d in f"{k:x}")


def unwrap_rows(text: str, pages: list[int], rows: list[list[str]],
                marks: tuple[str, str, int] = (_PH_START, _PH_END, _DIGIT0)) -> tuple[str, list[int]]:
    """Placeholders out: each table row on a line of its own, cells tab-separated; offsets
    (``pages``) moved along. ``marks``: the placeholder's start, end and first digit."""
    start, end, digit0 = marks
    out: list[str] = []
    n = 0
    pos = [0] * (len(text) + 1)
    i = 0
    break_next = False
    while i < len(text):
        ch = text[i]
        if ch == start:
            j = text.find(end, i)
            if j < 0:
                j = len(text) - 1
            if n and out[-1] != "\n":
                out.append("\n")
                n += 1
            for k in range(i, j + 1):
                pos[k] = n
            digits = "".join(f"{ord(c) - digit0:x}" for c in text[i + 1:j] if digit0 <= ord(c) < digit0 + 16)
            index = int(digits, 16) if digits else -1
            row = "\t".join(rows[index]) if 0 <= index < len(rows) else ""
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
# A page's runs and rules as lines
# ---------------------------------------------------------------------------------------------
def snap_rules(rules: Rules, tol: float = 0.8) -> Rules:
    """``rules`` with rules closer than ``tol`` (a double line, one border drawn per cell, the
    two edges of a thin filled box) put on one position, so that a row's cells share a top rule."""

    def snap(lines: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
        out: list[tuple[float, float, float]] = []
        group: list[tuple[float, float, float]] = []
        for ln in sorted(lines):
            if group and ln[0] - group[0][0] > tol:
                out.extend(_at(group))
                group = []
            group.append(ln)
        out.extend(_at(group))
        return out

    def _at(group: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
        pos = sum(g[0] for g in group) / len(group) if group else 0.0
        return [(pos, a, b) for _, a, b in group]

    return Rules(h=snap(rules.h), v=snap(rules.v))


def cell_of(run: Run, rules: Rules) -> tuple[float, float, float] | None:
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


def lines_of(runs: list[Run]) -> list[list[Run]]:
    """Runs grouped into lines by baseline, top to bottom, each line left to right."""
    lines: list[list[Run]] = []
    for r in sorted(runs, key=lambda r: (r.y, r.x0)):
        if lines:
            last = lines[-1]
            ref = sum(x.y for x in last) / len(last)
            if abs(r.y - ref) <= 0.35 * max(r.size, last[0].size):
                last.append(r)
                continue
        lines.append([r])
    return [sorted(ln, key=lambda r: r.x0) for ln in lines]


def join_runs(line: list[Run], split_cells: bool) -> list[str]:
    """A line's text; with ``split_cells``, split into cells at gaps wider than a few ems."""
    cells: list[str] = []
    cur = ""
    prev: Run | None = None
    for r in line:
        if prev is not None:
            gap = r.x0 - prev.x1
            em = max(min(r.size, prev.size), 0.1)
            if split_cells and gap >= CELL_GAP_EM * em and cur.strip():
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


def table_rows(runs: list[Run], rules: Rules) -> tuple[list[tuple[float, float, list[str]]], list[Run]]:
    """The ruled rows among ``runs``: ``(top y, left x, cells)`` each, and the runs outside them.

    A row's cells are its columns, left to right (the vertical rules crossing it), a column
    without text as an empty cell."""
    cells: dict[tuple[float, float, float], list[Run]] = {}
    free: list[Run] = []
    if rules.h and rules.v:
        for r in runs:
            key = cell_of(r, rules)
            (cells.setdefault(key, []) if key else free).append(r)
    else:
        free = list(runs)
    rows: dict[float, list[tuple[float, float, list[Run]]]] = {}
    for (x, y, w), rs in cells.items():
        rows.setdefault(y, []).append((x, w, rs))
    span = (max(r.x1 for r in runs) - min(r.x0 for r in runs)) if runs else 0.0
    out: list[tuple[float, float, list[str]]] = []
    for y, row in rows.items():
        if len(row) == 1 and row[0][1] > 0.6 * span:
            free.extend(row[0][2])
            continue
        texts: dict[float, str] = {}
        for x, _, rs in row:
            t = _join_cell_lines([" ".join(join_runs(ln, False)) for ln in lines_of(rs)]).strip()
            if t:
                texts[x] = t
        if texts:
            columns = _columns(y, row, rules)
            for x in texts:
                if not any(abs(x - c) <= 0.6 for c in columns):
                    columns.append(x)
            columns.sort()
            line = [next((t for x, t in texts.items() if abs(x - c) <= 0.6), "") for c in columns]
            out.append((y, min(r.x0 for _, _, rs in row for r in rs), line))
    return out, free


def _columns(top: float, row: list[tuple[float, float, list[Run]]], rules: Rules) -> list[float]:
    """The left rules of a row's columns: the vertical rules crossing the row's first line,
    across the rule on top of the row."""
    first = min((r for _, _, rs in row for r in rs), key=lambda r: r.y)
    cy = first.y - 0.35 * first.size
    x0 = min(x for x, _, _ in row)
    x1 = max(x + w for x, w, _ in row)
    for y, a, b in rules.h:
        if abs(y - top) <= 0.6 and a <= x1 and b >= x0:
            x0, x1 = min(x0, a), max(x1, b)
    out: list[float] = []
    for x, y0, y1 in sorted(rules.v):
        if y0 - 0.6 <= cy <= y1 + 0.6 and x0 - 0.6 <= x < x1 - 0.6 and (not out or x - out[-1] > 0.6):
            out.append(round(x, 1))
    return out


def join_split_rows(pages: list[str], furniture: Callable[[str], bool]) -> list[str]:
    """Pages with a table row that a page break split put back together: when a page's first
    line (``furniture`` aside: page numbers) is a row whose first column is empty and the
    previous page ends with a row of as many columns whose first column is not, the second
    row's cells are joined to the first's."""
    out = list(pages)
    last_page: int | None = None
    for p in range(len(out)):
        lines = out[p].split("\n")
        body = [i for i, ln in enumerate(lines) if ln.strip() and not furniture(ln)]
        if not body:
            continue
        if last_page is not None:
            before = out[last_page].split("\n")
            end = next(i for i in range(len(before) - 1, -1, -1)
                       if before[i].strip() and not furniture(before[i]))
            a, b = _row_cells(before[end]), _row_cells(lines[body[0]])
            if (a and b and len(a) == len(b) and a[0].strip() and not b[0].strip()
                    and any(c.strip() for c in b)):
                lead = before[end][: len(before[end]) - len(before[end].lstrip())]
                before[end] = lead + row_line([_join_cell_lines([x, y]) for x, y in zip(a, b)])
                del lines[body[0]]
                out[last_page], out[p] = "\n".join(before), "\n".join(lines)
                if len(body) == 1:
                    continue  # nothing else on this page: the next page may continue the row
        last_page = p
    return out


def _row_cells(line: str) -> list[str] | None:
    body = line.strip()
    if len(body) >= 2 and body[0] == ROW_OPEN and body[-1] == ROW_CLOSE:
        return body[1:-1].split(CELL_SEP)
    return None


def page_lines(runs: list[Run], rules: Rules, em: float, left: float) -> str:
    """One page as lines of text for :func:`~ingest.readers.pdf.repair_pdf_pages`: leading
    spaces give the indent in ems (from ``left``), table rows are row lines."""
    ruled, free = table_rows(runs, rules)
    items: list[tuple[float, float, list[str], bool]] = [(y, x, c, True) for y, x, c in ruled]
    for ln in lines_of(free):
        parts = join_runs(ln, True)
        if parts:
            items.append((ln[0].y - 0.8 * ln[0].size, ln[0].x0, parts, len(parts) > 1))
    items.sort(key=lambda t: (t[0], t[1]))
    out = []
    for _, x0, parts, is_row in items:
        indent = " " * min(max(0, round((x0 - left) / em)) if em > 0 else 0, 60)
        out.append(indent + (row_line(parts) if is_row else parts[0]))
    return "\n".join(out)
