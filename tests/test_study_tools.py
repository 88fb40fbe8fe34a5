"""论述摘编 (search/excerpts.py) and 提法演变 (search/timeline.py): the library, the CLI and the
app pages, on a small knowledge base of real speeches and reports of different years from
../shared/corpus (with their manifest's dates), one undated note and the fake embedder."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from yuanwen.config import Config
from yuanwen.ingest.pipeline import ingest
from yuanwen.library import open_kb
from yuanwen.models import Filters, StudyPack
from yuanwen.search.api import search
from yuanwen.search.timeline import form_pattern, forms_of, is_occurrence, safe_phrase
from yuanwen.text import fold_width

from .conftest import ROOT, SHARED, FakeEmbedder  # noqa: F401  (registers the "fake" embedder)

APP = str(ROOT / "app.py")
DOCS = [  # (file in ../shared/corpus, its year): speeches and reports, 2015 to 2024
    "speeches/2015-11-23-不断开拓当代中国马克思主义政治经济学新境界.txt",
    "reports/2017-10-18-党的十九大报告.txt",
    "speeches/2020-07-21-在企业家座谈会上的讲话.txt",
    "reports/2022-10-16-党的二十大报告.txt",
    "reports/2024-03-05-2024年政府工作报告.txt",
]
# A note without a date: its occurrences are counted apart. The full-width ＧＤＰ and the
# spelled-out 十四五 check width folding and the glossary's forms.
UNDATED = ("学习笔记.txt", ("学习心得\n推动高质量发展，要坚持以人民为中心的发展思想。"
                          "国民经济和社会发展第十四个五年规划时期，高质量发展是首要任务，ＧＤＰ不是唯一指标。\n"))


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory, backend) -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    src = tmp_path_factory.mktemp("study_docs")
    with open(SHARED / "manifest.csv", encoding="utf-8") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    with open(src / "manifest.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "title", "issuer", "date", "doc_type"])
        for rel in DOCS:
            shutil.copy(SHARED / rel, src / Path(rel).name)
            r = rows[rel]
            w.writerow([Path(rel).name, r["title"], r["issuer"], r["date"], r["doc_type"]])
    (src / UNDATED[0]).write_text(UNDATED[1], encoding="utf-8")
    kb = tmp_path_factory.mktemp("study_kb")
    report = ingest([src], Config(kb_dir=kb), embedder="fake", progress=False)
    assert not report.failed, report.failed
    return kb


@pytest.fixture(scope="module")
def lib(kb_dir):
    with open_kb(kb_dir) as library:
        yield library


def _by_date(date: str | None) -> tuple[bool, str]:
    """Earliest first, undated last."""
    return date is None, date or ""


def _texts(lib) -> list:
    """Every document with its text, for counts computed here independently."""
    return [lib.document(d.id, with_text=True) for d in lib.documents()]


# -- 提法演变 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("term", ["高质量发展", "新质生产力", "全面深化改革", "人民"])
def test_timeline_counts_per_year_and_first_appearance_match_an_independent_count(lib, term):
    docs = _texts(lib)
    per_year: dict[int, int] = {}
    per_year_docs: dict[int, int] = {}
    undated = 0
    using = []
    for d in docs:
        folded = fold_width(d.text)  # none of these terms has a longer glossary form here
        n = sum(is_occurrence(folded, m.start(), m.end()) for m in re.finditer(re.escape(term), folded))
        if not n:
            continue
        using.append(d)
        if d.year is None:
            undated += n
        else:
            per_year[d.year] = per_year.get(d.year, 0) + n
            per_year_docs[d.year] = per_year_docs.get(d.year, 0) + 1
    tl = lib.timeline(term)
    assert per_year, "the term occurs in dated documents"
    assert [(y.year, y.occurrences, y.documents) for y in tl.years] == sorted(
        (y, per_year[y], per_year_docs[y]) for y in per_year)
    assert tl.occurrences == sum(per_year.values()) + undated
    assert tl.documents == len(using)
    assert (tl.undated.occurrences if tl.undated else 0) == undated
    earliest = min((d for d in using if d.year is not None), key=lambda d: d.date)
    assert tl.first_document.id == earliest.id and tl.first_document.date == earliest.date
    assert tl.first is not None and tl.first.document.id == earliest.id and term in tl.first.passage.text
    # the series fills the gaps with zeros, from the first year to the last
    series = tl.series()
    assert [y.year for y in series] == list(range(min(per_year), max(per_year) + 1))
    assert sum(y.occurrences for y in series) == sum(per_year.values())


def test_timeline_passages_are_by_date_earliest_first_and_hold_the_term(lib):
    tl = lib.timeline("高质量发展")
    keys = [(h.document.date is None, h.document.date or "", h.document.id, h.passage.seq) for h in tl.passages]
    assert keys == sorted(keys)
    assert tl.passages[-1].document.date is None  # the undated note comes last
    assert [h.rank for h in tl.passages] == list(range(1, len(tl.passages) + 1))
    for h in tl.passages:
        assert int(h.score) == fold_width(h.passage.text).count("高质量发展") >= 1
    # passages do not overlap, so their counts add up to the documents' (all inside passages here)
    assert sum(int(h.score) for h in tl.passages) == tl.occurrences


def test_timeline_counts_a_formulations_other_forms_width_folded(lib):
    forms, glossary = forms_of("十四五")
    assert glossary == "十四五" and "国民经济和社会发展第十四个五年规划" in forms and "14五" in forms
    assert forms_of("14五")[1] == "十四五"  # any form finds the 提法
    tl = lib.timeline("十四五")
    docs = _texts(lib)
    expected = {f: sum(fold_width(d.text).count(f) for d in docs) for f in forms}
    assert tl.by_form == expected
    assert tl.by_form["国民经济和社会发展第十四个五年规划"] >= 1  # the undated note spells it out
    assert tl.occurrences == sum(expected.values())
    assert tl.undated is not None and tl.undated.occurrences == 1
    # width folding: the note's full-width ＧＤＰ is found by gdp and by GDP
    assert lib.timeline("GDP").occurrences == lib.timeline("gdp").occurrences == sum(
        fold_width(d.text).count("gdp") for d in docs) >= 1


def test_nested_forms_are_counted_once(lib):
    text = "坚持创新、协调、绿色、开放、共享的新发展理念，贯彻新发展理念。"
    forms, _ = forms_of("新发展理念")
    assert len(form_pattern(forms).findall(text)) == 2  # the full wording holds the term: one occurrence


def test_the_keyword_index_finds_the_same_documents_as_a_full_scan(lib):
    """The FTS5 phrase candidates miss nothing: for every glossary form and a few words, the
    counts equal a scan of every document's text."""
    from yuanwen.vocab import formulations

    docs = _texts(lib)
    for term in [f.term for f in formulations()] + ["高质量发展", "人民", "GDP", "十四个五年"]:
        forms, _ = forms_of(term)
        pattern = form_pattern(forms)
        assert lib.timeline(term).occurrences == sum(
            is_occurrence(d.text, m.start(), m.end()) for d in docs for m in pattern.finditer(d.text)), term


