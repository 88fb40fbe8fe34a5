"""The document store of the ``milvus`` backend: documents, passages, sentences, text and
vectors in Milvus collections (see :mod:`yuanwen.milvus_backend` for the connection and the
indexes).

Collections, all named ``<prefix>_<name>`` so one Milvus server holds many knowledge bases:

- ``meta``: key -> value (embedder, dim, kb_id, access ladder, id counters, ``version``);
- ``documents``: one row per document: the columns filters and facets read, and the rest of
  the row as JSON. It is written last: it is the commit marker of a document;
- ``text``: a document's text in chunks of :data:`TEXT_CHUNK` characters (a VARCHAR holds at
  most 65,535 bytes);
- ``passages``: passages with their offsets, heading path, sentence offsets (JSON), the terms
  (:func:`yuanwen.text.tokenize`) of the text, of the heading path and of the title, and two
  analysed VARCHARs that BM25 functions turn into sparse vectors: ``terms`` (the text alone,
  for quote lookup) and ``all`` (text, heading path and title together, for keyword search);
- ``vectors``: one row per embedded passage (its id, document, text hash and vector), made
  when the embedder is claimed (its dimension is known then) and dropped by ``--reembed``;
- ``ocr``: recognised pages, by file hash and page.

Milvus has no transactions. A document's text and passages go in first under fresh ids, its
document row last, then the rows of the version it replaced go; readers drop hits of
passages whose document row is missing, and a writer deletes such orphans after each ingest
(``MilvusBackend.sync_keyword``, under the ingest lock) or ``verify --repair``.
Writers on one machine take turns through the ingest lock; writers on several machines (``ingest
--shard i/N``) write at once, each in a *lane* of ids of its own: a writer claims a free lane
(``meta.lane_<n>``, its owner, host and process, and how far each counter has gone), takes its
ids from it and releases it when it closes, so two writers never hand out the same id, and a
writer's clean-up of orphans never touches a lane another writer holds. Every write sets
``meta.version`` (a time stamp),
which :meth:`MilvusStore.version` reads: caches of readers in other processes key on it.
``transaction()`` batches: the documents saved inside it are written when it ends (their text
and passages, then their rows; one version bump), and ids are reserved in blocks of the lane
(:data:`ID_BLOCK`), so copying or ingesting many documents takes a few Milvus calls per batch
rather than several per document.

Accounts and the audit log stay in the knowledge base folder: the store delegates them to a
local :class:`yuanwen.store.Store` (``yuanwen.db`` then holds accounts only; ``audit.db`` the
log), as the app writes them through a read-only handle.
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .backend import SERVER_SCHEMES
from .errors import KnowledgeBaseError
from .models import (
    Account,
    AuditEntry,
    Document,
    Filters,
    OcrLine,
    OcrPage,
    Passage,
    Sentence,
)
from .store import DamagedDocument, RawDocument, Store, content_hash, file_of
from .text import fts_document

SCHEMA_VERSION = 1
NEAR_MAX = 2000  # passages whose sentence spans are kept after get_passages
NEAR_CHUNKS = 256  # text chunks kept (at most 4M characters)
NEAR_WIDEN = 1000  # characters around a passage read last whose chunks come with a miss
NEAR_PREFETCH = 64  # chunks at most that one miss fetches (those of the passages read last)
TEXT_CHUNK = 16_000  # characters per text row: at most 64,000 bytes of UTF-8
PAGE = 16_000  # rows per query (Milvus caps a query at 16,384)
IN_BATCH = 1000  # values per ``in [...]`` list
WRITE_BATCH = 2000  # rows per insert/upsert call
DUMMY = [1.0, 0.0]  # the vector every collection needs (documents, text, meta, ocr)
MAXLEN = 65_535
META_TTL = 0.5  # seconds a read of the meta rows (and so ``version()``) is kept
ID_BLOCK = {"doc": 64, "passage": 8192, "text": 256}  # ids a store reserves at a time, per counter
# A lane is the ids n << LANE_BITS .. (n + 1) << LANE_BITS: lanes 1..LANES are handed to writers
# (ids stay below 2**36: exact in JavaScript, and a sum of ten million of them fits an int64);
# lane 0 holds ids kept from elsewhere (a copied SQLite knowledge base's).
LANE_BITS = 26
LANES = 1023
LANE_SETTLE = 0.3  # seconds between writing a claim on a lane and reading it back
FLUSH_ROWS = 20_000  # passages a transaction holds back before it writes them anyway

_PASSAGE_FIELDS = ["id", "doc_id", "seq", "pstart", "pend", "page", "para", "heads_json", "text"]
_DOC_COLS = ["id", "path", "title", "issuer", "speaker", "date", "year", "doc_type", "access",
             "content_hash", "format", "pid_lo", "pid_hi", "text_base", "n_chunks", "n_chars",
             "n_passages", "n_sentences", "row"]


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine."""
    if pid <= 0:
        return False
    if os.name == "nt":  # (signal 0 is CTRL_C_EVENT there): cannot tell, so it may be running
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: running
        return True
    return True


def _q(value: str) -> str:
    """A string literal for a Milvus filter expression."""
    return json.dumps(value, ensure_ascii=False)


def _in(field: str, values: Iterable[Any]) -> str:
    vals = list(values)
    if vals and isinstance(vals[0], str):
        return f"{field} in [{', '.join(_q(v) for v in vals)}]"
    return f"{field} in [{', '.join(str(int(v)) for v in vals)}]"


