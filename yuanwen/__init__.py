"""原文 (yuanwen): a knowledge base with semantic search over Chinese policy documents.

The library API lives in the ``ingest`` and ``search`` packages; this package holds what
both share: the data model, configuration, errors, the SQLite store, embedders and the
vector index. The CLI (``yuanwen.cli``) and ``app.py`` are thin layers over it.
"""

__version__ = "0.1.0"
