"""``splade-pyserini bench encode|index|search|train``: measurements against the peers, in one run each."""

from __future__ import annotations

import json


def _encode(args) -> int:
    from .encode import bench_encode, format_result

    peers = [p for p in args.peers.split(",") if p]
    result = bench_encode(args.encoder, args.corpus, limit=args.limit, device=args.device, peers=peers,
                          peer_limit=args.peer_limit, random_base=args.random_bert_base, synthetic=args.synthetic,
                          compile=args.compile, fmt=args.format, batch_size=args.batch_size,
                          tokenizer=args.tokenizer, exact=args.exact)
    print(format_result(result))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
    pys = [r for r in result["rows"] if r["path"].startswith("pyserini") and "ratio" in r]
    st = [r for r in result["rows"] if r["path"].startswith("sentence-transformers") and "ratio" in r]
    if st:
        print(f"ratio_vs_sentence_transformers={st[0]['ratio']:.2f}")
    print(f"ratio_vs_pyserini={pys[0]['ratio']:.2f}" if pys else "ratio_vs_pyserini=nan")
    return 0


def _index(args) -> int:
    from .index_search import bench_index

    bench_index(vectors_dir=args.vectors, synthetic_docs=args.synthetic, threads=args.threads, weights=args.weights,
                documents=not args.no_documents)
    return 0


def _scale(args) -> int:
    from .scale import bench_scale, parse_counts

    result = bench_scale(parse_counts(args.synthetic, "--synthetic"), args.work_dir,
                         ks=parse_counts(args.hits, "--hits"), queries=args.queries,
                         query_terms=args.query_terms, terms=args.terms, indexers=args.indexers.split(","),
                         threads=args.threads, repeats=args.repeats, seismic=args.seismic,
                         seismic_search={"query_cut": args.query_cut, "heap_factor": args.heap_factor})
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
    return 0


def _search(args) -> int:
    from ..topics import read_topics
    from .index_search import bench_search

    result = bench_search(args.index, args.encoder, read_topics(args.topics), k=args.hits, threads=args.threads,
                          max_queries=args.limit)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
    return 0


def add_commands(subparsers) -> None:
    from ..cli import add_seismic_search_args, deprecated_alias

    bench = subparsers.add_parser("bench", help="benchmarks against the peers (encode, index, search, train)")
    sub = bench.add_subparsers(dest="bench", required=True, metavar="WHAT")

    p = sub.add_parser("encode", help="document encoding vs Pyserini and sentence-transformers")
    p.add_argument("--encoder", default="splade-tiny")
    p.add_argument("--corpus", default=None, help="BEIR folder, .jsonl, .tsv (first --limit documents)")
    p.add_argument("--limit", type=int, default=600)
    p.add_argument("--synthetic", type=int, default=None, help="N MS MARCO-length synthetic passages instead of --corpus")
    p.add_argument("--random-bert-base", action="store_true",
                   help="a BERT-base SPLADE with random weights (bias for ~1%% density) instead of --encoder")
    p.add_argument("--tokenizer", default=None, help="bert-base-uncased tokenizer folder for --random-bert-base "
                   "(default: the embedded splade-tiny's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="torch.compile this package's model")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"])
    p.add_argument("--peers", default="pyserini,st", help="comma-separated: pyserini, st (sentence-transformers)")
    p.add_argument("--peer-limit", type=int, default=None, help="documents for the (slow) peers; default all")
    p.add_argument("--batch-size", type=int, default=32, help="the peers' batch size")
    deprecated_alias(p, p.add_argument("--output", default=None, help="also write the numbers to this JSON file"),
                     "--json")
    p.add_argument("--exact", action="store_true", help="also time `encode --exact` (float64-formula integers)")
    p.set_defaults(func=_encode)

    p = sub.add_parser("index", help="indexing throughput: the Java extension vs stock JsonVectorCollection")
    p.add_argument("--vectors", default=None, help="encoded vectors to time as well (e.g. Vaswani's)")
    p.add_argument("--synthetic", type=int, default=200_000, help="synthetic SPLADE-like documents (0: none)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weights", default="fitted", choices=["fitted", "loguniform", "uniform"],
                   help="synthetic impacts: fitted to splade-tiny (mean ~32), log-uniform 1-300 (mean ~52), uniform")
    p.add_argument("--no-documents", action="store_true",
                   help="skip the extension's documents writer (-splade.writer documents); time stock and segments")
    p.set_defaults(func=_index)

    p = sub.add_parser("search", help="topics encoded + searched: this package vs Pyserini's LuceneImpactSearcher")
    p.add_argument("--index", required=True, help="an index built by `splade-pyserini index` with --encoder")
    p.add_argument("--encoder", required=True)
    p.add_argument("--topics", required=True, help="BEIR folder, queries.jsonl or TSV")
    p.add_argument("--hits", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None, help="default: one per core")
    p.add_argument("--limit", type=int, default=None, help="only the first N topics")
    deprecated_alias(p, p.add_argument("--output", default=None, help="also write the numbers to this JSON file"),
                     "--json")
    p.set_defaults(func=_search)

    p = sub.add_parser("scale", help="exact search on growing synthetic indexes: BatchSearcher vs SimpleImpactSearcher")
    p.add_argument("--synthetic", default="100000,1000000", help="comma-separated document counts")
    p.add_argument("--work-dir", required=True, help="indexes are kept here and reused (a run resumes)")
    p.add_argument("--hits", default="10,1000", help="comma-separated k")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--query-terms", type=int, default=30, help="mean query length (fitted log-normal)")
    p.add_argument("--terms", type=int, default=150, help="mean document length (fitted log-normal)")
    p.add_argument("--indexers", default="fast,stock",
                   help="indexes to build: fast,stock, or fast (Anserini's searcher then reads the fast index)")
    p.add_argument("--threads", type=int, default=2, help="indexing threads (searches use one)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seismic", action="store_true",
                   help="also build the approximate Seismic index of each size and report its ms/query and recall@k "
                        "against the exact hits (needs pyseismic-lsr)")
    add_seismic_search_args(p)
    p.add_argument("--output", default=None, help="also write the numbers to this JSON file")
    p.set_defaults(func=_scale)

    from ..train.cli import add_bench_parser

    add_bench_parser(sub)
