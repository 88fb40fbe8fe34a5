"""The data model: one dataclass per concept, defined here once.

Offsets (``start``/``end``) are character offsets into ``Document.text``, the verbatim
text as stored (after format repair such as PDF line joining, never after normalisation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Heading:
    """A heading found in a document's text: ``text[start:end]`` at nesting ``level`` (1 = top)."""

    start: int
    end: int
    level: int
    text: str


@dataclass
class ReadResult:
    """What a reader gets out of one file, before segmentation.

    ``text`` is verbatim (PDF text is repaired: lines joined, page-number lines dropped).
    ``pages`` holds the offset at which each page starts (PDF only; page N starts at
    ``pages[N-1]``). ``headings`` are headings the format itself marks (Markdown ``#``,
    DOCX heading styles); the segmenter also finds headings from Chinese conventions.
    ``meta`` holds metadata the format carries (HTML info table, front matter, PDF info).
    ``warnings`` are Chinese sentences for the user about a file that was read, but not
    wholly (characters that could not be decoded, pages of unreadable text left out).
    """

    text: str
    format: str
    pages: list[int] = field(default_factory=list)
    headings: list[Heading] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Document:
    """One stored document and its metadata."""

    path: str
    title: str
    text: str
    content_hash: str
    issuer: str | None = None
    date: str | None = None  # ISO: YYYY-MM-DD, YYYY-MM or YYYY
    doc_number: str | None = None  # 文号, verbatim
    doc_number_masked: bool = False  # 文号 contains masked characters (*, ×)
    doc_type: str | None = None
    pages: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # 版记, publication, aliases, ...
    id: int | None = None
    root: str | None = None  # the folder it was ingested from (paths are shown relative to it)
    #: Who may read it: a level of the knowledge base's ladder (公开, 内部...). None on a new
    #: document means "not given": stored as 公开, or as the level the replaced version had.
    access: str | None = None

    @property
    def year(self) -> int | None:
        """The year of ``date``, if known."""
        return int(self.date[:4]) if self.date and self.date[:4].isdigit() else None

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset`` (PDF only)."""
        if not self.pages:
            return None
        page = 1
        for i, start in enumerate(self.pages):
            if start <= offset:
                page = i + 1
            else:
                break
        return page


@dataclass
class Sentence:
    """A sentence of a document, with its offsets, for quote lookup."""

    start: int
    end: int
    text: str
    passage_seq: int = 0


@dataclass
class Passage:
    """A retrieval unit: consecutive whole sentences under one heading path."""

    seq: int  # order within the document, from 0
    start: int
    end: int
    text: str
    heading_path: list[str] = field(default_factory=list)
    para: int = 0  # 1-based number of the paragraph the passage starts in
    page: int | None = None
    id: int | None = None  # SQLite rowid, also the FAISS id
    doc_id: int | None = None


#: Said after the citation of text recognised by OCR.
OCR_NOTE = "（识别文本，请核对原件）"


@dataclass
class OcrLine:
    """One line of text recognised on a page image, with its box in image pixels."""

    text: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float  # the engine's confidence, 0..1


@dataclass
class OcrPage:
    """One page image recognised by OCR (the cache unit: resumable, one per page)."""

    page: int  # 1-based page (or frame) number in its file
    width: int  # the image as recognised, in pixels
    height: int
    lines: list[OcrLine] = field(default_factory=list)
    seconds: float = 0.0  # recognition time
    engine: str = ""



@dataclass
class Citation:
    """A formatted reference to a passage's source, in both supported styles."""

    gbt7714: str
    footnote: str
    #: The passage's text was recognised by OCR from a page image: the page's confidence (0..1),
    #: else None. :meth:`format` then adds :data:`OCR_NOTE`.
    ocr_confidence: float | None = None

    def format(self, style: str = "footnote") -> str:
        """The citation in ``style``: ``gbt7714`` or ``footnote``; recognised text says so."""
        if style in ("gbt7714", "gb", "gbt"):
            text = self.gbt7714
        elif style == "footnote":
            text = self.footnote
        else:
            raise ValueError(f"unknown citation style {style!r}: use gbt7714 or footnote")
        return text + OCR_NOTE if self.ocr_confidence is not None else text

    @property
    def recognised(self) -> bool:
        """Whether the cited text was recognised by OCR (check it against the original)."""
        return self.ocr_confidence is not None


