"""``ingest --workers N``: embedding in N worker processes (ingest/embed_workers.py).

The fake embedder is deterministic, so a parallel ingest must store exactly the vectors a serial
one does. Kills at chosen points (tests/crashpoint.py) and a worker killed mid-run check that
nothing is half-written, nothing is left running, and the user is told which stage stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from yuanwen.config import Config
from yuanwen.embed import get_embedder
from yuanwen.errors import EmbedderUnavailableError, UsageError
from yuanwen.ingest import embed_workers
from yuanwen.ingest.pipeline import ingest
from yuanwen.kb import KnowledgeBase
from yuanwen.library import open_kb
from yuanwen.verify import verify

from .conftest import SAMPLE
from .fake_embedder import FailingEmbedder, FakeEmbedder, UnpicklableEmbedder
from .test_crash import ROOT, _env

N_DOCS = 4


def _docs(folder: Path, n: int = N_DOCS) -> Path:
    """``n`` documents of distinct passages (each line of the sample marked with its document),
    a few hundred passages in all: many chunks at a small batch size."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = SAMPLE.read_text(encoding="utf-8").split("\n")
    for i in range(n):
        text = "\n".join(f"【{i}】{line}" if line.strip() else line for line in lines)
        (folder / f"doc{i}.txt").write_text(text, encoding="utf-8")
    return folder


def _committed(kb_dir: Path) -> bool:
    """Whether any vector has been committed yet (read while the ingest writes)."""
    try:
        return bool(_vectors(kb_dir))
    except Exception:  # noqa: BLE001 - the database is still being made
        return False


def _vectors(kb_dir: Path) -> dict[str, bytes]:
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        return dict(kb.store.db.execute("SELECT content_hash, vector FROM embeddings").fetchall())
    finally:
        kb.close()


@pytest.fixture(scope="module")
def serial_kb(tmp_path_factory) -> tuple[Path, Path]:
    """The documents, and a knowledge base of them embedded in this process (the reference)."""
    base = tmp_path_factory.mktemp("serial")
    docs = _docs(base / "docs")
    report = ingest([docs], Config(kb_dir=base / "kb"), embedder="fake", progress=False)
    assert not report.failed and report.passages_embedded > 140
    return docs, base / "kb"


def test_parallel_ingest_stores_the_vectors_a_serial_one_does(serial_kb, tmp_path):
    docs, serial = serial_kb
    calls: list[tuple[str, int, int]] = []
    cfg = Config(kb_dir=tmp_path / "kb", embed_workers=2, embed_batch_size=8)
    report = ingest([docs], cfg, embedder="fake", progress=False,
                    on_progress=lambda *a: calls.append(a))
    want = _vectors(serial)
    assert report.passages_embedded == len(want) and report.embed_seconds > 0
    assert _vectors(tmp_path / "kb") == want  # byte for byte, whatever order the chunks came back in
    embedding = [c for c in calls if c[0] == "向量化"]
    assert embedding[0][1] == 0 and embedding[-1] == ("向量化", len(want), len(want))
    assert [c[1] for c in embedding] == sorted(c[1] for c in embedding)
    assert len(embedding) > len(want) // 8  # one step per chunk
    assert verify(cfg).ok
    kb = KnowledgeBase(cfg, readonly=True)
    try:
        assert kb.vector_index().size == kb.stats()["passages"]
    finally:
        kb.close()


