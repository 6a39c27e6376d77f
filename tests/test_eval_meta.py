"""RANGER meta-analysis: every number against an independent, loop-by-loop computation of the same formulas."""

import math
from statistics import NormalDist

import pytest

from splade_pyserini.errors import SpladeError
from splade_pyserini.eval.meta import forest_plot, meta_analysis

# A worked example: three query sets, paired per-query scores (treatment, control).
TREATMENT = {
    "trec-dl-19": [0.71, 0.52, 0.90, 0.33, 0.64, 0.58, 0.80, 0.47, 0.69, 0.75],
    "scifact": [0.40, 0.10, 0.55, 0.62, 0.31, 0.00, 0.88, 0.45],
    "nfcorpus": [0.22, 0.35, 0.18, 0.40, 0.27, 0.31, 0.50, 0.12, 0.29, 0.33, 0.41, 0.26],
}
CONTROL = {
    "trec-dl-19": [0.60, 0.55, 0.81, 0.20, 0.50, 0.61, 0.70, 0.40, 0.66, 0.59],
    "scifact": [0.35, 0.20, 0.50, 0.40, 0.30, 0.05, 0.70, 0.50],
    "nfcorpus": [0.20, 0.30, 0.20, 0.35, 0.25, 0.30, 0.41, 0.15, 0.24, 0.33, 0.38, 0.20],
}


def _mean(xs):
    total = 0.0
    for x in xs:
        total += x
    return total / len(xs)


def _std0(xs):  # ddof = 0, as RANGER's np.std
    m = _mean(xs)
    total = 0.0
    for x in xs:
        total += (x - m) ** 2
    return math.sqrt(total / len(xs))


def _pearson(xs, ys):
    mx, my = _mean(xs), _mean(ys)
    sxy = sxx = syy = 0.0
    for x, y in zip(xs, ys):
        sxy += (x - mx) * (y - my)
        sxx += (x - mx) ** 2
        syy += (y - my) ** 2
    return sxy / math.sqrt(sxx * syy)


def reference(treatment, control, effect, alpha=0.05, clip=False):
    """REFERENCE.md §5, written out with plain loops and the standard library."""
    z = NormalDist().inv_cdf(1 - alpha / 2)
    sets = {}
    for name in treatment:
        t, c = treatment[name], control[name]
        n = len(t)
        d = [a - b for a, b in zip(t, c)]
        md, sd = _mean(d), _std0(d)
        if effect == "MD":
            y, v = md, sd ** 2 / n
        else:
            r = _pearson(t, c)
            s_within = sd / math.sqrt(2 * (1 - r))
            smd = md / s_within
            v = (1 / n + smd ** 2 / (2 * n)) * 2 * (1 - r)
            j = 1 - 3 / (4 * (n - 1) - 1)
            y, v = smd * j, v * j ** 2
        se = math.sqrt(v)
        sets[name] = {"effect": y, "variance": v, "ci": (y - z * se, y + z * se),
                      "p": 2 * (1 - NormalDist().cdf(abs(y) / se))}
    names = list(sets)
    w = [1 / sets[s]["variance"] for s in names]
    ys = [sets[s]["effect"] for s in names]
    sw = sum(w)
    q = sum(wi * yi ** 2 for wi, yi in zip(w, ys)) - sum(wi * yi for wi, yi in zip(w, ys)) ** 2 / sw
    c = sw - sum(wi ** 2 for wi in w) / sw
    tau2 = (q - (len(names) - 1)) / c
    if clip:
        tau2 = max(tau2, 0.0)
    ws = [1 / (sets[s]["variance"] + tau2) for s in names]
    m = sum(wi * yi for wi, yi in zip(ws, ys)) / sum(ws)
    se_m = math.sqrt(1 / sum(ws))
    for s, wi in zip(names, ws):
        sets[s]["weight"] = wi / sum(ws)
    return {"sets": sets, "effect": m, "ci": (m - z * se_m, m + z * se_m),
            "p": 2 * (1 - NormalDist().cdf(abs(m) / se_m)), "tau2": tau2, "q": q}


@pytest.mark.parametrize("effect", ["MD", "SMD"])
def test_meta_analysis_matches_reference(effect):
    ref = reference(TREATMENT, CONTROL, effect)
    got = meta_analysis(TREATMENT, CONTROL, effect=effect)
    assert got.effect_type == effect
    assert [s.name for s in got.sets] == list(TREATMENT)
    for s in got.sets:
        r = ref["sets"][s.name]
        assert s.effect == pytest.approx(r["effect"], abs=1e-6)
        assert s.variance == pytest.approx(r["variance"], abs=1e-6)
        assert (s.ci_low, s.ci_high) == pytest.approx(r["ci"], abs=1e-6)
        assert s.p == pytest.approx(r["p"], abs=1e-6)
        assert s.weight == pytest.approx(r["weight"], abs=1e-6)
        assert s.n == len(TREATMENT[s.name])
    assert got.effect == pytest.approx(ref["effect"], abs=1e-6)
    assert (got.ci_low, got.ci_high) == pytest.approx(ref["ci"], abs=1e-6)
    assert got.p == pytest.approx(ref["p"], abs=1e-6)
    assert got.tau2 == pytest.approx(ref["tau2"], abs=1e-6)
    assert got.q == pytest.approx(ref["q"], abs=1e-6)
    assert got.df == 2
    assert sum(s.weight for s in got.sets) == pytest.approx(1.0)


