"""What the readers share: the :class:`Reader` record, reading a file's bytes, the final
cleaning with heading and page offsets moved along, and the user's notes and limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from yuanwen.errors import ReadError
from yuanwen.models import Heading, ReadResult

from ..normalise import clean_text_tracking, replacement_warning

# Text formats hold nothing but text: 20 MB of UTF-8 Chinese is ~7 million characters.
TEXT_MAX_BYTES = 20 * 1024 * 1024

NO_TEXT = "文件没有可读文字"


@dataclass(frozen=True)
class Reader:
    """One file format: what :func:`ingest.readers.read_file` needs to dispatch to it."""

    #: The format's name (``ReadResult.format``): ``"txt"``, ``"md"``, ``"pdf"``, ...
    name: str
    #: File name suffixes, lower case with the dot: ``(".html", ".htm")``.
    suffixes: tuple[str, ...]
    #: ``read(data, path)``: the file's bytes (or, with ``reads_path``, its path) in, the text out;
    #: :class:`ReadError` with a Chinese reason when the file cannot be read.
    read: Callable[[bytes | Path, Path], ReadResult]
    #: The format's own size limit in bytes (the smaller of it and the caller's applies);
    #: None: only the caller's (``Config.max_file_bytes``).
    max_bytes: int | None = None
    #: ``read()`` gets the path and opens the file itself (PDF), not the file's bytes.
    reads_path: bool = False
    #: The dispatcher refuses an empty or garbled text; False where the reader judges its own
    #: text (the PDF reader, page by page).
    judge_text: bool = True
    #: ``read()`` also takes ``ocr=``: the recognised pages (page number -> :class:`OcrPage`),
    #: or None. Such a reader raises :class:`~yuanwen.errors.OcrNeeded` for pages it needs
    #: recognised (see :mod:`ingest.ocr`).
    ocr: bool = False


def read_bytes(path: Path) -> bytes:
    """The file's bytes; ReadError naming the reason when it cannot be read."""
    try:
        return path.read_bytes()
    except PermissionError as exc:
        raise ReadError(path, "没有读取权限；请检查文件权限") from exc
    except FileNotFoundError as exc:
        raise ReadError(path, "文件不存在") from exc
    except OSError as exc:
        raise ReadError(path, f"无法读取文件（{exc.strerror or exc}）") from exc


def mb(n: int) -> str:
    """``n`` bytes in MB for a message: ``"61"``, ``"2.5"``, ``"0.004"``."""
    v = n / (1024 * 1024)
    if v >= 10:
        return f"{v:.0f}"
    if v >= 0.1:
        return f"{v:.1f}"
    return f"{v:.3f}".rstrip("0").rstrip(".") or "0"


def finish(text: str, fmt: str, headings: list[tuple[int, int, int]], meta: dict[str, str],
           encoding: str | None, pages: list[int] | None = None) -> ReadResult:
    """Clean ``text``, move heading spans and page starts along, build the result."""
    pages = list(pages or [])
    offsets = [o for s, e, _ in headings for o in (s, e)] + pages
    clean, moved = clean_text_tracking(text, offsets)
    out: list[Heading] = []
    for i, (_, _, level) in enumerate(headings):
        s, e = moved[2 * i], moved[2 * i + 1]
        # A heading line never carries surrounding whitespace into its span.
        while s < e and clean[s].isspace():
            s += 1
        while e > s and clean[e - 1].isspace():
            e -= 1
        if e > s:
            out.append(Heading(s, e, level, clean[s:e]))
    return ReadResult(text=clean, format=fmt, pages=moved[2 * len(headings):], headings=out,
                      meta=meta, encoding=encoding)


def note_replaced(result: ReadResult, replaced: int) -> ReadResult:
    """``result`` with the user's note on characters decoding replaced, if any."""
    if replaced:
        result.warnings.append(replacement_warning(replaced, result.encoding or "utf-8"))
    return result
