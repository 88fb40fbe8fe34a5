"""Related passages (相关论述): for one passage, the closest passages in other documents.

A study group reading one speech wants what the other documents say on the same point. The
passage's own stored vector is searched in the vector index with its document filtered out
(pushed down to the backend, like any filter), one passage per other document, so the list
spans documents; without vectors, BM25 over the passage's text stands in. Each related
passage is a :class:`~yuanwen.models.Hit` with its citation and, like search hits, ``weak``
when its similarity is below the model's calibrated bar (``search.confidence``).
"""

from __future__ import annotations

import time

import numpy as np

from yuanwen.errors import UsageError
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, Filters, Hit, SearchResult

from .cite import cite
from .confidence import COVERAGE_ALONE, query_terms, share_found, similarity_threshold
from .retrieve import bm25_candidates

DEPTH = 8  # candidates per wanted passage: several may come from one document


def related(kb: KnowledgeBase, passage_id: int, k: int = 5, access: list[str] | None = None) -> SearchResult:
    """Up to ``k`` passages of other documents closest to passage ``passage_id``, best first,
    at most one per document; with ``access``, only documents at those levels (the passage
    itself too: one above them is reported as missing)."""
    t0 = time.perf_counter()
    if k < 1:
        raise UsageError("结果数 k 至少为 1")
    with kb.store.snapshot():
        source = kb.store.get_passages([passage_id]).get(passage_id)
        if source is not None and access and kb.store.document_access([source.doc_id]).get(source.doc_id) not in access:
            source = None
        if source is None:
            raise UsageError(f"知识库中没有段落 {passage_id}；段落编号见 search --json 的 passage_id")
        others = Filters(exclude_doc_ids=[source.doc_id], access=list(access or []))
        vec = _vector(kb, passage_id)
        index = kb.vectors() if vec is not None else None
        if index is not None and index.size:
            cands, mode = index.search(vec, k * DEPTH + 10, others), "semantic"
        else:
            cands = [(c.passage_id, c.score) for c in
                     bm25_candidates(kb, source.text[:300], k * DEPTH + 10, others, text_only=True)]
            mode = "keyword"
        passages = kb.store.get_passages([pid for pid, _ in cands])
        threshold = similarity_threshold(kb) if mode == "semantic" else None
        terms = query_terms(source.text[:300]) if mode == "keyword" else []
        hits: list[Hit] = []
        docs: dict[int, Document] = {}
        seen_text = {source.text}
        for pid, score in cands:
            p = passages.get(pid)
            if p is None or p.doc_id in docs or p.text in seen_text:
                continue
            seen_text.add(p.text)
            docs[p.doc_id] = doc = kb.store.get_document(p.doc_id, with_text=False)
            hit = Hit(rank=len(hits) + 1, score=score, passage=p, document=doc,
                      citation=cite(doc, p.heading_path, p.page, (p.start, p.end)))
            if mode == "semantic":
                hit.similarity = score
                hit.weak = threshold is not None and score < threshold
            else:
                hit.coverage = share_found(terms, p.text)
                hit.weak = hit.coverage < COVERAGE_ALONE
            hits.append(hit)
            if len(hits) >= k:
                break
    return SearchResult(query=source.text, mode=f"related:{mode}", hits=hits,
                        took_ms=(time.perf_counter() - t0) * 1000)


def _vector(kb: KnowledgeBase, passage_id: int) -> np.ndarray | None:
    if not kb.dim:
        return None
    for ids, vecs in kb.store.passage_vectors([passage_id], kb.dim):
        if len(ids):
            return vecs[0]
    return None
