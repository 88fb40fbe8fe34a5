"""Quote verdicts that do not mislead: 有出入 (close) only for the same sentence misquoted; a
different sentence in the same formulaic words is 未找到, its wording shown apart as 相近的表述
(never as the source, never with a diff that invites a correction)."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from yuanwen.cli import cli
from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest
from yuanwen.kb import KnowledgeBase
from yuanwen.library import SIMILAR_NOTE
from yuanwen.search.quote import lookup_quote

from .conftest import SAMPLE, SHARED


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory, backend) -> Path:
    d = tmp_path_factory.mktemp("kb")
    assert not ingest([SAMPLE], Config(kb_dir=d), embedder="fake", progress=False).failed
    return d


def test_a_sentence_that_is_not_there_is_not_found(sample_kb):
    """The issue's case: 65% alike with a sentence on 现代化大都市 used to be called 有出入."""
    kb = KnowledgeBase(Config(kb_dir=sample_kb), readonly=True)
    res = lookup_quote(kb, "全面建设社会主义现代化国家的开局起步")
    assert res.verdict == "not_found" and not res.matches
    assert res.similar and all(not m.diff and m.citation for m in res.similar)
    assert all(m.similarity < 80 for m in res.similar)
    kb.close()


@pytest.mark.parametrize(("quote", "changed"), [
    ("局党委书记认真履行巡视整改第一责任人的责任", "的"),  # a character added
    ("局党委书记切实履行巡视整改第一责任人责任", "切实"),  # a word changed
])
def test_a_misquoted_sentence_is_close_with_its_diff(sample_kb, quote, changed):
    kb = KnowledgeBase(Config(kb_dir=sample_kb), readonly=True)
    res = lookup_quote(kb, quote)
    assert res.verdict == "close" and not res.similar
    assert "局党委书记认真履行巡视整改第一责任人责任" in res.matches[0].text
    assert any(changed in op.quote for op in res.matches[0].diff if op.kind != "equal")
    kb.close()


def test_the_cli_shows_similar_wordings_apart(sample_kb):
    out = CliRunner().invoke(cli, ["quote", "全面建设社会主义现代化国家的开局起步", "--kb", str(sample_kb)]).output
    assert out.startswith("结论：未找到") and SIMILAR_NOTE in out and "出处：" not in out
    data = json.loads(CliRunner().invoke(
        cli, ["quote", "全面建设社会主义现代化国家的开局起步", "--kb", str(sample_kb), "--json"]).output)
    assert data["verdict"] == "not_found" and data["matches"] == [] and data["similar"]


SENTENCE = re.compile(r"[^。；！？\n]{18,60}[。；]")


def _sentences(path: Path) -> list[str]:
    text = re.sub(r"<!--.*?-->|&[#A-Za-z0-9]+;|<[^>]+>", "", path.read_text(encoding="utf-8"), flags=re.S)
    return [m.group().strip("　 #") for m in SENTENCE.finditer(text) if "*" not in m.group()]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_absent_and_real_quotes_over_held_out_laws(tmp_path):
    """Real laws, every fifth held out of the knowledge base: sentences of the held-out ones that
    share no 10-character run with the rest are not found; sentences of the kept ones with two
    characters dropped are found in their source, as close."""
    if not SHARED.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    laws = sorted(p for p in (SHARED / "laws").glob("*") if p.suffix in (".txt", ".md"))
    kept, held = [f for i, f in enumerate(laws) if i % 5], [f for i, f in enumerate(laws) if not i % 5]
    docs = tmp_path / "docs"
    docs.mkdir()
    for f in kept:
        shutil.copy(f, docs / f.name)
    cfg = Config(kb_dir=tmp_path / "kb")
    assert not ingest([docs], cfg, embed=False, progress=False).failed
    kept_text = "".join(_squash(f.read_text(encoding="utf-8")) for f in kept)
    grams = {kept_text[i : i + 10] for i in range(len(kept_text) - 9)}
    rng = random.Random(7)
    absent = [s for f in held for s in rng.sample(_sentences(f), min(3, len(_sentences(f))))
              if not any(_squash(s)[i : i + 10] in grams for i in range(len(_squash(s)) - 9))]
    real = []
    for f in kept:
        for s in rng.sample(_sentences(f), min(2, len(_sentences(f)))):
            cut = sorted(rng.sample(range(3, len(s) - 3), 2))
            q = "".join(c for i, c in enumerate(s) if i not in cut)
            if kept_text.count(_squash(s)) == 1:
                real.append((q, f.name))
    assert len(absent) >= 8 and len(real) >= 20
    kb = KnowledgeBase(cfg, readonly=True)
    wrong_absent = [(q, lookup_quote(kb, q).verdict) for q in absent if lookup_quote(kb, q).verdict != "not_found"]
    wrong_real = []
    for q, name in real:
        res = lookup_quote(kb, q)
        if res.verdict != "close" or not any(Path(m.document.path).name == name for m in res.matches):
            wrong_real.append((q, res.verdict, round(res.similarity)))
    kb.close()
    assert len(wrong_absent) <= max(1, len(absent) // 50), wrong_absent
    assert not wrong_real, wrong_real
