"""论述摘编: the passages on one theme, grouped by document and in date order, each with its
source; the trainer unticks what is not wanted and turns the rest into a study pack in one
click: a new saved pack named after the theme (安全生产论述摘编), or, as the second choice, a
new section of the pack the session is on. The theme and its filters live in the URL
(``/excerpts?theme=…``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import (
    commit_pack,
    esc,
    get_kb,
    guarded,
    md_literal,
    pack_library,
    passage_card,
    run_page,
    set_current_pack,
    split_issuers,
    ss,
    style,
    sync_pack,
    view_button,
)
from yuanwen.errors import UsageError, YuanwenError
from yuanwen.library import Library
from yuanwen.models import Excerpts, Filters

DEFAULT_K = 30
FIELDS = {"ex_q": "theme", "ex_issuer": "issuer", "ex_since": "since", "ex_until": "until"}


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("论述摘编")
    st.caption("按主题汇集各文件中的相关论述：按文件分组、按时间先后排列，每段附出处。"
               "取消勾选不需要的段落，再一键生成学习材料汇编（可在汇编页调整顺序、分组和按语）。")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    s = ss()
    _first_visit()
    req = s.get("ex_req") or {}
    for key, name in FIELDS.items():  # a widget's value is dropped while its page is not shown
        s.setdefault(key, req.get(name, ""))
    s.setdefault("ex_types", list(req.get("types", [])))
    s.setdefault("ex_k", int(req.get("k", DEFAULT_K)))
    s.setdefault("ex_weak", bool(req.get("weak", False)))
    types = list(h.kb.facets()["by_type"])
    options = types + [t for t in s.get("ex_types") or [] if t not in types]
    with st.form("ex_form", border=False):
        st.text_input("主题", key="ex_q", placeholder="如：安全生产、新质生产力、全过程人民民主")
        c1, c2, c3, c4, c5 = st.columns([3, 3, 2, 2, 2])
        c1.multiselect("文种", options, key="ex_types", placeholder="全部文种")
        c2.text_input("发文机关/讲话人", key="ex_issuer", placeholder="如：习近平；多个用逗号分隔")
        c3.text_input("起始日期", key="ex_since", placeholder="如 2018")
        c4.text_input("截止日期", key="ex_until", placeholder="如 2024-12-31")
        c5.number_input("最多段数", min_value=1, max_value=100, step=1, key="ex_k")
        c6, c7 = st.columns([1, 5], vertical_alignment="center")
        c6.form_submit_button("生成摘编", type="primary", key="ex_go", on_click=_submit)
        c7.checkbox("也列入相关度较低的段落", key="ex_weak",
                    help="默认只列入与主题明显相关的段落")

    if s.pop("ex_pending", False) and s.get("ex_req"):
        _run(h, s["ex_req"])
    if s.get("ex_err"):
        st.error(md_literal(s["ex_err"]))
    res: Excerpts | None = s.get("ex_res")
    if res is not None:
        show(res)
    return _params(s.get("ex_req"))


def _first_visit() -> None:
    """On a session's first visit, a theme in the URL is compiled at once (a shared link)."""
    s = ss()
    if s.get("ex_routed"):
        return
    s["ex_routed"] = True
    qp = st.query_params
    theme = qp.get("theme", "").strip()
    if not theme or s.get("ex_req"):
        return
    try:
        k = max(1, min(100, int(qp.get("k", DEFAULT_K))))
    except ValueError:
        k = DEFAULT_K
    s["ex_req"] = {"theme": theme, "types": qp.get_all("type"), "issuer": qp.get("issuer", ""),
                   "since": qp.get("since", ""), "until": qp.get("until", ""), "k": k,
                   "weak": qp.get("weak", "0") == "1"}
    s["ex_pending"] = True


def _params(req: dict[str, Any] | None) -> dict[str, Any]:
    if not req:
        return {}
    out = {"theme": req["theme"], "type": req["types"], "issuer": req["issuer"],
           "since": req["since"], "until": req["until"]}
    if req["k"] != DEFAULT_K:
        out["k"] = str(req["k"])
    if req["weak"]:
        out["weak"] = "1"
    return out


@guarded
def _submit() -> None:
    s = ss()
    s["ex_req"] = {"theme": s.get("ex_q", "").strip(), "types": list(s.get("ex_types") or []),
                   "issuer": s.get("ex_issuer", "").strip(), "since": s.get("ex_since", "").strip(),
                   "until": s.get("ex_until", "").strip(), "k": int(s.get("ex_k") or DEFAULT_K),
                   "weak": bool(s.get("ex_weak", False))}
    s["ex_pending"] = True


def _run(h, req: dict[str, Any]) -> None:
    s = ss()
    s["ex_res"], s["ex_err"] = None, None
    s["ex_gen"] = s.get("ex_gen", 0) + 1  # fresh checkboxes for a fresh proposal
    filters = Filters(doc_types=req["types"], issuers=split_issuers(req["issuer"]),
                      since=req["since"] or None, until=req["until"] or None)
    with st.spinner("正在汇集相关论述…"):
        try:
            with h.lock:
                s["ex_res"] = h.kb.excerpts(req["theme"], k=req["k"], filters=filters,
                                            include_weak=req["weak"])
        except YuanwenError as exc:
            s["ex_err"] = str(exc)


