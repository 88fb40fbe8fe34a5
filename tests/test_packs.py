"""Saved study packs (<kb>/packs/): the library, the app (AppTest), the CLI, and faults in the
middle of a save (an exception, kill -9)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from yuanwen.cli import cli
from yuanwen.config import Config
from yuanwen.errors import KnowledgeBaseError, PackConflictError, PackNotFoundError, UsageError
from yuanwen.ingest.pipeline import ingest
from yuanwen.library import Library, open_kb
from yuanwen.models import PackItem, PackSection, StudyPack
from yuanwen.search import pack_store

from .conftest import MINI, ROOT, FakeEmbedder, served  # noqa: F401  (registers the "fake" embedder)


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, backend) -> Path:
    kb = tmp_path_factory.mktemp("packs") / "kb"
    assert not ingest([MINI], Config(kb_dir=kb), embedder="fake", progress=False).failed
    return kb


@pytest.fixture
def lib(kb_dir):
    """The library on the module's knowledge base, with no saved packs."""
    shutil.rmtree(kb_dir / "packs", ignore_errors=True)
    with open_kb(kb_dir) as handle:
        yield handle


@pytest.fixture(scope="module")
def pids(kb_dir) -> list[int]:
    """Passage ids of the module's knowledge base, in reading order."""
    with open_kb(kb_dir) as handle:
        ids = [p.id for d in handle.documents() for p in handle.document_passages(d.id)]
    assert len(ids) >= 6
    return ids


def _item(n: int) -> PackItem:
    return PackItem(text=f"第{n}段正文", title="标题", citation="《标题》。", passage_id=n)


def _pack(n: int, title: str = "防汛专题学习") -> StudyPack:
    return StudyPack(title=title, sections=[PackSection("一、重要论述", [_item(i) for i in range(1, n + 1)])])


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


# -- the library ---------------------------------------------------------------------------------
def test_saved_packs_are_named_listed_opened_renamed_and_deleted(lib, kb_dir):
    assert lib.packs() == []
    a = lib.create_pack("防汛学习")
    assert a.pack.title == "防汛学习" and a.revision == 1
    assert (kb_dir / "packs" / "防汛学习.json").is_file()
    lib.save_pack("安全生产", _pack(3))
    packs = kb_dir / "packs"
    os.utime(packs / "防汛学习.json", (1_700_000_000, 1_700_000_000))
    os.utime(packs / "安全生产.json", (1_600_000_000, 1_600_000_000))
    assert [p.name for p in lib.packs()] == ["防汛学习", "安全生产"]  # most recently saved first
    os.utime(packs / "安全生产.json", (1_800_000_000, 1_800_000_000))
    assert [p.name for p in lib.packs()] == ["安全生产", "防汛学习"]
    assert {p.name: lib.pack_size(p.pack) for p in lib.packs()} == {"防汛学习": 0, "安全生产": 3}
    assert lib.open_pack("安全生产").pack == _pack(3)
    renamed = lib.rename_pack("安全生产", "安全生产专题")
    assert renamed.pack == _pack(3) and {p.name for p in lib.packs()} == {"防汛学习", "安全生产专题"}
    lib.delete_pack("防汛学习")
    assert [p.name for p in lib.packs()] == ["安全生产专题"]
    with pytest.raises(UsageError, match="没有名为"):
        lib.open_pack("防汛学习")
    # names that cannot be file names everywhere, and names that clash
    for bad in ("", "a/b", "..", "x.json", "CON", "名" * 61, "a\x00b"):
        with pytest.raises(UsageError):
            lib.create_pack(bad)
    with pytest.raises(UsageError, match="已有名为"):
        lib.create_pack("安全生产专题")
    lib.create_pack("Study")
    with pytest.raises(UsageError, match="已有名为"):
        lib.create_pack("STUDY")  # one file on Windows and macOS
    assert lib.free_pack_name("安全生产专题") == "安全生产专题（2）"
    # a saved pack file is the shared form: the loader reads it as it is
    raw = (kb_dir / "packs" / "安全生产专题.json").read_bytes()
    assert lib.load_pack(raw, "安全生产专题.json") == _pack(3)


