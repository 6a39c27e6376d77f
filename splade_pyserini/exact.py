"""Integer weights that are the float64 formula's, on any CPU, thread count or number of callers.

A vector's integer weights are ``round(w × scale)`` (halves away from zero) of ``w = max over positions of
log1p(relu(logit))``. Computed in float32, ``w`` carries a rounding error that depends on the machine (kernel
choice, FMA, vector width, BLAS threads, batch padding); a weight whose ``w × scale`` lies within that error of a
rounding boundary ``n + ½`` can round either way, so the integers would differ between machines. Here:

* the fast float32 path computes every text; a text is *flagged* when any of its weights has
  ``|frac(w × scale) − ½| < DELTA`` (:func:`rows_near_boundary`);
* a flagged text is recomputed alone in float64 (:class:`Float64Forward`: a float64 copy of the model, unpadded)
  at the vocabulary entries its float32 vector holds, and those float64 weights replace the float32 ones
  (:func:`exact_batch`, the last step of a batch of queries, or of documents with ``encode --exact``).

Why that gives the float64 formula's integers, given ``|scale × (w32 − w64)| < DELTA`` for every entry:

* an unflagged weight is at least DELTA from every boundary, so ``w64 × scale`` lies on the same side of it;
* an entry the float32 vector does not hold (its float32 logit ≤ 0, or screened out as below ``−margin``) has
  ``w32 = 0``, which is ½ from the nearest boundary, so ``w64 × scale < DELTA < ½`` rounds to 0 as well: only
  the entries the float32 vector holds can have a non-zero float64 integer, and a flagged text recomputes them all;
* a float64 weight is turned into the float32 that the vectors carry by :func:`float32_rounding_as`, which keeps
  its rounding (a plain cast can move a value within 2⁻²⁴ relative of a boundary across it).

The bound, in units of one integer step. ``max |scale × (w32 − w64)|`` measured with ``python -m
splade_pyserini.exact COLLECTION...`` (splade-tiny, scale 51.2, every query of Vaswani and Cranfield and their first
300 documents with the BLAS-based query kernels this replaced, 30 documents with the shipped ones) is MEASURED =
2.8e-4 (queries 2.8e-4, documents 2.6e-4); the test suite re-checks that every query and 300 ``--exact`` documents come
out identical under other kernels (``VARIANTS``: ``ATEN_CPU_CAPABILITY=default|avx2|avx512``,
``OPENBLAS_CORETYPE=Haswell|SkylakeX|Zen|Prescott``, ``NUMBA_CPU_NAME=generic`` with one thread). DELTA = 5e-3 is
about SAFETY = 18 times that: float32 rounding errors of different kernels are of the same size (a different summation
order, FMA or not), so a kernel 18 times less accurate than the measured ones is not a plausible CPU. A deeper or
wider model has larger float32 errors (roughly with ``√(layers × hidden)``); measure it with the command above
before relying on DELTA for it. A wide DELTA costs only speed: about ``2 × DELTA`` of weights are flagged, and a
text with any flagged weight is recomputed.
"""

from __future__ import annotations

import copy
import threading
from typing import Sequence

import numpy as np

MEASURED = 2.8e-4  # max |scale × (w32 − w64)| over the measurements in the module docstring
DELTA = 5e-3
SAFETY = DELTA / MEASURED  # about 18


def near_boundary(weights: np.ndarray, scale: float, delta: float = DELTA) -> np.ndarray:
    """Which weights have ``w × scale`` within ``delta`` of a rounding boundary ``n + ½``."""
    x = np.asarray(weights, dtype=np.float64) * scale
    return np.abs(x - np.floor(x) - 0.5) < delta


def rows_near_boundary(offsets: np.ndarray, weights: np.ndarray, scale: float, delta: float = DELTA) -> np.ndarray:
    """Indices of the rows (CSR ``offsets``) holding a weight near a rounding boundary."""
    near = near_boundary(weights, scale, delta)
    if not near.any():
        return np.zeros(0, np.int64)
    return np.unique(np.searchsorted(offsets, np.flatnonzero(near), side="right") - 1)


