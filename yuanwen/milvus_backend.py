"""The ``milvus`` backend: a knowledge base whose documents, passages and vectors live in Milvus
(:mod:`yuanwen.milvus_store`), searched with Milvus's own BM25 and dense search.

The knowledge base is still a folder. ``KB/kb.json`` names the server::

    {"backend": "milvus", "uri": "milvus.db", "prefix": "yw_0123456789ab", "index": "FLAT"}

``uri`` is a Milvus Lite file (relative to the folder; one process at a time) or
``http(s)://host:port`` (Milvus Standalone or Distributed, or Milvus Lite's server mode);
``token`` (or ``YUANWEN_MILVUS_TOKEN``) authenticates; ``timeout`` (seconds, default 10)
bounds the wait for the server; ``prefix`` names this knowledge base's
collections, so one server holds many; ``index`` is the dense index type (FLAT, IVF_FLAT,
AUTOINDEX locally; HNSW and others on a server). The folder keeps ``audit.db``, the accounts
(in a local ``yuanwen.db``) and the saved packs.

Filters become Milvus filter expressions: the documents that pass are selected on the
documents collection (kept per filter until the data changes), the passages by
``doc_id in [...]``, before the top k is cut. Keyword search is Milvus's BM25 (see
:class:`MilvusKeyword`).
pymilvus is imported only when a Milvus knowledge base is opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backend import (
    DESCRIPTOR,
    SERVER_SCHEMES,
    Backend,
    KeywordIndex,
    VectorIndex,
    register_backend,
    write_descriptor,
)
from .errors import KnowledgeBaseError, MilvusConnectionError
from .milvus_store import MilvusStore, _in
from .models import Filters
from .store import DB_NAME, Store
from .text import tokenize

DEFAULT_URI = "milvus.db"
DEFAULT_INDEX = "FLAT"
TOKEN_ENV = "YUANWEN_MILVUS_TOKEN"
MAX_K = 16_384  # Milvus's limit on a search's top k
_INDEX_PARAMS = {  # build and search parameters per dense index type
    "FLAT": ({}, {}),
    "IVF_FLAT": ({"nlist": 256}, {"nprobe": 32}),
    "AUTOINDEX": ({}, {}),
    "HNSW": ({"M": 16, "efConstruction": 200}, {"ef": 128}),
}


def _quiet_import() -> Any:
    """Import pymilvus (and milvus_lite) without their warnings and log noise."""
    os.environ.setdefault("RUST_LOG", "error")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pymilvus
            try:
                import milvus_lite  # noqa: F401 - a local file needs it; a server does not
            except ImportError:
                pass
    except ImportError as exc:
        raise KnowledgeBaseError(
            "本机没有安装 Milvus 客户端（pymilvus），无法打开 Milvus 知识库；"
            "请安装：pip install 'pymilvus>=2.5,<2.6' 'milvus-lite==2.5.1'") from exc
    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer", "milvus_lite"):  # after the
        # import: pymilvus configures these loggers itself
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return pymilvus


def is_local(uri: str) -> bool:
    """Whether ``uri`` names a Milvus Lite file (not a server)."""
    return not uri.startswith(SERVER_SCHEMES)


def resolve_uri(kb_dir: Path, uri: str) -> str:
    """The URI to connect to: a Lite file relative to the knowledge base folder made absolute."""
    if not is_local(uri):
        return uri
    path = Path(uri).expanduser()
    return str(path if path.is_absolute() else (Path(kb_dir) / path).absolute())


def connection_error(uri: str, kb_dir: Path, exc: BaseException) -> KnowledgeBaseError:
    """A Chinese message for a Milvus fault met on ``uri``, saying what to do."""
    text = str(getattr(exc, "message", "") or exc)
    low = text.lower()
    if is_local(uri) and ("open local milvus failed" in low or "opened by another" in low or "lock" in low):
        return MilvusConnectionError(
            f"Milvus Lite 数据文件 {uri} 正被另一个程序使用（本地文件一次只能由一个进程打开）；"
            "请关闭正在使用该知识库的其他 yuanwen 进程（如应用或导入）后再试，"
            "或改用 Milvus 服务器（在 kb.json 中把 uri 设为 http://主机:19530）")
    if "auth" in low or "token" in low or "permission" in low or "unauthenticated" in low or "denied" in low:
        return MilvusConnectionError(
            f"Milvus 服务器 {uri} 拒绝了访问（令牌无效或权限不足）；请在 kb.json 的 token 或环境变量 "
            f"{TOKEN_ENV} 中设置正确的令牌（格式：用户名:密码）")
    if any(s in low for s in ("connect", "unavailable", "timeout", "deadline", "refused", "illegal uri",
                              "server", "channel")):
        return MilvusConnectionError(
            f"无法连接 Milvus {uri}（{text[:200]}）；请确认 Milvus 服务已启动、地址和端口正确，"
            f"或在 {Path(kb_dir) / DESCRIPTOR} 中改正 uri")
    return KnowledgeBaseError(f"Milvus {uri} 出错（{text[:300]}）；请稍后再试，如仍出错请运行 yuanwen verify 检查")


def connect(uri: str, token: str | None, kb_dir: Path, timeout: float = 10.0) -> Any:
    """A MilvusClient on ``uri`` (a Lite file or a server), or MilvusConnectionError."""
    if is_local(uri):
        name = Path(uri).name
        if not name.endswith(".db"):
            raise KnowledgeBaseError(f"Milvus Lite 数据文件名必须以 .db 结尾：{uri}；请在 kb.json 中改正 uri")
        if not Path(uri).parent.is_dir():
            raise KnowledgeBaseError(f"Milvus Lite 数据文件所在的文件夹不存在：{Path(uri).parent}")
        with _LOCAL_LOCK:
            if not _LOCAL_USERS.get(uri) and _held_elsewhere(Path(uri)):
                raise connection_error(uri, kb_dir, RuntimeError("open local milvus failed"))
            client = _client(uri, token, kb_dir, timeout)
            _LOCAL_USERS[uri] = _LOCAL_USERS.get(uri, 0) + 1
            return client
    return _client(uri, token, kb_dir, timeout)


def _client(uri: str, token: str | None, kb_dir: Path, timeout: float) -> Any:
    """A new MilvusClient with a connection of its own, or the error :func:`connection_error` names."""
    pymilvus = _quiet_import()
    try:
        return pymilvus.MilvusClient(uri=uri, token=token or "", timeout=timeout, alias=_alias())
    except Exception as exc:
        raise connection_error(uri, kb_dir, exc) from exc


def _lite_process(uri: str) -> Any:
    """The process (a Popen) of milvus_lite's server of the local file ``uri`` in this process,
    or None. (Never keep milvus_lite's Server object itself: when it is collected it deletes
    the lock file by its name, which by then may be its successor's.)"""
    with contextlib.suppress(Exception):  # (milvus_lite's internals: pinned 2.5.1)
        from milvus_lite.server_manager import server_manager_instance

        return getattr(server_manager_instance._servers.get(str(Path(uri).absolute().resolve())), "_p", None)
    return None


def _alive(proc: Any) -> bool:
    return proc is not None and proc.poll() is None


def _alias() -> str:
    """A connection of its own for each client: pymilvus shares one per URI otherwise, and
    closing any client would close it for all of them."""
    return f"yuanwen-{secrets.token_hex(8)}"


# Milvus Lite files this process has open, and how many backends use each: the Lite server of a
# file is stopped when the last one closes, so that another process can open it.
_LOCAL_USERS: dict[str, int] = {}
_LOCAL_LOCK = threading.Lock()


def _held_elsewhere(db: Path) -> bool:
    """Whether another process holds the Milvus Lite file ``db`` (the lock its server takes)."""
    lock = db.parent / f".{db.name}.lock"
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # (this process held no lock on it: closing releases only the probe's)
    return False


def disconnect(client: Any, uri: str) -> None:
    """Close a client; the last one of a Milvus Lite file stops its server."""
    with contextlib.suppress(Exception):  # closing a connection that is gone
        client.close()
    if not is_local(uri):
        return
    with _LOCAL_LOCK:
        left = _LOCAL_USERS.get(uri, 0) - 1
        if left > 0:
            _LOCAL_USERS[uri] = left
            return
        _LOCAL_USERS.pop(uri, None)
        with contextlib.suppress(Exception):  # nothing to stop
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(uri)


class MilvusKeyword(KeywordIndex):
    """Milvus's BM25 over the passage terms: the text, heading path and title together
    (``all``), or the text alone (``text_only``).

    FTS5's weighted bm25() has no Milvus equivalent. One field holding all three columns' terms
    gives what FTS5 does with equal weights (one idf over rows with the term in any column, the
    row's whole length in the normalisation); on 58 evaluation questions over 11 documents its
    top 5 overlapped SQLite's (weights 1, 0.5, 0.3) by 0.93, against 0.82 for three fields
    searched apart and summed with those weights. So ``weights`` only choose between the two:
    the text alone when the other two are 0.
    """

    def __init__(self, backend: MilvusBackend) -> None:
        self.backend = backend

    def search(self, terms: str, k: int, filters: Filters | None = None, *,
               weights: tuple[float, float, float], text_only: bool = False) -> list[tuple[int, float]]:
        query = " ".join(dict.fromkeys(tokenize(terms)))
        expr = self.backend.passage_expr(filters)
        if not query or expr is None or k <= 0:
            return []
        field = "sp_terms" if text_only or not any(weights[1:]) else "sp_all"
        st = self.backend.store
        res = st._rpc(st.client.search, st.c_pass, data=[query], anns_field=field, limit=min(k, MAX_K),
                      filter=expr, output_fields=["doc_id"], search_params={"metric_type": "BM25"})
        live = st.live_doc_ids()
        hits = [(int(h["id"]), abs(float(h["distance"]))) for h in res[0] if int(h["entity"]["doc_id"]) in live]
        return sorted(hits, key=lambda c: (-c[1], c[0]))

    def phrase_doc_ids(self, phrases: Sequence[Sequence[str]]) -> set[int]:
        return self.backend.store.phrase_doc_ids(phrases)


class MilvusVectors(VectorIndex):
    """Dense search over the vectors collection (inner product on unit vectors)."""

    def __init__(self, backend: MilvusBackend) -> None:
        self.backend = backend

    @property
    def size(self) -> int:
        return self.backend.store.counts()["embedded"]

    def search(self, query: np.ndarray, k: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        st = self.backend.store
        expr = self.backend.passage_expr(filters)
        if expr is None or k <= 0:
            return []
        res = st._rpc(st.client.search, st.c_vec, data=[np.asarray(query, dtype=np.float32).tolist()],
                      anns_field="vec", limit=min(k, MAX_K), filter=expr, output_fields=["doc_id"],
                      search_params={"metric_type": "IP", "params": self.backend.search_params})
        live = st.live_doc_ids()
        return [(int(h["id"]), float(h["distance"])) for h in res[0] if int(h["entity"]["doc_id"]) in live]


class MilvusBackend(Backend):
    """One knowledge base folder whose data is in Milvus (see the module notes)."""

    name = "milvus"

    def __init__(self, kb_dir: Path, config: Any, descriptor: dict[str, Any],
                 create: bool = False, readonly: bool = False) -> None:
        self.kb_dir = Path(kb_dir)
        self.config = config
        if not (self.kb_dir / DESCRIPTOR).exists() and not create:
            raise KnowledgeBaseError(
                f"知识库不存在：{self.kb_dir}。请先运行 yuanwen init {self.kb_dir} --backend milvus --uri URI")
        desc = dict(descriptor)
        filled = {"uri": DEFAULT_URI, "prefix": f"yw_{secrets.token_hex(6)}", "index": DEFAULT_INDEX}
        missing = {k: v for k, v in filled.items() if not desc.get(k)}
        if missing:
            if readonly:
                raise KnowledgeBaseError(
                    f"知识库描述文件 {self.kb_dir / DESCRIPTOR} 缺少 {'、'.join(missing)}；请以可写方式打开一次")
            desc.update(missing)
            self.kb_dir.mkdir(parents=True, exist_ok=True)
            write_descriptor(self.kb_dir, desc)
            if desc.get("token"):
                os.chmod(self.kb_dir / DESCRIPTOR, 0o600)
        index_type = str(desc["index"]).upper()
        if index_type not in _INDEX_PARAMS:
            raise KnowledgeBaseError(
                f"kb.json 中的向量索引类型 {desc['index']} 不受支持（可用：{'、'.join(_INDEX_PARAMS)}）")
        build, self.search_params = _INDEX_PARAMS[index_type]
        self.descriptor = desc
        self.uri = resolve_uri(self.kb_dir, str(desc["uri"]))
        token = os.environ.get(TOKEN_ENV) or desc.get("token")
        self.client = None
        local = None
        try:
            self._token, self._timeout = token, float(desc.get("timeout") or 10)
            self.client = connect(self.uri, token, self.kb_dir, self._timeout)
            self._proc = _lite_process(self.uri) if is_local(self.uri) else None
            self.store = MilvusStore(
                self.kb_dir, self.client, str(desc["prefix"]), self.uri,
                {"index_type": index_type, "params": build}, None, create=create, readonly=readonly,
                wrap=lambda exc: connection_error(self.uri, self.kb_dir, exc))
            # accounts and the audit log, in the folder (made for a reader too: a folder that
            # holds only kb.json, on another machine, is a whole knowledge base)
            if readonly and not (self.kb_dir / DB_NAME).exists() and os.access(self.kb_dir, os.W_OK):
                Store(self.kb_dir, create=True).close()
            local = Store(self.kb_dir, create=create, readonly=readonly)
            self.store.local = local
            if self._proc is not None:
                self.store.revive = self._revive
        except BaseException:
            if self.client is not None:
                disconnect(self.client, self.uri)
            if local is not None:
                local.close()
            raise

    def _revive(self) -> Any:
        """A new client when the Milvus Lite server this one talks to has stopped, else None.

        The server stops when this process's POSIX lock on its lock file goes, and POSIX drops
        that lock whenever the process closes any descriptor of the file (a copy of the folder
        made in this process does): the old client would then retry its socket for minutes."""
        if _alive(self._proc) and _lite_process(self.uri) is self._proc:
            return None
        with _LOCAL_LOCK:
            current = _lite_process(self.uri)
            if current is not None and not _alive(current):
                with contextlib.suppress(Exception):  # (stopped already)
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(self.uri)
            if _lite_process(self.uri) is None and _held_elsewhere(Path(self.uri)):
                raise connection_error(self.uri, self.kb_dir, RuntimeError("open local milvus failed"))
            client = _client(self.uri, self._token, self.kb_dir, self._timeout)
        with contextlib.suppress(Exception):  # its connection is gone already
            self.client.close()
        self.client, self._proc = client, _lite_process(self.uri)
        return client

    # -- the interfaces ----------------------------------------------------------------------
    def keyword(self) -> KeywordIndex:
        return MilvusKeyword(self)

    def vectors(self) -> VectorIndex | None:
        if self.store.get_meta("dim") is None or not self.store.counts()["embedded"]:
            return None
        return MilvusVectors(self)

    def sync_keyword(self) -> None:
        """BM25 is kept by Milvus as passages are written; a writer deletes here the rows an
        interrupted write left (it holds the ingest lock), after giving back the lanes of this
        machine's writers that no longer run (their rows are then orphans too)."""
        self.store.release_dead_lanes()
        self.store.delete_orphans()

    def describe(self) -> dict[str, Any]:
        """Sizes: the Milvus Lite file (0 for a server, whose disk is not ours to see); the
        indexes are inside Milvus (0 here)."""
        db = Path(self.uri)
        return {
            "db_bytes": db.stat().st_size if is_local(self.uri) and db.exists() else 0,
            "index_type": f"milvus-{self.descriptor['index'].lower()}",
            "index_bytes": 0,
            "keyword_index_bytes": 0,
            "uri": self.descriptor["uri"],
            "prefix": self.descriptor["prefix"],
        }

    def vector_index(self, save: bool = False) -> None:
        """No local vector index file: Milvus holds it."""
        return

    def keyword_index(self, save: bool = False) -> None:
        """No local keyword index file: Milvus holds it."""
        return

    def rebuild_index(self) -> None:
        """Nothing to rebuild locally."""
        return

    def passage_expr(self, filters: Filters | None) -> str | None:
        """The filter expression over passages (or vectors) for ``filters``: ``""`` for none,
        None when no document passes."""
        ids = self.store.filtered_doc_ids(filters)
        if ids is None:
            return ""
        return _in("doc_id", ids) if ids else None

    def close(self) -> None:
        try:
            self.store.close()  # (writes held back, and the lane given back, over the connection)
        finally:
            disconnect(self.client, self.uri)


register_backend(MilvusBackend.name, MilvusBackend)
