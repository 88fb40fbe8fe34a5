"""Old home of the readers and the ``read_file`` dispatcher, kept so existing imports work.

The readers live in :mod:`ingest.readers` (one module per format, and the registry that
dispatches). The names below are re-exported from there; the limits are copies, so set a
reader's limit in its own module (``ingest.readers.docx.DOCX_MAX_PART_XML``), not here.
"""

from __future__ import annotations

from .readers import (
    DEFAULT_MAX_BYTES, DEFAULT_MAX_CHARS, SUPPORTED_SUFFIXES, TEXT_MAX_BYTES, check_file, read_bytes,
    read_file,
)
from .readers.docx import (
    DOCX_MAX_DOCUMENT_XML, DOCX_MAX_PART_XML, DOCX_MAX_RATIO, DOCX_MAX_UNCOMPRESSED, DOCX_RATIO_MIN_SIZE,
    read_docx_bytes,
)
from .readers.html import HTML_MAX_EVENTS, read_html_bytes
from .readers.markdown import read_md_bytes
from .readers.txt import join_split_lines, read_txt_bytes
from .walk import iter_files, os_reason, special_file_kind  # the walk lives in walk.py

__all__ = [
    "SUPPORTED_SUFFIXES", "read_file", "check_file", "read_bytes", "iter_files", "join_split_lines",
    "read_txt_bytes", "read_md_bytes", "read_html_bytes", "read_docx_bytes", "os_reason",
    "special_file_kind", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_CHARS", "TEXT_MAX_BYTES",
    "DOCX_MAX_UNCOMPRESSED", "DOCX_MAX_RATIO", "DOCX_RATIO_MIN_SIZE", "DOCX_MAX_DOCUMENT_XML",
    "DOCX_MAX_PART_XML", "HTML_MAX_EVENTS",
]
