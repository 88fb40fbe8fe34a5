"""The ingest pipeline end to end: store, FTS, vectors, FAISS, incremental runs, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from yuanwen.ingest.pipeline import ingest
from yuanwen.config import Config
from yuanwen.embed import register_embedder
from yuanwen.errors import EmbedderMismatchError
from yuanwen.index import FaissIndex
from yuanwen.kb import KnowledgeBase

from .conftest import SAMPLE, FakeEmbedder

TITLE = "市应急管理局党委2022年履行全面从严治党主体责任情况报告"


def _kb(tmp_path: Path) -> Config:
    return Config(kb_dir=tmp_path / "kb")


def _sample_dir(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    shutil.copy(SAMPLE, d / "report.txt")
    return d


def _open(cfg: Config) -> KnowledgeBase:
    return KnowledgeBase(cfg, readonly=True)


def test_founding_document_is_stored_indexed_and_embedded(tmp_path):
    cfg = _kb(tmp_path)
    report = ingest([_sample_dir(tmp_path)], cfg, embedder="fake", progress=False)
    assert report.count("added") == 1 and not report.failed
    kb = _open(cfg)
    s = kb.stats()
    assert s["documents"] == 1 and s["passages"] >= 20 and s["sentences"] > s["passages"]
    assert s["embedded"] == s["passages"] and s["embedder"] == FakeEmbedder.model_id and s["dim"] == 64
    doc = kb.store.documents()[0]
    assert doc.title == TITLE and doc.year == 2022 and doc.doc_type == "报告"
    # every passage is a verbatim slice of the stored text, with a heading path
    full = kb.store.get_document(doc.id)
    passages = kb.store.document_passages(doc.id)
    assert all(full.text[p.start:p.end] == p.text for p in passages)
    paths = [p.heading_path for p in passages]
    assert ["一、着力提高政治站位，加强党对应急管理工作的全面领导", "一是坚决做到“两个维护”"] in paths
    # FAISS holds exactly the SQLite passage ids
    idx = kb.vector_index()
    assert idx.size == len(passages)
    ids = {int(i) for i in faiss_ids(idx)}
    assert ids == {p.id for p in passages}
    kb.close()


def faiss_ids(idx: FaissIndex) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(idx.index.id_map)


def test_masked_numbers_stay_verbatim(tmp_path):
    cfg = _kb(tmp_path)
    ingest([_sample_dir(tmp_path)], cfg, embedder="fake", progress=False)
    kb = _open(cfg)
    doc = kb.store.get_document(kb.store.documents()[0].id)
    assert "组织传达学习贯彻**次" in doc.text
    kb.close()


def test_reingest_skips_updates_and_prunes(tmp_path):
    cfg = _kb(tmp_path)
    d = _sample_dir(tmp_path)
    (d / "note.md").write_text("# 学习笔记\n\n坚持人民至上、生命至上。统筹发展和安全。\n", encoding="utf-8")
    r1 = ingest([d], cfg, embedder="fake", progress=False)
    assert r1.count("added") == 2
    r2 = ingest([d], cfg, embedder="fake", progress=False)
    assert r2.count("unchanged") == 2 and r2.passages_embedded == 0
    # change one file: only its new passages are embedded, vectors of unchanged text reused
    (d / "note.md").write_text("# 学习笔记\n\n坚持人民至上、生命至上。统筹发展和安全。\n\n新增一段关于应急管理的体会。\n",
                               encoding="utf-8")
    r3 = ingest([d], cfg, embedder="fake", progress=False)
    assert r3.count("updated") == 1 and r3.count("unchanged") == 1
    assert 0 < r3.passages_embedded <= 2
    kb = _open(cfg)
    assert kb.stats()["embedded"] == kb.stats()["passages"]
    assert kb.vector_index().size == kb.stats()["passages"]
    kb.close()
    (d / "note.md").unlink()
    r4 = ingest([d], cfg, embedder="fake", progress=False, prune=True)
    assert r4.count("pruned") == 1
    kb = _open(cfg)
    assert kb.stats()["documents"] == 1
    assert kb.vector_index().size == kb.stats()["passages"]
    kb.close()


def test_same_text_in_two_encodings_is_stored_once(tmp_path):
    cfg = _kb(tmp_path)
    d = _sample_dir(tmp_path)
    (d / "copy-gbk.txt").write_bytes(SAMPLE.read_text(encoding="utf-8").encode("gb18030"))
    r = ingest([d], cfg, embedder="fake", progress=False)
    assert r.count("added") == 1 and r.count("duplicate") == 1
    dup = [o for o in r.outcomes if o.status == "duplicate"][0]
    assert "内容相同" in dup.reason
    kb = _open(cfg)
    assert kb.stats()["documents"] == 1
    kb.close()


def _pdf_bytes_blank() -> bytes:
    from io import BytesIO

    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=595, height=842)
    buf = BytesIO()
    w.write(buf)
    return buf.getvalue()


def _pdf_encrypted() -> bytes:
    from io import BytesIO

    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=595, height=842)
    w.encrypt(user_password="secret", owner_password="owner")
    buf = BytesIO()
    w.write(buf)
    return buf.getvalue()


def test_bad_input_is_reported_and_nothing_stored_is_lost(tmp_path):
    cfg = _kb(tmp_path)
    d = _sample_dir(tmp_path)
    ingest([d], cfg, embedder="fake", progress=False)
    before = _open(cfg).stats()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (bad / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (bad / "scanned.pdf").write_bytes(_pdf_bytes_blank())
    (bad / "locked.pdf").write_bytes(_pdf_encrypted())
    (bad / "huge.txt").write_text("安全生产。" * 5000, encoding="utf-8")
    (bad / "dangling.txt").symlink_to(bad / "does-not-exist.txt")
    (bad / "good.txt").write_text("关于防汛抗旱工作的通知\n各单位要切实做好防汛抗旱准备工作。", encoding="utf-8")
    cfg.max_file_bytes = 20_000
    r = ingest([bad], cfg, embedder="fake", progress=False)
    reasons = {Path(o.path).name: o.reason for o in r.failed}
    assert set(reasons) == {"empty.txt", "binary.txt", "broken.pdf", "scanned.pdf", "locked.pdf",
                            "huge.txt", "dangling.txt"}
    assert "空" in reasons["empty.txt"]
    assert "二进制" in reasons["binary.txt"]
    assert "加密" in reasons["locked.pdf"]
    assert "文字层" in reasons["scanned.pdf"]
    assert "过大" in reasons["huge.txt"] and "MB" in reasons["huge.txt"]
    assert r.count("added") == 1
    after = _open(cfg).stats()
    assert after["documents"] == before["documents"] + 1
    assert after["embedded"] == after["passages"]


def test_embedder_mismatch_is_a_clear_error(tmp_path):
    cfg = _kb(tmp_path)
    d = _sample_dir(tmp_path)
    ingest([d], cfg, embedder="fake", progress=False)
    with pytest.raises(EmbedderMismatchError, match="--reembed"):
        KnowledgeBase(cfg, embedder="fake2")
    with pytest.raises(EmbedderMismatchError):
        ingest([d], cfg, embedder="fake2", progress=False)
    # rebuilding with the other model works and is recorded
    r = ingest([d], cfg, embedder="fake2", reembed=True, progress=False)
    assert r.passages_embedded > 0
    kb = _open(cfg)
    assert kb.stats()["embedder"] == "test/other-fake-32" and kb.vector_index().dim == 32
    kb.close()


class _Flaky(FakeEmbedder):
    model_id = FakeEmbedder.model_id
    calls = 0

    def embed_batch(self, texts, role):
        type(self).calls += 1
        if type(self).calls == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-embedding
        return super().embed_batch(texts, role)


def test_interrupted_embedding_resumes(tmp_path):
    register_embedder("flaky", _Flaky)
    cfg = _kb(tmp_path)
    cfg.embed_batch_size = 4
    d = _sample_dir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        ingest([d], cfg, embedder="flaky", progress=False)
    kb = _open(cfg)
    s = kb.stats()
    assert s["documents"] == 1 and s["embedded"] == 8  # two batches of 4 were committed
    assert kb.vector_index().size == 8  # searchable as far as it got
    kb.close()
    r = ingest([d], cfg, embedder="fake", progress=False)
    assert r.count("unchanged") == 1 and r.passages_embedded == s["passages"] - 8
    kb = _open(cfg)
    assert kb.stats()["pending"] == 0 and kb.vector_index().size == s["passages"]
    kb.close()


def test_keyword_searchable_before_embedding(tmp_path):
    from yuanwen.search.api import search

    cfg = _kb(tmp_path)
    ingest([_sample_dir(tmp_path)], cfg, embedder="fake", embed=False, progress=False)
    kb = _open(cfg)
    assert kb.stats()["embedded"] == 0
    res = search(kb, "巡视整改", k=3, mode="hybrid")
    assert res.hits and "巡视整改" in res.hits[0].passage.text
    kb.close()


def test_shared_corpus_subset_every_format(tmp_path, shared_corpus):
    """A few real files of each format (with a red-header PDF) go in with their metadata."""
    d = tmp_path / "subset"
    for rel in [
        "laws/2021-06-10-安全生产法.md",
        "policy/2018-12-07-国务院办公厅关于推进政务新媒体健康有序发展的意见.html",
        "policy/2024-01-21-山东省安委会消安委关于切实做好消防安全防控工作的紧急通知.pdf",
        "speeches/2020-09-11-在科学家座谈会上的讲话.txt",
        "reports/2022-10-16-党的二十大报告.txt",
    ]:
        src = shared_corpus / rel
        (d / Path(rel).parent).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, d / rel)
    cfg = _kb(tmp_path)
    r = ingest([d], cfg, embedder="fake", embed=False, progress=False)
    assert not r.failed, [(o.path, o.reason) for o in r.failed]
    kb = _open(cfg)
    docs = {Path(x.path).name: x for x in kb.store.documents()}
    html = docs["2018-12-07-国务院办公厅关于推进政务新媒体健康有序发展的意见.html"]
    assert html.issuer == "国务院办公厅" and html.doc_number == "国办发〔2018〕123号"
    assert html.date == "2018-12-07"
    pdf = docs["2024-01-21-山东省安委会消安委关于切实做好消防安全防控工作的紧急通知.pdf"]
    passages = kb.store.document_passages(pdf.id)
    assert all(p.page and p.page >= 1 for p in passages)
    law = docs["2021-06-10-安全生产法.md"]
    law_paths = [p.heading_path for p in kb.store.document_passages(law.id)]
    assert any(path[-1:] == ["第三条"] for path in law_paths)
    kb.close()


def test_hostile_sizes_end_in_clear_messages(tmp_path):
    """A 50 MB text file, an HTML page with megabytes on one line, a very long document."""
    cfg = _kb(tmp_path)
    d = _sample_dir(tmp_path)
    ingest([d], cfg, embedder="fake", progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    with open(bad / "fifty.txt", "wb") as fh:  # 50 MB
        fh.truncate(50 * 1024 * 1024)
    (bad / "oneline.html").write_text("<html><body><p>" + "安全生产。" * 400_000 + "</p></body></html>",
                                      encoding="utf-8")  # 6 MB on one line
    (bad / "long.txt").write_text("坚持人民至上。\n" * 20_000, encoding="utf-8")
    cfg.max_text_chars = 100_000
    r = ingest([bad], cfg, embedder="fake", progress=False)
    reasons = {Path(o.path).name: o.reason for o in r.failed}
    assert "过大" in reasons["fifty.txt"] and "20 MB" in reasons["fifty.txt"]
    assert "正文过长" in reasons["oneline.html"] and "正文过长" in reasons["long.txt"]
    kb = _open(cfg)
    assert kb.stats()["documents"] == 1 and kb.stats()["pending"] == 0
    kb.close()


def test_a_100k_character_query_is_refused_quickly(tmp_path):
    from yuanwen.search.api import search
    from yuanwen.search.quote import lookup_quote
    from yuanwen.errors import BadQueryError

    cfg = _kb(tmp_path)
    ingest([_sample_dir(tmp_path)], cfg, embedder="fake", progress=False)
    kb = _open(cfg)
    for fn in (search, lookup_quote):
        with pytest.raises(BadQueryError, match="过长"):
            fn(kb, "安全" * 50_000)
    kb.close()


def test_a_bad_manifest_is_reported_once_and_its_files_still_go_in(tmp_path):
    """A manifest.csv without a file column used to fail every new file below it."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "manifest.csv").write_text("文件,标题\na.txt,甲\n", encoding="utf-8")
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (docs / name).write_text(f"关于{name}的通知\n\n一、各单位要落实安全生产责任制，压实主体责任。\n",
                                 encoding="utf-8")
    report = ingest([docs], Config(kb_dir=tmp_path / "kb"), embedder="fake", progress=False)
    failed = [o for o in report.outcomes if o.status == "failed"]
    assert len(failed) == 1 and failed[0].path.endswith("manifest.csv")
    assert "file 列" in failed[0].reason and "按各自正文" in failed[0].reason
    assert report.count("added") == 3


