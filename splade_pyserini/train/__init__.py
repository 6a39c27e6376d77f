"""Training SPLADE models (the SPLADE-v3 recipe): negative mining, teacher scores, distillation training.

Modules: :mod:`.losses` (KL, MarginMSE, FLOPS, L1), :mod:`.teachers` (scorers, min-max ensemble, rescoring, score
files), :mod:`.mine` (negative pools), :mod:`.data` (per-step sampling), :mod:`.config` (the training configuration),
:mod:`.checkpoints` (model folders, checkpoints, the final model), :mod:`.trainer` (the loop, resume),
:mod:`.distributed` (DDP, global FLOPS), :mod:`.bench` (throughput), :mod:`.firststage` (exhaustive in-memory SPLADE
search), :mod:`.model_card`, :mod:`.experiment` (the Cranfield/Vaswani experiment), :mod:`.cli`.

May import: the package's base modules (``errors``, ``logs``, ``fileio``, ``runs``, ``corpus``, ``topics``, ``cards``,
``checkpoint``, ``encoder``, ``provenance``, ``ranks``, ``st_bridge``), :mod:`splade_pyserini.retrieve` (BM25, the
cross-encoder), :mod:`splade_pyserini.eval` (the experiment's metrics) and, in :mod:`.cli`, the main command line's
argument helpers; nothing imports ``train`` but the command line. Importing this package imports no torch; the
modules load heavy dependencies when used.
"""
