"""evaluate-suite, compare and meta end to end, on real Cranfield runs made by a small BM25 in the test."""

import argparse
import csv
import io
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

from splade_pyserini.errors import SpladeError

SHARED = Path(__file__).resolve().parents[2] / "shared"
CRANFIELD = SHARED / "collections" / "cranfield"


def _tokens(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def _bm25(docs, lengths, df, n, avgdl, postings, terms, k1, b):
    scores = Counter()
    for t in set(terms):
        if t not in df:
            continue
        idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
        for d, c in postings[t]:
            scores[d] += idf * c * (k1 + 1) / (c + k1 * (1 - b + b * lengths[d] / avgdl))
    return scores


@pytest.fixture(scope="module")
def suite_inputs(tmp_path_factory):
    """Cranfield split into two query sets (odd and even query ids), with qrels and three systems' runs."""
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"shared Cranfield collection not found at {CRANFIELD}")
    from splade_pyserini.runs import ranked, read_qrels, write_run

    root = tmp_path_factory.mktemp("suite")
    docs = {}
    for line in open(CRANFIELD / "corpus.jsonl", encoding="utf-8"):
        o = json.loads(line)
        docs[o["_id"]] = Counter(_tokens(f"{o.get('title', '')} {o['text']}"))
    queries = {json.loads(x)["_id"]: _tokens(json.loads(x)["text"]) for x in open(CRANFIELD / "queries.jsonl")}
    lengths = {d: sum(tf.values()) for d, tf in docs.items()}
    df = Counter(t for tf in docs.values() for t in tf)
    postings = {}
    for d, tf in docs.items():
        for t, c in tf.items():
            postings.setdefault(t, []).append((d, c))
    n, avgdl = len(docs), sum(lengths.values()) / len(docs)
    systems = {"bm25": (0.9, 0.4), "bm25-b75": (1.2, 0.75), "tf": (50.0, 0.0)}
    qrels = read_qrels(CRANFIELD)
    collections, runs = {}, {s: {} for s in systems}
    for part, keep in (("cran-odd", 1), ("cran-even", 0)):
        qids = [q for q in qrels if int(q) % 2 == keep]
        qfile = root / f"{part}.qrels"
        qfile.write_text("".join(f"{q} 0 {d} {g}\n" for q in qids for d, g in qrels[q].items()))
        collections[part] = qfile
        for system, (k1, b) in systems.items():
            results = {}
            for q in qids:
                scores = _bm25(docs, lengths, df, n, avgdl, postings, queries[q], k1, b)
                results[q] = dict(ranked(scores, 100))
            path = root / f"{system}.{part}.trec"
            write_run(path, results, tag=system)
            runs[system][part] = path
    return root, collections, runs


def _cli(argv):
    from splade_pyserini.eval.cli import add_commands

    parser = argparse.ArgumentParser(prog="splade-pyserini")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_evaluate_suite_command(suite_inputs, tmp_path, capsys):
    from splade_pyserini.eval.meta import meta_analysis
    from splade_pyserini.eval.metrics import evaluate
    from splade_pyserini.runs import read_qrels, read_run

    root, collections, runs = suite_inputs
    out = tmp_path / "out"
    argv = ["evaluate-suite", "--collections", *(f"{c}={p}" for c, p in collections.items()),
            "--runs", *(f"{s}={root}/{s}.{{collection}}.trec" for s in runs),
            "--baseline", "bm25", "--treatment", "bm25-b75", "--output", str(out), "--permutations", "500",
            "--seed", "9"]
    assert _cli(argv) == 0
    for name in ("scores.md", "scores.csv", "scores.tex", "compare-cran-odd.md", "compare-cran-even.csv",
                 "meta.md", "meta.csv", "meta.tex", "forest.png", "suite.json"):
        assert (out / name).is_file(), name
    assert (out / "forest.png").read_bytes()[:4] == b"\x89PNG"

    # Score table = evaluate() means, and the mean column their average.
    rows = {r["system"]: r for r in csv.DictReader(io.StringIO((out / "scores.csv").read_text()))}
    assert set(rows) == set(runs)
    per_query = {}
    for coll, qfile in collections.items():
        qrels = read_qrels(qfile)
        loaded = {s: read_run(runs[s][coll]) for s in runs}
        per_query[coll] = evaluate(qrels, loaded, ["ndcg@10"], per_query=True)
        for s in runs:
            values = list(per_query[coll][s]["ndcg@10"].values())
            assert float(rows[s][coll]) == pytest.approx(sum(values) / len(values), abs=1e-9)
    for s in runs:
        assert float(rows[s]["mean"]) == pytest.approx((float(rows[s]["cran-odd"]) + float(rows[s]["cran-even"])) / 2)

    # The meta-analysis compares the treatment with the baseline on each collection's per-query scores.
    summary = json.loads((out / "suite.json").read_text())
    t = {c: list(per_query[c]["bm25-b75"]["ndcg@10"].values()) for c in collections}
    c_ = {c: list(per_query[c]["bm25"]["ndcg@10"].values()) for c in collections}
    expected = meta_analysis(t, c_, effect="SMD")
    assert summary["meta"]["effect"] == pytest.approx(expected.effect, abs=1e-9)
    assert summary["seed"] == 9 and summary["n_permutations"] == 500
    compare_rows = list(csv.DictReader(io.StringIO((out / "compare-cran-even.csv").read_text())))
    assert {r["system"] for r in compare_rows} == set(runs)
    assert all(r["seed"] == "9" for r in compare_rows)
    printed = capsys.readouterr().out
    assert "combined (RE)" in printed and "bm25-b75" in printed


