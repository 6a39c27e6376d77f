"""SparseVector on hand-built vectors: top/dot/overlap/contributions against hand computations, the HTML view, and
the FLOPS / per-query helpers of plots.py (no model needed)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from splade_pyserini.sparse_vector import SparseVector

VOCAB = ["[PAD]", "coral", "reef", "white", "bleach", "<b>&", "fish"]


def query() -> SparseVector:
    # "coral white" → the model added "reef" (an expansion term)
    return SparseVector([3, 1, 2], [1.0, 2.0, 0.5], VOCAB, is_query=True, own_terms=["coral", "white"], label="q1")


def document() -> SparseVector:
    return SparseVector([1, 2, 4, 6], [1.5, 2.0, 1.0, 0.25], VOCAB)


def test_basic_views():
    q = query()
    assert len(q) == 3
    assert q.terms.tolist() == [1, 2, 3]  # stored in id order
    assert q.top(2) == [("coral", 2.0), ("white", 1.0)]
    assert q.top() == [("coral", 2.0), ("white", 1.0), ("reef", 0.5)]
    assert q.to_dict() == {"coral": 2.0, "reef": 0.5, "white": 1.0}
    assert q.expansion_terms() == ["reef"]
    assert q.is_expansion("reef") and not q.is_expansion("coral")
    assert document().expansion_terms() == []  # own tokens unknown: nothing is marked


def test_zero_weights_dropped_and_validation():
    v = SparseVector([1, 2], [0.0, 3.0], VOCAB)
    assert v.to_dict() == {"reef": 3.0}
    with pytest.raises(ValueError):
        SparseVector([1, 1], [1.0, 2.0], VOCAB)
    with pytest.raises(ValueError):
        SparseVector([99], [1.0], VOCAB)


def test_dot_overlap_contributions_by_hand():
    q, d = query(), document()
    # shared: coral 2.0 × 1.5 = 3.0, reef 0.5 × 2.0 = 1.0; white and bleach/fish are not shared
    assert q.dot(d) == pytest.approx(4.0)
    assert d.dot(q) == pytest.approx(4.0)
    assert q.overlap(d) == ["coral", "reef"]
    assert q.contributions(d) == [("coral", 2.0, 1.5, 3.0), ("reef", 0.5, 2.0, 1.0)]
    assert q.dot({"white": 4.0, "fish": 1.0}) == pytest.approx(4.0)
    assert q.dot(SparseVector([], [], VOCAB)) == 0.0


def test_quantized_integer_dot():
    q, d = query().quantize(10), document().quantize(10)
    assert q.to_dict() == {"coral": 20, "reef": 5, "white": 10}
    assert d.to_dict() == {"coral": 15, "reef": 20, "bleach": 10, "fish": 3}  # 2.5 rounds half away from zero
    assert q.dot(d) == 20 * 15 + 5 * 20
    assert isinstance(q.dot(d), int)
    assert q.expansion_terms() == ["reef"]  # quantising keeps the own tokens


def test_from_dict_round_trip():
    d = document()
    again = SparseVector.from_dict(d.to_dict(), VOCAB)
    assert again.to_dict() == d.to_dict()
    with pytest.raises(KeyError):
        SparseVector.from_dict({"nope": 1.0}, VOCAB)


def _rows(html: str) -> list[str]:
    return re.findall(r"<tr class=\"(?:own|expansion)\">.*?</tr>", html, flags=re.S)


def test_html_rows_order_bars_and_markers():
    html = query()._repr_html_()
    rows = _rows(html)
    assert len(rows) == 3
    terms = [re.search(r"<code>(.*?)</code>", r).group(1) for r in rows]
    assert terms == ["coral", "white", "reef"]  # heaviest first
    widths = [re.search(r"width:([\d.]+)%", r).group(1) for r in rows]
    assert widths == ["100.0", "50.0", "25.0"]  # ∝ weight / largest weight
    weights = [re.search(r"text-align:right;\">(.*?)</td>", r).group(1) for r in rows]
    assert weights == ["2.000", "1.000", "0.500"]
    # the expansion term is italic, in its own colour, marked "+" in the exp. column; the own tokens are not
    assert rows[2].startswith('<tr class="expansion">') and "font-style:italic" in rows[2] and "<td style=\"padding:1px 6px;text-align:left;\">+</td>" in rows[2]
    for own in rows[:2]:
        assert own.startswith('<tr class="own">') and "font-style:italic" not in own and ">+<" not in own
    assert ">exp.</th>" in html
    assert "q1 · query vector · 3 terms · 1 expansion" in html


def test_html_escapes_and_truncates():
    v = SparseVector([5, 1, 2, 3], [4.0, 3.0, 2.0, 1.0], VOCAB)
    html = v.to_html(k=2)
    assert "<code>&lt;b&gt;&amp;</code>" in html
    assert len(_rows(html)) == 2
    assert "… 2 more terms" in html
    assert ">exp.</th>" not in html  # no own tokens known: no marker column


def test_repr():
    r = repr(query())
    assert r.startswith("SparseVector(query 'q1', 3 terms: coral: 2.000, white: 1.000, reef+: 0.500")


def test_flops_and_stats_by_hand():
    from splade_pyserini.plots import flops, vector_stats

    docs = [{"a": 1.0, "b": 2.0}, {"a": 3.0}, {"c": 1.0}, {"a": 1.0, "c": 1.0}]
    # p_a = 3/4, p_b = 1/4, p_c = 2/4 → Σ p² = 9/16 + 1/16 + 4/16
    assert flops(docs) == pytest.approx(14 / 16)
    # mean weights: a 5/4, b 2/4, c 2/4 → 25/16 + 4/16 + 4/16
    assert flops(docs, definition="mean_weight") == pytest.approx(33 / 16)
    queries = [{"a": 1.0}, {"b": 1.0, "z": 1.0}]
    # query p: a 1/2, b 1/2, z 1/2; shared with docs: a, b → 3/4·1/2 + 1/4·1/2
    assert flops(docs, queries) == pytest.approx(0.5)
    stats = vector_stats(docs)
    assert stats["vectors"] == 4 and stats["mean_length"] == 1.5 and stats["distinct_terms"] == 3
    # SparseVectors are keyed by token, so they mix with dicts
    assert flops([query()], [{"coral": 1.0}]) == pytest.approx(1.0)


def test_per_query_deltas_and_plots_headless():
    import matplotlib

    matplotlib.use("Agg")
    from splade_pyserini.plots import (per_query_deltas, plot_overview, plot_per_query_delta,
                                       plot_weight_distribution)

    a = {"1": 0.5, "2": 0.25, "3": 0.0}
    b = {"1": 0.25, "2": 0.75, "3": 0.0}
    assert per_query_deltas(a, b) == [("2", 0.5), ("3", 0.0), ("1", -0.25)]
    ax = plot_per_query_delta(a, b, metric="ndcg@10", labels=("BM25", "SPLADE"))
    assert ax.get_title() == "SPLADE vs BM25: 1 better, 1 tied, 1 worse (mean Δ +0.083)"
    assert [round(p.get_height(), 3) for p in ax.patches] == [0.5, 0.0, -0.25]
    fig = plot_overview({"q": [query()], "d": [document()]})
    assert len(fig.axes) == 3
    ax = plot_weight_distribution([query(), document()])
    assert ax.get_yscale() == "log"
    import matplotlib.pyplot as plt

    plt.close("all")
