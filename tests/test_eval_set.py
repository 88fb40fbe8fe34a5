"""The evaluation set is well formed: its size and mix, and every snippet in its file.

The figures in docs/search.md rest on ``benchmarks/eval/questions.jsonl``; a broken snippet would
silently count a right hit as a miss. ``python -m benchmarks.check_questions`` checks the same
against a built knowledge base (and the paraphrase rule); this test needs none.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from yuanwen.ingest.readers import read_file

from yuanwen.text import fold_map

from .conftest import SHARED

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line) for line in (ROOT / "benchmarks/eval/questions.jsonl").read_text(encoding="utf-8").splitlines()
             if line.strip()]


def test_size_and_mix():
    ids = [q["id"] for q in QUESTIONS]
    assert len(ids) == len(set(ids)) >= 200
    assert sum(q["neighbour"] for q in QUESTIONS) >= 60
    assert set(Counter(q["user"] for q in QUESTIONS)) == {"study", "drafter", "trainer"}
    assert {q["kind"] for q in QUESTIONS} == {"question", "keyword"}
    assert all(1 <= len(q["relevant"]) <= 3 and q["query"].strip() for q in QUESTIONS)


def _path(file: str) -> Path:
    return ROOT / file if file.startswith("corpus/") else SHARED / file


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared corpus not found")
def test_every_snippet_is_in_its_file():
    texts: dict[str, str] = {}
    missing = []
    for q in QUESTIONS:
        for r in q["relevant"]:
            if r["file"] not in texts:
                texts[r["file"]] = fold_map(read_file(_path(r["file"])).text)[0]
            if fold_map(r["contains"])[0] not in texts[r["file"]]:
                missing.append((q["id"], r["file"], r["contains"]))
    assert not missing
