"""文档: browse by type, issuer and year; read a document beside its outline, with the passage
or quote the reader came from marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import (
    ALL_YEARS,
    add_to_pack,
    confidence_pct,
    current_kb_dir,
    esc,
    get_kb,
    goto_doc,
    guarded,
    md_literal,
    run_page,
    session_actor,
    split_issuers,
    ss,
    style,
)
from yuanwen.errors import ReadError, YuanwenError
from yuanwen.library import Library, display_path, page_ranges
from yuanwen.models import Document, Filters, Passage


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("文档")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    with h.lock:
        docs = h.kb.documents()
    if not docs:
        st.info("知识库里还没有文档。")
        return {}
    s = ss()
    types = sorted({d.doc_type for d in docs if d.doc_type})
    years = sorted({str(d.year) for d in docs if d.year}, reverse=True)
    if s.get("d_year") not in [ALL_YEARS, *years]:
        s["d_year"] = ALL_YEARS
    s["d_types"] = [t for t in s.get("d_types") or [] if t in types]
    c1, c2, c3 = st.columns(3)
    c1.multiselect("文种", types, key="d_types", placeholder="全部文种")
    c2.text_input("发文机关/讲话人", key="d_issuer", placeholder="包含即可")
    c3.selectbox("年份", [ALL_YEARS, *years], key="d_year")
    year = None if s["d_year"] == ALL_YEARS else s["d_year"]
    with h.lock:
        shown = h.kb.documents(Filters(doc_types=s["d_types"],
                                             issuers=split_issuers(s.get("d_issuer", "")),
                                             since=year, until=year))
    if not shown:
        st.info("没有符合条件的文档。")
        return {}
    ids = [d.id for d in shown]
    labels = {d.id: "　".join(x for x in (d.title, d.date, d.doc_type) if x) for d in shown}
    if s.get("d_pick") not in ids:
        s["d_pick"] = ids[0]
    st.selectbox(f"文档（{len(shown)} 篇）", ids, key="d_pick", format_func=lambda i: labels[i])
    doc_id = s["d_pick"]
    try:
        with h.lock:
            doc = h.kb.document(doc_id, with_text=True)
            passages = h.kb.document_passages(doc_id)
    except YuanwenError as exc:
        st.error(md_literal(str(exc)))
        return {}
    render_document(doc, passages, display_path(doc.path, doc.root, kb_dir))
    scan = s.get("d_scan_page") if s.get("d_scan_show") and Library.recognised_pages(doc) else None
    return {"doc": str(doc_id), "scan": str(scan) if scan else ""}


def render_document(doc: Document, passages: list[Passage], shown_path: str) -> None:
    s = ss()
    st.html(f'<div class="yw-title" style="font-size:1.4rem">{esc(doc.title)}</div>')
    meta = "　".join(x for x in (doc.issuer, doc.date, doc.doc_type, doc.doc_number,
                                 f"访问级别：{doc.access}" if doc.access else "") if x)
    if meta:
        st.text(meta)
    _manage(doc)
    recognised = Library.recognised_pages(doc)
    if recognised:
        _ocr_notice(doc, recognised)
    with st.expander("引用本文"):
        st.code(Library.citation(doc).format(style()), language=None, wrap_lines=True)
        st.text(f"文件：{shown_path}")
    focus = s.get("doc_focus")
    fs, fe = (focus[1], focus[2]) if focus and focus[0] == doc.id else (None, None)
    focus_pid = next((p.id for p in passages if fs is not None and p.start <= fs < p.end), None)

    selected = _selected(passages)
    if recognised:
        current = selected or next((p for p in passages if p.id == focus_pid), None)
        if _scan_view(doc, recognised, current, (fs, fe) if selected is None and fs is not None else None):
            s["doc_scrolled"] = (doc.id, fs)  # a link to the original page: that is what to see first
            st.html("<script>setTimeout(function(){var e=document.querySelector('.st-key-yw_scan');"
                    "if(e)e.scrollIntoView({behavior:'smooth',block:'start'});},400);</script>",
                    unsafe_allow_javascript=True)
    shown_page = None  # the page whose recognised text the passages below are on
    left, right = st.columns([1.2, 3], gap="large")
    with left, st.container(key="yw_outline"):  # sticky (CSS): stays in view while reading down
        st.markdown("**目录**")
        heads = Library.outline_of(passages)
        if heads:
            links = "".join(
                f'<a href="#yw-p-{pid}" title="{esc(t)}" style="padding-left:{(lvl - 1) * 1.1}em">{esc(t)}</a>'
                for lvl, t, pid in heads
            )
            st.html(f'<nav class="yw-outline">{links}</nav>')
        else:
            st.caption("本文没有分级标题")
    with right:
        st.caption("点击一段即可选中它，再加入汇编或查看相关论述。")
        with st.container(key="yw_doc", border=False):
            if not passages:
                st.text(doc.text)
            pos = 0
            for p in passages:
                gap = doc.text[pos : p.start]
                if gap.strip():
                    st.html(f'<div class="yw-gap">{esc(gap.strip(chr(10)))}</div>')
                cls = "yw-passage"
                tag = ""
                if p.page in recognised:
                    cls += " yw-ocr"
                    if p.page != shown_page:  # where a recognised page starts: say so, once
                        shown_page = p.page
                        tag = (f'<div class="yw-ocr-tag">第 {p.page} 页　识别文本　'
                               f'识别置信度 {confidence_pct(recognised[p.page])}</div>')
                cls += " yw-focus" if p.id == focus_pid else ""
                cls += " yw-selected" if selected is not None and p.id == selected.id else ""
                if p.id == focus_pid and fe is not None:  # a quote: mark the matched words
                    a, b = fs - p.start, min(p.end, fe) - p.start
                    body = f"{esc(p.text[:a])}<mark>{esc(p.text[a:b])}</mark>{esc(p.text[b:])}"
                else:
                    body = passage_html(p)
                st.html(f'<div class="yw-doc">{tag}<div id="yw-p-{p.id}" data-pid="{p.id}" class="{cls}">{body}</div></div>')
                if selected is not None and p.id == selected.id:
                    if p.page in recognised:
                        st.caption(f"识别文本（原件第 {p.page} 页，识别置信度 {confidence_pct(recognised[p.page])}），"
                                   "引用前请核对原件；打开上方「显示原件页面」可对照")
                    _actions(doc.id, p)
                if p.id == focus_pid or (selected is not None and p.id == selected.id):
                    render_related(p.id)
                pos = p.end
            tail = doc.text[pos:] if passages else ""
            if tail.strip():
                st.text(tail.strip("\n"))
    # The passages are HTML, not widgets: a click on one is passed to Streamlit through a hidden
    # text input (the page's only way in from plain HTML), which selects it on the next run.
    with st.container(key="yw_pick_box"):
        st.text_input("选中的段落", key="doc_sel", label_visibility="collapsed")
    st.html(_PICK_SCRIPT, unsafe_allow_javascript=True)
    if focus_pid is not None and s.get("doc_scrolled") != (doc.id, fs):
        s["doc_scrolled"] = (doc.id, fs)
        st.html(
            "<script>setTimeout(function(){var e=document.getElementById("
            f"'yw-p-{int(focus_pid)}');if(e)e.scrollIntoView({{behavior:'smooth',block:'center'}});}},400);</script>",
            unsafe_allow_javascript=True,
        )


def _ocr_notice(doc: Document, recognised: dict[int, float]) -> None:
    """At the top of a document with recognised text: which pages, how sure the engine was."""
    total = len(doc.pages) or len(recognised)
    where = (f"全文 {total} 页" if len(recognised) == total and total > 1 else
             "全文" if len(recognised) == total else f"第 {page_ranges(list(recognised))} 页（共 {total} 页）")
    low, high = min(recognised.values()), max(recognised.values())
    conf = confidence_pct(low) if confidence_pct(low) == confidence_pct(high) else \
        f"{confidence_pct(low)}–{confidence_pct(high)}"
    engine = ((doc.extra or {}).get("ocr") or {}).get("engine") or ""
    st.info(md_literal(f"{where}为识别文本：由扫描件或图片经文字识别（OCR）得到，识别置信度 {conf}。"
                       "识别文本，引用前请核对原件。"), icon=":material/document_scanner:")
    if engine:
        st.caption(md_literal(f"识别引擎：{engine}"))


def _doc_pages(doc: Document, recognised: dict[int, float]) -> list[int]:
    """The page numbers of ``doc`` (its recognised ones when its page breaks are unknown)."""
    return list(range(1, len(doc.pages) + 1)) if doc.pages else sorted(recognised)


def _scan_view(doc: Document, recognised: dict[int, float], current: Passage | None,
               quote: tuple[int, int | None] | None) -> bool:
    """「显示原件页面」: a page of the original file beside its text, the page of the passage the
    reader selected (or came to) by default; the text of that passage (or quote) is marked.
    True when a link asked for a page (the view is then what to scroll to)."""
    s = ss()
    pages = _doc_pages(doc, recognised)
    anchor = (doc.id, current.id if current is not None else None)
    if s.get("d_scan_anchor") != anchor or s.get("d_scan_page") not in pages:
        s["d_scan_anchor"] = anchor  # another document or passage: show its page
        s["d_scan_page"] = current.page if current is not None and current.page in pages else min(recognised)
    req = s.pop("d_scan_req", None)  # a link to a page (?page=, 引文核对's 对照原件)
    if req in pages:
        s["d_scan_page"], s["d_scan_show"] = req, True
    st.toggle("显示原件页面", key="d_scan_show",
              help="在识别文本旁显示原件的页面图像，便于核对识别是否有误")
    if not s.get("d_scan_show"):
        return False
    with st.container(border=True, key="yw_scan"):
        st.selectbox("页面", pages, key="d_scan_page", format_func=lambda n: f"第 {n} 页" + (
            f"（识别文本，识别置信度 {confidence_pct(recognised[n])}）" if n in recognised else "（文字版）"))
        page = s["d_scan_page"]
        left, right = st.columns([1.15, 1], gap="medium")
        with left:
            try:
                png = _page_png(str(current_kb_dir()), doc.id, page, doc.content_hash,
                                _who())
            except ReadError as exc:
                st.warning(md_literal(f"无法显示原件第 {page} 页：{exc.reason}"))
            except YuanwenError as exc:
                st.warning(md_literal(f"无法显示原件第 {page} 页：{exc}"))
            else:
                st.image(png, caption=f"原件第 {page} 页", width="stretch", output_format="PNG")
        with right:
            st.caption(f"第 {page} 页" + ("识别文本" if page in recognised else "文字") + "（与左侧原件对照）")
            with st.container(height=640, border=False):
                st.html(f'<div class="yw-scan-text">{_page_text_html(doc, page, current, quote)}</div>')
    return req in pages


def _page_text_html(doc: Document, page: int, current: Passage | None,
                    quote: tuple[int, int | None] | None) -> str:
    """The text of ``page`` of ``doc``, escaped, with the selected passage (or the quote the
    reader came with) marked."""
    starts = doc.pages or [0]
    if page > len(starts):
        return esc("（本页没有文字）")
    a = starts[page - 1]
    b = starts[page] if page < len(starts) else len(doc.text)
    if quote is not None and quote[1] is not None:
        ms, me = quote
    elif current is not None:
        ms, me = current.start, current.end
    else:
        ms, me = b, b
    ms, me = max(a, min(ms, b)), max(a, min(me, b))
    text = doc.text
    return f"{esc(text[a:ms])}<mark>{esc(text[ms:me])}</mark>{esc(text[me:b])}" if me > ms else esc(text[a:b])


@st.cache_data(max_entries=16, ttl=300, show_spinner="正在读取原件页面…")
def _page_png(kb: str, doc_id: int, page: int, content_hash: str, who: str) -> bytes:
    """Page ``page`` of a document's original file as PNG (kept a few minutes: a rerun of the
    page, every click, does not render it again; ``content_hash`` keys it to this version of
    the document, ``who`` to the account, whose clearance and audit line it passes through).
    Rendered outside the knowledge base's lock: other sessions go on."""
    h = get_kb(Path(kb), quiet=True)
    if h is None:
        raise ReadError(kb, "知识库无法打开")
    with h.lock:
        source = h.kb.page_source(doc_id)
    return Library.render_page(source, page)