def test_a_file_that_is_not_a_pack_is_refused_and_changes_nothing(lib, kb_dir):
    lib.save_pack("防汛", _pack(4))
    before = (kb_dir / "packs" / "防汛.json").read_bytes()
    for raw in (b'{"foo": 1}', b"[]", b"not json", b""):
        with pytest.raises(UsageError, match="无法载入汇编文件"):
            lib.import_pack(raw, "防汛.json", replace=True)
    with pytest.raises(UsageError, match="这不是汇编文件"):
        lib.load_pack(b'{"foo": 1}', "foo.json")
    with pytest.raises(UsageError, match="已有名为“防汛”的汇编（4 段）"):
        lib.import_pack(json.dumps(_pack(1).to_dict()), "防汛.json")
    assert (kb_dir / "packs" / "防汛.json").read_bytes() == before
    assert lib.import_pack(json.dumps(_pack(1).to_dict()), "防汛.json", replace=True).pack == _pack(1)


DAMAGED = b'{"title": "\xe9\x98\xb2\xe6\xb1\x9b", "sections": [{"items": [{"text": '  # cut short


def test_a_pack_file_that_cannot_be_read_is_never_overwritten(lib, kb_dir):
    lib.save_pack("好的", _pack(1))
    path = kb_dir / "packs" / "坏的.json"
    path.write_bytes(DAMAGED)
    listed = {p.name: p for p in lib.packs()}
    assert "无法读取：文件不是有效的 JSON" in listed["坏的"].error and not listed["好的"].error
    with pytest.raises(UsageError, match="无法读取"):
        lib.open_pack("坏的")
    for save in (lambda: lib.save_pack("坏的", _pack(2)),  # no revision: used to replace it
                 lambda: lib.save_pack("坏的", _pack(2), revision=0),
                 lambda: lib.edit_saved_pack("坏的", "add_item", _item(9)),
                 lambda: lib.create_pack("坏的")):
        with pytest.raises(UsageError) as caught:
            save()
        assert not isinstance(caught.value, PackNotFoundError)
        assert path.read_bytes() == DAMAGED
    with pytest.raises(UsageError, match="已有名为“坏的”的汇编（文件无法读取）"):
        lib.import_pack(json.dumps(_pack(1).to_dict()), "坏的.json")
    assert path.read_bytes() == DAMAGED
    # renamed without reading it, and said to be unreadable, not refused after the fact
    renamed = lib.rename_pack("坏的", "坏的（待修）")
    assert renamed.name == "坏的（待修）" and renamed.error and not path.exists()
    moved = kb_dir / "packs" / "坏的（待修）.json"
    assert moved.read_bytes() == DAMAGED
    lib.delete_pack("坏的（待修）")  # deleted without reading it
    assert not moved.exists() and [p.name for p in lib.packs()] == ["好的"]
    # replacing on purpose (import --replace) is the one way over a damaged file
    path.write_bytes(DAMAGED)
    assert lib.import_pack(json.dumps(_pack(2).to_dict()), "坏的.json", replace=True).pack == _pack(2)
    assert lib.open_pack("坏的").pack == _pack(2)


def test_a_missing_pack_is_told_apart_from_a_damaged_one(lib, kb_dir):
    with pytest.raises(PackNotFoundError, match="没有名为“无此汇编”"):
        lib.open_pack("无此汇编")
    with pytest.raises(PackNotFoundError):
        lib.edit_saved_pack("无此汇编", "add_item", _item(1))
    with pytest.raises(PackNotFoundError):
        lib.delete_pack("无此汇编")
    with pytest.raises(PackNotFoundError):
        lib.rename_pack("无此汇编", "别的")


