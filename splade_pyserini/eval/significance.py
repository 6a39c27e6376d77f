"""Paired significance tests of runs against a baseline, with multiple-comparison corrections.

For every metric, each run is compared with the baseline on the per-query scores of
:func:`~splade_pyserini.eval.metrics.evaluate` (``per_query=True``: every judged query, a query missing from a run
scores 0):

* ``student``: two-sided paired Student t-test (``scipy.stats.ttest_rel``);
* ``fisher``: two-sided paired randomisation (permutation) test: each query's two scores are swapped with
  probability 1/2, i.e. the sign of its difference is flipped; the p-value is ``(b + 1) / (N + 1)`` where ``b`` of
  ``N`` random relabellings give ``|mean difference| >= `` the observed one (Phipson & Smyth 2010: never 0).
  Relabellings come from ``numpy.random.default_rng(seed)``, the same stream for every comparison, so a table
  is reproducible from its recorded seed.

Corrections, applied within a *family* of p-values of one test: all comparisons of the table
(``family="all"``, the default) or those of one metric (``family="metric"``). With ``m`` p-values:

* Bonferroni: ``min(1, m p)``;
* Holm (step-down): sort ascending ``p_(1) <= … <= p_(m)``; ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``.

A p-value that cannot be computed (a single query) is NaN and left out of its family.
Each row also counts the queries where the run wins over, ties (``|difference| <= 1e-9``) or loses to the baseline.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpladeError
from .tables import RenderableTable, format_cell
from ..runs import Qrels, Run

TESTS = ("student", "fisher")
CORRECTIONS = ("holm", "bonferroni")
TIE_TOLERANCE = 1e-9


# --- corrections --------------------------------------------------------------------------------------------------

def bonferroni(p_values) -> np.ndarray:
    """Bonferroni-adjusted p-values (NaN entries stay NaN and do not count in ``m``)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    out[ok] = np.minimum(1.0, p[ok] * m)
    return out


def holm(p_values) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN entries stay NaN and do not count in ``m``)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):  # rank 0 ↔ the smallest p, multiplied by m
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def adjust(p_values, method: str) -> np.ndarray:
    if method == "holm":
        return holm(p_values)
    if method == "bonferroni":
        return bonferroni(p_values)
    raise SpladeError(f"unknown correction {method!r}; use one of {', '.join(CORRECTIONS)}.")


# --- tests --------------------------------------------------------------------------------------------------------

def paired_t_test(treatment, control) -> float:
    """Two-sided paired t-test p-value; 1.0 when every difference is 0, NaN with fewer than 2 queries."""
    from scipy.stats import ttest_rel

    t = np.asarray(treatment, dtype=float)
    c = np.asarray(control, dtype=float)
    if len(t) < 2:
        return math.nan
    d = t - c
    if np.all(d == 0):
        return 1.0
    return float(ttest_rel(t, c).pvalue)


def randomization_test(treatment, control, n_permutations: int = 10_000, seed: int = 42, chunk: int = 1000) -> float:
    """Two-sided paired randomisation test (sign flips of the differences); ``(b + 1) / (N + 1)``."""
    d = np.asarray(treatment, dtype=float) - np.asarray(control, dtype=float)
    n = len(d)
    if n == 0:
        return math.nan
    if n_permutations < 1:
        raise SpladeError("the randomisation test needs at least 1 permutation; pass --permutations 10000.")
    observed = abs(d.mean())
    # A relabelled mean equal to the observed one up to rounding must count as "as extreme".
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    while done < n_permutations:
        size = min(chunk, n_permutations - done)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ d) / n
        hits += int(np.count_nonzero(means >= observed - tol))
        done += size
    return (hits + 1) / (n_permutations + 1)


# --- comparisons --------------------------------------------------------------------------------------------------

@dataclass
class Comparison:
    """One (run, metric) row; for the baseline itself the test fields are empty."""

    system: str
    metric: str
    mean: float
    n_queries: int
    delta: float | None = None  # mean(system) - mean(baseline)
    wins: int | None = None
    ties: int | None = None
    losses: int | None = None
    p: dict[str, float] = field(default_factory=dict)  # test -> p
    adjusted: dict[str, dict[str, float]] = field(default_factory=dict)  # test -> correction -> p


