"""The encoding benchmark runs both paths on the same texts and finds the same integer vectors as Pyserini's."""

from __future__ import annotations

import importlib.util
import json

import pytest

from helpers import extension_in_this_jvm, run_cli, run_main_as_process


@pytest.mark.slow  # imports Pyserini's encoders (~10 s of CPU where nothing did yet)
def test_bench_encode_agrees_with_pyserini(vaswani):
    # the command in this process: the benchmark's numbers are not under test, its checks and output are
    proc = run_main_as_process("bench", "encode", "--encoder", "splade-tiny", "--corpus", vaswani, "--limit", "64",
                               "--device", "cpu", "--peers", "pyserini")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert out[-1].startswith("ratio_vs_pyserini=") and float(out[-1].split("=")[1]) > 0
    checks = dict(line[len("check "):].split(": ") for line in out if line.startswith("check "))
    # the same fp32 maths: integer weights agree, bar a rounding flip at an exact .5 boundary
    assert float(checks["identical_int_vectors_vs_pyserini"]) >= 0.95
    assert int(checks["max_int_weight_diff_vs_pyserini"]) <= 1
    assert any(line.startswith("pyserini SpladeDocumentEncoder") for line in out), "the real Pyserini encoder ran"


def test_synthetic_vectors_follow_the_fitted_shapes(tmp_path):
    """The default synthetic corpus has splade-tiny's impact shape (mean ~32 per posting, skewed: median < mean,
    capped at 140) and log-normal lengths around the asked mean; log-uniform stays available (mean ~52)."""
    import json

    import numpy as np

    from splade_pyserini.bench.synthetic import synthetic_queries, synthetic_vectors

    info = synthetic_vectors(tmp_path / "fitted", 3000, terms=150, shards=2, seed=3)
    impacts, lengths = [], []
    for shard in sorted((tmp_path / "fitted").glob("*.jsonl")):
        for line in shard.read_text().splitlines():
            vector = json.loads(line)["vector"]
            lengths.append(len(vector))
            impacts.extend(vector.values())
    impacts, lengths = np.array(impacts), np.array(lengths)
    assert info["docs"] == len(lengths) == 3000 and info["postings"] == len(impacts)
    assert info["impact_sum"] == impacts.sum()
    assert 29 <= impacts.mean() <= 35 and np.median(impacts) < impacts.mean() and impacts.max() <= 140
    assert impacts.min() >= 1
    assert 140 <= lengths.mean() <= 160 and lengths.std() > 30  # varied lengths, not all equal
    loguniform = synthetic_vectors(tmp_path / "lu", 500, terms=100, shards=1, seed=3, weights="loguniform")
    assert 45 <= loguniform["impact_sum"] / loguniform["postings"] <= 60
    queries = synthetic_queries(200, terms=30)
    assert 25 <= np.mean([len(q) for q in queries.values()]) <= 35
    assert all(1 <= w <= 140 for q in queries.values() for w in q.values())


def test_synthetic_queries_use_the_vocabulary_of_vectors_of_any_seed(tmp_path):
    """Queries are drawn from the vocabulary the documents use, whatever seed made the documents."""
    import json

    from splade_pyserini.bench.synthetic import synthetic_queries, synthetic_vectors

    synthetic_vectors(tmp_path, 400, terms=150, shards=1, seed=3)
    indexed = {t for path in tmp_path.glob("*.jsonl") for line in path.read_text().splitlines()
               for t in json.loads(line)["vector"]}
    asked = [t for q in synthetic_queries(50, terms=30, seed=7).values() for t in q]
    # ~0.8 (the Zipf tail of 400 documents misses rare terms); a vocabulary that followed the seed gave ~0.2
    assert sum(t in indexed for t in asked) / len(asked) > 0.6