@pytest.mark.parametrize(("text", "term", "counted"), [
    ("坚持创新发展理念", "新发展理念", False),  # 创新 + 发展 + 理念: not the formulation
    ("完整准确全面贯彻新发展理念", "新发展理念", True),
    ("加快形成新质生产力", "新质生产力", True),
    ("坚定拥护“两个确立”", "两个确立", True),
    ("紧紧依靠人民群众", "人民", True),  # a plain word under four characters: not checked
    ("推动高质量发展取得新成效", "高质量发展", True),  # the end is not checked
])
def test_an_occurrence_must_start_a_word(text, term, counted):
    start = text.index(term)
    assert is_occurrence(text, start, start + len(term)) is counted


def test_safe_phrase_drops_edge_terms_a_longer_run_cuts_differently():
    assert safe_phrase("新质生产力") == ["新质", "质生", "生产", "产力"]
    assert safe_phrase("14五") == []  # "五" is the bigram 五规 in 14五规划: no safe phrase
    assert safe_phrase("G20峰会") == ["峰会"]


def test_timeline_of_an_unknown_term_and_bad_input(lib):
    from yuanwen.errors import BadQueryError

    tl = lib.timeline("量子纠缠态")
    assert tl.occurrences == 0 and tl.years == [] and tl.first_document is None and tl.passages == []
    for bad in ("", "   ", "，。", "长" * 61):
        with pytest.raises(BadQueryError):
            lib.timeline(bad)


