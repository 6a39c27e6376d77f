"""``splade-pyserini bench scale``: exact search as the collection grows, this package against Anserini.

For each size N, in a work folder that is kept (so a run resumes where it stopped, and a larger size reuses nothing
but the queries):

1. ``vectors-N/``: N synthetic SPLADE-like documents with the shapes fitted to real vectors (:mod:`.synthetic`);
   deleted once the indexes are built.
2. ``fast-N/``: indexed by this package's indexer (:func:`~splade_pyserini.javaext.fast_index`) and ``stock-N/`` by
   Anserini's stock ``JsonVectorCollection`` + ``DefaultLuceneDocumentGenerator`` (unless ``indexers`` leaves it
   out: Anserini's searcher then reads the extension's index, whose postings are the same, as tested with
   IndexCompare). Both ``-impact -pretokenized -storeDocvectors``; the build times go to ``times.json``.
3. The same queries (fitted lengths and weights) are searched by :class:`~splade_pyserini.javaext.BatchSearcher`
   (one call for the batch, one search thread, hits turned into Python tuples inside the timing) and by Anserini's
   ``SimpleImpactSearcher.batch_search`` (one call, one thread; hits stay Java objects, read after the timing), at
   each k. Every query is first run untimed on both at every k (the JITs warm up), then each path is timed
   ``repeats`` times, interleaved, and the median kept. Results must be identical: the same docids, scores and order
   (ties included) for every query. Besides wall clock, each call's process CPU time is measured
   (``time.process_time``: the JVM's threads included, other processes' load not): ``ours_cpu_ms``,
   ``stock_cpu_ms`` and ``cpu_ratio``, steadier than wall clock on a shared machine.

With ``seismic``, ``seismic-N/`` is also built from the same vectors (:mod:`splade_pyserini.approximate`, Seismic's
default build parameters) and searched in the same interleaved runs (one thread): its ms/query, and its recall@k
against the exact hits (the share of the exact top k it returns; its scores are exact dot products).

Prints a row per size and k with ms/query of each and the ratio, and last ``ratio_vs_stock=<x>``: the smallest
ratio over all rows.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SpladeError
from .synthetic import synthetic_queries, synthetic_vectors

log = logging.getLogger(__name__)

INDEXERS = ("fast", "stock")


def parse_counts(text: str, what: str) -> list[int]:
    """``"100000,1000000"`` -> ``[100000, 1000000]``; a one-line error naming ``what`` otherwise."""
    try:
        counts = [int(part.replace("_", "")) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise SpladeError(f"{what} must be comma-separated whole numbers (e.g. 100000,1000000), not {text!r}") from None
    if not counts or any(n < 1 for n in counts):
        raise SpladeError(f"{what} must be comma-separated positive whole numbers, not {text!r}")
    return counts


def _load_times(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _save_times(path: Path, times: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(times, indent=1, sort_keys=True))
    os.replace(tmp, path)


def build_indexes(work: Path, docs: int, indexers: Sequence[str], threads: int, terms: int, seed: int) -> dict:
    """The indexes of size ``docs`` under ``work`` (built if missing); returns their build records."""
    from .. import javaext
    from .index_search import stock_index

    times_path = work / "times.json"
    times = _load_times(times_path)
    wanted = {name: work / f"{name}-{docs}" for name in indexers}  # "seismic" among them: its approximate index
    missing = [name for name, path in wanted.items() if not path.is_dir()]
    vectors = work / f"vectors-{docs}"
    if missing and not vectors.is_dir():
        tmp = work / f"vectors-{docs}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        t0 = time.perf_counter()
        info = synthetic_vectors(tmp, docs, terms=terms, shards=max(2, 2 * threads), seed=seed)
        os.replace(tmp, vectors)
        times[f"vectors-{docs}"] = {**info, "seconds": round(time.perf_counter() - t0, 1)}
        _save_times(times_path, times)
        log.info("wrote %s synthetic documents (%s postings) in %.0fs", f"{docs:,}", f"{info['postings']:,}",
                 time.perf_counter() - t0)
    for name in missing:
        t0 = time.perf_counter()
        if name == "fast":
            stats = javaext.fast_index(vectors, wanted[name], threads=threads)
        elif name == "seismic":
            from ..approximate import read_documents, write_seismic

            count, settings = write_seismic(read_documents(vectors), wanted[name], docs,
                                            threads=threads, progress=False)
            stats = {"indexed": count, "build": settings}
        else:
            stock_index(vectors, wanted[name], threads=threads)
            stats = {}
        times[f"{name}-{docs}"] = {"seconds": round(time.perf_counter() - t0, 1), "threads": threads,
                                   "cpus": os.cpu_count(), **{k: v for k, v in stats.items() if k in ("indexed", "build")}}
        _save_times(times_path, times)
        log.info("%s index of %s documents built in %.0fs", name, f"{docs:,}", time.perf_counter() - t0)
    if vectors.is_dir() and all(p.is_dir() for p in wanted.values()):
        shutil.rmtree(vectors, ignore_errors=True)
    return {name: times.get(f"{name}-{docs}", {}) for name in indexers} | {"vectors": times.get(f"vectors-{docs}", {})}


def _java_queries(queries: list[dict], qids: list[str]):
    """The batch as Java lists for ``SimpleImpactSearcher.batch_search`` (built once, outside the timing)."""
    from ..anserini import autoclass

    ArrayList, HashMap, Integer = (autoclass(c) for c in ("java.util.ArrayList", "java.util.HashMap",
                                                            "java.lang.Integer"))
    jqueries, jqids = ArrayList(), ArrayList()
    for q, qid in zip(queries, qids):
        m = HashMap()
        for term, weight in q.items():
            m.put(term, Integer(int(weight)))
        jqueries.add(m)
        jqids.add(qid)
    return jqueries, jqids


def time_search(ours_index: Path, stock_index_dir: Path, queries: dict[str, dict[str, int]],
                ks: Sequence[int], repeats: int = 3, seismic_dir: Path | None = None,
                seismic_search: dict | None = None) -> list[dict]:
    """Rows {k, ours_ms, stock_ms, ratio, identical} for one index pair (see the module docstring); with
    ``seismic_dir``, also {seismic_ms, seismic_recall, exact_vs_seismic} (``seismic_search``: Seismic's
    ``query_cut`` and ``heap_factor``, else the package's defaults)."""
    from .. import javaext
    from ..anserini import autoclass

    qids = list(queries)
    qs = [queries[q] for q in qids]
    approx = None
    if seismic_dir is not None:
        from ..approximate import SeismicEngine

        approx = SeismicEngine(seismic_dir, **(seismic_search or {}))
    batch = javaext.BatchSearcher(ours_index)
    simple = autoclass("io.anserini.search.SimpleImpactSearcher")(str(stock_index_dir))
    jqueries, jqids = _java_queries(qs, qids)
    rows = []
    try:
        for k in ks:
            def ours():
                return batch.search(qs, qids, k=k, threads=1, scale=1.0)

            def stock():
                return simple.batch_search(jqueries, jqids, k, 1)

            def seismic():
                return approx.search(qs, qids, k, threads=1)

            paths = [("ours", ours), ("stock", stock)] + ([("seismic", seismic)] if approx is not None else [])
            for _, fn in paths:
                fn()  # warm-up: every query once on each path at this k
            times: dict[str, list[float]] = {name: [] for name, _ in paths}
            cpu: dict[str, list[float]] = {name: [] for name, _ in paths}
            runs: dict = {}
            for _ in range(max(1, repeats)):
                for name, fn in paths:
                    c0, t0 = time.process_time(), time.perf_counter()
                    runs[name] = fn()
                    times[name].append(time.perf_counter() - t0)
                    cpu[name].append(time.process_time() - c0)
            ours_run, stock_run = runs["ours"], runs["stock"]
            identical = 0
            for qid in qids:
                hits = stock_run.get(qid)
                expected = [(h.docid, h.score) for h in hits] if hits is not None else []
                identical += expected == ours_run.get(qid, [])
            ours_ms = 1000 * float(np.median(times["ours"])) / len(qids)
            stock_ms = 1000 * float(np.median(times["stock"])) / len(qids)
            ours_cpu = 1000 * float(np.median(cpu["ours"])) / len(qids)
            stock_cpu = 1000 * float(np.median(cpu["stock"])) / len(qids)
            rows.append({"k": k, "ours_ms": round(ours_ms, 3), "stock_ms": round(stock_ms, 3),
                         "ratio": round(stock_ms / ours_ms, 2), "ours_cpu_ms": round(ours_cpu, 3),
                         "stock_cpu_ms": round(stock_cpu, 3),
                         "cpu_ratio": round(stock_cpu / ours_cpu, 2) if ours_cpu > 0 else "",
                         "identical": f"{identical}/{len(qids)}"})
            if approx is not None:
                seismic_ms = 1000 * float(np.median(times["seismic"])) / len(qids)
                found = sum(len({d for d, _ in runs["seismic"][q]} & {d for d, _ in ours_run.get(q, [])}) for q in qids)
                wanted = sum(len(ours_run.get(q, [])) for q in qids)
                rows[-1].update({"seismic_ms": round(seismic_ms, 3),
                                 "seismic_recall": round(found / wanted, 4) if wanted else 1.0,
                                 "exact_vs_seismic": round(ours_ms / seismic_ms, 2)})
    finally:
        batch.close()
        simple.close()
        if approx is not None:
            approx.close()
    return rows


def bench_scale(sizes: Sequence[int], work_dir: str | os.PathLike, ks: Sequence[int] = (10, 1000),
                queries: int = 100, query_terms: int = 30, terms: int = 150,
                indexers: Sequence[str] = INDEXERS, threads: int = 2, repeats: int = 3, seed: int = 0,
                seismic: bool = False, seismic_search: dict | None = None) -> dict:
    """Build (or reuse) the indexes of each size under ``work_dir`` and time both searchers on them; prints a table
    and ``ratio_vs_stock=<smallest ratio>``. ``indexers``: which indexes to build (``fast`` is always needed);
    ``seismic``: also build and time the approximate Seismic index (its recall against the exact hits), searched
    with ``seismic_search`` (``query_cut``, ``heap_factor``)."""
    from .. import javaext
    from .index_search import _print_table

    indexers = list(dict.fromkeys(indexers))
    if "fast" not in indexers or any(i not in INDEXERS for i in indexers):
        raise SpladeError(f"indexers must include 'fast' and be among {', '.join(INDEXERS)}, not {indexers}")
    if not sizes or any(n < 1 for n in sizes):
        raise SpladeError("sizes must be positive document counts, e.g. 100000,1000000")
    if javaext.enable() is None:
        raise SpladeError("the Java extension is not available (no javac >= 21); nothing to compare.")
    if seismic:
        from ..approximate import require_seismic

        require_seismic()
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    qs = synthetic_queries(queries, terms=query_terms, seed=seed + 1)
    rows = []
    for n in sorted(sizes):
        built = build_indexes(work, n, indexers + (["seismic"] if seismic else []), threads, terms, seed)
        stock_dir = work / (f"stock-{n}" if "stock" in indexers else f"fast-{n}")
        vec = built["vectors"]
        for r in time_search(work / f"fast-{n}", stock_dir, qs, ks, repeats,
                             seismic_dir=work / f"seismic-{n}" if seismic else None, seismic_search=seismic_search):
            rows.append({"docs": n, "postings": vec.get("postings", ""),
                         "fast_index_s": built["fast"].get("seconds", ""),
                         "stock_index_s": built.get("stock", {}).get("seconds", "") if "stock" in indexers else "-",
                         "stock_searches": "stock-index" if "stock" in indexers else "fast-index", **r})
    print(f"{queries} synthetic queries (fitted: mean {query_terms} terms), one search thread each, "
          f"median of {repeats} interleaved runs after a warm-up on every query; {os.cpu_count()} CPUs")
    _print_table(rows)
    ratio = min(r["ratio"] for r in rows)
    for k in ks:
        print(f"ratio_k{k}=" + ",".join(str(r["ratio"]) for r in rows if r["k"] == k))
        print(f"cpu_ratio_k{k}=" + ",".join(str(r["cpu_ratio"]) for r in rows if r["k"] == k))
    if seismic:
        for k in ks:
            print(f"seismic_recall_k{k}=" + ",".join(str(r["seismic_recall"]) for r in rows if r["k"] == k))
    print(f"ratio_vs_stock={ratio}")
    return {"rows": rows, "ratio_vs_stock": ratio, "cpus": os.cpu_count()}
