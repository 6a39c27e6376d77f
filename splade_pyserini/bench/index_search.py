"""Benchmarks of the Java extension against the stock Anserini/Pyserini paths (``splade-pyserini bench ...``).

* :func:`bench_index`: stock ``JsonVectorCollection`` + ``DefaultLuceneDocumentGenerator`` versus the extension's
  ``SpladeVectorCollection`` + ``SpladeImpactGenerator`` (both ``-impact -pretokenized -storeDocvectors``, same
  threads), on given vectors and on a synthetic SPLADE-like corpus; last line ``ratio_vs_stock=<x>``.
* :func:`bench_search`: query encoding + search of whole topic sets, Pyserini's ``LuceneImpactSearcher`` with its
  own ``SpladeQueryEncoder`` (one JNI call per query term and per hit field) versus
  :class:`~splade_pyserini.search.SpladeSearcher` (queries encoded in parallel, one JNI call per batch);
  last line ``ratio_vs_pyserini=<x>``.

Also helpers shared with the tests: :func:`synthetic_vectors`, :func:`synthetic_queries`, :func:`stock_index`,
:func:`compare_search`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import SpladeError

Vector = Mapping[str, float]


def quantize_weight(w: float, scale: float) -> int:
    """The extension's rule for one weight: round half away from zero of ``w * scale`` (in double precision)."""
    x = float(w) * float(scale)
    r = math.floor(abs(x) + 0.5)
    return int(-r if x < 0 else r)


# ---------------------------------------------------------------------------------------------------------------
# Synthetic SPLADE-like data

_ONSETS = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "pl"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea"]
_CODAS = ["", "n", "r", "s", "t", "l", "m", "ng", "ck", "x"]


def synthetic_vocab(size: int = 30_000, seed: int = 0) -> list[str]:
    """A BERT-like vocabulary: pseudo-words, ``##`` word pieces, digits and a few punctuation marks."""
    rng = np.random.default_rng(seed)
    vocab: list[str] = list(".,;:!?'\"()-") + [str(i) for i in range(100)]
    seen = set(vocab)
    while len(vocab) < size:
        n = int(rng.integers(1, 4))
        word = "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                       + _CODAS[rng.integers(len(_CODAS))] for _ in range(n))
        if rng.random() < 0.25:
            word = "##" + word
        if word and word not in seen:
            seen.add(word)
            vocab.append(word)
    return vocab


def _zipf_terms(rng, vocab_size: int, rows: int, cols: int, exponent: float = 1.0) -> np.ndarray:
    ranks = np.arange(1, vocab_size + 1, dtype=np.float64)
    cdf = np.cumsum(ranks ** -exponent)
    cdf /= cdf[-1]
    return np.searchsorted(cdf, rng.random((rows, cols)), side="right").clip(0, vocab_size - 1)


def _log_uniform_weights(rng, n: int, max_weight: int) -> np.ndarray:
    """Integers in [1, max_weight], log-uniform (many small impacts, a few large ones, as SPLADE's)."""
    return np.minimum(max_weight, np.floor(np.exp(rng.random(n) * math.log(max_weight + 1)))).astype(np.int64)


