"""Holes found by a security review of issue 15 (accounts, access levels, audit), each proved
here by a test that failed before its fix:

- 已识别 (``SearchResult.understood``) named places taken from documents above the reader's
  clearance (the issuers and titles of every document);
- ``stats`` (the 知识库 page) told an editor below a document's level its issuer and type;
- ``verify`` ran for any account (its report names documents);
- the list of an account's own packs counted passages of documents raised above its clearance
  since they were added;
- widget callbacks run before the entry point checks the session, so they acted as the account
  was at the last run: a demoted or disabled account, or a session past its idle timeout, could
  still delete a document or act with one click;
- desktop mode (no login) was granted to a request through a reverse proxy on this machine that
  passes neither X-Forwarded-For nor the browser's Host (nginx's defaults): the browser's
  ``Origin`` names the address it really opened;
- pack saves and file exports wrote first and audited after: an audit log that cannot be written
  left them done and unrecorded.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages_app import common as app_common
from pages_app import login as app_login
from yuanwen.errors import AccessDenied, AuditError
from yuanwen.library import open_kb
from yuanwen.models import StudyPack
from yuanwen.store import Store

from .conftest import ROOT, FakeEmbedder  # noqa: F401  (registers the "fake" embedder)

MINI = ROOT / "tests" / "fixtures" / "mini"
APP = str(ROOT / "app.py")
PW = "correct-horse-1"
SECRET_ISSUER = "河北省保密委员会办公室"  # no public document names 河北
SECRET_TITLE = "2023年河北省涉密载体清查工作要点"
SECRET_TYPE = "内部通报"
SECRET_TEXT = (f"{SECRET_TITLE}\n\n各单位：涉密载体清查是保密工作的重要内容，安全生产也要抓。\n\n"
               "请于月底前完成涉密载体清查，结果报市保密办。\n")


def _secret_folder(root: Path) -> Path:
    folder = root / "sec"
    folder.mkdir(parents=True)
    (folder / "s.txt").write_text(SECRET_TEXT, encoding="utf-8")
    (folder / "manifest.csv").write_text(
        f"file,title,issuer,date,doc_type\ns.txt,{SECRET_TITLE},{SECRET_ISSUER},2023-05-06,{SECRET_TYPE}\n",
        encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def kbdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("secrev")
    kb = root / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        assert not w.ingest([MINI]).failed
        assert not w.ingest([_secret_folder(root)], access="内部").failed
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("reader1", "reader", PW)
        w.add_account("editor0", "editor", PW)  # an editor whose clearance is 公开
    return kb


@pytest.fixture(scope="module")
def base(kbdir):
    lib = open_kb(kbdir, embedder="fake")
    yield lib
    lib.close()


def _secret_id(lib) -> int:
    return next(d.id for d in lib.documents() if d.title == SECRET_TITLE)


# -- what the reader may not learn ----------------------------------------------------------------
@pytest.mark.parametrize("query", ["河北省 安全生产", "2023年河北省工作要点里关于安全生产的部署"])
def test_understood_names_no_place_of_a_hidden_document(base, query):
    reader = base.actor_for("reader1", client="10.0.0.5")
    assert "河北" not in reader.search(query, mode="hybrid").understood
    assert "河北" not in reader.excerpts(query).understood
    # the same search by the machine's own user (who may read it) does name it
    assert "河北" in base.search(query, mode="hybrid").understood


def test_stats_of_an_editor_below_a_documents_level(base):
    editor0 = base.actor_for("editor0", client="10.0.0.6")
    stats = editor0.stats()
    assert SECRET_ISSUER not in stats["by_issuer"] and SECRET_TYPE not in stats["by_type"]
    assert stats["documents"] == len(editor0.documents()) == len(base.documents()) - 1
    full = base.stats()
    assert SECRET_ISSUER in full["by_issuer"] and full["documents"] == len(base.documents())


def test_verify_needs_an_editor(base):
    with pytest.raises(AccessDenied):
        base.actor_for("reader1").verify()
    assert base.actor_for("editor0").verify().ok
    assert base.verify().ok


def test_own_pack_list_counts_no_passage_raised_above_the_clearance(tmp_path):
    kb = tmp_path / "kb"
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / "a.txt").write_text("关于做好防汛工作的通知\n\n各单位要做好防汛物资储备工作，确保安全度汛。\n",
                               encoding="utf-8")
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([pub])
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("reader1", "reader", PW)
        reader = w.actor_for("reader1")
        [doc] = reader.documents()
        pids = [p.id for p in reader.document_passages(doc.id)]
        reader.create_pack("mine", reader.add_to_pack(StudyPack(title="t"), pids))
        assert [(p.name, len(p.pack.sections[0].items)) for p in reader.packs()] == [("mine", len(pids))]
        w.set_document_access(doc.id, "内部")
        listed = {p.name: p for p in w.actor_for("reader1").packs()}
        assert not [i for s in listed["mine"].pack.sections for i in s.items]
        assert not [i for s in w.actor_for("reader1").open_pack("mine").pack.sections for i in s.items]


# -- an audit log that cannot be written stops the action before it is done -----------------------
@pytest.fixture
def shared(tmp_path) -> Path:
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        w.ingest([MINI])
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("reader1", "reader", PW)
    return kb


def _audit_fails(monkeypatch) -> None:
    def refuse(self, entries):
        raise OSError("disk full")
    monkeypatch.setattr(Store, "append_audit", refuse)


def test_pack_save_not_done_when_the_audit_fails(shared, monkeypatch):
    lib = open_kb(shared, embedder="fake")
    reader = lib.actor_for("reader1")
    reader.create_pack("kept")
    _audit_fails(monkeypatch)
    with pytest.raises(AuditError):
        reader.create_pack("new")
    with pytest.raises(AuditError):
        reader.save_pack("kept", StudyPack(title="changed"))
    with pytest.raises(AuditError):
        reader.delete_pack("kept")
    monkeypatch.undo()
    names = {p.name: p for p in reader.packs()}
    assert "new" not in names and names["kept"].pack.title == "kept"
    lib.close()


def test_export_file_not_written_when_the_audit_fails(shared, monkeypatch, tmp_path):
    lib = open_kb(shared, embedder="fake")
    reader = lib.actor_for("reader1")
    [d, *_] = reader.documents()
    pack = reader.add_to_pack(StudyPack(title="t"), [reader.document_passages(d.id)[0].id])
    _audit_fails(monkeypatch)
    out = tmp_path / "out.md"
    with pytest.raises(AuditError):
        reader.export_file(pack, out)
    assert not out.exists()
    lib.close()


# -- the app: callbacks act as the account is now -------------------------------------------------
@pytest.fixture
def app_kb(tmp_path) -> Path:
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        assert not w.ingest([MINI]).failed
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("editor1", "editor", PW, "内部")
    return kb


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _editor_about_to_delete(kb: Path, monkeypatch) -> tuple[AppTest, int]:
    """editor1 on the 文档 page with 删除文档 clicked: 确定删除 is one click away."""
    monkeypatch.setenv("YUANWEN_KB", str(kb))
    at = _ok(AppTest.from_file(APP, default_timeout=60).run())
    at.text_input(key="login_name").input("editor1")
    at.text_input(key="login_pw").input(PW)
    _ok(at.button(key="login_go").click().run())
    _ok(at.switch_page("pages_app/documents_page.py").run())
    doc_id = at.session_state["d_pick"]
    _ok(at.button(key="doc_del").click().run())
    assert at.button(key="doc_del_yes") is not None
    return at, doc_id


def _doc_ids(kb: Path) -> set[int]:
    with open_kb(kb) as lib:
        return {d.id for d in lib.documents()}


@pytest.mark.parametrize("change", ["demoted", "disabled", "idle"])
def test_a_pending_click_acts_as_the_account_is_now(app_kb, monkeypatch, change):
    at, doc_id = _editor_about_to_delete(app_kb, monkeypatch)
    if change == "idle":
        at.session_state[app_login.LAST_KEY] = time.time() - app_login.IDLE_SECONDS - 60
    else:
        with open_kb(app_kb) as admin:
            admin.update_account("editor1", **({"role": "reader"} if change == "demoted" else {"disabled": True}))
    _ok(at.button(key="doc_del_yes").click().run())
    assert doc_id in _doc_ids(app_kb)  # not deleted
    with open_kb(app_kb) as admin:
        assert all(e.outcome == "denied" for e in admin.audit_log(user="editor1", actions=["delete"]))


def test_the_delete_click_still_works_for_an_editor(app_kb, monkeypatch):
    at, doc_id = _editor_about_to_delete(app_kb, monkeypatch)
    _ok(at.button(key="doc_del_yes").click().run())
    assert doc_id not in _doc_ids(app_kb)


# -- desktop mode: the browser's Origin counts too ------------------------------------------------
class _Ctx:
    def __init__(self, headers: dict[str, str], ip: str | None = None) -> None:
        self.headers, self.ip_address = headers, ip


@pytest.mark.parametrize("headers,local", [
    ({"Host": "127.0.0.1:8501", "Origin": "http://127.0.0.1:8501"}, True),
    ({"Host": "localhost:8501", "Origin": "http://localhost:8501"}, True),
    ({"Host": "[::1]:8501", "Origin": "http://[::1]:8501"}, True),
    ({"Host": "127.0.0.1:8501"}, True),  # no Origin: not a browser's page (kept as before)
    # nginx's defaults: Host rewritten to the upstream, no X-Forwarded-For; the page was opened
    # on the office's address
    ({"Host": "127.0.0.1:8501", "Origin": "https://kb.office.example"}, False),
    ({"Host": "127.0.0.1:8501", "Origin": "http://10.1.2.3:8080"}, False),
    ({"Host": "127.0.0.1:8501", "Origin": "null"}, False),
])
def test_request_is_local_reads_the_origin(monkeypatch, headers, local):
    monkeypatch.setattr(app_login.st, "context", _Ctx(headers))
    assert app_login.request_is_local() is local


def test_common_and_login_share_the_idle_settings():
    assert app_common.LAST_KEY == app_login.LAST_KEY and app_common.IDLE_SECONDS == app_login.IDLE_SECONDS


def test_an_editor_cannot_replace_a_shared_pack_holding_what_they_may_not_read(tmp_path):
    kb = tmp_path / "kb"
    with open_kb(kb, embedder="fake", readonly=False) as w:
        assert not w.ingest([MINI]).failed
        assert not w.ingest([_secret_folder(tmp_path)], access="内部").failed
        w.add_account("admin1", "admin", PW, "内部")
        w.add_account("editor1", "editor", PW, "内部")
        w.add_account("editor0", "editor", PW)
        editor1 = w.actor_for("editor1")
        pid = editor1.document_passages(_secret_id(w))[0].id
        editor1.create_pack("共享/专题", editor1.add_to_pack(StudyPack(title="专题"), [pid]))
        editor0 = w.actor_for("editor0")
        raw = w.pack_bytes(StudyPack(title="空"), "json")
        with pytest.raises(AccessDenied):
            editor0.import_pack(raw, "x.json", name="共享/专题", replace=True)
        assert editor1.open_pack("共享/专题").pack.sections[0].items[0].passage_id == pid
        editor1.import_pack(raw, "x.json", name="共享/专题", replace=True)  # who may read it all may
        assert editor1.open_pack("共享/专题").pack.title == "空"
