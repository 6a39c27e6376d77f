"""Training losses of the SPLADE-v3 recipe, as plain functions over score and representation tensors.

Score tensors are ``[queries, 1 + n]``: column 0 is the query's positive, columns 1..n its negatives, each row
scored against its own documents only (no in-batch negatives). Representations are ``[rows, vocab]``.

* :func:`kl_div` — ``KL(softmax(teacher) || softmax(student))`` per query, summed over the 1 + n documents,
  mean over queries (PyTorch ``kl_div(log_softmax(student), softmax(teacher), reduction="batchmean")``),
  temperature 1. Teacher scores enter the softmax as given: normalise or rescore them in the score file.
* :func:`margin_mse` — mean squared error between teacher and student margins ``s_a - s_b`` over every pair
  ``a < b`` of the 1 + n documents, mean over pairs and queries. (naver/splade's HF trainer uses only the
  positive-vs-negative pairs; over all pairs the loss also sees the order among negatives.)
* :func:`flops` — ``sum_j (mean_i |w_ij|)^2`` (Paria et al., 2020): the expected number of multiplications of a
  sparse dot product, smooth; applied to documents.
* :func:`l1` — ``mean_i sum_j |w_ij|``; applied to queries.
* :func:`regulariser_weight` — ``lam * min(1, (step / T)^2)``, the quadratic warm-up of both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _f(x: torch.Tensor) -> torch.Tensor:
    """Half precisions are promoted to float32; float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_scores(student: torch.Tensor, teacher: torch.Tensor) -> None:
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(f"expected two [queries, 1 + n] score tensors of the same shape, got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}")


def kl_div(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``mean_q sum_k p_qk (log p_qk - log_softmax(student)_qk)`` with ``p = softmax(teacher)``."""
    _check_scores(student, teacher)
    log_p_student = F.log_softmax(_f(student), dim=1)
    p_teacher = F.softmax(_f(teacher).to(_f(student).dtype), dim=1)
    return F.kl_div(log_p_student, p_teacher, reduction="batchmean")


def pair_margins(scores: torch.Tensor) -> torch.Tensor:
    """``[queries, P]`` margins ``s_a - s_b`` for every pair ``a < b`` (P = (1+n) n / 2), row-major pair order."""
    k = scores.shape[1]
    a, b = torch.triu_indices(k, k, offset=1, device=scores.device)
    return scores[:, a] - scores[:, b]


def margin_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean over queries and document pairs ``a < b`` of ``((s_a - s_b) - (t_a - t_b))^2``."""
    _check_scores(student, teacher)
    if student.shape[1] < 2:
        raise ValueError("margin_mse needs at least two documents per query")
    return F.mse_loss(pair_margins(_f(student)), pair_margins(_f(teacher).to(_f(student).dtype)), reduction="mean")


def flops(reps: torch.Tensor) -> torch.Tensor:
    """``sum_j (mean_i |w_ij|)^2`` over a ``[rows, vocab]`` batch of representations."""
    return _f(reps).abs().mean(dim=0).pow(2).sum()


def l1(reps: torch.Tensor) -> torch.Tensor:
    """``mean_i sum_j |w_ij|`` over a ``[rows, vocab]`` batch of representations."""
    return _f(reps).abs().sum(dim=1).mean()


def regulariser_weight(step: int | float, lam: float, T: int | float) -> float:
    """``lam * min(1, (step / T)^2)``; ``T <= 0`` means no warm-up (always ``lam``)."""
    if T <= 0:
        return float(lam)
    return float(lam) * min(1.0, (float(step) / float(T)) ** 2)
