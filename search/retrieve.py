"""Retrieval: keyword (BM25 over bigrams), semantic (dense vectors) and hybrid (fused).

Every searcher has the same ``search(query, k, filters) -> list[Candidate]`` signature, so
modes swap freely. Filters are applied before ranking is cut: the backend's keyword and
vector indexes take the ``Filters`` object itself (see :mod:`yuanwen.backend`).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from yuanwen.conventions import CN_SMALL
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Filters
from yuanwen import text as _text
from yuanwen.text import fold_width, tokenize
from yuanwen.vocab import Formulation, formulations, meetings, question_words

from .understand import Understood, document_match, names_meeting, understand


@dataclass
class Candidate:
    """A passage id with the score one searcher gave it (higher is better), and the named
    signals that make up that score (``--explain``): ``bm25`` and ``cosine`` are the raw
    scores of each side; in hybrid mode ``keyword`` and ``semantic`` are their shares of the
    fused score, and ``title``, ``understood`` and ``document`` the boosts added to it."""

    passage_id: int
    score: float
    signals: dict[str, float] = field(default_factory=dict)

    def boosted(self, name: str, amount: float) -> Candidate:
        """This candidate with ``amount`` added to its score as the signal ``name``."""
        if not amount:
            return self
        return Candidate(self.passage_id, self.score + amount, {**self.signals, name: amount})


# After 党的N大, words that show a congress is meant (党的三大召开, 党的七大以来), not one of the
# Party's "three major ..." (党的三大作风, 三大法宝).
_CONGRESS_CONTEXT = "召开|上|报告|以来|精神|通过|决议|党章|会议|前后|之前|之后|期间|提出|确立|选举|代表"


@lru_cache(maxsize=1)
def _abbreviations() -> list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]]:
    """Short names of the Party's meetings as users write them and the full names the documents
    use: the congresses from ``yuanwen/data/meetings.tsv`` (十九大 -> 第十九次全国代表大会; 一大
    to 十大 only as 党的三大召开..., never 三大攻坚战 or 五大发展理念), and plenary sessions by
    rule (十九届四中全会 -> 第十九届中央委员会第四次全体会议)."""
    out: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
    for m in meetings():
        if m.stands_alone:
            pat = re.compile(rf"(?<![{CN_SMALL}第]){m.short}(?!会|学|类|批|项)")
        else:
            pat = re.compile(rf"党的{m.short}(?={_CONGRESS_CONTEXT}|[，。、；：,.;:\s]|$)")
        out.append((pat, lambda _, full=m.full: full))
    out.append((re.compile(rf"([{CN_SMALL}]{{1,3}})届([{CN_SMALL}]{{1,2}})中全会"),
                lambda x: f"第{x.group(1)}届中央委员会第{x.group(2)}次全体会议"))
    return out


# Question words carry no topic: left in, their bigrams (什么, 哪些, 怎么…) match everywhere.
# The words are ``yuanwen/data/question_words.tsv``, tried in file order.
_QUESTION_WORDS = re.compile("|".join(map(re.escape, question_words())))


@lru_cache(maxsize=1)
def _formulation_names() -> tuple[tuple[str, Formulation], ...]:
    """Every way a 提法 is written (its term and aliases), longest first."""
    names = [(name, f) for f in formulations() for name in (f.term, *f.aliases)]
    return tuple(sorted(names, key=lambda x: -len(x[0])))


def formulations_in(text: str) -> list[Formulation]:
    """The 提法 that ``text`` uses, by their short forms (longest first, each once)."""
    folded = fold_width(text)
    found: dict[str, Formulation] = {}
    for name, f in _formulation_names():
        if name in folded and f.term not in found and not any(name in other for other in found):
            found[f.term] = f
    return list(found.values())


def expand_query(query: str, spell_out: bool = True) -> str:
    """The keyword form of ``query``: question words dropped (each becomes a break, so no
    bigram spans it), plus the full forms of the meeting abbreviations and the full wording of
    the 提法 it uses (``yuanwen/data/formulations.tsv``)."""
    extra = [fn(m) for pat, fn in _abbreviations() for m in pat.finditer(query)]
    if spell_out:
        extra += [f.full for f in formulations_in(query)]
    core = _QUESTION_WORDS.sub(" ", query)
    if not tokenize(core):
        core = query
    return core if not extra else core + " " + " ".join(extra)


def bm25_candidates(kb: KnowledgeBase, terms: str, k: int, filters: Filters | None = None,
                    weights: tuple[float, float, float] | None = None,
                    text_only: bool = False) -> list[Candidate]:
    """The top ``k`` passages by BM25 for the keyword terms of ``terms``, from the backend's
    keyword index. ``text_only`` scores the text alone, its idf counted over the text (quote
    candidates); else text, heading path and title are weighted by ``weights`` (default: the
    config's)."""
    weights = tuple(weights or kb.config.keyword_weights)
    return [Candidate(pid, score, {"bm25": score}) for pid, score in
            kb.keyword().search(terms, k, filters, weights=weights, text_only=text_only)]


class KeywordSearcher:
    """BM25 over CJK character bigrams and ASCII words (see :func:`bm25_candidates`)."""

    mode = "keyword"

    def __init__(self, kb: KnowledgeBase, weights: tuple[float, float, float] | None = None) -> None:
        self.kb = kb
        # bm25() column weights: passage text, heading path, document title.
        self.weights = tuple(weights if weights is not None else kb.config.keyword_weights)

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        return bm25_candidates(self.kb, expand_query(query), k, filters, self.weights)


class SemanticSearcher:
    """Dense retrieval: the query encoded with the embedder's query role, searched in the
    backend's vector index."""

    mode = "semantic"

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        index = self.kb.vectors()
        if index is None or index.size == 0:
            return []
        return [Candidate(pid, score, {"cosine": score})
                for pid, score in index.search(self.kb.encode_query(query), k, filters)]


@dataclass
class FusionConfig:
    """How hybrid mode mixes its two lists (tuned on benchmarks/eval; see docs/search.md)."""

    dense_weight: float = 0.6
    depth: int = 50  # candidates taken from each side
    doc_weight: float = 0.0  # weight of document-level evidence (other strong passages of the doc)
    title_weight: float = 0.2  # boost for passages of a document the query names (消防法, 十九大)
    title_min_chars: int = 3  # shortest part of a title that counts as naming it
    title_max_docs: int = 3  # a title part shared by more documents names none of them
    # boost for passages of documents with the year, kind, place or speaker the query names
    # (search.understand), times the share of those the document has
    understood_weight: float = 0.5


def _minmax(cands: list[Candidate]) -> dict[int, float]:
    if not cands:
        return {}
    vals = np.array([c.score for c in cands], dtype=np.float64)
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo
    if span <= 1e-12:
        return {c.passage_id: 1.0 for c in cands}
    return {c.passage_id: (c.score - lo) / span for c in cands}


def fuse(dense: list[Candidate], sparse: list[Candidate], dense_weight: float) -> list[Candidate]:
    """Min-max normalise each list and mix: ``w * dense + (1 - w) * keyword``.

    A passage missing from one list gets 0 from that side.
    """
    d, s = _minmax(dense), _minmax(sparse)
    raw = {c.passage_id: c.signals for c in sparse}
    for c in dense:
        raw[c.passage_id] = {**raw.get(c.passage_id, {}), **c.signals}
    fused = []
    for i in set(d) | set(s):
        parts = {"semantic": dense_weight * d.get(i, 0.0), "keyword": (1 - dense_weight) * s.get(i, 0.0)}
        fused.append(Candidate(i, parts["semantic"] + parts["keyword"], {**raw.get(i, {}), **parts}))
    fused.sort(key=lambda c: (-c.score, c.passage_id))
    return fused


_TITLES: "weakref.WeakKeyDictionary[KnowledgeBase, tuple]" = weakref.WeakKeyDictionary()


def title_index(kb: KnowledgeBase) -> tuple[list[tuple[int, str]], dict[str, set[int]]]:
    """Width-folded (doc id, title) pairs and, per three-character substring, the positions
    of the titles holding it; built once per database version."""
    version = kb.store.version()
    cached = _TITLES.get(kb)
    if cached and cached[0] == version:
        return cached[1], cached[2]
    titles = [(doc_id, fold_width(title)) for doc_id, title in kb.store.titles()]
    grams: dict[str, set[int]] = {}
    for n, (_, t) in enumerate(titles):
        for i in range(len(t) - 2):
            grams.setdefault(t[i : i + 3], set()).add(n)
    _TITLES[kb] = (version, titles, grams)
    return titles, grams


def named_documents_by_alignment(kb: KnowledgeBase, query: str, min_chars: int = 3,
                                 max_docs: int = 3) -> set[int]:
    """What :func:`named_documents` must return, computed the slow, obvious way: the query
    aligned with every title (as before the title trigram index). The tests check that both
    agree; the benchmarks measure the difference."""
    from difflib import SequenceMatcher

    q = fold_width(expand_query(query))
    titles = [(i, fold_width(t)) for i, t in kb.store.titles()]
    best: dict[str, set[int]] = {}
    for doc_id, t in titles:
        m = SequenceMatcher(None, q, t, autojunk=False).find_longest_match(0, len(q), 0, len(t))
        part = q[m.a : m.a + m.size]
        if (m.b <= 2 or len(t) - (m.b + m.size) <= 6) and len(tokenize(part)) >= min_chars - 1 \
                and len(part) >= min_chars:
            best.setdefault(part, set()).add(doc_id)
    for part in sorted(best, key=len, reverse=True):
        holders = {i for i, t in titles if part in t}
        if len(holders) <= max_docs:
            return holders
    return set()


def named_documents(kb: KnowledgeBase, query: str, min_chars: int = 3, max_docs: int = 3) -> set[int]:
    """Documents the query names: the longest part of the query found in a title, when that
    part is at least ``min_chars`` long, sits where names sit in Chinese titles (at the start,
    or ending within a few characters of the end: …消防法, …代表大会上的报告) and occurs in
    at most ``max_docs`` titles (so 消防法 names the fire law, while 安全生产 or 政府工作报告
    name no single document).

    Only titles sharing a three-character substring with the query can hold such a part, so
    only those are aligned (an index of title trigrams finds them).
    """
    from difflib import SequenceMatcher

    q = fold_width(expand_query(query))
    titles, grams = title_index(kb)
    n_min = max(min_chars, 3)
    near: set[int] = set()
    for i in range(len(q) - 2):
        near |= grams.get(q[i : i + 3], set())
    best: dict[str, set[int]] = {}
    for n in sorted(near):
        doc_id, t = titles[n]
        m = SequenceMatcher(None, q, t, autojunk=False).find_longest_match(0, len(q), 0, len(t))
        part = q[m.a : m.a + m.size]
        at_name = m.b <= 2 or len(t) - (m.b + m.size) <= 6
        if at_name and len(tokenize(part)) >= min_chars - 1 and len(part) >= n_min:
            best.setdefault(part, set()).add(doc_id)
    named: set[int] = set()
    for part in sorted(best, key=len, reverse=True):
        cands = set.intersection(*(grams.get(part[i : i + 3], set()) for i in range(len(part) - 2)))
        holders = {titles[n][0] for n in cands if part in titles[n][1]}
        if len(holders) <= max_docs:
            named |= holders
            break
    return named


def fuse_ranked(kb: KnowledgeBase, dense: list[Candidate], sparse: list[Candidate],
                fusion: FusionConfig, query: str = "", understood: Understood | None = None) -> list[Candidate]:
    """The hybrid ranking: :func:`fuse`, then document-level boosts if configured.

    The named-document boost lifts passages of a document the query names; document evidence
    lets a passage from the document that many strong candidates come from outrank a lone,
    equally scored passage of a topical neighbour.
    """
    fused = fuse(dense, sparse, fusion.dense_weight)
    named = (named_documents(kb, query, fusion.title_min_chars, fusion.title_max_docs)
             if fused and fusion.title_weight > 0 and query else set())
    asks = understood is not None and understood.signals > 0 and fusion.understood_weight > 0
    if not named and not asks and (fusion.doc_weight <= 0 or not fused):
        return fused
    doc_of = kb.store.passage_doc_ids([c.passage_id for c in fused])
    if asks:
        docs = kb.store.documents(filters=Filters(doc_ids=sorted(set(doc_of.values()))))
        match = {d.id: document_match(understood, d) for d in docs}
        fused = [c.boosted("understood", fusion.understood_weight * match.get(doc_of.get(c.passage_id), 0.0))
                 for c in fused]
        fused.sort(key=lambda c: (-c.score, c.passage_id))
    if named:
        fused = [c.boosted("title", fusion.title_weight * (doc_of.get(c.passage_id) in named)) for c in fused]
        fused.sort(key=lambda c: (-c.score, c.passage_id))
    if fusion.doc_weight <= 0:
        return fused
    per_doc: dict[int, list[float]] = {}
    for c in fused:
        per_doc.setdefault(doc_of.get(c.passage_id, -1), []).append(c.score)
    evidence = {d: sum(sorted(v, reverse=True)[1:4]) / 3 for d, v in per_doc.items()}
    out = [c.boosted("document", fusion.doc_weight * evidence[doc_of.get(c.passage_id, -1)]) for c in fused]
    out.sort(key=lambda c: (-c.score, c.passage_id))
    return out


class HybridSearcher:
    """Dense and keyword candidates fused into one ranking."""

    mode = "hybrid"

    def __init__(self, kb: KnowledgeBase, fusion: FusionConfig | None = None) -> None:
        self.kb = kb
        self.fusion = fusion or FusionConfig()
        self.keyword = KeywordSearcher(kb)
        self.semantic = SemanticSearcher(kb)

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        """The top ``k`` fused. The fusion always sees the top ``fusion.depth`` of each side, so
        asking for more (a larger ``k``) appends candidates and never reorders the first ones."""
        base = self.fusion.depth
        depth = max(base, k)
        sparse = self.keyword.search(query, depth, filters)
        dense = self.semantic.search(query, depth, filters)
        if not dense:
            return sparse[:k]
        access = filters.access if filters is not None else []  # a reader's clearance
        u = self.understood = understand(self.kb, query, access) if self.fusion.understood_weight > 0 else None
        asked = understood_filters(self.kb, u) if u is not None and (filters is None or filters.is_empty()) else None
        top_dense, top_sparse = dense[:base], sparse[:base]
        if asked is not None:  # the documents the query names compete even when others crowd them out
            top_dense = _union(top_dense, self.semantic.search(query, base, asked))
            top_sparse = _union(top_sparse, self.keyword.search(query, base, asked))
        top = fuse_ranked(self.kb, top_dense, top_sparse, self.fusion, query, u)
        if k <= len(top) or depth == base:
            return top[:k]
        seen = {c.passage_id for c in top}
        floor = min((c.score for c in top), default=0.0)
        rest = [Candidate(c.passage_id, min(c.score, floor), c.signals) for c in
                fuse_ranked(self.kb, dense, sparse, self.fusion, query, u) if c.passage_id not in seen]
        return (top + rest)[:k]


def understood_filters(kb: KnowledgeBase, u: Understood) -> Filters | None:
    """Filters for the documents with every attribute the query names (None: it names none).
    A fact's year also lets in the next year (whose work report reviews it); a congress lets in
    the documents whose titles name it."""
    if not u.signals:
        return None
    years = sorted(u.years)
    one = years[0] if len(years) == 1 else None
    until = str(int(one) + 1) if one and one in u.fact_years else one
    doc_ids = []
    if u.meetings:
        doc_ids = [i for i, t in title_index(kb)[0] if names_meeting(u, t)]  # titles cached per db version
    if u.newest_versions:
        doc_ids = sorted(set(doc_ids) & u.newest_versions if u.meetings else u.newest_versions)
    if (u.meetings or u.newest_versions) and not doc_ids:
        return None
    return Filters(doc_types=list(u.doc_types), issuers=u.places + u.speakers, since=one, until=until,
                   doc_ids=doc_ids)


def _union(a: list[Candidate], b: list[Candidate]) -> list[Candidate]:
    """Two candidate lists of one searcher for one query (comparable scores), best first."""
    seen = {c.passage_id for c in a}
    out = a + [c for c in b if c.passage_id not in seen]
    out.sort(key=lambda c: (-c.score, c.passage_id))
    return out


SEARCHERS = {"hybrid": HybridSearcher, "semantic": SemanticSearcher, "keyword": KeywordSearcher}


def query_terms(query: str) -> list[str]:
    """Terms to highlight: jieba words of the query (2+ chars), longest first."""
    jieba = _text.jieba()
    words = {w.strip() for w in jieba.cut_for_search(query) if len(w.strip()) >= 2}
    words = {w for w in words if tokenize(w)}
    return sorted(words, key=lambda w: (-len(w), w))
