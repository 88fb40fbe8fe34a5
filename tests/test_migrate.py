"""``yuanwen init`` and ``yuanwen migrate``: a knowledge base copied into another backend with
its ids, texts and vectors bit for bit, searches unchanged, nothing embedded again; resumable
after kill -9; a target holding other documents or another embedder's vectors refused.

SQLite -> SQLite runs everywhere; SQLite -> Milvus Lite -> SQLite runs where pymilvus and the
Milvus backend are installed (``pip install -e '.[milvus]'``)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from yuanwen.backend import open_backend, read_descriptor
from yuanwen.config import Config
from yuanwen.errors import EmbedderMismatchError, KnowledgeBaseError, UsageError
from yuanwen.ingest.pipeline import ingest
from yuanwen.library import init_kb, migrate_kb, open_kb
from yuanwen.models import Filters, OcrLine, OcrPage
from yuanwen.store import Store

from .conftest import MINI, ROOT

QUERIES = ["安全生产责任", "高质量发展", "条例 施行", "会议 讲话 精神"]
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    """The mini corpus with the fake embedder, plus what migrate must carry: an access ladder
    and a 内部 document, an account, a saved pack, a recognised page, an audit log."""
    d = tmp_path_factory.mktemp("migrate") / "src"
    assert not ingest([MINI], Config(kb_dir=d, embedder="fake"), progress=False).failed
    with open_kb(d, readonly=False) as lib:
        lib.set_access_levels(["公开", "内部", "秘密"])
        doc = lib.documents()[0]
        lib.set_document_access(doc.id, "内部")
        lib.add_account("zhang", "editor", PASSWORD, clearance="内部")
        hits = lib.search("安全生产", k=3, mode="keyword").hits
        lib.create_pack("学习", lib.add_to_pack(lib.new_pack("学习"), [h.passage.id for h in hits]))
    store = Store(d)
    store.save_ocr_page("f" * 32, OcrPage(page=1, width=100, height=200,
                                          lines=[OcrLine("第一行", (1.0, 2.0, 3.0, 4.0), 0.9)],
                                          seconds=1.5, engine="test"))
    store.close()
    return d


def dump(kb_dir: Path) -> dict:
    """Everything migrate copies, read through the backend-neutral store API."""
    backend = open_backend(kb_dir, Config(kb_dir=kb_dir), readonly=True)
    s = backend.store
    try:
        docs = {}
        for doc_id, _path in sorted(s.all_paths()):
            docs[doc_id] = {
                "document": s.get_document(doc_id, with_text=True),
                "passages": s.document_passages(doc_id),
                "sentences": s.document_sentences(doc_id),
                "file_info": s.file_info(doc_id),
            }
        vectors = {}
        for hashes, blobs in s.iter_vectors():
            vectors.update(zip(hashes, (bytes(b) for b in blobs)))
        meta = {k: s.get_meta(k) for k in ("embedder", "dim", "access_levels")}
        accounts = {a.name: s.account(a.name) for a in s.accounts()}
        return {"docs": docs, "vectors": vectors, "meta": meta, "accounts": accounts,
                "counts": s.counts()}
    finally:
        backend.close()


def searches(kb_dir: Path) -> dict:
    """Every mode's hits (passage id, score) for a few queries, with and without a filter."""
    out = {}
    with open_kb(kb_dir) as lib:
        for q in QUERIES:
            for mode in ("hybrid", "semantic", "keyword"):
                for f in (None, Filters(doc_types=["地方性法规"])):
                    res = lib.search(q, k=5, mode=mode, filters=f)
                    out[(q, mode, f is not None)] = [(h.passage.id, round(h.score, 6)) for h in res.hits]
        first = lib.document_passages(lib.documents()[0].id)[0]
        out["quote"] = lib.quote(first.text[:30]).verdict
    return out


