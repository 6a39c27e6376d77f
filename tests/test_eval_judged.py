"""nDCG*: judged-only rankings as trec_eval -J builds them, and the paper's rule for when to apply it."""

import math
import random
from pathlib import Path

import pytest

from splade_pyserini.eval.judged import has_negative_judgments, judged_only, ndcg_star, uses_judged_only
from splade_pyserini.eval.metrics import evaluate

SHARED = Path(__file__).resolve().parents[2] / "shared"


def trec_ndcg_at_k(grades: dict, ranking: list, k: int = 10) -> float:
    """trec_eval's ndcg_cut: linear gain of positive grades, log2(rank + 1) discount, ideal from the qrels."""
    dcg = sum(max(grades.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def ranked(docs: dict) -> list:
    return [d for d, _ in sorted(docs.items(), key=lambda x: -x[1])]


QRELS = {"q1": {"a": 2, "b": 0, "c": -1, "d": 1}, "q2": {"x": 1, "z": 0}}
RUN = {
    # u* are unjudged for q1; scores give the order u1 a u2 b c u3 d
    "q1": {"u1": 7.0, "a": 6.0, "u2": 5.0, "b": 4.0, "c": 3.0, "u3": 2.0, "d": 1.0},
    "q2": {"y": 2.0, "x": 1.0},
    "q3": {"a": 1.0},  # a query without judgments
}


def test_judged_only_keeps_the_judged_documents_as_trec_eval_does():
    out = judged_only(RUN, QRELS)
    # trec_eval -J: drop the documents absent from the query's qrels (u1, u2, u3, y) and those with a negative
    # grade (c: trec_eval's "in the pool, not judged"); keep grade 0.
    assert ranked(out["q1"]) == ["a", "b", "d"]
    assert ranked(out["q2"]) == ["x"]
    assert "q3" not in out
    # Scores are untouched, so the judged documents keep their relative order.
    assert out["q1"]["b"] == RUN["q1"]["b"]


def test_judged_only_does_not_leak_judgments_of_other_queries():
    # "x" is judged for q2 only; for q1 it is unjudged and must go.
    out = judged_only({"q1": {"x": 3.0, "a": 1.0}}, QRELS)
    assert out == {"q1": {"a": 1.0}}


def test_negative_judgments_and_rule():
    assert has_negative_judgments(QRELS)
    assert uses_judged_only(QRELS)
    positive_only = {"q1": {"a": 1, "d": 2}}
    assert not has_negative_judgments(positive_only)
    assert not uses_judged_only(positive_only)
    # Only non-positive judgments: no positive ones, so the rule does not apply either.
    assert not uses_judged_only({"q1": {"a": 0, "b": -1}})


def test_ndcg_star_on_hand_example():
    # After -J, q1 ranks a(2) b(0) d(1): DCG = 2/log2(2) + 1/log2(4); IDCG = 2/log2(2) + 1/log2(3).
    q1 = (2 + 1 / math.log2(4)) / (2 + 1 / math.log2(3))
    q2 = 1.0  # x at rank 1
    assert ndcg_star(QRELS, RUN) == pytest.approx((q1 + q2) / 2, abs=1e-9)
    per_query = ndcg_star(QRELS, RUN, per_query=True)
    assert per_query["q1"] == pytest.approx(q1, abs=1e-9)
    # Plain nDCG@10 counts the unjudged documents as non-relevant and is lower here.
    plain = evaluate(QRELS, {"r": RUN}, ["ndcg@10"])["r"]["ndcg@10"]
    assert plain < ndcg_star(QRELS, RUN) - 0.05


def test_ndcg_star_is_plain_ndcg_without_negative_judgments():
    qrels = {"q1": {"a": 2, "d": 1}, "q2": {"x": 1}}
    plain = evaluate(qrels, {"r": RUN}, ["ndcg@10"])["r"]["ndcg@10"]
    assert ndcg_star(qrels, RUN) == pytest.approx(plain, abs=1e-12)
    expected = (trec_ndcg_at_k(qrels["q1"], ranked(RUN["q1"])) + trec_ndcg_at_k(qrels["q2"], ranked(RUN["q2"]))) / 2
    assert ndcg_star(qrels, RUN) == pytest.approx(expected, abs=1e-9)


def test_ndcg_star_matches_independent_computation_on_random_data():
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        qid = f"q{q}"
        judged = rng.sample(docs, 15)
        qrels[qid] = {d: rng.choice([-1, 0, 0, 1, 2, 3]) for d in judged}
        qrels[qid][judged[0]] = 2  # at least one relevant document
        scores = rng.sample(range(10_000), 40)  # distinct scores: no ties
        run[qid] = {d: float(s) for d, s in zip(rng.sample(docs, 40), scores)}
    expected = []
    for qid, grades in qrels.items():
        kept = [d for d in ranked(run[qid]) if grades.get(d, -1) >= 0]  # trec_eval -J
        expected.append(trec_ndcg_at_k(grades, kept))
    assert ndcg_star(qrels, run) == pytest.approx(sum(expected) / len(expected), abs=1e-9)
    for k in (5, 20):
        got = evaluate(qrels, {"r": run}, [f"ndcg*@{k}"], per_query=True)["r"][f"ndcg*@{k}"]
        for qid, grades in qrels.items():
            kept = [d for d in ranked(run[qid]) if grades.get(d, -1) >= 0]
            assert got[qid] == pytest.approx(trec_ndcg_at_k(grades, kept, k), abs=1e-9)


def test_evaluate_mixes_star_and_plain_metrics_in_order():
    out = evaluate(QRELS, {"r": RUN}, ["map", "ndcg*@10", "ndcg@10"])["r"]
    assert list(out) == ["map", "ndcg*@10", "ndcg@10"]
    assert out["ndcg*@10"] == pytest.approx(ndcg_star(QRELS, RUN))
    assert out["ndcg@10"] == pytest.approx(evaluate(QRELS, {"r": RUN}, ["ndcg@10"])["r"]["ndcg@10"])


def test_shared_collections_have_no_negative_judgments():
    from splade_pyserini.runs import read_qrels

    folder = SHARED / "collections" / "cranfield"
    if not folder.is_dir():
        pytest.skip(f"shared collections not found at {folder}")
    qrels = read_qrels(folder)
    # Cranfield's -1 rows were dropped from the shared copy: nDCG* is plain nDCG@10 there.
    assert not uses_judged_only(qrels)
