"""The ``splade-pyserini`` command line (also ``python -m splade_pyserini``).

encode → index → search → evaluate, plus ``quickstart`` (the whole path on the embedded default) and ``encoders``.
Feature packages add their own subcommands through an ``add_commands(subparsers)`` function (see ``_EXTENSIONS``).
Every failure prints one line, ``error: …`` (the problem, then the fix), and exits with status 2: the package's
own errors, bad arguments, and the causes that files, Java or the machine raise (see :func:`errors.user_message`).
``--debug`` (anywhere on the line) or ``SPLADE_PYSERINI_DEBUG=1`` shows the traceback instead.

The package's messages (``info`` lines, warnings, that error line) go through :mod:`logging`; while a command runs,
:func:`logs.cli_logging` shows them on stderr as plain lines (a command's ``--quiet`` keeps warnings and errors only).
Option names are shared by every subcommand (``--hits``, ``--run [NAME=]PATH``, ``--output``, ``--work-dir``); the
helpers here (:func:`add_run_argument`, :func:`named_values`, :func:`deprecated_alias`) keep them so, and an old
spelling stays as a hidden alias that warns.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

from .errors import SpladeError, user_message
from .logs import BARE, cli_logging, module_logger

logger = module_logger(__name__)

# Modules that register further subcommands with add_commands(subparsers).
_EXTENSIONS = ("splade_pyserini.eval.cli", "splade_pyserini.retrieve.cli", "splade_pyserini.bench.cli", "splade_pyserini.train.cli",
               "splade_pyserini.regression", "splade_pyserini.onnx_export")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line (the usage itself is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message}; see `{self.prog} --help`.\n")


def _number(kind, minimum: float, strict: bool):
    """An argparse type: a ``kind`` number above ``minimum`` (or equal to it when not ``strict``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value != value or value in (float("inf"), float("-inf")) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{text} must be {'above' if strict else 'at least'} {minimum:g}")
        return value

    parse.__name__ = kind.__name__
    return parse


positive_int = _number(int, 0, strict=True)
positive_float = _number(float, 0.0, strict=True)
non_negative_float = _number(float, 0.0, strict=False)


class _Deprecated(argparse.Action):
    """An old spelling of an option, hidden from ``--help``: it still works, with a warning naming the new one."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        logger.warning("%s is deprecated; use %s", option_string, self.new)
        if self.nargs in ("+", "*") or isinstance(self.nargs, int):
            values = list(values)
        setattr(namespace, self.dest, values)


def deprecated_alias(parser, action: argparse.Action, *old: str) -> None:
    """Keep ``old`` option names working as hidden, deprecated spellings of ``action`` (its dest, type, nargs).

    A required option stays required with either spelling: argparse would count only its own, so the check moves
    to :func:`main` (``_required_renamed``, a default of this sub-parser alone)."""
    parser.add_argument(*old, action=_Deprecated, new=action.option_strings[0], dest=action.dest, type=action.type,
                        nargs=action.nargs, choices=action.choices, metavar=action.metavar)
    if action.required:
        action.required = False
        required = parser.get_default("_required_renamed") or []
        parser.set_defaults(_required_renamed=[*required, (parser, action)])


def _check_renamed(args) -> None:
    for parser, action in getattr(args, "_required_renamed", None) or []:
        if getattr(args, action.dest, None) is None:
            parser.error(f"the following arguments are required: {action.option_strings[0]}")


def add_run_argument(parser, help: str, metavar: str = "[NAME=]PATH") -> argparse.Action:
    """``--run``, the one meaning it has in every command: input TREC runs (or score files), ``[NAME=]PATH``,
    repeatable, several after one ``--run``; read the values with :func:`named_runs`."""
    return parser.add_argument("--run", action="append", nargs="+", required=True, metavar=metavar, help=help)


def named_values(values, option: str, default_name=None, rename_repeats: bool = False) -> dict[str, str]:
    """``{name: value}`` of ``NAME=VALUE`` arguments (lists from ``append``/``nargs`` are flattened).

    With ``default_name``, a value without ``NAME=`` (or an existing path, or a path whose folder holds the ``=``) is
    named ``default_name(value)``, with ``'`` added to a repeated name when ``rename_repeats``; without it, ``NAME=``
    is required. A name given twice is refused."""
    out: dict[str, str] = {}
    for value in (str(v) for group in values or [] for v in (group if isinstance(group, list) else [group])):
        name, sep, path = value.partition("=")
        if default_name is not None and (not sep or os.sep in name or Path(value).exists()):
            name, path = default_name(value), value
            while rename_repeats and name in out:
                name += "'"
        if not sep and default_name is None or not name or not path:
            raise SpladeError(f"{option} {value!r}: expected {'PATH or ' if default_name else ''}NAME=PATH.")
        if name in out:
            raise SpladeError(f"{option}: name {name!r} given twice; give each its own NAME=.")
        out[name] = path
    return out


def named_runs(values) -> dict[str, str]:
    """``{name: path}`` of ``--run`` values: ``NAME=PATH`` names a run, a bare path is named by its file name (with
    ``'`` added to a repeated one)."""
    return named_values(values, "--run", os.path.basename, rename_repeats=True)


def _run_args(p, threads: int | None, threads_help: str) -> None:
    """What every command that searches topics into a TREC run takes: --topics, --output, --hits, --threads."""
    p.add_argument("--topics", required=True, help="BEIR folder, queries.jsonl, TSV, TREC topic file or ir_datasets id")
    p.add_argument("--output", required=True, help="TREC run to write")
    p.add_argument("--hits", type=positive_int, default=1000, help="results per query (1000)")
    p.add_argument("--threads", type=positive_int, default=threads, help=threads_help)


def add_seismic_search_args(p) -> None:
    """Seismic's two search knobs (``search --engine seismic``, ``bench scale --seismic``); defaults: the engine's."""
    from .approximate import SEARCH_DEFAULTS

    p.add_argument("--query-cut", type=positive_int, default=None,
                   help=f"Seismic: the query's largest terms used to choose blocks (default {SEARCH_DEFAULTS['query_cut']})")
    p.add_argument("--heap-factor", type=float, default=None,
                   help="Seismic: score a block when its summary reaches this fraction of the k-th score (default "
                        f"{SEARCH_DEFAULTS['heap_factor']})")


def _device_args(p):
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:1 …")


def _cmd_encode(args) -> int:
    from .corpus import check_corpus
    from .encoder import load_encoder
    from .vectors import encode_corpus

    check_corpus(args.corpus)
    overrides = {"scale": args.scale, "doc_max_length": args.max_length}
    encoder = load_encoder(args.encoder, device=args.device, precision=args.precision,
                           batch_tokens=args.batch_tokens, compile=args.compile,
                           **{k: v for k, v in overrides.items() if v is not None})
    meta = encode_corpus(encoder, args.corpus, args.output, shard_size=args.shard_size, limit=args.limit,
                         with_contents=not args.no_contents, fmt=args.format, exact=args.exact, overwrite=args.overwrite)
    if meta.get("complete"):
        print(f"encoded {meta['documents']} documents into {args.output} ({meta['shards']} shards, {meta['seconds']:.1f}s)")
    else:
        print(f"this rank encoded {meta['documents_this_rank']} documents; the folder completes when every rank is done")
    return 0


def _cmd_index(args) -> int:
    from .index import build_index

    if args.seismic:
        from .approximate import require_seismic

        require_seismic()  # refused before the Lucene index is built when pyseismic-lsr is missing
    meta = build_index(args.vectors, args.index, threads=args.threads, store_docvectors=not args.no_docvectors,
                       stock=args.stock)
    print(f"indexed {meta.get('documents')} documents into {args.index} (encoder {meta['encoder']}, scale {meta['scale']})")
    if args.seismic:
        from .approximate import SEISMIC_DIR, build_seismic

        record = build_seismic(args.index, args.vectors, threads=args.threads, n_postings=args.seismic_postings)
        print(f"Seismic index of {record['documents_indexed']} documents written to {Path(args.index) / SEISMIC_DIR}")
    return 0


def _cmd_search(args) -> int:
    from .encoder import load_encoder
    from .search import search_topics
    from .topics import read_topics

    if args.engine == "lucene" and (args.query_cut is not None or args.heap_factor is not None):
        raise SpladeError("--query-cut and --heap-factor are the Seismic engine's; add --engine seismic (the exact "
                          "Lucene search has no such knobs).")
    read_topics(args.topics)  # a bad topic file is refused before the model loads
    _check_index(args.index)
    _check_output_file(args.output)
    encoder = load_encoder(args.encoder, device=args.device)  # the query scale is the index's (see search)
    results = search_topics(args.index, encoder, args.topics, args.output, hits=args.hits, threads=args.threads,
                            batch_size=args.batch_size, engine=args.engine, query_cut=args.query_cut,
                            heap_factor=args.heap_factor)
    print(f"searched {len(results)} queries; run written to {args.output}")
    return 0


def _check_index(path: str) -> None:
    """Refuse what is no Lucene index before any model loads (Lucene's own error comes only after)."""
    folder = Path(path)
    if not folder.is_dir():
        raise SpladeError(f"index {path} does not exist; build it with `splade-pyserini index --vectors … --index {path}`.")
    if not any(folder.glob("segments_*")):
        raise SpladeError(f"{path} is not a Lucene index (it has no segments_N file); pass the folder that "
                          f"`splade-pyserini index` built, or build one with `splade-pyserini index --index {path}`.")


def _check_output_file(path: str) -> None:
    if Path(path).is_dir():
        raise SpladeError(f"--output {path} is a folder; pass the path of the run file to write.")


def _cmd_evaluate(args) -> int:
    from .eval.metrics import DEFAULT_METRICS, evaluate
    from .runs import read_qrels, read_run

    qrels = read_qrels(args.qrels)
    runs = {name: read_run(path) for name, path in named_runs(args.run).items()}
    metrics = args.metrics or list(DEFAULT_METRICS)
    scores = evaluate(qrels, runs, metrics)
    print(format_table(scores, metrics))
    if args.json:
        print(json.dumps(scores, sort_keys=False))
    return 0


def format_table(scores: dict[str, dict[str, float]], metrics) -> str:
    name_w = max(6, *(len(n) for n in scores))
    head = f"{'run':<{name_w}}  " + "  ".join(f"{m:>11}" for m in metrics)
    lines = [head, "-" * len(head)]
    for name, values in scores.items():
        lines.append(f"{name:<{name_w}}  " + "  ".join(f"{values[m]:>11.4f}" for m in metrics))
    return "\n".join(lines)


def _cmd_quickstart(args) -> int:
    from .quickstart import quickstart

    quickstart(encoder=args.encoder, collection=args.collection, workdir=args.workdir, device=args.device)
    return 0


def _cmd_bm25(args) -> int:
    from .retrieve.bm25 import bm25_search, build_bm25_index
    from .corpus import check_corpus
    from .runs import write_run
    from .topics import read_topics

    queries = read_topics(args.topics)
    check_corpus(args.corpus)
    _check_output_file(args.output)
    index = build_bm25_index(args.corpus, args.index, threads=args.threads)
    write_run(args.output, bm25_search(index, queries, k=args.hits, threads=args.threads, k1=args.k1, b=args.b),
              tag="bm25")
    print(f"BM25 run of {len(queries)} queries written to {args.output}")
    return 0


def _cmd_encoders(args) -> int:
    from .cards import builtin_cards

    for name, card in builtin_cards().items():
        print(f"{name:<22} {card.variant:<8} scale {card.scale:<5} doc {card.doc_max_length:<4} "
              f"query {card.query_max_length:<4} {card.model}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="splade-pyserini", description=__doc__.splitlines()[0])
    from . import __version__
    from .approximate import BUILD_DEFAULTS, ENGINES

    parser.add_argument("--version", action="version", version=f"splade-pyserini {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also SPLADE_PYSERINI_DEBUG=1); may stand anywhere")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("encode", help="encode a corpus into JsonVectorCollection shards")
    p.add_argument("--encoder", required=True, help="card name (splade-v3, splade-tiny …), model folder or HF id")
    p.add_argument("--corpus", required=True, help="BEIR folder, .jsonl, .tsv or an ir_datasets id")
    p.add_argument("--output", required=True, help="output folder (resumable)")
    _device_args(p)
    p.add_argument("--batch-tokens", type=positive_int, default=None, help="token budget per batch (default: 8192 CPU, 65536 GPU)")
    p.add_argument("--batch-size", dest="batch_tokens_compat", type=positive_int, default=None,
                   help="documents per batch, approximately (converted to a token budget)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--compile", action="store_true", help="torch.compile the model (GPU)")
    p.add_argument("--scale", type=positive_float, default=None, help="override the card's quantisation scale")
    p.add_argument("--max-length", type=positive_int, default=None, help="override the card's document max length")
    p.add_argument("--shard-size", type=positive_int, default=100_000)
    p.add_argument("--limit", type=positive_int, default=None, help="encode only the first N documents")
    p.add_argument("--no-contents", action="store_true", help="leave the text out of the vector files")
    p.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"],
                   help="jsonl: Anserini JsonVectorCollection (stock); parquet: columnar, for the Java fast path")
    p.add_argument("--overwrite", action="store_true",
                   help="start over: delete the vectors splade-pyserini wrote in --output (never other files)")
    p.add_argument("--exact", action="store_true",
                   help="integer weights equal to the float64 formula's on any CPU (slower; fp32 only)")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("index", help="build a Lucene impact index from encoded vectors")
    p.add_argument("--vectors", required=True)
    p.add_argument("--index", required=True)
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--no-docvectors", action="store_true", help="do not store document vectors (smaller index)")
    p.add_argument("--stock", action="store_true",
                   help="Anserini's own JsonVectorCollection path instead of the Java extension (same postings, slower)")
    p.add_argument("--seismic", action="store_true",
                   help="also build the approximate Seismic index inside INDEX (search it with --engine seismic; "
                        "needs pyseismic-lsr)")
    p.add_argument("--seismic-postings", type=positive_int, default=BUILD_DEFAULTS["n_postings"],
                   help=f"Seismic's n_postings: postings kept per term on average (default {BUILD_DEFAULTS['n_postings']})")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("search", help="search topics and write a TREC run")
    p.add_argument("--index", required=True)
    p.add_argument("--encoder", required=True)
    _run_args(p, threads=None, threads_help="search threads (default: one per core)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="queries encoded and searched together")
    p.add_argument("--engine", choices=ENGINES, default=ENGINES[0],
                   help="lucene: exact (default); seismic: the approximate index built by `index --seismic`")
    add_seismic_search_args(p)
    _device_args(p)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("evaluate", help="evaluate runs (trec_eval's metrics, ties included)")
    p.add_argument("--qrels", required=True, help="BEIR folder, BEIR qrels TSV or TREC qrels")
    add_run_argument(p, "TREC runs, named by NAME= or else by their file name")
    p.add_argument("--metrics", nargs="+", default=None, help="metric names, computed as trec_eval does (default: ndcg@10 map mrr@10 recall@100 recall@1000)")
    p.add_argument("--json", action="store_true", help="print {run: {metric: value}} as the last line")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("quickstart", help="encode, index, search and evaluate a small collection, BM25 beside SPLADE")
    p.add_argument("--encoder", default="splade-tiny")
    p.add_argument("--collection", default=None, help="BEIR folder or ir_datasets id (default: the bundled sample)")
    deprecated_alias(p, p.add_argument("--work-dir", dest="workdir", default="splade-quickstart",
                                       help="folder for the vectors, indexes and runs"), "--workdir")
    _device_args(p)
    p.set_defaults(func=_cmd_quickstart)

    p = sub.add_parser("bm25", help="BM25 baseline run (Anserini, k1=0.9 b=0.4)")
    p.add_argument("--corpus", required=True)
    p.add_argument("--index", required=True, help="BM25 index folder (built if missing, re-used otherwise)")
    _run_args(p, threads=1, threads_help="search threads")
    p.add_argument("--k1", type=non_negative_float, default=0.9)
    p.add_argument("--b", type=non_negative_float, default=0.4)
    p.set_defaults(func=_cmd_bm25)

    p = sub.add_parser("encoders", help="list the named encoders (cards)")
    p.set_defaults(func=_cmd_encoders)

    for module in _EXTENSIONS:
        importlib.import_module(module).add_commands(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("SPLADE_PYSERINI_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    with cli_logging() as set_quiet:
        try:
            args = build_parser().parse_args(argv)
            set_quiet(bool(getattr(args, "quiet", False)))
            _check_renamed(args)
            if getattr(args, "batch_tokens_compat", None) and not getattr(args, "batch_tokens", None):
                args.batch_tokens = args.batch_tokens_compat * 128
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            logger.warning("interrupted; re-run the same command to resume", extra=BARE)
            return 130
        except SystemExit:
            raise
        except BaseException as e:  # every failure, by its cause: one line (see errors.user_message)
            if debug:
                raise
            logger.error("%s", user_message(e))
            return 2


if __name__ == "__main__":
    sys.exit(main())
