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

import pytest

from yuanwen.search.api import search
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


@pytest.mark.slow
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


# -- kills at chosen points inside the store stage -------------------------------------------
def _ingest_cmd(docs: Path, kb_dir: Path) -> list[str]:
    return ["ingest", str(docs), "--kb", str(kb_dir), "--embedder", "fake", "--json", "--prune"]


def _env() -> dict[str, str]:
    return {**os.environ, "YUANWEN_PLUGINS": "tests.fake_embedder", "PYTHONPATH": str(ROOT)}


def _run_killed(point: str, n: int, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.crashpoint", point, str(n), "--", *args],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, proc.stderr[-2000:])


def _assert_whole(cfg: Config, n_docs: int) -> None:
    """After a clean re-run: verify passes, every document has passages and is searchable."""
    rep = verify(cfg)
    assert rep.ok, rep.problems
    kb = KnowledgeBase(cfg, readonly=True)
    try:
        s = kb.stats()
        assert s["documents"] == n_docs and s["pending"] == 0
        db = kb.store.db
        assert db.execute("SELECT COUNT(*) FROM documents d WHERE NOT EXISTS "
                          "(SELECT 1 FROM passages p WHERE p.doc_id = d.id)").fetchone()[0] == 0
        assert kb.vector_index().size == s["passages"]
        # the document stored last (the one the kill hit) answers a search for its own words
        assert search(kb, "附记3 第3份", k=3, mode="keyword").hits
    finally:
        kb.close()


CHOSEN_POINTS = [
    # (point, n-th time, what the folder holds before the killed run)
    ("before_passages", 1, "new"),     # a new document's row written, no passage yet
    ("mid_passages", 7, "new"),        # seven passages of the first new document in
    ("after_passages", 2, "new"),      # the second document complete but not committed
    ("after_commit", 2, "new"),        # two documents committed, the third not begun
    ("before_passages", 1, "changed"),  # a changed document: old rows deleted, new not yet in
    ("replace", 1, "changed"),         # halfway through deleting the old rows
    ("replace", 1, "pruned"),          # halfway through pruning a document whose file is gone
    ("alias", 1, "alias"),             # recording a second path of an identical text
    ("embed", 1, "new"),               # the first batch of vectors committed
]


def _folder(docs: Path, state: str) -> int:
    """Write the documents for ``state``; returns how many documents the folder holds."""
    base = SAMPLE.read_text(encoding="utf-8").split("\n")
    for i in range(5):
        version = 1 if state == "changed" and i == 3 else 0
        text = "\n".join(base[: 10 + 3 * i] + [f"附记{i}：本材料第{i}份，第{version}版，供学习使用。"])
        (docs / f"doc{i}.txt").write_text(text, encoding="utf-8")
    if state == "pruned":
        (docs / "doc4.txt").unlink()
        return 4
    if state == "alias":
        (docs / "doc5.txt").write_text((docs / "doc2.txt").read_text(encoding="utf-8"), encoding="utf-8")
    return 5




@pytest.mark.parametrize("point,n,state", CHOSEN_POINTS, ids=[f"{p}-{n}-{s}" for p, n, s in CHOSEN_POINTS])
def test_kill_at_a_chosen_point_in_the_store_stage(tmp_path, point, n, state):
    docs, kb_dir = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    cfg = Config(kb_dir=kb_dir)
    if state != "new":  # a complete knowledge base first; the killed run changes it
        _folder(docs, "new")
        subprocess.run([sys.executable, "-m", "yuanwen.cli", *_ingest_cmd(docs, kb_dir)], cwd=ROOT,
                       env=_env(), check=True, capture_output=True, timeout=300)
    n_docs = _folder(docs, state)
    _run_killed(point, n, _ingest_cmd(docs, kb_dir))
    # what the kill left answers from what was committed, and never holds a document without passages
    kb = KnowledgeBase(cfg, readonly=True)
    try:
        assert kb.store.damaged_documents() == []
    finally:
        kb.close()
    done = subprocess.run([sys.executable, "-m", "yuanwen.cli", *_ingest_cmd(docs, kb_dir)], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    _assert_whole(cfg, n_docs)
