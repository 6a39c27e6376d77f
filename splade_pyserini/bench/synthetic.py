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


class _Zipf:
    """Term ids ``0..size-1`` with chance ``(id + 1) ** -exponent``, from uniform draws in [0, 1) by the inverse
    cdf (``searchsorted(cdf, u, side="right")``), sped up by a guide table: the answers at ``b / 2**20`` bound those
    of the draws in ``[b, b + 1) / 2**20``, and only the few draws whose bounds differ are searched."""

    GUIDE_BITS = 20

    def __init__(self, size: int, exponent: float):
        cdf = np.cumsum(np.arange(1, size + 1, dtype=np.float64) ** -exponent)
        self.cdf = cdf / cdf[-1]
        self.size = size
        edges = np.arange((1 << self.GUIDE_BITS) + 1, dtype=np.float64) / (1 << self.GUIDE_BITS)  # exact
        self.guide = np.searchsorted(self.cdf, edges, side="right").astype(np.int32)

    def terms(self, u: np.ndarray) -> np.ndarray:
        bucket = (u * (1 << self.GUIDE_BITS)).astype(np.int64)  # exact: u is a multiple of 2**-53
        low, high = self.guide[bucket], self.guide[bucket + 1]
        out = low.astype(np.int64)
        unsure = np.flatnonzero(low != high)
        out[unsure] = np.searchsorted(self.cdf, u[unsure], side="right")
        return out.clip(0, self.size - 1)


def _zipf_terms(rng, zipf: _Zipf, rows: int, cols: int) -> np.ndarray:
    return zipf.terms(rng.random(rows * cols)).reshape(rows, cols)


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