def _who() -> str:
    actor = session_actor()
    return actor.name if actor is not None else ""


def passage_html(p: Passage) -> str:
    """A passage's text, escaped, with its lines that are headings of its path styled as headings
    (第一章 总则, 一、…): the reader sees the document's structure."""
    heads = {h.strip(): n for n, h in enumerate(p.heading_path, 1)}
    lines = []
    for line in p.text.split("\n"):
        level = heads.get(line.strip())
        lines.append(f'<span class="yw-h yw-h{min(level, 3)}">{esc(line)}</span>' if level else esc(line))
    return "\n".join(lines)


def _selected(passages: list[Passage]) -> Passage | None:
    """The passage the reader clicked, if it is one of this document's."""
    value = str(ss().get("doc_sel") or "")
    return next((p for p in passages if value.isdigit() and p.id == int(value)), None)


def _actions(doc_id: int, p: Passage) -> None:
    """What a reader can do with the selected passage."""
    in_pack = Library.find_in_pack(ss()["pack"], p.id) is not None
    c1, c2, _ = st.columns([1, 1, 3])
    c1.button("已在汇编中" if in_pack else "＋ 加入汇编", key=f"doc_add_{p.id}", type="primary",
              disabled=in_pack, on_click=_add_passage, args=(doc_id, p.id))
    c2.button("取消选择", key=f"doc_unsel_{p.id}", on_click=_unselect)


