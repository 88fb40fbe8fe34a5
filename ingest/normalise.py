"""Decoding, format repair and the matching form of text.

* :func:`decode_bytes` turns a file's bytes into text: BOM, then strict UTF-8, then detection
  with charset-normalizer (GB text is decoded as GB18030, the superset of GB2312/GBK).
* :func:`clean_text` is the format repair every reader applies before anything is stored:
  line ends, zero-width characters, trailing spaces, runs of blank lines. Nothing else changes.
* :func:`fold` / :func:`fold_with_map` give the *matching form* (NFKC width folding, ASCII
  lower case, no whitespace), never stored; the map leads each folded character back to its
  offset in the original text.
"""

from __future__ import annotations

import codecs
import re
from bisect import bisect_right
from pathlib import Path

from yuanwen.errors import ReadError

__all__ = [
    "decode_bytes", "clean_text", "clean_text_tracking", "delete_tracking", "fold", "fold_with_map",
    "ZERO_WIDTH", "decode_text", "replacement_warning", "garbage_share", "is_garbage",
]

# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16-LE: FF FE 00 00 starts with FF FE
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: Detection answers that mean "Chinese, double byte": GB text is then read as GB18030.
_GB_FAMILY = {"gb2312", "gbk", "cp936", "gb18030", "hz", "euc_cn", "euccn", "gb_2312_80"}
_BIG5_FAMILY = {"big5", "big5hkscs", "cp950"}
#: Detection answers for other CJK encodings, which GB18030 would also decode (wrongly).
_OTHER_CJK = {"euc_kr", "cp949", "johab", "shift_jis", "cp932", "euc_jp", "iso2022_jp", "iso2022_kr"}

# Bytes that never occur in text (C0 controls other than \t \n \v \f \r, SUB and ESC; DEL).
_CONTROL_BYTES = bytes([*range(0, 9), *range(14, 26), *range(28, 32), 127])
_NON_CONTROL_BYTES = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_CONTROL_CHARS = re.compile("[\x00-\x08\x0e-\x19\x1c-\x1f\x7f-\x9f]")

_EMPTY = "文件为空"
_BINARY = "不是文本文件（含二进制内容）"
_UNDECODABLE = "无法识别文件编码；请将文件另存为 UTF-8 编码后再试"


def decode_bytes(data: bytes, path: Path) -> tuple[str, str]:
    """The text of ``data`` and the name of its encoding; :class:`ReadError` if it is not text.

    Order: byte order mark, strict UTF-8, UTF-16/32 without BOM (NUL bytes in alternate
    positions), then detection by charset-normalizer. GB2312/GBK answers are decoded as GB18030.
    A UTF-8 text with a few bad bytes or NULs is decoded with replacement (see
    :func:`decode_text`, which also says how many characters were replaced).
    """
    text, enc, _ = decode_text(data, path)
    return text, enc


def decode_text(data: bytes, path: Path) -> tuple[str, str, int]:
    """:func:`decode_bytes`, and how many characters were replaced (U+FFFD) or dropped (NUL)
    because a UTF-8 text held a few bytes that are not UTF-8."""
    if not data:
        raise ReadError(path, _EMPTY)
    if data.startswith(codecs.BOM_UTF8):
        lenient = _lenient_utf8(data[len(codecs.BOM_UTF8):])
        if lenient is not None and lenient[1]:
            if not lenient[0]:
                raise ReadError(path, _EMPTY)
            return lenient[0], "utf-8-sig", lenient[1]
    elif b"\x00" in data and _wide_encoding(data) is None or not _is_utf8(data):
        # Before detection, which would read damaged UTF-8 as some other encoding.
        lenient = _lenient_utf8(data)
        if lenient is not None:
            _check_text(lenient[0], path)
            return lenient[0], "utf-8", lenient[1]
    text, enc = _decode_strict(data, path)
    return text, enc, 0


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def replacement_warning(replaced: int, encoding: str) -> str:
    """The user's note on characters :func:`decode_text` replaced or dropped."""
    return (f"有 {replaced} 个字符无法按 {encoding.upper()} 编码识别（损坏的字节或空字符），"
            "已替换为“\ufffd”或删除；其余内容照常导入")


#: A UTF-8 text with damage: at most this share of its characters replaced or dropped, and
#: at least this many well-formed non-ASCII characters per damaged one (GB text read as
#: UTF-8 has almost none).
_LENIENT_MAX_SHARE = 0.01
_LENIENT_MIN_EVIDENCE = 20


