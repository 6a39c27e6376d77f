"""Small in-memory first-stage retrieval for training data and experiments (no Java, no index).

* :class:`SimpleBM25` — Lucene's BM25 (``idf = ln(1 + (N - df + 0.5) / (df + 0.5))``,
  ``tf / (tf + k1 (1 - b + b dl / avgdl))``, k1 0.9, b 0.4 as Pyserini's defaults) over a simple analyser:
  lower-case ``[a-z0-9]+`` words, Lucene's 33 English stop words removed, and a plural "S-stemmer"
  (Harman 1991: ``-ies → -y``, ``-es → -e``, ``-s →`` with its exceptions) instead of Lucene's Porter stemmer.
  Scores are therefore close to, not equal to, Anserini's BM25. A query term counted twice counts twice, as
  Lucene's query parser adds one clause per occurrence.
* :class:`SparseIndex` — SPLADE vectors of a corpus in a SciPy CSR matrix, searched by exhaustive sparse dot
  products. Weights are quantised as the Anserini impact index stores them (``round(w * scale)``, the card's
  scale), queries too, so the ranking is the one impact search gives — up to ties.

Both suit collections of up to some tens of thousands of documents (Cranfield, Vaswani); use the Anserini pipeline
beyond that.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

import numpy as np

from ..runs import Run

LUCENE_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these they "
    "this to was will with".split()
)
_WORD = re.compile(r"[a-z0-9]+")


def s_stem(word: str) -> str:
    """Harman's S-stemmer."""
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


def analyse(text: str) -> list[str]:
    return [s_stem(w) for w in _WORD.findall(text.lower()) if w not in LUCENE_STOPWORDS]


def top_k(scores: np.ndarray, ids: Sequence[str], k: int) -> list[tuple[str, float]]:
    """Best ``k`` of a score row, descending; ties by id; zero scores (no match) left out."""
    k = min(k, len(scores))
    if k <= 0:
        return []
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    hits = [(ids[i], float(scores[i])) for i in idx if scores[i] > 0]
    hits.sort(key=lambda h: (-h[1], h[0]))
    return hits


class SimpleBM25:
    def __init__(self, docs: Mapping[str, str], k1: float = 0.9, b: float = 0.4):
        from scipy.sparse import csr_matrix

        self.ids = list(docs)
        self.k1, self.b = k1, b
        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(self.ids), dtype=np.float64)
        for r, docid in enumerate(self.ids):
            counts: dict[int, int] = {}
            terms = analyse(docs[docid])
            lengths[r] = len(terms)
            for t in terms:
                j = vocab.setdefault(t, len(vocab))
                counts[j] = counts.get(j, 0) + 1
            rows.extend([r] * len(counts))
            cols.extend(counts.keys())
            tfs.extend(counts.values())
        self.vocab = vocab
        n = len(self.ids)
        tf = np.asarray(tfs, dtype=np.float64)
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        df = np.bincount(cols_a, minlength=len(vocab)).astype(np.float64)
        self.idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
        avgdl = lengths.mean() if n else 1.0
        norm = k1 * (1.0 - b + b * lengths[rows_a] / max(avgdl, 1e-9))
        weights = self.idf[cols_a] * tf / (tf + norm)
        # [terms, docs]: one query's scores are a sum of a few rows.
        self.matrix = csr_matrix((weights, (cols_a, rows_a)), shape=(len(vocab), n))

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(len(self.ids), dtype=np.float64)
        for t in analyse(query):
            j = self.vocab.get(t)
            if j is not None:
                row = self.matrix.getrow(j)
                out[row.indices] += row.data
        return out

    def search(self, queries: Mapping[str, str], k: int = 1000) -> Run:
        return {qid: dict(top_k(self.scores(text), self.ids, k)) for qid, text in queries.items()}

    def score_pairs(self, pairs: Sequence[tuple[str, str]], queries: Mapping[str, str]) -> list[float]:
        row = {d: i for i, d in enumerate(self.ids)}
        cache: dict[str, np.ndarray] = {}
        out = []
        for q, d in pairs:
            if q not in cache:
                cache.clear()
                cache[q] = self.scores(queries[q])
            out.append(float(cache[q][row[d]]))
        return out


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
        return {q: dict(top_k(scores[i], self.ids, k)) for i, q in enumerate(qids)}

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
