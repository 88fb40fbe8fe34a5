"""Document metadata from Chinese official-writing conventions, and ``manifest.csv`` overrides.

``extract_metadata`` reads what the text itself says: the title at the top (wrapped titles
joined), the issuing organ (title prefix before 关于, 版头 ``XXX文件``, signature block, speaker
line), the date (成文日期 in the signature, a date under the title, a speech's closing note, the
file name's ``YYYY-MM-DD-`` prefix, the year in the title), the 文号 near the top, the document
type from the title's ending (one table, ``DOC_TYPE_SUFFIXES``) and the 版记 at the end, which
is metadata and not body text (``body_end``).

Nothing here changes the text: every value is read from a cleaned *view* of the text that has
the same length and the same line breaks (HTML tags, entities, front matter and zero-width
characters blanked), so offsets found in the view are offsets into the stored text.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from yuanwen.conventions import (
    CN_DIGITS, CN_SMALL, DATE_PATTERN, DATE_RE, DOC_NUMBER_PATTERN, HAN, HAN_UNIFIED, MASK_CHARS, MONTH_DAY,
    SPACE, YEAR, is_masked, iso_date, parse_date,
)
from yuanwen.errors import ReadError
from yuanwen.vocab import doc_type_endings, speakers

MANIFEST_NAME = "manifest.csv"

# ---------------------------------------------------------------------------------------------
# Tables (data, not if-chains)
# ---------------------------------------------------------------------------------------------

#: Title ending -> document type (``yuanwen/data/doc_types.tsv``). Matched longest ending first,
#: after trailing parentheticals such as ``（试行）`` or ``（2018年）`` are set aside.
DOC_TYPE_SUFFIXES: dict[str, str] = doc_type_endings()
#: Whole-title patterns checked before the endings: a law of the PRC (``中华人民共和国…法``).
DOC_TYPE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^中华人民共和国\S*(?<![办方做想])法(?:修正案)?$", "法律"),
    (r"^(?:中华人民共和国)?宪法(?:修正案)?$", "法律"),
)
#: Endings of the name of an organ (发文机关), used to tell an organ line from other short lines.
ORGAN_SUFFIXES: tuple[str, ...] = (
    "院", "厅", "部", "委", "局", "会", "办", "室", "署", "府", "党委", "党组", "中央", "军委",
    "司", "处", "科", "所", "行", "团", "组", "社", "联", "协会", "公司", "集团", "中心", "站",
    "队", "开发区", "管委会", "大学", "学院", "学校", "医院", "馆", "人大", "政协", "办事处",
    "街道", "支部", "总支",
)
#: Job titles that may precede a speaker's name (``国务院总理　李克强``).
POSITION_WORDS: tuple[str, ...] = (
    "总书记", "国家主席", "副主席", "主席", "副总理", "总理", "委员长", "省长", "市长", "区长",
    "县长", "州长", "书记", "部长", "主任", "院长", "局长",
)
#: Speakers whose names cannot be delimited otherwise in run-on text (``※习近平今天，…``),
#: from ``yuanwen/data/speakers.tsv``.
KNOWN_SPEAKERS: tuple[str, ...] = speakers()
#: Keys of format metadata (HTML info table, front matter, a ``键：值`` line) -> our field.
HINT_KEYS: dict[str, str] = {
    "title": "title", "标题": "title", "题名": "title",
    "issuer": "issuer", "发文机关": "issuer", "发布机关": "issuer", "制定机关": "issuer",
    "date": "date", "成文日期": "date", "发文日期": "date",
    "doc_number": "doc_number", "发文字号": "doc_number", "文号": "doc_number",
    "doc_type": "doc_type", "文种": "doc_type", "公文种类": "doc_type",
    "speaker": "speaker", "讲话人": "speaker",
    "access": "access", "访问级别": "access",  # who may read it (yuanwen/access.py)
}
#: Lines of the 版头 area that are neither title nor body (urgency, secrecy, copy number).
_HEAD_NOISE = re.compile(r"^(?:特急|加急|特提|平急|急件|(?:绝密|机密|秘密)(?:★.*)?|\d{6}|[A-Z]?\d{5,8})$")
#: A test or sample marker printed before the organ in specimen documents (``测试符路桥区卫生局``):
#: not part of the name when what follows starts with a place (``路桥区``, ``浙江省``).
_TEST_MARK = re.compile(f"^(?:测试符|测试|样例|示例|样本)(?=[{HAN}]{{1,8}}?(?:省|自治区|市|区|县|州|盟|旗|镇|乡))")

# ---------------------------------------------------------------------------------------------
# Character classes and patterns
# ---------------------------------------------------------------------------------------------
_MASK = re.escape(MASK_CHARS)
_SPACE = SPACE
_Y = YEAR
_MD = MONTH_DAY
_S = f"[{_SPACE}]*"
_DATE = DATE_RE
_DATE_LINE = re.compile(f"^{DATE_PATTERN}$")
# A year in a title: 2022年 (not 20**年, not the end of a range like 2024—2026年).
_TITLE_YEAR = re.compile(
    f"(?<![\\d０-９{_MASK}—\\-－~～至到])(?P<y>(?:19|20)\\d{{2}}|[〇○零{CN_DIGITS}]{{4}})年"
    f"(?![{_SPACE}]*[{_MASK}])"
)
_DOC_NUMBER_LINE = re.compile(
    f"^(?P<num>{DOC_NUMBER_PATTERN})(?:[{_SPACE}]*(?:签发人|签发)[:：].*)?$"
)
_ORDER_NUMBER_LINE = re.compile(f"^(?P<num>[{HAN}]{{2,30}}令{_S}第{_S}[\\d{_MASK}]{{1,6}}{_S}号)$")
_PAREN_TAIL = re.compile(r"[（(【\[][^（）()【】\[\]]{0,40}[）)】\]]$")
_SENTENCE_END = "。！？；!?;…，,、"
_ENUM_START = re.compile(
    f"^(?:第[{CN_SMALL}百零〇\\d]+[章节条编部分]|[{CN_SMALL}]+[、．.]"
    f"|[（(][{CN_SMALL}\\d]+[）)]|\\d+[.．、]|序言|目录|前言|总则|附件)"
)
_RULE_LINE = re.compile(r"^[-—─━_=＿－~～*·.]{3,}$")
_SALUTATION_END = ("：", ":")
_TITLE_MAX = 80
_TOP_LINES = 10
_HEADER_LINES = 8


# ---------------------------------------------------------------------------------------------
# Small public helpers
# ---------------------------------------------------------------------------------------------
def doc_type_of(title: str | None) -> str | None:
    """The document type a title's ending names (``…的通知`` -> 通知), from the one table."""
    if not title:
        return None
    t = _squash(title)
    for _ in range(3):  # set aside （试行）, （2018年）, （国家安全生产监督管理总局令第85号）, ...
        stripped = _PAREN_TAIL.sub("", t)
        if stripped == t or not stripped:
            break
        t = stripped
    for pattern, dtype in DOC_TYPE_PATTERNS:
        if re.search(pattern, t):
            return dtype
    for suffix in _SUFFIXES_LONGEST_FIRST:
        if t.endswith(suffix):
            return DOC_TYPE_SUFFIXES[suffix]
    return None


