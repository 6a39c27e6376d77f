"""The training data: per step, for each query of the global batch, one positive and n negatives with teacher scores.

Sampling (SPLADE-v3 recipe): each step draws, for each of its queries, one positive uniformly from the query's
positives and ``n`` negatives uniformly from the pool's non-positive candidates — without replacement when the
pool has at least ``n``, with replacement when it has fewer. Only candidates with a teacher score are eligible;
a query left without a scored positive or without a scored negative is dropped (counted in ``dropped``).

Order: the queries are visited epoch by epoch, each epoch a permutation drawn from
``default_rng([seed, epoch])``; step ``t`` takes positions ``t*B .. t*B + B - 1`` of that endless sequence, and the
documents of the query at position ``p`` are drawn from ``default_rng([seed, 1, p])``. A step's batch is therefore a
pure function of ``(seed, t, B)``: every data-parallel rank computes the same global batch and takes its slice, and
resuming at step ``t`` needs no saved sampler state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from ..errors import SpladeError
from ..runs import Run


@dataclass
class Example:
    qid: str
    query: str
    docids: list[str]  # [positive, negative_1 … negative_n]
    texts: list[str]
    teacher: list[float]  # teacher scores, aligned with docids


def corpus_texts(source: str | os.PathLike, wanted: Iterable[str] | None = None) -> dict[str, str]:
    """``{docid: text}`` for the documents of ``source`` (only ``wanted`` ones when given)."""
    from ..corpus import read_corpus

    wanted = None if wanted is None else set(wanted)
    texts = {}
    for doc in read_corpus(source):
        if wanted is None or doc.id in wanted:
            texts[doc.id] = doc.text
    if wanted is not None and len(texts) < len(wanted):
        missing = sorted(wanted - set(texts))
        raise SpladeError(f"document {missing[0]} of the pools is not in corpus {source} ({len(missing)} missing).")
    return texts


class TrainingData:
    def __init__(self, pools: Mapping, scores: Run, queries: Mapping[str, str], docs: Mapping[str, str],
                 n_negatives: int = 8, seed: int = 0):
        if n_negatives < 1:
            raise SpladeError(f"n_negatives must be >= 1, got {n_negatives}.")
        self.n = int(n_negatives)
        self.seed = int(seed)
        self.queries = queries
        self.docs = docs
        self.items: list[tuple[str, list[str], list[str]]] = []
        self.dropped = 0
        for qid, pool in pools.items():
            teacher = scores.get(qid, {})
            positives = [d for d in pool.positives if d in teacher]
            positive_set = set(pool.positives)
            negatives = [d for d in dict.fromkeys(pool.negatives) if d in teacher and d not in positive_set]
            if not positives or not negatives or qid not in queries:
                self.dropped += 1
                continue
            self.items.append((qid, positives, negatives))
        if not self.items:
            raise SpladeError("no training query has both a scored positive and a scored negative; check that the "
                              "score file was made from these pools.")
        self.scores = scores
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, 0, epoch]).permutation(len(self.items))
        return self._perms[epoch]

    def example(self, position: int) -> Example:
        """The example at ``position`` of the endless epoch-by-epoch sequence."""
        epoch, offset = divmod(position, len(self.items))
        qid, positives, negatives = self.items[int(self._perm(epoch)[offset])]
        rng = np.random.default_rng([self.seed, 1, position])
        pos = positives[int(rng.integers(len(positives)))]
        replace = len(negatives) < self.n
        picks = rng.choice(len(negatives), size=self.n, replace=replace)
        docids = [pos] + [negatives[int(i)] for i in picks]
        teacher = self.scores[qid]
        return Example(qid, self.queries[qid], docids, [self.docs[d] for d in docids], [float(teacher[d]) for d in docids])

    def global_batch(self, step: int, batch_size: int) -> list[Example]:
        start = int(step) * int(batch_size)
        return [self.example(p) for p in range(start, start + int(batch_size))]
