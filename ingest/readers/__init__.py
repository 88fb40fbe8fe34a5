"""Readers: one file in, a :class:`~yuanwen.models.ReadResult` out; the registry of formats.

Each format is one module here (``txt``, ``markdown``, ``html``, ``docx``, ``pdf``, ``doc``, ``ofd``,
``image``) that
declares ``READER = Reader(name, suffixes, read, max_bytes=...)``; :func:`register` adds it.
:func:`read_file` and :func:`check_file` dispatch by suffix through the registry; the walk's
:data:`SUPPORTED_SUFFIXES` and the app's :func:`upload_types` come from it too. To add a
format, write ``ingest/readers/<format>.py`` with a ``READER`` and list it in ``_BUILT_IN``.

Every reader's text goes through :func:`ingest.normalise.clean_text` (``_common.finish``);
offsets a reader records (Markdown/HTML/DOCX headings, PDF pages) are moved along with that
repair, so ``text[h.start:h.end] == h.text`` holds. Readers raise
:class:`~yuanwen.errors.ReadError` with a Chinese reason the user can act on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from yuanwen.errors import OcrNeeded, ReadError
from yuanwen.models import OcrPage, ReadResult

from ..normalise import GARBAGE_TEXT_SHARE, garbage_share, is_garbage
from ..walk import os_reason, special_file_kind
from . import doc, docx, html, image, markdown, ofd, pdf, txt
from ._common import NO_TEXT, TEXT_MAX_BYTES, Reader, mb, read_bytes

__all__ = [
    "Reader", "register", "reader_for", "readers", "upload_types", "SUPPORTED_SUFFIXES", "check_file",
    "read_file", "read_bytes", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_CHARS", "TEXT_MAX_BYTES", "OcrNeeded",
]

DEFAULT_MAX_BYTES = 60 * 1024 * 1024
# Past this a document is a collection, not a document: ~20k passages, hours of embedding.
DEFAULT_MAX_CHARS = 5_000_000

_UNSUPPORTED = "不支持的文件类型 {suffix}；支持 {supported}"
_GARBLED = ("文件内容是乱码（约 {pct}% 的字符不是文字：私用区字符、替换符或罕见字），可能是编码或"
            "字体错误；请用原软件另存为 UTF-8 文本或带正确文字的文件后再导入")

# ---------------------------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------------------------
#: Suffix (lower case, with the dot) -> its reader, in registration order.
_BY_SUFFIX: dict[str, Reader] = {}
#: Every suffix a reader is registered for, in registration order (the walk's file filter).
SUPPORTED_SUFFIXES: tuple[str, ...] = ()


def register(reader: Reader) -> Reader:
    """Add ``reader`` for its suffixes; ValueError when another format already has one of them.

    The parse worker (``ingest/sandbox.py``) is a fresh interpreter: a reader registered at
    run time elsewhere than in this package's import is not known there.
    """
    global SUPPORTED_SUFFIXES
    suffixes = tuple(s.lower() for s in reader.suffixes)
    for s in suffixes:
        if not s.startswith(".") or len(s) < 2:
            raise ValueError(f"reader {reader.name!r}: a suffix starts with a dot: {s!r}")
        other = _BY_SUFFIX.get(s)
        if other is not None and other.name != reader.name:
            raise ValueError(f"suffix {s} is read by {other.name!r} already")
    for s in suffixes:
        _BY_SUFFIX[s] = reader
    SUPPORTED_SUFFIXES = tuple(_BY_SUFFIX)
    return reader


def reader_for(path: Path | str) -> Reader | None:
    """The reader for ``path``'s suffix (any case), or None for a format nobody reads."""
    return _BY_SUFFIX.get(Path(path).suffix.lower())


def readers() -> list[Reader]:
    """The registered readers, each once, in registration order."""
    return list(dict.fromkeys(_BY_SUFFIX.values()))


def upload_types() -> list[str]:
    """The suffixes a user may upload, without the dot (``["txt", "md", ...]``)."""
    return [s.lstrip(".") for s in SUPPORTED_SUFFIXES]


_BUILT_IN = (txt, markdown, html, pdf, docx, doc, ofd, image)
for _module in _BUILT_IN:
    register(_module.READER)


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------
def check_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> os.stat_result:
    """The file's stat if it exists, is a file of a supported type and not too large; else ReadError."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ReadError(path, "文件不存在") from exc
    except OSError as exc:
        raise ReadError(path, os_reason(exc)) from exc
    if stat.S_ISDIR(st.st_mode):
        raise ReadError(path, "这是文件夹，不是文件")
    kind = special_file_kind(st.st_mode)
    if kind:  # reading a FIFO or /dev/zero would block or never end
        raise ReadError(path, f"这是{kind}，不是普通文件，已跳过；请放入普通文件后再导入")
    reader = reader_for(path)
    if reader is None:
        suffix = path.suffix.lower()
        raise ReadError(path, _UNSUPPORTED.format(suffix=suffix or "（无扩展名）",
                                                  supported=" ".join(SUPPORTED_SUFFIXES)))
    limit = min(max_bytes, reader.max_bytes) if reader.max_bytes is not None else max_bytes
    if st.st_size > limit:
        raise ReadError(
            path, f"文件过大（{mb(st.st_size)} MB，上限 {mb(limit)} MB）；请拆分后再导入"
        )
    return st


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
              max_chars: int = DEFAULT_MAX_CHARS, ocr: Mapping[int, OcrPage] | None = None) -> ReadResult:
    """Read one file by its suffix; :class:`ReadError` if it is missing, too large or unreadable.

    ``ocr``: None reads text layers only (a scan raises :class:`OcrNeeded`, a ReadError); a
    mapping (empty at first) asks for every page without text to be recognised: the reader
    raises :class:`OcrNeeded` naming the pages missing from it, else uses the recognised text.
    """
    result = _read_any(Path(path), max_bytes, ocr)
    if len(result.text) > max_chars:
        raise ReadError(path, f"正文过长（约 {len(result.text) // 10000} 万字，上限 "
                              f"{max_chars // 10000} 万字）；请拆分后再导入")
    return result


def _read_any(path: Path, max_bytes: int, ocr: Mapping[int, OcrPage] | None) -> ReadResult:
    check_file(path, max_bytes)
    reader = reader_for(path)
    assert reader is not None  # check_file refuses a suffix nobody reads
    kwargs = {"ocr": ocr} if reader.ocr else {}
    if reader.reads_path:
        result = reader.read(path, path, **kwargs)
    else:
        data = read_bytes(path)
        if len(data) > max_bytes:  # grew since stat
            raise ReadError(path, f"文件过大（{mb(len(data))} MB，上限 {mb(max_bytes)} MB）")
        result = reader.read(data, path, **kwargs)
    if reader.judge_text:
        if not result.text.strip():
            raise ReadError(path, NO_TEXT)
        if is_garbage(result.text, GARBAGE_TEXT_SHARE):
            share, _ = garbage_share(result.text)
            raise ReadError(path, _GARBLED.format(pct=round(share * 100)))
    return result