def test_relative_paths_are_read_from_the_callers_folder(tmp_path, monkeypatch):
    """The parse worker runs in the package's folder: a relative path once read the file of the
    same name under the repository (corpus/...) instead of the user's."""
    mine = tmp_path / "corpus" / SAMPLE.name
    mine.parent.mkdir()
    mine.write_text("关于做好防汛工作的通知\n\n一、各地要落实防汛责任，做好汛期值班值守。\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    report = ingest(["corpus"], Config(kb_dir=Path("kb")), embedder="fake", progress=False)
    assert report.count("added") == 1 and not report.failed, report.outcomes
    kb = _open(Config(kb_dir=tmp_path / "kb"))
    try:
        (doc,) = kb.store.documents(with_text=True)
        assert "防汛" in doc.text and "应急管理局" not in doc.text
        assert doc.path == str(mine)
    finally:
        kb.close()


def test_progress_callback_reports_each_stage_to_its_total(tmp_path):
    """The app's upload progress and the CLI's bars come from the same reporter."""
    seen: list[tuple[str, int, int]] = []
    d = _sample_dir(tmp_path)
    (d / "note.md").write_text("# 学习笔记\n\n坚持人民至上、生命至上。统筹发展和安全。\n", encoding="utf-8")
    report = ingest([d], _kb(tmp_path), embedder="fake", progress=False,
                    on_progress=lambda stage, done, total: seen.append((stage, done, total)))
    files = [x for x in seen if x[0] == "读取入库"]
    embeds = [x for x in seen if x[0] == "向量化"]
    assert files[0] == ("读取入库", 0, 2) and files[-1] == ("读取入库", 2, 2)
    assert embeds[-1][1] == embeds[-1][2] == report.passages_embedded > 0
    assert [x[1] for x in embeds] == sorted(x[1] for x in embeds)  # it only goes forward
