"""Saved study packs: one JSON file per pack in ``<kb>/packs/``, named by the pack's name.

Why files and not SQLite: a saved pack is the very file a trainer hands out (the shared form
that :func:`search.pack.load_pack` reads, plus a ``revision`` counter), so the folder can be
backed up, copied or mailed as it is; saving needs no writer connection to the database
(the app holds it read-only, an ingest may be writing), no schema migration, and survives a
rebuilt or repaired database.

Crash safety: a save writes a temporary file beside the target, flushes it to disk and
renames it over the target (``os.replace``, atomic on POSIX and Windows), so a save killed at
any point leaves the previous version or the new one, never a mixture. Saves of one pack folder
take turns under a file lock; each pack is its own file, so sessions editing different packs
never touch each other's work, and a save that names the revision it started from is refused
(:class:`PackConflictError`) when another session saved the same pack in between.
"""

from __future__ import annotations

import json
import os
import re
import time
import unicodedata
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from yuanwen.errors import KnowledgeBaseError, PackConflictError, PackNotFoundError, UsageError, YuanwenError
from yuanwen.models import SavedPack, StudyPack

from .pack import MAX_ITEMS, NotAPackError, item_count, load_pack, pack_from_dict, parse_pack_file

PACK_DIR = "packs"
SUFFIX = ".json"
DEFAULT_NAME = "学习材料汇编"
MAX_NAME = 60
LOCK_FILE = ".packs.lock"
LOCK_TIMEOUT_S = 10
_BAD_CHARS = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}


def pack_dir(kb_dir: Path) -> Path:
    """The folder of saved packs in the knowledge base folder ``kb_dir``."""
    return Path(kb_dir) / PACK_DIR


def check_name(name: str) -> str:
    """``name`` as a pack is saved under (trimmed, NFC); a name that cannot be a file name on
    every system raises :class:`UsageError` saying why."""
    name = unicodedata.normalize("NFC", (name or "").strip())
    if not name:
        raise UsageError("汇编名称不能为空")
    if len(name) > MAX_NAME:
        raise UsageError(f"汇编名称过长（{len(name)} 字，上限 {MAX_NAME} 字）")
    bad = sorted(set(_BAD_CHARS.findall(name)))
    if bad:
        shown = "、".join(c if c.isprintable() else "控制字符" for c in bad)
        raise UsageError(f"汇编名称不能含有 {shown}")
    if name.startswith(".") or name.endswith("."):
        raise UsageError("汇编名称不能以“.”开头或结尾")
    if name.lower().endswith(SUFFIX):
        raise UsageError("汇编名称不能以 .json 结尾（命令行把以 .json 结尾的参数当作文件）")
    if name.split(".")[0].lower() in _RESERVED:
        raise UsageError(f"“{name}”是 Windows 的保留名称，请换一个")
    return name


def _path(kb_dir: Path, name: str) -> Path:
    return pack_dir(kb_dir) / f"{check_name(name)}{SUFFIX}"


