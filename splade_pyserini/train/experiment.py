"""The end-to-end training experiment: fine-tune a small SPLADE on Cranfield, test on held-out Cranfield and Vaswani.

    python -m splade_pyserini.train.experiment --workdir DIR --cranfield CRANFIELD_BEIR_DIR \\
        --vaswani VASWANI_BEIR_DIR --model SPLADE_DIR [--config configs/train-cranfield-splade-tiny.toml]

1. Split: Cranfield's judged queries in ``queries.jsonl`` file order — the first ``train_queries`` (150: ids 1–150)
   train, the last ``test_queries`` (75: ids 151–225) test. Nothing of the test queries is used before evaluation.
2. First stage: Anserini's BM25 (:mod:`splade_pyserini.retrieve.bm25`, k1 0.9, b 0.4, a Lucene index of each
   collection under ``DIR/bm25``) and the warm-start SPLADE by exhaustive quantized dot products
   (:class:`.firststage.SparseIndex`, the ranking an Anserini impact index gives), top-1000 each.
3. Pools (:mod:`.mine`): per training query, tiers ``50:50,50:1000`` from each of the two runs, unioned; qrels
   positives (grade >= 1) excluded from the negatives.
4. Teachers (:mod:`.teachers`): BM25 (the same Anserini BM25, searched to full depth: a candidate that matches no
   query term scores 0) and the warm-start SPLADE score every (query, candidate) pair; min-max per
   query, mean, then rescored (default: to the mean/std of the SPLADE teacher's raw scores, the student's scale).
   Cross-encoders are not used because none is available offline here.
5. Training (:mod:`.trainer`) from the warm start with the config's ``[train]`` table.
6. Evaluation before and after: nDCG@10 (plus MAP and R@100) of full retrieval over each corpus, on the 75
   held-out Cranfield queries and on all of Vaswani's 93, with BM25 beside them; a table on stdout and
   ``results.json`` in the work directory (with the wall time of each phase). The warm start's corpus vectors
   are cached (``--cache-dir``, default ``DIR/cache``; file names hash the model files, lengths and documents) and
   reused by a later run; the trained model's are always computed.
"""

from __future__ import annotations

import argparse
import os
import time
import tomllib
from pathlib import Path

from ..errors import SpladeError
from ..logs import cli_logging, module_logger

logger = module_logger(__name__)

DEFAULTS = {
    "train_queries": 150,
    "test_queries": 75,
    "depth": 1000,
    "tiers": "50:50,50:1000",
    "mine_seed": 0,
    "rescore_to": "teacher:1",
    "metrics": ["ndcg@10", "map", "recall@100"],
    "threads": 0,
}
TRAIN_DEFAULTS = {
    "n_negatives": 8, "batch_size": 8, "epochs": 1.0, "lr": 1e-4, "warmup_ratio": 0.1,
    "query_max_length": 64, "doc_max_length": 128, "lambda_d": 0.02, "lambda_q": 0.01, "reg_T": 10, "seed": 42,
}


class _PairScorer:
    def __init__(self, name, fn):
        self.name = name
        self._fn = fn

    def score(self, pairs, queries, docs):
        return self._fn(pairs, queries)


def _split(queries: dict[str, str], n_train: int, n_test: int) -> tuple[dict, dict]:
    ids = list(queries)
    if n_train + n_test > len(ids):
        raise SpladeError(f"the split needs {n_train} + {n_test} queries but the collection has {len(ids)}.")
    return ({q: queries[q] for q in ids[:n_train]}, {q: queries[q] for q in ids[len(ids) - n_test:]})


