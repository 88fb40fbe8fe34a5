"""The walk: which files an ingest reads, and what it passes over with a reason.

Folders are walked recursively in sorted order (each folder's files before its subfolders;
hidden entries, ``manifest.csv`` and unsupported suffixes left out), each file once. What the
walk cannot or will not read comes out as :class:`Skipped` with a Chinese reason, never an
exception: special files (FIFOs, devices, sockets: reading them blocks or never ends), symlinks
that loop or dangle, symlinks that leave the ingested folders (unless ``follow_links``: in a
shared drop folder a link may point at files nobody meant to share), and folders it may not read
(whose files must not be taken as deleted). Symlinked folders are entered only with
``follow_links`` and only when they lead outside the ingested folders (inside, their files are
walked under their own paths anyway), each real folder once, so a looping link cannot recurse.

File names that are not UTF-8 (GBK names from zip files made on Windows) are walked as Python
gives them (with surrogate escapes, which open() accepts); :func:`printable_path` is the form to
store and show.
"""

from __future__ import annotations

import errno
import hashlib
import os
import unicodedata
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Skipped", "walk", "iter_files", "printable_path", "os_reason", "special_file_kind", "parse_shard",
           "in_shard"]

SKIP_NAMES = {"manifest.csv"}
_OUTSIDE = "是指向导入文件夹之外的符号链接（{target}），为安全起见已跳过；确需导入请加 --follow-links，或直接导入原文件"
_FOLDER_UNREADABLE = "无法读取该文件夹（{why}），其中的文件本次均未处理，已入库的保持不变；请检查文件夹权限后重试"


@dataclass(frozen=True)
class Skipped:
    """A path the walk passes over, with the Chinese reason to show the user."""

    path: Path
    reason: str
    folder: bool = False  #: a folder that could not be listed: what lies under it is unknown