# -- 论述摘编 ------------------------------------------------------------------------------------
def test_excerpts_are_grouped_by_document_in_date_order_with_weak_hits_left_out(lib):
    theme = "高质量发展"
    ex = lib.excerpts(theme, k=30)
    plain = search(lib.kb, theme, k=30)
    strong = {h.passage.id for h in plain.hits if not h.weak}
    weak = [h for h in plain.hits if h.weak]
    assert {h.passage.id for h in ex.hits} == strong
    assert ex.weak_left_out == len(weak)
    assert all(not h.weak for h in ex.hits)
    dates = [g.document.date for g in ex.groups]
    assert len(ex.groups) >= 3 and dates == sorted(dates, key=_by_date)
    assert len({g.document.id for g in ex.groups}) == len(ex.groups)  # one group per document
    for g in ex.groups:
        assert all(h.document.id == g.document.id for h in g.hits)
        starts = [h.passage.start for h in g.hits]
        assert starts == sorted(starts)  # reading order within a document
        assert all(h.citation is not None for h in g.hits)
    assert [h.rank for h in ex.hits] == list(range(1, len(ex.hits) + 1))


def test_excerpts_can_include_weak_hits_and_take_filters(lib):
    theme = "高质量发展 量子计算 航天育种 网球比赛"
    plain = search(lib.kb, theme, k=30)
    assert any(h.weak for h in plain.hits), "the theme finds weak hits to leave out"
    assert len(lib.excerpts(theme, k=30, include_weak=True).hits) == len(plain.hits)
    assert lib.excerpts(theme, k=30).weak_left_out == sum(h.weak for h in plain.hits)
    speeches = lib.excerpts("高质量发展", filters=Filters(issuers=["习近平"], doc_types=["讲话"]))
    assert speeches.hits and all(g.document.doc_type == "讲话" for g in speeches.groups)


def test_excerpts_become_a_pack_in_their_order_chosen_ones_only(lib):
    ex = lib.excerpts("高质量发展", k=12)
    pack = lib.excerpts_pack(ex)
    assert pack.title == "高质量发展论述摘编"
    assert [s.title for s in pack.sections] == ["高质量发展"]
    items = pack.sections[0].items
    assert [i.passage_id for i in items] == [h.passage.id for h in ex.hits]
    assert [i.date for i in items] == sorted((i.date for i in items), key=_by_date)
    # a chosen subset, added to a pack that already holds one of them: nothing twice
    chosen = [h.passage.id for h in ex.hits][::2]
    first = lib.add_to_pack(StudyPack(title="我的汇编"), [chosen[0]], section="已有")
    out = lib.excerpts_pack(ex, first, chosen, section="摘编")
    assert out.title == "我的汇编" and [s.title for s in out.sections] == ["已有", "摘编"]
    assert [i.passage_id for i in out.sections[1].items] == chosen[1:]
    assert lib.pack_size(first) == 1  # the argument is left untouched


