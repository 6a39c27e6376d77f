"""Plots for looking at SPLADE vectors and runs (matplotlib; works headless under the Agg backend).

Vectors can be given as a list of :class:`~splade_pyserini.sparse_vector.SparseVector`, a
:class:`~splade_pyserini.encoder.SparseBatch`, a list of ``{token: weight}`` dicts, or an ``encode`` output folder
(``vectors-*.jsonl`` / ``.parquet`` shards, integer weights). Terms are keyed by token, except in a
``SparseBatch`` (vocabulary ids), which therefore is not compared with the other forms. Wherever a plot takes
``vectors``, a dict ``{name: vectors}`` overlays several sets (e.g. SPLADE variants, or documents and queries).

FLOPS
-----
Two definitions are in use and both are offered (:func:`flops`):

* ``definition="activation"`` (the default, the *efficiency* measure of the SPLADE papers, after Paria et al.,
  2020): ``FLOPS = Σ_j p_j²`` with ``p_j`` the fraction of vectors in which term ``j`` is non-zero. It is the
  expected number of terms that two random documents share, i.e. the multiply-adds of an average
  document–document dot product. Given ``queries`` too, it is ``Σ_j p_j^(q) p_j^(d)``, the expected number of
  postings touched per query–document pair.
* ``definition="mean_weight"`` (the FLOPS *regulariser* of SPLADE training): ``Σ_j (mean_i w_ij)²``, the
  squared mean weight of each term over the vectors; it depends on the weight scale (floats vs quantised ints).
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Sequence

import numpy as np

__all__ = ["VectorSet", "as_vector_set", "load_vectors", "flops", "vector_stats", "per_query_deltas",
           "plot_weight_distribution", "plot_vector_lengths", "plot_flops", "plot_overview", "plot_per_query_delta"]

_BLUE, _ORANGE, _GREEN, _RED, _GRAY = "#4c78a8", "#e8a33d", "#54a24b", "#e45756", "#9d9d9d"


class VectorSet:
    """A set of sparse vectors reduced to what the plots need: per-vector lengths, all weights, per-term
    document frequencies and weight sums (keyed by term)."""

    def __init__(self, rows: Sequence[tuple[Sequence, Sequence]]):
        self.n = len(rows)
        self.lengths = np.array([len(t) for t, _ in rows], dtype=np.int64)
        self.weights = (np.concatenate([np.asarray(w, dtype=np.float64) for _, w in rows])
                        if rows else np.zeros(0))
        keys = [k for t, _ in rows for k in t]
        uniq, inverse = np.unique(np.asarray(keys, dtype=object if keys and isinstance(keys[0], str) else np.int64),
                                  return_inverse=True) if keys else (np.zeros(0), np.zeros(0, dtype=np.int64))
        self.terms = uniq
        self.df = np.bincount(inverse, minlength=len(uniq)).astype(np.int64)
        self.weight_sum = np.bincount(inverse, weights=self.weights, minlength=len(uniq))

    def __len__(self) -> int:
        return self.n


def load_vectors(vectors_dir: str | os.PathLike, limit: int | None = None) -> list[dict[str, float]]:
    """``[{token: weight}]`` from an ``encode`` output folder (JsonVectorCollection or Parquet shards)."""
    from .vectors import shard_files

    out: list[dict[str, float]] = []
    for shard in shard_files(vectors_dir):
        if shard.suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(shard, columns=["terms", "weights"])
            for terms, weights in zip(table.column("terms").to_pylist(), table.column("weights").to_pylist()):
                out.append(dict(zip(terms, weights)))
                if limit is not None and len(out) >= limit:
                    return out
        else:
            with open(shard, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        out.append(json.loads(line)["vector"])
                        if limit is not None and len(out) >= limit:
                            return out
    return out


def as_vector_set(vectors) -> VectorSet:
    """A :class:`VectorSet` from any accepted form of ``vectors`` (see the module docstring)."""
    if isinstance(vectors, VectorSet):
        return vectors
    if isinstance(vectors, (str, os.PathLike)):
        vectors = load_vectors(vectors)
    if hasattr(vectors, "offsets") and hasattr(vectors, "row"):  # SparseBatch
        return VectorSet([vectors.row(i) for i in range(len(vectors))])
    rows = []
    for v in vectors:
        if hasattr(v, "terms") and hasattr(v, "weights") and hasattr(v, "token"):  # SparseVector: by token
            rows.append(([v.token(t) for t in v.terms], v.weights))
        elif isinstance(v, Mapping):
            rows.append((list(v.keys()), list(v.values())))
        else:
            raise TypeError(f"cannot read a sparse vector from {type(v).__name__}")
    return VectorSet(rows)


def _named(vectors) -> dict[str, VectorSet]:
    """``{name: VectorSet}``: a ``{name: vectors}`` dict as is, a single set as ``{"": set}``."""
    if isinstance(vectors, Mapping):
        return {str(k): as_vector_set(v) for k, v in vectors.items()}
    return {"": as_vector_set(vectors)}


def flops(vectors, queries=None, definition: str = "activation") -> float:
    """FLOPS of a set of vectors (see the module docstring for the two definitions).

    ``activation``: ``Σ_j p_j²`` (or ``Σ_j p_j^(q) p_j^(d)`` given ``queries``), ``p_j`` = fraction of vectors
    with term ``j`` non-zero. ``mean_weight``: ``Σ_j (Σ_i w_ij / N)²`` (or the product of the query and
    document means).
    """
    if definition not in ("activation", "mean_weight"):
        raise ValueError(f"definition must be 'activation' or 'mean_weight', not {definition!r}")
    docs = as_vector_set(vectors)
    if docs.n == 0:
        return 0.0

    def per_term(s: VectorSet) -> np.ndarray:
        return (s.df if definition == "activation" else s.weight_sum) / s.n

    p_d = per_term(docs)
    if queries is None:
        return float(np.sum(p_d ** 2))
    qs = as_vector_set(queries)
    if qs.n == 0:
        return 0.0
    shared, ia, ib = np.intersect1d(docs.terms, qs.terms, return_indices=True)
    return float(np.sum(p_d[ia] * per_term(qs)[ib]))


def vector_stats(vectors) -> dict[str, float]:
    """Counts and means: vectors, mean/median length, distinct terms, mean weight, FLOPS (both definitions)."""
    s = as_vector_set(vectors)
    return {
        "vectors": s.n,
        "mean_length": float(s.lengths.mean()) if s.n else 0.0,
        "median_length": float(np.median(s.lengths)) if s.n else 0.0,
        "distinct_terms": int(len(s.terms)),
        "mean_weight": float(s.weights.mean()) if len(s.weights) else 0.0,
        "flops": flops(s),
        "flops_mean_weight": flops(s, definition="mean_weight"),
    }


# --- plots of vectors -----------------------------------------------------------------------------------------------
def _axes(ax, figsize=(6, 3.5)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Histogram bin edges; for integer data (quantised weights, lengths) whole-number bins, so no bin is empty
    just because it holds no integer."""
    if not len(values):
        return np.linspace(0, 1, bins + 1)
    lo, hi = float(values.min()), float(values.max())
    if np.all(np.mod(values, 1) == 0):
        step = max(1, int(np.ceil((hi - lo + 1) / bins)))
        return np.arange(lo - 0.5, hi + step + 0.5, step)
    return np.histogram_bin_edges(values, bins=bins)


