"""splade-pyserini: the SPLADE-v3 family of learned sparse retrievers on Pyserini/Anserini.

encode → write vectors → index → search → evaluate, and train on the side. Heavy modules (torch, the JVM) load
only when first used, so importing the package is cheap.

It holds the pipeline as modules (``corpus`` → ``encoder`` → ``vectors`` → ``index`` → ``search`` → ``runs``), the
ground they stand on (``errors``, ``logs``, ``fileio``, ``inputs``, ``provenance``, ``ranks``, ``jdk``, ``anserini``,
``javaext``, ``cards``), the bridges (``pyserini_plugin``, ``st_bridge``, ``onnx_export``) and the packages beside
the pipeline: ``eval/``, ``retrieve/``, ``train/``, ``regression/``, ``bench/`` (README, "Layout"). The pipeline and
the ground import none of those packages; each package's ``__init__`` says what it may import; ``cli`` imports them
all.
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
