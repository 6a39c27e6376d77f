"""Cross-encoder re-ranking, the dense bi-encoder baseline and run fusion, offline with tiny random models."""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from splade_pyserini.errors import SpladeError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SHARED = Path(__file__).resolve().parents[2] / "shared"
TOKENIZER = SHARED / "models" / "splade-tiny"
CRANFIELD = SHARED / "collections" / "cranfield"


def _need_shared():
    if not (TOKENIZER / "tokenizer.json").is_file():
        pytest.skip(f"shared tokenizer not found at {TOKENIZER}")
    if not (CRANFIELD / "corpus.jsonl").is_file():
        pytest.skip(f"shared Cranfield collection not found at {CRANFIELD}")


def _tiny_config(**extra):
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=512, **extra)


def _save(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(TOKENIZER / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def slice_dir(tmp_path_factory):
    """The first 100 Cranfield documents and 6 queries, in BEIR layout."""
    _need_shared()
    out = tmp_path_factory.mktemp("cranfield-slice")
    with open(CRANFIELD / "corpus.jsonl", encoding="utf-8") as f:
        lines = [next(f) for _ in range(100)]
    (out / "corpus.jsonl").write_text("".join(lines), encoding="utf-8")
    with open(CRANFIELD / "queries.jsonl", encoding="utf-8") as f:
        queries = [next(f) for _ in range(6)]
    (out / "queries.jsonl").write_text("".join(queries), encoding="utf-8")
    docs = {}
    for line in lines:
        o = json.loads(line)
        title = (o.get("title") or "").strip()
        docs[o["_id"]] = f"{title} {o['text']}" if title else o["text"]
    topics = {json.loads(q)["_id"]: json.loads(q)["text"] for q in queries}
    return out, docs, topics


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    _need_shared()
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(_tiny_config(num_labels=1))
    return _save(model, tmp_path_factory.mktemp("ce"))


@pytest.fixture(scope="module")
def bi_encoder(tmp_path_factory):
    _need_shared()
    from transformers import BertModel

    torch.manual_seed(1)
    model = BertModel(_tiny_config())
    return _save(model, tmp_path_factory.mktemp("bi"))


def _first_stage(docs, topics, per_query=8):
    """A fake first-stage run over the slice: different documents per query, distinct scores."""
    ids = list(docs)
    run = {}
    for i, qid in enumerate(topics):
        chosen = ids[i * 5:i * 5 + per_query]
        run[qid] = {d: float(per_query - j) for j, d in enumerate(chosen)}
    return run


def _pair_scores(model_dir, pairs, max_length=512):
    """Scores computed one pair at a time, without padding: an independent path."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for q, d in pairs:
            logits = model(**tok(q, d, truncation=True, max_length=max_length, return_tensors="pt")).logits[0]
            out.append(float(logits[0]) if logits.numel() == 1 else float(logits[1] - logits[0]))
    return out


# --- rerank -----------------------------------------------------------------------------------------------------------

def test_rerank_scores_top_k_with_the_cross_encoder(slice_dir, cross_encoder):
    from splade_pyserini.retrieve.rerank import rerank

    _, docs, topics = slice_dir
    run = _first_stage(docs, topics)
    out = rerank(run, topics, slice_dir[0], cross_encoder, k=5, batch_size=3, device="cpu")
    assert set(out) == set(run)
    for qid, hits in out.items():
        top5 = sorted(run[qid], key=lambda d: -run[qid][d])[:5]
        assert set(hits) == set(top5)
        expected = _pair_scores(cross_encoder, [(topics[qid], docs[d]) for d in top5])
        for d, e in zip(top5, expected):
            assert hits[d] == pytest.approx(e, abs=1e-4)
    # Random weights give scores that actually reorder something.
    assert any(sorted(h, key=lambda d: -h[d]) != sorted(h, key=lambda d: -run[q][d]) for q, h in out.items())


def test_rerank_keep_tail_and_two_label_models(slice_dir, tmp_path):
    from transformers import BertForSequenceClassification

    from splade_pyserini.retrieve.rerank import rerank

    _, docs, topics = slice_dir
    torch.manual_seed(2)
    folder = _save(BertForSequenceClassification(_tiny_config(num_labels=2)), tmp_path / "ce2")
    run = _first_stage(docs, topics)
    out = rerank(run, topics, slice_dir[0], folder, k=3, device="cpu", keep_tail=True)
    for qid, hits in out.items():
        assert len(hits) == len(run[qid])
        order = sorted(hits, key=lambda d: -hits[d])
        original = sorted(run[qid], key=lambda d: -run[qid][d])
        assert set(order[:3]) == set(original[:3]) and order[3:] == original[3:]
        head = original[:3]
        expected = _pair_scores(folder, [(topics[qid], docs[d]) for d in head])  # logit[1] - logit[0]
        assert [hits[d] for d in head] == pytest.approx(expected, abs=1e-4)


def test_teacher_and_reranker_give_a_pair_one_score(slice_dir, cross_encoder):
    """One cross-encoder rule: a (query, document) pair scores the same as a distillation teacher as when a run is
    re-ranked, truncation included (16 tokens: every pair is cut, the longer side first)."""
    from splade_pyserini.retrieve.rerank import rerank
    from splade_pyserini.runs import top_k
    from splade_pyserini.train.teachers import CrossEncoderScorer

    _, docs, topics = slice_dir
    run = _first_stage(docs, topics)
    reranked = rerank(run, topics, slice_dir[0], cross_encoder, k=4, batch_size=5, device="cpu", max_length=16)
    pairs = [(q, d) for q, hits in top_k(run, 4).items() for d in hits]
    tok = transformers.AutoTokenizer.from_pretrained(str(cross_encoder))
    assert all(len(tok(topics[q], docs[d])["input_ids"]) > 16 for q, d in pairs)  # truncation matters
    teacher = CrossEncoderScorer(cross_encoder, device="cpu", batch_size=5, max_length=16)
    taught = teacher.score(pairs, topics, docs)
    assert taught == [reranked[q][d] for q, d in pairs]
    # and both are the model's score of the pair truncated to 16 tokens, scored alone
    assert taught == pytest.approx(_pair_scores(cross_encoder, [(topics[q], docs[d]) for q, d in pairs], 16), abs=1e-4)


def test_rerank_errors(slice_dir, cross_encoder, tmp_path):
    from splade_pyserini.retrieve.rerank import rerank

    _, docs, topics = slice_dir
    run = _first_stage(docs, topics)
    with pytest.raises(SpladeError, match="no local folder"):
        rerank(run, topics, slice_dir[0], tmp_path / "absent", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpladeError, match="config.json"):
        rerank(run, topics, slice_dir[0], tmp_path / "empty", device="cpu")
    with pytest.raises(SpladeError, match="not in corpus"):
        rerank({"1": {"no-such-doc": 1.0}}, topics, slice_dir[0], cross_encoder, device="cpu")
    with pytest.raises(SpladeError, match="no text in the topics"):
        rerank({"unknown-q": {next(iter(docs)): 1.0}}, topics, slice_dir[0], cross_encoder, device="cpu")


# --- dense ------------------------------------------------------------------------------------------------------------

def _embed(model_dir, texts, pooling, normalize):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            h = model(**tok(t, truncation=True, max_length=512, return_tensors="pt")).last_hidden_state[0]
            v = h[0] if pooling == "cls" else h.mean(0)
            v = v.numpy().astype(np.float64)
            out.append(v / np.linalg.norm(v) if normalize else v)
    return np.array(out)


@pytest.mark.parametrize("pooling,normalize", [("cls", False), ("mean", True)])
def test_dense_search_is_exact_inner_product_search(slice_dir, bi_encoder, pooling, normalize):
    from splade_pyserini.retrieve.dense import dense_search

    folder, docs, topics = slice_dir
    run = dense_search(folder, topics, bi_encoder, k=10, pooling=pooling, normalize=normalize, batch_size=16,
                       device="cpu", chunk_size=64)  # several chunks
    ids = list(docs)
    d_emb = _embed(bi_encoder, [docs[i] for i in ids], pooling, normalize)
    q_emb = _embed(bi_encoder, list(topics.values()), pooling, normalize)
    scores = q_emb @ d_emb.T
    assert list(run) == list(topics)
    for qi, qid in enumerate(topics):
        expected = np.sort(scores[qi])[::-1][:10]
        got = sorted(run[qid].items(), key=lambda x: -x[1])
        assert len(got) == 10
        # The ten best scores, each the inner product of that document's own embedding with the query's.
        assert [s for _, s in got] == pytest.approx(expected, rel=1e-3, abs=1e-4)
        for d, s in got:
            assert s == pytest.approx(scores[qi][ids.index(d)], rel=1e-3, abs=1e-4)
        if normalize:
            assert all(abs(s) <= 1 + 1e-4 for _, s in got)


def test_dense_search_follows_a_sentence_transformers_folder(slice_dir, bi_encoder, tmp_path):
    from splade_pyserini.retrieve.dense import dense_search

    folder, _, topics = slice_dir
    st = tmp_path / "st"
    shutil.copytree(bi_encoder, st)
    (st / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
    (st / "1_Pooling").mkdir()
    (st / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}))
    (st / "2_Normalize").mkdir()
    auto = dense_search(folder, topics, st, k=5, device="cpu")
    explicit = dense_search(folder, topics, bi_encoder, k=5, pooling="mean", normalize=True, device="cpu")
    cls = dense_search(folder, topics, bi_encoder, k=5, pooling="cls", device="cpu")
    for qid in topics:
        assert auto[qid] == pytest.approx(explicit[qid], abs=1e-5)
    assert any(set(auto[q]) != set(cls[q]) or auto[q] != pytest.approx(cls[q]) for q in topics)
    # An unsupported module is an error, not silently wrong embeddings.
    modules = json.loads((st / "modules.json").read_text())
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (st / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(SpladeError, match="not supported"):
        dense_search(folder, topics, st, k=5, device="cpu")


def test_fuse_rrf_matches_the_formula():
    from splade_pyserini.retrieve.fusion import fuse

    sparse = {"q1": {"a": 9.0, "b": 5.0, "c": 1.0}, "q2": {"x": 2.0}}
    dense = {"q1": {"c": 0.9, "a": 0.8, "d": 0.1}, "q3": {"y": 0.5}}
    out = fuse([sparse, dense], method="rrf", params={"k": 60})
    rrf = lambda *ranks: sum(1 / (60 + r) for r in ranks)  # noqa: E731
    expected = {"a": rrf(1, 2), "b": rrf(2), "c": rrf(3, 1), "d": rrf(3)}
    assert out["q1"] == pytest.approx(expected)
    assert out["q2"] == pytest.approx({"x": rrf(1)})  # a query only one run has
    assert out["q3"] == pytest.approx({"y": rrf(1)})
    # Weighted sum of min-max normalised scores.
    ws = fuse({"s": sparse, "d": dense}, method="wsum", params={"weights": [0.5, 0.5]})
    assert ws["q1"]["a"] == pytest.approx(0.5 * 1.0 + 0.5 * (0.8 - 0.1) / (0.9 - 0.1))
    # CombSUM of min-max scores (a document absent from a run adds nothing), and of raw scores without norm
    mm = lambda s, lo, hi: (s - lo) / (hi - lo)  # noqa: E731
    total = fuse([sparse, dense], method="sum")
    assert total["q1"] == pytest.approx({"a": 1.0 + mm(0.8, 0.1, 0.9), "b": mm(5, 1, 9), "c": 0.0 + 1.0,
                                         "d": 0.0})
    assert total["q2"] == {"x": 0.0}  # one score: min-max gives 0, as ranx does
    assert fuse([sparse, dense], method="sum", norm=None)["q1"] == pytest.approx({"a": 9.8, "b": 5.0, "c": 1.9,
                                                                                   "d": 0.1})
    # ranks by the one ranking rule: a tie is broken by docid descending
    tied = fuse([{"q": {"a": 1.0, "b": 1.0}}, {"q": {"c": 1.0}}], method="rrf", k=None)
    assert tied["q"] == pytest.approx({"b": rrf(1), "a": rrf(2), "c": rrf(1)})
    assert list(fuse([sparse, dense], k=2)["q1"]) == ["a", "c"]  # the top k, best first: rrf(1, 2) > rrf(3, 1)
    with pytest.raises(SpladeError):
        fuse([sparse])
    with pytest.raises(SpladeError, match="fusion"):
        fuse([sparse, dense], method="no-such-method")
    with pytest.raises(SpladeError, match="fusion 'no-such-method'"):
        fuse([sparse, dense], method="no-such-method", norm="min-max")
    with pytest.raises(SpladeError, match="fusion 'max' \\(norm 'no-such-norm'\\)"):
        fuse([sparse, dense], method="max", norm="no-such-norm")
    with pytest.raises(SpladeError, match="one weight per run"):
        fuse([sparse, dense], method="wsum", params={"weights": [1.0]})
    with pytest.raises(SpladeError, match="rrf takes only k"):
        fuse([sparse, dense], method="rrf", params={"kk": 1})


# --- command line -----------------------------------------------------------------------------------------------------

def _cli(argv):
    from splade_pyserini.retrieve.cli import add_commands

    parser = argparse.ArgumentParser(prog="splade-pyserini")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_rerank_dense_fuse_commands(slice_dir, cross_encoder, bi_encoder, tmp_path):
    from splade_pyserini.runs import read_run, write_run

    folder, docs, topics = slice_dir
    first = tmp_path / "first.trec"
    write_run(first, _first_stage(docs, topics))
    out = tmp_path / "reranked.trec"
    assert _cli(["rerank", "--run", str(first), "--topics", str(folder), "--corpus", str(folder),
                 "--model", str(cross_encoder), "--output", str(out), "--hits", "4", "--device", "cpu"]) == 0
    reranked = read_run(out)
    assert set(reranked) == set(topics) and all(len(h) == 4 for h in reranked.values())
    lines = out.read_text().splitlines()
    assert lines[0].split()[3] == "1" and lines[0].split()[5] == "rerank"

    dense_out = tmp_path / "dense.trec"
    assert _cli(["dense", "--corpus", str(folder), "--topics", str(folder), "--model", str(bi_encoder),
                 "--output", str(dense_out), "--hits", "20", "--pooling", "mean", "--normalize",
                 "--device", "cpu"]) == 0
    dense_run = read_run(dense_out)
    # The slice folder has no qrels, so every query of queries.jsonl is searched.
    assert set(dense_run) == set(topics) and all(len(h) == 20 for h in dense_run.values())

    fused = tmp_path / "fused.trec"
    assert _cli(["fuse", "--run", str(first), str(dense_out), "--output", str(fused), "--hits", "15"]) == 0
    fused_run = read_run(fused)
    first_run = read_run(first)
    for qid in topics:
        expected = {}
        for run in (first_run, dense_run):
            for rank, d in enumerate(sorted(run.get(qid, {}), key=lambda d: -run[qid][d]), 1):
                expected[d] = expected.get(d, 0.0) + 1 / (60 + rank)
        top = sorted(expected.items(), key=lambda x: -x[1])[:15]
        assert len(fused_run[qid]) == 15
        assert sorted(fused_run[qid].values(), reverse=True) == pytest.approx([v for _, v in top], abs=1e-6)
