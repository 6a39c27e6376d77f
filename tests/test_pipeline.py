"""encode → index → search → evaluate on the real collections, and the Pyserini plugin on the same index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import write_tsv_topics
from helpers import as_ranking, run_cli, run_python
from splade_pyserini.encoder import quantize
from splade_pyserini.runs import read_qrels, read_run
from splade_pyserini.vectors import read_encoding_meta


def test_vector_files_hold_the_quantized_encoder_output(cranfield_pipeline, tiny_encoder):
    vectors = cranfield_pipeline["vectors"]
    meta = read_encoding_meta(vectors)
    assert meta["complete"] and meta["documents"] == 1400 and meta["scale"] == 51.2 and meta["doc_max_length"] == 512
    assert meta["variant"] == "full" and meta["encoder"] == "splade-tiny"
    lines = [json.loads(line) for line in open(vectors / "vectors-00000.jsonl")]
    assert len(lines) == 1400
    picked = lines[:3] + lines[700:702]
    texts = [d["contents"] for d in picked]
    for doc, fresh in zip(picked, tiny_encoder.encode_documents(texts)):
        expected = {t: int(q) for t, q in zip(fresh, quantize(np.array(list(fresh.values())), 51.2)) if q}
        assert all(isinstance(w, int) and w > 0 for w in doc["vector"].values())
        # a weight a hair's breadth from x.5 may round the other way when batched differently
        assert doc["vector"].keys() ^ expected.keys() <= {t for t, w in fresh.items() if abs(w * 51.2 % 1 - 0.5) < 1e-3}
        assert all(abs(doc["vector"][t] - expected[t]) <= 1 for t in doc["vector"].keys() & expected.keys())


def test_index_records_encoder_and_scale(cranfield_pipeline):
    meta = json.loads((cranfield_pipeline["index"] / "splade_pyserini.json").read_text())
    assert meta["encoder"] == "splade-tiny" and meta["scale"] == 51.2 and meta["documents"] == 1400


def test_search_returns_ranked_hits(cranfield_pipeline, tiny_encoder):
    from splade_pyserini import SpladeSearcher

    run = read_run(cranfield_pipeline["run"])
    assert len(run) == 225 and all(len(h) == 1000 for h in run.values())
    with SpladeSearcher(cranfield_pipeline["index"], tiny_encoder) as searcher:
        hits = searcher.search("flow over a flat plate at high speed", k=10)
        assert len(hits) == 10 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        # the score is the dot product of the integer query and document weights
        q = searcher.encode_queries(["flow over a flat plate at high speed"])[0]
        vectors = {}
        for line in open(cranfield_pipeline["vectors"] / "vectors-00000.jsonl"):
            doc = json.loads(line)
            vectors[doc["id"]] = doc["vector"]
        for docid, score in hits[:3]:
            assert score == sum(w * vectors[docid].get(t, 0) for t, w in q.items())
        batch = searcher.batch_search(["flow over a flat plate at high speed"], ["x"], k=10, threads=2)
        assert batch["x"] == hits


def test_evaluate_equals_trec_eval_on_the_same_files(cranfield_pipeline, cranfield, tmp_path):
    from splade_pyserini.regression import evaluate_metric, trec_eval_metric

    qrels_trec = tmp_path / "qrels.txt"
    with open(qrels_trec, "w") as f:
        for q, docs in read_qrels(cranfield).items():
            for d, g in docs.items():
                f.write(f"{q} 0 {d} {g}\n")
    metrics = ["ndcg@10", "map", "recall@100"]
    out = run_cli("evaluate", "--qrels", qrels_trec, "--run", cranfield_pipeline["run"], "--metrics", *metrics,
                  "--json", check=True)
    ours = json.loads(out.stdout.strip().splitlines()[-1])["run.txt"]
    for m in metrics:  # Anserini's trec_eval prints 4 decimals
        assert f"{ours[m]:.4f}" == f"{evaluate_metric(trec_eval_metric(m), qrels_trec, cranfield_pipeline['run']):.4f}"
    assert 0.2 < ours["ndcg@10"] < 0.6


@pytest.fixture(scope="module")
def cli_run(cranfield_pipeline, cranfield, tmp_path_factory) -> dict:
    """`splade-pyserini search` on 40 Cranfield topics (100 hits), Java found without JAVA_HOME: the run the
    plugin test compares with."""
    work = tmp_path_factory.mktemp("cli-run")
    topics = write_tsv_topics(cranfield, work / "topics.tsv", limit=40)
    run_cli("search", "--index", cranfield_pipeline["index"], "--encoder", "splade-tiny", "--topics", topics,
            "--output", work / "ours.txt", "--hits", "100", env={"JAVA_HOME": None}, entry_point=True, check=True)
    return {"topics": topics, "run": [line.split()[:5] for line in open(work / "ours.txt")]}


def test_vaswani_effectiveness_matches_pyserini_encoders(vaswani_pipeline, vaswani):
    """splade-tiny, 512-token documents, ×51.2: Pyserini's own encoders give nDCG@10 0.3717 (REFERENCE §6)."""
    from splade_pyserini.eval import evaluate

    scores = evaluate(read_qrels(vaswani), {"splade": read_run(vaswani_pipeline["run"])}, ["ndcg@10", "map", "recall@1000"])
    assert abs(scores["splade"]["ndcg@10"] - 0.3717) <= 0.02, scores
    assert abs(scores["splade"]["map"] - 0.2387) <= 0.02, scores


