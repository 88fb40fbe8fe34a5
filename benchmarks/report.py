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
    "**Where 5x stands.** The whole folder went from 18.5x to 9.5x the raw text at 100k passages "
    "(19.4x to 9.4x at 985,936: 10.18 GiB to 4.90 GiB), and everything but the vectors and the graph from 11.8x to 5.4x (5.8x on the shared corpus, "
    "whose passages are shorter). The vectors are now the bulk: 384 float32 numbers are 1,536 bytes "
    "a passage, against about 570 bytes of text a passage here (440 in the shared corpus), 3.6x, and "
    "the graph's links 0.5x. 5x would need both smaller vectors and one keyword index instead of two "
    "(FTS5's postings, 1.4x, and the eager index, 2.2x): 16-bit vectors would make the folder about "
    "7.7x, 8-bit ones (SQ8, Recall@10 0.984 in *Choosing the approximate vector index*) about 6.8x, "
    "and dropping the FTS5 index (which scores passages newer than the eager index, finds the "
    "candidates of an exact phrase, and serves while the eager index is missing or far behind) "
    "another 1.4x. Neither is done: the first loses precision that the quality figures have not been "
    "measured with, the second needs the eager index kept current on every ingest.\n")



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
        a, b = v["latency_fts"]["modes"], v["latency"]["modes"]
        t = v["latency"]["titles"]
        w(f"| {_n(v['latency']['passages'])} | {_ms(a['keyword']['p50_ms'])} → {_ms(b['keyword']['p50_ms'])} ms | "
          f"{_ms(a['hybrid']['p50_ms'])} → {_ms(b['hybrid']['p50_ms'])} ms | "
          f"{_ms(a['quote']['p50_ms'])} → {_ms(b['quote']['p50_ms'])} ms | "
          f"{_ms(t['every_title']['p50_ms'])} → {_ms(t['trigram_index']['p50_ms'])} ms |")
    w("""
(p50, both sides from this run. The "before" columns are the FTS5 path, which searches still
use when the keyword index is missing or far behind; at 1M passages it ran 60 queries of each kind.)

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
