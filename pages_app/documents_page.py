"""文档: browse by type, issuer and year; read a document beside its outline, with the passage
or quote the reader came from marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import (
    ALL_YEARS,
    add_to_pack,
    current_kb_dir,
    esc,
    get_kb,
    goto_doc,
    guarded,
    md_literal,
    run_page,
    split_issuers,
    ss,
    style,
)
from yuanwen.errors import YuanwenError
from yuanwen.library import Library, display_path
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
    return {"doc": str(doc_id)}


def render_document(doc: Document, passages: list[Passage], shown_path: str) -> None:
    s = ss()
    st.html(f'<div class="yw-title" style="font-size:1.4rem">{esc(doc.title)}</div>')
    meta = "　".join(x for x in (doc.issuer, doc.date, doc.doc_type, doc.doc_number) if x)
    if meta:
        st.text(meta)
    with st.expander("引用本文"):
        st.code(Library.citation(doc).format(style()), language=None, wrap_lines=True)
        st.text(f"文件：{shown_path}")
    focus = s.get("doc_focus")
    fs, fe = (focus[1], focus[2]) if focus and focus[0] == doc.id else (None, None)
    focus_pid = next((p.id for p in passages if fs is not None and p.start <= fs < p.end), None)

    selected = _selected(passages)
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
                cls += " yw-focus" if p.id == focus_pid else ""
                cls += " yw-selected" if selected is not None and p.id == selected.id else ""
                if p.id == focus_pid and fe is not None:  # a quote: mark the matched words
                    a, b = fs - p.start, min(p.end, fe) - p.start
                    body = f"{esc(p.text[:a])}<mark>{esc(p.text[a:b])}</mark>{esc(p.text[b:])}"
                else:
                    body = passage_html(p)
                st.html(f'<div class="yw-doc"><div id="yw-p-{p.id}" data-pid="{p.id}" class="{cls}">{body}</div></div>')
                if selected is not None and p.id == selected.id:
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
