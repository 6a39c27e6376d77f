"""Evaluating several systems on several collections, as the SPLADE-v3 paper reports them.

:func:`evaluate_suite` reads each collection's qrels and each system's run on it, and writes into ``out_dir``:

* ``scores.{md,csv,tex}``: the mean ``metric`` of every system (rows) on every collection (columns), with the
  mean over the collections where a system has every run;
* ``compare-<collection>.{md,csv,tex}``: on each collection, paired tests of every system against the
  baseline (:func:`~splade_pyserini.eval.significance.compare`; seeds recorded in the tables);
* ``meta.{md,csv,tex}`` and ``forest.png``: the RANGER meta-analysis of ``treatment`` against ``baseline`` over
  the collections where both have a run (:mod:`~splade_pyserini.eval.meta`);
* ``suite.json``: the settings and the numbers, for scripts.

A system may lack runs on some collections (its cells stay empty); a run file that is named but absent is an error.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpladeError
from ..fileio import atomic_write, write_json
from ..runs import read_qrels, read_run
from .meta import MetaResult, forest_plot, meta_analysis
from .metrics import evaluate
from .significance import CORRECTIONS, TESTS, ComparisonTable, compare

FORMATS = {"md": "to_markdown", "csv": "to_csv", "tex": "to_latex"}


@dataclass
class SuiteResult:
    metric: str
    collections: list[str]
    systems: list[str]
    scores: dict[str, dict[str, float]]  # system -> collection -> mean metric
    comparisons: dict[str, ComparisonTable]
    meta: MetaResult | None
    files: list[Path] = field(default_factory=list)

    def scores_rows(self):
        for system in self.systems:
            vals = [self.scores[system].get(c) for c in self.collections]
            avg = sum(vals) / len(vals) if vals and all(v is not None for v in vals) else None
            yield system, vals, avg

    def scores_markdown(self) -> str:
        cols = ["system", *self.collections, "mean"]
        lines = [f"Mean {self.metric} per collection.", "", "| " + " | ".join(cols) + " |",
                 "| --- | " + " | ".join("---:" for _ in cols[1:]) + " |"]
        for system, vals, avg in self.scores_rows():
            lines.append("| " + " | ".join([system, *(_fmt(v) for v in vals), _fmt(avg)]) + " |")
        return "\n".join(lines) + "\n"

    def scores_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["system", *self.collections, "mean", "metric"])
        for system, vals, avg in self.scores_rows():
            w.writerow([system, *("" if v is None else v for v in vals), "" if avg is None else avg, self.metric])
        return buf.getvalue()

    def scores_latex(self) -> str:
        esc = lambda s: s.replace("_", "\\_").replace("&", "\\&").replace("%", "\\%")  # noqa: E731
        out = [f"% {self.metric}", "\\begin{tabular}{l" + "r" * (len(self.collections) + 1) + "}", "\\toprule",
               " & ".join(esc(c) for c in ["system", *self.collections, "mean"]) + " \\\\", "\\midrule"]
        for system, vals, avg in self.scores_rows():
            out.append(" & ".join([esc(system), *(_fmt(v) for v in vals), _fmt(avg)]) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join(out) + "\n"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4f}"


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def evaluate_suite(collections: dict[str, str | os.PathLike], runs: dict[str, dict[str, str | os.PathLike]],
                   baseline: str, treatment: str, metric: str = "ndcg@10", out_dir: str | os.PathLike = "suite",
                   effect: str = "SMD", tests=TESTS, correction=CORRECTIONS, n_permutations: int = 10_000,
                   seed: int = 42, alpha: float = 0.05, clip_tau2: bool = False,
                   plot: bool = True) -> SuiteResult:
    """Evaluate ``runs[system][collection]`` (run file paths) against ``collections[collection]`` (qrels sources:
    a BEIR folder, its ``qrels/test.tsv`` or a TREC qrels file) and write the tables described above."""
    if not collections:
        raise SpladeError("evaluate-suite needs at least one collection.")
    for name in (baseline, treatment):
        if name not in runs:
            raise SpladeError(f"system {name!r} has no runs; systems given: {', '.join(runs) or 'none'}.")
    if baseline == treatment:
        raise SpladeError("the treatment and the baseline must be different systems.")
    unknown = sorted({c for per in runs.values() for c in per} - set(collections))
    if unknown:
        raise SpladeError(f"runs name collection(s) {', '.join(unknown)} that --collections does not list.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    systems = [baseline, treatment] + [s for s in runs if s not in (baseline, treatment)]

    scores: dict[str, dict[str, float]] = {s: {} for s in systems}
    comparisons: dict[str, ComparisonTable] = {}
    treat_scores: dict[str, list[float]] = {}
    ctrl_scores: dict[str, list[float]] = {}
    files: list[Path] = []
    for coll, qrels_source in collections.items():
        qrels = read_qrels(qrels_source)
        loaded = {s: read_run(runs[s][coll]) for s in systems if coll in runs[s]}
        if not loaded:
            continue
        per_query = evaluate(qrels, loaded, [metric], per_query=True)
        for s, values in per_query.items():
            v = list(values[metric].values())
            scores[s][coll] = sum(v) / len(v) if v else math.nan
        if baseline in loaded and treatment in loaded:
            qids = list(per_query[baseline][metric])
            ctrl_scores[coll] = [per_query[baseline][metric][q] for q in qids]
            treat_scores[coll] = [per_query[treatment][metric][q] for q in qids]
        if baseline in loaded and len(loaded) > 1:
            table = compare(qrels, loaded, baseline, [metric], tests=tests, correction=correction,
                            n_permutations=n_permutations, seed=seed, alpha=alpha)
            comparisons[coll] = table
            for ext, method in FORMATS.items():
                path = out / f"compare-{_safe_name(coll)}.{ext}"
                with atomic_write(path) as f:
                    f.write(getattr(table, method)())
                files.append(path)

    result = SuiteResult(metric, list(collections), systems, scores, comparisons, None, files)
    for ext, text in (("md", result.scores_markdown()), ("csv", result.scores_csv()), ("tex", result.scores_latex())):
        path = out / f"scores.{ext}"
        with atomic_write(path) as f:
            f.write(text)
        files.append(path)

    if treat_scores:
        meta = meta_analysis(treat_scores, ctrl_scores, effect=effect, alpha=alpha, clip_tau2=clip_tau2,
                             treatment_name=treatment, control_name=baseline, metric=metric)
        result.meta = meta
        for ext, method in FORMATS.items():
            path = out / f"meta.{ext}"
            with atomic_write(path) as f:
                f.write(getattr(meta, method)())
            files.append(path)
        if plot:
            forest_plot(meta, out / "forest.png")
            files.append(out / "forest.png")

    summary = {
        "metric": metric, "baseline": baseline, "treatment": treatment, "effect": effect,
        "tests": list(tests), "corrections": list(correction) if not isinstance(correction, str) else [correction],
        "n_permutations": n_permutations, "seed": seed, "alpha": alpha,
        "collections": {c: str(p) for c, p in collections.items()},
        "runs": {s: {c: str(p) for c, p in per.items()} for s, per in runs.items()},
        "scores": scores,
        "meta": None if result.meta is None else {
            "effect": result.meta.effect, "ci": [result.meta.ci_low, result.meta.ci_high], "p": result.meta.p,
            "tau2": result.meta.tau2, "Q": result.meta.q, "df": result.meta.df,
            "sets": {s.name: {"effect": s.effect, "ci": [s.ci_low, s.ci_high], "p": s.p, "weight": s.weight}
                     for s in result.meta.sets}},
    }
    write_json(out / "suite.json", _nan_to_none(summary))
    files.append(out / "suite.json")
    return result


def _nan_to_none(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nan_to_none(v) for v in x]
    return x
