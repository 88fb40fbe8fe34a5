"""Who uses the app: desktop or shared mode, the login form (and single sign-on through the
office's identity provider), the session's account on every run, logging out.

Desktop mode (no login; the machine's own user) only while the knowledge base has no accounts,
single sign-on is not configured, the server listens on loopback and the request itself comes
from this machine. A knowledge base with accounts (or with single sign-on configured) is shared:
every page needs a login. Anything else (no accounts, yet reachable from the network) shows how
to create the first account and nothing more.

Not a page: the entry point (``app.py``) calls these before any page runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from pages_app.common import (
    ACTOR_KEY,
    DESKTOP,
    IDLE_SECONDS,
    LAST_KEY,
    MODE_KEY,
    PAGES,
    KBHandle,
    base_kb,
    current_kb_dir,
    guarded,
    md_literal,
    session_actor,
    ss,
)
from yuanwen.errors import YuanwenError
from yuanwen.library import ROLE_LABELS, Library

SHARED = "shared"
EXPOSED = "exposed"  # no accounts, yet reachable from the network: instructions only
IDLE_MESSAGE = "长时间未操作，已自动退出，请重新登录"
NOTICE_KEY = "auth_notice"  # why the session was logged out, shown on the login form
NEXT_KEY = "auth_next"  # the page to open after login
OIDC_TRIED_KEY = "auth_oidc_tried"  # single sign-on mapped to an account once per session
OIDC_BUTTON = "使用单位统一身份认证登录"
AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Host")


# -- where the request comes from ---------------------------------------------------------------
def client_address() -> str:
    """The client's address as the server saw it (a proxy on this machine passes it on in
    X-Forwarded-For); a direct connection over loopback reads as 127.0.0.1."""
    ip = st.context.ip_address
    return ip if isinstance(ip, str) and ip else "127.0.0.1"


def server_on_loopback() -> bool:
    """Whether the server listens on this machine only (an empty address: all interfaces)."""
    address = str(st.get_option("server.address") or "").strip().lower().strip("[]")
    return address in LOOPBACK_HOSTS


def _host_part(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8501
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def request_is_local() -> bool:
    """Whether this session's request came straight from this machine: no proxy headers, the
    Host it asked for is a loopback name, and its address (when known) is loopback."""
    headers = st.context.headers
    if any(headers.get(h) for h in PROXY_HEADERS):
        return False
    host = headers.get("Host")
    if host and _host_part(host) not in LOOPBACK_HOSTS:
        return False
    # A proxy on this machine may pass neither X-Forwarded-For nor the Host the browser asked
    # for (nginx's defaults); the browser's Origin still names the address it opened.
    origin = headers.get("Origin")
    if origin and (urlsplit(origin).hostname or "") not in LOOPBACK_HOSTS:
        return False
    ip = st.context.ip_address
    return not (isinstance(ip, str) and ip and ip not in ("127.0.0.1", "::1"))


# -- single sign-on settings (secrets.toml) -------------------------------------------------------
def _secret(key: str) -> Any:
    """A top-level table of the app's secrets, or None (no secrets file raises in Streamlit)."""
    try:
        return st.secrets.get(key)
    except Exception:  # noqa: BLE001  (no or unreadable secrets file: nothing configured)
        return None


def oidc_configured() -> bool:
    """Whether single sign-on is configured (an ``[auth]`` table in the app's secrets)."""
    return _secret("auth") is not None


def oidc_missing() -> list[str]:
    """The settings single sign-on needs that the ``[auth]`` table lacks."""
    auth = _secret("auth") or {}
    return [k for k in AUTH_KEYS if not str(auth.get(k, "") or "").strip()]


def oidc_mapping() -> dict[str, Any]:
    """How claims give the role and clearance: ``[yuanwen.oidc]`` in the secrets (see
    docs/deploy.md), else the defaults."""
    table = _secret("yuanwen")
    oidc = table.get("oidc") if isinstance(table, Mapping) else None
    return _plain(oidc) if isinstance(oidc, Mapping) else {}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def oidc_logged_in() -> bool:
    """Whether the browser holds the identity provider's login (``st.user``)."""
    try:
        return bool(st.user.get("is_logged_in", False))
    except Exception:  # noqa: BLE001  (single sign-on not set up)
        return False


# -- the mode -----------------------------------------------------------------------------------
def access_mode() -> tuple[str, KBHandle | None]:
    """DESKTOP, SHARED or EXPOSED for this run, and the knowledge base (None when there is
    none yet)."""
    h = base_kb(current_kb_dir(), quiet=True)
    shared = False
    if h is not None:
        with h.lock:
            shared = h.kb.shared()
    if shared or oidc_configured():
        mode = SHARED
    elif server_on_loopback() and request_is_local():
        mode = DESKTOP
    else:
        mode = EXPOSED
    ss()[MODE_KEY] = mode
    if mode != SHARED:
        ss().pop(ACTOR_KEY, None)  # accounts removed meanwhile: nobody is logged in any more
    return mode, h


def show_exposed() -> None:
    """The only thing served on a network address while the knowledge base has no accounts."""
    st.title("原文 · 政策文件知识库")
    st.warning("本应用可从网络访问，但知识库还没有账户。为保护知识库中的文件，在建立账户之前不提供任何功能。")
    st.markdown("**请在服务器上建立第一个管理员账户：**")
    st.code("yuanwen user add 管理员名 --role admin --password-stdin --kb 知识库文件夹", language="bash")
    # the folder is not named here: no server paths to whoever reaches the address
    st.markdown("知识库文件夹即启动本应用时 --kb 所指的文件夹。在提示后输入密码（至少 10 个字符），"
                "然后刷新本页，用这个账户登录。"
                "其他账户可由管理员登录后在「账户」页面建立。")
    st.caption("只在本机使用（不需要账户）时，请用 make run 启动，或加参数 --server.address 127.0.0.1。"
               "部署说明见 docs/deploy.md。")


