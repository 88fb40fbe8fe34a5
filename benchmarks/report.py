"""docs/benchmarks.md and its plots, from the results of one ``python -m benchmarks`` run."""

from __future__ import annotations

import json
from pathlib import Path

MODES = ("keyword", "semantic", "hybrid", "quote")
MB = 1024 * 1024


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def _size(b: float) -> str:
    return f"{b / MB / 1024:.2f} GiB" if b >= 1024 * MB else f"{b / MB:.0f} MiB"


def _ok(met: bool) -> str:
    return "**met**" if met else "**not met**"


def _save_loglog(fig, ax, path: Path, ylabel: str, title: str) -> str:
    """Log-log axes against passages, legend and grid; the figure saved and closed."""
    import matplotlib.pyplot as plt

    ax.set(xscale="log", yscale="log", xlabel="passages", ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plots(res: dict, folder: Path) -> list[str]:
    """Latency and memory against collection size, and ours against the peers (PNG files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    rows = [(int(k), v) for k, v in sorted(res["sizes"].items(), key=lambda kv: int(kv[0]))]
    xs = [v["latency"]["passages"] for _, v in rows]
    names = []

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for mode in MODES:
        ax.plot(xs, [v["latency"]["modes"][mode]["p50_ms"] for _, v in rows], "o-", label=f"{mode}")
    if all("latency_fts" in v for _, v in rows):  # runs before schema 9 measured the FTS5 path too
        for mode in ("keyword", "hybrid", "quote"):
            ax.plot(xs, [v["latency_fts"]["modes"][mode]["p50_ms"] for _, v in rows], "x--", alpha=0.6,
                    label=f"{mode}, FTS5 path (before)")
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    names.append(_save_loglog(fig, ax, folder / "latency.png", "p50 latency (ms)",
                              "Query latency against collection size"))

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(xs, [v["latency"]["peak_rss_mb"] for _, v in rows], "o-", label="search process, peak RSS")
    ax.plot(xs, [max(v["store"]["peak_rss_mb"], v["vectors"]["peak_rss_mb"]) for _, v in rows], "s-",
            label="ingest, peak RSS")
    ax.plot(xs, [v["vectors"]["db_bytes"] / MB for _, v in rows], "^--", label="SQLite on disk")
    ax.plot(xs, [v["vectors"]["index_bytes"] / MB for _, v in rows], "v--", label="FAISS on disk")
    ax.plot(xs, [v["store"]["keyword_bytes"] / MB for _, v in rows], "d--", label="keyword index on disk")
    names.append(_save_loglog(fig, ax, folder / "memory.png", "MiB", "Memory and disk against size"))

    peers = [(n, v["peers"]) for n, v in rows if "peers" in v]
    if peers:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        labels, vals = [], []
        for n, p in peers:
            for key, label in (("ours_keyword", "ours keyword"), ("bm25s", "bm25s"),
                               ("ours_hybrid", "ours hybrid"), ("txtai", "txtai hybrid")):
                if key in p:
                    labels.append(f"{label}\n{n // 1000}k")
                    vals.append(p[key]["p50_ms"])
        ax.bar(range(len(vals)), vals, color=["C0", "C1", "C2", "C3"] * len(peers))
        ax.set_xticks(range(len(vals)), labels, fontsize=7)
        ax.set(ylabel="p50 latency (ms)", title="Ranking latency: ours and the peers, same passages")
        fig.tight_layout()
        fig.savefig(folder / "peers.png", dpi=110)
        names.append("peers.png")
        plt.close(fig)
    return names


DISK_READING = (
    "**What changed (issue 16, 7b).** The text was stored four times over: `documents.text`, "
    "`passages.text`, `sentences.text` and, as bigram terms, the FTS5 content; and the keyword side "
    "twice, in FTS5 and in the eager index with two sets of precomputed scores. Now the text is "
    "stored once, in `documents.text`: migration 6 made sentences, and migration 7 passages, offsets "
    "into it (verify has always checked that they agree; a passage's stored hash now checks its "
    "offsets), and migration 7 made the FTS5 table contentless (`content=''`): it keeps its postings, "
    "and a row is deleted by telling FTS5 the terms it was indexed with, computed again from the "
    "passage. The eager index keeps term frequencies (one byte a column) instead of two float32 "
    "scores a posting, and computes the few posting lists a query needs. Searches, quotes and "
    "scores are unchanged (`tests/test_verify.py::test_migration_7_keeps_the_text_once`; on the "
    "shared corpus, the old code and the new gave the same top 10, scores, verdicts and sources for "
    "seven questions and three quotes).\n\n"
    "**What it costs.** A passage's text is now cut from its document's, so a search reads the "
    "documents of its 50 candidates (about 1.3 ms at 100k passages); keyword scores are computed per "
    "query (up to 1 ms more); and the HNSW graph's vectors are read from SQLite when the index is "
    "opened. At 100k passages (`python -m benchmarks.worker latency` on the two collections above, "
    "before and after alternately, twice, p50): keyword search 3.7 / 3.8 → 5.9 / 5.2 ms, semantic "
    "5.6 / 6.4 → 8.0 / 7.0 ms, hybrid 9.9 / 8.4 → 11.2 / 11.1 ms, quote lookup 12.0 / 9.5 → 12.2 / "
    "13.1 ms; opening the knowledge base with both indexes 0.48 / 0.41 → 1.20 / 0.80 s, and the peak "
    "memory after opening 323 → 368 MiB. Reading only the candidates' places and the hits' texts "
    "(`passage_heads`, in a later change) took keyword search back to 3.6 ms and hybrid from 14.5 / "
    "20.3 to 12.0 / 15.9 ms in a run beside CI (noisy). At 985,936 passages the graph's vectors take "
    "8-15 s to read from SQLite on open (a scan of the vectors, each text's passages found by the "
    "hash index), where reading the 1.67 GiB file with them inside took a few seconds: the app opens "
    "once, a command-line search pays it each time. Migration 7 rewrites the FTS5 table (2 s for the shared "
    "corpus; minutes at a million passages) and gives the freed pages back with VACUUM when they are "
    "over a quarter of the file.\n\n"
    "**The vectors, stored once.** They were kept twice: in the `embeddings` table (the record, "
    "from which FAISS is rebuilt) and in the FAISS file. The exact index (up to 20,000 vectors) is "
    "no longer saved: it is built from SQLite on open (about 0.2 s at 20,000 vectors, 0.7-0.9 s at 98,660). The HNSW file "
    "keeps the graph and the id map, with a one-byte placeholder a vector where FAISS keeps the "
    "vectors; on open the vectors are read from SQLite straight into FAISS's memory in the graph's "
    "order (`yuanwen/index.py`): 170.9 MiB became 26.5 MiB at 100k passages (opening: above). "
    "Searches are unchanged: the same vectors in the same graph (`tests/test_index.py`).\n\n"
    "**Half vectors and three-byte postings (schema 8, keyword index format 4).** The vectors are "
    "stored as 16-bit floats (migration 8 rewrites the table; searches widen them to float32 in "
    "memory): 768 bytes a vector instead of 1,536, and five rows to a 4 KiB page instead of two, "
    "so the table went from 3.6x to 1.4x the text. A unit vector's components keep 11 significant "
    "bits, which moves a cosine score by under 2e-4 (`tests/test_verify.py::"
    "test_half_float_vectors_rank_as_float32_ones_do`); verify's unit-length check still holds "
    "(tolerance 1e-3). The eager index keeps, per posting, the gap from the list's previous "
    "passage in 16 bits and a one-byte code for the (text, heading, title) frequencies, a row of a "
    "table of the distinct triples (143 at 100k passages); the few that do not fit (1,659 gaps of "
    "65,535 or more among 17.2 million postings, no codes) are kept apart and put back when a list "
    "is read. 119.7 MiB became 54.0 MiB at 100k passages, with the same top 50 and scores for ten "
    "questions, keyword and quote-candidate scoring alike; scoring a query took 1.35 ms against "
    "1.26 ms (p50, the two formats alternately in one process). Format-3 files are not read: the "
    "next writer builds the index again, and readers index the passages in memory meanwhile.\n\n"
    "**One keyword index (schema 9).** The keyword side was kept twice: FTS5's postings (1.4x the "
    "text) and the eager index, which gave FTS5's scores faster. FTS5 still scored the passages "
    "newer than the eager index and served while it was missing. Now the eager index is the only "
    "one (migration 9 drops the FTS5 table): the passages stored since it was saved are indexed in "
    "memory, a segment per change (neighbouring segments of like size are indexed again as one, as "
    "a binary counter carries), and every segment is scored with the statistics of all of them "
    "together, which are FTS5's own when nothing was deleted (`tests/test_bm25.py` compares them "
    "with an FTS5 table built in the test from the same rows, new passages included). A deleted "
    "passage keeps its share of the statistics until the index is built again, which an ingest does "
    "when more than 2% of the passages changed (always below 50k passages); its hits are dropped as "
    "before. Without the index files (damaged or deleted) a reader indexes every passage in memory "
    "and verify notes it; `verify --repair` or the next ingest saves them again. The candidates of "
    "an exact phrase (提法演变) come from intersecting the phrase's posting lists, a superset that "
    "the text scan then checks.\n\n"
    "**What schemas 8 and 9 cost.** At 98,660 passages (`python -m benchmarks.worker latency`: the "
    "code before them on its own schema-7 build of the same collection, and this code on schema 9, "
    "alternately, twice, p50, beside other jobs, so noisy): keyword search 8.1 / 3.4 → 7.3 / 4.2 ms, "
    "semantic 17.0 / 10.8 → 15.9 / 9.4 ms, hybrid 24.0 / 19.8 → 19.8 / 16.1 ms, quote lookup 15.2 / "
    "14.3 → 18.6 / 13.0 ms; opening 1.39 / 0.70 → 1.69 / 0.64 s; peak memory after opening 410 → "
    "392 MiB. Indexing the newest passages in memory runs at 5,000-6,000 passages a second (0.33 s "
    "for the newest 2% of 100k passages, 1.9 s for 10%), and a segment beside the saved index adds "
    "about 0.1 ms to scoring a query (1.39 → 1.51 ms). At a million passages a reader pays about "
    "4 s, once, for the 2% an ingest may leave unsaved, and about 3 minutes if the index files are "
    "gone; with them, the keyword index opens in 0.22 s there, and the graph with its 16-bit "
    "vectors in 6.4-8.5 s (8-15 s with float32). Storing is faster without FTS5 to update: the "
    "shared corpus (`ingest --no-embed`, alternately, twice) stored at 1,330 / 1,349 passages a "
    "second before and 1,671 / 1,703 now, and its keyword index took 2.3 s to build either way.\n\n"
    "**5x, reached.** The whole folder went from 18.5x to 4.7x the raw text at 100k passages (993.2, "
    "509.2, 328.1, then 251.6 MiB), and from 19.4x to 4.7x at 985,936 passages (10.18, 4.90, then 2.45 GiB); the shared corpus "
    "without vectors from 12.9x to 3.2x. What is left at 100k: the vectors 1.4x, the text itself "
    "1.0x, the keyword index 1.0x, the graph's links 0.5x, and passages, sentences and SQL indexes "
    "0.8x. 8-bit vectors (SQ8, Recall@10 0.984 in *Choosing the approximate vector index*) would "
    "take another 0.7x, with a loss of precision that the quality figures have not been measured "
    "with; not done.\n")



def write(res: dict, out: Path) -> None:
    """Write ``out`` (Markdown) and its plots beside it, under ``benchmarks/``."""
    pics = plots(res, out.parent / "benchmarks")
    m = res["machine"]
    sizes = sorted(res["sizes"].items(), key=lambda kv: int(kv[0]))
    L: list[str] = []
    w = L.append
    w("# Benchmarks: speed, memory and quality\n")
    w(f"Generated by `{res['command']}` on {res['started']} in {res['total_s'] / 60:.1f} minutes"
      f"{' (quick mode)' if res['quick'] else ''}. Every figure below comes from that one run; the raw "
      "figures are in `benchmarks.json` beside this file.\n")
    w(f"**Machine:** {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['os']}; Python {m['python']}, "
      f"SQLite {m['sqlite']}, FAISS {m['faiss']}.\n")

    # -- targets --------------------------------------------------------------------------
    ie = res["ingest_embed"]
    w("## Targets\n")
    w("| target | measured | |")
    w("|---|---|---|")
    w(f"| whole ingest at most 1.15x the embedder's raw encode | {ie['ratio']:.2f}x | {_ok(ie['ratio'] <= 1.15)} |")
    big = {int(k): v for k, v in sizes}
    if 100_000 in big or any(80_000 <= k <= 120_000 for k in big):
        k = min(big, key=lambda x: abs(x - 100_000))
        lat = big[k]["latency"]
        h, q = lat["modes"]["hybrid"]["p50_ms"], lat["modes"]["quote"]["p50_ms"]
        w(f"| {_n(lat['passages'])} passages: hybrid p50 under 50 ms, without query encoding | {_ms(h)} ms | {_ok(h < 50)} |")
        w(f"| {_n(lat['passages'])} passages: quote lookup p50 under 30 ms | {_ms(q)} ms | {_ok(q < 30)} |")
    else:
        w("| 100k passages: hybrid p50 < 50 ms, quote p50 < 30 ms | not in this run | |")
    if any(k >= 900_000 for k in big):
        k = max(big)
        rss = big[k]["latency"]["peak_rss_mb"]
        w(f"| {_n(big[k]['latency']['passages'])} passages: search process under 8 GiB RSS | "
          f"{rss / 1024:.2f} GiB | {_ok(rss < 8 * 1024)} |")
    else:
        w("| 1M passages: search process under 8 GiB RSS | not in this run | |")
    peer_rows = [(int(k), v["peers"]) for k, v in sizes if "peers" in v]
    if peer_rows:
        faster = all(p["ours_keyword"]["p50_ms"] <= p["bm25s"]["p50_ms"] for _, p in peer_rows)
        w("| faster than bm25s (keyword) | ours/bm25s p50 = "
          + ", ".join(f"{p['ours_keyword']['p50_ms'] / p['bm25s']['p50_ms']:.2f}x at {_n(p['passages'])}"
                      for _, p in peer_rows) + f" | {_ok(faster)} |")
        tx = [(n, p) for n, p in peer_rows if "txtai" in p]
        if tx:
            faster = all(p["ours_hybrid"]["p50_ms"] <= p["txtai"]["p50_ms"] for _, p in tx)
            w("| faster than txtai (hybrid) | ours/txtai p50 = "
              + ", ".join(f"{p['ours_hybrid']['p50_ms'] / p['txtai']['p50_ms']:.2f}x at {_n(p['passages'])}"
                          for _, p in tx) + f" | {_ok(faster)} |")
    choice = out.parent / "benchmarks" / "index-choice.json"  # a later run of benchmarks.index_choice --peers
    if choice.exists():
        cp = json.loads(choice.read_text(encoding="utf-8")).get("peers", {}).get("peers", {})
        if cp.get("txtai"):
            r = cp["ours_hybrid"]["p50_ms"] / cp["txtai"]["p50_ms"]
            w(f"| faster than txtai (hybrid), with the approximate index (see below) | ours/txtai p50 = {r:.2f}x at "
              f"{_n(cp['passages'])} | {_ok(r < 1)} |")
    w("")

    # -- ingest ----------------------------------------------------------------------------
    st = res["ingest_store"]
    w("## Ingest\n")
    w(f"**Store stage alone** (read, normalise, segment, SQLite, FTS5 and the eager keyword index; no "
      f"embedding) on `../shared/corpus` and `corpus/`: {_n(st['documents'])} documents, {_n(st['passages'])} "
      f"passages in {st['seconds']:.1f} s, **{st['passages'] / st['seconds']:,.0f} passages/s**, peak RSS "
      f"{st['peak_rss_mb']:.0f} MiB. Failed files: {len(st['failed'])}.\n")
    w(f"**Embedding** with `{ie['embedder']}` on a sample of the same corpus ({_n(ie['passages'])} distinct "
      f"passages; embedding all 16k takes about 40 minutes on this machine):\n")
    w("| step | seconds | passages/s |")
    w("|---|---|---|")
    w(f"| whole ingest (store, embed, FAISS, keyword index; model load included) | {ie['whole_s']:.1f} | "
      f"{ie['passages'] / ie['whole_s']:.1f} |")
    w(f"| of which the embed stage | {ie['embed_s']:.1f} | {ie['passages'] / ie['embed_s']:.1f} |")
    w(f"| raw encode of the same passages (the model alone, warm, batches of 32) | {ie['raw_encode_s']:.1f} | "
      f"{ie['passages'] / ie['raw_encode_s']:.1f} |")
    w(f"\nWhole ingest / raw encode = **{ie['ratio']:.2f}x**: the pipeline adds {100 * (ie['ratio'] - 1):.0f}% "
      f"above the model, which is the floor. Peak RSS of that ingest: {ie['peak_rss_mb']:.0f} MiB.\n")
    from .parallel_embed import section as parallel_section  # measured on its own (too slow for a run)

    parallel = parallel_section()
    if parallel:
        w(parallel)

    # -- latency ---------------------------------------------------------------------------
    enc = res["encode"]
    w("## Query latency\n")
    w("Collections of about 10k, 100k and 1M passages are built by resampling real sentences of the shared "
      "corpus into documents shaped like it (`benchmarks/synth.py`) and ingested by the normal pipeline. "
      "Their vectors are **random unit vectors** of the real model's dimension (384): embedding a million "
      "passages with the real model would take about two days here. The query vectors are random too, so "
      "the figures below **exclude query encoding**; the real model's encoding is measured on its own:\n")
    w(f"- **Query encoding** with `{enc['model']}`: p50 {_ms(enc['p50_ms'])} ms, p95 {_ms(enc['p95_ms'])} ms "
      f"over {enc['n']} queries (model load {enc['load_s'] * 1000:.0f} ms, once per process). Add it to semantic "
      "and hybrid figures for the time a user waits.\n")
    w(f"Queries: {sizes[0][1]['latency']['modes']['keyword']['n']} searches (the evaluation questions and the "
      f"evaluation quotes used as searches) and {sizes[0][1]['latency']['modes']['quote']['n']} quote lookups "
      "(the 110 evaluation quotes and 100 sentences of the collection with a character dropped); 10 warm-up "
      "queries first; full `search()` calls with hits, merged neighbours and citations, top 10.\n")
    w("| passages | keyword p50 / p95 | semantic p50 / p95 | hybrid p50 / p95 | quote p50 / p95 | FAISS index |")
    w("|---|---|---|---|---|---|")
    for _, v in sizes:
        lat = v["latency"]
        cells = [f"{_ms(lat['modes'][md]['p50_ms'])} / {_ms(lat['modes'][md]['p95_ms'])} ms" for md in MODES]
        w(f"| {_n(lat['passages'])} | " + " | ".join(cells) + f" | {v['vectors']['index_kind']} |")
    if "latency_real" in res:
        lr = res["latency_real"]
        cells = [f"{_ms(lr['modes'][md]['p50_ms'])} / {_ms(lr['modes'][md]['p95_ms'])} ms" for md in MODES]
        w(f"| {_n(lr['passages'])} (the real corpus, real vectors, **encoding included**) | " + " | ".join(cells) + " | flat |")
    w("")
    w("![latency](benchmarks/latency.png)\n")

    # -- memory and disk ------------------------------------------------------------------
    w("## Memory and disk\n")
    w("| passages | documents | search process peak RSS | ingest peak RSS (store / vectors + FAISS) | store stage | "
      "SQLite | FAISS | keyword index |")
    w("|---|---|---|---|---|---|---|---|")
    for _, v in sizes:
        s_, vec = v["store"], v["vectors"]
        w(f"| {_n(s_['passages'])} | {_n(s_['documents'])} | {v['latency']['peak_rss_mb']:,.0f} MiB | "
          f"{s_['peak_rss_mb']:,.0f} / {vec['peak_rss_mb']:,.0f} MiB | {s_['seconds']:,.0f} s "
          f"({s_['passages'] / s_['seconds']:,.0f}/s) | {_size(vec['db_bytes'])} | {_size(vec['index_bytes'])} "
          f"({vec['index_kind']}, built in {vec['index_build_s']:.0f} s) | {_size(s_['keyword_bytes'])} |")
    w("\nThe vectors step stands in for embedding: it stores the random vectors in SQLite and builds FAISS. "
      "The store stage includes building the keyword index.\n")
    w("![memory](benchmarks/memory.png)\n")

    # -- adding a document -------------------------------------------------------------------
    if all("add_one" in v for _, v in sizes):
        w("## Adding one document to a built collection\n")
        w("What a user waits for after adding one file (about 60 passages) to a collection: the store stage, "
          "the (stand-in) embedding, then both indexes brought up to date and saved. The FAISS index is caught "
          "up (new vectors added) instead of rebuilt; the last column is what a rebuild took in the same run, "
          "which is what every ingest paid before. The keyword index is rebuilt below 50k passages or past 2% "
          "drift; in between, searches score the newest passages with FTS5 and merge them "
          "(`yuanwen/bm25.py`).\n")
        w("| passages | whole ingest | store | embed | keyword index | FAISS caught up | FAISS rebuild (before) |")
        w("|---|---|---|---|---|---|---|")
        for _, v in sizes:
            ad = v["add_one"]
            w(f"| {_n(v['store']['passages'])} | {ad['seconds']:.1f} s | {ad['store_s']:.1f} s | {ad['embed_s']:.2f} s | "
              f"{ad['keyword_index_s']:.1f} s | {ad['vector_index_s']:.1f} s | {v['vectors']['index_build_s']:.1f} s |")
        w("")

    # -- peers -----------------------------------------------------------------------------
    if peer_rows:
        w("## Peers on the same passages and vectors\n")
        w("bm25s and txtai get the same tokens as our index (CJK bigrams and ASCII words of the passage text, "
          "heading path and title), and txtai gets exactly our stored vectors through an external transform "
          "(its default FAISS settings: an IVF index above a few thousand vectors, so approximate). "
          "All rank the same 211 queries, top 10, one query at a time; the figures compare rankings "
          "(passage ids), as the peers build no hits or citations. Ratio = our time / theirs "
          "(below 1: we are faster).\n")
        w("| passages | ours keyword | bm25s | ratio | ours hybrid | txtai hybrid | ratio | build: bm25s / txtai |")
        w("|---|---|---|---|---|---|---|---|")
        for _, p in peer_rows:
            ok, b = p["ours_keyword"]["p50_ms"], p["bm25s"]["p50_ms"]
            oh = p["ours_hybrid"]["p50_ms"]
            t = p.get("txtai", {}).get("p50_ms")
            w(f"| {_n(p['passages'])} | {_ms(ok)} ms | {_ms(b)} ms | {ok / b:.2f}x | {_ms(oh)} ms | "
              f"{_ms(t) + ' ms' if t else '-'} | {f'{oh / t:.2f}x' if t else '-'} | "
              f"{p['bm25s']['build_s']:.0f} s / {p.get('txtai', {}).get('build_s', 0):.0f} s |")
        w("")
        slower = [(n, p) for n, p in peer_rows if "txtai" in p and p["ours_hybrid"]["p50_ms"] > p["txtai"]["p50_ms"]]
        if slower:
            n, p = slower[-1]
            sem = big[n]["latency"]["modes"]["semantic"]["p50_ms"]
            hn = [(k, v) for k, v in big.items() if v["vectors"]["index_kind"] == "hnsw"]
            hn_txt = (f" Our HNSW path, which takes over above `Config.exact_index_max` vectors, answers semantic search in "
                      f"{_ms(hn[0][1]['latency']['modes']['semantic']['p50_ms'])} ms at {_n(hn[0][1]['latency']['passages'])} "
                      "passages (table above)." if hn else "")
            w(f"**Where txtai is faster, and why.** At {_n(p['passages'])} passages our hybrid ranking takes "
              f"{_ms(p['ours_hybrid']['p50_ms'])} ms against txtai's {_ms(p['txtai']['p50_ms'])} ms. Nearly all of ours is "
              f"the dense side: this collection was searched exactly (a flat index, {_ms(sem)} ms here), while "
              "txtai's default FAISS index is IVF, which scans a few cells of the collection and can miss true "
              "neighbours. Our keyword side is faster than bm25s. The approximate index now takes over at a "
              f"lower size (`Config.exact_index_max`, see below).{hn_txt} "
              f"The peers ran up to {_n(p['passages'])} passages: that step (ours, bm25s and txtai in one process) "
              f"peaked at {p['peak_rss_mb'] / 1024:.1f} GiB, and txtai's build took {p['txtai']['build_s']:.0f} s; "
              "ten times that is past this machine's memory.\n")
        if len(pics) > 2:
            w("![peers](benchmarks/peers.png)\n")

    # -- the approximate vector index (python -m benchmarks.index_choice) -------------------
    choice = out.parent / "benchmarks" / "index-choice.json"
    if choice.exists():
        from benchmarks.index_choice import markdown as index_choice_markdown

        w(index_choice_markdown(json.loads(choice.read_text(encoding="utf-8"))))

    # -- SQLite and Milvus Lite side by side (python -m benchmarks --backends) ----------------
    from .backends import section as backends_section

    w(backends_section(out.parent / "benchmarks" / "backends.json"))

    # -- where the disk goes (python -m benchmarks.disk) ----------------------------------------
    disk = out.parent / "benchmarks" / "disk.json"
    if disk.exists():
        from .disk import markdown as disk_markdown

        w("## Where the disk goes\n")
        w(disk_markdown(json.loads(disk.read_text(encoding="utf-8"))))
        for name in ("disk-100k.json", "disk-1m.json"):
            big = out.parent / "benchmarks" / name
            if big.exists():
                w("\n" + disk_markdown(json.loads(big.read_text(encoding="utf-8"))))
        w("\n" + DISK_READING)

    # -- quality ---------------------------------------------------------------------------
    qual = res["quality"]
    w("## Quality on the evaluation set\n")
    w(f"`benchmarks/eval/`: {qual['modes'][0]['n']} questions and {qual['quotes']['n']} quotes, over "
      "`../shared/corpus` and `corpus/`. A hit counts when it comes from the listed file and overlaps the "
      "listed snippet.\n")
    w("| mode (full `search()`) | Recall@1 | Recall@5 | MRR@10 | p50 |")
    w("|---|---|---|---|---|")
    for r in qual["modes"]:
        w(f"| {r['mode']} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['mrr@10']:.3f} | {_ms(r['p50_ms'])} ms |")
    qq = qual["quotes"]
    w(f"\nQuote lookup: Recall@1 **{qq['recall@1']:.3f}**, verdict accuracy {qq['verdict_accuracy']:.3f}, "
      f"p50 {_ms(qq['p50_ms'])} ms.\n")
    w("Rankings alone (no merging of neighbouring passages), ours and the peers' on the same passages:\n")
    w("| ranker | Recall@1 | Recall@5 | MRR@10 |")
    w("|---|---|---|---|")
    for name, r in qual["rankings"].items():
        w(f"| {name} | {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['mrr@10']:.3f} |")
    fz = qual["fusion"]
    w(f"\nFusion settings: min-max normalised scores, dense weight {fz['dense_weight']}, top {fz['depth']} "
      f"from each side, named-document boost {fz['title_weight']} (title part of at least "
      f"{fz['title_min_chars']} characters held by at most {fz['title_max_docs']} titles), document "
      f"evidence weight {fz['doc_weight']}; keyword BM25 column weights 1 / 0.5 / 0.3 (text / headings / "
      "title).\n")

    # -- fixes -----------------------------------------------------------------------------
    w("## Wastes found and fixed (before and after)\n")
    w("| passages | keyword: FTS5 path / eager index | hybrid | quote lookup | named-document check: every title / trigram index |")
    w("|---|---|---|---|---|")
    for _, v in sizes:
        b = v["latency"]["modes"]
        a = v["latency_fts"]["modes"] if "latency_fts" in v else None  # (FTS5 is gone from schema 9)
        was = {m: f"{_ms(a[m]['p50_ms'])} → " if a else "– → " for m in ("keyword", "hybrid", "quote")}
        t = v["latency"]["titles"]
        w(f"| {_n(v['latency']['passages'])} | {was['keyword']}{_ms(b['keyword']['p50_ms'])} ms | "
          f"{was['hybrid']}{_ms(b['hybrid']['p50_ms'])} ms | "
          f"{was['quote']}{_ms(b['quote']['p50_ms'])} ms | "
          f"{_ms(t['every_title']['p50_ms'])} → {_ms(t['trigram_index']['p50_ms'])} ms |")
    w("""
(p50, both sides from one run. The "before" columns are the FTS5 path, which searches used while
the keyword index was missing or far behind until schema 9 dropped FTS5; at 1M passages it ran 60
queries of each kind. Runs since then measure the keyword index alone.)

1. **Keyword search scored every matching row in SQLite.** An FTS5 OR query computes `bm25()` for
   every row holding any query term, and common bigrams (发展, 建设, 工作) are in a large share of all
   passages, so keyword search, hybrid search and quote candidates grew linearly with the collection.
   `yuanwen/bm25.py` now precomputes FTS5's own BM25 contribution of each term to each passage (the
   same formula and column weights, checked against `bm25()` in `tests/test_bm25.py`, so rankings
   and quality do not change) and a query adds up a few posting lists with numpy. The arrays are
   saved beside the FAISS file, memory-mapped by searchers, and describe the passages they were
   built from; passages added since are scored by FTS5 over their id range and merged. (Since
   schema 7 the arrays keep term frequencies and the scores are computed per query: see *Where
   the disk goes*.)
