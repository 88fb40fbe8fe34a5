"""Filesystem faults during ingest: special files, symlinks, loops, non-UTF-8 names, permissions.

Nothing may hang, nothing may end in a traceback, nothing stored may be lost: each fault is one
Chinese line naming the path, and the exit code is non-zero.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from yuanwen.ingest.pipeline import ingest
from yuanwen.ingest.walk import iter_files
from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase

from .conftest import ROOT, SAMPLE

TEXT_A = "关于做好防汛工作的通知\n\n各单位：\n请各单位做好防汛准备，确保安全度汛。\n"
TEXT_B = "关于开展安全生产检查的通知\n\n各单位：\n请各单位开展安全生产大检查，排查隐患。\n"
NOBODY = 65534

# Runs the CLI in a child process; with YW_TEST_UID it drops to that user after importing
# everything it needs (the interpreter lives under /root, which other users cannot read).
_CHILD = r"""
import os, sys
import yuanwen.ingest.pipeline, yuanwen.ingest.readers, yuanwen.ingest.segment, yuanwen.ingest.metadata, yuanwen.ingest.normalise
import yuanwen.cli, yuanwen.config, yuanwen.kb, yuanwen.store, yuanwen.index, yuanwen.bm25, yuanwen.embed
import tests.fake_embedder
import encodings.gb18030, encodings.idna, encodings.utf_32_le, encodings.utf_16_le, csv, json, sqlite3, faiss, numpy, tqdm, filelock
uid = int(os.environ.get("YW_TEST_UID", "-1"))
if uid >= 0:
    # The parsing worker cannot start as that user (the interpreter is under /root): parse
    # in this process. The walk, the checks and the hashing this test is about run here anyway.
    import dataclasses
    if "parse_isolated" in {f.name for f in dataclasses.fields(yuanwen.config.Config)}:
        import yuanwen.ingest.sandbox
        _config = yuanwen.cli._config
        yuanwen.cli._config = lambda *a, **k: dataclasses.replace(_config(*a, **k), parse_isolated=False)
    os.setgid(uid)
    os.setuid(uid)
