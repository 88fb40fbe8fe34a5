"""原文 — the Streamlit front end: search, quote check, reading, study packs, the knowledge base.

Start it with ``streamlit run app.py -- --kb DIR`` (else ``$YUANWEN_KB``, else ./yuanwen_kb).
This file only lays out pages and calls the library (``search.api``, ``search.quote``,
``search.export``, ``search.pack``, ``ingest.pipeline``, ``KnowledgeBase``): whatever it
shows, the ``yuanwen`` command can compute too.

Safety: document text never goes through Markdown. It is shown with ``st.text``/``st.code``,
or HTML-escaped piece by piece before the app's own markup (``<mark>``, diff colours) is put
around it and handed to ``st.html`` (which sanitises once more).
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import os
import re
import secrets
import sys
import threading
import traceback
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import streamlit as st

from yuanwen.config import Config, resolve_kb_dir
from yuanwen.errors import UsageError, YuanwenError
from search.api import highlight_spans
from search.documents import list_documents, outline
from yuanwen.models import Document, Filters, Passage, QuoteMatch, StudyPack

# -- constants -------------------------------------------------------------------------------
PAGES = {"search": "检索", "quote": "引文核对", "docs": "文档", "pack": "学习材料汇编", "kb": "知识库"}
PAGE_SLUGS = {label: slug for slug, label in PAGES.items()}
MODES = {"综合": "hybrid", "语义": "semantic", "关键词": "keyword"}
MODE_LABELS = {v: k for k, v in MODES.items()}
STYLES = {"脚注格式": "footnote", "GB/T 7714": "gbt7714"}
VERDICTS = {  # label, badge colour
    "exact": ("原文一致", "green"),
    "close": ("有出入", "orange"),
    "not_found": ("未找到", "gray"),
}
STATUS_LABELS = {"added": "新增", "updated": "更新", "unchanged": "未变", "duplicate": "重复",
                 "failed": "失败", "pruned": "删除"}
UPLOAD_TYPES = ["txt", "md", "html", "htm", "pdf", "docx"]
MAX_UPLOAD_MB = 50
UPLOAD_DIR = "uploads"
UPLOAD_NAMES = ".names.json"  # in UPLOAD_DIR: saved file name -> the name it was uploaded as
ERROR_LOG = "app-errors.log"  # in the knowledge base folder: tracebacks under their error ids
DEFAULT_K = 10
ALL_YEARS = "全部年份"
# Keys of widgets whose values must survive while their page is not shown.
PERSISTENT_KEYS = ("s_q", "s_mode", "s_types", "s_issuer", "s_since", "s_until", "s_k",
                   "q_text", "d_types", "d_issuer", "d_year", "d_pick", "style")

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
.yw-outline a { text-decoration: none; display: block; line-height: 1.7; }
</style>"""


# -- pure helpers (importable without running the app) ----------------------------------------
def kb_dir_from_argv(argv: list[str]) -> Path:
    """The knowledge base folder: ``--kb DIR`` after ``--``, else ``$YUANWEN_KB``, else ./yuanwen_kb."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--kb")
    args, _ = parser.parse_known_args(argv)
    return resolve_kb_dir(args.kb)


_UNSAFE_CHARS = re.compile(r"[^\w\u3000-\u303f\uff00-\uffef()（）《》〔〕【】\-—·、， .+&#@,=]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_filename(name: str, default: str = "upload") -> str:
    """A file name that is safe to create in one folder: no directory part, no ``..``, no
    control or odd characters (letters, digits, CJK, spaces and common punctuation are kept,
    so a safe name stays as it was uploaded)."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = re.sub(r"[^0-9a-z]", "", ext.lower())[:8]
    stem = _UNSAFE_CHARS.sub("_", stem)
    stem = re.sub(r" +", " ", re.sub(r"_+", "_", stem)).strip("._- ")[:100].strip("._- ") or default
    if stem.upper() in _RESERVED:
        stem = f"_{stem}"
    return f"{stem}.{ext}" if ext else stem


def upload_target(folder: Path, name: str) -> Path:
    """Where an uploaded file called ``name`` is saved: inside ``folder``, never elsewhere."""
    folder = Path(folder)
    target = folder / safe_filename(name)
    if target.resolve().parent != folder.resolve():
        raise UsageError(f"文件名不安全，已拒绝：{name}")
    return target