_SUFFIXES_LONGEST_FIRST = sorted(DOC_TYPE_SUFFIXES, key=len, reverse=True)


def _squash(s: str) -> str:
    """Trim and collapse inner whitespace runs to one space."""
    return re.sub(f"[{_SPACE}\r\n]+", " ", s).strip()


# ---------------------------------------------------------------------------------------------
# The cleaned view and its lines
# ---------------------------------------------------------------------------------------------
@dataclass
class _Line:
    start: int  # offset of the line in the text
    text: str  # cleaned content: markup blanked, whitespace and markdown markers trimmed


def _blank(m: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", m.group())


def _front_matter_span(text: str) -> tuple[int, int] | None:
    m = re.match(r"\ufeff?---[ \t]*\r?\n", text)
    if not m:
        return None
    end = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M).search(text, m.end(), m.end() + 5000)
    return (0, end.end()) if end else None


def _clean_view(text: str) -> str:
    """The text with markup and invisible characters blanked: same length, same line breaks."""
    v = text
    fm = _front_matter_span(v)
    if fm:
        v = _blank_span(v, *fm)
    v = re.sub(r"<!--.*?-->", _blank, v, flags=re.S)
    v = re.sub(r"</?[A-Za-z][^<>]{0,3000}>", _blank, v)
    v = re.sub(r"&(?:[a-z]{2,8}|#\d{2,6}|#x[0-9a-fA-F]{2,5});", _blank, v)
    v = re.sub("[\u200b\u200c\u200d\u2060\ufeff\r]", " ", v)
    return v


def _blank_span(v: str, a: int, b: int) -> str:
    return v[:a] + re.sub(r"[^\n]", " ", v[a:b]) + v[b:]


def _lines(view: str) -> list[_Line]:
    """The non-empty lines of the view, with markdown markers and spacing trimmed."""
    out: list[_Line] = []
    pos = 0
    for raw in view.split("\n"):
        s = raw.strip(_SPACE + "\r")
        s = re.sub(r"^(?:#{1,6}|>+)\s*", "", s)
        s = re.sub(r"^(\*\*|__)(.*)\1$", r"\2", s).strip(_SPACE)
        if s:
            out.append(_Line(pos, s))  # rule lines are kept: they set off the 版记
        pos += len(raw) + 1
    return out


# ---------------------------------------------------------------------------------------------
# Line kinds
# ---------------------------------------------------------------------------------------------
def _is_organ(s: str) -> bool:
    """True for the name of an organ, or several separated by spaces or 、 (a signature line)."""
    s = s.strip(_SPACE)
    if not 2 <= len(s) <= 60 or "关于" in s or re.search(r"[，。！？；：:“”《》,.!?;]", s):
        return False
    s = re.sub(r"[（(](?:印章|盖章|章)[）)]$", "", s)
    parts = [p for p in re.split(f"[{_SPACE}、]+", s) if p]
    return bool(parts) and all(
        re.fullmatch(f"[{HAN}{_MASK}（）()]{{2,40}}", p) and p.endswith(ORGAN_SUFFIXES) for p in parts
    )


def _is_doc_number_line(s: str) -> str | None:
    m = _DOC_NUMBER_LINE.match(s) or _ORDER_NUMBER_LINE.match(s)
    return _squash(m.group("num")) if m else None


def _looks_like_title_line(s: str) -> bool:
    return (
        len(s) <= _TITLE_MAX
        and not re.search("[。！？!?]", s)  # a title is never a sentence
        and not s.endswith(tuple(_SENTENCE_END) + _SALUTATION_END)
        and not _ENUM_START.match(s)
        and not _DATE.match(s.lstrip("（(—-－ "))
        and not _is_doc_number_line(s)
        and not _RULE_LINE.match(s)
        and not re.match(r"^[（(]?[—-]{1,2}", s)
    )


