"""Old home of the PDF reader, kept so existing imports work: it lives in
:mod:`ingest.readers.pdf` (limits included; set them there, these are copies)."""

from __future__ import annotations

from .readers.pdf import MAX_PAGE_CHARS, TIME_BUDGET_S, page_list, read_pdf, repair_pdf_pages

__all__ = ["read_pdf", "repair_pdf_pages", "page_list", "MAX_PAGE_CHARS", "TIME_BUDGET_S"]
