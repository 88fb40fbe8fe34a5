"""PDF reading (pypdf, text layer) and the repair of extracted PDF text."""

from __future__ import annotations

import re
import time
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yuanwen.ingest.readers.pdf import read_pdf, repair_pdf_pages
from yuanwen.errors import ReadError

POLICY = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "policy"
PAIR = "2024-03-24-关于举一反三抓好国务院安委会明查暗访发现问题整改工作的通知"
BIG = "2024-01-23-国务院安委会办公室关于印发《安全生产治本攻坚三年行动方案（2024—2026年）》子方案的通知.pdf"
SHANDONG = "2024-01-21-山东省安委会消安委关于切实做好消防安全防控工作的紧急通知.pdf"
TAIAN = "2024-03-08-泰安旅游经济开发区关于深入学习宣传和贯彻实施重大事故隐患判定标准的通知.pdf"


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


# ---------------------------------------------------------------------------------------------
# PDFs made here (no shared corpus needed)
# ---------------------------------------------------------------------------------------------
def _pdf(pages: list[bytes | None], *, user_password: str | None = None) -> bytes:
    """A PDF with one page per content stream (``None``: a blank page), Helvetica as /F1."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    w = PdfWriter()
    for content in pages:
        page = w.add_blank_page(width=595, height=842)
        if content is None:
            continue
        font = DictionaryObject({
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        })
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): w._add_object(font)})})
        stream = DecodedStreamObject()
        stream.set_data(content)
        if len(content) > 100_000:
            stream = stream.flate_encode()
        page[NameObject("/Contents")] = w._add_object(stream)
    if user_password is not None:
        w.encrypt(user_password=user_password, owner_password="owner-secret")
    buf = BytesIO()
    w.write(buf)
    return buf.getvalue()


def _text_page(*lines: str) -> bytes:
    ops = [b"BT /F1 12 Tf 72 760 Td 16 TL"]
    ops += [b"(" + line.encode("latin-1") + b") Tj T*" for line in lines]
    ops.append(b"ET")
    return b"\n".join(ops)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# ---------------------------------------------------------------------------------------------
# repair_pdf_pages on strings
# ---------------------------------------------------------------------------------------------
NOTICE_PAGES = [
    "— 1 —\n"
    "关于做好安全生产工作的通知\n"
    "各单位：\n"
    "为认真贯彻落实安全生产工作部署，切实做好当前各项工作，现\n"
    "将有关事项通知如下。\n"
    "一、提高认识\n"
    "各单位要充分认识安全生产工作的重要性，切实加强组织领导，\n"
    "确保各项措施落到实处。各 单 位 要 在 ２０２４ 年 ３ 月底前\n"
    "报送工作总结，并抄送 Microsoft Office 负责同志。请各单位\n",
    "- 2 -\n"
    "认真执行，不得延误。\n"
    "二、加强检查\n"
    "各单位要定期开展安全检查，发现问题及时整改，确保不留死角，\n"
    "坚决防止重特大事故发生。\n"
    "（一）定期检查。\n"
    "1. 每月检查一次。\n"
    "2. 每季度总结一次。\n"
    "某某市安全生产委员会办公室\n"
    "2024年3月8日\n"
    "第 2 页\n",
]


@pytest.fixture(scope="module")
def notice():
    return repair_pdf_pages(NOTICE_PAGES)


def test_lines_inside_a_sentence_are_joined(notice):
    text, _ = notice
    assert "切实做好当前各项工作，现将有关事项通知如下。" in text
    assert "切实加强组织领导，确保各项措施落到实处。" in text
    assert "确保不留死角，坚决防止重特大事故发生。" in text


def test_headings_and_short_lines_stay_on_their_own_line(notice):
    lines = notice[0].split("\n")
    for line in ["关于做好安全生产工作的通知", "各单位：", "一、提高认识", "二、加强检查",
                 "（一）定期检查。", "1. 每月检查一次。", "2. 每季度总结一次。",
                 "某某市安全生产委员会办公室", "2024年3月8日"]:
        assert line in lines, line
    assert "\n\n" not in notice[0]


def test_spaces_between_chinese_go_and_latin_spaces_stay(notice):
    text, _ = notice
    assert "各单位要在2024年3月底前报送工作总结" in text
    assert "Microsoft Office" in text  # a space between Latin words stays


def test_full_width_digits_become_ascii(notice):
    text, _ = notice
    assert not re.search("[０-９]", text)
    assert "2024年3月底前" in text


def test_page_number_lines_are_removed(notice):
    text, _ = notice
    for furniture in ("— 1 —", "- 2 -", "第 2 页", "第2页"):
        assert furniture not in text


def test_sentence_over_a_page_break_is_joined_and_offsets_are_right(notice):
    text, offsets = notice
    assert len(offsets) == 2 and offsets[0] == 0
    assert "请各单位认真执行，不得延误。" in text
    assert text[offsets[1]:].startswith("认真执行，不得延误。\n二、加强检查")
    assert text[: offsets[1]].endswith("请各单位")


def test_paragraph_end_at_a_page_break_keeps_the_break():
    text, offsets = repair_pdf_pages([
        "各单位要切实加强组织领导，认真研究制定本地区实施方案，\n确保各项工作落到实处。\n",
        "二、加强检查\n各单位要定期开展检查。\n",
    ])
    assert text == "各单位要切实加强组织领导，认真研究制定本地区实施方案，确保各项工作落到实处。\n" \
                   "二、加强检查\n各单位要定期开展检查。"
    assert text[offsets[1]:].startswith("二、加强检查")
    assert text[offsets[1] - 1] == "\n"


@pytest.mark.parametrize("line", ["— 3 —", "- 3 -", "－3－", "—３—", "第 3 页", "第3页 共5页", "3"])
def test_page_number_forms(line):
    bodies = [f"安全生产是民生大事，第{n}项工作一丝一毫不能放松，要以对人民极端负责的精神抓好。"
              for n in "一二三四"]
    pages = [f"{b}\n{line}" if i == 2 else f"{b}\n{i + 1}" for i, b in enumerate(bodies)]
    text, offsets = repair_pdf_pages(pages)
    assert len(offsets) == 4
    assert _squash(text) == _squash("".join(bodies))
    for i, b in enumerate(bodies):
        assert text[offsets[i]:].startswith(b)


def test_bare_numbers_in_the_body_are_kept():
    text, _ = repair_pdf_pages(["全年共检查企业\n128\n家，整改隐患若干项，取得了明显成效。\n"])
    assert "128" in text


def test_running_header_and_footer_are_removed():
    pages = [
        f"某某省人民政府公报\n第{i}条 本条规定的事项，由有关部门负责实施。\n2024年第3期 {i}"
        for i in range(1, 6)
    ]
    text, offsets = repair_pdf_pages(pages)
    assert "公报" not in text and "第3期" not in text
    assert text.count("本条规定的事项") == 5
    for i, start in enumerate(offsets, start=1):
        assert text[start:].startswith(f"第{i}条")


def test_verbatim_marks_are_kept():
    line = "依据《中华人民共和国安全生产法》（国发〔2024〕**号），××公司“三合一”场所必须整改。"
    text, _ = repair_pdf_pages([line])
    assert text == line


def test_ascii_punctuation_of_chinese_fonts_is_mapped_back():
    page = ("各省、自治区、直辖市安全生产委员会,国务院安委会各成员单位:\n"
            "  为认真贯彻落实全体会议精神,推动«安全生产治本攻坚三年行动方案\n"
            "(２０２４－２０２６年)»落实落细落地,现印发给你们,请结合实际抓好落实.\n")
    text, _ = repair_pdf_pages([page])
    assert "委员会，国务院安委会各成员单位：" in text
    assert "推动《安全生产治本攻坚三年行动方案（2024－2026年）》落实落细落地，" in text
    assert text.endswith("请结合实际抓好落实。")


def test_indented_lines_start_paragraphs():
    """Layout-mode text: a first-line indent is the paragraph cue, even after a full line."""
    pages = ["  一、快速抓好问题整改。对国务院安委会检查组发现的问题隐患，要\n"
             "加强跟踪督办，确保各项问题隐患尽快完成整改。对构成处罚项的问\n"
             "题，要严格按照法律法规规定处罚、处理到位，确保整改闭环到位。\n"
             "  二、立即开展全覆盖自查。自即日起至4月8日，要督促指导危化、\n"
             "矿山、消防、燃气领域生产经营单位逐一开展全覆盖自查自改。\n"]
    text, _ = repair_pdf_pages(pages)
    lines = text.split("\n")
    assert len(lines) == 2
    assert lines[0].endswith("确保各项问题隐患尽快完成整改。对构成处罚项的问题，要严格按照法律法规规定处罚、处理到位，确保整改闭环到位。")
    assert lines[1].startswith("二、立即开展全覆盖自查。")


def test_empty_pages_get_offsets_too():
    text, offsets = repair_pdf_pages(["", "第一页有文字。", "", "最后一页。", ""])
    assert text == "第一页有文字。\n最后一页。"
    assert offsets == [0, 0, 8, 8, len(text)]
    assert repair_pdf_pages([]) == ("", [])


_HAN_TEXT = st.text(alphabet="安全生产责任制度落实检查整改工作部署", min_size=1, max_size=30)
_LINE = st.builds(lambda a, p: a + p, _HAN_TEXT, st.sampled_from(["", "，", "。", "、", " "]))


@st.composite
def _pages(draw):
    # Distinct lines: a line repeated at the edges of many pages would be a running header.
    lines = draw(st.lists(_LINE, max_size=30, unique_by=lambda s: _squash(s)))
    sizes = draw(st.lists(st.integers(0, 8), max_size=6))
    pages, k = [], 0
    for n in sizes:
        pages.append("\n".join(lines[k: k + n]))
        k += n
    return pages


@settings(max_examples=150, deadline=None)
@given(_pages())
def test_repair_keeps_every_character_and_page(pages):
    text, offsets = repair_pdf_pages(pages)
    assert len(offsets) == len(pages)
    assert offsets == sorted(offsets) and all(0 <= o <= len(text) for o in offsets)
    assert _squash(text) == _squash("".join(pages))
    bounds = offsets + [len(text)]
    for i, page in enumerate(pages):
        assert _squash(text[bounds[i]: bounds[i + 1]]) == _squash(page)
    assert text == text.strip() and "\n\n" not in text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=200), max_size=6))
def test_repair_never_fails_and_offsets_stay_in_bounds(pages):
    text, offsets = repair_pdf_pages(pages)
    assert len(offsets) == len(pages)
    assert offsets == sorted(offsets) and all(0 <= o <= len(text) for o in offsets)


@pytest.mark.parametrize(("raw", "iso"), [
    ("D:20240122082428+00'24'", "2024-01-22T08:24:28+00:24"),
    ("(D:20240129143855+08'00')", "2024-01-29T14:38:55+08:00"),
    ("D:20240315", "2024-03-15T00:00:00"),
    ("D:20240101120000Z", "2024-01-01T12:00:00+00:00"),
    ("D:20241301", None),
    ("garbage", None),
])
def test_pdf_dates(raw, iso):
    from yuanwen.ingest.readers.pdf import _pdf_date

    assert _pdf_date(raw) == iso


# ---------------------------------------------------------------------------------------------
# read_pdf on PDFs made here
# ---------------------------------------------------------------------------------------------
def test_reads_a_simple_pdf(tmp_path):
    p = _write(tmp_path, "a.pdf", _pdf([_text_page("Hello world"), _text_page("Second page")]))
    rr = read_pdf(p)
    assert rr.format == "pdf"
    assert rr.text == "Hello world\nSecond page"
    assert rr.pages == [0, rr.text.index("Second")]
    assert "title" not in rr.meta


def test_two_columns_are_not_interleaved(tmp_path):
    """Layout mode would interleave columns line by line; the reader falls back to plain mode."""
    ops = [b"BT /F1 11 Tf"]
    for x, word in ((72, b"Left"), (330, b"Right")):
        for k in range(8):
            ops.append(b"1 0 0 1 %d %d Tm (%s column line %d) Tj" % (x, 760 - 14 * k, word, k))
    ops.append(b"ET")
    rr = read_pdf(_write(tmp_path, "columns.pdf", _pdf([b"\n".join(ops)])))
    assert "Left column line 0" in rr.text and "Right column line 7" in rr.text
    assert rr.text.index("Left column line 7") < rr.text.index("Right column line 0")


def test_encrypted_pdf_with_a_password_is_refused(tmp_path):
    p = _write(tmp_path, "locked.pdf", _pdf([_text_page("Secret text")], user_password="secret"))
    with pytest.raises(ReadError) as exc:
        read_pdf(p)
    assert "加密" in exc.value.reason and "密码" in exc.value.reason
    assert exc.value.path == p


def test_encrypted_pdf_with_an_empty_password_reads(tmp_path):
    p = _write(tmp_path, "open.pdf", _pdf([_text_page("Readable text")], user_password=""))
    assert read_pdf(p).text == "Readable text"


def test_blank_pages_have_no_text_layer(tmp_path):
    p = _write(tmp_path, "scan.pdf", _pdf([None, None]))
    with pytest.raises(ReadError) as exc:
        read_pdf(p)
    assert "文字层" in exc.value.reason and "OCR" in exc.value.reason


@pytest.mark.parametrize("data", [
    b"",
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
    b"%PDF-1.7\n1 0 obj << /Type /Catalog",
    b"%PDF-1.4\n" + bytes(range(256)) * 40,
])
def test_garbage_is_a_read_error(tmp_path, data):
    p = _write(tmp_path, "broken.pdf", data)
    with pytest.raises(ReadError):
        read_pdf(p)


def test_missing_file_is_a_read_error(tmp_path):
    with pytest.raises(ReadError) as exc:
        read_pdf(tmp_path / "nope.pdf")
    assert "不存在" in exc.value.reason


def test_too_many_pages(tmp_path):
    p = _write(tmp_path, "long.pdf", _pdf([_text_page(f"Text {i}") for i in range(3)]))
    with pytest.raises(ReadError) as exc:
        read_pdf(p, max_pages=2)
    assert "页数" in exc.value.reason
    assert read_pdf(p, max_pages=3).pages[2] > 0


def test_decompression_bomb_page_is_skipped_in_bounded_time(tmp_path):
    bomb = _text_page("Bomb") + b"\n%" + b" " * 30_000_000  # 30 MB inflated, ~30 KB on disk
    p = _write(tmp_path, "bomb.pdf", _pdf([bomb, _text_page("Good page")]))
    assert p.stat().st_size < 200_000
    t = time.monotonic()
    rr = read_pdf(p)
    assert time.monotonic() - t < 10
    assert rr.text == "Good page"
    assert rr.meta["skipped_pages"] == "1"
    assert rr.pages == [0, 0]
    # every page a bomb: a ReadError, not a hang
    p2 = _write(tmp_path, "bombs.pdf", _pdf([bomb, bomb]))
    with pytest.raises(ReadError):
        read_pdf(p2)


def test_page_with_absurd_amount_of_text_is_skipped(tmp_path):
    huge = b"BT /F1 1 Tf 0 0 Td " + b"(" + b"x" * 200_000 + b") Tj ET"
    p = _write(tmp_path, "huge.pdf", _pdf([_text_page("Normal page"), huge]))
    rr = read_pdf(p)
    assert rr.text == "Normal page" and rr.meta["skipped_pages"] == "2"


# ---------------------------------------------------------------------------------------------
# read_pdf on the real red-header PDFs of the shared corpus
# ---------------------------------------------------------------------------------------------
def _need(name: str) -> Path:
    p = POLICY / name
    if not p.exists():
        pytest.skip(f"shared corpus not found: {p}")
    return p


@pytest.fixture(scope="module")
def real():
    """Each real PDF read once (the 224-page one takes a few seconds)."""
    if not POLICY.is_dir():
        pytest.skip(f"shared corpus not found: {POLICY}")
    out = {}
    for p in sorted(POLICY.glob("*.pdf")):
        t = time.monotonic()
        out[p.name] = (read_pdf(p), time.monotonic() - t)
    return out


def test_real_pdfs_page_counts_and_offsets(real):
    counts = {name: len(rr.pages) for name, (rr, _) in real.items()}
    assert counts[BIG] == 224
    assert counts[f"{PAIR}.pdf"] == 7
    assert counts[SHANDONG] == 4
    assert counts[TAIAN] == 5
    for name, (rr, _) in real.items():
        assert rr.pages[0] == 0
        assert all(a <= b for a, b in zip(rr.pages, rr.pages[1:])), name
        assert rr.pages[-1] < len(rr.text)
        assert "skipped_pages" not in rr.meta


def test_real_pdfs_have_no_page_number_lines_or_cjk_spaces(real):
    for name, (rr, _) in real.items():
        assert not re.search(r"^\s*[—－-]\s*[0-9０-９]+\s*[—－-]\s*$", rr.text, re.M), name
        assert not re.search("[\u4e00-\u9fff] +[\u4e00-\u9fff]", rr.text), name
        assert not re.search("[０-９]", rr.text), name
        assert "\n\n" not in rr.text


def test_real_page_offsets_point_at_the_page_text(real):
    rr, _ = real[SHANDONG]
    # page 2 starts mid-sentence: "正值岁末|年初，省人大、政协“两会”正在召开"
    assert rr.text[rr.pages[1]:].startswith("年初，省人大、政协“两会”正在召开")
    assert rr.text[: rr.pages[1]].endswith("正值岁末")
    rr, _ = real[BIG]
    assert rr.text[rr.pages[2]:].startswith("附件\n")
    assert rr.text[rr.pages[4]:].startswith("教育系统安全生产治本攻坚\n三年行动方案（2024—2026年）\n为认真")
    assert rr.text[rr.pages[223]:].startswith("（信息公开形式：依申请公开）")


def test_big_pdf_reads_whole(real):
    """The 224-page PDF. (Its read time is measured in the benchmarks, not asserted here.)"""
    rr, _ = real[BIG]
    assert len(rr.text) > 100_000
    # pages 1-2 and 224 map Chinese punctuation to ASCII: mapped back
    assert "印发《安全生产治本攻坚三年行动方案" in rr.text
    assert "请结合实际抓好落实。" in rr.text
    assert rr.text.count("一、工作目标") == 31  # one per sub-plan, each on its own line
    assert len(re.findall("^一、工作目标$", rr.text, re.M)) == 31


def test_real_pdf_metadata(real):
    rr, _ = real[SHANDONG]
    assert rr.meta["created"] == "2024-01-22T08:24:28+00:24"
    assert "pdf_author" not in rr.meta  # "user" is a placeholder
    rr, _ = real[TAIAN]
    assert rr.meta["pdf_title"] == "泰安旅游经济开发区财政局文件"  # wrong, so only a hint
    assert "title" not in rr.meta
    rr, _ = real[BIG]
    assert rr.meta.get("created") == "2024-01-29T14:38:55+08:00"
    assert "pdf_title" not in rr.meta and "pdf_author" not in rr.meta  # "标题", "作者"


def _md_body(md: str) -> str:
    body = md.split("---", 2)[2]
    body = re.sub(r"<[^>]+>", "", body).replace("&emsp;", "")
    body = re.sub(r"^\*\[.*$", "", body, flags=re.M)
    body = re.sub(r"^#+ ?", "", body, flags=re.M).replace("**", "")
    return body.replace("\n---", "")


def test_pdf_agrees_with_its_markdown_twin(real):
    from rapidfuzz import fuzz

    md = _md_body(_need(f"{PAIR}.md").read_text(encoding="utf-8"))
    rr, _ = real[f"{PAIR}.pdf"]
    main = rr.text[: rr.pages[3]]  # the .md holds the notice, not its attachment (pages 4-7)
    # measured: 100.0 (the texts are the same up to whitespace)
    assert fuzz.ratio(_squash(md), _squash(main)) >= 99
    for sentence in [
        "3月17日至21日，国务院安委会明查暗访检查组第14组对我市开展了明查暗访。",
        "为认真贯彻落实检查组领导要求，确保全市安全生产形势持续稳定，现就有关事宜通知如下。",
        "对构成处罚项的问题，要严格按照法律法规规定处罚、处理到位。",
        "自即日起至4月8日，要督促指导危化、矿山、消防、燃气领域生产经营单位对照国务院安委会"
        "明查暗访检查组发现共性问题清单（见附件）逐一开展全覆盖自查自改。",
        "要研究解决好居民小区电动车充电棚建设、人员密集场所窗户设置影响逃生和灭火救援的障碍物"
        "（防盗窗）等问题，进一步夯实安全生产基础。",
    ]:
        assert sentence in rr.text, sentence
    # Paragraph breaks: every break in the PDF text is one in the .md, but the wrapped title
    # (measured: 10 of 11; the .md splits run-in headings and has one stray break of its own).
    def breaks(text: str) -> set[int]:
        pos, n = set(), 0
        for line in text.splitlines():
            n += len(_squash(line))
            pos.add(n)
        return pos

    md_breaks, pdf_breaks = breaks(md), breaks(main)
    assert len(pdf_breaks - md_breaks) <= 1
    assert len(pdf_breaks & md_breaks) >= 10
    lines = main.split("\n")
    assert "各县市区、功能区安委会办公室，市安委会有关成员单位：" in lines
    assert "中共泰安市委泰安市人民政府安全生产委员会办公室" in lines
    assert "2024年3月24日" in lines
    attachment = rr.text[rr.pages[3]:]
    assert attachment.startswith("附件\n国务院安委会明查暗访发现共性问题清单\n一、消防领域\n")
    assert "\n3．在人员密集场所的窗户设置影响逃生和灭火救援的障碍物（防盗窗）。\n" in attachment


def test_truncated_real_pdf_is_a_read_error(tmp_path):
    src = _need(f"{PAIR}.pdf")
    data = src.read_bytes()
    p = _write(tmp_path, "half.pdf", data[: len(data) // 2])
    with pytest.raises(ReadError) as exc:
        read_pdf(p)
    assert "损坏" in exc.value.reason or "不完整" in exc.value.reason