@dataclass
class Hit:
    """One search result: a passage with its document and the evidence for it."""

    rank: int
    score: float
    passage: Passage
    document: Document
    matched_terms: list[str] = field(default_factory=list)
    citation: Citation | None = None
    #: The evidence is below the calibrated bar: shown apart, as 相关度较低 (see search.confidence).
    weak: bool = False
    #: Cosine of the query and the hit's best passage (None: keyword mode, or no vectors).
    similarity: float | None = None
    #: Share of the query's keyword terms found in the hit's text.
    coverage: float = 0.0
    #: The named signals its score is made of (search.retrieve.Candidate): bm25, cosine,
    #: keyword, semantic, title, understood, document.
    signals: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view with flat keys, as the CLI prints it."""
        d = self.document
        p = self.passage
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "text": p.text,
            "heading_path": list(p.heading_path),
            "title": d.title,
            "issuer": d.issuer,
            "date": d.date,
            "doc_type": d.doc_type,
            "doc_number": d.doc_number,
            "access": d.access,
            "page": p.page,
            "start": p.start,
            "end": p.end,
            "passage_id": p.id,
            "doc_id": d.id,
            "path": d.path,
            "matched_terms": list(self.matched_terms),
            "weak": self.weak,
            "similarity": None if self.similarity is None else round(float(self.similarity), 4),
            "coverage": round(float(self.coverage), 3),
            "signals": {k: round(float(v), 4) for k, v in self.signals.items()},
            "citation": self.citation.footnote if self.citation else None,
            "citation_gbt7714": self.citation.gbt7714 if self.citation else None,
        }


@dataclass
class FileOutcome:
    """What happened to one input file during an ingest."""

    path: str
    status: str  # added | updated | unchanged | duplicate | failed | pruned
    reason: str = ""
    doc_id: int | None = None
    passages: int = 0
    warnings: list[str] = field(default_factory=list)  # it went in, but the user should know (e.g. bytes replaced)
    content_hash: str | None = None  # of the text stored (added or updated)


@dataclass
class IngestReport:
    """The summary of one ingest run."""

    outcomes: list[FileOutcome] = field(default_factory=list)
    passages_stored: int = 0
    passages_embedded: int = 0
    store_seconds: float = 0.0
    embed_seconds: float = 0.0
    keyword_index_seconds: float = 0.0  # bringing the eager BM25 index up to date
    vector_index_seconds: float = 0.0  # bringing the FAISS index up to date
    ocr_pages: int = 0  # page images recognised by OCR in this run
    ocr_pages_cached: int = 0  # pages whose recognition an interrupted run had saved
    ocr_seconds: float = 0.0

    def count(self, status: str) -> int:
        """How many files ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        """The files that could not be ingested."""
        return [o for o in self.outcomes if o.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


@dataclass
class Filters:
    """Restrictions applied before ranking: document type, issuer, date range, documents."""

    doc_types: list[str] = field(default_factory=list)
    issuers: list[str] = field(default_factory=list)  # substring match on issuer/speaker
    since: str | None = None  # ISO date or year, inclusive
    until: str | None = None  # ISO date or year, inclusive
    doc_ids: list[int] = field(default_factory=list)
    exclude_doc_ids: list[int] = field(default_factory=list)  # e.g. a passage's own document
    #: Only documents at these access levels (the acting user's clearance; empty: any).
    access: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when nothing is restricted."""
        return not (self.doc_types or self.issuers or self.since or self.until or self.doc_ids
                    or self.exclude_doc_ids or self.access)


@dataclass
class SearchResult:
    """The answer to one search."""

    query: str
    mode: str
    hits: list[Hit]
    took_ms: float
    #: What the query names and the ranking used (hybrid): 2025年 · 政府工作报告 · 江苏.
    understood: list[str] = field(default_factory=list)

    @property
    def strong_hits(self) -> list[Hit]:
        """The hits whose evidence is not weak, in rank order."""
        return [h for h in self.hits if not h.weak]

    @property
    def all_weak(self) -> bool:
        """No hit has strong evidence: 没有找到明显相关的内容 (also when there is no hit)."""
        return not self.strong_hits

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as ``yuanwen search --json`` prints it."""
        return {
            "query": self.query, "mode": self.mode, "took_ms": round(self.took_ms, 1),
            "all_weak": self.all_weak, "understood": list(self.understood),
            "hits": [h.to_dict() for h in self.hits],
        }


@dataclass
class DiffOp:
    """One step of a character diff from a quote to the original text.

    ``kind`` is ``equal``, ``missing`` (in the original, dropped from the quote), ``added``
    (in the quote, not in the original) or ``changed`` (``quote`` replaced ``original``).
    """

    kind: str
    quote: str
    original: str


@dataclass
class QuoteMatch:
    """One source of a quote: where it is, how close, what differs, how to cite it."""

    document: Document
    start: int  # offsets of the original sentence(s) in the document
    end: int
    text: str  # the original sentence(s), verbatim
    match_start: int  # offsets of the aligned span itself
    match_end: int
    similarity: float  # 0..100
    exact: bool
    diff: list[DiffOp] = field(default_factory=list)
    heading_path: list[str] = field(default_factory=list)
    page: int | None = None
    citation: Citation | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.document
        return {
            "text": self.text, "matched_text": d.text[self.match_start : self.match_end],
            "title": d.title, "issuer": d.issuer, "date": d.date, "doc_type": d.doc_type,
            "doc_number": d.doc_number, "doc_id": d.id, "path": d.path, "access": d.access,
            "start": self.start, "end": self.end,
            "match_start": self.match_start, "match_end": self.match_end,
            "similarity": round(self.similarity, 2), "exact": self.exact,
            "heading_path": list(self.heading_path), "page": self.page,
            "diff": [asdict(op) for op in self.diff],
            "citation": self.citation.footnote if self.citation else None,
            "citation_gbt7714": self.citation.gbt7714 if self.citation else None,
        }


@dataclass
class QuoteResult:
    """The verdict on a quote: ``exact``, ``close`` or ``not_found``, with every source."""

    query: str
    verdict: str
    similarity: float
    matches: list[QuoteMatch]
    took_ms: float = 0.0
    #: With ``not_found``: wordings that come near (相近的表述), shown apart, never as the source.
    similar: list[QuoteMatch] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query, "verdict": self.verdict,
            "similarity": round(self.similarity, 2), "took_ms": round(self.took_ms, 1),
            "matches": [m.to_dict() for m in self.matches],
            "similar": [m.to_dict() for m in self.similar],
        }