def _lenient_utf8(data: bytes) -> tuple[str, int] | None:
    """UTF-8 with a few bad bytes or NULs: the text (NULs dropped, bad bytes as U+FFFD) and
    how many characters that touched; None when the bytes are not (mostly) UTF-8 text."""
    nul = data.count(b"\x00")
    text = data.replace(b"\x00", b"").decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode("utf-8"))
    damaged = bad + nul
    if not damaged or damaged > _LENIENT_MAX_SHARE * max(len(text), 1):
        return None
    wide = len(text) - len(text.encode("ascii", errors="ignore")) - bad
    if bad and wide < _LENIENT_MIN_EVIDENCE * bad:
        return None
    return text, damaged


def _decode_strict(data: bytes, path: Path) -> tuple[str, str]:
    if not data:
        raise ReadError(path, _EMPTY)
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(enc.replace("-sig", ""))
            except UnicodeDecodeError as exc:
                raise ReadError(path, _UNDECODABLE) from exc
            if not text:
                raise ReadError(path, _EMPTY)
            _check_text(text, path)
            return text, enc

    if b"\x00" in data:
        enc = _wide_encoding(data)
        if enc is None:
            raise ReadError(path, _BINARY)
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as exc:
            raise ReadError(path, _BINARY) from exc
        _check_text(text, path)
        return text, enc

    sample = data[:65536]
    controls = len(sample.translate(None, _NON_CONTROL_BYTES))  # what is left: control bytes
    if controls > max(3, len(sample) // 100):
        raise ReadError(path, _BINARY)

    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass

    text, enc = _detect(data, path)
    _check_text(text, path)
    return text, enc


def _wide_encoding(data: bytes) -> str | None:
    """UTF-32 or UTF-16 (no BOM) when NUL bytes occur: the candidate that decodes to text."""
    sample = data[:8192]
    n = len(sample)
    if n < 2:
        return None
    candidates: list[str] = []
    if len(data) % 4 == 0:
        candidates += ["utf-32-le", "utf-32-be"]
    if len(data) % 2 == 0:
        # Order by where the NULs fall: ASCII-heavy UTF-16-LE has them at odd positions.
        le_first = sample[1::2].count(0) >= sample[0::2].count(0)
        candidates += ["utf-16-le", "utf-16-be"] if le_first else ["utf-16-be", "utf-16-le"]
    best, best_score = None, 0.0
    for enc in candidates:
        try:
            text = codecs.getincrementaldecoder(enc)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        score = _text_share(text)
        if score > best_score:
            best, best_score = enc, score
    return best if best_score >= 0.9 else None


_TEXT_LIKE = re.compile(
    "[\t\n\r\x20-\x7e\xa0-\u04ff\u2000-\u206f\u3000-\u303f\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U0001f000-\U0001faff\U00020000-\U0003ffff]"
)


def _text_share(text: str) -> float:
    """Share of ``text`` in scripts a Chinese document is written in (ASCII, CJK, punctuation)."""
    if not text:
        return 0.0
    return len(_TEXT_LIKE.findall(text)) / len(text)


def _detect(data: bytes, path: Path) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    enc = (best.encoding if best is not None else "").lower().replace("-", "_")
    if enc not in _OTHER_CJK and not enc.startswith("utf"):
        try:
            gb = data.decode("gb18030")
        except UnicodeDecodeError:
            gb = None
        if gb is not None and (
            enc in _GB_FAMILY
            or _gb2312_share(gb) >= 0.9  # a Big5 or single-byte guess for what is GB text
            or (best is None and _text_share(gb) >= 0.95)  # GB18030 with rare characters
        ):
            return gb, "gb18030"
    if best is None:
        raise ReadError(path, _UNDECODABLE)
    return str(best), enc.replace("_", "-")


# Characters of language as Chinese documents are written: ASCII and Latin (pinyin tones),
# Greek, Cyrillic, punctuation, symbols (①, ■, ★), CJK punctuation, kana, Bopomofo, the common
# CJK ideographs, compatibility and full-width forms, and the scripts of China's bilingual
# documents (Tibetan, Mongolian, Arabic for Uyghur, Yi, Korean). Everything else - private
# use, unassigned code points, U+FFFD, controls, other scripts, and the rare CJK extensions
# (A and beyond, a name now and then in real text) - is what a font without a ToUnicode map
# or a wrong decoding produces.
_LANGUAGE = re.compile(
    "[\x20-\x7e\xa0-\u02ff\u0370-\u04ff\u0600-\u06ff\u0f00-\u0fff\u1800-\u18af"
    "\u1e00-\u1eff\u2000-\u27bf\u2e80-\u2fdf\u3000-\u33ff\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7af\uf900-\ufaff\ufe10-\ufe1f\ufe30-\ufe6f\uff00-\uffef]+"
)
_NO_SPACE = str.maketrans("", "", " \t\n\r\x0b\x0c\u3000\xa0")
#: A PDF page (or a whole text) with at least this share of such characters is not language.
#: The real corpus has at most 0.0 (no such character on any page); a page of mixed garbage
#: (PUA, CJK Ext-A/B, U+FFFD with some common characters) has ~0.6, pure garbage 1.0.
GARBAGE_PAGE_SHARE = 0.3
GARBAGE_TEXT_SHARE = 0.5
#: Fewer characters than this (spaces aside) are too few to judge.
GARBAGE_MIN_CHARS = 20


def garbage_share(text: str) -> tuple[float, int]:
    """The share of ``text``'s characters (spaces aside) that are not language (see above),
    and how many characters that share is of."""
    dense = text.translate(_NO_SPACE)
    if not dense:
        return 0.0, 0
    language = sum(len(run) for run in _LANGUAGE.findall(dense))
    return 1.0 - language / len(dense), len(dense)


def is_garbage(text: str, share: float = GARBAGE_PAGE_SHARE) -> bool:
    """True when ``text`` is long enough to judge and at least ``share`` of it is not language."""
    g, n = garbage_share(text)
    return n >= GARBAGE_MIN_CHARS and g >= share


def _gb2312_share(text: str) -> float:
    """Share of the non-ASCII characters of ``text`` that GB2312 has (common simplified Chinese)."""
    wide = "".join(c for c in text[:20000] if ord(c) > 127 and c != "?")
    if not wide:
        return 0.0
    missing = wide.encode("gb2312", errors="replace").count(b"?")
    return 1.0 - missing / len(wide)


def _check_text(text: str, path: Path) -> None:
    sample = text[:65536]
    if len(_CONTROL_CHARS.findall(sample)) > max(3, len(sample) // 100):
        raise ReadError(path, _BINARY)


# ---------------------------------------------------------------------------------------------
# Format repair
# ---------------------------------------------------------------------------------------------
from yuanwen.text import ZERO_WIDTH  # noqa: E402

_CR_IN_CRLF = re.compile(r"\r(?=\n)")
# Other line breaks that str.splitlines() honours become \n (one character for one).
_LINE_BREAKS = str.maketrans({c: "\n" for c in "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})
_DROP = re.compile(f"[{ZERO_WIDTH}\x00-\x08\x0e-\x1b\x1f\x7f]")
# Each run is tried once, from its start (the lookbehind), and never backtracked into: linear
# on a run of 60,000 spaces, where the plain ``[^\S\n]+(?=\n|\Z)`` is quadratic.
_TRAILING_SPACE = re.compile(r"(?<![^\S\n])[^\S\n]++(?=\n|\Z)")
_EXTRA_BLANK = re.compile(r"(?<=\n\n)\n+")
_LEADING_BLANK = re.compile(r"\A\n+")
_TRAILING_BLANK = re.compile(r"(?<!\n)\n++\Z")
# Every step of clean_text deletes characters (or replaces one by one), so offsets can be mapped.
_STEPS = (_CR_IN_CRLF, _LINE_BREAKS, _DROP, _TRAILING_SPACE, _EXTRA_BLANK, _LEADING_BLANK, _TRAILING_BLANK)


def clean_text(text: str) -> str:
    """Format repair: LF line ends, no zero-width or control characters, no trailing spaces,
    at most one blank line in a row, no blank lines at the start or end. All else verbatim."""
    for step in _STEPS:
        text = text.translate(step) if isinstance(step, dict) else step.sub("", text)
    return text


def clean_text_tracking(text: str, offsets: list[int]) -> tuple[str, list[int]]:
    """:func:`clean_text` of ``text``, and ``offsets`` into ``text`` moved to the cleaned text.

    An offset inside a deleted run lands where the run was.
    """
    offs = list(offsets)
    for step in _STEPS:
        if isinstance(step, dict):
            text = text.translate(step)
        else:
            text, offs = delete_tracking(text, step, offs)
    return text, offs


def delete_tracking(text: str, pattern: re.Pattern[str], offsets: list[int]) -> tuple[str, list[int]]:
    """``text`` without the matches of ``pattern``, and ``offsets`` moved along."""
    spans = [m.span() for m in pattern.finditer(text)]
    if not spans:
        return text, list(offsets)
    starts = [a for a, _ in spans]
    removed_before = [0]
    for a, b in spans:
        removed_before.append(removed_before[-1] + b - a)
    moved = []
    for o in offsets:
        k = bisect_right(starts, o) - 1
        if k < 0:
            moved.append(o)
            continue
        a, b = spans[k]
        moved.append(a - removed_before[k] if o < b else o - removed_before[k + 1])
    return pattern.sub("", text), moved


# The matching form lives in yuanwen.text (shared by ingest and search).
from yuanwen.text import fold, fold_with_map  # noqa: E402,F401
