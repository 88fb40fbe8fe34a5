"""What every page of the app shares: the knowledge base handle, session state, the URL,
the error-id wrapper, and safe ways to show text.

Safety: document text never goes through Markdown. It is shown with ``st.text``/``st.code``,
or HTML-escaped piece by piece before the app's own markup (``<mark>``, diff colours) is put
around it and handed to ``st.html`` (which sanitises once more). Text that must go into an
element that always renders Markdown (``st.error``, ``st.info``...) goes through
:func:`md_literal` first.
"""

from __future__ import annotations

import argparse
import functools
import html
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from yuanwen.config import resolve_kb_dir
from yuanwen.errors import AccessDenied, PackConflictError, PackNotFoundError, UsageError, YuanwenError, record_fault
from yuanwen.library import HTML_DIFF, MAX_UPLOAD_MB, Library, confidence_pct, mark_terms, render_match
from yuanwen.models import Actor, Hit, QuoteMatch, SavedPack, StudyPack


# -- the pages: slug -> (title, file, icon); the slug is the page's URL path ------------------
HERE = Path(__file__).resolve().parent
PAGES: dict[str, tuple[str, str, str]] = {
    "search": ("检索", "search_page.py", ":material/search:"),
    "quote": ("引文核对", "quote_page.py", ":material/format_quote:"),
    "docs": ("文档", "documents_page.py", ":material/description:"),
    "excerpts": ("论述摘编", "excerpts_page.py", ":material/format_list_bulleted:"),
    "timeline": ("提法演变", "timeline_page.py", ":material/timeline:"),
    "pack": ("学习材料汇编", "pack_page.py", ":material/library_books:"),
    "kb": ("知识库", "kb_page.py", ":material/database:"),
    "accounts": ("账户", "accounts_page.py", ":material/manage_accounts:"),
    "audit": ("审计日志", "audit_page.py", ":material/policy:"),
}
# What the acting account must be allowed to do (``Library.can``) to see each page; the
# navigation lists only those pages, so another one's address leads to the default page.
PAGE_PERMISSIONS: dict[str, str] = {
    "search": "search", "quote": "search", "docs": "read", "excerpts": "search",
    "timeline": "search", "pack": "packs", "kb": "upload", "accounts": "accounts", "audit": "audit",
}
DEFAULT_PAGE = "search"
MODES = {"综合": "hybrid", "语义": "semantic", "关键词": "keyword"}
MODE_LABELS = {v: k for k, v in MODES.items()}
STYLES = {"脚注格式": "footnote", "GB/T 7714": "gbt7714"}
VERDICT_COLOURS = {"exact": "green", "close": "orange", "not_found": "gray"}
ERROR_LOG = "app-errors.log"  # in the knowledge base folder: tracebacks under their error ids
DEFAULT_K = 10
ALL_YEARS = "全部年份"
# Keys of widgets whose values must survive while their page is not shown.
PERSISTENT_KEYS = ("s_q", "s_mode", "s_types", "s_issuer", "s_since", "s_until", "s_k", "s_understand",
                   "q_text", "d_types", "d_issuer", "d_year", "d_pick", "style", "d_scan_show")

