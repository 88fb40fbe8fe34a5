"""Test scans: documents whose text is known, rendered to page images, degraded the way scanners
and phone photos degrade them, and written back as image-only files; and the character error
rate (CER) of a recognised text against the known one.

Used by the OCR tests and by ``benchmarks/ocr_cer.py`` (the benchmarks may import ``tests.*``;
tests never import the benchmarks). Nothing is cached in the repository: every function that
writes takes an output folder.

- :func:`render_pdf` renders PDF pages with pypdfium2 (each image carries its ``info["dpi"]``).
- :func:`degrade` applies one of :data:`CONDITIONS` to a page image, deterministically by seed.
- :func:`write_pdf`, :func:`write_tiff`, :func:`write_images` write page images as a scanned
  (image-only) PDF with the right page size, a multi-page TIFF, or single PNG/JPEG files.
- :func:`doc_to_pdf` converts a Word file to PDF with headless LibreOffice;
  :func:`founding_document_pdf` and :func:`scan_pdf` build on it to make a scanned version of the
  founding document (``../shared/samples/doc/000_dc0b083f46e91fc1.doc``).
- :func:`normalise_for_cer` and :func:`cer` measure the recognised text.
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import tempfile
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
#: The founding document as a Word 97-2003 file (made from its text with LibreOffice).
FOUNDING_DOC = ROOT.parent / "shared" / "samples" / "doc" / "000_dc0b083f46e91fc1.doc"
#: Its known text: the bundled copy in ``corpus/`` (the same bytes as ``../shared/seeds/``).
FOUNDING_TEXT = ROOT / "corpus" / "000_dc0b083f46e91fc1.txt"

#: The resolution pages are rendered at before they are degraded (a good office scanner).
SCAN_DPI = 300

#: The degradations :func:`degrade` knows, mildest first.
CONDITIONS: tuple[str, ...] = (
    "clean",    # the 300 dpi render as it is
    "150dpi",   # a cheap scanner setting
    "grey",     # greyscale scan
    "noise",    # Gaussian sensor noise, sigma 25
    "skew",     # the page 1.5 degrees askew on the glass
    "jpeg",     # JPEG quality 30
    "seal",     # a red round seal with a star stamped over the text
    "phone",    # a phone photo: skew, colour cast, uneven light, slight blur, noise, JPEG q50
    "badscan",  # grey, 3 degrees askew, heavy noise, 150 dpi, JPEG q20
    "fax",      # 1-bit at 100 dpi, with salt-and-pepper specks
)

#: Physical diameter of an official seal (公章) in millimetres.
SEAL_DIAMETER_MM = 42.0


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------
def render_pdf(path: Path | str, dpi: float = SCAN_DPI, pages: Sequence[int] | None = None) -> list[Image.Image]:
    """The pages of the PDF at ``path`` (0-based indices ``pages``; all when None) as RGB images
    rendered at ``dpi``; each image's ``info["dpi"]`` says its resolution."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    try:
        indices = range(len(doc)) if pages is None else pages
        out = []
        for i in indices:
            page = doc[i]
            im = page.render(scale=dpi / 72).to_pil().convert("RGB")
            im.info["dpi"] = (dpi, dpi)
            out.append(im)
            page.close()
        return out
    finally:
        doc.close()


def image_dpi(im: Image.Image, default: float = SCAN_DPI) -> float:
    """The horizontal resolution recorded in ``im.info["dpi"]`` (``default`` when there is none)."""
    dpi = im.info.get("dpi")
    return float(dpi[0]) if dpi else float(default)


def _with_dpi(im: Image.Image, dpi: float) -> Image.Image:
    im.info["dpi"] = (dpi, dpi)
    return im


# ---------------------------------------------------------------------------------------------
# Degradation
# ---------------------------------------------------------------------------------------------
def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert(im.mode)


def _resample(im: Image.Image, dpi: float, to_dpi: float) -> Image.Image:
    size = (max(1, round(im.width * to_dpi / dpi)), max(1, round(im.height * to_dpi / dpi)))
    return im.resize(size, Image.Resampling.BILINEAR)


def _rotate(im: Image.Image, degrees: float, fill) -> Image.Image:
    """Rotated about the centre, keeping the page size (a page askew on the scanner glass)."""
    return im.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=fill)


def _seal(im: Image.Image, rng: np.random.Generator, dpi: float) -> Image.Image:
    """A red double ring with a five-pointed star, multiplied over the page like ink."""
    w, h = im.size
    r = SEAL_DIAMETER_MM / 25.4 * dpi / 2
    cx = w * rng.uniform(0.50, 0.70)
    cy = h * rng.uniform(0.30, 0.70)
    overlay = Image.new("RGB", im.size, "white")
    d = ImageDraw.Draw(overlay)
    red = (220, 30, 30)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=red, width=max(3, round(r / 18)))
    inner = r * 5 / 6
    d.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], outline=red, width=max(1, round(r / 60)))
    star = []
    for k in range(10):
        rr = r * (0.28 if k % 2 == 0 else 0.11)
        angle = -math.pi / 2 + k * math.pi / 5
        star.append((cx + rr * math.cos(angle), cy + rr * math.sin(angle)))
    d.polygon(star, fill=red)
    a = np.asarray(im.convert("RGB"), dtype=np.float32) * np.asarray(overlay, dtype=np.float32) / 255.0
    return Image.fromarray(a.astype(np.uint8))


