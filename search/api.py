"""The search library API used by the CLI and the app: ``search()`` and ``lookup_quote()``."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

from yuanwen.conventions import iso_date
from yuanwen.errors import BadQueryError, UsageError, kb_error_from
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, Filters, Hit, Passage, SearchResult
from yuanwen.text import fold_width, is_meaningful

from .cite import cite
from .confidence import judge
from .retrieve import SEARCHERS, FusionConfig, HybridSearcher, query_terms

MODES = tuple(SEARCHERS)


def check_query(query: str, max_chars: int, min_chars: int = 1) -> str:
    """The stripped query, or BadQueryError when it is empty, punctuation only or too long."""
    q = (query or "").strip()
    if not q:
        raise BadQueryError("查询内容为空，请输入要检索的词句")
    if not is_meaningful(q):
        raise BadQueryError("查询只有标点或符号，请输入文字")
    if len(q) > max_chars:
        raise BadQueryError(f"查询过长（{len(q)} 字，上限 {max_chars} 字），请缩短后再试")
    if len(q) < min_chars:
        raise BadQueryError(f"查询过短（{len(q)} 字），至少需要 {min_chars} 字")
    return q


def search(
    kb: KnowledgeBase,
    query: str,
    k: int = 10,
    mode: str = "hybrid",
    filters: Filters | None = None,
    fusion: FusionConfig | None = None,
    understand: bool = True,
) -> SearchResult:
    """Search ``kb``; returns up to ``k`` de-duplicated hits with citations. In hybrid mode the
    years, kinds of document, issuers and speakers the query names lift the documents that
    have them (``understand=False``: not); the result says what was understood."""
    t0 = time.perf_counter()
    q = check_query(query, kb.config.max_query_chars)
    if mode not in SEARCHERS:
        raise UsageError(f"未知的检索方式 {mode!r}，可选：{'、'.join(MODES)}")
    if k < 1:
        raise UsageError("结果数 k 至少为 1")
    filters = normalise_filters(filters)
    if mode == "hybrid" and not understand:
        fusion = replace(fusion or FusionConfig(), understood_weight=0.0)
    searcher = HybridSearcher(kb, fusion) if mode == "hybrid" else SEARCHERS[mode](kb)
    if mode != "keyword" and kb.built_with:
        kb.embedder  # noqa: B018 - load the model outside the read transaction
    try:
        with kb.store.snapshot():  # one consistent view, even while another process ingests
            cands = searcher.search(q, max(MERGE_DEPTH, k * 3 + 5), filters)
            hits, shown = _to_hits(kb, q, cands, k)
            judge(kb, q, hits, shown, mode)
    except sqlite3.DatabaseError as exc:  # a damaged database, a disk error: say what it means
        raise kb_error_from(exc, kb.kb_dir) or exc from exc
    u = getattr(searcher, "understood", None)
    return SearchResult(query=q, mode=mode, hits=hits, took_ms=(time.perf_counter() - t0) * 1000,
                        understood=u.labels() if u is not None else [])


MAX_MERGED_CHARS = 800  # adjacent passages of one document are merged up to this length
# Candidates always looked at for merging, whatever k is: so the first N hits (their merged
# text included) are the same for any k, and -k 3 lists a prefix of -k 10.
MERGE_DEPTH = 50


def _to_hits(kb: KnowledgeBase, query: str, cands, k: int) -> tuple[list[Hit], list[list[int]]]:
    """Candidates to hits: adjacent passages of one document and one section (the same
    heading path) merged into one hit (up to MAX_MERGED_CHARS), overlapping or identical ones
    dropped, so one paragraph does not fill the list. A merge never crosses a heading: a
    hit's heading path is that of every passage it shows. Every candidate is looked at, after
    the k-th hit too (for merges only), so a hit does not depend on ``k``. Returns the hits
    and, for each, the ids of the passages it shows."""
    # every candidate's place, its text only for the hits (below): equal texts share a key
    passages, keys = kb.store.passage_heads(c.passage_id for c in cands)
    docs: dict[int, Document] = {}
    terms = query_terms(query)
    hits: list[Hit] = []
    shown: list[list[int]] = []  # the passages of each hit
    spans: list[tuple[int, int, int]] = []  # (doc_id, first seq, last seq) of each hit
    seen_text: set[str] = set()
    for n, c in enumerate(cands):
        p = passages.get(c.passage_id)
        if p is None or keys[p.id] in seen_text:
            continue
        seen_text.add(keys[p.id])
        near = [i for i, (d, lo, hi) in enumerate(spans) if d == p.doc_id and lo - 1 <= p.seq <= hi + 1]
        if any(spans[i][1] <= p.seq <= spans[i][2] for i in near):
            continue  # already shown
        section = [i for i in near if hits[i].passage.heading_path == p.heading_path]
        if section:  # joins the best-ranked hit of its section beside it, if it fits
            if n >= MERGE_DEPTH:
                continue  # merges come from the first candidates only; its neighbour is shown
            j = section[0]
            d, lo, hi = spans[j]
            merged = _merge(kb, hits[j].passage, p)
            if merged is not None:
                hits[j].passage = merged
                # it may now start on an earlier page: cite where it starts
                hits[j].citation = cite(hits[j].document, merged.heading_path, merged.page,
                                        (merged.start, merged.end))
                shown[j].append(p.id)
                spans[j] = (d, min(lo, p.seq), max(hi, p.seq))
            continue
        if len(hits) >= k:
            continue  # k hits listed: later candidates only extend them
        if p.doc_id not in docs:
            docs[p.doc_id] = kb.store.get_document(p.doc_id, with_text=False)
        doc = docs[p.doc_id]
        hits.append(Hit(rank=len(hits) + 1, score=c.score, passage=p, document=doc,
                        citation=cite(doc, p.heading_path, p.page, (p.start, p.end)),
                        signals=dict(c.signals)))
        spans.append((p.doc_id, p.seq, p.seq))
        shown.append([p.id])
    bare = [h for h in hits if not h.passage.text]  # (a merged passage has its text already)
    texts = kb.store.get_passages([h.passage.id for h in bare])
    for h in bare:
        h.passage = texts.get(h.passage.id, h.passage)
    for h in hits:
        folded = fold_width(h.passage.text)
        h.matched_terms = [t for t in terms if fold_width(t) in folded]
    return hits, shown


def _merge(kb: KnowledgeBase, a: Passage, b: Passage) -> Passage | None:
    """One passage spanning ``a`` and its neighbour ``b`` of the same section (verbatim), or
    None if too long."""
    start, end = min(a.start, b.start), max(a.end, b.end)
    if end - start > MAX_MERGED_CHARS:
        return None
    text = kb.store.document_slice(a.doc_id, start, end)
    first = a if a.start <= b.start else b
    return replace(a, start=start, end=end, text=text, heading_path=first.heading_path,
                   para=first.para, page=first.page, seq=min(a.seq, b.seq))


def highlight_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Where ``terms`` occur in ``text`` (width-insensitive), as merged (start, end) spans.

    Longest terms win; touching spans are merged, so 安全 + 生产 marks 安全生产 once.
    """
    import re

    wanted = sorted({fold_width(t) for t in terms if t and t.strip()}, key=len, reverse=True)
    if not wanted:
        return []
    pattern = re.compile("|".join(re.escape(t) for t in wanted))
    spans: list[tuple[int, int]] = []
    for m in pattern.finditer(fold_width(text)):  # fold_width keeps offsets
        if spans and m.start() <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], m.end()))
        else:
            spans.append((m.start(), m.end()))
    return spans


def parse_date_bound(value: str | None) -> str | None:
    """A --since/--until value as ISO ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``.

    Accepts ``2018``, ``2018-3``, ``2018-03-01``, ``2018/3/1``, ``2018.3.1`` and ``2018年3月1日``;
    anything else is a UsageError (dates are compared as text, so the form matters).
    """
    import re

    if value is None or not str(value).strip():
        return None
    v = str(value).strip()
    m = re.fullmatch(r"(\d{4})(?:[-/.年](\d{1,2})(?:[-/.月](\d{1,2})日?)?月?)?年?", v)
    if not m:
        raise UsageError(f"日期格式不对：{value!r}；请写成 2018、2018-03 或 2018-03-01")
    iso = iso_date(*m.groups())  # None unless a real date (year 1000..2200)
    if iso is None:
        raise UsageError(f"日期不存在：{value!r}")
    return iso


def normalise_filters(filters: Filters | None) -> Filters | None:
    """``filters`` with dates in ISO form (UsageError on a bad date)."""
    if filters is None:
        return None
    return replace(filters, since=parse_date_bound(filters.since), until=parse_date_bound(filters.until))


