"""The yuanwen command: help on every command, exit codes, JSON shapes."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from yuanwen.cli import cli

from .conftest import SAMPLE


@pytest.fixture
def kb_dir(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    shutil.copy(SAMPLE, d / "report.txt")
    kb = tmp_path / "kb"
    r = CliRunner().invoke(cli, ["ingest", str(d), "--kb", str(kb), "--embedder", "fake"])
    assert r.exit_code == 0, r.output
    assert "新增 1 篇" in r.output and "段/秒" in r.output
    return kb


def _commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


def test_every_command_has_help():
    runner = CliRunner()
    names = []
    for path, cmd in _commands(cli):
        names.append(" ".join(path))
        assert cmd.help, f"{path} has no help"
        r = runner.invoke(cli, [*path, "--help"])
        assert r.exit_code == 0 and cmd.help.split("\n")[0][:10] in r.output
    assert {"ingest", "stats", "search", "quote", "docs", "show", "pack add", "pack export"} <= set(names)
    assert {"user add", "user list", "user passwd", "user disable", "user enable", "user set", "audit",
            "levels", "access", "rm"} <= set(names)


ENGLISH = ("Usage:", "Options:", "Commands:", "Show this message", "Error:", "Invalid value", "[OPTIONS]",
           "is not a valid", "No such", "Try '")


def test_click_speaks_chinese():
    """Click's own text (usage, option headings, its errors) is Chinese, and help columns holding
    Chinese stay aligned."""
    runner = CliRunner()
    for path, _cmd in _commands(cli):
        out = runner.invoke(cli, [*path, "--help"]).output
        assert out.startswith("用法：") and "显示本帮助并退出。" in out, path
        assert not [w for w in ENGLISH if w in out], (path, out)
    for args, expected in ((["show", "abc"], "参数 'DOC_ID' 的值无效：'abc' 不是有效的整数。"),
                           (["serch", "x"], "没有命令 'serch'"),
                           (["search", "x", "--nope"], "没有选项 '--nope'"),
                           (["search", "x", "-k", "0"], "不在范围")):
        r = runner.invoke(cli, args)
        assert r.exit_code == 2 and expected in r.output and "错误：" in r.output, r.output
        assert not [w for w in ENGLISH if w in r.output], r.output
    lines = runner.invoke(cli, ["search", "--help"]).output.splitlines()
    starts = {line.index(h) for line in lines if line.startswith("  -") for h in ("知识库文件夹", "结果数") if h in line}
    assert len(starts) == 1  # both descriptions in one column, though "--kb 文本" holds CJK


def test_stats_json(kb_dir):
    r = CliRunner().invoke(cli, ["stats", "--kb", str(kb_dir), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    for key in ("documents", "passages", "embedded", "embedder", "dim", "by_type", "by_year", "index_type"):
        assert key in s
    assert s["documents"] == 1 and s["embedded"] == s["passages"] > 0 and s["by_year"] == {"2022": 1}
    assert s["by_format"] == {"txt": 1}  # documents by the format they were read as


def test_stats_text_and_env_default(kb_dir, monkeypatch):
    monkeypatch.setenv("YUANWEN_KB", str(kb_dir))
    r = CliRunner().invoke(cli, ["stats"])
    assert r.exit_code == 0 and "文档 1 篇" in r.output and "按格式：txt 1" in r.output


def test_missing_kb_is_a_clean_error(tmp_path):
    r = CliRunner().invoke(cli, ["stats", "--kb", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "知识库不存在" in r.output


def test_ingest_exit_codes(tmp_path, kb_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "ok.txt").write_text("关于做好防汛工作的通知\n请各单位做好准备。", encoding="utf-8")
    r = CliRunner().invoke(cli, ["ingest", str(bad), "--kb", str(kb_dir), "--embedder", "fake"])
    assert r.exit_code == 1
    assert "empty.txt" in r.output and "文件为空" in r.output
    r = CliRunner().invoke(cli, ["ingest", "--kb", str(kb_dir)])
    assert r.exit_code == 2


def test_embedder_mismatch_exit_code(tmp_path, kb_dir):
    r = CliRunner().invoke(cli, ["ingest", str(SAMPLE), "--kb", str(kb_dir), "--embedder", "fake2"])
    assert r.exit_code == 1 and "--reembed" in r.output


def test_search_json_shape(kb_dir):
    r = CliRunner().invoke(cli, ["search", "怎么落实巡视整改", "--kb", str(kb_dir), "--json", "-k", "3"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"query", "mode", "took_ms", "hits"} <= set(out)
    assert out["mode"] == "hybrid" and 1 <= len(out["hits"]) <= 3
    hit = out["hits"][0]
    for key in ("rank", "score", "text", "heading_path", "title", "issuer", "date", "doc_type",
                "page", "start", "end", "citation"):
        assert key in hit
    assert isinstance(hit["heading_path"], list)


@pytest.mark.parametrize("query", ["", "   ", "，。！？", "安" * 5000])
def test_bad_queries_exit_2(kb_dir, query):
    r = CliRunner().invoke(cli, ["search", query, "--kb", str(kb_dir)])
    assert r.exit_code == 2, r.output


def test_quote_json_shape(kb_dir):
    r = CliRunner().invoke(cli, ["quote", "局党委书记认真履行巡视整改第一责任人责任", "--kb", str(kb_dir), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["verdict"] == "exact" and out["similarity"] == 100
    m = out["matches"][0]
    for key in ("text", "title", "issuer", "date", "start", "end", "diff", "citation"):
        assert key in m


def test_batch_mode(tmp_path, kb_dir):
    f = tmp_path / "q.txt"
    f.write_text("巡视整改\n安全生产\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["search", "--batch", str(f), "--kb", str(kb_dir), "-k", "2"])
    lines = [json.loads(x) for x in r.output.strip().splitlines()]
    assert r.exit_code == 0 and [x["query"] for x in lines] == ["巡视整改", "安全生产"]


def test_docs_and_show(kb_dir):
    r = CliRunner().invoke(cli, ["docs", "--kb", str(kb_dir), "--json", "--type", "报告"])
    assert r.exit_code == 0, r.output
    listed = json.loads(r.output)
    assert len(listed) == 1 and listed[0]["title"].startswith("市应急管理局党委2022年")
    r = CliRunner().invoke(cli, ["docs", "--kb", str(kb_dir), "--json", "--type", "通知"])
    assert json.loads(r.output) == []
    r = CliRunner().invoke(cli, ["show", str(listed[0]["id"]), "--kb", str(kb_dir), "--json"])
    doc = json.loads(r.output)
    heads = [o["heading"] for o in doc["outline"] if o["level"] == 1]
    assert heads[0] == "一、着力提高政治站位，加强党对应急管理工作的全面领导" and len(heads) == 6
    r = CliRunner().invoke(cli, ["show", "999", "--kb", str(kb_dir)])
    assert r.exit_code == 1 and "没有编号为 999" in r.output


def test_pack_add_and_export(tmp_path, kb_dir):
    import docx

    hits = json.loads(CliRunner().invoke(cli, ["search", "巡视整改", "--kb", str(kb_dir), "--json", "-k", "2"]).output)
    ids = [str(h["passage_id"]) for h in hits["hits"]]
    pack_file = tmp_path / "pack.json"
    r = CliRunner().invoke(cli, ["pack", "add", str(pack_file), *ids, "--kb", str(kb_dir),
                                 "--section", "巡视整改", "--title", "专题学习", "--note", "重点学习"])
    assert r.exit_code == 0 and "共 2 段" in r.output, r.output
    out = tmp_path / "pack.docx"
    r = CliRunner().invoke(cli, ["pack", "export", str(pack_file), str(out)])
    assert r.exit_code == 0, r.output
    from tests.docx_checks import check_gongwen_docx
    from yuanwen.library import Library

    pack = Library.load_pack(pack_file.read_bytes())
    text = "\n".join(p.text for p in check_gongwen_docx(out.read_bytes(), pack).paragraphs)
    assert "专题学习" in text and "一、巡视整改" in text and "重点学习" in text and "按：" not in text
    assert f"（摘自《{hits['hits'][0]['title']}》" in text
    r = CliRunner().invoke(cli, ["pack", "export", str(pack_file), str(out), "--source", "citation"])
    assert r.exit_code == 0, r.output
    text = "\n".join(p.text for p in check_gongwen_docx(out.read_bytes(), pack, "citation").paragraphs)
    assert hits["hits"][0]["citation"].rstrip("。") in text
    r = CliRunner().invoke(cli, ["pack", "export", str(pack_file), str(tmp_path / "pack.xls")])
    assert r.exit_code == 2 and "docx" in r.output
    r = CliRunner().invoke(cli, ["pack", "export", str(pack_file), str(tmp_path / "pack.pdf")],
                           env={"YUANWEN_SOFFICE": ""})
    assert r.exit_code == 1 and "LibreOffice" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(cli, ["pack", "add", str(pack_file), "999999", "--kb", str(kb_dir)])
    assert r.exit_code == 2


@pytest.mark.parametrize("content", [b'{"title": 5, "sections": "x"}', b"\xff\xfe{", b"[" * 5000])
def test_pack_commands_refuse_a_crafted_pack_file_without_a_traceback(tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    for args in (["pack", "export", str(bad), str(tmp_path / "out.docx")],
                 ["pack", "add", str(bad), "1", "--kb", str(tmp_path / "kb")]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code in (1, 2) and "Traceback" not in r.output, r.output
        assert "bad.json" in r.output or "知识库" in r.output, r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