def _colors(n: int) -> list[str]:
    base = [_BLUE, _ORANGE, _GREEN, _RED, "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"]
    return [base[i % len(base)] for i in range(n)]


def plot_weight_distribution(vectors, ax=None, bins: int = 50, log: bool = True, title: str | None = None):
    """Histogram of the non-zero weights (several sets overlaid as steps on shared bins). Returns the Axes."""
    ax = _axes(ax)
    sets = _named(vectors)
    edges = _edges(np.concatenate([s.weights for s in sets.values()]) if sets else np.zeros(0), bins)
    for (name, s), color in zip(sets.items(), _colors(len(sets))):
        if len(sets) == 1:
            ax.hist(s.weights, bins=edges, color=color, alpha=0.85, label=name or None)
        else:
            ax.hist(s.weights, bins=edges, histtype="step", linewidth=1.6, color=color, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("term weight")
    ax.set_ylabel("non-zero entries")
    ax.set_title(title or "weight distribution")
    if len(sets) > 1:
        ax.legend(frameon=False)
    return ax


def plot_vector_lengths(vectors, ax=None, bins: int = 40, title: str | None = None):
    """Histogram of the number of non-zero terms per vector, with each set's mean marked. Returns the Axes."""
    ax = _axes(ax)
    sets = _named(vectors)
    edges = _edges(np.concatenate([s.lengths for s in sets.values()]) if sets else np.zeros(0), bins)
    for (name, s), color in zip(sets.items(), _colors(len(sets))):
        label = f"{name} (mean {s.lengths.mean():.0f})" if s.n else name
        if len(sets) == 1:
            ax.hist(s.lengths, bins=edges, color=color, alpha=0.85, label=label)
        else:
            ax.hist(s.lengths, bins=edges, histtype="step", linewidth=1.6, color=color, label=label)
        if s.n:
            ax.axvline(s.lengths.mean(), color=color, linestyle="--", linewidth=1)
    ax.set_xlabel("non-zero terms per vector")
    ax.set_ylabel("vectors")
    ax.set_title(title or "vector lengths")
    ax.legend(frameon=False)
    return ax


def plot_flops(vectors, ax=None, queries=None, definition: str = "activation", title: str | None = None):
    """Bar chart of FLOPS per named set (``queries``: a matching ``{name: query vectors}`` dict or one set used
    for every name). Returns the Axes."""
    ax = _axes(ax, figsize=(max(3.5, 1.2 * (len(vectors) if isinstance(vectors, Mapping) else 1) + 2), 3.5))
    sets = _named(vectors)
    values = []
    for name, s in sets.items():
        q = queries.get(name) if isinstance(queries, Mapping) else queries
        values.append(flops(s, q, definition))
    names = [n or "vectors" for n in sets]
    bars = ax.bar(names, values, color=_colors(len(names)))
    for bar, v in zip(bars, values):
        ax.annotate(f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8)
    if queries is None:
        ax.set_ylabel("FLOPS " + ("Σ p_j²" if definition == "activation" else "Σ (mean w_j)²"))
    else:
        ax.set_ylabel("FLOPS " + ("Σ p_j^q p_j^d" if definition == "activation" else "Σ mean w_j^q · mean w_j^d"))
    ax.set_title(title or "FLOPS")
    return ax


def plot_overview(vectors, definition: str = "activation"):
    """One figure, three panels: weight distribution, vector lengths, FLOPS. Returns the Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), layout="constrained")
    sets = _named(vectors)
    plot_weight_distribution(sets, ax=axes[0])
    plot_vector_lengths(sets, ax=axes[1])
    plot_flops(sets, ax=axes[2], definition=definition)
    return fig


# --- per-query comparison of two runs -------------------------------------------------------------------------------
def per_query_deltas(baseline: Mapping[str, float], other: Mapping[str, float]) -> list[tuple[str, float]]:
    """``[(qid, other - baseline)]`` over the union of query ids (a missing value counts 0), largest gain first."""
    qids = sorted(set(baseline) | set(other))
    deltas = [(q, float(other.get(q, 0.0)) - float(baseline.get(q, 0.0))) for q in qids]
    deltas.sort(key=lambda x: (-x[1], x[0]))
    return deltas


def plot_per_query_delta(baseline: Mapping[str, float], other: Mapping[str, float], ax=None, metric: str = "",
                         labels: tuple[str, str] = ("baseline", "other"), tol: float = 1e-9,
                         title: str | None = None):
    """Sorted bar chart of per-query ``other - baseline`` (``{qid: value}`` each, e.g. from
    ``evaluate(..., per_query=True)[run][metric]``): gains green, losses red; wins/ties/losses in the title."""
    deltas = per_query_deltas(baseline, other)
    ax = _axes(ax, figsize=(min(14, max(6, 0.12 * len(deltas) + 3)), 3.8))
    values = np.array([d for _, d in deltas])
    colors = [_GREEN if d > tol else _RED if d < -tol else _GRAY for d in values]
    x = np.arange(len(values))
    ax.bar(x, values, color=colors, width=0.85)
    ax.axhline(0, color="black", linewidth=0.8)
    if len(deltas) <= 40:
        ax.set_xticks(x, [q for q, _ in deltas], rotation=90, fontsize=7)
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{len(deltas)} queries, sorted by difference")
    wins, losses = int((values > tol).sum()), int((values < -tol).sum())
    ties = len(values) - wins - losses
    name = metric or "metric"
    ax.set_ylabel(f"Δ {name} ({labels[1]} − {labels[0]})")
    mean = values.mean() if len(values) else 0.0
    ax.set_title(title or f"{labels[1]} vs {labels[0]}: {wins} better, {ties} tied, {losses} worse "
                          f"(mean Δ {mean:+.3f})")
    return ax
