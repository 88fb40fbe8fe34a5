"""The SQLite store (through sqlite-utils): documents, passages, sentences, vectors.

Layout of a knowledge base folder::

    yuanwen.db      SQLite: every table below (WAL mode, so searches run during an ingest)
    vectors.faiss   the HNSW graph over the passage vectors (past 20,000); FAISS ids are ``passages.id``
    index.json      describes the vector index (embedder, dim, type, which rows it holds)
    keyword-*/      the keyword index (BM25 posting lists, :mod:`yuanwen.bm25`), and keyword.json
    ingest.lock     held by the one ingest that may write at a time

The text is stored once, in ``documents.text``: a passage or a sentence is its document's
text between its offsets, and the keyword index is built from it (:meth:`Store.iter_fts_rows`;
there is no FTS5 table from schema 9).
Vectors live in SQLite alone (``embeddings``, keyed by the passage text's hash, so unchanged
text is never embedded twice), as 16-bit floats: FAISS is built from them in 32 bits, and its
file, when there is one, holds only the HNSW graph (see :mod:`yuanwen.index`).
Schema changes are numbered migrations; ``meta.schema_version`` records the last one applied.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import sqlite_utils

from .errors import KnowledgeBaseError, ReadOnlyKnowledgeBaseError, kb_error_from, readonly_message
from .models import Account, AuditEntry, Document, Filters, OcrLine, OcrPage, Passage, Sentence
from .text import fts_document

DB_NAME = "yuanwen.db"
INGEST_LOCK = "ingest.lock"  # the lock every writer of a knowledge base takes (ingest, migrate)
AUDIT_DB_NAME = "audit.db"  # the audit log of a shared knowledge base, beside DB_NAME
_AUDIT_LOGGER = logging.getLogger("yuanwen.audit")


def content_hash(text: str) -> str:
    """SHA-256 (hex, 32 chars) of ``text`` as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


# Stored vectors are IEEE half floats (schema 8): half the bytes of float32, and five rows to a
# 4 KiB page instead of two. A unit vector's components lose at most 2^-11 of their value,
# which moves a cosine score by about 1e-4 at most (see docs/benchmarks.md); searches widen
# them back to float32.
VECTOR_DTYPE = np.dtype("<f2")


def vector_bytes(dim: int) -> int:
    """The size of one stored vector of ``dim`` components."""
    return int(dim) * VECTOR_DTYPE.itemsize


def encode_vectors(vectors: np.ndarray) -> list[bytes]:
    """Each row of ``vectors`` as a stored blob."""
    vecs = np.asarray(vectors, dtype=np.float32).astype(VECTOR_DTYPE)
    return [row.tobytes() for row in vecs]


def decode_vectors(joined: bytes, dim: int) -> np.ndarray:
    """Stored blobs of ``dim`` components each, joined, as an (n, dim) float32 matrix."""
    return np.frombuffer(joined, dtype=VECTOR_DTYPE).reshape(-1, int(dim)).astype(np.float32)