def _name_at(rest: str, end_note_name: str | None) -> str | None:
    """The speaker's name at the start of run-on text (``习近平今天，…``)."""
    rest = rest.lstrip(_SPACE)
    for name in ((end_note_name,) if end_note_name else ()) + KNOWN_SPEAKERS:
        if rest.startswith(name):
            return name
    m = re.match(f"[{HAN}](?:[{_SPACE}]?[{HAN}]){{1,3}}", rest)
    if m and re.search(f"[{_SPACE}]", m.group()):  # spaced name: 习　近　平
        return re.sub(f"[{_SPACE}]", "", m.group())
    m = re.match(f"[{HAN}]{{3}}", rest)
    return m.group() if m else None


_POSITION = "(?:" + "|".join(sorted(map(re.escape, POSITION_WORDS), key=len, reverse=True)) + ")"
_POSITION_ONLY = re.compile(f"^[{HAN}]{{0,24}}{_POSITION}$")
_SPEAKER_LINE = re.compile(
    f"^(?:(?P<pos>[{HAN}]{{0,24}}{_POSITION})[{_SPACE}]*)?"
    f"(?P<name>[{HAN}](?:[{_SPACE}]*[{HAN}]){{1,3}}?)(?:同志)?"
    f"(?:(?:作|所作)[{HAN}]{{0,12}}[。.]?)?$"
)
_NOT_NAMES = frozenset({"同志们", "各位代表", "目录", "序言", "前言", "附件", "说明", "总则", "来源"})


def _speaker_line(s: str, after_position: str | None) -> tuple[str | None, str] | None:
    """(position, name) when the line names the speaker (``习　近　平``, ``国务院总理　李克强``)."""
    m = _SPEAKER_LINE.match(s)
    if not m:
        return None
    pos, raw = m.group("pos"), m.group("name")
    name = re.sub(f"[{_SPACE}]", "", raw)
    if name in _NOT_NAMES or not 2 <= len(name) <= 4:
        return None
    spaced = raw != name
    if pos or after_position or spaced or name in KNOWN_SPEAKERS:
        return (pos or after_position, name)
    return None


# ---------------------------------------------------------------------------------------------
# extract_metadata
# ---------------------------------------------------------------------------------------------
def extract_metadata(text: str, path: Path, hints: dict[str, str] | None = None) -> dict:
    """Title, issuer, date, 文号, type and 版记 of one document, from its text and format hints.

    ``hints`` (HTML info table, front matter, DOCX core properties) win over guesses from the
    text; ``html_title`` and ``pdf_title`` are only fallbacks for the title. Returns the keys
    ``title, issuer, date, doc_number, doc_number_masked, doc_type, body_end, extra``;
    ``body_end`` is the offset where the 版记 starts (or None), whose parts go to ``extra``
    (``cc``, ``printed_by``, ``printed_date``), with ``extra['speaker']`` for speeches.
    """
    path = Path(path)
    view = _clean_view(text)
    lines = _lines(view)
    extra: dict[str, Any] = {}
    given = _normalise_hints(hints or {})
    soft = _normalise_hints(_front_matter_hints(text))  # front matter the reader left in
    # the access level only from format metadata or front matter, never from a body line
    if given.get("access") or soft.get("access"):
        extra["access"] = given.get("access") or soft.get("access")
    soft.update({k: v for k, v in _info_lines(lines).items() if k not in soft})

    tail_start, banji = _banji(lines)
    extra.update(banji)
    body_lines = [ln for ln in lines if tail_start is None or ln.start < tail_start]

    head = _read_head(body_lines, view)
    extra.update(head.extra)

    # ---- title
    title_src = "text"
    title = given.get("title") or soft.get("title") or head.title
    if given.get("title") or soft.get("title"):
        title_src = "hints"
    if not title:
        title, title_src = _fallback_title(hints or {}, path)
    title = _squash(title)

    # ---- date
    date, date_from = None, None
    sig_organs, sig_date = _signature(body_lines, head.body_index)
    end_note = _end_note(view)
    pub = _publication(view)
    if pub:
        extra["publication"] = pub
    candidates = [
        ("hints", parse_date(given.get("date"))),
        ("signature", sig_date),
        ("header", head.date),
        ("info", parse_date(soft.get("date"))),
        ("end_note", end_note.get("date")),
        ("file_name", _file_name_date(path)),
        ("dateline", _dateline(view, pub)),
        ("title", _title_year(title) if title_src != "file_name" else None),
    ]
    for source, value in candidates:
        if value:
            date, date_from = value, source
            break
    if date_from:
        extra["date_from"] = date_from

    # ---- speaker
    speaker = given.get("speaker") or soft.get("speaker") or head.speaker or end_note.get("speaker")
    if speaker:
        extra["speaker"] = speaker
    if head.speaker_title and "speaker_title" not in extra:
        extra["speaker_title"] = head.speaker_title

    # ---- issuer
    issuer = (
        given.get("issuer")
        or soft.get("issuer")
        or _issuer_from_title(title)
        or head.organ_mark
        or ("、".join(sig_organs) if sig_organs else None)
        or speaker
        or head.legislature
    )

    if issuer and not (given.get("issuer") or soft.get("issuer")):
        issuer = _TEST_MARK.sub("", issuer)

    # ---- 文号
    doc_number = given.get("doc_number") or soft.get("doc_number") or head.doc_number
    if not doc_number:
        m = re.search(f"[（(](?P<num>{DOC_NUMBER_PATTERN}|[{HAN}]{{2,30}}令第\\d+号)[，,）)]", title)
        doc_number = _squash(m.group("num")) if m else None
    doc_number = _squash(doc_number) if doc_number else None

    # ---- type
    doc_type = given.get("doc_type") or soft.get("doc_type") or doc_type_of(title)
    if not doc_type and speaker and (head.speaker or end_note.get("speaker")):
        doc_type = "讲话"

    return {
        "title": title,
        "issuer": _squash(issuer) if issuer else None,
        "date": date,
        "doc_number": doc_number,
        "doc_number_masked": is_masked(doc_number),
        "doc_type": doc_type,
        "body_end": tail_start,
        "extra": extra,
    }


