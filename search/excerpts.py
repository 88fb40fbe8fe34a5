"""论述摘编: the passages on one theme, grouped by document, the documents in date order.

A trainer compiling 关于某某的论述摘编 wants what the documents say on a theme, earliest
first, each passage with its source, to prune and turn into a study pack. The theme is
searched like any query (hybrid by default, with the filters given: speaker 习近平, type 讲话,
dates), so the relevant passages are the search's hits; weak hits (相关度较低,
:mod:`search.confidence`) are left out unless asked for. The hits are then grouped by document,
the documents ordered by date (then title; undated ones last) and each document's passages
put in reading order, which is how a 摘编 reads.
"""

from __future__ import annotations

import copy
import time

from yuanwen.kb import KnowledgeBase
from yuanwen.models import ExcerptGroup, Excerpts, Filters, Hit, PackSection, StudyPack

from .api import search
from .export import item_from_hit
from .pack import find_item

DEFAULT_K = 30  # passages proposed: a session's worth, for the trainer to prune


def excerpts(kb: KnowledgeBase, theme: str, k: int = DEFAULT_K, filters: Filters | None = None,
             include_weak: bool = False, mode: str = "hybrid") -> Excerpts:
    """Up to ``k`` passages on ``theme`` (strong hits only unless ``include_weak``), grouped by
    document, the documents by date (earliest first), the passages in reading order."""
    t0 = time.perf_counter()
    res = search(kb, theme, k=k, mode=mode, filters=filters)
    kept = [h for h in res.hits if include_weak or not h.weak]
    groups = group_by_document(kept)
    return Excerpts(theme=res.query, groups=groups, weak_left_out=len(res.hits) - len(kept),
                    understood=list(res.understood), took_ms=(time.perf_counter() - t0) * 1000)


def group_by_document(hits: list[Hit]) -> list[ExcerptGroup]:
    """``hits`` grouped by document: documents by date then title (undated last), each one's
    passages in reading order; ranks renumbered in that order."""
    groups: dict[int, ExcerptGroup] = {}
    for h in hits:
        key = h.document.id if h.document.id is not None else -len(groups) - 1
        groups.setdefault(key, ExcerptGroup(h.document)).hits.append(h)
    ordered = sorted(groups.values(), key=lambda g: (g.document.date is None, g.document.date or "",
                                                     g.document.title or "", g.document.id or 0))
    rank = 0
    for g in ordered:
        g.hits.sort(key=lambda h: (h.passage.start, h.passage.seq))
        for h in g.hits:
            rank += 1
            h.rank = rank
    return ordered


def pack_title(theme: str) -> str:
    """A pack title for a 摘编 on ``theme``: 安全生产 -> 安全生产论述摘编."""
    t = theme.strip()
    if t.endswith("摘编"):
        return t
    return t + ("摘编" if t.endswith("论述") else "论述摘编")


def to_pack(ex: Excerpts, pack: StudyPack | None = None, passage_ids: list[int] | None = None,
            section: str | None = None, style: str = "footnote") -> StudyPack:
    """``pack`` (default: a new one titled after the theme) with a section holding the
    excerpts, in their order: those of ``passage_ids`` when given (the trainer's choice),
    else all. Passages already in the pack are not added twice. A new or empty untitled pack
    takes the theme's title."""
    out = StudyPack(title=pack_title(ex.theme)) if pack is None else copy.deepcopy(pack)
    if pack is not None and not any(s.items for s in out.sections) and out.title == StudyPack().title:
        out.title = pack_title(ex.theme)
    wanted = None if passage_ids is None else set(passage_ids)
    items = [item_from_hit(h, style) for h in ex.hits
             if (wanted is None or h.passage.id in wanted) and find_item(out, h.passage.id) is None]
    if items:
        out.sections.append(PackSection(section or ex.theme, items))
    return out