def _numbered(name: str, n: int) -> str:
    """``name`` with `` (n)`` before its extension: 会议_纪要.txt -> 会议_纪要 (2).txt."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"


def unique_upload_target(folder: Path, name: str, data: bytes, owners: dict[str, str],
                         claimed: set[str]) -> Path:
    """Where the upload ``name`` with bytes ``data`` is saved, so that two different uploads
    never overwrite each other: its safe name when that is free, holds the same bytes, or
    holds an earlier upload of the same ``name`` (an update); else the first free numbered
    name (``会议_纪要 (2).txt``). ``owners`` maps saved names to the names they were uploaded
    as (a file without an entry was uploaded under its own name); ``claimed`` holds the names
    saved earlier in this batch, which only the same bytes may reuse."""
    first = upload_target(folder, name)
    for n in range(1, 10_000):
        target = first if n == 1 else folder / _numbered(first.name, n)
        if target.resolve().parent != folder.resolve():  # a link planted in the folder
            continue
        if not target.exists():
            return target
        same_bytes = target.stat().st_size == len(data) and target.read_bytes() == data
        if same_bytes or (target.name not in claimed and owners.get(target.name, target.name) == name):
            return target
    raise UsageError(f"同名文件过多，已拒绝：{name}")


def display_path(path: str, root: str | None, kb_dir: Path) -> str:
    """Where a document came from, as users see it: relative to the folder it was ingested
    from (``root``), else to the knowledge base's uploads folder, else its parent folder and
    file name. Never the server's absolute path."""
    def parts(p: str) -> list[str]:
        return [x for x in re.split(r"[\\/]", p) if x]

    doc = parts(path)
    bases = [root] if root else []
    bases += [os.path.abspath(kb_dir / UPLOAD_DIR), str(Path(kb_dir, UPLOAD_DIR).resolve())]
    for base in bases:
        b = parts(base)
        if len(doc) > len(b) and doc[: len(b)] == b:
            return "/".join(doc[len(b):])
    return "/".join(doc[-2:])


_MD_PUNCT = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:$<>&])")


def md_literal(text: str | None) -> str:
    """``text`` with every Markdown-significant ASCII character backslash-escaped, for the
    places that always render Markdown (st.error, st.info, ...): shown exactly as written."""
    return _MD_PUNCT.sub(r"\\\1", text or "")


def esc(text: str | None) -> str:
    """HTML-escaped text (quotes too)."""
    return html.escape(text or "", quote=True)