def assert_same(a: Path, b: Path, vectors: bool = True) -> None:
    da, db = dump(a), dump(b)
    assert da["docs"].keys() == db["docs"].keys() and da["docs"]
    for doc_id, x in da["docs"].items():
        y = db["docs"][doc_id]
        assert x["document"] == y["document"]  # id, path, text, metadata, access
        assert x["passages"] == y["passages"]  # ids, offsets, heading paths, pages, texts
        assert x["sentences"] == y["sentences"]
        assert x["file_info"] == y["file_info"]
    if vectors:
        assert da["vectors"] == db["vectors"] and da["vectors"]  # bit-identical
    assert da["meta"] == db["meta"]
    assert da["accounts"] == db["accounts"]  # password hashes as stored
    assert da["counts"] == db["counts"]


def test_the_store_gives_back_what_save_document_took(src, tmp_path):
    s = Store(src, readonly=True)
    doc_id = s.all_paths()[0][0]
    doc, passages = s.get_document(doc_id), s.document_passages(doc_id)
    sentences, info = s.document_sentences(doc_id), s.file_info(doc_id)
    assert sentences and {x.passage_seq for x in sentences} == {p.seq for p in passages}
    assert all(doc.text[x.start:x.end] == x.text for x in sentences)
    assert set(info) == {"file_hash", "format", "encoding", "size_bytes", "mtime", "root", "fs_path",
                         "ingested_at"}
    with pytest.raises(KnowledgeBaseError):
        s.file_info(10_000)
    s.close()
    # keep_ids: the document and every passage keep their ids in a new store
    t = Store(tmp_path / "t", create=True)
    ids = [p.id for p in passages]
    doc.id, passages = 77, [type(p)(**{**p.__dict__, "id": 1000 + i}) for i, p in enumerate(passages)]
    assert t.save_document(doc, passages, sentences, info, keep_ids=True) == 77
    assert [p.id for p in t.document_passages(77)] == [1000 + i for i in range(len(ids))]
    assert t.document_sentences(77) == sentences and t.file_info(77) == info
    # without it, as before: new ids from the store's own sequence, which stays past the kept ones
    doc.path += ".2"
    new_id = t.save_document(doc, passages, sentences, info)
    assert new_id == 78 and min(p.id for p in t.document_passages(new_id)) > 1000 + len(ids) - 1
    t.close()


def test_sqlite_to_sqlite_copies_everything_and_searches_the_same(src, tmp_path):
    dst = tmp_path / "dst"
    seen: list[tuple[str, int, int]] = []
    report = migrate_kb(src, dst, on_progress=lambda *a: seen.append(a))
    counts = dump(src)["counts"]
    assert (report.documents, report.passages, report.sentences) == (
        counts["documents"], counts["passages"], counts["sentences"])
    assert report.vectors == len(dump(src)["vectors"]) > 0 and report.accounts == 1
    assert report.ocr_pages == 1 and report.files >= 2  # the audit log and the saved pack
    assert report.source_backend == report.target_backend == "sqlite" and report.seconds > 0
    assert {s for s, _, _ in seen} == {"复制文档", "复制向量"} and seen[-1][1] == seen[-1][2]
    assert_same(src, dst)
    assert read_descriptor(dst)["backend"] == "sqlite"
    # run again: nothing left to copy, and nothing is copied twice
    again = migrate_kb(src, dst)
    assert (again.documents, again.vectors, again.accounts, again.ocr_pages) == (0, 0, 0, 0)
    assert again.documents_skipped == counts["documents"] and again.vectors_skipped == report.vectors
    assert_same(src, dst)
    with open_kb(dst) as lib:
        assert lib.verify().ok, lib.verify().problems
        assert lib.verify_audit() == []  # the audit log's hash chain came along intact
        lib.login("zhang", PASSWORD)  # the account, with its password hash as stored
        assert lib.open_pack("学习").pack.sections[0].items  # the saved pack, passage ids valid
        assert lib.document(lib.documents()[0].id).access in ("公开", "内部")
    s = Store(dst, readonly=True)
    assert s.ocr_page("f" * 32, 1, "test").lines[0].text == "第一行"
    s.close()
    assert searches(dst) == searches(src)


