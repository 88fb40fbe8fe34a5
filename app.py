"""原文 — the Streamlit front end: search, quote check, reading, study packs, the knowledge base.

Start it with ``streamlit run app.py -- --kb DIR`` (else ``$YUANWEN_KB``, else ./yuanwen_kb).
This is the entry point: it lists the pages (one file each under ``pages_app/``) with
``st.navigation``, lays out what every page shares (the sidebar, the session's defaults read
from the URL) and runs the chosen page under the error-id wrapper. The pages only lay out
what the library computes (``search.api``, ``search.quote``, ``search.present``,
``search.pack``, ``search.export``, ``ingest.pipeline``, ``KnowledgeBase``): whatever they
show, the ``yuanwen`` command can compute too. Shared helpers are in ``pages_app/common.py``.

Each page has its own address: ``/`` (检索, with the search in the query: ``/?q=…&mode=…``),
``/quote?text=…``, ``/docs?doc=ID``, ``/pack``, ``/kb``, ``/accounts``, ``/audit``; the older
``/?page=quote&text=…`` form still leads to the same page.

Who may use it is settled first (``pages_app/login.py``): a knowledge base with accounts needs a
login and lists only the pages the account's role may use; one without accounts is served
(without login) only to this machine over loopback, and to anyone else shows only how to create
the first account.
"""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from pages_app.common import (
    CSS,
    DEFAULT_PAGE,
    DESKTOP,
    PAGE_PERMISSIONS,
    PAGES,
    STYLES,
    current_kb_dir,
    enforce_limits,
    fault_message,
    init_state,
    md_literal,
    page_file,
    show_fault,
    ss,
)
from pages_app.login import (
    EXPOSED,
    access_mode,
    account_sidebar,
    session_view,
    show_exposed,
    show_login,
)
from yuanwen.library import Library


def allowed_pages(mode: str, view: Library | None) -> list[str]:
    """The pages the session may use: by the account's role in a shared app; in desktop mode
    all but the audit log (a knowledge base without accounts records nothing)."""
    if view is None:
        return [slug for slug in PAGES if slug != "audit"] if mode == DESKTOP else []
    return [slug for slug in PAGES if view.can(PAGE_PERMISSIONS[slug])]


def navigation(slugs: list[str]) -> StreamlitPage:
    """The pages the session may use, in the sidebar; 检索 at the root address. Only these
    are registered: another page's address opens the default page."""
    pages = [st.Page(page_file(slug), title=PAGES[slug][0], icon=PAGES[slug][2], url_path=slug,
                     default=slug == DEFAULT_PAGE)
             for slug in slugs]
    return st.navigation({"原文": pages})


def switch_if_asked(current: str, slugs: list[str]) -> None:
    """Go to another page when a callback asked for it (``switch_to``, e.g. 在文中查看) or, on
    a session's first run, when an old-style address names one (``?page=docs``)."""
    s = ss()
    target = s.pop("switch_to", None)
    query = s.pop("switch_query", None)  # the page asked for before logging in keeps its query
    if target is None and not s.get("_routed"):
        legacy = st.query_params.get("page")
        if legacy in slugs:
            target = legacy
            query = {k: st.query_params.get_all(k) for k in st.query_params if k != "page"}
    s["_routed"] = True
    if target in slugs and target != current:
        st.switch_page(page_file(target), query_params=query)


def sidebar() -> None:
    from yuanwen.library import Library

    with st.sidebar:
        st.caption("政策文件、讲话与学习材料知识库")
        st.selectbox("引文格式", list(STYLES), key="style",
                     help="复制引文和加入汇编时使用的引文格式")
        name = ss().get("pack_name")
        st.caption(f"汇编{md_literal(f'“{name}”') if name else ''}中已有 {Library.pack_size(ss()['pack'])} 段")
        st.caption(f"知识库：{md_literal(current_kb_dir().name)}")  # no server paths on every page


def main() -> None:
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    st.set_page_config(page_title="原文 · 政策文件知识库", page_icon="📜", layout="wide")
    enforce_limits()
    try:
        mode, h = access_mode()  # before anything else: who may see what
        if mode == EXPOSED:
            show_exposed()
            return
        view = None
        if mode != DESKTOP:
            view = session_view(h) if h is not None else None
            if view is None:
                show_login(h)
                return
        slugs = allowed_pages(mode, view)
        page = navigation(slugs)
        init_state()
        switch_if_asked(page.url_path or DEFAULT_PAGE, slugs)
        st.html(CSS)
        sidebar()
        if view is not None:
            account_sidebar(view)
        if ss().get("fault"):  # left by a widget callback that failed
            st.error(fault_message(ss().pop("fault")))
        page.run()
    except Exception as exc:  # noqa: BLE001  (the user sees an error id; the log has the rest)
        show_fault(exc)


if __name__ == "__main__":
    main()