# ---- hints -----------------------------------------------------------------------------------
def _normalise_hints(hints: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in hints.items():
        if not isinstance(value, str) or not value.strip():
            continue
        k = re.sub(f"[{_SPACE}：:]", "", str(key)).lower()
        fname = HINT_KEYS.get(k)
        if fname and fname not in out:
            out[fname] = value.strip()
    return out


def _front_matter_hints(text: str) -> dict[str, str]:
    """``key: value`` pairs of a YAML front matter block the reader left in the text."""
    fm = _front_matter_span(text)
    if not fm:
        return {}
    out: dict[str, str] = {}
    for line in text[fm[0]:fm[1]].splitlines()[1:-1]:
        # Key bounded, value taken whole and stripped here: linear on long runs of spaces.
        m = re.match(rf"^([A-Za-z_{HAN_UNIFIED}][\w{HAN_UNIFIED} ]{{0,63}}?)\s*+:\s*(.+)$", line)
        if m:
            value = m.group(2).rstrip() or m.group(2)[:1]
            out[m.group(1)] = value.strip("'\"")
    return out


def _info_lines(lines: list[_Line]) -> dict[str, str]:
    """``发文字号：国办发〔2018〕123号`` lines of an info table copied into the text (top only)."""
    out: dict[str, str] = {}
    top = lines[:40]
    for i, ln in enumerate(top):
        m = re.match(f"^([{HAN}{_SPACE}]{{2,10}})[：:](.*)$", ln.text)
        if not m:
            continue
        key = re.sub(f"[{_SPACE}]", "", m.group(1))
        fname = HINT_KEYS.get(key)
        if not fname or fname in out:
            continue
        value = m.group(2).strip(_SPACE)
        if not value and i + 1 < len(top) and not re.search("[：:]$", top[i + 1].text):
            value = top[i + 1].text
        if value:
            out[fname] = value
    return out


def _fallback_title(hints: dict[str, str], path: Path) -> tuple[str, str]:
    html_title = (hints.get("html_title") or "").strip()
    if html_title:
        first = re.split(r"\s*(?:_|\||｜| - | — )\s*", html_title)[0].strip()
        if first:
            return first, "html_title"
    pdf_title = (hints.get("pdf_title") or hints.get("ofd_title") or "").strip()
    if (
        len(re.findall(f"[{HAN}]", pdf_title)) >= 4
        and not re.search(r"(?i)microsoft|\.(?:docx?|wps|pdf|txt)\b|untitled|无标题", pdf_title)
    ):
        return pdf_title, "pdf_title"
    stem = re.sub(r"^\d{4}-\d{1,2}-\d{1,2}[-_ ]?", "", path.stem) or path.stem
    return stem, "file_name"


def _file_name_date(path: Path) -> str | None:
    m = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?=[-_ .]|$)", path.name)
    return iso_date(*m.groups()) if m else None


def _title_year(title: str) -> str | None:
    t = re.sub(r"《[^》]*》", "", title)  # a year inside a cited title is not this document's
    m = _TITLE_YEAR.search(t)
    return iso_date(m.group("y")) if m else None


# ---- head: 版头, title, 文号, the lines under the title ----------------------------------------
@dataclass
class _Head:
    title: str | None = None
    body_index: int = 0  # index (in the line list) of the first body line
    organ_mark: str | None = None
    doc_number: str | None = None
    date: str | None = None
    speaker: str | None = None
    speaker_title: str | None = None
    legislature: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_INLINE_STAR = re.compile(f"^(?P<title>[^※\n]{{2,{_TITLE_MAX}}}?)※(?P<rest>.*)$", re.S)
_INLINE_DATE = re.compile(
    f"^(?P<title>[^。！？；\n]{{2,{_TITLE_MAX}}}?)[（(]{_S}(?P<date>{DATE_PATTERN.replace('?P<', '?P<i')})"
    f"(?:[，,、{_SPACE}]+[^）)]{{1,12}})?{_S}[）)](?P<rest>.*)$",
    re.S,
)


