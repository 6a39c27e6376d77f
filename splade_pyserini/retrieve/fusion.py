"""Run fusion for hybrids (e.g. SPLADE + dense): the common methods computed here, every other ranx method through
ranx's ``fuse``; the result is ranked by :func:`splade_pyserini.runs.ranked` and cut to the top ``k``.

Computed here, with ranx's formulas: ``rrf`` (``sum 1 / (k + rank)``, ``k`` 60 by default), ``wsum`` (a weighted
sum, equal weights by default) and ``sum`` (CombSUM), with no normalisation or ``min-max``
(:func:`splade_pyserini.runs.min_max`, ranx's). A document absent from a run adds nothing for that run; a run's
ranks follow :func:`~splade_pyserini.runs.ranked` (score descending, ties by docid descending). These need no
compilation: ranx compiles its numba kernels on first use (tens of seconds in a fresh environment), which the
other methods and normalisations still pay.
"""

from __future__ import annotations

import warnings

from ..errors import SpladeError
from ..runs import Run, min_max, ranked

_MISSING = "__splade_pyserini_missing__"


_RANK_BASED = {"rrf", "isr", "log_isr", "logn_isr"}
_NATIVE_NORMS = {None, "min-max", "min_max"}


def fuse(runs, method: str = "rrf", norm: str | None = "auto", params: dict | None = None,
         k: int | None = 1000) -> Run:
    """Fuse two or more runs (a list, or ``{name: run}``).

    ``method`` is a ranx fusion name (``rrf``, ``wsum``, ``sum``, ``mnz``, ``max``, ``isr``, …); ``norm`` its score
    normalisation (``min-max``, ``max``, ``sum``, ``zmuv``, ``rank``, ``borda`` or None); ``auto`` means none for
    the rank-based methods (``rrf``, ``isr``, ``log_isr``, ``logn_isr``) and ``min-max`` for the others. ``params`` go to the method (``{"k": 60}`` for rrf, ``{"weights": [0.7, 0.3]}`` for wsum). A query
    missing from some runs is fused from the runs that have it. The result keeps the top ``k`` per query.
    """
    run_list = list(runs.values()) if isinstance(runs, dict) else list(runs)
    if norm == "auto":
        norm = None if method in _RANK_BASED else "min-max"
    if len(run_list) < 2:
        raise SpladeError("fusion needs at least two runs.")
    qids = sorted(set().union(*(r.keys() for r in run_list)))
    if not qids:
        raise SpladeError("the runs to fuse hold no queries.")
    params = dict(params or {})
    if method in ("rrf", "wsum", "sum") and norm in _NATIVE_NORMS:
        fused = _native(run_list, qids, method, norm, params)
    else:
        fused = _with_ranx(run_list, qids, method, norm, params)
    out: Run = {}
    for q, docs in fused.items():
        items = ranked({d: float(s) for d, s in docs.items() if d != _MISSING}, k or None)
        if items:
            out[q] = dict(items)
    return out


def _bad_params(method: str, norm, e: Exception) -> SpladeError:
    return SpladeError(f"fusion {method!r} (norm {norm!r}) failed: {type(e).__name__}: {str(e)[:160]}; "
                       "check the method name and its params.")


def _native(run_list: list, qids: list[str], method: str, norm, params: dict) -> Run:
    """rrf / wsum / sum, as ranx computes them."""
    if method == "rrf":
        unknown = set(params) - {"k"}
        rrf_k = params.get("k", 60)
        if unknown or isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float)):
            raise _bad_params(method, norm, TypeError(f"rrf takes only k (a number), got {params}"))
    else:
        unknown = set(params) - ({"weights"} if method == "wsum" else set())
        weights = params.get("weights", [1.0] * len(run_list)) if method == "wsum" else [1.0] * len(run_list)
        if unknown or len(weights) != len(run_list):
            raise _bad_params(method, norm, ValueError(
                f"{method} takes {'one weight per run' if method == 'wsum' else 'no params'}, got {params}"))
    if norm is not None:
        run_list = [min_max(r) for r in run_list]
    fused: Run = {}
    for q in qids:
        scores: dict[str, float] = {}
        for i, run in enumerate(run_list):
            docs = run.get(q)
            if not docs:
                continue
            if method == "rrf":
                for rank, (d, _) in enumerate(ranked(docs), 1):
                    scores[d] = scores.get(d, 0.0) + 1.0 / (rrf_k + rank)
            else:
                w = float(weights[i])
                for d, s in docs.items():
                    scores[d] = scores.get(d, 0.0) + w * float(s)
        fused[q] = scores
    return fused


def _with_ranx(run_list: list, qids: list[str], method: str, norm, params: dict) -> Run:
    from ranx import Run as RRun
    from ranx import fuse as ranx_fuse
    from ranx.fusion import fusion_switch
    from ranx.normalization import norm_switch

    try:  # names first: building ranx runs compiles its kernels
        fusion_switch(method)
        if norm is not None:
            norm_switch(norm)
    except ValueError as e:
        raise _bad_params(method, norm, e) from None
    ranx_runs = []
    for i, run in enumerate(run_list):
        d = {}
        for q in qids:
            docs = run.get(q)
            # ranx needs the same queries in every run: a stand-in document fills a query a run lacks; it adds
            # nothing to the real documents' fused scores and is removed by the caller.
            d[q] = {str(x): float(s) for x, s in docs.items()} if docs else {_MISSING: 0.0}
        ranx_runs.append(RRun(d, name=f"run{i}"))
    try:
        with warnings.catch_warnings():  # ranx's rrf casts uint64 counters to int64, harmlessly
            warnings.filterwarnings("ignore", message=".*unsafe cast.*")
            fused = ranx_fuse(ranx_runs, norm=norm, method=method, params=params)
    except (NotImplementedError, KeyError, TypeError, ValueError, AssertionError) as e:
        raise _bad_params(method, norm, e) from None
    return fused.to_dict()
