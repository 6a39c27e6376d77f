"""Training SPLADE models (the SPLADE-v3 recipe): negative mining, teacher scores, distillation training.

Modules: :mod:`.losses` (KL, MarginMSE, FLOPS, L1), :mod:`.teachers` (scorers, min-max ensemble, rescoring, score
files), :mod:`.mine` (negative pools), :mod:`.data` (per-step sampling), :mod:`.trainer` (the loop, checkpoints,
resume), :mod:`.distributed` (DDP, global FLOPS), :mod:`.bench` (throughput), :mod:`.firststage` (small in-memory
BM25 and exhaustive SPLADE search), :mod:`.experiment` (the Cranfield/Vaswani experiment), :mod:`.cli`.
Importing this package imports no torch; the modules load heavy dependencies when used.
"""
