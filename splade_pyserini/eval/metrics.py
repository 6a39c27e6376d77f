"""Metrics through ranx over ``{qid: {docid: score}}`` runs and ``{qid: {docid: grade}}`` qrels."""

from __future__ import annotations

from ..errors import SpladeError
from ..runs import Qrels, Run

DEFAULT_METRICS = ("ndcg@10", "map", "mrr@10", "recall@100", "recall@1000")


def _ranx_qrels(qrels: Qrels):
    from ranx import Qrels as RQrels

    return RQrels({q: {d: int(g) for d, g in docs.items()} for q, docs in qrels.items()})


def evaluate(qrels: Qrels, runs: dict[str, Run], metrics=DEFAULT_METRICS, per_query: bool = False) -> dict:
    """``{run_name: {metric: value}}``: the mean over every judged query, as ranx computes it.

    Queries judged in ``qrels`` but absent from a run count as zero (ranx ``make_comparable``, trec_eval -c);
    queries of a run without judgments are ignored. With ``per_query=True`` values are ``{qid: value}`` dicts.
    """
    if not qrels:
        raise SpladeError("qrels hold no judgments.")
    from ranx import Run as RRun
    from ranx import evaluate as ranx_evaluate

    metrics = list(metrics)
    rq = _ranx_qrels(qrels)
    out: dict = {}
    for name, run in runs.items():
        rr = RRun({q: {d: float(s) for d, s in docs.items()} for q, docs in run.items() if docs and q in qrels}, name=name)
        if not rr.keys():
            out[name] = {m: ({q: 0.0 for q in rq.keys()} if per_query else 0.0) for m in metrics}
            continue
        scores = ranx_evaluate(rq, rr, metrics, return_mean=not per_query, make_comparable=True)
        if len(metrics) == 1:
            scores = {metrics[0]: scores}
        if per_query:
            out[name] = {m: dict(zip(rq.keys(), (float(x) for x in scores[m]))) for m in metrics}
        else:
            out[name] = {m: float(scores[m]) for m in metrics}
    return out
