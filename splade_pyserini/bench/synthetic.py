"""Synthetic SPLADE-like vectors and queries for the index and search benchmarks, with fitted shapes.

The default shapes are fitted to real SPLADE output: splade-tiny (the embedded model) on Cranfield and Vaswani,
quantised as the package does (``round-half-away-from-zero(w * 51.2)``), measured with ``scipy.stats`` fits
(``floc=0``) on every posting and every query term:

* **Impact per posting** (document side): Weibull, shape ``k = 1.16``, scale ``lambda = 33.8`` (Cranfield: 320,396
  postings, mean 32.1, median 24, max 133, KS distance 0.036; Vaswani: 991,961 postings, mean 35.2, k = 1.16,
  lambda = 37.1, KS 0.044; gamma fits about as well, log-normal worse, KS 0.07), drawn as
  ``clip(round(x), 1, 140)`` (140 ~ splade-tiny's largest impact; log(1 + relu) caps SPLADE weights).
* **Document length** (distinct terms): log-normal, ``sigma = 0.35`` (Cranfield's fit: median 217, mean 229,
  KS 0.042), with the mean set by ``terms`` (default 150: MS MARCO passages are shorter than Cranfield abstracts).
  150 terms x mean impact ~32 gives ~4.8k impact units a passage, close to the ~5.3k per passage of SPLADE-v3 on
  MS MARCO that REFERENCE.md gives (46.9 billion terms over 8.84M passages in Anserini's index).
* **Query impacts**: Weibull ``k = 1.15``, ``lambda = 39`` (Cranfield queries k = 1.07, lambda = 0.66 x 51.2 = 34;
  Vaswani k = 1.24, lambda = 0.87 x 51.2 = 45), clipped to 1..140.
* **Query length**: log-normal ``sigma = 0.45`` (Cranfield 0.54, Vaswani 0.37), mean set by ``terms`` (default 30;
  splade-tiny gives 22 on Vaswani's and 58 on Cranfield's longer queries).

Terms are Zipf-distributed over a BERT-like vocabulary (documents exponent 1.0; queries 0.8 and skipping the 100 most
frequent terms, as a SPLADE query rarely weighs stopwords). ``weights="loguniform"`` (integers 1..``max_weight``,
log-uniform: mean ~52 for 300) and ``"uniform"`` remain as options, with fixed lengths (the old generator's shapes).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ..encoder import quantize as quantize_weight  # the package's one quantiser (one weight gives an int)
from ..errors import SpladeError

Vector = Mapping[str, float]

# The fits (see the module docstring).
DOC_WEIBULL_SHAPE, DOC_WEIBULL_SCALE = 1.16, 33.8
QUERY_WEIBULL_SHAPE, QUERY_WEIBULL_SCALE = 1.15, 39.0
FITTED_MAX_IMPACT = 140
DOC_LENGTH_SIGMA = 0.35
QUERY_LENGTH_SIGMA = 0.45
WEIGHTS = ("fitted", "loguniform", "uniform")


_ONSETS = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st", "tr", "pl"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ea"]
_CODAS = ["", "n", "r", "s", "t", "l", "m", "ng", "ck", "x"]


def synthetic_vocab(size: int = 30_000, seed: int = 0) -> list[str]:
    """A BERT-like vocabulary: pseudo-words, ``##`` word pieces, digits and a few punctuation marks."""
    rng = np.random.default_rng(seed)
    vocab: list[str] = list(".,;:!?'\"()-") + [str(i) for i in range(100)]
    seen = set(vocab)
    while len(vocab) < size:
        n = int(rng.integers(1, 4))
        word = "".join(_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                       + _CODAS[rng.integers(len(_CODAS))] for _ in range(n))
        if rng.random() < 0.25:
            word = "##" + word
        if word and word not in seen:
            seen.add(word)
            vocab.append(word)
    return vocab


def _zipf_cdf(vocab_size: int, exponent: float) -> np.ndarray:
    cdf = np.cumsum(np.arange(1, vocab_size + 1, dtype=np.float64) ** -exponent)
    return cdf / cdf[-1]


