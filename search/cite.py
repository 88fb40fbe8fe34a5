"""Citations in two styles: GB/T 7714-2015 and the footnote style of official drafting.

Only known fields are printed; nothing is invented. The footnote style is the one drafters
write: the issuer (or speaker) before the title, the 文号, the date, and where known the
article, chapter or page; a title that begins with its issuer drops it (国务院办公厅：
《关于……的通知》); a 《》 inside a title becomes 〈〉. Examples::

    footnote  国务院办公厅：《关于推进政务新媒体健康有序发展的意见》（国办发〔2018〕123号），2018年12月7日。
              《中华人民共和国安全生产法》第三条，2021年6月10日。
              习近平：《在全国抗击新冠肺炎疫情表彰大会上的讲话》（2020年9月8日）。
              习近平：《……》，《人民日报》2022年10月26日，第1版。
    gbt7714   国务院办公厅. 国务院办公厅关于推进政务新媒体健康有序发展的意见: 国办发〔2018〕123号[Z]. 2018-12-07.
              习近平. ……[N]. 人民日报, 2022-10-26(1).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import re

from yuanwen.conventions import ARTICLE_RE, CN_NUMERAL_CHARS, HAN_UNIFIED, cn_date
from yuanwen.models import Citation, Document
from yuanwen.vocab import doc_type_endings, doc_types_cited_as

# Document types by how they are cited (``yuanwen/data/doc_types.tsv``, shared with metadata).
SPEECH_TYPES = doc_types_cited_as("speech")
LAW_TYPES = doc_types_cited_as("law")
REPORT_TYPES = doc_types_cited_as("report")


# A structural unit of a heading path other than an article: 第三章, 第二节, 第一部分, 第四编.
_UNIT_RE = re.compile(f"^第[{CN_NUMERAL_CHARS}0-9]{{1,5}}(?:编|部分|章|节)")
# A report's issuer that names the person who gave it: 中共中央（赵紫阳）.
_ISSUER_PERSON = re.compile(f"^.+[（(](?P<name>[{HAN_UNIFIED}·]{{2,5}})[）)]$")
# A parenthesised tail of a title set aside to find its ending: （试行）, （2021年修正）.
_PAREN_TAIL = re.compile(r"[（(][^（）()]{0,40}[）)]$")
# A title naming a law by its ending …法 (not 办法/方法/做法/想法, which are no laws or are
# in doc_types.tsv), or a 修正案 of one.
_LAW_TITLE = re.compile(r"(?<![办方做想])法(?:修正案)?$")
# What follows an issuer's name at the start of a title it can be dropped from.
_AFTER_ISSUER = ("关于", "印发", "转发", "批转", "对", "给", "致")


def _speaker(doc: Document) -> str | None:
    if doc.extra.get("speaker"):
        return doc.extra["speaker"]
    if doc.doc_type in SPEECH_TYPES:
        return doc.issuer
    if doc.doc_type in REPORT_TYPES and doc.issuer:
        m = _ISSUER_PERSON.match(doc.issuer)
        return m.group("name") if m else None
    return None


def article_of(heading_path: list[str] | None) -> str:
    """The deepest 第X条 of ``heading_path``, else its deepest 第X章/节/部分/编, else ""."""
    for pattern in (ARTICLE_RE, _UNIT_RE):
        for h in reversed(heading_path or []):
            m = pattern.match(h.strip())
            if m:
                return m.group()
    return ""


def inner_quotes(title: str) -> str:
    """A title set in 《》 with the 《》 inside it turned into 〈〉, as Chinese typesetting does."""
    return title.replace("《", "〈").replace("》", "〉")


def _is_law(doc: Document) -> bool:
    """Whether ``doc`` is cited as a law (its article straight after the title, no issuer):
    its type says so, or, with no type, its title names a law (…法, …条例, …规定, …办法, the
    law endings of ``doc_types.tsv``)."""
    if doc.doc_type is not None:
        return doc.doc_type in LAW_TYPES
    title = re.sub(r"\s+", "", doc.title or "")
    for _ in range(3):  # 中华人民共和国安全生产法（2021年修正）, 某某办法（试行）
        stripped = _PAREN_TAIL.sub("", title)
        if stripped == title or not stripped:
            break
        title = stripped
    if _LAW_TITLE.search(title):
        return True
    endings = doc_type_endings()
    ending = next((e for e in sorted(endings, key=len, reverse=True) if title.endswith(e)), None)
    return ending is not None and endings[ending] in LAW_TYPES


def _issuer_and_title(doc: Document) -> tuple[str | None, str]:
    """The issuer to print before a document's title, and the title to print: a title that
    begins with its issuer drops it (国务院办公厅关于…的通知 → 国务院办公厅：《关于…的通知》);
    an issuer already named inside the title is not printed again."""
    title, issuer = doc.title, (doc.issuer or "").strip()
    if not issuer:
        return None, title
    names = [n for n in re.split(r"[、，,\s]+", issuer) if n]
    lead = re.match(r"[、，,\s]*".join(map(re.escape, names)) + r"[\s]*", title) if names else None
    if lead and title[lead.end():].startswith(_AFTER_ISSUER):
        return issuer, title[lead.end():]
    if all(n in title for n in names):
        return None, title
    return issuer, title


def cite(doc: Document, heading_path: list[str] | None = None, page: int | None = None,
         span: tuple[int, int] | None = None) -> Citation:
    """Both citation styles for a passage of ``doc`` (on ``page``; ``span``: its offsets in the
    document); text recognised by OCR carries its confidence (see :func:`ocr_confidence`)."""
    return Citation(gbt7714=_gbt7714(doc, page), footnote=_footnote(doc, heading_path, page),
                    ocr_confidence=ocr_confidence(doc, page, span))


def ocr_confidence(doc: Document, page: int | None, span: tuple[int, int] | None = None) -> float | None:
    """The OCR engine's confidence for the cited text of ``doc`` when any of it was recognised
    from a page image, else None: the lowest over the recognised pages that ``span`` (start,
    end offsets) covers, else of ``page``; for the whole document (neither given), only when
    every page was recognised."""
    info = (doc.extra or {}).get("ocr")
    if not isinstance(info, dict) or not info.get("pages"):
        return None
    recognised = {int(p) for p in info["pages"]}
    conf = {int(k): float(v) for k, v in (info.get("confidence") or {}).items() if str(k).isdigit()}
    if span is not None and doc.pages:
        first = max(1, bisect_right(doc.pages, span[0]))
        last = max(first, bisect_left(doc.pages, max(span[1], span[0] + 1)))
        pages = [p for p in range(first, last + 1) if p in recognised]
    elif page is not None:
        pages = [page] if page in recognised else []
    else:
        pages = sorted(recognised) if len(recognised) >= max(len(doc.pages), 1) else []
    values = [conf[p] for p in pages if p in conf]
    return min(values) if values else None


def _footnote(doc: Document, heading_path: list[str] | None, page: int | None) -> str:
    """The footnote citation, as drafters write it:

    * a speech: ``习近平：《在…的讲话》（2020年9月8日）`` or, when where it was published is
      known, ``习近平：《…》，《人民日报》2022年10月26日，第1版``;
    * a law: ``《中华人民共和国安全生产法》第三条，2021年6月10日``;
    * any other document: ``国务院办公厅：《关于…的通知》（国办发〔2024〕6号），2024年5月20日``,
      then the article or chapter and the page where known.

    A document with no type is cited as a law only when its title names one (:func:`_is_law`).
    """
    pub = doc.extra.get("publication")  # e.g. {"name": "人民日报", "date": "2022-10-26", "page": "1"}
    speaker = _speaker(doc)
    law = _is_law(doc)
    if speaker:
        who, title = speaker, doc.title
        if title.startswith(speaker):
            title = title[len(speaker):].lstrip("：:　 ")
    elif law:
        who, title = None, doc.title
    else:
        who, title = _issuer_and_title(doc)
    number = doc.doc_number if doc.doc_number and doc.doc_number not in title else None
    s = f"{who}：《{inner_quotes(title)}》" if who else f"《{inner_quotes(title)}》"
    if number:  # the 文号 straight after the title
        s += f"（{number}）"
    where = article_of(heading_path)
    if where and law and not speaker:  # a law's article follows its title (and 文号)
        s += where
        where = ""
    if isinstance(pub, dict) and pub.get("name"):
        s += f"，《{pub['name']}》{cn_date(pub.get('date'))}"
        if pub.get("page"):
            s += f"，第{pub['page']}版"
    else:
        date = cn_date(doc.date)
        if date:
            s += f"（{date}）" if speaker and not number else f"，{date}"
    if where:
        s += f"，{where}"
    if page:
        s += f"，第{page}页"
    return s + "。"


def _gbt7714(doc: Document, page: int | None) -> str:
    pub = doc.extra.get("publication")
    author = _speaker(doc) or doc.issuer
    title = doc.title
    if isinstance(pub, dict) and pub.get("name"):
        s = f"{author}. {title}[N]. {pub['name']}" if author else f"{title}[N]. {pub['name']}"
        if pub.get("date"):
            s += f", {pub['date']}"
        if pub.get("page"):
            s += f"({pub['page']})"
        return s + "."
    code = "R" if doc.doc_type in REPORT_TYPES else "Z"
    s = f"{author}. {title}" if author else title
    if doc.doc_number:
        s += f": {doc.doc_number}"
    s += f"[{code}]"
    if doc.date:
        s += f". {doc.date}"
    if page:
        s += f": {page}"
    return s + "."
