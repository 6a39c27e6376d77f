"""Metrics exactly as trec_eval computes them, over ``{qid: {docid: score}}`` runs and ``{qid: {docid: grade}}`` qrels.

trec_eval (the one Anserini bundles, ``io.anserini.eval.TrecEval``) is the truth: every value here is the double
trec_eval computes, operation for operation, so it prints the same digits. Its rules (``form_res_rels.c``):

* a query's documents are ranked by score descending, ties by docid in *descending* string order, whatever the
  order of the file (ranx would keep file order: two tied documents can give MAP 0.5 there and 1.0 here);
* a document is relevant when its grade is >= 1; gains are the grades themselves (nDCG's ``ndcg_cut``: gain / log2
  (rank + 1)); the ideal ranking holds every judged document of grade >= 1;
* queries judged in the qrels but absent from a run count 0 (``-c``); queries of a run without judgments are
  ignored; the mean is the sum over the judged queries in docid-string order, divided by their number.

Names (each the trec_eval command in brackets, see :func:`trec_eval_args`): ``ndcg@k`` (``-m ndcg_cut.k``),
``ndcg`` (``-m ndcg``), ``map`` (``-m map``), ``map@k`` (``-m map_cut.k``), ``recall@k`` (``-m recall.k``),
``precision@k``/``p@k`` (``-m P.k``), ``mrr``/``mrr@k`` (``-M k -m recip_rank``), ``success@k``/``hit_rate@k``
(``-m success.k``), ``r-precision`` (``-m Rprec``), and ``ndcg*@k`` (or ``ndcg*``, meaning ``ndcg*@10``): the
SPLADE-v3 paper's nDCG*, ``-J -m ndcg_cut.k`` where the paper's rule applies (see :mod:`splade_pyserini.eval.judged`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import SpladeError
from ..runs import Qrels, Run, ranked

DEFAULT_METRICS = ("ndcg@10", "map", "mrr@10", "recall@100", "recall@1000")
#: trec_eval's default relevance level (``-l 1``): grades >= 1 are relevant.
RELEVANCE_LEVEL = 1

_STAR = re.compile(r"^ndcg\*(?:@(\d+))?$", re.I)
_NAME = re.compile(r"^([a-z_-]+)(?:@(\d+))?$")
#: metric name -> (kind, whether it needs a cutoff: True, False, or None for optional)
_KINDS = {"ndcg": ("ndcg", None), "map": ("map", None), "recall": ("recall", True), "precision": ("P", True),
          "p": ("P", True), "mrr": ("recip_rank", None), "recip_rank": ("recip_rank", None),
          "success": ("success", True), "hit_rate": ("success", True), "r-precision": ("Rprec", False),
          "rprec": ("Rprec", False)}
SUPPORTED = "ndcg@K, ndcg, map, map@K, recall@K, precision@K (p@K), mrr, mrr@K, success@K, r-precision, ndcg*@K"


def star_cutoff(metric: str) -> int | None:
    """The cutoff of an ``ndcg*@k`` metric name (``ndcg*`` alone is @10), or None for any other name."""
    m = _STAR.match(metric.strip())
    if not m:
        return None
    return int(m.group(1) or 10)


@dataclass(frozen=True)
class Measure:
    """One metric name, parsed: trec_eval's measure, its cutoff, and whether it is judged-only nDCG*."""

    name: str
    kind: str  # ndcg, map, recall, P, recip_rank, success, Rprec
    k: int | None = None
    star: bool = False


def parse_metric(name: str) -> Measure:
    """A metric name as a :class:`Measure`; a one-line :class:`SpladeError` naming the supported ones otherwise."""
    text = str(name).strip()
    k = star_cutoff(text)
    if k is not None:
        if k < 1:
            raise SpladeError(f"metric {name!r}: the cutoff must be >= 1.")
        return Measure(str(name), "ndcg", k, star=True)
    m = _NAME.match(text.lower())
    if not m or m.group(1) not in _KINDS:
        raise SpladeError(f"unknown metric {name!r}; use {SUPPORTED}.")
    kind, needs_k = _KINDS[m.group(1)]
    k = int(m.group(2)) if m.group(2) else None
    if needs_k and k is None:
        raise SpladeError(f"metric {name!r} needs a cutoff, e.g. {m.group(1)}@10.")
    if needs_k is False and k is not None:
        raise SpladeError(f"metric {name!r} takes no cutoff.")
    if k is not None and k < 1:
        raise SpladeError(f"metric {name!r}: the cutoff must be >= 1.")
    return Measure(str(name), kind, k)