# -- logging in ---------------------------------------------------------------------------------
def session_view(h: KBHandle) -> Library | None:
    """On every run of a shared app: the logged-in account as it is now (role and clearance
    changed since login apply at once), or None after logging the session out (idle for
    30 minutes, account disabled or removed) or when nobody is logged in."""
    s = ss()
    actor = session_actor()
    if actor is None:
        if oidc_configured() and oidc_logged_in() and not s.get(OIDC_TRIED_KEY):
            _login_oidc(h)
            actor = session_actor()
        if actor is None:
            return None
    with h.lock:
        view = h.kb.for_actor(actor)
        now = time.time()
        if now - s.get(LAST_KEY, now) > IDLE_SECONDS:
            _end(view, IDLE_MESSAGE)
            return None
        try:
            fresh = view.still_valid()
        except YuanwenError as exc:
            st.error(md_literal(str(exc)))
            return None
    if fresh is None:
        _end(None, "账户已被停用或删除，已退出登录；如有疑问请联系管理员")
        return None
    s[ACTOR_KEY] = fresh.actor
    s[LAST_KEY] = now
    return fresh


def _login_oidc(h: KBHandle) -> None:
    s = ss()
    s[OIDC_TRIED_KEY] = True
    try:
        with h.lock:
            view = h.kb.login_oidc(st.user.to_dict(), client_address(), oidc_mapping())
    except YuanwenError as exc:
        s[NOTICE_KEY] = str(exc)
        return
    _start(view)


def _start(view: Library) -> None:
    s = ss()
    for key in [k for k in s if not str(k).startswith("auth_")]:  # nothing of another account's session
        del s[key]
    s[ACTOR_KEY] = view.actor
    s[LAST_KEY] = time.time()
    s.pop(NOTICE_KEY, None)
    wanted = s.pop(NEXT_KEY, None)
    if wanted in PAGES:  # the page whose address was opened: shown when the role allows it
        s["switch_to"] = wanted
        s["switch_query"] = {k: st.query_params.get_all(k) for k in st.query_params}


def _remember_page() -> None:
    """The page whose address the browser opened (``/docs?doc=3``), to go on to after login."""
    path = urlsplit(st.context.url or "").path.rstrip("/")
    slug = path.rsplit("/", 1)[-1]
    if slug in PAGES:
        ss()[NEXT_KEY] = slug


def _end(view: Library | None, notice: str | None) -> None:
    """Log the session out: audited (when the account still exists), the session emptied;
    single sign-on users leave the identity provider's login too."""
    actor = session_actor()
    if view is not None:
        try:
            view.logout()
        except YuanwenError:
            pass  # logged out all the same
    for key in [k for k in ss() if k != MODE_KEY]:
        del ss()[key]
    if notice:
        ss()[NOTICE_KEY] = notice
    if actor is not None and actor.via == "oidc":
        ss()[OIDC_TRIED_KEY] = True  # not back in through the cookie before st.logout clears it
        st.logout()


@guarded
def _login(h: KBHandle) -> None:
    s = ss()
    name, password = s.get("login_name", ""), s.get("login_pw", "")
    s["login_pw"] = ""
    try:
        with h.lock:
            view = h.kb.login(name, password, client_address())
    except YuanwenError as exc:  # LoginError, or the knowledge base cannot be read
        s["login_error"] = str(exc)
        return
    _start(view)


def show_login(h: KBHandle | None) -> None:
    """The login form (and the single sign-on button when it is configured)."""
    s = ss()
    _remember_page()
    _, mid, _ = st.columns([1, 2, 1])
    with mid:
        st.title("原文 · 政策文件知识库")
        st.caption("本知识库设有账户，请先登录。")
        if s.get(NOTICE_KEY):
            st.warning(md_literal(s[NOTICE_KEY]))
        if h is None:
            st.error(md_literal(f"知识库无法打开：{current_kb_dir().name}；请联系管理员"))
            return
        with st.form("login_form"):
            st.text_input("账户名", key="login_name", autocomplete="username")
            st.text_input("密码", type="password", key="login_pw", autocomplete="current-password")
            st.form_submit_button("登录", type="primary", key="login_go", on_click=_login, args=(h,))
        if s.get("login_error"):
            st.error(md_literal(s.pop("login_error")))
        if oidc_configured():
            missing = oidc_missing()
            if missing:
                st.error("统一身份认证配置不完整：secrets.toml 的 [auth] 中缺少 "
                         + "、".join(missing) + "；请管理员补全（见 docs/deploy.md）。")
            elif oidc_logged_in():  # signed in there, but refused here (the notice says why)
                if st.button("退出统一身份认证", key="login_oidc_out", help="换一个单位账号登录"):
                    st.logout()
            elif st.button(OIDC_BUTTON, key="login_oidc"):
                st.login()


# -- the sidebar --------------------------------------------------------------------------------
def account_sidebar(view: Library) -> None:
    """Who is logged in, and 退出登录."""
    a = view.actor
    with st.sidebar:
        st.caption(md_literal(f"当前账户：{a.name} · {ROLE_LABELS.get(a.role, a.role)} · 可阅：{a.clearance}"))
        st.button("退出登录", key="logout", on_click=_logout_clicked)


@guarded
def _logout_clicked() -> None:
    h = base_kb(current_kb_dir(), quiet=True)
    actor = session_actor()
    view = h.kb.for_actor(actor) if h is not None and actor is not None else None
    if view is not None:
        with h.lock:  # type: ignore[union-attr]
            _end(view, "已退出登录")
    else:
        _end(None, "已退出登录")