def test_tau2_is_not_clipped_unless_asked():
    # Same spread of differences in every set, means 0.05/0.07/0.06: Q < df, so DerSimonian-Laird's tau2 < 0.
    base = [0.30, 0.50, 0.20, 0.60, 0.45, 0.35, 0.55, 0.25, 0.40, 0.50]
    dev = [0.1, -0.1, 0.2, -0.2, 0.05, -0.05, 0.15, -0.15, 0.0, 0.0]
    t, c = {}, {}
    for i, (shift, mean) in enumerate([(0, 0.05), (3, 0.07), (7, 0.06)]):
        d = dev[shift:] + dev[:shift]
        t[f"s{i}"] = [b + x + mean for b, x in zip(base, d)]
        c[f"s{i}"] = list(base)
    ref = reference(t, c, "MD")
    assert ref["tau2"] < 0
    got = meta_analysis(t, c, effect="MD")
    assert got.tau2 == pytest.approx(ref["tau2"], abs=1e-9)
    assert got.effect == pytest.approx(ref["effect"], abs=1e-9)
    clipped = meta_analysis(t, c, effect="MD", clip_tau2=True)
    ref_clipped = reference(t, c, "MD", clip=True)
    assert clipped.tau2 == 0.0
    assert (clipped.ci_low, clipped.ci_high) == pytest.approx(ref_clipped["ci"], abs=1e-9)
    assert clipped.ci_high - clipped.ci_low > got.ci_high - got.ci_low  # a negative tau2 narrows the CI


def test_negative_tau2_that_cancels_a_variance_is_an_error():
    # Identical sets: Q = 0 and tau2 = -v exactly, so v + tau2 = 0; unclipped DL cannot weight them.
    t = {f"s{i}": TREATMENT["scifact"] for i in range(3)}
    c = {f"s{i}": CONTROL["scifact"] for i in range(3)}
    with pytest.raises(SpladeError, match="clip"):
        meta_analysis(t, c, effect="MD")
    clipped = meta_analysis(t, c, effect="MD", clip_tau2=True)
    assert clipped.effect == pytest.approx(clipped.sets[0].effect)
    assert clipped.notes


def test_alpha_changes_the_interval():
    ref = reference(TREATMENT, CONTROL, "SMD", alpha=0.1)
    got = meta_analysis(TREATMENT, CONTROL, effect="SMD", alpha=0.1)
    assert (got.ci_low, got.ci_high) == pytest.approx(ref["ci"], abs=1e-6)


def test_single_set_has_zero_tau2():
    one = {"a": TREATMENT["scifact"]}
    got = meta_analysis(one, {"a": CONTROL["scifact"]}, effect="MD")
    assert got.tau2 == 0.0 and got.df == 0
    assert got.effect == pytest.approx(got.sets[0].effect)
    assert got.sets[0].weight == pytest.approx(1.0)


def test_meta_analysis_errors():
    with pytest.raises(SpladeError, match="same query sets"):
        meta_analysis(TREATMENT, {"scifact": CONTROL["scifact"]})
    with pytest.raises(SpladeError, match="paired"):
        meta_analysis({"a": [0.1, 0.2, 0.3]}, {"a": [0.1, 0.2]})
    with pytest.raises(SpladeError, match="no variance"):
        meta_analysis({"a": [0.2, 0.3, 0.4]}, {"a": [0.1, 0.2, 0.3]}, effect="MD")
    with pytest.raises(SpladeError, match="correlation"):
        meta_analysis({"a": [0.5, 0.5, 0.5]}, {"a": [0.1, 0.2, 0.4]}, effect="SMD")
    with pytest.raises(SpladeError, match="unknown effect"):
        meta_analysis(TREATMENT, CONTROL, effect="OR")


def test_tables_and_forest_plot(tmp_path):
    result = meta_analysis(TREATMENT, CONTROL, effect="SMD", treatment_name="splade-v3", control_name="bm25",
                           metric="ndcg@10")
    md = result.to_markdown()
    assert md.count("\n| ") == 2 + len(TREATMENT) + 1  # header, rule, sets, combined
    assert f"{result.effect:.4f}" in md
    csv_lines = result.to_csv().strip().splitlines()
    assert len(csv_lines) == 1 + len(TREATMENT) + 1
    assert csv_lines[-1].startswith("combined (RE),")
    assert "\\begin{tabular}" in result.to_latex()
    path = tmp_path / "plots" / "forest.png"
    forest_plot(result, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 500 and height > 300
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left behind
