"""How sure a hit is: its evidence, and whether that evidence is weak.

Ranking scores are relative (hybrid mode min-max normalises each list), so they cannot say
whether the best hit answers the question at all: the nearest noise is ranked first too. Two
absolute signals can:

- **similarity**: the cosine between the query and the hit's passages (the best of them), with
  the embedder that built the knowledge base;
- **coverage**: the share of the query's keyword terms (:func:`yuanwen.text.tokenize` of its
  keyword form, question words dropped) found in the hit's text.

A hit is strong when its similarity reaches the model's calibrated threshold
(``yuanwen/data/similarity_thresholds.tsv``) or half of the query's terms are in it; weak
otherwise. Keyword mode ranks by BM25 alone, yet is judged the same way when the knowledge base
has vectors and its model loads (coverage alone flags too few off-topic questions: 83% against
98%). Knowledge bases without vectors, and models without a calibrated threshold, have only
coverage, with a lower bar. The thresholds were fitted on the evaluation questions and everyday off-topic
questions (``benchmarks/calibrate_confidence.py``; figures in ``docs/search.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

from yuanwen.errors import YuanwenError
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Hit
from yuanwen.text import fold_width, tokenize
from yuanwen.vocab import similarity_thresholds

from .retrieve import expand_query

COVERAGE_WITH_SIMILARITY = 0.5  # beside a calibrated similarity: half the terms make a hit strong
COVERAGE_ALONE = 0.3  # keyword mode, or a model without a threshold: coverage is all there is


def query_terms(query: str) -> list[str]:
    """The query's own distinct keyword terms (question words dropped, 提法 not spelled out)."""
    return list(dict.fromkeys(tokenize(expand_query(query, spell_out=False))))


def share_found(terms: Sequence[str], text: str) -> float:
    """The share of ``terms`` that occur in ``text`` (0..1; 0 without terms)."""
    if not terms:
        return 0.0
    folded = fold_width(text)
    return sum(1 for t in terms if t in folded) / len(terms)


def coverage(query: str, text: str) -> float:
    """The share of the query's distinct keyword terms that occur in ``text`` (0..1)."""
    return share_found(query_terms(query), text)


def similarity_threshold(kb: KnowledgeBase) -> float | None:
    """The calibrated similarity threshold of the model that built ``kb``, if there is one."""
    return similarity_thresholds().get(kb.built_with or "")


def judge(kb: KnowledgeBase, query: str, hits: Sequence[Hit], passage_ids: Sequence[Sequence[int]],
          mode: str) -> None:
    """Set ``similarity``, ``coverage`` and ``weak`` on each hit; ``passage_ids[i]`` are the
    passages hit ``i`` shows (several when neighbours were merged)."""
    threshold = similarity_threshold(kb)
    sims = _similarities(kb, query, passage_ids, mode) if kb.dim and hits else {}
    terms = query_terms(query)  # once per query, not per hit
    for hit, ids in zip(hits, passage_ids):
        found = [sims[i] for i in ids if i in sims]
        hit.similarity = max(found) if found else None
        hit.coverage = share_found(terms, hit.passage.text)
        if threshold is not None and hit.similarity is not None:
            hit.weak = hit.similarity < threshold and hit.coverage < COVERAGE_WITH_SIMILARITY
        else:
            hit.weak = hit.coverage < COVERAGE_ALONE


def _similarities(kb: KnowledgeBase, query: str, passage_ids: Sequence[Sequence[int]],
                  mode: str) -> dict[int, float]:
    """The query's cosine with each passage that has a vector. In keyword mode a model that
    cannot load leaves the judgement to coverage; in the other modes it has loaded already."""
    wanted = sorted({pid for ids in passage_ids for pid in ids})
    try:
        qvec = kb.encode_query(query)
    except YuanwenError:
        if mode != "keyword":
            raise
        return {}
    sims: dict[int, float] = {}
    for ids, vecs in kb.store.passage_vectors(wanted, kb.dim):
        for pid, s in zip(ids.tolist(), (vecs @ qvec).tolist()):
            sims[int(pid)] = float(s)
    return sims
