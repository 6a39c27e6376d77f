"""Teacher scores for distillation: scorers, the min-max ensemble, rescoring, and the score file.

Ensemble (SPLADE-v3 recipe): per query, each teacher's scores are min-max normalised as ranx
``normalize(run, "min-max")`` does, ``(s - min) / max(max - min, 1e-9)`` (a query whose scores are all equal
gets 0 for every candidate), then averaged over teachers. A candidate that one teacher did not score
(``missing``):

* ``"min"`` (default): it counts as 0 for that teacher — the bottom of that teacher's normalised range, as ranx's
  sum-style fusions treat documents absent from a run;
* ``"skip"``: the mean is taken over the teachers that did score it.

Rescoring (the "rescored" variant): the ensemble is mapped by ``a * s + b`` so that the mean and the population
standard deviation (ddof 0) of its scores over all query–candidate pairs equal a target: ``(mean, std)`` given
directly, or those of a reference run (over the pairs it shares with the ensemble; all its pairs when it shares
none). ``a = std_ref / std_ens`` (1 when the ensemble is constant), ``b = mean_ref - a * mean_ens``.

Scorers (each gives one raw score per (query, candidate) pair, or none):

* :class:`CrossEncoderScorer` — a local Hugging Face ``AutoModelForSequenceClassification`` folder over
  ``(query, document)`` pairs, scored (and truncated) by the re-ranker's own
  :class:`~splade_pyserini.retrieve.crossencoder.CrossEncoder`; a 1-logit head gives its logit, a 2-logit head
  ``l1 - l0``;
* :class:`SpladeScorer` — dot products of SPLADE vectors (unquantised) from :func:`..encoder.load_encoder`;
* :class:`RunScorer` — scores read from a TREC run or a score file; pairs it lacks stay unscored.

Score files: JSONL, one ``{"qid": str, "docid": str, "score": float}`` per line (:func:`write_scores`);
:func:`read_scores` also reads TREC runs. :func:`teach` writes each teacher's raw scores under ``OUTPUT.parts/``
as it goes (appended and flushed per chunk, so an interrupted run resumes where it stopped), then the ensemble to
``OUTPUT`` atomically and a description (teachers, normalisation, rescoring a and b) to ``OUTPUT.meta.json``.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import SpladeError
from ..fileio import atomic_write, write_json
from ..runs import Run, min_max, read_run

MISSING_POLICIES = ("min", "skip")


# --- ensemble ---------------------------------------------------------------------------------------------------
def score_stats(run: Run, pairs: Run | None = None) -> tuple[float, float]:
    """(mean, population std) of a run's scores; over the pairs it shares with ``pairs`` when there are any."""
    values = []
    if pairs is not None:
        values = [s for q, docs in run.items() if q in pairs for d, s in docs.items() if d in pairs[q]]
    if not values:
        values = [s for docs in run.values() for s in docs.values()]
    if not values:
        raise SpladeError("cannot rescore to an empty run.")
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def affine(run: Run, a: float, b: float) -> Run:
    return {q: {d: a * s + b for d, s in docs.items()} for q, docs in run.items()}


def rescore(run: Run, target) -> tuple[Run, float, float]:
    """``(a * run + b, a, b)`` with mean and std matching ``target`` (``(mean, std)`` or a reference run)."""
    if isinstance(target, Mapping):
        ref_mean, ref_std = score_stats(target, run)
    else:
        ref_mean, ref_std = (float(x) for x in target)
        if ref_std < 0:
            raise SpladeError(f"rescoring target std must be >= 0, got {ref_std}.")
    mean, std = score_stats(run)
    a = ref_std / std if std > 1e-12 else 1.0
    b = ref_mean - a * mean
    return affine(run, a, b), a, b


def ensemble(runs: Sequence[Run], rescore_to=None, missing: str = "min") -> Run:
    """Mean of the per-query min-max normalised ``runs``; then rescored when ``rescore_to`` is given."""
    return ensemble_with_info(runs, rescore_to, missing)[0]