CSS = """<style>
.yw-passage { white-space: pre-wrap; line-height: 1.9; font-size: 1.02rem; }
.yw-passage mark { background: #ffe58f; padding: 0 1px; }
.yw-doc .yw-passage { padding: .35rem .6rem; border-radius: .4rem; }
.yw-focus { background: #fff7d6; border-left: 4px solid #f08c00; }
.yw-gap { white-space: pre-wrap; font-weight: 600; line-height: 1.9; }
.yw-title { font-weight: 700; font-size: 1.08rem; }
.yw-missing { color: #c92a2a; background: #ffe3e3; text-decoration: underline wavy #c92a2a; }
.yw-added { color: #1864ab; background: #d0ebff; text-decoration: line-through; }
.yw-changed { color: #d9480f; background: #ffe8cc; }
.yw-changed .yw-quote { color: #868e96; font-size: .85em; }
.yw-outline a { text-decoration: none; display: block; line-height: 1.7; font-size: .92rem;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
[data-testid="stColumn"]:has(.st-key-yw_outline) { position: sticky; top: 3.75rem; align-self: flex-start; }
.st-key-yw_outline nav { max-height: calc(100vh - 9rem); overflow-y: auto; padding-right: .3rem; }
.yw-doc .yw-passage { cursor: pointer; }
.yw-doc .yw-passage:hover { background: #f8f9fa; }
.yw-selected, .yw-doc .yw-selected:hover { background: #e7f5ff; border-left: 4px solid #1c7ed6; }
.yw-h { font-weight: 700; }
.yw-h1 { font-size: 1.15rem; }
.yw-h2 { font-size: 1.07rem; }
.st-key-yw_pick_box { display: none; }
.yw-doc .yw-ocr { border-left: 3px dotted #adb5bd; }
.yw-ocr-tag { color: #868e96; font-size: .8rem; margin: .4rem 0 0 .6rem; }
.yw-scan-text { white-space: pre-wrap; line-height: 1.9; font-size: 1rem; }
.yw-scan-text mark { background: #e7f5ff; }
[data-testid="stNavSectionHeader"] { font-size: 1.75rem; font-weight: 700; color: inherit; }
/* The file uploader's own text is English ("Upload", "50MB per file • TXT…"); the label above it
   already gives the types and the size limit. */
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p { font-size: 0; }
[data-testid="stFileUploaderDropzone"] button [data-testid="stMarkdownContainer"] p::after {
  content: "选择文件"; font-size: .875rem; }
[data-testid="stFileUploaderDropzoneInstructions"] span { font-size: 0; }
[data-testid="stFileUploaderDropzoneInstructions"] span::after {
  content: "或把文件拖到这里"; font-size: .875rem; }
</style>"""


def page_file(slug: str) -> Path:
    """The file of the page ``slug``."""
    return HERE / PAGES[slug][1]


