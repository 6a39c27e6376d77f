"""Re-ranking a first-stage run with a cross-encoder (``AutoModelForSequenceClassification``).

The SPLADE-v3 paper re-ranks SPLADE-v3's top 50 with cross-encoders (MiniLM, DeBERTaV3). For every query the top
``k`` documents of the run are scored as ``(query, document text)`` pairs; the score is the single logit of a
one-label model, or ``logit[1] - logit[0]`` of a two-label (irrelevant/relevant) model: the scoring (and its
truncation) is :class:`.crossencoder.CrossEncoder`'s, the same as a distillation teacher's. The model is read from a
local folder only.
"""

from __future__ import annotations

import logging
import os

from ..corpus import read_corpus
from ..errors import SpladeError
from ..runs import Run, ranked, top_k
from .crossencoder import CrossEncoder

logger = logging.getLogger(__name__)


def collect_texts(corpus_source, wanted: set[str]) -> dict[str, str]:
    """Texts of the documents in ``wanted``, streaming the corpus once; an absent document is an error."""
    texts: dict[str, str] = {}
    for doc in read_corpus(corpus_source):
        if doc.id in wanted:
            texts[doc.id] = doc.text
            if len(texts) == len(wanted):
                break
    missing = wanted - texts.keys()
    if missing:
        example = sorted(missing)[0]
        raise SpladeError(f"{len(missing)} document(s) of the run (e.g. {example}) are not in corpus "
                          f"{corpus_source}; pass the corpus the run was retrieved from.")
    return texts


def rerank(run: Run, topics: dict[str, str], corpus_source: str | os.PathLike, model_dir: str | os.PathLike,
           k: int = 50, batch_size: int = 32, device: str = "auto", max_length: int = 512,
           keep_tail: bool = False, progress: bool = False) -> Run:
    """``run`` with each query's top ``k`` re-scored by the cross-encoder in ``model_dir``.

    ``topics`` is ``{qid: text}`` (see :func:`splade_pyserini.topics.read_topics`); queries of the run without a
    topic are an error. By default the result holds only the re-ranked top ``k``; with ``keep_tail=True`` the
    documents below rank ``k`` follow in their original order, scored below every re-ranked one.
    """
    if k < 1:
        raise SpladeError("k (documents to re-rank per query) must be at least 1.")
    heads = top_k(run, k)
    missing = [q for q in heads if q not in topics]
    if missing:
        raise SpladeError(f"{len(missing)} query id(s) of the run (e.g. {missing[0]}) have no text in the topics; "
                          "pass the topics the run was made from.")
    wanted = {d for docs in heads.values() for d in docs}
    texts = collect_texts(corpus_source, wanted)
    scorer = CrossEncoder(model_dir, device, batch_size, max_length)
    keys = [(q, d) for q, docs in heads.items() for d in docs]
    pairs = [(topics[q], texts[d]) for q, d in keys]
    if progress:
        logger.info("re-ranking %d pairs of %d queries on %s", len(pairs), len(heads), scorer.device)
    scores = scorer.score(pairs)
    out: Run = {q: {} for q in heads}
    for (q, d), s in zip(keys, scores):
        out[q][d] = s
    if keep_tail:
        for q, docs in run.items():
            head = out.get(q, {})
            floor = min(head.values()) if head else 0.0
            tail = ranked(docs)[len(head):]
            for rank, (d, _) in enumerate(tail, 1):
                head[d] = floor - rank
            out[q] = head
    return {q: docs for q, docs in out.items() if docs}