@dataclass
class PackItem:
    """A passage collected into a study pack, with the trainer's note."""

    text: str
    title: str
    citation: str
    heading_path: list[str] = field(default_factory=list)
    note: str = ""
    passage_id: int | None = None
    doc_id: int | None = None
    date: str | None = None
    access: str | None = None  # its document's access level when it was added


@dataclass
class PackSection:
    """A group of pack items under the trainer's own section title."""

    title: str
    items: list[PackItem] = field(default_factory=list)


@dataclass
class StudyPack:
    """A study-session pack (学习材料汇编): a title and ordered sections of passages."""

    title: str = "学习材料汇编"
    subtitle: str = ""
    sections: list[PackSection] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StudyPack":
        """Rebuild a pack from :meth:`to_dict` output (e.g. a saved JSON file)."""
        sections = [
            PackSection(s.get("title", ""), [PackItem(**i) for i in s.get("items", [])])
            for s in data.get("sections", [])
        ]
        return cls(title=data.get("title", "学习材料汇编"), subtitle=data.get("subtitle", ""),
                   sections=sections)


@dataclass
class SavedPack:
    """A study pack saved in the knowledge base folder (``<kb>/packs/<name>.json``)."""

    name: str
    pack: StudyPack = field(default_factory=StudyPack)
    revision: int = 0  # bumped by every save; a save that names an older one is refused
    modified: str = ""  # local time of the last save, "YYYY-MM-DD HH:MM"
    error: str = ""  # why the file could not be read (listings only); empty when it is fine

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyReport:
    """What ``verify`` found in a knowledge base, and what it repaired."""

    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts that are not problems (pending vectors)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (after repairs, if any were made)."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


@dataclass
class MigrateReport:
    """What ``yuanwen migrate`` copied from one knowledge base into another (counts of this
    run; what an earlier, interrupted run had copied is counted in ``*_skipped``)."""

    source: str
    target: str
    source_backend: str
    target_backend: str
    documents: int = 0
    passages: int = 0
    sentences: int = 0
    vectors: int = 0
    documents_skipped: int = 0  # already in the target (an interrupted run resumed)
    vectors_skipped: int = 0
    ocr_pages: int = 0
    accounts: int = 0
    files: int = 0  # saved packs and other files of the folder (audit log, uploads)
    seconds: float = 0.0
    embedder: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExcerptGroup:
    """The excerpts of one document in a 论述摘编: its passages in reading order."""

    document: Document
    hits: list[Hit] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = self.document
        return {"doc_id": d.id, "title": d.title, "issuer": d.issuer, "date": d.date,
                "doc_type": d.doc_type, "doc_number": d.doc_number,
                "hits": [h.to_dict() for h in self.hits]}


