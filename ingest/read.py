"""Readers: one file in, a :class:`~yuanwen.models.ReadResult` out (txt, md, html, docx, pdf).

:func:`read_file` dispatches by suffix. Every reader's text goes through
:func:`ingest.normalise.clean_text`; offsets a reader records (Markdown/HTML/DOCX headings,
PDF pages) are moved along with that repair, so ``text[h.start:h.end] == h.text`` holds.
Readers raise :class:`~yuanwen.errors.ReadError` with a Chinese reason the user can act on.
"""

from __future__ import annotations

import html
import io
import os
import re
import stat
import zipfile
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from yuanwen.conventions import CN_DIGITS, CN_NUMERAL_CHARS, CN_SMALL, DOC_NUMBER_RE, HAN_UNIFIED, find_numeric_date
from yuanwen.errors import ReadError
from yuanwen.models import Heading, ReadResult
from yuanwen.vocab import info_labels

from .normalise import (
    GARBAGE_TEXT_SHARE, ZERO_WIDTH, clean_text, clean_text_tracking, decode_text, delete_tracking,
    garbage_share, is_garbage, replacement_warning,
)
from .walk import iter_files, os_reason, special_file_kind  # the walk lives in walk.py; old imports keep working

__all__ = ["SUPPORTED_SUFFIXES", "read_file", "iter_files", "join_split_lines"]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
DEFAULT_MAX_BYTES = 60 * 1024 * 1024
# Text formats hold nothing but text: 20 MB of UTF-8 Chinese is ~7 million characters.
TEXT_MAX_BYTES = 20 * 1024 * 1024
TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
# Past this a document is a collection, not a document: ~20k passages, hours of embedding.
DEFAULT_MAX_CHARS = 5_000_000
#: DOCX (zip) guards: total uncompressed size, and compression ratio for larger archives.
DOCX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
DOCX_MAX_RATIO = 100
DOCX_RATIO_MIN_SIZE = 5 * 1024 * 1024
#: XML parsed from a DOCX: the body (word/document.xml; 5 million characters of text with
#: Word's markup fit), and every other XML part (styles, numbering, headers, ...).
DOCX_MAX_DOCUMENT_XML = 64 * 1024 * 1024
DOCX_MAX_PART_XML = 16 * 1024 * 1024

_UNSUPPORTED = "不支持的文件类型 {suffix}；支持 .txt .md .html .htm .pdf .docx"
_NO_TEXT = "文件没有可读文字"
_DOCX_CORRUPT = "DOCX 文件已损坏或不是 DOCX 格式"
_GARBLED = ("文件内容是乱码（约 {pct}% 的字符不是文字：私用区字符、替换符或罕见字），可能是编码或"
            "字体错误；请用原软件另存为 UTF-8 文本或带正确文字的文件后再导入")


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------
def check_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> os.stat_result:
    """The file's stat if it exists, is a file of a supported type and not too large; else ReadError."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ReadError(path, "文件不存在") from exc
    except OSError as exc:
        raise ReadError(path, os_reason(exc)) from exc
    if stat.S_ISDIR(st.st_mode):
        raise ReadError(path, "这是文件夹，不是文件")
    kind = special_file_kind(st.st_mode)
    if kind:  # reading a FIFO or /dev/zero would block or never end
        raise ReadError(path, f"这是{kind}，不是普通文件，已跳过；请放入普通文件后再导入")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ReadError(path, _UNSUPPORTED.format(suffix=suffix or "（无扩展名）"))
    limit = min(max_bytes, TEXT_MAX_BYTES) if suffix in TEXT_SUFFIXES else max_bytes
    if st.st_size > limit:
        raise ReadError(
            path, f"文件过大（{_mb(st.st_size)} MB，上限 {_mb(limit)} MB）；请拆分后再导入"
        )
    return st


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
              max_chars: int = DEFAULT_MAX_CHARS) -> ReadResult:
    """Read one file by its suffix; :class:`ReadError` if it is missing, too large or unreadable."""
    result = _read_any(Path(path), max_bytes)
    if len(result.text) > max_chars:
        raise ReadError(path, f"正文过长（约 {len(result.text) // 10000} 万字，上限 "
                              f"{max_chars // 10000} 万字）；请拆分后再导入")
    return result


def _read_any(path: Path, max_bytes: int) -> ReadResult:
    check_file(path, max_bytes)
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        try:
            from .pdf import read_pdf  # imported only when a PDF comes
        except ImportError as exc:
            raise ReadError(path, f"无法读取 PDF：PDF 读取组件不可用（{exc}）") from exc
        return _finish_pdf(read_pdf(path), path)
    data = read_bytes(path)
    if len(data) > max_bytes:  # grew since stat
        raise ReadError(path, f"文件过大（{_mb(len(data))} MB，上限 {_mb(max_bytes)} MB）")
    if suffix == ".txt":
        result = read_txt_bytes(data, path)
    elif suffix in (".md", ".markdown"):
        result = read_md_bytes(data, path)
    elif suffix in (".html", ".htm"):
        result = read_html_bytes(data, path)
    else:
        result = read_docx_bytes(data, path)
    if not result.text.strip():
        raise ReadError(path, _NO_TEXT)
    if is_garbage(result.text, GARBAGE_TEXT_SHARE):  # (PDFs are judged page by page)
        share, _ = garbage_share(result.text)
        raise ReadError(path, _GARBLED.format(pct=round(share * 100)))
    return result


def read_bytes(path: Path) -> bytes:
    """The file's bytes; ReadError naming the reason when it cannot be read."""
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise ReadError(path, "没有读取权限；请检查文件权限") from exc
    except FileNotFoundError as exc:
        raise ReadError(path, "文件不存在") from exc
    except OSError as exc:
        raise ReadError(path, f"无法读取文件（{exc.strerror or exc}）") from exc