2. **Every ingest rebuilt the FAISS index from all stored vectors**, and a reader that found it
   stale (a writer mid-ingest) rebuilt it in memory: minutes for an HNSW graph at 1M vectors.
   The index is now caught up: the vectors it lacks are added, removed ids are taken out of the
   exact index (an HNSW graph is rebuilt by writers, and readers skip its removed ids). See
   "Adding one document" above.
3. **Hybrid search aligned the query with every document title** (difflib, per query) to find the
   document a query names. A trigram index of the titles, built once per database version, now
   picks the few titles that can match; the result is the same (tested against the plain form).
""")

    prev = res.get("previous")
    if prev:
        w(f"4. **The sentence FTS table was written, kept in step and verified, but never queried** "
          "(quote lookup finds passages, then their sentences by offset). Migration 2 drops it. Store stage "
          f"and database size, before (an earlier run on {prev['started']}, figures in "
          f"`docs/benchmarks/{prev['file']}`) and after (this run):\n")
        w("| collection | store stage before → after | SQLite before → after |")
        w("|---|---|---|")
        rows = [("shared corpus", prev.get("ingest_store"), None, res["ingest_store"], None)]
        rows += [(_n(int(k)), pv["store"], pv["vectors"], res["sizes"][k]["store"], res["sizes"][k]["vectors"])
                 for k, pv in sorted(prev["sizes"].items(), key=lambda kv: int(kv[0]))
                 if k in res["sizes"] and pv.get("store") and pv.get("vectors")]
        for name, b_st, b_vec, a_st, a_vec in rows:
            if not b_st:
                continue
            db_b = (b_vec or b_st)["db_bytes"]
            db_a = (a_vec or a_st)["db_bytes"]
            w(f"| {name} | {b_st['passages'] / b_st['seconds']:,.0f} → {a_st['passages'] / a_st['seconds']:,.0f} "
              f"passages/s | {_size(db_b)} → {_size(db_a)} |")
        w("")

    # -- reproduce -------------------------------------------------------------------------
    w("## Reproduce\n")
    w("""```
make test                                    # or: pip install -e .[test,bench]
pip install -e '.[bench]'                    # matplotlib, bm25s, txtai
yuanwen ingest ../shared/corpus corpus --kb bench_eval_kb   # once, about 40 minutes (embedding)
python -m benchmarks --eval-kb bench_eval_kb # full run, about 40 minutes; writes docs/benchmarks.md
python -m benchmarks --quick                 # 10k passages only, under 5 minutes
python -m benchmarks --backends --eval-kb bench_eval_kb   # SQLite and Milvus Lite side by side, 100k
                                             # passages (15-25 minutes); writes docs/benchmarks/backends.json
```
""")
    w("Other benchmark scripts: `benchmarks/evaluate.py` (quality per mode), `benchmarks/tune_fusion.py`, "
      "`benchmarks/tokenisation.py`, `benchmarks/index_choice.py` (flat or HNSW), `benchmarks/soak.py`.\n")
    out.write_text("\n".join(L), encoding="utf-8")
