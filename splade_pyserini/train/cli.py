"""Training subcommands for the ``splade-pyserini`` command line: ``mine``, ``teach``, ``train`` (and ``bench train``).

The main CLI calls :func:`add_commands` with its ``subparsers``; each command sets ``func`` to a handler that
returns an exit code and raises :class:`~splade_pyserini.errors.SpladeError` for a user's mistake.
"""

from __future__ import annotations

import argparse
import json


def _cmd_mine(args) -> int:
    from ..cli import named_runs
    from ..runs import read_qrels
    from ..topics import read_topics
    from .mine import DEFAULT_TIERS, mine, parse_tiers, write_pools
    from .teachers import read_scores

    paths = list(named_runs(args.run).values())
    runs = [read_scores(p) for p in paths]
    qrels = read_qrels(args.qrels)
    qids = list(read_topics(args.topics, judged_only=False)) if args.topics else None
    tiers = parse_tiers(args.tiers) if args.tiers else DEFAULT_TIERS
    pools, meta = mine(runs, qrels, seed=args.seed, tiers=tiers, min_grade=args.min_grade, qids=qids)
    meta["runs"] = paths
    meta["qrels"] = str(args.qrels)
    write_pools(args.output, pools, meta)
    print(f"mined pools for {meta['queries']} queries ({meta['negatives_mean']:.1f} negatives on average) "
          f"into {args.output}")
    return 0


def _cmd_teach(args) -> int:
    from ..topics import read_topics
    from .data import corpus_texts
    from .mine import read_pools
    from .teachers import make_scorer, pool_pairs, teach

    pools, _ = read_pools(args.pools)
    queries = read_topics(args.topics, judged_only=False)
    docs = corpus_texts(args.corpus, {d for _, d in pool_pairs(pools)})
    scorers = [make_scorer(spec, device=args.device, batch_size=args.batch_size) for spec in args.teacher]
    run = teach(pools, queries, docs, scorers, args.output, rescore_to=args.rescore_to, missing=args.missing,
                show_progress=not args.quiet)
    pairs = sum(len(v) for v in run.values())
    print(f"wrote {pairs} teacher scores for {len(run)} queries to {args.output}")
    return 0


def _cmd_train(args) -> int:
    from .config import config_from_args
    from .trainer import train

    state = train(config_from_args(args))
    last = state["history"][-1] if state["history"] else {}
    print(f"trained {state['step']} steps into {state['config']['output_dir']}"
          + (f" (last loss {last['loss']:.4f})" if "loss" in last else ""))
    return 0


def _cmd_bench_train(args) -> int:
    from .bench import bench_train

    result = bench_train(model=args.model, device=args.device, batch_size=args.batch_size,
                         n_negatives=args.negatives, query_length=args.query_length, doc_length=args.doc_length,
                         steps=args.steps, precision=args.precision)
    print(json.dumps(result, indent=2))
    return 0


def add_commands(subparsers) -> None:
    from ..cli import add_run_argument
    from .config import add_config_arguments

    p = subparsers.add_parser("mine", help="negative pools from first-stage runs and qrels (SPLADE-v3 sampling)",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_run_argument(p, "TREC runs or score files (several, or repeat --run)")
    p.add_argument("--qrels", required=True, help="BEIR folder, qrels TSV or TREC qrels")
    p.add_argument("--output", required=True, help="pools JSONL (first line: metadata)")
    p.add_argument("--topics", help="only the queries of these topics (e.g. the training split)")
    p.add_argument("--tiers", default="50:50,50:1000", help="count:depth sampling tiers, applied in order")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-grade", type=int, default=1, help="smallest relevance grade that is a positive")
    p.set_defaults(func=_cmd_mine)

    p = subparsers.add_parser("teach", help="teacher scores for every pool candidate: ensemble, rescore, score file",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--pools", required=True)
    p.add_argument("--topics", required=True)
    p.add_argument("--corpus", required=True)
    p.add_argument("--teacher", action="append", required=True,
                   help="cross-encoder:MODEL, splade:ENCODER or run:FILE; repeat for an ensemble")
    p.add_argument("--output", required=True, help='score file, JSONL {"qid", "docid", "score"}')
    p.add_argument("--rescore-to", help="affine-match mean/std to teacher:K (its raw scores), MEAN,STD or a score file")
    p.add_argument("--missing", default="min", choices=("min", "skip"),
                   help="a candidate a teacher did not score counts as its minimum (0), or is averaged without it")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32, help="cross-encoder pairs per batch")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no info messages")
    p.set_defaults(func=_cmd_teach)

    p = subparsers.add_parser("train", help="fine-tune a SPLADE model by distillation (also under torchrun)")
    add_config_arguments(p)
    p.set_defaults(func=_cmd_train)


def add_bench_parser(bench_subparsers) -> None:
    """``splade-pyserini bench train`` (registered by the bench command group)."""
    p = bench_subparsers.add_parser("train", help="training throughput (queries/s) on synthetic batches",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="bert-base", help="bert-base (random, in memory), bert-tiny, or a checkpoint")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=None, help="queries per step (20 on GPU, 2 on CPU)")
    p.add_argument("--negatives", type=int, default=8)
    p.add_argument("--query-length", type=int, default=32)
    p.add_argument("--doc-length", type=int, default=128)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.set_defaults(func=_cmd_bench_train)