sys.argv = ["yuanwen"] + sys.argv[1:]
yuanwen.cli.main()
"""


def _cli(*args: str, uid: int | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, YUANWEN_PLUGINS="tests.fake_embedder", PYTHONPATH=str(ROOT),
               PYTHONDONTWRITEBYTECODE="1", YUANWEN_DEBUG="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if uid is not None:
        env["YW_TEST_UID"] = str(uid)
    return subprocess.run([sys.executable, "-c", _CHILD, *args], cwd=ROOT, env=env,
                          capture_output=True, timeout=timeout)


def _out(r: subprocess.CompletedProcess) -> str:
    return r.stdout.decode("utf-8", "replace") + r.stderr.decode("utf-8", "replace")


def _paths(cfg: Config) -> list[str]:
    kb = KnowledgeBase(cfg, readonly=True)
    try:
        return sorted(p for _, p in kb.store.all_paths())
    finally:
        kb.close()


def _docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.txt").write_text(TEXT_A, encoding="utf-8")
    return d


# -- finding 5: special files never hang; links leave the folder only when asked ------------
def test_fifo_and_device_link_are_skipped_without_hanging(tmp_path):
    d = _docs(tmp_path)
    os.mkfifo(d / "pipe.txt")
    os.symlink("/dev/zero", d / "zero.txt")
    kb = tmp_path / "kb"
    try:
        r = _cli("ingest", str(d), "--kb", str(kb), "--embedder", "fake", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("ingest hung on a FIFO or a link to /dev/zero")
    out = _out(r)
    assert r.returncode == 1, out
    assert "Traceback" not in out and "Error" not in out, out
    assert "新增 1 篇" in out
    assert f"失败：{d / 'pipe.txt'}：" in out and "命名管道" in out
    assert f"失败：{d / 'zero.txt'}：" in out and "设备" in out
    # the lock was released: a second ingest (e.g. the app's upload) is not refused
    r2 = _cli("ingest", str(d / "a.txt"), "--kb", str(kb), "--embedder", "fake", timeout=20)
    assert r2.returncode == 0, _out(r2)


def test_explicit_fifo_is_refused(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    try:
        r = _cli("ingest", str(fifo), "--kb", str(tmp_path / "kb"), "--embedder", "fake", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("ingest hung on a FIFO named on the command line")
    assert r.returncode == 1 and "命名管道" in _out(r), _out(r)


def test_links_outside_the_folder_are_skipped_unless_follow_links(tmp_path):
    d = _docs(tmp_path)
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text(TEXT_B, encoding="utf-8")
    os.symlink(outside / "secret.txt", d / "secret.txt")
    os.symlink(outside, d / "private_dir")
    (d / "sub").mkdir()
    os.symlink(d / "a.txt", d / "sub" / "alias.txt")  # inside: followed, stored once
    cfg = Config(kb_dir=tmp_path / "kb")
    rep = ingest([d], cfg, embedder="fake", progress=False)
    assert rep.count("added") == 1 and rep.passages_stored > 0
    failed = {o.path: o.reason for o in rep.failed}
    assert set(failed) == {str(d / "secret.txt"), str(d / "private_dir")}, failed
    assert all("--follow-links" in r and "之外" in r for r in failed.values()), failed
    assert _paths(cfg) == [str(d / "a.txt")]
    # asked for: followed, each file once
    rep = ingest([d], cfg, embedder="fake", progress=False, follow_links=True)
    assert not rep.failed, rep.failed
    # secret.txt and private_dir/secret.txt are one file: stored once, under the first path walked
    assert rep.count("added") == 1 and rep.count("unchanged") == 1 and len(rep.outcomes) == 2
    assert _paths(cfg) == [str(d / "a.txt"), str(d / "secret.txt")]


def test_iter_files_old_callers_get_the_safe_walk(tmp_path):
    d = _docs(tmp_path)
    os.mkfifo(d / "pipe.txt")
    os.symlink("/etc/passwd", d / "passwd.txt")
    os.symlink("loop.txt", d / "loop.txt")
    assert list(iter_files([d])) == [d / "a.txt"]


# -- finding 6: a looping link is one failure line; the rest goes in --------------------------
def test_looping_links_are_reported_per_file(tmp_path):
    d = _docs(tmp_path)
    os.symlink("loop.txt", d / "loop.txt")
    os.symlink("b.txt", d / "c.txt")
    os.symlink("c.txt", d / "b.txt")
    (d / "sub").mkdir()
    os.symlink("..", d / "sub" / "up")  # a folder loop must not recurse
    cfg = Config(kb_dir=tmp_path / "kb")
    rep = ingest([d], cfg, embedder="fake", progress=False)
    assert rep.count("added") == 1
    failed = {o.path: o.reason for o in rep.failed}
    assert set(failed) == {str(d / "loop.txt"), str(d / "b.txt"), str(d / "c.txt")}, failed
    assert all("循环" in r for r in failed.values())
    rep = ingest([d, d / "loop.txt"], cfg, embedder="fake", progress=False, follow_links=True)
    assert rep.count("unchanged") == 1 and len(rep.failed) == 3


# -- finding 10: GBK file names (zip files made on Windows) ------------------------------------
def test_gbk_file_name_goes_in_and_stays(tmp_path):
    d = _docs(tmp_path)
    gbk = os.fsencode(d) + b"/" + "防汛通知.txt".encode("gbk")
    with open(gbk, "wb") as fh:
        fh.write(TEXT_B.encode("utf-8"))
    sub = os.fsencode(d) + b"/" + "附件".encode("gbk")
    os.mkdir(sub)
    with open(sub + b"/" + "说明.txt".encode("gbk"), "wb") as fh:
        fh.write("关于防汛物资储备的说明\n\n请各单位按要求储备防汛物资，落实专人管理。\n".encode("utf-8"))
    kb = tmp_path / "kb"
    r = _cli("ingest", str(d), "--kb", str(kb), "--embedder", "fake")
    out = _out(r)
    assert r.returncode == 0, out
    assert "新增 3 篇" in out and "Traceback" not in out
    paths = _paths(Config(kb_dir=kb))
    assert str(d / "防汛通知.txt") in paths and str(d / "附件" / "说明.txt") in paths
    # unchanged on re-ingest; prune keeps it; JSON output works
    r = _cli("ingest", str(d), "--kb", str(kb), "--embedder", "fake", "--prune", "--json")
    assert r.returncode == 0, _out(r)
    summary = json.loads(r.stdout)
    assert {o["status"] for o in summary["outcomes"]} == {"unchanged"}
    assert len(_paths(Config(kb_dir=kb))) == 3
    # gone: pruned cleanly
    os.remove(gbk)
    r = _cli("ingest", str(d), "--kb", str(kb), "--embedder", "fake", "--prune")
    assert r.returncode == 0 and "删除 1 篇" in _out(r), _out(r)
    assert str(d / "防汛通知.txt") not in _paths(Config(kb_dir=kb))


def test_undecodable_file_name_still_goes_in(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    with open(os.fsencode(d) + b"/bad\xff\xfe.txt", "wb") as fh:
        fh.write(TEXT_A.encode("utf-8"))
    cfg = Config(kb_dir=tmp_path / "kb")
    rep = ingest([d], cfg, embedder="fake", progress=False)
    assert rep.count("added") == 1, rep.outcomes
    (path,) = _paths(cfg)
    path.encode("utf-8")  # printable
    assert ingest([d], cfg, embedder="fake", progress=False, prune=True).count("unchanged") == 1
    assert len(_paths(cfg)) == 1


# -- finding 12: permissions -----------------------------------------------------------------
@pytest.fixture
def shared_tmp():
    """A folder another user can use (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="yuanwen-perm-"))
    d.chmod(0o777)
    yield d
    for p in [d, *d.rglob("*")]:
        if not p.is_symlink():
            p.chmod(0o777 if p.is_dir() else 0o666)
    shutil.rmtree(d)


