"""Legacy Word 97-2003 (.doc) and Kingsoft WPS (.wps): OLE2 compound files, read through
LibreOffice when it is installed.

The format is told from the content, not the name. An OLE2 file (magic ``D0 CF 11 E0 A1 B1 1A
E1``, opened with :mod:`olefile`) holding a ``WordDocument`` stream is Word binary (Word 97-2003,
and the ``.wps`` files of Kingsoft WPS, which use the same format); other OLE2 ``.wps`` files
(Microsoft Works) go to LibreOffice as they are. What offices often name ``.doc`` although it is
not: a DOCX (zip) goes to the DOCX reader, an HTML page ("save as web page") to the HTML reader,
RTF and MHT to LibreOffice. Anything else, a damaged OLE2 structure and an encrypted file are
refused with a reason.

LibreOffice runs headless on a copy of the file in a private temporary folder, with its own
profile (``-env:UserInstallation``: no clash with a LibreOffice the user has open), in its own
process group, killed after :data:`CONVERT_TIMEOUT_S`. It writes a DOCX, which the DOCX reader
reads: paragraphs, heading styles and tables (row by row, cells tab-separated) as for any DOCX.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from yuanwen.errors import ReadError
from yuanwen.models import ReadResult

from ._common import Reader
from .docx import read_docx_bytes
from .html import read_html_bytes

__all__ = ["CONVERT_TIMEOUT_S", "OLE_MAGIC", "READER", "convert_to_docx", "find_soffice", "read_doc_bytes", "sniff"]

#: A conversion taking longer is stopped (a page of Word takes well under a second; the
#: parse worker's own deadline, ``Config.parse_timeout_s``, is 120 s by default).
CONVERT_TIMEOUT_S = 60.0

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WORD_MAGIC = (b"\xec\xa5", b"\xdc\xa5", b"\xdb\xa5")  # FIB wIdent: Word 97+, Word 95, Word 2

_NO_CONVERTER = ("读取 {kind} 文件需要 LibreOffice，本机未安装；请安装 LibreOffice（Linux：apt install "
                 "libreoffice-writer；Windows、macOS：LibreOffice 官方安装包）后重新导入，"
                 "或用 Word/WPS 将文件另存为 .docx 后再导入")
_BROKEN_OLE = ("{kind} 文件结构已损坏（OLE 复合文档无法解析），无法读取；"
               "请用 Word/WPS 打开后另存为 .docx 再导入")
_NOT_WORD = ("不是有效的 {kind} 文件（文件内容既不是 Word 97-2003/WPS 格式，也不是 DOCX、RTF 或网页格式）；"
             "请确认文件格式，或用 Word/WPS 另存为 .docx 后再导入")
_OTHER_OLE = ("{kind} 文件里没有 Word 文档内容（可能是 Excel、PowerPoint 或其他程序的文件改了扩展名）；"
              "请确认文件格式后再导入")
_ENCRYPTED = "文件已加密（设置了打开密码），无法读取；请在 Word/WPS 中取消密码后再导入"
_TIMEOUT = "LibreOffice 转换超时（超过 {s} 秒），文件可能异常或过于复杂；已跳过"
_FAILED = "LibreOffice 无法转换此文件（{why}），文件可能已损坏；请用 Word/WPS 打开后另存为 .docx 再导入"


def _kind(path: Path) -> str:
    return "WPS" if path.suffix.lower() == ".wps" else "Word"


def find_soffice() -> str | None:
    """The LibreOffice program (``soffice``) on this machine, or None when it is not installed.

    ``YUANWEN_SOFFICE`` names it explicitly; else the PATH, then the usual install places."""
    named = os.environ.get("YUANWEN_SOFFICE")
    if named:
        return named if Path(named).is_file() else shutil.which(named)
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name)
        if found:
            return found
    places = [
        "/usr/lib/libreoffice/program/soffice", "/opt/libreoffice/program/soffice",
        "/Applications/LibreOffice.app/Contents/MacOS/soffice",
        r"C:\Program Files\LibreOffice\program\soffice.exe",
        r"C:\Program Files (x86)\LibreOffice\program\soffice.exe",
    ]
    return next((p for p in places if Path(p).is_file()), None)


def sniff(data: bytes) -> str:
    """What ``data`` really is: ``"ole"``, ``"docx"`` (zip), ``"rtf"``, ``"mht"``, ``"html"``
    or ``"unknown"``."""
    if data.startswith(OLE_MAGIC):
        return "ole"
    if data.startswith(b"PK\x03\x04"):
        return "docx"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"mime-version:") or (b"mime-version:" in head and b"multipart/related" in head):
        return "mht"
    if head.startswith((b"<html", b"<!doctype html", b"<?xml")) and b"<html" in head:
        return "html"
    return "unknown"


def _ole_kind(data: bytes, path: Path) -> str:
    """``"word"`` for Word binary (and Kingsoft WPS), ``"other"`` for another OLE2 document;
    ReadError for a damaged or encrypted one."""
    import olefile

    kind = _kind(path)
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            names = {"/".join(e) for e in ole.listdir(streams=True, storages=False)}
            if "EncryptionInfo" in names or "EncryptedPackage" in names:
                raise ReadError(path, _ENCRYPTED)  # an encrypted DOCX in its OLE2 wrapper
            if "WordDocument" in names:
                fib = ole.openstream("WordDocument").read(12)
                if len(fib) < 12 or fib[:2] not in _WORD_MAGIC:
                    raise ReadError(path, _BROKEN_OLE.format(kind=kind))
                if fib[0x0B] & 0x01:  # FIB flags, fEncrypted
                    raise ReadError(path, _ENCRYPTED)
                return "word"
    except ReadError:
        raise
    except Exception as exc:  # olefile raises OSError, struct.error, IndexError, ... on damage
        raise ReadError(path, _BROKEN_OLE.format(kind=kind)) from exc
    if path.suffix.lower() == ".wps":
        return "other"  # Microsoft Works: LibreOffice has a filter
    raise ReadError(path, _OTHER_OLE.format(kind=kind))


def convert_to_docx(data: bytes, suffix: str, path: Path, timeout_s: float = CONVERT_TIMEOUT_S) -> bytes:
    """``data`` (a file LibreOffice reads, saved with ``suffix``) converted to DOCX bytes by
    headless LibreOffice; ReadError when it is missing, fails or takes too long."""
    soffice = find_soffice()
    if soffice is None:
        raise ReadError(path, _NO_CONVERTER.format(kind=_kind(path)))
    with tempfile.TemporaryDirectory(prefix="yuanwen-doc-") as tmp:
        work = Path(tmp)
        src = work / f"input{suffix}"
        src.write_bytes(data)
        out = work / "out"
        cmd = [soffice, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless",
               "--invisible", "--nologo", "--norestore", "--nodefault", "--nolockcheck",
               "--convert-to", "docx:MS Word 2007 XML", "--outdir", str(out), str(src)]
        env = dict(os.environ, HOME=str(work))  # nothing written to the user's home
        popen: dict = {"start_new_session": True} if sys.platform != "win32" else {
            "creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=work, env=env, **popen)
        try:
            log, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            _kill(proc)
            raise ReadError(path, _TIMEOUT.format(s=f"{timeout_s:g}")) from exc
        finally:
            if proc.poll() is None:
                _kill(proc)
        result = out / "input.docx"
        if not result.is_file() or result.stat().st_size == 0:
            text = log.decode("utf-8", "replace")
            why = "无法打开源文件" if "source file could not be loaded" in text else f"退出码 {proc.returncode}"
            raise ReadError(path, _FAILED.format(why=why))
        return result.read_bytes()


def _kill(proc: subprocess.Popen) -> None:
    """Kill LibreOffice and whatever it started (its own process group)."""
    with contextlib.suppress(OSError):
        if sys.platform != "win32":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(timeout=10)


def read_doc_bytes(data: bytes, path: Path) -> ReadResult:
    """A .doc or .wps file: Word binary and WPS through LibreOffice, then the DOCX reader; a
    DOCX, HTML, RTF or MHT file with this name by the reader of what it is."""
    fmt = "wps" if path.suffix.lower() == ".wps" else "doc"
    what = sniff(data)
    if what == "docx":
        return read_docx_bytes(data, path)
    if what == "html":
        return read_html_bytes(data, path)
    if what == "ole":
        suffix = ".doc" if _ole_kind(data, path) == "word" else ".wps"
    elif what in ("rtf", "mht"):
        suffix, fmt = f".{what}", what
    else:
        raise ReadError(path, _NOT_WORD.format(kind=_kind(path)))
    result = read_docx_bytes(convert_to_docx(data, suffix, path), path)
    return dataclasses.replace(result, format=fmt)


READER = Reader("doc", (".doc", ".wps"), read_doc_bytes)