def degrade(im: Image.Image, condition: str, seed: int = 0) -> Image.Image:
    """``im`` (a page image, normally a 300 dpi render) degraded by ``condition`` (one of
    :data:`CONDITIONS`); the same image, condition and seed always give the same pixels.

    The result keeps the page's physical size; its ``info["dpi"]`` gives its resolution (150
    for ``150dpi`` and ``badscan``, 100 for ``fax``). ``grey`` and ``badscan`` give a greyscale
    (``L``) image, ``fax`` a 1-bit (``1``) one, the others RGB.
    """
    dpi = image_dpi(im)
    rng = np.random.default_rng(seed)
    im = im.convert("RGB")
    if condition == "clean":
        return _with_dpi(im.copy(), dpi)
    if condition == "150dpi":
        return _with_dpi(_resample(im, dpi, 150), 150)
    if condition == "grey":
        return _with_dpi(im.convert("L"), dpi)
    if condition == "noise":
        a = np.asarray(im, dtype=np.float32) + rng.normal(0, 25, (im.height, im.width, 3))
        return _with_dpi(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)), dpi)
    if condition == "skew":
        return _with_dpi(_rotate(im, 1.5, "white"), dpi)
    if condition == "jpeg":
        return _with_dpi(_jpeg(im, 30), dpi)
    if condition == "seal":
        return _with_dpi(_seal(im, rng, dpi), dpi)
    if condition == "phone":
        paper = (200, 195, 185)
        a = np.asarray(_rotate(im, 1.5, paper), dtype=np.float32)
        hh, ww = a.shape[:2]
        yy, xx = np.mgrid[0:hh, 0:ww]
        lx, ly = rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.4)  # where the light falls brightest
        light = 0.70 + 0.30 * (1 - ((xx / ww - lx) ** 2 + (yy / hh - ly) ** 2))
        a = a * light[..., None] * np.array([1.0, 0.97, 0.90])  # warm colour cast
        a += rng.normal(0, 8, a.shape)
        photo = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(dpi / 300))
        return _with_dpi(_jpeg(photo, 50), dpi)
    if condition == "badscan":
        g = _resample(_rotate(im.convert("L"), 3.0, 235), dpi, 150)
        a = np.asarray(g, dtype=np.float32) * 0.85 + 20 + rng.normal(0, 40, (g.height, g.width))
        g = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        return _with_dpi(_jpeg(g, 20), 150)
    if condition == "fax":
        g = _resample(im.convert("L"), dpi, 100)
        a = np.asarray(g) > 160  # True: white
        specks = rng.random(a.shape)
        a[specks < 0.005] = False
        a[specks > 0.995] = True
        return _with_dpi(Image.fromarray(a), 100)
    raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")


def degrade_pages(images: Sequence[Image.Image], condition: str, seed: int = 0) -> list[Image.Image]:
    """Each page degraded by ``condition``, page i with seed ``seed + i`` (so pages differ)."""
    return [degrade(im, condition, seed + i) for i, im in enumerate(images)]


# ---------------------------------------------------------------------------------------------
# Writing scans
# ---------------------------------------------------------------------------------------------
def _common_dpi(images: Sequence[Image.Image]) -> float:
    if not images:
        raise ValueError("no page images")
    dpis = {image_dpi(im) for im in images}
    if len(dpis) != 1:
        raise ValueError(f"pages have different resolutions: {sorted(dpis)}")
    return dpis.pop()


def write_pdf(images: Sequence[Image.Image], path: Path | str, quality: int = 90) -> Path:
    """An image-only ("scanned") PDF, one page per image, each page as large as the paper the
    image was scanned from (pixels / ``info["dpi"]``); RGB and grey pages as JPEG at ``quality``,
    1-bit pages as CCITT G4. All pages must share one resolution."""
    path = Path(path)
    dpi = _common_dpi(images)
    first, *rest = images
    jpeg = {} if all(im.mode == "1" for im in images) else {"quality": quality}  # G4 takes no quality
    first.save(path, "PDF", save_all=True, append_images=rest, resolution=dpi, **jpeg)
    return path


def write_tiff(images: Sequence[Image.Image], path: Path | str) -> Path:
    """A multi-page TIFF (deflate; CCITT G4 for 1-bit pages) with each page's resolution."""
    path = Path(path)
    dpi = _common_dpi(images)
    first, *rest = images
    compression = "group4" if all(im.mode == "1" for im in images) else "tiff_deflate"
    first.save(path, "TIFF", save_all=True, append_images=rest, compression=compression, dpi=(dpi, dpi))
    return path


