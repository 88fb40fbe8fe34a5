"""Faults of the knowledge base itself: a damaged database, a read-only or full disk, and the
CLI's odd inputs (issue 10, findings 7, 11 and 16).

Every fault is real (bytes written into the database file, a read-only bind mount, a small
tmpfs), and every command must end in one Chinese line that names the knowledge base and says
what to do, with exit code 1 (2 for a usage error); never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from yuanwen.cli import cli

from .conftest import SAMPLE

PAGE = 4096
PARAS = [p for p in SAMPLE.read_text(encoding="utf-8").split("\n") if p.strip()][1:]


def _small_docs(folder: Path, n: int = 6) -> Path:
    """``n`` small reports cut from the sample, so the database holds several kinds of page."""
    folder.mkdir(parents=True, exist_ok=True)
    size = len(PARAS) // n + 1
    for i in range(n):
        body = "\n".join(PARAS[i * size:(i + 1) * size])
        (folder / f"doc{i}.txt").write_text(f"关于第{i + 1}批重点工作的报告\n\n{body}\n", encoding="utf-8")
    rows = "".join(f"doc{i}.txt,关于第{i + 1}批重点工作的报告,市应急管理局,2022-0{i % 9 + 1}-15,报告\n"
                   for i in range(n))
    (folder / "manifest.csv").write_text("file,title,issuer,date,doc_type\n" + rows, encoding="utf-8")
    return folder


def _run(*args: str):
    r = CliRunner().invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), (
        f"{args}: traceback\n{r.output}")
    return r


def _last_line(r) -> str:
    lines = [ln for ln in (r.stderr or r.output).strip().splitlines() if ln.strip()]
    assert lines, r.output
    return lines[-1]


def _ingest(docs: Path, kb: Path, code: int = 0):
    r = _run("ingest", str(docs), "--kb", str(kb), "--embedder", "fake", "--json")
    assert r.exit_code == code, r.output
    return r


@pytest.fixture
def kb(tmp_path) -> Path:
    kb = tmp_path / "kb"
    _ingest(_small_docs(tmp_path / "docs"), kb)
    return kb


def _damage(db: Path, offset: int, n: int = 16) -> None:
    with open(db, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * n)


def _pages_of(db: Path, table: str) -> list[int]:
    """The leaf pages of ``table`` (SQLite's dbstat), numbered from 1."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'",
                           [table]).fetchall()
    finally:
        con.close()
    assert rows
    return [int(r[0]) for r in rows]


def _says_damaged(line: str, kb: Path) -> None:
    assert line.startswith("错误：") and str(kb) in line, line
    assert "备份" in line and "新" in line, line  # restore a backup, or re-ingest into a new folder
    assert "--repair" not in line, line  # repair cannot fix a damaged database


# -- finding 7: a damaged database -----------------------------------------------------------
READS = [("search", "安全生产"), ("search", "安全生产", "--mode", "keyword"), ("quote", "坚持以人民为中心"),
         ("stats",), ("docs",), ("show", "1")]


def test_damaged_page_at_the_issue_offset(kb):
    """16 bytes of 0xff at offset 27 x 4096, as in the issue: verify reports it, nothing crashes."""
    _damage(kb / "yuanwen.db", 27 * PAGE)
    r = _run("verify", "--kb", str(kb))
    assert r.exit_code == 1 and "问题：" in r.output and "损坏" in r.output, r.output
    for args in READS:
        r = _run(*args, "--kb", str(kb))
        if r.exit_code:
            _says_damaged(_last_line(r), kb)


def test_damaged_passages_page_fails_every_read_with_one_line(kb):
    db = kb / "yuanwen.db"
    for page in _pages_of(db, "passages"):
        _damage(db, (page - 1) * PAGE)
    for args in [("search", "安全生产"), ("quote", "坚持以人民为中心"), ("show", "1")]:
        r = _run(*args, "--kb", str(kb))
        assert r.exit_code == 1, (args, r.output)
        _says_damaged(_last_line(r), kb)
    r = _run("verify", "--kb", str(kb))
    assert r.exit_code == 1 and "问题：" in r.output, r.output
    r = _run("verify", "--kb", str(kb), "--repair")
    assert r.exit_code == 1 and "问题：" in r.output and "备份" in r.output, r.output