@pytest.mark.slow
def test_fast_indexer_postings_equal_stock_on_a_realistic_sample(tmp_path):
    """IndexCompare: the extension's index of fitted synthetic vectors has stock Anserini's postings, norms and
    term vectors; `bench index` reports it and a ratio."""
    proc = run_cli("bench", "index", "--synthetic", "2000", "--threads", "2", "--no-documents", entry_point=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert out[-1].startswith("ratio_vs_stock=") and float(out[-1].split("=")[1]) > 0
    assert any("fitted weights, mean 3" in line for line in out), out
    header = next(line.split() for line in out if line.startswith("corpus"))
    row = next(line.split() for line in out if line.startswith("synthetic-2000"))
    assert dict(zip(header, row))["identical_postings"] == "True"


@pytest.mark.slow
def test_bench_scale_finds_identical_results_and_resumes(tmp_path):
    """`bench scale` at two small sizes: both searchers agree on every query at each k, the indexes are kept and a
    second run reuses them (no vectors written again)."""
    args = ("bench", "scale", "--synthetic", "600,1200", "--work-dir", tmp_path, "--queries", "20", "--hits",
            "10,100", "--repeats", "1")
    # in this process when its JVM has (or can still be given) the extension, as the command needs; else a fresh one
    run = run_main_as_process if extension_in_this_jvm() else lambda *a: run_cli(*a, entry_point=True)
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout.splitlines()
    assert out[-1].startswith("ratio_vs_stock=") and float(out[-1].split("=")[1]) > 0
    header = next(line.split() for line in out if line.startswith("docs"))
    rows = [dict(zip(header, line.split())) for line in out if line.split() and line.split()[0] in ("600", "1200")]
    assert [(r["docs"], r["k"]) for r in rows] == [("600", "10"), ("600", "100"), ("1200", "10"), ("1200", "100")]
    assert all(r["identical"] == "20/20" for r in rows), rows
    # CPU time beside wall clock: each path's process CPU, and its ratio
    assert all(float(r["ours_cpu_ms"]) > 0 and float(r["stock_cpu_ms"]) > 0 for r in rows), rows
    assert all(abs(float(r["cpu_ratio"]) - float(r["stock_cpu_ms"]) / float(r["ours_cpu_ms"])) < 0.02 * float(r["cpu_ratio"]) + 0.01
               for r in rows), rows
    assert any(line.startswith("cpu_ratio_k100=") for line in out)
    assert all((tmp_path / f"{kind}-{n}").is_dir() for kind in ("fast", "stock") for n in (600, 1200))
    assert not list(tmp_path.glob("vectors-*"))  # deleted once indexed
    records = (tmp_path / "times.json").read_text()
    assert '"fast-1200"' in records and '"stock-600"' in records
    again = run(*args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "times.json").read_text() == records  # nothing was built again
    assert "built in" not in again.stderr and again.stdout.splitlines()[-1].startswith("ratio_vs_stock=")
    if importlib.util.find_spec("seismic") is None:
        return  # pyseismic-lsr is not installed: the approximate engine's part is tested where it is
    # --seismic on the kept indexes: only the Seismic ones are built (from the same seed's vectors, deleted again),
    # and each row reports its recall against the exact hits
    third = run(*args, "--seismic")
    assert third.returncode == 0, third.stderr[-2000:]
    out = third.stdout.splitlines()
    header = next(line.split() for line in out if line.startswith("docs"))
    rows = [dict(zip(header, line.split())) for line in out if line.split() and line.split()[0] in ("600", "1200")]
    assert len(rows) == 4 and all(0.9 <= float(r["seismic_recall"]) <= 1 for r in rows), rows
    assert all(r["identical"] == "20/20" and float(r["seismic_ms"]) > 0 for r in rows), rows
    assert all((tmp_path / f"seismic-{n}").is_dir() for n in (600, 1200)) and not list(tmp_path.glob("vectors-*"))
    after = json.loads((tmp_path / "times.json").read_text())
    assert {k: v for k, v in after.items() if not k.startswith(("seismic", "vectors"))} == {
        k: v for k, v in json.loads(records).items() if not k.startswith("vectors")}
    assert any(line.startswith("seismic_recall_k10=") for line in out)


def test_bench_scale_sizes_are_checked():
    from splade_pyserini.bench.scale import parse_counts
    from splade_pyserini.errors import SpladeError

    assert parse_counts("100000, 1_000_000", "--synthetic") == [100000, 1000000]
    for bad in ("1e5", "", "0", "10,-1"):
        with pytest.raises(SpladeError, match="--synthetic must be comma-separated"):
            parse_counts(bad, "--synthetic")


def _reference_vectors(out, docs, shards, seed, terms=150, float_scale=None):
    """The fitted synthetic documents written the straightforward way, one document and one posting at a time,
    drawing from the generator in the order `synthetic_vectors` documents (per block of 2,000: lengths, Zipf term
    draws, one uniform per distinct (document, term) for the order, impacts; then any float noise per document)."""
    import json
    import math

    import numpy as np

    from splade_pyserini.bench import synthetic as syn

    rng = np.random.default_rng(seed)
    vocab = syn.synthetic_vocab(30_000)
    cdf = np.cumsum(1.0 / np.arange(1, len(vocab) + 1))
    cdf /= cdf[-1]
    lines = [[] for _ in range(shards)]
    for start in range(0, docs, 2000):
        n = min(2000, docs - start)
        mu = math.log(terms) - syn.DOC_LENGTH_SIGMA ** 2 / 2
        lengths = np.clip(np.rint(rng.lognormal(mu, syn.DOC_LENGTH_SIGMA, n)), 1, 4 * terms).astype(int).tolist()
        draws = rng.random(sum(2 * length + 8 for length in lengths))
        at, distinct = 0, []
        for length in lengths:
            distinct.append(sorted({int(np.searchsorted(cdf, u, side="right")) for u in draws[at:at + 2 * length + 8]}))
            at += 2 * length + 8
        shuffle = iter(rng.random(sum(map(len, distinct))).tolist())
        rows = []
        for length, row in zip(lengths, distinct):
            keyed = [(next(shuffle), i, t) for i, t in enumerate(row)]
            rows.append([t for _, _, t in sorted(keyed)][:length])
        impacts = iter(np.clip(np.rint(syn.DOC_WEIBULL_SCALE * rng.weibull(syn.DOC_WEIBULL_SHAPE, sum(map(len, rows)))),
                               1, syn.FITTED_MAX_IMPACT).astype(int).tolist())
        weights = [[next(impacts) for _ in row] for row in rows]
        for i, (row, ws) in enumerate(zip(rows, weights)):
            if float_scale:
                noise = rng.uniform(-0.49, 0.49, len(row))
                noise[rng.random(len(row)) < 0.1] = 0.5
                ws = [(w + e) / float_scale for w, e in zip(ws, noise.tolist())]
            doc = {"id": f"doc{start + i}", "contents": "", "vector": {vocab[t]: w for t, w in zip(row, ws)}}
            lines[(start + i) % shards].append(json.dumps(doc) + "\n")
    for s, shard in enumerate(lines):
        (out / f"part-{s:05d}.jsonl").write_text("".join(shard))


@pytest.mark.parametrize("float_scale", [None, 4.0])
def test_synthetic_vectors_equal_a_one_document_at_a_time_reference(tmp_path, float_scale):
    """The vectorised writer gives, byte for byte, the files of a plain reference drawing the same random numbers
    (more than one block of 2,000 documents, several shards, integer and float weights)."""
    from splade_pyserini.bench.synthetic import synthetic_vectors

    (tmp_path / "ref").mkdir()
    _reference_vectors(tmp_path / "ref", 2300, shards=3, seed=5, terms=40, float_scale=float_scale)
    info = synthetic_vectors(tmp_path / "new", 2300, terms=40, shards=3, seed=5, float_scale=float_scale)
    names = sorted(p.name for p in (tmp_path / "ref").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "new").iterdir()) and len(names) == 3
    for name in names:
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
    assert info["docs"] == 2300
