"""Nothing lost, nothing hangs (issue 10, findings 8, 9, 15, 16): upload name collisions, error
pages without tracebacks or server paths, XML-safe Word export, pack-file validation, CSV
formula neutralising and the upload cap."""

from __future__ import annotations

import csv
import io
import json
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import docx
import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from yuanwen.ingest.pipeline import ingest
from yuanwen.search import pack as packops
from yuanwen.search.export import neutralise_cell, to_csv, to_docx, to_markdown, xml_safe
from yuanwen.config import Config
from yuanwen.errors import UsageError, YuanwenError
from yuanwen.models import PackItem, PackSection, StudyPack

from .conftest import ROOT, FakeEmbedder  # noqa: F401  (registers the "fake" embedder)
from pages_app.common import ERROR_LOG
from yuanwen.search.present import display_path
from yuanwen import uploads

from .test_app import MINI

BAD_CHARS = "\x00\x01\x08\x0b\x0c\x1b\x1f\ufffe\uffff\ud800\udfff"  # lone surrogates last


@dataclass
class Upload:
    """What st.file_uploader hands the app: a name, a size and the bytes."""

    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def getvalue(self) -> bytes:
        return self.data


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("faultkb")
    src = base / "source"
    shutil.copytree(MINI, src)
    (src / "manifest.csv").write_text(
        (MINI / "manifest.csv").read_text(encoding="utf-8").replace(
            "区应急管理局", '"=HYPERLINK(""http://evil.example"",""点我"")"'),
        encoding="utf-8",
    )
    kb = base / "kb"
    report = ingest([src], Config(kb_dir=kb), embedder="fake", progress=False)
    assert not report.failed, report.failed
    return kb


from .test_app import goto, ok, page_shown  # noqa: E402  (the app and media fixtures are in conftest.py)


def shown_text(at: AppTest) -> str:
    """Everything the page shows as text, one string."""
    parts = []
    for kind in ("text", "markdown", "caption", "error", "info", "warning", "success", "code", "html"):
        parts += [str(e.value) for e in at.get(kind)]
    return "\n".join(parts)


# -- 8. upload name collisions ----------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("会议 纪要.txt", "会议 纪要.txt"),
    ("会议_纪要.txt", "会议_纪要.txt"),
    ("v1.2 说明.md", "v1.2 说明.md"),
    ("📜.txt", "upload.txt"),
])
def test_safe_filename_keeps_safe_names(name, expected):
    assert uploads.safe_filename(name) == expected


def test_uploads_never_overwrite_each_other(tmp_path):
    kb = tmp_path / "kb"
    (saved_a,), _ = uploads.save_uploads(kb, [Upload("会议 纪要.txt", b"first")])
    (saved_b,), _ = uploads.save_uploads(kb, [Upload("会议_纪要.txt", b"second")])
    assert saved_a[1] != saved_b[1]
    assert saved_a[1].read_bytes() == b"first" and saved_b[1].read_bytes() == b"second"
    # two names that both fall back to the default name, in one upload
    saved, refused = uploads.save_uploads(kb, [Upload("📜.txt", b"scroll"), Upload("★.txt", b"star")])
    assert not refused and len({p for _, p in saved}) == 2
    assert sorted(p.read_bytes() for _, p in saved) == [b"scroll", b"star"]
    # the same name again: an update of that file, with new or the same bytes
    (again,), _ = uploads.save_uploads(kb, [Upload("★.txt", b"star, revised")])
    assert again[1] == dict(saved)["★.txt"] and again[1].read_bytes() == b"star, revised"
    (same,), _ = uploads.save_uploads(kb, [Upload("会议_纪要.txt", b"second")])
    assert same[1] == saved_b[1]
    # different bytes under the same original name: an update too
    (other,), _ = uploads.save_uploads(kb, [Upload("会议_纪要.txt", b"third")])
    assert other[1] == saved_b[1]  # same original name: an update, not a new file
    names = sorted(p.name for p in (kb / "uploads").iterdir() if not p.name.startswith("."))
    assert len(names) == 4, names


def test_taken_safe_name_gets_a_numbered_name(tmp_path):
    kb = tmp_path / "kb"
    (a,), _ = uploads.save_uploads(kb, [Upload("a<b>.txt", b"one")])
    (b,), _ = uploads.save_uploads(kb, [Upload("a_b_.txt", b"two")])  # the same safe name, a_b.txt
    assert a[1].name == "a_b.txt" and b[1].name == "a_b (2).txt"
    assert a[1].read_bytes() == b"one" and b[1].read_bytes() == b"two"


