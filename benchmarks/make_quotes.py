"""Build the quote-lookup evaluation set: real sentences, perturbed the way memory does.

Deterministic (seeded). Sentences come from .txt/.md files of ../shared/corpus and the
founding document; each query keeps the source sentence so scoring can check the source.

    python -m benchmarks.make_quotes            # writes benchmarks/eval/quotes.jsonl
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import jieba

from yuanwen.conventions import HAN_UNIFIED

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"
OUT = ROOT / "benchmarks" / "eval" / "quotes.jsonl"

SENT = re.compile(r"(?:(?<=[。！？；\n])|^)[^。！？；\n]{18,70}[。！？；]", re.M)
# Light paraphrase: substitutions drafters make when quoting from memory.
SYNONYMS = [
    ("加强", "强化"), ("推进", "推动"), ("坚持", "始终坚持"), ("进一步", ""), ("切实", ""),
    ("全面", "全方位"), ("深入", "持续"), ("健全", "完善"), ("提高", "提升"), ("各级", ""),
    ("必须", "要"), ("应当", "应该"), ("积极", "大力"), ("建立", "建立健全"), ("不断", "持续"),
]
# Sentences that sound official but are in no document: lookups must say not_found.
NEGATIVES = [
    "要把数字化转型作为推动基层治理现代化的关键抓手，全面提升社区网格员的履职能力。",
    "各单位要在每季度末组织一次消防安全知识竞赛，评选结果纳入年度绩效考核。",
    "坚持以无人机巡检为核心，构建覆盖全域的森林防火立体监测网络体系。",
    "鼓励有条件的高校开设应急管理微专业，培养既懂技术又懂管理的复合型人才。",
    "到2035年，全市公共安全视频监控覆盖率要达到百分之百，重点部位实现智能预警。",
    "要把青年干部派到信访接待一线蹲点锻炼，每人每年不少于三十个工作日。",
    "对连续三年安全生产考核优秀的企业，给予城镇土地使用税减半征收的优惠。",
    "推动建立跨省域的危险化学品运输车辆电子运单互认机制，实现全程可追溯。",
    "各地要结合实际编制老旧小区电动自行车充电设施三年建设规划并向社会公布。",
    "把学习强国平台积分情况作为党员民主评议的重要参考依据。",
]


def sentences_of(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    out = []
    for m in SENT.finditer(text):
        s = m.group().strip("　 ")
        if s[:1] in "，、：）)" or "**" in s or "|" in s or "#" in s or s.count("，") > 6:
            continue
        out.append(s)
    return out


def perturb(s: str, kind: str, rng: random.Random) -> str | None:
    body = s.rstrip("。！？；")
    if kind == "exact":
        return s
    if kind == "drop":  # two or three characters forgotten
        idx = sorted(rng.sample(range(2, len(body) - 2), k=min(3, max(2, len(body) // 15))))
        return "".join(c for i, c in enumerate(body) if i not in idx)
    if kind == "swap":  # two neighbouring words in the other order
        words = list(jieba.cut(body))
        cand = [i for i in range(len(words) - 1) if len(words[i]) > 1 and len(words[i + 1]) > 1]
        if not cand:
            return None
        i = rng.choice(cand)
        words[i], words[i + 1] = words[i + 1], words[i]
        return "".join(words)
    if kind == "fragment":  # a part of the sentence, 10-20 characters
        n = rng.randint(10, min(20, len(body) - 2))
        start = rng.randint(0, len(body) - n)
        frag = body[start : start + n]
        return frag if len(re.findall(f"[{HAN_UNIFIED}]", frag)) >= 9 else None
    if kind == "paraphrase":  # one or two synonyms, and a changed character
        out, hits = body, 0
        for a, b in rng.sample(SYNONYMS, len(SYNONYMS)):
            if a in out and hits < 2:
                out = out.replace(a, b, 1)
                hits += 1
        if hits == 0:
            return None
        return out
    raise ValueError(kind)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def main() -> None:
    rng = random.Random(20261129)
    files = sorted(p for p in SHARED.rglob("*") if p.suffix in (".txt", ".md") and p.name != "CORPUS.md")
    files.append(ROOT / "corpus" / "000_dc0b083f46e91fc1.txt")
    texts = [_squash(f.read_text(encoding="utf-8", errors="replace")) for f in files]

    def ambiguous(query: str, source: str) -> bool:
        """A fragment that also occurs where its source sentence does not: no single answer."""
        q, s = _squash(query), _squash(source)
        return any(q in t and s not in t for t in texts)

    rng.shuffle(files)
    kinds = ["exact", "drop", "swap", "fragment", "paraphrase"]
    rows, used = [], set()
    per_kind = 20
    counts = {k: 0 for k in kinds}
    for f in files * 3:
        sents = [s for s in sentences_of(f) if s not in used]
        if not sents:
            continue
        s = rng.choice(sents)
        todo = [k for k in kinds if counts[k] < per_kind]
        if not todo:
            break
        kind = rng.choice(todo)
        q = perturb(s, kind, rng)
        if not q or q == s and kind != "exact" or ambiguous(q, s):
            continue
        used.add(s)
        counts[kind] += 1
        rel = f.relative_to(SHARED).as_posix() if SHARED in f.parents else "corpus/" + f.name
        rows.append({"id": f"t{len(rows) + 1:03d}", "query": q, "kind": kind, "file": rel,
                     "source": s, "expect": "exact" if kind in ("exact", "fragment") else "close"})
    for i, neg in enumerate(NEGATIVES):
        rows.append({"id": f"n{i + 1:03d}", "query": neg, "kind": "negative", "file": None,
                     "source": None, "expect": "not_found"})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} quotes -> {OUT} ({counts}, negatives {len(NEGATIVES)})")


if __name__ == "__main__":
    main()