def test_a_target_with_other_documents_or_another_embedder_is_refused(src, tmp_path):
    other = tmp_path / "other"
    assert not ingest([MINI / "law.md"], Config(kb_dir=other, embedder="fake"), progress=False).failed
    with pytest.raises(KnowledgeBaseError, match="不是从"):
        migrate_kb(src, other)
    fake2 = tmp_path / "fake2"
    init_kb(fake2, embedder="fake2")
    with pytest.raises(EmbedderMismatchError):
        migrate_kb(src, fake2)
    with pytest.raises(UsageError, match="同一个"):
        migrate_kb(src, src)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UsageError, match="不是空的"):
        migrate_kb(src, junk)
    with pytest.raises(KnowledgeBaseError, match="不存在"):
        migrate_kb(tmp_path / "nothing", tmp_path / "d2")
    assert not (tmp_path / "d2").exists()


def test_init_records_the_backend_and_refuses_another(tmp_path):
    kb = tmp_path / "kb"
    info = init_kb(kb, backend="sqlite")
    assert info["created"] and info["documents"] == 0 and read_descriptor(kb)["backend"] == "sqlite"
    assert not init_kb(kb)["created"]  # the same backend again: left as it is
    with pytest.raises(KnowledgeBaseError, match="已是 sqlite"):
        init_kb(kb, backend="milvus")
    with pytest.raises(UsageError, match="只用于 milvus"):
        init_kb(tmp_path / "x", backend="sqlite", uri="http://localhost:19530")
    with pytest.raises(UsageError):
        init_kb(tmp_path / "y", backend="elastic")
    # with an embedder: recorded, and an ingest with another one is refused as for any kb
    init_kb(tmp_path / "e", embedder="fake")
    with open_kb(tmp_path / "e") as lib:
        assert lib.stats()["embedder"] == "test/fake-bigram-64" and lib.stats()["dim"] == 64


def _cli(*args: str, env: dict | None = None, crash: tuple[str, int] | None = None,
         preamble: str = "") -> subprocess.CompletedProcess:
    """The CLI in a subprocess with the fake embedders and small migrate batches (so that a
    kill lands between committed batches); ``crash``: (point, n) of tests/crashpoint.py;
    ``preamble``: code run first (another crash point)."""
    code = (preamble + "\nimport yuanwen.migrate as m; m.BATCH_PASSAGES = 1; m.VECTOR_BATCH = 4\n"
            "import sys; from tests import crashpoint\n"
            "if sys.argv[1] != '-': crashpoint.install(sys.argv[1], int(sys.argv[2]))\n"
            "from yuanwen.cli import main; sys.argv = ['yuanwen', *sys.argv[3:]]; main()\n")
    point, n = crash or ("-", 0)
    return subprocess.run(
        [sys.executable, "-c", code, point, str(n), *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "YUANWEN_PLUGINS": "tests.fake_embedder", **(env or {})}, timeout=300, check=False)