def synthetic_vectors(out_dir: str | os.PathLike, docs: int, terms: int = 150, max_weight: int = 300,
                      shards: int = 4, seed: int = 0, vocab_size: int = 30_000,
                      float_scale: float | None = None, weights: str = "loguniform") -> dict:
    """Write ``docs`` SPLADE-like documents as JsonVectorCollection shards ``part-NNNNN.jsonl`` in ``out_dir``.

    Each document has about ``terms`` distinct terms (Zipf-distributed over a BERT-like vocabulary) with integer
    weights in 1..``max_weight``: ``weights="loguniform"`` (many small impacts and a few large ones, as SPLADE's;
    mean ~52 for 300) or ``"uniform"`` (mean ~150). With ``float_scale``, weights are written as floats ``w / scale``
    plus noise (some exactly on .5 boundaries), to exercise quantisation. Returns counts.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = synthetic_vocab(vocab_size, seed)
    quoted = [json.dumps(t) for t in vocab]
    shards = max(1, min(shards, docs)) if docs else 1
    files = [open(out / f"part-{s:05d}.jsonl", "w", encoding="utf-8") for s in range(shards)]
    postings = 0
    total = 0
    try:
        block = 2000
        for start in range(0, docs, block):
            n = min(block, docs - start)
            sampled = np.sort(_zipf_terms(rng, len(vocab), n, int(terms * 1.6)), axis=1)
            keep = np.ones_like(sampled, dtype=bool)
            keep[:, 1:] = sampled[:, 1:] != sampled[:, :-1]
            for i in range(n):
                row = sampled[i][keep[i]][:terms]
                rng.shuffle(row)
                if weights == "uniform":
                    impacts = rng.integers(1, max_weight + 1, len(row))
                elif weights == "loguniform":
                    impacts = _log_uniform_weights(rng, len(row), max_weight)
                else:
                    raise SpladeError(f"weights must be 'loguniform' or 'uniform', not {weights!r}")
                if float_scale:
                    noise = rng.uniform(-0.49, 0.49, len(row))
                    noise[rng.random(len(row)) < 0.1] = 0.5  # exactly on the rounding boundary
                    values = [repr((w + e) / float_scale) for w, e in zip(impacts.tolist(), noise.tolist())]
                else:
                    values = [str(w) for w in impacts.tolist()]
                body = ", ".join(f"{quoted[t]}: {v}" for t, v in zip(row.tolist(), values))
                doc_id = f"doc{start + i}"
                files[(start + i) % shards].write(f'{{"id": "{doc_id}", "contents": "", "vector": {{{body}}}}}\n')
                postings += len(row)
                total += int(impacts.sum())
    finally:
        for f in files:
            f.close()
    return {"docs": docs, "shards": shards, "postings": postings, "impact_sum": total, "vocab": len(vocab)}


def synthetic_queries(n: int, terms: int = 20, max_weight: int = 300, seed: int = 1, vocab_size: int = 30_000,
                      float_scale: float | None = None) -> dict[str, dict[str, float]]:
    """``n`` SPLADE-like queries over the same vocabulary as :func:`synthetic_vectors`."""
    rng = np.random.default_rng(seed)
    vocab = synthetic_vocab(vocab_size, 0)
    queries: dict[str, dict[str, float]] = {}
    skip = min(100, len(vocab) // 10)  # like stopwords, the most frequent terms rarely weigh in a SPLADE query
    sampled = _zipf_terms(rng, len(vocab) - skip, n, terms, exponent=0.8) + skip
    for i in range(n):
        row = list(dict.fromkeys(sampled[i].tolist()))
        weights = _log_uniform_weights(rng, len(row), max_weight)
        if float_scale:
            queries[f"q{i}"] = {vocab[t]: (w + float(rng.uniform(-0.49, 0.49))) / float_scale
                                for t, w in zip(row, weights.tolist())}
        else:
            queries[f"q{i}"] = {vocab[t]: int(w) for t, w in zip(row, weights.tolist())}
    return queries


def round_vectors(src_dir: str | os.PathLike, dst_dir: str | os.PathLike, scale: float) -> None:
    """Copy JsonVectorCollection shards with every weight replaced by its quantised integer (zeros dropped)."""
    dst = Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    for shard in sorted(Path(src_dir).glob("*.jsonl")):
        with open(shard, encoding="utf-8") as fin, open(dst / shard.name, "w", encoding="utf-8") as fout:
            for line in fin:
                if not line.strip():
                    continue
                obj = json.loads(line)
                obj["vector"] = {t: q for t, w in obj["vector"].items() if (q := quantize_weight(w, scale)) > 0}
                fout.write(json.dumps(obj) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# Indexing

def stock_index(vectors_dir: str | os.PathLike, index_dir: str | os.PathLike, threads: int = 2,
                store_docvectors: bool = True) -> float:
    """Anserini's stock impact indexing (JsonVectorCollection + DefaultLuceneDocumentGenerator); returns seconds."""
    from ..anserini import run_java
    from ..fileio import atomic_directory

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
    return time.perf_counter() - start


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


