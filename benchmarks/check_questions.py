"""Check an evaluation question file before it is used: schema, snippets, paraphrase.

    python -m benchmarks.check_questions --kb KB [FILE ...]   (default: eval/questions.jsonl)

For each question it checks that
- the fields are there and well formed (``id``, ``query``, ``kind`` in question/keyword,
  ``user`` in study/drafter/trainer, ``neighbour`` a bool, 1-3 ``relevant`` entries);
- every ``contains`` snippet (8-40 characters) occurs in the stored text of its ``file``
  (whitespace and width ignored, as the evaluation judges hits);
- the query is a paraphrase: it shares no run of 8 or more characters with the text within
  250 characters of any of its snippets;
- ids are unique across all the files given.

The knowledge base must hold ``../shared/corpus`` and ``corpus/`` (as for ``evaluate``). It
is only read: nothing is searched, so a question writer can check without seeing rankings.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from yuanwen.config import Config
from yuanwen.kb import KnowledgeBase
from yuanwen.text import fold_map

from .evaluate import EVAL, Judge

USERS = {"study", "drafter", "trainer"}
KINDS = {"question", "keyword"}
RUN = 8
WINDOW = 250


def _shared_run(query: str, text: str, n: int = RUN) -> str | None:
    """A run of ``n`` characters of ``query`` that also occurs in ``text`` (folded), if any."""
    q, _ = fold_map(query)
    t, _ = fold_map(text)
    for i in range(len(q) - n + 1):
        if q[i : i + n] in t:
            return q[i : i + n]
    return None


def problems(judge: Judge, q: dict) -> list[str]:
    """What is wrong with one question (empty: nothing)."""
    out = []
    for key in ("id", "query", "kind", "user", "neighbour", "relevant", "note"):
        if key not in q:
            out.append(f"missing field {key!r}")
    if out:
        return out
    if q["kind"] not in KINDS:
        out.append(f"kind {q['kind']!r} not in {sorted(KINDS)}")
    if q["user"] not in USERS:
        out.append(f"user {q['user']!r} not in {sorted(USERS)}")
    if not isinstance(q["neighbour"], bool):
        out.append("neighbour must be true or false")
    if not 1 <= len(q["relevant"]) <= 3:
        out.append("relevant must list 1-3 entries")
    for r in q["relevant"]:
        snippet, file = r.get("contains", ""), r.get("file", "")
        if not 8 <= len(snippet) <= 40:
            out.append(f"snippet {snippet!r} is {len(snippet)} characters (8-40)")
        ids = judge.doc_ids(file)
        if not ids:
            out.append(f"file {file!r} is not in the knowledge base")
            continue
        spans = [(d, s) for d in ids for s in judge.spans(d, snippet)]
        if not spans:
            out.append(f"snippet {snippet!r} not found in {file}")
        for doc_id, (s, e) in spans:
            text = judge.kb.store.get_document(doc_id).text
            run = _shared_run(q["query"], text[max(0, s - WINDOW) : e + WINDOW])
            if run:
                out.append(f"query copies {run!r} from the text near its snippet in {file}")
                break
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", required=True)
    ap.add_argument("files", nargs="*", default=[str(EVAL / "questions.jsonl")])
    args = ap.parse_args(argv)
    judge = Judge(KnowledgeBase(Config(kb_dir=Path(args.kb)), readonly=True))
    seen: dict[str, str] = {}
    bad = total = 0
    for f in args.files:
        for n, line in enumerate(Path(f).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            total += 1
            try:
                q = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"{f}:{n}: not JSON ({e})")
                bad += 1
                continue
            found = problems(judge, q)
            if q.get("id") in seen:
                found.append(f"id {q['id']} also in {seen[q['id']]}")
            seen.setdefault(q.get("id"), f"{f}:{n}")
            for p in found:
                print(f"{f}:{n} {q.get('id')}: {p}")
            bad += bool(found)
    print(f"{total} questions, {bad} with problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