def test_upload_collision_in_the_app_keeps_both_documents(app, tmp_path, monkeypatch):
    monkeypatch.setenv("YUANWEN_EMBEDDER", "fake")
    kb = tmp_path / "kb"
    body = "关于召开安全生产会议的纪要\n一、会议要求\n各单位要落实安全生产责任制，做好{}工作。\n"
    at = ok(app({"page": "kb"}, kb=kb))
    at.file_uploader(key="upload_0").set_value(
        [("会议 纪要.txt", body.format("防汛").encode(), "text/plain")]).run()
    ok(at.button(key="up_go").click().run())
    at.file_uploader(key="upload_1").set_value(
        [("会议_纪要.txt", body.format("防火").encode(), "text/plain")]).run()
    ok(at.button(key="up_go").click().run())
    assert any("新增 1 篇" in s.value and "更新 0 篇" in s.value for s in at.success)
    files = sorted(p.name for p in (kb / "uploads").iterdir() if not p.name.startswith("."))
    assert files == ["会议 纪要.txt", "会议_纪要.txt"]


def test_oversized_upload_is_refused_by_name(tmp_path):
    big = Upload("大文件.pdf", b"0" * (uploads.MAX_UPLOAD_MB * 1048576 + 1))
    saved, refused = uploads.save_uploads(tmp_path / "kb", [big])
    assert not saved and refused[0][0] == "大文件.pdf" and "文件过大" in refused[0][1]


def test_upload_types_come_from_the_reader_registry(tmp_path):
    from yuanwen.ingest.readers import upload_types
    from pages_app import kb_page

    assert kb_page.UPLOAD_TYPES == upload_types()
    assert {"txt", "md", "html", "htm", "pdf", "docx"} <= set(kb_page.UPLOAD_TYPES)
    saved, refused = uploads.save_uploads(tmp_path / "kb", [Upload("a.exe", b"x"), Upload("b.md", b"# b")],
                                          upload_types())
    assert [name for name, _ in saved] == ["b.md"]
    assert refused[0][0] == "a.exe" and "不支持的文件类型" in refused[0][1] and "docx" in refused[0][1]


def test_upload_cap_holds_wherever_the_app_starts(app):
    st_config.set_option("server.maxUploadSize", 200)  # as when config.toml is not found
    st_config.set_option("client.disableDataExport", False)
    try:
        ok(app({"page": "kb"}))
        assert st_config.get_option("server.maxUploadSize") == uploads.MAX_UPLOAD_MB
        assert st_config.get_option("client.disableDataExport") is True
    finally:
        st_config.set_option("server.maxUploadSize", 200)
        st_config.set_option("client.disableDataExport", False)


# -- 9. bind address, error ids, no server paths ------------------------------------------------
def test_config_binds_to_localhost_and_hides_error_details():
    conf = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert conf["server"]["address"] == "127.0.0.1"
    assert conf["client"]["showErrorDetails"] == "none"
    assert conf["client"]["disableDataExport"] is True
    run = (ROOT / "Makefile").read_text(encoding="utf-8").split("\nrun:")[1].split("\n\n")[0]
    assert "--server.address 127.0.0.1" in run


def test_a_page_that_fails_shows_an_error_id_not_a_traceback(app, kb_dir, monkeypatch, capsys):
    def boom(*args, **kwargs):
        raise RuntimeError(f"boom in {kb_dir}/secret.db")

    monkeypatch.setattr("yuanwen.search.documents.list_documents", boom)
    at = ok(app({"page": "docs"}))
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "出错了（错误编号 " in errors[0], errors
    eid = errors[0].split("错误编号 ")[1][:8]
    text = shown_text(at)
    assert "Traceback" not in text and "boom" not in text and str(kb_dir) not in text
    log = (kb_dir / ERROR_LOG).read_text(encoding="utf-8")
    assert eid in log and "Traceback" in log and "boom in" in log
    assert eid in capsys.readouterr().err
    # the sidebar still works: another page opens
    ok(goto(at, "kb"))
    assert page_shown(at) == "知识库"
    assert not at.error