# -- pure helpers (importable without running the app) ----------------------------------------
def kb_dir_from_argv(argv: list[str]) -> Path:
    """The knowledge base folder: ``--kb DIR`` after ``--``, else ``$YUANWEN_KB``, else ./yuanwen_kb."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--kb")
    args, _ = parser.parse_known_args(argv)
    return resolve_kb_dir(args.kb)


def current_kb_dir() -> Path:
    """The knowledge base folder this server was started on."""
    return kb_dir_from_argv(sys.argv[1:])


_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:$<>&])")


def md_literal(text: str | None) -> str:
    """``text`` with every Markdown-significant ASCII character backslash-escaped, for the
    places that always render Markdown (st.error, st.info, ...): shown exactly as written."""
    return _MD_PUNCT.sub(r"\\\1", text or "")


def esc(text: str | None) -> str:
    """HTML-escaped text (quotes too)."""
    return html.escape(text or "", quote=True)


def highlight(text: str, terms: list[str]) -> str:
    """``text`` HTML-escaped, with ``terms`` (matched width-insensitively) wrapped in <mark>."""
    return mark_terms(text, terms, "<mark>", "</mark>", esc)


def diff_html(match: QuoteMatch) -> str:
    """The original sentence(s) of a quote match, HTML-escaped, with the differences from the
    quote marked (classes ``yw-missing``, ``yw-added``, ``yw-changed``; see
    :data:`search.present.HTML_DIFF`); an exact match marks the matched span."""
    return render_match(match, HTML_DIFF, esc, mark="<mark>{text}</mark>")


def ocr_caption(confidence: float | None, page: int | None = None) -> str:
    """The line under a citation of text recognised by OCR."""
    where = f"原件第 {page} 页，" if page else ""
    return f"识别文本（{where}识别置信度 {confidence_pct(confidence)}），引用前请核对原件"


def split_issuers(text: str) -> list[str]:
    """发文机关/讲话人 entered as one line: several may be given, separated by commas or spaces."""
    return [s for s in re.split(r"[,，、;；\s]+", text or "") if s]


# -- unexpected errors: a message and an error id for the user, the traceback in the log ------
def report_fault(exc: BaseException, kb: Path | None = None) -> str:
    """Log ``exc`` with its traceback under a new short error id, to stderr and to
    ``<kb>/app-errors.log`` when the knowledge base folder exists; returns the id."""
    log = Path(kb) / ERROR_LOG if kb is not None and Path(kb).is_dir() else None
    eid, entry, _ = record_fault(exc, log, "原文 app")
    print(entry, file=sys.stderr, flush=True)
    return eid


def fault_message(eid: str) -> str:
    return (f"出错了（错误编号 {eid}）。请刷新页面后重试；"
            "如果问题反复出现，请把错误编号告诉管理员。")


def show_fault(exc: BaseException) -> None:
    """Show an unexpected error as its error id (the traceback goes to the log)."""
    st.error(fault_message(report_fault(exc, current_kb_dir())))


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A widget callback that, instead of failing the page, logs an unexpected error and
    leaves its error id for the page to show."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AccessDenied as exc:  # not a fault: the account may not (any more), said plainly
            st.toast(md_literal(str(exc)))
            return None
        except Exception as exc:  # noqa: BLE001  (shown as an error id, logged in full)
            ss()["fault"] = report_fault(exc, current_kb_dir())
            return None
    return wrapper


def enforce_limits() -> None:
    """Settings that must hold however the server was started (its config file is read from
    the folder it was started in): the upload cap, checked by the server on every upload,
    and no built-in CSV export of tables (it would copy cells verbatim, formulas included;
    the app offers its own neutralised CSV downloads)."""
    from streamlit import config as st_config

    if st_config.get_option("server.maxUploadSize") > MAX_UPLOAD_MB:
        st_config.set_option("server.maxUploadSize", MAX_UPLOAD_MB, "app.py")
    if not st_config.get_option("client.disableDataExport"):
        st.set_option("client.disableDataExport", True)


# -- the knowledge base, once per process -----------------------------------------------------
@dataclass
class KBHandle:
    """The read-only knowledge base (the façade, :class:`yuanwen.library.Library`) shared by
    every session, and a lock to take turns on it."""

    kb: Library
    lock: threading.RLock


@st.cache_resource(show_spinner="正在打开知识库…")
def open_kb(kb: str) -> KBHandle:
    """The knowledge base at ``kb``, opened read-only (its embedder loads on first use)."""
    from yuanwen.library import open_kb as open_library

    lib = open_library(Path(kb), readonly=True)
    lib.kb  # noqa: B018 - open it now, so a damaged knowledge base is said here
    return KBHandle(lib, threading.RLock())


def kb_exists(kb: Path) -> bool:
    from yuanwen.library import open_kb as open_library

    return open_library(kb).exists()


def get_kb(kb: Path, quiet: bool = False) -> KBHandle | None:
    """The cached knowledge base as the session's account sees it (a view of it acting as
    that account: its clearance filters every read, its role limits what it may do, its
    actions are audited), or None after telling the user why it cannot be opened. In desktop
    mode, the knowledge base itself (the machine's own user)."""
    actor = session_actor()
    if actor is None and ss().get(MODE_KEY) != DESKTOP and get_script_run_ctx() is not None:
        # never the machine's own user for a session that has not logged in (see app.py); a
        # page imported outside a server (no session, nobody served) runs as the machine's user
        raise AccessDenied("请先登录")
    h = base_kb(kb, quiet)
    if h is None or actor is None:
        return h
    # Widget callbacks run before the entry point checks the session (app.py): the account is
    # taken as it is now (role, clearance, disabled), and a session idle too long acts no more.
    with h.lock:
        view = h.kb.for_actor(actor).still_valid()
    now = time.time()
    if view is None or now - ss().get(LAST_KEY, now) > IDLE_SECONDS:
        raise AccessDenied("登录已失效，请重新登录")
    return KBHandle(view, h.lock)


def base_kb(kb: Path, quiet: bool = False) -> KBHandle | None:
    """The cached knowledge base itself, acting as the machine's own user: for the entry
    point (the mode, logins) only; pages use :func:`get_kb`."""
    if not kb_exists(kb):
        if not quiet:
            show_missing_kb(kb)
        return None
    try:
        return open_kb(str(kb.resolve()))
    except YuanwenError as exc:
        if not quiet:
            st.error(md_literal(str(exc)))
        return None


# -- who uses the app: set by the entry point (app.py, pages_app/login.py) on every run -------
ACTOR_KEY = "auth_actor"  # the logged-in account (yuanwen.models.Actor), None in desktop mode
LAST_KEY = "auth_last"  # time.time() of the session's last run (every run is an interaction)
IDLE_SECONDS = 30 * 60  # a session idle this long is logged out
MODE_KEY = "auth_mode"  # DESKTOP, or "shared" (logins required)
DESKTOP = "desktop"


def session_actor() -> Actor | None:
    """The account this session acts as (None: desktop mode, or not logged in)."""
    return ss().get(ACTOR_KEY)


def show_missing_kb(kb: Path) -> None:
    st.info(
        f"还没有知识库：{md_literal(str(kb))}\n\n"
        "建立知识库有两种方式：\n"
        f"1. 在命令行运行 `yuanwen ingest <文件夹> --kb {kb}`，导入一个文件夹（含子文件夹）里的文件；\n"
        "2. 打开左侧的「知识库」页面，用上传框上传文件并导入。\n\n"
        "导入完成后刷新本页即可检索。"
    )


# -- session state and the URL ----------------------------------------------------------------
def ss() -> Any:
    return st.session_state


def init_state() -> None:
    """Defaults on a session's first run, read from the URL (so links can be shared)."""
    s = ss()
    for k in PERSISTENT_KEYS:  # keep values of widgets whose page is not shown
        if k in s:
            s[k] = s[k]
    sync_pack()
    if s.get("_init"):
        return
    s["_init"] = True
    qp = st.query_params
    s["style"] = "脚注格式"
    s["upload_gen"] = 0
    s["s_q"] = qp.get("q", "")
    s["s_mode"] = MODE_LABELS.get(qp.get("mode", "hybrid"), "综合")
    s["s_types"] = qp.get_all("type")
    s["s_issuer"] = qp.get("issuer", "")
    s["s_since"] = qp.get("since", "")
    s["s_until"] = qp.get("until", "")
    try:
        s["s_k"] = max(1, min(100, int(qp.get("k", DEFAULT_K))))
    except ValueError:
        s["s_k"] = DEFAULT_K
    s["s_understand"] = qp.get("understand", "1") != "0"
    if s["s_q"].strip():
        submit_search()
    s["q_text"] = qp.get("text", "")
    s["quote_pending"] = bool(s["q_text"].strip())
    if qp.get("doc", "").isdigit():
        scan = qp.get("scan", "")  # a page of the original to show beside its recognised text
        goto_doc(int(qp["doc"]), None, None, switch=False, page=int(scan) if scan.isdigit() else None)


def style() -> str:
    return STYLES.get(ss().get("style", "脚注格式"), "footnote")


def sync_query_params(params: dict[str, Any]) -> None:
    """Make the URL's query say ``params`` (written only when it changes)."""
    want = {k: (v if isinstance(v, list) else [v]) for k, v in params.items() if v not in ("", [], None)}
    have = {k: st.query_params.get_all(k) for k in st.query_params}
    if want != have:
        st.query_params.from_dict(want)


def run_page(body: Callable[[Path], dict[str, Any]]) -> None:
    """Run a page's ``body`` on the knowledge base folder and make the URL say what it returns,
    and on every page which saved pack the session is on (``pack=``), so that a reload (a new
    session) goes on with the same pack. An unexpected error is shown as an error id by the
    entry point (``app.py``)."""
    params = dict(body(current_kb_dir()) or {})
    params.setdefault("pack", ss().get("pack_name") or "")
    sync_query_params(params)


def passage_card(hit: Hit, caption: str = "") -> None:
    """One hit's passage as the 论述摘编 and 提法演变 pages draw it: a caption line (where it
    is in its document), its text with the matched terms marked, its source in the session's
    citation style."""
    if caption:
        st.text(caption)
    st.html(f'<div class="yw-passage">{highlight(hit.passage.text, hit.matched_terms)}</div>')
    st.text(f"出处：{hit.citation.format(style()) if hit.citation else hit.document.title}")
    if hit.citation is not None and hit.citation.recognised:
        st.caption(ocr_caption(hit.citation.ocr_confidence, hit.passage.page))


def view_button(hit: Hit, key: str, where: Any = None) -> None:
    """The 在文中查看 button of a hit (in ``where``, a column, when given): its document opened
    at the passage."""
    (where or st).button("在文中查看", key=key, on_click=goto_doc,
                         args=(hit.document.id, hit.passage.start, None))


def add_to_pack(item: Any) -> None:
    """Add a pack item to the session's pack (saved at once); a passage already there is said
    to be, and not added twice."""
    sync_pack()  # another window may have added it meanwhile
    if Library.find_in_pack(ss()["pack"], item.passage_id) is not None:
        st.toast("这一段已在汇编中，没有重复加入")
        return
    if edit_current_pack("add_item", item):
        st.toast(f"已加入学习材料汇编“{ss()['pack_name']}”")
    else:
        st.toast(ss().pop("pack_error", "没有加入"))


# -- the session's study pack: saved in <kb>/packs/ as it is edited ----------------------------
# Edits that mean the same on a pack changed elsewhere meanwhile: applied to the saved pack as
# it is on disk. The others address items by position and are refused when it changed.
_SAFE_EDITS = frozenset({"add_item", "set_title", "add_section", "remove_passages"})


def pack_library() -> Library:
    """The façade on this server's knowledge base folder as the session's account, for saved
    packs (an account's own packs and the shared ones; in desktop mode ``<kb>/packs``). Its
    methods take turns with the pages on the knowledge base's lock. Before a knowledge base
    exists, a façade that opens no database."""
    from yuanwen.library import open_kb as open_library

    h = get_kb(current_kb_dir(), quiet=True)
    if h is None:
        return open_library(current_kb_dir(), actor=session_actor())
    return _Locked(h.kb, h.lock)  # type: ignore[return-value]


class _Locked:
    """A library whose method calls hold ``lock`` (the lock the pages take on the knowledge
    base), also when called later, e.g. by a download button's deferred data."""

    def __init__(self, lib: Library, lock: threading.RLock) -> None:
        self._lib, self._lock = lib, lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._lib, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)
        return locked