def _zipf_terms(rng, cdf: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return np.searchsorted(cdf, rng.random((rows, cols)), side="right").clip(0, len(cdf) - 1)


def _log_uniform_weights(rng, n: int, max_weight: int) -> np.ndarray:
    """Integers in [1, max_weight], log-uniform (many small impacts, a few large ones)."""
    return np.minimum(max_weight, np.floor(np.exp(rng.random(n) * math.log(max_weight + 1)))).astype(np.int64)


def _weibull_impacts(rng, n: int, shape: float, scale: float, max_weight: int) -> np.ndarray:
    return np.clip(np.rint(scale * rng.weibull(shape, n)), 1, max_weight).astype(np.int64)


def _impacts(rng, n: int, weights: str, max_weight: int | None, query: bool = False) -> np.ndarray:
    if weights == "fitted":
        shape, scale = (QUERY_WEIBULL_SHAPE, QUERY_WEIBULL_SCALE) if query else (DOC_WEIBULL_SHAPE, DOC_WEIBULL_SCALE)
        return _weibull_impacts(rng, n, shape, scale, max_weight or FITTED_MAX_IMPACT)
    if weights == "loguniform":
        return _log_uniform_weights(rng, n, max_weight or 300)
    if weights == "uniform":
        return rng.integers(1, (max_weight or 300) + 1, n)
    raise SpladeError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")


def _lengths(rng, n: int, mean: int, sigma: float, fitted: bool) -> np.ndarray:
    """Lengths with the given mean: log-normal (``fitted``) or all equal; at least 1, at most 4x the mean."""
    if not fitted:
        return np.full(n, mean, dtype=np.int64)
    mu = math.log(mean) - sigma * sigma / 2
    return np.clip(np.rint(rng.lognormal(mu, sigma, n)), 1, 4 * mean).astype(np.int64)


def _distinct_terms(rng, cdf: np.ndarray, lengths: np.ndarray, offset: int = 0) -> list[np.ndarray]:
    """For each row, ``lengths[i]`` distinct Zipf terms in random order (a term's chance grows with its frequency)."""
    n, vocab = len(lengths), len(cdf)
    draws = (lengths * 2 + 8).astype(np.int64)  # twice the length: enough distinct terms even with Zipf repeats
    row_of = np.repeat(np.arange(n, dtype=np.int64), draws)
    terms = np.searchsorted(cdf, rng.random(len(row_of)), side="right").clip(0, vocab - 1)
    keys = np.unique(row_of * vocab + terms)  # distinct (row, term), sorted by row
    rows, terms = keys // vocab, keys % vocab
    order = np.lexsort((rng.random(len(keys)), rows))  # a random order within each row
    rows, terms = rows[order], terms[order]
    starts = np.searchsorted(rows, np.arange(n + 1))
    return [terms[starts[i]:min(starts[i] + int(lengths[i]), starts[i + 1])] + offset for i in range(n)]


def synthetic_vectors(out_dir: str | os.PathLike, docs: int, terms: int = 150, max_weight: int | None = None,
                      shards: int = 4, seed: int = 0, vocab_size: int = 30_000,
                      float_scale: float | None = None, weights: str = "fitted") -> dict:
    """Write ``docs`` SPLADE-like documents as JsonVectorCollection shards ``part-NNNNN.jsonl`` in ``out_dir``.

    ``weights="fitted"`` (default): Weibull impacts and log-normal lengths of mean ``terms`` fitted to splade-tiny
    (module docstring), impacts at most ``max_weight`` (default 140). ``"loguniform"`` (1..``max_weight``, default
    300; mean ~52) or ``"uniform"``: exactly ``terms`` terms a document. With ``float_scale``, weights are written as
    floats ``w / scale`` plus noise (some exactly on .5 boundaries), to exercise quantisation. Returns counts.
    """
    if weights not in WEIGHTS:
        raise SpladeError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = synthetic_vocab(vocab_size)  # one vocabulary for every seed: synthetic_queries draws from it too
    quoted = [json.dumps(t) + ": " for t in vocab]
    cdf = _zipf_cdf(len(vocab), 1.0)
    shards = max(1, min(shards, docs)) if docs else 1
    files = [open(out / f"part-{s:05d}.jsonl", "w", encoding="utf-8") for s in range(shards)]
    numbers = [str(i) for i in range(max(max_weight or FITTED_MAX_IMPACT, 300) + 1)]
    postings = 0
    total = 0
    try:
        block = 2000
        for start in range(0, docs, block):
            n = min(block, docs - start)
            lengths = _lengths(rng, n, terms, DOC_LENGTH_SIGMA, weights == "fitted")
            rows = _distinct_terms(rng, cdf, lengths)
            impacts_all = _impacts(rng, int(sum(len(r) for r in rows)), weights, max_weight)
            at = 0
            for i, row in enumerate(rows):
                impacts = impacts_all[at:at + len(row)]
                at += len(row)
                if float_scale:
                    noise = rng.uniform(-0.49, 0.49, len(row))
                    noise[rng.random(len(row)) < 0.1] = 0.5  # exactly on the rounding boundary
                    values = [repr((w + e) / float_scale) for w, e in zip(impacts.tolist(), noise.tolist())]
                else:
                    values = [numbers[w] for w in impacts.tolist()]
                body = ", ".join([quoted[t] + v for t, v in zip(row.tolist(), values)])
                files[(start + i) % shards].write(f'{{"id": "doc{start + i}", "contents": "", "vector": {{{body}}}}}\n')
                postings += len(row)
                total += int(impacts.sum())
    finally:
        for f in files:
            f.close()
    return {"docs": docs, "shards": shards, "postings": postings, "impact_sum": total, "vocab": len(vocab),
            "weights": weights}


def synthetic_queries(n: int, terms: int = 30, max_weight: int | None = None, seed: int = 1,
                      vocab_size: int = 30_000, float_scale: float | None = None,
                      weights: str = "fitted") -> dict[str, dict[str, float]]:
    """``n`` SPLADE-like queries over the same vocabulary as :func:`synthetic_vectors` (``weights`` as there; with
    ``"fitted"``, log-normal lengths of mean ``terms``; otherwise ``terms`` draws, repeats merged)."""
    if weights not in WEIGHTS:
        raise SpladeError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    rng = np.random.default_rng(seed)
    vocab = synthetic_vocab(vocab_size, 0)
    skip = min(100, len(vocab) // 10)  # like stopwords, the most frequent terms rarely weigh in a SPLADE query
    cdf = _zipf_cdf(len(vocab) - skip, 0.8)
    if weights == "fitted":
        rows = _distinct_terms(rng, cdf, _lengths(rng, n, terms, QUERY_LENGTH_SIGMA, True), offset=skip)
    else:
        rows = [np.array(list(dict.fromkeys(r.tolist()))) for r in _zipf_terms(rng, cdf, n, terms) + skip]
    queries: dict[str, dict[str, float]] = {}
    for i, row in enumerate(rows):
        impacts = _impacts(rng, len(row), weights, max_weight, query=True).tolist()
        if float_scale:
            queries[f"q{i}"] = {vocab[t]: (w + float(rng.uniform(-0.49, 0.49))) / float_scale
                                for t, w in zip(row.tolist(), impacts)}
        else:
            queries[f"q{i}"] = {vocab[t]: int(w) for t, w in zip(row.tolist(), impacts)}
    return queries


def round_vectors(src_dir: str | os.PathLike, dst_dir: str | os.PathLike, scale: float) -> None:
    """Copy JsonVectorCollection shards with every weight replaced by its quantised integer (zeros dropped)."""
    dst = Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    for shard in sorted(Path(src_dir).glob("*.jsonl")):
        with open(shard, encoding="utf-8") as fin, open(dst / shard.name, "w", encoding="utf-8") as fout:
            for line in fin:
                if not line.strip():
                    continue
                obj = json.loads(line)
                obj["vector"] = {t: q for t, w in obj["vector"].items() if (q := quantize_weight(w, scale)) > 0}
                fout.write(json.dumps(obj) + "\n")
