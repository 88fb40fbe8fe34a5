"""提法演变: when a formulation first appears in the knowledge base, and how often, year by year.

A formulation is counted by its exact occurrences in document text, width-folded (``Ｇ２０``
counts as ``G20``; :func:`yuanwen.text.fold_width`). A 提法 of the glossary
(``yuanwen/data/formulations.tsv``, :func:`yuanwen.vocab.formulations`) counts all its forms:
its short form, the other ways to write it and its full wording (十四五 = 14五 =
国民经济和社会发展第十四个五年规划); occurrences never overlap, the longest form winning
(创新、协调、绿色、开放、共享的新发展理念 is one occurrence, not two).

An occurrence must start a word: one whose first character ends a word of the text before it,
as jieba cuts it, is not the formulation (创新发展理念 is 创新 + 发展 + 理念: no 新发展理念 in
it). Its end is not checked: 人民 in 人民群众 is still 人民. Forms under four characters are plain
words and are not checked either (jieba's dictionary holds 依靠人民 as one word).
:func:`is_occurrence` decides.

The keyword index finds the candidate documents: a form's keyword terms (CJK bigrams, ASCII
words) must all be in one of their passages (their posting lists intersected), so only those
documents' texts are read and scanned. A form whose every term may be cut differently in a
longer run of text (a lone character or an ASCII word at its edges, such as ``14五``) has no
safe phrase; then every document is scanned, which is still a fraction of a second at 16k
passages.
"""

from __future__ import annotations

import bisect
import re
import sqlite3
import time
from functools import lru_cache

from yuanwen.errors import BadQueryError, kb_error_from
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, Filters, Hit, Timeline, YearCount
from yuanwen import text as _text
from yuanwen.text import fold_width, tokenize
from yuanwen.vocab import formulations

from .cite import cite

MAX_TERM_CHARS = 60  # a formulation, not a paragraph
_SINGLE_CJK = re.compile(r"^[^0-9a-z]$")  # one CJK character standing alone as a term


def forms_of(term: str) -> tuple[list[str], str | None]:
    """What to count for ``term`` (width-folded): the forms of the glossary's 提法 when
    ``term`` is one of them (term first, then other short forms, then the full wording), else
    ``term`` alone; and the glossary's term, or None."""
    t = fold_width(term.strip())
    for f in formulations():
        forms = [fold_width(x) for x in (f.term, *f.aliases, f.full)]
        if t in forms:
            return list(dict.fromkeys(forms)), f.term
    return [t], None


@lru_cache(maxsize=256)
def _variants(ch: str) -> str:
    """A regex matching every character that width-folds to ``ch`` (``g``: g, G, ｇ, Ｇ)."""
    cands = {ch, ch.upper(), "\u3000"}
    cands |= {chr(ord(c) + 0xFEE0) for c in (ch, ch.upper()) if 0x21 <= ord(c) <= 0x7E}
    found = sorted(c for c in cands if fold_width(c) == ch)
    return re.escape(ch) if len(found) == 1 else "[" + "".join(map(re.escape, found)) + "]"


def form_pattern(forms: list[str]) -> re.Pattern[str]:
    """A pattern matching any of ``forms`` (width-folded) in raw text, the longest first, so
    that ``finditer`` gives non-overlapping occurrences as ``fold_width(text)`` has them."""
    ordered = sorted(set(forms), key=lambda f: (-len(f), f))
    return re.compile("|".join("".join(_variants(c) for c in f) for f in ordered))


def safe_phrase(form: str) -> list[str]:
    """The keyword terms of ``form`` that any text holding it has in a row, or [] when none
    is certain. Inner terms always are; a CJK bigram at an edge is too (a longer run of
    Chinese has the same bigram); a lone character or an ASCII word at an edge is not (in
    ``十四五`` the ``五`` of ``14五`` is the bigram ``四五``), so those are dropped."""
    terms = tokenize(form)

    def risky(t: str) -> bool:
        return t.isascii() or bool(_SINGLE_CJK.match(t))

    while terms and risky(terms[0]):
        terms = terms[1:]
    while terms and risky(terms[-1]):
        terms = terms[:-1]
    return terms


def candidate_documents(kb: KnowledgeBase, forms: list[str], access: list[str] | None = None) -> list[Document] | None:
    """The documents (with text) that may hold one of ``forms``: those the keyword index
    finds for every form's safe phrase; None when some form has none (scan them all)."""
    phrases = [safe_phrase(f) for f in forms]
    if not all(phrases):
        return None
    ids = kb.keyword().phrase_doc_ids(phrases)
    if not ids:
        return []
    return kb.store.documents(with_text=True, filters=Filters(doc_ids=sorted(ids), access=list(access or [])))