def _time_both(vectors_dir: Path, work: Path, label: str, threads: int, scale: float | None,
               check: bool | None) -> dict:
    from .. import javaext

    stock_dir, fast_dir = work / f"{label}-stock", work / f"{label}-fast"
    stock_s = stock_index(vectors_dir, stock_dir, threads=threads)
    fast = javaext.fast_index(vectors_dir, fast_dir, scale=scale, threads=threads)
    row = {"corpus": label, "docs": fast.get("indexed"), "stock_s": round(stock_s, 2),
           "fast_s": round(fast["seconds"], 2), "ratio": round(stock_s / fast["seconds"], 2),
           "stock_mb": round(_dir_size(stock_dir) / 2**20, 1), "fast_mb": round(_dir_size(fast_dir) / 2**20, 1)}
    if check is None:
        check = scale is None and (fast.get("indexed") or 0) <= 20_000
    if check:  # with a scale, stock Anserini truncates float weights and the indexes legitimately differ
        row["identical_postings"] = javaext.compare_indexes(stock_dir, fast_dir) == []
    shutil.rmtree(stock_dir, ignore_errors=True)
    shutil.rmtree(fast_dir, ignore_errors=True)
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
                max_weight: int = 300, weights: str = "loguniform", check: bool | None = None) -> dict:
    """Time stock versus extension indexing; prints a table and ``ratio_vs_stock=<x>`` (synthetic corpus if any).

    Both run Anserini's IndexCollection in a Java subprocess with ``-impact -pretokenized -storeDocvectors`` and
    ``threads`` threads; times are wall clock, JVM start-up included. ``vectors_dir``: JsonVectorCollection shards to
    time as well (``scale`` for float weights, which stock Anserini truncates). ``synthetic_docs``: size of the
    synthetic corpus (0 to skip): ``terms`` terms a document with weights 1..``max_weight`` (``weights``:
    ``loguniform``, SPLADE-like with mean ~52, or ``uniform``), in ``2 * threads`` shards. ``check``: also compare
    the indexes' postings (default: for corpora up to 20,000 documents).
    """
    from .. import javaext

    if javaext.extension_jar() is None:
        raise SpladeError("the Java extension is not available (no javac >= 21); nothing to compare.")
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="splade-bench-index-", dir=work_dir))
    try:
        if vectors_dir is not None:
            staged = _staged(Path(vectors_dir), work)
            rows.append(_time_both(staged, work, Path(vectors_dir).resolve().name, threads, scale, check))
            shutil.rmtree(staged, ignore_errors=True)
        if synthetic_docs:
            synth = work / "synthetic"
            t0 = time.perf_counter()
            info = synthetic_vectors(synth, synthetic_docs, terms=terms, max_weight=max_weight,
                                     shards=max(2, 2 * threads), weights=weights)
            print(f"synthetic corpus: {info['docs']:,} docs, {info['postings']:,} postings, "
                  f"{info['impact_sum']:,} pseudo-document tokens ({weights} weights 1-{max_weight}; "
                  f"{time.perf_counter() - t0:.1f}s to write)")
            rows.append(_time_both(synth, work, f"synthetic-{synthetic_docs}", threads, None, check))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_table(rows)
    ratio = rows[-1]["ratio"] if rows else float("nan")
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
    from .. import javaext
    from ..anserini import autoclass

    batch = javaext.BatchSearcher(fast_index_dir)
    qids = list(queries)
    fast = batch.search([queries[q] for q in qids], qids, k=k, threads=threads, scale=scale)
    batch.close()
    simple = autoclass("io.anserini.search.SimpleImpactSearcher")(str(stock_index_dir))
    HashMap, Integer = autoclass("java.util.HashMap"), autoclass("java.lang.Integer")
    mismatched = []
    hits = 0
    for q in qids:
        ints = {t: v for t, w in queries[q].items() if (v := quantize_weight(w, scale)) > 0}
        expected = _stock_hits(simple, ints, k, HashMap, Integer)
        hits += len(expected)
        if expected != fast[q]:
            mismatched.append(q)
    simple.close()
    return {"queries": len(qids), "hits": hits, "mismatched": mismatched}


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
