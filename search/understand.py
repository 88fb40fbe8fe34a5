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
from dataclasses import dataclass, field

from yuanwen.kb import KnowledgeBase
from yuanwen.models import Document
from yuanwen.vocab import meetings, speakers

_YEAR = re.compile(r"(?<![0-9０-９])((?:19|20)[0-9]{2})年(?!代)")
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
    meetings: list[str] = field(default_factory=list)  # full names, for the label only
    known_places: list[str] = field(default_factory=list, repr=False)  # the knowledge base's

    @property
    def signals(self) -> int:
        """How many kinds of document attribute the query names (years, types, issuers)."""
        return sum(bool(x) for x in (self.years, self.doc_types, self.places or self.speakers))

    def labels(self) -> list[str]:
        """What to show: 2025年 · 政府工作报告 · 江苏."""
        types = ["政府工作报告" if t == "政府工作报告" else "地方政府工作报告" if t == "政府工作报告（地方）" else t
                 for t in self.doc_types if t not in SPEECH_TYPES[1:]]
        return ([f"{y}年" for y in self.years] + types + self.places + self.speakers + self.meetings)


_PLACES: "weakref.WeakKeyDictionary[KnowledgeBase, tuple]" = weakref.WeakKeyDictionary()


def places_of(kb: KnowledgeBase) -> list[str]:
    """Issuers as users name them, longest first: the place names at the start of the
    knowledge base's issuers (江苏, 北京, 泰安...) and its national issuers (国务院办公厅,
    全国人民代表大会常务委员会, 国家能源局...); counted again only when the database changes."""
    version = kb.store.version()
    cached = _PLACES.get(kb)
    if cached and cached[0] == version:
        return cached[1]
    found = set()
    for issuer in kb.facets()["by_issuer"]:
        m = _PLACE.match(issuer)
        if m and not m.group(1).startswith("国"):
            found.add(m.group(1))
        for part in re.split(r"[、，, ]", _BRACKETS.sub("", issuer)):
            if len(part) >= 3 and part.startswith(_NATIONAL):
                found.add(part)
    for _, title in kb.store.titles():  # 2025年河北省政府工作报告, 北京市安全生产条例
        m = _PLACE.match(_YEAR_PREFIX.sub("", title))
        if m and not m.group(1).startswith(("国", "中华")):
            found.add(m.group(1))
    out = sorted(found, key=lambda p: (-len(p), p))
    _PLACES[kb] = (version, out)
    return out


def understand(kb: KnowledgeBase, query: str) -> Understood:
    """The years, kinds of document, places, speakers and congresses ``query`` names."""
    u = Understood(known_places=places_of(kb))
    u.years = list(dict.fromkeys(_YEAR.findall(query)))
    u.places = [p for p in u.known_places if p in query]
    u.places = [p for p in u.places if not any(p != q and p in q for q in u.places)]
    u.speakers = list(dict.fromkeys([name for name in speakers() if name in query]
                                    + [name for title, name in _TITLES.items() if title in query]))
    if "政府工作报告" in query:
        u.doc_types.append("政府工作报告（地方）" if u.places else "政府工作报告")
    if _CONGRESS_REPORT.search(query):
        u.doc_types.append("党代会报告")
    if _SPEECH.search(query):
        u.doc_types += SPEECH_TYPES
    u.doc_types += [k for k in dict.fromkeys(_TITLED_KIND.findall(query)) if k not in u.doc_types]
    u.meetings = [m.full for m in meetings() if m.stands_alone and m.short in query]
    return u


def _kind_by_title(u: Understood, doc: Document) -> str | None:
    """A work report known by its title when no manifest gave its type: local when a place of
    the knowledge base is in its title or issuer (2025年河北省政府工作报告), else national."""
    title = doc.title or ""
    if "政府工作报告" not in title:
        return None
    where = f"{title} {doc.issuer or ''}"
    local = any(p in where for p in u.known_places if not p.startswith(_NATIONAL))
    return "政府工作报告（地方）" if local else "政府工作报告"


def document_match(u: Understood, doc: Document) -> float:
    """1.0 when ``doc`` has every attribute ``u`` names (the year and the kind and the issuer
    or speaker), else 0.0: a provincial report of the named year is not the named report."""
    if not u.signals:
        return 0.0
    hits = 0
    if u.years and str(doc.year or "") in u.years:
        hits += 1
    if u.doc_types and (doc.doc_type in u.doc_types or _kind_by_title(u, doc) in u.doc_types):
        hits += 1
    if u.places or u.speakers:
        where = f"{doc.issuer or ''} {doc.title or ''} {(doc.extra or {}).get('speaker', '')}"
        if any(p in where for p in u.places + u.speakers):
            hits += 1
    return 1.0 if hits == u.signals else 0.0
