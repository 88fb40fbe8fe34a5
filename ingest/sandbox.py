"""Bounded parsing: each file is read, its metadata extracted and its text segmented in a worker
process with a wall-clock deadline and an address-space limit, so no single file can hang the
ingest, hold the ingest lock indefinitely, or take the app's process down with it.

The worker is a fresh interpreter (``python -m yuanwen.ingest.sandbox``, started with :mod:`subprocess`:
no fork of a parent that may hold FAISS/torch threads, and unlike multiprocessing's *spawn* no
re-import of the caller's ``__main__``, which breaks scripts without a ``__main__`` guard). It is
reused from file to file and restarted after a timeout, a crash or a memory error. Requests and
results travel pickled, length-prefixed, over its stdin/stdout.

* Deadline: the parent waits ``Config.parse_timeout_s`` for the answer, then kills the worker
  and reports the file as timed out.
* Memory: the worker sets ``RLIMIT_AS`` to ``Config.parse_memory_mb`` (POSIX only; on Windows
  the deadline alone applies); past it, allocation fails with ``MemoryError`` in the worker.
* No orphans: on Linux the kernel kills the worker when its parent dies (``PR_SET_PDEATHSIG``);
  elsewhere a watchdog thread notices the closed pipe or the parent gone and exits.

:func:`parse` is what the pipeline calls; :func:`bounded_parsing` scopes one worker to an ingest.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from yuanwen.config import Config
from yuanwen.errors import OcrNeeded, ReadError
from yuanwen.models import OcrPage, Passage, ReadResult, Sentence

__all__ = ["ParsedFile", "parse_file", "parse", "recognise_page", "BoundedParser", "bounded_parsing"]

log = logging.getLogger(__name__)

DEFAULT_TARGET = "yuanwen.ingest.sandbox:parse_file"
#: The OCR worker's task: one page of a file recognised (:func:`ingest.ocr.ocr_page`).
OCR_TARGET = "yuanwen.ingest.ocr:ocr_page"
_HEADER = struct.Struct("<Q")
_START_TIMEOUT_S = 60.0  # a fresh interpreter importing the readers: well under a second normally

_TIMEOUT = "解析超时（超过 {s} 秒），文件可能异常或过于复杂；已跳过"
_MEMORY = "解析所需内存超过上限（{gb} GB），文件可能异常或过于复杂；已跳过"
_CRASHED = "解析进程意外退出（{why}），文件可能异常或已损坏；已跳过"
_FAILED = "处理时出错（{name}: {msg}）"


@dataclass
class ParsedFile:
    """One file parsed: what the reader got, its metadata, and its passages and sentences."""

    read: ReadResult
    meta: dict[str, Any] = field(default_factory=dict)
    passages: list[Passage] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)


def parse_file(path: Path, override: dict, config: Config, name: Path | None = None,
               ocr: Mapping[int, OcrPage] | None = None) -> ParsedFile:
    """Read ``path``, extract its metadata (``override`` from manifest.csv applied; ``name``, the
    path metadata sees, defaults to ``path``) and segment it, in this process and without
    bounds; :class:`ReadError` for a file that cannot be read, :class:`OcrNeeded` for pages
    that need recognising first (``ocr``: the recognised pages, see
    :func:`ingest.readers.read_file`)."""
    from .metadata import apply_overrides, extract_metadata
    from .readers import read_file
    from .segment import segment

    path = Path(path)
    rr = read_file(path, max_bytes=config.max_file_bytes, max_chars=config.max_text_chars, ocr=ocr)
    meta = extract_metadata(rr.text, Path(name) if name is not None else path, hints=rr.meta)
    meta = apply_overrides(meta, override or {})
    passages, sentences = segment(
        rr.text, headings=rr.headings, pages=rr.pages, body_end=meta.get("body_end"),
        target_chars=config.passage_target_chars, max_chars=config.passage_max_chars,
    )
    return ParsedFile(rr, meta, passages, sentences)


# ---------------------------------------------------------------------------------------------
# The parent side
# ---------------------------------------------------------------------------------------------
class BoundedParser:
    """One reusable worker process that parses files under a deadline and a memory limit.

    ``target`` (``"module:function"``, signature of :func:`parse_file`) is what the worker
    runs; tests point it at a function that hangs or allocates. Not thread-safe: one parse at a
    time (calls are serialised by a lock).
    """

    def __init__(self, timeout_s: float = 120.0, memory_mb: int = 4096,
                 target: str = DEFAULT_TARGET) -> None:
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self.target = target
        self._proc: subprocess.Popen | None = None
        self._answers: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self.starts = 0  # workers started so far (restarts included)

    # -- lifetime
    def __enter__(self) -> "BoundedParser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker (it also exits by itself when this process dies)."""
        with self._lock:
            self._stop(graceful=True)

    def _start(self) -> None:
        import yuanwen

        # The folder that holds the yuanwen package (a checkout or site-packages).
        root = str(Path(yuanwen.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        # Numeric libraries reserve address space per thread; one thread is all a parse needs.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        env["PYTHONIOENCODING"] = "utf-8"
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "yuanwen.ingest.sandbox", str(os.getpid()), str(self.memory_mb), self.target],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=root, creationflags=flags,
        )
        self._answers = queue.Queue()
        threading.Thread(target=_read_answers, args=(self._proc.stdout, self._answers),
                         daemon=True, name="yuanwen-parse-reader").start()
        self.starts += 1
        ready = self._wait(_START_TIMEOUT_S)
        if ready is None or ready[0] != "ready":
            self._stop(graceful=False)
            raise RuntimeError(f"parse worker did not start: {ready!r}")

    def _stop(self, graceful: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if graceful and proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # EOF: the worker's loop ends
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        finally:
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError, ValueError):
                    stream.close()

    def _wait(self, timeout: float) -> tuple | None:
        """The worker's next answer; ``None`` when the deadline passes first; ``("eof",)``
        when the worker died."""
        try:
            return self._answers.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None

    # -- work
    def parse(self, path: Path, override: dict, config: Config, name: Path | None = None,
              ocr: Mapping[int, OcrPage] | None = None) -> Any:
        """Parse ``path`` in the worker; :class:`ReadError` with a Chinese reason for a file
        that cannot be read, takes longer than the deadline, or needs more memory than allowed
        (:class:`OcrNeeded` passed on as it is)."""
        # absolute: the worker runs in the package's folder (so that no folder of the user's
        # named ``ingest`` can stand in for the package), not in the caller's
        path = Path(os.path.abspath(path))
        name = None if name is None else Path(os.path.abspath(name))
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop(graceful=False)
                self._start()
            assert self._proc is not None
            request = (str(path), None if name is None else str(name), override, config,
                       None if ocr is None else dict(ocr))
            payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                self._proc.stdin.write(_HEADER.pack(len(payload)) + payload)
                self._proc.stdin.flush()
            except OSError:  # died between files: start afresh once
                self._stop(graceful=False)
                self._start()
                self._proc.stdin.write(_HEADER.pack(len(payload)) + payload)
                self._proc.stdin.flush()
            answer = self._wait(self.timeout_s)
            if answer is None:
                self._stop(graceful=False)
                raise ReadError(path, _TIMEOUT.format(s=_num(self.timeout_s)))
            kind = answer[0]
            if kind == "ok":
                return answer[1]
            if kind == "read_error":
                raise ReadError(path, answer[1])
            if kind == "ocr_needed":
                raise OcrNeeded(path, answer[2], answer[3], answer[1])
            if kind == "memory":
                self._stop(graceful=False)  # a fresh worker for the next file
                raise ReadError(path, _MEMORY.format(gb=_num(self.memory_mb / 1024)))
            if kind == "error":
                _, name, msg, tb = answer
                log.error("error while parsing %s in the worker:\n%s", path, tb)
                raise ReadError(path, _FAILED.format(name=name, msg=msg))
            # "eof" (the worker died: a signal, an abort in C code) or garbage
            proc = self._proc
            code = proc.wait(timeout=10) if proc is not None else None
            self._stop(graceful=False)
            why = f"退出码 {code}" if code is not None else "无应答"
            if code is not None and code < 0:
                why = f"信号 {-code}"
            raise ReadError(path, _CRASHED.format(why=why))


