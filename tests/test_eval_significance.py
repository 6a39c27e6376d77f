"""Paired tests, Holm and Bonferroni corrections, and the comparison tables."""

import csv
import io
import itertools
import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from splade_pyserini.errors import SpladeError
from splade_pyserini.eval.significance import bonferroni, compare, holm, paired_t_test, randomization_test

SHARED = Path(__file__).resolve().parents[2] / "shared"


# --- corrections ----------------------------------------------------------------------------------------------------

def test_bonferroni_and_holm_on_known_p_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # Bonferroni: m p capped at 1.
    assert bonferroni(p) == pytest.approx([0.04, 0.16, 0.12, 0.02])
    # Holm by hand: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06.
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capping at 1 and monotonicity.
    assert holm([0.2, 0.6, 0.9]) == pytest.approx([0.6, 1.0, 1.0])
    assert bonferroni([0.5, 0.2]) == pytest.approx([1.0, 0.4])


def test_corrections_skip_nan_entries():
    adj = holm([0.01, math.nan, 0.04])
    assert math.isnan(adj[1])
    assert adj[0] == pytest.approx(0.02) and adj[2] == pytest.approx(0.04)
    b = bonferroni([math.nan, 0.3])
    assert math.isnan(b[0]) and b[1] == pytest.approx(0.3)


def _holm_reference(p):
    """Holm as statsmodels documents it, written out directly."""
    p = np.asarray(p, float)
    m = len(p)
    order = np.argsort(p)
    adj_sorted = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj_sorted
    return out


def test_corrections_match_reference_formulas_on_random_p_values():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.3, size=rng.integers(1, 12))
        p[rng.integers(0, len(p))] = p[0]  # a tie
        assert holm(p) == pytest.approx(_holm_reference(p))
        assert bonferroni(p) == pytest.approx(np.minimum(1, p * len(p)))


def test_corrections_match_statsmodels():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(11)
    p = rng.uniform(0, 0.2, size=9)
    for method in ("holm", "bonferroni"):
        _, expected, _, _ = multitest.multipletests(p, method=method)
        got = holm(p) if method == "holm" else bonferroni(p)
        assert got == pytest.approx(expected, abs=1e-12)


# --- tests ------------------------------------------------------------------------------------------------------------

def test_paired_t_test_matches_the_formula():
    rng = np.random.default_rng(0)
    a, b = rng.random(40), rng.random(40)
    d = a - b
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    expected = 2 * stats.t.sf(abs(t), len(d) - 1)
    assert paired_t_test(a, b) == pytest.approx(expected, rel=1e-9)
    assert paired_t_test(a, a) == 1.0
    assert math.isnan(paired_t_test([0.3], [0.1]))


def test_randomization_test_approaches_the_exact_permutation_p_value():
    rng = np.random.default_rng(5)
    c = rng.random(12)
    t = c + rng.normal(0.08, 0.15, 12)
    d = t - c
    observed = abs(d.mean())
    flips = np.array(list(itertools.product([-1, 1], repeat=len(d))))
    exact = np.mean(np.abs(flips @ d) / len(d) >= observed - 1e-12)
    p = randomization_test(t, c, n_permutations=20_000, seed=1)
    assert abs(p - exact) < 0.015
    # Reproducible from its seed; a different seed gives another Monte Carlo estimate.
    assert randomization_test(t, c, 20_000, seed=1) == p
    assert randomization_test(t, c, 2_000, seed=2) != randomization_test(t, c, 2_000, seed=3)
    # Never 0: (b + 1) / (N + 1).
    assert randomization_test(c + 1.0, c, 500, seed=0) == pytest.approx(1 / 501)


# --- compare on real data -------------------------------------------------------------------------------------------

def _tokens(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def _bm25_runs(folder: Path, k: int = 100):
    """Two BM25 parameterisations over a BEIR folder: small real runs for the tests."""
    docs = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            docs[o["_id"]] = Counter(_tokens(f"{o.get('title', '')} {o['text']}"))
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            queries[o["_id"]] = _tokens(o["text"])
    df = Counter(t for tf in docs.values() for t in tf)
    n = len(docs)
    avgdl = sum(sum(tf.values()) for tf in docs.values()) / n
    lengths = {d: sum(tf.values()) for d, tf in docs.items()}
    postings = {}
    for d, tf in docs.items():
        for t, c in tf.items():
            postings.setdefault(t, []).append((d, c))
    runs = {}
    for name, (k1, b) in {"bm25": (0.9, 0.4), "bm25-flat": (3.0, 0.0)}.items():
        run = {}
        for qid, terms in queries.items():
            scores = Counter()
            for t in set(terms):
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) if t in df else 0.0
                for d, c in postings.get(t, []):
                    scores[d] += idf * c * (k1 + 1) / (c + k1 * (1 - b + b * lengths[d] / avgdl))
            top = sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:k]
            # Distinct scores, in the same order: no tie-breaking differences between evaluators.
            run[qid] = {d: float(len(top) - i) for i, (d, _) in enumerate(top)}
        runs[name] = run
    return runs