def test_damaged_header_does_not_suggest_repair(kb):
    _damage(kb / "yuanwen.db", 0)
    for args in READS:
        r = _run(*args, "--kb", str(kb))
        assert r.exit_code == 1, (args, r.output)
        _says_damaged(_last_line(r), kb)
    for extra in ((), ("--repair",)):
        r = _run("verify", "--kb", str(kb), *extra)
        assert r.exit_code == 1 and "问题：" in r.output and "备份" in r.output, r.output
        assert "verify --repair" not in r.output, r.output
    r = _run("ingest", str(kb.parent / "docs"), "--kb", str(kb), "--embedder", "fake")
    assert r.exit_code == 1
    _says_damaged(_last_line(r), kb)


def test_damaged_document_text_is_reported_not_a_crash(kb):
    """One byte of a document's stored text turned into 0xff: invalid UTF-8 in a TEXT column."""
    db = kb / "yuanwen.db"
    raw = db.read_bytes()
    needle = PARAS[0][:12].encode("utf-8")
    at = raw.find(needle)
    assert at > 0
    _damage(db, at + 1, 1)
    r = _run("verify", "--kb", str(kb))
    assert r.exit_code == 1, r.output
    assert "问题：" in r.output and "doc0.txt" in r.output and "损坏" in r.output, r.output
    r = _run("verify", "--kb", str(kb), "--repair")  # read again from its file
    assert r.exit_code == 0 and "已从原文件重新读入" in r.output, r.output
    assert _run("verify", "--kb", str(kb)).exit_code == 0


# -- finding 11: read-only and full disks ----------------------------------------------------
def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount here ({r.stderr.strip() or r.returncode}): needs root in a "
                    "container that allows mounts")


@pytest.fixture
def mounts():
    points: list[Path] = []
    yield points
    for p in reversed(points):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def _readonly_copy(kb: Path, mounts: list[Path]) -> Path:
    """``kb`` behind a read-only bind mount, without its -shm and -wal files."""
    for suffix in ("-shm", "-wal"):
        assert not (kb / f"yuanwen.db{suffix}").exists()
    ro = kb.parent / "ro"
    ro.mkdir()
    _mount("--bind", str(kb), str(ro))
    mounts.append(ro)
    _mount("-o", "remount,bind,ro", str(ro))
    assert not os.access(ro, os.W_OK)
    return ro


def test_readonly_kb_reads_work(kb, mounts):
    ro = _readonly_copy(kb, mounts)
    for args in READS:
        r = _run(*args, "--kb", str(ro))
        assert r.exit_code == 0, (args, r.output)
    r = _run("search", "安全生产", "--kb", str(ro), "--json")
    assert '"hits": [{' in r.output
    r = _run("verify", "--kb", str(ro))
    assert r.exit_code == 0 and "检查通过" in r.output, r.output


def test_readonly_kb_without_index_files_searches_from_memory(kb, mounts):
    """Index files missing (or stale): a reader rebuilds them in memory and writes nothing."""
    (kb / "vectors.faiss").unlink(missing_ok=True)  # (an exact index saves none: built on open)
    (kb / "index.json").unlink()
    (kb / "keyword.json").unlink()
    ro = _readonly_copy(kb, mounts)
    for mode in ("hybrid", "semantic", "keyword"):
        r = _run("search", "安全生产", "--mode", mode, "--kb", str(ro), "--json")
        assert r.exit_code == 0 and '"hits": [{' in r.output, (mode, r.output)
    r = _run("quote", "坚持以人民为中心", "--kb", str(ro))
    assert r.exit_code == 0, r.output


