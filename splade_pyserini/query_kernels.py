"""One unpadded text through a BERT-style encoder on the CPU, as compiled (numba) kernels: :class:`OneTextForward`.

One call computes a whole forward pass without Python's interpreter lock (``nogil``), so several queries run at
once on several threads, and without a framework's per-operation overhead, which for a short query costs more than
the arithmetic. Matrix products are compiled loops too (:func:`matmul`), not the BLAS: a multi-threaded BLAS
called from several threads at once oversubscribes the cores (its threads spin while waiting), and limiting its
threads would change a process-wide setting while other threads compute. The arithmetic is float32 like the
model's, with layer-norm statistics and softmax sums in float64; a query's result depends on its own tokens only
(and on the CPU's kernels, within the bound that :mod:`splade_pyserini.exact` absorbs). The same kernels, given
float64 parameters, compute the float64 forward that :mod:`splade_pyserini.exact` recomputes texts with.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from numba import njit

ACTIVATIONS = {"gelu": 0, "relu": 1, "gelu_new": 2, "gelu_pytorch_tanh": 2}
_SQRT_HALF = 0.7071067811865476
_SQRT_2_OVER_PI = 0.7978845608028654


@njit(nogil=True, cache=True)
def matmul(a, b):
    """``a @ b`` in the inputs' precision (``a`` ``[m, k]``, ``b`` ``[k, n]`` C-contiguous), four rows of ``a`` at a time: each
    row of ``b`` is read once per four output rows, and the inner loop over ``n`` is vectorised."""
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), dtype=a.dtype)
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
            out[i, j] = (x[i, j] - mean) * inv  # rounded to the arrays' precision, then scaled
            out[i, j] = out[i, j] * weight[j] + bias[j]


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
            x[i, j] = v


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
                scores[i, j] = scores[i, j] * scale
                top = max(top, np.float64(scores[i, j]))
            total = 0.0
            for j in range(n):
                e = math.exp(np.float64(scores[i, j]) - top)
                scores[i, j] = e
                total += e
            for j in range(n):
                scores[i, j] = scores[i, j] / total
        out[:, h * d:(h + 1) * d] = matmul(scores, v)


@njit(nogil=True, cache=True)
def encoder_forward(ids, word, position, token_type, ln0_w, ln0_b, eps, heads, act,
                    qkv_w, qkv_b, out_w, out_b, ln1_w, ln1_b, ff1_w, ff1_b, ff2_w, ff2_b, ln2_w, ln2_b,
                    head_w, head_b, head_ln_w, head_ln_b, head_eps, with_head):
    """Last hidden states ``[n, width]`` of one text, in the parameters' precision; ``with_head``: after the masked-LM head's transform.

    Layer parameters are stacked on a first axis (one entry per layer); matrices are ``W^T`` (``x @ W^T + b``).
    ``token_type`` is the type-0 embedding (zeros for models without one).
    """
    n = ids.shape[0]
    width = word.shape[1]
    x = np.empty((n, width), dtype=word.dtype)
    for i in range(n):
        for j in range(width):
            x[i, j] = word[ids[i], j] + position[i, j] + token_type[j]
    _layer_norm(x, ln0_w, ln0_b, eps, x)
    att = np.empty((n, width), dtype=word.dtype)
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


@njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def screen_mask(rows, starts, weight, bias, thresholds):
    """The float32 screen of a few texts' positions in the calling thread (``ScreenedProjection``'s small-chunk path):
    ``mask[t, v]`` when ``max over text t's rows r of (rows[r]·weight[v]) + bias[v] > thresholds[t]``.

    ``rows`` ``[positions, hidden]`` float32, text ``t`` its rows ``starts[t]`` up to the next start. The dot
    products are float32, summed in whatever order vectorises (``reassoc``, ``contract``): the screen's margin
    bounds the rounding error of any order. A few texts' product is too small to share between BLAS threads, whose
    hand-off costs more than the arithmetic whenever another process or thread competes for the cores.
    """
    n_rows, hidden = rows.shape
    texts = starts.shape[0]
    vocab = weight.shape[0]
    mask = np.zeros((texts, vocab), dtype=np.bool_)
    for v in range(vocab):
        for t in range(texts):
            end = starts[t + 1] if t + 1 < texts else n_rows
            best = -np.inf
            for r in range(starts[t], end):
                acc = np.float32(0.0)
                for k in range(hidden):
                    acc += rows[r, k] * weight[v, k]
                if acc > best:
                    best = acc
            if best + bias[v] > thresholds[t]:
                mask[t, v] = True
    return mask


def _layers_bert(model):
    base = model.base_model
    emb = base.embeddings
    token_type = emb.token_type_embeddings.weight[0] if hasattr(emb, "token_type_embeddings") else None
    layers = []
    for layer in base.encoder.layer:
        att = layer.attention
        layers.append(dict(
            q=att.self.query, k=att.self.key, v=att.self.value, heads=att.self.num_attention_heads,
            out=att.output.dense, ln1=att.output.LayerNorm,
            ff1=layer.intermediate.dense, act=layer.intermediate.intermediate_act_fn,
            ff2=layer.output.dense, ln2=layer.output.LayerNorm))
    return emb.word_embeddings.weight, emb.position_embeddings.weight, token_type, emb.LayerNorm, layers


def _layers_distilbert(model):
    base = model.base_model
    emb = base.embeddings
    layers = []
    for layer in base.transformer.layer:
        att = layer.attention
        layers.append(dict(
            q=att.q_lin, k=att.k_lin, v=att.v_lin, heads=att.n_heads, out=att.out_lin, ln1=layer.sa_layer_norm,
            ff1=layer.ffn.lin1, act=layer.ffn.activation, ff2=layer.ffn.lin2, ln2=layer.output_layer_norm))
    return emb.word_embeddings.weight, emb.position_embeddings.weight, None, emb.LayerNorm, layers


def _head_transform(model):
    """(dense, activation, LayerNorm) of a BERT or DistilBERT masked-LM head, or None."""
    if hasattr(model, "cls") and hasattr(model.cls, "predictions"):
        t = model.cls.predictions.transform
        return t.dense, t.transform_act_fn, t.LayerNorm
    if hasattr(model, "vocab_transform"):
        return model.vocab_transform, model.activation, model.vocab_layer_norm
    return None


class OneTextForward:
    """The hidden states ``[length, hidden]`` of one unpadded text, for BERT and DistilBERT encoders on the CPU.

    Post-layer-norm transformer blocks: ``x = LN(x + Wo·attn(x))``, ``x = LN(x + W2·act(W1·x))``; embeddings
    ``LN(word + position [+ token type 0])``; :meth:`head_input` adds the masked-LM head's transform (dense,
    activation, LayerNorm), whose output the vocabulary projection takes. One compiled call per text
    (:func:`splade_pyserini.query_kernels.encoder_forward`): no framework overhead per operation, and no
    interpreter lock, so texts run in parallel on threads. Holds float32 copies of the encoder's parameters
    (matrices transposed, layers stacked; ``dtype=np.float64``: float64 copies, for the float64 forward of
    :mod:`splade_pyserini.exact`); :meth:`supports` says whether a model has this shape.
    """

    def __init__(self, model, dtype=np.float32):
        kind = getattr(model.config, "model_type", "")
        if not self.supports(model):
            raise ValueError(f"{kind} models are not supported by OneTextForward")
        word, position, token_type, ln0, layers = (_layers_distilbert if kind == "distilbert" else _layers_bert)(model)
        head = _head_transform(model)
        self.act = ACTIVATIONS[_activation_name(model)]
        self.heads = int(layers[0]["heads"])
        self.eps = float(ln0.eps)
        width = word.shape[1]
        self.dtype = np.dtype(dtype)
        tt = np.zeros(width, np.float32) if token_type is None else _np(token_type)
        stack = {name: np.stack([f(layer) for layer in layers]) for name, f in {
            "qkv_w": lambda l: _t(l["q"], l["k"], l["v"]), "qkv_b": lambda l: _b(l["q"], l["k"], l["v"]),
            "out_w": lambda l: _t(l["out"]), "out_b": lambda l: _b(l["out"]),
            "ln1_w": lambda l: _np(l["ln1"].weight), "ln1_b": lambda l: _np(l["ln1"].bias),
            "ff1_w": lambda l: _t(l["ff1"]), "ff1_b": lambda l: _b(l["ff1"]),
            "ff2_w": lambda l: _t(l["ff2"]), "ff2_b": lambda l: _b(l["ff2"]),
            "ln2_w": lambda l: _np(l["ln2"].weight), "ln2_b": lambda l: _np(l["ln2"].bias)}.items()}
        self._args = (_np(word), _np(position), tt, _np(ln0.weight), _np(ln0.bias), self.eps, self.heads, self.act,
                      *stack.values(), _t(head[0]), _b(head[0]), _np(head[2].weight), _np(head[2].bias),
                      float(head[2].eps))
        self._args = tuple(a.astype(self.dtype) if isinstance(a, np.ndarray) else a for a in self._args)

    @staticmethod
    def supports(model) -> bool:
        import torch

        kind = getattr(model.config, "model_type", "")
        first = next(model.parameters())
        if first.device.type != "cpu" or first.dtype.itemsize != 4 or _head_transform(model) is None:
            return False
        if _activation_name(model) not in ACTIVATIONS:
            return False
        if kind == "distilbert":
            return True
        if kind != "bert" or getattr(model.config, "position_embedding_type", "absolute") != "absolute":
            return False
        eps = {float(m.eps) for m in model.base_model.modules() if isinstance(m, torch.nn.LayerNorm)}
        return len(eps) == 1

    def _run(self, ids: Sequence[int], with_head: bool) -> np.ndarray:
        return encoder_forward(np.asarray(ids, dtype=np.int64), *self._args, with_head)

    def __call__(self, ids: Sequence[int]) -> np.ndarray:
        return self._run(ids, False)

    def head_input(self, ids: Sequence[int]) -> np.ndarray:
        """The masked-LM head's transform of the hidden states, ``[length, hidden]`` (float32 unless ``dtype``)."""
        return self._run(ids, True)


def _activation_name(model) -> str:
    config = model.config
    return str(getattr(config, "activation", None) if config.model_type == "distilbert" else config.hidden_act)


def _np(tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().numpy(), dtype=np.float32)


def _t(*linears) -> np.ndarray:
    """``W^T`` of one or more linear layers side by side: ``x @ W^T`` is their outputs concatenated."""
    return np.ascontiguousarray(np.concatenate([_np(m.weight) for m in linears]).T)


def _b(*linears) -> np.ndarray:
    return np.concatenate([_np(m.bias) for m in linears])
