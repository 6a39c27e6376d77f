"""Negative mining and per-step sampling: determinism with a seed, tiers, positives excluded, small pools."""

import json

import numpy as np

from splade_pyserini.train.data import TrainingData
from splade_pyserini.train.mine import Pool, mine, parse_tiers, read_pools, sample_tiers, write_pools


def _run(n_queries=5, n_docs=300, seed=0):
    rng = np.random.default_rng(seed)
    return {f"q{i}": {f"d{j}": float(rng.normal()) for j in range(n_docs)} for i in range(n_queries)}


QRELS = {"q0": {"d1": 2, "d2": 0}, "q1": {"d5": 1}, "q2": {"d7": 1, "d8": 3}, "q3": {"d9": 0}, "q4": {"d10": 1}}


def test_mining_is_deterministic_with_a_seed_and_order_free():
    run = _run()
    a, meta_a = mine([run], QRELS, seed=13, tiers=((10, 10), (10, 200)))
    b, _ = mine([run], QRELS, seed=13, tiers=((10, 10), (10, 200)))
    c, _ = mine([run], QRELS, seed=14, tiers=((10, 10), (10, 200)))
    assert {q: (p.positives, p.negatives) for q, p in a.items()} == {q: (p.positives, p.negatives) for q, p in b.items()}
    assert any(a[q].negatives != c[q].negatives for q in a)
    # a query's pool does not depend on the other queries
    alone, _ = mine([run], {"q2": QRELS["q2"]}, seed=13, tiers=((10, 10), (10, 200)))
    assert alone["q2"].negatives == a["q2"].negatives
    assert meta_a["seed"] == 13 and meta_a["tiers"] == [[10, 10], [10, 200]]
    assert meta_a["skipped_no_positive"] == 1 and "q3" not in a  # q3 has no positive


def test_tiers_positives_and_depths():
    run = _run(n_docs=300)
    pools, _ = mine([run], QRELS, seed=1, tiers=((50, 50), (50, 1000)))
    for qid, pool in pools.items():
        ranked = [d for d, _ in sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))]
        positives = {d for d, g in QRELS[qid].items() if g >= 1}
        assert set(pool.positives) == positives
        assert not positives & set(pool.negatives)
        assert len(pool.negatives) == len(set(pool.negatives)) == 100
        top50 = [d for d in ranked[:50] if d not in positives]
        assert pool.negatives[:len(top50)] == top50  # the whole top-50 (minus positives) in rank order
        deeper = set(pool.negatives[len(top50):])
        assert deeper <= set(ranked[50:1000]) | (set(ranked[:50]) - set(top50) - positives)
    assert pools["q0"].positives == ["d1"]  # grade 0 (d2) is not a positive
    assert "d2" in set(pools["q0"].negatives) or "d2" in _run()["q0"]  # judged non-relevant stays eligible


def test_fewer_candidates_than_asked_and_several_runs():
    small = {"q1": {"d1": 3.0, "d5": 2.0, "d6": 1.0}}
    other = {"q1": {"d6": 9.0, "d7": 8.0}}
    pools, meta = mine([small, other], {"q1": {"d5": 1}}, seed=0)
    assert pools["q1"].negatives == ["d1", "d6", "d7"]  # run order, no duplicates
    assert meta["negatives_min"] == 3


def test_sample_tiers_and_parse():
    rng = np.random.default_rng(0)
    ranked = [f"d{i}" for i in range(20)]
    got = sample_tiers(ranked, {"d0"}, ((3, 5), (2, 20)), rng)
    assert got[:3] == sorted(got[:3], key=ranked.index) and set(got[:3]) <= {"d1", "d2", "d3", "d4"}
    assert len(got) == 5 and "d0" not in got
    assert parse_tiers("50:50, 50:1000") == ((50, 50), (50, 1000))


def test_pools_file_round_trip(tmp_path):
    pools, meta = mine([_run()], QRELS, seed=5, tiers=((5, 5),))
    path = tmp_path / "pools.jsonl"
    write_pools(path, pools, meta)
    first = json.loads(path.read_text().splitlines()[0])
    assert first["meta"]["seed"] == 5
    back, meta2 = read_pools(path)
    assert meta2 == meta
    assert {q: (p.positives, p.negatives) for q, p in back.items()} == {q: (p.positives, p.negatives) for q, p in pools.items()}


def _data(n=8, seed=0, negatives=None):
    pools = {"a": Pool(["p1", "p2"], negatives or [f"n{i}" for i in range(20)]),
             "b": Pool(["p3"], ["m1", "m2", "m3"]),  # fewer negatives than n
             "c": Pool(["p4"], ["zz"])}  # its only negative has no teacher score: dropped
    scores = {"a": {d: float(i) for i, d in enumerate(["p1", "p2"] + [f"n{i}" for i in range(20)])},
              "b": {"p3": 5.0, "m1": 1.0, "m2": 2.0, "m3": 3.0},
              "c": {"p4": 1.0}}
    queries = {"a": "query a", "b": "query b", "c": "query c"}
    docs = {d: f"text {d}" for p in pools.values() for d in p.positives + p.negatives}
    return TrainingData(pools, scores, queries, docs, n_negatives=n, seed=seed)


def test_training_data_sampling():
    data = _data()
    assert len(data) == 2 and data.dropped == 1
    batch = data.global_batch(0, 4)
    assert [e.qid for e in batch[:2]] != [] and len(batch) == 4
    again = _data().global_batch(0, 4)
    assert [(e.qid, e.docids) for e in batch] == [(e.qid, e.docids) for e in again]
    for step in range(30):
        for e in data.global_batch(step, 2):
            assert len(e.docids) == 9 and len(e.teacher) == 9
            assert e.teacher == [data.scores[e.qid][d] for d in e.docids]
            if e.qid == "a":
                assert e.docids[0] in ("p1", "p2")
                assert len(set(e.docids[1:])) == 8  # enough negatives: without replacement
                assert all(d.startswith("n") for d in e.docids[1:])
            else:
                assert e.docids[0] == "p3"
                assert set(e.docids[1:]) <= {"m1", "m2", "m3"}  # fewer than n: with replacement
    # every epoch visits every query once
    seen = [e.qid for s in range(5) for e in data.global_batch(s, 2)]
    for k in range(0, 10, 2):
        assert sorted(seen[k:k + 2]) == ["a", "b"]
    assert [e.docids for e in _data(seed=1).global_batch(3, 2)] != [e.docids for e in batch[:2]]
