"""检索: a question or keywords, filters, and the passages found; the search lives in the URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import (
    DEFAULT_K,
    MODES,
    add_to_pack,
    esc,
    get_kb,
    goto_doc,
    guarded,
    highlight,
    md_literal,
    ocr_caption,
    run_page,
    split_issuers,
    ss,
    style,
    submit_search,
)
from yuanwen.errors import YuanwenError
from yuanwen.library import NOT_FOUND_NOTE, WEAK_NOTE, Library
from yuanwen.models import Filters


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("检索")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    types = list(h.kb.facets()["by_type"])  # cached on the database's version: no lock needed
    s = ss()
    options = types + [t for t in s.get("s_types") or [] if t not in types]
    with st.form("search_form", border=False):
        st.text_input("检索内容", key="s_q",
                      placeholder="用自然语言提问或输入关键词，如：企业主要负责人的安全生产职责")
        c1, c2, c3 = st.columns([2, 3, 3])
        c1.radio("检索方式", list(MODES), key="s_mode", horizontal=True,
                 help="综合：语义与关键词结合；语义：按意思找；关键词：按字词找")
        c2.multiselect("文种", options, key="s_types", placeholder="全部文种")
        c3.text_input("发文机关/讲话人", key="s_issuer", placeholder="包含即可，多个用逗号分隔")
        c4, c5, c6 = st.columns([3, 3, 2])
        c4.text_input("起始日期", key="s_since", placeholder="如 2018 或 2018-03-01")
        c5.text_input("截止日期", key="s_until", placeholder="如 2022 或 2022-12-31")
        c6.number_input("结果数", min_value=1, max_value=100, step=1, key="s_k")
        c7, c8 = st.columns([1, 5], vertical_alignment="center")
        c7.form_submit_button("检索", type="primary", key="s_go", on_click=submit_search)
        c8.checkbox("识别查询中的年份、文种、发文机关和讲话人，优先这些文件", key="s_understand",
                    help="如“2025年政府工作报告里关于…”只优先2025年国务院政府工作报告；仅用于「综合」方式")

    req = s.get("search_req")
    if req and s.get("search_pending"):
        s["search_pending"] = False
        s["search_res"], s["search_err"] = None, None
        filters = Filters(doc_types=req["types"], issuers=split_issuers(req["issuer"]),
                          since=req["since"] or None, until=req["until"] or None)
        first = not s.get("searched_once")
        msg = "正在检索…（首次检索需要加载向量模型，请稍候）" if first else "正在检索…"
        with st.spinner(msg):
            try:
                with h.lock:
                    s["search_res"] = h.kb.search(req["q"], k=req["k"], mode=req["mode"],
                                                  filters=filters, understand=req.get("understand", True))
                s["searched_once"] = True
            except YuanwenError as exc:
                s["search_err"] = str(exc)

    if s.get("search_err"):
        st.error(md_literal(s["search_err"]))
    res = s.get("search_res")
    if res is not None:
        weak = [i for i, hit in enumerate(res.hits) if hit.weak]
        if not res.hits:
            st.info("没有找到相关段落。可以换个说法、改用「综合」方式，或放宽筛选条件。")
        else:
            if res.understood:
                st.caption(f"已识别：{' · '.join(res.understood)}（优先这些文件；可在上方关闭）")
            if res.all_weak:
                st.warning(NOT_FOUND_NOTE)
            st.caption(f"共 {len(res.hits)} 条" + (f"，其中 {len(weak)} 条相关度较低" if weak else "")
                       + f"，用时 {res.took_ms:.0f} 毫秒")
        for i, hit in enumerate(res.hits):
            if not hit.weak:
                render_hit(i, hit)
        if weak:
            if len(weak) < len(res.hits):
                st.divider()
            st.caption(WEAK_NOTE)
            for i in weak:
                render_hit(i, res.hits[i])
    params: dict[str, Any] = {}
    if req:
        params.update(q=req["q"], mode=req["mode"], type=req["types"], issuer=req["issuer"],
                      since=req["since"], until=req["until"])
        if req["k"] != DEFAULT_K:
            params["k"] = str(req["k"])
        if not req.get("understand", True):
            params["understand"] = "0"
    return params


def render_hit(i: int, hit) -> None:
    d, p = hit.document, hit.passage
    pid = p.id
    with st.container(border=True):
        st.html(f'<div class="yw-title">{hit.rank}. {esc(d.title)}</div>')
        meta = "　".join(x for x in (d.issuer, d.date, d.doc_type, d.doc_number) if x)
        path = " › ".join(p.heading_path)
        if meta or path:
            st.text("　".join(x for x in (meta, path) if x))
        st.html(f'<div class="yw-passage">{highlight(p.text, hit.matched_terms)}</div>')
        for f in Library.formulations_in(p.text):
            st.caption(md_literal(f"提法「{f.term}」：{f.full}（出处：{f.source}）"))
        citation = hit.citation.format(style()) if hit.citation else d.title
        recognised = hit.citation is not None and hit.citation.recognised
        if recognised:
            st.caption(ocr_caption(hit.citation.ocr_confidence, p.page))
        c1, c2, c3, c4, _ = st.columns([1, 1, 1, 1, 2])
        with c1.popover("复制引文", key=f"hit_cite_{pid}"):
            st.caption(f"引文（{ss().get('style', '脚注格式')}），点右上角图标复制")
            st.code(citation, language=None, wrap_lines=True)
        c2.button("在文中查看", key=f"hit_view_{pid}", on_click=goto_doc,
                  args=(d.id, p.start, None))
        in_pack = Library.find_in_pack(ss()["pack"], pid) is not None
        c3.button("已在汇编中" if in_pack else "加入汇编", key=f"hit_add_{pid}",
                  on_click=_add_hit, args=(i,), disabled=in_pack)
        if recognised:
            c4.button("对照原件", key=f"hit_scan_{pid}", on_click=goto_doc,
                      args=(d.id, p.start, None), kwargs={"page": p.page},
                      help="打开文档，在识别文本旁显示原件页面")


@guarded
def _add_hit(index: int) -> None:
    res = ss().get("search_res")
    if res is not None and index < len(res.hits):
        add_to_pack(Library.item_from_hit(res.hits[index], style()))


run_page(body)