def _read_head(lines: list[_Line], view: str) -> _Head:
    head = _Head()
    end_note_name = _end_note(view).get("speaker")
    i, n = 0, len(lines)
    # 1. 版头: organ mark (XXX文件 or a bare organ line above the title), 份号, 密级, 紧急程度, 文号
    while i < min(n, _TOP_LINES):
        s = lines[i].text
        num = _is_doc_number_line(s)
        if num:
            head.doc_number = head.doc_number or num
            i += 1
            continue
        if _HEAD_NOISE.match(s) or _RULE_LINE.match(s):
            i += 1
            continue
        m = re.match(f"^(?P<org>[{HAN}]{{2,30}})令$", s)  # 国家安全生产监督管理总局令 / 第86号
        if m and i + 1 < n and re.fullmatch(r"第\d{1,6}号", lines[i + 1].text):
            head.organ_mark = head.organ_mark or re.sub("^中华人民共和国", "", m.group("org")) or None
            head.doc_number = head.doc_number or s + lines[i + 1].text
            i += 2
            continue
        m = re.match(f"^(?P<org>[{HAN}{_MASK}{_SPACE}、]{{2,60}}?)文件$", s)
        if m and "关于" not in s and (_is_organ(m.group("org")) or len(s) <= 30):
            head.organ_mark = _squash(m.group("org"))
            i += 1
            continue
        if _is_organ(s) and doc_type_of(s) is None and _title_follows(lines, i + 1):
            head.organ_mark = _squash(s)
            i += 1
            continue
        if (head.organ_mark and not head.doc_number and _is_organ(s) and doc_type_of(s) is None
                and "文件" not in s and i + 1 < n and _is_doc_number_line(lines[i + 1].text)):
            # a joint 版头: the second issuer under ``XX文件``, just above the 文号
            head.organ_mark = f"{head.organ_mark}、{_squash(s)}"
            i += 1
            continue
        break
    # 2. the title (possibly wrapped over lines, possibly run on into the text)
    parts: list[str] = []
    if i < n:
        first = lines[i].text
        # (t ends on a non-space and the gap is possessive: linear on long runs of spaces)
        m = re.match(f"^(?P<t>.*?[^{_SPACE}])[{_SPACE}]++(?P<num>{DOC_NUMBER_PATTERN})$", first)
        if m:  # 标题 国能综通安全〔2021〕108号
            first = m.group("t")
            head.doc_number = head.doc_number or _squash(m.group("num"))
        inline = _inline_title(first, end_note_name)
        if inline:
            head.title, date, pos, name = inline
            head.date = date
            head.speaker, head.speaker_title = name, pos
            i += 1
        elif _looks_like_title_line(first):
            parts.append(first)
            i += 1
            while i < n and len(parts) < 4:
                s = lines[i].text
                so_far = "".join(parts)
                if s.startswith(("——", "—")) and not re.match(f"^—+{_S}{_Y}{_S}年", s):
                    parts.append(s)  # subtitle: ——在…上的报告
                    i += 1
                    break
                if doc_type_of(so_far) is not None or len(parts) >= 3:
                    if re.fullmatch(r"[（(][^（）()]{1,30}[）)]", s) and not _DATE.search(s):
                        parts.append(s)  # （试行）, （2018年中央一号文件）
                        i += 1
                    break
                if not _looks_like_title_line(s) or len(s) > 40 or _speaker_line(s, None):
                    break
                if _info_key(s):
                    break
                parts.append(s)
                i += 1
            head.title = _join_title(parts)
    # 3. the lines under the title: dates, speaker, 文号, 来源, until the body starts
    dates: list[str] = [head.date] if head.date else []
    position: str | None = None
    seen = 0
    while i < n and seen < _HEADER_LINES:
        s = lines[i].text
        seen += 1
        num = _is_doc_number_line(s)
        if num:
            head.doc_number = head.doc_number or num
            i += 1
            continue
        if s.endswith(_SALUTATION_END) or _ENUM_START.match(s):
            break
        if head.title and len(s) >= 4 and s in head.title:
            i += 1  # the title repeated
            continue
        m = re.match(f"^(?:来源|稿源|出处){_S}[：:]{_S}(?P<src>.*?[^{_SPACE}])[{_SPACE}]*+"
                     f"(?P<rest>{DATE_PATTERN}.*)?$", s)
        if m:
            head.extra["source"] = m.group("src")
            if not m.group("rest"):
                i += 1
                continue
            s = m.group("rest")
        m = re.match(f"^[（(]?[—\\-－]*{_S}(?P<rest>{DATE_PATTERN}.*)$", s)
        if m and len(s) <= 400:
            found = list(_DATE.finditer(s))
            for k, d in enumerate(found):
                after = s[d.end() : found[k + 1].start() if k + 1 < len(found) else len(s)]
                if re.search("施行|生效", after) and not re.search(_ENACTED, after):
                    continue  # the date it takes effect is not the date it was made
                iso = iso_date(d.group("y"), d.group("m"), d.group("d"))
                if iso:
                    dates.append(iso)
            head.legislature = head.legislature or _legislature(s)
            # 2025年1月14日在…会议上北京市市长 殷勇同志作政府工作报告。
            sp = re.search(f"{_POSITION}{_S}(?P<name>[{HAN}]{{2,3}}?)(?:同志)?(?:作|所作)", s)
            if sp and not head.speaker:
                head.speaker = sp.group("name")
            i += 1
            continue
        if _POSITION_ONLY.match(s) and not head.speaker:
            position = s
            i += 1
            continue
        sp = _speaker_line(s, position)
        if sp and not head.speaker:
            head.speaker_title, head.speaker = sp
            i += 1
            continue
        if re.fullmatch(r"[（(][^（）()]{1,60}[）)]", s):
            i += 1
            continue
        break
    if dates:
        head.date = max(dates, key=lambda d: (d, len(d)))
    head.body_index = i
    return head


def _info_key(s: str) -> bool:
    m = re.match(f"^([{HAN}{_SPACE}]{{2,10}})[：:]", s)
    return bool(m) and re.sub(f"[{_SPACE}]", "", m.group(1)) in HINT_KEYS


