"""Compiled (numba) kernels of query encoding on the CPU: one unpadded text through a BERT-style encoder.

One call computes a whole forward pass without Python's interpreter lock (``nogil``), so several queries run at
once on several threads, and without a framework's per-operation overhead, which for a short query costs more than
the arithmetic. Matrix products are compiled loops too (:func:`matmul`), not the BLAS: a multi-threaded BLAS
called from several threads at once oversubscribes the cores (its threads spin while waiting), and limiting its
threads would change a process-wide setting while other threads compute. The arithmetic is float32 like the
model's, with layer-norm statistics and softmax sums in float64; a query's result depends on its own tokens only
(and on the CPU's kernels, within the bound that :mod:`splade_pyserini.exact` absorbs).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

ACTIVATIONS = {"gelu": 0, "relu": 1, "gelu_new": 2, "gelu_pytorch_tanh": 2}
_SQRT_HALF = 0.7071067811865476
_SQRT_2_OVER_PI = 0.7978845608028654


@njit(nogil=True, cache=True)
def matmul(a, b):
    """``a @ b`` in float32 (``a`` ``[m, k]``, ``b`` ``[k, n]`` C-contiguous), four rows of ``a`` at a time: each
    row of ``b`` is read once per four output rows, and the inner loop over ``n`` is vectorised."""
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), dtype=np.float32)
    i = 0
    while i + 4 <= m:
        for p in range(k):
            x0, x1, x2, x3 = a[i, p], a[i + 1, p], a[i + 2, p], a[i + 3, p]
            for j in range(n):
                bj = b[p, j]
                out[i, j] += x0 * bj
                out[i + 1, j] += x1 * bj
                out[i + 2, j] += x2 * bj
                out[i + 3, j] += x3 * bj
        i += 4
    for r in range(i, m):
        for p in range(k):
            x = a[r, p]
            for j in range(n):
                out[r, j] += x * b[p, j]
    return out


@njit(nogil=True, cache=True)
def _layer_norm(x, weight, bias, eps, out):
    rows, width = x.shape
    for i in range(rows):
        mean = 0.0
        for j in range(width):
            mean += x[i, j]
        mean /= width
        var = 0.0
        for j in range(width):
            d = x[i, j] - mean
            var += d * d
        inv = 1.0 / math.sqrt(var / width + eps)
        for j in range(width):
            out[i, j] = np.float32((x[i, j] - mean) * inv) * weight[j] + bias[j]


@njit(nogil=True, cache=True)
def _activate(x, kind):
    """In place: 0 exact (erf) GELU, 1 ReLU, 2 tanh-approximated GELU."""
    rows, width = x.shape
    for i in range(rows):
        for j in range(width):
            v = np.float64(x[i, j])
            if kind == 0:
                v = 0.5 * v * (1.0 + math.erf(v * _SQRT_HALF))
            elif kind == 1:
                v = max(v, 0.0)
            else:
                v = 0.5 * v * (1.0 + math.tanh(_SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)))
            x[i, j] = np.float32(v)


@njit(nogil=True, cache=True)
def _linear(x, weight_t, bias):
    out = matmul(x, weight_t)
    out += bias
    return out


@njit(nogil=True, cache=True)
def _attention(qkv, heads, out):
    """Multi-head self-attention of one unmasked text: ``qkv`` is ``[n, 3 * width]`` (queries, keys, values)."""
    n = qkv.shape[0]
    width = out.shape[1]
    d = width // heads
    scale = 1.0 / math.sqrt(d)
    for h in range(heads):
        q = np.ascontiguousarray(qkv[:, h * d:(h + 1) * d])
        k = np.ascontiguousarray(qkv[:, width + h * d:width + (h + 1) * d])
        v = np.ascontiguousarray(qkv[:, 2 * width + h * d:2 * width + (h + 1) * d])
        scores = matmul(q, np.ascontiguousarray(k.T))
        for i in range(n):
            top = -np.inf
            for j in range(n):
                s = np.float32(scores[i, j] * scale)
                scores[i, j] = s
                top = max(top, s)
            total = 0.0
            for j in range(n):
                e = math.exp(np.float64(scores[i, j]) - top)
                scores[i, j] = e
                total += e
            for j in range(n):
                scores[i, j] = np.float32(scores[i, j] / total)
        out[:, h * d:(h + 1) * d] = matmul(scores, v)


@njit(nogil=True, cache=True)
def encoder_forward(ids, word, position, token_type, ln0_w, ln0_b, eps, heads, act,
                    qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b, ff1_w, ff1_b, ff2_w, ff2_b, ln2_w, ln2_b,
                    head_w, head_b, head_ln_w, head_ln_b, head_eps, with_head):
    """Last hidden states ``[n, width]`` float32 of one text; ``with_head``: after the masked-LM head's transform.

    Layer parameters are stacked on a first axis (one entry per layer); matrices are ``W^T`` (``x @ W^T + b``).
    ``token_type`` is the type-0 embedding (zeros for models without one).
    """
    n = ids.shape[0]
    width = word.shape[1]
    x = np.empty((n, width), dtype=np.float32)
    for i in range(n):
        for j in range(width):
            x[i, j] = word[ids[i], j] + position[i, j] + token_type[j]
    _layer_norm(x, ln0_w, ln0_b, eps, x)
    att = np.empty((n, width), dtype=np.float32)
    for layer in range(qkv_w.shape[0]):
        qkv = _linear(x, qkv_w[layer], qkv_b[layer])
        _attention(qkv, heads, att)
        y = _linear(att, out_w[layer], out_b[layer])
        y += x
        _layer_norm(y, ln1_w[layer], ln1_b[layer], eps, x)
        hidden = _linear(x, ff1_w[layer], ff1_b[layer])
        _activate(hidden, act)
        y = _linear(hidden, ff2_w[layer], ff2_b[layer])
        y += x
        _layer_norm(y, ln2_w[layer], ln2_b[layer], eps, x)
    if not with_head:
        return x
    y = _linear(x, head_w, head_b)
    _activate(y, act)
    _layer_norm(y, head_ln_w, head_ln_b, head_eps, y)
    return y


@njit(nogil=True, cache=True, fastmath={"nnan", "ninf"})
def _max_rows(logits, first, stop, best):
    """``best[j] = max over rows first..stop-1 of logits[i, j]`` (finite values: vectorised)."""
    width = best.shape[0]
    for j in range(width):
        best[j] = logits[first, j]
    for i in range(first + 1, stop):
        for j in range(width):
            best[j] = max(best[j], logits[i, j])


@njit(nogil=True, cache=True)
def screen_block(logits, longest, lengths, bias, thresholds, base, vocab, keys, count):
    """Appends to ``keys`` (from ``count``; returns the new count) ``text * vocab + base + j`` for each entry j of
    this block of logits (``[texts * longest, width]``, a text's rows one after the other, rows past its length
    ignored) whose max over the text's rows plus ``bias[j]`` exceeds the text's threshold."""
    width = logits.shape[1]
    best = np.empty(width, dtype=np.float32)
    for t in range(lengths.shape[0]):
        _max_rows(logits, t * longest, t * longest + lengths[t], best)
        limit = thresholds[t]
        for j in range(width):
            if best[j] + bias[j] > limit:
                keys[count] = t * vocab + base + j
                count += 1
    return count


@njit(nogil=True, cache=True)
def screen_candidates(rows, longest, lengths, blocks, bias, thresholds):
    """Keys ``text * (blocks * width) + id``, ascending, of the vocabulary entries whose max over a text's positions
    of the float32 logit ``row·w + b`` exceeds the text's threshold.

    ``rows`` is ``[texts * longest, hidden]``, each text's positions one after the other (rows past its length are
    ignored); ``blocks`` is W^T cut into ``[blocks, hidden, width]`` column blocks (the last one padded) and
    ``bias`` is padded likewise (with -inf). The products are :func:`matmul`'s.
    """
    n_blocks, _, width = blocks.shape
    vocab = n_blocks * width
    keys = np.empty(lengths.shape[0] * vocab, dtype=np.int64)
    count = 0
    for b in range(n_blocks):
        logits = matmul(rows, blocks[b])
        count = screen_block(logits, longest, lengths, bias[b * width:(b + 1) * width], thresholds, b * width,
                             vocab, keys, count)
    out = keys[:count].copy()
    out.sort()
    return out


@njit(nogil=True, cache=True)
def exact_maxima(h, weight, bias, candidates):
    """For each candidate vocabulary id v: ``max over positions l of (Σ_k h[l,k]·w[v,k]) + b[v]`` in float64.

    The products of float32 inputs are exact in float64 and are added in one fixed order (k ascending), so the
    result depends on nothing but ``h`` and the weights.
    """
    length, hidden = h.shape
    out = np.empty(candidates.shape[0], dtype=np.float64)
    for c in range(candidates.shape[0]):
        v = candidates[c]
        top = -np.inf
        for l in range(length):
            s = 0.0
            for k in range(hidden):
                s += np.float64(h[l, k]) * np.float64(weight[v, k])
            if s > top:
                top = s
        out[c] = top + np.float64(bias[v])
    return out