def _unselect() -> None:
    ss()["doc_sel"] = ""


# Clicking a passage (not selecting text in it, not following a link) selects it: the hidden
# input gets its id and is committed with Enter, as a user would.
_PICK_SCRIPT = """<script>
(function () {
  if (window.__ywPick) return;
  window.__ywPick = true;
  document.addEventListener("click", function (e) {
    var p = e.target.closest && e.target.closest(".yw-doc .yw-passage");
    if (!p || e.target.closest("a") || String(window.getSelection()).length) return;
    var input = document.querySelector(".st-key-yw_pick_box input");
    if (!input) return;
    var set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
    set.call(input, p.getAttribute("data-pid"));
    input.dispatchEvent(new Event("input", {bubbles: true}));
    input.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", code: "Enter", keyCode: 13, bubbles: true}));
  });
})();
</script>"""


def render_related(passage_id: int) -> None:
    """相关论述: the closest passages of other documents, under the passage the reader came to."""
    h = get_kb(current_kb_dir(), quiet=True)
    if h is None:
        return
    with st.expander("相关论述：其他文件中与本段最接近的段落", expanded=False):
        try:
            with h.lock:
                res = h.kb.related(passage_id, k=5)
        except YuanwenError as exc:
            st.error(md_literal(str(exc)))
            return
        if not res.hits:
            st.caption("其他文件中没有相关段落。")
        for hit in res.hits:
            d = hit.document
            meta = "　".join(x for x in (d.issuer, d.date, " › ".join(hit.passage.heading_path)) if x)
            st.html(f'<div class="yw-title">{esc(d.title)}</div>')
            st.text(meta + ("　（相关度较低）" if hit.weak else ""))
            st.html(f'<div class="yw-passage">{esc(hit.passage.text)}</div>')
            st.button("在文中查看", key=f"rel_view_{passage_id}_{hit.passage.id}", type="tertiary",
                      on_click=goto_doc, args=(d.id, hit.passage.start, None))


