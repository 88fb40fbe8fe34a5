"""End to end: accounts in the real app, in headless Chromium.

A knowledge base of the bundled sample plus one 内部 document; accounts reader1 (公开), editor1
(内部) and admin1. The login page comes first; a reader never sees the 内部 document (search,
quote check), never reaches the pages of editors and admins by their addresses; an editor finds
it; the admin reads everyone's actions in the audit log. Single sign-on logs in for real through
Streamlit's ``st.login`` against a local OpenID provider (``tests/oidc_mock.py``).

Screenshots go to ``$YUANWEN_SCREENSHOT_DIR`` (default: the test's temporary folder).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.test_e2e import ROOT, _browser, _free_port, _need_browser, _wait_for_text

pytestmark = pytest.mark.slow  # real browsers against real servers

PASSWORD = "correct-horse-1"
INNER_TITLE = "关于防汛物资储备库巡查情况的内部通报"
INNER_SENTENCE = "储备库巡查发现部分救生衣已超过使用年限。"
INNER_TEXT = f"{INNER_TITLE}\n各区应急管理局：\n近期开展了防汛物资储备库巡查工作。{INNER_SENTENCE}\n"
QUERY = "防汛物资储备库巡查 救生衣"
SEARCH_DONE = ("用时", "没有找到相关段落")  # either closes a finished search


# -- the knowledge base and the server ---------------------------------------------------------------
def _make_kb(tmp: Path, accounts: bool = True) -> Path:
    """The sample corpus (default embedder) and one 内部 document; accounts when asked."""
    from yuanwen.library import open_kb

    kb, inner = tmp / "kb", tmp / "inner"
    inner.mkdir()
    (inner / "巡查通报.txt").write_text(INNER_TEXT, encoding="utf-8")
    lib = open_kb(kb, readonly=False)
    try:
        assert not lib.ingest([ROOT / "corpus"]).failed
        assert not lib.ingest([inner], access="内部").failed
        if accounts:
            lib.add_account("admin1", "admin", PASSWORD, "内部")
            lib.add_account("reader1", "reader", PASSWORD, "公开")
            lib.add_account("editor1", "editor", PASSWORD, "内部")
    finally:
        lib.close()
    return kb


@contextmanager
def _serve(kb: Path, port: int, *streamlit_args: str) -> Iterator[str]:
    """The app on ``kb`` at ``http://127.0.0.1:PORT`` (``streamlit_args`` added to the command)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         *streamlit_args, "--", "--kb", str(kb)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    try:
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    proc.kill()
                    pytest.fail("streamlit did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the browser ------------------------------------------------------------------------------------
def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("YUANWEN_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _shot(driver, folder: Path, name: str) -> None:
    time.sleep(1)  # let the page settle (fonts, the sidebar)
    assert driver.save_screenshot(str(folder / name))


def _buttons(driver, text: str) -> list:
    from selenium.webdriver.common.by import By

    return [b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == text]


def _field(driver, label: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[aria-label="{label}"]')


def _has(driver, css: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_elements(By.CSS_SELECTOR, css))


def _nav(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNav"] a')
    return [a.text.strip().splitlines()[-1] for a in links if a.text.strip()]  # after the icon's name


def _wait_for_any(driver, needles: tuple[str, ...], timeout: float = 90) -> str:
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    body = ""
    while time.time() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        if any(n in body for n in needles):
            return body
        time.sleep(0.5)
    raise AssertionError(f"none of {needles} appeared; page text: {body[:1000]}")


def _type(driver, label: str, text: str, *then: str) -> None:
    """Replace what the field ``label`` holds with ``text`` (by keys: React sees them)."""
    from selenium.webdriver.common.keys import Keys

    field = _field(driver, label)
    field.send_keys(Keys.CONTROL, "a")  # the modifier is let go at the end of each call
    field.send_keys(Keys.BACKSPACE)
    field.send_keys(text, *then)


def _wait_until(driver, ok, what: str, timeout: float = 60) -> str:
    """The page text once ``ok(text)`` holds (a page being redrawn still shows the old one)."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    body = ""
    while time.time() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        if ok(body):
            return body
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; page text: {body[:1000]}")


def _login(driver, name: str, password: str = PASSWORD, ok: bool = True) -> str:
    """Fill in the login form shown now and submit it; the page text after (the sidebar's
    account line when ``ok``)."""
    _wait_for_text(driver, "请先登录")
    deadline = time.time() + 30
    while not (_has(driver, '[aria-label="密码"]') and _buttons(driver, "登录")) and time.time() < deadline:
        time.sleep(0.2)  # the form follows the caption
    _type(driver, "账户名", name)
    _type(driver, "密码", password)
    _buttons(driver, "登录")[0].click()
    if not ok:
        return _wait_for_text(driver, "账户名或密码不正确")
    return _wait_for_text(driver, f"当前账户：{name}")


def _open_as(driver, url: str, name: str) -> str:
    """Open ``url`` in a fresh session (every address opened is one) and log in as ``name``."""
    driver.get(url)
    return _login(driver, name)


def _search(driver, query: str) -> str:
    """Search from the 检索 page shown now; the page text once the results are in."""
    from selenium.webdriver.common.keys import Keys

    _type(driver, "检索内容", query, Keys.ENTER)
    return _wait_for_any(driver, SEARCH_DONE, timeout=120)


GRID_JS = """
const grid = document.querySelector('[data-testid="stDataFrame"]');
if (!grid) return null;
const cells = (row, tag) => Array.from(row.querySelectorAll(tag)).map(c => c.textContent);
const head = grid.querySelector('thead tr');
return {head: head ? cells(head, 'th') : [], rows: Array.from(grid.querySelectorAll('tbody tr')).map(r => cells(r, 'td'))};
"""


def _audit_rows(driver, account: str) -> tuple[list[str], list[list[str]]]:
    """The audit page's table filtered to ``account``: its headers and the cells of the rows in
    view (the grid draws on a canvas; its accessible table holds the same text)."""
    from selenium.webdriver.common.keys import Keys

    _type(driver, "账户", account, Keys.ENTER)
    deadline = time.time() + 30
    grid = None
    while time.time() < deadline:
        grid = driver.execute_script(GRID_JS)
        rows = [r for r in (grid or {}).get("rows", []) if len(r) == 8]
        if rows and all(r[2] == account for r in rows):
            return grid["head"], rows
        time.sleep(0.5)
    raise AssertionError(f"the audit table did not show {account}'s lines only: {grid}")


# -- the tests --------------------------------------------------------------------------------------
def test_login_roles_and_clearance_in_the_browser(tmp_path):
    _need_browser()
    from selenium.webdriver.common.by import By

    from yuanwen.library import open_kb

    shots = _shots(tmp_path)
    kb = _make_kb(tmp_path)
    with _serve(kb, _free_port()) as url:
        driver = _browser()
        try:
            # the login page first, nothing else
            driver.get(url)
            body = _wait_for_text(driver, "请先登录")
            assert not _has(driver, '[aria-label="检索内容"]') and not _nav(driver)
            assert "使用单位统一身份认证登录" not in body  # no single sign-on configured
            _shot(driver, shots, "acc-01-login.png")
            _login(driver, "reader1", "wrong-password-1", ok=False)
            _shot(driver, shots, "acc-02-wrong-password.png")

            # reader1: the 内部 document is not found, by search or quote check
            body = _login(driver, "reader1")
            assert "当前账户：reader1 · 读者 · 可阅：公开" in body
            assert _nav(driver) and not {"知识库", "账户", "审计日志"} & set(_nav(driver))
            body = _search(driver, QUERY)
            assert INNER_TITLE not in body and "救生衣" not in body
            _shot(driver, shots, "acc-03-reader-search.png")
            driver.get(f"{url}/quote?text={quote(INNER_SENTENCE)}")
            _login(driver, "reader1")
            body = _wait_for_any(driver, ("未找到", "原文一致", "有出入"), timeout=120)
            assert "未找到" in body and INNER_TITLE not in body
            _shot(driver, shots, "acc-04-reader-quote.png")

            # the pages of editors and admins, opened by their addresses, give 检索
            for path, marker in (("/kb", '[data-testid="stFileUploader"]'), ("/accounts", '[data-testid="stDataFrame"]'),
                                 ("/audit", '[data-testid="stDataFrame"]')):
                _open_as(driver, url + path, "reader1")
                _wait_for_text(driver, "检索内容")
                time.sleep(1.5)  # a page switch would have happened by now
                body = driver.find_element(By.TAG_NAME, "body").text
                assert _has(driver, '[aria-label="检索内容"]') and not _has(driver, marker), path
                assert not [w for w in ("新建账户", "上传", "日志完整", "账户管理") if w in body], path
            _shot(driver, shots, "acc-05-reader-at-accounts.png")
            _buttons(driver, "退出登录")[0].click()
            _wait_until(driver, lambda body: "已退出登录" in body and "当前账户" not in body, "the login form again")

            # editor1 (after reader1 logged out, in the same tab): finds it, may use 知识库
            body = _login(driver, "editor1")
            assert "当前账户：editor1 · 编辑 · 可阅：内部" in body and "知识库" in _nav(driver)
            assert not {"账户", "审计日志"} & set(_nav(driver))
            body = _search(driver, QUERY)
            assert INNER_TITLE in body
            _shot(driver, shots, "acc-06-editor-search.png")
            _open_as(driver, f"{url}/quote?text={quote(INNER_SENTENCE)}", "editor1")
            body = _wait_for_any(driver, ("未找到", "原文一致", "有出入"), timeout=120)
            assert "原文一致" in body and INNER_TITLE in body

            # admin1: everyone's actions in the audit log, from 127.0.0.1
            _open_as(driver, url + "/audit", "admin1")
            _wait_for_text(driver, "日志完整")
            assert {"账户", "审计日志", "知识库"} <= set(_nav(driver))
            headers, reader = _audit_rows(driver, "reader1")
            assert headers == ["编号", "时间（UTC）", "账户", "客户端地址", "操作", "对象", "结果", "详情"]
            _shot(driver, shots, "acc-07-admin-audit.png")
            _, editor = _audit_rows(driver, "editor1")
            for rows in (reader, editor):
                assert {r[3] for r in rows} == {"127.0.0.1"}
                assert {"登录", "检索", "引文核对"} <= {r[4] for r in rows}
            assert ["登录失败", "失败"] in [[r[4], r[6]] for r in reader]
            assert "退出登录" in {r[4] for r in reader}
            assert any(r[4] == "检索" and r[5] == QUERY for r in editor)
        finally:
            driver.quit()

    # the library says the same
    lib = open_kb(kb).actor_for("admin1")
    try:
        log = lib.audit_log()
    finally:
        lib.close()
    done = {(e.account, e.action, e.outcome) for e in log}
    for name in ("reader1", "editor1"):
        assert {(name, "login", "ok"), (name, "search", "ok"), (name, "quote", "ok")} <= done, name
    assert ("reader1", "login_failed", "failed") in done and ("reader1", "logout", "ok") in done
    assert {e.client for e in log if e.account in ("reader1", "editor1")} == {"127.0.0.1"}
    verdicts = {e.account: e.detail.get("verdict") for e in log if e.action == "quote"}
    assert verdicts == {"reader1": "not_found", "editor1": "exact"}, verdicts


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the mock provider's own use of Authlib
def test_oidc_login_in_the_browser(tmp_path):
    """Single sign-on through the office's identity provider: the role from a mapped claim,
    the clearance from a claim; the account made on first login, its login audited."""
    _need_browser()
    if importlib.util.find_spec("oidc_provider_mock") is None:
        if os.environ.get("CI"):
            pytest.fail("the OIDC test needs oidc-provider-mock (a test dependency)")
        pytest.skip("oidc-provider-mock not installed")
    from tests.oidc_mock import free_port, oidc_login, oidc_logout, oidc_provider, write_auth_secrets
    from yuanwen.library import open_kb

    shots = _shots(tmp_path)
    kb = _make_kb(tmp_path, accounts=False)  # single sign-on alone makes the app shared
    mapping = {"yuanwen.oidc": {"role_claim": "roles", "roles": {"yuanwen-editor": "editor"}}}
    with oidc_provider() as provider:
        port = free_port()
        secrets = write_auth_secrets(tmp_path / "st", provider, port, mapping)
        with _serve(kb, port, "--secrets.files", str(secrets)) as url:
            driver = _browser()
            try:
                driver.get(url)
                _wait_for_text(driver, "使用单位统一身份认证登录")
                assert _buttons(driver, "使用单位统一身份认证登录") and _field(driver, "账户名") and not _nav(driver)
                _shot(driver, shots, "oidc-01-login.png")
                oidc_login(driver, url, "oidc_ed",
                           {"roles": ["yuanwen-editor"], "clearance": "内部", "preferred_username": "oidc_ed"},
                           button_text="使用单位统一身份认证登录", screenshot=shots / "oidc-02-provider.png")
                body = _wait_for_text(driver, "当前账户：oidc_ed")
                assert "当前账户：oidc_ed · 编辑 · 可阅：内部" in body and "知识库" in _nav(driver)
                body = _search(driver, QUERY)
                assert INNER_TITLE in body
                _shot(driver, shots, "oidc-03-editor-search.png")
                oidc_logout(driver, url, button_text="退出登录")
                body = _wait_until(driver, lambda b: "请先登录" in b and "当前账户" not in b, "the login page")
                assert _buttons(driver, "使用单位统一身份认证登录")

                # an IdP role the mapping does not name (even one called "admin") grants nothing
                oidc_login(driver, url, "oidc_rd", {"roles": ["admin", "staff"], "preferred_username": "oidc_rd"},
                           button_text="使用单位统一身份认证登录")
                body = _wait_for_text(driver, "当前账户：oidc_rd")
                assert "当前账户：oidc_rd · 读者 · 可阅：公开" in body
                assert not {"知识库", "账户", "审计日志"} & set(_nav(driver))
                body = _search(driver, QUERY)
                assert INNER_TITLE not in body
                _shot(driver, shots, "oidc-04-reader-search.png")
            finally:
                driver.quit()

    lib = open_kb(kb)  # the machine's own user may read accounts and the log
    try:
        accounts = {a.name: a for a in lib.accounts()}
        log = lib.audit_log()
    finally:
        lib.close()
    assert (accounts["oidc_ed"].source, accounts["oidc_ed"].role, accounts["oidc_ed"].clearance) == \
        ("oidc", "editor", "内部")
    assert (accounts["oidc_rd"].source, accounts["oidc_rd"].role, accounts["oidc_rd"].clearance) == \
        ("oidc", "reader", "公开")
    logins = [e for e in log if e.action == "login" and e.account == "oidc_ed"]
    assert logins and all(e.detail.get("via") == "oidc" and e.client == "127.0.0.1" for e in logins)
    done = {(e.account, e.action) for e in log}
    assert {("oidc_ed", "search"), ("oidc_ed", "logout"), ("oidc_rd", "login"), ("oidc_rd", "search")} <= done