def printable_path(path: str | os.PathLike) -> str:
    """``path`` as text that SQLite, JSON and a terminal accept: a name that is not UTF-8 is read
    as GB18030 (GBK names from Windows zip files) when that works, else with replacement marks.
    Each path component is decoded on its own, so UTF-8 folders around a GBK name stay right."""
    s = os.fspath(path)
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    parts = []
    for part in os.fsencode(s).split(b"/"):
        try:
            parts.append(part.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                parts.append(part.decode("gb18030"))
            except UnicodeDecodeError:
                parts.append(part.decode("utf-8", "replace"))
    return "/".join(parts)


_ERRNO_REASONS = {
    errno.EACCES: "没有读取权限；请检查文件权限，或换有权限的用户导入",
    errno.EPERM: "没有读取权限；请检查文件权限，或换有权限的用户导入",
    errno.ENOENT: "文件不存在（可能在导入过程中被移走或删除）",
    errno.ENOTDIR: "路径中有一段不是文件夹；请检查路径",
    errno.ELOOP: "符号链接形成循环，无法打开；请删除或修正该链接",
    errno.ENAMETOOLONG: "路径过长；请缩短文件或文件夹名后再导入",
    errno.EIO: "读取时发生输入输出错误（磁盘或网络存储故障）；请检查存储后重试",
    errno.EISDIR: "这是文件夹，不是文件",
}


def os_reason(exc: OSError) -> str:
    """A Chinese reason for an operating-system error, saying what to do."""
    if exc.errno in _ERRNO_REASONS:
        return _ERRNO_REASONS[exc.errno]
    name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return f"无法读取（系统错误 {name}）；请检查文件和存储后重试"


def special_file_kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is, in Chinese; None for a regular file or folder."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "命名管道（FIFO）"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "设备文件"
    if stat.S_ISSOCK(mode):
        return "套接字"
    return "特殊文件"


def _inside(real: str, roots: list[str]) -> bool:
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def walk(paths: Iterable[Path | str], follow_links: bool = False) -> Iterator[Path | Skipped]:
    """The files to ingest, and :class:`Skipped` records for what is passed over.

    A path named explicitly that is not a folder is yielded as it is (even unsupported, missing
    or special), so the reader can report it. Each file once: a file reached again (through a
    symlink, or a folder named twice) is yielded only the first time, under that path.
    """
    paths = [Path(p) for p in paths]
    roots = [os.path.realpath(p) for p in paths]
    seen: set[str] = set()
    entered: set[str] = set()

    def once(key: str) -> bool:
        if key in seen:
            return False
        seen.add(key)
        return True

    for p in paths:
        if not os.path.isdir(p):  # False, not an error, for a path it may not look at
            if not once(os.path.realpath(p)):
                continue
            loop = _loop_error(p)
            yield Skipped(p, os_reason(loop)) if loop else p
            continue
        entered.add(os.path.realpath(p))
        for item in _walk_dir(p, roots, follow_links, entered):
            key = os.path.abspath(item.path) if isinstance(item, Skipped) else os.path.realpath(item)
            if once(key):
                yield item


def _loop_error(path: Path) -> OSError | None:
    """The error of a symlink that loops (nothing else can resolve it), else None."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
    except OSError as exc:
        return exc if exc.errno == errno.ELOOP else None
    return None


def _walk_dir(top: Path, roots: list[str], follow_links: bool, entered: set[str]) -> Iterator[Path | Skipped]:
    errors: list[OSError] = []
    suffixes = _suffixes()
    for root, dirs, files in os.walk(top, onerror=errors.append, followlinks=True):
        while errors:
            exc = errors.pop()
            yield Skipped(Path(exc.filename or root), _FOLDER_UNREADABLE.format(why=os_reason(exc).split("；")[0]),
                          folder=True)
        keep = []
        for d in sorted(dirs):
            if d.startswith("."):
                continue
            full = os.path.join(root, d)
            if not os.path.islink(full):
                keep.append(d)
                continue
            real = os.path.realpath(full)
            if _inside(real, roots) or real in entered:
                continue  # walked under its own path (a link back up would loop)
            if not follow_links:
                yield Skipped(Path(full), _OUTSIDE.format(target=printable_path(real)))
                continue
            entered.add(real)
            keep.append(d)
        dirs[:] = keep
        for name in sorted(files):
            if name.startswith(".") or name.lower() in SKIP_NAMES:
                continue
            if os.path.splitext(name)[1].lower() not in suffixes:
                continue
            item = _check_entry(Path(root) / name, roots, follow_links)
            if item is not None:
                yield item
    while errors:  # the top folder itself could not be listed
        exc = errors.pop()
        yield Skipped(Path(exc.filename or top), _FOLDER_UNREADABLE.format(why=os_reason(exc).split("；")[0]),
                      folder=True)


def _check_entry(path: Path, roots: list[str], follow_links: bool) -> Path | Skipped | None:
    try:
        lst = os.lstat(path)
    except FileNotFoundError:
        return None  # gone since the folder was listed
    except OSError as exc:
        return Skipped(path, os_reason(exc))
    if not stat.S_ISLNK(lst.st_mode):
        kind = special_file_kind(lst.st_mode)
        if kind:
            return Skipped(path, f"这是{kind}，不是普通文件，已跳过；请放入普通文件后再导入")
        return path
    target = printable_path(os.path.realpath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Skipped(path, f"符号链接指向的文件不存在（{target}）；请删除或修正该链接")
    except OSError as exc:
        return Skipped(path, os_reason(exc))
    if stat.S_ISDIR(st.st_mode):
        return None  # a folder link in the file list: cannot happen, os.walk lists it as a folder
    kind = special_file_kind(st.st_mode)
    if kind:
        return Skipped(path, f"符号链接指向{kind}（{target}），不是普通文件，已跳过")
    if not follow_links and not _inside(os.path.realpath(path), roots):
        return Skipped(path, _OUTSIDE.format(target=target))
    return path


def _suffixes() -> tuple[str, ...]:
    from .readers import SUPPORTED_SUFFIXES  # the readers use this module's OS helpers: import late

    return SUPPORTED_SUFFIXES


def iter_files(paths: Iterable[Path | str], follow_links: bool = False) -> Iterator[Path]:
    """The files to ingest (see :func:`walk`), without the records of what was passed over."""
    for item in walk(paths, follow_links):
        if not isinstance(item, Skipped):
            yield item


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` (share ``i`` of ``N``, counted from 1) as ``(i, N)``; ValueError with a Chinese
    reason when it is not one."""
    i, sep, n = (text or "").strip().partition("/")
    try:
        share, count = int(i), int(n)
    except ValueError:
        raise ValueError(f"分片写法应为 i/N（如 2/4），不是 {text!r}") from None
    if not sep or count < 1 or not 1 <= share <= count:
        raise ValueError(f"分片 {text!r} 无效：N 至少为 1，i 在 1 到 N 之间")
    return share, count


def in_shard(key: str, root: str, shard: tuple[int, int]) -> bool:
    """Whether the file stored as ``key`` belongs to share ``shard`` = (i, N) of an ingest.

    The share is chosen by a hash of the file's path relative to the folder it was ingested
    from (NFC, ``/`` separators), so machines that mount the same folder at different places
    agree on it, every file falls in exactly one share, and the shares are about equal."""
    share, count = shard
    if count == 1:
        return True
    try:
        rel = Path(key).relative_to(root).as_posix()
    except ValueError:
        rel = Path(key).name
    rel = unicodedata.normalize("NFC", rel)
    digest = hashlib.blake2b(rel.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count == share - 1