def test_suite_skips_missing_runs_and_checks_names(suite_inputs, tmp_path):
    from splade_pyserini.eval.suite import evaluate_suite

    root, collections, runs = suite_inputs
    partial = {s: dict(per) for s, per in runs.items()}
    del partial["tf"]["cran-odd"]
    result = evaluate_suite(collections, partial, "bm25", "tf", out_dir=tmp_path / "o", n_permutations=200,
                            plot=False)
    assert "cran-odd" not in result.scores["tf"] and "cran-even" in result.scores["tf"]
    assert [s.name for s in result.meta.sets] == ["cran-even"]
    assert not (tmp_path / "o" / "forest.png").exists()
    md = (tmp_path / "o" / "scores.md").read_text()
    tf_row = next(line for line in md.splitlines() if line.startswith("| tf "))
    assert tf_row.split("|")[-2].strip() == ""  # no mean over an incomplete row
    with pytest.raises(SpladeError, match="no runs"):
        evaluate_suite(collections, partial, "bm25", "nope", out_dir=tmp_path / "o")
    with pytest.raises(SpladeError, match="different"):
        evaluate_suite(collections, partial, "bm25", "bm25", out_dir=tmp_path / "o")


def test_compare_and_meta_commands(suite_inputs, tmp_path, capsys):
    root, collections, runs = suite_inputs
    coll = "cran-odd"
    assert _cli(["compare", "--qrels", str(collections[coll]), "--run",
                 *(f"{s}={runs[s][coll]}" for s in runs), "--metrics", "ndcg@10", "map", "--format", "csv",
                 "--permutations", "300", "--seed", "5"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["system"] for r in rows] == ["bm25", "bm25-b75", "tf", "bm25", "bm25-b75", "tf"]
    assert rows[0]["baseline"] == "bm25" and all(r["seed"] == "5" for r in rows)
    tex = tmp_path / "table.tex"
    assert _cli(["compare", "--qrels", str(collections[coll]), "--run", f"a={runs['tf'][coll]}",
                 f"b={runs['bm25'][coll]}", "--baseline", "b", "--tests", "student", "--corrections",
                 "--format", "latex", "--output", str(tex)]) == 0
    text = tex.read_text()
    assert "\\begin{tabular}" in text and "holm" not in text

    plot = tmp_path / "forest.png"
    assert _cli(["meta", "--qrels", *(f"{c}={p}" for c, p in collections.items()),
                 "--treatment-runs", *(f"{c}={runs['bm25-b75'][c]}" for c in collections),
                 "--control-runs", *(f"{c}={runs['bm25'][c]}" for c in collections),
                 "--treatment", "b75", "--control", "bm25", "--effect", "MD", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG"
    md = capsys.readouterr().out
    assert "MD meta-analysis" in md and "cran-odd" in md and "combined (RE)" in md

    with pytest.raises(SpladeError, match="NAME=PATH"):  # a bare path is a run named by its file; "x=" is nothing
        _cli(["compare", "--qrels", str(collections[coll]), "--run", str(runs["tf"][coll]), "x="])
    with pytest.raises(SpladeError, match="same query sets"):
        _cli(["meta", "--qrels", f"cran-odd={collections['cran-odd']}", "--treatment-runs",
              f"cran-even={runs['tf']['cran-even']}", "--control-runs", f"cran-odd={runs['bm25']['cran-odd']}",
              "--plot", str(plot)])
    with pytest.raises(SpladeError, match="collection"):
        _cli(["evaluate-suite", "--collections", f"a={collections['cran-odd']}", "--runs", "bm25=/nowhere.trec",
              "--baseline", "bm25", "--treatment", "tf", "--output", str(tmp_path / "x")])
