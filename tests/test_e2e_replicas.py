"""Two app processes (replicas behind a load balancer) on one Milvus server: what one does, the
other sees. A file uploaded through replica A is found through replica B; a study pack collected in
A opens in B. Both serve the same knowledge base folder (kb.json, packs, accounts and the audit log:
a shared volume in a deployment); documents, passages and vectors live in Milvus, here Milvus Lite
in server mode."""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from yuanwen.library import init_kb, open_kb

from .milvus_server import LiteServer
from .test_e2e import ROOT, _browser, _need_browser, _wait_for_text, app_server
from .test_e2e_pack import _click_add_buttons

pytestmark = pytest.mark.slow  # two real app servers, a Milvus server and a browser

NEW_TEXT = ("关于加强城市地下管廊巡检工作的通知\n\n各区管廊运营单位要建立管廊巡检台账，"
            "对燃气舱、电力舱逐段巡查，发现渗漏隐患立即上报并限期整改。\n")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    pytest.importorskip("pymilvus")
    _need_browser()
    work = tmp_path_factory.mktemp("replicas")
    with LiteServer(work / "milvus" / "shared.db") as uri:
        kb = work / "kb"
        init_kb(kb, backend="milvus", uri=uri)
        with open_kb(kb) as lib:  # the bundled sample, with the offline default model
            report = lib.ingest([ROOT / "corpus"])
            assert not report.failed and report.passages_embedded > 0
        a, b = app_server(kb), app_server(kb)
        yield next(a), next(b), work
        for server in (a, b):
            next(server, None)  # stops it


def test_an_upload_through_one_replica_is_found_through_the_other(replicas, tmp_path):
    from selenium.webdriver.common.by import By

    url_a, url_b, work = replicas
    shots = Path(os.environ.get("YUANWEN_SCREENSHOT_DIR", tmp_path))
    upload = work / "管廊巡检通知.txt"
    upload.write_text(NEW_TEXT, encoding="utf-8")
    driver = _browser()
    try:
        driver.get(f"{url_b}/?page=search&q={quote('管廊巡检台账')}&mode=keyword")
        body = _wait_for_text(driver, "用时")
        assert "关于加强城市地下管廊巡检工作的通知" not in body  # not there yet

        driver.get(f"{url_a}/kb")
        _wait_for_text(driver, "导入知识库")
        driver.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploaderDropzoneInput']")[-1].send_keys(str(upload))
        _wait_for_text(driver, upload.name, 30)
        time.sleep(1)
        button = next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == "导入知识库")
        button.click()
        body = _wait_for_text(driver, "上次导入的结果", 180)
        assert "新增 1 篇" in body, body[:1500]

        for mode in ("keyword", "semantic", "hybrid"):
            driver.get(f"{url_b}/?page=search&q={quote('管廊巡检台账')}&mode={mode}")
            _wait_for_text(driver, "用时")
            # the hits render after the summary line (once, under load, the page was read
            # before they had): wait for the upload's title among them
            _wait_for_text(driver, "关于加强城市地下管廊巡检工作的通知", 30)
        time.sleep(1)
        driver.save_screenshot(str(shots / "e2e-replica-b-finds-upload.png"))
    finally:
        driver.quit()


def test_a_pack_collected_in_one_replica_opens_in_the_other(replicas, tmp_path):
    url_a, url_b, _ = replicas
    shots = Path(os.environ.get("YUANWEN_SCREENSHOT_DIR", tmp_path))
    driver = _browser()
    try:
        driver.get(f"{url_a}/?q={quote('怎么落实巡视整改')}")
        _wait_for_text(driver, "用时")
        _click_add_buttons(driver, 2)
        driver.get(f"{url_b}/pack?pack={quote('学习材料汇编')}")
        _wait_for_text(driver, "汇编“学习材料汇编”中已有 2 段")
        body = _wait_for_text(driver, "导出 Word")
        assert body.count("出处：") == 2
        time.sleep(1)
        driver.save_screenshot(str(shots / "e2e-replica-b-opens-pack.png"))
    finally:
        driver.quit()
