"""账户 (admins): the accounts of a shared knowledge base, a new account, changing one's role,
clearance, password or disabling it, and the ladder of access levels.

Account names are shown in tables and plain text only (never as Markdown).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import (
    DESKTOP,
    MODE_KEY,
    current_kb_dir,
    get_kb,
    guarded,
    md_literal,
    run_page,
    ss,
)
from pages_app.login import NOTICE_KEY
from yuanwen.errors import YuanwenError
from yuanwen.library import ROLE_LABELS, ROLES, Library
from yuanwen.models import Account

SOURCE_LABELS = {"local": "密码", "oidc": "统一身份认证"}


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("账户")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    s = ss()
    with h.lock:
        accounts = h.kb.accounts()
        levels = h.kb.access_levels()
    if s.get("acc_msg"):
        st.success(md_literal(s.pop("acc_msg")))
    if s.get("acc_err"):
        st.error(md_literal(s.pop("acc_err")))
    if not accounts:
        st.info("本知识库还没有账户，在本机使用不需要登录。建立第一个账户（应为管理员）后，本知识库即成为共享知识库："
                "打开应用须先登录，各项操作记入审计日志。")
    else:
        st.dataframe(_table(accounts), hide_index=True)

    with st.expander("新建账户", expanded=not accounts), st.form("acc_add_form", clear_on_submit=False):
        c1, c2, c3 = st.columns(3)
        c1.text_input("账户名", key="acc_new_name", placeholder="字母、数字或汉字，2～64 个字符")
        c2.selectbox("角色", ROLES, key="acc_new_role", index=len(ROLES) - 1 if not accounts else 0,
                     format_func=lambda r: ROLE_LABELS.get(r, r),
                     help="读者：检索、核对、阅读、自己的汇编；编辑：另可上传导入、删除文档、设置访问级别、编辑共享汇编；"
                          "管理员：另可管理账户和查看审计日志")
        c3.selectbox("可阅级别", levels, key="acc_new_clearance",
                     help="可阅读这一级别及以下的文档")
        c4, c5 = st.columns(2)
        c4.text_input("密码", type="password", key="acc_new_pw", placeholder="至少 10 个字符",
                      autocomplete="new-password")
        c5.text_input("再次输入密码", type="password", key="acc_new_pw2", autocomplete="new-password")
        st.form_submit_button("新建账户", type="primary", key="acc_add", on_click=_add)

    if accounts:
        _edit(accounts, levels)
    _levels(levels)
    return {}


def _table(accounts: list[Account]) -> dict[str, list[str]]:
    return {
        "账户": [a.name for a in accounts],
        "角色": [ROLE_LABELS.get(a.role, a.role) for a in accounts],
        "可阅级别": [a.clearance for a in accounts],
        "状态": ["已停用" if a.disabled else "正常" for a in accounts],
        "登录方式": [SOURCE_LABELS.get(a.source, a.source) for a in accounts],
        "建立时间（UTC）": [a.created or "" for a in accounts],
        "最近登录（UTC）": [a.last_login or "" for a in accounts],
    }


def _edit(accounts: list[Account], levels: list[str]) -> None:
    """One account: its role and clearance, disable / enable it, a new password."""
    s = ss()
    names = [a.name for a in accounts]
    if s.get("acc_pick") not in names:
        s["acc_pick"] = names[0]
    st.subheader("修改账户")
    st.selectbox("账户", names, key="acc_pick")
    account = accounts[names.index(s["acc_pick"])]
    if s.get("acc_loaded") != (account.name, account.role, account.clearance):  # another account picked
        s["acc_loaded"] = (account.name, account.role, account.clearance)
        s["acc_role"], s["acc_clearance"] = account.role, account.clearance
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    c1.selectbox("角色", ROLES, key="acc_role", format_func=lambda r: ROLE_LABELS.get(r, r))
    c2.selectbox("可阅级别", levels if account.clearance in levels else [*levels, account.clearance],
                 key="acc_clearance")
    c3.button("保存修改", key="acc_save", on_click=_update, args=(account.name,))
    st.text(f"状态：{'已停用' if account.disabled else '正常'}")
    if account.disabled:
        st.button("启用账户", key="acc_toggle", on_click=_toggle, args=(account.name, False))
    else:
        st.button("停用账户", key="acc_toggle", on_click=_toggle, args=(account.name, True),
                  help="停用后该账户无法登录；已登录的会话在下一次操作时退出")
    if account.source == "local":
        with st.form("acc_pw_form"):
            p1, p2 = st.columns(2)
            p1.text_input("新密码", type="password", key="acc_pw", placeholder="至少 10 个字符",
                          autocomplete="new-password")
            p2.text_input("再次输入新密码", type="password", key="acc_pw2", autocomplete="new-password")
            st.form_submit_button("重设密码", key="acc_pw_go", on_click=_password, args=(account.name,))
    else:
        st.caption("该账户通过统一身份认证登录，没有本地密码；角色和可阅级别在每次登录时按认证信息更新。")


def _levels(levels: list[str]) -> None:
    """The ladder of access levels, lowest first."""
    s = ss()
    st.subheader("访问级别")
    st.caption("文档的访问级别由低到高排列；账户可阅读其可阅级别及以下的文档。须以「公开」开头；仍有文档或账户在用的级别不能删去。")
    if s.get("acc_levels_shown") != levels:
        s["acc_levels_shown"] = levels
        s["acc_levels"] = "，".join(levels)
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.text_input("访问级别（由低到高，用逗号分隔）", key="acc_levels")
    c2.button("保存级别", key="acc_levels_go", on_click=_set_levels)


def _lib() -> tuple[Library, Any] | None:
    h = get_kb(current_kb_dir(), quiet=True)
    return (h.kb, h.lock) if h is not None else None


def _run(done: str, fn: Any, *args: Any, **kwargs: Any) -> bool:
    """Run an account change under the knowledge base's lock; its outcome for the page."""
    got = _lib()
    if got is None:
        ss()["acc_err"] = "知识库无法打开"
        return False
    lib, lock = got
    try:
        with lock:
            getattr(lib, fn)(*args, **kwargs)
    except YuanwenError as exc:
        ss()["acc_err"] = str(exc)
        return False
    ss()["acc_msg"] = done
    return True


