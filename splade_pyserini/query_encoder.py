"""Query encoding: each query alone, on one thread, queries spread over the cores.

A query's integer weights must not depend on which other queries were encoded with it, nor on how many threads
the machine has: padding a query into a batch, or splitting a matrix product over threads, changes the
floating-point summation order, and a weight near a rounding boundary (``w × scale`` close to ``n + ½``) then
flips. So every query is encoded by itself with one thread (no padding, no mask, one summation order), and the
speed comes from running several queries at once, one per core.

For BERT- and DistilBERT-family models the forward pass of one unpadded text is written out with plain tensor
operations (:class:`OneTextForward`): it computes what the model's own forward computes, without the per-call
machinery (masks, output objects) that costs more than the maths for a short query. Other architectures go
through the model itself.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Sequence

import numpy as np

_THREADS_LOCK = threading.Lock()


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


class OneTextForward:
    """The last hidden states ``[length, hidden]`` of one unpadded text, for BERT and DistilBERT encoders.

    Post-layer-norm transformer blocks: ``x = LN(x + Wo·attn(x))``, ``x = LN(x + W2·act(W1·x))``; embeddings
    ``LN(word + position [+ token type 0])``. The query, key and value projections are one matrix product.
    Holds views of the model's parameters (and one concatenated q/k/v copy per layer); build it after the model
    has its final device and dtype. :meth:`supports` says whether a model has this shape.
    """

    def __init__(self, model):
        import torch

        kind = getattr(model.config, "model_type", "")
        if not self.supports(model):
            raise ValueError(f"{kind} models are not supported by OneTextForward")
        word, position, token_type, ln0, layers = (_layers_distilbert if kind == "distilbert" else _layers_bert)(model)
        with torch.no_grad():
            self.word, self.position = word.detach(), position.detach()
            self.token_type = None if token_type is None else token_type.detach()
            self.ln0 = _ln(ln0)
            self.layers = []
            for layer in layers:
                qkv_w = torch.cat([layer[k].weight.detach() for k in ("q", "k", "v")])
                qkv_b = torch.cat([layer[k].bias.detach() for k in ("q", "k", "v")])
                self.layers.append((layer["heads"], qkv_w, qkv_b, layer["out"].weight.detach(),
                                    layer["out"].bias.detach(), _ln(layer["ln1"]), layer["ff1"].weight.detach(),
                                    layer["ff1"].bias.detach(), layer["act"], layer["ff2"].weight.detach(),
                                    layer["ff2"].bias.detach(), _ln(layer["ln2"])))

    @staticmethod
    def supports(model) -> bool:
        kind = getattr(model.config, "model_type", "")
        if kind == "distilbert":
            return True
        return kind == "bert" and getattr(model.config, "position_embedding_type", "absolute") == "absolute"

    def __call__(self, ids: Sequence[int]):
        import torch
        import torch.nn.functional as F

        ids_t = torch.as_tensor(ids, dtype=torch.long, device=self.word.device)
        n = ids_t.shape[0]
        x = self.word[ids_t] + self.position[:n]
        if self.token_type is not None:
            x = x + self.token_type
        x = F.layer_norm(x, *self.ln0)
        for heads, qkv_w, qkv_b, out_w, out_b, ln1, ff1_w, ff1_b, act, ff2_w, ff2_b, ln2 in self.layers:
            width = x.shape[-1]
            q, k, v = F.linear(x, qkv_w, qkv_b).view(n, 3, heads, width // heads).permute(1, 2, 0, 3)
            att = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(n, width)
            x = F.layer_norm(F.linear(att, out_w, out_b) + x, *ln1)
            x = F.layer_norm(F.linear(act(F.linear(x, ff1_w, ff1_b)), ff2_w, ff2_b) + x, *ln2)
        return x


def _ln(module) -> tuple:
    """``F.layer_norm`` arguments of a LayerNorm module."""
    return (module.normalized_shape, module.weight.detach(), module.bias.detach(), module.eps)


@contextmanager
def one_thread():
    """torch and the BLAS behind numpy on one thread each, for the duration (restored after)."""
    import torch

    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            from threadpoolctl import threadpool_limits

            limiter = threadpool_limits(limits=1, user_api="blas")
        except Exception:  # threadpoolctl missing or unable to see the BLAS: torch alone is limited
            limiter = None
        try:
            yield
        finally:
            if limiter is not None:
                limiter.restore_original_limits()
            torch.set_num_threads(before)


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def map_one_text(fn: Callable[[Sequence[int]], tuple[np.ndarray, np.ndarray]], ids: list[list[int]],
                 workers: int | None = None, parallel: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """``fn`` over every text, each alone on one thread; ``parallel``: several texts at once, one per core."""
    import torch

    workers = default_workers() if workers is None else max(1, int(workers))
    with one_thread():
        if not parallel or workers == 1 or len(ids) < 2:
            return [fn(x) for x in ids]

        def alone(x):
            if torch.get_num_threads() != 1:  # the intra-op thread count can be per thread (OpenMP)
                torch.set_num_threads(1)
            return fn(x)

        with ThreadPoolExecutor(max_workers=min(workers, len(ids))) as pool:
            return list(pool.map(alone, ids))
