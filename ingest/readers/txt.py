"""Plain text (.txt): decoded, lines cut inside a sentence rejoined, cleaned."""

from __future__ import annotations

import re
from pathlib import Path

from yuanwen.conventions import CN_DIGITS, CN_NUMERAL_CHARS, CN_SMALL
from yuanwen.models import ReadResult

from ..normalise import ZERO_WIDTH, clean_text, decode_text
from ._common import TEXT_MAX_BYTES, Reader, note_replaced

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
    return note_replaced(ReadResult(text=clean_text(text), format="txt", encoding=enc), replaced)



READER = Reader("txt", (".txt",), read_txt_bytes, max_bytes=TEXT_MAX_BYTES)