def test_a_failing_button_callback_shows_an_error_id(app, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("callback boom")

    at = ok(app({"q": "安全生产"}))
    assert at.session_state["search_res"].hits
    monkeypatch.setattr("yuanwen.search.export.item_from_hit", boom)
    at.button(key=f"hit_add_{at.session_state['search_res'].hits[0].passage.id}").click().run()
    ok(at)
    assert any("出错了（错误编号 " in e.value for e in at.error)
    assert "callback boom" not in shown_text(at)


def test_documents_page_shows_no_absolute_path(app, kb_dir):
    at = ok(app({"page": "docs"}))
    text = shown_text(at)
    files = [line for line in text.splitlines() if line.startswith("文件：")]
    assert files and not any(f.startswith("文件：/") for f in files), files
    assert str(kb_dir.parent) not in text.replace("\\", "") and str(ROOT) not in text.replace("\\", "")
    assert any(f.removeprefix("文件：") in {"copy.txt", "law.md", "notice.txt", "speech.txt"} for f in files)


@pytest.mark.parametrize("path, root, expected", [
    ("/srv/data/政策/法规/条例.md", "/srv/data/政策", "法规/条例.md"),
    ("/srv/kb/uploads/通知.txt", None, "通知.txt"),
    ("/srv/data/政策/法规/条例.md", None, "法规/条例.md"),
    ("C:\\data\\法规\\条例.md", None, "法规/条例.md"),
    ("条例.md", None, "条例.md"),
])
def test_display_path(path, root, expected):
    assert display_path(path, root, Path("/srv/kb")) == expected


# -- 15. XML-safe Word export, pack-file validation ---------------------------------------------
def _pack(text: str = "正文", bad: str = BAD_CHARS) -> StudyPack:
    item = PackItem(text=text, title=f"标题{bad}", citation=f"出处{bad}",
                    heading_path=[f"一、{bad}"], note=f"按语{bad}", passage_id=7, doc_id=1)
    return StudyPack(title=f"汇编{bad}", subtitle=f"副{bad}", sections=[PackSection(f"分组{bad}", [item])])


def test_xml_safe_keeps_tab_newline_and_text():
    assert xml_safe(f"a\tb\nc{BAD_CHARS}d\u3000中文😀") == "a\tb\ncd\u3000中文😀"


def test_word_export_strips_characters_xml_cannot_hold():
    data = to_docx(_pack(f"第一段\uffff含非法字符\x0c\n第二段{BAD_CHARS}"))
    reopened = docx.Document(io.BytesIO(data))
    body = "\n".join(p.text for p in reopened.paragraphs)
    assert "第一段含非法字符" in body and "第二段" in body and "按语" in body
    assert not any(c in body for c in BAD_CHARS)
    assert reopened.core_properties.title == "汇编"
    md = to_markdown(_pack(f"正文{BAD_CHARS}"))
    md.encode("utf-8")
    assert not any(c in md for c in BAD_CHARS)


def test_pack_page_exports_a_pack_with_a_uffff_character(app, download):
    at = app({"page": "pack"})
    # as a document can hold them (a pack file's lone surrogates are removed when it is loaded)
    at.session_state["pack"] = _pack("含\uffff字符的\x0c段落", bad=BAD_CHARS[:-2])
    ok(at.run())
    assert not at.error
    buttons = {b.proto.label: b for b in at.get("download_button")}
    docx_bytes, _ = download(buttons["导出 Word（.docx）"])
    assert "含字符的段落" in "\n".join(p.text for p in docx.Document(io.BytesIO(docx_bytes)).paragraphs)
    json.loads(download(buttons["下载汇编文件（.json，可分享、可再载入）"])[0].decode("utf-8"))


def test_load_pack_round_trips_a_saved_pack():
    pack = StudyPack(title="汇编", subtitle="副", sections=[PackSection("一组", [
        PackItem(text="正文", title="标题", citation="出处", heading_path=["一、"], note="按",
                 passage_id=3, doc_id=2, date="2021-01-01")])])
    raw = json.dumps(pack.to_dict(), ensure_ascii=False).encode("utf-8")
    assert packops.load_pack(raw, "a.json") == pack
    assert packops.load_pack(b"\xef\xbb\xbf" + raw, "a.json") == pack  # with a BOM
    # keys a newer version might add are ignored, absent optional keys take their defaults
    extra = json.loads(raw)
    extra["version"] = 2
    extra["sections"][0]["items"][0]["colour"] = "red"
    del extra["subtitle"], extra["sections"][0]["items"][0]["note"]
    loaded = packops.load_pack(json.dumps(extra).encode(), "a.json")
    assert loaded.sections[0].items[0].note == "" and loaded.subtitle == ""


ITEM = {"text": "正文", "title": "标题", "citation": "出处"}


@pytest.mark.parametrize("raw", [
    b"",
    b"\xff\xfe\x00garbage",
    b"not json",
    b"[1, 2, 3]",
    b'"a string"',
    json.dumps({"sections": "一组"}).encode(),
    json.dumps({"sections": {"title": "x"}}).encode(),
    json.dumps({"sections": [["x"]]}).encode(),
    json.dumps({"sections": [{"title": 5, "items": []}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": {"a": 1}}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": [{"text": "正文"}]}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": [{**ITEM, "passage_id": "7"}]}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": [{**ITEM, "passage_id": 10**30}]}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": [{**ITEM, "passage_id": True}]}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": [{**ITEM, "doc_id": 1.5}]}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": [{**ITEM, "heading_path": [1, [2]]}]}]}).encode(),
    json.dumps({"sections": [{"title": "x", "items": [{**ITEM, "note": {"a": [1]}}]}]}).encode(),
    json.dumps({"title": ["x"] * 3}).encode(),
    json.dumps({"title": "x" * 2_000_000}).encode(),
    b'{"title": 1e999999}',
    b'{"sections": [{"title": "x", "items": [{"text": "a", "title": "b", "citation": "c", "passage_id": '
    + b"9" * 5000 + b"}]}]}",
    b"[" * 100_000 + b"]" * 100_000,
    json.dumps({"sections": [{"title": "x", "items": []}] * 100_000}).encode(),
])
def test_load_pack_refuses_a_damaged_file_with_a_chinese_message(raw):
    with pytest.raises(YuanwenError) as info:
        packops.load_pack(raw, "坏的.json")
    assert isinstance(info.value, UsageError)
    assert "坏的.json" in str(info.value) and "汇编" in str(info.value)


def test_loaded_strings_are_cleaned():
    raw = json.dumps({"title": "汇编\ud800\uffff", "sections": [
        {"title": "组", "items": [{**ITEM, "text": "正\x00文"}]}]}).encode()
    pack = packops.load_pack(raw, "a.json")
    assert pack.title == "汇编" and pack.sections[0].items[0].text == "正文"


def test_pack_page_refuses_a_crafted_file_and_keeps_the_pack(app):
    at = app({"page": "pack"})
    keep = StudyPack(title="我的汇编", sections=[PackSection("一组", [PackItem("正文", "标题", "出处",
                                                                          passage_id=1)])])
    at.session_state["pack"] = keep
    ok(at.run())
    at.file_uploader(key="pk_load_0").set_value(
        [("坏的.json", json.dumps({"sections": [{"title": "x", "items": [{"text": 1}]}]}).encode(),
          "application/json")]).run()
    ok(at)
    assert any("坏的" in e.value and "汇编" in e.value for e in at.error), [e.value for e in at.error]
    assert at.session_state["pack"] == keep


# -- 16. CSV downloads neutralise formulas -------------------------------------------------------
@pytest.mark.parametrize("value, expected", [
    ("=HYPERLINK(\"http://x\",\"点我\")", "'=HYPERLINK(\"http://x\",\"点我\")"),
    ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("＝1+1", "'＝1+1"),
    ("国务院", "国务院"), ("", ""), ("a=b", "a=b"), (5, 5), (None, None),
])
def test_neutralise_cell(value, expected):
    assert neutralise_cell(value) == expected


def test_to_csv_neutralises_every_cell_and_opens_in_excel():
    data = to_csv(["名称", "篇数"], [["=1+2", 3], ["国务院", 2], ["-SUM(A1)", -1]])
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM, so Excel reads the Chinese
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows == [["名称", "篇数"], ["'=1+2", "3"], ["国务院", "2"], ["'-SUM(A1)", "-1"]]


def test_kb_page_csv_download_is_neutralised(app, media):
    ok(app({"page": "kb"}))
    csvs = [d for d, name in media.values() if name and name.endswith(".csv")]
    assert csvs, "the 知识库 page offers its statistics as CSV"
    text = csvs[-1].decode("utf-8-sig")
    assert "=HYPERLINK" in text
    for row in csv.reader(io.StringIO(text)):
        assert not any(cell[:1] in ("=", "+", "-", "@") for cell in row if isinstance(cell, str)), row
