"""explain(): per-term contributions read from the index's stored docvectors add up exactly to the searcher's score,
for every Cranfield query (the shared data; skipped with a reason where ../shared is absent)."""

from __future__ import annotations

import json

import pytest

from splade_pyserini.errors import SpladeError
from splade_pyserini.runs import ranked, read_run

TOP = 5


@pytest.fixture(scope="module")
def searcher(cranfield_pipeline, tiny_encoder):
    import torch

    from splade_pyserini import SpladeSearcher

    # These tests encode one short query at a time: one torch thread is several times faster for that than two
    # on a shared machine (thread hand-off dominates a 2-layer model); restored for the other tests.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with SpladeSearcher(cranfield_pipeline["index"], tiny_encoder) as s:
            yield s
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def queries(cranfield):
    with open(cranfield / "queries.jsonl") as f:
        return {q["_id"]: q["text"] for q in map(json.loads, f)}


def test_contributions_sum_to_the_score_for_every_query(searcher, queries, cranfield_pipeline):
    from splade_pyserini.explanation import explain, explain_hits

    run = read_run(cranfield_pipeline["run"])  # written by search_topics (batch_search): the same integer scores
    assert len(queries) == 225
    checked = 0
    for n, (qid, text) in enumerate(queries.items()):
        hits = explain_hits(searcher, text, k=TOP)
        # the run's best TOP (one ranking rule; documents tied at the cut may be either of them)
        assert [s for _, s, _ in hits] == [s for _, s in ranked(run[qid], TOP)]
        for docid, score, rows in hits:
            assert run[qid][docid] == score
            assert rows.total == score, (qid, docid)
            assert sum(c for _, _, _, c in rows) == score
            assert all(q * tf == c and q > 0 and tf > 0 for _, q, tf, c in rows)
            assert [c for *_, c in rows] == sorted((c for *_, c in rows), reverse=True)
            checked += 1
        if n % 25 == 0:  # explain() from the text agrees with explain_hits() (it encodes the query again)
            docid, score, rows = hits[0]
            assert list(explain(searcher, text, docid)) == list(rows)
    assert checked == 225 * TOP


def test_explain_matches_the_written_vectors(searcher, cranfield_pipeline):
    from splade_pyserini.explanation import document_vector, explain

    vectors = {}
    with open(cranfield_pipeline["vectors"] / "vectors-00000.jsonl") as f:
        for i, line in enumerate(f):
            if i % 100 == 0:
                doc = json.loads(line)
                vectors[doc["id"]] = doc["vector"]
    query = "flow over a flat plate at high speed"
    weights = searcher.encode_queries([query])[0]
    for docid, vector in vectors.items():
        assert document_vector(searcher, docid) == vector  # the stored docvector is the indexed vector
        rows = explain(searcher, query, docid, all_terms=True)
        assert {t: (q, tf) for t, q, tf, _ in rows} == {t: (w, vector.get(t, 0)) for t, w in weights.items()}
        # integer weights given directly give the same rows
        assert list(explain(searcher, weights, docid, all_terms=True)) == list(rows)


def test_explain_unknown_document(searcher):
    from splade_pyserini.explanation import explain

    with pytest.raises(SpladeError, match="not in the index"):
        explain(searcher, "flow", "no-such-doc")


def test_explain_on_an_index_folder_and_as_sparse_vector(searcher, cranfield_pipeline, tiny_encoder):
    from splade_pyserini.explanation import document_vector, stored_vector
    from splade_pyserini.sparse_vector import as_vectors

    docid = searcher.search("boundary layer", 1)[0][0]
    assert document_vector(cranfield_pipeline["index"], docid) == document_vector(searcher, docid)
    stored = stored_vector(searcher, docid)
    q = as_vectors(tiny_encoder, ["boundary layer"], "query", quantized=True)[0]
    assert q.to_dict() == searcher.encode_queries(["boundary layer"])[0]
    assert q.dot(stored) == searcher.search("boundary layer", 1)[0][1]
