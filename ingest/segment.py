"""Segmentation: headings, sentences and passages of a document's verbatim text.

One pass over the lines of ``text`` (paragraphs are lines):

* **Headings.** Chinese official writing marks its structure with numbering at the start of a
  line: ``第X编/部分/章/节`` (chapters), ``一、`` (level 1), ``（一）`` (level 2), ``1.`` (level 3),
  ``（1）`` (level 4) and law articles ``第X条``. Headings the file format marks (Markdown ``#``,
  DOCX styles, passed in ``headings``) join them. Each heading has a *rank*; a heading pops the
  path entries of equal or greater rank and is pushed. A heading line such as
  ``（一）加强组织领导。各地区要……`` yields the path element ``（一）加强组织领导`` and the rest
  of the line is body. Numbered lines inside a law article (``（一）……；``) are items of the
  article, not headings.
* **Enumerations.** A paragraph (or, mid-paragraph, a sentence) starting with ``一是``/``二是``
  (or a paragraph starting with ``第一，``) puts its lead sentence as the last path element until
  the next item, heading or plain paragraph.
* **Sentences** end at 。！？； (and ! ? ;), closing quotes/brackets included, and at line ends.
* **Passages** pack whole sentences of one section up to about ``target_chars`` (never more than
  ``max_chars`` unless one sentence is longer). A heading line starts a passage; a chain of
  nested heading lines, and the first paragraph after them, stay in that passage, whose heading
  path is the one in force for its first body sentence. A table row (a line with tab-separated
  cells) up to ``max_chars`` long stays whole in one passage.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from yuanwen.conventions import CN_NUMERAL_CHARS, CN_SMALL, ENUM_IS_PATTERN, ENUM_ORDINAL_PATTERN, cn_int
from yuanwen.models import Heading, Passage, Sentence

__all__ = ["segment", "split_sentences"]

# -- ranks: smaller is higher in the hierarchy -------------------------------------------------
R_BIAN = 10  # 第X编
R_PART = 15  # 第X部分
R_CHAPTER = 20  # 第X章
R_SECTION = 30  # 第X节
R_MD = 40  # format headings without Chinese numbering: R_MD + level (1..6)
R_L1 = 50  # 一、
R_ENUM_HEAD = 55  # 第一，/一是 standing alone on a line, as a heading
R_L2 = 60  # （一）
R_L3 = 70  # 1.
R_L4 = 80  # （1）
R_ARTICLE = 90  # 第X条
R_ENUM = 100  # 一是 / 第一，

_BIG_RANK = {"编": R_BIAN, "部分": R_PART, "章": R_CHAPTER, "节": R_SECTION}

# Layout noise that may precede a heading's number: whitespace, HTML space entities, bold marks.
_PREFIX = re.compile(r"(?:\s|&(?:emsp|ensp|nbsp|#12288|#160);|\*\*|__)+")
_MD_HASH = re.compile(r"[ \t]{0,3}(#{1,6})(?=\s|&|$)")
_HEAD = re.compile(
    rf"(?P<big>第[{CN_NUMERAL_CHARS}\d]{{1,5}}(?P<bk>编|部分|章|节))"
    rf"|(?P<art>第[{CN_NUMERAL_CHARS}\d]{{1,6}}条)"
    rf"|(?P<l2>[（(][{CN_NUMERAL_CHARS}]{{1,4}}[)）])"
    rf"|(?P<l4>[（(]\d{{1,3}}[)）])"
    rf"|(?P<l1>[{CN_NUMERAL_CHARS}]{{1,4}}[、．.])"
    rf"|(?P<l3>\d{{1,3}}(?:[、．]|\.(?!\d)))"
    rf"|(?P<en>{ENUM_IS_PATTERN})"
    rf"|(?P<di>{ENUM_ORDINAL_PATTERN})"
)
_ENUM_AT = re.compile(rf"([{CN_SMALL}]{{1,3}})是(?!否)|第([{CN_SMALL}]{{1,3}})[，,、]")
# After 第X条 without a space, these characters mean a reference ("第三条至第五条"), not an article.
_ART_NOT_FOLLOWED = set("至和及与或、，,的中之所第款项规相（(）)")
_LEAD_END = re.compile(r"[。！？；：!?;:]")
_TRAIL_PUNCT = "，、。；：,.;:！？!? \t\u3000*#_"
_CLOSERS = r"”’」』）)〕】》\"'］\]"
# A sentence end: 。！？； (ASCII !?; only after a non-ASCII-word character, so HTML entities such
# as "&emsp;" do not end sentences), or an ellipsis at the end of a line; closers stay with it.
_SENT_END = re.compile(
    rf"(?<![…⋯])(?:(?:[…⋯]*+(?:[。！？；]|(?<![A-Za-z0-9&#])[!?;]))+|[…⋯]{{2,}}(?=[{_CLOSERS}]*\s*$))[{_CLOSERS}]*",
    re.M,
)
# Inside a line, a run of two or more spaces holding an ideographic space is a paragraph indent
# of text whose line breaks were lost: it ends a sentence and starts a soft paragraph.
# Tried from the start of a run only, never backtracked into (linear on long runs of spaces).
_SOFT_GAP = re.compile(r"(?<![ \t\u3000])(?=[ \t\u3000]{2})[ \t]*+\u3000[ \t\u3000]*+")
_BREAK = re.compile(rf"(?P<end>{_SENT_END.pattern})|(?P<gap>{_SOFT_GAP.pattern})", re.M)

_WHOLE_CAP = 60  # a heading line without sentence end up to this length is a heading as a whole
_LEAD_CAP = 40  # otherwise the path element is the lead clause, capped at this length


def _cn_int(s: str) -> int:
    """Value of a small Chinese numeral (一..九十九); 0 if not one."""
    return cn_int(s) or 0


def _cap(lead: str, cap: int) -> str:
    """``lead`` cut to at most ``cap`` characters, preferably after a comma."""
    if len(lead) <= cap:
        return lead
    cut = max(lead.rfind("，", 0, cap), lead.rfind(",", 0, cap))
    return lead[:cut] if cut >= cap // 3 else lead[:cap]


def _element(content: str, whole_cap: int = _WHOLE_CAP, lead_cap: int = _LEAD_CAP) -> tuple[str, bool]:
    """The path element for a heading line's ``content`` and whether it covers a whole sentence.

    A short line without a sentence end is a heading as a whole; otherwise the lead clause up to
    the first 。！？；： (without it), capped at ``lead_cap`` characters.
    """
    content = content.strip().rstrip("*#_ \t\u3000")
    m = _LEAD_END.search(content)
    lead = content[: m.start()] if m else content
    if not m and len(content) <= whole_cap:
        elem, whole = content, True
    elif m and len(lead) <= lead_cap:
        elem, whole = lead, True
    else:
        elem, whole = _cap(lead, lead_cap), False
    elem = elem.rstrip(_TRAIL_PUNCT).strip()
    if not elem:
        elem = content[:lead_cap].strip() or content.strip()
    return elem, whole


class _Line:
    """What the heading detector says about one line."""

    __slots__ = ("rank", "elem", "pure", "enum", "enum_n", "md_level", "pattern")

    def __init__(self) -> None:
        self.rank = 0  # heading rank, 0 = not a heading
        self.elem = ""
        self.pure = False  # the heading covers the first sentence (no body in it)
        self.enum = ""  # enumeration element when the line starts with 一是 / 第一，
        self.enum_n = 0
        self.md_level = 0
        self.pattern = False  # rank comes from Chinese numbering


def _classify(text: str, ls: int, le: int, given: Heading | None) -> _Line:
    """Classify the line ``text[ls:le]``: heading (rank, element), enumeration item or body."""
    info = _Line()
    md_level = 0
    if given is not None:
        content = given.text
        md_level = max(1, min(int(given.level or 1), 6))
    else:
        m = _MD_HASH.match(text, ls, le)
        if m:
            md_level = len(m.group(1))
            content = text[m.end() : le]
        else:
            content = text[ls:le]
    p = _PREFIX.match(content)
    if p:
        content = content[p.end() :]
    content = content.rstrip()
    if not content.rstrip("*#_ \t\u3000"):
        return info  # an empty Markdown heading ("##", "## ##") is just text
    info.md_level = md_level
    m = _HEAD.match(content)
    kind = m.lastgroup if m else None
    if m and kind == "bk":  # the inner group of "big" matched last
        kind = "big"
    rank = 0
    if kind == "big":
        nxt = content[m.end() : m.end() + 1]
        if not nxt or nxt.isspace() or md_level or (len(content) <= 30 and not _LEAD_END.search(content)):
            rank = _BIG_RANK[m.group("bk")]
    elif kind == "art":
        nxt = content[m.end() : m.end() + 1]
        if nxt not in _ART_NOT_FOLLOWED:  # also true at the end of the line
            info.rank, info.elem, info.pure, info.pattern = R_ARTICLE, m.group().strip(), False, True
            if md_level and not content[m.end() :].strip():
                info.pure = True
            return info
    elif kind in ("l1", "l2", "l3", "l4"):
        rank = {"l1": R_L1, "l2": R_L2, "l3": R_L3, "l4": R_L4}[kind]
    elif kind in ("en", "di") and not md_level:
        if len(content) <= _WHOLE_CAP and not _LEAD_END.search(content):
            # A line of its own ("第一，全国动员，大办农业"): a heading above （一） items.
            info.rank, info.pattern, info.pure, info.elem = R_ENUM_HEAD, True, True, content
            return info
        info.enum, _ = _element(content, _LEAD_CAP, _LEAD_CAP)
        num = _ENUM_AT.match(content)
        info.enum_n = _cn_int(num.group(1) or num.group(2)) if num else 0
        return info
    if rank:
        info.rank, info.pattern = rank, True
        info.elem, info.pure = _element(content)
    elif md_level:
        info.rank = R_MD + md_level
        info.elem, info.pure = _element(content, 80, _LEAD_CAP)
    return info


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of the single line ``text[start:end]``, whitespace trimmed, none empty."""
    return [(a, b) for a, b, _ in _sentences(text, start, len(text) if end is None else end)]


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """Sentence spans of one line, each with whether it follows a soft paragraph gap."""
    spans: list[tuple[int, int, bool]] = []
    a, soft = start, False
    for m in _BREAK.finditer(text, start, end):
        if m.end() == m.start():
            continue
        _add_span(text, a, m.end(), spans, soft)
        a, soft = m.end(), m.lastgroup == "gap"
    if a < end:
        _add_span(text, a, end, spans, soft)
    return spans