def _as_other_user() -> int | None:
    """The uid to drop to (root), or None when this process is not root (chmod is enough)."""
    if os.geteuid() != 0:
        return None
    if not hasattr(os, "setuid"):
        pytest.skip("cannot drop root privileges on this platform")
    return NOBODY


def test_unreadable_file_is_one_chinese_line(shared_tmp):
    uid = _as_other_user()
    d = shared_tmp / "docs"
    d.mkdir(mode=0o777)
    (d / "a.txt").write_text(TEXT_A, encoding="utf-8")
    (d / "locked.txt").write_text(TEXT_B, encoding="utf-8")
    (d / "a.txt").chmod(0o644)
    (d / "locked.txt").chmod(0o000)
    r = _cli("ingest", str(d), "--kb", str(shared_tmp / "kb"), "--embedder", "fake", "--no-embed", uid=uid)
    out = _out(r)
    assert r.returncode == 1, out
    assert "Traceback" not in out and "Permission" not in out and "Error" not in out, out
    assert f"失败：{d / 'locked.txt'}：没有读取权限" in out
    assert "新增 1 篇" in out


def test_unreadable_folder_is_reported_and_protected_from_prune(shared_tmp):
    uid = _as_other_user()
    d = shared_tmp / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text(TEXT_A, encoding="utf-8")
    (d / "sub" / "b.txt").write_text(TEXT_B, encoding="utf-8")
    for p in [d, d / "sub"]:
        p.chmod(0o777)
    kb = shared_tmp / "kb"
    r = _cli("ingest", str(d), "--kb", str(kb), "--embedder", "fake", "--no-embed", uid=uid)
    assert r.returncode == 0 and "新增 2 篇" in _out(r), _out(r)
    (d / "sub").chmod(0o000)
    for extra in ([], ["--prune"]):
        r = _cli("ingest", str(d), "--kb", str(kb), "--embedder", "fake", "--no-embed", *extra, uid=uid)
        out = _out(r)
        assert r.returncode == 1, out
        assert "Traceback" not in out and "Permission" not in out, out
        assert f"失败：{d / 'sub'}：" in out and "文件夹" in out, out
        assert "删除 0 篇" in out
    (d / "sub").chmod(0o777)
    assert len(_paths(Config(kb_dir=kb))) == 2


def test_special_files_are_not_regular(tmp_path):
    """check_file refuses what is not a regular file, whatever its name says."""
    from yuanwen.ingest.readers import check_file
    from yuanwen.errors import ReadError

    fifo = tmp_path / "p.txt"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(ReadError, match="命名管道"):
        check_file(fifo)
    with pytest.raises(ReadError, match="设备"):
        link = tmp_path / "z.txt"
        link.symlink_to("/dev/zero")
        check_file(link)
    assert check_file(SAMPLE).st_size > 0


def test_cli_follow_links(tmp_path):
    from click.testing import CliRunner

    from yuanwen.cli import cli

    d = _docs(tmp_path)
    (tmp_path / "elsewhere.txt").write_text(TEXT_B, encoding="utf-8")
    os.symlink(tmp_path / "elsewhere.txt", d / "b.txt")
    kb = str(tmp_path / "kb")
    r = CliRunner().invoke(cli, ["ingest", str(d), "--kb", kb, "--embedder", "fake"])
    assert r.exit_code == 1 and f"失败：{d / 'b.txt'}：是指向导入文件夹之外的符号链接" in r.output, r.output
    r = CliRunner().invoke(cli, ["ingest", str(d), "--kb", kb, "--embedder", "fake", "--follow-links"])
    assert r.exit_code == 0 and "新增 1 篇" in r.output and "未变 1 篇" in r.output, r.output


def test_gbk_folder_named_for_ingest_and_name_as_title(tmp_path):
    """The folder itself has a GBK name; a text without a title line takes its file name's."""
    folder = os.fsencode(tmp_path) + b"/" + "政策文件".encode("gbk")
    os.mkdir(folder)
    with open(folder + b"/" + "2023-05-01-防汛通知.txt".encode("gbk"), "wb") as fh:
        fh.write("请各单位做好防汛准备，确保安全度汛，落实值班值守。".encode("utf-8"))
    cfg = Config(kb_dir=tmp_path / "kb")
    root = os.fsdecode(folder)
    rep = ingest([root], cfg, embedder="fake", progress=False)
    assert rep.count("added") == 1, rep.outcomes
    kb = KnowledgeBase(cfg, readonly=True)
    try:
        row = kb.store.db.execute("SELECT path, title, date FROM documents").fetchone()
    finally:
        kb.close()
    assert row == (str(tmp_path / "政策文件" / "2023-05-01-防汛通知.txt"), "防汛通知", "2023-05-01")
    rep = ingest([root], cfg, embedder="fake", progress=False, prune=True)
    assert [o.status for o in rep.outcomes] == ["unchanged"]