def test_an_import_does_not_overwrite_a_pack_made_while_it_checked_the_name(lib, kb_dir, monkeypatch):
    """Another session makes the pack between the import's name check and its save: one of the
    two is refused; neither is silently overwritten."""
    real = pack_store._existing_name
    results: dict[str, object] = {}
    racer = threading.Thread(target=lambda: results.update(
        racer=_outcome(lambda: open_kb(kb_dir).create_pack("抢先", _pack(3)))))

    def check_then_race(kb: Path, name: str):
        found = real(kb, name)
        if not racer.is_alive() and "racer" not in results:
            racer.start()  # the other session saves now...
            racer.join(timeout=1.0)  # ...and gets through unless the import holds the lock
        return found

    monkeypatch.setattr(pack_store, "_existing_name", check_then_race)
    results["import"] = _outcome(lambda: lib.import_pack(json.dumps(_pack(1).to_dict()), "抢先.json"))
    racer.join(timeout=30)
    monkeypatch.undo()
    won = [who for who, r in results.items() if r == "ok"]
    assert len(won) == 1, results  # exactly one saved; the other was told the name is taken
    lost = next(r for who, r in results.items() if who not in won)
    assert "已有名为“抢先”的汇编" in lost
    assert lib.pack_size(lib.open_pack("抢先").pack) == (1 if won == ["import"] else 3)


def _outcome(fn) -> str:
    """"ok", or the message of the UsageError ``fn`` raised."""
    try:
        fn()
    except UsageError as exc:
        return str(exc)
    return "ok"


def test_a_stale_revision_is_refused_and_safe_edits_land_on_the_latest(lib):
    first = lib.save_pack("共用", _pack(2))
    lib.edit_saved_pack("共用", "add_item", _item(3))  # another window adds a passage
    with pytest.raises(PackConflictError, match="已在别处"):
        lib.save_pack("共用", _pack(1), revision=first.revision)
    with pytest.raises(PackConflictError):
        lib.edit_saved_pack("共用", "move_item", 0, 0, 1, revision=first.revision)
    latest = lib.edit_saved_pack("共用", "add_item", _item(4))  # no revision: applied to the latest
    assert [i.passage_id for i in latest.pack.sections[0].items] == [1, 2, 3, 4]
    assert latest.revision == first.revision + 2


def test_concurrent_edits_of_different_packs_and_of_one_pack_all_land(kb_dir, lib):
    lib.save_pack("甲", StudyPack())
    lib.save_pack("乙", StudyPack())

    def add(name: str, start: int) -> None:
        with open_kb(kb_dir) as handle:  # one handle per "session"
            for n in range(start, start + 15):
                handle.edit_saved_pack(name, "add_item", _item(n))

    threads = [threading.Thread(target=add, args=a) for a in (("甲", 0), ("乙", 100), ("甲", 200))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lib.pack_size(lib.open_pack("甲").pack) == 30
    assert [i.passage_id for i in lib.open_pack("乙").pack.sections[0].items] == list(range(100, 115))


# -- faults in the middle of a save ---------------------------------------------------------------
def test_an_exception_in_the_middle_of_a_save_keeps_the_saved_pack(lib, kb_dir, monkeypatch):
    lib.save_pack("保留", _pack(4))
    path = kb_dir / "packs" / "保留.json"
    before = path.read_bytes()

    def boom(_fd):
        raise RuntimeError("power cut")

    monkeypatch.setattr(pack_store.os, "fsync", boom)  # after the new bytes are written, before the rename
    with pytest.raises(RuntimeError):
        lib.save_pack("保留", _pack(1))
    monkeypatch.undo()

    def full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pack_store.os, "replace", full)
    with pytest.raises(KnowledgeBaseError, match="磁盘空间不足"):
        lib.edit_saved_pack("保留", "set_title", "新标题")
    monkeypatch.undo()
    assert path.read_bytes() == before and lib.open_pack("保留").pack == _pack(4)
    assert sorted(p.name for p in path.parent.iterdir()) == [".packs.lock", "保留.json"]  # no temporary left


KILL_SCRIPT = """
import sys
from yuanwen.library import open_kb
from yuanwen.models import PackItem, PackSection, StudyPack
lib = open_kb(sys.argv[1])
packs = [StudyPack(title=t, sections=[PackSection("组", [PackItem(t * 400, "标题", "出处", passage_id=i)
                                                       for i in range(n)])])
         for t, n in (("甲", 300), ("乙", 50))]
n = 0
while True:
    lib.save_pack("反复保存", packs[n % 2])
    n += 1
    if n == 1:
        print("ready", flush=True)
"""