def _num(x: float) -> str:
    return f"{x:g}"


def read_frame(stream: BinaryIO) -> bytes | None:
    """One framed message (length, then body) from ``stream``; None at its end or when the
    stream breaks off (the other side closed the pipe or died)."""
    try:
        head = stream.read(_HEADER.size)
        if len(head) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack(head)
        body = stream.read(size)
    except (OSError, ValueError):
        return None
    return body if len(body) == size else None


def read_answers(stream: BinaryIO, put: Callable[[Any], None], bad: Callable[[Exception], Any]) -> None:
    """Reader thread: each framed answer from ``stream`` unpickled and passed to ``put``
    (``bad(exc)`` in place of one that cannot be unpickled); ``("eof",)`` at the end."""
    while (body := read_frame(stream)) is not None:
        try:
            answer = pickle.loads(body)
        except Exception as exc:  # noqa: BLE001 - an answer that cannot be unpickled
            answer = bad(exc)
        put(answer)
    put(("eof",))


def _read_answers(stream: BinaryIO, answers: queue.Queue) -> None:
    read_answers(stream, answers.put, lambda exc: ("error", type(exc).__name__, str(exc), ""))


_local = threading.local()
_default: dict[tuple, BoundedParser] = {}
_default_lock = threading.Lock()