def write_images(images: Sequence[Image.Image], folder: Path | str, stem: str, fmt: str = "png",
                 quality: int = 90) -> list[Path]:
    """One file per page, ``{stem}-{n}.png`` or ``.jpg`` (n from 1), with its resolution."""
    fmt = fmt.lower()
    if fmt not in ("png", "jpeg", "jpg"):
        raise ValueError(f"unknown image format {fmt!r}: png or jpeg")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, im in enumerate(images, 1):
        dpi = image_dpi(im)
        if fmt == "png":
            p = folder / f"{stem}-{n}.png"
            im.save(p, "PNG", dpi=(dpi, dpi))
        else:
            p = folder / f"{stem}-{n}.jpg"
            (im.convert("L") if im.mode == "1" else im).save(p, "JPEG", quality=quality, dpi=(dpi, dpi))
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------------
# The founding document, scanned
# ---------------------------------------------------------------------------------------------
def doc_to_pdf(path: Path | str, out_dir: Path | str, timeout_s: float = 120.0) -> Path:
    """The Word/WPS file at ``path`` converted to ``out_dir/<stem>.pdf`` by headless LibreOffice
    (with a private, temporary profile); RuntimeError when LibreOffice is missing or fails."""
    from yuanwen.ingest.readers.doc import find_soffice

    path, out_dir = Path(path), Path(out_dir)
    soffice = find_soffice()
    if soffice is None:
        raise RuntimeError("LibreOffice (soffice) is not installed")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scans-lo-") as tmp:
        cmd = [soffice, f"-env:UserInstallation={Path(tmp, 'profile').as_uri()}", "--headless",
               "--invisible", "--nologo", "--norestore", "--nolockcheck",
               "--convert-to", "pdf", "--outdir", str(out_dir), str(path)]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s,
                              env=dict(os.environ, HOME=tmp))
    result = out_dir / f"{path.stem}.pdf"
    if proc.returncode != 0 or not result.is_file():
        raise RuntimeError(f"LibreOffice could not convert {path}: {proc.stdout.decode(errors='replace')[-500:]}")
    return result


def founding_document_pdf(out_dir: Path | str) -> Path:
    """The founding document as a text-layer PDF in ``out_dir`` (converted once, then reused)."""
    pdf = Path(out_dir) / f"{FOUNDING_DOC.stem}.pdf"
    return pdf if pdf.is_file() else doc_to_pdf(FOUNDING_DOC, out_dir)


def scan_pdf(pdf: Path | str, out_dir: Path | str, condition: str = "clean", *, seed: int = 0,
             pages: Sequence[int] | None = None, stem: str | None = None) -> Path:
    """A scanned copy of ``pdf`` (0-based ``pages``, all when None): rendered at 300 dpi, degraded
    by ``condition``, written to ``out_dir/<stem>.<condition>.pdf`` as an image-only PDF."""
    pdf, out_dir = Path(pdf), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = degrade_pages(render_pdf(pdf, SCAN_DPI, pages), condition, seed)
    return write_pdf(images, out_dir / f"{stem or pdf.stem}.{condition}.pdf")


def scanned_founding_document(out_dir: Path | str, condition: str = "clean", seed: int = 0) -> Path:
    """The founding document (.doc, through LibreOffice) scanned under ``condition``, as an
    image-only PDF in ``out_dir``; its known text is :data:`FOUNDING_TEXT`."""
    return scan_pdf(founding_document_pdf(out_dir), out_dir, condition, seed=seed)


# ---------------------------------------------------------------------------------------------
# Character error rate
# ---------------------------------------------------------------------------------------------
#: A page-number line as 公文 print them: "— 1 —", "－ 12 －", "-3-" (after NFKC).
_PAGE_NUMBER_LINE = re.compile(r"[—–\-―─]+\s*\d{1,4}\s*[—–\-―─]+")
#: Folds for comparing OCR engines whose quote and bracket glyphs differ (not used by default:
#: a 文号 read as 〔2024］ is an error).
_FOLD = str.maketrans({"«": "《", "»": "》", "〔": "[", "〕": "]", "【": "[", "】": "]",
                       "‘": "'", "’": "'", "“": '"', "”": '"'})


def normalise_for_cer(text: str, *, punctuation: bool = True, fold: bool = False) -> str:
    """``text`` as CER compares it: NFKC, page-number lines dropped, all whitespace removed;
    with ``punctuation=False`` only letters and digits are kept; ``fold`` folds quote and
    bracket variants."""
    text = unicodedata.normalize("NFKC", text)
    text = "\n".join(line for line in text.splitlines() if not _PAGE_NUMBER_LINE.fullmatch(line.strip()))
    if fold:
        text = text.translate(_FOLD)
    text = re.sub(r"\s+", "", text)
    if not punctuation:
        text = "".join(c for c in text if unicodedata.category(c)[0] in "LN")
    return text


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(a, b)


def cer(reference: str, hypothesis: str, *, punctuation: bool = True, fold: bool = False) -> float:
    """Character error rate of ``hypothesis`` against ``reference``: the edit distance between
    both after :func:`normalise_for_cer`, over the reference's length (0.0 for two empty texts)."""
    ref = normalise_for_cer(reference, punctuation=punctuation, fold=fold)
    hyp = normalise_for_cer(hypothesis, punctuation=punctuation, fold=fold)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
