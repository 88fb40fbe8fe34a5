"""The test-scan helpers (tests/scans.py): rendering, degradation, image-only PDF/TIFF/PNG
writing, the scanned founding document and the character error rate. No OCR model is needed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pypdf import PdfReader
from yuanwen.ingest.readers import doc as doc_reader

from . import scans

IN_CI = bool(os.environ.get("CI"))
needs_founding_doc = pytest.mark.skipif(not scans.FOUNDING_DOC.is_file(), reason=f"{scans.FOUNDING_DOC} not found")
# In CI a missing LibreOffice is a failure (the tests run and say so), elsewhere a skip.
needs_soffice = pytest.mark.skipif(doc_reader.find_soffice() is None and not IN_CI,
                                   reason="LibreOffice (soffice) is not installed")

A4_PT = (595.3, 841.9)


def _page(width: int = 620, height: int = 877, dpi: float = 75) -> Image.Image:
    """A small synthetic page (A4 at ``dpi``): a red header bar, black bars where lines of text
    would be."""
    im = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(im)
    d.rectangle([width // 5, 20, width - width // 5, 45], fill=(230, 0, 18))
    for y in range(60, height - 60, 24):
        d.rectangle([60, y, width - 60 - (y * 7) % 90, y + 12], fill="black")
    im.info["dpi"] = (dpi, dpi)
    return im


def _pixels(im: Image.Image) -> tuple:
    return im.mode, im.size, im.tobytes()


def _page_sizes(pdf: Path) -> list[float]:
    """Width, height, width, height, ... of each page in points."""
    return [float(x) for p in PdfReader(pdf).pages for x in (p.mediabox.width, p.mediabox.height)]


# ---------------------------------------------------------------------------------------------
# Degradation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("condition", scans.CONDITIONS)
def test_degrade_is_deterministic_and_keeps_the_paper_size(condition):
    page = _page()
    a, b = scans.degrade(page, condition, seed=3), scans.degrade(page, condition, seed=3)
    assert _pixels(a) == _pixels(b)
    dpi = scans.image_dpi(a)
    assert a.width / dpi == pytest.approx(page.width / 75, abs=0.02)  # inches: the same paper
    assert a.height / dpi == pytest.approx(page.height / 75, abs=0.02)
    if condition == "clean":
        assert _pixels(a) == _pixels(page)
    else:
        assert _pixels(a.convert("RGB").resize(page.size)) != _pixels(page)


def test_degrade_modes_and_resolutions():
    page = _page(2480, 3508, 300)
    assert scans.image_dpi(scans.degrade(page, "150dpi")) == 150
    assert scans.degrade(page, "150dpi").size == (1240, 1754)
    assert scans.degrade(page, "grey").mode == "L"
    badscan = scans.degrade(page, "badscan")
    assert (badscan.mode, scans.image_dpi(badscan)) == ("L", 150)
    fax = scans.degrade(page, "fax")
    assert (fax.mode, scans.image_dpi(fax), fax.size) == ("1", 100, (827, 1169))
    # the seal is red ink where the page was white
    seal = np.asarray(scans.degrade(page, "seal"), dtype=int)
    red = (seal[..., 0] > 180) & (seal[..., 1] < 80) & (seal[..., 2] < 80)
    red[:60] = False  # the page's own red header
    assert red.sum() > 1000
    assert not red[:, : int(2480 * 0.3)].any()  # placed over the body, not at the left margin


@pytest.mark.parametrize("condition", ["noise", "seal", "phone", "badscan", "fax"])
def test_degrade_seed_changes_the_random_part(condition):
    page = _page()
    assert _pixels(scans.degrade(page, condition, 1)) != _pixels(scans.degrade(page, condition, 2))


def test_degrade_pages_gives_each_page_its_own_seed():
    a, b = scans.degrade_pages([_page(), _page()], "noise", seed=5)
    assert _pixels(a) != _pixels(b)
    assert _pixels(b) == _pixels(scans.degrade(_page(), "noise", 6))


def test_degrade_refuses_an_unknown_condition():
    with pytest.raises(ValueError, match="unknown condition"):
        scans.degrade(_page(), "coffee-stain")


# ---------------------------------------------------------------------------------------------
# Writing scans
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("condition", ["clean", "badscan", "fax"])
def test_write_pdf_is_image_only_with_the_paper_size(tmp_path, condition):
    pages = scans.degrade_pages([_page(), _page(), _page()], condition)
    pdf = scans.write_pdf(pages, tmp_path / "scan.pdf")
    reader = PdfReader(pdf)
    assert len(reader.pages) == 3
    assert all(p.extract_text().strip() == "" for p in reader.pages)
    assert _page_sizes(pdf) == pytest.approx(A4_PT * 3, abs=1.0)
    # the pages render back to what was written (compared at a quarter size: noise averages out)
    back = scans.render_pdf(pdf, dpi=scans.image_dpi(pages[0]), pages=[1])[0]
    assert back.size == pytest.approx(pages[1].size, abs=1)
    small = (pages[1].width // 4, pages[1].height // 4)
    diff = np.abs(np.asarray(back.convert("L").resize(small, Image.Resampling.BOX), dtype=int)
                  - np.asarray(pages[1].convert("L").resize(small, Image.Resampling.BOX), dtype=int))
    assert diff.mean() < 8


def test_write_pdf_refuses_mixed_resolutions(tmp_path):
    with pytest.raises(ValueError, match="different resolutions"):
        scans.write_pdf([_page(), scans.degrade(_page(), "fax")], tmp_path / "mixed.pdf")


@pytest.mark.parametrize("condition", ["grey", "fax"])
def test_write_tiff_is_multi_page_with_its_resolution(tmp_path, condition):
    pages = scans.degrade_pages([_page(), _page()], condition)
    tif = scans.write_tiff(pages, tmp_path / "scan.tif")
    with Image.open(tif) as im:
        assert im.n_frames == 2
        assert im.info["dpi"] == pytest.approx((scans.image_dpi(pages[0]),) * 2)
        for i in range(2):
            im.seek(i)
            assert _pixels(im) == _pixels(pages[i])  # lossless


def test_write_images_png_and_jpeg(tmp_path):
    pages = [_page(), scans.degrade(_page(), "fax")]
    pngs = scans.write_images(pages[:1], tmp_path, "p", "png")
    jpgs = scans.write_images(pages, tmp_path, "p", "jpeg")
    assert [p.name for p in pngs] == ["p-1.png"]
    assert [p.name for p in jpgs] == ["p-1.jpg", "p-2.jpg"]
    with Image.open(pngs[0]) as im:
        assert _pixels(im.convert("RGB")) == _pixels(pages[0])
        assert im.info["dpi"] == pytest.approx((75, 75), abs=0.01)  # PNG stores dots per metre
    with Image.open(jpgs[1]) as im:
        assert im.format == "JPEG" and im.size == pages[1].size
        assert im.info["dpi"] == pytest.approx((100, 100))
    with pytest.raises(ValueError):
        scans.write_images(pages, tmp_path, "p", "gif")


# ---------------------------------------------------------------------------------------------
# The founding document, scanned
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def founding_pdf(tmp_path_factory) -> Path:
    return scans.founding_document_pdf(tmp_path_factory.mktemp("founding"))


@needs_founding_doc
@needs_soffice
def test_founding_document_pdf_carries_the_known_text(founding_pdf):
    text = "".join(p.extract_text() for p in PdfReader(founding_pdf).pages)
    assert scans.cer(scans.FOUNDING_TEXT.read_text(encoding="utf-8"), text) < 0.005


@needs_founding_doc
@needs_soffice
def test_scanned_founding_document_has_no_text_and_the_same_pages(founding_pdf):
    scan = scans.scanned_founding_document(founding_pdf.parent, "clean")
    assert scan.name == "000_dc0b083f46e91fc1.clean.pdf"
    assert all(p.extract_text().strip() == "" for p in PdfReader(scan).pages)
    original = _page_sizes(founding_pdf)
    assert len(original) >= 4  # two pages or more
    assert _page_sizes(scan) == pytest.approx(original, abs=1.0)
    # one page of a degraded scan
    fax = scans.scan_pdf(founding_pdf, founding_pdf.parent, "fax", pages=[1], stem="p2")
    assert fax.name == "p2.fax.pdf"
    assert _page_sizes(fax) == pytest.approx(original[2:4], abs=1.0)
    assert PdfReader(fax).pages[0].extract_text().strip() == ""


def test_doc_to_pdf_reports_a_missing_libreoffice(tmp_path, monkeypatch):
    monkeypatch.setenv("YUANWEN_SOFFICE", str(tmp_path / "no-such-soffice"))
    with pytest.raises(RuntimeError, match="not installed"):
        scans.doc_to_pdf(tmp_path / "x.doc", tmp_path)


# ---------------------------------------------------------------------------------------------
# Character error rate
# ---------------------------------------------------------------------------------------------
def test_cer_of_identical_texts_is_zero():
    text = scans.FOUNDING_TEXT.read_text(encoding="utf-8")
    assert scans.cer(text, text) == 0.0
    assert scans.cer(text, text.replace("\n", "\n\n  ")) == 0.0  # whitespace does not count


def test_cer_of_known_edits():
    ref = "一是坚决做到两个维护"  # 10 characters
    assert scans.cer(ref, "一是坚决作到两个维护") == pytest.approx(0.1)   # one substitution
    assert scans.cer(ref, "一是坚决做到两维护") == pytest.approx(0.1)     # one deletion
    assert scans.cer(ref, "一是坚决做到了两个维护") == pytest.approx(0.1)  # one insertion
    assert scans.cer(ref, "") == 1.0
    assert scans.cer(ref, ref + ref) == 1.0
    assert scans.cer("", "") == 0.0 and scans.cer("", "多") == 1.0


def test_cer_normalises_width_page_numbers_and_punctuation():
    assert scans.cer("２０２２年", "2022年") == 0.0  # NFKC
    assert scans.cer("第一段\n— 1 —\n第二段", "第一段第二段") == 0.0
    assert scans.cer("第一段\n－ 12 －\n第二段", "第一段\n第二段") == 0.0
    # a dash inside a line is text, not a page number
    assert scans.cer("（2024—2026年）", "（20242026年）") == pytest.approx(1 / 12)
    ref, hyp = "一、加强领导。", "一加强领导"
    assert scans.cer(ref, hyp) == pytest.approx(2 / 7)
    assert scans.cer(ref, hyp, punctuation=False) == 0.0
    assert scans.normalise_for_cer("“两会”〔2024〕", punctuation=False) == "两会2024"
    assert scans.cer("〔2024〕", "〔2024］") > 0  # a misread bracket counts
    assert scans.cer("〔2024〕", "[2024]", fold=True) == 0.0
