"""The Java extension (splade_pyserini.javaext): the fast index is the stock index, batch search is the stock search.

Java work runs in subprocesses (javac, Anserini's IndexCollection, IndexCompare). Searches that need the in-process
JVM run in this process when its JVM has the extension on its classpath (or has not started: it then starts with
it), which saves a Python and a JVM start and the JIT's warm-up each; else in a Python child with its own JVM, so
these tests work whatever else in the test session has started a JVM.
"""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from pathlib import Path

import pytest

from helpers import extension_in_this_jvm, run_python
from splade_pyserini import javabuild, javaext
from splade_pyserini.bench import index_search as bench_java
from splade_pyserini.errors import SpladeError
from splade_pyserini.jdk import find_javac

SHARED = Path(__file__).resolve().parents[2] / "shared"
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(javabuild.extension_jar() is None,
                                reason="no shipped jar matching the Java sources and no javac >= 21 to build one")


def _in_child(code: str) -> dict:
    """Run ``code`` (which prints one JSON line last) where a JVM with the extension is: this process's when it has
    (or can still be given) the extension's jar, else a fresh Python's."""
    if extension_in_this_jvm():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(textwrap.dedent(code), "<in-process child>", "exec"), {"__name__": "__child__"})
        return json.loads(out.getvalue().strip().splitlines()[-1])
    proc = run_python(textwrap.dedent(code), cwd=REPO, env={"PYTHONPATH": REPO}, timeout=None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _compare_search_in_child(stock_index: Path, fast_index: Path, queries: dict, k: int, scale: float) -> dict:
    return _in_child(f"""
        import json
        from splade_pyserini import javabuild, javaext
        from splade_pyserini.bench import index_search as bench_java
        javaext.enable()
        queries = json.loads({json.dumps(json.dumps(queries))})
        print(json.dumps(bench_java.compare_search({str(stock_index)!r}, {str(fast_index)!r}, queries,
                                                   k={k}, scale={scale}, threads=2)))
    """)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """2,000 SPLADE-like documents (integer weights 1-300), their stock and fast indexes, and 40 queries."""
    root = tmp_path_factory.mktemp("javaext")
    vectors = root / "vectors"
    info = bench_java.synthetic_vectors(vectors, 2000, terms=150, max_weight=300, shards=3, seed=11)
    stock, fast = root / "stock", root / "fast"
    bench_java.stock_index(vectors, stock, threads=2)
    stats = javaext.fast_index(vectors, fast, threads=2)
    queries = bench_java.synthetic_queries(40, terms=25, seed=12)
    return {"root": root, "vectors": vectors, "info": info, "stock": stock, "fast": fast, "stats": stats,
            "queries": queries}


@pytest.mark.slow  # a JVM in a subprocess
@pytest.mark.skipif(find_javac() is None, reason="the Java tests are compiled, and no javac >= 21 was found")
def test_java_unit_tests_pass(monkeypatch):
    # one JVM computing for a minute: C2 pays for itself (C1-only code, the tests' default, took ~40% more CPU)
    monkeypatch.setenv("SPLADE_PYSERINI_JAVA_OPTIONS", "")
    report = javabuild.run_java_tests()
    assert "FAIL" not in report
    assert report.strip().splitlines()[-1].startswith("OK ")


def test_quantize_rule_in_python():
    assert [bench_java.quantize_weight(w, 1) for w in (0.5, 1.5, 2.5, -0.5, 0.49, 1e-9)] == [1, 2, 3, -1, 0, 0]
    assert bench_java.quantize_weight(0.37, 51.2) == 19


@pytest.mark.slow  # a JVM in a subprocess
def test_fast_index_has_the_stock_postings(synthetic):
    assert synthetic["stats"]["indexed"] == 2000
    assert synthetic["stats"]["errors"] == 0
    # postings (doc, tf) of every term, norms and term vectors, by external docid
    assert javaext.compare_indexes(synthetic["stock"], synthetic["fast"]) == []


@pytest.mark.slow  # a JVM in a subprocess
def test_index_compare_sees_a_difference(synthetic, tmp_path):
    vectors = tmp_path / "v"
    vectors.mkdir()
    lines = (synthetic["vectors"] / "part-00000.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    term = next(iter(first["vector"]))
    first["vector"][term] += 1
    (vectors / "part-00000.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    for name in ("part-00001.jsonl", "part-00002.jsonl"):
        (vectors / name).write_text((synthetic["vectors"] / name).read_text())
    javaext.fast_index(vectors, tmp_path / "changed", threads=1, store_docvectors=False)
    diffs = javaext.compare_indexes(synthetic["stock"], tmp_path / "changed")
    assert any(first["id"] in d and term in d for d in diffs), diffs


@pytest.mark.slow  # a JVM in a subprocess
def test_batch_search_equals_the_stock_search(synthetic):
    result = _compare_search_in_child(synthetic["stock"], synthetic["fast"], synthetic["queries"], k=100, scale=1.0)
    assert result["queries"] == 40 and result["hits"] > 1000
    assert result["mismatched"] == []


@pytest.mark.slow  # a JVM in a subprocess
def test_anserini_search_collection_gives_the_same_run(synthetic, tmp_path):
    from splade_pyserini.anserini import run_java

    topics = tmp_path / "topics.tsv"
    with open(topics, "w") as f:
        for qid, vec in list(synthetic["queries"].items())[:10]:
            f.write(qid + "\t" + " ".join(t for t, w in vec.items() for _ in range(int(w))) + "\n")
    runs = []
    for name in ("stock", "fast"):
        run = tmp_path / f"{name}.txt"
        run_java("io.anserini.search.SearchCollection",
                 ["-index", str(synthetic[name]), "-topics", str(topics), "-topicReader", "TsvString",
                  "-output", str(run), "-impact", "-pretokenized", "-hits", "100"], quiet=True)
        runs.append(run.read_text())
    assert runs[0] and runs[0] == runs[1]


@pytest.mark.slow  # a JVM in a subprocess
def test_float_vectors_with_a_scale_equal_the_prerounded_stock_index(tmp_path):
    floats, rounded = tmp_path / "floats", tmp_path / "rounded"
    bench_java.synthetic_vectors(floats, 600, terms=60, max_weight=300, shards=2, seed=5, float_scale=4.0)
    assert "." in (floats / "part-00000.jsonl").read_text()[:2000]
    bench_java.round_vectors(floats, rounded, 4.0)
    bench_java.stock_index(rounded, tmp_path / "stock", threads=2)
    javaext.fast_index(floats, tmp_path / "fast", scale=4.0, threads=2)
    assert javaext.compare_indexes(tmp_path / "stock", tmp_path / "fast") == []

    queries = bench_java.synthetic_queries(15, terms=20, seed=6, float_scale=4.0)
    result = _compare_search_in_child(tmp_path / "stock", tmp_path / "fast", queries, k=50, scale=4.0)
    assert result["hits"] > 0 and result["mismatched"] == []


@pytest.mark.slow  # a JVM in a subprocess
def test_parquet_shards_index_like_jsonl(synthetic, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [json.loads(line) for f in sorted(synthetic["vectors"].glob("*.jsonl")) for line in open(f)]
    folder = tmp_path / "parquet"
    folder.mkdir()
    half = len(rows) // 2
    for i, (part, compression) in enumerate(((rows[:half], "snappy"), (rows[half:], "zstd"))):
        table = pa.table({
            "id": [r["id"] for r in part],
            "terms": [list(r["vector"]) for r in part],
            "weights": pa.array([[float(w) for w in r["vector"].values()] for r in part], type=pa.list_(pa.float32())),
        })
        pq.write_table(table, folder / f"part-{i}.parquet", compression=compression)
    javaext.fast_index(folder, tmp_path / "index", threads=2)
    assert javaext.compare_indexes(synthetic["stock"], tmp_path / "index") == []


@pytest.mark.slow  # a JVM in a subprocess
def test_malformed_line_names_file_and_line(tmp_path):
    vectors = tmp_path / "bad"
    vectors.mkdir()
    (vectors / "part-0.jsonl").write_text('{"id": "a", "vector": {"x": 1}}\n\n{"id": "b", "vector": {"x": 1,}}\n')
    index = tmp_path / "index"
    with pytest.raises(SpladeError) as e:
        javaext.fast_index(vectors, index, threads=1)
    assert "part-0.jsonl:3:" in str(e.value)
    assert not index.exists()  # the half-built index was thrown away


@pytest.mark.slow  # a JVM in a subprocess
def test_fractional_weights_need_a_scale(tmp_path):
    vectors = tmp_path / "v"
    vectors.mkdir()
    (vectors / "part-0.jsonl").write_text('{"id": "a", "vector": {"x": 0.37}}\n')
    with pytest.raises(SpladeError, match=r"part-0\.jsonl:1: .*scale"):
        javaext.fast_index(vectors, tmp_path / "index", threads=1)
    stats = javaext.fast_index(vectors, tmp_path / "index", scale=100, threads=1, store_docvectors=False)
    assert stats["indexed"] == 1


@pytest.mark.slow  # a JVM in a subprocess
def test_metadata_and_hidden_files_are_not_read(tmp_path):
    vectors = tmp_path / "v"
    vectors.mkdir()
    (vectors / "vectors-00000.jsonl").write_text('{"id": "a", "contents": "", "vector": {"x": 2, "y": 1}}\n')
    (vectors / "encoding.json").write_text(json.dumps({"encoder": "splade-tiny", "scale": 100}, indent=2))
    (vectors / ".vectors-00001.jsonl.tmp").write_text("partial garbage\n")
    assert [p.name for p in javaext.shard_files(vectors)] == ["vectors-00000.jsonl"]
    stats = javaext.fast_index(vectors, tmp_path / "index", threads=1)
    assert stats["indexed"] == 1 and stats["errors"] == 0


def test_no_shards_is_an_error(tmp_path):
    with pytest.raises(SpladeError, match="no vector shards"):
        javaext.fast_index(tmp_path, tmp_path / "index")


def test_extension_jar_is_verified_and_reused():
    jar = javabuild.extension_jar()
    assert jar is not None and jar.is_file()
    root = javabuild.java_source_dir()
    record = javabuild.source_record(root)
    # the shipped jar when it matches the sources, else the one built into the cache (see tests/test_no_java.py)
    assert jar.parent in (root / javabuild.SHIPPED_DIR, javabuild.cache_dir() / javabuild.cache_key(record))
    assert javabuild.verified_jar(jar.parent, record) == jar
    assert javabuild.build() == jar  # same sources, same Anserini: no rebuild


@pytest.mark.slow  # a JVM in a subprocess
@pytest.mark.skipif(not (SHARED / "collections" / "cranfield").is_dir(), reason="needs ../shared/collections")
def test_cranfield_bag_of_words_vectors(tmp_path):
    """Real text: Cranfield documents and queries as bag-of-words vectors (term counts)."""
    import re
    from collections import Counter

    folder = SHARED / "collections" / "cranfield"
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    with open(folder / "corpus.jsonl") as fin, open(vectors / "part-0.jsonl", "w") as fout:
        for line in fin:
            doc = json.loads(line)
            counts = Counter(re.findall(r"\w+", f"{doc.get('title', '')} {doc.get('text', '')}".lower()))
            fout.write(json.dumps({"id": doc["_id"], "contents": "", "vector": dict(counts)}) + "\n")
    queries = {}
    with open(folder / "queries.jsonl") as f:
        for line in f:
            q = json.loads(line)
            queries[q["_id"]] = dict(Counter(re.findall(r"\w+", q["text"].lower())))
    bench_java.stock_index(vectors, tmp_path / "stock", threads=1)
    javaext.fast_index(vectors, tmp_path / "fast", threads=1)
    assert javaext.compare_indexes(tmp_path / "stock", tmp_path / "fast") == []
    result = _compare_search_in_child(tmp_path / "stock", tmp_path / "fast", queries, k=200, scale=1.0)
    assert result["queries"] == len(queries) and result["mismatched"] == []


# --- the exact search engine (MaxScore with block-max bounds) against SimpleImpactSearcher -----------------------------
KS = (1, 10, 1000)
THREADS = (1, 2)


def _compare_ks_in_child(index: Path, queries: dict, scale: float = 1.0) -> list[dict]:
    """compare_search of BatchSearcher against SimpleImpactSearcher on ``index`` for every k in KS and thread count
    in THREADS, in one child JVM: a list of {k, threads, queries, hits, mismatched}. The queries travel in a file
    beside the index (a whole collection's queries exceed a command line)."""
    queries_file = Path(index).parent / f"{Path(index).name}-queries.json"
    queries_file.write_text(json.dumps(queries))
    return _in_child(f"""
        import json
        from splade_pyserini import javabuild, javaext
        from splade_pyserini.bench import index_search as bench_java
        javaext.enable()
        with open({str(queries_file)!r}) as f:
            queries = json.load(f)
        out = []
        for k in {KS!r}:  # the stock hits of each k computed once, for every thread count
            for r in bench_java.compare_search_threads({str(index)!r}, {str(index)!r}, queries, k, {scale},
                                                       {THREADS!r}):
                out.append({{"k": k, **r}})
        print(json.dumps(out))
    """)


def _assert_identical(results: list[dict], n: int, min_hits_at_1000: int) -> None:
    assert [(r["k"], r["threads"]) for r in results] == [(k, t) for k in KS for t in THREADS]
    for r in results:
        assert r["queries"] == n and r["mismatched"] == [], (r["k"], r["threads"], r["mismatched"][:5])
    assert min(r["hits"] for r in results if r["k"] == 1000) >= min_hits_at_1000


@pytest.mark.slow  # a JVM in a subprocess
def test_exact_search_with_many_ties_equals_simple_impact_searcher(tmp_path):
    """Few distinct small impacts over 40k documents (several windows and skip blocks per term): scores tie
    everywhere, so the k-th hit falls inside long runs of equal scores that the ids decide."""
    vectors = tmp_path / "vectors"
    bench_java.synthetic_vectors(vectors, 40_000, terms=12, max_weight=2, shards=2, seed=21, vocab_size=400,
                                 weights="uniform")
    javaext.fast_index(vectors, tmp_path / "index", threads=2, store_docvectors=False)
    queries = bench_java.synthetic_queries(25, terms=4, max_weight=2, seed=22, vocab_size=400, weights="uniform")
    results = _compare_ks_in_child(tmp_path / "index", queries)
    _assert_identical(results, 25, min_hits_at_1000=25 * 1000)


@pytest.mark.slow  # a JVM in a subprocess
def test_exact_search_on_fitted_synthetic_vectors_equals_simple_impact_searcher(tmp_path):
    """Impacts and lengths fitted to real SPLADE vectors over 20k documents: the pruning skips most postings."""
    vectors = tmp_path / "vectors"
    bench_java.synthetic_vectors(vectors, 20_000, terms=100, shards=2, seed=31)
    javaext.fast_index(vectors, tmp_path / "index", threads=2, store_docvectors=False)
    queries = bench_java.synthetic_queries(30, terms=30, seed=32)
    _assert_identical(_compare_ks_in_child(tmp_path / "index", queries), 30, min_hits_at_1000=30 * 900)


def _splade_tiny_queries(pipeline: dict, encoder) -> dict:
    from splade_pyserini.search import check_compatible

    scale = check_compatible(pipeline["index"], encoder)
    with open(pipeline["collection"] / "queries.jsonl") as f:
        topics = [json.loads(line) for line in f]
    weights = encoder.quantized_queries([t["text"] for t in topics], scale)
    return {t["_id"]: w for t, w in zip(topics, weights)}


def test_exact_search_on_cranfield_splade_tiny_equals_simple_impact_searcher(cranfield_pipeline, tiny_encoder):
    queries = _splade_tiny_queries(cranfield_pipeline, tiny_encoder)
    results = _compare_ks_in_child(cranfield_pipeline["index"], queries)
    _assert_identical(results, len(queries), min_hits_at_1000=len(queries) * 900)


def test_exact_search_on_vaswani_splade_tiny_equals_simple_impact_searcher(vaswani_pipeline, tiny_encoder):
    queries = _splade_tiny_queries(vaswani_pipeline, tiny_encoder)
    results = _compare_ks_in_child(vaswani_pipeline["index"], queries)
    _assert_identical(results, len(queries), min_hits_at_1000=len(queries) * 900)
