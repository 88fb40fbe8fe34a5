"""End to end: a photographed page uploaded in the app is recognised by OCR (real engine), shows
the progress and the page count in the summary, and its text is found by search, marked as
recognised text, with the page image beside it in the reader."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests import scans
from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest

from .conftest import SHARED
from .test_e2e import ROOT, _browser, _need_browser, _wait_for_text, app_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ocr_server(tmp_path_factory):
    _need_browser()
    from yuanwen.ingest import ocr

    if ocr.available():
        pytest.skip(ocr.available())
    pdfs = sorted(SHARED.rglob("2024-01-21-*.pdf"))
    if not pdfs:
        pytest.skip("shared corpus not found")
    work = tmp_path_factory.mktemp("e2e_ocr")
    photo = scans.degrade(scans.render_pdf(pdfs[0], pages=[0])[0], "phone")
    photo.save(work / "消防通知照片.jpg", quality=85)
    kb = work / "kb"
    report = ingest([ROOT / "corpus"], Config(kb_dir=kb), progress=False)
    assert not report.failed
    for url in app_server(kb):
        yield url, work / "消防通知照片.jpg"


def test_a_photographed_page_uploaded_in_the_app_is_recognised_and_found(ocr_server, tmp_path):
    from selenium.webdriver.common.by import By

    url, photo = ocr_server
    shots = Path(os.environ.get("YUANWEN_SCREENSHOT_DIR", tmp_path))
    driver = _browser()
    try:
        driver.get(f"{url}/kb")
        _wait_for_text(driver, "导入知识库")
        driver.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploaderDropzoneInput']")[-1].send_keys(str(photo))
        _wait_for_text(driver, photo.name, 30)
        time.sleep(1)
        button = next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == "导入知识库")
        button.click()
        body = _wait_for_text(driver, "上次导入的结果", 240)
        assert "文字识别 1 页" in body and "新增 1 篇" in body, body[:1500]
        driver.save_screenshot(str(shots / "e2e-ocr-upload.png"))

        driver.get(f"{url}/?page=search&q={quote('英才学校学生宿舍发生火灾')}")
        body = _wait_for_text(driver, "用时")
        assert "英才学校学生宿舍发生火灾" in body and "识别文本" in body and "识别置信度" in body
        driver.save_screenshot(str(shots / "e2e-ocr-search.png"))
        button = next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == "对照原件")
        button.click()
        body = _wait_for_text(driver, "与左侧原件对照", 60)
        time.sleep(2)
        images = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stImage'] img, img[src*='media']")
        assert images, "the page image is not shown"
        driver.save_screenshot(str(shots / "e2e-ocr-reader.png"))
    finally:
        driver.quit()