def set_current_pack(saved: SavedPack | None) -> None:
    """Make ``saved`` (None: a new, unsaved, empty pack) the session's pack."""
    s = ss()
    if saved is None:
        s["pack"], s["pack_name"], s["pack_rev"] = StudyPack(), None, 0
    else:
        s["pack"], s["pack_name"], s["pack_rev"] = saved.pack, saved.name, saved.revision
    s["_pack_saved"] = s["pack"]
    for key in ("pk_title", "pk_subtitle"):  # the pack page's title fields follow the pack
        s.pop(key, None)


def sync_pack() -> None:
    """On every run, keep the session's pack and the saved one the same. A session's first run
    opens the pack the URL names (``?pack=``; one deleted meanwhile is made again, under that
    name, by the first passage added), else the most recently saved one; later runs
    save a pack that was put in the session without being saved, read the pack again when it
    was saved elsewhere (another window, the CLI), and take up a pack saved elsewhere while the
    session's own is new and empty."""
    s = ss()
    lib = pack_library()
    try:
        if "_pack_saved" not in s:
            want = st.query_params.get("pack")
            if want:
                _open_named(lib, want)
            else:  # no pack named: the most recently saved one, if any
                set_current_pack(next((p for p in lib.packs() if not p.error), None))
        elif s["pack"] is not s["_pack_saved"] and s["pack"] != s["_pack_saved"]:
            commit_pack(s["pack"])
        elif s.get("pack_name"):
            try:
                saved = lib.open_pack(s["pack_name"])
            except UsageError:  # deleted or damaged elsewhere: keep the session's copy on screen
                return
            if saved.revision != s.get("pack_rev"):
                set_current_pack(saved)
        elif not s["pack"].sections:  # a new, empty pack: one saved meanwhile elsewhere is taken up
            packs = [p for p in lib.packs() if not p.error]
            if packs:
                set_current_pack(packs[0])
    except YuanwenError as exc:
        s["pack_error"] = str(exc)


