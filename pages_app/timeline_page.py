"""提法演变: when a formulation first appears in the knowledge base, how often it occurs year
by year (a bar chart), and the passages that use it by date, each addable to the study pack.
The term lives in the URL (``/timeline?term=新质生产力``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import altair as alt
import streamlit as st

from pages_app.common import (
    ALL_YEARS,
    add_to_pack,
    esc,
    get_kb,
    guarded,
    md_literal,
    passage_card,
    run_page,
    ss,
    style,
    view_button,
)
from yuanwen.errors import YuanwenError
from yuanwen.library import Library
from yuanwen.models import Hit, Timeline

PAGE_SIZE = 20
UNDATED = "日期不详"
MEASURES = ("出现次数", "文件篇数")  # what the bars show: occurrences, or documents using it


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("提法演变")
    st.caption("一个提法在知识库中何时首次出现、见于哪篇文件、逐年出现多少次，以及用到它的段落（按时间先后）。"
               "提法词表中的提法连同其他写法和完整表述一并计入（如“十四五”也计“国民经济和社会发展第十四个五年规划”）。")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    s = ss()
    if not s.get("tl_routed"):  # a shared link: the term in the URL is looked up at once
        s["tl_routed"] = True
        term = st.query_params.get("term", "").strip()
        if term and not s.get("tl_req"):
            s["tl_req"], s["tl_pending"] = term, True
    s.setdefault("tl_q", s.get("tl_req", ""))
    with st.form("tl_form", border=False):
        c1, c2 = st.columns([5, 1], vertical_alignment="bottom")
        c1.text_input("提法", key="tl_q", placeholder="如：新质生产力、高质量发展、两个确立、十四五")
        c2.form_submit_button("查看", type="primary", key="tl_go", on_click=_submit)
    if s.pop("tl_pending", False) and s.get("tl_req"):
        s["tl_res"], s["tl_err"] = None, None
        s["tl_year"], s["tl_page"] = ALL_YEARS, 1
        with st.spinner("正在统计…"):
            try:
                with h.lock:
                    s["tl_res"] = h.kb.timeline(s["tl_req"])
            except YuanwenError as exc:
                s["tl_err"] = str(exc)
    if s.get("tl_err"):
        st.error(md_literal(s["tl_err"]))
    res: Timeline | None = s.get("tl_res")
    if res is not None:
        show(res)
    return {"term": s.get("tl_req", "")}


@guarded
def _submit() -> None:
    ss()["tl_req"] = ss().get("tl_q", "").strip()
    ss()["tl_pending"] = True


def show(res: Timeline) -> None:
    name = res.formulation or res.term
    if len(res.forms) > 1:
        st.caption("一并计入：" + "、".join(f"{f}（{res.by_form.get(f, 0)} 次）" for f in res.forms))
    if not res.occurrences:
        st.info(f"知识库中没有出现“{md_literal(name)}”。")
        return
    fd = res.first_document
    c1, c2, c3 = st.columns(3)
    c1.metric("首次出现", fd.date if fd is not None else UNDATED)
    c2.metric("出现次数", f"{res.occurrences} 次")
    c3.metric("见于文件", f"{res.documents} 篇")
    if fd is not None:
        who = f"（{fd.issuer}）" if fd.issuer else ""
        st.markdown(f"**首次出现于**：{md_literal(fd.date or '')}《{md_literal(fd.title)}》{md_literal(who)}")
        if res.first is not None:
            render_passage(res.first, "first")
    st.subheader("逐年分布")
    series = res.series()
    if series:
        measure = st.radio("按", list(MEASURES), key="tl_measure", horizontal=True,
                           label_visibility="collapsed",
                           help="出现次数：该年文件中共出现多少次；文件篇数：该年有多少篇文件用到它")
        st.altair_chart(year_chart(series, measure), width="stretch")
    if res.undated is not None:
        st.caption(f"另有 {res.undated.occurrences} 次见于 {res.undated.documents} 篇日期不详的文件，未计入上图。")
    st.caption(f"统计用时 {res.took_ms:.0f} 毫秒。")
    _passages(res)


def year_chart(series, measure: str = "出现次数") -> alt.Chart:
    """Occurrences (or documents) per year as bars; years are labels, so no thousands
    separator, and a few years do not make a few very wide bars."""
    data = alt.Data(values=[{"年份": str(y.year), "出现次数": y.occurrences, "文件篇数": y.documents}
                            for y in series])
    bar: dict[str, Any] = {"color": "#c92a2a"}
    if len(series) <= 12:
        bar["size"] = 36
    return (alt.Chart(data).mark_bar(**bar)
            .encode(x=alt.X("年份:O", axis=alt.Axis(labelAngle=0, title="年份")),
                    y=alt.Y(f"{measure}:Q", title=measure),
                    tooltip=["年份:O", "出现次数:Q", "文件篇数:Q"])
            .properties(height=260))


def _year_of(hit: Hit) -> str:
    y = hit.document.year
    return str(y) if y is not None else UNDATED


def _passages(res: Timeline) -> None:
    s = ss()
    st.subheader(f"用到它的段落（共 {len(res.passages)} 段，按时间先后）")
    years = list(dict.fromkeys(_year_of(h) for h in res.passages))
    options = [ALL_YEARS] + years
    if s.get("tl_year") not in options:
        s["tl_year"] = ALL_YEARS
    c1, c2 = st.columns([2, 4])
    c1.selectbox("年份", options, key="tl_year", on_change=_first_page)
    shown = [h for h in res.passages if s["tl_year"] in (ALL_YEARS, _year_of(h))]
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    page = max(1, min(pages, int(s.get("tl_page", 1))))
    lo = (page - 1) * PAGE_SIZE
    c2.caption(f"{len(shown)} 段，第 {lo + 1}–{min(lo + PAGE_SIZE, len(shown))} 段")
    for hit in shown[lo:lo + PAGE_SIZE]:
        render_passage(hit, "list")
    if pages > 1:
        b1, b2, b3, _ = st.columns([1, 1, 2, 4], vertical_alignment="center")
        b1.button("上一页", key="tl_prev", on_click=_turn, args=(-1,), disabled=page == 1)
        b2.button("下一页", key="tl_next", on_click=_turn, args=(1,), disabled=page == pages)
        b3.caption(f"第 {page} / {pages} 页")


@guarded
def _first_page() -> None:
    ss()["tl_page"] = 1


@guarded
def _turn(delta: int) -> None:
    ss()["tl_page"] = max(1, int(ss().get("tl_page", 1)) + delta)


def render_passage(hit: Hit, where: str) -> None:
    d, p = hit.document, hit.passage
    with st.container(border=True):
        st.html(f'<div class="yw-title">{esc(d.date or UNDATED)}　{esc(d.title)}</div>')
        passage_card(hit, "　".join(x for x in (d.issuer, d.doc_type, " › ".join(p.heading_path)) if x))
        c1, c2, _ = st.columns([1, 1, 4])
        in_pack = Library.find_in_pack(ss()["pack"], p.id) is not None
        c1.button("已在汇编中" if in_pack else "加入汇编", key=f"tl_add_{where}_{p.id}",
                  on_click=_add, args=(p.id,), disabled=in_pack)
        view_button(hit, f"tl_view_{where}_{p.id}", c2)


@guarded
def _add(passage_id: int) -> None:
    res: Timeline | None = ss().get("tl_res")
    if res is None:
        return
    hit = next((h for h in res.passages if h.passage.id == passage_id), None)
    if hit is not None:
        add_to_pack(Library.item_from_hit(hit, style()))


run_page(body)
