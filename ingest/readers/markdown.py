"""Markdown (.md, .markdown): front matter to ``meta``, ``#`` and setext headings to
:class:`~yuanwen.models.Heading`, HTML comments and tags removed, links and images reduced to
their text. A line-by-line regex pass, not a CommonMark parser."""

from __future__ import annotations

import html
import re
from pathlib import Path

from yuanwen.conventions import HAN_UNIFIED
from yuanwen.models import ReadResult

from ..normalise import decode_text
from ._common import TEXT_MAX_BYTES, Reader, finish, note_replaced

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
    return note_replaced(finish("\n".join(out), "md", headings, meta, enc), replaced)


READER = Reader("md", (".md", ".markdown"), read_md_bytes, max_bytes=TEXT_MAX_BYTES)