def ensemble_with_info(runs: Sequence[Run], rescore_to=None, missing: str = "min") -> tuple[Run, dict]:
    if not runs:
        raise SpladeError("an ensemble needs at least one teacher run.")
    if missing not in MISSING_POLICIES:
        raise SpladeError(f"missing-candidate policy {missing!r} is not one of {', '.join(MISSING_POLICIES)}.")
    normed = [min_max(r) for r in runs]
    out: Run = {}
    qids: list[str] = []
    seen = set()
    for r in normed:
        for q in r:
            if q not in seen:
                seen.add(q)
                qids.append(q)
    for q in qids:
        candidates: dict[str, None] = {}
        for r in normed:
            for d in r.get(q, {}):
                candidates.setdefault(d, None)
        scores = {}
        for d in candidates:
            vals = [r[q][d] for r in normed if d in r.get(q, {})]
            if missing == "min":
                scores[d] = sum(vals) / len(normed)
            else:
                scores[d] = sum(vals) / len(vals)
        out[q] = scores
    info = {"teachers": len(runs), "normalization": "min-max per query per teacher, (s-min)/max(max-min,1e-9)",
            "missing": missing, "rescored": rescore_to is not None}
    if rescore_to is not None:
        out, a, b = rescore(out, rescore_to)
        info.update(a=a, b=b)
    return out, info


# --- score files ------------------------------------------------------------------------------------------------
def write_scores(path: str | os.PathLike, run: Run) -> None:
    """JSONL ``{"qid", "docid", "score"}`` per line, atomically; queries and candidates in run order."""
    with atomic_write(path) as f:
        for qid, docs in run.items():
            for docid, score in docs.items():
                f.write(json.dumps({"qid": qid, "docid": docid, "score": float(score)}) + "\n")


