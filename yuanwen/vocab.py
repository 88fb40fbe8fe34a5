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


def _words(name: str) -> tuple[str, ...]:
    """The first field of each entry of a one-column vocabulary, in file order."""
    return tuple(row[0].strip() for row in _rows(name))


@dataclass(frozen=True)
class DocType:
    """A document type: how it is cited and the title endings that name it."""

    name: str  # 通知, 讲话, 法律, 政府工作报告（地方）
    citation: str  # "speech", "law", "report" or "" (cited as a plain document)
    endings: tuple[str, ...]  # title endings naming the type (…的复函 -> 函); may be empty


CITATIONS = ("speech", "law", "report", "")


@lru_cache(maxsize=None)
def doc_types() -> tuple[DocType, ...]:
    """The document types of ``data/doc_types.tsv``, in file order."""
    out = []
    for name, citation, endings in _rows("doc_types.tsv"):
        citation = "" if citation.strip() == "-" else citation.strip()
        if citation not in CITATIONS:
            raise ValueError(f"doc_types.tsv: {name}: unknown citation kind {citation!r}")
        ends = () if endings.strip() == "-" else tuple(endings.split())
        out.append(DocType(name.strip(), citation, ends))
    return tuple(out)


@lru_cache(maxsize=None)
def doc_type_endings() -> dict[str, str]:
    """Title ending -> document type (``复函`` -> 函), from ``data/doc_types.tsv``."""
    return {end: t.name for t in doc_types() for end in t.endings}


@lru_cache(maxsize=None)
def doc_types_cited_as(citation: str) -> frozenset[str]:
    """The document types cited as ``citation`` (``"speech"``, ``"law"`` or ``"report"``)."""
    return frozenset(t.name for t in doc_types() if t.citation == citation)


@lru_cache(maxsize=None)
def speakers() -> tuple[str, ...]:
    """Speakers' names known without a job title (``data/speakers.tsv``), in file order."""
    return _words("speakers.tsv")


@dataclass(frozen=True)
class InfoLabel:
    """A label of the gov.cn info table and the metadata key its value goes to."""

    label: str  # 发文字号
    key: str  # doc_number
    is_date: bool  # the value is a date


@lru_cache(maxsize=None)
def info_labels() -> tuple[InfoLabel, ...]:
    """The labels of ``data/info_labels.tsv``, in file order."""
    return tuple(InfoLabel(label.strip(), key.strip(), flag.strip() == "1")
                 for label, key, flag in _rows("info_labels.tsv"))


@lru_cache(maxsize=None)
def question_words() -> tuple[str, ...]:
    """Question words of ``data/question_words.tsv``, in the order they are tried."""
    return _words("question_words.tsv")


@lru_cache(maxsize=None)
def similarity_thresholds() -> dict[str, float]:
    """Per embedding model, the similarity of ``data/similarity_thresholds.tsv`` from which a
    hit is strong evidence (calibrated; models without one are judged on keywords alone)."""
    return {model.strip(): float(value) for model, value in _rows("similarity_thresholds.tsv")}


@dataclass(frozen=True)
class Formulation:
    """A 提法: the short form (两个维护), other ways to write it, its full wording and a source."""

    term: str
    aliases: tuple[str, ...]
    full: str
    source: str


@lru_cache(maxsize=None)
def formulations() -> tuple[Formulation, ...]:
    """The 提法 of ``data/formulations.tsv``, in file order."""
    out = []
    for term, aliases, full, source in _rows("formulations.tsv"):
        names = () if aliases.strip() == "-" else tuple(a.strip() for a in aliases.split("、") if a.strip())
        out.append(Formulation(term.strip(), names, full.strip(), source.strip()))
    return tuple(out)
