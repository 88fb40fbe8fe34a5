"""The peers users would pick instead, on the same passages and the same vectors.

- **bm25s** for keyword search, fed the same tokens as our keyword index (``yuanwen.text.tokenize``:
  CJK bigrams and ASCII words), so the comparison is of engines, not of tokenisers.
- **txtai** hybrid search (its BM25 scoring plus a FAISS index, with its default settings),
  fed the same tokens and, through an external ``transform``, exactly the vectors stored in our
  knowledge base; query vectors are the ones our searcher uses.

Neither merges neighbouring passages or builds citations: their figures are rankings of passage
ids, compared with our rankings (``KeywordSearcher``/``HybridSearcher``) and with our full
``search()`` (hits with citations).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from yuanwen.kb import KnowledgeBase

from yuanwen.search.retrieve import expand_query
from yuanwen.text import tokenize


def corpus(kb: KnowledgeBase) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """(passage ids, token strings, vectors or None) of every passage, in id order.

    Tokens cover the passage text, its heading path and the document title: the fields our
    keyword index holds (there with weights 1, 0.5 and 0.3)."""
    titles = dict(kb.store.titles())
    rows = [p for p in kb.store.passages() if p.doc_id in titles]
    ids = np.fromiter((p.id for p in rows), dtype=np.int64, count=len(rows))
    toks = [" ".join(tokenize(" ".join([p.text, *p.heading_path, titles[p.doc_id]]))) for p in rows]
    vecs = None
    if kb.dim:
        parts = list(kb.store.iter_passage_vectors(kb.dim))
        if parts and sum(len(p[0]) for p in parts) == len(ids):
            vecs = np.concatenate([p[1] for p in parts])
    return ids, toks, vecs


def query_tokens(query: str) -> str:
    """The distinct keyword terms our keyword searcher uses for ``query``, space-separated."""
    return " ".join(dict.fromkeys(tokenize(expand_query(query))))


class Bm25s:
    """bm25s over our tokens."""

    name = "bm25s"

    def __init__(self, ids: np.ndarray, toks: Sequence[str]) -> None:
        import bm25s

        t0 = time.perf_counter()
        self.ids = ids
        self.retriever = bm25s.BM25()
        self.retriever.index([t.split() for t in toks], show_progress=False)
        self.vocab = set(self.retriever.vocab_dict)
        self.build_s = time.perf_counter() - t0

    def search(self, query_tokens: str, k: int) -> list[int]:
        terms = [t for t in query_tokens.split() if t in self.vocab]
        if not terms:
            return []
        docs, _ = self.retriever.retrieve([terms], k=k, show_progress=False, n_threads=1)
        return [int(self.ids[i]) for i in docs[0]]


class Txtai:
    """txtai hybrid (BM25 + dense) with our vectors passed in."""

    name = "txtai"

    def __init__(self, ids: np.ndarray, toks: Sequence[str], vecs: np.ndarray,
                 query_vectors: dict[str, np.ndarray]) -> None:
        from txtai import Embeddings

        lookup: dict[str, np.ndarray] = dict(query_vectors)
        for t, v in zip(toks, vecs):
            lookup.setdefault(t, v)

        def transform(texts):
            return np.stack([lookup[t] for t in texts])

        t0 = time.perf_counter()
        self.emb = Embeddings(method="external", transform=transform, hybrid=True, content=False,
                              scoring={"method": "bm25", "terms": True,
                                       "tokenizer": {"whitespace": True, "lowercase": False}})
        self.emb.index((int(i), t, None) for i, t in zip(ids, toks))
        self.build_s = time.perf_counter() - t0

    def search(self, query_tokens: str, k: int) -> list[int]:
        return [int(i) for i, _ in self.emb.search(query_tokens, k)]
