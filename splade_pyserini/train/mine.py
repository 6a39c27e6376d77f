"""Negative pools for training, mined from first-stage runs and relevance judgments.

The SPLADE-v3 recipe keeps, per training query, a pool of 100 candidates from a first-stage run: 50 sampled from
its top-50 and 50 from its top-1000. Here the sampling is a list of *tiers* ``(count, depth)``, applied in order to
each run's ranking with the positives removed: tier k draws ``count`` documents uniformly without replacement among
the top-``depth`` documents not already drawn (all of them when there are no more than ``count``). The default
``((50, 50), (50, 1000))`` therefore takes the whole top-50 and then 50 of the documents ranked 51..1000.

With several runs the pools are unioned in run order (a document drawn from an earlier run is not drawn again).
Positives are the judged documents with grade >= ``min_grade``; documents judged below it stay eligible as
negatives. Queries without a positive, or in no run, get no pool (counted in the metadata).

Determinism: the generator of query ``q`` and run ``r`` is ``numpy.random.default_rng([seed, r, crc32(q)])``, so a
pool does not depend on the order or the number of the other queries. Rankings are
:func:`splade_pyserini.runs.ranked`'s (score descending, ties by docid descending, as trec_eval), so ties do not
depend on the run file's line order.

Output (JSONL, written atomically): the first line is ``{"meta": {...}}`` (seed, tiers, min_grade, run sources,
counts, format version); each further line is ``{"qid", "positives": [...], "negatives": [...]}``.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import SpladeError
from ..fileio import atomic_write
from ..runs import Qrels, Run, ranked

DEFAULT_TIERS: tuple[tuple[int, int], ...] = ((50, 50), (50, 1000))
FORMAT = "splade-pyserini/pools-v1"


@dataclass
class Pool:
    positives: list[str]
    negatives: list[str] = field(default_factory=list)


def parse_tiers(text: str) -> tuple[tuple[int, int], ...]:
    """``"50:50,50:1000"`` → ``((50, 50), (50, 1000))`` (count:depth pairs)."""
    tiers = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            count, depth = (int(x) for x in part.split(":"))
        except ValueError:
            raise SpladeError(f"negative tiers {text!r}: expected count:depth pairs such as 50:50,50:1000.") from None
        if count < 0 or depth < 1:
            raise SpladeError(f"negative tier {part!r}: count must be >= 0 and depth >= 1.")
        tiers.append((count, depth))
    if not tiers:
        raise SpladeError(f"negative tiers {text!r}: no count:depth pair given.")
    return tuple(tiers)


def query_rng(seed: int, run_index: int, qid: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(run_index), zlib.crc32(str(qid).encode("utf-8"))])


def sample_tiers(ranked: Sequence[str], exclude: set[str], tiers: Iterable[tuple[int, int]],
                 rng: np.random.Generator) -> list[str]:
    """Documents drawn tier by tier from ``ranked`` (best first), skipping ``exclude``; kept in rank order per tier."""
    chosen: list[str] = []
    taken = set(exclude)
    for count, depth in tiers:
        eligible = [d for d in ranked[:depth] if d not in taken]
        if len(eligible) > count:
            picks = np.sort(rng.choice(len(eligible), size=count, replace=False))
            eligible = [eligible[i] for i in picks]
        chosen.extend(eligible)
        taken.update(eligible)
    return chosen


def mine(runs: Sequence[Run], qrels: Qrels, seed: int = 0, tiers=DEFAULT_TIERS, min_grade: int = 1,
         qids: Iterable[str] | None = None) -> tuple[dict[str, Pool], dict]:
    """``({qid: Pool}, meta)`` for the judged queries (restricted to ``qids`` when given), in qrels order."""
    if not runs:
        raise SpladeError("mining needs at least one run.")
    tiers = tuple((int(c), int(d)) for c, d in tiers)
    wanted = None if qids is None else set(map(str, qids))
    pools: dict[str, Pool] = {}
    no_positive = no_run = 0
    for qid, judged in qrels.items():
        if wanted is not None and qid not in wanted:
            continue
        positives = [d for d, g in judged.items() if g >= min_grade]
        if not positives:
            no_positive += 1
            continue
        if not any(run.get(qid) for run in runs):
            no_run += 1
            continue
        negatives: list[str] = []
        exclude = set(positives)
        for r, run in enumerate(runs):
            docs = run.get(qid)
            if not docs:
                continue
            drawn = sample_tiers([d for d, _ in ranked(docs)], exclude, tiers, query_rng(seed, r, qid))
            negatives.extend(drawn)
            exclude.update(drawn)
        pools[qid] = Pool(positives, negatives)
    sizes = [len(p.negatives) for p in pools.values()]
    meta = {
        "format": FORMAT,
        "seed": int(seed),
        "tiers": [list(t) for t in tiers],
        "min_grade": int(min_grade),
        "rng": "numpy.random.default_rng([seed, run_index, zlib.crc32(qid)])",
        "queries": len(pools),
        "skipped_no_positive": no_positive,
        "skipped_not_in_runs": no_run,
        "negatives_mean": float(np.mean(sizes)) if sizes else 0.0,
        "negatives_min": int(min(sizes)) if sizes else 0,
    }
    return pools, meta


def write_pools(path: str | os.PathLike, pools: dict[str, Pool], meta: dict) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps({"meta": meta}, sort_keys=True) + "\n")
        for qid, pool in pools.items():
            f.write(json.dumps({"qid": qid, "positives": pool.positives, "negatives": pool.negatives}) + "\n")


def read_pools(path: str | os.PathLike) -> tuple[dict[str, Pool], dict]:
    path = Path(path)
    if not path.is_file():
        raise SpladeError(f"pools file {path} does not exist; make one with `splade-pyserini mine`.")
    pools: dict[str, Pool] = {}
    meta: dict = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise SpladeError(f"{path}:{lineno}: malformed JSON ({e.msg}).") from None
            if "meta" in obj and "qid" not in obj:
                meta = obj["meta"]
                continue
            try:
                pools[str(obj["qid"])] = Pool([str(d) for d in obj["positives"]], [str(d) for d in obj.get("negatives", [])])
            except (KeyError, TypeError):
                raise SpladeError(f"{path}:{lineno}: expected {{\"qid\", \"positives\", \"negatives\"}}.") from None
    if not pools:
        raise SpladeError(f"pools file {path} holds no queries.")
    return pools, meta
