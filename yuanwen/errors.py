"""Project exceptions. Messages are written for the user: they say what is wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class YuanwenError(Exception):
    """Base class of every error this project raises on purpose."""

    exit_code = 1


class UsageError(YuanwenError):
    """The user asked for something that cannot work (bad option, bad query)."""

    exit_code = 2


class BadQueryError(UsageError):
    """A query that is empty, only punctuation, or too long."""


class PackConflictError(UsageError):
    """A saved study pack changed elsewhere (another window or the CLI) since it was opened."""


class PackNotFoundError(UsageError):
    """No saved study pack has the name asked for (unlike a pack file that cannot be read)."""


class AccessDenied(YuanwenError):
    """The acting account's role does not allow the action (the message names the role needed)."""

    exit_code = 3


class LoginError(YuanwenError):
    """A login that did not succeed: wrong name or password, a disabled or locked account."""

    exit_code = 3


class AuditError(YuanwenError):
    """The audit log could not be written: in a shared knowledge base the action is refused."""


class ReadError(YuanwenError):
    """One input file could not be read; the rest of the work goes on."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class OcrNeeded(ReadError):
    """A file (or some of its pages) has no text layer: its page images need OCR first.

    Raised by a reader that was given no recognised pages; the pipeline recognises ``pages``
    (1-based) and reads the file again with them. Where OCR is off, it is reported like any
    ReadError, with a reason that says so.
    """

    def __init__(self, path: Path | str, pages: list[int], total: int, reason: str) -> None:
        self.pages = list(pages)
        self.total = total
        super().__init__(path, reason)


class KnowledgeBaseError(YuanwenError):
    """The knowledge base on disk is missing, locked, damaged or of another version."""


class EmbedderMismatchError(KnowledgeBaseError):
    """The knowledge base was built by another embedder than the one asked for."""


class MilvusConnectionError(KnowledgeBaseError):
    """A Milvus knowledge base's server cannot be reached, refuses the token, or its Milvus
    Lite file is held by another process."""


class ExportError(YuanwenError):
    """An export cannot be made here (a PDF without LibreOffice) or its converter failed."""


class EmbedderUnavailableError(YuanwenError):
    """An embedder's package or model files are not installed."""


class EmbedWorkerError(YuanwenError):
    """An embedding worker process (``ingest --workers N``) died or failed; the vectors
    committed before it stay, and the next ingest resumes the embedding."""


class DamagedKnowledgeBaseError(KnowledgeBaseError):
    """The database file is damaged: only a backup or a fresh ingest can help."""


class ReadOnlyKnowledgeBaseError(KnowledgeBaseError):
    """The knowledge base folder cannot be written (read-only medium or no permission)."""


class DiskFullError(KnowledgeBaseError):
    """The disk holding the knowledge base is full; what was stored before is intact."""


def damaged_message(kb_dir: Path | str, detail: str = "") -> str:
    """What to tell the user about a damaged database: restore it, or ingest anew elsewhere."""
    why = f"（{detail}）" if detail else ""
    return (f"知识库 {kb_dir} 的数据库文件已损坏{why}，无法修复：请从备份恢复该文件夹，"
            f"或把原始文件重新导入到一个新文件夹（yuanwen ingest <文件夹> --kb <新文件夹>）")


def readonly_message(kb_dir: Path | str, permission: bool = False) -> str:
    why = "没有写入权限" if permission else "只读"
    return (f"知识库 {kb_dir} 所在位置{why}，无法写入；检索、引文核对等只读命令仍可使用。"
            "如需导入或修复，请把知识库复制到可写的位置，或用 --kb 指定可写的文件夹")


def disk_full_message(kb_dir: Path | str) -> str:
    return (f"磁盘空间不足：知识库 {kb_dir} 无法继续写入。已入库的内容不受影响，未写完的部分没有保存；"
            "请腾出磁盘空间后重新运行同一命令，会从中断处继续")


# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xff)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR = 5, 6, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 11, 13, 14, 26


def kb_error_from(exc: BaseException, kb_dir: Path | str) -> KnowledgeBaseError | None:
    """A user-facing error for a low-level fault (SQLite or the file system) met while working on
    the knowledge base ``kb_dir``, or None when ``exc`` is not one this function knows."""
    import errno
    import os
    import sqlite3

    if isinstance(exc, KnowledgeBaseError):
        return exc
    if isinstance(exc, sqlite3.DatabaseError):
        code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        text = str(exc)
        if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text \
                or "not a database" in text or "decode to UTF-8" in text:
            return DamagedKnowledgeBaseError(damaged_message(kb_dir, text))
        if code == _SQLITE_FULL or "disk is full" in text:
            return DiskFullError(disk_full_message(kb_dir))
        if code == _SQLITE_READONLY or (code == _SQLITE_CANTOPEN and not os.access(kb_dir, os.W_OK)):
            return ReadOnlyKnowledgeBaseError(readonly_message(kb_dir))
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return KnowledgeBaseError(f"知识库 {kb_dir} 正被其他程序占用（{text}），请稍后再试")
        if code == _SQLITE_IOERR:
            return KnowledgeBaseError(
                f"读写知识库 {kb_dir} 时出现磁盘错误（{text}）；请检查磁盘后再试，必要时从备份恢复")
        return KnowledgeBaseError(f"知识库 {kb_dir} 的数据库出错（{text}）；请稍后再试，"
                                  "如仍出错请运行 yuanwen verify 检查")
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return DiskFullError(disk_full_message(kb_dir))
        if exc.errno == errno.EROFS:
            return ReadOnlyKnowledgeBaseError(readonly_message(kb_dir))
        if exc.errno in (errno.EACCES, errno.EPERM):
            return ReadOnlyKnowledgeBaseError(readonly_message(kb_dir, permission=True))
        if exc.errno is None and disk_is_full(kb_dir):  # a short write (numpy, FAISS): no errno
            return DiskFullError(disk_full_message(kb_dir))
    return None


def disk_is_full(path: Path | str, margin: int = 1 << 20) -> bool:
    """True when the disk holding ``path`` (or its nearest existing parent) has almost no room."""
    import shutil

    p = Path(path)
    while not p.exists() and p.parent != p:
        p = p.parent
    try:
        return shutil.disk_usage(p).free < margin
    except OSError:
        return False


def record_fault(exc: BaseException, log: Path | None,
                 context: str) -> tuple[str, str, Path | None]:
    """An unexpected exception, for a front end: a new short error id to show the user, and
    the log entry (a header naming ``context``, then the traceback), appended to ``log`` when
    one is given and can be written. Returns (id, entry, the log written or None)."""
    import secrets
    import traceback
    from datetime import datetime, timezone

    err_id = secrets.token_hex(4)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entry = f"--- {stamp} 编号 {err_id}: {context}\n" + "".join(traceback.format_exception(exc))
    if log is not None:
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(entry)
        except OSError:
            log = None
    return err_id, entry, log