@contextlib.contextmanager
def bounded_parsing(config: Config, target: str = DEFAULT_TARGET) -> Iterator[BoundedParser | None]:
    """One worker for the files parsed by this thread inside the block (an ingest), stopped at
    its end. Nested blocks share the outer worker; with ``config.parse_isolated`` false, none."""
    if getattr(_local, "parser", None) is not None or not config.parse_isolated:
        yield getattr(_local, "parser", None)
        return
    parser = BoundedParser(config.parse_timeout_s, config.parse_memory_mb, target)
    # OCR pages in a worker of their own (started at the first scanned page), one page a call
    ocr = BoundedParser(config.ocr_page_timeout_s, config.parse_memory_mb, OCR_TARGET)
    _local.parser, _local.ocr = parser, ocr
    try:
        yield parser
    finally:
        _local.parser = _local.ocr = None
        parser.close()
        ocr.close()


def parse(path: Path, override: dict, config: Config, name: Path | None = None,
          ocr: Mapping[int, OcrPage] | None = None) -> ParsedFile:
    """Parse one file for the pipeline: in the bounded worker of the enclosing
    :func:`bounded_parsing` block, else in a shared one; in-process only when
    ``config.parse_isolated`` is false."""
    if not config.parse_isolated:
        return parse_file(path, override, config, name, ocr)
    parser = getattr(_local, "parser", None)
    if parser is None:
        key = (config.parse_timeout_s, config.parse_memory_mb)
        with _default_lock:
            parser = _default.get(key)
            if parser is None:
                parser = _default[key] = BoundedParser(*key)
    return parser.parse(path, override, config, name, ocr)


def recognise_page(path: Path, page: int, config: Config) -> OcrPage:
    """Recognise page ``page`` of ``path`` by OCR in the bounded OCR worker of the enclosing
    :func:`bounded_parsing` block (else a shared one; in-process when ``config.parse_isolated``
    is false); ReadError when the page cannot be rendered, takes past
    ``config.ocr_page_timeout_s`` or needs more memory than allowed."""
    if not config.parse_isolated:
        from .ocr import ocr_page

        return ocr_page(path, {"page": page}, config)
    worker = getattr(_local, "ocr", None)
    if worker is None:
        key = ("ocr", config.ocr_page_timeout_s, config.parse_memory_mb)
        with _default_lock:
            worker = _default.get(key)
            if worker is None:
                worker = _default[key] = BoundedParser(key[1], key[2], OCR_TARGET)
    return worker.parse(path, {"page": page}, config)


def _close_defaults() -> None:
    for parser in list(_default.values()):
        with contextlib.suppress(Exception):
            parser.close()


import atexit  # noqa: E402

atexit.register(_close_defaults)


# ---------------------------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------------------------
def _die_with_parent(parent_pid: int, stdin: BinaryIO) -> None:
    """Make sure this worker never outlives the process that started it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: works even inside a long C call
    if os.getppid() != parent_pid and sys.platform != "win32":
        os._exit(3)  # the parent is already gone

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if sys.platform != "win32" and os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="yuanwen-parent-watch").start()


def _limit_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    try:
        import resource
    except ImportError:  # Windows: the deadline alone applies
        return
    limit = memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _resolve(target: str) -> Callable[..., ParsedFile]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _send(out: BinaryIO, answer: tuple) -> None:
    try:
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        data = pickle.dumps(("memory",))
    except Exception as exc:  # noqa: BLE001 - an unpicklable result
        data = pickle.dumps(("error", type(exc).__name__, str(exc), traceback.format_exc()))
    out.write(_HEADER.pack(len(data)) + data)
    out.flush()


def _worker(parent_pid: int, memory_mb: int, target: str) -> None:
    stdin = sys.stdin.buffer
    # The protocol owns the real stdout; stray prints from libraries go to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _die_with_parent(parent_pid, stdin)
    logging.basicConfig(level=logging.ERROR)  # pypdf and friends: we report per file
    import warnings

    warnings.simplefilter("ignore")
    func = _resolve(target)
    import inspect

    takes_ocr = "ocr" in inspect.signature(func).parameters  # a target may not read scans
    from . import metadata, readers, segment  # noqa: F401 - imported before the limit applies

    _limit_memory(memory_mb)
    _send(out, ("ready",))
    while True:
        body = read_frame(stdin)
        if body is None:
            return  # EOF: the parent closed the pipe or died
        memory_error = False
        try:
            path, name, override, config, ocr = pickle.loads(body)
            extra = {"ocr": ocr} if takes_ocr and ocr is not None else {}
            answer: tuple = ("ok", func(Path(path), override, config, None if name is None else Path(name),
                                        **extra))
        except OcrNeeded as exc:
            answer = ("ocr_needed", exc.reason, exc.pages, exc.total)
        except ReadError as exc:
            answer = ("read_error", exc.reason)
        except MemoryError:
            answer, memory_error = ("memory",), True
        except RecursionError as exc:
            answer = ("error", type(exc).__name__, "嵌套过深", traceback.format_exc())
        except Exception as exc:  # noqa: BLE001 - reported per file, the worker goes on
            answer = ("error", type(exc).__name__, str(exc), traceback.format_exc())
        _send(out, answer)
        if memory_error:
            return  # the parent starts a fresh worker for the next file


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
