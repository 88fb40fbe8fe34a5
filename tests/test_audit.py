"""The audit log of a shared knowledge base (issue 15): one line per action, append-only in
SQLite itself, hash-chained, retention, written from read-only handles, never skipped."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from yuanwen.errors import AuditError, KnowledgeBaseError, LoginError, UsageError
from yuanwen.library import open_kb
from yuanwen.models import AuditEntry, StudyPack

MINI = Path(__file__).parent / "fixtures" / "mini"
PW = "correct-horse-1"
QUERY = "企业主要负责人的安全生产责任"
QUOTE = "企业主要负责人是本单位安全生产第一责任人， 对本单位的安全生产工作全面负责"


def _ts(days_ago: float) -> str:
    t = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(kb: Path) -> list[tuple]:
    con = sqlite3.connect(kb / "audit.db")
    try:
        return con.execute("SELECT account, client, action, target, detail, outcome FROM audit ORDER BY id").fetchall()
    finally:
        con.close()


@pytest.fixture
def shared(tmp_path) -> Path:
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        assert not w.ingest([MINI]).failed
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("editor1", "editor", PW, "内部")
        w.add_account("reader1", "reader", PW)
    return kb


def _new_lines(lib, before: int):
    """Audit lines written since there were ``before`` of them, oldest first."""
    return sorted((e for e in lib.kb.store.audit_rows() if e.id > before), key=lambda e: e.id)


def _last_id(lib) -> int:
    rows = lib.kb.store.audit_rows(limit=1)
    return rows[0].id if rows else 0


def test_each_action_writes_one_line(shared, tmp_path):
    base = open_kb(shared, embedder="fake")  # read-only, as the app opens it
    n0 = _last_id(base)
    editor = base.login("editor1", PW, "10.0.0.6")
    [line] = _new_lines(base, n0)
    assert (line.account, line.client, line.action, line.target, line.outcome) == (
        "editor1", "10.0.0.6", "login", "editor1", "ok")
    assert line.detail == {"via": "password"}

    def one(call, action: str):
        before = _last_id(base)
        out = call()
        lines = _new_lines(base, before)
        assert [e.action for e in lines] == [action], (action, lines)
        assert lines[0].account == "editor1" and lines[0].client == "10.0.0.6"
        return out, lines[0]

    res, line = one(lambda: editor.search(QUERY, k=4, mode="keyword"), "search")
    assert line.target == QUERY and line.detail == {"mode": "keyword", "hits": len(res.hits)} and res.hits
    res, line = one(lambda: editor.quote(QUOTE), "quote")
    assert line.target == QUOTE and line.detail["verdict"] == res.verdict != "not_found"
    assert line.detail["hits"] == len(res.matches)
    doc = editor.documents()[0]
    passages, line = one(lambda: editor.document_passages(doc.id), "view")
    assert line.target == str(doc.id) and line.detail == {"title": doc.title}
    _, line = one(lambda: editor.related(passages[0].id, k=3), "related")
    assert line.target == str(passages[0].id)
    _, line = one(lambda: editor.timeline("安全生产"), "timeline")
    _, line = one(lambda: editor.excerpts("安全生产", k=3), "excerpts")
    pack = editor.add_to_pack(StudyPack(title="学习汇编"), [passages[0].id])
    data, line = one(lambda: editor.export_bytes(pack, "md"), "export")
    assert data and line.target == "学习汇编" and line.detail == {"format": "md", "items": 1, "withheld": 0}
    _, line = one(lambda: editor.save_pack("共享/学习", pack), "pack_save")
    assert line.target == "共享/学习"
    _, line = one(lambda: editor.set_document_access(doc.id, "内部"), "set_access")
    assert line.target == str(doc.id) and line.detail == {"title": doc.title, "old": "公开", "new": "内部"}

    src = tmp_path / "more"
    src.mkdir()
    (src / "new.txt").write_text("关于新事项的通知\n\n各单位要做好防汛值守工作。\n", encoding="utf-8")
    before = _last_id(base)
    rep = editor.ingest([src], access="内部")
    start, line = _new_lines(base, before)  # recorded before it starts, and when it is done
    assert [start.action, line.action] == ["ingest", "ingest"] and start.detail["stage"] == "start"
    assert line.target == str(src) and line.detail["added"] == 1 and line.detail["access"] == "内部"
    new_id = rep.outcomes[0].doc_id
    _, line = one(lambda: editor.delete_documents([new_id]), "delete")
    assert line.target == str(new_id) and line.detail["title"] == "关于新事项的通知"
    _, line = one(lambda: editor.logout(), "logout")
    assert line.target == "editor1"

    # failed logins, with the reason, and account changes by an admin
    before = _last_id(base)
    with pytest.raises(LoginError):
        base.login("reader1", "wrong-password-x", "10.0.0.7")
    [line] = _new_lines(base, before)
    assert (line.action, line.account, line.client, line.outcome) == ("login_failed", "reader1", "10.0.0.7", "failed")
    assert line.detail == {"reason": "bad_password"}
    admin = base.login("admin1", PW, "10.0.0.8")
    for call, action, target in (
            (lambda: admin.add_account("reader2", "reader", PW), "account_add", "reader2"),
            (lambda: admin.update_account("reader2", clearance="内部"), "account_update", "reader2"),
            (lambda: admin.set_password("reader2", "another-password-2"), "account_password", "reader2"),
            (lambda: admin.update_account("reader2", disabled=True), "account_update", "reader2")):
        before = _last_id(base)
        call()
        [line] = _new_lines(base, before)
        assert (line.action, line.account, line.client, line.target) == (action, "admin1", "10.0.0.8", target)
    changes = [e.detail for e in base.kb.store.audit_rows(actions=["account_update"])]
    assert {"disabled": True} in changes and {"clearance": "内部"} in changes
    adds = [e.detail for e in base.kb.store.audit_rows(actions=["account_add"])]
    assert {"role": "reader", "clearance": "公开", "source": "local"} in adds
    # no password or hash in any line
    assert not any(PW in str(r) or "argon2" in str(r) for r in _rows(shared))
    # the admin reads and filters it
    got = admin.audit_log(user="editor1", actions=["search", "quote"])
    assert [e.action for e in got] == ["quote", "search"]  # newest first
    csv = admin.audit_csv(got).decode("utf-8-sig")
    assert "检索" in csv and "引文核对" in csv and "10.0.0.6" in csv
    assert admin.verify_audit() == []
    base.close()


def test_local_actor_in_a_shared_kb_is_audited(shared):
    with open_kb(shared, embedder="fake") as lib:
        lib.search(QUERY, k=2)
        last = lib.kb.store.audit_rows(limit=1)[0]
        assert last.action == "search" and last.account.startswith("本机:") and last.client == "本机命令行"
        view = lib.actor_for("reader1")
        view.search(QUERY, k=2)
        last = lib.kb.store.audit_rows(limit=1)[0]
        assert (last.account, last.client) == ("reader1", "本机命令行")


def test_desktop_kb_writes_nothing(tmp_path):
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([MINI])
    with open_kb(kb, embedder="fake") as lib:
        assert not lib.shared()
        lib.search(QUERY)
        lib.quote(QUOTE)
        doc = lib.documents()[0]
        lib.document_passages(doc.id)
        lib.export_bytes(lib.add_to_pack(StudyPack(), [lib.document_passages(doc.id)[0].id]), "md")
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.set_document_access(doc.id, "内部")
    assert not (kb / "audit.db").exists()  # not even made


def test_triggers_refuse_update_and_recent_delete(shared):
    with open_kb(shared, embedder="fake") as lib:
        lib.login("reader1", PW, "10.0.0.5")
    con = sqlite3.connect(shared / "audit.db")
    try:
        n = con.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("UPDATE audit SET account = 'someone' WHERE id = (SELECT MAX(id) FROM audit)")
        with pytest.raises(sqlite3.IntegrityError, match="retention"):
            con.execute("DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
        with pytest.raises(sqlite3.IntegrityError):
            con.execute("DELETE FROM audit")
        con.rollback()
        assert con.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == n
    finally:
        con.close()


def test_old_rows_can_be_purged_and_retention(shared):
    with open_kb(shared, embedder="fake") as lib:
        store = lib.kb.store
        store.append_audit([AuditEntry(ts=_ts(400), account="old", client="x", action="search"),
                            AuditEntry(ts=_ts(100), account="mid", client="x", action="search"),
                            AuditEntry(ts=_ts(20), account="recent", client="x", action="search")])
        assert lib.audit_retention() == 180
        # a plain connection may delete a row past the retention, not one inside it
        con = sqlite3.connect(shared / "audit.db")
        con.execute("DELETE FROM audit WHERE account = 'old'")
        con.commit()
        with pytest.raises(sqlite3.IntegrityError):
            con.execute("DELETE FROM audit WHERE account = 'mid'")
        con.close()
        admin = lib.actor_for("admin1")
        with pytest.raises(UsageError, match="至少保存 30 天"):
            admin.set_audit_retention(10)
        assert admin.audit_retention() == 180
        assert admin.set_audit_retention(30) == 1  # the 100-day-old line
        accounts = {e.account for e in admin.audit_log()}
        assert "mid" not in accounts and "recent" in accounts
        assert admin.audit_retention() == 30
        [line] = admin.audit_log(actions=["retention"])
        assert line.target == "30" and line.account == "admin1"
        # the trigger follows the new retention: a 40-day-old line may go now, a 20-day one not
        store.append_audit([AuditEntry(ts=_ts(40), account="forty", client="x", action="search")])
        con = sqlite3.connect(shared / "audit.db")
        con.execute("DELETE FROM audit WHERE account = 'forty'")
        con.commit()
        with pytest.raises(sqlite3.IntegrityError):
            con.execute("DELETE FROM audit WHERE account = 'recent'")
        con.close()


def test_hash_chain_reports_a_changed_row(shared):
    with open_kb(shared, embedder="fake") as lib:
        for _ in range(3):
            lib.login("reader1", PW, "10.0.0.5")
        admin = lib.actor_for("admin1")
        assert admin.verify_audit() == []
        target = lib.kb.store.audit_rows(actions=["login"], limit=1)[0].id - 1
    con = sqlite3.connect(shared / "audit.db")
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("UPDATE audit SET client = '1.2.3.4' WHERE id = ?", [target])
    con.commit()
    con.close()
    with open_kb(shared, embedder="fake") as lib:
        assert lib.actor_for("admin1").verify_audit() == [target]


def test_hash_chain_reports_a_removed_row(shared):
    with open_kb(shared, embedder="fake") as lib:
        for _ in range(3):
            lib.login("reader1", PW, "10.0.0.5")
        ids = [e.id for e in lib.kb.store.audit_rows()]
    con = sqlite3.connect(shared / "audit.db")
    con.execute("DROP TRIGGER audit_keep")
    con.execute("DELETE FROM audit WHERE id = ?", [ids[1]])
    con.commit()
    con.close()
    with open_kb(shared, embedder="fake") as lib:
        assert lib.actor_for("admin1").verify_audit() == [ids[0]]


def test_read_only_handle_appends(shared):
    n = len(_rows(shared))
    lib = open_kb(shared, embedder="fake", readonly=True)
    reader = lib.login("reader1", PW, "10.0.0.5")
    reader.search(QUERY, k=2)
    assert [r[2] for r in _rows(shared)[n:]] == ["login", "search"]
    # and what it wrote is what it reads back
    assert [e.action for e in lib.kb.store.audit_rows(limit=2)] == ["search", "login"]
    lib.close()


def _mount(*args: str) -> None:
    r = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount here ({r.stderr.strip() or r.returncode}): needs root in a "
                    "container that allows mounts")


def test_read_only_folder_refuses_instead_of_running_unaudited(shared, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    for suffix in ("-shm", "-wal"):
        assert not (shared / f"yuanwen.db{suffix}").exists()
    _mount("--bind", str(shared), str(ro))
    try:
        _mount("-o", "remount,bind,ro", str(ro))
        assert not os.access(ro, os.W_OK)
        n = len(_rows(shared))
        with open_kb(ro, embedder="fake") as lib:
            assert lib.shared()
            reader = lib.actor_for("reader1", client="10.0.0.5")
            with pytest.raises(AuditError, match="审计日志无法写入"):
                reader.search(QUERY, k=2)
            with pytest.raises(AuditError):
                reader.document_passages(reader.documents()[0].id)
            with pytest.raises(KnowledgeBaseError) as login:
                lib.login("reader1", PW, "10.0.0.5")  # a login that cannot be recorded is refused
            assert "只读" in str(login.value) or "审计" in str(login.value), login.value
        assert len(_rows(shared)) == n
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True, check=False)


def test_desktop_kb_on_a_read_only_folder_still_reads(tmp_path):
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([MINI])
    ro = tmp_path / "ro"
    ro.mkdir()
    _mount("--bind", str(kb), str(ro))
    try:
        _mount("-o", "remount,bind,ro", str(ro))
        with open_kb(ro, embedder="fake") as lib:
            assert not lib.shared() and lib.search(QUERY, k=2).hits
    finally:
        subprocess.run(["umount", "-l", str(ro)], capture_output=True, check=False)


def _append_many(kb: str, name: str, n: int) -> None:
    import tests.fake_embedder  # noqa: F401  (registers "fake" in this spawned process)

    lib = open_kb(kb, embedder="fake")
    view = lib.actor_for(name, client=f"proc-{name}")
    for _ in range(n):
        view.logout()
    lib.close()


def test_two_processes_append_concurrently(shared):
    n0 = len(_rows(shared))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(shared), name, 200)) for name in ("reader1", "editor1")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    rows = _rows(shared)[n0:]
    assert len(rows) == 400
    assert sum(1 for r in rows if r[0] == "reader1") == 200 == sum(1 for r in rows if r[0] == "editor1")
    with open_kb(shared, embedder="fake") as lib:
        assert lib.actor_for("admin1").verify_audit() == []
        con = sqlite3.connect(shared / "audit.db")
        hashes = [r[0] for r in con.execute("SELECT hash FROM audit")]
        con.close()
        assert len(set(hashes)) == len(hashes)
