"""Citations in two styles: GB/T 7714-2015 and the footnote style of official drafting.

Only known fields are printed; nothing is invented. Examples::

    footnote  习近平：《在全国抗击新冠肺炎疫情表彰大会上的讲话》（2020年9月8日）。
              《国务院办公厅关于推进政务新媒体健康有序发展的意见》（国办发〔2018〕123号），2018年12月7日。
              习近平：《……》，《人民日报》2022年10月26日，第1版。
    gbt7714   国务院办公厅. 国务院办公厅关于推进政务新媒体健康有序发展的意见: 国办发〔2018〕123号[Z]. 2018-12-07.
              习近平. ……[N]. 人民日报, 2022-10-26(1).
"""

from __future__ import annotations

from yuanwen.conventions import ARTICLE_RE, cn_date
from yuanwen.models import Citation, Document
from yuanwen.vocab import doc_types_cited_as

# Document types by how they are cited (``yuanwen/data/doc_types.tsv``, shared with metadata).
SPEECH_TYPES = doc_types_cited_as("speech")
LAW_TYPES = doc_types_cited_as("law")
REPORT_TYPES = doc_types_cited_as("report")


def _speaker(doc: Document) -> str | None:
    return doc.extra.get("speaker") or (doc.issuer if doc.doc_type in SPEECH_TYPES else None)


def _location(heading_path: list[str] | None, page: int | None, style: str) -> str:
    """The article of a law (第三条) or the page of a PDF, when known."""
    parts = []
    if heading_path:
        for h in reversed(heading_path):
            m = ARTICLE_RE.match(h)
            if m:
                parts.append(m.group())
                break
    if page:
        parts.append(f"第{page}页" if style == "footnote" else f"{page}")
    return "，".join(parts) if style == "footnote" else (parts[-1] if page and parts else "")


def cite(doc: Document, heading_path: list[str] | None = None, page: int | None = None) -> Citation:
    """Both citation styles for a passage of ``doc``."""
    return Citation(gbt7714=_gbt7714(doc, page), footnote=_footnote(doc, heading_path, page))


def _footnote(doc: Document, heading_path: list[str] | None, page: int | None) -> str:
    pub = doc.extra.get("publication")  # e.g. {"name": "人民日报", "date": "2022-10-26", "page": "1"}
    speaker = _speaker(doc)
    title = doc.title
    if speaker and title.startswith(speaker):
        title = title[len(speaker):].lstrip("：:　 ")
    s = f"{speaker}：《{title}》" if speaker else f"《{title}》"
    article = _location(heading_path, None, "footnote")
    if article and doc.doc_type in LAW_TYPES | {None}:
        s += article
    if isinstance(pub, dict) and pub.get("name"):
        s += f"，《{pub['name']}》{cn_date(pub.get('date'))}"
        if pub.get("page"):
            s += f"，第{pub['page']}版"
    else:
        if doc.doc_number:
            s += f"（{doc.doc_number}）"
        date = cn_date(doc.date)
        if date:
            s += f"（{date}）" if speaker and not doc.doc_number else f"，{date}"
        elif not speaker and doc.issuer and doc.issuer not in title:
            s = f"{doc.issuer}：{s}"
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