def exact_batch(rows: Sequence[tuple[np.ndarray, np.ndarray]], ids: Sequence[Sequence[int]], forward: "Float64Forward",
                scale: float, parallel: bool = True):
    """A :class:`~splade_pyserini.encoder.SparseBatch` of float32 weights whose integers at ``scale`` are the float64
    formula's: ``rows`` are the float32 path's ``(term ids, weights)`` of the texts tokenised as ``ids``; every text
    with a weight near a rounding boundary is recomputed alone in float64 at the entries it holds (several at once
    when ``parallel``), and each float64 weight becomes the float32 that rounds like it."""
    from .encoder import SparseBatch
    from .query_encoder import map_alone

    rows = list(rows)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(t) for t, _ in rows], out=offsets[1:])
    weights = np.concatenate([w for _, w in rows]) if rows else np.zeros(0)

    def recompute(i):
        cols = rows[i][0].astype(np.int64)
        top = forward.maxima(ids[i], cols)
        keep = top > 0
        return cols[keep].astype(np.int32), np.log1p(top[keep])

    flagged = rows_near_boundary(offsets, weights, scale).tolist()
    for i, row in zip(flagged, map_alone(recompute, flagged, parallel=parallel)):
        rows[i] = row
    out = SparseBatch.from_rows([(t, np.asarray(w, dtype=np.float64)) for t, w in rows])
    out.weights = float32_rounding_as(out.weights, scale)
    return out


def float32_rounding_as(weights64: np.ndarray, scale: float) -> np.ndarray:
    """float32 weights, each the nearest to its float64 weight that rounds (``round(w × scale)``) the same way."""
    from .encoder import quantize

    w64 = np.asarray(weights64, dtype=np.float64)
    w32 = w64.astype(np.float32)
    want = quantize(w64, scale)
    for _ in range(64):  # each step moves the stray ones one float32 towards their float64 value
        bad = quantize(w32, scale) != want
        if not bad.any():
            return w32
        w32[bad] = np.nextafter(w32[bad], np.where(w32[bad] < w64[bad], np.inf, -np.inf).astype(np.float32))
    raise AssertionError("float32_rounding_as did not converge")


class Float64Forward:
    """One text alone (unpadded) through a float64 copy of a masked LM: ``max over positions of the logits`` at
    chosen vocabulary entries. The copy is made on first use (thread-safe) and only read afterwards, so calls
    may run on several threads at once. BERT and DistilBERT models on the CPU go through the compiled one-text
    forward with float64 parameters (:class:`~splade_pyserini.query_kernels.OneTextForward`), which releases the
    interpreter lock; other models through a float64 torch copy."""

    def __init__(self, model):
        self._source = model
        self._lock = threading.Lock()
        self._parts = None

    def _model(self):
        if self._parts is None:
            with self._lock:
                if self._parts is None:
                    import torch

                    from .encoder import mlm_head
                    from .query_kernels import OneTextForward

                    if OneTextForward.supports(self._source):
                        _, weight, bias = mlm_head(self._source)
                        self._parts = (OneTextForward(self._source, np.float64), weight.detach().numpy(),
                                       bias.detach().numpy())
                    else:
                        model = copy.deepcopy(self._source).to(dtype=torch.float64).eval()
                        self._parts = (model, mlm_head(model))
        return self._parts

    def maxima(self, ids: Sequence[int], cols: np.ndarray) -> np.ndarray:
        """float64 ``max over positions l of logit[l, v]`` for each vocabulary id ``v`` in ``cols``."""
        import torch

        cols = np.asarray(cols, dtype=np.int64)
        if len(self._model()) == 3:  # compiled: the float64 hidden states, then exact float64 sums at cols
            from .query_kernels import exact_maxima

            forward, weight, bias = self._parts
            return exact_maxima(forward.head_input(ids), weight, bias, cols)
        model, head = self._parts
        device = next(model.parameters()).device
        cols = np.asarray(cols, dtype=np.int64)
        with torch.inference_mode():
            input_ids = torch.as_tensor([list(ids)], device=device)
            index = torch.as_tensor(cols, device=device)
            if head is None:  # unknown architecture: the model's own logits
                top = model(input_ids=input_ids).logits[0][:, index].amax(dim=0)
            else:
                transform, weight, bias = head
                h = transform(model.base_model(input_ids=input_ids).last_hidden_state[0])
                top = torch.matmul(h, weight[index].t()).amax(dim=0) + bias[index]
            return top.cpu().numpy().astype(np.float64)


