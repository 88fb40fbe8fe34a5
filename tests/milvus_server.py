"""Milvus Lite in server mode for tests: the real Milvus engine (the ``milvus`` binary that
``milvus-lite`` ships) serving one data file on a free TCP port on 127.0.0.1, so several
processes can open one Milvus knowledge base (``uri: http://127.0.0.1:PORT``).

In TCP mode the binary takes no lock on its file, so :class:`LiteServer` holds one
(``<file>.server.lock``): a second server on the same file fails instead of corrupting it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import warnings
from pathlib import Path

from filelock import FileLock, Timeout


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiteServer:
    """``with LiteServer(path) as uri:`` serves ``path`` until the block ends."""

    def __init__(self, db_file: Path, port: int | None = None, wait: float = 60.0) -> None:
        self.db_file = Path(db_file).absolute()
        self.port = port or free_port()
        self.wait = wait
        self.proc: subprocess.Popen | None = None
        self.lock = FileLock(f"{self.db_file}.server.lock", timeout=0)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        with warnings.catch_warnings():  # its import of pkg_resources warns
            warnings.simplefilter("ignore")
            import milvus_lite

        lib = Path(milvus_lite.__file__).parent / "lib"
        try:
            self.lock.acquire()
        except Timeout:
            raise RuntimeError(f"another Milvus Lite server serves {self.db_file}") from None
        env = {**os.environ, "LD_LIBRARY_PATH": f"{lib}:{os.environ.get('LD_LIBRARY_PATH', '')}",
               "RUST_LOG": "error"}
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([str(lib / "milvus"), str(self.db_file), f"127.0.0.1:{self.port}", "ERROR"],
                                     env=env, cwd=str(self.db_file.parent),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"Milvus Lite server exited with {self.proc.returncode if self.proc else '?'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self.uri
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Milvus Lite server did not listen on {self.port} within {self.wait} s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None
        if self.lock.is_locked:
            self.lock.release()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