def test_library_and_cli_take_workers(serial_kb, tmp_path):
    docs, serial = serial_kb
    with open_kb(tmp_path / "kb", embedder="fake", readonly=False) as lib:
        report = lib.ingest([docs], embed=False)
        assert report.passages_embedded == 0
        report = lib.ingest([docs], workers=2)
        assert report.passages_embedded == len(_vectors(serial))
        with pytest.raises(UsageError, match="至少为 1"):
            lib.ingest([docs], workers=0)
    assert _vectors(tmp_path / "kb") == _vectors(serial)
    out = subprocess.run([sys.executable, "-m", "yuanwen.cli", "ingest", "--help"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=60)
    assert "--workers" in out.stdout and "向量化进程数" in out.stdout


def test_threads_per_worker_never_oversubscribe(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert embed_workers.threads_per_worker(1, cores=16) == 16
    assert embed_workers.threads_per_worker(4, cores=16) == 4
    assert embed_workers.threads_per_worker(3, cores=16) == 5  # 15 threads on 16 cores
    assert embed_workers.threads_per_worker(2, cores=2) == 1
    assert embed_workers.threads_per_worker(8, cores=2) == 1  # more workers than cores: one each
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's own cap is kept
    assert embed_workers.threads_per_worker(2, cores=16) == 2


def test_recipes_name_pickle_or_none():
    named = embed_workers.worker_recipe(get_embedder("fake"))
    assert named is not None and named.name == "fake" and named.module == "tests.fake_embedder"
    pickled = embed_workers.worker_recipe(FakeEmbedder())
    assert pickled is not None and pickled.name is None and pickled.pickled
    assert embed_workers.worker_recipe(UnpicklableEmbedder()) is None


def test_an_embedder_that_cannot_go_to_a_worker_falls_back_to_one_process(serial_kb, tmp_path, caplog):
    docs, serial = serial_kb
    cfg = Config(kb_dir=tmp_path / "kb", embed_workers=2)
    with caplog.at_level(logging.WARNING, logger="yuanwen.ingest.pipeline"):
        report = ingest([docs], cfg, embedder=UnpicklableEmbedder(), progress=False)
    assert "改为单进程向量化" in caplog.text
    assert report.passages_embedded == len(_vectors(serial))
    assert _vectors(tmp_path / "kb") == _vectors(serial)


def test_an_error_in_a_worker_is_the_embedders_own(serial_kb, tmp_path):
    docs, _ = serial_kb
    cfg = Config(kb_dir=tmp_path / "kb", embed_workers=2)
    with pytest.raises(EmbedderUnavailableError, match="无法连接") as err:
        ingest([docs], cfg, embedder=FailingEmbedder(), progress=False)
    assert err.value.report.count("added") == N_DOCS  # what went in before it stays
    kb = KnowledgeBase(cfg, readonly=True)
    try:
        assert kb.stats()["pending"] > 0 and kb.stats()["documents"] == N_DOCS
    finally:
        kb.close()


# -- processes killed ------------------------------------------------------------------------
def _workers_of(pid: int) -> list[int]:
    """The embedding workers started by process ``pid`` (from /proc: Linux only)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"yuanwen.ingest.embed_workers" in argv and str(pid).encode() in argv:
            found.append(int(entry.name))
    return found


def _gone(pids_of, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pids_of():
            return True
        time.sleep(0.1)
    return False


def _cli(docs: Path, kb_dir: Path, *extra: str) -> list[str]:
    return ["ingest", str(docs), "--kb", str(kb_dir), "--embedder", "fake", "--json", *extra]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("point,n", [("embed", 2), ("embed_inflight", 3)])
def test_kill_9_of_the_main_process_leaves_valid_vectors_and_resumes(serial_kb, tmp_path, point, n):
    docs, serial = serial_kb
    kb_dir = tmp_path / "kb"
    env = {**_env(), "YUANWEN_FAKE_DELAY": "0.002"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.crashpoint", point, str(n), "--",
                             *_cli(docs, kb_dir, "--workers", "2")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err[-2000:]
    assert _gone(lambda: _workers_of(proc.pid)), "embedding workers outlived the killed ingest"
    # every vector stored is whole and right; the rest are pending
    want, got = _vectors(serial), _vectors(kb_dir)
    assert 0 < len(got) < len(want) and all(want[h] == v for h, v in got.items())
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        assert kb.store.count_pending() == len(want) - len(got)
    finally:
        kb.close()
    done = subprocess.run([sys.executable, "-m", "yuanwen.cli", *_cli(docs, kb_dir, "--workers", "2")],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _vectors(kb_dir) == want
    assert verify(Config(kb_dir=kb_dir)).ok


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_worker_killed_mid_run_is_a_clean_error_naming_the_stage(serial_kb, tmp_path):
    docs, serial = serial_kb
    kb_dir = tmp_path / "kb"
    env = {**_env(), "YUANWEN_FAKE_DELAY": "0.01"}  # 0.3 s a chunk: the kill lands mid-work
    env.pop("OMP_NUM_THREADS", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "yuanwen.cli", "ingest", str(docs), "--kb", str(kb_dir),
                             "--embedder", "fake", "--workers", "2"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_workers_of(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = _workers_of(proc.pid)
    assert len(workers) == 2, "the two workers did not start"
    # each worker's model threads: the cores shared between the two (at least one)
    cores = embed_workers.usable_cores()
    environ = Path(f"/proc/{workers[0]}/environ").read_bytes().split(b"\0")
    assert f"OMP_NUM_THREADS={max(1, cores // 2)}".encode() in environ
    # some chunks committed (polled: on a loaded machine the workers take a while to start)
    while time.monotonic() < deadline and not _committed(kb_dir):
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before a worker could be killed"
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)  # an error, not a hang
    assert time.monotonic() - t0 < 60
    assert proc.returncode == 1, err[-2000:]
    assert "向量化进程意外退出" in err and "信号 9" in err and "Traceback" not in err, err[-2000:]
    assert "向量化：" in out  # the partial report: what was embedded before it stopped
    assert _gone(lambda: _workers_of(proc.pid))
    got = _vectors(kb_dir)
    want = _vectors(serial)
    assert got and all(want[h] == v for h, v in got.items())
    # the next ingest finishes the job
    done = subprocess.run([sys.executable, "-m", "yuanwen.cli", *_cli(docs, kb_dir, "--workers", "2")],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _vectors(kb_dir) == want