@pytest.mark.slow
@pytest.mark.parametrize("point", [("after_commit", 2), ("embed", 2)], ids=["documents", "vectors"])
def test_a_migration_killed_part_way_resumes_and_finishes(src, tmp_path, point):
    dst = tmp_path / "dst"
    killed = _cli("migrate", str(src), str(dst), "--json", crash=point)
    assert killed.returncode == -9, killed.stderr
    part = Store(dst, readonly=True)
    copied = part.counts()
    part.close()
    assert 0 < copied["documents"] <= dump(src)["counts"]["documents"]
    done = _cli("migrate", str(src), str(dst), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    if point[0] == "after_commit":  # killed in the second document's transaction (one a batch)
        assert report["documents_skipped"] >= 1 and report["documents"] >= 1
    else:  # killed after the second vector batch was written, before it was committed
        assert report["documents_skipped"] == copied["documents"] and report["documents"] == 0
        assert report["vectors_skipped"] == 4 and report["vectors"] == len(dump(src)["vectors"]) - 4
    assert_same(src, dst)
    assert _cli("verify", "--kb", str(dst)).returncode == 0
    assert searches(dst) == searches(src)


def test_the_cli_inits_and_migrates(src, tmp_path):
    kb = tmp_path / "kb"
    made = _cli("init", str(kb))
    assert made.returncode == 0 and "已建立知识库" in made.stdout and "sqlite" in made.stdout
    other = _cli("init", str(kb), "--backend", "milvus")
    assert other.returncode == 1 and other.stderr.startswith("错误：") and "Traceback" not in other.stderr
    out = _cli("migrate", str(src), str(kb))
    assert out.returncode == 0, out.stderr
    assert "迁移完成" in out.stdout and "段/秒" in out.stdout and "复制文档" in out.stderr  # the bar
    assert_same(src, kb)


# -- Milvus Lite (skipped where the milvus extra is not installed) ---------------------------

def _milvus_ready() -> str | None:
    if importlib.util.find_spec("pymilvus") is None or importlib.util.find_spec("milvus_lite") is None:
        return "pymilvus/milvus-lite not installed (pip install -e '.[milvus]')"
    if importlib.util.find_spec("yuanwen.milvus_backend") is None:
        return "the Milvus backend (yuanwen/milvus_backend.py) is not there"
    return None


@pytest.mark.skipif(_milvus_ready() is not None, reason=str(_milvus_ready()))
def test_sqlite_to_milvus_lite_and_back(src, tmp_path):
    mil = tmp_path / "milvus"
    info = init_kb(mil, backend="milvus")
    assert info["created"] and read_descriptor(mil)["backend"] == "milvus"
    there = migrate_kb(src, mil)
    assert there.target_backend == "milvus" and there.passages == dump(src)["counts"]["passages"]
    assert there.accounts == 1 and there.ocr_pages == 1
    assert_same(src, mil)
    # the same data: semantic search (exact on both) gives the same hits in the same order.
    # Keyword scores are each engine's own BM25 (FTS5's and Milvus's differ on a 13-passage
    # corpus), so only the best hit is compared there; the round trip below compares them all.
    a, b = searches(src), searches(mil)
    for key in a:
        if key == "quote":
            assert a[key] == b[key]
        elif key[1] == "semantic":
            assert [i for i, _ in a[key]] == [i for i, _ in b[key]], key
        else:
            assert [i for i, _ in a[key]][:1] == [i for i, _ in b[key]][:1], key
    # and back to SQLite: the same data bit for bit, the same hits and scores as the original
    back = tmp_path / "back"
    assert migrate_kb(mil, back).source_backend == "milvus"
    assert_same(src, back)
    assert searches(back) == a
    with open_kb(mil) as lib:
        assert lib.verify().ok, lib.verify().problems
        lib.login("zhang", PASSWORD)
        assert lib.open_pack("学习").pack.sections[0].items


# Dies just before the N-th document row is written to Milvus: that document's text chunks and
# passages are written, its row (the commit marker) is not, like a power cut.
_MILVUS_KILL = """
import os, signal
from yuanwen import milvus_store
_orig, _n = milvus_store.MilvusStore._write, {"n": 0}
def _write(self, op, collection, *a, **k):
    if collection.endswith("_documents"):
        _n["n"] += 1
        if _n["n"] == int(os.environ["KILL_DOC"]):
            os.kill(os.getpid(), signal.SIGKILL)
    return _orig(self, op, collection, *a, **k)
milvus_store.MilvusStore._write = _write
"""


@pytest.mark.slow
@pytest.mark.skipif(_milvus_ready() is not None, reason=str(_milvus_ready()))
def test_a_migration_into_milvus_killed_mid_document_resumes(src, tmp_path):
    mil = tmp_path / "milvus"
    assert _cli("init", str(mil), "--backend", "milvus").returncode == 0
    killed = _cli("migrate", str(src), str(mil), "--json", preamble=_MILVUS_KILL, env={"KILL_DOC": "2"})
    assert killed.returncode == -9, killed.stderr
    done = _cli("migrate", str(src), str(mil), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["documents_skipped"] == 1 and report["documents"] == dump(src)["counts"]["documents"] - 1
    assert_same(src, mil)  # no orphan passage or text chunk of the half-written document shows
    assert _cli("verify", "--kb", str(mil)).returncode == 0
