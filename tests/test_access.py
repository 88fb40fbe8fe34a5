"""Access levels, accounts and roles through the façade (issue 15).

A knowledge base holds public documents and one 内部 document; ``reader1`` (clearance 公开)
must never see the 内部 one on any read path, ``editor1`` (内部) and the machine's own user
see everything. Ingest levels (``--access``, manifest, front matter), accounts (argon2,
logins, lock-outs, the last admin), role permissions and OIDC mapping are tested here too.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from yuanwen import accounts as _accounts
from yuanwen.errors import AccessDenied, KnowledgeBaseError, LoginError, UsageError
from yuanwen.library import open_kb
from yuanwen.models import StudyPack
from yuanwen.store import SCHEMA_VERSION

MINI = Path(__file__).parent / "fixtures" / "mini"
PW = "correct-horse-1"

TERM = "防汛抗旱物资储备"
SECRET_SENTENCE = "本单位二〇二三年度保密工作要点由办公室统一部署并逐项落实到人"
SHARED_SENTENCE = "坚持安全第一预防为主综合治理的方针不动摇并持续加以巩固"
SECRET_ISSUER = "市保密委员会办公室"
SECRET_TYPE = "内部通报"
SECRET_TERM = "涉密载体专项清查"  # only in the 内部 document


def _write_public(folder: Path, n: int = 8) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["file,title,issuer,date,doc_type"]
    for i in range(n):
        paras = [
            f"关于做好第{i + 1}批{TERM}工作的通知",
            f"各区县应急管理局：为做好今年第{i + 1}批{TERM}工作，现就有关事项通知如下。",
            f"一、提高认识。第{i + 1}项工作事关群众生命财产安全，各单位要高度重视。",
            f"二、落实责任。各单位主要负责人对第{i + 1}项工作负总责，分管负责人具体抓。",
        ]
        if i == 0:
            paras.append(f"三、{SHARED_SENTENCE}。")
        (folder / f"pub{i}.txt").write_text("\n\n".join(paras) + "\n", encoding="utf-8")
        rows.append(f"pub{i}.txt,关于做好第{i + 1}批物资储备工作的通知,市应急管理局,2022-0{1 + i % 9}-10,通知")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def _write_secret(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    paras = [f"关于{SECRET_TERM}和{TERM}情况的内部通报"]
    # many passages, each more about the term than any public passage: a filter applied after
    # the candidates are cut (depth 50) would leave the reader nothing
    for i in range(70):
        paras.append(f"（{i + 1}）{TERM}第{i + 1}组核查：{TERM}{TERM}库存台账与{TERM}实物逐一比对，"
                     f"{TERM}缺口第{i + 1}号已登记。")
    paras.append(f"{SECRET_SENTENCE}。")
    paras.append(f"{SHARED_SENTENCE}。")
    paras.append(f"请各单位于月底前完成{SECRET_TERM}工作。")
    path = folder / "secret.txt"
    path.write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    (folder / "manifest.csv").write_text(
        "file,title,issuer,date,doc_type\n"
        f"secret.txt,关于{SECRET_TERM}情况的内部通报,{SECRET_ISSUER},2023-05-06,{SECRET_TYPE}\n",
        encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def kbdir(tmp_path_factory, backend) -> Path:
    root = tmp_path_factory.mktemp("access")
    kb = root / "kb"
    _write_public(root / "pub")
    _write_secret(root / "sec")
    with open_kb(kb, embedder="fake", readonly=False) as w:
        assert not w.ingest([MINI, root / "pub"]).failed
        rep = w.ingest([root / "sec"], access="内部")
        assert not rep.failed and rep.count("added") == 1
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("reader1", "reader", PW)
        w.add_account("editor1", "editor", PW, "内部")
    return kb


@pytest.fixture(scope="module")
def base(kbdir):
    lib = open_kb(kbdir, embedder="fake")  # read-only, as the app opens it
    yield lib
    lib.close()


@pytest.fixture(scope="module")
def reader(base):
    return base.actor_for("reader1", client="10.0.0.5")


@pytest.fixture(scope="module")
def editor(base):
    return base.actor_for("editor1", client="10.0.0.6")


@pytest.fixture(scope="module")
def secret_id(base) -> int:
    [doc] = [d for d in base.documents() if d.access == "内部"]
    return doc.id


@pytest.fixture(scope="module")
def secret_pids(base, secret_id) -> list[int]:
    return [p.id for p in base.document_passages(secret_id)]


def _doc_ids(res) -> set[int]:
    return {h.document.id for h in res.hits}


# -- every read path -------------------------------------------------------------------------
def test_fixture_levels(base, secret_id, secret_pids):
    levels = {d.access for d in base.documents()}
    assert levels == {"公开", "内部"}
    assert base.document(secret_id).access == "内部"
    assert len(secret_pids) > 50  # enough passages to fill the candidate depth


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_search_every_mode(base, reader, editor, secret_id, mode):
    for lib in (base, editor):
        assert secret_id in _doc_ids(lib.search(TERM, k=10, mode=mode)), mode
        assert secret_id in _doc_ids(lib.search(SECRET_TERM, k=10, mode=mode)), mode
    res = reader.search(TERM, k=10, mode=mode)
    assert res.hits and secret_id not in _doc_ids(res)
    assert all(h.document.access == "公开" for h in res.hits)
    res = reader.search(SECRET_TERM, k=10, mode=mode)
    assert secret_id not in _doc_ids(res)


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_filter_before_the_cut(base, reader, editor, secret_id, mode):
    """The 内部 document's 70 passages outrank every public one: a reader still gets k public
    hits, so the filter is applied in the backend, not to a cut list."""
    top = editor.search(TERM, k=60, mode=mode)
    assert [h.document.id for h in top.hits[:50]] == [secret_id] * 50, mode
    res = reader.search(TERM, k=3, mode=mode)
    assert len(res.hits) == 3, mode
    assert all(h.document.access == "公开" for h in res.hits)


def test_quote_only_in_internal_is_not_found_for_the_reader(reader, editor, secret_id):
    r = reader.quote(SECRET_SENTENCE)
    assert r.verdict == "not_found" and not r.matches
    assert all(m.document.id != secret_id for m in r.similar)
    e = editor.quote(SECRET_SENTENCE)
    assert e.verdict == "exact" and e.matches[0].document.id == secret_id


def test_quote_in_both_shows_the_reader_only_the_public_source(reader, editor, secret_id):
    e = editor.quote(SHARED_SENTENCE)
    assert e.verdict == "exact" and secret_id in {m.document.id for m in e.matches}
    r = reader.quote(SHARED_SENTENCE)
    assert r.verdict == "exact" and r.matches
    assert {m.document.access for m in r.matches} == {"公开"}
    assert secret_id not in {m.document.id for m in r.matches + r.similar}


def test_related(base, reader, editor, secret_id, secret_pids):
    pub = reader.search(TERM, k=1, mode="keyword").hits[0]
    assert secret_id in _doc_ids(editor.related(pub.passage.id, k=10))
    res = reader.related(pub.passage.id, k=10)
    assert res.hits and secret_id not in _doc_ids(res)
    with pytest.raises(UsageError) as missing:
        reader.related(10**9)
    with pytest.raises(UsageError) as hidden:
        reader.related(secret_pids[0])
    assert str(hidden.value) == str(missing.value).replace(str(10**9), str(secret_pids[0]))
    assert editor.related(secret_pids[0], k=3).hits  # the editor may start from it


def test_documents_and_facets(base, reader, editor, secret_id):
    assert secret_id in {d.id for d in editor.documents()}
    docs = reader.documents()
    assert docs and secret_id not in {d.id for d in docs}
    assert len(docs) == len(base.documents()) - 1
    fe, fr = editor.facets(), reader.facets()
    assert fe["by_issuer"][SECRET_ISSUER] == 1 and fe["by_type"][SECRET_TYPE] == 1
    assert SECRET_ISSUER not in fr["by_issuer"] and SECRET_TYPE not in fr["by_type"]
    assert sum(fr["by_format"].values()) == len(docs)
    assert sum(fe["by_format"].values()) == len(docs) + 1
    assert SECRET_ISSUER in base.facets()["by_issuer"]  # the cache is per set of levels


def test_document_reader_paths(reader, editor, secret_id):
    for call in (lambda lib, i: lib.document(i), lambda lib, i: lib.document(i, with_text=True),
                 lambda lib, i: lib.document_passages(i), lambda lib, i: lib.outline(i),
                 lambda lib, i: lib.page_source(i)):
        with pytest.raises(KnowledgeBaseError) as missing:
            call(reader, 10**9)
        with pytest.raises(KnowledgeBaseError) as hidden:
            call(reader, secret_id)
        assert type(hidden.value) is type(missing.value)
        assert str(hidden.value) == str(missing.value).replace(str(10**9), str(secret_id))
    assert SECRET_SENTENCE in editor.document(secret_id, with_text=True).text
    assert editor.document_passages(secret_id) and editor.outline(secret_id) is not None


def test_passages_drops_hidden(reader, editor, secret_pids):
    pub = reader.search(TERM, k=1, mode="keyword").hits[0].passage.id
    assert set(reader.passages([pub, *secret_pids[:3]])) == {pub}
    assert set(editor.passages([pub, *secret_pids[:3]])) == {pub, *secret_pids[:3]}


def test_excerpts_and_timeline(reader, editor, secret_id):
    ex = editor.excerpts(TERM, k=20)
    assert secret_id in {g.document.id for g in ex.groups}
    ex = reader.excerpts(TERM, k=20)
    assert ex.groups and secret_id not in {g.document.id for g in ex.groups}
    te = editor.timeline(SECRET_TERM)
    assert te.occurrences >= 2 and te.documents == 1
    tr = reader.timeline(SECRET_TERM)
    assert tr.occurrences == 0 and tr.documents == 0 and not tr.passages and tr.first_document is None
    # a term in both: the reader counts only the public documents
    both_e, both_r = editor.timeline(TERM), reader.timeline(TERM)
    assert both_r.documents == both_e.documents - 1
    assert secret_id not in {p.document.id for p in both_r.passages}


def test_add_to_pack_refuses_hidden_as_missing(reader, editor, secret_pids):
    with pytest.raises(UsageError) as hidden:
        reader.add_to_pack(StudyPack(), [secret_pids[0]])
    with pytest.raises(UsageError) as missing:
        reader.add_to_pack(StudyPack(), [10**9])
    assert str(hidden.value) == str(missing.value).replace(str(10**9), str(secret_pids[0]))
    pack = editor.add_to_pack(StudyPack(), [secret_pids[0]])
    assert pack.sections[0].items[0].access == "内部"


def test_shared_pack_and_exports_withhold_hidden_items(kbdir, base, reader, editor, secret_id, secret_pids):
    pub = reader.search(SHARED_SENTENCE, k=1, mode="keyword").hits[0]
    assert pub.document.access == "公开"
    pack = editor.add_to_pack(StudyPack(title="防汛学习汇编"), [pub.passage.id, secret_pids[-2]])
    assert editor.pack_size(pack) == 2
    editor.save_pack("共享/防汛", pack)
    assert "共享/防汛" in {p.name for p in reader.packs()}
    seen = reader.open_pack("共享/防汛")
    assert reader.pack_size(seen.pack) == 1
    assert seen.pack.sections[0].items[0].passage_id == pub.passage.id
    assert editor.pack_size(editor.open_pack("共享/防汛").pack) == 2
    # the reader cannot write a shared pack
    with pytest.raises(AccessDenied):
        reader.save_pack("共享/防汛", seen.pack)
    secret_text = editor.passages([secret_pids[-2]])[secret_pids[-2]].text
    assert SECRET_SENTENCE in secret_text
    md_r = reader.export_bytes(pack, "md").decode("utf-8")
    md_e = editor.export_bytes(pack, "md").decode("utf-8")
    assert SECRET_SENTENCE not in md_r and SHARED_SENTENCE in md_r
    assert SECRET_SENTENCE in md_e
    # the level recorded in the item counts even when the document id no longer resolves
    visible, dropped = reader.visible_pack(pack)
    assert dropped == 1 and reader.pack_size(visible) == 1


def test_pack_item_judged_by_the_stricter_of_recorded_and_current_level(base, reader, editor):
    """An item recorded as 内部 when it was added stays hidden from a 公开 reader even where its
    document is public now (or the id points at another document)."""
    pub = reader.search(TERM, k=1, mode="keyword").hits[0]
    pack = editor.add_to_pack(StudyPack(), [pub.passage.id])
    assert pack.sections[0].items[0].access == "公开"
    assert reader.visible_pack(pack)[1] == 0
    pack.sections[0].items[0].access = "内部"
    assert reader.visible_pack(pack)[1] == 1
    assert editor.visible_pack(pack)[1] == 0


def test_desktop_and_local_actor_see_all(base, secret_id):
    assert base.actor.local and base.actor.role == "admin"
    assert base.visible_levels() == ["公开", "内部"]
    assert secret_id in {d.id for d in base.documents()}
    assert base.quote(SECRET_SENTENCE).verdict == "exact"


def test_set_document_access_changes_what_the_reader_sees(tmp_path):
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([MINI])
        w.add_account("admin1", "admin", PW)
        w.add_account("editor1", "editor", PW, "内部")
        w.add_account("reader1", "reader", PW)
    lib = open_kb(kb, embedder="fake")
    reader, editor = lib.actor_for("reader1"), lib.actor_for("editor1")
    doc = reader.documents()[0]
    with pytest.raises(AccessDenied):
        reader.set_document_access(doc.id, "内部")
    with pytest.raises(UsageError):
        editor.set_document_access(doc.id, "绝密")
    assert editor.set_document_access(doc.id, "内部").access == "内部"
    assert doc.id not in {d.id for d in reader.documents()}
    with pytest.raises(KnowledgeBaseError):
        reader.document(doc.id)
    lib.close()


# -- ingest levels -----------------------------------------------------------------------------
def _levels(lib) -> dict[str, str]:
    return {Path(d.path).name: d.access for d in lib.documents()}


def test_ingest_levels_from_option_manifest_and_front_matter(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    body = "\n\n".join(f"第{i}条 各单位应当做好安全生产工作，落实第{i}项责任。" for i in range(1, 6))
    (src / "plain.txt").write_text("关于甲事项的通知\n\n" + body + "\n", encoding="utf-8")
    (src / "listed.txt").write_text("关于乙事项的通知\n\n" + body.replace("安全", "消防") + "\n", encoding="utf-8")
    (src / "front.md").write_text("---\ntitle: 关于丙事项的通知\naccess: 内部\n---\n\n"
                                  + body.replace("安全", "防汛") + "\n", encoding="utf-8")
    (src / "body.txt").write_text("关于丁事项的通知\n\n访问级别：内部\n\n" + body.replace("安全", "节能") + "\n",
                                  encoding="utf-8")
    (src / "bad.md").write_text("---\naccess: 绝密\n---\n\n关于戊事项的通知\n\n" + body.replace("安全", "环保") + "\n",
                                encoding="utf-8")
    (src / "manifest.csv").write_text("file,title,access\nlisted.txt,关于乙事项的通知,内部\n"
                                      "plain.txt,关于甲事项的通知,\n", encoding="utf-8")
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        rep = w.ingest([src])
        assert [Path(f.path).name for f in rep.failed] == ["bad.md"]
        assert "绝密" in rep.failed[0].reason
        assert _levels(w) == {"plain.txt": "公开", "listed.txt": "内部", "front.md": "内部",
                              "body.txt": "公开"}
        # --access 公开 on a file the manifest says is 内部: the stricter wins
        w.ingest([src / "listed.txt"], access="公开")
        assert _levels(w)["listed.txt"] == "内部"
        # an edited 内部 file re-ingested without --access stays 内部
        (src / "front.md").write_text((src / "front.md").read_text(encoding="utf-8").replace("access: 内部\n", "")
                                      + "\n第9条 新增一条。\n", encoding="utf-8")
        rep = w.ingest([src / "front.md"])
        assert rep.count("updated") == 1
        assert _levels(w)["front.md"] == "内部"
        # an unchanged file with another --access changes level (both ways)
        rep = w.ingest([src / "plain.txt"], access="内部")
        assert _levels(w)["plain.txt"] == "内部"
        w.ingest([src / "plain.txt"], access="公开")
        assert _levels(w)["plain.txt"] == "公开"
        # an unknown --access is refused before anything is read
        with pytest.raises(UsageError, match="绝密"):
            w.ingest([src / "plain.txt"], access="绝密")


def test_unchanged_file_with_front_matter_keeps_its_stricter_level(tmp_path):
    """--access 公开 on an unchanged file whose front matter says 内部: the front matter still
    counts (the stricter wins), it is not lowered to 公开."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "front.md").write_text("---\ntitle: 关于丙事项的通知\naccess: 内部\n---\n\n"
                                  "第一条 各单位应当做好防汛工作。\n\n第二条 落实防汛责任。\n", encoding="utf-8")
    with open_kb(tmp_path / "kb", embedder="fake", readonly=False) as w:
        w.ingest([src])
        assert _levels(w) == {"front.md": "内部"}
        w.ingest([src], access="公开")
        assert _levels(w) == {"front.md": "内部"}


