"""Take the screenshots in docs/ of every page of the app, in headless Chromium.

    python docs/screenshots.py --kb yuanwen_kb     # a knowledge base holding corpus/

Needs Debian's chromium and chromium-driver, selenium, and a CJK font (fonts-wqy-microhei).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_e2e import _browser, _free_port, _wait_for_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.port", str(port), "--", "--kb", args.kb], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    time.sleep(6)
    from selenium.webdriver.common.by import By

    d = _browser()
    try:
        d.get(f"{url}/?q={quote('怎么落实巡视整改')}")
        _wait_for_text(d, "用时")
        time.sleep(1)
        d.save_screenshot(str(out / "search.png"))
        for i in range(3):  # add the first three hits to the pack, in this session
            buttons = [b for b in d.find_elements(By.TAG_NAME, "button") if b.text.strip() == "加入汇编"]
            if not buttons:
                break
            buttons[0].click()
            time.sleep(2)
        next(a for a in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebarNavLink']")
             if "学习材料汇编" in a.text).click()  # the sidebar's link, in this session
        _wait_for_text(d, "出处")
        time.sleep(1.5)
        d.save_screenshot(str(out / "study-pack.png"))
        pages = [  # (address, text that shows the page is ready, file)
            (f"quote?text={quote('局党委书记认真履行巡视整改第一责任人的责任，组织起草整改方案')}", "出处", "quote"),
            ("docs?doc=1", "目录", "documents"),
            ("kb", "文档", "knowledge-base"),
        ]
        for address, ready, name in pages:
            d.get(f"{url}/{address}")
            _wait_for_text(d, ready)
            time.sleep(1)
            d.save_screenshot(str(out / f"{name}.png"))
    finally:
        d.quit()
        proc.terminate()
    print("screenshots in", out)


if __name__ == "__main__":
    main()