def _open_named(lib: Library, name: str) -> None:
    """A session's first run on an address naming the pack ``name``: that pack, never another
    one. One that is gone stays the session's pack, empty, under its name (the first passage
    added saves it again); one whose file cannot be read too (edits are refused, saying why,
    until it is deleted or mended)."""
    try:
        set_current_pack(lib.open_pack(name))
        return
    except PackNotFoundError:
        ss()["pack_notice"] = f"汇编“{name}”已不在知识库中（可能已在别处删除或改名）；加入段落时将以这个名称重新保存"
    except UsageError as exc:
        ss()["pack_error"] = str(exc)
    set_current_pack(None)
    ss()["pack_name"] = name


def _reload_after_conflict(lib: Library, name: str, exc: PackConflictError) -> None:
    """After a refused save of the session's pack ``name``: show the latest saved version and
    say why; a pack that cannot be opened any more (deleted, damaged) is said so plainly."""
    s = ss()
    try:
        set_current_pack(lib.open_pack(name))
    except YuanwenError as again:
        s["pack_error"] = f"{exc}；而且现在无法重新载入它：{again}"
        return
    s["pack_error"] = f"{exc}（已载入最新内容）"


def commit_pack(pack: StudyPack) -> bool:
    """Save ``pack`` as the session's pack (under a new name when it has none yet); on a
    refusal the reason is left in ``pack_error`` and False returned."""
    s = ss()
    lib = pack_library()
    try:
        name = s.get("pack_name") or lib.free_pack_name()
        rev = s.get("pack_rev") if s.get("pack_name") else None
        set_current_pack(lib.save_pack(name, pack, revision=rev))
        return True
    except PackConflictError as exc:
        _reload_after_conflict(lib, s["pack_name"], exc)
    except YuanwenError as exc:
        s["pack"] = pack
        s["pack_error"] = f"汇编没有保存：{exc}"
    return False


