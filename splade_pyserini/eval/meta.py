"""Meta-analysis of a treatment against a control over several query sets, as RANGER does.

RANGER (Sertkan, Althammer, Hofstätter, ACL 2023 demo) as used by the SPLADE-v3 paper. Per query set ``i`` with
``n`` paired per-query scores (treatment ``t``, control ``c``) and differences ``d = t - c``; ``sd`` is
``np.std`` with ddof = 0, as RANGER computes it:

* ``MD``: effect ``mean(d)``; variance ``sd(d)^2 / n``.
* ``SMD``: ``r`` = Pearson correlation of ``t`` and ``c``; ``S_within = sd(d) / sqrt(2 (1 - r))``;
  effect ``mean(d) / S_within``; variance ``(1/n + SMD^2 / (2n)) * 2 (1 - r)``; then Hedges' correction
  ``J = 1 - 3 / (4 (n - 1) - 1)`` multiplies the effect and ``J^2`` the variance.
* 95% CI ``effect ± z_{1-alpha/2} sqrt(variance)`` and two-sided normal p-value, per set and for the summary.
* Pooling, DerSimonian–Laird random effects: ``W_i = 1 / v_i``;
  ``Q = Σ W_i y_i^2 - (Σ W_i y_i)^2 / Σ W_i``; ``C = Σ W_i - Σ W_i^2 / Σ W_i``; ``τ² = (Q - df) / C`` with
  ``df = k - 1`` — **not clipped at 0**, as in RANGER (``clip_tau2=True`` clips, as textbook DL does);
  ``W*_i = 1 / (v_i + τ²)``; summary ``M = Σ W*_i y_i / Σ W*_i`` with variance ``1 / Σ W*_i``; the reported
  weights are ``W*_i / Σ W*_i``. With a single set, ``τ² = 0``.

A negative ``τ²`` can make ``v_i + τ²`` zero or negative for a set with a small variance; the weights are then
meaningless and :func:`meta_analysis` stops with an error that suggests ``clip_tau2``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpladeError
from .tables import RenderableTable, format_cell

EFFECTS = ("SMD", "MD")


@dataclass
class SetEffect:
    name: str
    n: int
    effect: float
    variance: float
    ci_low: float
    ci_high: float
    p: float
    weight: float  # relative random-effects weight, sums to 1 over the sets
    mean_treatment: float
    mean_control: float
    r: float  # Pearson correlation of the paired scores


@dataclass
class MetaResult(RenderableTable):
    effect_type: str
    alpha: float
    sets: list[SetEffect]
    effect: float
    variance: float
    ci_low: float
    ci_high: float
    p: float
    tau2: float
    q: float
    df: int
    treatment_name: str = "treatment"
    control_name: str = "control"
    metric: str = ""
    notes: list[str] = field(default_factory=list)

    def _rows(self):
        for s in self.sets:
            yield [s.name, s.n, s.mean_control, s.mean_treatment, s.effect, s.variance, s.ci_low, s.ci_high, s.p,
                   s.weight]
        yield ["combined (RE)", sum(s.n for s in self.sets), None, None, self.effect, self.variance, self.ci_low,
               self.ci_high, self.p, 1.0]

    _COLUMNS = ["set", "n", "control", "treatment", "effect", "variance", "ci_low", "ci_high", "p", "weight"]

    def caption(self) -> str:
        what = f"{self.treatment_name} vs {self.control_name}"
        if self.metric:
            what += f" on {self.metric}"
        return (f"{self.effect_type} meta-analysis (RANGER, DerSimonian–Laird), {what}; "
                f"{100 * (1 - self.alpha):g}% CI; tau2 {self.tau2:.4g}, Q {self.q:.4g}, df {self.df}")

    def to_markdown(self) -> str:
        cols = self._COLUMNS
        lines = [f"{self.caption()}.", "", "| " + " | ".join(cols) + " |",
                 "| --- | " + " | ".join("---:" for _ in cols[1:]) + " |"]
        for row in self._rows():
            lines.append("| " + " | ".join(format_cell(v) for v in row) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self._COLUMNS + ["effect_type", "tau2", "Q", "df"])
        for row in self._rows():
            w.writerow(["" if v is None else v for v in row] + [self.effect_type, self.tau2, self.q, self.df])
        return buf.getvalue()

    def to_latex(self) -> str:
        out = [f"% {self.caption()}", "\\begin{tabular}{l" + "r" * (len(self._COLUMNS) - 1) + "}", "\\toprule",
               " & ".join(c.replace("_", "\\_") for c in self._COLUMNS) + " \\\\", "\\midrule"]
        for row in self._rows():
            out.append(" & ".join(format_cell(v).replace("_", "\\_").replace("&", "\\&") for v in row) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join(out) + "\n"


def _normal_ci_p(effect: float, variance: float, alpha: float) -> tuple[float, float, float]:
    from scipy.stats import norm

    se = math.sqrt(variance)
    z = float(norm.ppf(1 - alpha / 2))
    p = float(2 * norm.sf(abs(effect) / se)) if se > 0 else (0.0 if effect != 0 else 1.0)
    return effect - z * se, effect + z * se, p


def _set_effect(name: str, t: np.ndarray, c: np.ndarray, effect_type: str) -> tuple[float, float, float]:
    """(effect, variance, r) of one set."""
    n = len(t)
    d = t - c
    sd = float(np.std(d))  # ddof = 0, as RANGER
    if sd <= 1e-12 * max(1.0, float(np.abs(d).max())):  # constant up to rounding
        raise SpladeError(f"query set {name}: treatment minus control is the same on every query "
                          f"(difference {float(d.mean()):.4g}); its effect has no variance. Leave the set out.")
    if np.std(t) == 0 or np.std(c) == 0:
        r = math.nan
    else:
        r = float(np.corrcoef(t, c)[0, 1])
    if effect_type == "MD":
        return float(d.mean()), sd ** 2 / n, r
    if math.isnan(r):
        raise SpladeError(f"query set {name}: one system scores the same on every query, so the correlation "
                          "needed for SMD is undefined; use --effect MD or leave the set out.")
    if n < 3:
        raise SpladeError(f"query set {name}: SMD with Hedges' correction needs at least 3 queries (has {n}).")
    s_within = sd / math.sqrt(2 * (1 - r))
    smd = float(d.mean()) / s_within
    variance = (1 / n + smd ** 2 / (2 * n)) * 2 * (1 - r)
    j = 1 - 3 / (4 * (n - 1) - 1)
    return smd * j, variance * j ** 2, r


def meta_analysis(treatment: dict[str, list[float]], control: dict[str, list[float]], effect: str = "SMD",
                  alpha: float = 0.05, clip_tau2: bool = False, treatment_name: str = "treatment",
                  control_name: str = "control", metric: str = "") -> MetaResult:
    """Random-effects meta-analysis of ``treatment`` against ``control``.

    Both map a query set's name to its per-query scores, in the same query order (paired). Sets are taken in
    the order of ``treatment``.
    """
    effect_type = effect.upper()
    if effect_type not in EFFECTS:
        raise SpladeError(f"unknown effect {effect!r}; use SMD (standardised mean difference) or MD.")
    if not treatment:
        raise SpladeError("meta-analysis needs at least one query set.")
    if set(treatment) != set(control):
        missing = sorted(set(treatment) ^ set(control))
        raise SpladeError(f"treatment and control must cover the same query sets; unmatched: {', '.join(missing)}.")
    if not 0 < alpha < 1:
        raise SpladeError(f"alpha must lie between 0 and 1, got {alpha}.")

    names = list(treatment)
    y, v, info = [], [], []
    for name in names:
        t = np.asarray(treatment[name], dtype=float)
        c = np.asarray(control[name], dtype=float)
        if t.shape != c.shape or t.ndim != 1:
            raise SpladeError(f"query set {name}: treatment has {t.size} scores and control {c.size}; "
                              "they must be paired per query.")
        if len(t) < 2:
            raise SpladeError(f"query set {name}: needs at least 2 queries, has {len(t)}.")
        e, var, r = _set_effect(name, t, c, effect_type)
        y.append(e)
        v.append(var)
        info.append((len(t), float(t.mean()), float(c.mean()), r))
    y = np.array(y)
    v = np.array(v)

    k = len(y)
    df = k - 1
    w = 1 / v
    q = float(np.sum(w * y ** 2) - np.sum(w * y) ** 2 / np.sum(w))
    c_dl = float(np.sum(w) - np.sum(w ** 2) / np.sum(w))
    tau2 = (q - df) / c_dl if k > 1 else 0.0
    notes = []
    if clip_tau2 and tau2 < 0:
        notes.append(f"tau2 {tau2:.4g} clipped at 0")
        tau2 = 0.0
    v_star = v + tau2
    degenerate = v_star <= 1e-9 * v  # zero or negative, up to rounding
    if np.any(degenerate):
        bad = [names[i] for i in np.flatnonzero(degenerate)]
        raise SpladeError(f"the between-set variance tau2 = {tau2:.4g} is negative enough to cancel the variance of "
                          f"{', '.join(bad)}; rerun with clip_tau2 (--clip-tau2) to clip tau2 at 0.")
    w_star = 1 / v_star
    m = float(np.sum(w_star * y) / np.sum(w_star))
    var_m = float(1 / np.sum(w_star))
    lo, hi, p = _normal_ci_p(m, var_m, alpha)
    rel = w_star / np.sum(w_star)

    sets = []
    for i, name in enumerate(names):
        slo, shi, sp = _normal_ci_p(float(y[i]), float(v[i]), alpha)
        n, mt, mc, r = info[i]
        sets.append(SetEffect(name, n, float(y[i]), float(v[i]), slo, shi, sp, float(rel[i]), mt, mc, r))
    return MetaResult(effect_type, float(alpha), sets, m, var_m, lo, hi, p, float(tau2), q, df,
                      treatment_name, control_name, metric, notes)


def forest_plot(result: MetaResult, path: str | os.PathLike, title: str | None = None) -> None:
    """Write a forest plot of ``result`` as an image (PNG unless ``path`` says otherwise), atomically.

    One row per query set (effect with its CI, marker area by weight), the summary effect as a diamond, a
    dashed line at 0, and the numbers (weight, effect, CI) as text on the right.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Polygon

    from ..fileio import atomic_write

    k = len(result.sets)
    height = 1.6 + 0.38 * (k + 2)
    fig = Figure(figsize=(9.5, height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.22, 0.8 / height + 0.05, 0.45, 1 - (1.25 / height) - 0.05))
    ys = list(range(k + 1, 1, -1))  # sets from the top; the summary at y = 0
    for s, yy in zip(result.sets, ys):
        ax.plot([s.ci_low, s.ci_high], [yy, yy], color="0.35", lw=1.2)
        ax.plot([s.effect], [yy], marker="s", color="black", markersize=4 + 10 * math.sqrt(s.weight), ls="none")
    dia = Polygon([(result.ci_low, 0), (result.effect, 0.3), (result.ci_high, 0), (result.effect, -0.3)],
                  closed=True, color="black")
    ax.add_patch(dia)
    ax.axvline(0.0, color="0.5", ls="--", lw=1)
    ax.axhline(1.0, color="0.8", lw=0.8)
    lows = [s.ci_low for s in result.sets] + [result.ci_low, 0.0]
    highs = [s.ci_high for s in result.sets] + [result.ci_high, 0.0]
    span = max(highs) - min(lows) or 1.0
    ax.set_xlim(min(lows) - 0.05 * span, max(highs) + 0.05 * span)
    ax.set_ylim(-0.8, k + 2.3)
    ax.set_yticks([*ys, 0])
    ax.set_yticklabels([s.name for s in result.sets] + ["Summary (RE)"])
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    label = {"SMD": "standardised mean difference", "MD": "mean difference"}[result.effect_type]
    ax.set_xlabel(f"{label}{' of ' + result.metric if result.metric else ''}"
                  f"  (favours {result.control_name} ← 0 → favours {result.treatment_name})", fontsize=8)
    # Numbers column, in axes-fraction x and data y.
    trans = ax.get_yaxis_transform()
    ax.text(1.04, k + 1.9, "weight", transform=trans, fontsize=8, style="italic", va="center")
    ax.text(1.22, k + 1.9, "effect [95% CI]" if abs(result.alpha - 0.05) < 1e-12
            else f"effect [{100 * (1 - result.alpha):g}% CI]", transform=trans, fontsize=8, style="italic",
            va="center")
    for s, yy in zip(result.sets, ys):
        ax.text(1.04, yy, f"{100 * s.weight:.1f}%", transform=trans, fontsize=8, va="center")
        ax.text(1.22, yy, f"{s.effect:.2f} [{s.ci_low:.2f}, {s.ci_high:.2f}]", transform=trans, fontsize=8,
                va="center")
    ax.text(1.04, 0, "100%", transform=trans, fontsize=8, va="center", weight="bold")
    ax.text(1.22, 0, f"{result.effect:.2f} [{result.ci_low:.2f}, {result.ci_high:.2f}]", transform=trans,
            fontsize=8, va="center", weight="bold")
    fig.suptitle(title or f"{result.treatment_name} vs {result.control_name} ({result.effect_type})", fontsize=10)
    fig.text(0.01, 0.01, f"tau² = {result.tau2:.3g}, Q = {result.q:.3g} (df {result.df}), p = {result.p:.3g}",
             fontsize=7, color="0.3")
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt, dpi=150)
