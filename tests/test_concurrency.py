"""Concurrent use: searches keep answering during an ingest; two ingests take turns."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yuanwen.ingest.pipeline import ingest
from yuanwen.search.api import search
from yuanwen.search.quote import lookup_quote
from yuanwen.config import Config
from yuanwen.errors import KnowledgeBaseError
from yuanwen.kb import KnowledgeBase

from .conftest import SAMPLE

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_searches_answer_while_another_process_ingests(tmp_path):
    docs, kb_dir = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    (docs / "report.txt").write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    cfg = Config(kb_dir=kb_dir)
    ingest([docs], cfg, embedder="fake", progress=False)
    base = SAMPLE.read_text(encoding="utf-8").split("\n")
    for i in range(60):
        (docs / f"more{i:02d}.txt").write_text("\n".join(base[: 10 + i % 25] + [f"附记{i}。"]), encoding="utf-8")
    env = {**os.environ, "YUANWEN_PLUGINS": "tests.fake_embedder", "PYTHONPATH": str(ROOT),
           "YUANWEN_FAKE_DELAY": "0.01"}
    proc = subprocess.Popen([sys.executable, "-m", "yuanwen.cli", "ingest", str(docs), "--kb", str(kb_dir),
                             "--embedder", "fake", "--json"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        from filelock import Timeout

        from yuanwen.ingest.pipeline import ingest_lock

        deadline = time.time() + 30
        while time.time() < deadline and proc.poll() is None:  # until the subprocess holds the lock
            probe = ingest_lock(kb_dir)
            try:
                probe.acquire(timeout=0)
            except Timeout:
                break
            probe.release()
            time.sleep(0.05)
        # the second ingest refuses at once with a clear message
        with pytest.raises(KnowledgeBaseError, match="另一个导入任务"):
            ingest([docs], cfg, embedder="fake", progress=False)
        answered = 0
        kb = KnowledgeBase(cfg, readonly=True)
        while proc.poll() is None:
            for mode in ("keyword", "hybrid"):
                res = search(kb, "巡视整改", k=5, mode=mode)
                assert res.hits
                for h in res.hits:  # every answer is consistent with the store
                    doc = kb.store.get_document(h.document.id)
                    assert doc.text[h.passage.start:h.passage.end] == h.passage.text
                answered += 1
            q = lookup_quote(kb, "局党委书记认真履行巡视整改第一责任人责任")
            assert q.verdict == "exact"
            answered += 1
        kb.close()
        assert proc.returncode == 0, proc.stderr.read().decode(errors="replace")[-2000:]
        assert answered >= 5
    finally:
        if proc.poll() is None:
            proc.kill()
    kb = KnowledgeBase(cfg, readonly=True)
    assert kb.stats()["documents"] == 61 and kb.stats()["pending"] == 0
    kb.close()


def test_second_ingest_can_wait_for_the_first(tmp_path):
    from yuanwen.ingest.pipeline import ingest_lock

    cfg = Config(kb_dir=tmp_path / "kb")
    lock = ingest_lock(cfg.kb_dir)
    lock.acquire()
    try:
        with pytest.raises(KnowledgeBaseError, match="另一个导入任务"):
            ingest([SAMPLE], cfg, embedder="fake", progress=False)
    finally:
        lock.release()
    # another process holds the lock for 1.5 s: an ingest with wait waits for it, then goes in
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from filelock import FileLock; "
         "l = FileLock(sys.argv[1]); l.acquire(); print('held', flush=True); time.sleep(1.5); l.release()",
         lock.lock_file], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.monotonic()
        r = ingest([SAMPLE], cfg, embedder="fake", progress=False, wait=30)
        assert time.monotonic() - t0 >= 1.0  # it really waited for the other process
        assert r.count("added") == 1
    finally:
        holder.wait(timeout=30)