def _m001_initial(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    db["documents"].create(
        {
            "id": int, "path": str, "title": str, "issuer": str, "date": str, "year": int,
            "doc_number": str, "doc_number_masked": int, "doc_type": str,
            "content_hash": str, "file_hash": str, "text": str, "pages": str, "extra": str,
            "format": str, "encoding": str, "size_bytes": int, "mtime": float,
            "ingested_at": str,
        },
        pk="id", not_null={"path", "content_hash"}, if_not_exists=True,
    )
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS idx_documents_path ON documents(path)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_documents_hash ON documents(content_hash)")
    # AUTOINCREMENT: a passage id is never reused, so a stale FAISS id can never point at
    # another passage's text.
    db.execute(
        """CREATE TABLE IF NOT EXISTS passages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            seq INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
            page INTEGER, para INTEGER, heading_path TEXT NOT NULL, text TEXT NOT NULL,
            content_hash TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX IF NOT EXISTS idx_passages_doc ON passages(doc_id, seq)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_passages_hash ON passages(content_hash)")
    db.execute(
        """CREATE TABLE IF NOT EXISTS sentences (
            id INTEGER PRIMARY KEY,
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            passage_id INTEGER NOT NULL REFERENCES passages(id),
            start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX IF NOT EXISTS idx_sentences_doc ON sentences(doc_id)")
    db.execute("CREATE INDEX IF NOT EXISTS idx_sentences_passage ON sentences(passage_id)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS embeddings (content_hash TEXT PRIMARY KEY, vector BLOB NOT NULL)"
    )
    # rowid = passages.id; columns hold CJK bigrams and ASCII words (yuanwen.text.tokenize)
    # of the passage text, its heading path and its document's title, weighted in bm25().
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(terms, heads, title, "
        "tokenize = 'unicode61 remove_diacritics 0')"
    )
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS sentences_fts USING fts5(terms, "
        "tokenize = 'unicode61 remove_diacritics 0')"
    )


def _m002_drop_sentence_fts(db: sqlite_utils.Database) -> None:
    # Never queried (quote lookup finds passages, then the sentences by offset), yet a fifth
    # of the database and of the store stage's time (docs/benchmarks.md).
    db.execute("DROP TABLE IF EXISTS sentences_fts")


def _m003_document_root(db: sqlite_utils.Database) -> None:
    # The folder a document was ingested from (or its own folder for a file named alone):
    # paths are shown relative to it, and a damaged document is re-read with its manifest.
    if "root" not in db["documents"].columns_dict:
        db.execute("ALTER TABLE documents ADD COLUMN root TEXT")
    # A file whose name is not UTF-8 (GBK from a zip made on Windows) is stored under its
    # decoded text; its real name (the bytes) is kept here, so repair can open it again.
    if "fs_path" not in db["documents"].columns_dict:
        db.execute("ALTER TABLE documents ADD COLUMN fs_path BLOB")


def _m004_ocr_pages(db: sqlite_utils.Database) -> None:
    # Pages recognised by OCR, by the file's hash and page number: OCR takes seconds a page,
    # so an interrupted ingest resumes from the next page, and re-reading a document (a
    # manifest change, verify --repair) does not recognise it again.
    db.execute(
        "CREATE TABLE IF NOT EXISTS ocr_pages (file_hash TEXT NOT NULL, page INTEGER NOT NULL, "
        "engine TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (file_hash, page))"
    )


def _m005_accounts_access_audit(db: sqlite_utils.Database) -> None:
    # Shared knowledge bases: each document has an access level (a name on the ladder kept in
    # meta.access_levels, 公开 by default); accounts with a role and a clearance; an audit log.
    if "access" not in db["documents"].columns_dict:
        db.execute("ALTER TABLE documents ADD COLUMN access TEXT NOT NULL DEFAULT '公开'")
    db.execute("CREATE INDEX IF NOT EXISTS idx_documents_access ON documents(access)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY COLLATE NOCASE, "
        "role TEXT NOT NULL, clearance TEXT NOT NULL, password_hash TEXT, "
        "disabled INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT 'local', "
        "created TEXT NOT NULL, last_login TEXT)"
    )
    # The audit log is a file of its own beside this one (AUDIT_DB_NAME, see _audit_db): it is
    # written on every search, and writes here would invalidate every cache keyed on
    # Store.version().


AUDIT_RETENTION_DAYS = 180  # China's Cybersecurity Law (art. 21): network logs kept six months
AUDIT_RETENTION_KEY = "audit_retention_days"

# Append-only: rows are never changed, and only rows older than the retention period
# (audit_meta.audit_retention_days) can be deleted. Each row's hash chains it to the one before,
# so a row changed or removed behind the program's back shows (yuanwen audit --verify).
_AUDIT_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "ts TEXT NOT NULL, account TEXT NOT NULL, client TEXT NOT NULL, action TEXT NOT NULL, "
    "target TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '{}', "
    "outcome TEXT NOT NULL DEFAULT 'ok', hash TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS idx_audit_ts ON audit(ts)",
    "CREATE INDEX IF NOT EXISTS idx_audit_account ON audit(account, ts)",
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_keep BEFORE DELETE ON audit "
    "WHEN OLD.ts >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-' || COALESCE("
    f"(SELECT value FROM audit_meta WHERE key = '{AUDIT_RETENTION_KEY}'), '{AUDIT_RETENTION_DAYS}') || ' days') "
    "BEGIN SELECT RAISE(ABORT, 'audit rows within the retention period cannot be deleted'); END",
)



class _DocTexts:
    """Document texts, the most recently used kept up to ``max_chars``: a passage is its
    document's text between its offsets, cut from here (``passages`` keeps no copy). Keyed by
    document id and content hash, as a replaced document keeps its id."""

    WHOLE_AT = 3

    def __init__(self, max_chars: int = 8_000_000) -> None:
        self.max_chars = max_chars
        self._texts: OrderedDict[tuple[int, str], str] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def cut(self, conn: sqlite3.Connection, spans: Sequence[tuple[int, str, int, int]]) -> list[str]:
        """The text of each (document id, its content hash, start, end), read in the caller's
        transaction (a span whose document has changed since gets ""). A document asked for
        ``WHOLE_AT`` spans or more is read whole and kept; fewer spans (a search's hits, mostly
        from different documents) are cut by SQLite, which is cheaper than reading each whole."""
        with self._lock:
            have = {k: self._texts[k] for k in {(d, h) for d, h, _, _ in spans} if k in self._texts}
            for k in have:
                self._texts.move_to_end(k)
        asked = Counter((d, h) for d, h, _, _ in spans if (d, h) not in have)
        whole = sorted({d for (d, h), n in asked.items() if n >= self.WHOLE_AT})
        for i in range(0, len(whole), 500):
            part = whole[i: i + 500]
            # as bytes: damaged text (invalid UTF-8) reads with U+FFFD instead of raising, so
            # its document can still be replaced (verify --repair) and the damage shows
            rows = conn.execute(f"SELECT id, content_hash, CAST(text AS BLOB) FROM documents WHERE id IN "
                                f"({','.join('?' * len(part))})", part).fetchall()
            with self._lock:
                for d, h, raw in rows:
                    have[(d, h)] = text = bytes(raw or b"").decode("utf-8", "replace")
                    if (d, h) not in self._texts and len(text) <= self.max_chars:
                        self._texts[(d, h)] = text
                        self._chars += len(text)
                while self._chars > self.max_chars:
                    self._chars -= len(self._texts.popitem(last=False)[1])
        rest = [(i, d, h, a, b - a) for i, (d, h, a, b) in enumerate(spans) if (d, h) not in have]
        pieces: dict[int, str] = {}
        for j in range(0, len(rest), 150):
            part = rest[j: j + 150]
            rows = conn.execute(
                f"WITH s(i, d, h, a, n) AS (VALUES {','.join(['(?,?,?,?,?)'] * len(part))}) "
                "SELECT s.i, CAST(substr(t.text, s.a + 1, s.n) AS BLOB) FROM s "
                "JOIN documents t ON t.id = s.d AND t.content_hash = s.h", [x for r in part for x in r]).fetchall()
            pieces.update((i, bytes(raw or b"").decode("utf-8", "replace")) for i, raw in rows)
        return [have[(d, h)][a:b] if (d, h) in have else pieces.get(i, "")
                for i, (d, h, a, b) in enumerate(spans)]


# A passage row as the readers below take it; the text is cut from its document's (_DocTexts).
_PASSAGE_COLS = 'p.id, p.doc_id, p.seq, p.start, p."end", p.page, p.para, p.heading_path, d.content_hash'
_PASSAGE_FROM = "passages p JOIN documents d ON d.id = p.doc_id"


def _fts_rows(conn: sqlite3.Connection, where: str = "1", args: Sequence[Any] = (),
              chunk: int = 20_000) -> Iterator[list[tuple[int, str, str, str]]]:
    """(passage id, text terms, heading terms, title terms) of the passages matching
    ``where`` (over ``passages p`` and ``documents d``), in id order and batches of ``chunk``:
    the keyword index's row for each (a title or heading path repeats across passages, so each
    is cut into terms once)."""
    texts = _DocTexts(max_chars=2_000_000)
    titles: dict[str, str] = {}
    heads: dict[str, str] = {}
    cur = conn.execute(
        'SELECT p.id, p.doc_id, d.content_hash, p.start, p."end", p.heading_path, d.title '
        f"FROM {_PASSAGE_FROM} WHERE {where} ORDER BY p.id", list(args))
    while rows := cur.fetchmany(chunk):
        batch = [(r[0], text, r[5], r[6]) for r, text in zip(rows, texts.cut(conn, [r[1:5] for r in rows]))]
        out = []
        for pid, text, hp, title in batch:
            t = titles.get(title or "")
            if t is None:
                t = titles[title or ""] = fts_document(title or "")
            h = heads.get(hp)
            if h is None:
                h = heads[hp] = fts_document(" ".join(json.loads(hp or "[]")))
            out.append((pid, fts_document(text), h, t))
        yield out


def _drop_text_column(db: sqlite_utils.Database, table: str) -> None:
    """Drop ``table``'s text column; SQLite before 3.35 cannot: it stays there, emptied."""
    if "text" in db[table].columns_dict:
        try:
            db.execute(f"ALTER TABLE {table} DROP COLUMN text")
        except sqlite3.OperationalError:
            db.execute(f"UPDATE {table} SET text = ''")


def _m006_sentence_offsets(db: sqlite_utils.Database) -> None:
    # A sentence's text is its document's text between its offsets (equal for all 61,527 of
    # the shared corpus): the copy was a seventh of the database (issue 16, 7b). SQLite before
    # 3.35 cannot drop a column: the column stays there, emptied.
    _drop_text_column(db, "sentences")


def _m007_text_once(db: sqlite_utils.Database) -> None:
    # The text stored once, in documents.text (issue 16, 7b): a passage is its document's text
    # between its offsets (verify has always checked that they agree). This migration also made
    # the FTS5 table contentless, re-indexing it; migration 9 drops that table, so it is dropped
    # here already.
    db.execute("DROP TABLE IF EXISTS passages_fts")
    _drop_text_column(db, "passages")


def _m008_half_vectors(db: sqlite_utils.Database) -> None:
    # Vectors as 16-bit floats (issue 16, 7b): at a million passages the float32 vectors were
    # 1.9 GiB, 3.5x the text. The table is written anew, so the old pages are freed whole (an
    # UPDATE in place would leave every page half empty) and _reclaim gives them back. A blob
    # that is not a float32 vector of the recorded dimension is copied as it is: verify reports
    # it as before (one of half that dimension reads as a half-float vector whose length is not
    # 1, which verify also finds).
    row = db.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()
    dim = int(row[0]) if row and row[0] else 0
    if not dim or not db.execute("SELECT 1 FROM embeddings LIMIT 1").fetchone():
        return
    db.execute("CREATE TABLE embeddings_half (content_hash TEXT PRIMARY KEY, vector BLOB NOT NULL)")
    cur = db.conn.execute("SELECT content_hash, vector FROM embeddings ORDER BY content_hash")
    while rows := cur.fetchmany(20_000):
        whole = [(h, v) for h, v in rows if len(v) == dim * 4]
        other = [(h, v) for h, v in rows if len(v) != dim * 4]
        if whole:
            vecs = np.frombuffer(b"".join(v for _, v in whole), dtype="<f4").reshape(-1, dim)
            other += zip((h for h, _ in whole), encode_vectors(vecs))
        db.conn.executemany("INSERT INTO embeddings_half(content_hash, vector) VALUES (?, ?)", other)
    db.execute("DROP TABLE embeddings")
    db.execute("ALTER TABLE embeddings_half RENAME TO embeddings")


def _m009_one_keyword_index(db: sqlite_utils.Database) -> None:
    # One keyword index instead of two (issue 16, 7b): the eager index (yuanwen/bm25.py) gave
    # FTS5's scores from its own postings, and FTS5 only scored the passages newer than it, or
    # all of them while it was missing; the eager index now indexes those in memory itself, and
    # FTS5's postings, 1.4x the raw text, go. A writer builds the eager index if it is missing.
    db.execute("DROP TABLE IF EXISTS passages_fts")


MIGRATIONS = [_m001_initial, _m002_drop_sentence_fts, _m003_document_root, _m004_ocr_pages,
              _m005_accounts_access_audit, _m006_sentence_offsets, _m007_text_once, _m008_half_vectors,
              _m009_one_keyword_index]
SCHEMA_VERSION = len(MIGRATIONS)


def check_kb_dir(kb_dir: Path, write: bool = False) -> None:
    """Raise KnowledgeBaseError when ``kb_dir`` cannot be a knowledge base folder: it names a
    file, or (with ``write``) it, or the folder it would be made in, cannot be written."""
    kb_dir = Path(kb_dir)
    if kb_dir.exists() and not kb_dir.is_dir():
        raise KnowledgeBaseError(f"--kb 指定的 {kb_dir} 是一个文件，不是文件夹；请指定知识库文件夹")
    if not write:
        return
    probe = kb_dir
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent  # the nearest folder that exists is where it will be made
    if probe.exists() and not probe.is_dir():
        raise KnowledgeBaseError(f"无法在 {kb_dir} 建立知识库：{probe} 是一个文件，不是文件夹；请指定知识库文件夹")
    if probe.is_dir() and not os.access(probe, os.W_OK):
        raise ReadOnlyKnowledgeBaseError(readonly_message(kb_dir, permission=not _read_only_mount(probe)))
    db = kb_dir / DB_NAME
    if db.exists() and not os.access(db, os.W_OK):
        raise ReadOnlyKnowledgeBaseError(readonly_message(kb_dir, permission=not _read_only_mount(db)))


def copy_audit_log(src_dir: Path, dst_dir: Path) -> bool:
    """Copy the audit log (``audit.db``, its hash chain intact) of the knowledge base in
    ``src_dir`` into ``dst_dir``, unless ``src_dir`` has none or ``dst_dir``'s has lines already
    (``yuanwen migrate``). Returns whether it copied."""
    src, dst = Path(src_dir) / AUDIT_DB_NAME, Path(dst_dir) / AUDIT_DB_NAME
    if not src.exists():
        return False
    if dst.exists():
        with sqlite3.connect(str(dst), timeout=30) as conn:
            has = conn.execute("SELECT name FROM sqlite_master WHERE name = 'audit'").fetchone()
            if has and conn.execute("SELECT 1 FROM audit LIMIT 1").fetchone():
                return False
    source = sqlite3.connect(_readonly_uri(src), uri=True, timeout=30)
    target = sqlite3.connect(str(dst), timeout=30)
    try:
        source.backup(target)  # a consistent copy, even while another process appends
        target.execute("PRAGMA journal_mode=WAL")
    finally:
        target.close()
        source.close()
    return True


def _read_only_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _readonly_uri(db: Path) -> str:
    """The URI that opens ``db`` for reading. Where its folder cannot be written (read-only
    medium, no permission), SQLite could not make the ``-shm`` file a WAL database needs: the
    file is then opened ``immutable`` (no locks, no shared memory), which is exact when no write
    log is left over (a clean close leaves none). Where a ``-shm`` file exists (a writer, say
    another account, has it open), plain ``mode=ro`` reads through it; a leftover ``-wal``
    without its ``-shm`` cannot be read there, and the immutable open shows the database as of
    its last checkpoint."""
    uri = f"{db.absolute().as_uri()}?mode=ro"
    writable = os.access(db.parent, os.W_OK) and os.access(db, os.W_OK)
    if not writable and not Path(f"{db}-shm").exists():
        uri += "&immutable=1"
    return uri


class Store:
    """The knowledge base's SQLite database. One instance per process and thread."""

    def __init__(self, kb_dir: Path, create: bool = False, readonly: bool = False) -> None:
        self.kb_dir = Path(kb_dir)
        self.path = self.kb_dir / DB_NAME
        self._tx_depth = 0
        self._readonly = readonly
        self._writer: sqlite3.Connection | None = None  # see _security_db
        self._audit: sqlite3.Connection | None = None  # see _audit_db
        self._filter_cache: dict[tuple[str, tuple[int, int]], np.ndarray] = {}
        self._texts = _DocTexts()
        self._filter_lock = threading.Lock()
        self._writer_lock = threading.RLock()
        check_kb_dir(self.kb_dir, write=not readonly)
        if not self.path.exists():
            if not create:
                raise KnowledgeBaseError(
                    f"知识库不存在：{self.kb_dir}。请先运行 yuanwen ingest <文件夹> --kb {self.kb_dir}"
                )
            try:
                self.kb_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise kb_error_from(exc, self.kb_dir) or KnowledgeBaseError(
                    f"无法创建知识库文件夹 {self.kb_dir}（{exc.strerror}）") from exc
        conn = None
        try:
            if readonly:
                conn = sqlite3.connect(_readonly_uri(self.path), uri=True, check_same_thread=False,
                                       timeout=30)
            else:
                conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            _add_functions(conn)
            self.db = sqlite_utils.Database(conn)
            if not readonly:
                self._migrate()
            self.check_schema()
            self.kb_id = self.get_meta("kb_id")
            if self.kb_id is None and not readonly:
                # who this database is: index files record it, so files left beside a
                # replaced database are never taken for its own
                self.kb_id = uuid.uuid4().hex
                with self.transaction():
                    self.set_meta("kb_id", self.kb_id)
        except (sqlite3.DatabaseError, OSError) as exc:
            if conn is not None:
                conn.close()
            raise kb_error_from(exc, self.kb_dir) or KnowledgeBaseError(
                f"知识库 {self.kb_dir} 的数据库无法打开（{exc}）；请检查其中的 {DB_NAME} 是否完好、"
                "是否有读取权限"
            ) from exc
        except KnowledgeBaseError:
            if conn is not None:
                conn.close()
            raise

    # -- schema -------------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"知识库 {self.kb_dir} 的格式版本 {version} 比本程序支持的 {SCHEMA_VERSION} 新；请升级 yuanwen"
            )
        for i in range(version, SCHEMA_VERSION):
            with self.transaction():
                MIGRATIONS[i](self.db)
                self.set_meta("schema_version", str(i + 1))
        if version < SCHEMA_VERSION and version:
            self._reclaim()

    def _reclaim(self) -> None:
        """Give the file's free pages back to the disk when they are over a quarter of it (a
        migration that drops a copy of the text frees that much). Best effort: VACUUM needs
        about the database's size free again; without it the pages are reused by later writes."""
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        if pages and free > pages // 4:
            try:
                self.db.execute("VACUUM")
            except sqlite3.OperationalError:
                pass

    def schema_version(self) -> int:
        """The number of migrations applied (0 for a new database)."""
        if "meta" not in self.db.table_names():
            return 0
        v = self.get_meta("schema_version")
        return int(v) if v else 0

    def check_schema(self) -> None:
        """Raise if the database is not at this program's schema version."""
        v = self.schema_version()
        if v != SCHEMA_VERSION:
            raise KnowledgeBaseError(
                f"知识库 {self.kb_dir} 的格式版本为 {v}，本程序需要 {SCHEMA_VERSION}；"
                "请用可写方式打开一次（例如运行 yuanwen ingest）以升级"
            )

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key = ?", [key])
        else:
            self.db.execute(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )

    def close(self) -> None:
        for conn in (self._writer, self._audit):
            if conn is not None:
                conn.close()
        self._writer = self._audit = None
        self.db.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, opened explicitly (``BEGIN IMMEDIATE``) and committed at the
        end, or rolled back on any exception: every write path uses it, so a crash, a full disk
        or an error leaves each document either wholly stored or not at all. Nested calls join
        the outer transaction. Never call sqlite-utils' write methods inside: they commit on
        their own (``with conn:``), which would commit the outer transaction half-done."""
        conn = self.db.conn
        if self._tx_depth:
            self._tx_depth += 1
            try:
                yield
            finally:
                self._tx_depth -= 1
            return
        if not conn.in_transaction:  # else: a statement outside any block opened one; it joins
            conn.execute("BEGIN IMMEDIATE")
        self._tx_depth = 1
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            self._tx_depth = 0

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the database as of its start, even while
        another process ingests or prunes (WAL snapshot isolation). Re-entrant."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # -- documents -----------------------------------------------------------------------
    def document_by_path(self, path: str) -> dict[str, Any] | None:
        """The stored row for ``path`` (without its text), or None."""
        row = self.db.execute(
            "SELECT id, path, content_hash, file_hash, size_bytes, mtime, extra, access "
            "FROM documents WHERE path = ?", [path]
        ).fetchone()
        if not row:
            return None
        keys = ["id", "path", "content_hash", "file_hash", "size_bytes", "mtime", "extra", "access"]
        return dict(zip(keys, row))

    def document_by_hash(self, chash: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT id, path FROM documents WHERE content_hash = ? ORDER BY id LIMIT 1", [chash]
        ).fetchone()
        return {"id": row[0], "path": row[1]} if row else None

    def twins(self, hashes: Iterable[str]) -> dict[str, list[tuple[int, str]]]:
        """Of ``hashes``, those that more than one stored document has: hash -> [(id, path)]
        by id (writers at once on a shared store can each save the same text)."""
        out: dict[str, list[tuple[int, str]]] = {}
        hs = sorted(set(hashes))
        for i in range(0, len(hs), 500):
            part = hs[i: i + 500]
            for chash, doc_id, path in self.db.execute(
                    f"SELECT content_hash, id, path FROM documents WHERE content_hash IN "
                    f"({','.join('?' * len(part))}) ORDER BY id", part):
                out.setdefault(chash, []).append((doc_id, path))
        return {h: docs for h, docs in out.items() if len(docs) > 1}

    def get_document(self, doc_id: int, with_text: bool = True) -> Document:
        """The document with ``doc_id``."""
        row = self.db.execute(
            "SELECT id, path, title, issuer, date, doc_number, doc_number_masked, doc_type, "
            f"content_hash, pages, extra, {'text' if with_text else 'NULL'}, root, access "
            "FROM documents WHERE id = ?", [doc_id]
        ).fetchone()
        if not row:
            raise KnowledgeBaseError(f"知识库中没有编号为 {doc_id} 的文档")
        return _document_from_row(row)

    def documents(self, with_text: bool = False, filters: Filters | None = None) -> list[Document]:
        """All documents that pass ``filters`` (all of them without), ordered by date then
        title, read in one query."""
        where, args = _filter_where(filters)
        rows = self.db.execute(
            "SELECT d.id, d.path, d.title, d.issuer, d.date, d.doc_number, d.doc_number_masked, "
            f"d.doc_type, d.content_hash, d.pages, d.extra, {'d.text' if with_text else 'NULL'}, d.root, d.access "
            f"FROM documents d WHERE {where} ORDER BY d.date, d.title", args
        ).fetchall()
        return [_document_from_row(r) for r in rows]

    def save_document(
        self,
        doc: Document,
        passages: Sequence[Passage],
        sentences: Sequence[Sentence],
        file_info: dict[str, Any],
        keep_ids: bool = False,
    ) -> int:
        """Insert or replace ``doc`` with its passages and sentences, in one transaction.

        Returns the document id. The old passages, sentences and FTS rows of a replaced
        document go in the same transaction, so a crash leaves either the old or the new one.
        With ``keep_ids`` the document keeps ``doc.id`` and each passage its ``id`` (``yuanwen
        migrate`` copies into an empty store, so saved packs and links stay valid); the caller
        guarantees those ids are free.
        """
        for p in passages:  # a passage is kept as offsets into the text: they must agree
            if doc.text[p.start:p.end] != p.text:
                raise ValueError(f"passage {p.seq} of {doc.path} is not its document's text "
                                 f"between its offsets {p.start}:{p.end}")
        with self.transaction():
            old = self.db.execute("SELECT id, access FROM documents WHERE path = ?", [doc.path]).fetchone()
            if old:
                self._delete_document_rows(old[0])
            # a new version keeps its level unless one is given: an edited 内部 file stays 内部
            access = doc.access or (old[1] if old else None) or "公开"
            doc.access = access
            row = {
                "path": doc.path, "title": doc.title, "issuer": doc.issuer, "date": doc.date,
                "year": doc.year, "doc_number": doc.doc_number,
                "doc_number_masked": int(doc.doc_number_masked), "doc_type": doc.doc_type,
                "content_hash": doc.content_hash, "text": doc.text,
                "pages": json.dumps(doc.pages), "extra": json.dumps(doc.extra, ensure_ascii=False),
                "access": access, **file_info,
            }
            if keep_ids:
                row["id"] = doc.id
            elif old:
                row["id"] = old[0]
            # a plain INSERT: sqlite-utils' insert() would commit this row on its own
            cols = list(row)
            cur = self.db.conn.execute(
                f"INSERT INTO documents({', '.join(f'[{c}]' for c in cols)}) "
                f"VALUES ({', '.join('?' * len(cols))})", [row[c] for c in cols],
            )
            doc_id = int(cur.lastrowid)
            doc.id = doc_id
            self._insert_passages(doc_id, passages, sentences, keep_ids=keep_ids)
        return doc_id

    def _insert_passages(
        self, doc_id: int, passages: Sequence[Passage], sentences: Sequence[Sentence],
        keep_ids: bool = False,
    ) -> None:
        cur = self.db.conn.cursor()
        ids: dict[int, int] = {}
        for p in passages:
            cur.execute(
                'INSERT INTO passages(id, doc_id, seq, start, "end", page, para, heading_path, '
                "content_hash" + (", text) VALUES (?,?,?,?,?,?,?,?,?,'')" if self._emptied_text("passages")
                                  else ") VALUES (?,?,?,?,?,?,?,?,?)"),
                (p.id if keep_ids else None, doc_id, p.seq, p.start, p.end, p.page, p.para,
                 json.dumps(p.heading_path, ensure_ascii=False), content_hash(p.text)),
            )
            pid = cur.lastrowid
            p.id, p.doc_id = pid, doc_id
            ids[p.seq] = pid
        insert = ('INSERT INTO sentences(doc_id, passage_id, start, "end"'
                  + (", text) VALUES (?,?,?,?,'')" if self._emptied_text("sentences") else ") VALUES (?,?,?,?)"))
        cur.executemany(insert, [(doc_id, ids[s.passage_seq], s.start, s.end)
                                 for s in sentences if s.passage_seq in ids])

    def _emptied_text(self, table: str) -> bool:
        """Whether ``table`` (passages, sentences) still has its emptied text column: SQLite
        before 3.35 could not drop it."""
        if not hasattr(self, "_text_columns"):
            self._text_columns = {t: "text" in self.db[t].columns_dict for t in ("passages", "sentences")}
        return self._text_columns[table]

    def _delete_document_rows(self, doc_id: int) -> None:
        c = self.db.conn
        c.execute("DELETE FROM sentences WHERE doc_id = ?", [doc_id])
        c.execute("DELETE FROM passages WHERE doc_id = ?", [doc_id])
        c.execute("DELETE FROM documents WHERE id = ?", [doc_id])

    def delete_document(self, doc_id: int) -> None:
        """Remove a document with its passages and sentences."""
        with self.transaction():
            self._delete_document_rows(doc_id)

    def update_document_extra(self, doc_id: int, extra: dict[str, Any]) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE documents SET extra = ? WHERE id = ?",
                [json.dumps(extra, ensure_ascii=False), doc_id],
            )

    def swap_hashes(self, doc_id: int, file_hash: str, chash: str) -> tuple[str, str]:
        """Set a document's file and content hashes; returns the old ones. Blank hashes make
        the next ingest of its file read and store it again (verify's repair does so)."""
        with self.transaction():
            row = self.db.execute(
                "SELECT file_hash, content_hash FROM documents WHERE id = ?", [doc_id]).fetchone()
            self.db.execute("UPDATE documents SET file_hash = ?, content_hash = ? WHERE id = ?",
                            [file_hash, chash, doc_id])
        return (row[0] or "", row[1] or "") if row else ("", "")

    def touch_document(self, doc_id: int, file_hash: str, mtime: float) -> None:
        """Record new file bytes whose text is unchanged."""
        with self.transaction():
            self.db.execute(
                "UPDATE documents SET file_hash = ?, mtime = ? WHERE id = ?", [file_hash, mtime, doc_id]
            )

    def add_alias(self, doc_id: int, alias: str, replaced_doc_id: int | None = None) -> None:
        """Record ``alias`` as another path of document ``doc_id`` (same text); the document
        that ``alias`` held before, if any, goes in the same transaction."""
        with self.transaction():
            row = self.db.execute("SELECT extra FROM documents WHERE id = ?", [doc_id]).fetchone()
            extra = json.loads(row[0] or "{}") if row else {}
            aliases = extra.setdefault("aliases", [])
            if alias not in aliases:
                aliases.append(alias)
                self.db.execute(
                    "UPDATE documents SET extra = ? WHERE id = ?",
                    [json.dumps(extra, ensure_ascii=False), doc_id],
                )
            if replaced_doc_id is not None and replaced_doc_id != doc_id:
                self._delete_document_rows(replaced_doc_id)

    def version(self) -> tuple[int, int]:
        """Changes when this or any other connection commits: a cheap key for caches."""
        return self.db.execute("PRAGMA data_version").fetchone()[0], self.db.conn.total_changes

    def document_slice(self, doc_id: int, start: int, end: int) -> str:
        """``text[start:end]`` of one document, read without loading the whole text."""
        row = self.db.execute(
            "SELECT substr(text, ?, ?) FROM documents WHERE id = ?", [start + 1, end - start, doc_id]
        ).fetchone()
        return row[0] if row else ""

    def titles(self) -> list[tuple[int, str]]:
        """(id, title) of every document."""
        return [(r[0], r[1] or "") for r in self.db.execute("SELECT id, title FROM documents")]

    def all_paths(self) -> list[tuple[int, str]]:
        return [tuple(r) for r in self.db.execute("SELECT id, path FROM documents").fetchall()]

    # -- passages ------------------------------------------------------------------------
    def get_passages(self, ids: Iterable[int]) -> dict[int, Passage]:
        """Passages by id (missing ids are left out)."""
        ids = list(ids)
        out: dict[int, Passage] = {}
        with self.snapshot():
            for i in range(0, len(ids), 900):
                chunk = ids[i : i + 900]
                rows = self.db.execute(
                    f"SELECT {_PASSAGE_COLS} FROM {_PASSAGE_FROM} WHERE p.id IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall()
                out.update((p.id, p) for p in self._passages_of(rows))
        return out

    def passage_heads(self, ids: Iterable[int]) -> tuple[dict[int, Passage], dict[int, str]]:
        """Passages by id without their text (``""``: cutting it from the documents is what a
        passage costs to read), and each one's content hash (equal for equal texts)."""
        ids = list(ids)
        heads: dict[int, Passage] = {}
        keys: dict[int, str] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            for r in self.db.execute(
                    f'SELECT id, doc_id, seq, start, "end", page, para, heading_path, content_hash FROM passages '
                    f"WHERE id IN ({','.join('?' * len(chunk))})", chunk):
                heads[r[0]] = _passage_from_row(r, "")
                keys[r[0]] = r[8]
        return heads, keys

    def _passages_of(self, rows: Sequence[Sequence[Any]]) -> list[Passage]:
        """Passages of rows of ``_PASSAGE_COLS``, their text cut from their documents'."""
        texts = self._texts.cut(self.db.conn, [(r[1], r[8], r[3], r[4]) for r in rows])
        return [_passage_from_row(r, t) for r, t in zip(rows, texts)]

    def document_passages(self, doc_id: int) -> list[Passage]:
        """The passages of one document, in order."""
        with self.snapshot():
            return self._passages_of(self.db.execute(
                f"SELECT {_PASSAGE_COLS} FROM {_PASSAGE_FROM} WHERE p.doc_id = ? ORDER BY p.seq", [doc_id]
            ).fetchall())

    def passages(self) -> list[Passage]:
        """Every stored passage, in id order (benchmarks read the whole collection)."""
        with self.snapshot():
            return self._passages_of(self.db.execute(
                f"SELECT {_PASSAGE_COLS} FROM {_PASSAGE_FROM} ORDER BY p.id").fetchall())

    def distinct_passage_texts(self) -> list[str]:
        """Each distinct passage text once, in the order of its first passage: what the
        embedder encodes."""
        with self.snapshot():
            return [p.text for p in self._passages_of(self.db.execute(
                f"SELECT {_PASSAGE_COLS} FROM {_PASSAGE_FROM} WHERE p.id IN "
                "(SELECT MIN(id) FROM passages GROUP BY content_hash) ORDER BY p.id").fetchall())]

    def distinct_heading_paths(self) -> list[list[str]]:
        """Each distinct heading path of the passages once."""
        return [json.loads(hp or "[]") for (hp,) in self.db.execute("SELECT DISTINCT heading_path FROM passages")]

    def mean_passage_chars(self) -> float | None:
        """The mean length of a passage in characters (None when there are none)."""
        return self.db.execute('SELECT AVG("end" - start) FROM passages').fetchone()[0]

    def passage_doc_ids(self, passage_ids: Sequence[int]) -> dict[int, int]:
        """The document id of each of these passages (missing ids are left out)."""
        ids = list(passage_ids)
        out: dict[int, int] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            out.update(self.db.execute(
                f"SELECT id, doc_id FROM passages WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall())
        return out

    # -- sentences -------------------------------------------------------------------------
    def sentence_texts(self) -> list[str]:
        """The verbatim text (its document's text between its offsets) of every stored
        sentence, in stored order."""
        texts = dict(self.db.execute("SELECT id, text FROM documents").fetchall())
        return [texts[d][s:e] for d, s, e in self.db.execute('SELECT doc_id, start, "end" FROM sentences')]

    def sample_sentences(self, every: int = 97, limit: int = 2000) -> list[str]:
        """The verbatim text of every ``every``-th stored sentence (by id), at most ``limit``
        of them: quotes for benchmarks."""
        return [r[0] for r in self.db.execute(
            'SELECT substr(d.text, s.start + 1, s."end" - s.start) FROM sentences s JOIN documents d '
            "ON d.id = s.doc_id WHERE s.id % ? = 0 LIMIT ?", [every, limit])]

    def sentence_span(self, doc_id: int, start: int, end: int) -> tuple[int, int] | None:
        """(first start, last end) of the stored sentences of ``doc_id`` that overlap
        ``[start, end)``, or None when no sentence does."""
        row = self.db.execute(
            'SELECT MIN(start), MAX("end") FROM sentences WHERE doc_id = ? AND "end" > ? AND start < ?',
            [doc_id, start, end],
        ).fetchone()
        return (row[0], row[1]) if row and row[0] is not None else None

    def document_sentences(self, doc_id: int) -> list[Sentence]:
        """The stored sentences of one document, in stored order, each with the ``seq`` of its
        passage in ``passage_seq`` (what :meth:`save_document` takes)."""
        return [Sentence(start=r[0], end=r[1], text=r[2], passage_seq=r[3]) for r in self.db.execute(
            'SELECT s.start, s."end", substr(d.text, s.start + 1, s."end" - s.start), p.seq FROM sentences s '
            "JOIN passages p ON p.id = s.passage_id JOIN documents d ON d.id = s.doc_id "
            "WHERE s.doc_id = ? ORDER BY s.id", [doc_id])]

    def file_info(self, doc_id: int) -> dict[str, Any]:
        """What :meth:`save_document` took as ``file_info`` for one document: ``file_hash``,
        ``format``, ``encoding``, ``size_bytes``, ``mtime``, ``root``, ``fs_path`` (bytes or
        None), ``ingested_at`` (KnowledgeBaseError when there is no such document)."""
        keys = ("file_hash", "format", "encoding", "size_bytes", "mtime", "root", "fs_path", "ingested_at")
        row = self.db.execute(
            f"SELECT {', '.join(keys)} FROM documents WHERE id = ?", [doc_id]).fetchone()
        if not row:
            raise KnowledgeBaseError(f"知识库中没有编号为 {doc_id} 的文档")
        info = dict(zip(keys, row))
        info["fs_path"] = bytes(info["fs_path"]) if info["fs_path"] is not None else None
        return info

    def ocr_pages(self) -> Iterator[tuple[str, OcrPage]]:
        """(file hash, page) of every saved recognised page (``yuanwen migrate`` copies them)."""
        for file_hash, page, engine, data in self.db.execute(
                "SELECT file_hash, page, engine, data FROM ocr_pages ORDER BY file_hash, page").fetchall():
            got = _ocr_page(page, engine, data)
            if got is not None:
                yield file_hash, got

    # -- search ------------------------------------------------------------------------------
    def filtered_passage_ids(self, filters: Filters | None) -> np.ndarray | None:
        """Ids of the passages whose documents pass ``filters`` (in the order SQLite reads
        them), or None when nothing is filtered."""
        if filters is None or filters.is_empty():
            return None
        # the same filters come back on every search of one account (its clearance) and from
        # both the keyword and the vector side: kept until the database changes
        key = (repr(filters), self.version())
        with self._filter_lock:
            hit = self._filter_cache.get(key)
        if hit is not None:
            return hit
        where, args = _filter_where(filters)
        rows = self.db.execute(
            f"SELECT p.id FROM passages p JOIN documents d ON d.id = p.doc_id WHERE {where}", args
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        ids.flags.writeable = False  # shared by callers
        with self._filter_lock:
            if len(self._filter_cache) >= 8:
                self._filter_cache.pop(next(iter(self._filter_cache)))
            self._filter_cache[key] = ids
        return ids

    def iter_fts_rows(self, chunk: int = 20_000, after: int = 0) -> Iterator[list[tuple[int, str, str, str]]]:
        """The keyword rows of the passages with ids above ``after``: (passage id, text terms,
        heading terms, title terms), in id order and in batches of ``chunk``, read in one
        snapshot (the keyword index, :mod:`yuanwen.bm25`, is built from them)."""
        with self.snapshot():
            yield from _fts_rows(self.db.conn, "p.id > ?", [after], chunk=chunk)

    # -- invariants (verify) ----------------------------------------------------------------
    def quick_check(self) -> list[str]:
        """SQLite's ``PRAGMA quick_check`` result lines (``["ok"]`` for an intact database);
        raises sqlite3.DatabaseError when the check itself cannot run."""
        return [str(r[0]) for r in self.db.execute("PRAGMA quick_check").fetchall()]

    def raw_documents(self) -> Iterator[RawDocument]:
        """Every document with its path and text as stored bytes, not decoded (damaged text,
        invalid UTF-8, would make SQLite's decoding raise): for verify's scan."""
        for r in self.db.execute(
                "SELECT id, CAST(path AS BLOB), CAST(text AS BLOB), content_hash, root, fs_path FROM documents"):
            yield RawDocument(r[0], bytes(r[1] or b""), bytes(r[2] or b""), r[3], r[4], r[5])

    def raw_passages(self, doc_id: int) -> list[tuple[int, int, str]]:
        """(start, end, content hash of the text it was stored with) of the passages of ``doc_id``."""
        return [tuple(r) for r in self.db.execute(
            'SELECT start, "end", content_hash FROM passages WHERE doc_id = ?', [doc_id])]

    def orphan_counts(self) -> tuple[int, int]:
        """(passages of no stored document, sentences of no stored passage)."""
        n_p = self.db.execute(
            "SELECT COUNT(*) FROM passages WHERE doc_id NOT IN (SELECT id FROM documents)").fetchone()[0]
        n_s = self.db.execute(
            "SELECT COUNT(*) FROM sentences WHERE passage_id NOT IN (SELECT id FROM passages)").fetchone()[0]
        return n_p, n_s

    def delete_orphans(self) -> None:
        """Delete the passages of no stored document, then the sentences of no stored
        passage, in one transaction."""
        with self.transaction():
            self.db.execute("DELETE FROM passages WHERE doc_id NOT IN (SELECT id FROM documents)")
            self.db.execute("DELETE FROM sentences WHERE passage_id NOT IN (SELECT id FROM passages)")

    def bad_dimension_vectors(self, dim: int) -> int:
        """How many stored vectors do not have ``dim`` components."""
        return self.db.execute(
            "SELECT COUNT(*) FROM embeddings WHERE length(vector) != ?", [vector_bytes(dim)]).fetchone()[0]

    def delete_bad_dimension_vectors(self, dim: int) -> None:
        """Forget the stored vectors that do not have ``dim`` components (their passages
        become pending)."""
        with self.transaction():
            self.db.execute("DELETE FROM embeddings WHERE length(vector) != ?", [vector_bytes(dim)])

    def damaged_documents(self) -> list[DamagedDocument]:
        """Documents a reader cannot use whole: stored without any passage (a ghost left by a
        crash before this program's one-transaction writes), or with passages that lack their
        sentences. Ingest never stores a document without passages, so every such row is damage."""
        rows = self.db.execute(
            "SELECT d.id, d.path, d.root, d.fs_path FROM documents d "
            "WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.doc_id = d.id)"
        ).fetchall()
        out = [DamagedDocument(r[0], r[1], "没有任何段落（导入中断留下的残缺记录），检索和引文核对都找不到它",
                               r[2], file_of(r[1], r[3]), empty=True) for r in rows]
        rows = self.db.execute(
            "SELECT d.id, d.path, d.root, d.fs_path, COUNT(*) FROM documents d "
            "JOIN passages p ON p.doc_id = d.id "
            "WHERE NOT EXISTS (SELECT 1 FROM sentences s WHERE s.passage_id = p.id) GROUP BY d.id"
        ).fetchall()
        out += [DamagedDocument(r[0], r[1], f"有 {r[4]} 个段落缺少句子记录，引文核对找不到其中的原文",
                                r[2], file_of(r[1], r[3])) for r in rows]
        return out

    def iter_vectors(self, batch: int = 20000) -> Iterator[tuple[list[str], list[bytes]]]:
        """(content hashes, float32 vector bytes) of every stored vector, in batches, as every
        backend gives them; a stored blob that is not a vector of the recorded dimension comes
        as ``b""``."""
        dim = int(self.get_meta("dim") or 0)
        size = vector_bytes(dim)
        last = ""
        while True:
            rows = self.db.execute(
                "SELECT content_hash, vector FROM embeddings WHERE content_hash > ? "
                "ORDER BY content_hash LIMIT ?", [last, batch]
            ).fetchall()
            if not rows:
                return
            good = [i for i, r in enumerate(rows) if dim and len(r[1]) == size]
            blobs = [b""] * len(rows)
            if good:
                wide = decode_vectors(b"".join(rows[i][1] for i in good), dim)
                for i, vec in zip(good, wide):
                    blobs[i] = vec.tobytes()
            yield [r[0] for r in rows], blobs
            last = rows[-1][0]

    def count_vectors(self) -> int:
        """How many vectors are stored (one per distinct passage text embedded)."""
        return self.db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]

    def delete_vectors(self, hashes: Sequence[str]) -> None:
        """Forget the vectors of these texts (their passages become pending)."""
        with self.transaction():
            for i in range(0, len(hashes), 900):
                chunk = list(hashes[i : i + 900])
                self.db.execute(
                    f"DELETE FROM embeddings WHERE content_hash IN ({','.join('?' * len(chunk))})", chunk
                )

    # -- embeddings ----------------------------------------------------------------------
    def pending_passages(self, limit: int | None = None,
                         doc_ids: Sequence[int] | None = None) -> list[tuple[str, str]]:
        """(content_hash, text) of passages that have no vector yet, one row per distinct text
        (of the documents ``doc_ids`` only, when given)."""
        where, args = _pending_where(doc_ids)
        first = (  # the first passage of each text without a vector
            "SELECT MIN(p.id) FROM passages p LEFT JOIN embeddings e ON e.content_hash = p.content_hash "
            f"WHERE {where} GROUP BY p.content_hash ORDER BY MIN(p.id)"
        )
        if limit:
            first += f" LIMIT {int(limit)}"
        with self.snapshot():
            rows = self.db.execute(f"SELECT {_PASSAGE_COLS}, p.content_hash FROM {_PASSAGE_FROM} "
                                   f"WHERE p.id IN ({first}) ORDER BY p.id", args).fetchall()
            return [(r[9], p.text) for r, p in zip(rows, self._passages_of(rows))]

    def count_pending(self, doc_ids: Sequence[int] | None = None) -> int:
        """How many distinct passage texts have no vector yet (of ``doc_ids`` only, when given)."""
        where, args = _pending_where(doc_ids)
        return self.db.execute(
            "SELECT COUNT(DISTINCT p.content_hash) FROM passages p "
            f"LEFT JOIN embeddings e ON e.content_hash = p.content_hash WHERE {where}", args
        ).fetchone()[0]

    def save_vectors(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store one batch of vectors (committed at once, so an interrupted embed resumes)."""
        blobs = encode_vectors(vectors)
        with self.transaction():
            self.db.conn.executemany(
                "INSERT OR REPLACE INTO embeddings(content_hash, vector) VALUES (?, ?)",
                list(zip(hashes, blobs)),
            )

    def iter_passage_vectors(self, dim: int, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of every embedded passage, in id order, in batches."""
        last = -1
        while True:
            rows = self.db.execute(
                "SELECT p.id, e.vector FROM passages p JOIN embeddings e "
                "ON e.content_hash = p.content_hash WHERE p.id > ? ORDER BY p.id LIMIT ?",
                [last, batch],
            ).fetchall()
            if not rows:
                return
            ids, vecs = _ids_and_vectors(rows, dim)
            yield ids, vecs
            last = int(ids[-1])

    def vectors_into(self, ids: np.ndarray, out: np.ndarray) -> int:
        """Write the vectors of passages ``ids`` into ``out`` (zeroed, one row each, in that
        order: a FAISS graph's), batch by batch, so no second copy of them is made; returns how
        many passages have none (their rows stay zero)."""
        dim = out.shape[1]
        ids = np.asarray(ids, dtype=np.int64)
        by_id = np.argsort(ids, kind="stable")
        sorted_ids = ids[by_id]
        filled = 0
        # the vectors in stored order, the passages of each text found by the hash index (4 s
        # at a million passages; matching the hashes in Python took 8 s)
        with self.snapshot():
            cur = self.db.execute("SELECT p.id, e.vector FROM embeddings e CROSS JOIN passages p "
                                  "ON p.content_hash = e.content_hash")
            while batch := cur.fetchmany(5000):
                pids_l, blobs = zip(*batch)
                joined = b"".join(blobs)
                if len(joined) != len(batch) * vector_bytes(dim):  # another size (verify says so)
                    batch = [r for r in batch if len(r[1]) == vector_bytes(dim)]
                    if not batch:
                        continue
                    pids_l, blobs = zip(*batch)
                    joined = b"".join(blobs)
                pids = np.array(pids_l, dtype=np.int64)
                at = np.minimum(np.searchsorted(sorted_ids, pids), max(len(ids) - 1, 0))
                keep = sorted_ids[at] == pids if len(ids) else np.zeros(len(pids), dtype=bool)
                if not keep.any():
                    continue
                mat = np.frombuffer(joined, dtype=VECTOR_DTYPE).reshape(-1, dim)
                out[by_id[at[keep]]] = mat[keep]  # widened to float32 as it is copied
                filled += int(keep.sum())
        return len(ids) - filled

    def embedded_ids(self) -> np.ndarray:
        """Ids of the embedded passages, ascending (sorted here: without ORDER BY, SQLite reads
        the covering hash index instead of every passage row, 3x faster at 1M passages)."""
        rows = self.db.execute(
            "SELECT p.id FROM passages p JOIN embeddings e ON e.content_hash = p.content_hash"
        ).fetchall()
        return np.sort(np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)))

    def passage_vectors(self, ids: Sequence[int], dim: int, batch: int = 900
                        ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the given embedded passages, in batches."""
        for i in range(0, len(ids), batch):
            chunk = list(ids[i : i + batch])
            rows = self.db.execute(
                "SELECT p.id, e.vector FROM passages p JOIN embeddings e ON e.content_hash = p.content_hash "
                f"WHERE p.id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            if rows:
                yield _ids_and_vectors(rows, dim)

    def embedded_state(self) -> dict[str, int]:
        """Count, id sum and max id of embedded passages: what the FAISS file must hold."""
        n, s, m = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(p.id), 0), COALESCE(MAX(p.id), 0) FROM passages p "
            "JOIN embeddings e ON e.content_hash = p.content_hash"
        ).fetchone()
        return {"count": int(n), "id_sum": int(s), "max_id": int(m), "kb_id": self.kb_id}

    def count_passages(self, upto: int) -> int:
        """How many passages have an id of at most ``upto``."""
        return self.db.execute("SELECT COUNT(*) FROM passages WHERE id <= ?", [upto]).fetchone()[0]

    def passages_state(self) -> dict[str, int]:
        """Count, id sum and max id of all passages: what the keyword index must hold."""
        n, s, m = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(id), 0), COALESCE(MAX(id), 0) FROM passages"
        ).fetchone()
        return {"count": int(n), "id_sum": int(s), "max_id": int(m), "kb_id": self.kb_id}

    def drop_vectors(self) -> None:
        """Forget every stored vector (used when re-embedding with another model)."""
        with self.transaction():
            self.db.execute("DELETE FROM embeddings")

    def prune_orphan_vectors(self) -> int:
        """Delete vectors whose text no passage has any more; returns how many."""
        with self.transaction():
            cur = self.db.execute(
                "DELETE FROM embeddings WHERE content_hash NOT IN (SELECT content_hash FROM passages)"
            )
        return cur.rowcount

    # -- counts --------------------------------------------------------------------------
    def space_by_table(self) -> dict[str, int]:
        """Bytes of each table and index in the database file (SQLite's ``dbstat``), and
        ``raw_text`` (not a table): the UTF-8 bytes of every document's text."""
        out = {name: int(size) for name, size in self.db.execute(
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")}
        out["raw_text"] = int(self.db.execute(
            "SELECT COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0) FROM documents").fetchone()[0])
        return out

    def counts(self) -> dict[str, int]:
        q = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "documents": q("SELECT COUNT(*) FROM documents"),
            "passages": q("SELECT COUNT(*) FROM passages"),
            "sentences": q("SELECT COUNT(*) FROM sentences"),
            "embedded": q(
                "SELECT COUNT(*) FROM passages p JOIN embeddings e ON e.content_hash = p.content_hash"
            ),
        }

    def source_file(self, doc_id: int) -> str | None:
        """The path to open a document's original file by (its real name when not UTF-8)."""
        row = self.db.execute("SELECT path, fs_path FROM documents WHERE id = ?", [doc_id]).fetchone()
        return file_of(row[0], row[1]) if row else None

    def ocr_page(self, file_hash: str, page: int, engine: str) -> OcrPage | None:
        """The saved recognition of ``page`` of the file with ``file_hash`` by ``engine``, if any."""
        row = self.db.execute(
            "SELECT data FROM ocr_pages WHERE file_hash = ? AND page = ? AND engine = ?",
            [file_hash, page, engine],
        ).fetchone()
        return None if row is None else _ocr_page(page, engine, row[0])

    def save_ocr_page(self, file_hash: str, page: OcrPage) -> None:
        """Keep one recognised page (committed at once: an interrupted ingest resumes after it)."""
        data = json.dumps({
            "width": page.width, "height": page.height, "seconds": round(page.seconds, 3),
            "lines": [[ln.text, [round(float(v), 1) for v in ln.box], round(float(ln.score), 4)]
                      for ln in page.lines],
        }, ensure_ascii=False)
        with self.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO ocr_pages (file_hash, page, engine, data) VALUES (?, ?, ?, ?)",
                [file_hash, page.page, page.engine, data],
            )

    def ocr_page_count(self) -> int:
        """Pages of stored documents whose text was recognised by OCR."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(json_array_length(extra, '$.ocr.pages')), 0) FROM documents "
            "WHERE json_valid(extra) AND json_type(extra, '$.ocr.pages') = 'array'"
        ).fetchone()
        return int(row[0] or 0)

    def group_counts(self, column: str, filters: Filters | None = None) -> dict[str, int]:
        """Documents (those that pass ``filters``) per value of ``column`` (doc_type, issuer,
        year or format)."""
        if column not in ("doc_type", "issuer", "year", "format"):
            raise ValueError(column)
        where, args = _filter_where(filters)
        rows = self.db.execute(
            f"SELECT COALESCE(d.{column}, '未知'), COUNT(*) FROM documents d WHERE {where} "
            "GROUP BY 1 ORDER BY 2 DESC, 1", args
        ).fetchall()
        return {str(k): int(v) for k, v in rows}

    # -- access levels, accounts and the audit log ----------------------------------------------
    # These write even through a read-only handle (the app opens the knowledge base read-only,
    # yet records logins and searches): on a connection of their own, one writer at a time.
    def _security_db(self) -> sqlite3.Connection:
        """The connection for accounts, access levels and the audit log: this store's own when
        it is writable, else a writable one opened for them (ReadOnlyKnowledgeBaseError when
        the knowledge base folder cannot be written)."""
        if not self._readonly:
            return self.db.conn
        if self._writer is None:
            try:
                conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                                       isolation_level=None)
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA journal_mode=WAL")
                _add_functions(conn)
            except (sqlite3.DatabaseError, OSError) as exc:
                raise kb_error_from(exc, self.kb_dir) or ReadOnlyKnowledgeBaseError(
                    readonly_message(self.kb_dir)) from exc
            self._writer = conn
        return self._writer

    def _audit_db(self, create: bool = True) -> sqlite3.Connection | None:
        """The audit log's own database (AUDIT_DB_NAME in the knowledge base folder), made on
        first use; None when it does not exist and ``create`` is false."""
        if self._audit is None:
            path = self.kb_dir / AUDIT_DB_NAME
            if not create and not path.exists():
                return None
            try:
                conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30,
                                       isolation_level=None)
                conn.execute("PRAGMA busy_timeout=30000")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                _add_functions(conn)
                for stmt in _AUDIT_SCHEMA:
                    conn.execute(stmt)
            except (sqlite3.DatabaseError, OSError) as exc:
                raise kb_error_from(exc, self.kb_dir) or KnowledgeBaseError(
                    f"知识库 {self.kb_dir} 的审计日志 {AUDIT_DB_NAME} 无法打开（{exc}）") from exc
            self._audit = conn
        return self._audit

    def _audit_write(self, sql_args: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self._writer_lock:
            conn = self._audit_db()
            try:
                conn.execute("BEGIN IMMEDIATE")
                for q, a in sql_args:
                    conn.execute(q, a)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _audit_read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._writer_lock:
            conn = self._audit_db(create=False)
            if conn is None:
                return []
            return [tuple(r) for r in conn.execute(sql, list(args)).fetchall()]

    def audit_meta(self, key: str) -> str | None:
        rows = self._audit_read("SELECT value FROM audit_meta WHERE key = ?", [key])
        return rows[0][0] if rows else None

    def set_audit_meta(self, key: str, value: str) -> None:
        self._audit_write([(
            "INSERT INTO audit_meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value", [key, value])])

    def _security_write(self, sql_args: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run write statements in one immediate transaction; their lastrowids."""
        with self._writer_lock:
            if not self._readonly:
                with self.transaction():
                    return [int(self.db.conn.execute(q, a).lastrowid or 0) for q, a in sql_args]
            conn = self._security_db()
            try:
                conn.execute("BEGIN IMMEDIATE")
                out = [int(conn.execute(q, a).lastrowid or 0) for q, a in sql_args]
                conn.execute("COMMIT")
                return out
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _security_read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of accounts, access levels or the audit log (read on this store's connection:
        a read-only one sees what the writer committed, see _readonly_uri)."""
        return [tuple(r) for r in self.db.conn.execute(sql, list(args)).fetchall()]

    def set_security_meta(self, key: str, value: str) -> None:
        self._security_write([(
            "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value])])

    def access_levels_in_use(self) -> set[str]:
        """The access levels documents have now."""
        return {r[0] for r in self._security_read("SELECT DISTINCT access FROM documents")}

    def document_access(self, doc_ids: Iterable[int]) -> dict[int, str]:
        """The access level of each of ``doc_ids`` that exists, as it is now."""
        ids = list(doc_ids)
        out: dict[int, str] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i: i + 900]
            out.update({int(r[0]): r[1] for r in self._security_read(
                f"SELECT id, access FROM documents WHERE id IN ({','.join('?' * len(chunk))})", chunk)})
        return out

    def set_document_access(self, doc_id: int, level: str) -> None:
        """Change one document's access level."""
        self._security_write([("UPDATE documents SET access = ? WHERE id = ?", [level, doc_id])])

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        return [_account_from_row(r) for r in self._security_read(
            f"SELECT {_ACCOUNT_COLS} FROM accounts ORDER BY name")]

    def account(self, name: str) -> tuple[Account, str | None] | None:
        """An account (names compare ignoring case) and its password hash, or None."""
        rows = self._security_read(
            f"SELECT {_ACCOUNT_COLS}, password_hash FROM accounts WHERE name = ?", [name])
        return (_account_from_row(rows[0][:-1]), rows[0][-1]) if rows else None

    def count_accounts(self) -> int:
        try:
            return int(self._security_read("SELECT COUNT(*) FROM accounts")[0][0])
        except sqlite3.OperationalError:  # an older schema opened read-only: no accounts table
            return 0

    def save_account(self, account: Account, password_hash: str | None, entry: AuditEntry,
                     new: bool = False) -> None:
        """Insert (``new``) or update an account (its hash too, when given), after the audit
        line that records it (no change goes unrecorded: when the line cannot be written,
        nothing changes)."""
        cols = ["role", "clearance", "disabled", "source", "last_login"]
        vals: list[Any] = [account.role, account.clearance, int(account.disabled), account.source,
                           account.last_login]
        if password_hash is not None:
            cols.append("password_hash")
            vals.append(password_hash)
        if new:
            stmt = (f"INSERT INTO accounts(name, created, {', '.join(cols)}) VALUES "
                    f"(?, ?, {', '.join('?' * len(cols))})", [account.name, account.created, *vals])
        else:
            stmt = (f"UPDATE accounts SET {', '.join(f'{c} = ?' for c in cols)} WHERE name = ?",
                    [*vals, account.name])
        self.append_audit([entry])
        self._security_write([stmt])

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append lines to the audit log (chained by hash), in one transaction. Each line also
        goes to the ``yuanwen.audit`` logger: a copy outside the knowledge base (the service's
        journal, syslog) that whoever can write the database cannot rewrite."""
        self._audit_write(self._audit_stmts(entries))
        for e in entries:
            _AUDIT_LOGGER.info("%s", json.dumps(
                {"ts": e.ts, "account": e.account, "client": e.client, "action": e.action,
                 "target": e.target, "outcome": e.outcome, "detail": e.detail}, ensure_ascii=False))

    def _audit_stmts(self, entries: Sequence[AuditEntry]) -> list[tuple[str, Sequence[Any]]]:
        # The chain is computed inside the INSERT (the previous row is read in the same
        # immediate transaction), so two writers can never chain to the same row.
        out = []
        for e in entries:
            detail = json.dumps(e.detail, ensure_ascii=False, sort_keys=True)
            out.append((
                "INSERT INTO audit(ts, account, client, action, target, detail, outcome, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, yw_audit_hash(COALESCE((SELECT hash FROM audit "
                "ORDER BY id DESC LIMIT 1), ''), ?, ?, ?, ?, ?, ?, ?))",
                [e.ts, e.account, e.client, e.action, e.target, detail, e.outcome,
                 e.ts, e.account, e.client, e.action, e.target, detail, e.outcome]))
        return out

    def audit_rows(self, since: str | None = None, until: str | None = None,
                   account: str | None = None, actions: Sequence[str] = (),
                   limit: int | None = None, newest_first: bool = True) -> list[AuditEntry]:
        """Audit lines between ``since`` and ``until`` (ISO, inclusive), of one account, of
        some actions; newest first unless asked otherwise."""
        clauses, args = ["1"], []
        if since:
            clauses.append("ts >= ?")
            args.append(since)
        if until:
            clauses.append("ts <= ?")
            args.append(until + "\uffff")
        if account:
            clauses.append("account = ? COLLATE NOCASE")
            args.append(account)
        if actions:
            clauses.append(f"action IN ({','.join('?' * len(actions))})")
            args += list(actions)
        order = "DESC" if newest_first else "ASC"
        sql = (f"SELECT id, ts, account, client, action, target, detail, outcome FROM audit "
               f"WHERE {' AND '.join(clauses)} ORDER BY id {order}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [AuditEntry(id=r[0], ts=r[1], account=r[2], client=r[3], action=r[4], target=r[5],
                           detail=json.loads(r[6] or "{}"), outcome=r[7])
                for r in self._audit_read(sql, args)]

    def audit_chain(self) -> Iterator[tuple[int, str, tuple[Any, ...]]]:
        """(id, stored hash, the hashed fields) of every audit line, oldest first."""
        for r in self._audit_read(
                "SELECT id, hash, ts, account, client, action, target, detail, outcome FROM audit ORDER BY id"):
            yield r[0], r[1], tuple(r[2:])

    def count_audit(self, action: str, since: str, account: str | None = None,
                    client: str | None = None) -> int:
        """How many ``action`` lines since ``since``, of ``account`` or from ``client``."""
        sql, args = "SELECT COUNT(*) FROM audit WHERE action = ? AND ts >= ?", [action, since]
        if account is not None:
            sql += " AND account = ? COLLATE NOCASE"
            args.append(account)
        if client is not None:
            sql += " AND client = ?"
            args.append(client)
        rows = self._audit_read(sql, args)
        return int(rows[0][0]) if rows else 0

    def purge_audit(self, before: str) -> int:
        """Delete audit lines older than ``before`` (the trigger refuses newer ones)."""
        rows = self._audit_read("SELECT COUNT(*) FROM audit WHERE ts < ?", [before])
        n = int(rows[0][0]) if rows else 0
        if n:
            self._audit_write([("DELETE FROM audit WHERE ts < ?", [before])])
        return n


class RawDocument(NamedTuple):
    """A stored document as bytes, not decoded (see :meth:`Store.raw_documents`)."""

    id: int
    path: bytes
    text: bytes
    content_hash: str
    root: str | None
    fs_path: bytes | None


def _ocr_page(page: int, engine: str, data: str) -> OcrPage | None:
    """A saved recognised page from its ``ocr_pages.data``; None for a damaged row (the page
    is then recognised again)."""
    try:
        d = json.loads(data)
        return OcrPage(page=page, width=int(d["width"]), height=int(d["height"]),
                       lines=[OcrLine(t, tuple(b), float(sc)) for t, b, sc in d["lines"]],
                       seconds=float(d.get("seconds", 0.0)), engine=engine)
    except (ValueError, KeyError, TypeError):
        return None


def _pending_where(doc_ids: Sequence[int] | None) -> tuple[str, list[Any]]:
    if doc_ids is None:
        return "e.content_hash IS NULL", []
    return ("e.content_hash IS NULL AND p.doc_id IN (SELECT value FROM json_each(?))",
            [json.dumps([int(i) for i in doc_ids])])


def _date_bound(value: str | None, upper: bool) -> str | None:
    """A date filter bound as compared with ``documents.date``: the upper bound gets U+FFFF
    appended, so ``2020`` covers every 2020-xx-xx; lower bounds and full dates pass through."""
    if not value:
        return None
    v = value.strip()
    if upper:
        return v + "\uffff"  # inclusive: 2020 covers 2020-xx-xx, 2020-05 covers 2020-05-xx
    return v


def _filter_where(filters: Filters | None) -> tuple[str, list[Any]]:
    """A WHERE fragment over ``documents d`` for ``filters`` (``1`` when there are none)."""
    if filters is None or filters.is_empty():
        return "1", []
    clauses: list[str] = []
    args: list[Any] = []
    if filters.doc_types:
        clauses.append(f"d.doc_type IN ({','.join('?' * len(filters.doc_types))})")
        args += filters.doc_types
    if filters.issuers:
        sub = []
        for iss in filters.issuers:
            # a substring match: the user's % and _ are literal characters, not wildcards
            sub.append("(d.issuer LIKE ? ESCAPE '\\' OR json_extract(d.extra, '$.speaker') LIKE ? ESCAPE '\\')")
            pattern = "%" + iss.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern, pattern]
        clauses.append("(" + " OR ".join(sub) + ")")
    lo, hi = _date_bound(filters.since, False), _date_bound(filters.until, True)
    if lo:
        clauses.append("d.date >= ?")
        args.append(lo)
    if hi:
        clauses.append("d.date <= ?")
        args.append(hi)
    if filters.doc_ids:
        clauses.append(f"d.id IN ({','.join('?' * len(filters.doc_ids))})")
        args += list(filters.doc_ids)
    if filters.exclude_doc_ids:
        clauses.append(f"d.id NOT IN ({','.join('?' * len(filters.exclude_doc_ids))})")
        args += list(filters.exclude_doc_ids)
    if filters.access:
        clauses.append(f"d.access IN ({','.join('?' * len(filters.access))})")
        args += list(filters.access)
    return " AND ".join(clauses), args


class DamagedDocument(NamedTuple):
    """A stored document that ``verify`` found damaged."""

    id: int
    path: str  # as stored and shown
    reason: str
    root: str | None  # the folder it was ingested from
    file: str  # the file to read it again from (``path``, or its real non-UTF-8 name)
    empty: bool = False  # stored without any passage: holds nothing a reader can find


def file_of(path: str, fs_path: bytes | None) -> str:
    """The file a stored document was read from: its stored path, unless the file's real name
    was not UTF-8 (then ``fs_path`` holds the name's bytes)."""
    return os.fsdecode(bytes(fs_path)) if fs_path else path


def _ids_and_vectors(rows: Sequence[Sequence[Any]], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(id, vector blob) rows as an id array and a (n, dim) float32 matrix."""
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, decode_vectors(b"".join(r[1] for r in rows), dim)


def _document_from_row(row: Sequence[Any]) -> Document:
    (doc_id, path, title, issuer, date, doc_number, masked, doc_type, chash, pages, extra, text, root,
     access) = row
    return Document(
        id=doc_id, path=path, title=title, issuer=issuer, date=date, doc_number=doc_number,
        doc_number_masked=bool(masked), doc_type=doc_type, content_hash=chash,
        pages=json.loads(pages or "[]"), extra=json.loads(extra or "{}"), text=text or "", root=root,
        access=access,
    )


_ACCOUNT_COLS = "name, role, clearance, disabled, source, created, last_login"


def _account_from_row(r: Sequence[Any]) -> Account:
    return Account(name=r[0], role=r[1], clearance=r[2], disabled=bool(r[3]), source=r[4],
                   created=r[5], last_login=r[6])


def _add_functions(conn: sqlite3.Connection) -> None:
    conn.create_function("yw_audit_hash", 8, audit_hash, deterministic=True)


def audit_hash(prev: str, *fields: Any) -> str:
    """The hash of an audit line: SHA-256 of the previous line's hash and this line's fields."""
    h = hashlib.sha256(prev.encode("utf-8"))
    for f in fields:
        h.update(b"\x1f" + str(f).encode("utf-8"))
    return h.hexdigest()


def _passage_from_row(r: Sequence[Any], text: str) -> Passage:
    return Passage(
        id=r[0], doc_id=r[1], seq=r[2], start=r[3], end=r[4], page=r[5], para=r[6] or 0,
        heading_path=json.loads(r[7]), text=text,
    )
