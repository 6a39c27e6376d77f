"""Training end to end on real data (Cranfield, splade-tiny): checkpoints that load as encoders, resume,
variants, a DistilBERT start, and a 2-process torchrun (gloo) run matching 1 process with the same global batch."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

SHARED = Path(__file__).resolve().parents[2] / "shared"
CRANFIELD = SHARED / "collections" / "cranfield"
TINY = SHARED / "models" / "splade-tiny"
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (CRANFIELD.is_dir() and TINY.is_dir()),
                                reason="shared/ (Cranfield, splade-tiny) is absent")


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    """Pools from an Anserini BM25 run over the first 12 Cranfield queries, BM25 teacher scores rescored to (10, 3)."""
    from splade_pyserini.runs import read_qrels
    from splade_pyserini.topics import read_topics
    from splade_pyserini.train.data import corpus_texts
    from splade_pyserini.retrieve.bm25 import bm25_search, build_bm25_index
    from splade_pyserini.train.mine import mine, write_pools
    from splade_pyserini.train.teachers import RunScorer, teach

    root = tmp_path_factory.mktemp("traindata")
    docs = corpus_texts(CRANFIELD)
    queries = dict(list(read_topics(CRANFIELD).items())[:12])
    index = build_bm25_index(CRANFIELD, root / "bm25-index")
    run = bm25_search(index, queries, 100)
    pools, meta = mine([run], read_qrels(CRANFIELD), seed=3, tiers=((4, 10), (4, 100)), qids=queries)
    write_pools(root / "pools.jsonl", pools, meta)
    pairs = [(q, d) for q, p in pools.items() for d in p.positives + p.negatives]
    every = bm25_search(index, queries, None)  # every document matching a query term; the others score 0
    full = {}
    for q, d in pairs:
        full.setdefault(q, {})[d] = every[q].get(d, 0.0)
    teach(pools, queries, docs, [RunScorer(full, name="bm25")], root / "scores.jsonl", rescore_to=(10.0, 3.0),
          show_progress=False)
    return root


def _config(data_files, out, **over):
    values = dict(model=str(TINY), output_dir=str(out), queries=str(CRANFIELD), corpus=str(CRANFIELD),
                  pools=str(data_files / "pools.jsonl"), scores=str(data_files / "scores.jsonl"), n_negatives=2,
                  batch_size=2, steps=3, lr=1e-4, query_max_length=16, doc_max_length=48, progress=False, threads=1)
    values.update(over)
    return values


def test_tiny_training_run_loads_as_encoder_and_resumes(data_files, tmp_path):
    from splade_pyserini.cards import CARD_FILE
    from splade_pyserini.encoder import load_encoder
    from splade_pyserini.train.checkpoints import list_checkpoints
    from splade_pyserini.train.config import make_config
    from splade_pyserini.train.trainer import train

    out = tmp_path / "model"
    state = train(make_config(_config(data_files, out, save_every=2, keep_checkpoints=5)))
    assert state["step"] == 3 and len(state["history"]) == 3
    assert all(map(lambda h: h["loss"] == h["loss"], state["history"]))  # finite, not NaN
    for name in ("config.json", "model.safetensors", "tokenizer.json", CARD_FILE, "train_state.json"):
        assert (out / name).is_file(), name
    card = (out / CARD_FILE).read_text()
    assert 'variant = "full"' in card and "scale = 51.2" in card and "doc_max_length = 512" in card
    saved = json.loads((out / "train_state.json").read_text())
    assert saved["seeds"]["seed"] == 42 and saved["config"]["batch_size"] == 2
    enc = load_encoder(str(out), device="cpu")
    vec = enc.encode_queries(["shock wave boundary layer"])[0]
    assert vec and all(w > 0 for w in vec.values())
    assert [s for s, _ in list_checkpoints(out)] == [2, 3]
    # Interrupted after step 2: drop the step-3 checkpoint and the final state; a rerun resumes at step 2
    # and reproduces step 3 exactly (data is a function of the step; RNG states are restored).
    first = state["history"]
    shutil.rmtree(out / "checkpoints" / "step-0000003")
    (out / "train_state.json").unlink()
    again = train(make_config(_config(data_files, out, save_every=2, keep_checkpoints=5)))
    assert [h["step"] for h in again["history"]] == [1, 2, 3]
    assert again["history"][2]["loss"] == pytest.approx(first[2]["loss"], rel=1e-5, abs=1e-6)
    assert again["history"][2]["grad_norm"] == pytest.approx(first[2]["grad_norm"], rel=1e-4)


def test_variants_and_distilbert_start(data_files, tmp_path):
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForMaskedLM

    from splade_pyserini.encoder import load_encoder
    from splade_pyserini.train.config import make_config
    from splade_pyserini.train.trainer import train

    doc = train(make_config(_config(data_files, tmp_path / "doc", variant="doc", steps=1, lambda_q=1.0, reg_T=0)))
    assert doc["history"][0]["l1_q"] == 0.0 and doc["variant"] == "doc"
    enc = load_encoder(str(tmp_path / "doc"), device="cpu")
    assert enc.card.variant == "doc"
    assert set(enc.encode_queries(["shock wave"])[0].values()) == {1.0}

    lex = train(make_config(_config(data_files, tmp_path / "lex", variant="lexical", steps=1)))
    assert 0 < lex["history"][0]["L0_q"] <= 16  # no expansion: at most the query's own tokens

    tok = AutoTokenizer.from_pretrained(str(TINY))
    torch.manual_seed(0)
    distil = DistilBertForMaskedLM(DistilBertConfig(vocab_size=tok.vocab_size, dim=32, n_layers=1, n_heads=2,
                                                    hidden_dim=64))
    distil.save_pretrained(tmp_path / "distil-init")
    tok.save_pretrained(tmp_path / "distil-init")
    st = train(make_config(_config(data_files, tmp_path / "distil", model=str(tmp_path / "distil-init"), steps=2)))
    assert st["step"] == 2
    assert load_encoder(str(tmp_path / "distil"), device="cpu").model.config.model_type == "distilbert"


def _run(cmd, env):
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


@pytest.mark.slow  # torchrun: Python subprocesses
def test_two_process_torchrun_matches_one_process(data_files, tmp_path):
    cfg = _config(data_files, tmp_path / "unused", batch_size=4, steps=3, dropout=0.0, lambda_d=0.5, lambda_q=0.3,
                  reg_T=2)  # large regularisers so that the global-batch FLOPS term matters
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    from splade_pyserini.train.config import make_config
    from splade_pyserini.train.trainer import train

    train(make_config({**cfg, "output_dir": str(tmp_path / "one")}))  # 1 process, in this one
    base = [sys.executable, "-m"]
    _run(base + ["torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "-m", "splade_pyserini.train.trainer", "--config", str(cfg_path), "--output-dir", str(tmp_path / "two")],
         env)
    one = json.loads((tmp_path / "one" / "train_state.json").read_text())
    two = json.loads((tmp_path / "two" / "train_state.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2 and two["per_rank_batch"] == 2
    for a, b in zip(one["history"], two["history"], strict=True):
        for key in ("loss", "kl", "margin_mse", "flops", "l1_q", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)
    assert one["history"][-1]["flops"] > 0 and one["history"][-1]["lambda_d"] == 0.5


def test_global_flops_differs_from_per_rank_mean():
    """The quantity the 2-process run must reproduce is not the mean of per-half FLOPS."""
    from splade_pyserini.train import losses

    torch.manual_seed(0)
    reps = torch.relu(torch.randn(8, 50))
    halves = (losses.flops(reps[:4]) + losses.flops(reps[4:])) / 2
    assert float(halves) != pytest.approx(float(losses.flops(reps)), rel=1e-3)


def test_config_file_and_flags(tmp_path):
    from splade_pyserini.errors import SpladeError
    from splade_pyserini.train.cli import add_commands

    cfg = tmp_path / "c.toml"
    cfg.write_text('[train]\nmodel = "m"\nlr = 0.5\nbatch_size = 4\noutput_dir = "./out"\n')
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["train", "--config", str(cfg), "--lr", "0.25", "--no-progress"])
    from splade_pyserini.train.config import config_from_args, make_config

    c = config_from_args(args)
    assert (c.lr, c.batch_size, c.progress, c.model) == (0.25, 4, False, "m")
    assert c.output_dir == str((tmp_path / "out").resolve())
    with pytest.raises(SpladeError):
        make_config({"learning_rate": 1})
    with pytest.raises(SpladeError):
        make_config({"model": "m"}).validate()
    for name in ("mine", "teach"):
        assert parser.parse_args([name] + {"mine": ["--run", "r", "--qrels", "q", "--output", "o"],
                                           "teach": ["--pools", "p", "--topics", "t", "--corpus", "c",
                                                     "--teacher", "run:x", "--output", "o"]}[name]).func
    # the throughput benchmark lives in the bench group: `splade-pyserini bench train`
    from splade_pyserini.cli import build_parser

    assert build_parser().parse_args(["bench", "train", "--model", "bert-tiny"]).func


def test_mine_command(tmp_path, data_files):
    from splade_pyserini.train.cli import add_commands

    run = tmp_path / "run.trec"
    run.write_text("".join(f"1 Q0 {d} {r} {100 - r} x\n" for r, d in enumerate(["184", "29", "12", "13", "14"], 1)))
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["mine", "--run", str(run), "--qrels", str(CRANFIELD), "--output", str(tmp_path / "p.jsonl"),
                              "--tiers", "2:3,1:5", "--seed", "9"])
    assert args.func(args) == 0
    lines = (tmp_path / "p.jsonl").read_text().splitlines()
    meta, pool = json.loads(lines[0])["meta"], json.loads(lines[1])
    assert meta["seed"] == 9 and pool["qid"] == "1" and "184" in pool["positives"] and "184" not in pool["negatives"]


def test_bench_train_tiny_cpu():
    from splade_pyserini.train.bench import bench_train

    r = bench_train(model="bert-tiny", device="cpu", batch_size=1, n_negatives=2, query_length=8, doc_length=16,
                    steps=1, warmup_steps=0)
    assert r["queries_per_s"] > 0 and r["docs_per_s"] == pytest.approx(3 * r["queries_per_s"])


def test_gradient_accumulation_matches_one_big_batch(data_files, tmp_path):
    """Without the FLOPS term (computed per micro-batch) and dropout, 2 micro-batches of 2 = 1 batch of 4."""
    from splade_pyserini.train.config import make_config
    from splade_pyserini.train.trainer import train

    common = dict(batch_size=4, steps=2, dropout=0.0, lambda_d=0.0, lambda_q=0.3, reg_T=0)
    big = train(make_config(_config(data_files, tmp_path / "big", **common)))
    acc = train(make_config(_config(data_files, tmp_path / "acc", grad_accum=2, **common)))
    for a, b in zip(big["history"], acc["history"], strict=True):
        for key in ("loss", "kl", "margin_mse", "l1_q", "grad_norm"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)


@pytest.mark.slow  # an index in a JVM subprocess
def test_trained_checkpoint_is_searched_through_the_pyserini_plugin(data_files, tmp_path):
    """The output folder of a training run is an --encoder at once: encode + index with it here, then
    `python -m pyserini.search.lucene --impact --encoder <folder>` returns what `splade-pyserini search` does."""
    from splade_pyserini.encoder import load_encoder
    from splade_pyserini.index import build_index
    from splade_pyserini.topics import read_topics
    from splade_pyserini.train.config import make_config
    from splade_pyserini.train.trainer import train
    from splade_pyserini.vectors import encode_corpus

    out = tmp_path / "model"
    train(make_config(_config(data_files, out, steps=2)))
    encode_corpus(load_encoder(str(out), device="cpu"), CRANFIELD, tmp_path / "vectors", limit=300, progress=False)
    meta = build_index(tmp_path / "vectors", tmp_path / "index")
    assert meta["documents"] == 300 and meta["model"] == str(out.resolve())
    topics = tmp_path / "topics.tsv"
    topics.write_text("".join(f"{q}\t{t}\n" for q, t in list(read_topics(CRANFIELD).items())[:15]))
    ours, plugin = tmp_path / "ours.txt", tmp_path / "plugin.txt"
    from helpers import run_main, run_pyserini_search

    code, _, err = run_main("search", "--index", tmp_path / "index", "--encoder", out, "--topics", topics, "--output",
                            ours, "--hits", "50")
    assert code == 0, err[-3000:]
    run_pyserini_search("--index", tmp_path / "index", "--topics", topics, "--encoder", out, "--impact", "--output",
                        plugin, "--hits", "50")  # the plugin's own start-up path: test_pipeline, in a subprocess
    a = [line.split()[:5] for line in open(ours)]
    assert len(a) == 15 * 50
    assert a == [line.split()[:5] for line in open(plugin)]