@guarded
def _add() -> None:
    s = ss()
    name = (s.get("acc_new_name") or "").strip()
    pw, pw2 = s.get("acc_new_pw", ""), s.get("acc_new_pw2", "")
    s["acc_new_pw"] = s["acc_new_pw2"] = ""
    if pw != pw2:
        s["acc_err"] = "两次输入的密码不一致"
        return
    if _run(f"已建立账户 {name}", "add_account", name, s.get("acc_new_role", "reader"), pw,
            s.get("acc_new_clearance")):
        s["acc_new_name"] = ""
        s["acc_pick"] = name
        if s.get(MODE_KEY) == DESKTOP:  # the first account: from the next run on, logins are needed
            s[NOTICE_KEY] = f"已建立账户 {name}。本知识库现在需要登录，请用该账户登录。"


@guarded
def _update(name: str) -> None:
    s = ss()
    _run(f"已修改账户 {name}", "update_account", name, role=s.get("acc_role"), clearance=s.get("acc_clearance"))


@guarded
def _toggle(name: str, disabled: bool) -> None:
    _run(f"已{'停用' if disabled else '启用'}账户 {name}", "update_account", name, disabled=disabled)


@guarded
def _password(name: str) -> None:
    s = ss()
    pw, pw2 = s.get("acc_pw", ""), s.get("acc_pw2", "")
    s["acc_pw"] = s["acc_pw2"] = ""
    if pw != pw2:
        s["acc_err"] = "两次输入的密码不一致"
        return
    _run(f"已重设账户 {name} 的密码", "set_password", name, pw)


@guarded
def _set_levels() -> None:
    raw = ss().get("acc_levels", "")
    _run("已保存访问级别", "set_access_levels", [x for x in re.split(r"[,，、\s]+", raw) if x])


run_page(body)
