"""学习材料汇编: collect passages, group them under section titles, reorder, add notes, and
export the pack as Word, Markdown or a .json file that can be loaded again."""

from __future__ import annotations

from copy import deepcopy
from functools import partial
from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import (
    commit_pack,
    edit_current_pack,
    esc,
    guarded,
    md_literal,
    pack_library,
    run_page,
    session_actor,
    set_current_pack,
    ss,
)
from yuanwen.errors import UsageError, YuanwenError
from yuanwen.library import EXPORT_SOURCES, SHARED_PREFIX, Library, safe_filename
from yuanwen.models import SavedPack, StudyPack


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("学习材料汇编")
    s = ss()
    if s.get("pack_error"):
        st.error(md_literal(s.pop("pack_error")))
    if s.get("pack_notice"):
        st.success(md_literal(s.pop("pack_notice")))
    try:
        saved = pack_library().packs()
    except YuanwenError as exc:
        st.error(md_literal(str(exc)))
        saved = []
    choose_pack(saved)
    pack: StudyPack = s["pack"]
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
    sources = list(EXPORT_SOURCES)
    source = st.radio("段后出处", sources, key="pk_source", horizontal=True,
                      format_func=lambda k: {"excerpt": "（摘自《……》，日期）"}.get(k, "加入时选定的引文格式"),
                      help="摘编的写法，或加入汇编时选定的引文格式（脚注格式 / GB/T 7714）")
    e1, e2, e3 = st.columns(3)
    # each file is built when its button is clicked (a callable as data), not on every rerun
    lib = pack_library()  # exports leave out passages above the account's clearance, and are audited
    e1.download_button("导出 Word（.docx）", data=partial(lib.export_bytes, pack, "docx", source),
                       file_name=f"{fname}.docx",
                       mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                       key="pk_docx", disabled=n == 0, type="primary")
    e2.download_button("导出 Markdown（.md）", data=partial(lib.export_bytes, pack, "md", source),
                       file_name=f"{fname}.md", mime="text/markdown", key="pk_md", disabled=n == 0)
    _pdf_export(pack, source, fname, e2, disabled=n == 0)
    e3.download_button("下载汇编文件（.json，可分享、可再载入）",
                       data=partial(lib.export_bytes, pack, "json"),
                       file_name=f"{fname}.json", mime="application/json", key="pk_json",
                       disabled=n == 0)
    load_file(pack)
    return {"pack": s.get("pack_name") or ""}


def _pdf_export(pack: StudyPack, source: str, fname: str, col: Any, disabled: bool) -> None:
    """PDF in two steps (LibreOffice takes seconds): 生成 PDF, then its download button; without
    LibreOffice, a note saying how else to get one."""
    if not Library.pdf_available():
        col.caption("导出 PDF 需要安装 LibreOffice；也可导出 Word 后用 Word / WPS 另存为 PDF。")
        return
    s = ss()
    made = s.get("pk_pdf")  # ((pack, source) it was made from, PDF bytes)
    if made and made[0] == (pack, source):
        col.download_button("下载 PDF", data=made[1], file_name=f"{fname}.pdf", mime="application/pdf",
                            key="pk_pdf_dl")
        return
    if col.button("生成 PDF", key="pk_pdf_make", disabled=disabled, help="用 LibreOffice 把 Word 版转为 PDF"):
        try:
            with st.spinner("正在用 LibreOffice 生成 PDF…"):
                s["pk_pdf"] = ((deepcopy(pack), source), pack_library().export_bytes(pack, "pdf", source))
        except YuanwenError as exc:
            st.error(md_literal(str(exc)))
        else:
            st.rerun()