def _title_follows(lines: list[_Line], j: int) -> bool:
    """A title-like line comes within the next three lines (so the line before is a 版头)."""
    for ln in lines[j : j + 3]:
        s = ln.text
        if _is_doc_number_line(s) or _RULE_LINE.match(s):
            continue
        return _looks_like_title_line(s) and ("关于" in s or doc_type_of(s) is not None)
    return False


def _inline_title(s: str, end_note_name: str | None) -> tuple[str, str | None, str | None, str | None] | None:
    """Run-on openings: ``标题※习近平…`` or ``标题（2018年2月12日）习近平…``."""
    m = _INLINE_STAR.match(s)
    if m and not re.search(r"[。！？]", m.group("title")):
        rest = m.group("rest")
        pos, rest = _leading_position(rest)
        return m.group("title").strip(_SPACE), None, pos, _name_at(rest, end_note_name)
    m = _INLINE_DATE.match(s)
    if not m:
        return None
    title = m.group("title").strip(_SPACE)
    pos, rest = _leading_position(m.group("rest"))
    name = _name_at(rest, end_note_name) if rest.strip(_SPACE) else None
    if name and not (pos or name in KNOWN_SPEAKERS or name == end_note_name):
        name = None  # the text runs straight on: no speaker to be sure of
    if doc_type_of(title) is None and name is None:
        return None  # 党的十八大以来（2012年11月8日），… is a sentence, not a title
    return title, iso_date(m.group("iy"), m.group("im"), m.group("id")), pos, name


def _leading_position(rest: str) -> tuple[str | None, str]:
    m = re.match(f"^(?P<pos>[{HAN}]{{0,24}}{_POSITION})[{_SPACE}]+", rest)
    return (m.group("pos"), rest[m.end():]) if m else (None, rest)


def _join_title(parts: list[str]) -> str | None:
    """Join title lines: a wrapped official title runs on; parallel headline lines get a space."""
    if not parts:
        return None
    main = [p for p in parts if not p.startswith("—")]
    sub = [p for p in parts if p.startswith("—")]
    out = main[0]
    for nxt in main[1:]:
        wrapped = (
            "关于" in out
            or len(nxt) <= 3
            or nxt.startswith(("的", "（", "("))
            or (doc_type_of(out) is None and doc_type_of(out + nxt) is not None and not sub)
        )
        out = out + nxt if wrapped else f"{out} {nxt}"
    return out + "".join(sub)


_ENACTED = "通过|公布|发布|修订|修正|修改|批准|印发"


def _legislature(s: str) -> str | None:
    """The enacting body named in a law's 题注 (…第十九次会议修订 / 国务院令第302号公布)."""
    m = re.search(
        f"(?P<place>[{HAN}]{{2,10}}?(?:省|市|自治区))?第[{CN_SMALL}]+届"
        f"(?P<body>全国人民代表大会常务委员会|全国人民代表大会|人民代表大会常务委员会|人民代表大会)"
        f"第[{CN_SMALL}]+次(?:全体)?会议{_S}(?:审议)?(?:通过|修订|修正|批准)",
        s,
    )
    if m:  # a report delivered *to* a congress (…会议上) is not enacted by it
        place = re.split("[在日]", m.group("place") or "")[-1]
        return place + m.group("body")
    if re.search(f"国务院第[{CN_SMALL}百\\d]+次常务会议", s):
        return "国务院"
    m = re.search(f"(?:^|(?<=[^{HAN}])|日|以|由|经)(?P<orgs>[{HAN}、]{{2,60}}?)令{_S}第", s)
    if m:
        orgs = re.sub("^[日以由经]+", "", m.group("orgs")).split("、")
        orgs = [re.sub("^中华人民共和国", "", o) for o in orgs]
        orgs = [o for o in orgs if o]
        if orgs and all(o.endswith(ORGAN_SUFFIXES) for o in orgs):
            return "、".join(orgs)
    m = re.search(f"日{_S}(?P<org>[{HAN}、{_SPACE}]{{2,60}}?){_S}(?:{_ENACTED})$", s)
    if m and _is_organ(m.group("org")):
        return _squash(m.group("org"))
    return None


# ---- issuer from the title -------------------------------------------------------------------
_TITLE_ISSUER_MARK = re.compile(f"关于|转发|印发|批转|对|(?:{_Y})年")


def _issuer_from_title(title: str) -> str | None:
    """``国务院办公厅关于…`` -> 国务院办公厅; ``市应急管理局党委2022年…报告`` -> 市应急管理局党委."""
    for m in _TITLE_ISSUER_MARK.finditer(title):
        prefix = title[: m.start()].strip(_SPACE)
        if prefix and len(prefix) <= 60 and _is_organ(prefix):
            return prefix
        if m.group() == "关于":
            break
    return None


