"""nDCG* of the SPLADE-v3 paper: nDCG@10 over judged documents only.

A document is *judged* for a query when the qrels hold a line for that (query, document) pair with a grade of 0
or more: a grade of 0 is judged (non-relevant) as much as a positive one is. This is what ``trec_eval -J`` does
(``form_res_rels.c``): it removes from each ranking the documents absent from the qrels of that query and those
whose grade is negative (trec_eval reads a negative grade as "in the pool but not judged"), keeps every other
one, and gives grade 0 no gain. Removing documents moves the remaining ones up; their relative order is kept.

The paper applies the judged-only variant to a query set only when its qrels hold both positive and
non-positive judgments (so that "unjudged" and "judged non-relevant" differ); otherwise nDCG* is plain nDCG@10.
"""

from __future__ import annotations

from ..runs import Qrels, Run


def judged_only(run: Run, qrels: Qrels) -> Run:
    """``run`` with every document that ``qrels`` do not judge for that query removed (``trec_eval -J``).

    Documents with grade 0 or more stay; those absent or with a negative grade go. Queries without any judgment keep nothing
    (they are dropped from the returned run); the returned rankings may be empty for no query.
    """
    out: Run = {}
    for qid, docs in run.items():
        judged = qrels.get(qid)
        if not judged:
            continue
        kept = {d: s for d, s in docs.items() if judged.get(d, -1) >= 0}
        if kept:
            out[qid] = kept
    return out


def has_negative_judgments(qrels: Qrels) -> bool:
    """True when some judgment has a non-positive grade (0 or below): a judged non-relevant document."""
    return any(g <= 0 for docs in qrels.values() for g in docs.values())


def has_positive_judgments(qrels: Qrels) -> bool:
    return any(g > 0 for docs in qrels.values() for g in docs.values())


def uses_judged_only(qrels: Qrels) -> bool:
    """The paper's rule: nDCG* is judged-only exactly when the qrels hold positive and non-positive grades."""
    return has_positive_judgments(qrels) and has_negative_judgments(qrels)


def ndcg_star(qrels: Qrels, run: Run, k: int = 10, per_query: bool = False):
    """nDCG*@k: nDCG@k of :func:`judged_only` ``run`` when :func:`uses_judged_only` ``qrels``, else nDCG@k.

    Returns the mean over the judged queries (queries without a ranking count 0, as in :func:`evaluate`),
    or ``{qid: value}`` with ``per_query=True``.
    """
    from .metrics import evaluate

    metric = f"ndcg*@{int(k)}"  # evaluate() applies judged_only() under uses_judged_only()
    return evaluate(qrels, {"run": run}, [metric], per_query=per_query)["run"][metric]
