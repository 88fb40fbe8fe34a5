"""Decoding, format repair and the matching form (ingest.normalise)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yuanwen.ingest.normalise import clean_text, clean_text_tracking, decode_bytes, fold, fold_with_map
from yuanwen.errors import ReadError

TEXT = (
    "关于印发《安全生产治本攻坚三年行动方案（2024—2026年）》的通知\n"
    "安委〔2024〕2号\n"
    "第一条　为了加强安全生产工作，防止和减少生产安全事故，制定本法。\n"
    "组织传达学习贯彻**次，××同志参加。“两个至上”！"
)
P = Path("sample.txt")


# ---------------------------------------------------------------------------------------------
# decode_bytes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("utf-8-sig"), "utf-8-sig"),
        (TEXT.encode("gb18030"), "gb18030"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("utf-16"), "utf-16-le"),  # with BOM
        (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),  # no BOM
        (TEXT.encode("utf-16-be"), "utf-16-be"),  # no BOM
        (TEXT.encode("utf-32"), "utf-32-le"),
    ],
)
def test_every_encoding_decodes_to_the_same_text(data, encoding):
    text, enc = decode_bytes(data, P)
    assert text == TEXT
    assert enc == encoding


def test_gb2312_is_read_as_gb18030():
    text = TEXT.replace("—", "-")  # GB2312 has no U+2014
    assert decode_bytes(text.encode("gb2312"), P) == (text, "gb18030")


def test_gb18030_only_characters_survive():
    text = "㐀〇𠀀是扩展汉字，另有“𠮷”字。" * 20
    got, enc = decode_bytes(text.encode("gb18030"), P)
    assert (got, enc) == (text, "gb18030")


def test_long_gbk_file_is_detected():
    text = (TEXT + "\n") * 300
    got, enc = decode_bytes(text.encode("gbk"), P)
    assert got == text and enc == "gb18030"


def test_big5_text_is_not_read_as_gb():
    text = "中華人民共和國憲法是國家的根本法，具有最高的法律效力。全國各族人民、一切國家機關和武裝力量。" * 5
    got, enc = decode_bytes(text.encode("big5"), P)
    assert got == text
    assert enc.startswith("big5") or enc == "cp950"


def test_empty_file():
    with pytest.raises(ReadError, match="文件为空"):
        decode_bytes(b"", P)
    with pytest.raises(ReadError, match="文件为空"):
        decode_bytes(b"\xef\xbb\xbf", P)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00",
        bytes(range(256)) * 8,
        os.urandom(4096),
        b"PK\x03\x04\x14\x00\x06\x00" + os.urandom(500),
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes([1, 2, 3, 4, 5, 6, 7, 8]) * 20,
    ],
)
def test_binary_content_is_refused(data):
    with pytest.raises(ReadError, match="二进制") as err:
        decode_bytes(data, P)
    assert err.value.path == P


def test_read_error_names_the_file():
    with pytest.raises(ReadError) as err:
        decode_bytes(b"", Path("/tmp/x/报告.txt"))
    assert "报告.txt" in str(err.value)


# ---------------------------------------------------------------------------------------------
# clean_text
# ---------------------------------------------------------------------------------------------
def test_clean_text_repairs_format_only():
    raw = "\ufeff标题  \r\n\r\n\r\n\r\n第一\u200b段\u200d落，〔2024〕《法》　　\r第二段\u3000\n**次××\n\n\n"
    assert clean_text(raw) == "标题\n\n第一段落，〔2024〕《法》\n第二段\n**次××"


def test_clean_text_keeps_inner_ideographic_space_and_indent():
    assert clean_text("　　第一条　总则") == "　　第一条　总则"
    assert clean_text("a\n\nb") == "a\n\nb"
    assert clean_text("a\n\n\n\nb") == "a\n\nb"
    assert clean_text("a\u2028b") == "a\nb"


def test_clean_text_is_idempotent():
    raw = " x \r\n\n\n\ny\u200b\t\n"
    assert clean_text(clean_text(raw)) == clean_text(raw)


def test_clean_text_tracking_moves_offsets():
    raw = "甲乙  \r\n\r\n\r\n\r\n丙\u200b丁"
    clean, moved = clean_text_tracking(raw, [0, 2, raw.index("丙"), raw.index("丁"), len(raw)])
    assert clean == clean_text(raw) == "甲乙\n\n丙丁"
    assert moved == [0, 2, clean.index("丙"), clean.index("丁"), len(clean)]


@given(st.text(alphabet=st.sampled_from(list("甲乙 \u3000\t\r\n\u200b。x")), max_size=40))
@settings(max_examples=200, deadline=None)
def test_clean_text_tracking_agrees_with_clean_text(raw):
    offsets = list(range(len(raw) + 1))
    clean, moved = clean_text_tracking(raw, offsets)
    assert clean == clean_text(raw)
    assert moved == sorted(moved)
    assert all(0 <= o <= len(clean) for o in moved)
    # A kept character stays in front of its own (moved) offset.
    for i, ch in enumerate(raw):
        if moved[i + 1] > moved[i]:
            assert clean[moved[i]] == ("\n" if ch == "\r" else ch)


# ---------------------------------------------------------------------------------------------
# fold / fold_with_map
# ---------------------------------------------------------------------------------------------
def test_fold_examples():
    assert fold("ＡＢＣ１２３，　Ｈｅｌｌｏ World") == "abc123,helloworld"
    assert fold("第一条\u3000为了\n加强") == "第一条为了加强"
    assert fold("国发〔2018〕5号。“两个”《法》、") == "国发〔2018〕5号。“两个”《法》、"
    assert fold("组织**次，××") == "组织**次,××"
    assert fold("a\u200bb") == "ab"


def test_fold_with_map_expansions_point_to_their_source():
    folded, index = fold_with_map("第 ㈠ 条½")
    assert folded == "第(一)条1⁄2"
    assert index == [0, 2, 2, 2, 4, 5, 5, 5]


def test_fold_with_map_maps_a_match_back_to_original_offsets():
    original = "各地区　要认真贯彻落实《ＸＸ法》，\n确保取得实效。"
    folded, index = fold_with_map(original)
    needle = fold("贯彻落实《XX法》,确保")
    i = folded.index(needle)
    start, end = index[i], index[i + len(needle) - 1] + 1
    assert original[start:end] == "贯彻落实《ＸＸ法》，\n确保"


TEXTS = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(list("　 \t\n，。、；：？！（）〔〕《》“”ＡＺａｚ０９㈠①½…ｶﾞ\u200b\ufeff")),
    ),
    max_size=60,
)


@given(TEXTS)
@settings(max_examples=400, deadline=None)
def test_fold_properties(text):
    folded, index = fold_with_map(text)
    assert folded == fold(text)
    assert len(index) == len(folded)
    assert index == sorted(index)
    for i, ch in enumerate(folded):
        assert ch in fold(text[index[i]])  # each folded char derives from its source char
    assert fold(folded) == folded  # idempotent
    assert not any(c.isspace() for c in folded)
    assert not any("A" <= c <= "Z" for c in folded)


def test_fold_is_fast_enough():
    import time

    text = (TEXT + "　\n") * 2000  # ~170k characters
    t = time.perf_counter()
    for _ in range(5):
        fold_with_map(text)
    assert time.perf_counter() - t < 2.0
