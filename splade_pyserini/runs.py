"""TREC-style files: runs (``qid Q0 docid rank score tag``) and relevance judgments (qrels).

Runs are ``{qid: {docid: score}}`` (ranx's dict form); qrels are ``{qid: {docid: grade}}``. Qrels come as a BEIR
folder (``qrels/test.tsv``), a BEIR TSV (``query-id corpus-id score`` with header) or TREC qrels
(``qid 0 docid grade``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SpladeError
from .fileio import atomic_write

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def read_qrels(source: str | os.PathLike) -> Qrels:
    path = Path(source)
    if path.is_dir():
        path = path / "qrels" / "test.tsv"
    if not path.is_file():
        raise SpladeError(f"qrels {source} do not exist; pass a BEIR folder, its qrels/test.tsv or a TREC qrels file.")
    qrels: Qrels = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if lineno == 1 and parts[0].lower() in ("query-id", "qid", "query_id"):
                continue
            if len(parts) == 4:
                qid, _, docid, grade = parts
            elif len(parts) == 3:
                qid, docid, grade = parts
            else:
                raise SpladeError(f"{path}:{lineno}: expected `qid docid grade` (BEIR) or `qid 0 docid grade` (TREC).")
            try:
                qrels.setdefault(qid, {})[docid] = int(float(grade))
            except ValueError:
                raise SpladeError(f"{path}:{lineno}: relevance grade {grade!r} is not a number.") from None
    if not qrels:
        raise SpladeError(f"qrels {source} hold no judgments.")
    return qrels


def read_run(path: str | os.PathLike) -> Run:
    path = Path(path)
    if not path.is_file():
        raise SpladeError(f"run file {path} does not exist.")
    run: Run = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise SpladeError(f"{path}:{lineno}: expected a TREC run line `qid Q0 docid rank score tag`.")
            try:
                run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
            except ValueError:
                raise SpladeError(f"{path}:{lineno}: score {parts[4]!r} is not a number.") from None
    return run


def write_run(path: str | os.PathLike, results: dict[str, list[tuple[str, float]]], tag: str = "splade-pyserini") -> None:
    """Write ``{qid: [(docid, score), …]}`` (already ranked) as a TREC run, atomically."""
    with atomic_write(path) as f:
        for qid, hits in results.items():
            for rank, (docid, score) in enumerate(hits, 1):
                f.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")
