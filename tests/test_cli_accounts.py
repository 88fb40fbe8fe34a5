"""The CLI of a shared knowledge base: accounts, access levels, ``--as``, the audit log.

The issue's "done when" in the CLI: a knowledge base with one 内部 document and the accounts
``reader1`` (公开) and ``editor1`` (内部); every read path shows the 内部 document to
``editor1`` and never to ``reader1``, and the audit log holds what both did."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest
from click.testing import CliRunner

from yuanwen.cli import cli

from .conftest import MINI

SECRET_TITLE = "关于汛前隐患清零行动的内部工作提示"
SECRET_SENTENCE = "局党组决定开展汛前隐患清零行动"
# the 内部 memo: a term only it has (隐患清零), and a passage close to one of the public notice's
MEMO = f"""{SECRET_TITLE}
各处室：
为做好今年防汛准备，{SECRET_SENTENCE}，请各处室于五月底前完成自查。
气象、水务部门要加强雨情水情监测，及时发布预警信息，遇有强降雨时要提前转移危险区域群众。
本提示仅供内部工作参考，不得对外公开。
市应急管理局办公室
2023年4月20日
"""
PASSWORDS = {"admin": "Adm1n-passw0rd", "reader1": "reader-passw0rd", "editor1": "editor-passw0rd"}


def run(*args: str, input: str | None = None, code: int = 0):
    """Run ``yuanwen ARGS``; check the exit code and that no traceback reached the user."""
    r = CliRunner().invoke(cli, list(args), input=input)
    assert r.exit_code == code, (args, r.exit_code, r.output)
    assert "Traceback" not in r.output and (r.exception is None or isinstance(r.exception, SystemExit)), \
        (args, r.output, r.exception)
    return r


@pytest.fixture
def kb_dir(tmp_path):
    """The mini corpus (公开) plus one memo ingested with --access 内部."""
    kb = tmp_path / "kb"
    run("ingest", str(MINI), "--kb", str(kb), "--embedder", "fake")
    memo = tmp_path / "内部"
    memo.mkdir()
    (memo / "memo.txt").write_text(MEMO, encoding="utf-8")
    run("ingest", str(memo), "--kb", str(kb), "--access", "内部")
    return kb


def add_user(kb, name: str, role: str, clearance: str | None = None, code: int = 0, password: str | None = None):
    extra = ["--clearance", clearance] if clearance else []
    return run("user", "add", name, "--role", role, *extra, "--password-stdin", "--kb", str(kb),
               input=(password or PASSWORDS[name]) + "\n", code=code)


@pytest.fixture
def shared_kb(kb_dir):
    """``kb_dir`` with the accounts reader1 (公开) and editor1 (内部)."""
    first = add_user(kb_dir, "reader1", "reader")
    assert "共享模式" in first.output and "审计日志" in first.output  # the first account says so
    assert "还没有管理员账户" in first.output  # ... and that no one can manage accounts in the app
    second = add_user(kb_dir, "editor1", "editor", "内部")
    assert "已新建账户 editor1（编辑，访问级别 内部）" in second.output and "共享模式" not in second.output
    return kb_dir


def ids(kb) -> tuple[int, int, int]:
    """The 内部 memo's id, its passage with the secret sentence, and the public notice's
    passage closest to the memo."""
    docs = json.loads(run("docs", "--kb", str(kb), "--json").output)
    memo = next(d for d in docs if d["title"] == SECRET_TITLE)
    assert memo["access"] == "内部" and {d["access"] for d in docs if d is not memo} == {"公开"}
    notice = next(d for d in docs if d["title"].startswith("市人民政府办公室"))
    memo_passages = json.loads(run("show", str(memo["id"]), "--kb", str(kb), "--json").output)["passages"]
    notice_passages = json.loads(run("show", str(notice["id"]), "--kb", str(kb), "--json").output)["passages"]
    secret = next(p["id"] for p in memo_passages if SECRET_SENTENCE in p["text"])
    near = next(p["id"] for p in notice_passages if "雨情水情监测" in p["text"])
    return memo["id"], secret, near


def test_every_read_path_shows_the_internal_document_to_editor1_only(shared_kb, tmp_path):
    kb = ["--kb", str(shared_kb)]
    memo, secret, near = ids(shared_kb)
    seen = {}
    for who in ("editor1", "reader1"):
        out = {}
        as_ = ["--as", who, *kb]
        out["search"] = run("search", "隐患清零 防汛准备", "-k", "5", *as_).output
        out["search_json"] = run("search", "隐患清零", "--json", *as_).output
        q = json.loads(run("quote", SECRET_SENTENCE, "--json", *as_).output)
        out["quote"] = q
        out["related"] = run("related", str(near), "-k", "5", *as_).output
        out["docs"] = run("docs", *as_).output
        out["docs_json"] = json.loads(run("docs", "--json", *as_).output)
        out["excerpts"] = run("excerpts", "隐患清零", "--include-weak", *as_).output
        out["timeline"] = run("timeline", "隐患清零", *as_).output
        out["show_public"] = run("show", str(next(d["id"] for d in out["docs_json"] if d["access"] == "公开")),
                                 *as_).output
        seen[who] = out

    ed, rd = seen["editor1"], seen["reader1"]
    for key in ("search", "search_json", "related", "docs", "excerpts", "timeline"):
        assert SECRET_TITLE in ed[key], (key, ed[key])
        assert SECRET_TITLE not in rd[key] and "隐患清零行动" not in rd[key], (key, rd[key])
    # the level column of docs: 内部 on editor1's line for the memo; reader1's are all 公开
    assert any(line.split("　")[4:] == ["内部", SECRET_TITLE] for line in ed["docs"].splitlines())
    assert {line.split("　")[4] for line in rd["docs"].splitlines()[:-1]} == {"公开"}
    assert ed["quote"]["verdict"] == "exact" and ed["quote"]["matches"][0]["title"] == SECRET_TITLE
    assert rd["quote"]["verdict"] == "not_found" and not rd["quote"]["matches"]
    assert {d["id"] for d in ed["docs_json"]} - {d["id"] for d in rd["docs_json"]} == {memo}
    assert "没有出现这个提法" in rd["timeline"]
    assert "访问级别：公开" in rd["show_public"]

    # the reader: the memo by its id is like a missing id, whatever the command
    shown = run("show", str(memo), "--as", "editor1", *kb)
    assert SECRET_SENTENCE in shown.output and "访问级别：内部" in shown.output
    missing = run("show", "99999", "--as", "reader1", *kb, code=1).output
    hidden = run("show", str(memo), "--as", "reader1", *kb, code=1).output
    assert hidden == missing.replace("99999", str(memo)) and SECRET_TITLE not in hidden
    assert "没有编号为" in run("page", str(memo), "1", "-o", str(tmp_path / "p.png"), "--as", "reader1", *kb,
                                code=1).output
    # editor1 gets as far as the file (a .txt has no page images): the document exists for them
    page_ed = run("page", str(memo), "1", "-o", str(tmp_path / "p.png"), "--as", "editor1", *kb, code=1).output
    assert "没有编号为" not in page_ed and "页面图像" in page_ed
    run("related", str(secret), "--as", "reader1", *kb, code=2)  # a passage of the memo: no such passage

    # packs: editor1 builds a shared pack holding the memo and the notice; reader1 sees the notice only
    run("pack", "add", "共享/防汛专题", str(secret), str(near), "--as", "editor1", *kb)
    ed_show = run("pack", "show", "共享/防汛专题", "--as", "editor1", *kb).output
    rd_show = run("pack", "show", "共享/防汛专题", "--as", "reader1", *kb).output
    assert SECRET_TITLE in ed_show and f"[{near}]" in rd_show and SECRET_TITLE not in rd_show
    assert "防汛专题" in rd_show.splitlines()[0]  # the title is the name without 共享/
    for fmt in ("md", "json"):
        ed_out, rd_out = tmp_path / f"editor1.{fmt}", tmp_path / f"reader1.{fmt}"
        run("pack", "export", "共享/防汛专题", str(ed_out), "--as", "editor1", *kb)
        run("pack", "export", "共享/防汛专题", str(rd_out), "--as", "reader1", *kb)
        assert SECRET_SENTENCE in ed_out.read_text(encoding="utf-8")
        text = rd_out.read_text(encoding="utf-8")
        assert SECRET_SENTENCE not in text and SECRET_TITLE not in text and "雨情水情监测" in text
    # a pack file someone handed over: filtered for the account too
    rd_file = run("pack", "show", str(tmp_path / "editor1.json"), "--as", "reader1", *kb).output
    assert SECRET_TITLE not in rd_file and f"[{near}]" in rd_file
    assert SECRET_TITLE in run("pack", "show", str(tmp_path / "editor1.json"), *kb).output  # the local actor
    # reader1 cannot add the memo to a pack, nor write the shared pack, but keeps packs of its own
    assert "没有这些段落" in run("pack", "add", "我的", str(secret), "--as", "reader1", *kb, code=2).output
    assert "无权" in run("pack", "add", "共享/防汛专题", str(near), "--as", "reader1", *kb, code=3).output
    run("pack", "add", "我的", str(near), "--as", "reader1", *kb)
    assert "我的" in run("pack", "list", "--as", "reader1", *kb).output
    assert "我的" not in run("pack", "list", "--as", "editor1", *kb).output
    assert (shared_kb / "accounts" / "reader1" / "packs" / "我的.json").is_file()

    # the audit log: every action of both, from the local command line
    log = json.loads(run("audit", "--json", *kb).output)
    assert log and {e["client"] for e in log} == {"本机命令行"}
    done = {(e["account"], e["action"]) for e in log if e["outcome"] == "ok"}
    for who in ("editor1", "reader1"):
        for action in ("search", "quote", "related", "excerpts", "timeline", "view", "export", "pack_save"):
            assert (who, action) in done, (who, action)
    assert ("editor1", "page_image") in done
    assert ("reader1", "pack_save", "denied") in {(e["account"], e["action"], e["outcome"]) for e in log}
    quote = next(e for e in log if e["account"] == "reader1" and e["action"] == "quote")
    assert quote["target"] == SECRET_SENTENCE and quote["detail"]["verdict"] == "not_found"
    exports = [e for e in log if e["account"] == "reader1" and e["action"] == "export"]
    assert {e["detail"]["format"] for e in exports} == {"md", "json"}
    assert {e["detail"]["items"] for e in exports} == {1}  # what reader1 got: the notice alone
    # the readable table: newest first, labels in Chinese
    table = run("audit", "--user", "reader1", "--action", "引文核对", "--action", "search", *kb).output
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["编号", "时间（UTC）", "账户", "客户端", "操作"]
    assert "引文核对" in table and "检索" in table and "editor1" not in table
    assert "verdict=not_found" in table and "（共 " in lines[-1]
    numbers = [int(line.split()[0]) for line in lines[1:-1]]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 3  # 2 searches, 1 quote


def test_user_commands(kb_dir):
    kb = ["--kb", str(kb_dir)]
    r = run("user", "list", *kb)
    assert "还没有账户" in r.output and "--role admin" in r.output
    assert "单机模式" in run("audit", *kb).output  # no accounts: nothing is audited yet
    first = add_user(kb_dir, "admin", "admin")
    assert "共享模式" in first.output and "还没有管理员账户" not in first.output
    add_user(kb_dir, "reader1", "reader")
    assert "密码太短" in add_user(kb_dir, "weak1", "reader", code=2, password="short").output
    assert "不能与账户名相同" in add_user(kb_dir, "longername", "reader", code=2, password="longername").output
    # names compare ignoring case
    assert "已存在" in add_user(kb_dir, "Reader1", "editor", code=2, password="long-enough-pw").output
    assert "未知的角色" in add_user(kb_dir, "boss1", "boss", code=2, password="long-enough-pw").output
    assert "未知的访问级别" in add_user(kb_dir, "spy1", "reader", "秘密", code=2, password="long-enough-pw").output
    r = run("user", "add", "nopw1", "--role", "reader", "--password-stdin", *kb, input="", code=2)
    assert "标准输入中没有密码" in r.output
    # without --password-stdin: asked twice, hidden
    r = run("user", "add", "typed1", "--role", "reader", *kb, input="typed-passw0rd\ntyped-passw0rd\n")
    assert "已新建账户 typed1" in r.output and "typed-passw0rd" not in r.output
    r = run("user", "add", "typed2", "--role", "reader", *kb, input="typed-passw0rd\nother-passw0rd\n", code=1)
    assert "两次输入不一致" in r.output

    listed = {a["name"]: a for a in json.loads(run("user", "list", "--json", *kb).output)}
    assert set(listed) == {"admin", "reader1", "typed1"}
    assert listed["reader1"] | {"created": None} == {
        "name": "reader1", "role": "reader", "role_label": "读者", "clearance": "公开", "disabled": False,
        "source": "local", "created": None, "last_login": None}

    r = run("user", "set", "reader1", "--role", "editor", "--clearance", "内部", *kb)
    assert "账户 reader1：编辑，访问级别 内部" in r.output
    assert "请用 --role 或 --clearance" in run("user", "set", "reader1", *kb, code=2).output
    assert "没有账户 ghost" in run("user", "set", "ghost", "--role", "reader", *kb, code=2).output
    r = run("user", "passwd", "reader1", "--password-stdin", *kb, input="brand-new-passw0rd\n")
    assert "已设置账户 reader1 的新密码" in r.output
    assert "密码太短" in run("user", "passwd", "reader1", "--password-stdin", *kb, input="abc\n", code=2).output
    from yuanwen.library import open_kb

    with open_kb(kb_dir) as lib:  # the new password is the one that logs in
        assert lib.login("reader1", "brand-new-passw0rd", "127.0.0.1").actor.role == "editor"

    assert "已停用账户 reader1" in run("user", "disable", "reader1", *kb).output
    text = run("user", "list", *kb).output
    row = next(line for line in text.splitlines() if line.startswith("reader1"))
    assert row.split()[1:5] == ["编辑", "内部", "停用", "本地密码"] and "（共 3 个账户）" in text
    admin_row = next(line for line in text.splitlines() if line.startswith("admin"))
    assert admin_row.split()[1:4] == ["管理员", "公开", "正常"] and "从未登录" in admin_row
    row = next(line for line in text.splitlines() if line.startswith("reader1"))
    assert row.split()[5] != "从未登录"  # logged in above: the time of it
    # --as a disabled or an unknown account: a clean refusal
    for name in ("reader1", "ghost"):
        r = run("search", "安全生产", "--as", name, *kb, code=2)
        assert f"没有可用的账户 {name}" in r.output
    assert "已启用账户 reader1" in run("user", "enable", "reader1", *kb).output
    run("search", "安全生产", "--as", "reader1", *kb)
    # the last admin stays
    r = run("user", "disable", "admin", *kb, code=2)
    assert "最后一个管理员" in r.output
    assert "最后一个管理员" in run("user", "set", "admin", "--role", "reader", *kb, code=2).output
    # a reader may not manage accounts or the log (through the library; the CLI acts as the local admin)
    with open_kb(kb_dir) as lib:
        from yuanwen.errors import AccessDenied

        with pytest.raises(AccessDenied, match="管理员"):
            lib.actor_for("typed1").accounts()

    log = json.loads(run("audit", "--json", "--action", "account_add", "--action", "account_update",
                         "--action", "account_password", *kb).output)
    assert {(e["action"], e["target"]) for e in log} >= {
        ("account_add", "admin"), ("account_add", "reader1"), ("account_add", "typed1"),
        ("account_update", "reader1"), ("account_password", "reader1")}
    assert all(e["account"].startswith("本机:") and e["client"] == "本机命令行" for e in log)
    # a missing knowledge base is not made by a mistyped --kb (only user add may make one)
    r = run("user", "disable", "reader1", "--kb", str(kb_dir.parent / "typo"), code=1)
    assert "知识库不存在" in r.output and not (kb_dir.parent / "typo").exists()


def test_audit_verify_filters_export_and_retention(shared_kb, tmp_path):
    kb = ["--kb", str(shared_kb)]
    run("search", "安全生产", "--as", "reader1", *kb)
    run("quote", "确保安全度汛", "--as", "editor1", *kb)
    assert "哈希链前后相符" in run("audit", "--verify", *kb).output

    out = tmp_path / "audit.csv"
    r = run("audit", "--csv", str(out), "--user", "reader1", *kb)
    assert "已导出" in r.output
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    assert rows[0][:4] == ["时间（UTC）", "账户", "客户端地址", "操作"] and rows[1][1] == "reader1"
    assert {row[1] for row in rows[1:]} == {"reader1"}
    stdout_csv = run("audit", "--csv", "--action", "quote", *kb).output  # no file: standard output
    assert "引文核对" in stdout_csv and "确保安全度汛" in stdout_csv and "检索" not in stdout_csv
    assert "--json 与 --csv" in run("audit", "--json", "--csv", *kb, code=2).output
    assert json.loads(run("audit", "--json", "--since", "2000-01-01", "--until", "2000-12-31", *kb).output) == []
    assert "无法识别" in run("audit", "--since", "yesterday", *kb, code=2).output
    assert "未知的操作" in run("audit", "--action", "nope", *kb, code=2).output
    assert len(json.loads(run("audit", "--json", "-n", "2", *kb).output)) == 2
    assert "只列出最新的 1 条" in run("audit", "-n", "1", *kb).output

    assert "至少保存 30 天" in run("audit", "--retention", "10", *kb, code=2).output
    assert "保存期已设为 365 天" in run("audit", "--retention", "365", *kb).output
    assert "审计日志保存 365 天" in run("audit", *kb).output

    # an attacker with the database file: drops the triggers, rewrites what reader1 searched
    from yuanwen.store import AUDIT_DB_NAME

    with sqlite3.connect(shared_kb / AUDIT_DB_NAME) as db:  # the audit log's own file
        db.execute("DROP TRIGGER audit_no_update")
        row_id = db.execute("SELECT id FROM audit WHERE account = 'reader1' AND action = 'search'").fetchone()[0]
        db.execute("UPDATE audit SET target = '天气' WHERE id = ?", [row_id])
    db.close()
    r = run("audit", "--verify", *kb, code=1)
    assert "审计日志被改动" in r.output and f"编号 {row_id} " in r.output


def test_ingest_access_levels_access_and_rm(kb_dir, tmp_path):
    kb = ["--kb", str(kb_dir)]
    assert "访问级别（由低到高）：公开 < 内部" in run("levels", *kb).output
    r = run("levels", "--set", "公开，内部,党员内部", *kb)
    assert "公开 < 内部 < 党员内部" in r.output
    assert "仍有文档或账户在用" in run("levels", "--set", "公开", *kb, code=2).output
    assert "须以「公开」开头" in run("levels", "--set", "内部,公开", *kb, code=2).output
    # ingest --access with a level not on the ladder: refused before anything is read
    extra = tmp_path / "more"
    extra.mkdir()
    speech = (MINI / "speech.txt").read_text(encoding="utf-8")
    (extra / "speech2.txt").write_text(speech + "\n补充：党员内部学习。", encoding="utf-8")
    assert "未知的访问级别" in run("ingest", str(extra), "--access", "秘密", *kb, code=2).output
    run("ingest", str(extra), "--access", "党员内部", *kb)
    docs = json.loads(run("docs", "--json", *kb).output)
    added = next(d for d in docs if d["path"].endswith("speech2.txt"))
    assert added["access"] == "党员内部"

    memo = next(d["id"] for d in docs if d["title"] == SECRET_TITLE)
    r = run("access", str(memo), "公开", *kb)
    assert f"已把文档 {memo}《{SECRET_TITLE}》的访问级别由 内部 改为 公开" in r.output
    assert "本来就是 公开" in run("access", str(memo), "公开", *kb).output
    assert "未知的访问级别" in run("access", str(memo), "绝密", *kb, code=2).output
    assert "没有编号为 99999" in run("access", "99999", "内部", *kb, code=1).output
    assert "访问级别：公开" in run("show", str(memo), *kb).output

    # rm: asks first; --yes does not
    r = run("rm", str(memo), *kb, input="n\n")
    assert "没有删除" in r.output and SECRET_TITLE in r.output
    assert SECRET_TITLE in run("docs", *kb).output
    r = run("rm", str(memo), str(added["id"]), *kb, input="y\n")
    assert f"已删除：{memo}《{SECRET_TITLE}》" in r.output and "共删除 2 篇" in r.output
    listed = run("docs", *kb).output
    assert SECRET_TITLE not in listed and "（共 4 篇）" in listed
    assert "没有编号为" in run("rm", str(memo), "--yes", *kb, code=1).output
    assert SECRET_TITLE not in run("search", "隐患清零", "--mode", "keyword", *kb).output
    assert "哈希链前后相符" in run("audit", "--verify", *kb).output  # desktop: empty log, intact


def test_every_read_command_takes_as():
    """--as on the read commands and on the pack commands (a reader's own packs can be scripted)."""
    wanted = {("search",), ("quote",), ("related",), ("docs",), ("show",), ("page",), ("excerpts",),
              ("timeline",), ("pack", "show"), ("pack", "export"), ("pack", "add"), ("pack", "new"),
              ("pack", "list"), ("pack", "rm"), ("pack", "rename"), ("pack", "delete"), ("pack", "import")}
    for path in wanted:
        cmd = cli
        for part in path:
            cmd = cmd.commands[part]
        assert any("--as" in p.opts for p in cmd.params), path
        out = run(*path, "--help").output
        assert "--as 账户名" in out and "访问级别" in out, (path, out)
