"""BM25 with Anserini's defaults (k1 = 0.9, b = 0.4): the package's one BM25 — the baseline of the tables that put
SPLADE beside it, and the first stage and teacher of the training experiment (:mod:`splade_pyserini.train.experiment`).
A Lucene index of a corpus (Anserini's ``IndexCollection``, its default English analyser) searched by Anserini's
``SimpleSearcher``, the Java class under Pyserini's ``LuceneSearcher``, called directly: importing
``pyserini.search.lucene`` costs ~15 s of CPU (it imports Pyserini's every encoder, torch and transformers among
them), several times the search itself."""

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
    """Anserini's BM25 top ``k`` of each query (``SimpleSearcher.batch_search``, what Pyserini's
    ``LuceneSearcher.batch_search`` calls); ``k=None``: every document that matches a query term (a document that
    matches none scores 0)."""
    from ..anserini import autoclass

    searcher = autoclass("io.anserini.search.SimpleSearcher")(str(index_dir))
    try:
        searcher.set_bm25(float(k1), float(b))
        if k is None:
            k = max(1, int(searcher.get_total_num_docs()))
        qids = list(queries)
        texts, ids = autoclass("java.util.ArrayList")(), autoclass("java.util.ArrayList")()
        for q in qids:
            texts.add(queries[q])
            ids.add(q)
        found = searcher.batch_search(texts, ids, int(k), int(threads))
        hits = {e.getKey(): e.getValue() for e in found.entrySet().toArray()}
    finally:
        searcher.close()
    return from_hits({q: [(h.docid, h.score) for h in hits.get(q, [])] for q in qids})
