"""Chinese writing conventions (yuanwen/conventions.py): defined once, used everywhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from yuanwen.conventions import (
    ARTICLE_RE, CN_SMALL, DATE_RE, DOC_NUMBER_RE, ENUM_IS_PATTERN, ENUM_ORDINAL_PATTERN, HAN,
    HAN_SUPPLEMENTARY, cn_date, cn_digits_int, cn_int, cn_numeral, find_numeric_date, is_masked,
    iso_date, parse_date,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"


def test_conventions_import_nothing_from_ingest_or_search():
    tree = ast.parse((ROOT / "yuanwen" / "conventions.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in ("ingest", "search", "yuanwen")}


@pytest.mark.parametrize("module", ["ingest/metadata.py", "ingest/segment.py", *sorted(
    p.relative_to(ROOT).as_posix() for p in (ROOT / "ingest" / "readers").glob("*.py")),
    "search/retrieve.py", "search/cite.py", "search/export.py", "yuanwen/text.py"])
def test_no_module_writes_its_own_copy(module):
    """Numerals, CJK ranges and the 文号 brackets are spelled out in conventions.py only."""
    source = (ROOT / module).read_text(encoding="utf-8")
    assert "一二三四五六七八九" not in source
    assert "\\u4e00-\\u9fff" not in source and "\u4e00-\u9fff" not in source
    assert "〔［" not in source and "〔|" not in source


@pytest.mark.parametrize("s,n", [("一", 1), ("九", 9), ("十", 10), ("十六", 16), ("二十", 20), ("九十九", 99),
                                 ("两", 2), ("零", 0), ("百", None), ("十十", None), ("一二", None), ("", None)])
def test_chinese_numerals(s, n):
    assert cn_int(s) == n


def test_numerals_written_digit_by_digit_and_formatted():
    assert cn_digits_int("二〇二二") == 2022 and cn_digits_int("二○一八") == 2018 and cn_digits_int("二零二四") == 2024
    assert cn_digits_int("二十") is None and cn_digits_int("") is None
    assert [cn_numeral(i) for i in (1, 3, 10, 11)] == ["一", "三", "十", "11"]
    assert all(cn_int(cn_numeral(i)) == i for i in range(1, 11)) and CN_SMALL[-1] == "十"


@pytest.mark.parametrize("text,iso", [
    ("二〇二二年三月一日", "2022-03-01"), ("2022年3月1日", "2022-03-01"), ("2022-03-01", "2022-03-01"),
    ("二〇二〇年一月三十一日", "2020-01-31"), ("２０１８年１２月７日", "2018-12-07"), ("2018年12月", "2018-12"),
    ("2018", "2018"), ("2018/12/7", "2018-12-07"), ("20181207", "2018-12-07"),
    ("2018年2月30日", None), ("2022-13-01", None), ("20**年3月1日", None), ("去年", None), (None, None)])
def test_dates_are_parsed_once_and_only_real_ones(text, iso):
    assert parse_date(text) == iso


def test_numeric_dates_in_values_and_iso_parts():
    assert find_numeric_date("2018年12月07日") == "2018-12-07"
    assert find_numeric_date("发布日期：2018-12-27 10:30") == "2018-12-27"
    assert find_numeric_date("2018年2月30日") is None and find_numeric_date("无") is None
    assert iso_date("2024", "2", "29") == "2024-02-29" and iso_date("2023", "2", "29") is None
    assert iso_date("二〇二二", "十", "十六") == "2022-10-16" and iso_date("0999") is None
    assert [cn_date(x) for x in ("2018-12-07", "2018-12", "2018", None)] == ["2018年12月7日", "2018年12月", "2018年", ""]


def test_a_written_date_never_touches_a_masked_digit():
    assert DATE_RE.search("2018年12月7日").group("y") == "2018"
    assert not DATE_RE.search("*2018年12月7日") and DATE_RE.search("二〇二二年十月十六日")


@pytest.mark.parametrize("text,num", [
    ("国办发〔2022〕6号", "国办发〔2022〕6号"), ("*党办发〔2022〕*号", "*党办发〔2022〕*号"),
    ("安委办[2024]1号", "安委办[2024]1号"), ("鲁安发（2024）1号", "鲁安发（2024）1号"),
    ("国办发 〔2018〕 123 号", "国办发 〔2018〕 123 号"), ("应急〔2019〕第5号", "应急〔2019〕第5号")])
def test_doc_numbers(text, num):
    assert DOC_NUMBER_RE.search(text).group() == num


def test_masked_doc_numbers():
    assert is_masked("*党办发〔2022〕*号") and is_masked("××发〔2022〕1号") and not is_masked("国办发〔2022〕6号")


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared corpus not found at {SHARED}")
def test_the_doc_number_pattern_finds_every_doc_number_the_old_html_pattern_found():
    """The old ingest/read.py had a narrower 文号 pattern of its own; the one kept covers all it found."""
    old = re.compile(r"[\u4e00-\u9fff]{1,15}[〔［\[（(﹝【]\d{4}[〕］\]）)﹞】]\d{1,5}号")
    found = 0
    for path in sorted(SHARED.rglob("*")):
        if path.suffix not in (".txt", ".md", ".html"):
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        spans = [m.span() for m in DOC_NUMBER_RE.finditer(text)]
        for m in old.finditer(text):
            found += 1
            assert any(s <= m.start() and m.end() <= e for s, e in spans), (path.name, m.group())
    assert found >= 50


@pytest.mark.parametrize("line,ok", [("一是加强领导", True), ("十二是完善制度", True), ("是否可行", False),
                                     ("一是否", False)])
def test_enumerated_points(line, ok):
    assert bool(re.match(ENUM_IS_PATTERN, line)) is ok


def test_ordinals_and_articles():
    assert re.match(ENUM_ORDINAL_PATTERN, "第一，") and re.match(ENUM_ORDINAL_PATTERN, "第三、")
    assert not re.match(ENUM_ORDINAL_PATTERN, "第一章")
    assert ARTICLE_RE.match("第一百零二条 规定").group() == "第一百零二条"
    assert ARTICLE_RE.match("第12条").group() == "第12条" and not ARTICLE_RE.match("第一章")


def test_han_ranges():
    assert re.fullmatch(f"[{HAN}]+", "原文㐀豈") and not re.search(f"[{HAN}]", "abc，。１")
    assert re.fullmatch(f"[{HAN_SUPPLEMENTARY}]", "𠀀")
