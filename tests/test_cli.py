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


def test_every_command_has_help():
    runner = CliRunner()
    for name, cmd in cli.commands.items():
        assert cmd.help, f"{name} has no help"
        r = runner.invoke(cli, [name, "--help"])
        assert r.exit_code == 0 and "--kb" in r.output or name == "--version"


def test_stats_json(kb_dir):
    r = CliRunner().invoke(cli, ["stats", "--kb", str(kb_dir), "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    for key in ("documents", "passages", "embedded", "embedder", "dim", "by_type", "by_year", "index_type"):
        assert key in s
    assert s["documents"] == 1 and s["embedded"] == s["passages"] > 0 and s["by_year"] == {"2022": 1}


def test_stats_text_and_env_default(kb_dir, monkeypatch):
    monkeypatch.setenv("YUANWEN_KB", str(kb_dir))
    r = CliRunner().invoke(cli, ["stats"])
    assert r.exit_code == 0 and "文档 1 篇" in r.output


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
