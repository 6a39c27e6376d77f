"""Exhaustive SPLADE search in memory, for training data and experiments (no index).

:class:`SparseIndex` holds the SPLADE vectors of a corpus in a SciPy CSR matrix and searches them by exhaustive
sparse dot products. Weights are quantized as the Anserini impact index stores them (``round(w * scale)``, the
card's scale), queries too, so the ranking is the one impact search gives, ties ranked by
:func:`splade_pyserini.runs.ranked`. It suits collections of up to some tens of thousands of documents (Cranfield,
Vaswani); use the Anserini pipeline beyond that. BM25 is Anserini's (:mod:`splade_pyserini.retrieve.bm25`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..runs import Run, ranked


def row_top_k(scores: np.ndarray, ids: Sequence[str], k: int) -> dict[str, float]:
    """Best ``k`` of a score row in :func:`~splade_pyserini.runs.ranked` order; zero scores (no match) left out.
    Every document tied with the ``k``-th is a candidate, so the tie rule, not ``argpartition``, picks among them."""
    k = min(k, len(scores))
    if k <= 0:
        return {}
    if k < len(scores):
        kth = np.partition(-scores, k - 1)[k - 1]
        idx = np.flatnonzero(-scores <= kth)
    else:
        idx = np.arange(len(scores))
    return dict(ranked({ids[i]: float(scores[i]) for i in idx if scores[i] > 0}, k))


def _csr(batch, vocab_size: int, scale: float | None):
    from scipy.sparse import csr_matrix

    from ..encoder import quantize

    weights = batch.weights.astype(np.float64) if scale is None else quantize(batch.weights, scale).astype(np.float64)
    return csr_matrix((weights, batch.terms.astype(np.int64), batch.offsets), shape=(len(batch), vocab_size))


class SparseIndex:
    """SPLADE document vectors of a corpus, searched exhaustively."""

    def __init__(self, encoder, docs: Mapping[str, str] | None = None, quantized: bool = True, progress: bool = False,
                 chunk: int = 512, batch=None, ids: Sequence[str] | None = None):
        self.encoder = encoder
        self.scale = encoder.card.scale if quantized else None
        self.vocab_size = encoder.vocab_size
        if batch is None:
            from ..encoder import SparseBatch

            ids = list(docs)
            parts = []
            rng = range(0, len(ids), chunk)
            if progress:
                from tqdm.auto import tqdm

                rng = tqdm(rng, desc="encode corpus", unit="chunk", leave=False)
            for start in rng:
                parts.append(encoder.encode([docs[d] for d in ids[start:start + chunk]], "document"))
            batch = _concat(parts) if parts else SparseBatch(np.zeros(1, np.int64), np.zeros(0, np.int32),
                                                             np.zeros(0, np.float32))
        self.ids = list(ids)
        self.batch = batch
        self.matrix = _csr(batch, self.vocab_size, self.scale).T.tocsr()  # [vocab, docs]

    def save(self, path) -> None:
        np.savez_compressed(path, offsets=self.batch.offsets, terms=self.batch.terms, weights=self.batch.weights,
                            ids=np.asarray(self.ids, dtype=str))

    @classmethod
    def load(cls, path, encoder, quantized: bool = True) -> "SparseIndex":
        from ..encoder import SparseBatch

        z = np.load(path)
        batch = SparseBatch(z["offsets"], z["terms"], z["weights"])
        return cls(encoder, quantized=quantized, batch=batch, ids=[str(x) for x in z["ids"]])

    def query_matrix(self, texts: Sequence[str]):
        return _csr(self.encoder.encode(list(texts), "query"), self.vocab_size, self.scale)

    def search(self, queries: Mapping[str, str], k: int = 1000) -> Run:
        qids = list(queries)
        scores = (self.query_matrix([queries[q] for q in qids]) @ self.matrix).toarray()
        return {q: row_top_k(scores[i], self.ids, k) for i, q in enumerate(qids)}

    def score_pairs(self, pairs: Sequence[tuple[str, str]], queries: Mapping[str, str]) -> list[float]:
        qids = list(dict.fromkeys(q for q, _ in pairs))
        qrow = {q: i for i, q in enumerate(qids)}
        drow = {d: i for i, d in enumerate(self.ids)}
        scores = (self.query_matrix([queries[q] for q in qids]) @ self.matrix).toarray()
        return [float(scores[qrow[q], drow[d]]) for q, d in pairs]


def _concat(parts):
    from ..encoder import SparseBatch

    offsets = [np.zeros(1, np.int64)]
    base = 0
    for p in parts:
        offsets.append(p.offsets[1:] + base)
        base += int(p.offsets[-1])
    return SparseBatch(np.concatenate(offsets), np.concatenate([p.terms for p in parts]),
                       np.concatenate([p.weights for p in parts]))
