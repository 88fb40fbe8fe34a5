"""The app with accounts (issue 15): login, pages by role, access levels on every read path in
the app, the audit log of app actions, logout, idle timeout, disabled accounts, and the guard
that serves only instructions on a network address while there are no accounts.

A knowledge base with the mini corpus (公开) and one 内部 document; accounts reader1 (公开),
editor1 (内部), admin1 (内部). Driven with streamlit.testing's AppTest, as tests/test_app.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from pages_app import common as app_common
from pages_app import login as app_login
from yuanwen.library import SHARED_PREFIX, open_kb
from yuanwen.models import StudyPack

from .conftest import ROOT, FakeEmbedder  # noqa: F401  (registers the "fake" embedder)

MINI = ROOT / "tests" / "fixtures" / "mini"
APP = str(ROOT / "app.py")
PW = "correct-horse-1"
SECRET_TITLE = "关于防汛物资储备库巡查情况的内部通报"
SECRET_TERM = "储备库巡查"
SECRET_SENTENCE = "储备库巡查发现部分救生衣已超过使用年限，须在七月十日前全部更换"
SECRET_TEXT = (
    f"{SECRET_TITLE}\n"
    "各区应急管理局：\n"
    f"近期开展了防汛物资{SECRET_TERM}工作。{SECRET_SENTENCE}。\n"
    "气象、水务部门要加强雨情水情监测，及时发布预警信息。遇有强降雨时，要提前转移危险区域群众。\n"
    f"各区要把{SECRET_TERM}结果纳入防汛责任考核，确保责任到人。\n"
)
HOSTILE_QUERY = "[点我](http://x) **粗体** <script>alert(1)</script>"


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, backend) -> Path:
    base = tmp_path_factory.mktemp("accountskb")
    inner = base / "inner"
    inner.mkdir()
    (inner / "patrol.txt").write_text(SECRET_TEXT, encoding="utf-8")
    kb = base / "kb"
    lib = open_kb(kb, embedder="fake", readonly=False)
    try:
        assert not lib.ingest([MINI]).failed
        assert not lib.ingest([inner], access="内部").failed
        lib.add_account("admin1", "admin", PW, "内部")
        lib.add_account("reader1", "reader", PW, "公开")
        lib.add_account("editor1", "editor", PW, "内部")
        lib.add_account("locked1", "reader", PW, "公开")
        lib.add_account("temp1", "reader", PW, "公开")
    finally:
        lib.close()
    return kb


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def lib_of(kb: Path):
    return open_kb(kb, readonly=True)


def login(at: AppTest, name: str, password: str = PW) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_pw").input(password)
    return ok(at.button(key="login_go").click().run())


def logged_in_as(at: AppTest) -> str | None:
    actor = at.session_state[app_common.ACTOR_KEY] if app_common.ACTOR_KEY in at.session_state else None  # noqa: SIM401  (no .get on AppTest's state)
    return actor.name if actor is not None else None


def as_user(app, name: str, params: dict | None = None) -> AppTest:
    at = ok(app(params))
    assert at.text_input(key="login_name") is not None  # the login form, before anything else
    login(at, name)
    assert logged_in_as(at) == name, [e.value for e in at.error]
    return at


def goto(at: AppTest, slug: str) -> AppTest:
    return ok(at.switch_page(f"pages_app/{app_common.PAGES[slug][1]}").run())


def page_shown(at: AppTest) -> str:
    return at.header[0].value


def secret_id(kb: Path) -> int:
    lib = lib_of(kb)
    try:
        return next(d.id for d in lib.documents() if d.title == SECRET_TITLE)
    finally:
        lib.close()


def audit(kb: Path, **kw) -> list:
    lib = lib_of(kb)
    try:
        return lib.audit_log(**kw)
    finally:
        lib.close()


def shown_text(at: AppTest) -> str:
    parts = []
    for kind in ("text", "markdown", "caption", "error", "info", "warning", "success", "code", "html",
                 "header", "subheader", "title"):
        parts += [str(e.value) for e in at.get(kind)]
    for kind in ("selectbox", "multiselect"):
        for w in at.get(kind):
            parts += [str(o) for o in w.options]
    return "\n".join(parts)


# -- logging in --------------------------------------------------------------------------------
def test_shared_kb_shows_only_the_login_form(app):
    at = ok(app({"q": SECRET_TERM}))
    assert at.text_input(key="login_name").label == "账户名"
    assert at.text_input(key="login_pw").label == "密码"
    assert at.button(key="login_go").label == "登录"
    assert not at.header and "search_res" not in at.session_state  # no page ran
    assert SECRET_TITLE not in shown_text(at)


def test_wrong_password_is_an_error_and_audited_then_the_right_one_logs_in(app, kb_dir):
    at = ok(app())
    login(at, "reader1", "wrong-password-x")
    assert logged_in_as(at) is None
    assert any("账户名或密码不正确" in e.value for e in at.error)
    failed = audit(kb_dir, user="reader1", actions=["login_failed"])
    assert failed and failed[0].client == "127.0.0.1" and failed[0].outcome == "failed"
    login(at, "reader1")
    assert logged_in_as(at) == "reader1"
    assert page_shown(at) == "检索"
    assert any("当前账户：reader1" in c.value and "读者" in c.value and "公开" in c.value
               for c in at.sidebar.caption)
    assert at.sidebar.button(key="logout").label == "退出登录"
    assert audit(kb_dir, user="reader1", actions=["login"])[0].client == "127.0.0.1"


def test_five_failures_lock_the_account(app):
    at = ok(app())
    for _ in range(5):
        login(at, "locked1", "wrong-password-x")
    login(at, "locked1")  # the right password, too late
    assert logged_in_as(at) is None
    assert any("登录失败次数过多" in e.value for e in at.error)


# -- pages by role -----------------------------------------------------------------------------
def test_pages_by_role(kb_dir):
    from app import allowed_pages

    lib = lib_of(kb_dir)
    try:
        def pages(name):
            return allowed_pages("shared", lib.actor_for(name, "127.0.0.1"))
        assert pages("reader1") == ["search", "quote", "docs", "excerpts", "timeline", "pack"]
        assert pages("editor1") == ["search", "quote", "docs", "excerpts", "timeline", "pack", "kb"]
        assert pages("admin1") == [*pages("editor1"), "accounts", "audit"]
        assert "audit" not in allowed_pages("desktop", None) and "kb" in allowed_pages("desktop", None)
    finally:
        lib.close()


@pytest.mark.parametrize("slug", ["kb", "accounts", "audit"])
def test_a_reader_never_gets_the_pages_of_other_roles(app, slug):
    at = as_user(app, "reader1")
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        goto(at, slug)  # not even registered: its address opens the default page (see test_e2e)
    at = as_user(app, "reader1", {"page": slug})  # the old-style address
    assert page_shown(at) == "检索"


def test_an_editor_gets_the_kb_page_not_the_accounts_page(app):
    at = as_user(app, "editor1")
    goto(at, "kb")
    assert page_shown(at) == "知识库"
    assert at.selectbox(key="up_access").label == "访问级别"
    assert at.selectbox(key="up_access").options == ["公开", "内部"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        goto(at, "accounts")


def test_an_admin_gets_every_page(app):
    at = as_user(app, "admin1")
    for slug in app_common.PAGES:
        goto(at, slug)
        assert page_shown(at) == app_common.PAGES[slug][0]


# -- access levels on every read path ----------------------------------------------------------
@pytest.mark.parametrize("name, sees", [("reader1", False), ("editor1", True)])
def test_every_read_path_in_the_app_follows_the_clearance(app, kb_dir, name, sees):
    # 检索
    at = as_user(app, name, {"q": SECRET_TERM, "mode": "keyword"})
    titles = {h.document.title for h in at.session_state["search_res"].hits}
    assert (SECRET_TITLE in titles) == sees
    assert (SECRET_TITLE in shown_text(at)) == sees
    # 引文核对
    goto(at, "quote")
    at.text_area(key="q_text").input(SECRET_SENTENCE)
    ok(at.button(key="q_go").click().run())
    assert (SECRET_TITLE in shown_text(at)) == sees
    assert any("未找到" in m.value for m in at.markdown) != sees
    # 文档: the list, and the document by its address
    goto(at, "docs")
    assert (SECRET_TITLE in shown_text(at)) == sees
    at2 = as_user(app, name, {"page": "docs", "doc": str(secret_id(kb_dir))})
    assert (SECRET_SENTENCE in shown_text(at2)) == sees
    if sees:
        assert any("访问级别：内部" in t.value for t in at2.text)
    # 相关论述 of the notice's passage that the secret document repeats
    lib = lib_of(kb_dir)
    try:
        notice = next(d for d in lib.documents() if d.title.startswith("市人民政府办公室关于做好汛期"))
        pid = next(p.id for p in lib.document_passages(notice.id) if "转移危险区域群众" in p.text)
    finally:
        lib.close()
    at3 = as_user(app, name, {"page": "docs", "doc": str(notice.id)})
    at3.session_state["doc_focus"] = (notice.id, None, None)
    at3.text_input(key="doc_sel").input(str(pid))
    ok(at3.run())
    assert (SECRET_TITLE in shown_text(at3)) == sees
    # 论述摘编
    goto(at, "excerpts")
    at.text_input(key="ex_q").input(SECRET_TERM)
    ok(at.button(key="ex_go").click().run())
    assert (SECRET_TITLE in shown_text(at)) == sees
    # 提法演变
    goto(at, "timeline")
    at.text_input(key="tl_q").input(SECRET_TERM)
    ok(at.button(key="tl_go").click().run())
    assert (SECRET_TITLE in shown_text(at)) == sees
    # every one of them is in the audit log, with the client's address
    acts = {e.action for e in audit(kb_dir, user=name) if e.client == "127.0.0.1"}
    assert {"login", "search", "quote", "view", "excerpts", "timeline"} <= acts


def test_a_shared_pack_is_exported_without_what_the_reader_may_not_read(app, kb_dir, download):
    lib = open_kb(kb_dir, readonly=True)
    try:
        editor = lib.actor_for("editor1", "127.0.0.1")
        hits = editor.search(SECRET_TERM, mode="keyword").hits
        secret = next(h for h in hits if h.document.title == SECRET_TITLE)
        public = editor.search("防汛责任", mode="keyword").hits[0]
        assert public.document.access == "公开"
        pack = editor.add_to_pack(StudyPack(title="防汛学习"), [public.passage.id, secret.passage.id])
        editor.save_pack(SHARED_PREFIX + "防汛学习", pack)
    finally:
        lib.close()
    for name, sees in (("reader1", False), ("editor1", True)):
        at = as_user(app, name, {"page": "pack", "pack": SHARED_PREFIX + "防汛学习"})
        assert page_shown(at) == "学习材料汇编" and at.session_state["pack_name"] == SHARED_PREFIX + "防汛学习"
        assert (SECRET_SENTENCE[:12] in shown_text(at)) == sees
        md = next(b for b in at.get("download_button") if b.proto.label.startswith("导出 Markdown"))
        text = download(md)[0].decode("utf-8")
        assert public.passage.text.split("\n")[0] in text
        assert (SECRET_SENTENCE[:12] in text) == sees
        exported = audit(kb_dir, user=name, actions=["export"])
        assert exported and exported[0].detail["format"] == "md"
    # a reader may not change a shared pack: the page says so
    at = as_user(app, "reader1", {"page": "pack", "pack": SHARED_PREFIX + "防汛学习"})
    at.text_input(key="pk_title").input("改个标题").run()
    assert any("编辑" in e.value for e in ok(at).error)


# -- editors: access level and deletion of a document ------------------------------------------
def test_an_editor_changes_a_documents_level_and_the_reader_loses_it(app, kb_dir):
    lib = lib_of(kb_dir)
    try:
        law = next(d for d in lib.documents() if d.title == "某市安全生产条例")
    finally:
        lib.close()
    at = as_user(app, "reader1", {"page": "docs", "doc": str(law.id)})
    assert not [b for b in at.button if b.key == "doc_access_go"]  # readers cannot
    ed = as_user(app, "editor1", {"page": "docs", "doc": str(law.id)})
    ed.selectbox(key=f"doc_access_{law.id}").set_value("内部")
    ok(ed.button(key="doc_access_go").click().run())
    try:
        assert any("访问级别：内部" in t.value for t in ed.text)
        at = as_user(app, "reader1", {"page": "docs"})
        assert "某市安全生产条例" not in shown_text(at)
    finally:
        ed.selectbox(key=f"doc_access_{law.id}").set_value("公开")
        ok(ed.button(key="doc_access_go").click().run())
    assert [e.detail.get("new") for e in audit(kb_dir, user="editor1", actions=["set_access"])][:2] == ["公开", "内部"]


# -- admins: accounts and the audit log ----------------------------------------------------------
def test_admin_adds_an_account_and_reads_the_audit_log(app, kb_dir):
    at = as_user(app, "reader1", {"q": HOSTILE_QUERY})  # a query with Markdown and HTML in it
    at = as_user(app, "admin1")
    goto(at, "accounts")
    assert list(at.dataframe[0].value["账户"]) == ["admin1", "editor1", "locked1", "reader1", "temp1"]
    at.text_input(key="acc_new_name").input("reader2")
    at.selectbox(key="acc_new_role").set_value("reader")
    at.text_input(key="acc_new_pw").input(PW)
    at.text_input(key="acc_new_pw2").input(PW + "x")
    ok(at.button(key="acc_add").click().run())
    assert any("两次输入的密码不一致" in e.value for e in at.error)
    at.text_input(key="acc_new_name").input("reader2")
    at.text_input(key="acc_new_pw").input(PW)
    at.text_input(key="acc_new_pw2").input(PW)
    ok(at.button(key="acc_add").click().run())
    assert "reader2" in list(at.dataframe[0].value["账户"])
    assert audit(kb_dir, user="admin1", actions=["account_add"])[0].target == "reader2"

    goto(at, "audit")
    assert any("日志完整" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert HOSTILE_QUERY in list(table["对象"])  # shown as data, in a table
    assert "127.0.0.1" in list(table["客户端地址"])
    everything = shown_text(at)
    assert "](http://x)" not in everything and "<script>" not in everything
    at.multiselect(key="aud_actions").set_value(["login_failed"]).run()
    assert set(ok(at).dataframe[0].value["操作"]) == {"登录失败"}
    assert any("审计日志保存 180 天" in t.value for t in at.text)


def test_every_page_shows_user_strings_literally(app, kb_dir):
    """As an admin, on every page: the hostile query (in the audit log, the search box) is
    never rendered as Markdown or HTML."""
    as_user(app, "reader1", {"q": HOSTILE_QUERY})
    at = as_user(app, "admin1", {"q": HOSTILE_QUERY})
    for slug in app_common.PAGES:
        goto(at, slug)
        for m in [*at.markdown, *at.caption, *at.error, *at.info, *at.warning, *at.success]:
            assert "](http://x)" not in m.value and "<script>" not in m.value, (slug, m.value)
        for h in at.get("html"):
            assert "<script>alert(1)" not in h.value, slug


# -- the session ends --------------------------------------------------------------------------
def test_logout(app, kb_dir):
    at = as_user(app, "reader1")
    ok(at.sidebar.button(key="logout").click().run())
    assert logged_in_as(at) is None
    assert at.text_input(key="login_name") is not None and not at.header
    assert any("已退出登录" in w.value for w in at.warning)
    assert audit(kb_dir, user="reader1", actions=["logout"])


def test_idle_timeout(app, kb_dir):
    at = as_user(app, "reader1")
    at.session_state[app_login.LAST_KEY] = time.time() - app_login.IDLE_SECONDS - 60
    ok(at.run())
    assert logged_in_as(at) is None and not at.header
    assert any(app_login.IDLE_MESSAGE in w.value for w in at.warning)
    # a session used within the half hour goes on
    at = as_user(app, "reader1")
    at.session_state[app_login.LAST_KEY] = time.time() - app_login.IDLE_SECONDS + 60
    assert logged_in_as(ok(at.run())) == "reader1"


def test_a_disabled_account_is_logged_out_and_a_role_change_applies(app, kb_dir):
    at = as_user(app, "temp1")
    lib = open_kb(kb_dir, readonly=True)
    try:
        lib.update_account("temp1", role="editor")
        ok(at.run())
        goto(at, "kb")
        assert page_shown(at) == "知识库"  # the new role, without logging in again
        lib.update_account("temp1", role="reader", disabled=True)
        ok(at.run())
        assert logged_in_as(at) is None and not at.header
        assert any("停用" in w.value for w in at.warning)
        login(at, "temp1")
        assert logged_in_as(at) is None and any("已停用" in e.value for e in at.error)
    finally:
        lib.update_account("temp1", disabled=False)
        lib.close()


# -- desktop mode and the guard ------------------------------------------------------------------
@pytest.fixture(scope="module")
def desktop_kb(tmp_path_factory, backend) -> Path:
    kb = tmp_path_factory.mktemp("desktopkb") / "kb"
    lib = open_kb(kb, embedder="fake", readonly=False)
    try:
        assert not lib.ingest([MINI]).failed
    finally:
        lib.close()
    return kb


def test_desktop_mode_needs_no_login(app, desktop_kb):
    at = ok(app({"q": "防汛", "mode": "keyword"}, kb=desktop_kb))
    assert page_shown(at) == "检索" and at.session_state["search_res"].hits
    assert not [w for w in at.text_input if w.key == "login_name"]
    assert not [b for b in at.sidebar.button if b.key == "logout"]


@pytest.mark.parametrize("address", ["0.0.0.0", ""])
def test_on_a_network_address_without_accounts_only_instructions(app, desktop_kb, address):
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", address)
    try:
        at = ok(app({"q": "防汛", "page": "docs"}, kb=desktop_kb))
    finally:
        st_config.set_option("server.address", before)
    assert "没有账户" in at.warning[0].value
    assert "yuanwen user add 管理员名 --role admin --password-stdin --kb" in at.code[0].value
    assert not at.header and not at.text_input and not at.button and not at.sidebar.children
    assert "search_res" not in at.session_state
    text = shown_text(at)
    assert "安全生产" not in text and "防汛" not in text and str(desktop_kb) not in text


def test_on_a_network_address_with_accounts_the_login_form(app, kb_dir):
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = ok(app(kb=kb_dir))
        assert at.text_input(key="login_name") is not None
        login(at, "reader1")
        assert page_shown(at) == "检索"
    finally:
        st_config.set_option("server.address", before)


@pytest.mark.parametrize("host, local", [
    ("127.0.0.1:8501", True), ("localhost:8501", True), ("[::1]:8501", True), ("localhost", True),
    ("10.0.0.5:8501", False), ("kb.example.org", False), ("[fe80::1]:8501", False),
])
def test_host_header_names(host, local):
    assert (app_login._host_part(host) in app_login.LOOPBACK_HOSTS) == local
