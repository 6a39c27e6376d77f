"""BM25 with Anserini's defaults (k1 = 0.9, b = 0.4): the package's one BM25 — the baseline of the tables that put
SPLADE beside it, and the first stage and teacher of the training experiment (:mod:`splade_pyserini.train.experiment`).
A Lucene index of a corpus (Anserini's ``IndexCollection``, its default English analyser) searched through Pyserini's
``LuceneSearcher``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..corpus import read_corpus
from ..errors import SpladeError
from ..fileio import atomic_directory, atomic_write, check_replaceable, work_folder
from ..runs import Run, from_hits


def build_bm25_index(corpus: str | os.PathLike, index_dir: str | os.PathLike, threads: int = 1) -> Path:
    """A Lucene BM25 index of ``corpus`` (re-used if it is already there)."""
    from ..anserini import run_java

    index_dir = Path(index_dir)
    if (index_dir / "segments.gen").exists() or any(index_dir.glob("segments_*")):
        return index_dir
    check_replaceable(index_dir, "BM25 index")  # before any work: nothing of the user's is replaced
    docs_dir = work_folder(index_dir.with_name(index_dir.name + "-docs"), "BM25 documents folder", ["docs.jsonl"])
    with atomic_write(docs_dir / "docs.jsonl") as f:
        n = 0
        for doc in read_corpus(corpus):
            f.write(json.dumps({"id": doc.id, "contents": doc.text}, ensure_ascii=False) + "\n")
            n += 1
    if n == 0:
        raise SpladeError(f"corpus {corpus} holds no documents.")
    with atomic_directory(index_dir) as tmp:
        run_java("io.anserini.index.IndexCollection",
                 ["-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
                  "-input", str(docs_dir), "-index", str(tmp), "-threads", str(threads),
                  "-storePositions", "-storeDocvectors"], quiet=True)
    return index_dir


def bm25_search(index_dir: str | os.PathLike, queries: dict[str, str], k: int | None = 1000, threads: int = 1,
                k1: float = 0.9, b: float = 0.4) -> Run:
    """Anserini's BM25 (Lucene's, through Pyserini's ``LuceneSearcher``) top ``k`` of each query; ``k=None``: every
    document that matches a query term (a document that matches none scores 0)."""
    from ..anserini import start_jvm

    start_jvm()
    from pyserini.search.lucene import LuceneSearcher

    searcher = LuceneSearcher(str(index_dir))
    searcher.set_bm25(k1, b)
    if k is None:
        k = max(1, searcher.num_docs)
    qids = list(queries)
    hits = searcher.batch_search([queries[q] for q in qids], qids, k=k, threads=threads)
    searcher.close()
    return from_hits({q: [(h.docid, h.score) for h in hits.get(q, [])] for q in qids})
