"""Run the ``yuanwen`` CLI and SIGKILL it at one chosen point inside the store stage.

``python -m tests.crashpoint POINT [N] -- yuanwen-args...`` patches the store so that the
process kills itself (as a power cut would: no cleanup, no rollback in Python) at POINT, the
N-th time it is reached (default 1). The points:

- ``before_passages``: a new document's row is written, its passages not yet
- ``mid_passages``: after N passages' FTS terms were computed (N passages inserted)
- ``after_passages``: every passage and sentence inserted, the transaction not yet committed
- ``after_commit``: the N-th document committed, the next not yet begun
- ``replace``: while the rows of a document being replaced (or pruned) are deleted
- ``alias``: while a path is recorded as an alias of an identical text
- ``embed``: after the N-th batch of vectors was committed
- ``embed_inflight``: ``ingest --workers N`` only: the N-th chunk just handed to a worker
  process, others in flight and not yet committed (the workers must die with the main process)
"""

from __future__ import annotations

import os
import signal
import sys

from yuanwen import store as store_mod


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(n: int):
    count = {"n": 0}

    def hit() -> None:
        count["n"] += 1
        if count["n"] >= n:
            _die()

    return hit


def install(point: str, n: int = 1) -> None:
    """Patch ``yuanwen.store`` so that the process dies at ``point``."""
    S = store_mod.Store
    hit = _after(n)
    if point == "before_passages":
        orig = S._insert_passages
        S._insert_passages = lambda self, *a, **k: (hit(), orig(self, *a, **k))[1]
    elif point == "mid_passages":
        orig_hash = store_mod.content_hash  # hashed once per passage as it is inserted
        store_mod.content_hash = lambda text: (hit(), orig_hash(text))[1]
    elif point == "after_passages":
        orig = S._insert_passages
        S._insert_passages = lambda self, *a, **k: (orig(self, *a, **k), hit())[0]
    elif point == "after_commit":
        orig = S.save_document
        S.save_document = lambda self, *a, **k: (orig(self, *a, **k), hit())[0]
    elif point == "replace":
        orig = S._delete_document_rows

        def deleting(self, doc_id):
            self.db.conn.execute("DELETE FROM sentences WHERE doc_id = ?", [doc_id])  # half done
            hit()
            return orig(self, doc_id)

        S._delete_document_rows = deleting
    elif point == "alias":
        orig_alias = S.add_alias

        def aliasing(self, doc_id, alias, replaced_doc_id=None):
            with self.transaction():
                self.db.conn.execute("UPDATE documents SET extra = '{}' WHERE id = ?", [doc_id])
                hit()
                orig_alias(self, doc_id, alias, replaced_doc_id)

        S.add_alias = aliasing
    elif point == "embed":
        orig = S.save_vectors
        S.save_vectors = lambda self, *a, **k: (orig(self, *a, **k), hit())[0]
    elif point == "embed_inflight":
        from yuanwen.ingest import embed_workers

        P = embed_workers.EmbedPool
        orig_submit = P.submit
        P.submit = lambda self, *a, **k: (orig_submit(self, *a, **k), hit())[0]
    else:
        raise SystemExit(f"unknown crash point {point}")


def main(argv: list[str]) -> None:
    sep = argv.index("--")
    point, *rest = argv[:sep]
    install(point, int(rest[0]) if rest else 1)
    from yuanwen.cli import main as cli_main

    sys.argv = ["yuanwen", *argv[sep + 1:]]
    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])
