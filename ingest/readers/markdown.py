"""Markdown (.md, .markdown), parsed by markdown-it-py (CommonMark): front matter to ``meta``,
``#`` and setext headings to :class:`~yuanwen.models.Heading`, HTML comments and tags removed,
links and images reduced to their text.

The text stays as written where Markdown would change what a policy document says: emphasis
markers are kept (``**市``, ``*个集体和*名`` are masked values, not bold), list numbers and
bullets are kept (``1.`` is a heading number to the segmenter), and an indented line is a
paragraph, not code (Chinese documents indent paragraphs). ``##标题`` with no space, as
Chinese Markdown is often written, is a heading.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from yuanwen.conventions import HAN_UNIFIED
from yuanwen.models import ReadResult

from ..normalise import decode_text
from ._common import TEXT_MAX_BYTES, Reader, finish, note_replaced

# Key length bounded and the value taken whole (stripped in code): linear on long space runs.
_FM_LINE = re.compile(rf"^\s*+([A-Za-z_{HAN_UNIFIED}][\w{HAN_UNIFIED} -]{{0,63}}?)\s*+[:：]\s*+(.*)$")
# "##标题": an ATX opening followed directly by a non-ASCII character gets its space.
_ATX_NO_SPACE = re.compile(r"^( {0,3}#{1,6})(?=[^\s#\x00-\x7f])", re.M)
# Inside raw HTML: comments go, block-level tags become line breaks, other tags go.
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_BLOCK_TAG = re.compile(
    r"</?(?:address|article|aside|blockquote|br|caption|center|dd|details|div|dl|dt|figcaption|figure|"
    r"footer|h[1-6]|header|hr|li|main|ol|p|pre|section|summary|table|tbody|td|tfoot|th|thead|tr|ul)"
    r"(?:\s[^<>]*)?/?>", re.I)
_ANY_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True})
    md.disable("code")  # an indented line is a paragraph here
    return md


_MD = _parser()


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


def _raw_html(fragment: str) -> str:
    """The text of raw HTML inside Markdown: comments and tags removed, block tags as line
    breaks, entities unescaped."""
    fragment = _HTML_COMMENT.sub("", fragment)
    fragment = _BLOCK_TAG.sub("\n", fragment)
    return html.unescape(_ANY_TAG.sub("", fragment))


def _inline(token: Token) -> str:
    """An inline token's text as written, less Markdown's link, image and HTML syntax."""
    out: list[str] = []
    for t in token.children or []:
        kind = t.type
        if kind in ("text", "text_special"):  # text_special: a backslash escape or an entity
            out.append(t.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "code_inline":
            out.append(t.markup + t.content + t.markup)
        elif kind in ("em_open", "em_close", "strong_open", "strong_close"):
            out.append(t.markup)  # emphasis markers are masked values in these documents
        elif kind == "html_inline":
            out.append(_raw_html(t.content))
        # image: its alt text is not document text; link_open/close: the text stays
    return "".join(out)


_BLOCKS = ("heading_open", "paragraph_open", "fence", "code_block", "html_block", "hr")


def read_md_bytes(data: bytes, path: Path) -> ReadResult:
    """Markdown: front matter to ``meta``, headings to plain lines + :class:`Heading`, HTML
    comments and tags removed, entities unescaped; emphasis markers left as written."""
    text, enc, replaced = decode_text(data, path)
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    meta, text = _front_matter(text)
    text = _ATX_NO_SPACE.sub(r"\1 ", text)

    out: list[str] = []
    head_lines: list[tuple[int, int]] = []  # line index in ``out``, level
    line = 0  # the next source line not yet accounted for
    marker = ""  # a list item's number or bullet, put before its first line
    level: int | None = None  # inside a heading
    for tok in _MD.parse(text):
        kind = tok.type
        if kind == "list_item_open":
            marker = (tok.info + tok.markup if tok.info else tok.markup) + " "
            continue
        if kind in _BLOCKS and tok.map:
            begin, end = tok.map
            out.extend("" for _ in range(begin - line))  # the blank lines between blocks
            line = max(line, end)
        if kind == "heading_open":
            level = int(tok.tag[1])
            continue
        if kind == "inline":
            lines = _inline(tok).split("\n")
            if level is not None:
                lines = ["".join(lines).strip()]
                if lines[0]:
                    head_lines.append((len(out), level))
                level = None
        elif kind in ("fence", "code_block"):
            lines = tok.content.rstrip("\n").split("\n")
        elif kind == "html_block":
            lines = _raw_html(tok.content).strip("\n").split("\n")
        elif kind == "hr":
            lines = [""]
        else:
            continue
        if marker:
            lines[0], marker = marker + lines[0], ""
        out.extend(lines)

    starts: list[int] = []
    pos = 0
    for ln in out:
        starts.append(pos)
        pos += len(ln) + 1
    headings = [(starts[i], starts[i] + len(out[i]), lvl) for i, lvl in head_lines]
    return note_replaced(finish("\n".join(out), "md", headings, meta, enc), replaced)


READER = Reader("md", (".md", ".markdown"), read_md_bytes, max_bytes=TEXT_MAX_BYTES)
