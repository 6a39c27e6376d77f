"""Evaluation: metrics exactly as trec_eval computes them, and the SPLADE-v3 paper's analysis tools.

* :mod:`.metrics` — ``evaluate`` (trec_eval's definitions and tie rule; ``ndcg@10``, ``map``, … ``ndcg*@k``);
* :mod:`.judged` — nDCG*: judged-only rankings (``trec_eval -J``) and the paper's rule;
* :mod:`.significance` — paired Student t / randomisation tests, Holm and Bonferroni, win/tie/loss tables;
* :mod:`.meta` — RANGER random-effects meta-analysis and forest plots;
* :mod:`.suite` — every system on every collection, ending with the meta-analysis;
* :mod:`.cli` — ``add_commands(subparsers)`` for the command line.

Run producers (BM25, dense, re-ranking, fusion) are :mod:`splade_pyserini.retrieve`'s. This package may import
the package's base modules (``errors``, ``fileio``, ``runs``, ``plots``), numpy, scipy and matplotlib; not
``retrieve`` or ``train``. Only the light modules are imported here; ``suite`` loads on use.
"""

from .judged import has_negative_judgments, judged_only, ndcg_star
from .meta import forest_plot, meta_analysis
from .metrics import DEFAULT_METRICS, evaluate
from .significance import compare

__all__ = ["DEFAULT_METRICS", "compare", "evaluate", "forest_plot", "has_negative_judgments", "judged_only",
           "meta_analysis", "ndcg_star"]
