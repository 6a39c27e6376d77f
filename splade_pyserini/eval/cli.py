"""Command-line front ends of the evaluation tools: ``compare``, ``meta`` and ``evaluate-suite`` (the run
producers ``rerank``, ``dense`` and ``fuse`` are :mod:`splade_pyserini.retrieve.cli`'s).

:func:`add_commands` registers them on an ``argparse`` sub-parsers object; each sub-parser gets
``set_defaults(func=handler)``, where ``handler(args) -> int`` returns the exit code and raises
:class:`~splade_pyserini.errors.SpladeError` for a user's mistake. Argument shapes:

``compare --qrels Q --run [NAME=]PATH [[NAME=]PATH …] [--baseline NAME] [--metrics M …] [--tests student fisher]
[--corrections holm bonferroni] [--permutations N] [--seed S] [--alpha A] [--family all|metric]
[--format md|latex|csv] [--output FILE]``
    Paired tests of every run against the baseline (the first run when ``--baseline`` is not given).
    ``--corrections`` with no value turns corrections off. The table goes to stdout unless ``--output``.

``meta --qrels SET=QRELS … --treatment-runs SET=PATH … --control-runs SET=PATH … --plot FILE.png
[--treatment NAME] [--control NAME] [--metric M] [--effect SMD|MD] [--alpha A] [--clip-tau2]
[--format md|latex|csv] [--output FILE]``
    RANGER meta-analysis of the treatment against the control over the query sets (one qrels and one run of
    each system per set, matched by SET name); writes the forest plot and prints the table.

``evaluate-suite --collections [NAME=]QRELS … --runs SYSTEM=PATTERN … --baseline SYSTEM --treatment SYSTEM
--output DIR [--metric ndcg@10] [--effect SMD|MD] [--tests …] [--corrections …] [--permutations N]
[--seed S] [--alpha A] [--clip-tau2] [--no-plot]``
    ``--collections`` takes qrels sources (a BEIR folder, its qrels TSV or TREC qrels), named by ``NAME=`` or
    else by the folder's (file's) name. ``--runs`` takes, per system, a path pattern with ``{collection}`` that
    gives its run on each collection (``bm25=runs/bm25.{collection}.trec``; collections whose file is absent are
    skipped for that system), or an explicit ``SYSTEM:COLLECTION=PATH``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import SpladeError
from ..fileio import atomic_write

logger = logging.getLogger(__name__)


def _flatten(values) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out.extend(v if isinstance(v, list) else [v])
    return out


def _emit(text: str, output: str | None) -> None:
    if output:
        with atomic_write(output) as f:
            f.write(text)
        logger.info("wrote %s", output)
    else:
        sys.stdout.write(text)


# --- handlers -----------------------------------------------------------------------------------------------------

def cmd_compare(args) -> int:
    from ..cli import named_runs
    from ..runs import read_qrels, read_run
    from .significance import compare

    paths = named_runs(args.run)
    if len(paths) < 2:
        raise SpladeError("compare needs at least two runs: --run BASELINE=PATH OTHER=PATH.")
    baseline = args.baseline or next(iter(paths))
    qrels = read_qrels(args.qrels)
    runs = {name: read_run(p) for name, p in paths.items()}
    table = compare(qrels, runs, baseline, args.metrics, tests=args.tests, correction=args.corrections,
                    n_permutations=args.permutations, seed=args.seed, alpha=args.alpha, family=args.family)
    _emit(table.render(args.format), args.output)
    return 0


def cmd_meta(args) -> int:
    from ..cli import named_values
    from ..runs import read_qrels, read_run
    from .meta import forest_plot, meta_analysis
    from .metrics import evaluate

    qrels = named_values(args.qrels, "--qrels")
    treat = named_values(args.treatment_runs, "--treatment-runs")
    ctrl = named_values(args.control_runs, "--control-runs")
    for name, given in (("--treatment-runs", treat), ("--control-runs", ctrl)):
        if set(given) != set(qrels):
            raise SpladeError(f"{name} must name the same query sets as --qrels ({', '.join(qrels)}); "
                              f"got {', '.join(given) or 'none'}.")
    t_scores: dict[str, list[float]] = {}
    c_scores: dict[str, list[float]] = {}
    for name, source in qrels.items():
        q = read_qrels(source)
        pq = evaluate(q, {"t": read_run(treat[name]), "c": read_run(ctrl[name])}, [args.metric], per_query=True)
        qids = list(pq["c"][args.metric])
        t_scores[name] = [pq["t"][args.metric][x] for x in qids]
        c_scores[name] = [pq["c"][args.metric][x] for x in qids]
    result = meta_analysis(t_scores, c_scores, effect=args.effect, alpha=args.alpha, clip_tau2=args.clip_tau2,
                           treatment_name=args.treatment, control_name=args.control, metric=args.metric)
    forest_plot(result, args.plot)
    logger.info("wrote %s", args.plot)
    _emit(result.render(args.format), args.output)
    return 0


def _collection_name(source: str) -> str:
    """A collection named by its folder, or by its qrels file without the suffix."""
    p = Path(source.rstrip("/"))
    return p.name if p.is_dir() or not p.suffix else p.stem


def _suite_runs(values: list[str], collections: dict[str, str]) -> dict[str, dict[str, str]]:
    runs: dict[str, dict[str, str]] = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or not key or not path:
            raise SpladeError(f"--runs {v!r}: expected SYSTEM=PATTERN (with {{collection}}) or SYSTEM:COLLECTION=PATH.")
        system, colon, coll = key.partition(":")
        per = runs.setdefault(system, {})
        if colon:
            if coll not in collections:
                raise SpladeError(f"--runs {v!r}: collection {coll!r} is not among --collections.")
            if not Path(path).is_file():
                raise SpladeError(f"--runs {v!r}: run file {path} does not exist.")
            per[coll] = path
        elif "{collection}" in path:
            found = 0
            for c in collections:
                p = path.replace("{collection}", c)
                if Path(p).is_file():
                    per[c] = p
                    found += 1
            if not found:
                raise SpladeError(f"--runs {v!r}: no file matches the pattern for any collection "
                                  f"({', '.join(collections)}).")
        else:
            raise SpladeError(f"--runs {v!r}: the path needs {{collection}} in it, or write SYSTEM:COLLECTION=PATH.")
    return runs


def cmd_evaluate_suite(args) -> int:
    from ..cli import named_values
    from .suite import evaluate_suite

    collections = named_values(args.collections, "--collections", _collection_name)
    runs = _suite_runs(_flatten(args.runs), collections)
    result = evaluate_suite(collections, runs, args.baseline, args.treatment, metric=args.metric,
                            out_dir=args.out_dir, effect=args.effect, tests=args.tests, correction=args.corrections,
                            n_permutations=args.permutations, seed=args.seed, alpha=args.alpha,
                            clip_tau2=args.clip_tau2, plot=not args.no_plot)
    sys.stdout.write(result.scores_markdown())
    if result.meta is not None:
        sys.stdout.write("\n" + result.meta.to_markdown())
    logger.info("wrote %d files to %s", len(result.files), args.out_dir)
    return 0


# --- parsers ------------------------------------------------------------------------------------------------------

def _add_test_options(p: argparse.ArgumentParser) -> None:
    from .significance import CORRECTIONS, TESTS

    p.add_argument("--tests", nargs="+", choices=TESTS, default=list(TESTS), help="paired tests (default: both)")
    p.add_argument("--corrections", nargs="*", choices=CORRECTIONS, default=list(CORRECTIONS),
                   help="multiple-comparison corrections (default: holm bonferroni; give none to turn off)")
    p.add_argument("--permutations", type=int, default=10_000, help="randomisation-test permutations (10000)")
    p.add_argument("--seed", type=int, default=42, help="randomisation-test seed, recorded in the tables (42)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")


def add_commands(subparsers) -> None:
    """Register ``compare``, ``meta`` and ``evaluate-suite`` on ``subparsers``."""
    from ..cli import add_run_argument, deprecated_alias

    p = subparsers.add_parser("compare", help="paired significance tests of runs against a baseline",
                              description="Paired Student t and randomisation tests of each run against the "
                                          "baseline, with Holm and Bonferroni corrections and win/tie/loss counts.")
    p.add_argument("--qrels", required=True, help="BEIR folder, qrels TSV or TREC qrels")
    add_run_argument(p, "runs to compare, named by NAME= or else by their file name")
    p.add_argument("--baseline", help="name of the baseline run (default: the first)")
    p.add_argument("--metrics", nargs="+", default=["ndcg@10"], help="metric names (trec_eval's definitions: ndcg@10, map, mrr@10, recall@K, …) or ndcg*@10 (ndcg@10)")
    _add_test_options(p)
    p.add_argument("--family", choices=("all", "metric"), default="all",
                   help="correct over all comparisons, or per metric (all)")
    p.add_argument("--format", choices=("md", "latex", "csv"), default="md")
    p.add_argument("--output", help="write the table here instead of stdout")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("meta", help="RANGER meta-analysis of two systems over query sets, with a forest plot",
                              description="Random-effects (DerSimonian-Laird) meta-analysis of a treatment against "
                                          "a control over several query sets, as in RANGER and the SPLADE-v3 paper.")
    p.add_argument("--qrels", action="append", nargs="+", required=True, metavar="SET=QRELS")
    p.add_argument("--treatment-runs", action="append", nargs="+", required=True, metavar="SET=PATH")
    p.add_argument("--control-runs", action="append", nargs="+", required=True, metavar="SET=PATH")
    p.add_argument("--treatment", default="treatment", help="the treatment's name in the table and plot")
    p.add_argument("--control", default="control", help="the control's name in the table and plot")
    p.add_argument("--metric", default="ndcg@10", help="per-query metric (ndcg@10; ndcg*@10 for nDCG*)")
    p.add_argument("--effect", choices=("SMD", "MD"), default="SMD")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--clip-tau2", action="store_true", help="clip tau^2 at 0 (RANGER does not)")
    p.add_argument("--plot", required=True, help="forest plot image to write (.png)")
    p.add_argument("--format", choices=("md", "latex", "csv"), default="md")
    p.add_argument("--output", help="write the table here instead of stdout")
    p.set_defaults(func=cmd_meta)

    p = subparsers.add_parser("evaluate-suite", help="evaluate systems over collections: tables, tests, meta-analysis",
                              description="Evaluate every system on every collection; write score tables, "
                                          "per-collection significance tables, the meta-analysis and a forest plot.")
    p.add_argument("--collections", action="append", nargs="+", required=True, metavar="[NAME=]QRELS")
    p.add_argument("--runs", action="append", nargs="+", required=True,
                   metavar="SYSTEM=PATTERN", help="SYSTEM=path/with/{collection}.trec or SYSTEM:COLLECTION=PATH")
    p.add_argument("--baseline", required=True, help="control system (tests and meta-analysis)")
    p.add_argument("--treatment", required=True, help="treatment system of the meta-analysis")
    deprecated_alias(p, p.add_argument("--output", dest="out_dir", required=True,
                                       help="folder for the tables, the meta-analysis and the plot"), "--out-dir")
    p.add_argument("--metric", default="ndcg@10", help="ndcg@10; ndcg*@10 for the paper's nDCG*")
    p.add_argument("--effect", choices=("SMD", "MD"), default="SMD")
    _add_test_options(p)
    p.add_argument("--clip-tau2", action="store_true", help="clip tau^2 at 0 (RANGER does not)")
    p.add_argument("--no-plot", action="store_true", help="skip the forest plot")
    p.set_defaults(func=cmd_evaluate_suite)
