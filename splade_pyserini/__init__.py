"""splade-pyserini: the SPLADE-v3 family of learned sparse retrievers on Pyserini/Anserini.

encode → write vectors → index → search → evaluate, and train on the side. Heavy modules (torch, the JVM) load
only when first used, so importing the package is cheap.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_encoder": ("encoder", "load_encoder"),
    "SpladeEncoder": ("encoder", "SpladeEncoder"),
    "EncoderCard": ("cards", "EncoderCard"),
    "resolve_card": ("cards", "resolve_card"),
    "encode_corpus": ("vectors", "encode_corpus"),
    "build_index": ("index", "build_index"),
    "SpladeSearcher": ("search", "SpladeSearcher"),
    "search_topics": ("search", "search_topics"),
    "evaluate": ("eval.metrics", "evaluate"),
    "read_corpus": ("corpus", "read_corpus"),
    "read_topics": ("topics", "read_topics"),
    "read_qrels": ("runs", "read_qrels"),
    "read_run": ("runs", "read_run"),
    "SpladeError": ("errors", "SpladeError"),
    "SparseVector": ("sparse_vector", "SparseVector"),
    "as_vectors": ("sparse_vector", "as_vectors"),
    "explain": ("explanation", "explain"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