def _keep_key(pid: int | None) -> str:
    return f"ex_keep_{ss().get('ex_gen', 0)}_{pid}"


def selected(res: Excerpts) -> list[int]:
    """The ids of the proposed passages still ticked, in the 摘编's order."""
    s = ss()
    return [h.passage.id for h in res.hits if s.get(_keep_key(h.passage.id), True)]


def show(res: Excerpts) -> None:
    hits = res.hits
    if res.understood:
        st.caption(f"已识别：{' · '.join(res.understood)}")
    if not hits:
        st.info(f"没有找到与“{md_literal(res.theme)}”明显相关的段落。可以换个说法，或放宽筛选条件。"
                + (f"（另有 {res.weak_left_out} 段相关度较低，勾选上方“也列入相关度较低的段落”可以看到。）"
                   if res.weak_left_out else ""))
        return
    note = f"共 {len(hits)} 段，来自 {len(res.groups)} 篇文件，按时间先后排列，用时 {res.took_ms:.0f} 毫秒。"
    if res.weak_left_out:
        note += f"另有 {res.weak_left_out} 段相关度较低，未列入。"
    st.caption(note)
    _pack_bar(res, "top")
    for g in res.groups:
        d = g.document
        with st.container(border=True):
            st.html(f'<div class="yw-title">{esc(d.date or "日期不详")}　{esc(d.title)}</div>')
            meta = "　".join(x for x in (d.issuer, d.doc_type, d.doc_number) if x)
            if meta:
                st.text(meta)
            for hit in g.hits:
                _passage(hit)
    _pack_bar(res, "bottom")


def _passage(hit) -> None:
    p = hit.passage
    c1, c2 = st.columns([1, 20])
    key = _keep_key(p.id)
    ss().setdefault(key, True)
    c1.checkbox("选用", key=key, label_visibility="collapsed", help="取消勾选：不放入汇编")
    with c2:
        path = " › ".join(p.heading_path)
        weak = "（相关度较低）" if hit.weak else ""
        passage_card(hit, f"{hit.rank}. {path}{weak}" if path or weak else "")
        view_button(hit, f"ex_view_{p.id}")


def _pack_bar(res: Excerpts, where: str) -> None:
    n = len(selected(res))
    current = ss().get("pack_name")
    c1, c2, c3, c4, _ = st.columns([3, 2, 1, 1, 1], vertical_alignment="center")
    c1.button(f"生成学习材料汇编（已选 {n} 段）", type="primary", key=f"ex_pack_{where}",
              on_click=_make_pack, disabled=n == 0,
              help=f"新建一个汇编（名称：{_new_pack_title(res)}），放入选中的段落，然后打开汇编页")
    c2.button(f"加入当前汇编“{current}”" if current else "加入当前汇编", key=f"ex_add_{where}",
              on_click=_add_to_current, disabled=n == 0,
              help="放入当前汇编的一个新分组（以主题为标题），然后打开汇编页")
    c3.button("全选", key=f"ex_all_{where}", on_click=_tick_all, args=(True,))
    c4.button("全不选", key=f"ex_none_{where}", on_click=_tick_all, args=(False,))


def _new_pack_title(res: Excerpts) -> str:
    """The title (and, where free, the name) of the pack the 摘编 becomes: 安全生产论述摘编."""
    return Library.excerpts_pack(res, None, []).title


@guarded
def _tick_all(value: bool) -> None:
    res = ss().get("ex_res")
    if res is not None:
        for h in res.hits:
            ss()[_keep_key(h.passage.id)] = value


@guarded
def _make_pack() -> None:
    """The chosen passages as a new saved pack, named after the theme (安全生产论述摘编, or
    安全生产论述摘编（2）... when taken), which becomes the session's pack."""
    s = ss()
    res: Excerpts | None = s.get("ex_res")
    if res is None:
        return
    pack = Library.excerpts_pack(res, None, selected(res), style=style())
    lib = pack_library()
    try:
        try:
            name = lib.free_pack_name(pack.title)
        except UsageError:  # a theme that cannot be a file name (e.g. with “/”)
            name = lib.free_pack_name()
        set_current_pack(lib.create_pack(name, pack))
    except YuanwenError as exc:
        st.toast(md_literal(f"没有生成汇编：{exc}"))
        return
    st.toast(f"已新建学习材料汇编“{name}”，共 {Library.pack_size(pack)} 段")
    s["switch_to"] = "pack"


@guarded
def _add_to_current() -> None:
    """The chosen passages as a new section (titled with the theme) of the session's pack."""
    s = ss()
    res: Excerpts | None = s.get("ex_res")
    if res is None:
        return
    sync_pack()  # the pack as saved now (another window may have changed it)
    ids = selected(res)
    before = Library.pack_size(s["pack"])
    pack = Library.excerpts_pack(res, s["pack"], ids, style=style())
    if not commit_pack(pack):  # saved in the knowledge base folder; a refusal says why
        st.toast(md_literal(s.pop("pack_error", None) or "没有放入汇编"))
        return
    added = Library.pack_size(s["pack"]) - before
    st.toast(f"已把 {added} 段放入学习材料汇编“{s.get('pack_name')}”"
             + (f"（{len(ids) - added} 段原已在汇编中）" if added < len(ids) else ""))
    s["switch_to"] = "pack"


run_page(body)
