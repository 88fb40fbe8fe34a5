"""How results are put into words and marks, written once for the CLI and the app.

The labels users read (quote verdicts, ingest outcomes), the ingest summary sentence, term
marking and quote-diff rendering. Each renderer takes the markup to put around the pieces
and the escape function to apply to the text itself (``html.escape`` for the app, none for
the terminal), so both front ends show the same thing in their own medium.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from yuanwen.conventions import page_ranges
from yuanwen.models import DiffOp, Hit, IngestReport, QuoteMatch
from yuanwen.uploads import UPLOAD_DIR

from .api import highlight_spans

VERDICT_LABELS = {"exact": "原文一致", "close": "有出入", "not_found": "未找到"}
# The ranking signals of a hit (search.retrieve.Candidate), as --explain names them.
SIGNAL_LABELS = {"semantic": "语义", "keyword": "关键词", "title": "标题点名", "understood": "识别加权",
                 "document": "同文档", "cosine": "余弦相似度", "bm25": "BM25"}
_PARTS = ("semantic", "keyword", "title", "understood", "document")


def explain(hit: Hit) -> str:
    """One line: what the hit's score is made of, e.g. ``语义 0.52 + 关键词 0.31 + 标题点名 0.20 =
    1.03（余弦相似度 0.912，BM25 12.3）``."""
    parts = [(k, v) for k, v in hit.signals.items() if k in _PARTS and v]
    raw = [(k, v) for k, v in hit.signals.items() if k not in _PARTS]
    line = " + ".join(f"{SIGNAL_LABELS[k]} {v:.2f}" for k, v in parts)
    if parts:
        line += f" = {hit.score:.2f}"
    extra = "，".join(f"{SIGNAL_LABELS.get(k, k)} {v:.3f}" if k == "cosine" else f"{SIGNAL_LABELS.get(k, k)} {v:.1f}"
                     for k, v in raw)
    if hit.similarity is not None and "cosine" not in hit.signals:
        extra = "，".join(x for x in (extra, f"余弦相似度 {hit.similarity:.3f}") if x)
    extra = "，".join(x for x in (extra, f"覆盖 {hit.coverage:.0%}") if x)
    return (line + f"（{extra}）") if line else extra


# Said above weak hits (search.confidence), and when no hit has strong evidence.
WEAK_NOTE = "以下结果相关度较低，仅供参考："
NOT_FOUND_NOTE = "没有找到明显相关的内容。下面是最接近的结果，相关度较低；可以换个说法，或放宽筛选条件。"
# Above the wordings that come near a quote that was not found.
SIMILAR_NOTE = "知识库中没有这段话。以下是相近的表述，不是它的出处，仅供参考："
STATUS_LABELS = {"added": "新增", "updated": "更新", "unchanged": "未变", "duplicate": "重复",
                 "failed": "失败", "pruned": "删除"}

Escape = Callable[[str], str]

# How each kind of diff step is written: ``{original}`` and ``{quote}`` are the (escaped) texts.
TEXT_DIFF: Mapping[str, str] = {
    "equal": "{original}",
    "missing": "[-{original}-]",
    "added": "{{+{quote}+}}",
    "changed": "[~{quote}→{original}~]",
}
HTML_DIFF: Mapping[str, str] = {
    "equal": "{original}",
    "missing": '<span class="yw-missing" title="原文有而引文缺">{original}</span>',
    "added": '<span class="yw-added" title="引文多出">{quote}</span>',
    "changed": ('<span class="yw-changed" title="引文作：{quote}">{original}'
                '<span class="yw-quote">〔引文作“{quote}”〕</span></span>'),
}


def _same(text: str) -> str:
    return text


def ingest_summary(report: IngestReport, stopped: bool = False, refused: int = 0) -> str:
    """The one sentence that sums up an ingest: 完成：新增 … 篇，…，删除 … 篇.

    ``refused`` counts files turned away before the ingest (uploads too large, say) as failed.
    """
    c = report.count
    return (
        f"{'中断' if stopped else '完成'}：新增 {c('added')} 篇，更新 {c('updated')} 篇，"
        f"未变 {c('unchanged')} 篇，重复 {c('duplicate')} 篇，失败 {c('failed') + refused} 篇，"
        f"删除 {c('pruned')} 篇"
    )


def confidence_pct(confidence: float | None) -> str:
    """An OCR confidence (0..1) as a percentage, rounded down (99.96% is not "100.0%")."""
    return f"{int((confidence or 0.0) * 1000) / 10:.1f}%"


def mark_terms(text: str, terms: Sequence[str], before: str, after: str,
               escape: Escape = _same) -> str:
    """``text`` with each of ``terms`` (matched width-insensitively) between ``before`` and
    ``after``. Matches are found on the raw text and each piece is escaped on its own, so no
    term can match inside an entity."""
    out, pos = [], 0
    for s, e in highlight_spans(text, list(terms)):
        out.append(escape(text[pos:s]))
        out.append(f"{before}{escape(text[s:e])}{after}")
        pos = e
    out.append(escape(text[pos:]))
    return "".join(out)


def render_diff(diff: Sequence[DiffOp], markup: Mapping[str, str] = TEXT_DIFF,
                escape: Escape = _same) -> str:
    """The diff from a quote to the original, each step written with ``markup``."""
    return "".join(markup.get(op.kind, markup["changed"]).format(
        original=escape(op.original), quote=escape(op.quote)) for op in diff)


def render_match(match: QuoteMatch, markup: Mapping[str, str] = TEXT_DIFF,
                 escape: Escape = _same, mark: str = "{text}") -> str:
    """The original sentence(s) of a quote match with the differences from the quote marked
    (see :func:`render_diff`); for an exact match (or one without a diff) the matched span is
    written with ``mark`` instead. Text outside the matched span is only escaped."""
    text = match.text
    a = max(0, match.match_start - match.start)
    b = max(a, min(len(text), match.match_end - match.start))
    if match.exact or not match.diff:
        middle = mark.format(text=escape(text[a:b]))
    else:
        middle = render_diff(match.diff, markup, escape)
    return escape(text[:a]) + middle + escape(text[b:])


def display_path(path: str, root: str | None, kb_dir: Path) -> str:
    """Where a document came from, as users see it: relative to the folder it was ingested
    from (``root``), else to the knowledge base's uploads folder, else its parent folder and
    file name. Never the server's absolute path."""
    import os

    def parts(p: str) -> list[str]:
        return [x for x in re.split(r"[\\/]", p) if x]

    doc = parts(path)
    bases = [root] if root else []
    bases += [os.path.abspath(kb_dir / UPLOAD_DIR), str(Path(kb_dir, UPLOAD_DIR).resolve())]
    for base in bases:
        b = parts(base)
        if len(doc) > len(b) and doc[: len(b)] == b:
            return "/".join(doc[len(b):])
    return "/".join(doc[-2:])
