"""原文 — the Streamlit front end: search, quote check, reading, study packs, the knowledge base.

Start it with ``streamlit run app.py -- --kb DIR`` (else ``$YUANWEN_KB``, else ./yuanwen_kb).
This is the entry point: it lists the pages (one file each under ``pages_app/``) with
``st.navigation``, lays out what every page shares (the sidebar, the session's defaults read
from the URL) and runs the chosen page under the error-id wrapper. The pages only lay out
what the library computes (``search.api``, ``search.quote``, ``search.present``,
``search.pack``, ``search.export``, ``ingest.pipeline``, ``KnowledgeBase``): whatever they
show, the ``yuanwen`` command can compute too. Shared helpers are in ``pages_app/common.py``.

Each page has its own address: ``/`` (检索, with the search in the query: ``/?q=…&mode=…``),
``/quote?text=…``, ``/docs?doc=ID``, ``/pack``, ``/kb``; the older ``/?page=quote&text=…`` form
still leads to the same page.
"""

from __future__ import annotations

import logging

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from pages_app.common import (
    CSS,
    DEFAULT_PAGE,
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


def navigation() -> StreamlitPage:
    """The pages, in the sidebar; 检索 at the root address."""
    pages = [st.Page(page_file(slug), title=title, icon=icon, url_path=slug,
                     default=slug == DEFAULT_PAGE)
             for slug, (title, _, icon) in PAGES.items()]
    return st.navigation({"原文": pages})


def switch_if_asked(current: str) -> None:
    """Go to another page when a callback asked for it (``switch_to``, e.g. 在文中查看) or, on
    a session's first run, when an old-style address names one (``?page=docs``)."""
    s = ss()
    target = s.pop("switch_to", None)
    query = None
    if target is None and not s.get("_routed"):
        legacy = st.query_params.get("page")
        if legacy in PAGES:
            target = legacy
            query = {k: st.query_params.get_all(k) for k in st.query_params if k != "page"}
    s["_routed"] = True
    if target in PAGES and target != current:
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
        page = navigation()
        init_state()
        switch_if_asked(page.url_path or DEFAULT_PAGE)
        st.html(CSS)
        sidebar()
        if ss().get("fault"):  # left by a widget callback that failed
            st.error(fault_message(ss().pop("fault")))
        page.run()
    except Exception as exc:  # noqa: BLE001  (the user sees an error id; the log has the rest)
        show_fault(exc)


if __name__ == "__main__":
    main()