# -- the CLI -------------------------------------------------------------------------------------
def _cli(*args):
    from yuanwen.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_timeline_json_and_text(lib, kb_dir):
    r = _cli("timeline", "高质量发展", "--kb", str(kb_dir), "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    tl = lib.timeline("高质量发展")
    assert data["occurrences"] == tl.occurrences
    assert data["years"] == [{"year": y.year, "occurrences": y.occurrences, "documents": y.documents}
                             for y in tl.years]
    assert data["first"]["date"] == tl.first_document.date
    assert len(data["passages"]) == len(tl.passages)
    assert data["undated"]["occurrences"] == 2
    r = _cli("timeline", "高质量发展", "--kb", str(kb_dir), "-n", "2")
    assert r.exit_code == 0
    assert f"共出现 {tl.occurrences} 次" in r.output and f"首次出现：{tl.first_document.date}" in r.output
    assert "日期不详" in r.output and "-n 0 列出全部" in r.output
    r = _cli("timeline", " ", "--kb", str(kb_dir))
    assert r.exit_code == 2 and "请输入要查看的提法" in r.output


def test_cli_excerpts_json_text_and_pack(lib, kb_dir):
    r = _cli("excerpts", "高质量发展", "--kb", str(kb_dir), "-k", "10", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    dates = [g["date"] for g in data["groups"]]
    assert dates == sorted(dates, key=_by_date)
    assert data["passages"] == sum(len(g["hits"]) for g in data["groups"]) >= 3
    assert all(not h["weak"] and h["citation"] for g in data["groups"] for h in g["hits"])
    r = _cli("excerpts", "高质量发展", "--kb", str(kb_dir), "-k", "10", "--type", "讲话")
    assert r.exit_code == 0 and "论述摘编：高质量发展" in r.output and "出处：" in r.output
    r = _cli("excerpts", "高质量发展", "--kb", str(kb_dir), "-k", "10", "--pack", "摘编测试")
    assert r.exit_code == 0, r.output
    saved = lib.open_pack("摘编测试")
    assert [i.passage_id for i in saved.pack.sections[0].items] == [
        h["passage_id"] for g in data["groups"] for h in g["hits"]]
    assert saved.pack.title == "高质量发展论述摘编"
    lib.delete_pack("摘编测试")
    # a saved pack whose file cannot be read is not taken for a missing one and overwritten
    damaged = kb_dir / "packs" / "坏的.json"
    damaged.write_bytes(b'{"sections": [')
    try:
        r = _cli("excerpts", "高质量发展", "--kb", str(kb_dir), "-k", "10", "--pack", "坏的")
        assert r.exit_code == 2 and "无法读取" in r.output and "pack delete 坏的" in r.output, r.output
        assert damaged.read_bytes() == b'{"sections": ['
    finally:
        damaged.unlink()


# -- the app -------------------------------------------------------------------------------------
@pytest.fixture
def app_kb(kb_dir, tmp_path) -> Path:
    """A copy of the knowledge base for one app test: the app saves its packs in the folder."""
    # (not the lock files: this process holds a POSIX lock on Milvus Lite's, which closing a
    # copy's read of it would drop, stopping the server of the module's open knowledge base)
    return Path(shutil.copytree(kb_dir, tmp_path / "kb", ignore=shutil.ignore_patterns("*.lock")))


def _app(kb_dir, monkeypatch, page: str, params: dict | None = None) -> AppTest:
    """The app opened on ``page`` (its file under pages_app/), as a browser opens its address
    with ``params`` in the query."""
    monkeypatch.setenv("YUANWEN_KB", str(kb_dir))
    at = AppTest.from_file(APP, default_timeout=90).run()  # AppTest starts on the default page
    if params:
        at.query_params.update(params)
    return at.switch_page(f"pages_app/{page}").run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _charts(at: AppTest) -> list:
    """The vega-lite charts on the page (the element's name differs between Streamlit versions)."""
    return list(at.get("vega_lite_chart")) + list(at.get("arrow_vega_lite_chart"))


def _chart_rows(at: AppTest) -> list[dict]:
    """The data rows of the page's vega-lite chart (inline values, or its Arrow datasets)."""
    charts = _charts(at)
    assert charts, "the page draws a chart"
    proto = charts[0].proto
    spec = json.loads(proto.spec)
    rows = list((spec.get("data") or {}).get("values") or [])
    for ds in spec.get("datasets", {}).values():
        rows += ds
    for ds in getattr(proto, "datasets", []):
        rows += pa.ipc.open_stream(ds.data.data).read_all().to_pylist()
    if proto.HasField("data") and proto.data.data:
        rows += pa.ipc.open_stream(proto.data.data).read_all().to_pylist()
    return rows


def test_timeline_page_draws_the_yearly_chart_and_adds_a_passage_to_the_pack(lib, app_kb, monkeypatch):
    tl = lib.timeline("高质量发展")
    at = ok(_app(app_kb, monkeypatch, "timeline_page.py", {"term": "高质量发展"}))
    assert at.header[0].value == "提法演变"
    rows = _chart_rows(at)
    assert [(int(r["年份"]), r["出现次数"]) for r in rows] == [(y.year, y.occurrences) for y in tl.series()]
    at.radio(key="tl_measure").set_value("文件篇数").run()  # documents per year instead
    ok(at)
    spec = json.loads(_charts(at)[0].proto.spec)
    assert spec["encoding"]["y"]["field"] == "文件篇数"
    assert [(int(r["年份"]), r["文件篇数"]) for r in _chart_rows(at)] == [(y.year, y.documents) for y in tl.series()]
    assert [m.value for m in at.metric] == [tl.first_document.date, f"{tl.occurrences} 次", f"{tl.documents} 篇"]
    adds = [b for b in at.button if b.key and b.key.startswith("tl_add_list_")]
    assert adds and adds[0].label == "加入汇编"
    pid = int(adds[0].key.rsplit("_", 1)[1])
    assert pid == tl.passages[0].passage.id  # the list starts with the earliest passage
    adds[0].click().run()
    ok(at)
    from yuanwen.library import Library

    assert Library.find_in_pack(at.session_state["pack"], pid) is not None
    with open_kb(app_kb) as other:  # saved at once in the knowledge base folder
        assert Library.find_in_pack(other.open_pack(at.session_state["pack_name"]).pack, pid) is not None
    assert at.button(key=f"tl_add_list_{pid}").label == "已在汇编中"
    # a year's passages only
    year = str(tl.years[0].year)
    at.selectbox(key="tl_year").select(year).run()
    ok(at)
    shown = [b for b in at.button if b.key and b.key.startswith("tl_add_list_")]
    assert len(shown) == sum(1 for h in tl.passages if h.document.year == int(year))


def test_timeline_page_from_its_form_and_an_unknown_term(app_kb, monkeypatch):
    at = ok(_app(app_kb, monkeypatch, "timeline_page.py"))
    at.text_input(key="tl_q").input("量子纠缠态")
    at.button(key="tl_go").click().run()
    ok(at)
    assert any("没有出现" in i.value for i in at.info)
    assert not _charts(at)
    assert at.query_params.get("term") in ("量子纠缠态", ["量子纠缠态"])


def test_excerpts_page_builds_a_date_ordered_pack(lib, app_kb, monkeypatch):
    ex = lib.excerpts("高质量发展", k=10)
    with open_kb(app_kb) as other:
        other.create_pack("我的汇编")
    at = ok(_app(app_kb, monkeypatch, "excerpts_page.py"))
    assert at.header[0].value == "论述摘编" and at.session_state["pack_name"] == "我的汇编"
    at.text_input(key="ex_q").input("高质量发展")
    at.number_input(key="ex_k").set_value(10)
    at.button(key="ex_go").click().run()
    ok(at)
    boxes = [c for c in at.checkbox if c.key and c.key.startswith("ex_keep_")]
    assert len(boxes) == len(ex.hits) and all(c.value for c in boxes)
    # the trainer unticks the second passage, then makes the pack
    dropped = int(boxes[1].key.rsplit("_", 1)[1])
    boxes[1].uncheck().run()
    ok(at)
    at.button(key="ex_pack_top").click().run()
    ok(at)
    pack = at.session_state["pack"]
    assert [s.title for s in pack.sections] == ["高质量发展"] and pack.title == "高质量发展论述摘编"
    items = pack.sections[0].items
    assert [i.passage_id for i in items] == [h.passage.id for h in ex.hits if h.passage.id != dropped]
    dates = [i.date for i in items]
    assert dates == sorted(dates, key=_by_date) and len(set(dates)) >= 2  # earliest first, over several years
    assert at.header[0].value == "学习材料汇编"  # it opens the pack page
    # a new pack named after the theme, not more passages in the pack the session was on
    assert at.session_state["pack_name"] == "高质量发展论述摘编"
    with open_kb(app_kb) as other:  # and the pack is saved in the knowledge base folder
        saved = other.open_pack("高质量发展论述摘编")
        assert other.open_pack("我的汇编").pack == StudyPack(title="我的汇编")
    assert [i.passage_id for i in saved.pack.sections[0].items] == [i.passage_id for i in items]
    assert at.query_params["pack"] in ("高质量发展论述摘编", ["高质量发展论述摘编"])


def test_excerpts_page_adds_to_the_current_pack_as_the_second_choice(lib, app_kb, monkeypatch):
    ex = lib.excerpts("高质量发展", k=10)
    with open_kb(app_kb) as other:
        other.create_pack("高质量发展论述摘编")  # the theme's name is taken already
        other.create_pack("我的汇编")
    os.utime(app_kb / "packs" / "我的汇编.json", (1_900_000_000, 1_900_000_000))  # the most recent
    at = ok(_app(app_kb, monkeypatch, "excerpts_page.py", {"theme": "高质量发展", "k": "10"}))
    assert at.session_state["pack_name"] == "我的汇编"
    add = at.button(key="ex_add_top")
    assert add.label == "加入当前汇编“我的汇编”"
    ok(add.click().run())
    assert at.header[0].value == "学习材料汇编" and at.session_state["pack_name"] == "我的汇编"
    with open_kb(app_kb) as other:
        mine = other.open_pack("我的汇编").pack
    assert [s.title for s in mine.sections] == ["高质量发展"] and mine.title == "我的汇编"  # its own title kept
    assert [i.passage_id for i in mine.sections[0].items] == [h.passage.id for h in ex.hits]
    # the first choice again: a new pack, under the next free name
    ok(at.switch_page("pages_app/excerpts_page.py").run())
    ok(at.button(key="ex_pack_top").click().run())
    assert at.session_state["pack_name"] == "高质量发展论述摘编（2）"
    with open_kb(app_kb) as other:
        assert other.pack_size(other.open_pack("高质量发展论述摘编（2）").pack) == len(ex.hits)
        assert other.pack_size(other.open_pack("高质量发展论述摘编").pack) == 0


def test_excerpts_page_from_a_shared_link(lib, app_kb, monkeypatch):
    at = ok(_app(app_kb, monkeypatch, "excerpts_page.py", {"theme": "高质量发展", "issuer": "习近平", "k": "8"}))
    assert at.text_input(key="ex_q").value == "高质量发展" and at.text_input(key="ex_issuer").value == "习近平"
    titles = [h.value for h in at.get("html") if h.value.startswith('<div class="yw-title">')]
    ex = lib.excerpts("高质量发展", k=8, filters=Filters(issuers=["习近平"]))
    assert len(titles) == len(ex.groups) >= 2
    found = [re.search(r"(\d{4}-\d\d-\d\d)", t).group(1) for t in titles]
    assert found == [g.document.date for g in ex.groups] == sorted(found)
