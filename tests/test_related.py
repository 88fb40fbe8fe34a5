"""相关论述: for a passage, the closest passages of other documents (library, CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from yuanwen.cli import cli
from yuanwen.errors import UsageError
from yuanwen.library import open_kb

MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture(scope="module", params=["vectors", "keyword"])
def lib(request, tmp_path_factory, backend):
    kb_dir = tmp_path_factory.mktemp("kb")
    with open_kb(kb_dir, embedder="fake", readonly=False) as writer:
        assert not writer.ingest([MINI], embed=request.param == "vectors").failed
    lib = open_kb(kb_dir)
    yield lib
    lib.close()


def _source(lib):
    return lib.search("企业主要负责人是本单位安全生产第一责任人", k=1, mode="keyword").hits[0]


def test_related_passages_come_from_other_documents(lib):
    src = _source(lib)
    res = lib.related(src.passage.id, k=3)
    assert res.hits and len(res.hits) <= 3
    docs = [h.document.id for h in res.hits]
    assert src.document.id not in docs and len(docs) == len(set(docs))  # one per other document
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(h.citation for h in res.hits) and res.query == src.passage.text
    # the filter is pushed down: asking for more still never returns the passage's own document
    assert src.document.id not in {h.document.id for h in lib.related(src.passage.id, k=50).hits}


def test_unknown_passage_is_a_usage_error(lib):
    with pytest.raises(UsageError, match="没有段落 999999"):
        lib.related(999999)


def test_cli_related(lib):
    src = _source(lib)
    r = CliRunner().invoke(cli, ["related", str(src.passage.id), "--kb", str(lib.kb_dir), "--json", "-k", "2"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert 1 <= len(data["hits"]) <= 2 and all(h["doc_id"] != src.document.id for h in data["hits"])
    r = CliRunner().invoke(cli, ["related", "999999", "--kb", str(lib.kb_dir)])
    assert r.exit_code == 2 and "没有段落 999999" in r.output
