"""Vocabularies kept as data (``yuanwen/data/``), loaded once.

Each file is UTF-8 text, one entry a line, fields separated by tabs, ``#`` lines are comments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Meeting:
    """A Party congress: the short name users write and the full name documents use."""

    short: str  # 十九大
    full: str  # 第十九次全国代表大会
    stands_alone: bool  # False: the short name also means "the N major ..." (三大攻坚战)


def _rows(name: str) -> list[list[str]]:
    text = resources.files("yuanwen.data").joinpath(name).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")]


@lru_cache(maxsize=None)
def meetings() -> tuple[Meeting, ...]:
    """The Party congresses of ``data/meetings.tsv``, longest short name first."""
    out = [Meeting(short, full, flag.strip() == "1") for short, full, flag in _rows("meetings.tsv")]
    return tuple(sorted(out, key=lambda m: -len(m.short)))