@dataclass
class ComparisonTable(RenderableTable):
    baseline: str
    metrics: list[str]
    systems: list[str]  # baseline first
    tests: list[str]
    corrections: list[str]
    n_permutations: int
    seed: int
    alpha: float
    family: str
    rows: list[Comparison]

    def row(self, system: str, metric: str) -> Comparison:
        for r in self.rows:
            if r.system == system and r.metric == metric:
                return r
        raise KeyError((system, metric))

    # The long table: one row per (system, metric).
    def _columns(self) -> list[str]:
        cols = ["system", "metric", "mean", "delta", "n", "wins", "ties", "losses"]
        for t in self.tests:
            cols.append(f"p_{t}")
            cols += [f"p_{t}_{c}" for c in self.corrections]
        return cols

    def _values(self, r: Comparison) -> list:
        vals = [r.system, r.metric, r.mean, r.delta, r.n_queries, r.wins, r.ties, r.losses]
        for t in self.tests:
            vals.append(r.p.get(t))
            vals += [r.adjusted.get(t, {}).get(c) for c in self.corrections]
        return vals

    def provenance(self) -> str:
        parts = [f"baseline: {self.baseline}", f"tests: {', '.join(self.tests)}"]
        if "fisher" in self.tests:
            parts.append(f"randomisation: {self.n_permutations} permutations, seed {self.seed}")
        if self.corrections:
            parts.append(f"corrections: {', '.join(self.corrections)} over {self._family_text()}")
        parts.append(f"alpha {self.alpha:g}")
        return "; ".join(parts)

    def _family_text(self) -> str:
        n = len(self.systems) - 1
        if self.family == "metric":
            return f"the {n} comparison(s) of each metric"
        return f"all {n * len(self.metrics)} comparison(s) of each test"

    def _significant(self, r: Comparison) -> bool:
        """Significant under every test, after the first correction (raw p without corrections)."""
        if r.delta is None or not self.tests:
            return False
        for t in self.tests:
            p = r.adjusted[t][self.corrections[0]] if self.corrections else r.p[t]
            if not (p <= self.alpha):
                return False
        return True

    def to_markdown(self) -> str:
        cols = self._columns()
        lines = [f"{self.provenance()[0].upper()}{self.provenance()[1:]}.", "", "| " + " | ".join(cols) + " |",
                 "| " + " | ".join("---" if c in ("system", "metric") else "---:" for c in cols) + " |"]
        for r in self.rows:
            cells = [format_cell(v) for v in self._values(r)]
            if self._significant(r):
                cells[3] += " *"
            lines.append("| " + " | ".join(cells) + " |")
        note = f"\n\\* significant at {self.alpha:g} under every test"
        note += f" after {self.corrections[0]} correction." if self.corrections else "."
        return "\n".join(lines) + "\n" + note + "\n"

    def to_latex(self) -> str:
        cols = self._columns()
        head = [_latex_escape(c) for c in cols]
        out = [f"% {self.provenance()}", "\\begin{tabular}{ll" + "r" * (len(cols) - 2) + "}", "\\toprule",
               " & ".join(head) + " \\\\", "\\midrule"]
        for r in self.rows:
            cells = [_latex_escape(format_cell(v)) for v in self._values(r)]
            if self._significant(r):
                cells[3] += "$^{*}$"
            out.append(" & ".join(cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join(out) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["baseline"] + self._columns() + ["significant", "n_permutations", "seed", "alpha", "family"])
        for r in self.rows:
            vals = ["" if v is None else (repr(float(v)) if isinstance(v, float) else v) for v in self._values(r)]
            w.writerow([self.baseline] + vals + [int(self._significant(r)), self.n_permutations, self.seed,
                                                 self.alpha, self.family])
        return buf.getvalue()


_LATEX = {"\\": "\\textbackslash{}", "_": "\\_", "&": "\\&", "%": "\\%", "#": "\\#", "$": "\\$",
          "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}"}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in s)


def _as_tuple(x) -> tuple[str, ...]:
    if x is None:
        return ()
    if isinstance(x, str):
        return (x,)
    return tuple(x)


def compare(qrels: Qrels, runs: dict[str, Run], baseline: str, metrics=("ndcg@10",), tests=TESTS,
            correction=CORRECTIONS, n_permutations: int = 10_000, seed: int = 42, alpha: float = 0.05,
            family: str = "all") -> ComparisonTable:
    """Paired tests of every run in ``runs`` against ``runs[baseline]``, on every metric.

    ``metrics`` are names :func:`evaluate` accepts (``ndcg*@10`` included); ``tests`` a subset of
    ``("student", "fisher")``; ``correction`` a subset of ``("holm", "bonferroni")`` (or empty).
    """
    metrics = list(_as_tuple(metrics))
    tests = list(_as_tuple(tests))
    corrections = list(_as_tuple(correction))
    if baseline not in runs:
        raise SpladeError(f"baseline {baseline!r} is not among the runs ({', '.join(runs)}); name one of them.")
    if len(runs) < 2:
        raise SpladeError("compare needs the baseline and at least one other run.")
    if not metrics:
        raise SpladeError("no metric to compare on; pass e.g. --metrics ndcg@10.")
    for t in tests:
        if t not in TESTS:
            raise SpladeError(f"unknown test {t!r}; use {' and/or '.join(TESTS)}.")
    for c in corrections:
        if c not in CORRECTIONS:
            raise SpladeError(f"unknown correction {c!r}; use {' and/or '.join(CORRECTIONS)}.")
    if family not in ("all", "metric"):
        raise SpladeError(f"unknown correction family {family!r}; use all or metric.")

    from .metrics import evaluate

    per_query = evaluate(qrels, runs, metrics, per_query=True)
    systems = [baseline] + [s for s in runs if s != baseline]
    rows: list[Comparison] = []
    for metric in metrics:
        base = per_query[baseline][metric]
        qids = list(base)
        b = np.array([base[q] for q in qids], dtype=float)
        rows.append(Comparison(baseline, metric, float(b.mean()) if len(b) else math.nan, len(b)))
        for system in systems[1:]:
            s = np.array([per_query[system][metric].get(q, 0.0) for q in qids], dtype=float)
            d = s - b
            row = Comparison(system, metric, float(s.mean()), len(s), delta=float(d.mean()),
                             wins=int(np.sum(d > TIE_TOLERANCE)), ties=int(np.sum(np.abs(d) <= TIE_TOLERANCE)),
                             losses=int(np.sum(d < -TIE_TOLERANCE)))
            for t in tests:
                row.p[t] = paired_t_test(s, b) if t == "student" else randomization_test(s, b, n_permutations, seed)
            rows.append(row)

    # Corrections within each family.
    tested = [r for r in rows if r.delta is not None]
    for t in tests:
        groups = [tested] if family == "all" else [[r for r in tested if r.metric == m] for m in metrics]
        for group in groups:
            p = [r.p[t] for r in group]
            for c in corrections:
                for r, adj in zip(group, adjust(p, c)):
                    r.adjusted.setdefault(t, {})[c] = float(adj)
    return ComparisonTable(baseline, metrics, systems, tests, corrections, int(n_permutations), int(seed),
                           float(alpha), family, rows)
