"""The README's examples work as written: the commands of its "Using it" block for the bundled
sample are run, in order, on a knowledge base built from ``corpus/`` as ``make run`` builds it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from yuanwen.cli import cli
from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest

ROOT = Path(__file__).resolve().parent.parent


def sample_commands() -> list[list[str]]:
    """The yuanwen commands of the README's first bash block under "Using it"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using it"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    out = []
    for line in block.splitlines():
        if line.startswith(".venv/bin/yuanwen "):
            out.append(shlex.split(line.split("  #")[0])[1:])
    return out


def test_the_readme_examples_run_on_the_sample(tmp_path, monkeypatch):
    commands = sample_commands()
    assert len(commands) >= 10 and {c[0] for c in commands} >= {"search", "quote", "show", "pack"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("YUANWEN_KB", raising=False)
    report = ingest([ROOT / "corpus"], Config(kb_dir=tmp_path / "yuanwen_kb"), embedder="fake", progress=False)
    assert not report.failed
    runner = CliRunner()
    for args in commands:
        r = runner.invoke(cli, args)
        assert r.exit_code == 0 and r.output.strip(), (args, r.output)
        assert "错误" not in r.output, (args, r.output)
        if args[0] in ("search", "quote", "timeline", "excerpts"):  # each example finds something
            assert not any(none in r.output for none in ("没有找到", "未找到", "没有出现", "（0 段")), \
                (args, r.output)
            assert "市应急管理局" in r.output or '"hits": [{' in r.output, (args, r.output)
    assert (tmp_path / "学习材料.docx").stat().st_size > 10_000
    pack = runner.invoke(cli, ["pack", "show", "防汛学习（二）"]).output
    assert "一、防灾减灾" in pack

