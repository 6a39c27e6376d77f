"""The cross-encoder: one relevance score per ``(query, document text)`` pair, the one rule for re-ranking
(:mod:`.rerank`) and for distillation teachers (:class:`splade_pyserini.train.teachers.CrossEncoderScorer`), so
one pair gets one score whoever asks.

The model is a local Hugging Face ``AutoModelForSequenceClassification`` folder (read offline), in eval mode, bf16
on a GPU that supports it, else fp32. A pair is tokenised as ``tokenizer(query, text, truncation=True,
max_length=L)`` — "longest first": tokens come off the longer of the two until the pair fits, so a short query stays
whole and the document is cut — with ``L`` the asked length (512 by default) capped by the tokenizer's and the
model's position limits. The score is the single logit of a one-label model, or ``logit[1] - logit[0]`` of a
two-label (irrelevant, relevant) model. Pairs are batched in order of length (less padding) and the scores come
back in the order given.
"""

from __future__ import annotations

import os
from typing import Sequence

from ..errors import SpladeError
from .hfmodels import load_model, max_length_for


class CrossEncoder:
    """A local cross-encoder folder, loaded once; :meth:`score` rates ``(query, text)`` pairs."""

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto", batch_size: int = 32,
                 max_length: int = 512):
        if batch_size < 1:
            raise SpladeError("batch size must be at least 1.")
        self.tokenizer, self.model, self.device = load_model(model_dir, "AutoModelForSequenceClassification",
                                                             "cross-encoder", device)
        self.num_labels = int(getattr(self.model.config, "num_labels", 1))
        if self.num_labels not in (1, 2):
            raise SpladeError(f"the cross-encoder {model_dir} has {self.num_labels} output labels; a re-ranker needs "
                              "1 (a score) or 2 (irrelevant, relevant).")
        self.batch_size = int(batch_size)
        self.max_length = max_length_for(self.tokenizer, self.model, max_length)

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Relevance scores of ``(query, text)`` pairs, in the order given."""
        import torch

        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        scores = [0.0] * len(pairs)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], padding=True,
                                     truncation=True, max_length=self.max_length, return_tensors="pt")
                enc = {k: v.to(self.device) for k, v in enc.items()}
                logits = self.model(**enc).logits.float()
                s = logits[:, 0] if self.num_labels == 1 else logits[:, 1] - logits[:, 0]
                for i, v in zip(idx, s.cpu().tolist()):
                    scores[i] = float(v)
        return scores
