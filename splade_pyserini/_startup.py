"""Start-up hook (run from ``splade_pyserini.pth`` in every Python of the environment): cheap and lazy.

It only registers an import watcher. Nothing happens unless Pyserini is imported; then
* before ``pyserini`` runs: a Java >= 21 is found and ``JAVA_HOME`` set (as :func:`splade_pyserini.jdk.ensure_java`);
* after ``pyserini.pyclass`` has started the JVM: Lucene's limit of 1,024 clauses per query is raised (a SPLADE query
  has a clause per term);
* after ``pyserini.search.lucene._impact_searcher`` runs: ``LuceneImpactSearcher`` learns this package's encoder
  card names and local model folders (see :mod:`splade_pyserini.pyserini_plugin`).
Any failure here is swallowed: the hook must never break another program.
"""

import logging
import sys
from importlib.abc import MetaPathFinder

_AFTER = {"pyserini.search.lucene._impact_searcher": "patch_impact_searcher", "pyserini.pyclass": "allow_long_queries"}


class _Watcher(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "pyserini" and fullname not in _AFTER:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module, _original=original, _name=fullname):
            if _name == "pyserini":
                _quietly("prepare_java")
            _original(module)
            if _name in _AFTER:
                _quietly(_AFTER[_name], module)

        try:
            loader.exec_module = exec_module
        except Exception:
            return spec
        return spec


def _quietly(function: str, *args):
    try:
        from . import pyserini_plugin

        getattr(pyserini_plugin, function)(*args)
    except Exception as e:  # never break the importing program
        logging.getLogger("splade_pyserini.startup").warning("splade-pyserini: %s skipped: %s", function, e)


def install():
    if not any(isinstance(f, _Watcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _Watcher())
