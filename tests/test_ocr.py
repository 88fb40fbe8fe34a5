"""Scanned pages and images: layout of recognised lines, readers asking for OCR, the pipeline
recognising, caching and resuming, bounds against hostile images.

The tests here need no OCR model: recognition is replaced by a fake that "reads" the text
drawn into the test images from a side table (``FAKE_TEXT``). The real engine has its own
tests (tests/test_ocr_real.py, marked slow).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from yuanwen.config import Config
from yuanwen.errors import OcrNeeded, ReadError
from yuanwen.models import OcrLine, OcrPage

# A page as the engine reports it (A4 at ~170 dpi: 1400 x 1990 px, characters ~36 px).
EM = 36.0
LEFT = 160.0


def _line(text: str, indent_em: float = 0.0, row: int = 0, score: float = 0.99,
          x0: float | None = None) -> OcrLine:
    x = LEFT + indent_em * EM if x0 is None else x0
    width = sum(0.5 if c.isascii() else 1.0 for c in text) * EM
    y = 200 + row * 60
    return OcrLine(text, (x, y, x + width, y + 40), score)


def _page(n: int, lines: list[OcrLine]) -> OcrPage:
    return OcrPage(page=n, width=1400, height=1990, lines=lines, seconds=0.1, engine="fake")


FULL = 30  # characters in a full body line

PAGE_1 = _page(1, [
    _line("市人民政府办公室文件", 10, 0),
    _line("市政办发〔2024〕7号", 11, 2),
    _line("关于加强安全生产工作的通知", 8, 4),
    _line("各区县人民政府，市政府各部门：", 0, 6),
    _line("为切实做好全市安全生产工作，有效防范化解重大安全风险，根据有关", 2, 7),
    _line("要求，现就有关事项通知如下。", 0, 8),
    _line("一、压实安全生产责任", 2, 9),
    _line("各级各部门要严格落实党政同责、一岗双责，把安全生产责任落实到岗", 2, 10),
    _line("位、落实到人。", 0, 11),
    _line("•", 25, 12, score=0.31),  # a seal's star: not text
    _line("— 1 —", 14, 30),
])
PAGE_2 = _page(2, [
    _line("二、开展隐患排查整治", 2, 0),
    _line("序号", 0, 1), _line("任务", 6, 1), _line("牵头单位", 16, 1),
    _line("1", 0, 2), _line("排查重大隐患", 6, 2), _line("市应急管理局", 16, 2),
    _line("各地要建立隐患台账，逐项明确整改责任、措施和时限，确保按期整改到", 2, 3),
    _line("位。", 0, 4),
    _line("— 2 —", 14, 30),
])


def test_recognised_lines_become_paragraphs_headings_and_table_rows(tmp_path):
    from yuanwen.ingest.readers import read_file

    tif = tmp_path / "scan.tif"
    _tiff(tif, 2)
    rr = read_file(tif, ocr={1: PAGE_1, 2: PAGE_2})
    assert rr.text.split("\n") == [
        "市人民政府办公室文件",
        "市政办发〔2024〕7号",
        "关于加强安全生产工作的通知",
        "各区县人民政府，市政府各部门：",
        "为切实做好全市安全生产工作，有效防范化解重大安全风险，根据有关要求，现就有关事项通知如下。",
        "一、压实安全生产责任",
        "各级各部门要严格落实党政同责、一岗双责，把安全生产责任落实到岗位、落实到人。",
        "二、开展隐患排查整治",
        "序号\t任务\t牵头单位",
        "1\t排查重大隐患\t市应急管理局",
        "各地要建立隐患台账，逐项明确整改责任、措施和时限，确保按期整改到位。",
    ]
    assert rr.format == "tiff" and rr.text[rr.pages[1]:].startswith("二、开展隐患排查整治")
    assert rr.meta["ocr_pages"] == "1,2" and rr.meta["ocr_engine"] == "fake"
    assert rr.meta["ocr_confidence"].startswith("1:0.99")


def test_an_image_asks_for_every_frame_and_a_mapping_missing_one_asks_for_it(tmp_path):
    from yuanwen.ingest.readers import read_file

    tif = tmp_path / "scan.tiff"
    _tiff(tif, 3)
    with pytest.raises(OcrNeeded) as e:
        read_file(tif)
    assert e.value.pages == [1, 2, 3] and e.value.total == 3 and "文字识别" in e.value.reason
    with pytest.raises(OcrNeeded) as e:
        read_file(tif, ocr={1: PAGE_1, 3: PAGE_2})
    assert e.value.pages == [2]


def test_an_image_is_told_by_content_not_name(tmp_path):
    from yuanwen.ingest.readers import read_file

    png = tmp_path / "photo.png"  # a JPEG named .png
    Image.new("RGB", (60, 80), "white").save(png, format="JPEG")
    rr = read_file(png, ocr={1: PAGE_2})
    assert rr.format == "jpg"
    bad = tmp_path / "fake.jpg"
    bad.write_bytes(b"%PDF-1.4 not an image at all")
    with pytest.raises(ReadError, match="不是有效的图片文件"):
        read_file(bad)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that declares ``width`` x ``height`` and holds a few bytes (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\x00" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    from yuanwen.ingest.readers import read_file

    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 50_000, 50_000)
    assert bomb.stat().st_size < 2000
    with pytest.raises(ReadError) as e:
        read_file(bomb, ocr={})
    assert "约 250000 万像素" in e.value.reason and "解压炸弹" in e.value.reason
    assert not isinstance(e.value, OcrNeeded)
    # Under Pillow's own limit but over ours: refused from the header, with its size
    _png_header_only(bomb, 12_000, 12_000)
    with pytest.raises(ReadError) as e:
        read_file(bomb, ocr={})
    assert "12000 × 12000" in e.value.reason and "解压炸弹" in e.value.reason


def test_a_tiff_with_thousands_of_pages_is_refused(tmp_path):
    from yuanwen.ingest.readers import image, read_file

    tif = tmp_path / "many.tif"
    _tiff(tif, image.MAX_FRAMES + 5, size=(4, 4))
    with pytest.raises(ReadError, match="图片页数过多"):
        read_file(tif, ocr={})


def _tiff(path: Path, frames: int, size: tuple[int, int] = (120, 170)) -> None:
    ims = [Image.new("L", size, 255) for _ in range(frames)]
    ims[0].save(path, format="TIFF", save_all=True, append_images=ims[1:])


# ---------------------------------------------------------------------------------------------
# PDF: scanned pages, mixed with text pages
# ---------------------------------------------------------------------------------------------
def _scanned_pdf(path: Path, pages: int) -> None:
    ims = [Image.new("RGB", (595, 842), "white") for _ in range(pages)]
    ims[0].save(path, format="PDF", save_all=True, append_images=ims[1:], resolution=72)


def _mixed_pdf(path: Path, tmp_path: Path) -> None:
    """Page 1 with a text layer, page 2 a scan (an image only)."""
    from io import BytesIO

    from pypdf import PdfReader, PdfWriter

    from tests.test_pdf import _pdf, _text_page

    scan = tmp_path / "scan_only.pdf"
    _scanned_pdf(scan, 1)
    text = PdfReader(BytesIO(_pdf([_text_page("Work plan of the city for 2024.",
                                               "Every office carries it out.")])))
    writer = PdfWriter()
    writer.add_page(text.pages[0])
    writer.add_page(PdfReader(scan).pages[0])
    with open(path, "wb") as fh:
        writer.write(fh)


def test_a_scanned_pdf_asks_for_its_pages_and_reads_them(tmp_path):
    from yuanwen.ingest.readers import read_file

    pdf = tmp_path / "scan.pdf"
    _scanned_pdf(pdf, 2)
    with pytest.raises(OcrNeeded) as e:
        read_file(pdf)
    assert e.value.pages == [1, 2] and "没有文字层" in e.value.reason
    rr = read_file(pdf, ocr={1: PAGE_1, 2: PAGE_2})
    assert rr.format == "pdf" and "关于加强安全生产工作的通知" in rr.text
    assert rr.meta["ocr_pages"] == "1,2"


def test_a_mixed_pdf_reads_its_text_pages_and_asks_only_for_the_scanned_one(tmp_path):
    from yuanwen.ingest.readers import read_file

    pdf = tmp_path / "mixed.pdf"
    _mixed_pdf(pdf, tmp_path)
    plain = read_file(pdf)  # OCR off: the text page alone, as before
    assert plain.text.strip() and "ocr_pages" not in plain.meta
    with pytest.raises(OcrNeeded) as e:
        read_file(pdf, ocr={})
    assert e.value.pages == [2] and e.value.total == 2
    rr = read_file(pdf, ocr={2: PAGE_2})
    assert rr.text.startswith("Work plan of the city for 2024.") and rr.text.endswith("确保按期整改到位。")
    assert rr.meta["ocr_pages"] == "2" and rr.text[rr.pages[1]:].startswith("二、开展隐患排查整治")


# ---------------------------------------------------------------------------------------------
# The pipeline: recognised, cached, resumed; marked in citations and stats
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def fake_ocr(monkeypatch):
    """Recognition by table: page n of any file reads as FAKE[n]; calls are counted; a page
    listed in ``fail`` raises as a broken page would."""
    from yuanwen.ingest import ocr

    state = {"calls": [], "fail": set()}
    fake = {1: PAGE_1, 2: PAGE_2}

    def ocr_page(path, override, config, name=None):
        n = int(override["page"])
        state["calls"].append((Path(path).name, n))
        if n in state["fail"]:
            raise ReadError(path, "模拟的识别故障")
        return fake[n]

    monkeypatch.setattr(ocr, "ocr_page", ocr_page)
    monkeypatch.setattr(ocr, "available", lambda: None)
    monkeypatch.setattr(ocr, "engine_id", lambda: "fake")
    return state


def _cfg(tmp_path: Path, **kw) -> Config:
    return Config(kb_dir=tmp_path / "kb", parse_isolated=False, embedder="fake", **kw)


def test_ingest_recognises_stores_marks_and_counts_scanned_pages(tmp_path, fake_ocr, sample_path):
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    _scanned_pdf(docs / "通知扫描件.pdf", 2)
    (docs / "note.txt").write_text("关于学习贯彻的通知\n各单位要认真学习，抓好落实。\n", encoding="utf-8")
    with open_kb(tmp_path / "kb", readonly=False, config=_cfg(tmp_path)) as lib:
        rep = lib.ingest([docs])
        assert rep.count("added") == 2 and rep.ocr_pages == 2 and rep.ocr_pages_cached == 0
        assert sorted(fake_ocr["calls"]) == [("通知扫描件.pdf", 1), ("通知扫描件.pdf", 2)]
        assert lib.stats()["ocr_pages"] == 2
        scan = next(d for d in lib.documents() if d.path.endswith(".pdf"))
        assert lib.recognised_pages(scan) == {1: 0.99, 2: 0.99}
        assert scan.doc_number == "市政办发〔2024〕7号"
        hits = lib.search("隐患台账", mode="keyword").hits
        assert hits and hits[0].document.id == scan.id
        assert hits[0].citation.recognised and hits[0].citation.format().endswith("（识别文本，请核对原件）")
        txt_hits = lib.search("认真学习", mode="keyword").hits
        assert txt_hits and not txt_hits[0].citation.recognised
        assert "识别文本" not in txt_hits[0].citation.format()


def test_an_interrupted_recognition_resumes_from_the_pages_kept(tmp_path, fake_ocr):
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    _scanned_pdf(docs / "scan.pdf", 2)
    fake_ocr["fail"].add(2)
    with open_kb(tmp_path / "kb", readonly=False, config=_cfg(tmp_path)) as lib:
        rep = lib.ingest([docs])
        assert rep.count("failed") == 1 and "第 2 页文字识别失败" in rep.failed[0].reason
        assert rep.ocr_pages == 1 and lib.stats()["documents"] == 0  # nothing half-stored
        fake_ocr["fail"].clear()
        fake_ocr["calls"].clear()
        rep = lib.ingest([docs])
        assert rep.count("added") == 1 and rep.ocr_pages == 1 and rep.ocr_pages_cached == 1
        assert fake_ocr["calls"] == [("scan.pdf", 2)]  # page 1 was kept


def test_ocr_off_reports_scans_and_keeps_the_text_pages_of_mixed_files(tmp_path, fake_ocr):
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    _scanned_pdf(docs / "scan.pdf", 1)
    _tiff(docs / "photo.tif", 1)
    _mixed_pdf(docs / "mixed.pdf", tmp_path)
    with open_kb(tmp_path / "kb", readonly=False, config=_cfg(tmp_path)) as lib:
        rep = lib.ingest([docs], ocr=False)
    assert fake_ocr["calls"] == []
    reasons = {Path(o.path).name: o.reason for o in rep.failed}
    assert set(reasons) == {"scan.pdf", "photo.tif"}
    assert all("关闭了文字识别" in r for r in reasons.values())
    assert rep.count("added") == 1  # the mixed PDF's text page


def test_too_many_pages_to_recognise_are_refused_before_any_work(tmp_path, fake_ocr):
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    _tiff(docs / "long.tif", 4)
    with open_kb(tmp_path / "kb", readonly=False, config=_cfg(tmp_path, ocr_max_pages=3)) as lib:
        rep = lib.ingest([docs])
    assert "页数过多（4 页，上限 3 页" in rep.failed[0].reason and fake_ocr["calls"] == []


def test_the_page_cache_survives_a_damaged_row(tmp_path):
    from yuanwen.store import Store

    st = Store(tmp_path / "kb", create=True)
    st.save_ocr_page("abc", PAGE_1)
    again = st.ocr_page("abc", 1, "fake")
    assert again is not None and [ln.text for ln in again.lines] == [ln.text for ln in PAGE_1.lines]
    assert again.lines[0].box == pytest.approx(PAGE_1.lines[0].box, abs=0.1)
    assert st.ocr_page("abc", 1, "another engine") is None
    st.db.execute("UPDATE ocr_pages SET data = '{broken'")
    st.db.conn.commit()
    assert st.ocr_page("abc", 1, "fake") is None
    st.close()


# ---------------------------------------------------------------------------------------------
# OFD: a scan packed as OFD (pages of images, no text objects)
# ---------------------------------------------------------------------------------------------
def _scanned_ofd(path: Path, image: bytes, pages: int = 1) -> None:
    """A minimal OFD whose pages each draw ``image`` (an A4 scan) and hold no text."""
    import zipfile

    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    page_list = "".join(f'<ofd:Page ID="{10 + i}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(pages))
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("OFD.xml", f'<ofd:OFD {ns} Version="1.0"><ofd:DocBody><ofd:DocInfo><ofd:DocID>x</ofd:DocID>'
                              f'</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>')
        z.writestr("Doc_0/Document.xml", f'<ofd:Document {ns}><ofd:CommonData><ofd:MaxUnitID>99</ofd:MaxUnitID>'
                                         f'<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea>'
                                         f'<ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes></ofd:CommonData>'
                                         f'<ofd:Pages>{page_list}</ofd:Pages></ofd:Document>')
        z.writestr("Doc_0/DocumentRes.xml", f'<ofd:Res {ns} BaseLoc="Res"><ofd:MultiMedias>'
                                            f'<ofd:MultiMedia ID="5" Type="Image"><ofd:MediaFile>scan.png</ofd:MediaFile>'
                                            f'</ofd:MultiMedia></ofd:MultiMedias></ofd:Res>')
        z.writestr("Doc_0/Res/scan.png", image)
        for i in range(pages):
            z.writestr(f"Doc_0/Pages/Page_{i}/Content.xml",
                       f'<ofd:Page {ns}><ofd:Content><ofd:Layer ID="{50 + i}"><ofd:ImageObject ID="{60 + i}" '
                       f'Boundary="0 0 210 297" CTM="210 0 0 297 0 0" ResourceID="5"/></ofd:Layer></ofd:Content></ofd:Page>')


def _png_bytes(size=(300, 420)) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    Image.new("RGB", size, "white").save(buf, format="PNG")
    return buf.getvalue()


def test_a_scanned_ofd_asks_for_its_pages_and_gives_their_images(tmp_path):
    from yuanwen.ingest.ocr import page_image
    from yuanwen.ingest.readers import read_file

    ofd = tmp_path / "scan.ofd"
    _scanned_ofd(ofd, _png_bytes(), pages=2)
    with pytest.raises(OcrNeeded) as e:
        read_file(ofd)
    assert e.value.pages == [1, 2] and "OFD 文件没有文字层" in e.value.reason
    assert page_image(ofd, 2).size == (300, 420)
    rr = read_file(ofd, ocr={1: PAGE_1, 2: PAGE_2})
    assert rr.format == "ofd" and rr.meta["ocr_pages"] == "1,2" and "关于加强安全生产工作的通知" in rr.text


def test_an_ofd_holding_an_image_bomb_is_refused_when_its_page_is_drawn(tmp_path):
    from yuanwen.ingest.ocr import page_image

    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 50_000, 50_000)
    ofd = tmp_path / "bomb.ofd"
    _scanned_ofd(ofd, bomb.read_bytes())
    with pytest.raises(ReadError, match="解压炸弹"):
        page_image(ofd, 1)


def test_ingest_reports_an_image_bomb_and_goes_on(tmp_path, fake_ocr):
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    _png_header_only(docs / "bomb.png", 50_000, 50_000)
    _tiff(docs / "page.tif", 1)
    with open_kb(tmp_path / "kb", readonly=False, config=_cfg(tmp_path)) as lib:
        rep = lib.ingest([docs])
    assert rep.count("added") == 1
    (bad,) = rep.failed
    assert bad.path.endswith("bomb.png") and "解压炸弹" in bad.reason


# ---------------------------------------------------------------------------------------------
# What recognise() does around the engine: deskew, simplified characters
# ---------------------------------------------------------------------------------------------
def test_the_skew_of_a_page_is_measured_from_its_lines():
    from PIL import ImageDraw

    from yuanwen.ingest.ocr import deskew, skew_angle

    page = Image.new("L", (1200, 1600), 255)
    draw = ImageDraw.Draw(page)
    for y in range(150, 1450, 40):  # 33 lines of "text": dashed bars, as characters are
        for x in range(120, 1080, 30):
            draw.rectangle((x, y, x + 22, y + 22), fill=0)
    assert abs(skew_angle(page)) < 0.2
    tilted = page.rotate(1.5, fillcolor=255)
    assert skew_angle(tilted) == pytest.approx(-1.5, abs=0.1)
    assert abs(skew_angle(deskew(tilted))) < 0.2
    assert deskew(page) is page  # an upright page is left as it is


def test_recognition_drifting_into_traditional_characters_is_converted_back():
    from yuanwen.ingest.ocr import to_simplified

    drifted = [OcrLine("各省、自治區、直辖市及新疆生产建设兵團安全生產委員會", (0, 0, 1, 1), 0.9),
               OcrLine("国务院安委会办公室关于印发《行动方案》子方案的通知", (0, 2, 1, 3), 0.99)]
    out = to_simplified(drifted)
    assert out[0].text == "各省、自治区、直辖市及新疆生产建设兵团安全生产委员会" and out[1].text == drifted[1].text
    traditional = [OcrLine("香港特別行政區政府發佈的《施政報告》", (0, 0, 1, 1), 0.95)]
    assert to_simplified(traditional) == traditional  # a page written in traditional stays so


def test_a_page_on_end_or_read_with_low_confidence_is_taken_as_turned():
    from yuanwen.ingest.ocr import _misoriented

    upright = [OcrLine("各级各部门要严格落实责任", (100, 100 + 40 * i, 900, 130 + 40 * i), 0.98) for i in range(8)]
    on_end = [OcrLine("各级各部门要严格落实责任", (100 + 40 * i, 100, 130 + 40 * i, 900), 0.98) for i in range(8)]
    upside = [OcrLine("杀花科校校", ln.box, 0.6) for ln in upright]
    assert _misoriented(upright) is None and _misoriented([]) is None
    assert _misoriented(on_end) == "sideways" and _misoriented(upside) == "upside down"


def test_a_pdf_without_text_or_images_is_still_recognised_and_said_empty_if_nothing_is_read(tmp_path):
    from tests.test_pdf import _pdf
    from yuanwen.ingest.readers import read_file

    blank = tmp_path / "blank.pdf"  # no text and no image XObject (a scan drawn inline, or blank)
    blank.write_bytes(_pdf([None, None]))
    with pytest.raises(OcrNeeded) as e:
        read_file(blank, ocr={})
    assert e.value.pages == [1, 2]
    with pytest.raises(ReadError) as e:
        read_file(blank, ocr={1: _page(1, []), 2: _page(2, [])})
    assert "也没有识别出文字" in e.value.reason


def test_a_mixed_pdf_stored_with_ocr_off_gets_its_scanned_page_recognised_later(tmp_path, fake_ocr):
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    _mixed_pdf(docs / "mixed.pdf", tmp_path)
    with open_kb(tmp_path / "kb", readonly=False, config=_cfg(tmp_path)) as lib:
        assert lib.ingest([docs], ocr=False).count("added") == 1
        assert fake_ocr["calls"] == []
        rep = lib.ingest([docs])  # the same file, OCR on: not "unchanged"
        assert rep.count("updated") == 1 and fake_ocr["calls"] == [("mixed.pdf", 2)]
        doc = lib.documents()[0]
        assert lib.recognised_pages(doc) == {2: 0.99} and "ocr_skipped" not in doc.extra
        # the whole-document citation is not "recognised text": page 1 is the file's own text
        assert not lib.citation(doc).recognised
        fake_ocr["calls"].clear()
        assert lib.ingest([docs]).count("unchanged") == 1 and fake_ocr["calls"] == []


def test_a_page_that_reads_as_nothing_is_not_recognised_text(tmp_path):
    from yuanwen.ingest.readers import read_file

    pdf = tmp_path / "mixed.pdf"
    _mixed_pdf(pdf, tmp_path)
    rr = read_file(pdf, ocr={2: _page(2, [])})  # a logo page: nothing read
    assert rr.meta["ocr_pages"] == "" and "Work plan" in rr.text


def test_a_file_named_as_an_image_but_holding_postscript_is_refused(tmp_path):
    from yuanwen.ingest.readers import read_file

    eps = tmp_path / "scan.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n{} loop\nshowpage\n")
    with pytest.raises(ReadError, match="不是有效的图片文件"):
        read_file(eps, ocr={})


def test_the_page_image_is_refused_when_the_original_changed_after_ingest(tmp_path, fake_ocr):
    import tests.fake_embedder  # noqa: F401
    from yuanwen.library import open_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    _scanned_pdf(docs / "scan.pdf", 2)
    with open_kb(tmp_path / "kb", readonly=False, config=_cfg(tmp_path)) as lib:
        lib.ingest([docs])
        doc = lib.documents()[0]
        png = lib.page_image(doc.id, 2)
        assert png.startswith(b"\x89PNG") and Image.open(__import__("io").BytesIO(png)).size[1] <= 1400
        _scanned_pdf(docs / "scan.pdf", 3)  # a new scan under the same name, not ingested yet
        with pytest.raises(ReadError, match="原件在导入后已被改动"):
            lib.page_image(doc.id, 2)
        (docs / "scan.pdf").unlink()
        with pytest.raises(ReadError, match="原件已不在"):
            lib.page_image(doc.id, 2)
