"""The whole path on an embedded default: encode → index → search → evaluate, BM25 beside SPLADE, offline.

Default collection: a small sample written for this project (``data/sample``: 48 documents, 8 judged queries).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import SpladeError

SAMPLE = Path(__file__).resolve().parent / "data" / "sample"
METRICS = ("ndcg@10", "map", "recall@100")
WORK_NAMES = ("vectors", "index", "run.splade.txt", "run.bm25.txt", "bm25-index", "bm25-index-docs")


def _resolve_collection(collection: str | None) -> tuple[str, str, str]:
    """(corpus, topics, qrels) sources for a BEIR folder or an ir_datasets id."""
    if collection is None:
        collection = str(SAMPLE)
    path = Path(collection)
    if path.is_dir():
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            if not (path / name).is_file():
                raise SpladeError(f"collection {collection} lacks {name} (BEIR layout: corpus.jsonl, queries.jsonl, qrels/test.tsv).")
        return str(path), str(path), str(path)
    return _export_ir_datasets(collection)


def _export_ir_datasets(name: str) -> tuple[str, str, str]:
    """Write an ir_datasets collection's queries and qrels to BEIR files (the corpus is streamed directly)."""
    import json

    try:
        import ir_datasets

        ds = ir_datasets.load(name)
    except Exception:
        raise SpladeError(f"collection {name!r} is neither a BEIR folder nor a known ir_datasets id.") from None
    if not (ds.has_queries() and ds.has_qrels()):
        raise SpladeError(f"ir_datasets {name!r} has no queries or no qrels to evaluate with.")
    out = Path(os.path.expanduser("~/.cache/splade-pyserini/ir_datasets")) / name.replace("/", "__")
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    from .fileio import atomic_write

    try:
        with atomic_write(out / "queries.jsonl") as f:
            for q in ds.queries_iter():
                text = getattr(q, "text", None) or getattr(q, "title", "")
                f.write(json.dumps({"_id": q.query_id, "text": text}) + "\n")
        with atomic_write(out / "qrels" / "test.tsv") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for r in ds.qrels_iter():
                f.write(f"{r.query_id}\t{r.doc_id}\t{r.relevance}\n")
    except Exception as e:
        raise SpladeError(f"ir_datasets {name!r} could not be read ({type(e).__name__}); it may need a download.") from None
    return name, str(out), str(out)


def quickstart(encoder: str = "splade-tiny", collection: str | None = None, workdir: str | os.PathLike = "splade-quickstart",
               device: str = "auto", threads: int | None = None) -> dict:
    from .retrieve.bm25 import bm25_search, build_bm25_index
    from .cli import format_table
    from .encoder import load_encoder
    from .eval.metrics import evaluate
    from .index import build_index
    from .runs import from_hits, read_qrels, write_run
    from .search import search_topics
    from .topics import read_topics
    from .vectors import encode_corpus

    from .fileio import work_folder

    # checked before any work: a new or empty folder, or one an earlier quickstart filled (nothing else is replaced)
    work = work_folder(workdir, "quickstart folder", WORK_NAMES, what="--work-dir")
    corpus, topics_src, qrels_src = _resolve_collection(collection)
    threads = threads or max(1, min(4, os.cpu_count() or 1))
    timings = {}

    t = time.perf_counter()
    enc = load_encoder(encoder, device=device)
    timings["load model"] = time.perf_counter() - t
    print(f"[1/5] encoder {enc.card.name} ({enc.card.variant}, scale {enc.card.scale}) on {enc.device}")

    t = time.perf_counter()
    vectors = work / "vectors"
    meta = encode_corpus(enc, corpus, vectors, progress=True)
    timings["encode"] = time.perf_counter() - t
    print(f"[2/5] encoded {meta['documents']} documents → {vectors}")

    t = time.perf_counter()
    index = work / "index"
    build_index(vectors, index, threads=threads)
    timings["index"] = time.perf_counter() - t
    print(f"[3/5] impact index → {index}")

    t = time.perf_counter()
    splade_run = work / "run.splade.txt"
    splade = search_topics(index, enc, topics_src, splade_run, hits=1000, threads=threads)
    timings["search"] = time.perf_counter() - t
    print(f"[4/5] searched {len(splade)} queries → {splade_run}")

    t = time.perf_counter()
    queries = read_topics(topics_src)
    bm25_index = build_bm25_index(corpus, work / "bm25-index", threads=threads)
    bm25 = bm25_search(bm25_index, queries, k=1000, threads=threads)
    write_run(work / "run.bm25.txt", bm25, tag="bm25")
    timings["bm25"] = time.perf_counter() - t
    print(f"[5/5] BM25 (k1=0.9, b=0.4) → {work / 'run.bm25.txt'}")

    qrels = read_qrels(qrels_src)
    scores = evaluate(qrels, {"BM25": bm25, enc.card.name: from_hits(splade)}, METRICS)
    print()
    print(format_table(scores, METRICS))
    print()
    print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return scores
