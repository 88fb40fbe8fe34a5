"""OCR: scanned pages to text lines, offline, with models that ship in a PyPI package.

The engine is RapidOCR 3.10 (``rapidocr``) on onnxruntime, with the PP-OCRv6 small Chinese
detection and recognition models inside its wheel (no download: the default models are checked
by hash and used from the package). It was chosen by measurement (docs/formats.md,
``benchmarks/ocr_compare.py``); ``rapidocr_onnxruntime`` 1.4 (PP-OCRv4) was worse on punctuation,
〔〕 and faxes and 30% slower; cnocr downloads its models at run time.

* :func:`page_image`: a page of a file as an image: a PDF page rendered by pypdfium2 at
  :data:`RENDER_DPI` (capped at :data:`MAX_SIDE` px on the long side, the size the engine
  recognises at anyway), a frame of an image file, the scan embedded in an OFD page.
* :func:`recognise`: one image to an :class:`~yuanwen.models.OcrPage` (lines, boxes, scores).
* :func:`ocr_page`: both, for one page of a file: what the pipeline's OCR worker runs, one page
  per call, under a deadline and a memory limit (:mod:`ingest.sandbox`); the pipeline keeps each
  page in the knowledge base as it is done, so an interrupted ingest resumes at the next page.
* :func:`read_with_ocr`: read any file, recognising the pages that need it, in this process
  (scripts and benchmarks; the pipeline bounds and caches instead).

The readers lay recognised pages out and repair them like text-layer PDF pages
(:mod:`ingest.readers.scanned`).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from yuanwen.config import Config
from yuanwen.errors import OcrNeeded, ReadError
from yuanwen.models import OcrLine, OcrPage, ReadResult

from .readers import read_bytes, read_file, reader_for
from .readers.pdf import _PDFIUM_LOCK

__all__ = ["RENDER_DPI", "MAX_SIDE", "engine_id", "available", "page_image", "page_png", "recognise",
           "ocr_page", "read_with_ocr"]

#: PDF pages are rendered at this resolution: A4 (842 pt high) comes out 1,988 px high, just
#: under the engine's own working size. Measured: CER identical at 150, 200 and 300 dpi.
RENDER_DPI = 170
#: The engine shrinks an image's long side to this before detection; larger renders gain
#: nothing and cost time (raising the engine's limit lost whole lines in the measurement).
MAX_SIDE = 2000

#: Bumped whenever the way pages are recognised changes (resolution, deskew, orientation,
#: classifier, conversion): pages kept by an earlier way are recognised again.
RECOGNITION = "r3"

_MISSING = ("文字识别（OCR）组件未安装或无法加载（{why}）；请安装：pip install 'rapidocr>=3.10,<3.11' "
            "onnxruntime pypdfium2，或用 --no-ocr 跳过扫描件")

_engine: Any = None
_engine_lock = threading.Lock()


def engine_id() -> str:
    """The engine and models that recognise pages (cached pages are keyed by it)."""
    try:
        from importlib.metadata import version

        v = version("rapidocr")
    except Exception:  # noqa: BLE001 - not installed: pages cannot be recognised anyway
        v = "?"
    return f"rapidocr {v} PP-OCRv6-small {RECOGNITION}"


def available() -> str | None:
    """None when OCR can run here, else why not (a Chinese reason for the user)."""
    try:
        import onnxruntime  # noqa: F401
        import pypdfium2  # noqa: F401
        import rapidocr  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken native library
        return _MISSING.format(why=f"{type(exc).__name__}: {exc}")
    return None


def _get_engine():
    global _engine
    with _engine_lock:
        if _engine is None:
            why = available()
            if why:
                raise RuntimeError(why)
            import logging

            from rapidocr import RapidOCR

            threads = int(os.environ.get("YUANWEN_OCR_THREADS") or min(os.cpu_count() or 2, 4))
            _engine = RapidOCR(params={
                "Global.log_level": "error",
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            })
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        return _engine


def recognise(image, page: int = 1) -> OcrPage:
    """The text lines of one page image (a PIL image), with boxes and the engine's scores."""
    image = image.convert("RGB")
    w, h = image.size
    scale = min(1.0, MAX_SIDE / max(w, h))
    if scale < 1.0:  # the engine would shrink it anyway; do it once, with a good filter
        from PIL import Image

        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    t0 = time.perf_counter()
    image = deskew(image)
    w, h = image.size
    lines = _read_lines(image)
    turn = _misoriented(lines)
    if turn:  # a page scanned upside down or sideways: read it the other ways up
        tries = [(image.rotate(a, expand=True), None) for a in ((90, 270) if turn == "sideways" else (180,))]
        tries = [(im, _read_lines(im)) for im, _ in tries]
        turned, other = max(tries, key=lambda t: _sure_chars(t[1]))
        # sideways lines read fine (the engine turns tall crops) but cannot be laid out
        if turn == "sideways" or _sure_chars(other) > 1.5 * _sure_chars(lines):
            image, lines = turned, other
            w, h = image.size
    lines = to_simplified(lines)
    return OcrPage(page=page, width=w, height=h, lines=lines, seconds=time.perf_counter() - t0,
                   engine=engine_id())


