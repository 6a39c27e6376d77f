"""The Java extension: faster indexing and one-call batch search on top of the Anserini fat jar.

Stock Anserini indexes a SPLADE vector as a pseudo-document that repeats each term ``weight`` times (and truncates
float weights with ``asInt()``), and Pyserini sends every query term and every hit across JNI one call at a time.
The extension (Java sources under ``java/src/main/java``, compiled here against Pyserini's Anserini jar) adds:

* ``io.anserini.collection.SpladeVectorCollection`` + ``io.anserini.index.generator.SpladeImpactGenerator``:
  JsonVectorCollection files (``.jsonl``/``.jsonl.gz``, integer or float weights) and Parquet shards (``id``,
  ``terms``, ``weights``), each term indexed once with its impact as the term frequency. The index is the stock
  one (same fields, postings, norms), so any Anserini/Pyserini impact searcher reads it. Float weights are
  quantised with a declared scale (``-Dsplade.scale`` / ``fast_index(scale=...)``):
  ``round-half-away-from-zero(w * scale)``, zeros dropped.
* ``io.anserini.splade.SpladeIndexCollection``: IndexCollection that fails loudly (exit 1, ``file:line``), writing
  segments directly by default (``-splade.writer segments|documents``).
* ``io.anserini.search.SpladeBatchSearcher``: a batch of queries as flat arrays, searched on several threads in
  one call, with SimpleImpactSearcher's exact scoring and tie-breaking.

The jar itself (which sources, the shipped or cached jar that verifies against them, building it) is
:mod:`splade_pyserini.javabuild`; this module is the runtime side: the JVM's classpath, the indexer and the
batch searcher.
"""

from __future__ import annotations

import gc
import os
import re
import time
from pathlib import Path
from typing import Mapping, Sequence

from .errors import SpladeError
from .fileio import atomic_directory, write_json
from . import javabuild
from .logs import module_logger
from .provenance import SHARD_SUFFIXES, shard_files  # the files COLLECTION reads

logger = module_logger(__name__)

COLLECTION = "SpladeVectorCollection"
GENERATOR = "SpladeImpactGenerator"
INDEXER_MAIN = "io.anserini.splade.SpladeIndexCollection"
SEARCHER_CLASS = "io.anserini.search.SpladeBatchSearcher"
COMPARE_MAIN = "io.anserini.splade.IndexCompare"


def enable(quiet: bool = False) -> Path | None:
    """Put the extension jar on the classpath of the JVM Pyserini will start; must run before the JVM starts.

    Returns the jar, or None when it is not available (after one warning, unless ``quiet``). When the JVM already
    runs without the jar, raises :class:`SpladeError` (``quiet``: returns None).
    """
    from .anserini import add_classpath, jvm_running

    if quiet:
        try:
            jar = javabuild.build()
        except SpladeError:
            jar = None
    else:
        jar = javabuild.extension_jar()
    if jar is None:
        return None
    if jvm_running():
        if not _on_running_classpath(jar):
            if quiet:
                return None
            raise SpladeError("the Java extension must be enabled before the JVM starts: call "
                              "splade_pyserini.javaext.enable() before importing pyserini.search")
        return jar
    add_classpath(jar)
    return jar


def _on_running_classpath(jar: Path) -> bool:
    from jnius import autoclass as _autoclass

    classpath = str(_autoclass("java.lang.System").getProperty("java.class.path") or "")
    target = os.path.realpath(jar)
    return any(os.path.realpath(p) == target for p in classpath.split(os.pathsep) if p)


def _start_jvm() -> None:
    """Start the JVM (Java >= 21, the fat jar plus the jars added with ``add_classpath``) if it is not running.

    Done here rather than with ``anserini.start_jvm()``, whose classpath check (``jnius_config.get_classpath()``)
    imports jnius and so starts the JVM before Pyserini has put the fat jar on the classpath.
    """
    from .anserini import allow_long_queries, jvm_running

    if not jvm_running():
        from .jdk import ensure_java

        ensure_java()
        import pyserini.pyclass  # noqa: F401  (adds the fat jar, then starts the JVM)
    allow_long_queries()


_STATS = re.compile(r"SPLADE_INDEX_STATS (.*)")
_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*?(Starting to index|documents indexed in)", re.M)


def indexing_seconds(log: str) -> float | None:
    """Seconds from Anserini's "Starting to index..." log line to its last "... documents indexed in" line: the
    indexing itself, JVM start-up and option parsing excluded (None when the log lacks them)."""
    import datetime

    stamps = {m.group(2): datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
              for m in _LOG_TIME.finditer(log)}
    if len(stamps) < 2:
        return None
    return round((stamps["documents indexed in"] - stamps["Starting to index"]).total_seconds(), 3)


