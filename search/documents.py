"""Browsing the knowledge base: list documents by filters, and a document's outline."""

from __future__ import annotations

import sqlite3

from yuanwen.errors import kb_error_from
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, Filters, Passage

from .api import normalise_filters


def list_documents(kb: KnowledgeBase, filters: Filters | None = None) -> list[Document]:
    """Documents (without their text) that pass ``filters``, by date then title."""
    try:
        return kb.store.documents(filters=normalise_filters(filters))
    except sqlite3.DatabaseError as exc:  # a damaged database, a disk error: say what it means
        raise kb_error_from(exc, kb.kb_dir) or exc from exc


def outline(passages: list[Passage]) -> list[tuple[int, str, int]]:
    """The heading tree of a document as (level, heading, passage id) in reading order:
    each heading once, pointing at the first passage under it."""
    out: list[tuple[int, str, int]] = []
    prev: list[str] = []
    for p in passages:
        path = list(p.heading_path)
        same = 0
        while same < min(len(prev), len(path)) and prev[same] == path[same]:
            same += 1
        for level in range(same, len(path)):
            out.append((level + 1, path[level], p.id))
        prev = path
    return out
