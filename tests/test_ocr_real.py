"""OCR with the real engine (rapidocr, its models from the wheel): scanned versions of the
founding document and of a shared-corpus PDF go through `yuanwen ingest`, and come out with
the text (within the CER targets) and the heading paths of their text versions; an ingest
killed while recognising resumes at the page it stopped.

Marked slow: each page takes 3-5 s on 2 cores. The scans are made with tests/scans.py
(LibreOffice renders the founding document's .doc; pypdfium2 renders pages at 300 dpi).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import scans
from yuanwen.config import Config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _need_tools() -> None:
    from yuanwen.ingest import ocr
    from yuanwen.ingest.readers.doc import find_soffice

    if ocr.available():
        pytest.skip(ocr.available())
    if not scans.FOUNDING_DOC.is_file():
        pytest.skip(f"shared samples not found at {scans.FOUNDING_DOC}")
    if find_soffice() is None:
        pytest.skip("LibreOffice is needed to render the founding document's .doc")


@pytest.fixture(scope="module")
def founding(tmp_path_factory):
    """The founding document: its text version and two scans of its .doc (clean, phone photo)
    ingested into one knowledge base (fake embedder, keyword only)."""
    _need_tools()
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    work = tmp_path_factory.mktemp("founding")
    docs = {c: work / c for c in ("text", "clean", "phone")}
    for d in docs.values():
        d.mkdir()
    (docs["text"] / "founding.txt").write_bytes(scans.FOUNDING_TEXT.read_bytes())
    for condition in ("clean", "phone"):
        scan = scans.scanned_founding_document(work / "scans", condition)
        (docs[condition] / f"founding.{condition}.pdf").write_bytes(scan.read_bytes())
    lib = open_kb(work / "kb", readonly=False, config=Config(kb_dir=work / "kb", embedder="fake"))
    reports = {c: lib.ingest([d], embed=False) for c, d in docs.items()}
    out = {}
    for c in docs:
        doc = next(d for d in lib.documents() if f"/{c}/" in d.path)
        out[c] = (lib.document(doc.id, with_text=True), lib.document_passages(doc.id))
    yield out, reports, lib
    lib.close()


@pytest.mark.parametrize("condition,target", [("clean", 0.02), ("phone", 0.05)])
def test_a_scanned_founding_document_reads_like_its_text(founding, condition, target):
    docs, reports, lib = founding
    rep = reports[condition]
    assert rep.count("added") == 1 and rep.ocr_pages >= 4, rep.outcomes
    text_doc, text_passages = docs["text"]
    scan_doc, scan_passages = docs[condition]
    error = scans.cer(text_doc.text, scan_doc.text)
    assert error <= target, f"CER {error:.2%} on the {condition} scan"
    # The structure survives: the same heading paths, in the same order.
    paths = lambda ps: list(dict.fromkeys(tuple(p.heading_path) for p in ps))  # noqa: E731
    assert paths(scan_passages) == paths(text_passages)
    # Its metadata is read from the recognised text as from the text version.
    assert (scan_doc.title, scan_doc.issuer, scan_doc.date) == (text_doc.title, text_doc.issuer, text_doc.date)
    pages = lib.recognised_pages(scan_doc)
    assert sorted(pages) == list(range(1, len(scan_doc.pages) + 1))
    assert all(0.8 < c <= 1.0 for c in pages.values())


def test_a_quote_from_the_scan_is_found_with_the_note(founding):
    docs, _, lib = founding
    text_doc, text_passages = docs["text"]
    sentence = max((p.text for p in text_passages), key=len)[:60]
    result = lib.quote(sentence)
    scanned = [m for m in result.matches + result.similar if "/clean/" in m.document.path]
    assert scanned, result
    assert scanned[0].citation.recognised and scanned[0].citation.format().endswith("（识别文本，请核对原件）")


def _ocr_rows(kb: Path) -> int:
    try:
        with sqlite3.connect(f"file:{kb / 'yuanwen.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM ocr_pages").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_an_ingest_killed_while_recognising_resumes_at_the_next_page(tmp_path):
    _need_tools()
    src = scans.SHARED_CORPUS if hasattr(scans, "SHARED_CORPUS") else ROOT.parent / "shared" / "corpus"
    pdfs = sorted(Path(src).rglob("*.pdf"))
    if not pdfs:
        pytest.skip("shared corpus not found")
    docs = tmp_path / "docs"
    scans.scan_pdf(pdfs[0], docs, "clean", pages=[0, 1, 2])
    kb = tmp_path / "kb"
    env = dict(os.environ, YUANWEN_PLUGINS="tests.fake_embedder", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "yuanwen.cli", "ingest", str(docs), "--kb", str(kb), "--embedder", "fake",
           "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while _ocr_rows(kb) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its parse worker and its OCR worker
    proc.wait()
    kept = _ocr_rows(kb)
    assert 1 <= kept < 3
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import json

    report = json.loads(done.stdout)
    assert report["ocr_pages_cached"] == kept and report["ocr_pages"] == 3 - kept
    assert report["outcomes"][0]["status"] == "added"


@pytest.mark.parametrize("angle", [180, 90, 270])
def test_a_page_scanned_upside_down_or_sideways_is_read_the_right_way_up(angle):
    from yuanwen.ingest import ocr
    from yuanwen.ingest.readers.scanned import ocr_page_text

    if ocr.available():
        pytest.skip(ocr.available())
    pdfs = sorted((ROOT.parent / "shared" / "corpus").rglob("2024-01-21-*.pdf"))
    if not pdfs:
        pytest.skip("shared corpus not found")
    page = scans.render_pdf(pdfs[0], 170, pages=[0])[0]
    upright = ocr_page_text(ocr.recognise(page))
    turned = ocr_page_text(ocr.recognise(page.rotate(angle, expand=True)))
    assert "关于切实做好消防安全防控工作的紧急通知" in upright
    assert scans.cer(upright, turned) <= 0.01
