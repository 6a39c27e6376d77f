"""Teacher ensembles, rescoring, score files and resumable scoring, against independent computations."""

import json
from pathlib import Path

import numpy as np
import pytest

from splade_pyserini.train import teachers
from splade_pyserini.train.mine import Pool

TOL = 1e-6
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _minmax_loop(run):
    out = {}
    for q, docs in run.items():
        lo, hi = min(docs.values()), max(docs.values())
        out[q] = {d: (s - lo) / max(hi - lo, 1e-9) for d, s in docs.items()}
    return out


RUN_A = {"q1": {"d1": 10.0, "d2": 4.0, "d3": 7.0}, "q2": {"d1": 3.0, "d4": 3.0}}  # q2: all scores equal
RUN_B = {"q1": {"d1": -1.0, "d2": 2.0, "d5": 0.5}, "q2": {"d1": 0.2, "d4": 0.9}}


def test_min_max_matches_loop_and_equal_scores_give_zero():
    got = teachers.min_max(RUN_A)
    want = _minmax_loop(RUN_A)
    for q in want:
        for d in want[q]:
            assert got[q][d] == pytest.approx(want[q][d], abs=TOL)
    assert got["q2"] == {"d1": 0.0, "d4": 0.0}


def test_ensemble_mean_with_missing_policies():
    na, nb = _minmax_loop(RUN_A), _minmax_loop(RUN_B)
    got = teachers.ensemble([RUN_A, RUN_B])  # missing = "min": an unscored candidate counts 0 for that teacher
    for q in ("q1", "q2"):
        docs = set(na[q]) | set(nb[q])
        assert set(got[q]) == docs
        for d in docs:
            assert got[q][d] == pytest.approx((na[q].get(d, 0.0) + nb[q].get(d, 0.0)) / 2, abs=TOL)
    skip = teachers.ensemble([RUN_A, RUN_B], missing="skip")
    assert skip["q1"]["d3"] == pytest.approx(na["q1"]["d3"], abs=TOL)  # only teacher A scored d3
    assert skip["q1"]["d5"] == pytest.approx(nb["q1"]["d5"], abs=TOL)
    assert skip["q1"]["d1"] == pytest.approx((na["q1"]["d1"] + nb["q1"]["d1"]) / 2, abs=TOL)


def test_ensemble_all_equal_query():
    run = {"q": {"a": 2.0, "b": 2.0, "c": 2.0}}
    assert teachers.ensemble([run, run]) == {"q": {"a": 0.0, "b": 0.0, "c": 0.0}}


def _stats(run):
    v = np.array([s for docs in run.values() for s in docs.values()], dtype=np.float64)
    return v.mean(), v.std()


def test_rescore_to_mean_std_and_to_reference_run():
    ens = teachers.ensemble([RUN_A, RUN_B], rescore_to=(5.0, 2.0))
    m, s = _stats(ens)
    assert m == pytest.approx(5.0, abs=TOL) and s == pytest.approx(2.0, abs=TOL)
    plain = teachers.ensemble([RUN_A, RUN_B])
    # affine: order within every query is kept
    for q in plain:
        assert sorted(plain[q], key=plain[q].get) == sorted(ens[q], key=ens[q].get)
    ref = {"q1": {"d1": 12.0, "d2": 20.0, "d3": 9.0, "d5": 1.0}, "q2": {"d1": 4.0, "d4": 30.0}, "zz": {"x": 1e6}}
    ens2 = teachers.ensemble([RUN_A, RUN_B], rescore_to=ref)
    shared = [ref[q][d] for q in plain for d in plain[q]]  # the reference over the ensemble's pairs only
    m2, s2 = _stats(ens2)
    assert m2 == pytest.approx(np.mean(shared), abs=1e-6) and s2 == pytest.approx(np.std(shared), abs=1e-6)


def test_rescore_constant_ensemble_only_shifts():
    run = {"q": {"a": 1.0, "b": 1.0}}
    out, a, b = teachers.rescore(run, (3.0, 2.0))
    assert a == 1.0 and out == {"q": {"a": 3.0, "b": 3.0}}