def highlight(text: str, terms: list[str]) -> str:
    """``text`` HTML-escaped, with ``terms`` (matched width-insensitively) wrapped in <mark>.

    Matches are found on the raw text; each piece is escaped on its own and only then is
    markup put between the pieces, so no term can match inside an entity.
    """
    out, pos = [], 0
    for s, e in highlight_spans(text, terms):
        out.append(esc(text[pos:s]))
        out.append(f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    out.append(esc(text[pos:]))
    return "".join(out)


def diff_html(match: QuoteMatch) -> str:
    """The original sentence(s) of a quote match, with the differences from the quote marked.

    missing: in the original, not in the quote (red, wavy underline); added: in the quote,
    not in the original (blue, struck through); changed: the original wording (orange) with
    the quote's wording after it. Exact matches mark the matched span. All text is escaped.
    """
    text = match.text
    a = max(0, match.match_start - match.start)
    b = max(a, min(len(text), match.match_end - match.start))
    parts = [esc(text[:a])]
    if match.exact or not match.diff:
        parts.append(f"<mark>{esc(text[a:b])}</mark>")
    else:
        for op in match.diff:
            if op.kind == "equal":
                parts.append(esc(op.original))
            elif op.kind == "missing":
                parts.append(f'<span class="yw-missing" title="原文有而引文缺">{esc(op.original)}</span>')
            elif op.kind == "added":
                parts.append(f'<span class="yw-added" title="引文多出">{esc(op.quote)}</span>')
            else:
                parts.append(
                    f'<span class="yw-changed" title="引文作：{esc(op.quote)}">{esc(op.original)}'
                    f'<span class="yw-quote">〔引文作“{esc(op.quote)}”〕</span></span>'
                )
    parts.append(esc(text[b:]))
    return "".join(parts)


def split_issuers(text: str) -> list[str]:
    """发文机关/讲话人 entered as one line: several may be given, separated by commas or spaces."""
    return [s for s in re.split(r"[,，、;；\s]+", text or "") if s]


# -- unexpected errors: a message and an error id for the user, the traceback in the log ------
def report_fault(exc: BaseException, kb_dir: Path | None = None) -> str:
    """Log ``exc`` with its traceback under a new short error id, to stderr and to
    ``<kb>/app-errors.log`` when the knowledge base folder exists; returns the id."""
    eid = secrets.token_hex(4)
    entry = (f"--- {datetime.now().isoformat(timespec='seconds')} error {eid}\n"
             + "".join(traceback.format_exception(exc)))
    print(entry, file=sys.stderr, flush=True)
    if kb_dir is not None and Path(kb_dir).is_dir():
        try:
            with open(Path(kb_dir) / ERROR_LOG, "a", encoding="utf-8") as fh:
                fh.write(entry)
        except OSError:
            pass
    return eid


def fault_message(eid: str) -> str:
    return (f"出错了（错误编号 {eid}）。请刷新页面后重试；"
            "如果问题反复出现，请把错误编号告诉管理员。")


def guarded(fn):
    """A widget callback that, instead of failing the page, logs an unexpected error and
    leaves its error id for the page to show."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  (shown as an error id, logged in full)
            ss()["fault"] = report_fault(exc, kb_dir_from_argv(sys.argv[1:]))
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
    """The read-only knowledge base shared by every session, and a lock to take turns on it."""

    kb: Any
    lock: threading.RLock


@st.cache_resource(show_spinner="正在打开知识库…")
def open_kb(kb_dir: str) -> KBHandle:
    """The knowledge base at ``kb_dir``, opened read-only (its embedder loads on first use)."""
    from yuanwen.kb import KnowledgeBase

    return KBHandle(KnowledgeBase(Config(kb_dir=Path(kb_dir)), readonly=True), threading.RLock())


def kb_exists(kb_dir: Path) -> bool:
    from yuanwen.store import DB_NAME

    return (kb_dir / DB_NAME).exists()


def get_kb(kb_dir: Path, quiet: bool = False) -> KBHandle | None:
    """The cached knowledge base, or None after telling the user why it cannot be opened."""
    if not kb_exists(kb_dir):
        if not quiet:
            show_missing_kb(kb_dir)
        return None
    try:
        return open_kb(str(kb_dir.resolve()))
    except YuanwenError as exc:
        if not quiet:
            st.error(md_literal(str(exc)))
        return None


def show_missing_kb(kb_dir: Path) -> None:
    st.info(
        f"还没有知识库：{md_literal(str(kb_dir))}\n\n"
        "建立知识库有两种方式：\n"
        f"1. 在命令行运行 `yuanwen ingest <文件夹> --kb {kb_dir}`，导入一个文件夹（含子文件夹）里的文件；\n"
        "2. 打开左侧的「知识库」页面，用上传框上传文件并导入。\n\n"
        "导入完成后刷新本页即可检索。"
    )


# -- session state ----------------------------------------------------------------------------
def ss() -> Any:
    return st.session_state


def init_state() -> None:
    """Defaults on a session's first run, read from the URL (so links can be shared)."""
    s = ss()
    for k in PERSISTENT_KEYS:  # keep values of widgets whose page is not shown
        if k in s:
            s[k] = s[k]
    if s.get("_init"):
        return
    s["_init"] = True
    qp = st.query_params
    slug = qp.get("page", "search")
    s["nav"] = PAGES.get(slug, slug if slug in PAGE_SLUGS else PAGES["search"])
    s["pack"] = StudyPack()
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
    if s["s_q"].strip():
        _submit_search()
    s["q_text"] = qp.get("text", "")
    s["quote_pending"] = bool(s["q_text"].strip())
    if qp.get("doc", "").isdigit():
        _goto_doc(int(qp["doc"]), None, None, switch=False)


def style() -> str:
    return STYLES.get(ss().get("style", "脚注格式"), "footnote")


def sync_query_params(params: dict[str, str | list[str]]) -> None:
    """Make the URL say ``params`` (written only when it changes)."""
    want = {k: (v if isinstance(v, list) else [v]) for k, v in params.items() if v not in ("", [], None)}
    have = {k: st.query_params.get_all(k) for k in st.query_params}
    if want != have:
        st.query_params.from_dict(want)


def add_to_pack(item) -> None:
    from search import pack as packops

    if packops.find_item(ss()["pack"], item.passage_id) is not None:
        st.toast("这一段已在汇编中")
        return
    ss()["pack"] = packops.add_item(ss()["pack"], item)
    st.toast("已加入学习材料汇编")


# -- callbacks --------------------------------------------------------------------------------
@guarded
def _submit_search() -> None:
    s = ss()
    s["search_req"] = {
        "q": s.get("s_q", ""), "mode": MODES.get(s.get("s_mode", "综合"), "hybrid"),
        "types": list(s.get("s_types") or []), "issuer": s.get("s_issuer", "").strip(),
        "since": s.get("s_since", "").strip(), "until": s.get("s_until", "").strip(),
        "k": int(s.get("s_k") or DEFAULT_K),
    }
    s["search_pending"] = True


@guarded
def _goto_doc(doc_id: int, start: int | None, end: int | None, switch: bool = True) -> None:
    s = ss()
    if switch:
        s["nav"] = PAGES["docs"]
    s["d_types"], s["d_issuer"], s["d_year"] = [], "", ALL_YEARS
    s["d_pick"] = doc_id
    s["doc_focus"] = (doc_id, start, end) if start is not None else None
    s["doc_scrolled"] = None


@guarded
def _add_hit(index: int) -> None:
    from search.export import item_from_hit

    res = ss().get("search_res")
    if res is not None and index < len(res.hits):
        add_to_pack(item_from_hit(res.hits[index], style()))


@guarded
def _pack_op(op: str, *args: Any) -> None:
    """Apply one ``search.pack`` operation to the session's pack; report a refusal."""
    from search import pack as packops

    try:
        ss()["pack"] = getattr(packops, op)(ss()["pack"], *args)
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


# -- page: 检索 -------------------------------------------------------------------------------
def page_search(kb_dir: Path) -> dict[str, Any]:
    st.header("检索")
    h = get_kb(kb_dir)
    if h is None:
        return {}
    with h.lock:
        types = list(h.kb.stats()["by_type"])
    s = ss()
    options = types + [t for t in s.get("s_types") or [] if t not in types]
    with st.form("search_form", border=False):
        st.text_input("检索内容", key="s_q",
                      placeholder="用自然语言提问或输入关键词，如：企业主要负责人的安全生产职责")
        c1, c2, c3 = st.columns([2, 3, 3])
        c1.radio("检索方式", list(MODES), key="s_mode", horizontal=True,
                 help="综合：语义与关键词结合；语义：按意思找；关键词：按字词找")
        c2.multiselect("文种", options, key="s_types", placeholder="全部文种")
        c3.text_input("发文机关/讲话人", key="s_issuer", placeholder="包含即可，多个用逗号分隔")
        c4, c5, c6 = st.columns([3, 3, 2])
        c4.text_input("起始日期", key="s_since", placeholder="如 2018 或 2018-03-01")
        c5.text_input("截止日期", key="s_until", placeholder="如 2022 或 2022-12-31")
        c6.number_input("结果数", min_value=1, max_value=100, step=1, key="s_k")
        st.form_submit_button("检索", type="primary", key="s_go", on_click=_submit_search)

    req = s.get("search_req")
    if req and s.get("search_pending"):
        s["search_pending"] = False
        s["search_res"], s["search_err"] = None, None
        from search.api import search

        filters = Filters(doc_types=req["types"], issuers=split_issuers(req["issuer"]),
                          since=req["since"] or None, until=req["until"] or None)
        first = not s.get("searched_once")
        msg = "正在检索…（首次检索需要加载向量模型，请稍候）" if first else "正在检索…"
        with st.spinner(msg):
            try:
                with h.lock:
                    s["search_res"] = search(h.kb, req["q"], k=req["k"], mode=req["mode"],
                                             filters=filters)
                s["searched_once"] = True
            except YuanwenError as exc:
                s["search_err"] = str(exc)

    if s.get("search_err"):
        st.error(md_literal(s["search_err"]))
    res = s.get("search_res")
    if res is not None:
        if not res.hits:
            st.info("没有找到相关段落。可以换个说法、改用「综合」方式，或放宽筛选条件。")
        else:
            st.caption(f"共 {len(res.hits)} 条，用时 {res.took_ms:.0f} 毫秒")
        for i, hit in enumerate(res.hits):
            render_hit(i, hit)
    params: dict[str, Any] = {"page": "search"}
    if req:
        params.update(q=req["q"], mode=req["mode"], type=req["types"], issuer=req["issuer"],
                      since=req["since"], until=req["until"])
        if req["k"] != DEFAULT_K:
            params["k"] = str(req["k"])
    return params


def render_hit(i: int, hit) -> None:
    from search import pack as packops

    d, p = hit.document, hit.passage
    pid = p.id
    with st.container(border=True):
        st.html(f'<div class="yw-title">{hit.rank}. {esc(d.title)}</div>')
        meta = "　".join(x for x in (d.issuer, d.date, d.doc_type, d.doc_number) if x)
        path = " › ".join(p.heading_path)
        if meta or path:
            st.text("　".join(x for x in (meta, path) if x))
        st.html(f'<div class="yw-passage">{highlight(p.text, hit.matched_terms)}</div>')
        citation = hit.citation.format(style()) if hit.citation else d.title
        c1, c2, c3, _ = st.columns([1, 1, 1, 3])
        with c1.popover("复制引文", key=f"hit_cite_{pid}"):
            st.caption(f"引文（{ss().get('style', '脚注格式')}），点右上角图标复制")
            st.code(citation, language=None, wrap_lines=True)
        c2.button("在文中查看", key=f"hit_view_{pid}", on_click=_goto_doc,
                  args=(d.id, p.start, None))
        in_pack = packops.find_item(ss()["pack"], pid) is not None
        c3.button("已在汇编中" if in_pack else "加入汇编", key=f"hit_add_{pid}",
                  on_click=_add_hit, args=(i,), disabled=in_pack)


# -- page: 引文核对 ---------------------------------------------------------------------------
def page_quote(kb_dir: Path) -> dict[str, Any]:
    st.header("引文核对")
    st.caption("粘贴一段引文（可以是凭记忆写的），查找原文和最早的出处，并标出与原文不同的地方。")
    h = get_kb(kb_dir)
    if h is None:
        return {"page": "quote"}
    st.text_area("引文", key="q_text", height=120,
                 placeholder="如：坚持人民至上、生命至上，把保护人民生命安全摆在首位")
    clicked = st.button("核对", type="primary", key="q_go")
    if clicked or ss().pop("quote_pending", False):
        from search.quote import lookup_quote

        ss()["quote_res"], ss()["quote_err"] = None, None
        with st.spinner("正在查找出处…"):
            try:
                with h.lock:
                    ss()["quote_res"] = lookup_quote(h.kb, ss().get("q_text", ""))
            except YuanwenError as exc:
                ss()["quote_err"] = str(exc)
    if ss().get("quote_err"):
        st.error(md_literal(ss()["quote_err"]))
    res = ss().get("quote_res")
    if res is None:
        return {"page": "quote"}
    label, colour = VERDICTS[res.verdict]
    c1, c2 = st.columns([1, 5])
    with c1:
        st.badge(label, color=colour)
    c2.markdown(f"**结论：{label}**（相似度 {res.similarity:.0f}%）")
    if res.verdict == "not_found":
        st.info("知识库中没有找到这段话的出处。可以到「检索」页用其中的关键词再找找。")
        return {"page": "quote"}
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
            st.button("在文中查看", key=f"quote_view_{i}", on_click=_goto_doc,
                      args=(d.id, m.match_start, m.match_end))
    return {"page": "quote"}


# -- page: 文档 -------------------------------------------------------------------------------
def page_docs(kb_dir: Path) -> dict[str, Any]:
    st.header("文档")
    h = get_kb(kb_dir)
    if h is None:
        return {"page": "docs"}
    with h.lock:
        docs = h.kb.store.documents()
    if not docs:
        st.info("知识库里还没有文档。")
        return {"page": "docs"}
    s = ss()
    types = sorted({d.doc_type for d in docs if d.doc_type})
    years = sorted({str(d.year) for d in docs if d.year}, reverse=True)
    if s.get("d_year") not in [ALL_YEARS, *years]:
        s["d_year"] = ALL_YEARS
    s["d_types"] = [t for t in s.get("d_types") or [] if t in types]
    c1, c2, c3 = st.columns(3)
    c1.multiselect("文种", types, key="d_types", placeholder="全部文种")
    c2.text_input("发文机关/讲话人", key="d_issuer", placeholder="包含即可")
    c3.selectbox("年份", [ALL_YEARS, *years], key="d_year")
    year = None if s["d_year"] == ALL_YEARS else s["d_year"]
    with h.lock:
        shown = list_documents(h.kb, Filters(doc_types=s["d_types"],
                                             issuers=split_issuers(s.get("d_issuer", "")),
                                             since=year, until=year))
    if not shown:
        st.info("没有符合条件的文档。")
        return {"page": "docs"}
    ids = [d.id for d in shown]
    labels = {d.id: "　".join(x for x in (d.title, d.date, d.doc_type) if x) for d in shown}
    if s.get("d_pick") not in ids:
        s["d_pick"] = ids[0]
    st.selectbox(f"文档（{len(shown)} 篇）", ids, key="d_pick", format_func=lambda i: labels[i])
    doc_id = s["d_pick"]
    try:
        with h.lock:
            doc = h.kb.store.get_document(doc_id)
            passages = h.kb.store.document_passages(doc_id)
    except YuanwenError as exc:
        st.error(md_literal(str(exc)))
        return {"page": "docs"}
    render_document(doc, passages, display_path(doc.path, doc.root, kb_dir))
    return {"page": "docs", "doc": str(doc_id)}


def render_document(doc: Document, passages: list[Passage], shown_path: str) -> None:
    from search import pack as packops
    from search.cite import cite

    s = ss()
    st.html(f'<div class="yw-title" style="font-size:1.4rem">{esc(doc.title)}</div>')
    meta = "　".join(x for x in (doc.issuer, doc.date, doc.doc_type, doc.doc_number) if x)
    if meta:
        st.text(meta)
    with st.expander("引用本文"):
        st.code(cite(doc).format(style()), language=None, wrap_lines=True)
        st.text(f"文件：{shown_path}")
    focus = s.get("doc_focus")
    fs, fe = (focus[1], focus[2]) if focus and focus[0] == doc.id else (None, None)
    focus_pid = next((p.id for p in passages if fs is not None and p.start <= fs < p.end), None)

    left, right = st.columns([1, 3], gap="large")
    with left:
        st.markdown("**目录**")
        heads = outline(passages)
        if heads:
            links = "".join(
                f'<a href="#yw-p-{pid}" style="padding-left:{(lvl - 1) * 1.1}em">{esc(t)}</a>'
                for lvl, t, pid in heads
            )
            with st.container(height=min(640, 60 + 28 * len(heads))):
                st.html(f'<nav class="yw-outline">{links}</nav>')
        else:
            st.caption("本文没有分级标题")
    with right:
        with st.container(key="yw_doc", border=False):
            if not passages:
                st.text(doc.text)
            pos = 0
            for p in passages:
                gap = doc.text[pos : p.start]
                if gap.strip():
                    st.html(f'<div class="yw-gap">{esc(gap.strip(chr(10)))}</div>')
                cls = "yw-passage yw-focus" if p.id == focus_pid else "yw-passage"
                if p.id == focus_pid and fe is not None:  # a quote: mark the matched words
                    a, b = fs - p.start, min(p.end, fe) - p.start
                    body = f"{esc(p.text[:a])}<mark>{esc(p.text[a:b])}</mark>{esc(p.text[b:])}"
                else:
                    body = esc(p.text)
                st.html(f'<div class="yw-doc"><div id="yw-p-{p.id}" class="{cls}">{body}</div></div>')
                in_pack = packops.find_item(s["pack"], p.id) is not None
                st.button("已在汇编中" if in_pack else "＋ 加入汇编", key=f"doc_add_{p.id}",
                          type="tertiary", disabled=in_pack, on_click=_add_passage, args=(doc.id, p.id))
                pos = p.end
            tail = doc.text[pos:] if passages else ""
            if tail.strip():
                st.text(tail.strip("\n"))
    if focus_pid is not None and s.get("doc_scrolled") != (doc.id, fs):
        s["doc_scrolled"] = (doc.id, fs)
        st.html(
            "<script>setTimeout(function(){var e=document.getElementById("
            f"'yw-p-{int(focus_pid)}');if(e)e.scrollIntoView({{behavior:'smooth',block:'center'}});}},400);</script>",
            unsafe_allow_javascript=True,
        )


@guarded
def _add_passage(doc_id: int, passage_id: int) -> None:
    from search.pack import item_from_passage

    h = get_kb(kb_dir_from_argv(sys.argv[1:]), quiet=True)
    if h is None:
        return
    with h.lock:
        doc = h.kb.store.get_document(doc_id, with_text=False)
        p = h.kb.store.get_passages([passage_id]).get(passage_id)
    if p is not None:
        add_to_pack(item_from_passage(doc, p, style()))


# -- page: 学习材料汇编 -----------------------------------------------------------------------
def page_pack() -> dict[str, Any]:
    from search import pack as packops
    from search.export import clean_pack, to_docx, to_markdown

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

    n = packops.item_count(pack)
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
    e1.download_button("导出 Word（.docx）", data=to_docx(pack), file_name=f"{fname}.docx",
                       mime="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                       key="pk_docx", disabled=n == 0, type="primary")
    e2.download_button("导出 Markdown（.md）", data=to_markdown(pack).encode("utf-8"),
                       file_name=f"{fname}.md", mime="text/markdown", key="pk_md", disabled=n == 0)
    e3.download_button("保存汇编（.json，可再载入）",
                       data=json.dumps(clean_pack(pack).to_dict(), ensure_ascii=False,
                                       indent=1).encode("utf-8"),
                       file_name=f"{fname}.json", mime="application/json", key="pk_json",
                       disabled=n == 0)
    loaded = st.file_uploader("载入保存过的汇编（.json）", type=["json"], key=f"pk_load_{s.get('pk_gen', 0)}")
    if loaded is not None:
        try:
            s["pack"] = packops.load_pack(loaded.getvalue(), loaded.name)
        except YuanwenError as exc:  # the current pack is kept
            st.error(md_literal(str(exc)))
        else:
            s["pk_gen"] = s.get("pk_gen", 0) + 1
            for k in ("pk_title", "pk_subtitle"):
                s.pop(k, None)
            st.rerun()
    return {"page": "pack"}


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


# -- page: 知识库 -----------------------------------------------------------------------------
def page_kb(kb_dir: Path) -> dict[str, Any]:
    st.header("知识库")
    st.text(f"位置：{kb_dir.resolve()}")
    h = get_kb(kb_dir)
    if h is not None:
        with h.lock:
            stats = h.kb.stats()
        share = stats["embedded"] / stats["passages"] if stats["passages"] else 0.0
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("文档", f"{stats['documents']} 篇")
        c2.metric("段落", f"{stats['passages']} 段")
        c3.metric("已向量化", f"{share:.0%}", help=f"{stats['embedded']} 段已向量化，{stats['pending']} 段待向量化")
        c4.metric("向量模型", stats["embedder"] or "尚未向量化")
        if stats["pending"]:
            st.warning(f"有 {stats['pending']} 段尚未向量化，语义检索暂时找不到它们；"
                       f"可运行 yuanwen ingest <文件夹> --kb {md_literal(str(kb_dir))} 补完。")
        t1, t2, t3 = st.columns(3)
        groups = (("文种", "by_type"), ("年份", "by_year"), ("发文机关/讲话人", "by_issuer"))
        for col, (label, key) in zip((t1, t2, t3), groups):
            rows = list(stats[key].items())
            col.markdown(f"**按{label}**")
            if rows:
                col.dataframe({label: [str(k) for k, _ in rows], "篇数": [v for _, v in rows]},
                              hide_index=True, height=min(400, 38 + 35 * len(rows)))
            else:
                col.caption("（无）")
        from search.export import to_csv

        st.download_button(
            "导出统计（CSV）", key="kb_csv", mime="text/csv", file_name="知识库统计.csv",
            data=to_csv(["分类", "名称", "篇数"],
                        [(label, str(k), v) for label, key in groups for k, v in stats[key].items()]),
        )
        st.caption(f"数据库 {stats['db_bytes'] / 1048576:.1f} MB，向量索引 {stats['index_type'] or '-'} "
                   f"{stats['index_bytes'] / 1048576:.1f} MB，关键词索引 {stats['keyword_index_bytes'] / 1048576:.1f} MB")

    st.divider()
    st.subheader("上传文件")
    st.caption(f"支持 {'、'.join(UPLOAD_TYPES)}，每个文件不超过 {MAX_UPLOAD_MB} MB。扫描版 PDF 需先做文字识别（OCR）。"
               f"文件保存在知识库的 {UPLOAD_DIR}/ 文件夹中；同一文件再次上传会更新原来的版本，"
               "不同的文件即使名字相同或相近也不会互相覆盖（另存为“名称 (2)”）。")
    gen = ss().get("upload_gen", 0)
    files = st.file_uploader(f"选择文件（可多选，单个不超过 {MAX_UPLOAD_MB} MB）", type=UPLOAD_TYPES,
                             accept_multiple_files=True, max_upload_size=MAX_UPLOAD_MB,
                             key=f"upload_{gen}")
    if st.button("导入知识库", type="primary", key="up_go", disabled=not files):
        ss()["ingest_result"] = run_upload_ingest(kb_dir, files or [])
        ss()["upload_gen"] = gen + 1
        st.rerun()
    result = ss().get("ingest_result")
    if result:
        render_ingest_result(result)
    return {"page": "kb"}


def save_uploads(kb_dir: Path, files: list) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """Save uploaded files under ``<kb>/uploads/`` with safe names; two different uploads
    never overwrite each other (see :func:`unique_upload_target`).

    Returns (original name, saved path) for each saved file, and (name, reason) for refusals.
    """
    from filelock import FileLock

    folder = kb_dir / UPLOAD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    saved, refused = [], []
    names_file = folder / UPLOAD_NAMES
    with FileLock(str(folder / ".upload.lock"), timeout=120):  # other sessions and processes
        try:
            owners = json.loads(names_file.read_text(encoding="utf-8"))
            owners = owners if isinstance(owners, dict) else {}
        except (OSError, ValueError):
            owners = {}
        claimed: set[str] = set()
        for f in files:
            if f.size > MAX_UPLOAD_MB * 1048576:
                refused.append((f.name, f"文件过大（{f.size / 1048576:.1f} MB，上限 {MAX_UPLOAD_MB} MB）"))
                continue
            if Path(safe_filename(f.name)).suffix.lstrip(".") not in UPLOAD_TYPES:
                refused.append((f.name, f"不支持的文件类型；请上传 {'、'.join(UPLOAD_TYPES)} 文件"))
                continue
            data = f.getvalue()
            try:
                target = unique_upload_target(folder, f.name, data, owners, claimed)
            except UsageError as exc:
                refused.append((f.name, str(exc)))
                continue
            if not (target.exists() and target.read_bytes() == data):
                tmp = target.with_name(f".{target.name}.part")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            owners[target.name] = f.name
            claimed.add(target.name)
            saved.append((f.name, target))
        tmp = names_file.with_name(names_file.name + ".part")
        tmp.write_text(json.dumps(owners, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, names_file)
    return saved, refused


def run_upload_ingest(kb_dir: Path, files: list) -> dict[str, Any]:
    """Save the uploads and ingest them; returns what to show (rows, summary, errors)."""
    from ingest.pipeline import ingest

    result: dict[str, Any] = {"rows": [], "summary": "", "error": None}
    with st.status("正在导入…", expanded=True) as status:
        st.write(f"保存 {len(files)} 个文件…")
        saved, refused = save_uploads(kb_dir, files)
        for name, reason in refused:
            result["rows"].append({"文件": name, "结果": "失败", "段落": 0, "说明": reason})
        if saved:
            st.write("读取、分段、入库、向量化…（大文件或首次加载向量模型需要一些时间）")
            names = {str(p.resolve()): name for name, p in saved}
            renamed = {str(p.resolve()): f"已有同名的另一文件，另存为 {p.name}"
                       for name, p in saved if p.name != safe_filename(name)}
            try:
                report = ingest([p for _, p in saved], Config(kb_dir=kb_dir), progress=False)
            except YuanwenError as exc:
                result["error"] = str(exc)
                status.update(label="导入失败", state="error")
            else:
                for o in report.outcomes:
                    result["rows"].append({
                        "文件": names.get(o.path, Path(o.path).name),
                        "结果": STATUS_LABELS.get(o.status, o.status),
                        "段落": o.passages,
                        "说明": "；".join(x for x in (renamed.get(o.path), o.reason, *o.warnings) if x),
                    })
                c = report.count
                result["summary"] = (
                    f"完成：新增 {c('added')} 篇，更新 {c('updated')} 篇，未变 {c('unchanged')} 篇，"
                    f"重复 {c('duplicate')} 篇，失败 {c('failed') + len(refused)} 篇；"
                    f"入库 {report.passages_stored} 段，向量化 {report.passages_embedded} 段"
                )
        if result["error"] is None:
            status.update(label="导入完成", state="complete")
    open_kb.clear()  # the next page load opens the knowledge base afresh and sees the new documents
    return result


def render_ingest_result(result: dict[str, Any]) -> None:
    st.markdown("**上次导入的结果**")
    if result.get("error"):
        st.error(md_literal(result["error"]))
    if result.get("summary"):
        st.success(result["summary"])
    for row in result["rows"]:
        if row["结果"] == "失败":
            st.error(md_literal(f"失败：{row['文件']}：{row['说明']}"))
    if result["rows"]:
        from search.export import to_csv

        cols = ("文件", "结果", "段落", "说明")
        st.dataframe({k: [r[k] for r in result["rows"]] for k in cols}, hide_index=True)
        st.download_button("导出导入结果（CSV）", key="up_csv", mime="text/csv", file_name="导入结果.csv",
                           data=to_csv(cols, [[r[k] for k in cols] for r in result["rows"]]))


# -- the app ----------------------------------------------------------------------------------
def sidebar(kb_dir: Path) -> str:
    from search import pack as packops

    with st.sidebar:
        st.title("原文")
        st.caption("政策文件、讲话与学习材料知识库")
        page = st.radio("页面", list(PAGE_SLUGS), key="nav", label_visibility="collapsed")
        st.divider()
        st.selectbox("引文格式", list(STYLES), key="style",
                     help="复制引文和加入汇编时使用的引文格式")
        st.caption(f"汇编中已有 {packops.item_count(ss()['pack'])} 段")
        st.caption(f"知识库：{md_literal(kb_dir.name)}")  # no server paths on every page
    return page


def main() -> None:
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    st.set_page_config(page_title="原文 · 政策文件知识库", page_icon="📜", layout="wide")
    kb_dir = kb_dir_from_argv(sys.argv[1:])
    enforce_limits()
    try:
        run_page(kb_dir)
    except Exception as exc:  # noqa: BLE001  (the user sees an error id; the log has the rest)
        st.error(fault_message(report_fault(exc, kb_dir)))


def run_page(kb_dir: Path) -> None:
    """The sidebar and the chosen page."""
    init_state()
    st.html(CSS)
    page = sidebar(kb_dir)
    if ss().get("fault"):  # left by a widget callback that failed
        st.error(fault_message(ss().pop("fault")))
    slug = PAGE_SLUGS.get(page, "search")
    if slug == "search":
        params = page_search(kb_dir) or {"page": "search"}
    elif slug == "quote":
        params = page_quote(kb_dir)
    elif slug == "docs":
        params = page_docs(kb_dir)
    elif slug == "pack":
        params = page_pack()
    else:
        params = page_kb(kb_dir)
    sync_query_params(params)


if __name__ == "__main__":
    main()