def _mtime(path: Path) -> float:
    """When the file at ``path`` was last written (0.0 when it cannot be told)."""
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _shown(mtime: float) -> str:
    """``mtime`` as local time, "YYYY-MM-DD HH:MM" ("" when unknown)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(mtime)) if mtime else ""


def _not_found(name: str) -> PackNotFoundError:
    return PackNotFoundError(f"没有名为“{name}”的汇编")


def _io_error(exc: OSError, kb_dir: Path, doing: str) -> KnowledgeBaseError:
    """A Chinese message for a file-system fault met while ``doing`` something to packs."""
    import errno

    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        why = "磁盘空间不足；之前保存的内容不受影响，请腾出磁盘空间后再试"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = f"知识库文件夹 {kb_dir} 只读或没有写入权限；请用可写的知识库文件夹"
    else:
        why = f"{exc.strerror or type(exc).__name__}（{exc.filename or pack_dir(kb_dir)}）"
    return KnowledgeBaseError(f"无法{doing}：{why}")


def _read(path: Path, name: str, mtime: float | None = None) -> SavedPack:
    """The saved pack in ``path`` (``mtime``: its file's, when known already); a missing file
    raises :class:`PackNotFoundError`, one that is not a pack :class:`UsageError`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _not_found(name) from None
    try:
        data = parse_pack_file(raw, path.name)
        pack = pack_from_dict(data, path.name)  # a dict from here on
    except NotAPackError as exc:
        raise UsageError(f"汇编“{name}”的文件 {path.name} 无法读取：{exc.reason}。请从备份恢复这个文件，"
                         f"或删除这个汇编（汇编页的「删除」，或 yuanwen pack delete {name}）") from None
    rev = data.get("revision", 0)
    rev = rev if isinstance(rev, int) and not isinstance(rev, bool) and rev >= 0 else 0
    return SavedPack(name=name, pack=pack, revision=rev,
                     modified=_shown(_mtime(path) if mtime is None else mtime))


def _files(kb_dir: Path) -> dict[str, Path]:
    """The saved packs' names and files, nothing read or parsed."""
    try:
        paths = [p for p in pack_dir(kb_dir).iterdir() if p.suffix == SUFFIX and not p.name.startswith(".")]
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _io_error(exc, kb_dir, "读取汇编文件夹") from None
    return {unicodedata.normalize("NFC", p.stem): p for p in paths}


def list_packs(kb_dir: Path) -> list[SavedPack]:
    """Every saved pack, most recently saved first. A file that cannot be read is listed with
    its ``error`` set (and an empty pack) rather than hidden."""
    out = []
    for name, path in _files(kb_dir).items():
        mtime = _mtime(path)
        try:
            out.append((mtime, _read(path, name, mtime)))
        except PackNotFoundError:  # deleted meanwhile
            continue
        except (YuanwenError, OSError) as exc:
            out.append((mtime, SavedPack(name=name, modified=_shown(mtime), error=str(exc))))
    return [p for _, p in sorted(out, key=lambda t: (-t[0], t[1].name))]


def read_pack(kb_dir: Path, name: str) -> SavedPack:
    """The saved pack ``name``; :class:`PackNotFoundError` when there is none, UsageError
    when its file is not a pack."""
    path = _path(kb_dir, name)
    try:
        return _read(path, check_name(name))
    except OSError as exc:
        raise _io_error(exc, kb_dir, f"读取汇编“{name}”") from None


def unique_name(kb_dir: Path, base: str = DEFAULT_NAME) -> str:
    """``base``, or ``base（2）``, ``base（3）``... : the first name no saved pack has."""
    base = check_name(base[:MAX_NAME - 4].strip() or DEFAULT_NAME)
    taken = {n.casefold() for n in _files(kb_dir)}
    n = 1
    name = base
    while name.casefold() in taken:
        n += 1
        name = f"{base}（{n}）"
    return name


@contextmanager
def _locked(kb_dir: Path, doing: str) -> Iterator[Path]:
    """The pack folder (made when missing), held under the packs lock while the block runs."""
    from filelock import FileLock, Timeout

    if not Path(kb_dir).is_dir():
        raise KnowledgeBaseError(f"知识库文件夹不存在：{kb_dir}；请先导入文档（yuanwen ingest）或用 --kb 指定知识库")
    folder = pack_dir(kb_dir)
    try:
        folder.mkdir(exist_ok=True)
        with FileLock(str(folder / LOCK_FILE), timeout=LOCK_TIMEOUT_S):
            yield folder
    except Timeout:
        raise KnowledgeBaseError(f"无法{doing}：汇编正被另一个程序保存，请稍后再试") from None
    except OSError as exc:
        raise _io_error(exc, kb_dir, doing) from None


def _existing_name(kb_dir: Path, name: str) -> str | None:
    """The saved pack whose name equals ``name`` ignoring case (a file name clash on Windows
    and macOS), or None."""
    key = name.casefold()
    return next((n for n in _files(kb_dir) if n.casefold() == key), None)


def _dump(pack: StudyPack, revision: int | None = None) -> bytes:
    """The bytes of a pack file: the shared form, plus the ``revision`` of a saved pack."""
    data = pack.to_dict() if revision is None else {**pack.to_dict(), "revision": revision}
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")


def pack_json(pack: StudyPack) -> bytes:
    """``pack`` as the bytes of a shared pack file (what :func:`search.pack.load_pack` reads)."""
    return _dump(_clean(pack, pack.title))


def _write(path: Path, pack: StudyPack, revision: int | None) -> None:
    """Write ``pack`` to ``path`` crash-safely: a temporary file, flushed to disk, renamed
    over the target; the folder entry is flushed too where the system allows it."""
    raw = _dump(pack, revision)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):
        try:
            fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def _clean(pack: StudyPack, name: str) -> StudyPack:
    """``pack`` as it will read back (strings made XML-safe); too big a pack is refused."""
    n = item_count(pack)
    if n > MAX_ITEMS:
        raise UsageError(f"汇编“{name}”有 {n} 段，超过上限 {MAX_ITEMS} 段；请分成几个汇编")
    return pack_from_dict(pack.to_dict(), f"汇编“{name}”")


