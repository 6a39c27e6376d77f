"""Pyserini integration: ``python -m pyserini.search.lucene --impact --encoder splade-v3 …`` uses this package.

:func:`patch_impact_searcher` wraps ``LuceneImpactSearcher.__init__``: when the query encoder is one of this
package's card names (``splade-tiny``, ``splade-v3`` …) or a local model folder, it becomes a
:class:`PyseriniQueryEncoder`, which quantises queries with the index's own scale and refuses a mismatched index.
Every other value (Pyserini's own names, Hugging Face ids, ONNX encoders) goes to Pyserini unchanged.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path


def prepare_java() -> None:
    from .jdk import ensure_java

    ensure_java()
    try:  # the Java extension, when it can be built, goes on the classpath before the JVM starts
        from .javaext import enable

        enable(quiet=True)
    except ImportError:
        pass


def handles(encoder) -> bool:
    """True for this package's card names and local model folders (not for Hugging Face ids)."""
    if not isinstance(encoder, str):
        return False
    from .cards import CARD_FILE, is_card_name

    if is_card_name(encoder):
        return True
    path = Path(encoder)
    return path.is_dir() and ((path / CARD_FILE).is_file() or (path / "config.json").is_file())


class PyseriniQueryEncoder:
    """Pyserini ``QueryEncoder`` protocol: ``encode(text) -> {token: int weight}``, quantised like the index."""

    def __init__(self, encoder: str, index_dir: str | None = None, device: str = "auto"):
        from .encoder import load_encoder
        from .search import check_compatible

        self.encoder = load_encoder(encoder, device=device)
        if index_dir is not None and os.path.isdir(index_dir):
            check_compatible(index_dir, self.encoder)

    def encode(self, text: str, **kwargs) -> dict[str, int]:
        return self.encoder.quantized_queries([text])[0]


def patch_impact_searcher(module) -> None:
    cls = module.LuceneImpactSearcher
    if getattr(cls.__init__, "_splade_pyserini", False):
        return
    original = cls.__init__
    signature = inspect.signature(original)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        encoder = arguments.get("query_encoder")
        if arguments.get("encoder_type", "pytorch") == "pytorch" and handles(encoder):
            arguments["query_encoder"] = PyseriniQueryEncoder(encoder, arguments.get("index_dir"))
            if arguments.get("min_idf", 0) == 0:
                # Pyserini drops query terms whose idf is <= min_idf (0 by default), i.e. terms found in every
                # document; keep them, as Anserini's SimpleImpactSearcher and splade-pyserini search do.
                arguments["min_idf"] = float("-inf")
        original(*bound.args, **bound.kwargs)

    __init__._splade_pyserini = True
    __init__.__doc__ = original.__doc__
    cls.__init__ = __init__