def _trim(text: str, limit: int = MAXLEN) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8 (whole characters)."""
    raw = text.encode("utf-8")
    return text if len(raw) <= limit else raw[:limit].decode("utf-8", "ignore")


def _terms(text: str) -> str:
    """What a BM25 field holds: the keyword terms, space-separated, with a space at each end
    (so a phrase is a ``like "% a b %"`` match at term boundaries)."""
    out = " " + fts_document(text) + " "
    return out if len(out.encode("utf-8")) <= MAXLEN else _trim(out, MAXLEN - 1).rsplit(" ", 1)[0] + " "


class MilvusStore:
    """One knowledge base's data in Milvus (the DocumentStore protocol of yuanwen.backend)."""

    def __init__(self, kb_dir: Path, client: Any, prefix: str, uri: str, index: dict[str, Any],
                 local: Store | None, create: bool, readonly: bool, wrap: Callable[[BaseException], Exception]) -> None:
        self.kb_dir = Path(kb_dir)
        self.client = client
        self.prefix = prefix
        self.uri = uri
        self.index = index  # {"index_type": ..., "params": {...}, "search": {...}}
        self.local = local  # set by the backend when None here
        self.readonly = readonly
        self._wrap = wrap
        # set by the backend of a Milvus Lite file: a new client when its server has stopped
        self.revive: Callable[[], Any] | None = None
        self._lock = threading.RLock()
        self._cache_version: tuple[int, int] | None = None
        self._cache: dict[Any, Any] = {}
        # quote lookup reads passages, then slices and sentence spans around each: the spans and
        # text chunks of the passages read last are kept (per version) so those follow-ups need
        # one Milvus call in all, not three per candidate
        self._near: tuple[Any, dict[int, tuple[int, int, int, list[list[int]]]], OrderedDict[tuple[int, int], str]] | None = None
        self._recent: list[tuple[int, int, int]] = []  # (doc, start, end) of the last get_passages
        self._pending: tuple[tuple[int, int], OrderedDict[str, int]] | None = None
        self._vec_dim: int | None = None
        self._meta: tuple[float, dict[str, str]] | None = None
        self._depth = 0  # open transaction() blocks
        self._dirty = False  # written to inside them: the version is bumped when the outermost ends
        self._buf = self._empty_buffer()  # documents saved in the open transaction, not yet written
        self._flushing = False
        self._blocks: dict[str, list[int]] = {}  # counter -> [next, end): ids reserved by this store
        self._owner = uuid.uuid4().hex  # this store, as the owner of the lane it writes in
        self._lane: tuple[int, dict[str, Any]] | None = None  # (lane, its meta row) once claimed
        self.c_meta, self.c_docs, self.c_text, self.c_pass, self.c_vec, self.c_ocr = (
            f"{prefix}_{n}" for n in ("meta", "documents", "text", "passages", "vectors", "ocr"))
        self._buffered = {self.c_docs, self.c_text, self.c_pass, self.c_vec}
        existing = set(self._rpc(self.client.list_collections))
        if self.c_meta not in existing:
            if not create or readonly:
                raise KnowledgeBaseError(
                    f"知识库不存在：{self.kb_dir}（Milvus {uri} 中没有前缀为 {prefix} 的集合）。"
                    f"请先运行 yuanwen ingest <文件夹> --kb {self.kb_dir}")
            self._create_collections(existing)
        else:
            for name in (self.c_meta, self.c_docs, self.c_text, self.c_pass, self.c_ocr):
                self._rpc(self.client.load_collection, name)
            if self.c_vec in existing:
                self._rpc(self.client.load_collection, self.c_vec)
        self.check_schema()
        self.kb_id = self.get_meta("kb_id")
        if self.kb_id is None and not readonly:
            self.kb_id = uuid.uuid4().hex
            self.set_meta("kb_id", self.kb_id)

    # -- Milvus calls -------------------------------------------------------------------------
    def _rpc(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Call pymilvus on a collection (its name first in ``args``); its errors become
        KnowledgeBaseError naming the URI. Documents a transaction holds back are written first
        when the call reads or changes a collection they go to (so reads see them, in order)."""
        if self._buf["docs"] and not self._flushing and args and args[0] in self._buffered:
            self._flush()
        return self._call(fn, *args, **kw)

    def _call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Call pymilvus as it is; its errors become KnowledgeBaseError naming the URI."""
        if self.revive is not None and getattr(fn, "__self__", None) is self.client:
            client = self.revive()
            if client is not None:  # the old one would retry its dead socket for minutes
                self.client = client
                fn = getattr(client, fn.__name__)
        try:
            return fn(*args, **kw)
        except KnowledgeBaseError:
            raise
        except Exception as exc:  # pymilvus raises MilvusException and grpc errors
            raise self._wrap(exc) from exc

    def _query(self, coll: str, expr: str, fields: list[str], limit: int | None = None) -> list[dict[str, Any]]:
        """Rows matching ``expr``: all of them, paged by primary key past the query cap."""
        pk = "key" if coll == self.c_ocr or coll == self.c_meta else "id"
        if limit is not None and limit <= PAGE:
            return self._rpc(self.client.query, coll, filter=expr, output_fields=fields, limit=limit)
        out: list[dict[str, Any]] = []
        last: Any = None
        out_fields = fields if pk in fields else [*fields, pk]
        while True:
            page_expr = expr
            if last is not None:
                bound = f"{pk} > {_q(last) if isinstance(last, str) else last}"
                page_expr = f"({expr}) and {bound}" if expr else bound
            rows = self._rpc(self.client.query, coll, filter=page_expr or f"{pk} >= 0" if pk == "id" else page_expr,
                             output_fields=out_fields, limit=PAGE)
            out += rows
            if len(rows) < PAGE or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out
            last = max(r[pk] for r in rows)

    def _query_in(self, coll: str, field: str, values: Sequence[Any], fields: list[str],
                  extra: str = "") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        values = list(values)
        for i in range(0, len(values), IN_BATCH):
            expr = _in(field, values[i: i + IN_BATCH])
            out += self._query(coll, f"{expr} and ({extra})" if extra else expr, fields)
        return out

    def _count(self, coll: str, expr: str = "") -> int:
        rows = self._rpc(self.client.query, coll, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _write(self, method: str, coll: str, rows: list[dict[str, Any]]) -> None:
        fn = getattr(self.client, method)
        for i in range(0, len(rows), WRITE_BATCH):
            self._rpc(fn, coll, rows[i: i + WRITE_BATCH])

    def _delete(self, coll: str, expr: str) -> int:
        res = self._rpc(self.client.delete, coll, filter=expr)
        try:
            return int(res.get("delete_count", 0))
        except (AttributeError, TypeError, ValueError):
            return 0

    def _has(self, coll: str) -> bool:
        return bool(self._rpc(self.client.has_collection, coll))

    # -- schema ---------------------------------------------------------------------------------
    def _create_collections(self, existing: set[str]) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        def make(name: str, fields: list[tuple[str, Any, dict[str, Any]]], pk: tuple[str, Any, dict[str, Any]],
                 bm25: Sequence[tuple[str, str]] = ()) -> None:
            if name in existing:
                return
            s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field(pk[0], pk[1], is_primary=True, **pk[2])
            for fname, ftype, kw in fields:
                s.add_field(fname, ftype, **kw)
            s.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
            for src, out in bm25:
                s.add_field(out, DataType.SPARSE_FLOAT_VECTOR)
                s.add_function(Function(name=f"bm25_{src}", function_type=FunctionType.BM25,
                                        input_field_names=[src], output_field_names=[out]))
            ip = self.client.prepare_index_params()
            ip.add_index(field_name="vec", index_type="FLAT", metric_type="IP")
            for _, out in bm25:
                ip.add_index(field_name=out, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                             params={"bm25_k1": 1.2, "bm25_b": 0.75})
            self._rpc(self.client.create_collection, name, schema=s, index_params=ip, consistency_level="Strong")

        V, I64 = DataType.VARCHAR, DataType.INT64
        long = {"max_length": MAXLEN}
        analysed = {"max_length": MAXLEN, "enable_analyzer": True, "analyzer_params": {"tokenizer": "whitespace"}}
        make(self.c_docs, [
            ("path", V, {"max_length": 8192}), ("title", V, {"max_length": 8192}),
            ("issuer", V, {"max_length": 4096}), ("speaker", V, {"max_length": 4096}),
            ("date", V, {"max_length": 64}), ("year", I64, {}), ("doc_type", V, {"max_length": 512}),
            ("access", V, {"max_length": 256}), ("content_hash", V, {"max_length": 64}),
            ("format", V, {"max_length": 64}), ("pid_lo", I64, {}), ("pid_hi", I64, {}),
            ("text_base", I64, {}), ("n_chunks", I64, {}), ("n_chars", I64, {}),
            ("n_passages", I64, {}), ("n_sentences", I64, {}), ("row", V, long),
        ], ("id", I64, {}))
        make(self.c_text, [("doc_id", I64, {}), ("text", V, long)], ("id", I64, {}))
        make(self.c_pass, [
            ("doc_id", I64, {}), ("seq", I64, {}), ("pstart", I64, {}), ("pend", I64, {}),
            ("page", I64, {}), ("para", I64, {}), ("heads_json", V, long), ("text", V, long),
            ("chash", V, {"max_length": 64}), ("sents", V, long),
            ("terms", V, analysed), ("heads", V, long), ("title", V, long), ("all", V, analysed),
        ], ("id", I64, {}), bm25=[("terms", "sp_terms"), ("all", "sp_all")])
        make(self.c_ocr, [("engine", V, {"max_length": 256}), ("data", V, long)], ("key", V, {"max_length": 512}))
        make(self.c_meta, [("value", V, long)], ("key", V, {"max_length": 256}))  # last: marks a whole KB
        with self._lock:
            self.set_meta("schema_version", str(SCHEMA_VERSION))

    def _ensure_vectors(self, dim: int) -> None:
        """Make the vectors collection for ``dim``-dimensional vectors if there is none."""
        if self._vector_dim() is not None:
            return
        from pymilvus import DataType, MilvusClient

        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("doc_id", DataType.INT64)
        s.add_field("chash", DataType.VARCHAR, max_length=64)
        s.add_field("vec", DataType.FLOAT_VECTOR, dim=int(dim))
        ip = self.client.prepare_index_params()
        ip.add_index(field_name="vec", index_type=self.index.get("index_type", "FLAT"), metric_type="IP",
                     params=self.index.get("params") or {})
        self._rpc(self.client.create_collection, self.c_vec, schema=s, index_params=ip, consistency_level="Strong")
        self._vec_dim = int(dim)

    def _vector_dim(self) -> int | None:
        """The dimension of the vectors collection, or None when there is none."""
        if self._vec_dim is None and self._has(self.c_vec):
            info = self._rpc(self.client.describe_collection, self.c_vec)
            for f in info.get("fields", []):
                if f.get("name") == "vec":
                    self._vec_dim = int(f.get("params", {}).get("dim"))
        return self._vec_dim

    def schema_version(self) -> int:
        v = self.get_meta("schema_version")
        return int(v) if v else 0

    def check_schema(self) -> None:
        v = self.schema_version()
        if v != SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"知识库 {self.kb_dir} 的 Milvus 数据格式版本为 {v}，本程序需要 {SCHEMA_VERSION}；请升级 yuanwen")

    def quick_check(self) -> list[str]:
        """``["ok"]`` when every collection of this knowledge base is there and answers."""
        names = set(self._rpc(self.client.list_collections))
        missing = [n for n in (self.c_meta, self.c_docs, self.c_text, self.c_pass, self.c_ocr) if n not in names]
        if missing:
            return [f"Milvus 中缺少集合 {'、'.join(missing)}"]
        self._count(self.c_docs)
        return ["ok"]

    # -- state and consistency ----------------------------------------------------------------
    def _meta_all(self) -> dict[str, str]:
        """Every meta row, read again at most every :data:`META_TTL` seconds (this process's
        own writes show at once; another process's within that time)."""
        with self._lock:
            now = time.monotonic()
            if self._meta is None or now - self._meta[0] > META_TTL:
                rows = self._rpc(self.client.query, self.c_meta, filter='key != ""',
                                 output_fields=["key", "value"], limit=PAGE)
                self._meta = (now, {r["key"]: r["value"] for r in rows})
            return self._meta[1]

    def version(self) -> tuple[int, int]:
        """``meta.version``: a time stamp every write sets (in any process)."""
        return (int(self._meta_all().get("version") or 0), 0)

    def _bump(self) -> None:
        """Mark the data changed: a new ``version`` (once, when the outermost transaction ends,
        inside one; this process's caches are dropped at once)."""
        with self._lock:
            self._cache_version = None
            if self._depth:
                self._dirty = True
                self._pending = None
                return
        stamp = str(time.time_ns())
        self._write("upsert", self.c_meta, [{"key": "version", "value": stamp, "vec": DUMMY}])
        with self._lock:
            if self._meta is not None:
                self._meta[1]["version"] = stamp

    def _cached(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``, kept until the data changes (``version()``)."""
        version = self.version()
        with self._lock:
            if self._cache_version != version:
                self._cache, self._cache_version = {}, version
            if key not in self._cache:
                if len(self._cache) > 64:
                    self._cache.clear()
                self._cache[key] = make()
            return self._cache[key]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Milvus has no transactions; this batches. The documents saved in the block are
        written together when the outermost block ends (or before anything reads or changes
        their collections): the text and passages of all of them, then their document rows
        (the commit markers), and ``version`` is bumped once. An error inside the block drops
        the documents not written yet, as a rollback would; other writes took effect."""
        with self._lock:
            self._depth += 1
        failed = False
        try:
            yield
            if self._depth == 1:
                self._flush()
        except BaseException:
            failed = True
            if self._depth == 1:
                with self._lock:
                    self._buf = self._empty_buffer()
            raise
        finally:
            with self._lock:
                self._depth -= 1
                bump = not self._depth and self._dirty
                if bump:
                    self._dirty = False
                pending = self._pending
            if bump:
                try:
                    before = self.version()
                    self._bump()
                    if pending is not None and pending[0] == before:  # still right: keep it
                        self._pending = (self.version(), pending[1])
                except Exception:
                    if not failed:  # (else the error that ended the block is the one to see)
                        raise

    @staticmethod
    def _empty_buffer() -> dict[str, list[Any]]:
        return {"text": [], "pass": [], "docs": [], "gone": [], "upsert": []}

    def _flush(self) -> None:
        """Write the documents held back by the open transaction: the counters their kept ids
        need, their text and passages, the vectors known for those texts, then their rows, then
        the rows of the versions they replaced."""
        with self._lock:
            buf = self._buf
            if not buf["docs"]:
                return
            self._buf = self._empty_buffer()
        self._flushing = True
        try:
            self._write("insert", self.c_text, buf["text"])
            if buf["upsert"]:  # kept ids: rows a broken-off copy left under them go first
                for i in range(0, len(buf["upsert"]), IN_BATCH):
                    self._delete(self.c_pass, _in("doc_id", buf["upsert"][i: i + IN_BATCH]))
            self._write("insert", self.c_pass, buf["pass"])
            self._copy_known_vectors(buf["pass"])
            self._write("upsert", self.c_docs, buf["docs"])  # the commit markers
            vectors = self._vector_dim() is not None
            for doc_id, lo, hi, base, n in buf["gone"]:  # the replaced versions' rows
                gone = f"doc_id == {doc_id} and (id < {lo} or id > {hi})"
                self._delete(self.c_pass, gone)
                if vectors:
                    self._delete(self.c_vec, gone)
                self._delete(self.c_text, f"doc_id == {doc_id} and (id < {base} or id >= {base + n})")
        finally:
            self._flushing = False
        self._bump()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads see the data as it is at each read (Strong consistency); no snapshot."""
        yield

    def get_meta(self, key: str) -> str | None:
        return self._meta_all().get(key)

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self._delete(self.c_meta, f"key == {_q(key)}")
        else:
            self._write("upsert", self.c_meta, [{"key": key, "value": value, "vec": DUMMY}])
        with self._lock:
            if self._meta is not None:
                if value is None:
                    self._meta[1].pop(key, None)
                else:
                    self._meta[1][key] = value
        self._bump()

    set_security_meta = set_meta

    # -- lanes of ids -----------------------------------------------------------------------------
    def lanes(self, fresh: bool = True) -> dict[int, dict[str, Any]]:
        """The lanes ever claimed: lane -> its row (``owner`` None once released; ``full``)."""
        if fresh:
            with self._lock:
                self._meta = None
        out = {}
        for k, v in self._meta_all().items():
            if k.startswith("lane_"):
                try:
                    out[int(k[5:])] = json.loads(v)
                except ValueError:
                    continue
        return out

    def _lane_ids(self, lane: int) -> tuple[int, int]:
        return lane << LANE_BITS, (lane + 1) << LANE_BITS

    def _lane_used(self, lane: int) -> bool:
        """Whether any row already has an id in ``lane`` (copied in from another knowledge base)."""
        lo, hi = self._lane_ids(lane)
        expr = f"id >= {lo} and id < {hi}"
        return any(self._rpc(self.client.query, c, filter=expr, output_fields=["id"], limit=1)
                   for c in (self.c_docs, self.c_pass, self.c_text))

    def _write_lane(self, lane: int, row: dict[str, Any]) -> None:
        value = json.dumps(row, ensure_ascii=False)
        self._write("upsert", self.c_meta, [{"key": f"lane_{lane}", "value": value, "vec": DUMMY}])
        with self._lock:
            if self._meta is not None:
                self._meta[1][f"lane_{lane}"] = value

    def _claim_lane(self) -> tuple[int, dict[str, Any]]:
        """The lane this store writes in: a released one (carrying on where it stopped) or a
        new one, claimed by writing this store as its owner and reading that back after
        :data:`LANE_SETTLE` (two writers that pick one lane at once: the later write wins, and
        the earlier writer sees that and tries another)."""
        if self._lane is not None:
            return self._lane
        for _ in range(50):
            t0 = time.monotonic()
            lanes = self.lanes()
            free = [n for n, r in lanes.items() if r.get("owner") is None and not r.get("full")]
            new = [n for n in range(1, LANES + 1) if n not in lanes]
            if not free and not new:
                raise KnowledgeBaseError(
                    f"知识库 {self.kb_dir} 的 {LANES} 个写入通道都已被占用（正在运行或中断的导入）；"
                    "请在中断过导入的机器上运行 yuanwen verify --repair 释放")
            lane = random.choice(free or new)
            row = dict(lanes.get(lane) or {"next": {}})
            if lane not in lanes and self._lane_used(lane):  # ids copied in: never hand these out
                self._write_lane(lane, {"owner": None, "full": True, "next": {}})
                continue
            if time.monotonic() - t0 > LANE_SETTLE / 2:  # what was read is too old to act on
                continue
            row.update(owner=self._owner, host=socket.gethostname(), pid=os.getpid(),
                       since=time.strftime("%Y-%m-%dT%H:%M:%S"))
            self._write_lane(lane, row)
            if self.uri.startswith(SERVER_SCHEMES):  # (a Milvus Lite file has one process: no race)
                time.sleep(LANE_SETTLE)
            if (self.lanes().get(lane) or {}).get("owner") == self._owner:
                self._lane = (lane, row)
                return self._lane
        raise KnowledgeBaseError(f"知识库 {self.kb_dir}：多次争用写入通道未果，请稍后重试")

    def _take(self, name: str, n: int) -> int:
        """The first of ``n`` fresh ids of counter ``name``, from the block this store reserved
        in its lane (a new block of at least :data:`ID_BLOCK` ids, recorded in the lane's row,
        when it runs out; a new lane when the lane is full)."""
        with self._lock:
            nxt, end = self._blocks.get(name, [0, 0])
            if nxt + n > end:
                size = max(n, ID_BLOCK[name])
                if size > 1 << (LANE_BITS - 1):
                    raise KnowledgeBaseError(f"一次写入的记录过多（{n} 条），无法存入 Milvus")
                while True:
                    lane, row = self._claim_lane()
                    lo, hi = self._lane_ids(lane)
                    nxt = max(int(row["next"].get(name, lo)), lo)
                    if nxt + size <= hi:
                        break
                    row["full"] = True  # on to another lane
                    self._release()
                end = nxt + size
                row["next"][name] = end
                self._write_lane(lane, row)  # before any id of the block is used
            self._blocks[name] = [nxt + n, end]
            return nxt

    def _release(self) -> None:
        """Give this store's lane back (its row keeps how far each counter went)."""
        with self._lock:
            if self._lane is None:
                return
            lane, row = self._lane
            self._lane, self._blocks = None, {}
        row = {**row, "owner": None}
        self._write_lane(lane, row)

    def foreign_lanes(self) -> dict[int, dict[str, Any]]:
        """The lanes other writers hold now (their rows are being written: not orphans)."""
        return {n: r for n, r in self.lanes().items() if r.get("owner") not in (None, self._owner)}

    def release_dead_lanes(self) -> list[dict[str, Any]]:
        """Release the lanes held by writers of this machine that are no longer running (an
        interrupted ingest), so their rows can be cleaned up; returns their rows."""
        host, out = socket.gethostname(), []
        for n, r in self.foreign_lanes().items():
            if r.get("host") == host and not _alive(int(r.get("pid") or 0)):
                self._write_lane(n, {**r, "owner": None})
                out.append(r)
        return out

    def close(self) -> None:
        try:
            if self._buf["docs"]:
                self._flush()
        finally:
            if self._lane is not None:
                self._release()
        if self.local is not None:
            self.local.close()

    # -- documents --------------------------------------------------------------------------------
    def _doc_rows(self) -> dict[int, dict[str, Any]]:
        """Every document row (no text), by id: kept until the data changes."""
        def load() -> dict[int, dict[str, Any]]:
            rows = self._query(self.c_docs, "id >= 0", _DOC_COLS)
            return {int(r["id"]): r for r in rows}
        return self._cached("docs", load)

    def _doc_from(self, r: dict[str, Any], text: str | None = None) -> Document:
        j = json.loads(r["row"])
        return Document(
            id=int(r["id"]), path=r["path"], title=j.get("title"), issuer=j.get("issuer"), date=j.get("date"),
            doc_number=j.get("doc_number"), doc_number_masked=bool(j.get("doc_number_masked")),
            doc_type=j.get("doc_type"), content_hash=r["content_hash"], pages=j.get("pages") or [],
            extra=j.get("extra") or {}, text=text or "", root=j.get("root"), access=r["access"])

    def _row_by(self, expr: str, flush: bool = True) -> dict[str, Any] | None:
        rows = (self._rpc if flush else self._call)(self.client.query, self.c_docs, filter=expr,
                                                     output_fields=_DOC_COLS, limit=16)
        return min(rows, key=lambda r: r["id"]) if rows else None

    def _doc_text(self, r: dict[str, Any]) -> str:
        base, n = int(r["text_base"]), int(r["n_chunks"])
        if n == 0:
            return ""
        rows = self._query(self.c_text, f"id >= {base} and id < {base + n}", ["id", "text"])
        return "".join(x["text"] for x in sorted(rows, key=lambda x: x["id"]))

    def _texts(self, rows: Sequence[dict[str, Any]]) -> dict[int, str]:
        """The texts of many documents, read in few queries."""
        parts: dict[int, list[tuple[int, str]]] = {int(r["id"]): [] for r in rows}
        for x in self._query_in(self.c_text, "doc_id", list(parts), ["id", "doc_id", "text"]):
            if int(x["doc_id"]) in parts:
                parts[int(x["doc_id"])].append((int(x["id"]), x["text"]))
        spans = {int(r["id"]): (int(r["text_base"]), int(r["text_base"]) + int(r["n_chunks"])) for r in rows}
        return {d: "".join(t for i, t in sorted(ps) if spans[d][0] <= i < spans[d][1]) for d, ps in parts.items()}

    def _row(self, doc_id: int) -> dict[str, Any] | None:
        """A document's row from the cache of every row (readers), else from Milvus."""
        rows = self._cache.get("docs") if self._cache_version == self.version() else None
        if rows is None and self.readonly:
            rows = self._doc_rows()
        if rows is not None:
            return rows.get(int(doc_id))
        return self._row_by(f"id == {int(doc_id)}")

    def get_document(self, doc_id: int, with_text: bool = True) -> Document:
        r = self._row(doc_id)
        if r is None:
            raise KnowledgeBaseError(f"知识库中没有编号为 {doc_id} 的文档")
        return self._doc_from(r, self._doc_text(r) if with_text else None)

    def documents(self, with_text: bool = False, filters: Filters | None = None) -> list[Document]:
        rows = self._doc_rows()
        ids = self.filtered_doc_ids(filters)
        chosen = list(rows.values()) if ids is None else [rows[i] for i in ids if i in rows]
        texts = self._texts(chosen) if with_text else {}
        docs = [self._doc_from(r, texts.get(int(r["id"]))) for r in chosen]
        docs.sort(key=lambda d: (d.date or "", d.title or "", d.id or 0))
        return docs

    def document_by_path(self, path: str) -> dict[str, Any] | None:
        r = self._row_by(f"path == {_q(path)}")
        if r is None:
            return None
        j = json.loads(r["row"])
        return {"id": int(r["id"]), "path": r["path"], "content_hash": r["content_hash"],
                "file_hash": j.get("file_hash"), "size_bytes": j.get("size_bytes"), "mtime": j.get("mtime"),
                "extra": json.dumps(j.get("extra") or {}, ensure_ascii=False), "access": r["access"]}

    def document_by_hash(self, chash: str) -> dict[str, Any] | None:
        r = self._row_by(f"content_hash == {_q(chash)}")
        return {"id": int(r["id"]), "path": r["path"]} if r else None

    def twins(self, hashes: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
        out: dict[str, list[tuple[int, str]]] = {}
        for r in sorted(self._query_in(self.c_docs, "content_hash", sorted(set(hashes)), ["id", "path", "content_hash"]),
                        key=lambda r: r["id"]):
            out.setdefault(r["content_hash"], []).append((int(r["id"]), r["path"]))
        return {h: docs for h, docs in out.items() if len(docs) > 1}

    def titles(self) -> list[tuple[int, str]]:
        return [(i, r["title"] or "") for i, r in self._doc_rows().items()]

    def all_paths(self) -> list[tuple[int, str]]:
        return [(i, r["path"]) for i, r in self._doc_rows().items()]

    def document_slice(self, doc_id: int, start: int, end: int) -> str:
        r = self._row(doc_id)
        if r is None or end <= start:
            return ""
        base, n = int(r["text_base"]), int(r["n_chunks"])
        first, last = max(0, start) // TEXT_CHUNK, min(n - 1, (end - 1) // TEXT_CHUNK)
        if last < first:
            return ""
        text = "".join(self._chunks(int(doc_id), base, n, range(first, last + 1)))
        off = first * TEXT_CHUNK
        return text[max(0, start) - off: end - off]

    def _chunks(self, doc_id: int, base: int, n: int, wanted: range) -> list[str]:
        """Text chunks ``wanted`` of a document, from the chunk cache; on a miss, one query
        fetches them with the chunks around the passages of the last :meth:`get_passages` (quote
        lookup's candidates, whose windows it reads next), at most :data:`NEAR_PREFETCH`."""
        _, chunks = self._near_caches()
        with self._lock:
            missing = [(doc_id, i) for i in wanted if (doc_id, i) not in chunks]
            near = list(self._recent)
        if missing:
            want = {base + i: (doc_id, i) for _, i in missing}
            rows = self._doc_rows() if self.readonly else {}
            for d, ps, pe in near:
                r = rows.get(d)
                if r is None or len(want) >= NEAR_PREFETCH:
                    continue
                b, m = int(r["text_base"]), int(r["n_chunks"])
                for i in range(max(0, ps - NEAR_WIDEN) // TEXT_CHUNK, min(m - 1, (pe + NEAR_WIDEN) // TEXT_CHUNK) + 1):
                    if (d, i) not in chunks:
                        want[b + i] = (d, i)
            got = self._query_in(self.c_text, "id", sorted(want), ["id", "text"])
            with self._lock:
                for r in got:
                    chunks[want[int(r["id"])]] = r["text"]
                while len(chunks) > NEAR_CHUNKS:
                    chunks.popitem(last=False)
        with self._lock:
            return [chunks.get((doc_id, i), "") for i in wanted]

    def source_file(self, doc_id: int) -> str | None:
        r = self._row_by(f"id == {int(doc_id)}")
        if r is None:
            return None
        fs = json.loads(r["row"]).get("fs_path")
        return file_of(r["path"], base64.b64decode(fs) if fs else None)

    def file_info(self, doc_id: int) -> dict[str, Any]:
        """The ``file_info`` the document was saved with (see ``save_document``)."""
        r = self._row_by(f"id == {int(doc_id)}")
        if r is None:
            raise KnowledgeBaseError(f"知识库中没有编号为 {doc_id} 的文档")
        j = json.loads(r["row"])
        fs = j.get("fs_path")
        return {"file_hash": j.get("file_hash"), "format": j.get("format"), "encoding": j.get("encoding"),
                "size_bytes": j.get("size_bytes"), "mtime": j.get("mtime"), "root": j.get("root"),
                "fs_path": base64.b64decode(fs) if fs else None, "ingested_at": j.get("ingested_at")}

    def counts(self) -> dict[str, int]:
        def make() -> dict[str, int]:
            rows = self._doc_rows()
            return {"documents": len(rows), "passages": self._count(self.c_pass),
                    "sentences": sum(int(r["n_sentences"]) for r in rows.values()),
                    "embedded": self._count(self.c_vec) if self._vector_dim() is not None else 0}
        return dict(self._cached("counts", make))

    def group_counts(self, column: str, filters: Filters | None = None) -> dict[str, int]:
        if column not in ("doc_type", "issuer", "year", "format"):
            raise ValueError(column)
        rows = self._doc_rows()
        ids = self.filtered_doc_ids(filters)
        out: dict[Any, int] = {}
        for i in (rows if ids is None else ids):
            r = rows.get(i)
            if r is None:
                continue
            v = json.loads(r["row"]).get(column) if column in ("issuer", "doc_type", "format") else (
                r["year"] if r["year"] >= 0 else None)
            key = "未知" if v is None else v
            out[key] = out.get(key, 0) + 1
        return {str(k): v for k, v in sorted(out.items(), key=lambda kv: (-kv[1], str(kv[0])))}

    def ocr_page_count(self) -> int:
        n = 0
        for r in self._doc_rows().values():
            pages = ((json.loads(r["row"]).get("extra") or {}).get("ocr") or {}).get("pages")
            if isinstance(pages, list):
                n += len(pages)
        return n

    # -- filters (Milvus expressions) -------------------------------------------------------------
    @staticmethod
    def doc_filter_expr(filters: Filters) -> str:
        """A Milvus filter expression over the documents collection for ``filters``."""
        clauses: list[str] = []
        if filters.doc_types:
            clauses.append(_in("doc_type", filters.doc_types))
        if filters.issuers:
            subs = []
            for iss in filters.issuers:
                pat = _q("%" + iss.replace("%", "").replace("_", "") + "%")
                subs.append(f"issuer like {pat} or speaker like {pat}")
            clauses.append("(" + " or ".join(subs) + ")")
        if filters.since:
            clauses.append(f"date >= {_q(filters.since.strip())}")
        if filters.until:
            clauses.append(f"date <= {_q(filters.until.strip() + chr(0xFFFF))}")
        if filters.since or filters.until:
            clauses.append('date != ""')
        if filters.doc_ids:
            clauses.append(_in("id", filters.doc_ids))
        if filters.exclude_doc_ids:
            clauses.append(_in("id", filters.exclude_doc_ids).replace(" in [", " not in [", 1))
        if filters.access:
            clauses.append(_in("access", filters.access))
        return " and ".join(clauses) or "id >= 0"

    def filtered_doc_ids(self, filters: Filters | None) -> list[int] | None:
        """Ids of the documents that pass ``filters`` (evaluated by Milvus), None when nothing is
        filtered; kept until the data changes."""
        if filters is None or filters.is_empty():
            return None

        def load() -> list[int]:
            rows = self._query(self.c_docs, self.doc_filter_expr(filters), ["id", "issuer", "speaker"])
            if any(c in iss for iss in filters.issuers for c in "%_"):  # wildcards dropped above: exact here
                rows = [r for r in rows if any(i in r["issuer"] or i in r["speaker"] for i in filters.issuers)]
            return sorted(int(r["id"]) for r in rows)
        return self._cached(("filter", repr(filters)), load)

    def live_doc_ids(self) -> set[int]:
        """Ids of the documents whose rows exist (a passage of another is an orphan)."""
        return self._cached("live", lambda: set(self._doc_rows()))

    # -- writing documents ------------------------------------------------------------------------
    def save_document(self, doc: Document, passages: Sequence[Passage], sentences: Sequence[Sentence],
                      file_info: dict[str, Any], keep_ids: bool = False) -> int:
        """Insert or replace ``doc`` with its passages and sentences: text and passages first,
        the document row last; then the replaced version's rows go. Returns the document id.
        Inside a transaction the writes wait for its end (see :meth:`transaction`)."""
        with self._lock:
            held = any(r["path"] == doc.path for r in self._buf["docs"])
        if held:  # saved before in this transaction: written first, so it is found below
            self._flush()
        old = self._row_by(f"path == {_q(doc.path)}", flush=False)  # (a held-back one is not it)
        access = doc.access or (old["access"] if old else None) or "公开"
        doc.access = access
        n = len(passages)
        text = doc.text or ""
        chunks = [text[i: i + TEXT_CHUNK] for i in range(0, len(text), TEXT_CHUNK)]
        if keep_ids:  # ids of lane 0, or of a lane of the source's: claimed lanes check for them
            doc_id = int(doc.id)  # type: ignore[arg-type]
            pids = [int(p.id) for p in passages]  # type: ignore[arg-type]
        else:
            doc_id = int(old["id"]) if old else self._take("doc", 1)
            first = self._take("passage", n) if n else 1
            pids = list(range(first, first + n))
        base = self._take("text", max(1, len(chunks)))
        texts = [{"id": base + i, "doc_id": doc_id, "text": c, "vec": DUMMY} for i, c in enumerate(chunks)]
        sents: dict[int, list[list[int]]] = {}
        for s in sentences:
            sents.setdefault(s.passage_seq, []).append([s.start, s.end])
        title_terms = _terms(doc.title or "")
        rows = []
        for pid, p in zip(pids, passages):
            p.id, p.doc_id = pid, doc_id
            rows.append({
                "id": pid, "doc_id": doc_id, "seq": p.seq, "pstart": p.start, "pend": p.end,
                "page": -1 if p.page is None else int(p.page), "para": int(p.para or 0),
                "heads_json": _trim(json.dumps(p.heading_path, ensure_ascii=False)), "text": p.text,
                "chash": content_hash(p.text), "sents": json.dumps(sents.get(p.seq, [])),
                "terms": _terms(p.text), "heads": _terms(" ".join(p.heading_path)), "title": title_terms,
                "vec": DUMMY})
            r = rows[-1]
            r["all"] = _trim(r["terms"] + r["heads"] + r["title"], MAXLEN - 1)
        j = {"title": doc.title, "issuer": doc.issuer, "date": doc.date, "doc_number": doc.doc_number,
             "doc_number_masked": bool(doc.doc_number_masked), "doc_type": doc.doc_type, "pages": doc.pages,
             "extra": doc.extra, **{k: v for k, v in file_info.items() if k != "fs_path"},
             "fs_path": base64.b64encode(bytes(file_info["fs_path"])).decode() if file_info.get("fs_path") else None}
        row = {
            "id": doc_id, "path": doc.path, "title": _trim(doc.title or "", 8192),
            "issuer": _trim(doc.issuer or "", 4096), "speaker": _trim(str((doc.extra or {}).get("speaker") or ""), 4096),
            "date": doc.date or "", "year": doc.year if doc.year is not None else -1,
            "doc_type": doc.doc_type or "", "access": access, "content_hash": doc.content_hash,
            "format": str(file_info.get("format") or ""), "pid_lo": min(pids, default=0),
            "pid_hi": max(pids, default=-1), "text_base": base, "n_chunks": len(chunks), "n_chars": len(text),
            "n_passages": n, "n_sentences": sum(len(sents.get(p.seq, [])) for p in passages),
            "row": json.dumps(j, ensure_ascii=False), "vec": DUMMY}
        if len(row["row"].encode("utf-8")) > MAXLEN:
            raise KnowledgeBaseError(f"文档 {doc.path} 的元数据过长（超过 {MAXLEN} 字节），无法存入 Milvus")
        with self._lock:  # a whole document at once (another thread may flush)
            b = self._buf
            b["text"] += texts
            b["pass"] += rows  # fresh ids (or kept ones: upsert, a resumed copy may have left them)
            b["docs"].append(row)
            if keep_ids:
                b["upsert"].append(doc_id)
            if old:
                b["gone"].append((doc_id, row["pid_lo"], row["pid_hi"], base, len(chunks)))
            full = len(b["pass"]) >= FLUSH_ROWS
        doc.id = doc_id
        if self._depth and not full:
            self._bump()  # (this process's caches now; the version when the transaction ends)
        else:
            self._flush()
        return doc_id

    def _copy_known_vectors(self, rows: list[dict[str, Any]]) -> None:
        """New passages whose text is embedded already get its vector (never embedded twice)."""
        if self._vector_dim() is None or not rows:
            return
        hashes = sorted({r["chash"] for r in rows})
        known: dict[str, list[float]] = {}
        for i in range(0, len(hashes), IN_BATCH):
            for x in self._rpc(self.client.query, self.c_vec, filter=_in("chash", hashes[i: i + IN_BATCH]),
                               output_fields=["chash", "vec"], limit=PAGE):
                known.setdefault(x["chash"], list(x["vec"]))
        vecs = [{"id": r["id"], "doc_id": r["doc_id"], "chash": r["chash"], "vec": known[r["chash"]]}
                for r in rows if r["chash"] in known]
        if vecs:
            self._write("upsert", self.c_vec, vecs)

    def _delete_doc_rows(self, doc_id: int) -> None:
        self._delete(self.c_docs, f"id == {int(doc_id)}")  # first: its passages stop counting
        self._delete(self.c_pass, f"doc_id == {int(doc_id)}")
        if self._vector_dim() is not None:
            self._delete(self.c_vec, f"doc_id == {int(doc_id)}")
        self._delete(self.c_text, f"doc_id == {int(doc_id)}")

    def delete_document(self, doc_id: int) -> None:
        self._delete_doc_rows(doc_id)
        self._bump()

    def _update_row(self, doc_id: int, change: Callable[[dict[str, Any], dict[str, Any]], None]) -> dict[str, Any] | None:
        """Apply ``change(row, row JSON)`` to a document row and write it back; returns the row
        as it was. While other writers write (their lanes held), read it back after
        :data:`LANE_SETTLE` and apply the change again until it holds: two writers changing one
        row at once (aliases of one text, from two shares) each keep their change."""
        before = None
        for attempt in range(5):
            r = self._row_by(f"id == {int(doc_id)}")
            if r is None:
                return before
            j = json.loads(r["row"])
            was, was_j = dict(r), json.loads(r["row"])
            change(r, j)
            if attempt and r == was and j == was_j:
                break  # the change is there
            before = before or was
            r["row"] = json.dumps(j, ensure_ascii=False)
            self._write("upsert", self.c_docs, [{**r, "vec": DUMMY}])
            self._bump()
            if not self._others_writing():
                break
            time.sleep(LANE_SETTLE)
        return before

    def _others_writing(self) -> bool:
        """Whether other writers hold lanes (as read at most :data:`META_TTL` ago)."""
        return any(r.get("owner") not in (None, self._owner) for r in self.lanes(fresh=False).values())

    def update_document_extra(self, doc_id: int, extra: dict[str, Any]) -> None:
        self._update_row(doc_id, lambda r, j: j.update(extra=extra))

    def swap_hashes(self, doc_id: int, file_hash: str, chash: str) -> tuple[str, str]:
        old: list[str] = []

        def change(r: dict[str, Any], j: dict[str, Any]) -> None:
            old.extend([j.get("file_hash") or "", r["content_hash"] or ""])
            j["file_hash"], r["content_hash"] = file_hash, chash
        self._update_row(doc_id, change)
        return (old[0], old[1]) if old else ("", "")

    def touch_document(self, doc_id: int, file_hash: str, mtime: float) -> None:
        self._update_row(doc_id, lambda r, j: j.update(file_hash=file_hash, mtime=mtime))

    def add_alias(self, doc_id: int, alias: str, replaced_doc_id: int | None = None) -> None:
        def change(r: dict[str, Any], j: dict[str, Any]) -> None:
            if not isinstance(j.get("extra"), dict):
                j["extra"] = {}
            aliases = j["extra"].setdefault("aliases", [])
            if alias not in aliases:
                aliases.append(alias)
        self._update_row(doc_id, change)
        if replaced_doc_id is not None and replaced_doc_id != doc_id:
            self.delete_document(replaced_doc_id)

    # -- access levels (in Milvus) and accounts, audit (local) ------------------------------------
    def access_levels_in_use(self) -> set[str]:
        return {r["access"] for r in self._doc_rows().values()}

    def document_access(self, doc_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted({int(i) for i in doc_ids})
        return {int(r["id"]): r["access"] for r in self._query_in(self.c_docs, "id", ids, ["id", "access"])}

    def set_document_access(self, doc_id: int, level: str) -> None:
        self._update_row(doc_id, lambda r, j: r.update(access=level))

    def accounts(self) -> list[Account]:
        return self.local.accounts()

    def account(self, name: str) -> tuple[Account, str | None] | None:
        return self.local.account(name)

    def count_accounts(self) -> int:
        return self.local.count_accounts()

    def save_account(self, account: Account, password_hash: str | None, entry: AuditEntry, new: bool = False) -> None:
        self.local.save_account(account, password_hash, entry, new)

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self.local.append_audit(entries)

    def audit_rows(self, *args: Any, **kw: Any) -> list[AuditEntry]:
        return self.local.audit_rows(*args, **kw)

    def audit_chain(self) -> Iterator[tuple[int, str, tuple[Any, ...]]]:
        return self.local.audit_chain()

    def count_audit(self, *args: Any, **kw: Any) -> int:
        return self.local.count_audit(*args, **kw)

    def purge_audit(self, before: str) -> int:
        return self.local.purge_audit(before)

    def audit_meta(self, key: str) -> str | None:
        return self.local.audit_meta(key)

    def set_audit_meta(self, key: str, value: str) -> None:
        self.local.set_audit_meta(key, value)

    # -- passages and sentences -------------------------------------------------------------------
    @staticmethod
    def _passage(r: dict[str, Any]) -> Passage:
        return Passage(id=int(r["id"]), doc_id=int(r["doc_id"]), seq=int(r["seq"]), start=int(r["pstart"]),
                       end=int(r["pend"]), page=None if r["page"] < 0 else int(r["page"]), para=int(r["para"]),
                       heading_path=json.loads(r["heads_json"] or "[]"), text=r["text"])

    def get_passages(self, ids: Iterable[int]) -> dict[int, Passage]:
        ids = sorted({int(i) for i in ids})
        rows = self._query_in(self.c_pass, "id", ids, [*_PASSAGE_FIELDS, "sents"])
        spans, _ = self._near_caches()
        with self._lock:
            if len(spans) + len(rows) > NEAR_MAX:
                spans.clear()
            for r in rows:
                spans[int(r["id"])] = (int(r["doc_id"]), int(r["pstart"]), int(r["pend"]), json.loads(r["sents"]))
            self._recent = [(int(r["doc_id"]), int(r["pstart"]), int(r["pend"])) for r in rows]
        return {int(r["id"]): self._passage(r) for r in rows}

    def _near_caches(self) -> tuple[dict[int, tuple[int, int, int, list[list[int]]]], OrderedDict[tuple[int, int], str]]:
        """(spans of the passages read last, text chunks read last), for the current version."""
        version = self.version()
        with self._lock:
            if self._near is None or self._near[0] != version:
                self._near = (version, {}, OrderedDict())
            return self._near[1], self._near[2]

    def document_passages(self, doc_id: int) -> list[Passage]:
        rows = self._query(self.c_pass, f"doc_id == {int(doc_id)}", _PASSAGE_FIELDS)
        return sorted((self._passage(r) for r in rows), key=lambda p: p.seq)

    def passages(self) -> list[Passage]:
        rows = self._query(self.c_pass, "id >= 0", _PASSAGE_FIELDS)
        return sorted((self._passage(r) for r in rows), key=lambda p: p.id or 0)

    def passage_heads(self, ids: Iterable[int]) -> tuple[dict[int, Passage], dict[int, str]]:
        # the text comes with the row here: passages whole, keyed by their text
        got = self.get_passages(ids)
        return got, {i: p.text for i, p in got.items()}

    def passage_doc_ids(self, passage_ids: Sequence[int]) -> dict[int, int]:
        ids = sorted({int(i) for i in passage_ids})
        return {int(r["id"]): int(r["doc_id"]) for r in self._query_in(self.c_pass, "id", ids, ["id", "doc_id"])}

    def distinct_passage_texts(self) -> list[str]:
        seen: dict[str, str] = {}
        for r in sorted(self._query(self.c_pass, "id >= 0", ["id", "chash", "text"]), key=lambda r: r["id"]):
            seen.setdefault(r["chash"], r["text"])
        return list(seen.values())

    def distinct_heading_paths(self) -> list[list[str]]:
        return [json.loads(h) for h in {r["heads_json"] for r in self._query(self.c_pass, "id >= 0", ["heads_json"])}]

    def mean_passage_chars(self) -> float | None:
        rows = self._query(self.c_pass, "id >= 0", ["pstart", "pend"])
        return float(np.mean([r["pend"] - r["pstart"] for r in rows])) if rows else None

    def document_sentences(self, doc_id: int) -> list[Sentence]:
        """The sentences of one document, in order (``passage_seq`` from their passage)."""
        text = self.get_document(doc_id).text
        rows = self._query(self.c_pass, f"doc_id == {int(doc_id)}", ["seq", "sents"])
        out = [Sentence(s, e, text[s:e], int(r["seq"])) for r in rows for s, e in json.loads(r["sents"])]
        return sorted(out, key=lambda s: (s.start, s.end))

    def sentence_span(self, doc_id: int, start: int, end: int) -> tuple[int, int] | None:
        spans, _ = self._near_caches()
        with self._lock:
            near = list(spans.values())
        for d, ps, pe, sents in near:  # a passage read last holds the range
            if d == doc_id and ps <= start and end <= pe:
                hit = [(a, b) for a, b in sents if b > start and a < end]
                return (min(a for a, _ in hit), max(b for _, b in hit)) if hit else None
        rows = self._query(self.c_pass, f"doc_id == {int(doc_id)} and pend >= {int(start)} and pstart <= {int(end)}",
                           ["sents"])
        spans = [(s, e) for r in rows for s, e in json.loads(r["sents"]) if e > start and s < end]
        return (min(s for s, _ in spans), max(e for _, e in spans)) if spans else None

    def sentence_texts(self) -> list[str]:
        out = []
        for d in self.documents(with_text=True):
            out += [s.text for s in self.document_sentences(d.id)] if d.id is not None else []
        return out

    def sample_sentences(self, every: int = 97, limit: int = 2000) -> list[str]:
        return self.sentence_texts()[::every][:limit]

    def phrase_doc_ids(self, phrases: Sequence[Sequence[str]]) -> set[int]:
        """Documents with a passage whose terms (text, heading path or title) hold one of
        ``phrases`` as consecutive terms: a ``like`` match at term boundaries, run by Milvus."""
        parts = []
        for ph in phrases:
            if ph:
                pat = _q("% " + " ".join(t.replace("%", "").replace("_", "") for t in ph) + " %")
                parts.append(f"terms like {pat} or heads like {pat} or title like {pat}")
        if not parts:
            return set()
        rows = self._query(self.c_pass, " or ".join(f"({p})" for p in parts), ["doc_id"])
        return {int(r["doc_id"]) for r in rows} & self.live_doc_ids()

    # -- verify --------------------------------------------------------------------------------------
    def raw_documents(self) -> Iterator[RawDocument]:
        for i, r in sorted(self._doc_rows().items()):
            j = json.loads(r["row"])
            fs = j.get("fs_path")
            yield RawDocument(i, r["path"].encode("utf-8"), self._doc_text(r).encode("utf-8"), r["content_hash"],
                              j.get("root"), base64.b64decode(fs) if fs else None)

    def raw_passages(self, doc_id: int) -> list[tuple[int, int, str]]:
        # Milvus keeps each passage's text (its BM25 input): its hash is what it was stored with
        return [(int(r["pstart"]), int(r["pend"]), content_hash(r["text"]))
                for r in self._query(self.c_pass, f"doc_id == {int(doc_id)}", ["pstart", "pend", "text"])]

    def _passage_doc_counts(self) -> dict[int, tuple[int, int]]:
        """Per document id: (passages, passages without sentences)."""
        out: dict[int, list[int]] = {}
        for r in self._query(self.c_pass, "id >= 0", ["doc_id", "sents"]):
            c = out.setdefault(int(r["doc_id"]), [0, 0])
            c[0] += 1
            c[1] += r["sents"] == "[]"
        return {k: (v[0], v[1]) for k, v in out.items()}

    def damaged_documents(self) -> list[DamagedDocument]:
        """Documents without passages, with passages without sentences, or whose text rows
        are missing."""
        counts = self._passage_doc_counts()
        chunks: dict[int, int] = {}
        rows = self._doc_rows()
        for x in self._query(self.c_text, "id >= 0", ["id", "doc_id"]):
            r = rows.get(int(x["doc_id"]))
            if r is not None and int(r["text_base"]) <= int(x["id"]) < int(r["text_base"]) + int(r["n_chunks"]):
                chunks[int(x["doc_id"])] = chunks.get(int(x["doc_id"]), 0) + 1
        out = []
        for i, r in sorted(rows.items()):
            f = self.source_file(i) or r["path"]
            root = json.loads(r["row"]).get("root")
            n, bare = counts.get(i, (0, 0))
            if not n:
                out.append(DamagedDocument(i, r["path"], "没有任何段落（导入中断留下的残缺记录），检索和引文核对都找不到它",
                                           root, f, empty=True))
            elif chunks.get(i, 0) != int(r["n_chunks"]):
                out.append(DamagedDocument(i, r["path"], f"正文缺少 {int(r['n_chunks']) - chunks.get(i, 0)} 块文字记录",
                                           root, f))
            elif bare:
                out.append(DamagedDocument(i, r["path"], f"有 {bare} 个段落缺少句子记录，引文核对找不到其中的原文", root, f))
        return out

    def _orphans(self) -> tuple[list[int], list[int], list[int]]:
        """Ids of passages, vectors and text rows that belong to no stored document (or to a
        version of it that was replaced)."""
        # the lanes first, read fresh with the version: a writer releases its lane only after
        # its documents are in, so the document rows read next (at that version or later) hold
        # every document of a lane not held
        busy = set(self.foreign_lanes())
        rows = self._doc_rows()

        def stray(r: dict[str, Any] | None, pid: int) -> bool:
            if pid >> LANE_BITS in busy:  # another writer's lane: its writes may be under way
                return False
            return r is None or not (int(r["pid_lo"]) <= pid <= int(r["pid_hi"]))
        p = [int(x["id"]) for x in self._query(self.c_pass, "id >= 0", ["id", "doc_id"])
             if stray(rows.get(int(x["doc_id"])), int(x["id"]))]
        v = [int(x["id"]) for x in self._query(self.c_vec, "id >= 0", ["id", "doc_id"])
             if stray(rows.get(int(x["doc_id"])), int(x["id"]))] if self._vector_dim() is not None else []
        t = []
        for x in self._query(self.c_text, "id >= 0", ["id", "doc_id"]):
            r = rows.get(int(x["doc_id"]))
            if int(x["id"]) >> LANE_BITS in busy:
                continue
            if r is None or not (int(r["text_base"]) <= int(x["id"]) < int(r["text_base"]) + int(r["n_chunks"])):
                t.append(int(x["id"]))
        return p, v, t

    def orphan_counts(self) -> tuple[int, int]:
        """(passages of no stored document, vectors and text rows of none)."""
        p, v, t = self._orphans()
        return len(p), len(v) + len(t)

    def delete_orphans(self) -> None:
        p, v, t = self._orphans()
        for coll, ids in ((self.c_pass, p), (self.c_vec, v), (self.c_text, t)):
            for i in range(0, len(ids), IN_BATCH):
                self._delete(coll, _in("id", ids[i: i + IN_BATCH]))
        if p or v or t:
            self._bump()

    def bad_dimension_vectors(self, dim: int) -> int:
        """How many stored vectors lack ``dim`` components (all of them when the vectors
        collection was made for another dimension)."""
        have = self._vector_dim()
        return self._count(self.c_vec) if have is not None and have != int(dim) else 0

    def delete_bad_dimension_vectors(self, dim: int) -> None:
        if self.bad_dimension_vectors(dim):
            self.drop_vectors()

    # -- the embedding cache --------------------------------------------------------------------------
    def _pending_map(self) -> OrderedDict[str, int]:
        """content hash -> first passage id of the passages without a vector, oldest first."""
        version = self.version()
        if self._pending is not None and self._pending[0] == version:
            return self._pending[1]
        done = set(self.embedded_ids().tolist())
        todo: OrderedDict[str, int] = OrderedDict()
        for r in sorted(self._query(self.c_pass, "id >= 0", ["id", "chash"]), key=lambda r: r["id"]):
            if int(r["id"]) not in done:
                todo.setdefault(r["chash"], int(r["id"]))
        self._pending = (version, todo)
        return todo

    def _pending_of(self, doc_ids: Sequence[int]) -> OrderedDict[str, int]:
        rows = sorted(self._query_in(self.c_pass, "doc_id", sorted({int(d) for d in doc_ids}), ["id", "chash"]),
                      key=lambda r: r["id"])
        done = {int(r["id"]) for r in self._query_in(self.c_vec, "id", [r["id"] for r in rows], ["id"])} \
            if self._vector_dim() is not None else set()
        todo: OrderedDict[str, int] = OrderedDict()
        for r in rows:
            if int(r["id"]) not in done:
                todo.setdefault(r["chash"], int(r["id"]))
        return todo

    def pending_passages(self, limit: int | None = None,
                         doc_ids: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """(content hash, text) of passages with no vector yet, one per distinct text, oldest
        first (of the documents ``doc_ids`` only, when given)."""
        todo = self._pending_map() if doc_ids is None else self._pending_of(doc_ids)
        first = list(todo.items())[: limit or None]
        texts = {int(r["id"]): r["text"] for r in self._query_in(self.c_pass, "id", [i for _, i in first], ["id", "text"])}
        return [(h, texts[i]) for h, i in first if i in texts]

    def count_pending(self, doc_ids: Sequence[int] | None = None) -> int:
        return len(self._pending_map() if doc_ids is None else self._pending_of(doc_ids))

    def save_vectors(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Set the vector of every passage whose text has each hash (one batch)."""
        vecs = np.asarray(vectors, dtype=np.float32)
        if not len(hashes):
            return
        dim = self.get_meta("dim")
        if dim and int(dim) != vecs.shape[1]:
            raise KnowledgeBaseError(f"向量维度 {vecs.shape[1]} 与知识库记录的 {dim} 不符")
        self._ensure_vectors(vecs.shape[1])
        by_hash = {h: vecs[i] for i, h in enumerate(hashes)}
        rows = self._query_in(self.c_pass, "chash", sorted(by_hash), ["id", "doc_id", "chash"])
        self._write("upsert", self.c_vec, [{"id": int(r["id"]), "doc_id": int(r["doc_id"]), "chash": r["chash"],
                                            "vec": by_hash[r["chash"]].tolist()} for r in rows])
        pending = self._pending
        self._bump()
        if pending is not None:  # still right, less what was just saved
            for h in hashes:
                pending[1].pop(h, None)
            self._pending = (self.version(), pending[1])

    def iter_vectors(self, batch: int = 20000) -> Iterator[tuple[list[str], list[bytes]]]:
        """(content hashes, float32 vector bytes), one per distinct passage text."""
        if self._vector_dim() is None:
            return
        seen: set[str] = set()
        last = -1
        while True:
            rows = self._rpc(self.client.query, self.c_vec, filter=f"id > {last}",
                             output_fields=["id", "chash", "vec"], limit=min(batch, PAGE))
            if not rows:
                return
            last = max(int(r["id"]) for r in rows)
            fresh = []
            for r in sorted(rows, key=lambda r: r["id"]):  # each hash once: passages share texts
                if r["chash"] not in seen:
                    seen.add(r["chash"])
                    fresh.append(r)
            if fresh:
                yield [r["chash"] for r in fresh], [np.asarray(r["vec"], dtype=np.float32).tobytes() for r in fresh]

    def delete_vectors(self, hashes: Sequence[str]) -> None:
        if self._vector_dim() is None:
            return
        hashes = list(hashes)
        for i in range(0, len(hashes), IN_BATCH):
            self._delete(self.c_vec, _in("chash", hashes[i: i + IN_BATCH]))
        self._bump()

    def iter_passage_vectors(self, dim: int, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._vector_dim() is None:
            return
        last = -1
        while True:
            rows = self._rpc(self.client.query, self.c_vec, filter=f"id > {last}", output_fields=["id", "vec"],
                             limit=min(batch, PAGE))
            if not rows:
                return
            rows.sort(key=lambda r: r["id"])
            last = int(rows[-1]["id"])
            yield (np.array([r["id"] for r in rows], dtype=np.int64),
                   np.array([r["vec"] for r in rows], dtype=np.float32).reshape(-1, dim))

    def passage_vectors(self, ids: Sequence[int], dim: int, batch: int = 900) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._vector_dim() is None:
            return
        ids = list(ids)
        for i in range(0, len(ids), batch):
            rows = self._query_in(self.c_vec, "id", ids[i: i + batch], ["id", "vec"])
            if rows:
                yield (np.array([r["id"] for r in rows], dtype=np.int64),
                       np.array([r["vec"] for r in rows], dtype=np.float32).reshape(-1, dim))

    def embedded_ids(self) -> np.ndarray:
        if self._vector_dim() is None:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.array([r["id"] for r in self._query(self.c_vec, "id >= 0", ["id"])], dtype=np.int64))

    def embedded_state(self) -> dict[str, int]:
        def make() -> dict[str, Any]:
            ids = self.embedded_ids()
            return {"count": len(ids), "id_sum": int(ids.sum()), "max_id": int(ids.max(initial=0)), "kb_id": self.kb_id}
        return dict(self._cached("embedded_state", make))

    def passages_state(self) -> dict[str, int]:
        def make() -> dict[str, Any]:
            ids = np.array([r["id"] for r in self._query(self.c_pass, "id >= 0", ["id"])], dtype=np.int64)
            return {"count": len(ids), "id_sum": int(ids.sum()), "max_id": int(ids.max(initial=0)), "kb_id": self.kb_id}
        return dict(self._cached("passages_state", make))

    def count_passages(self, upto: int) -> int:
        return self._count(self.c_pass, f"id <= {int(upto)}")

    def drop_vectors(self) -> None:
        if self._has(self.c_vec):
            self._rpc(self.client.drop_collection, self.c_vec)
        self._vec_dim = None
        self._bump()

    def prune_orphan_vectors(self) -> int:
        """Vectors go with their passages; this deletes any left by an interrupted write."""
        _, v, _ = self._orphans()
        for i in range(0, len(v), IN_BATCH):
            self._delete(self.c_vec, _in("id", v[i: i + IN_BATCH]))
        if v:
            self._bump()
        return len(v)

    # -- recognised pages ---------------------------------------------------------------------------
    def ocr_page(self, file_hash: str, page: int, engine: str) -> OcrPage | None:
        rows = self._rpc(self.client.query, self.c_ocr, filter=f"key == {_q(f'{file_hash}:{int(page)}')}",
                         output_fields=["engine", "data"])
        if not rows or rows[0]["engine"] != engine:
            return None
        try:
            d = json.loads(rows[0]["data"])
            return OcrPage(page=page, width=int(d["width"]), height=int(d["height"]),
                           lines=[OcrLine(t, tuple(b), float(sc)) for t, b, sc in d["lines"]],
                           seconds=float(d.get("seconds", 0.0)), engine=engine)
        except (ValueError, KeyError, TypeError):
            return None

    def save_ocr_page(self, file_hash: str, page: OcrPage) -> None:
        data = json.dumps({
            "width": page.width, "height": page.height, "seconds": round(page.seconds, 3),
            "lines": [[ln.text, [round(float(v), 1) for v in ln.box], round(float(ln.score), 4)] for ln in page.lines],
        }, ensure_ascii=False)
        if len(data.encode("utf-8")) > MAXLEN:
            return  # too long to keep: recognised again if the ingest is interrupted
        self._write("upsert", self.c_ocr, [{"key": f"{file_hash}:{page.page}", "engine": page.engine,
                                            "data": data, "vec": DUMMY}])

    def ocr_pages(self) -> Iterator[tuple[str, OcrPage]]:
        """(file hash, page) of every saved recognised page."""
        for r in sorted(self._query(self.c_ocr, 'key != ""', ["key", "engine"]), key=lambda r: r["key"]):
            file_hash, _, page = r["key"].rpartition(":")
            got = self.ocr_page(file_hash, int(page), r["engine"])
            if got is not None:
                yield file_hash, got
