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

# Characters that take part in keyword matching: CJK ideographs (BMP + ext A) and alphanumerics.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[{_CJK}]+|[0-9a-z]+")
_IS_CJK = re.compile(rf"[{_CJK}]")

# Width folding for matching only: full-width ASCII -> ASCII, ideographic space -> space.
_FOLD = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FOLD[0x3000] = 0x20
_FOLD.update({cp: cp + 32 for cp in range(0x41, 0x5B)})  # A-Z -> a-z
_FOLD.update({cp: cp - 0xFEE0 + 32 for cp in range(0xFF21, 0xFF3B)})  # Ａ-Ｚ -> a-z
_NON_SPACE = re.compile(r"\S+")


def fold_width(text: str) -> str:
    """Full-width letters, digits and ASCII punctuation to half-width; ASCII lower-case.

    Every character maps to exactly one character, so offsets are preserved.
    """
    return text.translate(_FOLD)


def fold_map(text: str) -> tuple[str, list[int]]:
    """``fold_width(text)`` without whitespace, and for each kept character its offset in ``text``.

    This is the matching form for quotes: "verbatim" ignores only whitespace and
    full/half-width differences.
    """
    folded = fold_width(text)
    parts: list[str] = []
    offsets: list[int] = []
    for m in _NON_SPACE.finditer(folded):
        parts.append(m.group())
        offsets.extend(range(m.start(), m.end()))
    return "".join(parts), offsets


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
