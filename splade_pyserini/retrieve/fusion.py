"""Run fusion for hybrids (e.g. SPLADE + dense) through ranx's ``fuse``; the result is ranked by
:func:`splade_pyserini.runs.ranked` and cut to the top ``k``."""

from __future__ import annotations

import warnings

from ..errors import SpladeError
from ..runs import Run, ranked

_MISSING = "__splade_pyserini_missing__"


_RANK_BASED = {"rrf", "isr", "log_isr", "logn_isr"}


def fuse(runs, method: str = "rrf", norm: str | None = "auto", params: dict | None = None,
         k: int | None = 1000) -> Run:
    """Fuse two or more runs (a list, or ``{name: run}``) with ranx's ``fuse``.

    ``method`` is a ranx fusion name (``rrf``, ``wsum``, ``sum``, ``mnz``, ``max``, ``isr``, …); ``norm`` its score
    normalisation (``min-max``, ``max``, ``sum``, ``zmuv``, ``rank``, ``borda`` or None); ``auto`` means none for
    the rank-based methods (``rrf``, ``isr``, ``log_isr``, ``logn_isr``) and ``min-max`` for the others. ``params`` go to the method (``{"k": 60}`` for rrf, ``{"weights": [0.7, 0.3]}`` for wsum). A query
    missing from some runs is fused from the runs that have it. The result keeps the top ``k`` per query.
    """
    from ranx import Run as RRun
    from ranx import fuse as ranx_fuse

    run_list = list(runs.values()) if isinstance(runs, dict) else list(runs)
    if norm == "auto":
        norm = None if method in _RANK_BASED else "min-max"
    if len(run_list) < 2:
        raise SpladeError("fusion needs at least two runs.")
    qids = sorted(set().union(*(r.keys() for r in run_list)))
    if not qids:
        raise SpladeError("the runs to fuse hold no queries.")
    ranx_runs = []
    for i, run in enumerate(run_list):
        d = {}
        for q in qids:
            docs = run.get(q)
            # ranx needs the same queries in every run: a stand-in document fills a query a run lacks; it adds
            # nothing to the real documents' fused scores and is removed below.
            d[q] = {str(x): float(s) for x, s in docs.items()} if docs else {_MISSING: 0.0}
        ranx_runs.append(RRun(d, name=f"run{i}"))
    try:
        with warnings.catch_warnings():  # ranx's rrf casts uint64 counters to int64, harmlessly
            warnings.filterwarnings("ignore", message=".*unsafe cast.*")
            fused = ranx_fuse(ranx_runs, norm=norm, method=method, params=params or {})
    except (NotImplementedError, KeyError, TypeError, ValueError, AssertionError) as e:
        raise SpladeError(f"fusion {method!r} (norm {norm!r}) failed: {type(e).__name__}: {str(e)[:160]}; "
                          "check the method name and its params.") from None
    out: Run = {}
    for q, docs in fused.to_dict().items():
        items = ranked({d: float(s) for d, s in docs.items() if d != _MISSING}, k or None)
        if items:
            out[q] = dict(items)
    return out