def _read_jsonl_scores(path: Path, run: Run, tolerate_tail: bool = False) -> int:
    """Add a JSONL score file to ``run``; returns the byte length of its well-formed prefix.

    With ``tolerate_tail`` a last line that is cut short (no newline, or not JSON) is ignored: an interrupted write.
    """
    data = Path(path).read_bytes()
    lines = data.split(b"\n")  # the last element is what follows the final newline (b"" when terminated)
    good = 0
    for lineno, raw in enumerate(lines, 1):
        last = lineno == len(lines)
        if not raw.strip():
            if not last:
                good += len(raw) + 1
            continue
        try:
            obj = json.loads(raw)
            qid, docid, score = str(obj["qid"]), str(obj["docid"]), float(obj["score"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError):
            if tolerate_tail and all(not x.strip() for x in lines[lineno:]):
                return good
            raise SpladeError(f"{path}:{lineno}: expected a JSON score line {{\"qid\", \"docid\", \"score\"}}.") from None
        if last and tolerate_tail:  # no newline after it: may be cut short
            return good
        run.setdefault(qid, {})[docid] = score
        good += len(raw) + (0 if last else 1)
    return good


def read_scores(path: str | os.PathLike) -> Run:
    """A score file (JSONL as written by :func:`write_scores`) or a TREC run, as ``{qid: {docid: score}}``."""
    path = Path(path)
    if not path.is_file():
        raise SpladeError(f"score file {path} does not exist; make one with `splade-pyserini teach`.")
    with open(path, encoding="utf-8") as f:
        head = f.read(1)
        while head and head.isspace():
            head = f.read(1)
    if head == "{":
        run: Run = {}
        _read_jsonl_scores(path, run)
        return run
    return read_run(path)


# --- scorers ----------------------------------------------------------------------------------------------------
class RunScorer:
    """Scores looked up in a run (a TREC run or a score file); pairs it lacks stay unscored."""

    def __init__(self, source: str | os.PathLike | Run, name: str | None = None):
        if isinstance(source, Mapping):
            self.run = source
            self.name = name or "run"
        else:
            self.run = read_scores(source)
            self.name = name or f"run:{Path(source).name}"

    def score(self, pairs: Sequence[tuple[str, str]], queries: Mapping[str, str], docs: Mapping[str, str]) -> list[float]:
        return [self.run.get(q, {}).get(d, math.nan) for q, d in pairs]


class SpladeScorer:
    """Dot products of SPLADE query and document vectors (float weights, no quantisation)."""

    def __init__(self, encoder, device: str = "auto", name: str | None = None):
        if isinstance(encoder, (str, os.PathLike)):
            from ..encoder import load_encoder

            self.name = name or f"splade:{encoder}"
            encoder = load_encoder(encoder, device=device)
        else:
            self.name = name or f"splade:{encoder.card.name}"
        self.encoder = encoder

    def score(self, pairs, queries, docs) -> list[float]:
        qids = list(dict.fromkeys(q for q, _ in pairs))
        dids = list(dict.fromkeys(d for _, d in pairs))
        qb = self.encoder.encode([queries[q] for q in qids], "query")
        db = self.encoder.encode([docs[d] for d in dids], "document")
        qrow = {q: i for i, q in enumerate(qids)}
        drow = {d: i for i, d in enumerate(dids)}
        qvec = [dict(zip(*map(np.ndarray.tolist, qb.row(i)))) for i in range(len(qids))]
        out = []
        for q, d in pairs:
            terms, weights = db.row(drow[d])
            qv = qvec[qrow[q]]
            out.append(float(sum(qv.get(t, 0.0) * w for t, w in zip(terms.tolist(), weights.tolist()))))
        return out


class CrossEncoderScorer:
    """A local cross-encoder folder over (query, document) pairs: the re-ranker's scorer
    (:class:`splade_pyserini.retrieve.crossencoder.CrossEncoder`), so a pair gets the same score as a teacher as
    it gets when a run is re-ranked."""

    def __init__(self, model: str | os.PathLike, device: str = "auto", batch_size: int = 32, max_length: int = 512,
                 name: str | None = None):
        from ..retrieve.crossencoder import CrossEncoder

        self.name = name or f"cross-encoder:{model}"
        self.encoder = CrossEncoder(model, device=device, batch_size=batch_size, max_length=max_length)

    def score(self, pairs, queries, docs) -> list[float]:
        return self.encoder.score([(queries[q], docs[d]) for q, d in pairs])


def make_scorer(spec: str, device: str = "auto", batch_size: int = 32):
    """``cross-encoder:MODEL``, ``splade:ENCODER`` or ``run:FILE`` → a scorer."""
    kind, sep, value = spec.partition(":")
    if not sep or not value:
        raise SpladeError(f"teacher {spec!r}: expected cross-encoder:MODEL, splade:ENCODER or run:FILE.")
    if kind in ("cross-encoder", "ce"):
        return CrossEncoderScorer(value, device=device, batch_size=batch_size, name=spec)
    if kind == "splade":
        return SpladeScorer(value, device=device, name=spec)
    if kind == "run":
        return RunScorer(value, name=spec)
    raise SpladeError(f"teacher {spec!r}: unknown kind {kind!r}; use cross-encoder:, splade: or run:.")


# --- teach ------------------------------------------------------------------------------------------------------
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:80] or "teacher"