def _mb(n: int) -> str:
    v = n / (1024 * 1024)
    if v >= 10:
        return f"{v:.0f}"
    if v >= 0.1:
        return f"{v:.1f}"
    return f"{v:.3f}".rstrip("0").rstrip(".") or "0"


def _finish(text: str, fmt: str, headings: list[tuple[int, int, int]], meta: dict[str, str],
            encoding: str | None, pages: list[int] | None = None) -> ReadResult:
    """Clean ``text``, move heading spans and page starts along, build the result."""
    pages = list(pages or [])
    offsets = [o for s, e, _ in headings for o in (s, e)] + pages
    clean, moved = clean_text_tracking(text, offsets)
    out: list[Heading] = []
    for i, (_, _, level) in enumerate(headings):
        s, e = moved[2 * i], moved[2 * i + 1]
        # A heading line never carries surrounding whitespace into its span.
        while s < e and clean[s].isspace():
            s += 1
        while e > s and clean[e - 1].isspace():
            e -= 1
        if e > s:
            out.append(Heading(s, e, level, clean[s:e]))
    return ReadResult(text=clean, format=fmt, pages=moved[2 * len(headings):], headings=out,
                      meta=meta, encoding=encoding)


def _finish_pdf(rr: ReadResult, path: Path) -> ReadResult:
    heads = [(h.start, h.end, h.level) for h in rr.headings]
    out = _finish(rr.text, "pdf", heads, dict(rr.meta), rr.encoding, rr.pages)
    if not out.text.strip():
        raise ReadError(path, _NO_TEXT)
    out.warnings = list(rr.warnings)
    return out


# ---------------------------------------------------------------------------------------------
# Plain text
# ---------------------------------------------------------------------------------------------
_WS = " \t\u3000\xa0"
_SENTENCE_END = set("。！？；：”’」』）…!?;:)")
_CLOSE_START = set("》」』”’）)，。、；：！？,.;:!?…")  # cannot start a paragraph
_OPEN_END = set("《「『“‘（(")  # cannot end a paragraph
_HEADING_LIKE = re.compile(
    rf"(?:第[{CN_NUMERAL_CHARS}\d]+[编章节条部分]"
    rf"|[{CN_SMALL}百]+[、.．]"
    rf"|[（(][{CN_SMALL}百\d]+[)）]"
    r"|\d+(?:[、．]|\.(?!\d))"
    rf"|[0-9０-９〇○零{CN_DIGITS}]{{4}}年"
    r"|(?:附件|附录|注|说明)[:：\d]?"
    r"|[-—]{2})"
)
_ZW_ONLY = re.compile(f"[{_WS}]*[{ZERO_WIDTH}][{_WS}{ZERO_WIDTH}]*")
_ASCII_LETTER = re.compile("[A-Za-z]")


def _is_heading_like(s: str) -> bool:
    return bool(_HEADING_LIKE.match(s))


