"""Property: any stored sentence, looked up as a quote, is found ``exact`` at its real offsets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yuanwen.ingest.pipeline import ingest
from yuanwen.search.quote import MIN_QUOTE_CHARS, lookup_quote
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.text import fold_map

from .conftest import SAMPLE

MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture(scope="module")
def kb_and_sentences(tmp_path_factory, backend):
    cfg = Config(kb_dir=tmp_path_factory.mktemp("kbq"))
    ingest([MINI, SAMPLE], cfg, embedder="fake", progress=False)
    kb = KnowledgeBase(cfg, readonly=True)
    docs = kb.store.documents(with_text=True)  # through the store API: every backend
    rows = [(d.id, s.start, s.end, s.text) for d in docs for s in kb.store.document_sentences(d.id)]
    sents = [r for r in rows if sum(c.isalnum() for c in fold_map(r[3])[0]) >= MIN_QUOTE_CHARS]
    yield kb, sents, [d.text for d in docs]
    kb.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_sentence_is_found_exact_at_its_offsets(kb_and_sentences, data):
    kb, sents, texts = kb_and_sentences
    doc_id, start, end, text = data.draw(st.sampled_from(sents))
    res = lookup_quote(kb, text)
    assert res.verdict == "exact" and res.similarity == 100
    spans = {(m.document.id, m.match_start, m.match_end) for m in res.matches}
    folded = fold_map(text)[0]
    occurrences = sum(fold_map(t)[0].count(folded) for t in texts)
    if occurrences == 1:
        assert (doc_id, start, end) in spans
    for m in res.matches:  # every reported span really holds the quote
        doc = kb.store.get_document(m.document.id)
        assert fold_map(doc.text[m.match_start:m.match_end])[0] == folded
        assert m.start <= m.match_start < m.match_end <= m.end