@pytest.mark.slow
def test_kill_9_in_the_middle_of_saves_leaves_a_whole_pack(backend, tmp_path):
    kb_dir = tmp_path / "kb"  # its own: two processes open it (on Milvus, through a server)
    with open_kb(kb_dir, embedder="fake", readonly=False) as writer:
        assert not writer.ingest([MINI / "law.md"]).failed
    script = tmp_path / "kill_saves.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    rng = random.Random(13)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with served(kb_dir), open_kb(kb_dir) as lib:
        for _ in range(4):
            proc = subprocess.Popen([sys.executable, str(script), str(kb_dir)], stdout=subprocess.PIPE, env=env)
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.05, 0.4))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            saved = lib.open_pack("反复保存")  # whole, and one of the two versions
            assert (saved.pack.title, lib.pack_size(saved.pack)) in {("甲", 300), ("乙", 50)}
            assert saved.revision >= 1
        assert [p.name for p in lib.packs()] == ["反复保存"]  # a left-over temporary is not a pack


# -- the app (AppTest) ------------------------------------------------------------------------------
def _add_two_hits(at: AppTest) -> list[int]:
    hits = at.session_state["search_res"].hits
    for hit in hits[:2]:
        ok(at.button(key=f"hit_add_{hit.passage.id}").click().run())
    return [h.passage.id for h in hits[:2]]


def test_the_pack_survives_a_new_session(app, kb_dir):
    at = ok(app({"q": "安全生产", "mode": "keyword"}))
    ids = _add_two_hits(at)
    assert at.session_state["pack_name"] == "学习材料汇编"
    # a reload (F5) or a restart of the server is a new session on the same knowledge base
    again = ok(app({"page": "pack"}))
    pack = again.session_state["pack"]
    assert [i.passage_id for s in pack.sections for i in s.items] == ids
    assert again.selectbox(key="pk_pick").value == "学习材料汇编"
    assert any(f"pk_note_0_1_{ids[1]}" == t.key for t in again.text_area)
    assert again.query_params["pack"] == "学习材料汇编"  # so a reload of /pack reopens this pack
    assert (kb_dir / "packs" / "学习材料汇编.json").is_file()


def test_a_reload_on_any_page_goes_on_with_the_sessions_pack(app, kb_dir):
    one = ok(app({"q": "安全生产", "mode": "keyword"}))
    ids = _add_two_hits(one)
    assert one.session_state["pack_name"] == "学习材料汇编"
    assert one.query_params["pack"] == "学习材料汇编"  # the search page's address names the pack too
    with open_kb(kb_dir) as handle:  # meanwhile another pack is saved elsewhere, more recently
        handle.save_pack("别人的汇编", _pack(2))
    os.utime(kb_dir / "packs" / "学习材料汇编.json", (1_600_000_000, 1_600_000_000))
    assert [p.name for p in handle.packs()][0] == "别人的汇编"
    # F5 on the search page: a new session on the same address
    assert one.query_params["q"] == "安全生产"
    again = ok(app(dict(one.query_params)))
    assert again.session_state["pack_name"] == "学习材料汇编"
    pid = next(h.passage.id for h in again.session_state["search_res"].hits if h.passage.id not in ids)
    ok(again.button(key=f"hit_add_{pid}").click().run())  # and what it adds lands in that pack
    with open_kb(kb_dir) as handle:
        assert Library.pack_size(handle.open_pack("学习材料汇编").pack) == 3
        assert handle.open_pack("别人的汇编").pack == _pack(2)
    # an address naming a pack deleted meanwhile: that name, never another pack
    with open_kb(kb_dir) as handle:
        handle.delete_pack("学习材料汇编")
    gone = ok(app({"q": "安全生产", "mode": "keyword", "pack": "学习材料汇编"}))
    assert gone.session_state["pack_name"] == "学习材料汇编" and Library.pack_size(gone.session_state["pack"]) == 0
    ok(gone.button(key=f"hit_add_{pid}").click().run())
    with open_kb(kb_dir) as handle:
        assert Library.pack_size(handle.open_pack("学习材料汇编").pack) == 1
        assert handle.open_pack("别人的汇编").pack == _pack(2)


def _four_passage_pack(kb_dir: Path, pids: list[int]) -> StudyPack:
    with open_kb(kb_dir) as handle:
        pack = handle.add_to_pack(Library.new_pack("防汛抗旱专题学习"), pids[:4], section="一、重要论述")
        handle.save_pack("防汛", pack)
    return pack


