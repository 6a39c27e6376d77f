"""TREC-style files: runs (``qid Q0 docid rank score tag``) and relevance judgments (qrels).

The package's one in-memory run shape is :data:`Run`, ``{qid: {docid: score}}`` (ranx's dict form): every run
producer returns it, :func:`read_run` reads it, :func:`write_run` writes it and ``evaluate`` scores it. A searcher's
``{qid: [(docid, score), …]}`` (Pyserini's shape, what ``SpladeSearcher.batch_search`` gives) becomes one with
:func:`from_hits`. Where documents are put in order — a run file, a top ``k``, a negative pool, a metric — the
order is :func:`ranked`'s, the one ranking rule: score descending, ties by docid descending (byte order), as
trec_eval ranks (``form_res_rels.c``), so a written run's rank column is the order trec_eval evaluates.

Qrels are ``{qid: {docid: grade}}``. They come as a BEIR folder (``qrels/test.tsv``), a BEIR TSV
(``query-id corpus-id score`` with header) or TREC qrels (``qid 0 docid grade``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

from .errors import SpladeError
from .fileio import atomic_write
from .inputs import check_id, duplicate, record_lines

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]
#: A searcher's ranked hits per query (Pyserini's shape); :func:`from_hits` turns it into a :data:`Run`.
Hits = dict[str, list[tuple[str, float]]]


def _rank_key(item: tuple[str, float]):
    return item[1], item[0].encode("utf-8")


def ranked(docs: Mapping[str, float], k: int | None = None) -> list[tuple[str, float]]:
    """One query's ``(docid, score)`` pairs best first — score descending, ties by docid descending (trec_eval's
    ``strcmp`` order) — the first ``k`` of them when ``k`` is given. The package's one ranking rule."""
    order = sorted(docs.items(), key=_rank_key, reverse=True)
    return order if k is None else order[:k]


def top_k(run: Mapping[str, Mapping[str, float]], k: int | None) -> Run:
    """Each query's best ``k`` documents (all when ``k`` is None), in :func:`ranked` order; empty queries dropped."""
    out: Run = {}
    for qid, docs in run.items():
        best = ranked(docs, k)
        if best:
            out[qid] = dict(best)
    return out


def min_max(run: Mapping[str, Mapping[str, float]]) -> Run:
    """Each query's scores min-max normalised as ranx's ``"min-max"`` does: ``(s - min) / max(max - min, 1e-9)``
    (a query whose scores are all equal gets 0 everywhere); queries without documents are dropped."""
    out: Run = {}
    for qid, docs in run.items():
        if not docs:
            continue
        lo, hi = min(docs.values()), max(docs.values())
        denom = max(hi - lo, 1e-9)
        out[qid] = {d: (s - lo) / denom for d, s in docs.items()}
    return out


def from_hits(results: Mapping[str, Sequence[tuple[str, float]]]) -> Run:
    """A searcher's ``{qid: [(docid, score), …]}`` as a :data:`Run` (``float`` scores); a document twice in one
    query's hits is an error, as it is in a run file."""
    run: Run = {}
    for qid, hits in results.items():
        docs = run.setdefault(str(qid), {})
        for docid, score in hits:
            if docid in docs:
                raise SpladeError(f"the hits of query {qid} list document {docid} twice; a run lists a document "
                                  "once per query.")
            docs[str(docid)] = float(score)
    return run


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise SpladeError(f"{where}: {what} {text[:40]!r} is not a finite number.")
    return value


def _first_line(path: Path, qid: str, docid: str, docid_field: int) -> int:
    """The line where ``qid``'s ``docid`` first occurs (read again only to report a repeat)."""
    for lineno, line in record_lines(path):
        parts = line.split()
        if parts[0] == qid and parts[docid_field] == docid:
            return lineno
    return 0


def _records(path: Path, fields: tuple[int, ...], layout: str, header: tuple[str, ...] = ()):
    """(where, fields) of each non-blank line split on whitespace: as many fields on every line, one of ``fields``."""
    first, width = True, None
    for lineno, line in record_lines(path):
        parts = line.split()
        if first and parts[0].lower() in header:
            first = False
            continue
        first = False
        where = f"{path}:{lineno}"
        if len(parts) != (width or len(parts)) or len(parts) not in fields:
            raise SpladeError(f"{where}: expected {layout}, found {len(parts)} fields"
                              + (f" where the lines above have {width}." if width else "."))
        width = len(parts)
        yield where, parts


def read_qrels(source: str | os.PathLike) -> Qrels:
    """``{qid: {docid: grade}}``; a malformed line, a bad id, a grade that is no integer or a judgment given twice
    raises naming the file and line."""
    path = Path(source)
    if path.is_dir():
        path = path / "qrels" / "test.tsv"
    if not path.is_file():
        raise SpladeError(f"qrels {source} do not exist; pass a BEIR folder, its qrels/test.tsv or a TREC qrels file.")
    qrels: Qrels = {}
    layout = "`qid docid grade` (BEIR) or `qid 0 docid grade` (TREC)"
    for where, parts in _records(path, (3, 4), layout, ("query-id", "qid", "query_id")):
        qid, docid, grade = (parts[0], parts[2], parts[3]) if len(parts) == 4 else parts
        qid, docid = check_id(qid, where, "query id"), check_id(docid, where, "document id")
        value = _number(grade, where, "relevance grade")
        if value != int(value):
            raise SpladeError(f"{where}: relevance grade {grade!r} is not an integer.")
        judged = qrels.setdefault(qid, {})
        if docid in judged:
            first = _first_line(path, qid, docid, len(parts) - 2)
            raise duplicate(f"judgment of query {qid} for document", docid, where, f"{path}:{first}",
                            "judge a document once per query: keep one line")
        judged[docid] = int(value)
    if not qrels:
        raise SpladeError(f"qrels {source} hold no judgments; check the file and its format.")
    return qrels


def read_run(path: str | os.PathLike) -> Run:
    """``{qid: {docid: score}}`` of a TREC run; a malformed line, a bad id, a score that is no finite number or a
    document listed twice for one query (trec_eval refuses such runs) raises naming the file and line. The rank
    column is not read: trec_eval, too, ranks by score."""
    path = Path(path)
    if not path.is_file():
        raise SpladeError(f"run file {path} does not exist.")
    run: Run = {}
    for where, parts in _records(path, (6,), "a TREC run line `qid Q0 docid rank score tag`"):
        qid, docid = check_id(parts[0], where, "query id"), check_id(parts[2], where, "document id")
        hits = run.setdefault(qid, {})
        if docid in hits:
            raise duplicate(f"hit of query {qid} for document", docid, where, f"{path}:{_first_line(path, qid, docid, 2)}",
                            "a run lists a document once per query (trec_eval refuses repeats): keep one line")
        hits[docid] = _number(parts[4], where, "score")
    if not run:
        raise SpladeError(f"run file {path} holds no results; re-create it (e.g. with `splade-pyserini search`).")
    return run


def write_run(path: str | os.PathLike, run: Run | Hits, tag: str = "splade-pyserini") -> None:
    """Write ``run`` as a TREC run, atomically: queries in the run's order, each query's documents in
    :func:`ranked` order. A searcher's hits (:data:`Hits`) are taken through :func:`from_hits` first."""
    if any(not isinstance(docs, Mapping) for docs in run.values()):
        run = from_hits(run)
    with atomic_write(path) as f:
        for qid, docs in run.items():
            for rank, (docid, score) in enumerate(ranked(docs), 1):
                f.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")
