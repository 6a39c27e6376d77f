"""Command-line front ends of the run producers: ``rerank``, ``dense`` and ``fuse`` (``bm25`` is the main
command line's, over :mod:`.bm25`).

:func:`add_commands` registers them on an ``argparse`` sub-parsers object; each sub-parser gets
``set_defaults(func=handler)``, where ``handler(args) -> int`` returns the exit code and raises
:class:`~splade_pyserini.errors.SpladeError` for a user's mistake. Each writes its run with
:func:`splade_pyserini.runs.write_run` (ranked by the package's one rule). Argument shapes:

``rerank --run PATH --topics T --corpus C --model DIR --output PATH [--hits 50] [--batch-size 32]
[--device auto] [--max-length 512] [--keep-tail] [--tag TAG]``
    Cross-encoder re-ranking of each query's top hits.

``dense --corpus C --topics T --model DIR --output PATH [--hits 1000] [--pooling cls|mean]
[--normalize|--no-normalize] [--batch-size 32] [--device auto] [--max-length N] [--query-prefix S]
[--doc-prefix S] [--tag TAG]``
    Dense bi-encoder retrieval (faiss flat inner product).

``fuse --run PATH PATH [PATH …] --output PATH [--method rrf] [--norm auto] [--rrf-k 60] [--weights W …]
[--hits 1000] [--tag TAG]``
    Hybrid runs (e.g. SPLADE + dense): rrf, wsum and sum computed directly, every other ranx method through ranx.

``--k`` is an old, hidden spelling of ``--hits`` (it still works, with a warning).
"""

from __future__ import annotations

import argparse
import logging

from ..errors import SpladeError
from ..runs import read_run, write_run

logger = logging.getLogger(__name__)


def cmd_rerank(args) -> int:
    from ..topics import read_topics
    from .rerank import rerank

    run = read_run(args.run)
    if not run:
        raise SpladeError(f"run {args.run} holds no results.")
    topics = read_topics(args.topics, judged_only=False)
    out = rerank(run, topics, args.corpus, args.model, k=args.hits, batch_size=args.batch_size, device=args.device,
                 max_length=args.max_length, keep_tail=args.keep_tail, progress=True)
    write_run(args.output, out, tag=args.tag)
    logger.info("re-ranked %d queries; wrote %s", len(out), args.output)
    return 0


def cmd_dense(args) -> int:
    from ..topics import read_topics
    from .dense import dense_search

    topics = read_topics(args.topics)
    run = dense_search(args.corpus, topics, args.model, k=args.hits, pooling=args.pooling, normalize=args.normalize,
                       batch_size=args.batch_size, max_length=args.max_length, device=args.device,
                       query_prefix=args.query_prefix, doc_prefix=args.doc_prefix, progress=True)
    write_run(args.output, run, tag=args.tag)
    logger.info("searched %d queries; wrote %s", len(run), args.output)
    return 0


def cmd_fuse(args) -> int:
    from .fusion import fuse

    paths = [p for group in args.run for p in group]
    if len(paths) < 2:
        raise SpladeError("fuse needs at least two runs: --run A.trec B.trec.")
    params: dict = {}
    if args.method == "rrf":
        params["k"] = args.rrf_k
    if args.weights:
        if len(args.weights) != len(paths):
            raise SpladeError(f"--weights has {len(args.weights)} values for {len(paths)} runs; give one per run.")
        params["weights"] = list(args.weights)
    norm = None if args.norm == "none" else args.norm
    run = fuse([read_run(p) for p in paths], method=args.method, norm=norm, params=params, k=args.hits)
    write_run(args.output, run, tag=args.tag)
    logger.info("fused %d runs over %d queries; wrote %s", len(paths), len(run), args.output)
    return 0


def add_commands(subparsers) -> None:
    """Register ``rerank``, ``dense`` and ``fuse`` on ``subparsers``."""
    from ..cli import deprecated_alias, positive_int

    p = subparsers.add_parser("rerank", help="re-rank a run's top hits with a local cross-encoder",
                              description="Re-score each query's top hits with an AutoModelForSequenceClassification "
                                          "cross-encoder read from a local folder (GPU and bf16 when available).")
    p.add_argument("--run", required=True, help="first-stage TREC run")
    p.add_argument("--topics", required=True, help="BEIR folder, queries.jsonl, TSV or TREC topics")
    p.add_argument("--corpus", required=True, help="BEIR folder, JSONL or TSV corpus")
    p.add_argument("--model", required=True, help="local cross-encoder folder")
    p.add_argument("--output", required=True, help="TREC run to write")
    deprecated_alias(p, p.add_argument("--hits", type=positive_int, default=50,
                                       help="documents re-ranked per query (50)"), "--k")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--keep-tail", action="store_true",
                   help="keep the documents below rank --hits after the re-ranked ones")
    p.add_argument("--tag", default="rerank")
    p.set_defaults(func=cmd_rerank)

    p = subparsers.add_parser("dense", help="dense bi-encoder retrieval baseline (faiss flat inner product)",
                              description="Encode corpus and topics with a local Hugging Face or sentence-"
                                          "transformers encoder and search exactly by inner product.")
    p.add_argument("--corpus", required=True)
    p.add_argument("--topics", required=True)
    p.add_argument("--model", required=True, help="local encoder folder")
    p.add_argument("--output", required=True, help="TREC run to write")
    deprecated_alias(p, p.add_argument("--hits", type=positive_int, default=1000, help="results per query (1000)"),
                     "--k")
    p.add_argument("--pooling", choices=("cls", "mean"), help="default: the folder's sentence-transformers "
                                                              "pooling, else cls")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="L2-normalise embeddings (default: as the sentence-transformers folder says, else no)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, help="default: the folder's max_seq_length, else 512")
    p.add_argument("--device", default="auto")
    p.add_argument("--query-prefix", help="text put before each query (default: the folder's query prompt)")
    p.add_argument("--doc-prefix", help="text put before each document (default: the folder's document prompt)")
    p.add_argument("--tag", default="dense")
    p.set_defaults(func=cmd_dense)

    p = subparsers.add_parser("fuse", help="fuse runs (hybrid sparse + dense): rrf, wsum, sum or any ranx method",
                              description="Fuse two or more TREC runs: rrf, wsum and sum (with no or min-max normalisation) are "
                              "computed directly, every other ranx method and normalisation through ranx.")
    p.add_argument("--run", action="append", nargs="+", required=True, metavar="PATH")
    p.add_argument("--output", required=True)
    p.add_argument("--method", default="rrf", help="fusion method: rrf, wsum, sum, or a ranx one: mnz, max, isr, … (rrf)")
    p.add_argument("--norm", default="auto", help="score normalisation: auto, none, min-max, max, sum, zmuv, rank")
    p.add_argument("--rrf-k", type=int, default=60, help="the k of reciprocal rank fusion (60)")
    p.add_argument("--weights", type=float, nargs="+", help="one weight per run (wsum, w_bordafuse, …)")
    deprecated_alias(p, p.add_argument("--hits", type=positive_int, default=1000,
                                       help="results kept per query (1000)"), "--k")
    p.add_argument("--tag", default="fused")
    p.set_defaults(func=cmd_fuse)