def _cache_path(cache_dir: Path, name: str, encoder, docs) -> Path:
    """A cache file named by what determines its content: the model's files, the lengths, the documents."""
    import hashlib

    h = hashlib.sha1()
    model_dir = Path(encoder.model_dir).resolve()
    for f in sorted(model_dir.iterdir()):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(f"{model_dir}|{encoder.card.doc_max_length}|{encoder.card.scale}|{len(docs)}".encode())
    for docid in list(docs)[:: max(1, len(docs) // 64)]:
        h.update(docid.encode() + b"\0" + docs[docid][:200].encode("utf-8", "replace"))
    return cache_dir / f"{name}-{h.hexdigest()[:16]}.npz"


def _index(encoder, docs, cache: Path | None, log):
    from .firststage import SparseIndex

    if cache is not None and cache.is_file():
        log(f"  reusing cached vectors {cache}")
        return SparseIndex.load(cache, encoder)
    index = SparseIndex(encoder, docs, progress=True)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        index.save(tmp)
        os.replace(tmp, cache)
    return index


def run_experiment(workdir, cranfield, vaswani, model, config: dict | None = None, log=print,
                   cache_dir=None) -> dict:
    import torch

    from ..encoder import load_encoder
    from ..eval.metrics import evaluate
    from ..fileio import write_json
    from ..runs import read_qrels, write_run
    from ..topics import read_topics
    from .data import corpus_texts
    from ..retrieve.bm25 import bm25_search, build_bm25_index
    from .firststage import SparseIndex
    from .mine import mine, parse_tiers, write_pools
    from .model_card import write_model_card
    from .teachers import teach
    from .config import make_config
    from .trainer import train

    config = config or {}
    exp = {**DEFAULTS, **config.get("experiment", {})}
    train_values = {**TRAIN_DEFAULTS, **config.get("train", {})}
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if exp["threads"]:
        torch.set_num_threads(int(exp["threads"]))
    times: dict[str, float] = {}
    t_start = time.perf_counter()

    def phase(name, t0):
        times[name] = round(time.perf_counter() - t0, 1)
        log(f"[{name}] {times[name]:.1f}s")

    t0 = time.perf_counter()
    cran_docs = corpus_texts(cranfield)
    cran_queries = read_topics(cranfield)
    cran_qrels = read_qrels(cranfield)
    vas_docs = corpus_texts(vaswani)
    vas_queries = read_topics(vaswani)
    vas_qrels = read_qrels(vaswani)
    train_q, test_q = _split(cran_queries, int(exp["train_queries"]), int(exp["test_queries"]))
    test_qrels = {q: cran_qrels[q] for q in test_q}
    train_qrels = {q: cran_qrels[q] for q in train_q}
    log(f"Cranfield: {len(cran_docs)} docs, {len(train_q)} train queries (ids {next(iter(train_q))}..{list(train_q)[-1]}), "
        f"{len(test_q)} test queries (ids {next(iter(test_q))}..{list(test_q)[-1]}); Vaswani: {len(vas_docs)} docs, "
        f"{len(vas_queries)} queries")
    depth = int(exp["depth"])
    threads = max(1, int(exp["threads"]) or os.cpu_count() or 1)
    bm25_cran = build_bm25_index(cranfield, workdir / "bm25" / "cranfield", threads=threads)
    bm25_vas = build_bm25_index(vaswani, workdir / "bm25" / "vaswani", threads=threads)
    runs = {"cranfield": {"BM25": bm25_search(bm25_cran, cran_queries, depth, threads)},
            "vaswani": {"BM25": bm25_search(bm25_vas, vas_queries, depth, threads)}}
    phase("load+bm25", t0)

    t0 = time.perf_counter()
    before = load_encoder(model, device="cpu")
    cache_dir = Path(cache_dir).resolve() if cache_dir else workdir / "cache"
    cran_before = _index(before, cran_docs, _cache_path(cache_dir, "cranfield", before, cran_docs), log)
    runs["cranfield"]["before"] = cran_before.search(cran_queries, depth)
    phase("encode cranfield (before)", t0)

    t0 = time.perf_counter()
    pools, meta = mine([runs["cranfield"]["BM25"], runs["cranfield"]["before"]], train_qrels,
                       seed=int(exp["mine_seed"]), tiers=parse_tiers(exp["tiers"]), qids=train_q)
    meta["runs"] = ["BM25", "warm-start SPLADE"]
    write_pools(workdir / "pools.jsonl", pools, meta)
    float_index = SparseIndex(before, quantized=False, batch=cran_before.batch, ids=cran_before.ids)
    bm25_full = bm25_search(bm25_cran, train_q, None, threads)  # every matching document: the others score 0
    scorers = [_PairScorer("bm25", lambda pairs, _: [bm25_full.get(q, {}).get(d, 0.0) for q, d in pairs]),
               _PairScorer("splade-warm-start", float_index.score_pairs)]
    teach(pools, cran_queries, cran_docs, scorers, workdir / "scores.jsonl", rescore_to=exp["rescore_to"],
          show_progress=False)
    log(f"  pools: {meta['queries']} queries, {meta['negatives_mean']:.1f} negatives on average")
    phase("mine+teach", t0)

    t0 = time.perf_counter()
    values = dict(train_values)
    values.update(model=str(model), output_dir=str(workdir / "model"), queries=str(cranfield), corpus=str(cranfield),
                  pools=str(workdir / "pools.jsonl"), scores=str(workdir / "scores.jsonl"), device="cpu")
    state = train(make_config(values))
    phase("train", t0)

    t0 = time.perf_counter()
    after = load_encoder(workdir / "model", device="cpu")
    cran_after = _index(after, cran_docs, None, log)
    runs["cranfield"]["after"] = cran_after.search(test_q, depth)
    phase("encode cranfield (after)", t0)

    t0 = time.perf_counter()
    vas_before = _index(before, vas_docs, _cache_path(cache_dir, "vaswani", before, vas_docs), log)
    runs["vaswani"]["before"] = vas_before.search(vas_queries, depth)
    phase("encode vaswani (before)", t0)
    t0 = time.perf_counter()
    vas_after = _index(after, vas_docs, None, log)
    runs["vaswani"]["after"] = vas_after.search(vas_queries, depth)
    phase("encode vaswani (after)", t0)

    metrics = list(exp["metrics"])
    cran_eval = evaluate(test_qrels, {k: {q: v[q] for q in test_q if q in v} for k, v in runs["cranfield"].items()}, metrics)
    cran_train_eval = evaluate(train_qrels, {k: {q: v[q] for q in train_q if q in v}
                                              for k, v in runs["cranfield"].items() if k != "after"}, metrics)
    vas_eval = evaluate(vas_qrels, runs["vaswani"], metrics)
    for coll, rs in runs.items():
        for name, run in rs.items():
            slug = name.split(" ")[0].lower()
            write_run(workdir / "runs" / f"{coll}-{slug}.trec", run, tag=f"{coll}-{slug}")
    density = {
        "cranfield_doc_terms_before": float(len(cran_before.batch.terms) / len(cran_before.ids)),
        "cranfield_doc_terms_after": float(len(cran_after.batch.terms) / len(cran_after.ids)),
        "vaswani_doc_terms_before": float(len(vas_before.batch.terms) / len(vas_before.ids)),
        "vaswani_doc_terms_after": float(len(vas_after.batch.terms) / len(vas_after.ids)),
    }
    times["total"] = round(time.perf_counter() - t_start, 1)
    hist = state["history"]
    result = {
        "split": {"train": list(train_q), "test": list(test_q),
                  "rule": f"queries.jsonl file order: first {len(train_q)} train, last {len(test_q)} test"},
        "cranfield_test": cran_eval, "cranfield_train_queries": cran_train_eval, "vaswani": vas_eval,
        "doc_terms": density, "seconds": times, "threads": torch.get_num_threads(),
        "experiment": exp, "train": {k: v for k, v in state["config"].items()},
        "train_steps": state["step"], "train_queries": state["training_queries"],
        "loss_first": hist[0]["loss"] if hist else None, "loss_last": hist[-1]["loss"] if hist else None,
        "loss_curve": [round(h["loss"], 5) for h in hist],
        "pools": meta,
    }
    write_json(workdir / "results.json", result)
    write_model_card(workdir / "model", metrics={f"Cranfield, {len(test_q)} held-out queries": cran_eval,
                                                 f"Vaswani, {len(vas_queries)} queries": vas_eval})
    log("")
    log(format_results(result, metrics))
    return result


def format_results(result: dict, metrics) -> str:
    rows = [("Cranfield test (75 q)", result["cranfield_test"]), ("Vaswani (93 q)", result["vaswani"])]
    head = f"{'query set':<24} {'run':<16} " + " ".join(f"{m:>10}" for m in metrics)
    lines = [head, "-" * len(head)]
    for label, table in rows:
        for name, scores in table.items():
            lines.append(f"{label:<24} {name:<16} " + " ".join(f"{scores[m]:>10.4f}" for m in metrics))
    d = result["doc_terms"]
    lines.append("")
    lines.append(f"non-zero terms per document, before → after: Cranfield {d['cranfield_doc_terms_before']:.0f} → "
                 f"{d['cranfield_doc_terms_after']:.0f}, Vaswani {d['vaswani_doc_terms_before']:.0f} → "
                 f"{d['vaswani_doc_terms_after']:.0f}")
    lines.append(f"training: {result['train_steps']} steps, loss {result['loss_first']:.4f} → {result['loss_last']:.4f}; "
                 f"wall time {result['seconds']['total']:.0f}s ({result['threads']} threads)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="splade_pyserini.train.experiment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--cranfield", required=True, help="Cranfield in BEIR layout")
    parser.add_argument("--vaswani", required=True, help="Vaswani in BEIR layout")
    parser.add_argument("--model", required=True, help="warm-start SPLADE (card name, directory or HF id)")
    parser.add_argument("--config", help="TOML with [experiment] and [train] tables")
    parser.add_argument("--cache-dir", help="where the warm start's corpus vectors are cached (default WORKDIR/cache)")
    args = parser.parse_args(argv)
    with cli_logging():
        config = {}
        if args.config:
            try:
                config = tomllib.loads(Path(args.config).read_text())
            except (OSError, tomllib.TOMLDecodeError) as e:
                logger.error("cannot read %s: %s", args.config, e)
                return 2
        try:
            run_experiment(args.workdir, args.cranfield, args.vaswani, args.model, config, cache_dir=args.cache_dir)
        except SpladeError as e:
            logger.error("%s", e)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
