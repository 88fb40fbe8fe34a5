"""Image files (``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff``, multi-page TIFF): photographed
or scanned pages, read by OCR.

An image has no text layer: read without recognised pages (``ocr=None`` or a mapping missing
some frames), the reader raises :class:`~yuanwen.errors.OcrNeeded` naming every frame; given
them, each frame's lines are laid out (:mod:`ingest.readers.scanned`) and repaired like PDF
pages (:func:`~ingest.readers.pdf.repair_pdf_pages`), one page per frame.

Images are told by content (Pillow reads the header), not by name. Bounds against hostile
files, checked from the header before any pixel is decoded: at most :data:`MAX_PIXELS` a frame
(a decompression bomb declares 50,000 × 50,000 px in a few kB) and :data:`MAX_FRAMES` frames
(a TIFF of thousands of pages), counted under a time budget.
"""

from __future__ import annotations

import io
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

from yuanwen.errors import OcrNeeded, ReadError
from yuanwen.models import OcrPage, ReadResult

from ._common import Reader, finish
from .pdf import page_list, repair_pdf_pages
from .scanned import ocr_meta, ocr_page_text

__all__ = ["READER", "open_image", "frame", "MAX_PIXELS", "MAX_FRAMES"]

#: A frame with more pixels is refused: A3 at 600 dpi is 70 million.
MAX_PIXELS = 80_000_000
#: A file with more frames (pages) is refused.
MAX_FRAMES = 2000
#: Counting frames stops with a ReadError past this (a TIFF's IFD chain can be made slow).
COUNT_BUDGET_S = 20.0

#: What Pillow may decode: the formats of the suffixes this reader is registered for.
_FORMATS = ("PNG", "JPEG", "TIFF")  # a JPEG opener also reads MPO (phone cameras)

_NEEDS_OCR = "图片需要文字识别（OCR）后才能导入"
_NOT_IMAGE = "不是有效的图片文件（无法识别图片格式或文件已损坏）；请确认文件格式后再导入"
_BOMB = ("图片尺寸异常（{w} × {h} 像素，上限 {cap} 万像素），可能是恶意构造的“解压炸弹”，已拒绝；"
         "请确认文件来源，或缩小分辨率后再导入")
_BOMB_TOTAL = ("图片尺寸异常（{size}，上限 {cap} 万像素），可能是恶意构造的“解压炸弹”，已拒绝；"
               "请确认文件来源，或缩小分辨率后再导入")
_TOO_MANY = "图片页数过多（超过 {max} 页）；请拆分成较小的文件后再导入"
_TOO_SLOW = "图片页数统计超时（文件结构异常），已拒绝；请确认文件来源后另存后再导入"
_NO_TEXT = "图片中没有识别出文字；请确认图片清晰、方向正确后再导入"
_DAMAGED = "第 {n} 页图片已损坏，无法解码；请重新扫描或另存后再导入"


def open_image(data: bytes, path: Path):
    """The image in ``data``, opened lazily (header only); ReadError when it is not an image
    or declares more than :data:`MAX_PIXELS` (checked here, before any pixel is decoded)."""
    from PIL import Image

    if not data:
        raise ReadError(path, "文件为空")
    try:
        with warnings.catch_warnings():  # past Pillow's warning size: our own check follows
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # only these decoders: Pillow would otherwise open EPS through Ghostscript (which
            # runs PostScript), and formats nobody scans to
            im = Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as exc:  # past twice Pillow's own limit
        m = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"约 {int(m.group(1)) // 10_000} 万像素" if m else "像素数过大"
        raise ReadError(path, _BOMB_TOTAL.format(size=size, cap=MAX_PIXELS // 10_000)) from exc
    except Exception as exc:  # UnidentifiedImageError, a truncated header, ...
        raise ReadError(path, _NOT_IMAGE) from exc
    _check_size(im, path)
    return im


def _check_size(im, path: Path) -> None:
    w, h = im.size
    if w <= 0 or h <= 0:
        raise ReadError(path, _NOT_IMAGE)
    if w * h > MAX_PIXELS:
        raise ReadError(path, _BOMB.format(w=w, h=h, cap=MAX_PIXELS // 10_000))


def frame_count(im, path: Path) -> int:
    """The number of frames (pages), counted without decoding them, bounded."""
    deadline = time.monotonic() + COUNT_BUDGET_S
    n = 0
    while True:
        try:
            im.seek(n)
        except EOFError:
            break
        except Exception as exc:
            if n == 0:
                raise ReadError(path, _NOT_IMAGE) from exc
            break  # a damaged frame chain: the frames before it
        n += 1
        if n > MAX_FRAMES:
            raise ReadError(path, _TOO_MANY.format(max=MAX_FRAMES))
        if time.monotonic() > deadline:
            raise ReadError(path, _TOO_SLOW)
    im.seek(0)
    return max(n, 1)


def frame(data: bytes, path: Path, page: int):
    """Frame ``page`` (1-based) of the image in ``data``, decoded, as an RGB image (bounded)."""
    im = open_image(data, path)
    if page > 1:
        try:
            im.seek(page - 1)
        except EOFError as exc:
            raise ReadError(path, f"图片没有第 {page} 页") from exc
    _check_size(im, path)  # each frame of a TIFF has its own size
    try:
        im.load()
        from PIL import ImageOps

        im = ImageOps.exif_transpose(im)  # a phone photo taken sideways
        return im.convert("RGB")
    except ReadError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise ReadError(path, _DAMAGED.format(n=page)) from exc


def read_image(data: bytes, path: Path, ocr: Mapping[int, OcrPage] | None = None) -> ReadResult:
    """An image file's text: its frames' recognised lines, repaired; OcrNeeded without them."""
    path = Path(path)
    im = open_image(data, path)
    fmt = (im.format or "image").lower()
    n = frame_count(im, path)
    pages = list(range(1, n + 1))
    missing = [p for p in pages if ocr is None or p not in ocr]
    if missing:
        raise OcrNeeded(path, missing, n, _NEEDS_OCR)
    assert ocr is not None
    text, offsets = repair_pdf_pages([ocr_page_text(ocr[p]) for p in pages])
    if not text.strip():
        raise ReadError(path, _NO_TEXT)
    result = finish(text, {"jpeg": "jpg", "mpo": "jpg"}.get(fmt, fmt), [], ocr_meta(ocr, pages), None, offsets)
    if not result.text.strip():
        raise ReadError(path, _NO_TEXT)
    empty = [p for p in pages if not ocr[p].lines]
    if empty and len(empty) < n:
        result.warnings.append(f"{page_list(empty)}没有识别出文字")
    return result


READER = Reader("image", (".png", ".jpg", ".jpeg", ".tif", ".tiff"), read_image,
                judge_text=False, ocr=True)
