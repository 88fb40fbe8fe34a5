"""Chinese writing conventions, defined once: CJK character ranges, Chinese numerals, dates,
heading numbers and the 文号.

Readers, metadata, segmentation and search import these; this module imports nothing from
``ingest`` or ``search``. Patterns are regular-expression *source* strings (to be composed into
larger patterns) unless their name says ``_RE``.
"""

from __future__ import annotations

from collections.abc import Sequence

import datetime as _dt
import re
import unicodedata

# ---------------------------------------------------------------------------------------------
# CJK character ranges (regex character-class contents)
# ---------------------------------------------------------------------------------------------
#: Han ideographs of the BMP: extension A, the unified block, compatibility ideographs.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: The unified block alone (the common characters; enough for a YAML key or a 文号 prefix).
HAN_UNIFIED = "\u4e00-\u9fff"
#: Han ideographs of the supplementary planes (extensions B to G).
HAN_SUPPLEMENTARY = "\U00020000-\U0003134f"
#: CJK punctuation and full-width forms (not full-width digits), with the dashes, quotes,
#: ellipsis and middle dot Chinese text uses.
CJK_PUNCT = (
    "\u3001-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65\uffe0-\uffe6"
    "\u2014\u2015\u2018\u2019\u201c\u201d\u2026\u00b7\u2e3a"
)
#: Characters that hide digits or names in published documents (``20**年``, ``××局``).
MASK_CHARS = "*＊×XＸ"
#: Inline spaces of Chinese text (not line breaks): ASCII, ideographic, no-break, en/em/thin.
SPACE = " \t\u3000\xa0\u2002\u2003\u2009"
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