def rounding_error(encoder, texts: Sequence[str], kind: str, scale: float | None = None) -> float:
    """``max |scale × (w32 − w64)|`` over every text and vocabulary entry: the float32 path's weights (before any
    exact recomputation) against a full float64 forward of each text alone."""
    from .encoder import bag_of_words

    scale = encoder.card.scale if scale is None else scale
    max_length = encoder.card.doc_max_length if kind == "document" else encoder.card.query_max_length
    ids = encoder.tokenize(list(texts), max_length)
    batch = encoder.encode_ids(ids, kind, exact=False)
    everything = np.arange(encoder.vocab_size)
    worst = 0.0
    own = bag_of_words(ids, encoder.vocab_size, encoder.special_ids).bool().numpy()
    for i, x in enumerate(ids):
        top = encoder.float64.maxima(x, everything)
        keep = top > 0
        if kind == "query" and encoder.card.variant == "lexical":
            keep &= own[i]
        w64 = np.zeros(encoder.vocab_size)
        w64[keep] = np.log1p(top[keep])
        w32 = np.zeros(encoder.vocab_size)
        terms, weights = batch.row(i)
        w32[terms] = weights
        worst = max(worst, float(np.abs(w32 - w64).max()) * scale)
    return worst


VARIANTS = {  # simulated machines: torch's CPU kernels, OpenBLAS's core type, numba's target CPU
    "native": {},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "aten-avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "aten-avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
    "openblas-haswell": {"OPENBLAS_CORETYPE": "Haswell"},
    "openblas-skylakex": {"OPENBLAS_CORETYPE": "SkylakeX"},
    "openblas-zen": {"OPENBLAS_CORETYPE": "Zen"},
    "openblas-prescott": {"OPENBLAS_CORETYPE": "Prescott"},
    "generic-1-thread": {"ATEN_CPU_CAPABILITY": "default", "OPENBLAS_CORETYPE": "Prescott",
                         "NUMBA_CPU_NAME": "generic", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
}


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux), to skip kernel variants it cannot run."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def runnable_variants() -> dict[str, dict[str, str]]:
    """:data:`VARIANTS` that this CPU can run (AVX-512 kernels only with avx512f; SkylakeX is AVX-512 too)."""
    flags = cpu_flags()
    return {name: env for name, env in VARIANTS.items()
            if "avx512f" in flags or not any("512" in v or v == "SkylakeX" for v in env.values())}


def _main(argv=None) -> int:
    """Measure the float32 path's rounding error: ``python -m splade_pyserini.exact COLLECTION... [--docs N]``
    (BEIR folders); each kernel variant in its own subprocess, printing one line per variant and the maximum."""
    import argparse
    import json
    import os
    import subprocess
    import sys

    parser = argparse.ArgumentParser(prog="python -m splade_pyserini.exact")
    parser.add_argument("collections", nargs="+")
    parser.add_argument("--encoder", default="splade-tiny")
    parser.add_argument("--docs", type=int, default=300, help="documents per collection")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        import itertools

        from .corpus import read_corpus
        from .encoder import load_encoder
        from .topics import read_topics

        encoder = load_encoder(args.encoder, device="cpu")
        out = {}
        for c in args.collections:
            queries = list(read_topics(os.path.join(c, "queries.jsonl"), judged_only=False).values())
            docs = [d.text for d in itertools.islice(read_corpus(os.path.join(c, "corpus.jsonl")), args.docs)]
            out[os.path.basename(c.rstrip("/"))] = {"queries": rounding_error(encoder, queries, "query"),
                                                    "documents": rounding_error(encoder, docs, "document")}
        print(json.dumps(out))
        return 0
    worst = 0.0
    for name, env in runnable_variants().items():
        cmd = [sys.executable, "-m", "splade_pyserini.exact", *args.collections, "--encoder", args.encoder,
               "--docs", str(args.docs), "--child"]
        done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        worst = max([worst] + [v for r in result.values() for v in r.values()])
        print(name, json.dumps(result), flush=True)
    print(f"max |scale * (w32 - w64)| = {worst:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
