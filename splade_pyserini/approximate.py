"""An approximate engine beside the exact Lucene index: Seismic (``pyseismic-lsr``), built from the same vectors.

Seismic (Bruch, Nardini, Rulli, Venturini, SIGIR 2024) keeps, per term, only the largest postings (``n_postings`` a
term on average), clusters each list into blocks with a summary vector, and at query time scores only the blocks
whose summary, against the query's ``query_cut`` largest terms, reaches ``heap_factor`` of the current k-th score.
Scores are the dot products of the documents it does score, in float32 over the package's integer weights: exact
while a score stays below 2^24 (as on the collections here), so a hit's score equals Lucene's for that document;
what it can miss are documents, and ``splade-pyserini bench scale --seismic`` reports that recall against the exact
search. Exact Lucene stays the default engine.

The Seismic index lives inside the Lucene index folder (``INDEX/seismic/``), with a record of the Lucene index it
was built for: a Lucene index rebuilt from other vectors makes :class:`SeismicEngine` refuse it rather than mix the
two. Documents and queries are the package's integer weights (the quantised vectors of ``encode``, and queries at
the index's scale).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .errors import SpladeError
from .fileio import OWNER_FILE, atomic_directory, mark, owner, read_record, write_json

#: the engines SpladeSearcher and `search --engine` take: exact Lucene (the default) and this one
ENGINES = ("lucene", "seismic")
SEISMIC_DIR = "seismic"
SEISMIC_RECORD = "seismic.json"
SEISMIC_FILE = "index"  # Seismic appends ".index.seismic"
#: pyseismic-lsr's binary release for CPython 3.12 on Linux x86_64 (newer ones ship as sources needing Rust)
SEISMIC_PIN = "pyseismic-lsr==0.5.2"
#: what the Seismic index must share with the Lucene index it was built beside
_SHARED_KEYS = ("encoder", "model", "variant", "scale", "weights_sha256", "documents", "vectors")

BUILD_DEFAULTS = {"n_postings": 3500, "centroid_fraction": 0.1, "min_cluster_size": 2, "summary_energy": 0.4,
                  "max_fraction": 1.5, "doc_cut": 15}
SEARCH_DEFAULTS = {"query_cut": 20, "heap_factor": 0.9}


def require_seismic():
    """The ``seismic`` module of pyseismic-lsr, or a one-line error saying how to install it."""
    try:
        import seismic
    except ImportError:
        raise SpladeError(f"the Seismic engine needs {SEISMIC_PIN.split('==')[0]}: pip install "
                          f"'splade-pyserini[seismic]' (or '{SEISMIC_PIN}').") from None
    return seismic


def seismic_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyseismic-lsr")
    except PackageNotFoundError:
        return None


def read_documents(vectors_dir: str | os.PathLike):
    """``(docid, terms, weights)`` of every document of a vectors folder's JSONL shards, in shard order."""
    from .vector_pins import read_vectors

    for docid, vector in read_vectors(vectors_dir):
        yield docid, list(vector), list(vector.values())


def build_seismic(index_dir: str | os.PathLike, vectors_dir: str | os.PathLike | None = None,
                  threads: int | None = None, progress: bool = True, **params) -> dict:
    """Build the Seismic index of ``index_dir`` (a Lucene index of this package) from its vectors (the folder its
    record names, or ``vectors_dir``) into ``index_dir/seismic``; ``params``: Seismic's build parameters
    (:data:`BUILD_DEFAULTS`). Written under a temporary name and renamed: an interrupted build leaves nothing."""
    from .index import read_index_meta

    index_dir = Path(index_dir)
    meta = read_index_meta(index_dir)
    if meta is None:
        raise SpladeError(f"{index_dir} is not an index of splade-pyserini (no record); build it with "
                          "`splade-pyserini index` first.")
    vectors = Path(vectors_dir or meta.get("vectors") or "")
    if not vectors_dir and not vectors.is_dir():
        raise SpladeError(f"the vectors of index {index_dir} ({meta.get('vectors')}) are gone; pass the folder "
                          "they are in now (--vectors).")
    from .vectors import complete_encoding_meta

    encoding = complete_encoding_meta(vectors)  # refuses what is no complete encode output
    if encoding.get("weights_sha256") != meta.get("weights_sha256") or encoding.get("model") != meta.get("model"):
        raise SpladeError(f"{vectors} holds other vectors than index {index_dir} was built from (model or weights "
                          "differ); pass the vectors of that index.")
    count, _ = write_seismic(read_documents(vectors), index_dir / SEISMIC_DIR, meta.get("documents"), threads, progress,
                             {k: meta.get(k) for k in _SHARED_KEYS}, **params)
    if meta.get("documents") is not None and count != meta["documents"]:
        raise SpladeError(f"{vectors} holds {count} documents, index {index_dir} {meta['documents']}; pass the "
                          "vectors of that index.")
    _own_entry(index_dir, SEISMIC_DIR)
    return read_record(index_dir / SEISMIC_DIR / SEISMIC_RECORD)