def score_resumable(scorer, pairs: Sequence[tuple[str, str]], queries, docs, path: Path, chunk: int = 2048,
                    progress: Callable[[int], None] | None = None) -> Run:
    """Raw scores of ``pairs`` by ``scorer``, cached in the JSONL file ``path``.

    The file grows by whole chunks (written, flushed and fsynced); a run that stops part-way leaves at most a cut
    last line, which is dropped on the next call, and only the pairs not yet in the file are scored then. Pairs the
    scorer leaves unscored (NaN/None) are listed in ``path.unscored.json`` so they are not retried. Pairs of an
    earlier, different pool set stay in the file but are not returned.
    """
    run: Run = {}
    unscored_path = path.with_name(path.name + ".unscored.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        good = _read_jsonl_scores(path, run, tolerate_tail=True)
        if good < path.stat().st_size:
            with open(path, "r+b") as f:
                f.truncate(good)
    unscored: set[tuple[str, str]] = set()
    if unscored_path.is_file():
        unscored = {tuple(x) for x in json.loads(unscored_path.read_text())}
    todo = [p for p in pairs if p[1] not in run.get(p[0], {}) and p not in unscored]
    if progress:
        progress(len(pairs) - len(todo))
    if todo:
        with open(path, "a", encoding="utf-8") as f:
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                scores = scorer.score(part, queries, docs)
                lines = []
                new_unscored = False
                for (q, d), s in zip(part, scores):
                    if s is None or not math.isfinite(s):
                        unscored.add((q, d))
                        new_unscored = True
                        continue
                    run.setdefault(q, {})[d] = float(s)
                    lines.append(json.dumps({"qid": q, "docid": d, "score": float(s)}) + "\n")
                f.write("".join(lines))
                f.flush()
                os.fsync(f.fileno())
                if new_unscored:
                    with atomic_write(unscored_path) as u:
                        json.dump(sorted(unscored), u)
                if progress:
                    progress(len(part))
    out: Run = {}
    for q, d in pairs:
        s = run.get(q, {}).get(d)
        if s is not None:
            out.setdefault(q, {})[d] = s
    return out


def pool_pairs(pools) -> list[tuple[str, str]]:
    pairs = []
    for qid, pool in pools.items():
        for d in dict.fromkeys(list(pool.positives) + list(pool.negatives)):
            pairs.append((qid, d))
    return pairs


def resolve_rescore_target(spec, raw_runs: Sequence[Run]):
    """``None``; ``(mean, std)``; a Run; or a string ``teacher:K`` / ``MEAN,STD`` / a score-file path."""
    if spec is None or isinstance(spec, (tuple, list, Mapping)):
        return spec
    text = str(spec)
    if text.startswith("teacher:"):
        k = int(text.split(":", 1)[1])
        if not 0 <= k < len(raw_runs):
            raise SpladeError(f"--rescore-to {text}: there are {len(raw_runs)} teachers (0..{len(raw_runs) - 1}).")
        return raw_runs[k]
    if "," in text and not os.path.exists(text):
        try:
            mean, std = (float(x) for x in text.split(","))
        except ValueError:
            raise SpladeError(f"--rescore-to {text!r}: expected MEAN,STD, teacher:K or a score file.") from None
        return (mean, std)
    return read_scores(text)


def teach(pools, queries: Mapping[str, str], docs: Mapping[str, str], scorers: Sequence, output: str | os.PathLike,
          rescore_to=None, missing: str = "min", chunk: int = 2048, show_progress: bool = True) -> Run:
    """Score every (query, pool candidate) with each scorer (resumable), ensemble, rescore, write ``output``."""
    output = Path(output)
    pairs = pool_pairs(pools)
    missing_q = sorted({q for q, _ in pairs if q not in queries})
    if missing_q:
        raise SpladeError(f"pool query {missing_q[0]} has no text in the topics ({len(missing_q)} missing).")
    missing_d = sorted({d for _, d in pairs if d not in docs})
    if missing_d:
        raise SpladeError(f"pool document {missing_d[0]} is not in the corpus ({len(missing_d)} missing).")
    parts = output.with_name(output.name + ".parts")
    raw_runs = []
    for i, scorer in enumerate(scorers):
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(pairs), desc=f"teacher {i} {scorer.name}", unit="pair", leave=False)
        raw_runs.append(score_resumable(scorer, pairs, queries, docs, parts / f"{i}-{_slug(scorer.name)}.jsonl",
                                        chunk=chunk, progress=bar.update if bar else None))
        if bar:
            bar.close()
    target = resolve_rescore_target(rescore_to, raw_runs)
    run, info = ensemble_with_info(raw_runs, target, missing)
    info["teacher_names"] = [s.name for s in scorers]
    info["rescore_to"] = None if rescore_to is None else (str(rescore_to) if not isinstance(rescore_to, Mapping) else "run")
    info["pairs"] = len(pairs)
    info["format"] = 'JSONL {"qid", "docid", "score"} per line'
    write_scores(output, run)
    write_json(output.with_name(output.name + ".meta.json"), info)
    return run
