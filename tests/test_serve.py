"""Secure defaults of the server itself: the app started as ``make run`` starts it, or as
``streamlit run app.py`` from the repository root, listens on 127.0.0.1 only; started on all
interfaces while the knowledge base has no accounts, it serves only how to create one.

The listening sockets are read from ``/proc/net/tcp*`` (Linux), and a connection to the
machine's own network address is tried for real.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_e2e import ROOT, _browser, _free_port, _need_browser, _wait_for_text
from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest

pytestmark = pytest.mark.slow  # real servers

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def _network_address() -> str | None:
    """This machine's first non-loopback IPv4 address, if it has one."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return next((a for a in out.split() if "." in a and not a.startswith("127.")), None)


def _listening(port: int) -> set[str]:
    """The local addresses with a socket listening on TCP ``port``."""
    found: set[str] = set()
    for name, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            if v6:  # four little-endian 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
            else:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    return found


def _start(cmd: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            pass
        try:  # bound to another address only
            if _listening(port):
                return proc
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the server did not start: " + proc.stdout.read().decode(errors="replace")[-2000:])


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory) -> Path:
    kb = tmp_path_factory.mktemp("serve") / "kb"
    report = ingest([ROOT / "corpus"], Config(kb_dir=kb), embed=False, progress=False)
    assert not report.failed
    return kb


def _assert_loopback_only(port: int) -> None:
    addrs = _listening(port)
    assert addrs and addrs <= LOOPBACK, f"listening on {addrs}"
    other = _network_address()
    if other:
        with pytest.raises(OSError):
            socket.create_connection((other, port), timeout=3).close()


def test_make_run_listens_on_loopback_only(sample_kb):
    """The server command of ``make run`` (as make itself prints it) binds 127.0.0.1."""
    port = _free_port()
    out = subprocess.run(["make", "-n", "run", f"PORT={port}", f"KB={sample_kb}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    line = next(ln for ln in out.splitlines() if "streamlit run" in ln)
    cmd = shlex.split(line)
    cmd[0] = sys.executable  # the recipe's .venv/bin/python, in whichever environment runs the tests
    proc = _start(cmd, port)
    try:
        _assert_loopback_only(port)
    finally:
        _stop(proc)


def test_streamlit_run_app_py_listens_on_loopback_only(sample_kb):
    """``streamlit run app.py`` with no address, from the repository root: the project's
    .streamlit/config.toml binds 127.0.0.1."""
    port = _free_port()
    proc = _start([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                   "--server.headless", "true", "--", "--kb", str(sample_kb)], port)
    try:
        _assert_loopback_only(port)
    finally:
        _stop(proc)


def test_network_address_without_accounts_serves_only_instructions(tmp_path):
    """On all interfaces with no accounts, a browser at the machine's network address gets how
    to create the first admin and nothing else; once an account exists, the login form."""
    from selenium.webdriver.common.by import By

    from yuanwen.library import open_kb

    _need_browser()
    address = _network_address()
    if address is None:
        pytest.skip("this machine has no network address besides loopback")
    kb = tmp_path / "kb"
    assert not ingest([ROOT / "corpus"], Config(kb_dir=kb), embed=False, progress=False).failed
    title = "市应急管理局党委2022年履行全面从严治党主体责任情况报告"
    port = _free_port()
    proc = _start([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                   "--server.address", "0.0.0.0", "--server.headless", "true", "--", "--kb", str(kb)], port)
    driver = _browser()
    try:
        url = f"http://{address}:{port}"
        # this machine itself gets no more either: the server listens on the network
        for page in (url + "/", url + "/docs?doc=1", url + "/kb", f"http://127.0.0.1:{port}/"):
            driver.get(page)
            body = _wait_for_text(driver, "还没有账户")
            time.sleep(1)  # nothing else arrives later
            body = driver.find_element(By.TAG_NAME, "body").text
            assert "yuanwen user add 管理员名 --role admin --password-stdin --kb 知识库文件夹" in body
            assert title not in body and "检索" not in body and "请先登录" not in body, page
            assert not driver.find_elements(By.CSS_SELECTOR, '[aria-label="检索内容"], [data-testid="stSidebarNav"]')
            assert str(kb) not in body  # no server paths
        shots = Path(os.environ.get("YUANWEN_SCREENSHOT_DIR", tmp_path))
        driver.save_screenshot(str(shots / "serve-exposed.png"))

        lib = open_kb(kb, readonly=False)
        try:
            lib.add_account("admin1", "admin", "correct-horse-1")
        finally:
            lib.close()
        driver.get(url + "/docs?doc=1")
        _wait_for_text(driver, "请先登录")
        time.sleep(1)
        body = driver.find_element(By.TAG_NAME, "body").text
        assert driver.find_elements(By.CSS_SELECTOR, '[aria-label="账户名"]')
        assert "还没有账户" not in body and title not in body and "检索" not in body
        assert not driver.find_elements(By.CSS_SELECTOR, '[aria-label="检索内容"], [data-testid="stSidebarNav"]')
        driver.save_screenshot(str(shots / "serve-login.png"))
    finally:
        driver.quit()
        _stop(proc)
