"""Query encoding: :class:`QueryEncoder`, each query's weights computed alone, queries spread over the cores.

A query's integer weights must not depend on which other queries were encoded with it, on the thread count or on
the CPU: padding a query into a batch, or splitting a matrix product differently, changes the floating-point
summation order, and a weight near a rounding boundary (``w × scale`` close to ``n + ½``) then flips. The path of
a batch of queries, in this order and in this module:

1. each query's hidden states come from its own forward pass, unpadded. For BERT- and DistilBERT-family models on
   the CPU that pass is one compiled call (:class:`~splade_pyserini.query_kernels.OneTextForward`): it computes
   what the model's own forward computes, without a framework's per-operation machinery (which costs more than
   the maths for a short query) and without the interpreter lock, so queries run on several threads at once;
2. the vocabulary projection, ``max over positions of h·W^T + b`` (nearly all of the work), is *screened* by
   :class:`ScreenedProjection`: one float32 matrix product over all the queries' positions (numpy's BLAS, fast in
   any summation order; a query or two by a compiled loop in the calling thread, since BLAS threads cost more than
   they save on so small a product whenever anything else competes for the cores: 356 vs 25 ms a query measured
   one at a time beside a test run) only finds the few vocabulary entries that may be positive, with a margin wider
   than its rounding error;
3. those entries alone are computed per query in float64 (exact products, added in one fixed order), so the
   batch does not matter; the variant's rule applies (``lexical``: the query's own tokens only,
   :func:`~splade_pyserini.encoder.bag_of_words`);
4. the hidden states are float32, so their rounding still depends on the CPU's kernels: a query with a weight
   within :data:`splade_pyserini.exact.DELTA` of a rounding boundary is recomputed in float64
   (:func:`splade_pyserini.exact.exact_batch`, where the bound is measured and argued). The integer weights are
   therefore the float64 formula's, whatever the batch, the threads, the concurrent callers or the CPU.

``doc``-variant queries skip the model: they are the bag of their own tokens (times the card's static weights).
No process-wide setting (torch's or the BLAS's thread count) is touched: other threads may be computing.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import numpy as np

from .encoder import SparseBatch, bag_of_words, mlm_head

T = TypeVar("T")
R = TypeVar("R")


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


class QueryEncoder:
    """The query half of a :class:`~splade_pyserini.encoder.SpladeEncoder`: screening, the one-query forward and
    the float64 finish, in that order (see the module docstring). ``workers``: threads (None: one per core)."""

    def __init__(self, encoder, float64):
        from .query_kernels import OneTextForward

        self.model, self.device, self.card = encoder.model, encoder.device, encoder.card
        self.vocab_size, self.special_ids = encoder.vocab_size, encoder.special_ids
        self.static_weights = encoder.query_weights  # doc variant: per-token weights (sentence-transformers)
        self.float64 = float64  # a text near a rounding boundary, recomputed (splade_pyserini.exact)
        self.workers = None
        self._parallel = not self.device.startswith("cuda")
        self._head = mlm_head(self.model)
        self._one_text = OneTextForward(self.model) if OneTextForward.supports(self.model) else None
        self._screen = None
        if self.device == "cpu" and self._head is not None and next(self.model.parameters()).dtype.itemsize == 4:
            _, weight, bias = self._head
            self._screen = ScreenedProjection(weight.detach().numpy(), bias.detach().numpy())
        self._restricted: dict[bytes, ScreenedProjection] = {}  # screens of vocabularies queries were restricted to
        self._restricted_lock = threading.Lock()

    def encode_ids(self, ids: list[list[int]], vocabulary: np.ndarray | None, exact: bool, scale: float) -> SparseBatch:
        """Sparse vectors of tokenised queries, in order; ``vocabulary``: only these term ids; ``exact``: integer
        weights at ``scale`` that are the float64 formula's (float32 weights either way)."""
        from .exact import exact_batch

        if self.card.variant == "doc":
            return self._bags(ids, vocabulary)
        rows = self._maxima(ids, vocabulary)
        if self.card.variant == "lexical":  # weights only on the query's own (non-special) tokens
            rows = [(t[own[t]], m[own[t]]) for (t, m), own in zip(rows, self._own(ids))]
        rows = [(t.astype(np.int32), np.log1p(m)) for t, m in rows]
        if exact:
            return exact_batch(rows, ids, self.float64, scale, parallel=self._parallel)
        batch = SparseBatch.from_rows(rows)
        batch.weights = batch.weights.astype(np.float32)
        return batch

    def _own(self, ids: list[list[int]], most: int = 256):
        """Per query, a boolean ``[vocab]`` row: which entries are its own tokens (computed ``most`` at a time)."""
        for start in range(0, len(ids), most):
            yield from bag_of_words(ids[start:start + most], self.vocab_size, self.special_ids).bool().numpy()

    def _bags(self, ids: list[list[int]], vocabulary: np.ndarray | None) -> SparseBatch:
        """``doc`` variant: the bag of each query's own tokens, times the card's static weights if any."""
        import torch

        bow = bag_of_words(ids, self.vocab_size, self.special_ids, device=self.device)
        if self.static_weights is not None:
            bow *= torch.as_tensor(self.static_weights, device=self.device)
        if vocabulary is not None:
            keep = torch.zeros(bow.shape[1], dtype=torch.bool, device=bow.device)
            keep[torch.as_tensor(np.asarray(vocabulary, dtype=np.int64), device=bow.device)] = True
            bow[:, ~keep] = 0.0
        rows, cols = torch.nonzero(bow, as_tuple=True)
        counts = torch.bincount(rows, minlength=bow.shape[0]).cpu().numpy()
        offsets = np.zeros(bow.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return SparseBatch(offsets, cols.to(torch.int32).cpu().numpy(), bow[rows, cols].cpu().numpy())

    def _maxima(self, ids: list[list[int]], vocabulary: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, (vocabulary ids ascending, float64 maxima > 0) of its logits over positions."""
        if self._screen is None:  # other architectures, GPUs: each query through the model itself
            rows = map_alone(self._model_maxima, ids, self.workers, self._parallel)
            if vocabulary is not None:
                rows = [(t[keep], m[keep]) for t, m in rows for keep in [np.isin(t, vocabulary)]]
            return rows
        screen = self._screen_for(vocabulary)
        hidden = map_alone(self._hidden, ids, self.workers)
        candidates = screen.candidates(hidden)
        return [screen.exact(h, c) for h, c in zip(hidden, candidates)]

    def _hidden(self, ids: Sequence[int]) -> np.ndarray:
        """The MLM head's transformed hidden states ``[length, hidden]`` float32 of one unpadded query."""
        import torch

        if self._one_text is not None:
            return self._one_text.head_input(ids)
        with torch.inference_mode():
            hidden = self.model.base_model(input_ids=torch.as_tensor([list(ids)])).last_hidden_state
            return self._head[0](hidden[0]).numpy()

    def _model_maxima(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_maxima` of one query through the model on its device (no screen): float32 maxima."""
        import torch

        with torch.inference_mode():
            input_ids = torch.as_tensor([list(ids)], device=self.device)
            if self._head is None:  # unknown architecture: the model's own forward and full logits
                top = self.model(input_ids=input_ids).logits[0].amax(dim=0)
            else:
                transform, weight, bias = self._head
                h = transform(self.model.base_model(input_ids=input_ids).last_hidden_state[0])
                top = torch.matmul(h, weight.t()).amax(dim=0) + bias
            top = top.float().cpu().numpy()
        cols = np.flatnonzero(top > 0)  # relu: only positive maxima survive; log1p on those alone
        return cols, top[cols].astype(np.float64)

    def _screen_for(self, vocabulary: np.ndarray | None) -> "ScreenedProjection":
        """The screen over the whole vocabulary, or over ``vocabulary`` only (kept for the next call)."""
        if vocabulary is None:
            return self._screen
        key = hashlib.blake2b(np.ascontiguousarray(vocabulary, dtype=np.int64).tobytes(), digest_size=16).digest()
        with self._restricted_lock:  # several searchers (threads) may share this encoder
            screen = self._restricted.get(key)
            if screen is None:
                if len(self._restricted) >= 8:
                    self._restricted.pop(next(iter(self._restricted)))
                screen = self._restricted[key] = self._screen.restricted(vocabulary)
            return screen


class ScreenedProjection:
    """``top_v = max over positions l of (h_l·w_v + b_v)`` for the entries where it is positive, per text.

    The vocabulary projection of a SPLADE model is ``[positions, hidden] × [hidden, vocab]``, and after the ReLU
    only a few dozen of the ~30,000 maxima survive. :meth:`candidates` runs one float32 matrix product (numpy's
    BLAS, in the calling thread) over many texts' positions at once, the weight matrix streamed once for all of
    them, and keeps each text's entries whose computed logit exceeds ``-margin``; the margin bounds the product's
    rounding error (``|fl(h·w) - h·w| <= γ_K ||h|| ||w||`` for any summation order, blocking or thread count),
    so no positive entry is missed. :meth:`exact` then computes the candidates of one text in float64 from the
    float32 inputs (:func:`~splade_pyserini.query_kernels.exact_maxima`): the products are exact and are added in
    one fixed order, so the result depends on neither the batch, the thread count nor the BLAS.
    """

    #: Chunks of at most this many positions are screened by a compiled loop in the calling thread; larger ones by
    #: the BLAS, whose threads pay off on a product that large.
    SMALL_ROWS = 64

    def __init__(self, weight: np.ndarray, bias: np.ndarray, block_width: int = 1024, ids: np.ndarray | None = None):
        self.weight = np.ascontiguousarray(weight, dtype=np.float32)  # [vocab, hidden]
        self.bias = np.ascontiguousarray(bias, dtype=np.float32)
        self.ids = ids  # the vocabulary ids of the rows, when this screens part of a vocabulary (see restricted)
        self.block_width = block_width  # vocabulary entries per product: their logits stay in the cache
        hidden = self.weight.shape[1]
        u = 2.0 ** -24  # float32 unit roundoff
        gamma = (hidden + 2) * u / (1 - (hidden + 2) * u)  # error of a (hidden)-term dot product plus the bias
        self._margin_per_norm = 2 * gamma * float(np.linalg.norm(self.weight, axis=1).max())
        self._margin_bias = 2 * gamma * float(np.abs(self.bias).max())

    def restricted(self, ids: np.ndarray) -> "ScreenedProjection":
        """The same projection over the vocabulary entries ``ids`` only (ascending): the rest are never computed.

        A searcher needs no weight for a term that its index does not hold (it matches nothing)."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        return ScreenedProjection(self.weight[ids], self.bias[ids], self.block_width, ids=ids)

    def candidates(self, hidden: Sequence[np.ndarray], most_rows: int = 4096) -> list[np.ndarray]:
        """Per text (``[length, hidden]`` float32), the sorted rows that may have a positive maximum (row ``r`` is
        vocabulary id ``r``, or ``ids[r]`` for a restricted projection). The texts' positions go through the
        product together, ``most_rows`` at a time, unpadded."""
        out = [np.zeros(0, np.int64) for _ in hidden]
        texts = [i for i, h in enumerate(hidden) if len(h)]
        start = 0
        while start < len(texts):
            stop, rows = start, 0
            while stop < len(texts) and (stop == start or rows + len(hidden[texts[stop]]) <= most_rows):
                rows += len(hidden[texts[stop]])
                stop += 1
            chunk = texts[start:stop]
            for i, found in zip(chunk, self._chunk_candidates([hidden[i] for i in chunk])):
                out[i] = found
            start = stop
        return out

    def _chunk_candidates(self, hidden: list[np.ndarray]) -> list[np.ndarray]:
        rows = np.ascontiguousarray(np.concatenate(hidden), dtype=np.float32)
        starts = np.zeros(len(hidden), dtype=np.int64)
        np.cumsum([len(h) for h in hidden[:-1]], out=starts[1:])
        norm = np.maximum.reduceat(np.linalg.norm(rows, axis=1), starts)
        thresholds = (-(norm * self._margin_per_norm + self._margin_bias + 1e-6)).astype(np.float32)[:, None]
        if len(rows) <= self.SMALL_ROWS:  # a query or two: a compiled loop in this thread (see screen_mask)
            from .query_kernels import screen_mask

            text, entry = np.nonzero(screen_mask(rows, starts, self.weight, self.bias, thresholds[:, 0]))
            bounds = np.searchsorted(text, np.arange(len(hidden) + 1))
            return [entry[bounds[j]:bounds[j + 1]].astype(np.int64) for j in range(len(hidden))]
        text_parts, id_parts = [], []
        for first in range(0, len(self.weight), self.block_width):
            last = min(len(self.weight), first + self.block_width)
            top = np.maximum.reduceat(rows @ self.weight[first:last].T, starts, axis=0)
            top += self.bias[first:last]
            text, entry = np.nonzero(top > thresholds)
            text_parts.append(text)
            id_parts.append(entry + first)
        text, entry = np.concatenate(text_parts), np.concatenate(id_parts)
        order = np.lexsort((entry, text))
        text, entry = text[order], entry[order].astype(np.int64)
        bounds = np.searchsorted(text, np.arange(len(hidden) + 1))
        return [entry[bounds[j]:bounds[j + 1]] for j in range(len(hidden))]

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