# ---- signature block -------------------------------------------------------------------------
def _signature(lines: list[_Line], start: int) -> tuple[list[str], str | None]:
    """Organ line(s) followed by a date line (the first such block), else a lone closing date."""
    for i in range(max(start, 1), len(lines)):
        s = lines[i].text
        m = _DATE_LINE.match(s)
        same_line = None
        if not m:
            m2 = re.match(f"^(?P<org>.{{0,63}}?[^{_SPACE}])[{_SPACE}]++(?P<date>{DATE_PATTERN.replace('?P<', '?P<s')})$", s)
            if m2 and _is_organ(m2.group("org")):
                same_line = m2
            else:
                continue
        if same_line:
            iso = iso_date(same_line.group("sy"), same_line.group("sm"), same_line.group("sd"))
            if iso:
                return _split_organs(same_line.group("org")), iso
            continue
        iso = iso_date(m.group("y"), m.group("m"), m.group("d"))
        if not iso:
            continue
        organs: list[str] = []
        j = i - 1
        while j >= max(start, 0) and len(organs) < 3 and _is_organ(lines[j].text):
            organs[:0] = _split_organs(lines[j].text)
            j -= 1
        if organs:
            return organs, iso
        if re.match(f"^[{HAN}]{{0,24}}{_POSITION}[{_SPACE}]", lines[i - 1].text):
            return [], iso  # signed by a person: 局长　杨焕宁
        if i >= len(lines) - 4:  # a lone date line closing the document
            return [], iso
    return [], None


def _split_organs(s: str) -> list[str]:
    return [p for p in re.split(f"[{_SPACE}、]+", s.strip(_SPACE)) if p]


# ---- speech notes, datelines, publication ------------------------------------------------------
def _end_note(view: str) -> dict[str, str]:
    """``※这是习近平总书记2015年11月23日在…时的讲话。`` -> speaker and date."""
    tail = view[-600:]
    m = re.search(
        f"这是(?P<name>[{HAN}]{{2,4}}?)(?:总书记|同志|主席|总理|委员长){_S}(?P<dd>{DATE_PATTERN})?", tail
    ) or re.search(f"这是(?P<name>[{HAN}]{{2,4}}?){_S}(?P<dd>{DATE_PATTERN})", tail)
    if not m:
        return {}
    out = {"speaker": m.group("name")}
    if m.group("dd"):
        iso = iso_date(m.group("y"), m.group("m"), m.group("d"))
        if iso:
            out["date"] = iso
    return out


_PUBLICATION = re.compile(
    f"《{_S}(?P<name>[^《》\n]{{2,20}}?){_S}》{_S}[（(]{_S}(?P<date>{_Y}{_S}年{_S}{_MD}{_S}月{_S}{_MD}{_S}日)"
    f"{_S}(?:第{_S})?(?P<page>\\d{{1,3}}){_S}版{_S}[）)]"
)


def _publication(view: str) -> dict[str, str] | None:
    """``《 人民日报 》（ 2020年01月09日 02 版）`` at the end -> name, date, page."""
    m = None
    for m in _PUBLICATION.finditer(view[-400:]):
        pass
    if not m:
        return None
    out = {"name": m.group("name").strip(_SPACE)}
    iso = parse_date(m.group("date"))
    if iso:
        out["date"] = iso
    out["page"] = str(int(m.group("page")))
    return out


def _dateline(view: str, pub: dict[str, str] | None) -> str | None:
    """``（新华社北京1月8日电）`` dated with the publication's year."""
    if not pub or "date" not in pub:
        return None
    m = None
    for m in re.finditer(rf"[（(]新华社[{HAN_UNIFIED}]{{0,6}}?(\d{{1,2}})月(\d{{1,2}})日电[）)]", view[-800:]):
        pass
    if not m:
        return None
    year, pub_month = int(pub["date"][:4]), int(pub["date"][5:7])
    month = int(m.group(1))
    if month > pub_month:
        year -= 1
    return iso_date(str(year), m.group(1), m.group(2))


# ---- 版记 -------------------------------------------------------------------------------------
_BANJI_START = re.compile(f"^(?:抄送|主送|分送|发送|印发机关|印发日期)(?:[：:]|[{_SPACE}]+)")
_PRINTED = re.compile(
    # ``org`` is bounded (an organ name is at most 60 characters, see _is_organ): unbounded, a
    # line holding a long run of spaces took quadratic time.
    f"^(?P<org>.{{0,63}}?[^{_SPACE}])[{_SPACE}]*+(?P<date>{DATE_PATTERN}){_S}(?:印发|印制|翻印)$"
)


def _printed(s: str) -> re.Match[str] | None:
    """``国务院办公厅秘书局　2018年12月27日印发``."""
    m = _PRINTED.match(s)
    return m if m and _is_organ(m.group("org")) else None


def _banji(lines: list[_Line]) -> tuple[int | None, dict[str, str]]:
    """The 版记 at the end (抄送…, XX 2018年12月27日印发): its start offset and parts."""
    tail = lines[-15:]
    first = None
    for k, ln in enumerate(tail):
        if _BANJI_START.match(ln.text) or _printed(ln.text):
            first = k
            break
    if first is None:
        return None, {}
    block = tail[first:]
    if any(len(ln.text) > 200 for ln in block):
        return None, {}
    k = first
    while k > 0 and _RULE_LINE.match(tail[k - 1].text):
        k -= 1
    extra: dict[str, str] = {}
    cc: list[str] = []
    in_cc = False
    for ln in block:
        s = ln.text
        if _RULE_LINE.match(s):
            in_cc = False
            continue
        m = _printed(s)
        if m:
            extra["printed_by"] = _squash(m.group("org"))
            iso = iso_date(m.group("y"), m.group("m"), m.group("d"))
            if iso:
                extra["printed_date"] = iso
            in_cc = False
            continue
        m = re.match(f"^(?P<key>抄送|主送|分送|发送|印发机关|印发日期)[：:]?{_S}(?P<val>.*)$", s)
        if m:
            key, val = m.group("key"), m.group("val")
            in_cc = key == "抄送"
            if in_cc:
                cc.append(val)
            elif key == "主送":
                extra["to"] = _squash(val)
            elif key == "印发机关":
                org = re.split(f"[{_SPACE}]*印发日期[：:]", val)[0]
                extra["printed_by"] = _squash(org)
                d = parse_date(val[len(org):]) if "印发日期" in val else None
                if d:
                    extra["printed_date"] = d
            elif key == "印发日期":
                d = parse_date(val)
                if d:
                    extra["printed_date"] = d
            continue
        if in_cc:
            cc.append(s)
    if cc:
        extra["cc"] = _squash("".join(cc)).rstrip("。")
    return tail[k].start, extra


