"""Run producers: what makes a run (``{qid: {docid: score}}``, :data:`splade_pyserini.runs.Run`) other than the
SPLADE impact search itself — baselines, re-ranking and fusion. Evaluating runs is :mod:`splade_pyserini.eval`'s.

* :mod:`.bm25` — Anserini's BM25 (k1 0.9, b 0.4): a Lucene index of a corpus and its search through Pyserini;
* :mod:`.dense` — a dense bi-encoder baseline (faiss exact inner product);
* :mod:`.rerank` — re-ranking a run's top ``k`` with a cross-encoder;
* :mod:`.crossencoder` — the cross-encoder's one scoring rule (truncation included), shared with the
  distillation teachers of :mod:`splade_pyserini.train.teachers`;
* :mod:`.fusion` — hybrid runs: rrf, wsum and sum computed directly, ranx's other fusion methods through ranx;
* :mod:`.hfmodels` — loading local Hugging Face models offline, on the chosen device;
* :mod:`.cli` — ``add_commands(subparsers)``: ``rerank``, ``dense``, ``fuse``.

May import: the package's base modules (``errors``, ``fileio``, ``corpus``, ``topics``, ``runs``, ``anserini``),
torch, transformers, faiss, ranx and Pyserini. Not :mod:`splade_pyserini.eval` or :mod:`splade_pyserini.train`
(which import from here). Nothing heavy is imported by this ``__init__``.
"""
