"""Query encoding: each query's weights computed alone, queries spread over the cores.

A query's integer weights must not depend on which other queries were encoded with it, on the thread count or on
the CPU: padding a query into a batch, or splitting a matrix product differently, changes the floating-point
summation order, and a weight near a rounding boundary (``w × scale`` close to ``n + ½``) then flips. So:

* each query's hidden states come from its own forward pass, unpadded. For BERT- and DistilBERT-family models on
  the CPU that pass is one compiled call (:class:`OneTextForward`, :mod:`splade_pyserini.query_kernels`): it
  computes what the model's own forward computes, without a framework's per-operation machinery, which costs more
  than the maths for a short query, without the BLAS and without the interpreter lock;
* the vocabulary projection, ``max over positions of h·W^T + b`` (nearly all of the work), is done in two steps by
  :class:`ScreenedProjection`: a float32 matrix product over many queries at once (fast, in any summation order)
  only finds the few vocabulary entries that may be positive, with a margin wider than its rounding error; then
  those entries alone are computed per query in float64 (exact products, added in one fixed order), so the batch
  does not matter;
* the hidden states are float32, so their rounding still depends on the CPU's kernels: a query with a weight
  within :data:`splade_pyserini.exact.DELTA` of a rounding boundary is recomputed in float64
  (:mod:`splade_pyserini.exact`, where the bound is measured and argued). The integer weights are therefore the
  float64 formula's, whatever the batch, the threads, the concurrent callers or the CPU.

The speed comes from running several groups of queries at once, one per core. No process-wide setting (torch's or
the BLAS's thread count) is touched: other threads may be computing.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


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
    (matrices transposed, layers stacked); :meth:`supports` says whether a model has this shape.
    """

    def __init__(self, model):
        from .query_kernels import ACTIVATIONS

        kind = getattr(model.config, "model_type", "")
        if not self.supports(model):
            raise ValueError(f"{kind} models are not supported by OneTextForward")
        word, position, token_type, ln0, layers = (_layers_distilbert if kind == "distilbert" else _layers_bert)(model)
        head = _head_transform(model)
        self.act = ACTIVATIONS[_activation_name(model)]
        self.heads = int(layers[0]["heads"])
        self.eps = float(ln0.eps)
        width = word.shape[1]
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

    @staticmethod
    def supports(model) -> bool:
        import torch

        from .query_kernels import ACTIVATIONS

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
        from .query_kernels import encoder_forward

        return encoder_forward(np.asarray(ids, dtype=np.int64), *self._args, with_head)

    def __call__(self, ids: Sequence[int]) -> np.ndarray:
        return self._run(ids, False)

    def head_input(self, ids: Sequence[int]) -> np.ndarray:
        """The masked-LM head's transform of the hidden states, ``[length, hidden]`` float32."""
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


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def map_alone(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None, parallel: bool = True) -> list[R]:
    """``fn`` over every item; ``parallel``: several at once, one per core. No thread setting (torch's, the
    BLAS's) is changed: other threads may be computing, and the integer weights do not depend on it (see
    :mod:`splade_pyserini.exact`)."""
    workers = default_workers() if workers is None else max(1, int(workers))
    if not parallel or workers == 1 or len(items) < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def groups(lengths: Sequence[int], parts: int, most_tokens: int = 256) -> list[range]:
    """Consecutive index ranges of about equal token counts: at least ``parts`` of them (one per worker) when there
    are enough items, none over ``most_tokens`` tokens unless a single item is."""
    total = int(sum(lengths))
    budget = max(1, min(most_tokens, -(-total // max(1, parts))))
    out, start, tokens = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and tokens + n > budget:
            out.append(range(start, i))
            start, tokens = i, 0
        tokens += n
    if start < len(lengths):
        out.append(range(start, len(lengths)))
    return out


class ScreenedProjection:
    """``top_v = max over positions l of (h_l·w_v + b_v)`` for the entries where it is positive, per text.

    The vocabulary projection of a SPLADE model is ``[positions, hidden] × [hidden, vocab]``, and after the ReLU
    only a few dozen of the ~30,000 maxima survive. :meth:`candidates` runs one float32 matrix product over many
    texts' positions at once (fast: the weight matrix is streamed once for all of them) and keeps each text's
    entries whose computed logit exceeds ``-margin``; the margin bounds the product's rounding error
    (``|fl(h·w) - h·w| <= γ_K ||h|| ||w||`` for any summation order), so no positive entry is missed.
    :meth:`exact` then computes the candidates of one text in float64 from the float32 inputs: the products are
    exact and are added in one fixed order, so the result does not depend on the batch, the thread count or the
    BLAS. Both are compiled calls (:mod:`splade_pyserini.query_kernels`) that release the interpreter lock.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, block_width: int = 1024, ids: np.ndarray | None = None):
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)  # [vocab, hidden]
        self.bias = np.ascontiguousarray(bias, dtype=np.float32)
        self.ids = ids  # the vocabulary ids of the rows, when this screens part of a vocabulary (see restricted)
        vocab, hidden = self.weight.shape
        self.blocks = vocab_blocks(self.weight, block_width)
        # padded entries can never pass: their bias is -inf
        self._padded_bias = np.full(self.blocks.shape[0] * self.blocks.shape[2], -np.inf, dtype=np.float32)
        self._padded_bias[:vocab] = self.bias
        u = 2.0 ** -24  # float32 unit roundoff
        gamma = (hidden + 2) * u / (1 - (hidden + 2) * u)  # error of a (hidden)-term dot product plus the bias
        self._margin_per_norm = 2 * gamma * float(np.linalg.norm(self.weight, axis=1).max())
        self._margin_bias = 2 * gamma * float(np.abs(self.bias).max())

    def restricted(self, ids: np.ndarray) -> "ScreenedProjection":
        """The same projection over the vocabulary entries ``ids`` only (ascending): the rest are never computed.

        A searcher needs no weight for a term that its index does not hold (it matches nothing)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        return ScreenedProjection(self.weight[ids], self.bias[ids], self.blocks.shape[2], ids=ids)

    def candidates(self, hidden: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per text (``[length, hidden]`` float32), the sorted rows that may have a positive maximum (row ``r`` is
        vocabulary id ``r``, or ``ids[r]`` for a restricted projection).

        Texts of about the same length screen fastest together (each is padded to the longest)."""
        from .query_kernels import screen_candidates

        vocab = self._padded_bias.shape[0]
        out = [np.zeros(0, np.int64) for _ in hidden]
        texts = [i for i, h in enumerate(hidden) if len(h)]
        if not texts:
            return out
        lengths = np.array([len(hidden[i]) for i in texts], dtype=np.int64)
        longest = int(lengths.max())
        rows = np.zeros((len(texts) * longest, self.weight.shape[1]), dtype=np.float32)
        for j, i in enumerate(texts):
            rows[j * longest:j * longest + lengths[j]] = hidden[i]
        norm = np.linalg.norm(rows, axis=1).reshape(len(texts), longest).max(axis=1)
        thresholds = (-(norm * self._margin_per_norm + self._margin_bias + 1e-6)).astype(np.float32)
        keys = screen_candidates(rows, longest, lengths, self.blocks, self._padded_bias, thresholds)
        text, vocab_id = np.divmod(keys, vocab)
        bounds = np.searchsorted(text, np.arange(len(texts) + 1))
        for j, i in enumerate(texts):
            out[i] = vocab_id[bounds[j]:bounds[j + 1]]
        return out

    def exact(self, h: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary ids, float64 maxima) of the candidate rows whose maximum is positive, ids ascending."""
        from .query_kernels import exact_maxima

        candidates = np.asarray(candidates, dtype=np.int64)
        if len(candidates) == 0 or len(h) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        top = exact_maxima(np.ascontiguousarray(h, dtype=np.float32), self.weight, self.bias, candidates)
        keep = top > 0
        rows = candidates[keep]
        return (rows if self.ids is None else self.ids[rows]), top[keep]


def vocab_blocks(weight: np.ndarray, width: int) -> np.ndarray:
    """``W^T`` (``weight`` is ``[vocab, hidden]``) cut into ``[blocks, hidden, width]`` contiguous column blocks, the
    last one padded with zeros: each block's logits stay in the cache between the product and what uses them."""
    vocab, hidden = weight.shape
    n = -(-vocab // width)
    blocks = np.zeros((n, hidden, width), dtype=np.float32)
    for b in range(n):
        part = weight[b * width:(b + 1) * width]
        blocks[b, :, :len(part)] = part.T
    return blocks
