"""HTML (.html, .htm): the visible text by blocks (one flat, bounded pass of libxml2's HTML
parser through an :mod:`lxml` parser target, no tree), ``<h1>``-``<h6>`` to headings, the gov.cn
info table to ``meta``, the body from ``#UCAP-CONTENT`` when the page has one."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from yuanwen.conventions import DOC_NUMBER_RE, find_numeric_date
from yuanwen.errors import ReadError
from yuanwen.models import ReadResult
from yuanwen.vocab import info_labels

from ..normalise import decode_text, delete_tracking
from ._common import TEXT_MAX_BYTES, Reader, finish, note_replaced

_META_CHARSET = re.compile(
    rb"<meta[^>]+?charset\s*=\s*[\"']?\s*([A-Za-z0-9_\-:.]+)", re.I
)
_BLOCK = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
    "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
    "h4", "h5", "h6", "header", "hgroup", "hr", "html", "legend", "li", "main", "menu", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
}
_SKIP = {"script", "style", "noscript", "head", "nav", "template", "iframe", "svg", "canvas",
         "object", "select", "textarea", "button", "math"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
         "source", "track", "wbr"}
_CLOSES_P = {"p", "div", "table", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
             "blockquote", "section", "article", "header", "footer", "form", "hr"}
_HTML_WS = re.compile(r"[ \t\n\r\f]+")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
#: The gov.cn info table (``yuanwen/data/info_labels.tsv``): label (spaces removed) -> meta key.
_INFO_LABELS = {x.label: x.key for x in info_labels()}
_DATE_KEYS = {x.key for x in info_labels() if x.is_date}
_BOILERPLATE = re.compile(
    r"^(?:扫一扫在手机打开当前页|【?(?:我要纠错|打印本页|关闭窗口|打印|关闭)】?|责任编辑[:：].*)$"
)


#: Work bound of the HTML reader: text and layout events (tags, text runs) per page. A large
#: real page has tens of thousands; each event costs ~100 bytes.
HTML_MAX_EVENTS = 3_000_000


class _TooComplex(Exception):
    """The page has more layout events than :data:`HTML_MAX_EVENTS`."""


@dataclass
class _Ctx:
    content: bool  # inside the element with id UCAP-CONTENT
    table: int  # id of the innermost open table (0: none); its ancestors in table_parent


class _Extractor:
    """An lxml parser target: a flat pass over libxml2's SAX events that records text and
    layout events. libxml2 balances the tags (implied ends, stray ends dropped)."""

    def __init__(self) -> None:
        self.buf: list[str] = []  # text since the last tag: libxml2 hands it over in pieces
        self.open: list[str] = []  # the open elements' names (libxml2 balances start and end)
        self.events: list[tuple] = []
        self.skip: list[str] = []  # names of skipped elements still open (script, hidden, ...)
        self.title_parts: list[str] | None = None
        self.html_title = ""
        self.pre = 0
        self.tables: list[int] = []
        # Table id -> id of the table it is nested in (0: none). A context names only its
        # innermost table, so nesting costs O(1) per event (copying the stack into every
        # event made 20,000 nested tables take 3 GB).
        self.table_parent: list[int] = [0]
        self.n_tables = 0
        self.content_tag: str | None = None
        self.content_depth = 0
        self.content_found = False
        self.hidden_parts: list[str] | None = None  # text of the hidden element being skipped
        self.hidden_texts: list[str] = []
        self.cells: list[dict] = []  # open cells (innermost last)
        self.all_cells: list[dict] = []
        self.ctx = _Ctx(False, 0)
        self.n_events = 0

    # -- helpers
    def _refresh(self) -> None:
        content, table = self.content_depth > 0, self.tables[-1] if self.tables else 0
        if content != self.ctx.content or table != self.ctx.table:
            self.ctx = _Ctx(content, table)

    def _emit(self, *event) -> None:
        self.events.append((*event, self.ctx))
        if len(self.events) > HTML_MAX_EVENTS:
            raise _TooComplex()

    def _close_cells_of(self, table: int | None) -> None:
        while self.cells and self.cells[-1]["table"] == table:
            self.cells.pop()

    # -- lxml target callbacks
    def _flush(self) -> None:
        if self.buf:
            data = "".join(self.buf)
            self.buf.clear()
            self.handle_data(data)

    def start(self, tag: str, attrib) -> None:
        self._flush()
        self.open.append(tag)
        self.handle_starttag(tag, attrib)

    def end(self, tag: str) -> None:
        self._flush()
        self.handle_endtag(tag)
        if self.open:
            self.open.pop()

    def data(self, data: str) -> None:
        self.buf.append(data)

    def comment(self, text: str) -> None:
        self._flush()  # a comment ends a text run, as it did with html.parser

    def pi(self, target: str, data: str | None = None) -> None:
        self._flush()

    def close(self) -> "_Extractor":
        self._flush()
        return self

    # -- layout state machine
    def handle_starttag(self, tag: str, attrs) -> None:
        if self.skip:
            if tag in _CLOSES_P and all(t == "p" for t in self.skip):
                self.skip.clear()  # a hidden <p> left open ends at the next block
                self._end_hidden()
            else:
                if tag == self.skip[-1] and tag not in _VOID:
                    self.skip.append(tag)
                return
        if tag == "title":
            self.title_parts = []
            return
        a = dict(attrs)  # lxml: a dict-like attrib; a bare attribute (hidden) is ""
        if tag in _SKIP or (tag not in _VOID and (
                "hidden" in a or _HIDDEN_STYLE.search(a.get("style") or ""))):
            if tag == "head":
                return  # keep the <title>; the rest of the head has no text
            self.skip.append(tag)
            if tag not in _SKIP:
                self.hidden_parts = []
            return
        if self.content_tag is not None and self.content_depth > 0 and tag == self.content_tag:
            self.content_depth += 1
        if (a.get("id") or "").upper() == "UCAP-CONTENT" and self.content_tag is None:
            self.content_tag, self.content_depth, self.content_found = tag, 1, True
            if tag == "p" and len(self.open) >= 2:
                # libxml2 ends a <p> at the first block inside it (<p id=UCAP-CONTENT><div>...),
                # so the content runs to the end of the element that holds the <p>.
                self.content_tag = self.open[-2]
        if tag == "table":
            self.n_tables += 1
            self.table_parent.append(self.tables[-1] if self.tables else 0)
            self.tables.append(self.n_tables)
        elif tag in ("td", "th"):
            table = self.tables[-1] if self.tables else None
            self._close_cells_of(table)
            cell = {"table": table, "parts": []}
            self.cells.append(cell)
            self.all_cells.append(cell)
        elif tag == "tr":
            self._close_cells_of(self.tables[-1] if self.tables else None)
        self._refresh()
        if tag == "br":
            self._emit("br")
        elif tag in ("td", "th"):
            self._emit("cell")
        elif tag in _BLOCK:
            self._emit("block")
            if tag == "pre":
                self.pre += 1
            if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
                self._emit("hstart", int(tag[1]))

    def _end_hidden(self) -> None:
        if self.hidden_parts is not None:
            self.hidden_texts.append(_HTML_WS.sub(" ", "".join(self.hidden_parts)).strip())
            self.hidden_parts = None

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip[-1]:
                self.skip.pop()
                if not self.skip:
                    self._end_hidden()
            return
        if tag == "title":
            if self.title_parts is not None:
                self.html_title = _HTML_WS.sub(" ", "".join(self.title_parts)).strip()
            self.title_parts = None
            return
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self._emit("hend")
        if tag in _BLOCK:
            self._emit("block")
            if tag == "pre" and self.pre:
                self.pre -= 1
        if tag in ("td", "th"):
            if self.cells:
                self.cells.pop()
        elif tag == "tr":
            self._close_cells_of(self.tables[-1] if self.tables else None)
        elif tag == "table" and self.tables:
            self._close_cells_of(self.tables[-1])
            self.tables.pop()
        if self.content_tag is not None and self.content_depth > 0 and tag == self.content_tag:
            self.content_depth -= 1
        self._refresh()

    def handle_data(self, data: str) -> None:
        if self.title_parts is not None:
            self.title_parts.append(data)
            return
        if self.skip or not data:
            if self.hidden_parts is not None:
                self.hidden_parts.append(data)
            return
        if self.cells:
            self.cells[-1]["parts"].append(data)
        self._emit("pre" if self.pre else "text", data)


def _html_charset(data: bytes) -> str | None:
    m = _META_CHARSET.search(data[:8192])
    if not m:
        return None
    name = m.group(1).decode("ascii", "ignore").lower()
    try:
        import codecs

        name = codecs.lookup(name).name
    except LookupError:
        return None
    if name in ("gb2312", "gbk", "cp936", "gb18030", "euc_cn", "hz"):
        return "gb18030"
    return name


def _decode_html(data: bytes, path: Path) -> tuple[str, str, int]:
    if not data:
        raise ReadError(path, "文件为空")
    charset = _html_charset(data)
    if charset and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode(charset), charset.replace("_", "-"), 0
        except (UnicodeDecodeError, LookupError):
            pass
    return decode_text(data, path)


def _info_table(cells: list[dict]) -> tuple[dict[str, str], set[int]]:
    """Meta from label/value cell pairs (``发文机关：`` | ``国务院``), and the tables holding them."""
    meta: dict[str, str] = {}
    texts = [_HTML_WS.sub(" ", "".join(c["parts"]).replace("\xa0", " ")).strip() for c in cells]
    keys = [re.sub(r"[\s\u3000:：]", "", t) if len(t) <= 12 else "" for t in texts]
    counts: dict[int, int] = {}
    for cell, key in zip(cells, keys):
        if key in _INFO_LABELS and cell["table"] is not None:
            counts[cell["table"]] = counts.get(cell["table"], 0) + 1
    # An info table has two labels or more; a one-label table beside one (主题词) belongs to it.
    tables = {t for t, n in counts.items() if n >= 2}
    if tables:
        tables |= set(counts)
    for i, (cell, key) in enumerate(zip(cells, keys)):
        if key not in _INFO_LABELS or cell["table"] not in tables:
            continue
        if i + 1 >= len(cells) or cells[i + 1]["table"] != cell["table"]:
            continue
        value = texts[i + 1]
        if not value or re.sub(r"[\s\u3000:：]", "", value) in _INFO_LABELS:
            continue
        name = _INFO_LABELS[key]
        if name in _DATE_KEYS:
            iso = find_numeric_date(value)
            if iso:
                meta[name] = iso
            else:
                meta[f"{name}_raw"] = value
        else:
            meta.setdefault(name, value)
    return meta, tables


def _assemble(events: list[tuple], keep) -> tuple[str, list[tuple[int, int, int]]]:
    """Lines of text from the kept events: blocks break lines, whitespace collapses like a browser."""
    parts: list[str] = []
    length = 0
    at_line_start = True
    pending = False  # a block boundary waits for the next text
    headings: list[tuple[int, int, int]] = []
    open_heads: list[tuple[int, int]] = []

    def put(s: str) -> None:
        nonlocal length
        parts.append(s)
        length += len(s)

    for ev in events:
        kind, ctx = ev[0], ev[-1]
        if not keep(ctx):
            continue
        if kind == "text" or kind == "pre":
            s = ev[1] if kind == "pre" else _HTML_WS.sub(" ", ev[1])
            if kind == "text" and not s.strip(" "):
                if not (at_line_start or pending):
                    put(" ")
                continue
            if pending:
                put("\n")
                pending = False
                at_line_start = True
            if at_line_start and kind == "text":
                s = s.lstrip(" ")
            put(s)
            at_line_start = s.endswith("\n")
        elif kind == "br":
            if pending:
                put("\n")
                pending = False
            put("\n")
            at_line_start = True
        elif kind == "block":
            if not at_line_start:
                pending = True
        elif kind == "cell":
            if not at_line_start and not pending:
                put("\t")
        elif kind == "hstart":
            if not at_line_start:
                pending = True
            if pending:
                put("\n")
                pending = False
                at_line_start = True
            open_heads.append((length, ev[1]))
        elif kind == "hend" and open_heads:
            start, level = open_heads.pop()
            headings.append((start, length, level))
    return "".join(parts), headings


_Spans = list[tuple[int, int, int]]


# Linear: a trailing run is tried from its start only (quadratic without the lookbehind).
_LINE_EDGE_SPACE = re.compile(r"(?m)^[ \t]++|(?<![ \t])[ \t]++$")


def _tidy_html_lines(text: str, headings: _Spans) -> tuple[str, _Spans]:
    """No-break spaces to spaces and line-edge spaces dropped, heading offsets moved along."""
    offsets = [o for s, e, _ in headings for o in (s, e)]
    text, moved = delete_tracking(text.replace("\xa0", " "), _LINE_EDGE_SPACE, offsets)
    return text, [(moved[2 * i], moved[2 * i + 1], lv) for i, (_, _, lv) in enumerate(headings)]


def read_html_bytes(data: bytes, path: Path) -> ReadResult:
    """HTML: visible text by blocks; the gov.cn info table to ``meta``; body from #UCAP-CONTENT."""
    source, enc, replaced = _decode_html(data, path)
    parser = _Extractor()
    # huge_tree: no 10 MB cap on one text/comment/attribute (the reader caps the file at
    # TEXT_MAX_BYTES and the events at HTML_MAX_EVENTS); no tree is built, so depth costs nothing.
    lx = etree.HTMLParser(target=parser, huge_tree=True, no_network=True, remove_comments=False,
                          remove_pis=False)
    try:
        lx.feed(source)
        lx.close()
    except _TooComplex as exc:
        raise ReadError(path, f"HTML 结构过于复杂（超过 {HTML_MAX_EVENTS:,} 个排版单元），"
                              "可能是异常或恶意构造的文件；已跳过") from exc
    except Exception as exc:  # libxml2 recovers; anything raised here is a broken file
        raise ReadError(path, f"HTML 无法解析（{exc}）") from exc
    meta, info_tables = _info_table(parser.all_cells)
    if parser.html_title:
        meta["html_title"] = parser.html_title
    if "doc_number" not in meta:  # some pages keep the 文号 in a hidden element only
        for hidden in parser.hidden_texts:
            m = DOC_NUMBER_RE.search(hidden)
            if m:
                meta["doc_number"] = m.group()
                break

    def in_content(ctx: _Ctx) -> bool:
        return ctx.content

    # A table is hidden when it or a table it is nested in is an info table (parents first).
    in_info = [False] * len(parser.table_parent)
    for t in range(1, len(in_info)):
        in_info[t] = t in info_tables or in_info[parser.table_parent[t]]

    def outside_info(ctx: _Ctx) -> bool:
        return not in_info[ctx.table]

    text, heads = "", []
    if parser.content_found:
        text, heads = _assemble(parser.events, in_content)
    whole = not text.strip()
    if whole:
        text, heads = _assemble(parser.events, outside_info)
    text, heads = _tidy_html_lines(text, heads)
    if whole and _BOILERPLATE.search(text):
        text, heads = _drop_boilerplate(text, heads)
    return note_replaced(finish(text, "html", heads, meta, enc), replaced)


def _drop_boilerplate(text: str, heads: list[tuple[int, int, int]]) -> tuple[str, list[tuple[int, int, int]]]:
    lines = text.split("\n")
    keep = [not _BOILERPLATE.match(ln.strip()) for ln in lines]
    # old offset -> new offset, line by line
    new_lines, old_starts, new_starts = [], [], []
    pos_old = pos_new = 0
    for ln, k in zip(lines, keep):
        old_starts.append(pos_old)
        new_starts.append(pos_new if k else -1)
        if k:
            new_lines.append(ln)
            pos_new += len(ln) + 1
        pos_old += len(ln) + 1
    def move(o: int) -> int:
        i = bisect_right(old_starts, o) - 1
        if new_starts[i] < 0:
            return -1
        return new_starts[i] + (o - old_starts[i])

    moved = []
    for s, e, lv in heads:
        ns, ne = move(s), move(e)
        if ns >= 0 and ne >= 0:
            moved.append((ns, ne, lv))
    return "\n".join(new_lines), moved



READER = Reader("html", (".html", ".htm"), read_html_bytes, max_bytes=TEXT_MAX_BYTES)