# ---------------------------------------------------------------------------------------------
# Chinese numerals
# ---------------------------------------------------------------------------------------------
#: The digits one to nine.
CN_DIGITS = "一二三四五六七八九"
#: One to ten: what small counts (一是, 十九届, list numbers) are written with.
CN_SMALL = "一二三四五六七八九十"
#: Every character a Chinese numeral in a heading number may hold (第一百零二条, 两).
CN_NUMERAL_CHARS = "一二三四五六七八九十百千零〇两"
#: Characters for zero as written in years (二〇二二, 二○二二, 二零二二, and OCR's O).
CN_ZEROS = "〇○零ＯO"
#: Digit values, zero forms and 两 included.
CN_DIGIT_VALUE: dict[str, int] = {
    "〇": 0, "○": 0, "零": 0, "O": 0, "Ｏ": 0, "０": 0, "一": 1, "二": 2, "两": 2,
    "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}


def page_ranges(pages: Sequence[int]) -> str:
    """Page numbers for the user, runs joined: 1, 2, 3, 5 -> ``1–3、5``."""
    runs: list[list[int]] = []
    for n in sorted(set(pages)):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return "、".join(f"{a}" if a == b else f"{a}–{b}" for a, b in runs)


def cn_int(s: str) -> int | None:
    """The value of a Chinese numeral from 零 to 九十九 (``三`` 3, ``十六`` 16, ``二十`` 20), else None."""
    if "十" not in s:
        return CN_DIGIT_VALUE.get(s) if len(s) == 1 else None
    tens, _, ones = s.partition("十")
    if len(tens) > 1 or len(ones) > 1:
        return None
    t = CN_DIGIT_VALUE.get(tens) if tens else 1
    o = CN_DIGIT_VALUE.get(ones) if ones else 0
    return None if t is None or o is None else t * 10 + o


def cn_digits_int(s: str) -> int | None:
    """A number written digit by digit (``二〇二二`` 2022, years), else None."""
    if not s or not all(c in CN_DIGIT_VALUE for c in s):
        return None
    return int("".join(str(CN_DIGIT_VALUE[c]) for c in s))


def cn_numeral(n: int) -> str:
    """``n`` (1..10) in Chinese (``3`` -> 三); larger numbers in Arabic digits."""
    return CN_SMALL[n - 1] if 1 <= n <= len(CN_SMALL) else str(n)


def number_value(s: str, year: bool = False) -> int | None:
    """Arabic or Chinese numerals: ``2022``, ``２０２２``, ``十六``; with ``year``, digit by digit
    (``二〇二二``)."""
    s = s.translate(FULLWIDTH_DIGITS).strip()
    if s.isdigit():
        return int(s)
    if year:
        return cn_digits_int(s)
    return cn_int(s)


# ---------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------
_MASK = re.escape(MASK_CHARS)
_S = f"[{SPACE}]*"
#: A year: four Arabic, full-width or Chinese digits.
YEAR = f"(?:\\d{{4}}|[０-９]{{4}}|[{CN_ZEROS}{CN_DIGITS}]{{4}})"
#: A month or a day: one or two digits, or 一 to 三十一.
MONTH_DAY = f"(?:\\d{{1,2}}|[０-９]{{1,2}}|[{CN_SMALL}]{{1,3}})"
#: A full written date, never touching a masked digit: 2018年12月7日, 二〇二二年十月十六日
#: (groups ``y``, ``m``, ``d``).
DATE_PATTERN = (
    f"(?<![\\d０-９{_MASK}])(?P<y>{YEAR}){_S}年{_S}(?P<m>{MONTH_DAY}){_S}月{_S}(?P<d>{MONTH_DAY}){_S}日"
)
DATE_RE = re.compile(DATE_PATTERN)
#: A numeric date anywhere in a value (``2022年03月01日``, ``2022-03-01``, ``2022.3.1``).
_NUMERIC_DATE_RE = re.compile(r"(\d{4})\s*[年\-./]\s*(\d{1,2})\s*[月\-./]\s*(\d{1,2})\s*日?")


def iso_date(y: str, m: str | None = None, d: str | None = None) -> str | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` from written parts, or None unless it is a real
    date (year 1000..2200, month 1..12, a day the month has)."""
    year = number_value(y, year=True)
    if year is None or not 1000 <= year <= 2200:
        return None
    if m is None:
        return f"{year:04d}"
    month = number_value(m)
    if month is None or not 1 <= month <= 12:
        return None
    if d is None:
        return f"{year:04d}-{month:02d}"
    day = number_value(d)
    try:
        return _dt.date(year, month, day or 0).isoformat()
    except (TypeError, ValueError):
        return None


def parse_date(value: str | None) -> str | None:
    """An ISO date (``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``) from a written date, else None.

    Accepts ``2018-12-07``, ``2018/12/7``, ``2018.12.7``, ``20181207``, ``2018年12月7日``,
    ``二〇二二年十月十六日``, ``2018年12月`` and ``2018`` (or ``2018年``). Masked digits
    (``20**年``, ``××月``) and impossible dates give None.
    """
    if not value:
        return None
    s = unicodedata.normalize("NFKC", str(value)).strip().strip("（）()[]")
    if not s or any(c in MASK_CHARS for c in s):
        return None
    m = DATE_RE.search(s)
    if m:
        return iso_date(m.group("y"), m.group("m"), m.group("d"))
    m = re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?", s) or re.fullmatch(
        r"(\d{4})(\d{2})(\d{2})", s)
    if m:
        return iso_date(*m.groups())
    m = re.fullmatch(f"({YEAR}){_S}年{_S}({MONTH_DAY}){_S}月?", s) or re.fullmatch(r"(\d{4})[-/.](\d{1,2})", s)
    if m:
        return iso_date(m.group(1), m.group(2))
    m = re.fullmatch(f"({YEAR})年?", s)
    if m:
        return iso_date(m.group(1))
    return None


def find_numeric_date(value: str) -> str | None:
    """The first numeric full date in ``value`` (``发布日期：2022-03-01 10:00``) as ISO, if real."""
    m = _NUMERIC_DATE_RE.search(value)
    return iso_date(*m.groups()) if m else None


def cn_date(iso: str | None) -> str:
    """``2018-12-07`` -> ``2018年12月7日``; partial dates stay partial."""
    if not iso:
        return ""
    parts = iso.split("-")
    out = f"{int(parts[0])}年" if parts[0].isdigit() else ""
    if len(parts) > 1 and parts[1].isdigit():
        out += f"{int(parts[1])}月"
    if len(parts) > 2 and parts[2].isdigit():
        out += f"{int(parts[2])}日"
    return out


# ---------------------------------------------------------------------------------------------
# Heading numbers: 第X编/部分/章/节/条, 一、, （一）, 1., （1）, 一是, 第一，
# ---------------------------------------------------------------------------------------------
#: The structural units a 第X heading may name.
BIG_UNITS = ("编", "部分", "章", "节")
#: 第X条: an article of a law (Arabic digits too).
ARTICLE_PATTERN = f"第[{CN_SMALL}百千零〇0-9]+条"
ARTICLE_RE = re.compile(f"^{ARTICLE_PATTERN}")
#: 一是 / 二是 (not 是否): an enumerated point inside a paragraph.
ENUM_IS_PATTERN = f"[{CN_SMALL}]{{1,3}}是(?!否)"
#: 第一， / 第二、: an enumerated point with an ordinal.
ENUM_ORDINAL_PATTERN = f"第[{CN_SMALL}]{{1,3}}[，,、]"

# ---------------------------------------------------------------------------------------------
# 文号 (document number): 国办发〔2022〕6号, *党办发〔2022〕*号, 安委办[2024]1号, 鲁安发（2024）1号
# ---------------------------------------------------------------------------------------------
#: The brackets a 文号's year is written in: 〔〕 by the standard, and what documents use instead.
DOC_NUMBER_OPEN = "(?:〔|\\[|［|【|﹝|（|\\()"
DOC_NUMBER_CLOSE = "(?:〕|\\]|］|】|﹞|）|\\))"
#: A 文号: organ code, bracketed year, serial number and 号; masked digits allowed, spaces
#: tolerated between the parts (PDF text).
DOC_NUMBER_PATTERN = (
    f"[{HAN}{_MASK}]{{1,20}}{_S}{DOC_NUMBER_OPEN}"
    f"{_S}[\\d{_MASK}]{{4}}{_S}{DOC_NUMBER_CLOSE}{_S}第?{_S}[\\d{_MASK}]{{1,6}}{_S}号"
)
DOC_NUMBER_RE = re.compile(DOC_NUMBER_PATTERN)


def is_masked(doc_number: str | None) -> bool:
    """True when a 文号 hides digits or characters with ``*``, ``＊``, ``×`` or ``X``."""
    return bool(doc_number) and any(c in MASK_CHARS for c in doc_number)
