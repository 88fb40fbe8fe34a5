"""The ``milvus`` backend on Milvus Lite (the real Milvus engine, local file and server mode):
the interfaces, ingest and the three search modes with filters pushed down, quote lookup,
re-ingest, deletion, access levels, the descriptor, error messages, ``verify``, and two
processes on one server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from yuanwen.backend import (
    DESCRIPTOR,
    Backend,
    DocumentStore,
    KeywordIndex,
    VectorIndex,
    write_descriptor,
)
from yuanwen.config import Config
from yuanwen.errors import KnowledgeBaseError
from yuanwen.kb import KnowledgeBase
from yuanwen.library import open_kb
from yuanwen.models import Filters

from .milvus_server import LiteServer
from .test_backend import check_filters_pushed_down

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "fixtures" / "mini"


def _new_milvus_kb(d: Path, **descriptor) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    write_descriptor(d, {"backend": "milvus", **descriptor})
    return d


def _ingest(d: Path, paths, **kw):
    lib = open_kb(d, readonly=False)
    try:
        return lib.ingest([Path(p) for p in paths], embedder=kw.pop("embedder", "fake"), **kw)
    finally:
        lib.close()


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory) -> Path:
    """A Milvus Lite (local file) knowledge base of the mini fixture, fake embedder."""
    d = _new_milvus_kb(tmp_path_factory.mktemp("mkb") / "kb")
    assert not _ingest(d, [MINI]).failed
    return d


@pytest.fixture(scope="module")
def sqlite_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("skb") / "kb"
    assert not _ingest(d, [MINI]).failed
    return d


def test_the_descriptor_is_completed_and_the_backend_implements_the_interfaces(kb_dir):
    desc = json.loads((kb_dir / DESCRIPTOR).read_text(encoding="utf-8"))
    assert desc["backend"] == "milvus" and desc["uri"] == "milvus.db" and desc["index"] == "FLAT"
    assert desc["prefix"].startswith("yw_") and (kb_dir / "milvus.db").exists()
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        assert isinstance(kb.backend, Backend) and kb.backend.name == "milvus"
        assert isinstance(kb.store, DocumentStore)
        assert isinstance(kb.keyword(), KeywordIndex) and isinstance(kb.vectors(), VectorIndex)
        stats = kb.stats()
        assert stats["backend"] == "milvus" and stats["documents"] == 4 and stats["pending"] == 0
        assert stats["embedded"] == stats["passages"] > 0 and stats["dim"] == 64
    finally:
        kb.close()


def test_filters_are_pushed_down_to_both_indexes(kb_dir):
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        check_filters_pushed_down(kb)
    finally:
        kb.close()


def test_search_quote_and_reading_match_the_sqlite_backend(kb_dir, sqlite_dir):
    m, s = open_kb(kb_dir), open_kb(sqlite_dir)
    try:
        for mode in ("keyword", "semantic", "hybrid"):
            hm = m.search("安全生产责任", k=5, mode=mode).hits
            hs = s.search("安全生产责任", k=5, mode=mode).hits
            assert hm, mode
            assert {h.document.title for h in hm} <= {h.document.title for h in s.search(
                "安全生产责任", k=10, mode=mode).hits}, mode
            assert len({h.passage.text for h in hm} & {h.passage.text for h in hs}) >= 3, mode
        hits = m.search("防汛", k=10, mode="hybrid", filters=Filters(doc_types=["通知"])).hits
        assert hits and {h.document.doc_type for h in hits} == {"通知"}
        # reading: documents, passages, outline, facets, the same as on SQLite
        assert [d.title for d in m.documents()] == [d.title for d in s.documents()]
        law_m = next(d for d in m.documents() if d.title == "某市安全生产条例")
        law_s = next(d for d in s.documents() if d.title == "某市安全生产条例")
        assert m.document(law_m.id, with_text=True).text == s.document(law_s.id, with_text=True).text
        assert [p.text for p in m.document_passages(law_m.id)] == [p.text for p in s.document_passages(law_s.id)]
        def outline(lib, doc_id):  # (ids differ: each backend hands out its own)
            return [(*o[:-1], lib.passages([o[-1]])[o[-1]].text) for o in lib.outline(doc_id)]
        assert outline(m, law_m.id) == outline(s, law_s.id)
        assert m.facets() == s.facets()
        # quote lookup: a verbatim sentence, an altered one, an invented one
        text = m.document(law_m.id, with_text=True).text
        p = m.document_passages(law_m.id)[1]
        exact = text[p.start: p.end].strip().split("。")[0]
        r = m.quote(exact)
        assert r.verdict == "exact" and r.matches[0].document.id == law_m.id
        assert s.quote(exact).verdict == "exact"
        altered = exact[:-4] + "认真落实" if len(exact) > 12 else exact + "认真落实"
        assert m.quote(altered).verdict == s.quote(altered).verdict
        assert m.quote("月亮上的兔子喜欢吃胡萝卜和青菜").verdict == "not_found"
        # related passages, timeline, excerpts
        assert [h.passage.text for h in m.related(p.id).hits] == [
            h.passage.text for h in s.related(s.document_passages(law_s.id)[1].id).hits]
        assert m.timeline("安全生产").occurrences == s.timeline("安全生产").occurrences
        assert len(m.excerpts("安全生产").groups) == len(s.excerpts("安全生产").groups)
    finally:
        m.close()
        s.close()


def test_store_api_for_migrate(kb_dir):
    kb = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    try:
        doc = kb.store.documents()[0]
        sents = kb.store.document_sentences(doc.id)
        text = kb.store.get_document(doc.id).text
        assert sents and all(text[x.start: x.end] == x.text for x in sents)
        assert {x.passage_seq for x in sents} == {p.seq for p in kb.store.document_passages(doc.id)}
        info = kb.store.file_info(doc.id)
        assert info["file_hash"] and info["format"] in ("txt", "md") and info["fs_path"] is None
        hashes = [h for hs, _ in kb.store.iter_vectors(batch=3) for h in hs]
        assert len(hashes) == len(set(hashes)) == len({p.text for p in kb.store.passages()})
        assert kb.store.sentence_span(doc.id, sents[1].start + 1, sents[1].start + 2) == (sents[1].start, sents[1].end)
        assert kb.store.document_slice(doc.id, 3, 20) == text[3:20]
    finally:
        kb.close()


def test_long_text_is_stored_in_chunks(tmp_path):
    from yuanwen.milvus_store import TEXT_CHUNK

    d = _new_milvus_kb(tmp_path / "kb")
    src = tmp_path / "src"
    src.mkdir()
    body = "".join(f"第{i}段，关于加强基层治理能力建设的若干意见第{i}项。\n" for i in range(1800))
    (src / "long.txt").write_text("长文档\n" + body, encoding="utf-8")
    assert not _ingest(d, [src], embed=False).failed
    kb = KnowledgeBase(Config(kb_dir=d), readonly=True)
    try:
        doc = kb.store.documents(with_text=True)[0]
        assert len(doc.text) > 2 * TEXT_CHUNK and kb.store.get_document(doc.id).text == doc.text
        a, b = TEXT_CHUNK - 5, 2 * TEXT_CHUNK + 7
        assert kb.store.document_slice(doc.id, a, b) == doc.text[a:b]
        assert kb.stats()["pending"] == kb.stats()["passages"] > 0 and kb.vectors() is None
    finally:
        kb.close()


def test_reingest_delete_access_and_resume(tmp_path):
    d = _new_milvus_kb(tmp_path / "kb")
    src = tmp_path / "src"
    shutil.copytree(MINI, src)
    assert not _ingest(d, [src], embed=False).failed  # an embedding that never ran
    lib = open_kb(d)
    assert lib.stats()["pending"] == lib.stats()["passages"] > 0
    lib.close()
    report = _ingest(d, [src])  # resumes: embeds what is pending, stores nothing again
    assert report.passages_embedded > 0 and {o.status for o in report.outcomes} == {"unchanged"}

    # a changed file replaces its document; the old text leaves no passage behind
    notice = src / "notice.txt"
    notice.write_text(notice.read_text(encoding="utf-8").replace("防汛责任", "抗旱保供责任"), encoding="utf-8")
    report = _ingest(d, [src])
    assert [o.status for o in report.outcomes if o.path.endswith("notice.txt")] == ["updated"]
    lib = open_kb(d)
    try:
        doc = next(x for x in lib.documents() if x.path.endswith("notice.txt"))
        for mode in ("keyword", "semantic", "hybrid"):
            for h in lib.search("防汛责任", k=20, mode=mode).hits:
                assert "防汛责任" not in h.passage.text or h.document.id != doc.id, mode
        assert any(h.document.id == doc.id for h in lib.search("抗旱保供", k=5, mode="keyword").hits)
        stats = lib.stats()
        assert stats["passages"] == sum(len(lib.document_passages(x.id)) for x in lib.documents())
        assert stats["embedded"] == stats["passages"]
    finally:
        lib.close()

    # a vanished file is pruned
    (src / "copy.txt").unlink()
    report = _ingest(d, [src], prune=True)
    assert [o.status for o in report.outcomes if o.path.endswith("copy.txt")] == ["pruned"]

    # access levels: given at ingest, changed, and filtered on
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "secret.txt").write_text("内部通报\n关于内部防汛物资储备情况的通报，请各单位注意保密。\n", encoding="utf-8")
    assert not _ingest(d, [extra], access="内部").failed
    lib = open_kb(d, readonly=False)
    try:
        secret = next(x for x in lib.documents() if x.path.endswith("secret.txt"))
        assert secret.access == "内部"
        public = Filters(access=["公开"])
        for mode in ("keyword", "semantic", "hybrid"):
            assert all(h.document.id != secret.id for h in lib.search("防汛物资储备", k=20, mode=mode,
                                                                      filters=public).hits), mode
        assert lib.search("防汛物资储备", k=3, mode="keyword").hits[0].document.id == secret.id
        lib.set_document_access(secret.id, "公开")
        assert lib.document(secret.id).access == "公开"
        assert lib.search("防汛物资储备", k=3, mode="keyword", filters=public).hits[0].document.id == secret.id

        # deletion: gone from every mode, its vectors and passages too
        before = lib.stats()
        gone = lib.delete_documents([secret.id])
        assert [g.id for g in gone] == [secret.id]
        for mode in ("keyword", "semantic", "hybrid"):
            assert all(h.document.id != secret.id for h in lib.search("防汛物资储备", k=20, mode=mode).hits)
        after = lib.stats()
        assert after["documents"] == before["documents"] - 1
        assert after["passages"] < before["passages"] and after["embedded"] == after["passages"]
        assert lib.verify().ok
    finally:
        lib.close()

    # --reembed with another model (another dimension)
    report = _ingest(d, [src], embedder="fake2", reembed=True)
    lib = open_kb(d)
    try:
        assert lib.stats()["dim"] == 32 and lib.stats()["embedded"] == lib.stats()["passages"]
        assert lib.search("防汛", k=3, mode="semantic").hits
        assert lib.verify().ok
    finally:
        lib.close()


def test_verify_reports_real_problems_and_repairs_orphans(tmp_path):
    d = _new_milvus_kb(tmp_path / "kb")
    assert not _ingest(d, [MINI]).failed
    lib = open_kb(d)
    rep = lib.verify()
    assert rep.ok and not rep.problems, rep.problems
    lib.close()

    kb = KnowledgeBase(Config(kb_dir=d))
    st = kb.store
    doc = st.documents()[0]
    p = st.document_passages(doc.id)[0]
    # an orphan passage (its document row never written), a passage without its vector,
    # a document without its text rows
    row = st.client.query(st.c_pass, filter=f"id == {p.id}", output_fields=["*"])[0]
    row = {k: v for k, v in row.items() if not k.startswith("sp_")}
    st.client.insert(st.c_pass, [{**row, "id": 999_999, "doc_id": 777_777}])
    other = st.documents()[1]
    st.client.delete(st.c_vec, filter=f"doc_id == {other.id}")
    third = st.documents()[2]
    st.client.delete(st.c_text, filter=f"doc_id == {third.id}")
    st._bump()
    kb.close()

    lib = open_kb(d)
    rep = lib.verify()
    lib.close()
    text = "\n".join(rep.problems)
    assert not rep.ok
    assert "1 个段落" in text and "不属于任何文档" in text
    assert "没有向量" in text
    assert third.path in text and "正文缺少" in text
    # the orphan never shows in a search meanwhile
    lib = open_kb(d)
    assert all(h.passage.id != 999_999 for h in lib.search(p.text[:20], k=20, mode="keyword").hits)
    rep = lib.repair()
    assert any("不属于任何文档" in r for r in rep.repaired)
    lib.close()

    # vectors of the wrong dimension
    kb = KnowledgeBase(Config(kb_dir=d))
    kb.store.set_meta("dim", "32")
    kb.close()
    lib = open_kb(d)
    assert any("维度不是 32" in x for x in lib.verify().problems)
    lib.close()


def test_connection_errors_are_clear(tmp_path):
    d = _new_milvus_kb(tmp_path / "down", uri="http://127.0.0.1:9", prefix="yw_test", timeout=2)
    with pytest.raises(KnowledgeBaseError, match="无法连接 Milvus http://127.0.0.1:9") as err:
        KnowledgeBase(Config(kb_dir=d), create=True)
    assert "Traceback" not in str(err.value) and "kb.json" in str(err.value)
    d2 = _new_milvus_kb(tmp_path / "badname", uri="data.sqlite")
    with pytest.raises(KnowledgeBaseError, match=r"\.db 结尾"):
        KnowledgeBase(Config(kb_dir=d2), create=True)
    # a Milvus Lite file that another process holds
    d3 = _new_milvus_kb(tmp_path / "held")
    KnowledgeBase(Config(kb_dir=d3), create=True).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, warnings
        warnings.simplefilter("ignore")
        from pymilvus import MilvusClient
        c = MilvusClient({str(d3 / 'milvus.db')!r})
        print("open", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(KnowledgeBaseError, match="正被另一个程序使用"):
            KnowledgeBase(Config(kb_dir=d3), readonly=True)
    finally:
        holder.kill()
        holder.wait()
    # a knowledge base that was never made
    d4 = _new_milvus_kb(tmp_path / "none", prefix="yw_never")
    KnowledgeBase(Config(kb_dir=d4), create=True).close()
    (d4 / DESCRIPTOR).write_text(json.dumps({**json.loads((d4 / DESCRIPTOR).read_text(encoding="utf-8")),
                                             "prefix": "yw_other"}), encoding="utf-8")
    with pytest.raises(KnowledgeBaseError, match="知识库不存在.*yw_other"):
        KnowledgeBase(Config(kb_dir=d4), readonly=True)


def test_two_processes_share_a_lite_server(tmp_path):
    with LiteServer(tmp_path / "srv" / "shared.db") as uri:
        d = _new_milvus_kb(tmp_path / "kb", uri=uri)
        src = tmp_path / "src"
        shutil.copytree(MINI, src)
        news = src / "later.txt"
        (src / "later.txt").unlink(missing_ok=True)
        assert not _ingest(d, [src]).failed
        reader = open_kb(d)  # this process reads while another one ingests
        try:
            assert not reader.search("乡村振兴示范带", k=3, mode="keyword").hits
            assert len(reader.documents()) == 4
            news.write_text("乡村振兴示范带建设方案\n全面推进乡村振兴示范带建设，打造宜居宜业和美乡村。\n",
                            encoding="utf-8")
            code = textwrap.dedent(f"""
                import sys
                sys.path.insert(0, {str(ROOT)!r})
                import tests.fake_embedder
                from yuanwen.library import open_kb
                lib = open_kb({str(d)!r}, readonly=False, embedder="fake")
                rep = lib.ingest([{str(news)!r}])
                assert not rep.failed, rep.outcomes
                lib.close()
            """)
            done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            assert len(reader.documents()) == 5
            for mode in ("keyword", "semantic", "hybrid"):
                hits = reader.search("乡村振兴示范带", k=3, mode=mode).hits
                assert hits and hits[0].document.title == "乡村振兴示范带建设方案", mode
        finally:
            reader.close()


def test_accounts_audit_clearance_and_packs(tmp_path):
    d = _new_milvus_kb(tmp_path / "kb")
    src = tmp_path / "src"
    src.mkdir()
    (src / "open.txt").write_text("公开通知\n做好防汛值班工作，确保安全度汛。\n", encoding="utf-8")
    (src / "inner.txt").write_text("内部通报\n防汛物资储备情况通报，仅限内部传阅。\n", encoding="utf-8")
    assert not _ingest(d, [src / "open.txt"]).failed
    assert not _ingest(d, [src / "inner.txt"], access="内部").failed
    admin = open_kb(d, readonly=False)
    try:
        admin.add_account("boss", "admin", "Str0ng-Passw0rd!", clearance="内部")
        admin.add_account("reader1", "reader", "An0ther-Passw0rd!", clearance="公开")
    finally:
        admin.close()
    assert (d / "yuanwen.db").exists() and (d / "audit.db").exists()  # in the folder, as for SQLite
    app = open_kb(d)  # the app's read-only handle: logins and searches are still audited
    try:
        assert app.shared()
        reader = app.login("reader1", "An0ther-Passw0rd!")
        titles = {h.document.title for h in reader.search("防汛", k=10, mode="hybrid").hits}
        assert "公开通知" in titles and "内部通报" not in titles
        boss = app.login("boss", "Str0ng-Passw0rd!")
        assert "内部通报" in {h.document.title for h in boss.search("防汛", k=10, mode="keyword").hits}
        actions = [e.action for e in boss.audit_log()]
        assert "login" in actions and "search" in actions and "account_add" in actions
        assert boss.verify_audit() == []
        # a study pack: a file in the folder, its passages read from Milvus
        hit = boss.search("防汛物资储备", k=1, mode="keyword").hits[0]
        pack = boss.add_to_pack(boss.new_pack("汇编"), [hit.passage.id])
        boss.create_pack("防汛材料", pack)
        again = open_kb(d).login("boss", "Str0ng-Passw0rd!").open_pack("防汛材料")
        assert hit.passage.text.strip()[:10] in again.pack.sections[-1].items[0].text
    finally:
        app.close()


def test_an_interrupted_embedding_resumes(tmp_path):
    import dataclasses

    from yuanwen.embed import register_embedder

    from .fake_embedder import FakeEmbedder

    class Interrupted(FakeEmbedder):
        """The fake embedder (same model) that stops after two batches, like a killed ingest."""
        calls = 0

        def embed_batch(self, texts, role):
            Interrupted.calls += 1
            if role == "passage" and Interrupted.calls > 2:
                raise KeyboardInterrupt
            return super().embed_batch(texts, role)

    register_embedder("fake-interrupted", Interrupted)
    d = _new_milvus_kb(tmp_path / "kb")
    lib = open_kb(d, readonly=False)
    lib.config = dataclasses.replace(lib.config, embed_batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        lib.ingest([MINI], embedder="fake-interrupted")
    lib.close()
    lib = open_kb(d)
    stats = lib.stats()
    lib.close()
    assert 0 < stats["embedded"] < stats["passages"] and stats["pending"] > 0
    report = _ingest(d, [MINI])
    assert 0 < report.passages_embedded <= stats["pending"]
    lib = open_kb(d)
    try:
        assert lib.stats()["embedded"] == lib.stats()["passages"] and lib.verify().ok
        assert lib.search("安全生产责任", k=3, mode="semantic").hits
    finally:
        lib.close()


def test_a_stopped_lite_server_is_started_again(kb_dir, tmp_path):
    """Milvus Lite's server stops when this process's POSIX lock on its lock file goes, and
    POSIX drops it whenever the process closes any descriptor of that file (a copy of the
    folder made in the process does): the next call starts the server again at once, where
    the old client retried its dead socket for minutes."""
    lib = open_kb(kb_dir)
    try:
        assert lib.search("防汛", k=3, mode="keyword").hits
        server = lib.kb.backend._proc  # the server's process
        assert (kb_dir / ".milvus.db.lock").exists()  # (the lock file of the server it runs)
        shutil.copytree(kb_dir, tmp_path / "copy")  # reads the lock file and closes it
        deadline = time.monotonic() + 20
        while server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.poll() is not None
        started = time.monotonic()
        assert lib.search("防汛", k=3, mode="keyword").hits
        assert time.monotonic() - started < 15
    finally:
        lib.close()


def test_each_cached_vector_is_yielded_once_when_passages_share_a_text(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    same = "各单位要认真落实安全生产责任制，健全隐患排查治理体系，确保各项工作取得实效。" * 4
    for name, title in (("a.md", "关于甲项工作的通知"), ("b.md", "关于乙项工作的通知")):
        (src / name).write_text(f"# {title}\n\n## 一、总体要求\n\n{same}\n\n## 二、{title}的具体安排\n\n"
                                f"{title}的其他要求另行通知，请各单位按时报送。\n", encoding="utf-8")
    d = _new_milvus_kb(tmp_path / "kb")
    assert not _ingest(d, [src]).failed
    kb = KnowledgeBase(Config(kb_dir=d), readonly=True)
    try:
        texts = kb.store.distinct_passage_texts()
        assert kb.store.counts()["embedded"] == kb.store.counts()["passages"] > len(texts)
        for batch in (1, 2, 1000):  # duplicates within a batch and across batches
            hashes = [h for chunk, _ in kb.store.iter_vectors(batch) for h in chunk]
            assert len(hashes) == len(set(hashes)) == len(texts)
    finally:
        kb.close()


def test_a_transaction_writes_its_documents_at_its_end_and_an_error_drops_them(tmp_path):
    """save_document inside transaction() is held back and written when the block ends, with
    one version bump; anything that reads the collections first sees it; an error inside the
    block drops the documents not written yet (as a rollback would)."""
    d = _new_milvus_kb(tmp_path / "kb")
    assert not _ingest(d, [MINI / "law.md"]).failed
    kb = KnowledgeBase(Config(kb_dir=d))
    try:
        st = kb.store
        [(doc_id, _)] = st.all_paths()

        def copy(path: str):
            doc = st.get_document(doc_id)
            passages = st.document_passages(doc_id)
            for p in passages:
                p.id = None
            doc.id, doc.path = None, path
            return doc, passages, st.document_sentences(doc_id), st.file_info(doc_id)

        before = st.version()
        with st.transaction():
            new_id = st.save_document(*copy("copy1.md"))
            st.save_document(*copy("copy2.md"))
            assert st.version() == before  # not bumped yet: other readers see nothing new
            assert st.document_by_path("copy1.md")["id"] == new_id  # this one sees it
        assert st.version() != before
        assert {p for _, p in st.all_paths()} >= {"copy1.md", "copy2.md"}
        assert len(st.document_passages(new_id)) == len(st.document_passages(doc_id))
        with pytest.raises(RuntimeError):
            with st.transaction():
                st.save_document(*copy("copy3.md"))
                raise RuntimeError("broken off")
        assert st.document_by_path("copy3.md") is None and st.orphan_counts() == (0, 0)
        assert st.counts()["documents"] == 3
    finally:
        kb.close()
