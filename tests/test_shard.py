"""``ingest --shard i/N``: shares of one folder, each file in exactly one share."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest
from yuanwen.ingest.walk import in_shard, parse_shard
from yuanwen.kb import KnowledgeBase

MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture
def folder(tmp_path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(MINI, src)
    for i in range(12):  # enough files that every share of 3 gets some
        (src / "more" / f"f{i:02d}.txt").parent.mkdir(exist_ok=True)
        (src / "more" / f"f{i:02d}.txt").write_text(
            f"关于第{i}项工作的通知\n\n各单位要认真落实第{i}项工作的部署要求，确保取得实效。\n", encoding="utf-8")
    return src


def _paths(kb_dir: Path) -> set[str]:
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        return {p for _, p in kb.store.all_paths()}
    finally:
        kb.close()


def test_parse_shard_reads_i_of_n_and_refuses_nonsense():
    assert parse_shard("2/4") == (2, 4) and parse_shard(" 1/1 ") == (1, 1)
    for bad in ("0/4", "5/4", "2", "a/b", "1/0", ""):
        with pytest.raises(ValueError, match="分片"):
            parse_shard(bad)


def test_every_file_falls_in_exactly_one_share_whatever_the_mount_point():
    names = [f"sub/{i}/文件{i}.txt" for i in range(300)]
    for n in (1, 2, 3, 7):
        owners = [[i for i in range(1, n + 1) if in_shard(f"/mnt/a/{k}", "/mnt/a", (i, n))] for k in names]
        assert all(len(o) == 1 for o in owners)
        # the same files under another mount point fall in the same shares
        assert owners == [[i for i in range(1, n + 1) if in_shard(f"/data/x/{k}", "/data/x", (i, n))]
                          for k in names]
        if n > 1:  # about equal shares
            sizes = [sum(o == [i] for o in owners) for i in range(1, n + 1)]
            assert min(sizes) > 300 / n * 0.6, sizes


def test_shares_together_ingest_the_folder_once(folder, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert not ingest([folder], Config(kb_dir=whole), embedder="fake", progress=False).failed
    seen: list[set[str]] = []
    for i in (1, 2, 3):
        before = _paths(parts) if parts.exists() else set()
        report = ingest([folder], Config(kb_dir=parts), embedder="fake", progress=False, shard=(i, 3))
        assert not report.failed
        seen.append(_paths(parts) - before)
        assert report.count("added") == len(seen[-1]) > 0
    assert set().union(*seen) == _paths(whole)
    assert sum(len(s) for s in seen) == len(_paths(whole))  # no file in two shares
    kb, ref = (KnowledgeBase(Config(kb_dir=d), readonly=True) for d in (parts, whole))
    try:
        assert kb.store.count_pending() == 0
        assert kb.store.counts()["passages"] == ref.store.counts()["passages"]
    finally:
        kb.close()
        ref.close()


def test_a_share_embeds_and_prunes_only_its_own_documents(folder, tmp_path):
    kb_dir = tmp_path / "kb"
    cfg = Config(kb_dir=kb_dir)
    assert not ingest([folder], cfg, embedder="fake", embed=False, progress=False).failed
    kb = KnowledgeBase(cfg, readonly=True)
    pending_all = kb.store.count_pending()
    kb.close()
    ingest([folder], cfg, embedder="fake", progress=False, shard=(1, 2))
    kb = KnowledgeBase(cfg, readonly=True)
    left = kb.store.count_pending()
    mine = [d for d, p in kb.store.all_paths() if in_shard(p, str(folder.resolve()), (1, 2))]
    others = [d for d, p in kb.store.all_paths() if d not in mine]
    assert kb.store.count_pending(doc_ids=mine) == 0 and 0 < left < pending_all
    assert kb.store.count_pending(doc_ids=others) == left
    kb.close()
    # delete one file of each share: a share prunes only its own
    gone = {}
    for d, p in _paths_by_id(kb_dir).items():
        share = 1 if in_shard(p, str(folder.resolve()), (1, 2)) else 2
        if share not in gone:
            gone[share] = p
            Path(p).unlink()
    report = ingest([folder], cfg, embedder="fake", progress=False, prune=True, shard=(1, 2))
    assert [o.path for o in report.outcomes if o.status == "pruned"] == [gone[1]]
    assert gone[2] in _paths(kb_dir) and gone[1] not in _paths(kb_dir)


def _paths_by_id(kb_dir: Path) -> dict[int, str]:
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        return dict(kb.store.all_paths())
    finally:
        kb.close()


# -- shares written at once into one Milvus server, from several "machines" ------------------
@pytest.mark.slow
def test_shares_on_several_machines_write_one_milvus_kb_at_once(folder, tmp_path):
    """Three ingests of the shares of one folder, each from a knowledge base folder of its own
    (a copy of ``kb.json``, as on three machines), write one Milvus server at once: together
    they store what one ingest stores, each passage once, a text that two shares both hold
    once (the others its aliases), and ``verify`` passes."""
    pytest.importorskip("milvus_lite")
    import os
    import subprocess
    import sys

    from yuanwen.backend import read_descriptor, write_descriptor
    from yuanwen.library import init_kb, open_kb
    from yuanwen.milvus_store import LANE_BITS
    from yuanwen.verify import verify

    from .milvus_server import LiteServer

    text = "关于加强档案工作的意见\n\n各级机关要把档案工作纳入重要议事日程，健全档案管理制度。\n"
    copies = [folder / "dup" / f"副本{k}.txt" for k in range(6)]
    copies[0].parent.mkdir()
    for c in copies:
        c.write_text(text, encoding="utf-8")
    root = str(folder.resolve())
    shares_of_copies = {next(i for i in (1, 2, 3) if in_shard(str(c.resolve()), root, (i, 3))) for c in copies}
    assert len(shares_of_copies) >= 2  # the same text reaches two writers

    whole = tmp_path / "whole"
    assert not ingest([folder], Config(kb_dir=whole), embedder="fake", progress=False).failed
    root_dir = Path(__file__).resolve().parents[1]
    env = {**os.environ, "YUANWEN_PLUGINS": "tests.fake_embedder", "PYTHONPATH": str(root_dir)}
    with LiteServer(tmp_path / "srv" / "shared.db") as uri:
        machines = [tmp_path / f"machine{i}" / "kb" for i in (1, 2, 3)]
        init_kb(machines[0], backend="milvus", uri=uri)
        for m in machines[1:]:
            m.mkdir(parents=True)
            write_descriptor(m, read_descriptor(machines[0]))
        procs = [subprocess.Popen(
            [sys.executable, "-m", "yuanwen.cli", "ingest", str(folder), "--kb", str(m), "--embedder", "fake",
             "--shard", f"{i}/3", "--json"], cwd=root_dir, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True) for i, m in zip((1, 2, 3), machines)]
        outs = [p.communicate(timeout=600) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, err[-3000:]
        reports = [json.loads(out) for out, _ in outs]
        statuses = [o["status"] for r in reports for o in r["outcomes"]]
        assert statuses.count("failed") == 0

        rep = verify(Config(kb_dir=machines[1]))
        assert rep.ok and not rep.problems, rep.problems
        kb, ref = KnowledgeBase(Config(kb_dir=machines[2]), readonly=True), \
            KnowledgeBase(Config(kb_dir=whole), readonly=True)
        try:
            got, want = kb.store.counts(), ref.store.counts()
            assert (got["documents"], got["passages"]) == (want["documents"], want["passages"])
            assert kb.store.count_pending() == 0
            def names(store) -> set[str]:  # every path, stored or an alias
                return {x for d in store.documents() for x in [d.path, *(d.extra.get("aliases") or [])]}
            dup = [d for d in kb.store.documents() if d.title == "关于加强档案工作的意见"]
            assert len(dup) == 1  # one copy of the text, the other paths its aliases
            assert len(dup[0].extra.get("aliases") or []) == len(copies) - 1, \
                ([(d.id, Path(d.path).name) for d in dup],
                 [(Path(o["path"]).name, o["status"], o.get("doc_id")) for r in reports for o in r["outcomes"] if "副本" in o["path"]])
            assert names(kb.store) == names(ref.store)
            lanes = {d.id >> LANE_BITS for d in kb.store.documents()}
            assert len(lanes) >= 2 and 0 not in lanes  # the writers took ids from lanes of their own
            assert not kb.store.foreign_lanes()  # each released its lane
        finally:
            kb.close()
            ref.close()
        lib = open_kb(machines[0])
        try:
            assert lib.search("档案管理制度", k=3, mode="keyword").hits[0].document.title == "关于加强档案工作的意见"
        finally:
            lib.close()


@pytest.mark.slow
def test_a_share_killed_mid_write_is_finished_by_running_it_again(folder, tmp_path):
    """kill -9 of a share's ingest once it holds its lane: the lane stays claimed (verify names
    it), and the same ingest run again on that machine gives it back, cleans up what the killed
    one left and stores the share in full."""
    pytest.importorskip("milvus_lite")
    import os
    import signal
    import subprocess
    import sys
    import time

    from yuanwen.library import init_kb
    from yuanwen.milvus_store import MilvusStore
    from yuanwen.verify import verify

    from .milvus_server import LiteServer

    for i in range(60):  # enough that the kill lands while it writes
        (folder / "bulk" / f"b{i:02d}.txt").parent.mkdir(exist_ok=True)
        (folder / "bulk" / f"b{i:02d}.txt").write_text(
            f"第{i}号文件\n\n" + "".join(f"第{i}项第{k}条要求各地区各部门认真贯彻执行。" for k in range(40)), encoding="utf-8")
    root_dir = Path(__file__).resolve().parents[1]
    env = {**os.environ, "YUANWEN_PLUGINS": "tests.fake_embedder", "PYTHONPATH": str(root_dir)}
    cmd = [sys.executable, "-m", "yuanwen.cli", "ingest", str(folder), "--kb", str(tmp_path / "kb"),
           "--embedder", "fake", "--shard", "1/2", "--json"]
    with LiteServer(tmp_path / "srv" / "shared.db") as uri:
        init_kb(tmp_path / "kb", backend="milvus", uri=uri)
        cfg = Config(kb_dir=tmp_path / "kb")
        proc = subprocess.Popen(cmd, cwd=root_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        watcher = KnowledgeBase(cfg, readonly=True)
        st: MilvusStore = watcher.store
        deadline = time.monotonic() + 120
        while not st.foreign_lanes() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # into its writes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert st.foreign_lanes(), "the killed ingest's lane stays claimed"
        watcher.close()
        rep = verify(cfg)
        assert any("正在写入" in n for n in rep.notes), rep.notes

        done = subprocess.run(cmd, cwd=root_dir, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        rep = verify(cfg)
        assert rep.ok and not rep.problems and not any("正在写入" in n for n in rep.notes), (rep.problems, rep.notes)
        kb = KnowledgeBase(cfg, readonly=True)
        try:
            assert not kb.store.foreign_lanes() and kb.store.orphan_counts() == (0, 0)
            mine = {p for p in _all_files(folder) if in_shard(p, str(folder.resolve()), (1, 2))}
            stored = {x for d in kb.store.documents() for x in [d.path, *(d.extra.get("aliases") or [])]}
            assert stored == mine
            assert kb.store.count_pending() == 0
        finally:
            kb.close()


def _all_files(folder: Path) -> set[str]:
    return {str(p.resolve()) for p in folder.rglob("*") if p.is_file() and p.name != "manifest.csv"}
