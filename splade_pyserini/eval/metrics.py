"""Metrics through ranx over ``{qid: {docid: score}}`` runs and ``{qid: {docid: grade}}`` qrels.

Besides ranx's metric names, ``ndcg*@k`` (or ``ndcg*``, meaning ``ndcg*@10``) is the SPLADE-v3 paper's nDCG*:
see :mod:`splade_pyserini.eval.judged`.
"""

from __future__ import annotations

import re

from ..errors import SpladeError
from ..runs import Qrels, Run

DEFAULT_METRICS = ("ndcg@10", "map", "mrr@10", "recall@100", "recall@1000")


def _ranx_qrels(qrels: Qrels):
    from ranx import Qrels as RQrels

    return RQrels({q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()})


_STAR = re.compile(r"^ndcg\*(?:@(\d+))?$", re.I)


def star_cutoff(metric: str) -> int | None:
    """The cutoff of an ``ndcg*@k`` metric name (``ndcg*`` alone is @10), or None for any other name."""
    m = _STAR.match(metric.strip())
    if not m:
        return None
    return int(m.group(1) or 10)


def evaluate(qrels: Qrels, runs: dict[str, Run], metrics=DEFAULT_METRICS, per_query: bool = False) -> dict:
    """``{run_name: {metric: value}}``: the mean over every judged query, as ranx computes it.

    Queries judged in ``qrels`` but absent from a run count as zero (ranx ``make_comparable``, trec_eval -c);
    queries of a run without judgments are ignored. With ``per_query=True`` values are ``{qid: value}`` dicts.
    ``ndcg*@k`` names are computed on the judged-only runs where the paper's rule applies (see ``judged``).
    """
    if not qrels:
        raise SpladeError("qrels hold no judgments.")
    metrics = list(metrics)
    if any(star_cutoff(m) is not None for m in metrics):
        return _evaluate_with_star(qrels, runs, metrics, per_query)
    from ranx import Run as RRun
    from ranx import evaluate as ranx_evaluate

    rq = _ranx_qrels(qrels)
    out: dict = {}
    for name, run in runs.items():
        rr = RRun({q: {d: float(s) for d, s in docs.items()} for q, docs in run.items() if docs and q in qrels}, name=name)
        if not rr.keys():
            out[name] = {m: ({q: 0.0 for q in rq.keys()} if per_query else 0.0) for m in metrics}
            continue
        try:
            scores = ranx_evaluate(rq, rr, metrics, return_mean=not per_query, make_comparable=True)
        except (NotImplementedError, ValueError) as e:
            raise SpladeError(f"metrics {metrics}: {str(e)[:200]} (use ranx names such as ndcg@10, map, "
                              "mrr@10, recall@1000, or ndcg*@10).") from None
        if len(metrics) == 1:
            scores = {metrics[0]: scores}
        if per_query:
            out[name] = {m: dict(zip(rq.keys(), (float(x) for x in scores[m]))) for m in metrics}
        else:
            out[name] = {m: float(scores[m]) for m in metrics}
    return out


def _evaluate_with_star(qrels: Qrels, runs: dict[str, Run], metrics: list[str], per_query: bool) -> dict:
    from .judged import judged_only, uses_judged_only

    star = {m: star_cutoff(m) for m in metrics if star_cutoff(m) is not None}
    plain = [m for m in metrics if m not in star]
    judged = uses_judged_only(qrels)
    out: dict = {name: {} for name in runs}
    parts: dict = {name: {} for name in runs}
    if plain:
        for name, values in evaluate(qrels, runs, plain, per_query).items():
            parts[name].update(values)
    inner = sorted({f"ndcg@{k}" for k in star.values()})
    star_runs = {name: (judged_only(run, qrels) if judged else run) for name, run in runs.items()}
    star_values = evaluate(qrels, star_runs, inner, per_query)
    for name in runs:
        for m, k in star.items():
            parts[name][m] = star_values[name][f"ndcg@{k}"]
        out[name] = {m: parts[name][m] for m in metrics}
    return out