def _manage(doc: Document) -> None:
    """For editors: the document's access level, and deleting it (after a confirmation)."""
    h = get_kb(current_kb_dir(), quiet=True)
    if h is None or not h.kb.can("set_access"):
        return
    s = ss()
    if s.get("doc_manage_msg"):
        st.success(md_literal(s.pop("doc_manage_msg")))
    if s.get("doc_manage_err"):
        st.error(md_literal(s.pop("doc_manage_err")))
    with st.expander("管理本文档（编辑）"):
        with h.lock:
            levels = h.kb.visible_levels()  # not above the account's own clearance
        key = f"doc_access_{doc.id}"
        if s.get(key) not in levels:
            s[key] = doc.access if doc.access in levels else levels[0]
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.selectbox("访问级别", levels, key=key,
                     help="只有可阅级别不低于此级别的账户能检索、阅读和导出本文档")
        c2.button("保存", key="doc_access_go", on_click=_set_access, args=(doc.id, key))
        if s.get("doc_del_ask") == doc.id:
            st.warning(md_literal(f"删除文档《{doc.title}》？它的全部段落将从知识库中移除，"
                                  "汇编中已收录的段落保留；删除后无法恢复，需要时可重新导入原文件。"))
            d1, d2, _ = st.columns([1, 1, 3])
            d1.button("确定删除", key="doc_del_yes", type="primary", on_click=_delete, args=(doc.id,))
            d2.button("取消", key="doc_del_no", on_click=_ask_delete, args=(None,))
        elif h.kb.can("delete"):
            st.button("删除文档", key="doc_del", on_click=_ask_delete, args=(doc.id,))


@guarded
def _ask_delete(doc_id: int | None) -> None:
    ss()["doc_del_ask"] = doc_id


@guarded
def _set_access(doc_id: int, key: str) -> None:
    s = ss()
    h = get_kb(current_kb_dir(), quiet=True)
    if h is None:
        return
    try:
        with h.lock:
            doc = h.kb.set_document_access(doc_id, s[key])
    except YuanwenError as exc:
        s["doc_manage_err"] = str(exc)
        return
    s["doc_manage_msg"] = f"已把《{doc.title}》的访问级别设为 {doc.access}"


@guarded
def _delete(doc_id: int) -> None:
    s = ss()
    s.pop("doc_del_ask", None)
    h = get_kb(current_kb_dir(), quiet=True)
    if h is None:
        return
    try:
        with h.lock:
            gone = h.kb.delete_documents([doc_id])
    except YuanwenError as exc:
        s["doc_manage_err"] = str(exc)
        return
    s["d_pick"] = None
    s["doc_focus"] = None
    s["doc_manage_msg"] = "已删除文档" + "、".join(f"《{d.title}》" for d in gone)


@guarded
def _add_passage(doc_id: int, passage_id: int) -> None:
    h = get_kb(current_kb_dir(), quiet=True)
    if h is None:
        return
    with h.lock:
        doc = h.kb.document(doc_id)
        p = h.kb.passages([passage_id]).get(passage_id)
    if p is not None:
        add_to_pack(Library.item_from_passage(doc, p, style()))


run_page(body)
