"""Benchmarks of the Java extension against the stock Anserini/Pyserini paths (``splade-pyserini bench ...``).

* :func:`bench_index`: stock ``JsonVectorCollection`` + ``DefaultLuceneDocumentGenerator`` versus the extension's
  ``SpladeVectorCollection`` indexer, its segments writer (the default) and its documents writer
  (``SpladeImpactGenerator`` in IndexCollection) (all ``-impact -pretokenized -storeDocvectors``, same threads), on
  given vectors and on a synthetic SPLADE-like corpus; last line ``ratio_vs_stock=<x>`` (segments writer).
* :func:`bench_search`: query encoding + search of whole topic sets, Pyserini's ``LuceneImpactSearcher`` with its
  own ``SpladeQueryEncoder`` (one JNI call per query term and per hit field) versus
  :class:`~splade_pyserini.search.SpladeSearcher` (queries encoded in parallel, one JNI call per batch);
  last line ``ratio_vs_pyserini=<x>``.

Also helpers shared with the tests: :func:`stock_index`, :func:`compare_search`, :func:`compare_search_threads`
(and, re-exported from :mod:`.synthetic`, :func:`synthetic_vectors`, :func:`synthetic_queries`,
:func:`round_vectors`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import SpladeError
from .synthetic import (Vector, quantize_weight, round_vectors, synthetic_queries,  # noqa: F401 (re-exported)
                        synthetic_vectors, synthetic_vocab)


# ---------------------------------------------------------------------------------------------------------------
# Indexing

def stock_index(vectors_dir: str | os.PathLike, index_dir: str | os.PathLike, threads: int = 2,
                store_docvectors: bool = True) -> float:
    """Anserini's stock impact indexing (JsonVectorCollection + DefaultLuceneDocumentGenerator); returns seconds."""
    return stock_index_run(vectors_dir, index_dir, threads, store_docvectors)["seconds"]


def stock_index_run(vectors_dir: str | os.PathLike, index_dir: str | os.PathLike, threads: int = 2,
                    store_docvectors: bool = True) -> dict:
    """:func:`stock_index`, returning ``seconds`` (wall clock, JVM start-up included) and ``indexing_seconds``
    (from Anserini's log: the indexing alone)."""
    from ..anserini import run_java
    from ..fileio import atomic_directory
    from ..javaext import indexing_seconds

    start = time.perf_counter()
    with atomic_directory(index_dir) as tmp:
        args = ["-collection", "JsonVectorCollection", "-generator", "DefaultLuceneDocumentGenerator",
                "-input", str(vectors_dir), "-index", str(tmp), "-threads", str(threads),
                "-impact", "-pretokenized"]
        if store_docvectors:
            args.append("-storeDocvectors")
        out = run_java("io.anserini.index.IndexCollection", args, quiet=True)
        if "Unexpected Exception" in out:
            raise SpladeError("stock IndexCollection hit an exception while indexing (see its log)")
    return {"seconds": time.perf_counter() - start, "indexing_seconds": indexing_seconds(out)}


