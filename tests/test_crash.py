"""Crash safety: real ingests killed with SIGKILL at random points always recover.

Each round changes a few files, starts ``yuanwen ingest`` in a subprocess, kills it at a random
moment (reading, storing or embedding), checks that the knowledge base still opens and answers,
then runs the same ingest to completion and checks that ``verify`` finds nothing wrong.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path


from search.api import search
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.verify import verify

from .conftest import SAMPLE

ROOT = Path(__file__).resolve().parents[1]
KILLS = 20
N_DOCS = 80


def _write_docs(folder: Path, n: int, round_no: int, rng: random.Random) -> None:
    base = SAMPLE.read_text(encoding="utf-8").split("\n")
    for i in range(n):
        # every round, a few documents change (so kills also hit updates and replacements)
        version = round_no if rng.random() < 0.5 else 0
        lines = base[: 8 + (i % 20)] + [f"附记{i}-{version}：本材料第{i}份，第{version}版，供学习使用。"]
        target = folder / f"doc{i:02d}.txt"
        text = "\n".join(lines)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


def test_sigkilled_ingests_recover(tmp_path):
    rng = random.Random(1129)
    docs, kb_dir = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    env = {**os.environ, "YUANWEN_PLUGINS": "tests.fake_embedder", "PYTHONPATH": str(ROOT),
           "YUANWEN_FAKE_DELAY": "0.005"}
    cmd = [sys.executable, "-m", "yuanwen.cli", "ingest", str(docs), "--kb", str(kb_dir),
           "--embedder", "fake", "--json"]
    cfg = Config(kb_dir=kb_dir)
    killed_with_kb = killed_alive = 0
    round_no = -1
    while killed_alive < KILLS:  # until 20 kills have hit a running ingest
        round_no += 1
        assert round_no < 3 * KILLS, f"only {killed_alive} of {round_no} kills hit a running ingest"
        _write_docs(docs, N_DOCS, round_no, rng)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 3.0))
        killed_alive += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (kb_dir / "yuanwen.db").exists():
            try:
                kb = KnowledgeBase(cfg, readonly=True)
            except Exception as exc:  # a kill before the first migration committed
                assert "格式版本" in str(exc), exc
            else:
                killed_with_kb += 1
                n = kb.stats()["documents"]
                if n:  # whatever was committed answers searches
                    assert search(kb, "巡视整改", k=3, mode="keyword").hits
                    assert search(kb, "巡视整改", k=3, mode="hybrid").hits
                kb.close()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        rep = verify(cfg)
        assert rep.ok, (round_no, rep.problems)
        kb = KnowledgeBase(cfg, readonly=True)
        s = kb.stats()
        assert s["documents"] == N_DOCS and s["pending"] == 0
        assert kb.vector_index().size == s["passages"]
        kb.close()
    assert killed_with_kb >= KILLS // 2
