"""Vocabularies kept as data (yuanwen/data/): each loads, and means what it says."""

from __future__ import annotations

import pytest

from search.retrieve import expand_query
from yuanwen.vocab import meetings


def test_meetings_table_lists_every_congress_once():
    table = meetings()
    shorts = [m.short for m in table]
    assert len(shorts) == len(set(shorts)) >= 20
    by_short = {m.short: m for m in table}
    assert by_short["十九大"].full == "第十九次全国代表大会" and by_short["十九大"].stands_alone
    assert by_short["二十大"].full == "第二十次全国代表大会"
    assert not by_short["三大"].stands_alone and not by_short["十大"].stands_alone


@pytest.mark.parametrize("query", ["三大攻坚战", "五大发展理念", "四大考验", "十大工程", "党的三大作风",
                                   "三大法宝", "扩大内需，大力推进", "二十九大类"])
def test_the_n_major_things_are_never_taken_for_a_congress(query):
    """The old rule turned 三大攻坚战 into 第三次全国代表大会 (and could boost its title)."""
    assert "全国代表大会" not in expand_query(query)


@pytest.mark.parametrize("query,full", [
    ("十九大对主要矛盾的判断", "第十九次全国代表大会"), ("二十大报告", "第二十次全国代表大会"),
    ("党的十八大以来", "第十八次全国代表大会"), ("党的三大召开的时间", "第三次全国代表大会"),
    ("党的七大", "第七次全国代表大会"), ("二十一大", "第二十一次全国代表大会"),
    ("十九届四中全会精神", "第十九届中央委员会第四次全体会议")])
def test_congress_short_names_get_their_full_names(query, full):
    assert full in expand_query(query)
    assert expand_query(query).count("全国代表大会") <= 1 or "届" in query