@dataclass
class Excerpts:
    """A 论述摘编 proposed for a theme: the relevant passages grouped by document, the
    documents in date order (earliest first; undated ones last), each passage with its source."""

    theme: str
    groups: list[ExcerptGroup] = field(default_factory=list)
    #: Weak hits (相关度较低) found and left out (0 when they were asked for).
    weak_left_out: int = 0
    #: What the theme names and the search used (2025年 · 讲话 ...), as ``SearchResult.understood``.
    understood: list[str] = field(default_factory=list)
    took_ms: float = 0.0

    @property
    def hits(self) -> list[Hit]:
        """Every proposed passage, in the order of the 摘编 (by date, then reading order)."""
        return [h for g in self.groups for h in g.hits]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as ``yuanwen excerpts --json`` prints it."""
        return {"theme": self.theme, "took_ms": round(self.took_ms, 1),
                "understood": list(self.understood), "weak_left_out": self.weak_left_out,
                "passages": len(self.hits), "groups": [g.to_dict() for g in self.groups]}


@dataclass
class YearCount:
    """How often a formulation occurs in the documents of one year."""

    year: int
    occurrences: int
    documents: int


@dataclass
class Timeline:
    """提法演变: where and how often a formulation occurs in the knowledge base, by year.

    ``forms`` are what was counted: the term and, for a 提法 of the glossary
    (``yuanwen/data/formulations.tsv``), its other short forms and its full wording; occurrences
    are exact (width-folded) and do not overlap. Years come from document dates; documents
    without a date are counted apart (``undated``).
    """

    term: str
    forms: list[str]
    #: The glossary's term when ``term`` is a 提法 it lists (or one of its forms), else None.
    formulation: str | None = None
    occurrences: int = 0
    documents: int = 0
    by_form: dict[str, int] = field(default_factory=dict)
    #: Years with occurrences, ascending.
    years: list[YearCount] = field(default_factory=list)
    undated: YearCount | None = None  # year 0: documents without a date
    #: The earliest dated document that uses it (date, then title), and its first such passage.
    first_document: Document | None = None
    first: Hit | None = None
    #: The passages that use it, by document date (earliest first, undated last), then in
    #: reading order; ``score`` is the occurrences in the passage, ``matched_terms`` the forms.
    passages: list[Hit] = field(default_factory=list)
    took_ms: float = 0.0

    def series(self) -> list[YearCount]:
        """Every year from the first to the last with occurrences, zeros included (a chart)."""
        if not self.years:
            return []
        have = {y.year: y for y in self.years}
        return [have.get(y, YearCount(y, 0, 0))
                for y in range(self.years[0].year, self.years[-1].year + 1)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, as ``yuanwen timeline --json`` prints it."""
        fd = self.first_document
        return {
            "term": self.term, "forms": list(self.forms), "formulation": self.formulation,
            "occurrences": self.occurrences, "documents": self.documents,
            "by_form": dict(self.by_form), "took_ms": round(self.took_ms, 1),
            "first": None if fd is None else {
                "doc_id": fd.id, "title": fd.title, "date": fd.date, "issuer": fd.issuer,
                "doc_type": fd.doc_type,
                "passage": self.first.to_dict() if self.first is not None else None},
            "years": [asdict(y) for y in self.years],
            "undated": asdict(self.undated) if self.undated is not None else None,
            "passages": [{**h.to_dict(), "occurrences": int(h.score)} for h in self.passages],
        }


# -- accounts, access and audit -----------------------------------------------------------------
@dataclass
class Account:
    """A user of a shared knowledge base: a role (reader, editor, admin) and a clearance (the
    highest access level they may read). Local accounts have a password; OIDC ones do not."""

    name: str
    role: str
    clearance: str
    disabled: bool = False
    source: str = "local"  # "local" (password) or "oidc" (single sign-on)
    created: str | None = None  # ISO time, UTC
    last_login: str | None = None


@dataclass
class Actor:
    """Who is acting now: an account (or the machine's own user, ``local``), from where."""

    name: str
    role: str
    clearance: str
    client: str = ""  # the client address (app) or 本机命令行 (CLI)
    local: bool = False  # the desktop user of a knowledge base without accounts, or the CLI
    via: str = "password"  # how they logged in: password, oidc, local

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AuditEntry:
    """One line of the audit log: who did what, when, from where, and how it went."""

    ts: str  # ISO time, UTC
    account: str
    client: str
    action: str
    target: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"  # ok, denied, failed
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