def join_split_lines(text: str) -> str:
    """Rejoin lines that wiki link extraction cut inside a sentence (LF line ends expected).

    Only lines directly after a non-blank line are considered; a line is appended to the
    previous one when it starts with closing punctuation (``》，``), when the previous one ends
    with opening punctuation (``《“``), when it is a short fragment (≤ 4 characters, no
    spaces, not a heading, a date or a salutation) after a line without sentence-final
    punctuation, or when it continues a line that was just rejoined. A line of zero-width
    characters between two such lines is a cut, too. Headings and indented lines stay.
    """
    lines = text.split("\n")
    out: list[_OutLine] = []
    joined_last = False  # out[-1] was built by joining
    bridge = False  # a zero-width-only line sits between out[-1] and the current line
    for raw in lines:
        s = raw.strip(_WS)
        if not s:
            out.append(_OutLine(raw))
            joined_last = bridge = False
            continue
        if _ZW_ONLY.fullmatch(raw):
            if out and out[-1].last and not bridge:
                bridge = True  # hold the line back until we see what follows
                continue
            out.append(_OutLine(raw))
            joined_last = bridge = False
            continue
        prev = out[-1] if out else None
        p_last = prev.last if prev else ""  # last character of the previous line, spaces aside
        if not p_last:  # first line, or after a blank line: a new paragraph
            out.append(_OutLine(raw))
            joined_last = bridge = False
            continue
        indented = raw[:1] in _WS
        spaced_prev = prev.pieces[-1][-1:] in _WS  # layout (a byline: 国务院总理　/李克强), not a cut
        prev_head = _is_heading_like(prev.prefix)
        head = _is_heading_like(s)
        ends_final = p_last in _SENTENCE_END
        join = False
        if s[0] in _CLOSE_START or p_last in _OPEN_END:
            join = True
        elif not ends_final and not head and not indented and not prev_head:
            if bridge:
                join = True
            elif (len(s) <= 4 and not spaced_prev and not any(c in _WS for c in s)
                  and s[-1] not in "：:！!？?"
                  and not (_ASCII_LETTER.match(p_last) and _ASCII_LETTER.match(s[0]))):
                join = True
            elif joined_last:
                join = True
        if join:
            prev.join(s)
            joined_last = True
        else:
            if bridge:
                out.append(_OutLine(""))  # the zero-width line, which cleaning would empty anyway
            out.append(_OutLine(raw))
            joined_last = False
        bridge = False
    if bridge:
        out.append(_OutLine(""))
    return "\n".join("".join(line.pieces) for line in out)


class _OutLine:
    """A line of :func:`join_split_lines`' output, built from pieces: joining appends a piece
    (joining by string concatenation was quadratic in a run of short lines)."""

    __slots__ = ("pieces", "prefix", "last")
    #: The start of the line (spaces stripped) that heading detection looks at.
    PREFIX = 256

    def __init__(self, raw: str) -> None:
        self.pieces = [raw]
        body = raw.strip(_WS)
        self.prefix = body[: self.PREFIX]
        self.last = body[-1:]  # "" for a blank line

    def join(self, s: str) -> None:
        """Append ``s`` (stripped, not empty) to the line without its trailing spaces."""
        self.pieces[-1] = self.pieces[-1].rstrip(_WS)
        self.pieces.append(s)
        if len(self.prefix) < self.PREFIX:
            self.prefix = (self.prefix + s)[: self.PREFIX]
        self.last = s[-1]


