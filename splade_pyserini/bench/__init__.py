"""Benchmarks: commands that measure this package against its peers in the same run and print the ratios.

* :mod:`.encode` — ``bench encode``: document encoding against Pyserini's and sentence-transformers' encoders;
* :mod:`.index_search` — ``bench index`` and ``bench search``: the Java extension against stock Anserini/Pyserini;
* :mod:`.scale` — ``bench scale``: exact search as a synthetic collection grows;
* :mod:`.synthetic` — SPLADE-like synthetic vectors and queries, their shapes fitted to real output;
* :mod:`.cli` — ``add_commands(subparsers)``: the ``bench`` command group (``bench train`` is
  :mod:`splade_pyserini.train.cli`'s).

May import every pipeline module (``encoder``, ``query_encoder``, ``vectors``, ``index``, ``search``, ``anserini``,
``javaext``) and the base ones, and the peers it measures (Pyserini, sentence-transformers); nothing in the package
imports ``bench`` but the command line. A speed claim lives here, as a ratio against a peer measured in the same run,
never in a unit test.
"""
