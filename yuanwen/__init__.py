"""原文 (yuanwen): a knowledge base with semantic search over Chinese policy documents.

One import namespace, ``yuanwen``:

- ``yuanwen.library``: the façade (:func:`yuanwen.library.open_kb`) that the front ends use;
- ``yuanwen.ingest`` (the top-level ``ingest/`` folder): read, normalise, segment, store, embed;
- ``yuanwen.search`` (the top-level ``search/`` folder): retrieve, quote, cite, pack, export;
- ``yuanwen.cli`` (the top-level ``cli/`` folder): the ``yuanwen`` command, a front end;
- the rest of this package is the core both ways share: data model, configuration, errors,
  the storage backend, embedders and indexes.

An installed 原文 (a wheel) has those folders inside this package. In a source checkout they
sit beside it, where the project's layout puts them; :class:`_SourceCheckout` maps the names
onto them, so both import the same way and ``import ingest`` or ``import search`` is never
needed (nor, when installed, possible).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

#: Subpackages that live in top-level folders of a source checkout (name -> folder).
SUBPACKAGE_FOLDERS = {"yuanwen.ingest": "ingest", "yuanwen.search": "search", "yuanwen.cli": "cli"}


class _SourceCheckout(importlib.abc.MetaPathFinder):
    """Finds ``yuanwen.ingest``, ``yuanwen.search`` and ``yuanwen.cli`` in the folders beside
    this package; their submodules are then found the usual way, through the package's
    ``__path__``. The equivalent of setuptools' ``package-dir`` mapping, for a checkout."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001 - importlib's signature
        folder = SUBPACKAGE_FOLDERS.get(fullname)
        if folder is None:
            return None
        init = self.root / folder / "__init__.py"
        if not init.is_file():
            return None
        return importlib.util.spec_from_file_location(
            fullname, init, submodule_search_locations=[str(init.parent)])


def _map_source_checkout() -> None:
    here = Path(__file__).resolve().parent
    if (here / "ingest" / "__init__.py").is_file():
        return  # installed: the subpackages are inside this package
    if not any(isinstance(f, _SourceCheckout) and f.root == here.parent for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceCheckout(here.parent))


_map_source_checkout()
