"""审计日志 (admins): who did what, when, from where; filtered, exported as CSV; how long lines
are kept; whether the log is intact.

Targets and details hold what users typed (queries, file names): shown in a table only.
"""

from __future__ import annotations

from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import current_kb_dir, get_kb, guarded, md_literal, run_page, ss
from yuanwen.errors import YuanwenError
from yuanwen.library import ACTION_LABELS, Library
from yuanwen.models import AuditEntry

OUTCOME_LABELS = {"ok": "成功", "denied": "拒绝", "failed": "失败"}
DEFAULT_LIMIT = 500


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("审计日志")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    s = ss()
    if s.get("aud_msg"):
        st.success(md_literal(s.pop("aud_msg")))
    if s.get("aud_err"):
        st.error(md_literal(s.pop("aud_err")))
    c1, c2, c3 = st.columns(3)
    c1.date_input("起始日期", value=None, key="aud_since", format="YYYY-MM-DD")
    c2.date_input("截止日期", value=None, key="aud_until", format="YYYY-MM-DD")
    c3.text_input("账户", key="aud_user", placeholder="全部账户")
    c4, c5 = st.columns([3, 1])
    c4.multiselect("操作", list(ACTION_LABELS), key="aud_actions", placeholder="全部操作",
                   format_func=lambda a: ACTION_LABELS.get(a, a))
    c5.number_input("最多显示", min_value=10, max_value=100000, step=100, value=DEFAULT_LIMIT, key="aud_limit")
    since, until = s.get("aud_since"), s.get("aud_until")
    try:
        with h.lock:
            entries = h.kb.audit_log(since=_day(since), until=_day(until),
                                     user=(s.get("aud_user") or "").strip() or None,
                                     actions=list(s.get("aud_actions") or []),
                                     limit=int(s.get("aud_limit") or DEFAULT_LIMIT))
            bad = h.kb.verify_audit()
            days = h.kb.audit_retention()
    except YuanwenError as exc:
        st.error(md_literal(str(exc)))
        return {}
    if bad:
        st.error("审计日志不完整：以下记录在程序之外被改动或删除（编号）："
                 + "、".join(map(str, bad[:50])) + ("……" if len(bad) > 50 else "") + "。请保全现场并报告安全管理员。")
    else:
        st.success("日志完整：所有记录均未被改动或删除。", icon=":material/verified:")
    st.caption(f"共 {len(entries)} 条（最新的在前；时间为协调世界时 UTC，北京时间 = UTC + 8 小时）")
    if entries:
        st.dataframe(_table(entries), hide_index=True)
    st.download_button("导出 CSV", key="aud_csv", mime="text/csv", file_name="审计日志.csv",
                       data=partial(_csv, h.kb, h.lock, entries), disabled=not entries)

    st.divider()
    st.subheader("保存期限")
    st.text(f"审计日志保存 {days} 天，更早的记录自动删除。")
    if s.get("aud_keep_shown") != days:
        s["aud_keep_shown"] = s["aud_keep"] = days
    k1, k2 = st.columns([3, 1], vertical_alignment="bottom")
    k1.number_input("保存天数", min_value=30, max_value=36500, step=30, key="aud_keep",
                    help="《网络安全法》要求网络日志留存不少于六个月（180 天）；缩短后，更早的记录立即删除")
    k2.button("保存期限", key="aud_keep_go", on_click=_set_retention)
    return {}


def _day(value: date | None) -> str | None:
    return value.isoformat() if isinstance(value, date) else None


def _table(entries: list[AuditEntry]) -> dict[str, list[Any]]:
    return {
        "编号": [e.id for e in entries],
        "时间（UTC）": [e.ts for e in entries],
        "账户": [e.account for e in entries],
        "客户端地址": [e.client for e in entries],
        "操作": [ACTION_LABELS.get(e.action, e.action) for e in entries],
        "对象": [e.target for e in entries],
        "结果": [OUTCOME_LABELS.get(e.outcome, e.outcome) for e in entries],
        "详情": ["；".join(f"{k}={v}" for k, v in sorted(e.detail.items())) for e in entries],
    }


def _csv(lib: Library, lock: Any, entries: list[AuditEntry]) -> bytes:
    """The CSV, made when the button is clicked (the export is audited then)."""
    with lock:
        return lib.audit_csv(entries)


@guarded
def _set_retention() -> None:
    s = ss()
    h = get_kb(current_kb_dir(), quiet=True)
    if h is None:
        return
    days = int(s.get("aud_keep") or 0)
    try:
        with h.lock:
            gone = h.kb.set_audit_retention(days)
    except YuanwenError as exc:
        s["aud_err"] = str(exc)
        return
    s["aud_msg"] = f"审计日志改为保存 {days} 天" + (f"，已删除更早的 {gone} 条记录" if gone else "")


run_page(body)
