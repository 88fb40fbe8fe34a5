"""The way in: reading files (txt, md, html, docx, pdf), segmentation, metadata and the ingest pipeline."""