def _ndcg10(grades, run_q):
    ranking = [d for d, _ in sorted(run_q.items(), key=lambda x: -x[1])][:10]
    dcg = sum(grades.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking) if grades.get(d, 0) > 0)
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


@pytest.fixture(scope="module")
def cranfield_runs():
    folder = SHARED / "collections" / "cranfield"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"shared Cranfield collection not found at {folder}")
    from splade_pyserini.runs import read_qrels

    qrels = read_qrels(folder)
    runs = _bm25_runs(folder)
    # A third, worse system: BM25's top 100 reversed.
    runs["reversed"] = {q: {d: -s for d, s in docs.items()} for q, docs in runs["bm25"].items()}
    return qrels, runs


def test_compare_on_cranfield(cranfield_runs):
    qrels, runs = cranfield_runs
    table = compare(qrels, runs, "bm25", ["ndcg@10", "map"], n_permutations=2000, seed=7)
    qids = list(qrels)
    base = np.array([_ndcg10(qrels[q], runs["bm25"].get(q, {})) for q in qids])
    assert table.row("bm25", "ndcg@10").mean == pytest.approx(base.mean(), abs=1e-9)
    p_values = {}
    for system in ("bm25-flat", "reversed"):
        other = np.array([_ndcg10(qrels[q], runs[system].get(q, {})) for q in qids])
        row = table.row(system, "ndcg@10")
        d = other - base
        assert row.n_queries == len(qids) == 225
        assert row.mean == pytest.approx(other.mean(), abs=1e-9)
        assert row.delta == pytest.approx(d.mean(), abs=1e-9)
        assert (row.wins, row.ties, row.losses) == (int((d > 1e-9).sum()), int((abs(d) <= 1e-9).sum()),
                                                    int((d < -1e-9).sum()))
        assert row.p["student"] == pytest.approx(stats.ttest_rel(other, base).pvalue, rel=1e-6)
        # The randomisation and t-test p-values agree roughly at n = 225.
        assert abs(row.p["fisher"] - row.p["student"]) < 0.05 or max(row.p.values()) < 0.01
        p_values[system] = row
    assert table.row("reversed", "ndcg@10").delta < -0.2
    assert table.row("reversed", "ndcg@10").p["student"] < 1e-6
    # Corrections over the whole family: 2 systems x 2 metrics = 4 p-values per test.
    tested = [r for r in table.rows if r.system != "bm25"]
    assert len(tested) == 4
    for test in ("student", "fisher"):
        raw = [r.p[test] for r in tested]
        for r, h, b in zip(tested, _holm_reference(raw), np.minimum(1, np.array(raw) * 4)):
            assert r.adjusted[test]["holm"] == pytest.approx(h)
            assert r.adjusted[test]["bonferroni"] == pytest.approx(b)
    # Per-metric families: 2 p-values each.
    per_metric = compare(qrels, runs, "bm25", ["ndcg@10", "map"], tests=["student"], correction=["bonferroni"],
                         family="metric")
    r = per_metric.row("bm25-flat", "map")
    assert r.adjusted["student"]["bonferroni"] == pytest.approx(min(1, 2 * r.p["student"]))


def test_compare_tables_record_seed_and_values(cranfield_runs):
    qrels, runs = cranfield_runs
    table = compare(qrels, {k: runs[k] for k in ("bm25", "reversed")}, "bm25", ["ndcg@10"], n_permutations=999,
                    seed=1234)
    md = table.to_markdown()
    assert "seed 1234" in md and "999 permutations" in md
    assert md.count("\n| ") >= 3  # header + 2 rows
    rows = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert [r["system"] for r in rows] == ["bm25", "reversed"]
    assert all(r["seed"] == "1234" and r["n_permutations"] == "999" for r in rows)
    rev = rows[1]
    assert float(rev["mean"]) == pytest.approx(table.row("reversed", "ndcg@10").mean)
    assert float(rev["p_fisher"]) == pytest.approx(1 / 1000)  # no relabelling beats a huge loss
    assert rev["significant"] == "1"
    assert int(rev["wins"]) + int(rev["ties"]) + int(rev["losses"]) == 225
    tex = table.to_latex()
    assert "\\begin{tabular}" in tex and "seed 1234" in tex and "p\\_fisher\\_holm" in tex
    # Same seed, same table; another seed moves only the randomisation p-values.
    assert compare(qrels, {k: runs[k] for k in ("bm25", "reversed")}, "bm25", ["ndcg@10"], n_permutations=999,
                   seed=1234).to_csv() == table.to_csv()


def test_compare_errors(cranfield_runs):
    qrels, runs = cranfield_runs
    with pytest.raises(SpladeError, match="baseline"):
        compare(qrels, runs, "nope", ["ndcg@10"])
    with pytest.raises(SpladeError, match="unknown test"):
        compare(qrels, runs, "bm25", ["ndcg@10"], tests=["wilcoxon"])
    with pytest.raises(SpladeError, match="unknown correction"):
        compare(qrels, runs, "bm25", ["ndcg@10"], correction=["bh"])
    with pytest.raises(SpladeError, match="at least one other"):
        compare(qrels, {"bm25": runs["bm25"]}, "bm25", ["ndcg@10"])