def read_txt_bytes(data: bytes, path: Path) -> ReadResult:
    """A plain text file: decoded, split lines rejoined, cleaned."""
    text, enc, replaced = decode_text(data, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = join_split_lines(text)
    return _replaced(ReadResult(text=clean_text(text), format="txt", encoding=enc), replaced)


def _replaced(result: ReadResult, replaced: int) -> ReadResult:
    """``result`` with the user's note on characters decoding replaced, if any."""
    if replaced:
        result.warnings.append(replacement_warning(replaced, result.encoding or "utf-8"))
    return result


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------
# Key length bounded and the value taken whole (stripped in code): linear on long space runs.
_FM_LINE = re.compile(rf"^\s*+([A-Za-z_{HAN_UNIFIED}][\w{HAN_UNIFIED} -]{{0,63}}?)\s*+[:：]\s*+(.*)$")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_MD_BLOCK_TAGS = ("address|article|aside|blockquote|br|caption|center|dd|details|div|dl|dt|figcaption|"
                  "figure|footer|h[1-6]|header|hr|li|main|ol|p|pre|section|summary|table|tbody|td|tfoot|"
                  "th|thead|tr|ul")
_MD_INLINE_TAGS = "a|abbr|b|big|cite|code|del|em|font|i|img|ins|kbd|mark|s|small|span|strike|strong|sub|sup|u"
_MD_TAG = re.compile(
    rf"</?(?:(?P<block>{_MD_BLOCK_TAGS})|{_MD_INLINE_TAGS})(?:\s[^<>]*)?/?>", re.I
)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_ATX_OPEN = re.compile(r" {0,3}(#{1,6})")
_SETEXT = re.compile(r"^ {0,3}(={3,}|-{3,})[ \t]*$")
_BREAK = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\((?:[^)\s\n]+)(?:\s+\"[^\"\n]*\")?\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+)>")
_MD_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """``key: value`` lines of a ``---`` block at the very top, and the text without it."""
    if not re.match(r"---[ \t]*\n", text):
        return {}, text
    end = re.search(r"\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", text)
    if not end:
        return {}, text
    meta: dict[str, str] = {}
    block = text[text.index("\n") + 1 : end.start() + 1].split("\n")
    # Only a YAML-like block is front matter (key: value, list items, indented continuations).
    if any(ln.strip() and not (_FM_LINE.match(ln) or ln[:1] in " \t" or ln.startswith("- ")
                               or ln.lstrip().startswith("#")) for ln in block):
        return {}, text
    for line in block:
        m = _FM_LINE.match(line)
        value = m.group(2).rstrip() if m else ""
        if value:
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            meta[m.group(1).strip().lower()] = value.strip()
    return meta, text[end.end():]


def _atx(line: str) -> tuple[int, str] | None:
    """An ATX heading line's level and content: ``## 标题 ##``, or ``##标题`` before a CJK
    character; else None. String operations, not a regex with a lazy group before trailing
    spaces, which is quadratic on a long run of spaces."""
    m = _ATX_OPEN.match(line)
    if not m:
        return None
    level, rest = len(m.group(1)), line[m.end():]
    if not rest:
        return level, ""
    if rest[0] in " \t\u3000":
        t = rest.lstrip(" \t\u3000").rstrip(" \t")
        u = t.rstrip("#")
        if u != t and u[-1:] in (" ", "\t"):  # a closing sequence: "## 标题 ##"
            t = u.rstrip(" \t")
        return level, t
    if not rest[0].isascii():
        return level, rest.rstrip(" \t")
    return None


def _md_inline(line: str) -> str:
    line = _IMAGE.sub("", line)
    line = _LINK.sub(r"\1", line)
    line = _AUTOLINK.sub(r"\1", line)
    return _MD_ESCAPE.sub(r"\1", line)


def read_md_bytes(data: bytes, path: Path) -> ReadResult:
    """Markdown: front matter to ``meta``, ``#`` headings to plain lines + :class:`Heading`,
    HTML comments and tags removed, entities unescaped; emphasis (``**``) left as written."""
    text, enc, replaced = decode_text(data, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    meta, text = _front_matter(text)
    text = _HTML_COMMENT.sub("", text)
    text = _MD_TAG.sub(lambda m: "\n" if m.group("block") else "", text)
    text = _ENTITY.sub(lambda m: html.unescape(m.group()), text)

    out: list[str] = []
    headings: list[tuple[int, int, int]] = []  # line index, level
    head_lines: list[tuple[int, int]] = []
    in_fence = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line)
            continue
        atx = _atx(line)
        if atx:
            level, content = atx
            content = _md_inline(content).strip()
            if content:
                head_lines.append((len(out), level))
            out.append(content)
            continue
        st = _SETEXT.match(line)
        if st and out and out[-1].strip() and not _BREAK.match(out[-1]) and (
                not head_lines or head_lines[-1][0] != len(out) - 1):
            content = out[-1].strip()
            out[-1] = content
            head_lines.append((len(out) - 1, 1 if st.group(1)[0] == "=" else 2))
            continue
        if _BREAK.match(line):
            out.append("")
            continue
        out.append(_md_inline(line))

    starts: list[int] = []
    pos = 0
    for line in out:
        starts.append(pos)
        pos += len(line) + 1
    for idx, level in head_lines:
        headings.append((starts[idx], starts[idx] + len(out[idx]), level))
    return _replaced(_finish("\n".join(out), "md", headings, meta, enc), replaced)


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------
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


class _Extractor(HTMLParser):
    """A flat, non-recursive pass over the HTML that records text and layout events."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
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

    # -- parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
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
        a = dict(attrs)
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

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

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
    try:
        parser.feed(source)
        parser.close()
    except _TooComplex as exc:
        raise ReadError(path, f"HTML 结构过于复杂（超过 {HTML_MAX_EVENTS:,} 个排版单元），"
                              "可能是异常或恶意构造的文件；已跳过") from exc
    except Exception as exc:  # html.parser is lenient; anything raised here is a broken file
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
    return _replaced(_finish(text, "html", heads, meta, enc), replaced)


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


# ---------------------------------------------------------------------------------------------
# DOCX
# ---------------------------------------------------------------------------------------------
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
                raise ReadError(path, f"DOCX 内容异常庞大（{i.filename} 解压后 {_mb(i.file_size)} MB，"
                                      f"上限 {_mb(limit)} MB），可能是异常或恶意构造的文件，已拒绝读取")
    if total > DOCX_MAX_UNCOMPRESSED:
        limit = _mb(DOCX_MAX_UNCOMPRESSED)
        raise ReadError(path, f"DOCX 解压后过大（{_mb(total)} MB，上限 {limit} MB），可能是压缩炸弹，已拒绝读取")
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
    return _finish("\n".join(lines), "docx", headings, meta, None)
