"""Large collections for the scaling benchmarks, made by resampling real sentences.

Each synthetic document is a plain-text file shaped like the corpus: a title taken from a real
document (with a number, so titles stay distinct), numbered sections (一、 二、 …) with real
headings, and paragraphs of 2-6 real sentences drawn at random from the shared corpus, then a
date line. The files go through the normal ingest, so segmentation, storage and the keyword
index are measured as users would meet them; only the vectors are stand-ins (random unit
vectors, see :mod:`benchmarks.workload`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from yuanwen.conventions import CN_SMALL
from yuanwen.store import Store

_CN = CN_SMALL


def source_material(kb_dir: Path) -> dict:
    """Sentences, headings, titles and the mean passage length of a (store-only) knowledge base."""
    store = Store(Path(kb_dir), readonly=True)
    try:
        sentences = [s.strip() for s in store.sentence_texts()]
        sentences = [s for s in sentences if len(s) >= 8 and "\n" not in s and not _is_heading(s)]
        heads: set[str] = set()
        for hp in store.distinct_heading_paths():
            for h in hp:
                m = re.match(rf"^[{_CN}]+、(.{{4,30}})$", h)
                if m:
                    heads.add(m.group(1))
        titles = [t for _, t in store.titles() if t]
        mean = store.mean_passage_chars() or 150.0
    finally:
        store.close()
    return {"sentences": sentences, "headings": sorted(heads), "titles": titles, "passage_chars": float(mean)}


def _is_heading(s: str) -> bool:
    return bool(re.match(rf"^(第[{_CN}百零]+[编章节条部分]|[{_CN}]+、|（[{_CN}]+）)", s))


def _document(rng: np.random.Generator, material: dict, number: int, body_chars: float) -> tuple[str, int]:
    """One synthetic document's text and its body length in characters."""
    sents, heads, titles = material["sentences"], material["headings"], material["titles"]
    lines = [f"{titles[rng.integers(len(titles))]}（汇编第{number}号）", ""]
    body = sec = 0
    while body < body_chars:
        if body == 0 or rng.random() < 0.15:
            lines.append(f"{_CN[sec % 10]}、{heads[rng.integers(len(heads))]}")
            sec += 1
        para = "".join(sents[i] for i in rng.integers(0, len(sents), int(rng.integers(2, 7))))
        lines.append(para)
        body += len(para)
    y, m, d = int(rng.integers(1990, 2026)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    lines += ["", f"{y}年{m}月{d}日"]
    return "\n".join(lines) + "\n", body


def one_document(material: dict, seed: int, passages: int = 60) -> str:
    """The text of one more synthetic document (about ``passages`` passages)."""
    text, _ = _document(np.random.default_rng(seed + 12345), material, 999_999, passages * material["passage_chars"])
    return text


def chars_per_passage(material: dict, docs: int = 40) -> float:
    """Body characters per passage that the segmenter makes of synthetic documents."""
    from yuanwen.ingest.segment import segment

    rng = np.random.default_rng(99)
    chars = passages = 0
    for i in range(docs):
        text, body = _document(rng, material, i, 60 * material["passage_chars"])
        chars += body
        passages += len(segment(text)[0])
    return chars / max(passages, 1)


def make_collection(material: dict, out_dir: Path, passages: int, seed: int = 0,
                    passages_per_doc: int = 60, files_per_folder: int = 1000) -> dict:
    """Write about ``passages`` passages' worth of synthetic documents under ``out_dir``
    (``material["passage_chars"]``: body characters per passage, see :func:`chars_per_passage`)."""
    rng = np.random.default_rng(seed)
    target_chars = passages * material["passage_chars"]
    per_doc = passages_per_doc * material["passage_chars"]
    written = chars = docs = 0
    while chars < target_chars:
        text, body = _document(rng, material, docs + 1, per_doc)
        folder = out_dir / f"{docs // files_per_folder:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc{docs:07d}.txt").write_text(text, encoding="utf-8")
        written += len(text.encode("utf-8"))
        chars += body
        docs += 1
    return {"documents": docs, "bytes": written, "chars": chars}