def _child_cpu_seconds() -> float:
    """CPU seconds (user + system) of the finished child processes so far (the Java indexers)."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _staged(vectors_dir: Path, work: Path) -> Path:
    """A folder of links to the shards only (stock JsonVectorCollection would also parse encoding.json)."""
    from .. import javaext

    shards = javaext.shard_files(vectors_dir)
    if not shards:
        raise SpladeError(f"{vectors_dir} holds no vector shards.")
    if any(p.name.endswith(".parquet") for p in shards):
        raise SpladeError(f"{vectors_dir} holds Parquet shards, which stock Anserini cannot index; time JSONL ones.")
    staged = work / "staged"
    staged.mkdir()
    for i, shard in enumerate(shards):
        os.symlink(shard.resolve(), staged / f"{i:05d}-{shard.name}")
    return staged


def _time_all(vectors_dir: Path, work: Path, label: str, threads: int, scale: float | None,
              check: bool | None, documents: bool = True) -> dict:
    """Stock, then the extension's documents writer (``documents``; Anserini's IndexCollection with
    SpladeImpactGenerator), then its default segments writer (``fast``), one after the other on the same shards."""
    from .. import javaext

    stock_dir, docs_dir, fast_dir = work / f"{label}-stock", work / f"{label}-documents", work / f"{label}-fast"
    cpu0 = _child_cpu_seconds()
    stock = stock_index_run(vectors_dir, stock_dir, threads=threads)
    cpu1 = _child_cpu_seconds()
    docs = (javaext.fast_index(vectors_dir, docs_dir, scale=scale, threads=threads,
                               extra_args=["-splade.writer", "documents"]) if documents else None)
    cpu2 = _child_cpu_seconds()
    fast = javaext.fast_index(vectors_dir, fast_dir, scale=scale, threads=threads)
    cpu3 = _child_cpu_seconds()
    stock_in, fast_in = stock["indexing_seconds"], fast.get("indexing_seconds")
    docs_in = docs.get("indexing_seconds") if docs else None
    row = {"corpus": label, "docs": fast.get("indexed"), "stock_s": round(stock["seconds"], 2),
           "documents_s": round(docs["seconds"], 2) if docs else None,
           "fast_s": round(fast["seconds"], 2), "ratio": round(stock["seconds"] / fast["seconds"], 2),
           "stock_index_s": stock_in, "documents_index_s": docs_in, "fast_index_s": fast_in,
           "ratio_no_jvm": round(stock_in / fast_in, 2) if stock_in and fast_in else "",
           "stock_cpu_s": round(cpu1 - cpu0, 1), "documents_cpu_s": round(cpu2 - cpu1, 1),
           "fast_cpu_s": round(cpu3 - cpu2, 1), "cpu_ratio": round((cpu1 - cpu0) / max(1e-9, cpu3 - cpu2), 2),
           "vs_documents_no_jvm": round(docs_in / fast_in, 2) if docs_in and fast_in else "",
           "vs_documents_cpu": round((cpu2 - cpu1) / max(1e-9, cpu3 - cpu2), 2),
           "stock_mb": round(_dir_size(stock_dir) / 2**20, 1), "fast_mb": round(_dir_size(fast_dir) / 2**20, 1)}
    if not docs:  # the documents writer was skipped: no columns for it
        row = {key: value for key, value in row.items() if "documents" not in key}
    if check is None:
        check = scale is None and (fast.get("indexed") or 0) <= 20_000
    if check:  # with a scale, stock Anserini truncates float weights and the indexes legitimately differ
        row["identical_postings"] = javaext.compare_indexes(stock_dir, fast_dir) == []
        if docs:
            row["identical_documents"] = javaext.compare_indexes(docs_dir, fast_dir) == []
    for folder in (stock_dir, docs_dir, fast_dir):
        shutil.rmtree(folder, ignore_errors=True)
    return row


def _print_table(rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(dict.fromkeys(k for r in rows for k in r))
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))


def bench_index(vectors_dir: str | os.PathLike | None = None, synthetic_docs: int = 200_000, threads: int = 2,
                scale: float | None = None, work_dir: str | os.PathLike | None = None, terms: int = 150,
                max_weight: int | None = None, weights: str = "fitted", check: bool | None = None,
                documents: bool = True) -> dict:
    """Time stock versus extension indexing; prints a table and ``ratio_vs_stock=<x>`` (synthetic corpus if any).

    Stock (Anserini's IndexCollection) and the extension (its default segments writer, ``fast_*``, and with
    ``documents`` also its documents writer, ``documents_*``: IndexCollection with SpladeImpactGenerator) each run
    in a Java subprocess with ``-impact -pretokenized -storeDocvectors`` and ``threads`` threads, one after the
    other. Reported: wall clock with JVM start-up (``*_s``, ``ratio``), the indexing alone from
    Anserini's log (``*_index_s``, ``ratio_no_jvm``), and the Java processes' CPU seconds (``*_cpu_s``,
    ``cpu_ratio``: steadier than wall clock on a loaded machine). ``vectors_dir``: JsonVectorCollection shards to
    time as well (``scale`` for float weights, which stock Anserini truncates). ``synthetic_docs``: size of the
    synthetic corpus (0 to skip): ``terms`` terms a document on average, ``weights`` ``fitted`` (to splade-tiny's
    vectors, mean impact ~32: see :mod:`.synthetic`), ``loguniform`` (1..``max_weight``, mean ~52 for 300) or
    ``uniform``, in ``2 * threads`` shards. ``check``: also compare
    the indexes' postings (default: for corpora up to 20,000 documents): ``identical_postings`` (stock vs segments),
    ``identical_documents`` (documents vs segments writer).
    """
    from .. import javabuild, javaext

    if javabuild.extension_jar() is None:
        raise SpladeError("the Java extension is not available (no javac >= 21); nothing to compare.")
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="splade-bench-index-", dir=work_dir))
    try:
        if vectors_dir is not None:
            staged = _staged(Path(vectors_dir), work)
            rows.append(_time_all(staged, work, Path(vectors_dir).resolve().name, threads, scale, check, documents))
            shutil.rmtree(staged, ignore_errors=True)
        if synthetic_docs:
            synth = work / "synthetic"
            t0 = time.perf_counter()
            info = synthetic_vectors(synth, synthetic_docs, terms=terms, max_weight=max_weight,
                                     shards=max(2, 2 * threads), weights=weights)
            print(f"synthetic corpus: {info['docs']:,} docs, {info['postings']:,} postings, "
                  f"{info['impact_sum']:,} pseudo-document tokens ({weights} weights, mean "
                  f"{info['impact_sum'] / max(1, info['postings']):.1f}; "
                  f"{time.perf_counter() - t0:.1f}s to write)")
            rows.append(_time_all(synth, work, f"synthetic-{synthetic_docs}", threads, None, check, documents))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_table(rows)
    ratio = rows[-1]["ratio"] if rows else float("nan")
    if rows:
        last = rows[-1]
        print(f"ratio_no_jvm={last['ratio_no_jvm']} cpu_ratio={last['cpu_ratio']}"
              + (f" vs_documents_no_jvm={last['vs_documents_no_jvm']} vs_documents_cpu={last['vs_documents_cpu']}"
                 if "vs_documents_cpu" in last else ""))
    print(f"ratio_vs_stock={ratio}")
    return {"rows": rows, "ratio_vs_stock": ratio, "threads": threads, "cpus": os.cpu_count()}


# ---------------------------------------------------------------------------------------------------------------
# Searching

def _stock_hits(searcher, vector: Mapping[str, int], k: int, HashMap, Integer) -> list[tuple[str, float]]:
    query = HashMap()
    for term, weight in vector.items():
        query.put(term, Integer(int(weight)))
    return [(h.docid, h.score) for h in searcher.search(query, k)]


def compare_search(stock_index_dir: str | os.PathLike, fast_index_dir: str | os.PathLike,
                   queries: Mapping[str, Vector], k: int = 100, scale: float = 1.0, threads: int = 2) -> dict:
    """Stock path (SimpleImpactSearcher, integer weights quantised in Python, one query at a time) on one index
    versus :class:`BatchSearcher` (the raw weights, quantised in Java) on the other; counts identical rankings.

    Runs in this process's JVM (call ``javaext.enable()`` before anything starts it).
    """
    (result,) = compare_search_threads(stock_index_dir, fast_index_dir, queries, k, scale, (threads,))
    return {key: value for key, value in result.items() if key != "threads"}


def compare_search_threads(stock_index_dir: str | os.PathLike, fast_index_dir: str | os.PathLike,
                           queries: Mapping[str, Vector], k: int, scale: float,
                           thread_counts: Sequence[int]) -> list[dict]:
    """:func:`compare_search` for each of ``thread_counts`` (the stock hits computed once): a list of
    ``{"threads", "queries", "hits", "mismatched"}``."""
    from .. import javaext
    from ..anserini import autoclass

    qids = list(queries)
    fast = {}
    for threads in thread_counts:
        batch = javaext.BatchSearcher(fast_index_dir)
        fast[threads] = batch.search([queries[q] for q in qids], qids, k=k, threads=threads, scale=scale)
        batch.close()
    simple = autoclass("io.anserini.search.SimpleImpactSearcher")(str(stock_index_dir))
    HashMap, Integer = autoclass("java.util.HashMap"), autoclass("java.lang.Integer")
    mismatched: dict[int, list[str]] = {threads: [] for threads in thread_counts}
    hits = 0
    for q in qids:
        ints = {t: v for t, w in queries[q].items() if (v := quantize_weight(w, scale)) > 0}
        expected = _stock_hits(simple, ints, k, HashMap, Integer)
        hits += len(expected)
        for threads in thread_counts:
            if expected != fast[threads][q]:
                mismatched[threads].append(q)
    simple.close()
    return [{"threads": threads, "queries": len(qids), "hits": hits, "mismatched": mismatched[threads]}
            for threads in thread_counts]


def _pyserini_query_encoder(encoder, work: Path):
    """Pyserini 2.3's own ``SpladeQueryEncoder`` on the very same weights (a ``pytorch_model.bin`` copy, which is
    what Pyserini loads)."""
    from pyserini.encode import SpladeQueryEncoder

    from .encode import _pyserini_model_dir

    return SpladeQueryEncoder(str(_pyserini_model_dir(encoder, work / "pyserini-model")), device="cpu")


def _overlap(a: list, b: list) -> float:
    return len({d for d, _ in a} & {d for d, _ in b}) / max(1, len(a), len(b))


def bench_search(index_dir: str | os.PathLike, encoder, topics: Mapping[str, str], k: int = 1000,
                 threads: int | None = None, max_queries: int | None = None, warmup: int | None = None,
                 repeats: int = 5,
                 work_dir: str | os.PathLike | None = None) -> dict:
    """Time query encoding + search of every topic, Pyserini's way versus this package's, on ``index_dir``.

    * Pyserini: ``LuceneImpactSearcher`` with Pyserini 2.3's own ``SpladeQueryEncoder`` (same weights), one
      ``search(text, k)`` per query as ``python -m pyserini.search.lucene --impact`` does by default, reading each
      hit's docid and score; also its ``batch_search`` with ``threads`` threads.
    * This package: :class:`~splade_pyserini.search.SpladeSearcher` ``batch_search`` — queries encoded each alone on
      one thread, several at once, then one JNI call that searches on ``threads`` threads.

    Both paths first run the first ``warmup`` queries (default: all of them) untimed, since the JIT compiles
    Lucene's and the extension's code on the first queries (Pyserini's one call per query, this package's batch
    three times), then are timed on all of them ``repeats`` times, interleaved, and the median of each is
    reported; Pyserini's start-up (it computes the idf of every index term) is timed apart. Also checked: from the same integer queries, the extension's runs equal Anserini's
    SimpleImpactSearcher's. Prints a table and ``ratio_vs_pyserini=<x>``: Pyserini's per-query time over this
    package's, encoding included.
    """
    from .. import javaext
    from ..encoder import SpladeEncoder, load_encoder
    from ..query_encoder import default_workers
    from ..search import SpladeSearcher

    if javaext.enable() is None:
        raise SpladeError("the Java extension is not available (no javac >= 21); nothing to compare.")
    encoder = encoder if isinstance(encoder, SpladeEncoder) else load_encoder(encoder, device="cpu")
    threads = threads or default_workers()
    qids = list(topics)[:max_queries] if max_queries else list(topics)
    texts = [topics[q] for q in qids]
    warm = len(qids) if warmup is None else min(warmup, len(qids))
    javaext._start_jvm()
    from pyserini.search.lucene import LuceneImpactSearcher

    work = Path(tempfile.mkdtemp(prefix="splade-bench-search-", dir=work_dir))
    try:
        pys_encoder = _pyserini_query_encoder(encoder, work)
        t0 = time.perf_counter()
        pyserini = LuceneImpactSearcher(str(index_dir), pys_encoder)
        startup = time.perf_counter() - t0
        ours = SpladeSearcher(index_dir, encoder)

        for text in texts[:warm]:
            [(h.docid, h.score) for h in pyserini.search(text, k)]
        for _ in range(3):  # one call per batch: a few, so that the JIT has compiled the extension's loops too
            ours.batch_search(texts[:warm], qids[:warm], k, threads)

        def timed(fn):
            t0 = time.perf_counter()
            out = fn()
            return time.perf_counter() - t0, out

        # Interleaved repetitions, the median of each path: neither path runs only in the other's wake.
        times: dict[str, list[float]] = {name: [] for name in ("pys_encode", "pys", "pys_batch", "enc", "search", "ours")}
        for _ in range(max(1, repeats)):
            times["pys_encode"].append(timed(lambda: [pys_encoder.encode(t) for t in texts])[0])
            seconds, pys_run = timed(lambda: {q: [(h.docid, h.score) for h in pyserini.search(t, k)]
                                              for q, t in zip(qids, texts)})
            times["pys"].append(seconds)
            times["pys_batch"].append(timed(lambda: pyserini.batch_search(texts, qids, k, threads))[0])
            seconds, encoded = timed(lambda: ours.encode_for_search(texts))
            times["enc"].append(seconds)
            times["search"].append(timed(lambda: ours._batch.search(encoded, qids, k, threads, scale=1.0))[0])
            seconds, run = timed(lambda: ours.batch_search(texts, qids, k, threads))
            times["ours"].append(seconds)
        med = {name: float(np.median(v)) for name, v in times.items()}
        pys_encode_s, pys_s, pys_batch_s = med["pys_encode"], med["pys"], med["pys_batch"]
        enc_s, search_s, ours_s = med["enc"], med["search"], med["ours"]
        ours.close()

        # the search alone, from the same integer queries: the extension equals Anserini's SimpleImpactSearcher
        same = compare_search(index_dir, index_dir, dict(zip(qids, encoded)), k=k, scale=1.0, threads=threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = len(qids)

    def row(path, seconds, t):
        return {"path": path, "threads": t, "seconds": round(seconds, 3), "ms_per_query": round(1000 * seconds / n, 2),
                "qps": round(n / seconds, 1)}

    rows = [row("pyserini LuceneImpactSearcher.search per query (SpladeQueryEncoder + search)", pys_s, 1),
            row("  of which pyserini SpladeQueryEncoder.encode", pys_encode_s, 1),
            row("pyserini LuceneImpactSearcher.batch_search", pys_batch_s, threads),
            row("splade-pyserini SpladeSearcher.batch_search (encode + search)", ours_s, threads),
            row("  of which query encoding", enc_s, threads),
            row("  of which search (one JNI call)", search_s, threads)]
    identical = sum(1 for q in qids if pys_run[q] == run[q])
    overlap = sum(_overlap(pys_run[q], run[q]) for q in qids) / n
    print(f"{n} queries, k={k}, {threads} threads, {os.cpu_count()} CPUs; Pyserini start-up (idf of every term) "
          f"{startup:.2f}s not counted")
    print(f"same integer queries: extension runs identical to SimpleImpactSearcher's for "
          f"{same['queries'] - len(same['mismatched'])}/{same['queries']} queries")
    print(f"vs Pyserini's own encoder (round half to even, full logits): identical rankings {identical}/{n}, "
          f"mean overlap of the top {k} {overlap:.4f}")
    _print_table(rows)
    ratio = round(pys_s / ours_s, 2)
    print(f"ms_per_query={1000 * ours_s / n:.2f}")
    print(f"ratio_vs_pyserini={ratio}")
    return {"rows": rows, "ratio_vs_pyserini": ratio, "ms_per_query": round(1000 * ours_s / n, 3),
            "ratio_vs_pyserini_batch": round(pys_batch_s / ours_s, 2), "identical_to_simple": same,
            "identical_vs_pyserini_encoder": identical, "overlap_vs_pyserini_encoder": round(overlap, 4),
            "queries": n, "threads": threads, "cpus": os.cpu_count(), "pyserini_startup_s": round(startup, 3)}
