"""Uploads are judged by their content, not their name: a file whose bytes are not what its
extension says is refused before anything reads it, and nothing is written for it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from yuanwen.uploads import UPLOAD_DIR, content_problem, save_uploads

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples"


class _Up:
    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data, self.size = name, data, len(data)

    def getvalue(self) -> bytes:
        return self._data


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    return buf.getvalue()


@pytest.mark.parametrize("name,data", [
    ("报告.pdf", b"MZ\x90\x00 this is a Windows executable"),
    ("通知.docx", _zip({"payload.exe": b"MZ"})),
    ("通知.docx", b"PK\x03\x04 not really a zip"),
    ("扫描.png", b"\xff\xd8\xff\xe0 a jpeg called png"),
    ("讲话.txt", b"\x7fELF\x02\x01\x01 a program"),
    ("讲话.md", b"text with a \x00 NUL byte"),
    ("公文.ofd", _zip({"Doc_0/Document.xml": b"<x/>"})),
])
def test_content_not_matching_the_name_is_refused(tmp_path, name, data):
    saved, refused = save_uploads(tmp_path, [_Up(name, data)], None)
    assert saved == [] and refused and refused[0][0] == name
    assert "不符" in refused[0][1] or "损坏" in refused[0][1]
    assert [p.name for p in (tmp_path / UPLOAD_DIR).iterdir() if not p.name.startswith(".")] == []


def test_real_files_pass(tmp_path):
    files = [p for p in (ROOT / "corpus").iterdir() if p.is_file()]
    if SAMPLES.is_dir():
        files += [p for p in SAMPLES.rglob("*") if p.suffix.lower() in (".ofd", ".doc", ".wps")]
    assert files
    for p in files:
        assert content_problem(p.suffix, p.read_bytes()) is None, p
    utf16 = "关于安全生产的通知".encode("utf-16")
    assert content_problem(".txt", utf16) is None
    assert content_problem(".docx", _zip({"[Content_Types].xml": b"", "word/document.xml": b"<w/>"})) is None