# ---------------------------------------------------------------------------------------------
# manifest.csv
# ---------------------------------------------------------------------------------------------
def _norm_key(name: str) -> str:
    s = unicodedata.normalize("NFC", name.strip().replace("\\", "/"))
    parts = [p for p in PurePosixPath(s).parts if p not in (".", "")]
    return "/".join(parts)


def load_manifest(folder: Path) -> dict[str, dict[str, str]]:
    """The rows of ``folder/manifest.csv`` keyed by the ``file`` column (posix, relative).

    Values hold only the non-empty fields (``title, issuer, date, doc_type``, optional
    ``doc_number`` and any other column). A folder without a manifest gives ``{}``.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return {}
    st = path.stat()
    rows = _load_manifest_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)
    return {k: dict(v) for k, v in rows.items()}  # callers may change their copy


@lru_cache(maxsize=256)
def _load_manifest_cached(path_str: str, mtime_ns: int, size: int) -> dict[str, dict[str, str]]:
    path = Path(path_str)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = [(f or "").strip() for f in (reader.fieldnames or [])]
            if "file" not in fields:
                raise ReadError(path, "manifest.csv 缺少 file 列：第一行应为表头，如 file,title,issuer,date,doc_type")
            out: dict[str, dict[str, str]] = {}
            for row in reader:
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
                key = _norm_key(row.pop("file", ""))
                if key:
                    out[key] = {k: v for k, v in row.items() if k and v}
            return out
    except UnicodeDecodeError as exc:
        raise ReadError(path, "manifest.csv 不是 UTF-8 编码，请另存为 UTF-8 后重试") from exc
    except csv.Error as exc:
        raise ReadError(path, f"manifest.csv 格式有误（{exc}），请检查引号和分隔符") from exc


def manifest_problems(files: list[Path], roots: list[Path]) -> list[ReadError]:
    """One error for each unreadable ``manifest.csv`` that would apply to ``files`` (in their
    folders and parents up to the ingest roots): reported once, while the files themselves go
    in with the metadata read from their own text."""
    folders: set[Path] = set()
    tops = [Path(r).resolve() for r in roots]
    tops = [t if t.is_dir() else t.parent for t in tops]
    for f in files:
        try:
            folder = Path(f).resolve().parent
        except (OSError, RuntimeError):  # a looping link: reported by the walk
            continue
        while folder not in folders:
            folders.add(folder)
            if folder in tops or not any(t in folder.parents for t in tops):
                break
            folder = folder.parent
    out = []
    for folder in sorted(folders):
        try:
            load_manifest(folder)
        except ReadError as exc:
            out.append(exc)
    return out


def find_manifest_entry(path: Path, roots: list[Path]) -> dict:
    """The manifest row for ``path``, from ``manifest.csv`` in its folder and parents up to the
    ingest root that holds it; a nearer manifest's fields win over an outer one's."""
    p = Path(path).resolve()
    limit = p.parent
    best: Path | None = None
    for r in roots or []:
        r = Path(r).resolve()
        top = r if r.is_dir() else r.parent
        if (p == r or top == p.parent or top in p.parents) and (best is None or len(top.parts) > len(best.parts)):
            best = top
    if best is not None:
        limit = best
    folders = [p.parent]
    while folders[-1] != limit and limit in folders[-1].parents:
        folders.append(folders[-1].parent)
    entry: dict[str, str] = {}
    for folder in reversed(folders):  # outer first, nearer overrides
        try:
            rows = load_manifest(folder)
        except ReadError:  # reported once per manifest by the pipeline (manifest_problems)
            continue
        if rows:
            row = rows.get(_norm_key(p.relative_to(folder).as_posix()))
            if row:
                entry.update(row)
    return entry


def apply_overrides(meta: dict, override: dict) -> dict:
    """``meta`` with the manifest's or front matter's values put over the extracted ones.

    Dates are normalised to ISO (an unreadable date keeps the extracted one and is kept in
    ``extra['date_raw']``); a new 文号 recomputes ``doc_number_masked``; ``speaker`` and other
    columns go to ``extra``.
    """
    out = dict(meta)
    extra = dict(out.get("extra") or {})
    for key, value in (override or {}).items():
        if not isinstance(value, str):
            continue
        value = value.strip()
        fname = HINT_KEYS.get(re.sub(f"[{_SPACE}：:]", "", str(key)).lower(), str(key))
        if not value or fname == "file":
            continue
        if fname == "date":
            iso = parse_date(value)
            if iso:
                out["date"] = iso
                extra["date_from"] = "manifest"
            else:
                extra["date_raw"] = value
        elif fname == "doc_number":
            out["doc_number"] = value
            out["doc_number_masked"] = is_masked(value)
        elif fname in ("title", "issuer", "doc_type"):
            out[fname] = value
        else:
            extra[fname] = value
    out["extra"] = extra
    return out