def _read_lines(image) -> list[OcrLine]:
    """The engine's lines on ``image``: detection and recognition.

    No angle classifier: pages are upright once deskewed (a page upside down or sideways is
    turned whole, see :func:`recognise`), and the classifier flipped whole lines of dense text
    to garbage (``一《一`` for a full line) when it judged them upside down.
    """
    out = _get_engine()(image, use_det=True, use_cls=False, use_rec=True)  # flags persist across calls
    lines: list[OcrLine] = []
    if out.txts is not None:
        for text, box, score in zip(out.txts, out.boxes, out.scores):
            xs, ys = [float(p[0]) for p in box], [float(p[1]) for p in box]
            lines.append(OcrLine(str(text), (min(xs), min(ys), max(xs), max(ys)), float(score)))
    return lines


def _sure_chars(lines: list[OcrLine]) -> float:
    """How much text was read with confidence: characters weighted by score, scores >= 0.5."""
    return sum(ln.score * len(ln.text) for ln in lines if ln.score >= 0.5)


def _misoriented(lines: list[OcrLine]) -> str | None:
    """``"sideways"`` when most boxes stand taller than wide (text lines on end), ``"upside
    down"`` when the text reads with a low confidence (under 0.8 weighted: upright printed pages
    read at 0.95 and more, upside down ones at about 0.6), else None."""
    if not lines:
        return None
    tall = sum(1 for ln in lines if ln.box[3] - ln.box[1] > 1.5 * (ln.box[2] - ln.box[0]))
    if tall * 2 > len(lines):
        return "sideways"
    chars = sum(len(ln.text) for ln in lines)
    return "upside down" if sum(ln.score * len(ln.text) for ln in lines) / max(chars, 1) < 0.8 else None


_converters: dict[str, Any] = {}


def to_simplified(lines: list[OcrLine]) -> list[OcrLine]:
    """The lines of a page written in simplified characters, converted whole to them when the
    recognition drifted into traditional ones (the model reads both: a bold font photographed
    by phone came back half in traditional, 12% CER). A page with more traditional-only than
    simplified-only characters is taken as written in traditional characters and left alone."""
    if not _converters:
        from opencc import OpenCC

        _converters["t2s"], _converters["s2t"] = OpenCC("t2s"), OpenCC("s2t")
    t2s, s2t = _converters["t2s"], _converters["s2t"]
    text = "".join(ln.text for ln in lines)
    traditional = sum(1 for c in set(text) if t2s.convert(c) != c)
    if not traditional:
        return lines
    simplified = sum(1 for c in set(text) if s2t.convert(c) != c)
    if traditional > simplified:
        return lines
    return [OcrLine(t2s.convert(ln.text), ln.box, ln.score) for ln in lines]


