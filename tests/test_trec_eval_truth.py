"""`evaluate` equals trec_eval (Anserini's bundled one, run as a subprocess) to the last printed digit, ties included.

Runs: BM25 on Cranfield (Anserini's defaults), splade-tiny on Cranfield and Vaswani (the session pipelines of
conftest.py), and a constructed two-document tie. Metrics: ndcg@10, map, recall@100, recall@1000, mrr@10 and
ndcg*@10 (``-J`` where the paper's rule applies: on a copy of the Cranfield qrels given judged-non-relevant and
negative lines), per query and mean. trec_eval is never asked through this package's metric code: its parameters
are written out here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from splade_pyserini.eval.judged import uses_judged_only
from splade_pyserini.eval.metrics import evaluate
from splade_pyserini.runs import read_qrels, read_run, write_run

PLAIN = {"ndcg@10": "ndcg_cut_10", "map": "map", "recall@100": "recall_100", "recall@1000": "recall_1000"}
PLAIN_ARGS = ["-c", "-q", "-m", "ndcg_cut.10", "-m", "map", "-m", "recall.100,1000"]


def trec_eval(args: list[str], qrels: Path, run: Path) -> dict[str, dict[str, str]]:
    """``{measure: {qid or 'all': printed value}}`` from ``io.anserini.eval.TrecEval`` in a Java subprocess."""
    from splade_pyserini.anserini import java_command

    proc = subprocess.run(java_command("io.anserini.eval.TrecEval", [*args, str(qrels), str(run)]),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out: dict[str, dict[str, str]] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.setdefault(parts[0], {})[parts[1]] = parts[2]
    assert out, proc.stdout + proc.stderr[-2000:]
    return out


def write_trec_qrels(qrels: dict, path: Path) -> Path:
    with open(path, "w") as f:
        for q, docs in qrels.items():
            for d, g in docs.items():
                f.write(f"{q} 0 {d} {g}\n")
    return path


def assert_same_as_trec_eval(qrels_path: Path, run_path: Path, star_uses_j: bool) -> None:
    qrels, run = read_qrels(qrels_path), read_run(run_path)
    assert uses_judged_only(qrels) == star_uses_j
    ours = evaluate(qrels, {"r": run}, [*PLAIN, "mrr@10", "ndcg*@10"], per_query=True)["r"]
    means = evaluate(qrels, {"r": run}, [*PLAIN, "mrr@10", "ndcg*@10"])["r"]
    theirs = trec_eval(PLAIN_ARGS, qrels_path, run_path)
    theirs["recip_rank@10"] = trec_eval(["-c", "-q", "-M", "10", "-m", "recip_rank"], qrels_path, run_path)["recip_rank"]
    star_args = ["-c", "-q", *(["-J"] if star_uses_j else []), "-m", "ndcg_cut.10"]
    theirs["ndcg*"] = trec_eval(star_args, qrels_path, run_path)["ndcg_cut_10"]
    names = {**PLAIN, "mrr@10": "recip_rank@10", "ndcg*@10": "ndcg*"}
    for metric, measure in names.items():
        printed = theirs[measure]
        assert f"{means[metric]:.4f}" == printed["all"], (metric, means[metric], printed["all"])
        # trec_eval -c prints a line for the queries the run holds; the others count 0 in its mean
        for qid, value in ours[metric].items():
            assert f"{value:.4f}" == printed.get(qid, "0.0000"), (metric, qid, value, printed.get(qid))
        assert set(printed) - {"all"} <= set(ours[metric])


def tie_count(run: dict) -> int:
    return sum(len(docs) - len(set(docs.values())) for docs in run.values())


# --- the constructed tie ------------------------------------------------------------------------------------------
@pytest.mark.slow  # trec_eval (Java) in a subprocess
def test_two_tied_documents_rank_by_docid_descending_as_trec_eval(tmp_path):
    qrels = write_trec_qrels({"q1": {"d1": 0, "d2": 1}}, tmp_path / "qrels.txt")
    run = tmp_path / "run.txt"
    run.write_text("q1 Q0 d1 1 5.0 t\nq1 Q0 d2 2 5.0 t\n")  # file order d1, d2; trec_eval ranks d2 first
    assert evaluate(read_qrels(qrels), {"r": read_run(run)}, ["map"])["r"]["map"] == 1.0
    assert trec_eval(["-c", "-m", "map"], qrels, run)["map"]["all"] == "1.0000"
    assert_same_as_trec_eval(qrels, run, star_uses_j=True)


# --- real runs ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bm25_runs(cranfield, tmp_path_factory):
    from splade_pyserini.retrieve.bm25 import bm25_search, build_bm25_index
    from splade_pyserini.topics import read_topics

    work = tmp_path_factory.mktemp("bm25")
    runs = {}
    for collection in (cranfield,):
        index = build_bm25_index(collection, work / f"{collection.name}-index")
        runs[collection.name] = work / f"{collection.name}.bm25.txt"
        write_run(runs[collection.name], bm25_search(index, read_topics(collection), k=1000))
    return runs


@pytest.fixture(scope="module")
def trec_qrels(cranfield, vaswani, tmp_path_factory):
    work = tmp_path_factory.mktemp("qrels")
    return {c.name: write_trec_qrels(read_qrels(c), work / f"{c.name}.qrels.txt") for c in (cranfield, vaswani)}


@pytest.mark.slow  # trec_eval (Java) in a subprocess
def test_bm25_run_equals_trec_eval(bm25_runs, trec_qrels):
    assert_same_as_trec_eval(trec_qrels["cranfield"], bm25_runs["cranfield"], star_uses_j=False)


@pytest.mark.slow  # trec_eval (Java) in a subprocess
@pytest.mark.parametrize("name", ["cranfield", "vaswani"])
def test_splade_runs_equal_trec_eval(name, request, trec_qrels):
    pipeline = request.getfixturevalue(f"{name}_pipeline")
    run = read_run(pipeline["run"])
    assert tie_count(run) > 100  # integer impact scores tie often
    assert_same_as_trec_eval(trec_qrels[name], pipeline["run"], star_uses_j=False)


def test_ties_in_file_order_would_change_cranfield_splade(cranfield_pipeline, trec_qrels):
    """The issue's case: ranking ties in file order (as ranx does) moves Cranfield's splade-tiny MAP when the file
    lists tied documents in another order (docid ascending, as the search engine returned them); the run the package
    writes lists them in trec_eval's order (runs.ranked), so file order and trec_eval then agree. (MAP alone: each
    ranx metric is one more numba compilation, ~10 s of CPU in a fresh environment.)"""
    from ranx import Qrels as RQrels
    from ranx import Run as RRun
    from ranx import evaluate as ranx_evaluate

    qrels, run = read_qrels(trec_qrels["cranfield"]), read_run(cranfield_pipeline["run"])
    ours = evaluate(qrels, {"r": run}, ["map"], per_query=True)["r"]

    def in_file_order(docs_of):
        values = ranx_evaluate(RQrels(qrels), RRun(docs_of), "map", return_mean=False, make_comparable=True)
        return [q for q, v in zip(RQrels(qrels).keys(), values) if abs(ours["map"][q] - v) > 1e-12]

    ascending = {q: dict(sorted(docs.items(), key=lambda x: (-x[1], x[0]))) for q, docs in run.items()}
    assert in_file_order(ascending)  # ties decide some queries' values
    assert in_file_order(run) == []  # the written run's order is trec_eval's


@pytest.mark.slow  # trec_eval (Java) in a subprocess
def test_judged_only_ndcg_star_equals_trec_eval_J(bm25_runs, trec_qrels, tmp_path):
    """Cranfield's qrels given judged-non-relevant (0) and negative (-1) lines for retrieved documents, so that the
    paper's rule applies: ndcg*@10 = ``trec_eval -J -m ndcg_cut.10`` (which drops negative grades too)."""
    qrels = read_qrels(trec_qrels["cranfield"])
    run = read_run(bm25_runs["cranfield"])
    for i, (qid, docs) in enumerate(sorted(run.items())):
        ranked = sorted(docs, key=lambda d: -docs[d])
        unjudged = [d for d in ranked[:30] if d not in qrels.get(qid, {})]
        for d in unjudged[1::3]:
            qrels.setdefault(qid, {})[d] = 0
        if i % 2 and unjudged:
            qrels.setdefault(qid, {})[unjudged[0]] = -1
    path = write_trec_qrels(qrels, tmp_path / "qrels.judged.txt")
    assert_same_as_trec_eval(path, bm25_runs["cranfield"], star_uses_j=True)
    with_j = trec_eval(["-c", "-J", "-m", "ndcg_cut.10"], path, bm25_runs["cranfield"])["ndcg_cut_10"]["all"]
    without = trec_eval(["-c", "-m", "ndcg_cut.10"], path, bm25_runs["cranfield"])["ndcg_cut_10"]["all"]
    assert with_j != without  # -J changes the value here, so the comparison above tests it


# --- ranx's min-max normalisation: here beside the module's other comparison with ranx, because ranx compiles its
# numba code once per process (about 40 s of CPU in a fresh environment): one module, one worker, one compilation.
def test_teachers_min_max_matches_ranx():
    from ranx import Run as RRun
    from ranx.normalization import norm_switch  # ranx's own "min-max"

    from splade_pyserini.train import teachers

    # docids as wide as Cranfield's ("1400"): ranx compiles its run constructor once per docid width (~13 s of
    # CPU in a fresh environment), and the ties test above already compiled this one
    run = {"q1": {"d001": -1.0, "d002": 2.0, "d005": 0.5}, "q2": {"d001": 0.2, "d004": 0.9},
           "q3": {"x": 3.0, "y": 3.0}}
    got = teachers.min_max(run)
    ref = norm_switch("min-max")(RRun(run)).to_dict()
    assert set(ref) == set(got)
    for q in ref:
        assert set(ref[q]) == set(got[q])
        for d in ref[q]:
            assert got[q][d] == pytest.approx(ref[q][d], abs=1e-6)