def test_loading_a_file_that_is_not_a_pack_changes_nothing(app, kb_dir, pids):
    pack = _four_passage_pack(kb_dir, pids)
    before = (kb_dir / "packs" / "防汛.json").read_bytes()
    at = ok(app({"page": "pack"}))
    assert at.session_state["pack"] == pack and at.text_input(key="pk_title").value == "防汛抗旱专题学习"
    at.file_uploader(key="pk_load_0").set_value([("foo.json", b'{"foo":1}', "application/json")]).run()
    ok(at)
    assert any("这不是汇编文件" in e.value and "没有改动" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["pack"] == pack and Library.pack_size(at.session_state["pack"]) == 4
    assert at.text_input(key="pk_title").value == "防汛抗旱专题学习"
    assert not [b for b in at.button if b.key in ("pk_replace", "pk_load_new")]
    assert (kb_dir / "packs" / "防汛.json").read_bytes() == before


def test_loading_a_valid_pack_over_a_non_empty_one_asks_first(app, kb_dir, pids):
    pack = _four_passage_pack(kb_dir, pids)
    shared = json.dumps(_pack(1, "别人的汇编").to_dict(), ensure_ascii=False).encode("utf-8")
    at = ok(app({"page": "pack"}))
    at.file_uploader(key="pk_load_0").set_value([("别人的汇编.json", shared, "application/json")]).run()
    assert any("别人的汇编" in i.value and "1 段" in i.value for i in ok(at).info)
    assert at.session_state["pack"] == pack  # nothing happens before a choice
    ok(at.button(key="pk_replace").click().run())
    assert any("有 4 段" in w.value and "确定替换" in w.value for w in at.warning), [w.value for w in at.warning]
    assert at.session_state["pack"] == pack and Library.pack_size(Library.load_pack(
        (kb_dir / "packs" / "防汛.json").read_bytes())) == 4  # asked, not yet replaced
    ok(at.button(key="pk_replace_no").click().run())
    assert at.session_state["pack"] == pack and not [w for w in at.warning if "确定替换" in w.value]
    # load it again: kept as a new pack this time, beside the current one
    at.file_uploader(key="pk_load_1").set_value([("别人的汇编.json", shared, "application/json")]).run()
    ok(at.button(key="pk_load_new").click().run())
    assert at.session_state["pack_name"] == "别人的汇编" and at.session_state["pack"] == _pack(1, "别人的汇编")
    with open_kb(kb_dir) as handle:
        assert {p.name: handle.pack_size(p.pack) for p in handle.packs()} == {"防汛": 4, "别人的汇编": 1}
    # back to the 4-passage pack, and replace it after saying yes
    ok(at.selectbox(key="pk_pick").set_value("防汛").run())
    assert at.session_state["pack"] == pack
    at.file_uploader(key="pk_load_2").set_value([("别人的汇编.json", shared, "application/json")]).run()
    ok(at.button(key="pk_replace").click().run())
    ok(at.button(key="pk_replace_yes").click().run())
    assert at.session_state["pack_name"] == "防汛" and at.session_state["pack"] == _pack(1, "别人的汇编")
    with open_kb(kb_dir) as handle:
        assert handle.open_pack("防汛").pack == _pack(1, "别人的汇编")


def test_new_rename_and_delete_in_the_app(app, kb_dir):
    at = ok(app({"page": "pack"}))
    at.text_input(key="pk_new_name").input("第一期")
    ok(at.button(key="pk_create").click().run())
    assert at.session_state["pack_name"] == "第一期" and any("已新建" in s.value for s in at.success)
    at.text_input(key="pk_new_name").input("第二期")
    ok(at.button(key="pk_create").click().run())
    at.text_input(key="pk_title").input("第二期学习材料").run()
    at.text_input(key="pk_rename_to").input("第二期（修订）")
    ok(at.button(key="pk_rename").click().run())
    assert at.session_state["pack_name"] == "第二期（修订）"
    assert at.session_state["pack"].title == "第二期学习材料"
    assert sorted(at.selectbox(key="pk_pick").options) == sorted(["第一期（0 段）", "第二期（修订）（0 段）"])
    ok(at.button(key="pk_delete").click().run())
    assert at.session_state["pack_name"] == "第一期"
    assert sorted(p.name for p in (kb_dir / "packs").glob("*.json")) == ["第一期.json"]
    at.text_input(key="pk_new_name").input("第一期")
    ok(at.button(key="pk_create").click().run())
    assert any("已有名为" in e.value for e in at.error)


def test_two_sessions_on_different_packs_do_not_clobber_each_other(app, kb_dir, pids):
    with open_kb(kb_dir) as handle:
        handle.create_pack("甲")
        handle.create_pack("乙")
    one = ok(app({"page": "pack", "pack": "甲"}))
    two = ok(app({"page": "pack", "pack": "乙"}))
    assert (one.session_state["pack_name"], two.session_state["pack_name"]) == ("甲", "乙")
    one.text_input(key="pk_title").input("甲的标题").run()
    two.text_input(key="pk_title").input("乙的标题").run()
    one.text_input(key="pk_new_section").input("一、甲组")
    ok(one.button(key="pk_add_section").click().run())
    two.text_input(key="pk_new_section").input("一、乙组")
    ok(two.button(key="pk_add_section").click().run())
    with open_kb(kb_dir) as handle:
        a, b = handle.open_pack("甲").pack, handle.open_pack("乙").pack
    assert (a.title, [s.title for s in a.sections]) == ("甲的标题", ["一、甲组"])
    assert (b.title, [s.title for s in b.sections]) == ("乙的标题", ["一、乙组"])


def test_an_edit_by_position_of_a_pack_changed_in_another_window_is_refused(app, kb_dir, pids):
    with open_kb(kb_dir) as handle:
        handle.save_pack("共用", handle.add_to_pack(Library.new_pack("共用"), pids[:2]))
    one = ok(app({"page": "pack", "pack": "共用"}))
    two = ok(app({"q": "安全生产", "mode": "keyword"}))
    assert two.session_state["pack_name"] == "共用"
    hit = next(h for h in two.session_state["search_res"].hits if h.passage.id not in pids[:2])
    ok(two.button(key=f"hit_add_{hit.passage.id}").click().run())  # window two adds a passage
    # window one, still showing 2 passages, moves one: refused, told, and shown the latest
    first = one.session_state["pack"].sections[0].items[0].passage_id
    ok(one.button(key=f"pk_down_0_0_{first}").click().run())
    assert any("已在别处" in e.value for e in one.error), [e.value for e in one.error]
    assert Library.pack_size(one.session_state["pack"]) == 3
    # the passage added in window two is there for both; adding it again from one says so
    with open_kb(kb_dir) as handle:
        assert Library.find_in_pack(handle.open_pack("共用").pack, hit.passage.id) is not None


def test_a_pack_gone_right_after_a_refused_edit_is_said_plainly(app, kb_dir, pids, monkeypatch):
    with open_kb(kb_dir) as handle:
        handle.save_pack("共用", handle.add_to_pack(Library.new_pack("共用"), pids[:2]))
    one = ok(app({"page": "pack", "pack": "共用"}))
    with open_kb(kb_dir) as handle:
        handle.edit_saved_pack("共用", "add_item", _item(99))  # another window adds a passage
    real = pack_store.edit_pack

    def edit_then_deleted(kb, name, *args, **kwargs):
        try:
            return real(kb, name, *args, **kwargs)
        finally:  # deleted elsewhere between the refusal and the reload of the latest version
            (kb_dir / "packs" / f"{name}.json").unlink(missing_ok=True)

    monkeypatch.setattr(pack_store, "edit_pack", edit_then_deleted)
    first = one.session_state["pack"].sections[0].items[0].passage_id
    ok(one.button(key=f"pk_down_0_0_{first}").click().run())
    errors = [e.value for e in one.error]
    assert any("已在别处" in e and "无法重新载入" in e and "没有名为“共用”" in e for e in errors), errors
    assert not any("错误编号" in e for e in errors)


def test_a_pack_that_cannot_be_read_can_be_deleted_in_the_app(app, kb_dir):
    with open_kb(kb_dir) as handle:
        handle.save_pack("好的", _pack(1))
    (kb_dir / "packs" / "坏的.json").write_bytes(DAMAGED)
    at = ok(app({"page": "pack"}))
    assert at.session_state["pack_name"] == "好的"
    assert any("汇编“坏的”的文件" in w.value and "无法读取" in w.value for w in at.warning), [w.value for w in at.warning]
    ok(at.button(key="pk_delete_bad_0").click().run())
    assert not (kb_dir / "packs" / "坏的.json").exists() and any("已删除汇编“坏的”" in s.value for s in at.success)
    assert not any("无法读取" in w.value for w in at.warning)
    assert at.session_state["pack_name"] == "好的"
    # opened by its address, a damaged pack is the session's, refused edits say why, and it can go
    (kb_dir / "packs" / "坏的.json").write_bytes(DAMAGED)
    bad = ok(app({"page": "pack", "pack": "坏的"}))
    assert bad.session_state["pack_name"] == "坏的" and any("无法读取" in e.value for e in bad.error)
    bad.text_input(key="pk_new_section").input("一、新组")
    ok(bad.button(key="pk_add_section").click().run())
    assert any("无法读取" in e.value for e in bad.error)
    assert (kb_dir / "packs" / "坏的.json").read_bytes() == DAMAGED
    ok(bad.button(key="pk_delete").click().run())
    assert not (kb_dir / "packs" / "坏的.json").exists()


def test_adding_a_passage_another_window_added_says_so(app, kb_dir):
    one = ok(app({"q": "安全生产", "mode": "keyword"}))
    two = ok(app({"q": "安全生产", "mode": "keyword"}))
    pid = one.session_state["search_res"].hits[0].passage.id
    ok(one.button(key=f"hit_add_{pid}").click().run())
    assert any("已加入" in t.value for t in one.toast)
    ok(two.button(key=f"hit_add_{pid}").click().run())  # its button was drawn before one added it
    assert any("已在汇编中" in t.value for t in two.toast), [t.value for t in two.toast]
    assert Library.pack_size(two.session_state["pack"]) == 1


# -- the CLI ------------------------------------------------------------------------------------------
def _cli(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_cli_pack_commands_work_on_the_saved_packs(lib, kb_dir, pids, tmp_path):
    kb = ["--kb", str(kb_dir)]
    r = _cli("pack", "list", *kb)
    assert r.exit_code == 0 and "还没有保存的汇编" in r.output
    assert _cli("pack", "new", "第一期", "--title", "第一期学习材料", *kb).exit_code == 0
    r = _cli("pack", "add", "第一期", str(pids[0]), str(pids[1]), "--section", "一、重要论述", *kb)
    assert r.exit_code == 0 and "已加入 2 段" in r.output and "共 2 段" in r.output, r.output
    r = _cli("pack", "add", "第二期", str(pids[2]), *kb)  # a name not saved yet: made
    assert r.exit_code == 0 and "已新建汇编“第二期”" in r.output
    r = _cli("pack", "list", "--json", *kb)
    listed = {p["name"]: p for p in json.loads(r.output)}
    assert listed["第一期"]["passages"] == 2 and listed["第一期"]["title"] == "第一期学习材料"
    assert listed["第二期"]["passages"] == 1
    r = _cli("pack", "show", "第一期", *kb)
    assert r.exit_code == 0 and "第一期学习材料" in r.output and f"[{pids[1]}]" in r.output
    r = _cli("pack", "rm", "第一期", str(pids[0]), *kb)
    assert r.exit_code == 0 and "还有 1 段" in r.output
    r = _cli("pack", "rm", "第一期", "999999", *kb)
    assert r.exit_code == 2 and "汇编中没有这些段落" in r.output
    assert _cli("pack", "rename", "第一期", "第一期（定稿）", *kb).exit_code == 0
    shared = tmp_path / "分享.json"
    r = _cli("pack", "export", "第一期（定稿）", str(shared), *kb)
    assert r.exit_code == 0 and lib.load_pack(shared.read_bytes()).title == "第一期学习材料"
    r = _cli("pack", "export", "第一期（定稿）", str(tmp_path / "a.md"), *kb)
    assert r.exit_code == 0 and (tmp_path / "a.md").read_text(encoding="utf-8").startswith("# 第一期学习材料")
    r = _cli("pack", "import", str(shared), *kb)
    assert r.exit_code == 0 and "已导入为汇编“分享”" in r.output
    r = _cli("pack", "delete", "分享", *kb, input="n\n")
    assert "没有删除" in r.output and "分享" in {p.name for p in lib.packs()}
    assert _cli("pack", "delete", "分享", "--yes", *kb).exit_code == 0
    assert {p.name for p in lib.packs()} == {"第一期（定稿）", "第二期"}
    # what the CLI saved is what the app opens
    assert lib.open_pack("第一期（定稿）").pack.sections[0].items[0].passage_id == pids[1]


def test_cli_a_duplicate_add_says_so_and_is_not_added_twice(lib, kb_dir, pids, tmp_path):
    kb = ["--kb", str(kb_dir)]
    assert _cli("pack", "add", "专题", str(pids[0]), *kb).exit_code == 0
    r = _cli("pack", "add", "专题", str(pids[0]), str(pids[1]), *kb)
    assert r.exit_code == 0 and f"已在汇编中，没有重复加入：{pids[0]}" in r.output
    assert "已加入 1 段" in r.output and "共 2 段" in r.output
    assert lib.pack_size(lib.open_pack("专题").pack) == 2
    # the older form, a pack file, says so too
    f = tmp_path / "pack.json"
    assert _cli("pack", "add", str(f), str(pids[0]), *kb).exit_code == 0
    r = _cli("pack", "add", str(f), str(pids[0]), *kb)
    assert "没有重复加入" in r.output and "已加入 0 段" in r.output
    assert lib.pack_size(lib.load_pack(f.read_bytes())) == 1


def test_cli_a_pack_that_cannot_be_read_is_kept_renamable_and_deletable(lib, kb_dir, pids):
    kb = ["--kb", str(kb_dir)]
    path = kb_dir / "packs" / "坏的.json"
    lib.save_pack("好的", _pack(1))
    path.write_bytes(DAMAGED)
    r = _cli("pack", "list", *kb)
    assert r.exit_code == 0 and "坏的\t" in r.output and "无法读取" in r.output
    r = _cli("pack", "add", "坏的", str(pids[0]), *kb)  # not taken for a missing pack
    assert r.exit_code == 2 and "无法读取" in r.output and path.read_bytes() == DAMAGED, r.output
    r = _cli("pack", "rename", "坏的", "坏的（待修）", *kb)
    assert r.exit_code == 0 and "已把汇编“坏的”改名为“坏的（待修）”" in r.output and "无法读取" in r.output, r.output
    moved = kb_dir / "packs" / "坏的（待修）.json"
    assert moved.read_bytes() == DAMAGED
    r = _cli("pack", "delete", "坏的（待修）", *kb, input="n\n")
    assert "（文件无法读取）？" in r.output and "没有删除" in r.output and moved.exists(), r.output
    r = _cli("pack", "delete", "坏的（待修）", "--yes", *kb)
    assert r.exit_code == 0 and "已删除" in r.output and not moved.exists(), r.output
    r = _cli("pack", "delete", "坏的（待修）", "--yes", *kb)
    assert r.exit_code == 2 and "没有名为" in r.output
    assert [p.name for p in lib.packs()] == ["好的"]


def test_cli_a_bad_import_changes_nothing(lib, kb_dir, tmp_path):
    kb = ["--kb", str(kb_dir)]
    lib.save_pack("防汛", _pack(4))
    before = (kb_dir / "packs" / "防汛.json").read_bytes()
    bad = tmp_path / "防汛.json"
    bad.write_text('{"foo":1}', encoding="utf-8")
    r = _cli("pack", "import", str(bad), "--replace", *kb)
    assert r.exit_code == 2 and "这不是汇编文件" in r.output and "Traceback" not in r.output
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_pack(1).to_dict(), ensure_ascii=False), encoding="utf-8")
    r = _cli("pack", "import", str(good), "--name", "防汛", *kb)
    assert r.exit_code == 2 and "--replace" in r.output
    assert (kb_dir / "packs" / "防汛.json").read_bytes() == before
    assert [p.name for p in lib.packs()] == ["防汛"]
