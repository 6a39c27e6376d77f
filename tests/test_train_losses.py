"""Training losses against the formulas, computed independently with plain loops / NumPy."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from splade_pyserini.train import losses  # noqa: E402

TOL = 1e-6


def _softmax(row):
    m = max(row)
    e = [math.exp(x - m) for x in row]
    s = sum(e)
    return [x / s for x in e]


def _kl_loop(student, teacher):
    total = 0.0
    for s_row, t_row in zip(student, teacher):
        p = _softmax(t_row)
        q = _softmax(s_row)
        total += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q) if pi > 0)
    return total / len(student)


def _margin_mse_loop(student, teacher):
    errs = []
    for s, t in zip(student, teacher):
        for a in range(len(s)):
            for b in range(a + 1, len(s)):
                errs.append(((s[a] - s[b]) - (t[a] - t[b])) ** 2)
    return sum(errs) / len(errs)


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


@pytest.fixture
def scores():
    rng = np.random.default_rng(7)
    return (rng.normal(0, 3, (5, 9)).tolist(), rng.normal(2, 4, (5, 9)).tolist())


def test_kl_div_matches_loop(scores):
    student, teacher = scores
    assert float(losses.kl_div(_t(student), _t(teacher))) == pytest.approx(_kl_loop(student, teacher), abs=TOL)


def test_kl_div_equal_teacher_scores_is_kl_to_uniform():
    student = [[1.0, 2.0, 3.0, -1.0], [0.5, 0.5, 0.5, 0.5]]
    teacher = [[4.0, 4.0, 4.0, 4.0], [0.0, 0.0, 0.0, 0.0]]
    expected = _kl_loop(student, teacher)
    # the second query's student is uniform too: KL 0; the first: log 4 - mean(log_softmax) terms
    assert float(losses.kl_div(_t(student), _t(teacher))) == pytest.approx(expected, abs=TOL)
    assert float(losses.kl_div(_t([student[1]]), _t([teacher[1]]))) == pytest.approx(0.0, abs=TOL)


def test_kl_div_is_zero_for_identical_and_shift_invariant():
    s = [[1.0, -2.0, 0.3]]
    assert float(losses.kl_div(_t(s), _t(s))) == pytest.approx(0.0, abs=TOL)
    assert float(losses.kl_div(_t(s), _t([[11.0, 8.0, 10.3]]))) == pytest.approx(0.0, abs=TOL)


def test_margin_mse_matches_all_pairs_loop(scores):
    student, teacher = scores
    assert float(losses.margin_mse(_t(student), _t(teacher))) == pytest.approx(_margin_mse_loop(student, teacher), abs=TOL)


def test_margin_mse_two_documents_and_shift_invariance():
    s, t = [[3.0, 1.0]], [[0.5, 2.5]]
    assert float(losses.margin_mse(_t(s), _t(t))) == pytest.approx(((3 - 1) - (0.5 - 2.5)) ** 2, abs=TOL)
    assert float(losses.margin_mse(_t(s), _t([[3.0 + 7, 1.0 + 7]]))) == pytest.approx(0.0, abs=TOL)
    with pytest.raises(ValueError):
        losses.margin_mse(_t([[1.0]]), _t([[1.0]]))


def test_flops_and_l1_match_numpy():
    rng = np.random.default_rng(3)
    reps = np.maximum(rng.normal(0, 1, (6, 11)), 0)
    reps[2, :] = 0.0  # an all-zero row
    flops = sum((sum(abs(reps[i, j]) for i in range(6)) / 6) ** 2 for j in range(11))
    l1 = sum(sum(abs(reps[i, j]) for j in range(11)) for i in range(6)) / 6
    assert float(losses.flops(_t(reps))) == pytest.approx(flops, abs=TOL)
    assert float(losses.l1(_t(reps))) == pytest.approx(l1, abs=TOL)
    # |w| is used, so signs do not matter
    assert float(losses.flops(_t(-reps))) == pytest.approx(flops, abs=TOL)


def test_regulariser_weight_quadratic_warmup():
    lam, T = 0.02, 100
    for step in (0, 1, 10, 50, 99, 100, 101, 10_000):
        assert losses.regulariser_weight(step, lam, T) == pytest.approx(lam * min(1.0, (step / T) ** 2), abs=1e-15)
    assert losses.regulariser_weight(5, lam, 0) == lam


def test_gradients_flow_in_float32():
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4)
    (losses.kl_div(s, t) + losses.margin_mse(s, t)).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()
