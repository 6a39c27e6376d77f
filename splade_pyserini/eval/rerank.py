"""Re-ranking a first-stage run with a cross-encoder (``AutoModelForSequenceClassification``).

The SPLADE-v3 paper re-ranks SPLADE-v3's top 50 with cross-encoders (MiniLM, DeBERTaV3). For every query the top
``k`` documents of the run are scored as ``(query, document text)`` pairs; the score is the single logit of a
one-label model, or ``logit[1] - logit[0]`` of a two-label (irrelevant/relevant) model. Pairs are sorted by
length and scored in batches, on the GPU in bf16 when one is there. The model is read from a local folder only.
"""

from __future__ import annotations

import os

from ..corpus import read_corpus
from ..errors import SpladeError
from ..runs import Run
from .hfmodels import load_model, max_length_for


def top_k(run: Run, k: int) -> dict[str, list[tuple[str, float]]]:
    """The ``k`` best documents per query, by score descending (ties: docid ascending, a stable order)."""
    return {q: sorted(docs.items(), key=lambda x: (-x[1], x[0]))[:k] for q, docs in run.items()}


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


def score_pairs(tokenizer, model, device, pairs: list[tuple[str, str]], batch_size: int = 32,
                max_length: int = 512) -> list[float]:
    """Relevance scores of ``(query, text)`` pairs, in the order given."""
    import torch

    if batch_size < 1:
        raise SpladeError("batch size must be at least 1.")
    num_labels = int(getattr(model.config, "num_labels", 1))
    if num_labels not in (1, 2):
        raise SpladeError(f"the cross-encoder has {num_labels} output labels; a re-ranker needs 1 (a score) "
                          "or 2 (irrelevant, relevant).")
    max_length = max_length_for(tokenizer, model, max_length)
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    scores = [0.0] * len(pairs)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], padding=True,
                            truncation=True, max_length=max_length, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items()}
            logits = model(**enc).logits.float()
            s = logits[:, 0] if num_labels == 1 else logits[:, 1] - logits[:, 0]
            for i, v in zip(idx, s.cpu().tolist()):
                scores[i] = float(v)
    return scores


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
    wanted = {d for hits in heads.values() for d, _ in hits}
    texts = collect_texts(corpus_source, wanted)
    tokenizer, model, dev = load_model(model_dir, "AutoModelForSequenceClassification", "cross-encoder", device)
    keys = [(q, d) for q, hits in heads.items() for d, _ in hits]
    pairs = [(topics[q], texts[d]) for q, d in keys]
    if progress:
        from tqdm import tqdm

        tqdm.write(f"re-ranking {len(pairs)} pairs of {len(heads)} queries on {dev}")
    scores = score_pairs(tokenizer, model, dev, pairs, batch_size, max_length)
    out: Run = {q: {} for q in heads}
    for (q, d), s in zip(keys, scores):
        out[q][d] = s
    if keep_tail:
        for q, docs in run.items():
            head = out.get(q, {})
            floor = min(head.values()) if head else 0.0
            tail = top_k({q: docs}, len(docs))[q][len(head):]
            for rank, (d, _) in enumerate(tail, 1):
                head[d] = floor - rank
            out[q] = head
    return {q: docs for q, docs in out.items() if docs}