# -- saved packs: choose, create, rename, delete -----------------------------------------------
def choose_pack(saved: list[SavedPack]) -> None:
    """The row above the pack: which saved pack this is, and new / rename / delete."""
    s = ss()
    current = s.get("pack_name")
    names = [p.name for p in saved if not p.error]
    if current and current not in names:
        names.insert(0, current)
    sizes = {p.name: Library.pack_size(p.pack) for p in saved}
    sizes[current] = Library.pack_size(s["pack"])
    c1, c2, c3, c4 = st.columns([4, 1, 1, 1], vertical_alignment="bottom")
    s["pk_pick"] = current  # follows the session's pack (a new, renamed or loaded one)
    c1.selectbox("当前汇编", names, key="pk_pick", on_change=_switch_pack,
                 format_func=lambda n: f"{n}（{sizes.get(n, 0)} 段）",
                 placeholder="（新汇编，加入第一段时自动保存）",
                 help="汇编随改随存在知识库文件夹里（packs/），刷新页面或重启后仍在")
    can_share = _can_share()
    with c2.popover("新建", use_container_width=True):
        st.text_input("新汇编名称", key="pk_new_name", placeholder="如：防汛抗旱专题学习")
        if can_share:
            st.checkbox("共享给所有账户", key="pk_new_shared",
                        help=f"共享汇编名称以“{SHARED_PREFIX}”开头，所有账户都能打开，只有编辑能修改")
        st.button("创建", key="pk_create", on_click=_create_pack, type="primary")
    with c3.popover("重命名", use_container_width=True, disabled=not current):
        st.text_input("新名称", key="pk_rename_to", placeholder=current or "")
        st.button("确定", key="pk_rename", on_click=_rename_pack, type="primary")
    with c4.popover("删除", use_container_width=True, disabled=not current):
        st.warning(md_literal(f"删除汇编“{current}”（{sizes.get(current, 0)} 段）？删除后无法恢复，"
                              "可先下载汇编文件备份。"))
        st.button("确定删除", key="pk_delete", on_click=_delete_pack, type="primary")
    if current and current.startswith(SHARED_PREFIX):
        if can_share:
            st.caption("这是共享汇编：所有账户都能打开，编辑可以修改。")
        else:
            st.info("这是共享汇编：所有账户都能打开，只有编辑可以修改。要在此基础上编辑，"
                    "可下载汇编文件（.json）后在下方载入为新汇编。")
    elif can_share and current and Library.pack_size(s["pack"]):
        with st.popover("另存为共享汇编"):
            st.text_input(f"共享汇编名称（自动加前缀“{SHARED_PREFIX}”）", key="pk_share_name",
                          placeholder=current)
            st.button("共享给所有账户", key="pk_share", on_click=_share_pack, type="primary")
    for i, p in enumerate(p for p in saved if p.error):
        w1, w2 = st.columns([6, 1], vertical_alignment="center")
        w1.warning(md_literal(f"已略过一个汇编：{p.error}"))
        with w2.popover("删除", use_container_width=True):
            st.warning(md_literal(f"删除无法读取的汇编“{p.name}”？删除后无法恢复；"
                                  f"如需保留，请先复制知识库文件夹 packs/ 下的“{p.name}.json”。"))
            st.button("确定删除", key=f"pk_delete_bad_{i}", on_click=_delete_bad, args=(p.name,),
                      type="primary")


@guarded
def _switch_pack() -> None:
    s = ss()
    try:
        set_current_pack(pack_library().open_pack(s["pk_pick"]))
    except YuanwenError as exc:
        s["pack_error"] = str(exc)


@guarded
def _create_pack() -> None:
    s = ss()
    try:
        name = s.get("pk_new_name", "")
        if s.get("pk_new_shared") and name and not name.startswith(SHARED_PREFIX):
            name = SHARED_PREFIX + name
        set_current_pack(pack_library().create_pack(name))
    except YuanwenError as exc:
        s["pack_error"] = str(exc)
        return
    s["pk_new_name"] = ""
    s["pack_notice"] = f"已新建汇编“{s['pack_name']}”"


def _can_share() -> bool:
    """Whether the session may edit shared packs (editors of a shared knowledge base)."""
    return session_actor() is not None and pack_library().can("share_packs")


@guarded
def _share_pack() -> None:
    """Save a copy of the session's pack as a shared pack (共享/NAME) and go on with it."""
    s = ss()
    name = (s.get("pk_share_name") or "").strip() or s.get("pack_name") or ""
    if not name.startswith(SHARED_PREFIX):
        name = SHARED_PREFIX + name
    try:
        set_current_pack(pack_library().create_pack(name, s["pack"]))
    except YuanwenError as exc:
        s["pack_error"] = str(exc)
        return
    s["pk_share_name"] = ""
    s["pack_notice"] = f"已另存为共享汇编“{name}”，所有账户都能打开"


@guarded
def _rename_pack() -> None:
    s = ss()
    old = s.get("pack_name")
    try:
        set_current_pack(pack_library().rename_pack(old, s.get("pk_rename_to", "")))
    except YuanwenError as exc:
        s["pack_error"] = str(exc)
        return
    s["pk_rename_to"] = ""
    s["pack_notice"] = f"已把汇编“{old}”改名为“{s['pack_name']}”"