def test_score_file_round_trip_and_trec(tmp_path):
    p = tmp_path / "s.jsonl"
    teachers.write_scores(p, RUN_A)
    assert teachers.read_scores(p) == RUN_A
    trec = tmp_path / "r.trec"
    trec.write_text("q1 Q0 d1 1 3.5 x\nq1 Q0 d2 2 1.5 x\n")
    assert teachers.read_scores(trec) == {"q1": {"d1": 3.5, "d2": 1.5}}


class _Counting:
    name = "toy"

    def __init__(self, fail_after=None):
        self.seen = []
        self.fail_after = fail_after

    def score(self, pairs, queries, docs):
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise KeyboardInterrupt
        self.seen.extend(pairs)
        return [float(len(queries[q]) * 10 + len(docs[d])) for q, d in pairs]


def test_teach_resumes_after_interruption(tmp_path):
    pools = {f"q{i}": Pool([f"p{i}"], [f"n{i}{j}" for j in range(5)]) for i in range(4)}
    queries = {q: q * 2 for q in pools}
    docs = {d: d * 3 for p in pools.values() for d in p.positives + p.negatives}
    out = tmp_path / "scores.jsonl"
    first = _Counting(fail_after=10)
    with pytest.raises(KeyboardInterrupt):
        teachers.teach(pools, queries, docs, [first], out, chunk=5, show_progress=False)
    assert not out.exists() and len(first.seen) == 10
    # a half-written last line, as a crash mid-write leaves it
    partial = next((tmp_path / "scores.jsonl.parts").glob("0-*.jsonl"))
    assert len(partial.read_text().splitlines()) == 10
    with open(partial, "a") as f:
        f.write('{"qid": "q3", "docid": "n3')
    second = _Counting()
    run = teachers.teach(pools, queries, docs, [second, _Counting()], out, rescore_to="teacher:0",
                         chunk=5, show_progress=False)
    assert len(second.seen) == 24 - 10  # only what was left
    assert not set(second.seen) & set(first.seen)
    raw = teachers.read_scores(next((tmp_path / "scores.jsonl.parts").glob("0-*.jsonl")))
    assert sum(len(v) for v in raw.values()) == 24
    assert teachers.read_scores(out) == run
    meta = json.loads((tmp_path / "scores.jsonl.meta.json").read_text())
    assert meta["teachers"] == 2 and meta["rescored"]
    # a complete cache is reused: nothing is scored again
    third = _Counting()
    teachers.teach(pools, queries, docs, [third, _Counting()], out, chunk=5, show_progress=False)
    assert third.seen == []


@pytest.mark.skipif(not (SHARED / "models" / "splade-tiny").is_dir(), reason="shared/models/splade-tiny is absent")
def test_cross_encoder_and_splade_scorers(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(SHARED / "models" / "splade-tiny"))
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                     intermediate_size=64, num_labels=1))
    model.save_pretrained(tmp_path / "ce")
    tok.save_pretrained(tmp_path / "ce")
    ce = teachers.make_scorer(f"cross-encoder:{tmp_path / 'ce'}", device="cpu", batch_size=2)
    queries = {"q": "shock waves"}
    docs = {"a": "a shock wave in a tube", "b": "heat transfer", "c": "boundary layers on a flat plate at high speed"}
    pairs = [("q", "a"), ("q", "b"), ("q", "c")]
    got = ce.score(pairs, queries, docs)
    model.eval()
    for (q, d), s in zip(pairs, got):  # one pair at a time, no padding: the same scores
        enc = tok(queries[q], docs[d], return_tensors="pt")
        with torch.no_grad():
            assert s == pytest.approx(float(model(**enc).logits[0, 0]), abs=1e-4)

    from splade_pyserini.encoder import load_encoder

    enc = load_encoder(str(SHARED / "models" / "splade-tiny"), device="cpu")
    sp = teachers.SpladeScorer(enc)
    got = sp.score(pairs, queries, docs)
    qv = enc.encode_queries([queries["q"]])[0]
    for (q, d), s in zip(pairs, got):
        dv = enc.encode_documents([docs[d]])[0]
        assert s == pytest.approx(sum(w * dv.get(t, 0.0) for t, w in qv.items()), rel=1e-5, abs=1e-5)