def _add_span(text: str, a: int, b: int, spans: list, *extra: object) -> None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    if a < b:
        spans.append((a, b, *extra))


def _cut_long(text: str, a: int, b: int, max_chars: int) -> list[tuple[int, int]]:
    """Pieces of an over-long run-on sentence: cut after a comma where possible, else hard."""
    pieces: list[tuple[int, int]] = []
    while b - a > max_chars:
        window = text[a : a + max_chars]
        cut = max(window.rfind(c) for c in "，,、：:")
        cut = a + cut + 1 if cut >= max_chars // 2 else a + max_chars
        _add_span(text, a, cut, pieces)
        a = cut
    _add_span(text, a, b, pieces)
    return pieces


class _Packer:
    """Packs sentences into passages."""

    def __init__(self, text: str, pages: list[int] | None, target: int, max_chars: int) -> None:
        self.text = text
        self.pages = pages or None
        self.target = target
        self.max = max_chars
        self.passages: list[Passage] = []
        self.sentences: list[Sentence] = []
        self.start = -1  # current passage, -1 = none open
        self.end = 0
        self.para = 0
        self.path: tuple[str, ...] = ()
        self.heads_only = False
        self.head_rank = 0

    def close(self) -> None:
        if self.start < 0:
            return
        page = None
        if self.pages:
            page = max(1, bisect_right(self.pages, self.start))
        self.passages.append(
            Passage(
                seq=len(self.passages), start=self.start, end=self.end,
                text=self.text[self.start : self.end], heading_path=list(self.path),
                para=self.para, page=page,
            )
        )
        self.start = -1

    def add(self, a: int, b: int, para: int, path: tuple[str, ...], kind: str, rank: int = 0,
            pure: bool = False, rest_end: int = 0, unit_end: int = 0) -> None:
        """Add sentence ``[a, b)``; ``kind``: head, enum_para, para, enum_mid, cont or row (the
        rest of a table row, which stays with its first sentence).

        ``rest_end`` is where the sentence's paragraph ends: a short remainder of a paragraph
        joins the passage rather than making a passage of its own. ``unit_end``: where the unit
        that the sentence starts (a table row) ends; the passage is chosen for all of it.
        """
        if self.start >= 0:
            cur = self.end - self.start
            new = max(b, unit_end) - self.start
            half = self.target / 2
            if kind == "row":
                join = True
            elif new > self.max:
                join = False
            elif kind == "head":
                join = self.heads_only and rank > self.head_rank
            elif self.heads_only:
                join = True  # the first body after a heading stays with it
            elif kind == "enum_para":
                join = False  # each enumeration item starts its own passage
            elif kind in ("para", "enum_mid") and cur >= half:
                join = False
            elif unit_end:
                join = new <= self.target or (cur < half and new <= self.max)
            else:
                join = (new <= self.target or cur < half
                        or (a < rest_end and rest_end - a < self.target / 3
                            and rest_end - self.start <= self.max))
            if not join:
                self.close()
        if self.start < 0:
            self.start, self.para, self.path = a, para, path
            self.heads_only = kind == "head" and pure
            self.head_rank = rank if kind == "head" else 0
        elif self.heads_only:
            self.path = path
            if kind == "head" and pure:
                self.head_rank = rank
            else:
                self.heads_only = False
        self.end = b
        self.sentences.append(Sentence(a, b, self.text[a:b], len(self.passages)))


