"""学习材料汇编: collect passages, group them under section titles, reorder, add notes, and
export the pack as Word, Markdown or a .json file that can be loaded again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import esc, guarded, md_literal, run_page, ss
from yuanwen.errors import YuanwenError
from yuanwen.library import Library, safe_filename
from yuanwen.models import StudyPack


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("学习材料汇编")
    s = ss()
    pack: StudyPack = s["pack"]
    if s.get("pack_error"):
        st.error(md_literal(s.pop("pack_error")))
    s.setdefault("pk_title", pack.title)
    s.setdefault("pk_subtitle", pack.subtitle)
    c1, c2 = st.columns(2)
    c1.text_input("汇编标题", key="pk_title", on_change=_set_pack_title)
    c2.text_input("副标题（可选）", key="pk_subtitle", on_change=_set_pack_title,
                  placeholder="如：2024年第三季度理论学习中心组")
    c3, c4 = st.columns([3, 1], vertical_alignment="bottom")
    c3.text_input("新建分组", key="pk_new_section", placeholder="分组标题，如：一、关于安全生产的重要论述")
    c4.button("添加分组", key="pk_add_section", on_click=_new_section)

    n = Library.pack_size(pack)
    if n == 0:
        st.info("汇编还是空的。在「检索」页或「文档」页点「加入汇编」，把段落收集到这里。")
    labels = _section_labels([sec.title for sec in pack.sections])
    for si, sec in enumerate(pack.sections):
        with st.container(border=True):
            t1, t2, t3, t4 = st.columns([6, 1, 1, 1], vertical_alignment="bottom")
            key = f"pk_sec_{si}_{sec.title}"
            t1.text_input(f"第 {si + 1} 组标题", value=sec.title, key=key,
                          on_change=_pack_from_widget, args=("rename_section", key, si))
            t2.button("上移", key=f"pk_sup_{si}", on_click=_pack_op, args=("move_section", si, -1),
                      disabled=si == 0)
            t3.button("下移", key=f"pk_sdown_{si}", on_click=_pack_op, args=("move_section", si, 1),
                      disabled=si == len(pack.sections) - 1)
            t4.button("删除分组", key=f"pk_sdel_{si}", on_click=_pack_op, args=("remove_section", si),
                      help="分组里的段落并入前一组")
            if not sec.items:
                st.caption("（本组暂无段落）")
            for ii, item in enumerate(sec.items):
                render_pack_item(si, ii, item, labels)

    st.divider()
    st.subheader("导出")
    title = pack.title or "学习材料汇编"
    fname = safe_filename(title, default="学习材料汇编")
    e1, e2, e3 = st.columns(3)
    e1.download_button("导出 Word（.docx）", data=Library.pack_bytes(pack, "docx"), file_name=f"{fname}.docx",
                       mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                       key="pk_docx", disabled=n == 0, type="primary")
    e2.download_button("导出 Markdown（.md）", data=Library.pack_bytes(pack, "md"),
                       file_name=f"{fname}.md", mime="text/markdown", key="pk_md", disabled=n == 0)
    e3.download_button("保存汇编（.json，可再载入）",
                       data=Library.pack_bytes(pack, "json"),
                       file_name=f"{fname}.json", mime="application/json", key="pk_json",
                       disabled=n == 0)
    loaded = st.file_uploader("载入保存过的汇编（.json）", type=["json"], key=f"pk_load_{s.get('pk_gen', 0)}")
    if loaded is not None:
        try:
            s["pack"] = Library.load_pack(loaded.getvalue(), loaded.name)
        except YuanwenError as exc:  # the current pack is kept
            st.error(md_literal(str(exc)))
        else:
            s["pk_gen"] = s.get("pk_gen", 0) + 1
            for k in ("pk_title", "pk_subtitle"):
                s.pop(k, None)
            st.rerun()
    return {}


def render_pack_item(si: int, ii: int, item, labels: list[str]) -> None:
    pack = ss()["pack"]
    uid = f"{si}_{ii}_{item.passage_id}"
    with st.container(border=True):
        st.html(f'<div class="yw-title">{esc(item.title)}</div>')
        if item.heading_path:
            st.text(" › ".join(item.heading_path))
        st.html(f'<div class="yw-passage">{esc(item.text)}</div>')
        st.text(f"出处：{item.citation}")
        nkey = f"pk_note_{uid}"
        st.text_area("按语（可选）", value=item.note, key=nkey, height=68,
                     on_change=_pack_from_widget, args=("set_note", nkey, si, ii))
        b1, b2, b3, b4 = st.columns([1, 1, 3, 1], vertical_alignment="bottom")
        first = si == 0 and ii == 0
        last = si == len(pack.sections) - 1 and ii == len(pack.sections[si].items) - 1
        b1.button("上移", key=f"pk_up_{uid}", on_click=_pack_op, args=("move_item", si, ii, -1),
                  disabled=first)
        b2.button("下移", key=f"pk_down_{uid}", on_click=_pack_op, args=("move_item", si, ii, 1),
                  disabled=last)
        if len(labels) > 1:
            mkey = f"pk_move_{uid}"
            b3.selectbox("移到分组", labels, index=si, key=mkey, on_change=_move_to,
                         args=(si, ii, mkey))
        b4.button("移除", key=f"pk_del_{uid}", on_click=_pack_op, args=("remove_item", si, ii))


@guarded
def _pack_op(op: str, *args: Any) -> None:
    """Apply one pack edit (``Library.edit_pack``) to the session's pack; report a refusal."""
    try:
        ss()["pack"] = Library.edit_pack(ss()["pack"], op, *args)
    except YuanwenError as exc:
        ss()["pack_error"] = str(exc)


@guarded
def _pack_from_widget(op: str, key: str, *args: Any) -> None:
    _pack_op(op, *args, ss()[key])


@guarded
def _move_to(sec: int, idx: int, key: str) -> None:
    titles = [s.title for s in ss()["pack"].sections]
    label = ss()[key]
    target = next((i for i, t in enumerate(_section_labels(titles)) if t == label), sec)
    _pack_op("move_to_section", sec, idx, target)


def _section_labels(titles: list[str]) -> list[str]:
    return [f"{i + 1}. {t}" for i, t in enumerate(titles)]


@guarded
def _new_section() -> None:
    title = ss().get("pk_new_section", "").strip()
    if title:
        _pack_op("add_section", title)
        ss()["pk_new_section"] = ""


@guarded
def _set_pack_title() -> None:
    _pack_op("set_title", ss().get("pk_title", ""), ss().get("pk_subtitle", ""))


run_page(body)