def skew_angle(image) -> float:
    """The rotation (degrees, counter-clockwise) that sets the text lines of a page image
    level: the one that makes the rows of ink sharpest (projection profile), searched from
    -5° to 5° on a small copy, then refined to 0.05°."""
    import numpy as np
    from PIL import Image

    small = image.convert("L")
    small.thumbnail((800, 800))
    ink = Image.fromarray(((np.asarray(small) < 160) * 255).astype("uint8"))

    def sharpness(angle: float) -> float:
        rows = np.asarray(ink.rotate(angle, resample=Image.NEAREST, fillcolor=0), dtype=np.float32).sum(axis=1)
        return float(np.square(np.diff(rows)).sum())

    best = max(np.arange(-5.0, 5.01, 0.25), key=sharpness)
    return float(max(np.arange(best - 0.25, best + 0.251, 0.05), key=sharpness))


def deskew(image, min_angle: float = 0.2):
    """``image`` turned upright when its lines are tilted by ``min_angle`` degrees or more
    (a page fed askew, a phone photo): tilted lines split and interleave in reading order."""
    angle = skew_angle(image)
    if abs(angle) < min_angle:
        return image
    from PIL import Image

    return image.convert("RGB").rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(255, 255, 255))


def page_image(path: Path, page: int, dpi: int = RENDER_DPI):
    """Page ``page`` (1-based) of the file at ``path`` as a PIL image, for OCR or for showing
    beside its recognised text; ReadError when the file cannot give one."""
    path = Path(path)
    reader = reader_for(path)
    name = reader.name if reader else ""
    if name == "pdf":
        return _pdf_page(path, page, dpi)
    if name == "image":
        from .readers.image import frame

        return frame(read_bytes(path), path, page)
    if name == "ofd":
        from .readers.ofd import page_scan

        return page_scan(read_bytes(path), path, page)
    raise ReadError(path, "此类文件没有页面图像")


def page_png(path: Path, page: int, max_side: int = 1400) -> bytes:
    """Page ``page`` of the file at ``path`` as PNG bytes, at most ``max_side`` px on its long
    side (for showing beside the recognised text); ReadError when the file cannot give it."""
    import io

    path = Path(path)
    if not path.exists():
        raise ReadError(path, "原件已不在入库时的位置，无法显示页面图像")
    image = page_image(path, page)
    image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _pdf_page(path: Path, page: int, dpi: int):
    try:
        import pypdfium2 as pdfium
    except ImportError as exc:
        raise ReadError(path, _MISSING.format(why="pypdfium2")) from exc
    with _PDFIUM_LOCK:  # PDFium is not thread-safe (the app renders pages from several sessions)
        try:
            pdf = pdfium.PdfDocument(str(path))
        except Exception as exc:  # noqa: BLE001 - damaged, or encrypted with a password
            raise ReadError(path, "PDF 页面无法渲染（文件已损坏或已加密）") from exc
        try:
            if not 1 <= page <= len(pdf):
                raise ReadError(path, f"PDF 没有第 {page} 页")
            p = pdf[page - 1]
            w, h = p.get_size()  # points
            scale = min(dpi / 72.0, MAX_SIDE / max(w, h, 1.0))
            return p.render(scale=scale).to_pil().convert("RGB")
        except ReadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ReadError(path, f"PDF 第 {page} 页无法渲染（{type(exc).__name__}）") from exc
        finally:
            pdf.close()


def ocr_page(path: Path, override: dict, config: Config, name: Path | None = None) -> OcrPage:
    """The OCR worker's task (:mod:`ingest.sandbox` target): recognise page ``override["page"]``
    of ``path``. A missing engine is a ReadError naming what to install."""
    why = available()
    if why:
        raise ReadError(path, why)
    page = int(override["page"])
    return recognise(page_image(path, page), page)


def read_with_ocr(path: Path | str, config: Config | None = None) -> ReadResult:
    """Read ``path`` like the pipeline does, recognising the pages that need OCR in this process
    (no cache, no deadline); ReadError when it cannot be read or OCR is not installed."""
    config = config or Config()
    path = Path(path)
    kw = {"max_bytes": config.max_file_bytes, "max_chars": config.max_text_chars}
    try:
        return read_file(path, ocr={}, **kw)
    except OcrNeeded as need:
        why = available()
        if why:
            raise ReadError(path, why) from need
        pages = {n: recognise(page_image(path, n), n) for n in need.pages}
    return read_file(path, ocr=pages, **kw)
