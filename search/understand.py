"""What a query names besides its topic: a year, a kind of document, a place or issuer, a
speaker, a Party congress. "2025年政府工作报告里关于安全生产的部署" asks for one document
among 58 work reports; "总书记在企业家座谈会上讲…" asks for a speech.

:func:`understand` reads these from the query (the places and issuers from the knowledge
base's own issuers, the speakers and meetings from ``yuanwen/data``); hybrid ranking then
lifts passages of documents that match (:func:`document_match`), and the front ends show
what was understood ("已识别：2025年 · 政府工作报告"), with a way to turn it off.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from yuanwen.conventions import cn_int
from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document, Filters
from yuanwen.vocab import meetings, speakers

_YEAR = re.compile(r"(?<![0-9０-９])((?:19|20)[0-9]{2})年(?!代)")
# A year that names a document (2025年政府工作报告, 2023年的报告), not the year of a fact.
_REPORT_YEAR = re.compile(r"^的?(?:[^，。？\s]{0,6}?政府)?(?:工作)?报告")
# The first or last year of a five-year plan: 十四五开局那年 (2021), 十三五收官之年 (2020).
_PLAN_YEAR = re.compile(r"(?<![一二三四五六七八九十])(第?[一二三四五六七八九十]{1,3}?)(?:个)?五(?:年)?(?:规划|计划)?的?"
                        r"(开局|起步|开篇|第一年|收官|最后一年)")
# Words asking for the version in force of a law that has several (新修订的突发事件应对法).
_LATEST = re.compile(r"新修订|新修改|新修正|修订后|修改后|修正后|新版|最新版|现行")
# After 十八大, words that make it a time (十八大以来) or a subject of study (学习二十大精神,
# found in other documents), not the congress or its report.
_SINCE = re.compile(r"^(?:以来|之后|以后|后|前|之前|期间|精神|胜利召开|召开以来)")
# A place at the start of an issuer: 江苏省人民政府, 中共泰安市委, 广西壮族自治区人民政府.
_PLACE = re.compile(r"^(?:中共)?(.{2,8}?)(?:维吾尔自治区|壮族自治区|回族自治区|特别行政区|自治区|省|市)")
_SPEECH = re.compile(r"讲话|座谈会|致辞|演讲|发言|回信|总书记.{0,4}(?:讲|说|指出|强调)")
_CONGRESS_REPORT = re.compile(r"[一二三四五六七八九十]{1,3}大报告|党代会报告|党代会")
# The title pattern of an official document: 关于…的通知 names a 通知.
_TITLED_KIND = re.compile(r"关于.{2,40}?的(通知|意见|决定|批复|通报|公告|函)")
_BRACKETS = re.compile(r"[（(].*?[）)]")
_YEAR_PREFIX = re.compile(r"^(?:19|20)[0-9]{2}年")
# National issuers as users name them (国务院办公厅, 全国人民代表大会常务委员会): not places.
_NATIONAL = ("国务院", "国家", "全国", "中共中央", "中央")
SPEECH_TYPES = ("讲话", "讲话（文章节选）", "致辞", "演讲", "发言", "谈话", "回信")
# How users name a speaker without the name.
_TITLES = {"总书记": "习近平"}


@dataclass
class Understood:
    """What the query names. Empty lists: nothing of that kind."""

    years: list[str] = field(default_factory=list)
    doc_types: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)  # places and issuers: in a document's issuer or title
    speakers: list[str] = field(default_factory=list)  # matched in issuer, speaker or title
    meetings: list[str] = field(default_factory=list)  # full names, as shown
    # How a document's title names those meetings: the full names and the short ones (党的十八大报告).
    meeting_names: list[str] = field(default_factory=list, repr=False)
    known_places: list[str] = field(default_factory=list, repr=False)  # the knowledge base's
    # Years of a fact (河南2024年粮食总产量), not of a document: the work report of the next
    # year, which reviews that year, half matches.
    fact_years: list[str] = field(default_factory=list, repr=False)
    # The query asks for the version in force: the newest of each set of documents sharing a
    # title (the 2007 and 2024 突发事件应对法), by id.
    newest_versions: set[int] = field(default_factory=set, repr=False)

    @property
    def signals(self) -> int:
        """How many kinds of document attribute the query names (years, types, issuers,
        congresses)."""
        return sum(bool(x) for x in (self.years, self.doc_types, self.places or self.speakers,
                                     self.meetings, self.newest_versions))

    def labels(self) -> list[str]:
        """What to show: 2025年 · 政府工作报告 · 江苏."""
        types = ["政府工作报告" if t == "政府工作报告" else "地方政府工作报告" if t == "政府工作报告（地方）" else t
                 for t in self.doc_types if t not in SPEECH_TYPES[1:]]
        return ([f"{y}年" for y in self.years] + types + self.places + self.speakers + self.meetings
                + (["现行版本"] if self.newest_versions else []))


_PLACES: "weakref.WeakKeyDictionary[KnowledgeBase, dict[tuple[str, ...], tuple]]" = weakref.WeakKeyDictionary()


def places_of(kb: KnowledgeBase, access: Sequence[str] = ()) -> list[str]:
    """Issuers as users name them, longest first: the place names at the start of the
    knowledge base's issuers (江苏, 北京, 泰安...) and its national issuers (国务院办公厅,
    全国人民代表大会常务委员会, 国家能源局...); counted again only when the database changes.
    With ``access``, of the documents at those levels only (a reader's clearance: what was
    understood must not tell which places documents above it name)."""
    version, key = kb.store.version(), tuple(access)
    cached = _PLACES.setdefault(kb, {}).get(key)
    if cached and cached[0] == version:
        return cached[1]
    found = set()
    visible = _visible_ids(kb, access)
    for issuer in kb.facets(access)["by_issuer"]:
        m = _PLACE.match(issuer)
        if m and not m.group(1).startswith("国"):
            found.add(m.group(1))
        for part in re.split(r"[、，, ]", _BRACKETS.sub("", issuer)):
            if len(part) >= 3 and part.startswith(_NATIONAL):
                found.add(part)
    for doc_id, title in kb.store.titles():  # 2025年河北省政府工作报告, 北京市安全生产条例
        if visible is not None and doc_id not in visible:
            continue
        m = _PLACE.match(_YEAR_PREFIX.sub("", title))
        if m and not m.group(1).startswith(("国", "中华")):
            found.add(m.group(1))
    out = sorted(found, key=lambda p: (-len(p), p))
    _PLACES[kb][key] = (version, out)
    return out


_VERSIONS: "weakref.WeakKeyDictionary[KnowledgeBase, dict[tuple[str, ...], tuple]]" = weakref.WeakKeyDictionary()


def _visible_ids(kb: KnowledgeBase, access: Sequence[str]) -> set[int] | None:
    """Ids of the documents at the ``access`` levels (None: no restriction)."""
    if not access:
        return None
    return {d.id for d in kb.store.documents(filters=Filters(access=list(access))) if d.id is not None}


def newest_versions(kb: KnowledgeBase, access: Sequence[str] = ()) -> set[int]:
    """Ids of the newest document of each title that several documents share (the versions of
    one law); counted again only when the database changes. With ``access``, among the
    documents at those levels only."""
    version, key = kb.store.version(), tuple(access)
    cached = _VERSIONS.setdefault(kb, {}).get(key)
    if cached and cached[0] == version:
        return cached[1]
    by_title: dict[str, list[tuple[str, int]]] = {}
    for d in kb.store.documents(filters=Filters(access=list(access)) if access else None):
        by_title.setdefault(d.title or "", []).append((d.date or "", d.id))
    out = {max(v)[1] for t, v in by_title.items() if t and len({date for date, _ in v}) > 1}
    _VERSIONS[kb][key] = (version, out)
    return out


def understand(kb: KnowledgeBase, query: str, access: Sequence[str] = ()) -> Understood:
    """The years, kinds of document, places, speakers and congresses ``query`` names; with
    ``access``, the places and versions are those of the documents at these levels."""
    u = Understood(known_places=places_of(kb, access))
    years = [(m.group(1), bool(_REPORT_YEAR.match(query[m.end():]))) for m in _YEAR.finditer(query)]
    years += [(y, True) for y in plan_years(query)]
    u.years = list(dict.fromkeys(y for y, _ in years))
    u.fact_years = [y for y in u.years if not any(y == z and names for z, names in years)]
    u.places = [p for p in u.known_places if p in query]
    u.places = [p for p in u.places if not any(p != q and p in q for q in u.places)]
    u.speakers = list(dict.fromkeys([name for name in speakers() if name in query]
                                    + [name for title, name in _TITLES.items() if title in query]))
    if "政府工作报告" in query:
        local = any(not p.startswith(_NATIONAL) for p in u.places)
        u.doc_types.append("政府工作报告（地方）" if local else "政府工作报告")
    if _CONGRESS_REPORT.search(query):
        u.doc_types.append("党代会报告")
    if _SPEECH.search(query):
        u.doc_types += SPEECH_TYPES
    u.doc_types += [k for k in dict.fromkeys(_TITLED_KIND.findall(query)) if k not in u.doc_types]
    named = [m for m in meetings() if m.stands_alone and _names_meeting(query, m.short)]
    u.meetings = [m.full for m in named]
    u.meeting_names = [name for m in named for name in (m.full, m.short)]
    if _LATEST.search(query):
        u.newest_versions = newest_versions(kb, access)
    return u


def _names_meeting(query: str, short: str) -> bool:
    """``short`` (十八大) is in ``query`` as the congress itself, not as a time (十八大以来)."""
    return any(not _SINCE.match(query[m.end():]) for m in re.finditer(re.escape(short), query))


def names_meeting(u: Understood, title: str) -> bool:
    """The title names one of the meetings the query names (…第十八次全国代表大会上的报告, 党的十八大报告)."""
    return any(name in title for name in u.meeting_names)


def plan_years(query: str) -> list[str]:
    """The years a query names as the start or end of a five-year plan: 十四五开局 -> 2021,
    十三五收官之年 -> 2020 (一五 1953, 二五 1958, then from 三五 1966 every five years)."""
    out = []
    for m in _PLAN_YEAR.finditer(query):
        n = cn_int(m.group(1).lstrip("第"))
        if not n:
            continue
        first = {1: 1953, 2: 1958}.get(n, 1966 + 5 * (n - 3))
        out.append(str(first + (4 if m.group(2) in ("收官", "最后一年") else 0)))
    return out

def _kind_by_title(u: Understood, doc: Document) -> str | None:
    """A work report known by its title when no manifest gave its type: local when a place of
    the knowledge base is in its title or issuer (2025年河北省政府工作报告), else national."""
    title = doc.title or ""
    if "政府工作报告" not in title:
        return None
    where = f"{title} {doc.issuer or ''}"
    local = any(p in where for p in u.known_places if not p.startswith(_NATIONAL))
    return "政府工作报告（地方）" if local else "政府工作报告"


def _is_work_report(u: Understood, doc: Document) -> bool:
    return (doc.doc_type or "").startswith("政府工作报告") or _kind_by_title(u, doc) is not None


def year_match(u: Understood, doc: Document) -> float:
    """1.0 when ``doc`` is of a year the query names; 0.5 when it is a work report of the year
    after a year the query names as a fact's (the 2025 report reviews 2024: 河南2024年粮食总产量)."""
    year = str(doc.year or "")
    if year in u.years:
        return 1.0
    if year.isdigit() and str(int(year) - 1) in u.fact_years and _is_work_report(u, doc):
        return 0.5
    return 0.0


def document_match(u: Understood, doc: Document) -> float:
    """How well ``doc`` has the attributes ``u`` names: the product of one credit per kind named
    (year, kind, issuer or speaker, congress, version in force), each 1.0 or 0.0 (the year 0.5 for a report
    reviewing it, :func:`year_match`). A provincial report of the named year is not the named
    report: it scores 0."""
    if not u.signals:
        return 0.0
    credit = 1.0
    if u.years:
        credit *= year_match(u, doc)
    if u.doc_types and not (doc.doc_type in u.doc_types or _kind_by_title(u, doc) in u.doc_types):
        return 0.0
    if u.places or u.speakers:
        where = f"{doc.issuer or ''} {doc.title or ''} {(doc.extra or {}).get('speaker', '')}"
        if not any(p in where for p in u.places + u.speakers):
            return 0.0
    if u.meetings and not names_meeting(u, doc.title or ""):
        return 0.0
    if u.newest_versions and doc.id not in u.newest_versions:
        return 0.0
    return credit
