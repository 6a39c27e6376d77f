"""Pyserini integration: ``python -m pyserini.search.lucene --impact --encoder splade-v3 …`` uses this package.

:func:`patch_impact_searcher` wraps ``LuceneImpactSearcher``: when the query encoder is one of this package's card
names (``splade-tiny``, ``splade-v3`` …) or a local model folder, it becomes a :class:`PyseriniQueryEncoder`, which
quantises queries with the index's own scale and refuses a mismatched index, and ``search``/``batch_search`` go
through the Java extension's batch searcher (one JNI call per batch; queries encoded in parallel, each alone):
the same hits, docids and scores as Pyserini's own path, without a JNI call per query term and per hit.
Every other value (Pyserini's own names, Hugging Face ids, ONNX encoders) goes to Pyserini unchanged, and so do
searches with ``fields``, RM3 or Rocchio.
"""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def prepare_java() -> None:
    from .jdk import ensure_java

    ensure_java()
    try:  # the Java extension, when it can be built, goes on the classpath before the JVM starts
        from .javaext import enable

        enable(quiet=True)
    except ImportError:
        pass


def allow_long_queries(module=None) -> None:
    from .anserini import allow_long_queries as allow

    allow()


def handles(encoder) -> bool:
    """True for this package's card names and local model folders (not for Hugging Face ids)."""
    if not isinstance(encoder, str):
        return False
    from .cards import CARD_FILE, is_card_name

    if is_card_name(encoder):
        return True
    path = Path(encoder)
    return path.is_dir() and any((path / f).is_file() for f in (CARD_FILE, "config.json", "modules.json"))


class PyseriniQueryEncoder:
    """Pyserini ``QueryEncoder`` protocol: ``encode(text) -> {token: int weight}``, quantised like the index."""

    def __init__(self, encoder: str, index_dir: str | None = None, device: str = "auto"):
        from .encoder import load_encoder
        from .search import check_compatible

        self.encoder = load_encoder(encoder, device=device)
        self.scale = None  # without an index: the card's
        if index_dir is not None and os.path.isdir(index_dir):
            self.scale = check_compatible(index_dir, self.encoder)  # the index's own scale

    def encode(self, text: str, **kwargs) -> dict[str, int]:
        return self.encoder.quantized_queries([text], self.scale)[0]

    def encode_batch(self, texts) -> list[dict[str, int]]:
        """Many queries at once (in parallel, each encoded alone: the same weights as :meth:`encode`)."""
        return self.encoder.quantized_queries(list(texts), self.scale)


class Hit:
    """A search result with Pyserini's ``JScoredDoc`` attributes ``docid`` and ``score``; ``raw``, ``contents`` and
    ``lucene_document`` are read from the index when asked for."""

    __slots__ = ("docid", "score", "_searcher")

    def __init__(self, docid: str, score: float, searcher):
        self.docid, self.score, self._searcher = docid, score, searcher

    def _field(self, name: str):
        doc = self._searcher.doc(self.docid)
        return None if doc is None else getattr(doc, name)()

    lucene_document = property(lambda self: self._field("lucene_document"))
    raw = property(lambda self: self._field("raw"))
    contents = property(lambda self: self._field("contents"))

    def __repr__(self) -> str:
        return f"Hit(docid={self.docid!r}, score={self.score})"


def _fast_path(searcher, fields):
    """The extension's batch searcher when this search can use it, else None (Pyserini's own path)."""
    batch = getattr(searcher, "_splade_batch", None)
    if batch is None or fields:
        return None
    if searcher.object.use_rm3() or searcher.object.use_rocchio():
        return None
    return batch


def _encode(searcher, queries) -> list[dict[str, int]]:
    """Integer query weights, with Pyserini's rule of keeping only index terms whose idf exceeds ``min_idf``.

    Pyserini's searcher already holds the idf of every index term; the query encoder computes the weights of
    those terms only (the others would be dropped, or would match nothing), as ``SpladeSearcher`` does."""
    idf, floor = searcher.idf, searcher.min_idf
    encoder = searcher.query_encoder.encoder
    if not hasattr(searcher, "_splade_vocabulary"):
        searcher._splade_vocabulary = encoder.vocabulary_ids(t for t, v in idf.items() if v > floor)
    if searcher._splade_vocabulary is not None:
        return encoder.quantized_queries(list(queries), searcher.query_encoder.scale,
                                         vocabulary=searcher._splade_vocabulary)
    encoded = searcher.query_encoder.encode_batch(queries)
    if floor == float("-inf"):
        return encoded  # terms missing from the index score nothing: no filter needed
    return [{t: w for t, w in q.items() if t in idf and idf[t] > floor} for q in encoded]


def patch_impact_searcher(module) -> None:
    cls = module.LuceneImpactSearcher
    if getattr(cls.__init__, "_splade_pyserini", False):
        return
    original = cls.__init__
    original_search, original_batch_search, original_close = cls.search, cls.batch_search, cls.close
    signature = inspect.signature(original)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        encoder = arguments.get("query_encoder")
        ours = arguments.get("encoder_type", "pytorch") == "pytorch" and handles(encoder)
        if ours:
            arguments["query_encoder"] = PyseriniQueryEncoder(encoder, arguments.get("index_dir"))
            if arguments.get("min_idf", 0) == 0:
                # Pyserini drops query terms whose idf is <= min_idf (0 by default), i.e. terms found in every
                # document; keep them, as Anserini's SimpleImpactSearcher and splade-pyserini search do.
                arguments["min_idf"] = float("-inf")
        original(*bound.args, **bound.kwargs)
        self._splade_batch = None
        if ours:
            try:
                from .javaext import BatchSearcher, enable

                if enable() is not None:  # None: no jar, after a warning saying why
                    self._splade_batch = BatchSearcher(self.index_dir)
            except Exception as e:  # e.g. the JVM started without the extension: Pyserini's own path, and why
                logger.warning("searching %s through Pyserini's own path, not the Java extension's batch searcher: "
                               "%s: %s", self.index_dir, type(e).__name__, e)
                self._splade_batch = None

    def search(self, q, k: int = 10, fields=dict()):
        batch = _fast_path(self, fields)
        if batch is None:
            return original_search(self, q, k, fields)
        hits = batch.search(_encode(self, [q]), ["q"], int(k), 1, scale=1.0)["q"]
        return [Hit(d, s, self) for d, s in hits]

    def batch_search(self, queries, qids, k: int = 10, threads: int = 1, fields=dict()):
        batch = _fast_path(self, fields)
        if batch is None:
            return original_batch_search(self, queries, qids, k, threads, fields)
        qids = [str(q) for q in qids]
        results = batch.search(_encode(self, list(queries)), qids, int(k), max(1, int(threads)), scale=1.0)
        return {q: [Hit(d, s, self) for d, s in results[q]] for q in qids}

    def close(self):
        if getattr(self, "_splade_batch", None) is not None:
            self._splade_batch.close()
            self._splade_batch = None
        original_close(self)

    for fn, orig in ((__init__, original), (search, original_search), (batch_search, original_batch_search),
                     (close, original_close)):
        fn._splade_pyserini = True
        fn.__doc__ = orig.__doc__
    cls.__init__, cls.search, cls.batch_search, cls.close = __init__, search, batch_search, close