@guarded
def _delete_pack() -> None:
    s = ss()
    name = s.get("pack_name")
    lib = pack_library()
    try:
        lib.delete_pack(name)
        rest = [p for p in lib.packs() if not p.error]
    except YuanwenError as exc:
        s["pack_error"] = str(exc)
        return
    set_current_pack(rest[0] if rest else None)
    s["pack_notice"] = f"已删除汇编“{name}”"


@guarded
def _delete_bad(name: str) -> None:
    """Delete a saved pack whose file cannot be read (listed below the chooser)."""
    s = ss()
    try:
        pack_library().delete_pack(name)
    except YuanwenError as exc:
        s["pack_error"] = str(exc)
        return
    if s.get("pack_name") == name:
        set_current_pack(None)
    s["pack_notice"] = f"已删除汇编“{name}”"


# -- loading a shared pack file ------------------------------------------------------------------
def load_file(pack: StudyPack) -> None:
    """The uploader for a pack file: a file that is not a pack is refused and changes nothing;
    a valid one is saved as a new pack, or replaces the current one after a confirm step when
    the current one is not empty."""
    s = ss()
    loaded = st.file_uploader("载入汇编文件（.json）", type=["json"], key=f"pk_load_{s.get('pk_gen', 0)}")
    if loaded is None:
        s.pop("pk_confirm_replace", None)
        return
    try:
        incoming = Library.load_pack(loaded.getvalue(), loaded.name)
    except YuanwenError as exc:  # the current pack is kept as it is
        st.error(md_literal(f"{exc}\n\n当前汇编没有改动。"))
        return
    current = s.get("pack_name") or "（新汇编）"
    st.info(md_literal(f"文件 {loaded.name}：《{incoming.title}》，{Library.pack_size(incoming)} 段。"
                       "可另存为一个新汇编，或用它替换当前汇编。"))
    b1, b2, _ = st.columns([1, 1, 2])
    b1.button("另存为新汇编", key="pk_load_new", on_click=_load_as_new, args=(loaded.name, incoming),
              type="primary")
    if s.get("pk_confirm_replace"):
        st.warning(md_literal(
            f"当前汇编“{current}”有 {Library.pack_size(pack)} 段，替换后将被文件中的内容取代，"
            "无法撤销（可先下载汇编文件备份）。确定替换吗？"))
        c1, c2, _ = st.columns([1, 1, 2])
        c1.button("确定替换", key="pk_replace_yes", on_click=_replace, args=(loaded.name, incoming),
                  type="primary")
        c2.button("取消", key="pk_replace_no", on_click=_cancel_load)
    else:
        b2.button(f"替换当前汇编“{current}”", key="pk_replace", on_click=_ask_replace,
                  args=(loaded.name, incoming))


def _done_loading(notice: str) -> None:
    s = ss()
    s["pk_gen"] = s.get("pk_gen", 0) + 1  # a fresh, empty uploader
    s.pop("pk_confirm_replace", None)
    s["pack_notice"] = notice


@guarded
def _load_as_new(file_name: str, incoming: StudyPack) -> None:
    lib = pack_library()
    stem = file_name[:-5] if file_name.lower().endswith(".json") else file_name
    try:
        try:
            name = lib.free_pack_name(stem)
        except UsageError:  # a file name that cannot be a pack name
            name = lib.free_pack_name()
        set_current_pack(lib.create_pack(name, incoming))
    except YuanwenError as exc:
        ss()["pack_error"] = str(exc)
        return
    _done_loading(f"已把文件 {file_name} 载入为新汇编“{name}”")


@guarded
def _ask_replace(file_name: str, incoming: StudyPack) -> None:
    pack = ss()["pack"]
    if Library.pack_size(pack) == 0 and not pack.sections:  # nothing to lose: no question
        _replace(file_name, incoming)
    else:
        ss()["pk_confirm_replace"] = True


@guarded
def _replace(file_name: str, incoming: StudyPack) -> None:
    if commit_pack(incoming):
        _done_loading(f"已用文件 {file_name} 替换汇编“{ss()['pack_name']}”")
    else:
        ss().pop("pk_confirm_replace", None)


@guarded
def _cancel_load() -> None:
    _done_loading("没有载入，当前汇编保持不变")


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
    """Apply one pack edit (``Library.PACK_EDITS``) to the session's pack and save it; a
    refusal is left in ``pack_error`` for the page to show."""
    edit_current_pack(op, *args)


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
