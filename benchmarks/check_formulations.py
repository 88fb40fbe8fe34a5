"""Check the 提法 glossary (``yuanwen/data/formulations.tsv``) against a knowledge base of
``../shared/corpus``: for each entry, the earliest document whose text holds its full wording,
so the sources the glossary names can be checked (and chosen) from the documents themselves.

    python -m benchmarks.check_formulations --kb bench_work/eval_kb
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.vocab import formulations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True)
    a = ap.parse_args()
    kb = KnowledgeBase(Config(kb_dir=Path(a.kb)), readonly=True)
    docs = sorted(kb.store.documents(), key=lambda d: (d.date or "9999", d.id or 0))
    texts = {d.id: re.sub(r"\s+", "", kb.store.get_document(d.id).text) for d in docs}
    found = 0
    for f in formulations():
        full = re.sub(r"\s+", "", f.full)
        first = next((d for d in docs if full in texts[d.id]), None)
        found += first is not None
        where = f"{first.title}（{first.date}）" if first else "（不在知识库中）"
        mark = "=" if first and f.source == where else ("~" if first else " ")
        print(f"{mark} {f.term}: {where}")
    print(f"{found} of {len(formulations())} full wordings are in the knowledge base "
          "(=: the glossary names that document; ~: it names another)")


if __name__ == "__main__":
    main()