def write_seismic(documents, target: str | os.PathLike, total: int | None = None, threads: int | None = None,
                  progress: bool = True, record: dict | None = None, **params) -> tuple[int, dict]:
    """Build a Seismic index of ``documents`` (``(docid, terms, weights)``) into the folder ``target`` (atomically,
    ``record`` and the build settings in its record); returns the document count and the settings. Nothing is
    written when ``total`` is given and the count differs."""
    import numpy as np
    from tqdm import tqdm

    seismic = require_seismic()
    unknown = sorted(set(params) - set(BUILD_DEFAULTS))
    if unknown:
        raise SpladeError(f"unknown Seismic build parameter(s) {', '.join(unknown)}; known: "
                          f"{', '.join(BUILD_DEFAULTS)}.")
    settings = {**BUILD_DEFAULTS, **params}
    string = seismic.get_seismic_string()
    dataset = seismic.SeismicDataset()
    count = 0
    for docid, terms, weights in tqdm(documents, total=total, unit="doc", desc="seismic: read", disable=not progress):
        dataset.add_document(docid, np.array(terms, dtype=string), np.array(weights, dtype=np.float32))
        count += 1
    if total is not None and count != total:
        return count, settings
    index = seismic.SeismicIndex.build_from_dataset(dataset, **settings, num_threads=int(threads or 0))
    with atomic_directory(target, kind="seismic index", what="Seismic index") as tmp:
        index.save(str(tmp / SEISMIC_FILE))
        write_json(tmp / SEISMIC_RECORD, {"engine": "seismic", "pyseismic_lsr": seismic_version(), "build": settings,
                                          "documents_indexed": count, **(record or {})})
    return count, settings


def _own_entry(index_dir: Path, name: str) -> None:
    """Add ``name`` to the entries the index folder's ownership record names (so the folder stays replaceable)."""
    record = owner(index_dir)
    if record is not None and "entries" in record:
        mark(index_dir, record["kind"], [e for e in record["entries"] if e != OWNER_FILE] + [name])


def open_seismic(index_dir: str | os.PathLike, query_cut: int | None = None,
                 heap_factor: float | None = None) -> "SeismicEngine":
    """The Seismic index of the Lucene index ``index_dir``; refused when there is none, or when it was built for
    another version of that index (other vectors, model or scale)."""
    from .index import read_index_meta

    index_dir = Path(index_dir)
    folder = index_dir / SEISMIC_DIR
    record = read_record(folder / SEISMIC_RECORD)
    if record is None:
        raise SpladeError(f"index {index_dir} has no Seismic index; build it with `splade-pyserini index --vectors … "
                          f"--index {index_dir} --seismic` (or search with --engine lucene).")
    meta = read_index_meta(index_dir) or {}
    differ = [k for k in _SHARED_KEYS if k != "vectors" and record.get(k) != meta.get(k)]
    if differ:
        raise SpladeError(f"the Seismic index in {folder} was built for another version of index {index_dir} "
                          f"({', '.join(differ)} differ); rebuild it with `splade-pyserini index --vectors … "
                          f"--index {index_dir} --seismic`.")
    return SeismicEngine(folder, query_cut, heap_factor)


class SeismicEngine:
    """A loaded Seismic index (a folder :func:`write_seismic` wrote): :meth:`search` of integer-weight queries,
    hits as ``(docid, score)``, best first."""

    def __init__(self, folder: str | os.PathLike, query_cut: int | None = None, heap_factor: float | None = None):
        folder = Path(folder)
        record = read_record(folder / SEISMIC_RECORD)
        if record is None:
            raise SpladeError(f"{folder} is not a Seismic index of splade-pyserini (no {SEISMIC_RECORD}).")
        seismic = require_seismic()
        self.record = record
        self.query_cut = int(SEARCH_DEFAULTS["query_cut"] if query_cut is None else query_cut)
        self.heap_factor = float(SEARCH_DEFAULTS["heap_factor"] if heap_factor is None else heap_factor)
        if self.query_cut < 1 or not 0 < self.heap_factor <= 1:
            raise SpladeError(f"Seismic needs query_cut >= 1 and 0 < heap_factor <= 1, not {self.query_cut} and "
                              f"{self.heap_factor}.")
        self._string = seismic.get_seismic_string()
        self._index = seismic.SeismicIndex.load(str(folder / (SEISMIC_FILE + ".index.seismic")))

    def search(self, queries: Sequence[dict[str, int]], qids: Sequence[str], k: int,
               threads: int = 1) -> dict[str, list[tuple[str, float]]]:
        import numpy as np

        results: dict[str, list[tuple[str, float]]] = {str(q): [] for q in qids}
        todo = [(str(q), w) for q, w in zip(qids, queries) if w]  # an empty query matches nothing
        if not todo or k < 1:
            return results
        found = self._index.batch_search(
            np.array([q for q, _ in todo], dtype=self._string),
            [np.array(list(w), dtype=self._string) for _, w in todo],
            [np.array(list(w.values()), dtype=np.float32) for _, w in todo],
            k=int(k), query_cut=self.query_cut, heap_factor=self.heap_factor, num_threads=int(threads))
        for hits in found:  # one list per query, in no promised order: each hit names its query
            for qid, score, docid in hits:
                results[qid].append((docid, float(score)))
        for hits in results.values():
            hits.sort(key=lambda h: -h[1])  # stable: Seismic's order among equal scores
        return results

    def close(self) -> None:
        self._index = None
