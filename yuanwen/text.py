"""Text keys shared by index time and query time: the one ``tokenize()``.

Keyword search runs on SQLite FTS5. Its default tokenizer does not split Chinese, so both
stored passages and queries go through :func:`tokenize` here: width-folded, lower-cased text
cut into overlapping character bigrams for runs of Chinese characters and into words for
runs of letters and digits. Measured on the founding document, BM25 over character bigrams
beat BM25 over jieba words for both questions and quotes (see ``docs/search.md``).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from functools import lru_cache
from types import ModuleType

from .conventions import HAN

# Characters that take part in keyword matching: CJK ideographs (BMP + ext A) and alphanumerics.
_CJK = HAN
_RUN = re.compile(rf"[{_CJK}]+|[0-9a-z]+")
_IS_CJK = re.compile(rf"[{_CJK}]")

# Width folding for matching only: full-width ASCII -> ASCII, ideographic space -> space.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FOLD[0x3000] = 0x20
_FOLD.update({cp: cp + 32 for cp in range(0x41, 0x5B)})  # A-Z -> a-z
_FOLD.update({cp: cp - 0xFEE0 + 32 for cp in range(0xFF21, 0xFF3B)})  # Ａ-Ｚ -> a-z
_NON_SPACE = re.compile(r"\S+")


@lru_cache(maxsize=1)
def jieba() -> ModuleType:
    """The jieba module, quiet: its logging off and its import's pkg_resources deprecation
    warning (setuptools 80, which Milvus Lite needs, still has the module) not shown to users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import jieba as module
    module.setLogLevel(60)
    return module


def fold_width(text: str) -> str:
    """Full-width letters, digits and ASCII punctuation to half-width; ASCII lower-case.

    Every character maps to exactly one character, so offsets are preserved.
    """
    return text.translate(_FOLD)




def tokenize(text: str) -> list[str]:
    """Keyword terms of ``text``: CJK character bigrams and ASCII words, in order."""
    out: list[str] = []
    for m in _RUN.finditer(fold_width(text)):
        run = m.group()
        if _IS_CJK.match(run):
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return out


def fts_document(text: str) -> str:
    """The string stored in the FTS5 table for ``text`` (terms joined by spaces)."""
    return " ".join(tokenize(text))


def fts_query(text: str, operator: str = "OR") -> str:
    """An FTS5 MATCH expression for ``text``: its distinct terms, quoted, joined by ``operator``."""
    seen: dict[str, None] = {}
    for t in tokenize(text):
        seen.setdefault(t, None)
    return f" {operator} ".join(f'"{t}"' for t in seen)


def is_meaningful(text: str) -> bool:
    """True if ``text`` has at least one letter, digit or ideograph."""
    return any(unicodedata.category(c)[0] in "LN" for c in text)


ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"

# ---------------------------------------------------------------------------------------------
# Matching form
# ---------------------------------------------------------------------------------------------
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _fold_one(ch: str) -> str:
    if ch.isspace() or ch in ZERO_WIDTH:
        return ""
    out = unicodedata.normalize("NFKC", ch).translate(_ASCII_LOWER)
    return "".join(c for c in out if not c.isspace() and c not in ZERO_WIDTH)


def _fold_char(ch: str) -> str:
    """The folded form of one character, applied until it no longer changes (idempotence)."""
    s = ch
    for _ in range(4):
        t = "".join(_fold_one(c) for c in s)
        if t == s:
            break
        s = t
    return s


class _FoldTable(dict):
    """code point -> folded string; filled on demand (astral characters), usable by translate."""

    def __missing__(self, cp: int) -> str:
        value = self[cp] = _fold_char(chr(cp))
        return value


@lru_cache(maxsize=1)
def _tables() -> tuple[_FoldTable, re.Pattern[str]]:
    """The BMP fold table and a pattern of the characters that do not fold one to one."""
    table = _FoldTable()
    odd: list[int] = []
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            table[cp] = chr(cp)
            continue
        ch = chr(cp)
        folded = _fold_char(ch)
        table[cp] = folded
        if len(folded) != 1:
            odd.append(cp)
    ranges: list[str] = []
    i = 0
    while i < len(odd):
        j = i
        while j + 1 < len(odd) and odd[j + 1] == odd[j] + 1:
            j += 1
        a, b = odd[i], odd[j]
        ranges.append(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}")
        i = j + 1
    pattern = re.compile("[" + "".join(ranges) + "\U00010000-\U0010ffff]")
    return table, pattern


def fold(text: str) -> str:
    """The matching form: NFKC width folding (Ａ１，→ a1,), ASCII lower case, no whitespace.

    Chinese punctuation NFKC leaves alone (。、“”《》〔〕) stays as it is. Never stored.
    """
    return text.translate(_tables()[0])


def fold_with_map(text: str) -> tuple[str, list[int]]:
    """:func:`fold` of ``text`` and, for each folded character, the offset of its source in ``text``.

    A character NFKC expands (``㈠`` -> ``(一)``) maps all its parts to its own offset.
    """
    table, odd = _tables()
    parts: list[str] = []
    index: list[int] = []
    pos = 0
    for m in odd.finditer(text):
        i = m.start()
        if i > pos:
            parts.append(text[pos:i].translate(table))
            index.extend(range(pos, i))
        folded = table[ord(text[i])]
        if folded:
            parts.append(folded)
            index.extend([i] * len(folded))
        pos = i + 1
    if pos < len(text):
        parts.append(text[pos:].translate(table))
        index.extend(range(pos, len(text)))
    return "".join(parts), index



def fold_map(text: str) -> tuple[str, list[int]]:
    """The matching form of ``text`` with, for each folded character, its offset in ``text``.

    This is what "verbatim" means for quotes: whitespace and width (NFKC) differences ignored.
    """
    return fold_with_map(text)