def test_pyserini_plugin_searches_through_the_extension(cranfield_pipeline, cranfield, cli_run, tmp_path):
    """The patched LuceneImpactSearcher answers search() and batch_search() with one JNI call per batch, and its
    hits equal Pyserini's own per-term path with the same encoder; `python -m pyserini.search.lucene --encoder
    splade-tiny --impact` (our card resolved through the .pth hook, Java found without JAVA_HOME) gives our run, one
    query at a time and batched. One Python process (Pyserini's import costs ~10 s of CPU): the CLI's module runs in
    it as `python -m` runs it (runpy, as __main__), after the searcher checks."""
    from splade_pyserini import javabuild

    if javabuild.extension_jar() is None:
        pytest.skip("no javac >= 21: the extension cannot be built")
    topics = write_tsv_topics(cranfield, tmp_path / "topics.tsv", limit=30)
    script = f"""
import json
from pyserini.search.lucene import LuceneImpactSearcher
from splade_pyserini.pyserini_plugin import Hit
from splade_pyserini.topics import read_topics
topics = read_topics({str(topics)!r})
s = LuceneImpactSearcher({str(cranfield_pipeline["index"])!r}, "splade-tiny")
assert s._splade_batch is not None, "the extension is used"
qids = list(topics)
fast_one = {{q: [(h.docid, h.score) for h in s.search(topics[q], 50)] for q in qids[:10]}}
fast_batch = s.batch_search([topics[q] for q in qids], qids, 50, 2)
assert all(isinstance(h, Hit) for hits in fast_batch.values() for h in hits)
first = fast_batch[qids[0]][0]
raw = first.lucene_document.get("id") == first.docid
batch = s._splade_batch
s._splade_batch = None  # Pyserini's own path, the same encoder
slow_one = {{q: [(h.docid, h.score) for h in s.search(topics[q], 50)] for q in qids[:10]}}
slow_batch = s.batch_search([topics[q] for q in qids], qids, 50, 2)
s._splade_batch = batch
s.close()
print(json.dumps({{"one": fast_one == slow_one,
                   "batch": all([(h.docid, h.score) for h in fast_batch[q]] == [(h.docid, h.score) for h in slow_batch[q]]
                                for q in qids),
                   "hits": sum(len(v) for v in fast_batch.values()), "raw": bool(raw)}}))
"""
    one, batched = tmp_path / "plugin.txt", tmp_path / "plugin-batched.txt"
    cli = ["--index", str(cranfield_pipeline["index"]), "--topics", str(cli_run["topics"]), "--encoder", "splade-tiny",
           "--impact", "--hits", "100"]
    script += f"""
import runpy, sys
for argv in ({[*cli, "--output", str(one)]!r}, {[*cli, "--output", str(batched), "--batch-size", "8", "--threads", "2"]!r}):
    sys.argv = ["pyserini.search.lucene", *argv]
    runpy.run_module("pyserini.search.lucene", run_name="__main__", alter_sys=True)
"""
    proc = run_python(script, timeout=600, env={"JAVA_HOME": None})  # the hook must find Java by itself
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith('{"one"')))
    assert result == {"one": True, "batch": True, "hits": 30 * 50, "raw": True}
    assert len(cli_run["run"]) == 40 * 100
    for plugin in (one, batched):
        assert as_ranking(cli_run["run"]) == as_ranking([line.split()[:5] for line in open(plugin)]), plugin.name


def test_search_computes_only_the_terms_the_index_holds(cranfield_pipeline, cranfield, tiny_encoder):
    """batch_search leaves out query terms the index does not hold (their weights are not even computed): the
    other weights are unchanged and so is every run."""
    from splade_pyserini import SpladeSearcher
    from splade_pyserini.topics import read_topics

    indexed = set()
    for path in sorted(cranfield_pipeline["vectors"].glob("vectors-*.jsonl")):
        for line in open(path):
            indexed.update(t for t, w in json.loads(line)["vector"].items() if w > 0)
    topics = read_topics(cranfield)
    qids = list(topics)
    texts = [topics[q] for q in qids]
    with SpladeSearcher(cranfield_pipeline["index"], tiny_encoder) as searcher:
        vocabulary = searcher._index_vocabulary()
        assert vocabulary is not None, "a small collection holds a part of the vocabulary"
        assert {tiny_encoder.vocab[i] for i in vocabulary} == indexed
        full = searcher.encode_queries(texts)
        restricted = searcher.encode_for_search(texts)
        assert restricted == [{t: w for t, w in q.items() if t in indexed} for q in full]
        assert sum(len(q) for q in full) > sum(len(q) for q in restricted), "some query terms are not indexed"
        assert searcher.batch_search(texts, qids, k=100, threads=2) == searcher._batch.search(full, qids, 100, 2)