def edit_current_pack(edit: str, *args: Any) -> bool:
    """Apply one pack edit (``Library.PACK_EDITS``) to the session's pack and save it at once.
    Edits in :data:`_SAFE_EDITS` are applied to the pack as saved now; the others are refused
    when it was saved elsewhere since the session read it. A refusal leaves its reason in
    ``pack_error`` and returns False."""
    s = ss()
    name = s.get("pack_name")
    lib = pack_library()
    try:
        if name is None:
            return commit_pack(Library.edit_pack(s["pack"], edit, *args))
        rev = None if edit in _SAFE_EDITS else s.get("pack_rev")
        try:
            saved = lib.edit_saved_pack(name, edit, *args, revision=rev)
        except PackNotFoundError:  # deleted elsewhere meanwhile: saved again from this session's copy
            return commit_pack(Library.edit_pack(s["pack"], edit, *args))
    except PackConflictError as exc:
        _reload_after_conflict(lib, name, exc)
        return False
    except YuanwenError as exc:
        s["pack_error"] = str(exc)
        return False
    set_current_pack(saved)
    return True


# -- callbacks shared by several pages --------------------------------------------------------
@guarded
def submit_search() -> None:
    """Take the search form's values as the search to run (on the 检索 page's next run)."""
    s = ss()
    s["search_req"] = {
        "q": s.get("s_q", ""), "mode": MODES.get(s.get("s_mode", "综合"), "hybrid"),
        "types": list(s.get("s_types") or []), "issuer": s.get("s_issuer", "").strip(),
        "since": s.get("s_since", "").strip(), "until": s.get("s_until", "").strip(),
        "k": int(s.get("s_k") or DEFAULT_K), "understand": bool(s.get("s_understand", True)),
    }
    s["search_pending"] = True


@guarded
def goto_doc(doc_id: int, start: int | None, end: int | None, switch: bool = True,
             page: int | None = None) -> None:
    """Open document ``doc_id`` on the 文档 page, marking ``start``..``end`` when given; with
    ``page``, its original page image is shown beside that page's recognised text."""
    s = ss()
    s["d_scan_req"] = page
    if switch:
        s["switch_to"] = "docs"  # a callback cannot switch pages: the entry point does
    s["d_types"], s["d_issuer"], s["d_year"] = [], "", ALL_YEARS
    s["d_pick"] = doc_id
    s["doc_focus"] = (doc_id, start, end) if start is not None else None
    s["doc_scrolled"] = None
