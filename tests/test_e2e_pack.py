"""End to end: a study pack collected in headless Chromium is still there after a reload (F5)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from .test_e2e import _browser, _wait_for_text, server  # noqa: F401  (server: the fixture)

pytestmark = pytest.mark.slow  # a real browser against a real server


def _click_add_buttons(driver, n: int) -> None:
    """Click the first ``n`` 加入汇编 buttons of the results, waiting for each to be taken."""
    from selenium.webdriver.common.by import By

    for done in range(1, n + 1):
        buttons = driver.find_elements(By.XPATH, "//button[normalize-space(.)='加入汇编']")
        assert buttons, "no 加入汇编 button"
        buttons[0].click()
        deadline = time.time() + 30
        while len(driver.find_elements(By.XPATH, "//button[normalize-space(.)='已在汇编中']")) < done:
            assert time.time() < deadline, "the passage was not added"
            time.sleep(0.3)


def test_the_pack_survives_a_reload(server, tmp_path):  # noqa: F811
    shots = Path(os.environ.get("YUANWEN_SCREENSHOT_DIR", tmp_path))
    driver = _browser()
    try:
        driver.get(f"{server}/?q={quote('怎么落实巡视整改')}")
        _wait_for_text(driver, "用时")
        _click_add_buttons(driver, 2)
        # the search page's address names the pack, so F5 here goes on with it
        deadline = time.time() + 10
        while "pack=" not in driver.current_url:
            assert time.time() < deadline, driver.current_url
            time.sleep(0.3)
        assert f"pack={quote('学习材料汇编')}" in driver.current_url
        driver.refresh()
        _wait_for_text(driver, "汇编“学习材料汇编”中已有 2 段")
        driver.get(f"{server}/pack")
        _wait_for_text(driver, "汇编“学习材料汇编”中已有 2 段")
        body = _wait_for_text(driver, "导出 Word")  # the page is drawn to its end
        assert body.count("出处：") == 2
        driver.refresh()  # F5: a new session
        time.sleep(1)
        _wait_for_text(driver, "汇编“学习材料汇编”中已有 2 段")
        body = _wait_for_text(driver, "导出 Word")
        assert body.count("出处：") == 2 and "当前汇编" in body
        time.sleep(1)
        shot = shots / "e2e-pack-after-reload.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()
