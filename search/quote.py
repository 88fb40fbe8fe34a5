"""Quote lookup for drafters: where does this (half-remembered) sentence come from?

1. Candidates: passages ranked by BM25 over the quote's character bigrams (robust to dropped,
   swapped or changed characters); dense candidates are added when the keyword ones fall
   short and vectors exist (light paraphrase).
2. Alignment: each candidate's text, widened by the quote's length on both sides so quotes
   that cross a passage boundary are found, is compared in matching form (width-folded, no
   whitespace). A verbatim occurrence is ``exact``; otherwise rapidfuzz finds the best
   aligned span and the Indel similarity of quote and span decides ``close`` or ``not_found``.
3. Every document holding the best wording is listed, earliest first: the drafter needs the
   first source. Each match carries the original sentence(s), a character diff and a citation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rapidfuzz import fuzz
from rapidfuzz.distance import Indel, Levenshtein

from yuanwen.errors import BadQueryError
from yuanwen.kb import KnowledgeBase
from yuanwen.models import DiffOp, Document, Filters, QuoteMatch, QuoteResult
from yuanwen.text import fold_map

from .api import check_query
from .cite import cite
from .retrieve import SemanticSearcher, bm25_candidates

MIN_QUOTE_CHARS = 6


@dataclass
class QuoteConfig:
    """Thresholds for quote verdicts (tuned on benchmarks/eval; see docs/search.md)."""

    # Indel similarity (0..100) of quote and aligned span from which a quote is the same
    # sentence, misquoted (有出入). Below it, a sentence on the same topic in the same formulaic
    # words is not the source (calibrated with benchmarks/calibrate_quotes.py; docs/search.md).
    close_threshold: float = 80.0
    similar_threshold: float = 60.0  # 相近的表述 shown apart with not_found, from this similarity
    max_similar: int = 3
    candidates: int = 40
    tie_margin: float = 1.0  # matches within this of the best count as the same wording
    max_sources: int = 10


def lookup_quote(kb: KnowledgeBase, text: str, config: QuoteConfig | None = None,
                 filters: Filters | None = None) -> QuoteResult:
    """Find the source(s) of ``text``; verdict ``exact``, ``close`` or ``not_found``. Only
    documents that pass ``filters`` are sources (a reader's clearance: a quote found only
    above it is ``not_found``)."""
    t0 = time.perf_counter()
    cfg = config or QuoteConfig()
    q = check_query(text, kb.config.max_query_chars)
    qf, qmap = fold_map(q)
    if sum(1 for c in qf if c.isalnum()) < MIN_QUOTE_CHARS:
        raise BadQueryError(f"引文太短：至少需要 {MIN_QUOTE_CHARS} 个字才能可靠地查找出处")

    with kb.store.snapshot():  # one consistent view, even while another process ingests
        ids = _keyword_candidates(kb, q, cfg.candidates, filters)
        matches = _align_all(kb, q, qf, qmap, ids)
        best = max((m.similarity for m in matches), default=0.0)
        if best < cfg.close_threshold + 15 and kb.built_with:
            dense = [c.passage_id for c in SemanticSearcher(kb).search(q, 10, filters)]
            extra = [i for i in dense if i not in set(ids)]
            matches += _align_all(kb, q, qf, qmap, extra)
            best = max((m.similarity for m in matches), default=0.0)

    if not matches or best < cfg.close_threshold:
        return QuoteResult(q, "not_found", best, [], (time.perf_counter() - t0) * 1000,
                           similar=_similar(matches, cfg))
    exact = any(m.exact for m in matches)
    keep = [m for m in matches if (m.exact if exact else m.similarity >= best - cfg.tie_margin)]
    keep = _dedupe(keep)
    keep.sort(key=lambda m: (m.document.date or "9999", -m.similarity, m.document.id or 0))
    keep = keep[: cfg.max_sources]
    for m in keep:
        m.citation = cite(m.document, m.heading_path, m.page, (m.start, m.end))
    verdict = "exact" if exact else "close"
    return QuoteResult(q, verdict, 100.0 if exact else best, keep, (time.perf_counter() - t0) * 1000)


def _similar(matches: list[QuoteMatch], cfg: QuoteConfig) -> list[QuoteMatch]:
    """The nearest wordings for a quote that was not found: no diff (it would invite a
    correction towards a sentence that is not the source), most similar first."""
    near = sorted(_dedupe([m for m in matches if m.similarity >= cfg.similar_threshold]),
                  key=lambda m: (-m.similarity, m.document.id or 0))[: cfg.max_similar]
    for m in near:
        m.diff = []
        m.citation = cite(m.document, m.heading_path, m.page, (m.start, m.end))
    return near


def _keyword_candidates(kb: KnowledgeBase, q: str, n: int, filters: Filters | None) -> list[int]:
    return [c.passage_id for c in bm25_candidates(kb, q, n, filters, text_only=True)]


def _align_all(kb: KnowledgeBase, q: str, qf: str, qmap: list[int], ids: list[int]) -> list[QuoteMatch]:
    if not ids:
        return []
    passages = kb.store.get_passages(ids)
    docs: dict[int, Document] = {}
    out = []
    for pid in ids:
        p = passages.get(pid)
        if p is None:
            continue
        if p.doc_id not in docs:
            docs[p.doc_id] = kb.store.get_document(p.doc_id, with_text=False)
        m = _align(kb, docs[p.doc_id], p.start, p.end, q, qf, qmap)
        if m is not None:
            m.heading_path, m.page = p.heading_path, p.page
            out.append(m)
    return out


def _align(kb: KnowledgeBase, doc: Document, pstart: int, pend: int, q: str, qf: str,
           qmap: list[int]) -> QuoteMatch | None:
    widen = len(q) + 10
    w0 = max(0, pstart - widen)
    window = kb.store.document_slice(doc.id, w0, pend + widen)
    wf, wmap = fold_map(window)
    if not wf:
        return None
    pos = wf.find(qf)
    if pos >= 0:
        s, e = pos, pos + len(qf)
        sim, exact = 100.0, True
    else:
        al = fuzz.partial_ratio_alignment(qf, wf)
        if al is None:
            return None
        slack = max(4, len(qf) // 4)
        s0, e0 = max(0, al.dest_start - slack), min(len(wf), al.dest_end + slack)
        s, e = _trim_span(qf, wf, s0, e0)
        sim = Indel.normalized_similarity(qf, wf[s:e]) * 100
        exact = False
    # The aligned span must overlap the passage this candidate came from (else another
    # candidate reports it), which also keeps duplicates down.
    ms, me = w0 + wmap[s], w0 + wmap[e - 1] + 1
    if me <= pstart or ms >= pend:
        return None
    sent_s, sent_e, sent_text = _sentences_around(kb, doc.id, ms, me)
    diff = [] if exact else char_diff(q, qmap, qf, window, wf, wmap, s, e)
    return QuoteMatch(document=doc, start=sent_s, end=sent_e, text=sent_text, match_start=ms,
                      match_end=me, similarity=sim, exact=exact, diff=diff)


def _trim_span(qf: str, wf: str, s0: int, e0: int) -> tuple[int, int]:
    """Narrow ``wf[s0:e0]`` to the span that aligns with ``qf`` (drop unmatched ends)."""
    ops = Levenshtein.opcodes(qf, wf[s0:e0])
    s, e = s0, e0
    lst = list(ops)
    while lst and lst[0].tag == "insert":
        s = s0 + lst[0].dest_end
        lst.pop(0)
    while lst and lst[-1].tag == "insert":
        e = s0 + lst[-1].dest_start
        lst.pop()
    return (s, e) if e > s else (s0, e0)


def char_diff(q: str, qmap: list[int], qf: str, window: str, wf: str, wmap: list[int],
              s: int, e: int) -> list[DiffOp]:
    """Character diff from the quote (folded ``qf``) to the span ``wf[s:e]`` of the folded
    window, in original (unfolded) characters."""
    ops: list[DiffOp] = []
    for op in Levenshtein.opcodes(qf, wf[s:e]):
        qs = _originals(q, qmap, op.src_start, op.src_end)
        os_ = _originals(window, wmap, s + op.dest_start, s + op.dest_end)
        kind = {"equal": "equal", "delete": "added", "insert": "missing", "replace": "changed"}[op.tag]
        if ops and ops[-1].kind == kind:
            ops[-1].quote += qs
            ops[-1].original += os_
        else:
            ops.append(DiffOp(kind, qs, os_))
    return ops


def _originals(text: str, offsets: list[int], a: int, b: int) -> str:
    """The original characters behind folded positions ``a..b`` (each original char once)."""
    out, last = [], -1
    for i in range(a, b):
        o = offsets[i]
        if o != last:
            out.append(text[o])
            last = o
    return "".join(out)


def _sentences_around(kb: KnowledgeBase, doc_id: int, ms: int, me: int) -> tuple[int, int, str]:
    """The stored sentence(s) covering ``[ms, me)``, as (start, end, verbatim text)."""
    s, e = kb.store.sentence_span(doc_id, ms, me) or (ms, me)
    s, e = min(s, ms), max(e, me)
    return s, e, kb.store.document_slice(doc_id, s, e)


def _dedupe(matches: list[QuoteMatch]) -> list[QuoteMatch]:
    """One match per (document, span); the best one wins."""
    best: dict[tuple[int, int], QuoteMatch] = {}
    for m in matches:
        key = (m.document.id, m.start)
        if key not in best or m.similarity > best[key].similarity:
            best[key] = m
    return list(best.values())