def test_front_matter_added_to_unchanged_text_applies(tmp_path):
    """Front matter ``access: 内部`` added to a file: the level applies even if the stored
    text does not change."""
    src = tmp_path / "src"
    src.mkdir()
    body = "关于丙事项的通知\n\n第一条 各单位应当做好防汛工作。\n\n第二条 落实防汛责任。\n"
    (src / "front.md").write_text(body, encoding="utf-8")
    with open_kb(tmp_path / "kb", embedder="fake", readonly=False) as w:
        w.ingest([src])
        assert _levels(w) == {"front.md": "公开"}
        (src / "front.md").write_text("---\naccess: 内部\n---\n\n" + body, encoding="utf-8")
        w.ingest([src])
        assert _levels(w) == {"front.md": "内部"}


def test_duplicate_of_internal_keeps_the_stricter(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    text = "关于丙事项的通知\n\n第一条 各单位应当做好防汛工作。\n\n第二条 落实防汛责任。\n"
    (src / "a.txt").write_text(text, encoding="utf-8")
    with open_kb(tmp_path / "kb", embedder="fake", readonly=False) as w:
        w.ingest([src / "a.txt"], access="内部")
        (src / "b.txt").write_text(text, encoding="utf-8")
        rep = w.ingest([src / "b.txt"])
        assert rep.count("duplicate") == 1
        assert list(_levels(w).values()) == ["内部"]


# -- accounts and logins ---------------------------------------------------------------------
@pytest.fixture
def fresh(tmp_path):
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([MINI / "law.md"])
    lib = open_kb(kb, embedder="fake", readonly=False)
    lib.add_account("admin1", "admin", PW, "内部")
    lib.add_account("reader1", "reader", PW)
    yield lib
    lib.close()


def test_password_hash_is_argon2id(fresh):
    con = sqlite3.connect(fresh.kb_dir / "yuanwen.db")
    rows = dict(con.execute("SELECT name, password_hash FROM accounts").fetchall())
    con.close()
    assert rows["reader1"].startswith("$argon2id$") and PW not in rows["reader1"]
    assert rows["reader1"] != rows["admin1"]  # salted


def test_weak_password_and_bad_names_refused(fresh):
    with pytest.raises(UsageError, match="密码太短"):
        fresh.add_account("short1", "reader", "abc")
    with pytest.raises(UsageError):
        fresh.add_account("reader1", "reader", PW)  # taken
    with pytest.raises(UsageError):
        fresh.add_account("READER1", "reader", PW)  # names compare ignoring case
    with pytest.raises(UsageError):
        fresh.add_account("bad name", "reader", PW)
    with pytest.raises(UsageError):
        fresh.add_account("x2", "superuser", PW)
    with pytest.raises(UsageError):
        fresh.add_account("x3", "reader", PW, clearance="绝密")


def test_login_messages(fresh):
    view = fresh.login("reader1", PW, "10.1.1.1")
    assert view.actor.name == "reader1" and view.actor.client == "10.1.1.1" and not view.actor.local
    with pytest.raises(LoginError) as wrong:
        fresh.login("reader1", "wrong-password-x", "10.1.1.1")
    with pytest.raises(LoginError) as unknown:
        fresh.login("nobody", "wrong-password-x", "10.1.1.1")
    assert str(wrong.value) == str(unknown.value) == "账户名或密码不正确"
    fresh.update_account("reader1", disabled=True)
    with pytest.raises(LoginError, match="停用"):
        fresh.login("reader1", PW, "10.1.1.1")
    assert view.still_valid() is None  # the app drops a session of a disabled account
    with pytest.raises(UsageError):
        fresh.actor_for("reader1")
    fresh.update_account("reader1", disabled=False)
    assert fresh.login("reader1", PW, "10.1.1.1").actor.name == "reader1"


def test_account_lock_after_five_failures(fresh, monkeypatch):
    for _ in range(5):
        with pytest.raises(LoginError, match="不正确"):
            fresh.login("reader1", "wrong-password-x", "10.1.1.2")
    with pytest.raises(LoginError, match="次数过多"):
        fresh.login("reader1", PW, "10.1.1.3")  # the right password, another client: still locked
    with pytest.raises(LoginError, match="次数过多"):
        fresh.login("READER1", PW, "10.1.1.3")  # names compare ignoring case
    assert fresh.login("admin1", PW, "10.1.1.2").actor.name == "admin1"  # other accounts unaffected
    # 16 minutes later the failures are out of the window
    real = _accounts.now_iso
    monkeypatch.setattr(_accounts, "now_iso", lambda delta=None: real((delta or timedelta()) + timedelta(minutes=16)))
    assert fresh.login("reader1", PW, "10.1.1.3").actor.name == "reader1"


def test_lock_window_boundary(fresh, monkeypatch):
    for _ in range(5):
        with pytest.raises(LoginError):
            fresh.login("reader1", "wrong-password-x", "10.1.1.2")
    real = _accounts.now_iso
    monkeypatch.setattr(_accounts, "now_iso", lambda delta=None: real((delta or timedelta()) + timedelta(minutes=14)))
    with pytest.raises(LoginError, match="次数过多"):
        fresh.login("reader1", PW, "10.1.1.3")


def test_client_lock_after_twenty_failures(fresh):
    for i in range(20):
        with pytest.raises(LoginError):
            fresh.login(f"user{i}", "wrong-password-x", "10.9.9.9")  # 20 names, 1 failure each
    with pytest.raises(LoginError, match="次数过多"):
        fresh.login("reader1", PW, "10.9.9.9")
    assert fresh.login("reader1", PW, "10.9.9.8").actor.name == "reader1"  # another client is fine


def test_last_admin_stays(fresh):
    with pytest.raises(UsageError, match="最后一个管理员"):
        fresh.update_account("admin1", role="editor")
    with pytest.raises(UsageError, match="最后一个管理员"):
        fresh.update_account("admin1", disabled=True)
    fresh.add_account("admin2", "admin", PW)
    assert fresh.update_account("admin1", role="editor").role == "editor"
    with pytest.raises(UsageError, match="最后一个管理员"):
        fresh.update_account("admin2", disabled=True)


def test_set_password(fresh):
    reader = fresh.login("reader1", PW, "10.1.1.1")
    with pytest.raises(AccessDenied):
        reader.set_password("admin1", "another-password-2")
    reader.set_password("reader1", "another-password-2")  # one's own
    with pytest.raises(LoginError):
        fresh.login("reader1", PW, "10.1.1.1")
    assert fresh.login("reader1", "another-password-2", "10.1.1.1")


def test_reader_permissions_denied_and_audited(fresh, tmp_path):
    reader = fresh.login("reader1", PW, "10.1.1.1")
    doc = reader.documents()[0]
    (tmp_path / "new.txt").write_text("关于新事项的通知\n\n请遵照执行。\n", encoding="utf-8")

    class Upload:
        name, size = "new.txt", 3

        def getvalue(self) -> bytes:
            return b"abc"

    attempts = {
        "ingest": lambda: reader.ingest([tmp_path / "new.txt"]),
        "upload": lambda: reader.save_uploads([Upload()]),
        "delete": lambda: reader.delete_documents([doc.id]),
        "set_access": lambda: reader.set_document_access(doc.id, "内部"),
        "accounts": lambda: reader.accounts(),
        "account_add": lambda: reader.add_account("x9", "admin", PW),
        "account_update": lambda: reader.update_account("reader1", role="admin"),
        "audit": lambda: reader.audit_log(),
        "retention": lambda: reader.set_audit_retention(365),
        "levels": lambda: reader.set_access_levels(["公开", "内部", "机密"]),
    }
    for name, attempt in attempts.items():
        with pytest.raises(AccessDenied) as exc:
            attempt()
        assert "reader1" in str(exc.value), name
    denied = fresh.audit_log(user="reader1")
    got = {e.action for e in denied if e.outcome == "denied"}
    assert got >= {"ingest", "upload", "delete", "set_access", "accounts", "account_add",
                   "account_update", "audit", "retention", "levels"}
    assert all(e.client == "10.1.1.1" for e in denied if e.outcome == "denied")
    assert doc.id in {d.id for d in fresh.documents()}  # nothing was deleted
    assert fresh.accounts()[-1].role == "reader"


def test_editor_permissions(fresh, tmp_path):
    fresh.add_account("editor1", "editor", PW, "内部")
    editor = fresh.login("editor1", PW, "10.1.1.1")
    assert editor.can("ingest") and editor.can("share_packs") and not editor.can("accounts")
    (tmp_path / "new.txt").write_text("关于新事项的通知\n\n请各单位遵照执行。\n", encoding="utf-8")
    assert editor.ingest([tmp_path / "new.txt"], access="内部").count("added") == 1
    with pytest.raises(AccessDenied):
        editor.audit_log()
    with pytest.raises(AccessDenied):
        editor.add_account("x9", "reader", PW)


# -- OIDC ----------------------------------------------------------------------------------------
MAPPING = {"roles": {"yuanwen-editor": "editor", "yuanwen-admin": "admin"}}


def test_oidc_roles_from_mapping(fresh):
    view = fresh.login_oidc({"preferred_username": "zhang.san", "roles": ["yuanwen-editor", "staff"]},
                            "10.2.2.2", MAPPING)
    assert view.actor.role == "editor" and view.actor.via == "oidc"
    acc = {a.name: a for a in fresh.accounts()}["zhang.san"]
    assert acc.source == "oidc" and acc.clearance == "公开"
    # an IdP value called "admin" that the table does not name grants nothing
    view = fresh.login_oidc({"preferred_username": "li.si", "roles": ["admin"]}, "10.2.2.2", MAPPING)
    assert view.actor.role == "reader"
    # without a table the claim holds the role names themselves
    view = fresh.login_oidc({"preferred_username": "wang.wu", "roles": "admin"}, "10.2.2.2", {})
    assert view.actor.role == "admin"
    # an OIDC account has no password to log in with
    with pytest.raises(LoginError):
        fresh.login("zhang.san", "", "10.2.2.2")
    with pytest.raises(UsageError):
        fresh.set_password("zhang.san", "another-password-2")


def test_oidc_clearance_and_changes_follow_the_claims(fresh):
    claims = {"preferred_username": "zhao.liu", "roles": ["yuanwen-editor"], "clearance": ["内部", "机密"]}
    view = fresh.login_oidc(claims, "10.2.2.2", MAPPING)
    assert view.actor.clearance == "内部"  # 机密 is not on the ladder
    view = fresh.login_oidc({"preferred_username": "zhao.liu", "roles": []}, "10.2.2.2", MAPPING)
    assert (view.actor.role, view.actor.clearance) == ("reader", "公开")
    fresh.update_account("zhao.liu", disabled=True)
    with pytest.raises(LoginError, match="停用"):
        fresh.login_oidc(claims, "10.2.2.2", MAPPING)


def test_oidc_never_takes_over_a_local_account(fresh):
    with pytest.raises(LoginError, match="本地账户"):
        fresh.login_oidc({"preferred_username": "admin1", "roles": ["yuanwen-admin"]}, "10.2.2.2", MAPPING)
    with pytest.raises(LoginError, match="本地账户"):
        fresh.login_oidc({"preferred_username": "ADMIN1", "roles": ["yuanwen-admin"]}, "10.2.2.2", MAPPING)
    with pytest.raises(LoginError):
        fresh.login_oidc({"roles": ["yuanwen-admin"]}, "10.2.2.2", MAPPING)  # no name at all


def test_actor_changes_seen_by_still_valid(fresh):
    view = fresh.login("reader1", PW, "10.1.1.1")
    fresh.update_account("reader1", role="editor", clearance="内部")
    now = view.still_valid()
    assert now is not None and now.actor.role == "editor" and now.actor.clearance == "内部"


# -- migration -------------------------------------------------------------------------------
def test_schema_4_upgrades_and_reads_public(tmp_path):
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([MINI])
        n = len(w.documents())
    # take the knowledge base back to schema 4: drop what migration 5 adds
    con = sqlite3.connect(kb / "yuanwen.db")
    con.executescript(
        "DROP TABLE accounts;"
        "DROP INDEX idx_documents_access; ALTER TABLE documents DROP COLUMN access;"
        "UPDATE meta SET value = '4' WHERE key = 'schema_version';")
    con.close()
    with pytest.raises(KnowledgeBaseError, match="格式版本为 4"):
        open_kb(kb, embedder="fake").documents()  # read-only cannot upgrade
    with open_kb(kb, embedder="fake", readonly=False) as w:
        docs = w.documents()
        assert len(docs) == n and {d.access for d in docs} == {"公开"}
        assert not w.shared()
        w.add_account("admin1", "admin", PW)
        assert w.shared()
    con = sqlite3.connect(kb / "yuanwen.db")
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    con.close()


def test_pack_items_recorded_above_clearance_stay_hidden_after_the_document_goes(tmp_path):
    """A shared pack holds the text of a 内部 passage; the 内部 document is then deleted (no
    document above the reader's clearance is left): the reader still does not get that item."""
    src = tmp_path / "src"
    _write_secret(src)
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([MINI])
        w.ingest([src], access="内部")
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("editor1", "editor", PW, "内部")
        w.add_account("reader1", "reader", PW)
    lib = open_kb(kb, embedder="fake")
    editor, reader = lib.actor_for("editor1"), lib.actor_for("reader1")
    [secret] = [d for d in editor.documents() if d.access == "内部"]
    pid = editor.document_passages(secret.id)[-2].id
    pub = reader.documents()[0]
    pub_pid = reader.document_passages(pub.id)[0].id
    editor.save_pack("共享/汇编", editor.add_to_pack(StudyPack(), [pub_pid, pid]))
    editor.delete_documents([secret.id])
    lib.close()
    lib = open_kb(kb, embedder="fake")
    reader = lib.actor_for("reader1")
    seen = reader.open_pack("共享/汇编").pack
    assert reader.pack_size(seen) == 1
    assert SECRET_SENTENCE not in reader.export_bytes(seen, "md").decode("utf-8")
    assert SECRET_SENTENCE not in reader.export_bytes(lib.actor_for("editor1").open_pack("共享/汇编").pack,
                                                      "md").decode("utf-8")
    lib.close()


def test_account_names_cannot_climb_out_of_the_accounts_folder(fresh):
    for name in ("..", ".x", "..."):
        with pytest.raises(UsageError):
            fresh.add_account(name, "reader", PW)
    with pytest.raises(LoginError):
        fresh.login_oidc({"preferred_username": ".."}, "10.2.2.2", {})
