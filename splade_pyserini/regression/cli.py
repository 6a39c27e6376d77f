"""``splade-pyserini regression export|run|list``: the subcommands, their options (numbers checked by argparse, so a
bad one is a one-line usage error before any work) and the printed report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..errors import SpladeError
from ..fileio import atomic_write
from ..logs import BARE
from .config import DEFAULT_METRICS, anserini_configs
from .export import export_regression
from .locate import CORPUS_ROOT_ENV
from .run import Report, run_regression, run_with_anserini

logger = logging.getLogger(__name__)


def _print_report(report: Report) -> int:
    for check in report.checks:
        print(check.line())
    if report.ok:
        print(report.summary())
        return 0
    logger.error("%s", report.summary(), extra=BARE)
    return 1


def _cmd_run(args) -> int:
    if args.runner == "anserini":
        if args.index:
            raise SpladeError("--index cannot be used with --runner anserini (it always builds its index).")
        report, text = run_with_anserini(args.config, corpus_path=args.corpus_path, corpus_root=args.corpus_root,
                                         topics_dir=args.topics_dir, work_dir=args.work_dir,
                                         index_threads=args.index_threads, keep=args.keep)
        if args.verbose:
            logger.info("%s", text.rstrip("\n"))
    else:
        report = run_regression(args.config, corpus_path=args.corpus_path, corpus_root=args.corpus_root,
                                topics_dir=args.topics_dir, index=args.index, work_dir=args.work_dir,
                                index_threads=args.index_threads, keep=args.keep)
    if args.output:
        with atomic_write(args.output) as f:
            json.dump({"config": report.config, "ok": report.ok, "runner": report.runner, "seconds": report.seconds,
                       "checks": [c.__dict__ for c in report.checks], "runs": report.runs}, f, indent=2)
            f.write("\n")
    return _print_report(report)


def _cmd_export(args) -> int:
    from ..encoder import load_encoder

    encoder = load_encoder(args.encoder, device=args.device)
    path = export_regression(encoder, args.collection, output=args.output, name=args.name, vectors=args.vectors,
                             index=args.index, work_dir=args.work_dir, metrics=args.metrics or DEFAULT_METRICS,
                             precision=args.precision, hits=args.hits, index_threads=args.index_threads,
                             store_docvectors=not args.no_docvectors, fast=args.fast, corpus_path=args.corpus_path,
                             topics_name=args.topics_name, download_url=args.download_url,
                             download_checksum=args.download_checksum, vectors_url=args.vectors_url,
                             shard_size=args.shard_size, onnx=args.onnx)
    print(path)
    return 0


def _cmd_list(args) -> int:
    folder = Path(args.folder)
    if not args.anserini:
        configs = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        if not configs:
            raise SpladeError(f"no regression configs (*.yaml) in {folder}; pass --folder, or --anserini for "
                              "Anserini's bundled configs.")
        for p in configs:
            print(p)
        return 0
    for name in anserini_configs(args.filter):
        print(name)
    return 0


def add_commands(subparsers) -> None:
    from ..cli import deprecated_alias, positive_int

    p = subparsers.add_parser("regression", help="Anserini regression configs: export one, run one")
    sub = p.add_subparsers(dest="regression", required=True, metavar="WHAT")

    e = sub.add_parser("export", help="encode, index, search and evaluate a BEIR collection; write its config")
    e.add_argument("--encoder", required=True, help="card name (splade-tiny …) or model/checkpoint folder")
    e.add_argument("--collection", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    e.add_argument("--output", default="regressions", help="folder for NAME.yaml and topics-and-qrels/")
    e.add_argument("--name", default=None, help="config name (default: COLLECTION.ENCODER)")
    e.add_argument("--vectors", default=None, help="reuse this encoded corpus (`splade-pyserini encode` output)")
    e.add_argument("--index", default=None, help="reuse this index of the corpus (its statistics are recorded)")
    e.add_argument("--work-dir", default=None, help="keep vectors, index and run here (default: a temporary folder)")
    e.add_argument("--metrics", nargs="+", default=None,
                   help="map, ndcg@K, recall@K, p@K, mrr@K, success@K, or raw trec_eval parameters "
                        f"(default: {' '.join(DEFAULT_METRICS)})")
    deprecated_alias(e, e.add_argument("--metric-precision", dest="precision", type=positive_int, default=4,
                                       help="the config's metric_precision (trec_eval prints 4 decimals)"), "--precision")
    e.add_argument("--hits", type=positive_int, default=1000)
    e.add_argument("--index-threads", type=positive_int, default=2)
    e.add_argument("--no-docvectors", action="store_true", help="index without -storeDocvectors")
    e.add_argument("--fast", action="store_true", help="name the Java extension's collection and generator classes")
    e.add_argument("--onnx", action="store_true",
                   help="raw-text topics encoded in Anserini (-encoder SpladePyserini, model exported to onnx/NAME)")
    e.add_argument("--corpus-path", default=None, help="the config's corpus_path (default collections/ENCODER/NAME)")
    e.add_argument("--topics-name", default=None, help="display name of the topic set")
    e.add_argument("--download-url", default=None)
    e.add_argument("--download-checksum", default=None)
    e.add_argument("--shard-size", type=positive_int, default=100_000,
                   help="shard size when the corpus is encoded here")
    e.add_argument("--vectors-url", default=None, help="where the pinned vectors can be fetched (URL or path)")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=_cmd_export)

    r = sub.add_parser("run", help="index, verify, search and evaluate a config; fail on any difference")
    r.add_argument("config", help="a config file, or the name of one of Anserini's bundled configs")
    r.add_argument("--corpus-path", default=None, help="the corpus folder itself")
    r.add_argument("--corpus-root", default=None,
                   help=f"a folder under which the config's corpus_path lies (also ${CORPUS_ROOT_ENV})")
    r.add_argument("--topics-dir", default=None, help="folder holding the topics and qrels files")
    r.add_argument("--index", default=None, help="use this existing index instead of building one")
    r.add_argument("--work-dir", default=None, help="build the index and runs here and keep them")
    r.add_argument("--keep", action="store_true", help="keep the temporary working folder")
    r.add_argument("--index-threads", type=positive_int, default=None, help="override index_threads")
    r.add_argument("--runner", default="splade-pyserini", choices=["splade-pyserini", "anserini"],
                   help="anserini: Anserini's ReproduceFromDocumentCollection (passes results above expected)")
    deprecated_alias(r, r.add_argument("--output", default=None, help="also write the checks to this JSON file"),
                     "--json")
    r.add_argument("--verbose", action="store_true", help="with --runner anserini, print its log")
    r.set_defaults(func=_cmd_run)

    ls = sub.add_parser("list", help="list the configs of a folder, or Anserini's bundled ones")
    ls.add_argument("--folder", default="regressions")
    ls.add_argument("--anserini", action="store_true", help="list Anserini's bundled configs")
    ls.add_argument("--filter", default="splade", help="with --anserini: names containing this (default splade)")
    ls.set_defaults(func=_cmd_list)