def save_pack(kb_dir: Path, name: str, pack: StudyPack, revision: int | None = None,
              create: bool = True, new: bool = False, replace: bool = False) -> SavedPack:
    """Save ``pack`` as ``name``. ``revision``: the revision the caller's copy came from; when
    the saved pack has moved on since, :class:`PackConflictError` (nothing is written).
    ``create=False`` refuses a name that is not saved yet, ``new=True`` one that is. A saved
    file that cannot be read is not overwritten (UsageError) unless ``replace``."""
    name = check_name(name)
    pack = _clean(pack, name)
    with _locked(kb_dir, f"保存汇编“{name}”"):
        return _save(kb_dir, name, pack, revision, create, new, replace)


def _save(kb_dir: Path, name: str, pack: StudyPack, revision: int | None, create: bool, new: bool,
          replace: bool) -> SavedPack:
    """:func:`save_pack` of a checked name and pack, with the packs lock held."""
    path = _path(kb_dir, name)
    current = _current_revision(path, name, replace)
    if new and current is not None:
        raise UsageError(f"已有名为“{name}”的汇编，请换一个名称")
    if current is None:
        if not create:
            raise _not_found(name)
        other = _existing_name(kb_dir, name)
        if other is not None:
            raise UsageError(f"已有名为“{other}”的汇编（名称不区分大小写），请换一个名称")
    elif revision is not None and revision != current:
        raise PackConflictError(_conflict(name))
    _write(path, pack, (current or 0) + 1)
    return SavedPack(name=name, pack=pack, revision=(current or 0) + 1, modified=_shown(_mtime(path)))


def _conflict(name: str) -> str:
    return (f"汇编“{name}”在这之前已在别处（另一个窗口或命令行）修改过，刚才的修改没有保存；"
            "请在最新内容上再做一次")


def _current_revision(path: Path, name: str, replace: bool = False) -> int | None:
    """The revision of the saved pack at ``path``, None when there is none. A file that cannot
    be read is refused (UsageError: a save would lose what it holds), or taken as revision 0
    when ``replace``."""
    try:
        return _read(path, name).revision
    except PackNotFoundError:
        return None
    except UsageError as exc:
        if replace:
            return 0
        raise UsageError(f"没有保存，以免覆盖其中的内容。{exc}") from None


def create_pack(kb_dir: Path, name: str, pack: StudyPack | None = None) -> SavedPack:
    """Save a new pack ``name`` (empty, titled with its name, unless ``pack`` is given);
    UsageError when a pack of that name exists."""
    name = check_name(name)
    return save_pack(kb_dir, name, pack if pack is not None else StudyPack(title=name), new=True)