def trec_eval_args(metric: str) -> list[str]:
    """The trec_eval parameters that compute ``metric`` (``-c`` included), e.g. ``['-c', '-M', '10', '-m',
    'recip_rank']`` for ``mrr@10``. ``ndcg*@k`` gives ``-J`` only where the paper's rule applies (the caller knows)."""
    m = parse_metric(metric)
    if m.kind == "recip_rank":
        return ["-c", *(["-M", str(m.k)] if m.k else []), "-m", "recip_rank"]
    if m.kind in ("ndcg", "map"):
        measure = m.kind if m.k is None else f"{'ndcg_cut' if m.kind == 'ndcg' else 'map_cut'}.{m.k}"
    elif m.kind == "Rprec":
        measure = "Rprec"
    else:
        measure = f"{m.kind}.{m.k}"
    return ["-c", *(["-J"] if m.star else []), "-m", measure]


def ranking(docs: dict[str, float]) -> list[str]:
    """trec_eval's order of one query's documents: score descending, ties by docid descending (``strcmp``), the
    package's one ranking rule (:func:`splade_pyserini.runs.ranked`)."""
    return [d for d, _ in ranked(docs)]


def _query_value(m: Measure, grades: list[int], num_rel: int, ideal: list[int]) -> float:
    """One measure of one ranking (``grades``: the qrels grade of each ranked document, in order, None where the
    document is not judged), as trec_eval's ``m_*.c`` computes it."""
    if m.kind == "ndcg":
        cut = len(grades) if m.k is None else min(m.k, len(grades))
        dcg = 0.0
        for i in range(cut):
            g = grades[i]
            if g is not None and g > 0:
                dcg += g / math.log2(i + 2)
        idcg = 0.0
        for i, g in enumerate(ideal if m.k is None else ideal[:m.k]):
            idcg += g / math.log2(i + 2)
        return dcg / idcg if idcg > 0.0 else dcg
    if m.kind == "map":
        cut = len(grades) if m.k is None else min(m.k, len(grades))
        found, total = 0, 0.0
        for i in range(cut):
            g = grades[i]
            if g is not None and g >= RELEVANCE_LEVEL:
                found += 1
                total += found / (i + 1)
        return total / num_rel if num_rel else 0.0
    if m.kind == "recip_rank":
        cut = len(grades) if m.k is None else min(m.k, len(grades))
        for i in range(cut):
            g = grades[i]
            if g is not None and g >= RELEVANCE_LEVEL:
                return 1.0 / (i + 1)
        return 0.0
    k = num_rel if m.kind == "Rprec" else m.k
    found = sum(1 for g in grades[:k] if g is not None and g >= RELEVANCE_LEVEL)
    if m.kind == "recall":
        return found / num_rel if num_rel else 0.0
    if m.kind == "P":
        return found / k
    if m.kind == "success":
        return 1.0 if found else 0.0
    return found / num_rel if num_rel else 0.0  # Rprec


def _per_query(qrels: Qrels, run: Run, measures: list[Measure], judged_only: bool) -> dict[str, dict[str, float]]:
    """``{metric: {qid: value}}`` over every judged query (0 for those the run lacks, as ``trec_eval -c``)."""
    out: dict[str, dict[str, float]] = {m.name: {} for m in measures}
    for qid, judged in qrels.items():
        docs = run.get(qid) or {}
        grades = [judged.get(d) for d in ranking(docs)]
        if judged_only:  # trec_eval -J: keep the documents judged with a grade >= 0, in their order
            grades = [g for g in grades if g is not None and g >= 0]
        num_rel = sum(1 for g in judged.values() if g >= RELEVANCE_LEVEL)
        ideal = sorted((g for g in judged.values() if g > 0), reverse=True)
        for m in measures:
            out[m.name][qid] = _query_value(m, grades, num_rel, ideal) if docs else 0.0
    return out


def mean(values: dict[str, float]) -> float:
    """trec_eval's mean: the values summed in query-id string order, divided by their number."""
    total = 0.0
    for qid in sorted(values, key=lambda q: q.encode("utf-8")):
        total += values[qid]
    return total / len(values) if values else 0.0


def evaluate(qrels: Qrels, runs: dict[str, Run], metrics=DEFAULT_METRICS, per_query: bool = False) -> dict:
    """``{run_name: {metric: value}}``: the mean over every judged query, as trec_eval ``-c`` computes it.

    Queries judged in ``qrels`` but absent from a run count as zero; queries of a run without judgments are
    ignored. With ``per_query=True`` values are ``{qid: value}`` dicts (every judged query). ``ndcg*@k`` names are
    nDCG@k on the judged-only rankings (``trec_eval -J``) where the paper's rule applies (see ``judged``).
    """
    from .judged import uses_judged_only

    if not qrels:
        raise SpladeError("qrels hold no judgments.")
    measures = [parse_metric(m) for m in metrics]
    if not measures:
        raise SpladeError("no metrics to compute.")
    star_judged = any(m.star for m in measures) and uses_judged_only(qrels)
    out: dict = {}
    for name, run in runs.items():
        values = _per_query(qrels, run, [m for m in measures if not (m.star and star_judged)], False)
        if star_judged:
            values.update(_per_query(qrels, run, [m for m in measures if m.star], True))
        out[name] = {m.name: (values[m.name] if per_query else mean(values[m.name])) for m in measures}
    return out