def fast_index(vectors_dir: str | os.PathLike, index_dir: str | os.PathLike, scale: float | None = None,
               threads: int | None = None, store_docvectors: bool = True, quiet: bool = True,
               extra_args: Sequence[str] = (), records: Mapping[str, dict] | None = None) -> dict:
    """Index a folder of vector shards with the extension (``SpladeIndexCollection`` in a Java subprocess).

    Its segments writer parses the shards in ``threads`` threads, builds each batch of documents' postings in memory
    and writes it as a segment (``IndexWriter.addIndexes``); ``extra_args=["-splade.writer", "documents"]`` takes
    Anserini's IndexCollection instead (one Lucene document at a time). Both write the same index.

    ``records``: JSON files (name → data) written into the index before it appears at ``index_dir``.

    ``scale``: quantisation scale for float weights (``round-half-away-from-zero(w * scale)``); None takes integer
    weights as they are and refuses fractional ones. The index is built in a temporary folder beside ``index_dir``
    and replaces it only on success. A thread reads one shard at a time, so ``threads`` (default: CPUs, at most
    the number of shards) only helps with several shards. Returns counts and seconds.
    """
    from .anserini import run_java

    jar = javabuild.require_jar()
    vectors_dir = Path(vectors_dir)
    if not vectors_dir.is_dir():
        raise SpladeError(f"vectors folder {vectors_dir} does not exist.")
    shards = shard_files(vectors_dir)
    if not shards:
        raise SpladeError(f"{vectors_dir} holds no vector shards ({', '.join(SHARD_SUFFIXES)}).")
    if scale is not None and not (float(scale) > 0 and float(scale) != float("inf")):
        raise SpladeError(f"scale must be a positive number, got {scale}.")
    threads = threads or max(1, min(os.cpu_count() or 1, len(shards)))
    start = time.perf_counter()
    with atomic_directory(index_dir) as tmp:
        args = ["-collection", COLLECTION, "-generator", GENERATOR, "-input", str(vectors_dir),
                "-index", str(tmp), "-threads", str(int(threads)), "-impact", "-pretokenized"]
        if store_docvectors:
            args.append("-storeDocvectors")
        if scale is not None:
            args += ["-splade.scale", repr(float(scale))]
        args += list(extra_args)
        out = run_java(INDEXER_MAIN, args, classpath=[str(jar)], quiet=quiet)
        for name, data in (records or {}).items():
            write_json(tmp / name, data)
    m = _STATS.search(out)
    stats: dict = {"seconds": round(time.perf_counter() - start, 3), "shards": len(shards), "threads": threads,
                   "indexing_seconds": indexing_seconds(out)}
    if m:
        stats.update({k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())})
    return stats


def compare_indexes(index_a: str | os.PathLike, index_b: str | os.PathLike, field: str = "contents") -> list[str]:
    """Differences between two indexes' postings, norms and term vectors (by external docid); [] when identical."""
    from .anserini import java_run

    jar = javabuild.require_jar()
    proc = java_run(COMPARE_MAIN, [str(index_a), str(index_b), field], [str(jar)], capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    if proc.returncode == 0 and any(ln.startswith("IDENTICAL") for ln in lines):
        return []
    if proc.returncode == 1 and lines and lines[-1] == "DIFFERENT":
        return lines[:-1]
    tail = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    raise SpladeError(f"IndexCompare failed (exit {proc.returncode}): {(tail or ['(no output)'])[-1]}")


class BatchSearcher:
    """Impact search of many queries in one JNI call (``io.anserini.search.SpladeBatchSearcher``).

    Results equal SimpleImpactSearcher's (the stock Pyserini path) query by query: same query construction, scoring,
    tie-breaking by docid and score adjustment. Query weights are quantised in Java with the same rule as documents:
    ``round-half-away-from-zero(w * scale)``, non-positive weights dropped (pass ``scale=1`` for integer weights).
    """

    def __init__(self, index_dir: str | os.PathLike):
        from .anserini import autoclass

        self.index_dir = Path(index_dir)
        if not self.index_dir.is_dir():
            raise SpladeError(f"index {self.index_dir} does not exist.")
        if enable() is None:
            raise SpladeError(f"{javabuild.UNAVAILABLE}; use the stock searcher instead.")
        _start_jvm()
        self._searcher = autoclass(SEARCHER_CLASS)(str(self.index_dir))

    @staticmethod
    def _flatten(queries: Sequence[Mapping[str, float]], qids: Sequence[str]):
        if len(queries) != len(qids):
            raise SpladeError(f"{len(queries)} queries but {len(qids)} query ids.")
        if len(set(qids)) != len(qids):
            raise SpladeError("query ids must be unique within a batch.")
        offsets = [0]
        terms: list[str] = []
        weights: list[float] = []
        for q in queries:
            for term, weight in q.items():
                terms.append(str(term))
                weights.append(float(weight))
            offsets.append(len(terms))
        return [str(q) for q in qids], offsets, terms, weights

    def search(self, queries: Sequence[Mapping[str, float]], qids: Sequence[str], k: int = 1000, threads: int = 1,
               scale: float = 1.0) -> dict[str, list[tuple[str, float]]]:
        """``{qid: [(docid, score), ...]}``, best first, for a batch of ``{term: weight}`` queries."""
        qids, offsets, terms, weights = self._flatten(queries, qids)
        if not qids:
            return {}
        result = self._searcher.search(qids, offsets, terms, weights, float(scale), int(k), int(max(1, threads)))
        joined = result.docidsJoined()  # None when a docid holds a newline: then one JNI string per hit
        docids = list(result.docids) if joined is None else (joined.split("\n") if joined else [])
        scores = list(result.scores)
        hit_offsets = list(result.offsets)
        # Many small tuples at once: pause the cyclic garbage collector, whose passes over everything else the
        # process holds would otherwise cost more than building them.
        paused = gc.isenabled()
        gc.disable()
        try:
            return {qid: list(zip(docids[hit_offsets[i]:hit_offsets[i + 1]], scores[hit_offsets[i]:hit_offsets[i + 1]]))
                    for i, qid in enumerate(qids)}
        finally:
            if paused:
                gc.enable()

    def terms(self) -> list[str] | None:
        """Every term of the searched field (None when a term holds a newline, which one string cannot carry)."""
        joined = self._searcher.termsJoined()
        return None if joined is None else (joined.split("\n") if joined else [])

    @property
    def num_docs(self) -> int:
        return int(self._searcher.numDocs())

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