def _given_by_line(text: str, headings: list[Heading] | None, limit: int) -> dict[int, Heading]:
    """Map line start offset -> the format heading that starts in that line."""
    out: dict[int, Heading] = {}
    for h in headings or ():
        if not (0 <= h.start < limit) or not (h.text or "").strip():
            continue
        ls = text.rfind("\n", 0, h.start) + 1
        out.setdefault(ls, h)
    return out


_MARKUP_LINE = re.compile(r"\s*(?:<[^>]*>\s*)+$|\s*<!--.*-->\s*$")


def _skip_front(text: str, lines: list[tuple[int, int, _Line]]) -> int:
    """Index of the first line after YAML front matter and markup-only lines."""
    i = 0
    if lines and text[lines[0][0] : lines[0][1]].strip() == "---":
        for j in range(1, min(len(lines), 60)):
            if text[lines[j][0] : lines[j][1]].strip() == "---":
                i = j + 1
                break
    while i < len(lines) and _MARKUP_LINE.match(text, lines[i][0], lines[i][1]):
        i += 1
    return i


def segment(
    text: str,
    headings: list[Heading] | None = None,
    pages: list[int] | None = None,
    body_end: int | None = None,
    target_chars: int = 260,
    max_chars: int = 480,
) -> tuple[list[Passage], list[Sentence]]:
    """Split ``text`` into passages (retrieval units with heading paths) and sentences.

    ``headings`` are headings the file format marks (offsets into ``text``); ``pages[i]`` is the
    offset where page i+1 starts; text from ``body_end`` on (the 版记) is left out.
    Every non-whitespace character before ``body_end`` lies in exactly one passage, and
    ``passage.text == text[passage.start:passage.end]``.
    """
    limit = len(text) if body_end is None else max(0, min(int(body_end), len(text)))
    target_chars = max(1, int(target_chars))
    max_chars = max(target_chars, int(max_chars))
    given = _given_by_line(text, headings, limit)
    packer = _Packer(text, pages, target_chars, max_chars)
    hard_cut = 2 * max_chars

    # First pass: classify lines (needed to decide whether the first line is a title).
    lines: list[tuple[int, int, _Line]] = []
    pos = 0
    while pos < limit:
        nl = text.find("\n", pos, limit)
        le = limit if nl < 0 else nl
        if not text[pos:le].isspace() and pos < le:
            lines.append((pos, le, _classify(text, pos, le, given.get(pos))))
        pos = le + 1

    # The first line (after any front matter or markup-only lines) is the document title when it
    # is a format heading without Chinese numbering: it stays out of heading paths.
    for _, _, ln in lines[_skip_front(text, lines):]:
        if ln.rank and not ln.pattern and ln.md_level:
            ln.rank = 0
        break

    stack: list[tuple[int, str, int]] = []  # (rank, element, format heading level or 0)
    md_rank: dict[int, int] = {}  # format heading level -> rank of a numbered heading at that level
    last_enum = 0
    for para, (ls, le, info) in enumerate(lines, start=1):
        rank = info.rank
        if rank and info.pattern and R_L1 <= rank <= R_L4 and not info.md_level:
            if any(r == R_ARTICLE for r, _, _ in stack):
                rank = 0  # an item of a law article, not a heading
        if rank and info.md_level:
            if info.pattern:
                md_rank.setdefault(info.md_level, rank)
            elif info.md_level in md_rank:
                rank = md_rank[info.md_level]
            else:
                above = [lv for lv in md_rank if lv < info.md_level]
                if above:
                    rank = md_rank[max(above)] + 5
        if rank:
            lv = info.md_level
            # A format heading also closes format headings of its level or deeper.
            while stack and (stack[-1][0] >= rank or (lv and stack[-1][2] >= lv)):
                stack.pop()
            stack.append((rank, info.elem, lv))
            last_enum = 0
            first_kind = "head"
        elif info.enum:
            while stack and stack[-1][0] >= R_ENUM:
                stack.pop()
            stack.append((R_ENUM, info.enum, 0))
            last_enum = info.enum_n
            first_kind = "enum_para"
        else:
            if stack and stack[-1][0] == R_ENUM:
                stack.pop()  # a plain paragraph ends the enumeration item
            first_kind = "para"
        path = tuple(e for _, e, _ in stack)
        row = "\t" in text[ls:le] and le - ls <= max_chars  # a table row: one passage holds it

        for i, (a, b, soft) in enumerate(_sentences(text, ls, le)):
            kind = first_kind if i == 0 else "cont"
            if i > 0:
                m = _ENUM_AT.match(text, a, b)
                n = _cn_int(m.group(1) or m.group(2)) if m else 0
                if soft and stack and stack[-1][0] == R_ENUM and not n:
                    stack.pop()  # a soft paragraph without a marker ends the enumeration item
                    path = tuple(e for _, e, _ in stack)
                if soft:
                    kind = "para"
                if n and (soft or n == 1 or n == last_enum + 1):
                    last_enum = n
                    elem, _ = _element(text[a:b], _LEAD_CAP, _LEAD_CAP)
                    while stack and stack[-1][0] >= R_ENUM:
                        stack.pop()
                    stack.append((R_ENUM, elem, 0))
                    path = tuple(e for _, e, _ in stack)
                    kind = "enum_para" if soft else "enum_mid"
                if row:
                    kind = "row"
            if b - a > hard_cut:
                for j, (pa, pb) in enumerate(_cut_long(text, a, b, max_chars)):
                    packer.add(pa, pb, para, path, kind if j == 0 else "cont", rank, False, le)
            else:
                packer.add(a, b, para, path, kind, rank, info.pure and kind == "head", le,
                           le if row and i == 0 else 0)
    packer.close()
    return packer.passages, packer.sentences