def test_ingest_into_readonly_kb_is_one_line(kb, mounts, tmp_path):
    ro = _readonly_copy(kb, mounts)
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "new.txt").write_text("关于防汛工作的通知\n\n请做好防汛准备。\n", encoding="utf-8")
    r = _run("ingest", str(tmp_path / "more"), "--kb", str(ro), "--embedder", "fake")
    assert r.exit_code == 1, r.output
    line = _last_line(r)
    assert line.startswith(f"错误：知识库 {ro} 所在位置只读，无法写入"), line
    r = _run("verify", "--kb", str(ro), "--repair")
    assert r.exit_code == 1 and "只读" in _last_line(r), r.output


def _big_docs(folder: Path, n: int) -> Path:
    """``n`` distinct reports of about 30 KB each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rot = PARAS[i % len(PARAS):] + PARAS[:i % len(PARAS)]
        (folder / f"big{i:03d}.txt").write_text(f"关于第{i + 1}项工作的报告\n\n" + "\n".join(rot) + "\n",
                                                encoding="utf-8")
    return folder


def test_full_disk_is_one_line_loses_nothing_and_resumes(tmp_path, mounts):
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk))
    mounts.append(disk)
    kb = disk / "kb"
    _ingest(_small_docs(tmp_path / "docs", 2), kb)
    before = _run("docs", "--kb", str(kb), "--json").output

    big = _big_docs(tmp_path / "big", 60)
    r = _run("ingest", str(big), "--kb", str(kb), "--embedder", "fake")
    assert r.exit_code == 1, r.output
    line = _last_line(r)
    assert "磁盘空间不足" in line and str(kb) in line, r.output
    assert "Traceback" not in r.output and "OSError" not in r.output and "Errno" not in r.output
    assert "中断：新增" in r.output and "处理时出错" not in r.output, r.output  # the summary, once
    # no document went in without its passages (a ghost); the FAISS file may lag (searches
    # rebuild it in memory) until the next ingest
    v = _run("verify", "--kb", str(kb))
    assert "文档已损坏" not in v.output and "Traceback" not in v.output, v.output
    # nothing half-written left behind: one keyword folder (the one keyword.json names) at most
    left = sorted(p.name for p in kb.iterdir())
    assert not [n for n in left if n.endswith(".tmp")], left
    folders = [n for n in left if n.startswith("keyword-")]
    if (kb / "keyword.json").exists():
        assert folders == [json.loads((kb / "keyword.json").read_text())["folder"]], left
    else:
        assert folders == [], left
    # what was stored before is still there and readable
    r = _run("docs", "--kb", str(kb), "--json")
    assert r.exit_code == 0
    had = {d["path"] for d in json.loads(before)}
    assert had <= {d["path"] for d in json.loads(r.output)}

    # room again: the next ingest completes and the knowledge base verifies clean
    _mount("-o", "remount,size=64m", str(disk))
    r = _run("ingest", str(big), "--kb", str(kb), "--embedder", "fake")
    assert r.exit_code == 0, r.output
    r = _run("verify", "--kb", str(kb))
    assert r.exit_code == 0, r.output


# -- finding 16: the CLI's odd inputs ---------------------------------------------------------
def test_batch_file_in_gbk(kb, tmp_path):
    batch = tmp_path / "queries.txt"
    batch.write_bytes("安全生产\n坚持以人民为中心的发展思想\n".encode("gbk"))
    r = _run("search", "--batch", str(batch), "--kb", str(kb))
    assert r.exit_code == 0, r.output
    assert r.output.count('"query": "安全生产"') == 1, r.output
    r = _run("quote", "--batch", str(batch), "--kb", str(kb))
    assert r.exit_code == 0 and '"query": "坚持以人民为中心的发展思想"' in r.output, r.output


def test_batch_file_that_is_binary_is_a_clear_error(kb, tmp_path):
    batch = tmp_path / "queries.bin"
    batch.write_bytes(bytes(range(256)) * 4)
    r = _run("search", "--batch", str(batch), "--kb", str(kb))
    assert r.exit_code == 2 and str(batch) in _last_line(r), r.output


def test_kb_naming_a_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("x", encoding="utf-8")
    _small_docs(tmp_path / "docs", 1)
    for args in (("ingest", str(tmp_path / "docs"), "--embedder", "fake"), ("search", "安全"), ("stats",)):
        r = _run(*args, "--kb", str(f))
        assert r.exit_code in (1, 2), r.output
        line = _last_line(r)
        assert str(f) in line and "不是文件夹" in line, line


@pytest.mark.parametrize("bad", ["2022-02-30", "2023-02-29", "2022-04-31", "2022-13"])
def test_impossible_dates_are_refused(kb, bad):
    for cmd in (("search", "安全生产"), ("docs",)):
        r = _run(*cmd, "--since", bad, "--kb", str(kb))
        assert r.exit_code == 2 and "日期不存在" in r.output, r.output


def test_leap_day_is_accepted(kb):
    r = _run("docs", "--since", "2024-02-29", "--kb", str(kb))
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("pattern", ["%", "_", "\\"])
def test_issuer_wildcards_are_literal(kb, pattern):
    r = _run("docs", "--issuer", pattern, "--kb", str(kb), "--json")
    assert r.exit_code == 0 and r.output.strip() == "[]", r.output
    r = _run("search", "安全生产", "--issuer", pattern, "--kb", str(kb), "--json")
    assert r.exit_code == 0 and '"hits": []' in r.output, r.output


def test_unexpected_error_is_one_line_with_an_id(kb, monkeypatch, tmp_path):
    import yuanwen.search.documents

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(yuanwen.search.documents, "list_documents", boom)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("YUANWEN_DEBUG", raising=False)
    r = _run("docs", "--kb", str(kb))
    assert r.exit_code == 1
    line = _last_line(r)
    assert line.startswith("错误：") and "编号" in line and "Traceback" not in r.output, r.output
    log = (tmp_path / "cache" / "yuanwen" / "errors.log").read_text(encoding="utf-8")
    err_id = line.split("编号")[1].strip(" ：:）)").split("，")[0].split("）")[0].strip()
    assert err_id and err_id in log and "simulated bug" in log and "Traceback" in log


def _fill(disk: Path, leave: int) -> None:
    """Fill the file system of ``disk`` until about ``leave`` bytes are free."""
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))


def test_index_saves_on_a_full_disk_leave_nothing_behind(kb, tmp_path, mounts):
    """The keyword and FAISS index files are written to temporary names and renamed: on a full
    disk the temporary files go, the saved index stays as it was, and the error says so."""
    from yuanwen.bm25 import EagerBM25
    from yuanwen.config import Config
    from yuanwen.errors import DiskFullError
    from yuanwen.index import FaissIndex
    from yuanwen.kb import KnowledgeBase

    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk))
    mounts.append(disk)
    shutil.copytree(kb, disk / "kb")
    before = sorted(p.name for p in (disk / "kb").iterdir())
    meta = (disk / "kb" / "keyword.json").read_text(encoding="utf-8")
    base = KnowledgeBase(Config(kb_dir=disk / "kb"))
    try:
        kw = EagerBM25.build(base.store)
        vec = FaissIndex.build(base.store, base.dim, base.built_with, exact_max=3)
        assert vec.kind == "hnsw"  # a graph: it saves a file (an exact index, only index.json)
        _fill(disk, 8192)
        with pytest.raises(DiskFullError, match="磁盘空间不足"):
            kw.save(disk / "kb")
        with pytest.raises(DiskFullError, match="磁盘空间不足"):
            vec.save(disk / "kb")
    finally:
        base.close()
    after = sorted(p.name for p in (disk / "kb").iterdir() if not p.name.startswith("yuanwen.db-"))
    assert after == [n for n in before if not n.startswith("yuanwen.db-")]
    assert (disk / "kb" / "keyword.json").read_text(encoding="utf-8") == meta
    (disk / "filler").unlink()
    r = _run("search", "安全生产", "--kb", str(disk / "kb"), "--json")
    assert r.exit_code == 0 and '"hits": [{' in r.output
