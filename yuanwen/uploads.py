"""Uploaded files saved into a knowledge base's ``uploads/`` folder, safely.

Names are made safe to create (no folder part, no ``..``, no odd characters, no reserved
Windows names) and two different uploads never overwrite each other: a taken name gets a
numbered one (``会议_纪要 (2).txt``), while the same file uploaded again replaces its earlier
version. ``uploads/.names.json`` remembers the name each saved file was uploaded as.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path
from collections.abc import Collection
from typing import Protocol

from .errors import UsageError

MAX_UPLOAD_MB = 50
UPLOAD_DIR = "uploads"
UPLOAD_NAMES = ".names.json"  # in UPLOAD_DIR: saved file name -> the name it was uploaded as


class Upload(Protocol):
    """What an upload offers (Streamlit's ``UploadedFile`` is one): a name, a size, the bytes."""

    name: str
    size: int

    def getvalue(self) -> bytes: ...


_UNSAFE_CHARS = re.compile(r"[^\w\u3000-\u303f\uff00-\uffef()（）《》〔〕【】\-—·、， .+&#@,=]+")
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def safe_filename(name: str, default: str = "upload") -> str:
    """A file name that is safe to create in one folder: no directory part, no ``..``, no
    control or odd characters (letters, digits, CJK, spaces and common punctuation are kept,
    so a safe name stays as it was uploaded)."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = re.sub(r"[^0-9a-z]", "", ext.lower())[:8]
    stem = _UNSAFE_CHARS.sub("_", stem)
    stem = re.sub(r" +", " ", re.sub(r"_+", "_", stem)).strip("._- ")[:100].strip("._- ") or default
    if stem.upper() in _RESERVED:
        stem = f"_{stem}"
    return f"{stem}.{ext}" if ext else stem


#: What each kind of file starts with (its "magic"): an upload is refused when its bytes are not
#: what its name says (a renamed executable, an archive called .pdf), before anything reads it.
#: (.doc and .wps are told apart by their reader, ingest/readers/doc.py.)
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "docx": (b"PK\x03\x04",), "ofd": (b"PK\x03\x04",),
    "png": (b"\x89PNG\r\n\x1a\n",), "jpg": (b"\xff\xd8\xff",), "jpeg": (b"\xff\xd8\xff",),
    "tif": (b"II*\x00", b"MM\x00*"), "tiff": (b"II*\x00", b"MM\x00*"),
}
#: Members a zip must hold to be what its name says.
_ZIP_MEMBERS = {"docx": "word/document.xml", "ofd": "OFD.xml"}
_TEXT_TYPES = {"txt", "md", "markdown", "html", "htm"}
_BINARY_MAGIC = (b"%PDF-", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"MZ", b"\x7fELF", b"\x89PNG",
                 b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"Rar!", b"7z\xbc\xaf")


def content_problem(suffix: str, data: bytes) -> str | None:
    """Why ``data`` is not a ``suffix`` file (judged by its content, not its name), or None.
    An empty file passes (ingest reports it as empty, naming it); .doc and .wps pass to their
    reader, which tells their real format by content (offices save RTF, MHT, HTML and DOCX
    files under those names) and reports anything else."""
    kind = suffix.lower().lstrip(".")
    if not data:
        return None
    if kind in _TEXT_TYPES:
        head = data[:65536]
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text with its byte-order mark
            return None
        if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
            return "文件内容不是文本，与扩展名不符"
        return None
    magic = _MAGIC.get(kind)
    if magic is None:
        return None
    if kind == "pdf":  # a PDF may have a few bytes of junk before its header
        if b"%PDF-" not in data[:1024]:
            return "文件内容不是 PDF，与扩展名不符"
        return None
    if not data.startswith(magic):
        return f"文件内容不是 {kind.upper()} 格式，与扩展名不符"
    member = _ZIP_MEMBERS.get(kind)
    if member:
        import io
        import zipfile

        try:
            names = {n.lstrip("/").lower() for n in zipfile.ZipFile(io.BytesIO(data)).namelist()}
        except (zipfile.BadZipFile, ValueError, OSError):
            return "文件已损坏（不是完整的 ZIP 容器）"
        if member.lower() not in names and not any(n.endswith("/" + member.lower()) for n in names):
            return f"文件内容不是 {kind.upper()} 格式（缺少 {member}），与扩展名不符"
    return None


def upload_target(folder: Path, name: str) -> Path:
    """Where an uploaded file called ``name`` is saved: inside ``folder``, never elsewhere."""
    folder = Path(folder)
    target = folder / safe_filename(name)
    if target.resolve().parent != folder.resolve():
        raise UsageError(f"文件名不安全，已拒绝：{name}")
    return target


def _numbered(name: str, n: int) -> str:
    """``name`` with `` (n)`` before its extension: 会议_纪要.txt -> 会议_纪要 (2).txt."""
    stem, dot, ext = name.rpartition(".")
    return f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"


def unique_upload_target(folder: Path, name: str, data: bytes, owners: dict[str, str],
                         claimed: set[str]) -> Path:
    """Where the upload ``name`` with bytes ``data`` is saved, so that two different uploads
    never overwrite each other: its safe name when that is free, holds the same bytes, or
    holds an earlier upload of the same ``name`` (an update); else the first free numbered
    name (``会议_纪要 (2).txt``). ``owners`` maps saved names to the names they were uploaded
    as (a file without an entry was uploaded under its own name); ``claimed`` holds the names
    saved earlier in this batch, which only the same bytes may reuse."""
    first = upload_target(folder, name)
    for n in range(1, 10_000):
        target = first if n == 1 else folder / _numbered(first.name, n)
        if target.resolve().parent != folder.resolve():  # a link planted in the folder
            continue
        if not target.exists():
            return target
        same_bytes = target.stat().st_size == len(data) and target.read_bytes() == data
        if same_bytes or (target.name not in claimed and owners.get(target.name, target.name) == name):
            return target
    raise UsageError(f"同名文件过多，已拒绝：{name}")


def save_uploads(kb_dir: Path, files: list[Upload], types: Collection[str] | None = None,
                 ) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """Save uploaded files under ``<kb>/uploads/`` with safe names; two different uploads
    never overwrite each other (see :func:`unique_upload_target`). ``types``: the suffixes
    accepted, without the dot (the app passes ``ingest.readers.upload_types()``); None: any.

    Returns (original name, saved path) for each saved file, and (name, reason) for refusals.
    """
    from filelock import FileLock

    folder = kb_dir / UPLOAD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    saved, refused = [], []
    names_file = folder / UPLOAD_NAMES
    with FileLock(str(folder / ".upload.lock"), timeout=120):  # other sessions and processes
        try:
            owners = json.loads(names_file.read_text(encoding="utf-8"))
            owners = owners if isinstance(owners, dict) else {}
        except (OSError, ValueError):
            owners = {}
        claimed: set[str] = set()
        for f in files:
            if f.size > MAX_UPLOAD_MB * 1048576:
                refused.append((f.name, f"文件过大（{f.size / 1048576:.1f} MB，上限 {MAX_UPLOAD_MB} MB）"))
                continue
            if types is not None and Path(safe_filename(f.name)).suffix.lstrip(".") not in types:
                refused.append((f.name, f"不支持的文件类型；请上传 {'、'.join(types)} 文件"))
                continue
            data = f.getvalue()
            problem = content_problem(Path(safe_filename(f.name)).suffix, data)
            if problem:
                refused.append((f.name, problem))
                continue
            try:
                target = unique_upload_target(folder, f.name, data, owners, claimed)
            except UsageError as exc:
                refused.append((f.name, str(exc)))
                continue
            if not (target.exists() and target.read_bytes() == data):
                tmp = target.with_name(f".{target.name}.part")
                tmp.write_bytes(data)
                os.replace(tmp, target)
            owners[target.name] = f.name
            claimed.add(target.name)
            saved.append((f.name, target))
        tmp = names_file.with_name(names_file.name + ".part")
        tmp.write_text(json.dumps(owners, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, names_file)
    return saved, refused
