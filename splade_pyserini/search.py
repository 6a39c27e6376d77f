"""Searching an impact index with SPLADE queries: ``SpladeSearcher`` and ``search_topics``.

Scores are Anserini's impact scores, ``Σ_t q_t × d_t`` over the integer query and document weights, where the query
is quantised with the index's own scale (its record is the truth; the encoder's card scale does not matter here).
The searcher refuses an encoder whose model is not the index's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from . import provenance
from .encoder import SpladeEncoder, load_encoder
from .approximate import ENGINES, open_seismic
from .errors import SpladeError
from .index import index_provenance, read_index_meta


def check_compatible(index_dir: str | os.PathLike, encoder: SpladeEncoder) -> float:
    """The quantisation scale to search ``index_dir`` with (the index's own); raises when the index was built with
    another model than ``encoder``'s (the rule: :func:`.provenance.check_compatible`)."""
    return provenance.check_compatible(index_provenance(index_dir), encoder, f"index {index_dir}")


class SpladeSearcher:
    """Search a SPLADE impact index: ``search(query, k)`` and ``batch_search(queries, qids, k, threads)``.

    ``engine="lucene"`` (default): the exact search on the Lucene index. ``engine="seismic"``: the approximate
    Seismic index built beside it (``splade-pyserini index --seismic``; :mod:`.approximate`), same queries and
    scores, ``query_cut`` and ``heap_factor`` its search parameters; no JVM is started."""

    def __init__(self, index_dir: str | os.PathLike, encoder: str | SpladeEncoder, device: str = "auto",
                 fast: bool = True, engine: str = "lucene", query_cut: int | None = None,
                 heap_factor: float | None = None):
        from .anserini import autoclass

        if engine not in ENGINES:
            raise SpladeError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}.")
        index_dir = Path(index_dir)
        if not index_dir.is_dir():
            raise SpladeError(f"index {index_dir} does not exist; build it with `splade-pyserini index`.")
        self.encoder = encoder if isinstance(encoder, SpladeEncoder) else load_encoder(encoder, device=device)
        self.scale = check_compatible(index_dir, self.encoder)  # the index's scale
        self.index_meta = read_index_meta(index_dir)
        self.index_dir = index_dir
        # The encoder encodes each query alone (see query_encoder), so a query gets the same integer weights
        # here, in Pyserini's searcher (through the plugin) and in an interactive search().
        self._batch = None
        self._vocabulary = None  # the index's terms as vocabulary ids (see encode_for_search); False: not used
        self.engine = engine
        self._seismic = None
        if engine == "seismic":
            self._seismic = open_seismic(index_dir, query_cut, heap_factor)
            return
        if fast:
            from .javaext import BatchSearcher, enable

            if enable(quiet=True) is not None:  # the extension: one JNI call per batch of queries
                self._batch = BatchSearcher(index_dir)
        if self._batch is None:  # the stock path: Anserini's SimpleImpactSearcher, one Java map per query
            self._searcher = autoclass("io.anserini.search.SimpleImpactSearcher")(str(index_dir))
            self._HashMap = autoclass("java.util.HashMap")
            self._ArrayList = autoclass("java.util.ArrayList")
            self._Integer = autoclass("java.lang.Integer")

    def encode_queries(self, queries: Sequence[str]) -> list[dict[str, int]]:
        """Integer query weights, quantised exactly like the index's document weights (zeros dropped)."""
        return self.encoder.quantized_queries(queries, self.scale)

    def encode_for_search(self, queries: Sequence[str]) -> list[dict[str, int]]:
        """:meth:`encode_queries` without the terms that the index does not hold: they match nothing, so leaving
        them out changes no score, and on the CPU their weights are not even computed (the vocabulary projection
        is most of a query's encoding; a small collection holds a fraction of the vocabulary)."""
        return self.encoder.quantized_queries(queries, self.scale, vocabulary=self._index_vocabulary())

    def _index_vocabulary(self):
        """Vocabulary ids of the terms the index holds, or None (all of them) when that would save little."""
        if self._vocabulary is None:
            terms = self._batch.terms() if self._batch is not None else None
            ids = None if terms is None else self.encoder.vocabulary_ids(terms)
            self._vocabulary = False if ids is None else ids
        return None if self._vocabulary is False else self._vocabulary

    def _jquery(self, weights: dict[str, int]):
        jq = self._HashMap()
        for term, w in weights.items():
            jq.put(term, self._Integer(w))
        return jq

    @staticmethod
    def _hits(scored_docs) -> list[tuple[str, float]]:
        return [(h.docid, float(h.score)) for h in scored_docs]

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]:
        return self.batch_search([query], ["q"], k, threads=1)["q"]

    def explain(self, query, docid: str, all_terms: bool = False):
        """Per-term contributions ``(term, query weight, document tf, product)`` of a hit; they sum to its score."""
        from .explanation import explain

        return explain(self, query, docid, all_terms)

    def batch_search(self, queries: Sequence[str], qids: Sequence[str], k: int = 10,
                     threads: int | None = None) -> dict[str, list[tuple[str, float]]]:
        """Encode and search ``queries``; ``threads`` search threads (default: one per core)."""
        from .query_encoder import default_workers

        threads = default_workers() if threads is None else threads
        if len(queries) != len(qids):
            raise SpladeError(f"{len(queries)} queries but {len(qids)} query ids.")
        encoded = self.encode_for_search(queries)
        if self._seismic is not None:
            return self._seismic.search(encoded, [str(q) for q in qids], int(k), int(threads))
        if self._batch is not None:  # integer weights, so scale 1: the same quantisation as the stock path
            return self._batch.search(encoded, [str(q) for q in qids], int(k), int(threads), scale=1.0)
        jqueries, jqids = self._ArrayList(), self._ArrayList()
        for qid, weights in zip(qids, encoded):
            jqueries.add(self._jquery(weights))
            jqids.add(str(qid))
        results = self._searcher.batch_search(jqueries, jqids, int(k), int(threads))
        return {str(qid): self._hits(results.get(str(qid)) or []) for qid in qids}

    def close(self):
        (self._seismic or self._batch or self._searcher).close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def search_topics(index_dir: str | os.PathLike, encoder: str | SpladeEncoder, topics: str | os.PathLike,
                  output: str | os.PathLike, hits: int = 1000, threads: int | None = None, batch_size: int = 256,
                  device: str = "auto", progress: bool = True, engine: str = "lucene", query_cut: int | None = None,
                  heap_factor: float | None = None) -> dict[str, list[tuple[str, float]]]:
    """Search every query of ``topics`` and write a TREC run to ``output`` (atomically); ``engine`` and its
    parameters as :class:`SpladeSearcher`'s."""
    from tqdm import tqdm

    from .runs import write_run
    from .topics import read_topics

    queries = read_topics(topics)
    searcher = SpladeSearcher(index_dir, encoder, device=device, engine=engine, query_cut=query_cut,
                              heap_factor=heap_factor)
    qids = list(queries)
    results: dict[str, list[tuple[str, float]]] = {}
    with tqdm(total=len(qids), unit="query", desc="search", disable=not progress) as bar:
        for start in range(0, len(qids), batch_size):
            chunk = qids[start:start + batch_size]
            results.update(searcher.batch_search([queries[q] for q in chunk], chunk, hits, threads))
            bar.update(len(chunk))
    write_run(output, results)
    return results