def timeline(kb: KnowledgeBase, term: str, access: list[str] | None = None) -> Timeline:
    """Where and how often ``term`` (and, for a glossary 提法, its other forms) occurs: first
    appearance, counts per year, and the passages that use it by date; with ``access``, in
    the documents at those levels only."""
    t0 = time.perf_counter()
    asked = (term or "").strip()
    if not tokenize(asked):
        raise BadQueryError("请输入要查看的提法，如：新质生产力")
    if len(asked) > MAX_TERM_CHARS:
        raise BadQueryError(f"提法过长（{len(asked)} 字，上限 {MAX_TERM_CHARS} 字），请只写提法本身")
    forms, glossary = forms_of(asked)
    pattern = form_pattern(forms)
    try:
        with kb.store.snapshot():
            docs = candidate_documents(kb, forms, access)
            if docs is None:
                docs = kb.store.documents(with_text=True, filters=Filters(access=list(access or [])))
            out = _count(kb, asked, forms, glossary, pattern, docs)
    except sqlite3.DatabaseError as exc:  # a damaged database, a disk error: say what it means
        raise kb_error_from(exc, kb.kb_dir) or exc from exc
    out.took_ms = (time.perf_counter() - t0) * 1000
    return out


def _count(kb: KnowledgeBase, asked: str, forms: list[str], glossary: str | None,
           pattern: re.Pattern[str], docs: list[Document]) -> Timeline:
    res = Timeline(term=asked, forms=forms, formulation=glossary, by_form={f: 0 for f in forms})
    years: dict[int, YearCount] = {}
    dated: list[tuple[tuple[str, str], Document, list[Hit]]] = []
    undated: list[tuple[tuple[str, str], Document, list[Hit]]] = []
    for doc in docs:
        found = [(m.start(), fold_width(m.group())) for m in pattern.finditer(doc.text)
                 if is_occurrence(doc.text, m.start(), m.end())]
        if not found:
            continue
        for _, form in found:
            res.by_form[form] += 1
        res.occurrences += len(found)
        res.documents += 1
        year = doc.year
        if year is None:
            res.undated = res.undated or YearCount(0, 0, 0)
            res.undated.occurrences += len(found)
            res.undated.documents += 1
        else:
            y = years.setdefault(year, YearCount(year, 0, 0))
            y.occurrences += len(found)
            y.documents += 1
        hits = _passages(kb, doc, found)
        doc.text = ""  # the hits carry their passages; do not keep every text in memory
        key = (doc.date or "", doc.title or "")
        (dated if year is not None else undated).append((key, doc, hits))
    dated.sort(key=lambda x: (x[0], x[1].id or 0))
    undated.sort(key=lambda x: (x[0], x[1].id or 0))
    res.years = [years[y] for y in sorted(years)]
    if dated:
        res.first_document = dated[0][1]
        res.first = dated[0][2][0] if dated[0][2] else None
    res.passages = [h for _, _, hits in dated + undated for h in hits]
    for rank, h in enumerate(res.passages, 1):
        h.rank = rank
    return res


_CONTEXT = 8  # characters on each side that jieba sees
CHECKED_FROM = 4  # characters: shorter forms are plain words, counted wherever they stand


def is_occurrence(text: str, start: int, end: int) -> bool:
    """``text[start:end]``, a match of a form, counts as an occurrence of the formulation."""
    return end - start < CHECKED_FROM or starts_a_word(text, start)


def starts_a_word(text: str, start: int) -> bool:
    """No word of ``text`` runs across ``start`` (jieba's cut of the characters around it)."""
    jieba = _text.jieba()
    a = max(0, start - _CONTEXT)
    s = start - a
    return not any(ws < s < we for _w, ws, we in jieba.tokenize(text[a : start + _CONTEXT]))


def _passages(kb: KnowledgeBase, doc: Document, found: list[tuple[int, str]]) -> list[Hit]:
    """The passages of ``doc`` holding the occurrences at ``found`` (offset, form), in reading
    order, each a Hit whose score is how many occurrences start in it."""
    passages = kb.store.document_passages(doc.id)
    starts = [p.start for p in passages]
    per: dict[int, list[str]] = {}
    for offset, form in found:
        i = bisect.bisect_right(starts, offset) - 1
        if i >= 0 and offset < passages[i].end:
            per.setdefault(i, []).append(form)
    hits = []
    for i in sorted(per):
        p = passages[i]
        hits.append(Hit(rank=0, score=float(len(per[i])), passage=p, document=doc,
                        matched_terms=list(dict.fromkeys(per[i])),
                        citation=cite(doc, p.heading_path, p.page, (p.start, p.end)),
                        signals={"occurrences": float(len(per[i]))}))
    return hits