def _distinct_terms_flat(rng, zipf: _Zipf, lengths: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For each row, ``lengths[i]`` distinct Zipf terms in random order (a term's chance grows with its frequency),
    all rows concatenated, and each row's count (fewer than asked only if the draws held too few distinct terms)."""
    n, vocab = len(lengths), zipf.size
    draws = (lengths * 2 + 8).astype(np.int64)  # twice the length: enough distinct terms even with Zipf repeats
    row_of = np.repeat(np.arange(n, dtype=np.int64), draws)
    terms = zipf.terms(rng.random(len(row_of)))
    keys = np.sort(row_of * vocab + terms)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys  # distinct (row, term)
    rows, terms = keys // vocab, keys % vocab
    # a random order within each row: sort by (row, uniform draw); rng.random() is a multiple of 2**-53, so the
    # pair packs exactly into one uint64 (row < 2**11), and a stable sort breaks equal draws by position
    shuffle = (rng.random(len(keys)) * 2.0 ** 53).astype(np.uint64)
    if n >= 1 << 11:
        order = np.lexsort((shuffle, rows))
    else:
        order = np.argsort((rows.astype(np.uint64) << np.uint64(53)) | shuffle, kind="stable")
    rows, terms = rows[order], terms[order]
    starts = np.searchsorted(rows, np.arange(n + 1))
    keep = np.arange(len(rows)) - starts[rows] < lengths[rows]
    counts = np.minimum(starts[1:] - starts[:-1], lengths)
    return terms[keep] + offset, counts


def _distinct_terms(rng, zipf: _Zipf, lengths: np.ndarray, offset: int = 0) -> list[np.ndarray]:
    """:func:`_distinct_terms_flat` split into one array per row."""
    terms, counts = _distinct_terms_flat(rng, zipf, lengths, offset)
    return np.split(terms, np.cumsum(counts)[:-1]) if len(counts) else []


class _Pieces:
    """Strings as one UTF-8 byte array with each string's offset and length, to assemble text by index arrays."""

    def __init__(self, strings: list[str]):
        encoded = [t.encode("utf-8") for t in strings]
        self.lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        self.starts = np.cumsum(self.lengths) - self.lengths
        self.data = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def plus(self, other: "_Pieces") -> "_Pieces":
        both = _Pieces([])
        both.lengths = np.concatenate((self.lengths, other.lengths))
        both.starts = np.concatenate((self.starts, other.starts + len(self.data)))
        both.data = np.concatenate((self.data, other.data))
        return both

    def join(self, ids: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The strings ``ids`` concatenated, and where each one starts in the result."""
        lengths = self.lengths[ids]
        at = np.cumsum(lengths) - lengths
        total = int(lengths.sum())
        kind = np.int32 if max(total, len(self.data)) < 1 << 31 else np.int64  # half the memory traffic
        index = np.repeat((self.starts[ids] - at).astype(kind), lengths) + np.arange(total, dtype=kind)
        return self.data[index].tobytes(), at


def _json_lines(fixed: _Pieces, block: _Pieces, terms: np.ndarray, value_ids: np.ndarray, counts: np.ndarray,
                separator: int) -> tuple[bytes, np.ndarray]:
    """JsonVectorCollection lines of a block of documents, and where each line starts: ``fixed`` holds the quoted
    terms (``"term": ``), the weights and, at ``separator`` and ``separator + 1``, ``", "`` and the end of a line;
    ``block`` the documents' line heads, then any per-posting weights; ``terms`` and ``value_ids`` (into ``fixed``
    and then ``block``) give each posting, ``counts`` the postings of each document."""
    n = len(counts)
    firsts = np.cumsum(counts) - counts  # each document's first posting
    heads = np.arange(n) + 3 * firsts  # a line: its head, then (term, weight, separator) per posting
    ids = np.empty(n + 3 * len(terms), dtype=np.int64)
    ids[heads] = len(fixed.lengths) + np.arange(n)
    rows = np.repeat(np.arange(n), counts)
    at = heads[rows] + 1 + 3 * (np.arange(len(terms)) - firsts[rows])
    ids[at] = terms
    ids[at + 1] = value_ids
    ids[at + 2] = separator
    ids[(heads + 3 * counts)[counts > 0]] = separator + 1
    text, starts = fixed.plus(block).join(ids)
    return text, starts[heads]


def synthetic_vectors(out_dir: str | os.PathLike, docs: int, terms: int = 150, max_weight: int | None = None,
                      shards: int = 4, seed: int = 0, vocab_size: int = 30_000,
                      float_scale: float | None = None, weights: str = "fitted") -> dict:
    """Write ``docs`` SPLADE-like documents as JsonVectorCollection shards ``part-NNNNN.jsonl`` in ``out_dir``.

    ``weights="fitted"`` (default): Weibull impacts and log-normal lengths of mean ``terms`` fitted to splade-tiny
    (module docstring), impacts at most ``max_weight`` (default 140). ``"loguniform"`` (1..``max_weight``, default
    300; mean ~52) or ``"uniform"``: exactly ``terms`` terms a document. With ``float_scale``, weights are written as
    floats ``w / scale`` plus noise (some exactly on .5 boundaries), to exercise quantisation. Returns counts.
    Documents are drawn 2,000 at a time (the same seed gives the same files) and each shard's lines of a block are
    written at once.
    """
    if weights not in WEIGHTS:
        raise SpladeError(f"weights must be one of {', '.join(WEIGHTS)}, not {weights!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = synthetic_vocab(vocab_size)  # one vocabulary for every seed: synthetic_queries draws from it too
    quoted = [json.dumps(t) + ": " for t in vocab]
    zipf = _Zipf(len(vocab), 1.0)
    shards = max(1, min(shards, docs)) if docs else 1
    files = [open(out / f"part-{s:05d}.jsonl", "wb") for s in range(shards)]
    numbers = [str(i) for i in range(max(max_weight or FITTED_MAX_IMPACT, 300) + 1)]
    fixed = _Pieces(quoted + numbers + [", ", "}}\n"])  # terms, integer weights, the two separators
    postings = 0
    total = 0
    try:
        block = 2000
        for start in range(0, docs, block):
            n = min(block, docs - start)
            lengths = _lengths(rng, n, terms, DOC_LENGTH_SIGMA, weights == "fitted")
            flat, counts = _distinct_terms_flat(rng, zipf, lengths)
            impacts = _impacts(rng, len(flat), weights, max_weight)
            if float_scale:  # noise drawn document by document, as the weights are read
                noise = []
                for size in counts.tolist():
                    part = rng.uniform(-0.49, 0.49, size)
                    part[rng.random(size) < 0.1] = 0.5  # exactly on the rounding boundary
                    noise.extend(part.tolist())
                values = [repr((w + e) / float_scale) for w, e in zip(impacts.tolist(), noise)]
                value_ids = len(fixed.lengths) + n + np.arange(len(flat))
            else:
                values, value_ids = [], len(vocab) + impacts
            heads = [f'{{"id": "doc{start + i}", "contents": "", "vector": {{' + ("" if c else "}}\n")
                     for i, c in enumerate(counts.tolist())]
            text, line_starts = _json_lines(fixed, _Pieces(heads + values), flat, value_ids, counts,
                                            separator=len(vocab) + len(numbers))
            if shards == 1:
                files[0].write(text)
            else:
                bounds = line_starts.tolist() + [len(text)]
                for s in range(shards):  # document start + i goes to shard (start + i) % shards
                    lines = range((s - start) % shards, n, shards)
                    files[s].write(b"".join(text[bounds[i]:bounds[i + 1]] for i in lines))
            postings += len(flat)
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
    zipf = _Zipf(len(vocab) - skip, 0.8)
    if weights == "fitted":
        rows = _distinct_terms(rng, zipf, _lengths(rng, n, terms, QUERY_LENGTH_SIGMA, True), offset=skip)
    else:
        rows = [np.array(list(dict.fromkeys(r.tolist()))) for r in _zipf_terms(rng, zipf, n, terms) + skip]
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
