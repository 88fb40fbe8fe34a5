"""End to end, in headless Chromium: the 论述摘编 builder makes a date-ordered pack, the 提法演变
page draws its chart, loading a file that is not a pack leaves the pack as it was, and the file
uploader speaks Chinese.

The knowledge base holds the founding document and four real documents of different years from
``../shared/corpus``, embedded with the tests' fake embedder (the server loads it as a plugin).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest

from .conftest import copy_shared
from .test_e2e import ROOT, _browser, _need_browser, _wait_for_text, app_server

pytestmark = pytest.mark.slow  # a real browser against a real server

FILES = ["reports/2012-11-08-党的十八大报告.txt", "reports/2017-10-18-党的十九大报告.txt",
         "reports/2022-10-16-党的二十大报告.txt", "speeches/2020-07-21-在企业家座谈会上的讲话.txt"]


@pytest.fixture(scope="module")
def study_server(tmp_path_factory):
    _need_browser()
    docs = copy_shared(FILES, tmp_path_factory.mktemp("docs"))
    kb = tmp_path_factory.mktemp("study") / "kb"
    assert not ingest([docs, ROOT / "corpus"], Config(kb_dir=kb), embedder="fake", progress=False).failed
    yield from app_server(kb, env={**os.environ, "YUANWEN_PLUGINS": "tests.fake_embedder"})

def _shot(driver, tmp_path: Path, name: str) -> None:
    time.sleep(1)
    shot = Path(os.environ.get("YUANWEN_SCREENSHOT_DIR", tmp_path)) / name
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def _years(text: str) -> list[int]:
    """The years of the 出处 lines of a page, in page order."""
    return [int(m) for m in re.findall(r"出处：[^\n]*?((?:19|20)\d\d)年", text)]


def test_the_excerpts_builder_makes_a_date_ordered_pack(study_server, tmp_path):
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(f"{study_server}/excerpts?theme={quote('全面从严治党')}")
        body = _wait_for_text(driver, "生成学习材料汇编（已选")  # the button under the results
        time.sleep(1)
        body = _wait_for_text(driver, "生成学习材料汇编（已选")
        years = _years(body)
        assert len(set(years)) >= 2 and years == sorted(years), (years, body[:3000])  # earliest first
        _shot(driver, tmp_path, "e2e-excerpts.png")
        next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.startswith("生成学习材料汇编")).click()
        body = _wait_for_text(driver, "导出 Word")
        assert "全面从严治党" in body  # the new pack is named after the theme
        assert _years(body) == years  # the same passages, in the same order
    finally:
        driver.quit()


def test_the_timeline_page_draws_its_chart(study_server, tmp_path):
    from selenium.webdriver.common.by import By

    driver = _browser()
    try:
        driver.get(f"{study_server}/timeline?term={quote('全面从严治党')}")
        body = _wait_for_text(driver, "首次出现")
        assert "2012" in body or "2017" in body
        deadline = time.time() + 30
        while not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart'] canvas, "
                                                        "[data-testid='stVegaLiteChart'] svg"):
            assert time.time() < deadline, "no chart drawn"
            time.sleep(0.5)
        _shot(driver, tmp_path, "e2e-timeline.png")
    finally:
        driver.quit()


def test_a_file_that_is_not_a_pack_changes_nothing(study_server, tmp_path):
    from selenium.webdriver.common.by import By

    bad = tmp_path / "不是汇编.json"
    bad.write_text(json.dumps({"foo": 1}), encoding="utf-8")
    driver = _browser()
    try:
        driver.get(f"{study_server}/excerpts?theme={quote('全面从严治党')}")
        _wait_for_text(driver, "生成学习材料汇编（已选")
        next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.startswith("生成学习材料汇编")).click()
        before = _wait_for_text(driver, "导出 Word")
        count = before.count("出处：")
        assert count >= 2
        loader = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploaderDropzoneInput']")[-1]
        loader.send_keys(str(bad))
        body = _wait_for_text(driver, "这不是汇编文件", 30)
        assert "当前汇编没有改动" in body and body.count("出处：") == count
        _shot(driver, tmp_path, "e2e-bad-pack-file.png")
    finally:
        driver.quit()


def test_the_file_uploader_speaks_chinese(study_server):
    driver = _browser()
    try:
        driver.get(f"{study_server}/kb")
        _wait_for_text(driver, "导入知识库")
        shown = driver.execute_script(
            "var p = document.querySelector('[data-testid=stFileUploaderDropzone] button p');"
            "var i = document.querySelector('[data-testid=stFileUploaderDropzoneInstructions] span');"
            "return [getComputedStyle(p).fontSize, getComputedStyle(p, '::after').content,"
            "        getComputedStyle(i).fontSize, getComputedStyle(i, '::after').content];")
        assert shown == ["0px", '"选择文件"', "0px", '"或把文件拖到这里"']  # Streamlit's English hidden
    finally:
        driver.quit()
