"""引文核对: where a (half-remembered) quote comes from, what differs, how to cite it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import (
    VERDICT_COLOURS,
    diff_html,
    esc,
    get_kb,
    goto_doc,
    md_literal,
    ocr_caption,
    run_page,
    ss,
    style,
)
from yuanwen.errors import YuanwenError
from yuanwen.library import SIMILAR_NOTE, VERDICT_LABELS


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("引文核对")
    st.caption("粘贴一段引文（可以是凭记忆写的），查找原文和最早的出处，并标出与原文不同的地方。")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    # Ctrl+Enter (⌘+Enter) in the text area applies it: on_change runs the check, as the button does.
    st.text_area("引文", key="q_text", height=120, on_change=_check_soon,
                 placeholder="如：坚持人民至上、生命至上，把保护人民生命安全摆在首位",
                 help="按 Ctrl+Enter 或点“核对”开始核对；核对后地址栏的链接可以分享给别人。")
    clicked = st.button("核对", type="primary", key="q_go")
    if clicked or ss().pop("quote_pending", False):
        ss()["quote_res"], ss()["quote_err"], ss()["quote_checked"] = None, None, ss().get("q_text", "")
        with st.spinner("正在查找出处…"):
            try:
                with h.lock:
                    ss()["quote_res"] = h.kb.quote(ss().get("q_text", ""))
            except YuanwenError as exc:
                ss()["quote_err"] = str(exc)
    if ss().get("quote_err"):
        st.error(md_literal(ss()["quote_err"]))
    res = ss().get("quote_res")
    if res is None:
        return {}
    shared = {"text": ss().get("quote_checked", "")}  # the URL says what was checked: a link to share
    label = VERDICT_LABELS[res.verdict]
    st.markdown(f":{VERDICT_COLOURS[res.verdict]}-badge[**{label}**]　相似度 {res.similarity:.0f}%")
    if res.verdict == "not_found":
        st.info("知识库中没有找到这段话的出处。可以到「检索」页用其中的关键词再找找。")
        if res.similar:
            st.caption(SIMILAR_NOTE)
            for m in res.similar:
                d = m.document
                with st.container(border=True):
                    st.text("　".join(x for x in (d.title, d.issuer, d.date) if x))
                    st.text(m.text)
        return shared
    if res.verdict == "close":
        st.html(
            '<div>图例：<span class="yw-missing">原文有而引文缺</span>　'
            '<span class="yw-added">引文多出</span>　'
            '<span class="yw-changed">原文用字<span class="yw-quote">〔引文作“…”〕</span></span></div>'
        )
    st.caption(f"出处 {len(res.matches)} 处，按时间从早到晚排列")
    for i, m in enumerate(res.matches):
        d = m.document
        with st.container(border=True):
            st.html(f'<div class="yw-title">{i + 1}. {esc(d.title)}</div>')
            meta = "　".join(x for x in (d.issuer, d.date, d.doc_type, d.doc_number) if x)
            loc = " › ".join(m.heading_path) + (f"　第{m.page}页" if m.page else "")
            if meta or loc.strip():
                st.text("　".join(x for x in (meta, loc.strip()) if x))
            st.html(f'<div class="yw-passage">{diff_html(m)}</div>')
            citation = m.citation.format(style()) if m.citation else d.title
            st.code(citation, language=None, wrap_lines=True)
            recognised = m.citation is not None and m.citation.recognised
            if recognised:
                st.caption(ocr_caption(m.citation.ocr_confidence, m.page))
                if res.verdict != "exact":
                    st.caption(f"这段原文是文字识别的结果：与引文的差异可能来自识别错误，"
                               f"请对照原件{f'第 {m.page} 页' if m.page else ''}核对。")
            c1, c2, _ = st.columns([1, 1, 3])
            c1.button("在文中查看", key=f"quote_view_{i}", on_click=goto_doc,
                      args=(d.id, m.match_start, m.match_end))
            if recognised:
                c2.button("对照原件", key=f"quote_scan_{i}", on_click=goto_doc,
                          args=(d.id, m.match_start, m.match_end), kwargs={"page": m.page},
                          help="打开文档，在识别文本旁显示原件页面")
    return shared


def _check_soon() -> None:
    """The text area was applied (Ctrl+Enter, or leaving it changed): check on this run."""
    ss()["quote_pending"] = True


run_page(body)