def edit_pack(kb_dir: Path, name: str, edit: Callable[[StudyPack], StudyPack],
              revision: int | None = None) -> SavedPack:
    """Apply ``edit`` to the saved pack ``name`` as it is on disk now, and save the result
    (under the lock, so edits from several sessions of one pack all land). ``revision``: the
    revision the caller saw; a different one on disk raises :class:`PackConflictError` (for
    edits addressed by position, which mean something else in a changed pack)."""
    name = check_name(name)
    with _locked(kb_dir, f"保存汇编“{name}”"):
        path = _path(kb_dir, name)
        saved = _read(path, name)
        if revision is not None and revision != saved.revision:
            raise PackConflictError(_conflict(name))
        pack = _clean(edit(saved.pack), name)
        _write(path, pack, saved.revision + 1)
    return SavedPack(name=name, pack=pack, revision=saved.revision + 1, modified=_shown(_mtime(path)))


def rename_pack(kb_dir: Path, old: str, new: str) -> SavedPack:
    """Rename the saved pack ``old`` to ``new`` (its title is left as it is). The file is not
    read to rename it: a file that cannot be read is renamed too, and comes back with its
    ``error`` set."""
    old, new = check_name(old), check_name(new)
    with _locked(kb_dir, f"重命名汇编“{old}”"):
        src, dst = _path(kb_dir, old), _path(kb_dir, new)
        if not src.exists():
            raise _not_found(old)
        other = _existing_name(kb_dir, new)
        if other is not None and other.casefold() != old.casefold():
            raise UsageError(f"已有名为“{other}”的汇编，请换一个名称")
        if old != new:
            os.replace(src, dst)  # atomic: the pack is under one name or the other
        try:
            return _read(dst, new)
        except UsageError as exc:
            return SavedPack(name=new, modified=_shown(_mtime(dst)), error=str(exc))


def delete_pack(kb_dir: Path, name: str) -> None:
    """Delete the saved pack ``name`` (its file is not read: one that cannot be read can be
    deleted too)."""
    name = check_name(name)
    with _locked(kb_dir, f"删除汇编“{name}”"):
        try:
            _path(kb_dir, name).unlink()
        except FileNotFoundError:
            raise _not_found(name) from None


def import_pack(kb_dir: Path, raw: bytes | str, filename: str, name: str | None = None,
                replace: bool = False) -> SavedPack:
    """Save a shared pack file as ``name`` (default: the file's name without ``.json``). A file
    that is not a pack raises UsageError and nothing changes; so does an existing name unless
    ``replace`` (which replaces a saved file that cannot be read, too). The name is checked
    and the pack saved under one hold of the lock, so a pack made meanwhile is not overwritten."""
    pack = load_pack(raw, filename)
    if name is None:
        stem = Path(filename).name
        name = stem[: -len(SUFFIX)] if stem.lower().endswith(SUFFIX) else stem
    name = check_name(name)
    pack = _clean(pack, name)
    with _locked(kb_dir, f"导入汇编“{name}”"):
        other = _existing_name(kb_dir, name)
        if other is not None and not replace:
            try:
                held = f"{item_count(_read(_path(kb_dir, other), other).pack)} 段"
            except UsageError:
                held = "文件无法读取"
            raise UsageError(f"已有名为“{other}”的汇编（{held}）；"
                             "要替换它请加 --replace，或用 --name 另取一个名称")
        return _save(kb_dir, other or name, pack, None, create=True, new=not replace, replace=replace)


def write_pack_file(pack: StudyPack, path: Path) -> Path:
    """Write ``pack`` in its shared form (what :func:`search.pack.load_pack` reads) to the
    file ``path``, crash-safely."""
    path = Path(path)
    _write(path, _clean(pack, path.name), None)
    return path
