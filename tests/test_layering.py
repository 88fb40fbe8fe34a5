"""Layering: SQL lives in the storage backend only.

The backend is ``yuanwen/store.py`` (with ``yuanwen/bm25.py`` and ``yuanwen/index.py``, the
indexes derived from it). Everything else asks the store by named methods, so no other module
knows table names, FTS5 column order or the JSON layout of ``documents.extra``, and a second
backend could replace SQLite. This test reads the other source files (benchmarks too, save
one that measures FTS5 itself) and fails, naming ``file:line``, on SQL text in a string
literal or on raw database access (``.execute(...)``, ``.conn``, ``.db``).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BACKEND = {"yuanwen/store.py", "yuanwen/bm25.py", "yuanwen/index.py"}
# Benchmarks that measure SQL itself (FTS5 tokenizers on a private in-memory database).
MEASURES_SQL = {"benchmarks/tokenisation.py"}

SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|PRAGMA|BEGIN|COMMIT)\b")
# In Chinese prose (a user message) a capitalised word alone is not SQL; a statement is.
SQL_STATEMENT = re.compile(
    r"\b(SELECT\b.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(UNIQUE\s+|VIRTUAL\s+)?(TABLE|INDEX|VIEW|TRIGGER)|DROP\s+(TABLE|INDEX|VIEW|TRIGGER)"
    r"|PRAGMA\s+\w+|BEGIN(\s+(IMMEDIATE|EXCLUSIVE|DEFERRED))?\s*(TRANSACTION)?\s*;?\s*$|COMMIT\s*;?\s*$)",
    re.S,
)
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
# Attributes that reach past the store to the database connection.
RAW_ACCESS = {"execute", "executemany", "executescript", "conn", "db", "cursor"}


def layer_files() -> list[Path]:
    """The source files outside the storage backend."""
    files = [p for p in (ROOT / "yuanwen").glob("*.py") if p.relative_to(ROOT).as_posix() not in BACKEND]
    files += (ROOT / "ingest").rglob("*.py")
    files += (ROOT / "search").glob("*.py")
    files += (ROOT / "pages_app").glob("*.py")
    files += (ROOT / "cli").glob("*.py")
    files += (ROOT / "benchmarks").glob("*.py")
    files.append(ROOT / "app.py")
    return sorted(p for p in files if p.exists() and p.relative_to(ROOT).as_posix() not in MEASURES_SQL)


def _is_sql(text: str) -> bool:
    if HAN.search(text):
        return bool(SQL_STATEMENT.search(text))
    return bool(SQL_WORD.search(text))


def violations(source: str, name: str) -> list[str]:
    """``name:line: why`` for each string constant holding SQL and each raw database access
    in ``source``."""
    tree = ast.parse(source, filename=name)
    in_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):  # an f-string: its literal parts joined
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if _is_sql(text):
                out.append((node.lineno, f"SQL text in an f-string: {text[:60]!r}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstring:
            if _is_sql(node.value):
                out.append((node.lineno, f"SQL text in a string: {node.value[:60]!r}"))
        elif isinstance(node, ast.Attribute) and node.attr in RAW_ACCESS:
            out.append((node.lineno, f"raw database access .{node.attr}"))
    return [f"{name}:{line}: {why}" for line, why in sorted(set(out))]


def test_no_sql_outside_the_storage_backend():
    found = []
    for path in layer_files():
        found += violations(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    assert not found, "SQL outside the storage backend (add a Store method instead):\n" + "\n".join(found)


def test_the_layer_list_covers_the_code():
    names = {p.relative_to(ROOT).as_posix() for p in layer_files()}
    assert {"app.py", "yuanwen/verify.py", "yuanwen/kb.py", "search/retrieve.py",
            "search/documents.py", "search/quote.py", "ingest/pipeline.py",
            "benchmarks/worker.py", "cli/__init__.py"} <= names
    assert not names & (BACKEND | MEASURES_SQL)


def test_the_check_finds_sql_and_spares_prose():
    planted = '''
def f(kb, where):
    kb.store.db.execute("SELECT id FROM documents")
    x = f"DELETE FROM passages WHERE {where}"
    y = "PRAGMA quick_check"
    z = kb.store.conn
    ok = "知识库 {kb} 已更新；请运行 yuanwen ingest 后再试（UPDATE 会较慢）"
    ok2 = "Select the documents to export"
'''
    found = violations(planted, "planted.py")
    lines = sorted({int(v.split(":")[1]) for v in found})
    assert lines == [3, 4, 5, 6], found
    assert any(".execute" in v for v in found) and any(".conn" in v for v in found)


@pytest.mark.slow
def test_installed_there_is_one_namespace(tmp_path):
    """Installed (a real wheel build, not the checkout), 原文 is ``yuanwen`` only: the top-level
    folders ingest/, search/ and cli/ are yuanwen.ingest, yuanwen.search and yuanwen.cli,
    ``import search`` and ``import ingest`` fail, and the command works, parse worker included."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("yuanwen", "ingest", "search", "cli"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, capture_output=True)
    assert (site / "yuanwen" / "ingest" / "readers" / "pdf.py").is_file()
    assert (site / "yuanwen" / "cli" / "__init__.py").is_file()
    assert not (site / "ingest").exists() and not (site / "search").exists()

    work = tmp_path / "work"  # no checkout on the path: only the installed copy
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    probe = (
        "import importlib, yuanwen, yuanwen.search.api, yuanwen.ingest.pipeline, yuanwen.library\n"
        "print(yuanwen.search.api.__file__)\n"
        "for name in ('search', 'ingest', 'cli'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ImportError:\n"
        "        print('absent', name)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert Path(lines[0]).is_relative_to(site), lines
    assert lines[1:] == ["absent search", "absent ingest", "absent cli"]

    (work / "docs").mkdir()
    (work / "docs" / "通知.txt").write_text("关于做好安全生产工作的通知\n\n一、压实安全生产责任。\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "yuanwen.cli", "ingest", "docs", "--kb", "kb", "--no-embed"],
                       cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "yuanwen.cli", "search", "安全生产", "--kb", "kb", "--mode", "keyword"],
                       cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 0 and "安全生产" in r.stdout, r.stdout + r.stderr
