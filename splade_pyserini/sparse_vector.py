"""``SparseVector``: one SPLADE vector with its vocabulary, for looking at in notebooks and comparing by hand.

A vector holds term ids and weights (ascending ids, zeros dropped) and the vocabulary that names them. It knows
whether it encodes a query and, when it was made from text, which vocabulary entries the text itself contains
(``own_terms``): the other terms are *expansion* terms, the ones the model added. In a notebook a vector renders as
a table of its top terms with inline bars, expansion terms in italics and marked ``+``.

``as_vectors(encoder, texts, kind)`` encodes texts into ``SparseVector`` objects::

    q = as_vectors(encoder, ["why do coral reefs turn white"], "query")[0]
    d = as_vectors(encoder, [doc_text])[0]
    q.top(5), q.dot(d), q.overlap(d), q.contributions(d)
"""

from __future__ import annotations

import html
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = ["SparseVector", "as_vectors"]


class SparseVector:
    """A sparse vocabulary vector: ``terms`` (int ids, ascending), ``weights`` (> 0), ``vocab`` (id → token).

    ``is_query`` says whether it encodes a query; ``own_terms`` (ids or tokens) are the entries of the text's own
    tokens (None when unknown: then no term is marked as expansion); ``label`` names it in ``repr`` and HTML.
    """

    __slots__ = ("terms", "weights", "vocab", "is_query", "own_terms", "label", "_index")

    def __init__(self, terms: Sequence[int], weights: Sequence[float], vocab: Sequence[str], is_query: bool = False,
                 own_terms: Iterable[int | str] | None = None, label: str | None = None):
        terms = np.asarray(terms, dtype=np.int64).ravel()
        weights = np.asarray(weights).ravel()
        if terms.shape != weights.shape:
            raise ValueError(f"{len(terms)} term ids but {len(weights)} weights.")
        if len(terms) and (terms.min() < 0 or terms.max() >= len(vocab)):
            raise ValueError(f"term ids must lie in [0, {len(vocab)}), the vocabulary's range.")
        keep = weights != 0
        terms, weights = terms[keep], weights[keep]
        order = np.argsort(terms, kind="stable")
        terms, weights = terms[order], weights[order]
        if len(terms) > 1 and (np.diff(terms) == 0).any():
            raise ValueError("term ids must be unique within a vector.")
        self.terms = terms
        self.weights = weights
        self.vocab = vocab
        self.is_query = bool(is_query)
        self.label = label
        self._index = None
        if own_terms is None:
            self.own_terms = None
        else:
            ids = set()
            for t in own_terms:
                if isinstance(t, (int, np.integer)):
                    ids.add(int(t))
                else:
                    i = self._token_index().get(t)
                    if i is not None:
                        ids.add(i)
            self.own_terms = frozenset(ids)

    # --- construction ---------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, weights: Mapping[str, float], vocab: Sequence[str], **kwargs) -> "SparseVector":
        """From ``{token: weight}`` (tokens must be in ``vocab``)."""
        index = {t: i for i, t in enumerate(vocab) if t is not None}
        missing = [t for t in weights if t not in index]
        if missing:
            raise KeyError(f"tokens not in the vocabulary: {missing[:5]}")
        vec = cls([index[t] for t in weights], list(weights.values()), vocab, **kwargs)
        vec._index = index
        return vec

    def _token_index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {t: i for i, t in enumerate(self.vocab) if t is not None}
        return self._index

    def token(self, term_id: int) -> str:
        t = self.vocab[int(term_id)]
        return t if t is not None else f"[unused{int(term_id)}]"

    # --- basic views ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.terms)

    def _order(self) -> np.ndarray:
        """Positions by weight descending, ties by token (so the order never depends on the platform)."""
        tokens = [self.token(t) for t in self.terms]
        return np.array(sorted(range(len(self.terms)), key=lambda i: (-float(self.weights[i]), tokens[i])), dtype=np.int64)

    def top(self, k: int | None = 10) -> list[tuple[str, float]]:
        """The ``k`` heaviest terms as ``(token, weight)``, heaviest first (``k=None``: all)."""
        order = self._order()
        if k is not None:
            order = order[:k]
        return [(self.token(self.terms[i]), _num(self.weights[i])) for i in order]

    def to_dict(self) -> dict[str, float]:
        """``{token: weight}`` in id order (the ``encode_documents`` / ``encode_queries`` form)."""
        return {self.token(t): _num(w) for t, w in zip(self.terms, self.weights)}

    def is_expansion(self, term: int | str) -> bool:
        """True when the term is not among the text's own tokens (False when those are unknown)."""
        if self.own_terms is None:
            return False
        if not isinstance(term, (int, np.integer)):
            term = self._token_index().get(term, -1)
        return int(term) not in self.own_terms

    def expansion_terms(self) -> list[str]:
        """Tokens the model added (not in the text), heaviest first; empty when the own tokens are unknown."""
        return [t for t, _ in self.top(None) if self.is_expansion(t)]

    @property
    def l1(self) -> float:
        return float(np.abs(self.weights).sum())

    def quantize(self, scale: float) -> "SparseVector":
        """Integer weights ``round(w * scale)`` (halves away from zero, zeros dropped), as they are indexed/searched."""
        from .encoder import quantize

        q = quantize(self.weights, scale)
        return SparseVector(self.terms, q, self.vocab, self.is_query, self.own_terms, self.label)

    # --- comparing two vectors ------------------------------------------------------------------------------------
    def _aligned(self, other) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shared term ids, self weights, other weights) on the shared terms."""
        if isinstance(other, Mapping):
            other = SparseVector.from_dict(other, self.vocab)
        if not isinstance(other, SparseVector):
            raise TypeError(f"expected a SparseVector or a {{token: weight}} dict, not {type(other).__name__}")
        if other.vocab is not self.vocab and (len(other.vocab) != len(self.vocab) or list(other.vocab) != list(self.vocab)):
            raise ValueError("the two vectors use different vocabularies.")
        shared, ia, ib = np.intersect1d(self.terms, other.terms, assume_unique=True, return_indices=True)
        return shared, self.weights[ia], other.weights[ib]

    def dot(self, other: "SparseVector | Mapping[str, float]") -> float:
        """``Σ_t self_t × other_t`` over the shared terms (the SPLADE score, before quantisation)."""
        _, a, b = self._aligned(other)
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":
            return int(np.dot(a.astype(np.int64), b.astype(np.int64)))
        return float(np.dot(a.astype(np.float64), b.astype(np.float64)))

    def contributions(self, other: "SparseVector | Mapping[str, float]") -> list[tuple[str, float, float, float]]:
        """``(token, self weight, other weight, product)`` for each shared term, largest product first."""
        shared, a, b = self._aligned(other)
        integer = a.dtype.kind in "iu" and b.dtype.kind in "iu"
        rows = []
        for t, x, y in zip(shared, a, b):
            prod = int(x) * int(y) if integer else float(x) * float(y)
            rows.append((self.token(t), _num(x), _num(y), prod))
        rows.sort(key=lambda r: (-r[3], r[0]))
        return rows

    def overlap(self, other: "SparseVector | Mapping[str, float]") -> list[str]:
        """The shared terms, ordered by their contribution to :meth:`dot` (largest first)."""
        return [r[0] for r in self.contributions(other)]

    # --- display --------------------------------------------------------------------------------------------------
    def _kind(self) -> str:
        return "query" if self.is_query else "document"

    def __repr__(self) -> str:
        head = ", ".join(f"{t}{'+' if self.is_expansion(t) else ''}: {_fmt(w)}" for t, w in self.top(8))
        more = ", …" if len(self) > 8 else ""
        name = f" {self.label!r}" if self.label else ""
        return f"SparseVector({self._kind()}{name}, {len(self)} terms: {head}{more})"

    def _repr_html_(self, k: int = 20) -> str:
        return self.to_html(k)

    def to_html(self, k: int = 20) -> str:
        """An HTML table of the ``k`` heaviest terms with bars (width ∝ weight / the largest weight).

        Expansion terms (not among the text's own tokens) are in italics, with ``+`` in the *exp.* column.
        """
        rows = self.top(k)
        peak = max((abs(float(w)) for _, w in rows), default=0.0) or 1.0
        marked = self.own_terms is not None
        n_exp = len(self.expansion_terms()) if marked else 0
        title = html.escape(self.label) + " · " if self.label else ""
        summary = f"{title}{self._kind()} vector · {len(self)} terms"
        if marked:
            summary += f" · {n_exp} expansion"
        summary += f" · L1 {self.l1:.4g}"
        cell = "padding:1px 6px;text-align:left;"
        out = [
            '<div class="splade-vector">',
            f'<div style="font-size:90%;margin-bottom:2px;">{summary}</div>',
            '<table style="border-collapse:collapse;font-size:90%;">',
            "<thead><tr>"
            f'<th style="{cell}">#</th><th style="{cell}">term</th>'
            + (f'<th style="{cell}" title="expansion term: not in the text">exp.</th>' if marked else "")
            + f'<th style="{cell}">weight</th><th style="{cell}min-width:160px;"></th></tr></thead>',
            "<tbody>",
        ]
        for rank, (token, w) in enumerate(rows, 1):
            exp = marked and self.is_expansion(token)
            width = 100.0 * abs(float(w)) / peak
            color = "#e8a33d" if exp else "#4c78a8"
            style = "font-style:italic;color:#a35d00;" if exp else ""
            out.append(
                f'<tr class="{"expansion" if exp else "own"}">'
                f'<td style="{cell}">{rank}</td>'
                f'<td style="{cell}{style}"><code>{html.escape(token)}</code></td>'
                + (f'<td style="{cell}">{"+" if exp else ""}</td>' if marked else "")
                + f'<td style="{cell}text-align:right;">{_fmt(w)}</td>'
                f'<td style="{cell}"><div style="background:{color};height:10px;width:{width:.1f}%;"></div></td>'
                "</tr>"
            )
        out.append("</tbody></table>")
        if len(self) > len(rows):
            out.append(f'<div style="font-size:80%;color:#666;">… {len(self) - len(rows)} more terms</div>')
        out.append("</div>")
        return "\n".join(out)


def _num(x):
    """A numpy scalar as a plain int or float."""
    return int(x) if isinstance(x, (int, np.integer)) else float(x)


def _fmt(w) -> str:
    return str(int(w)) if isinstance(w, (int, np.integer)) else f"{float(w):.3f}"


def as_vectors(encoder, texts: Sequence[str], kind: str = "document", quantized: bool = False,
               labels: Sequence[str] | None = None) -> list[SparseVector]:
    """Encode ``texts`` with a :class:`~splade_pyserini.encoder.SpladeEncoder` into :class:`SparseVector` objects.

    Queries are encoded each alone, as :meth:`SpladeEncoder.quantized_queries` and the searcher do, so their
    weights are exactly the searched ones; ``quantized=True`` gives the integer weights ``round(w × card.scale)``.
    Each vector knows the text's own tokens (after truncation, special tokens left out), so the expansion terms
    can be marked.
    """
    if kind not in ("document", "query"):
        raise ValueError(f"kind must be 'document' or 'query', not {kind!r}")
    texts = list(texts)
    if labels is not None and len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels.")
    from .encoder import bag_of_words

    card = encoder.card
    max_length = card.doc_max_length if kind == "document" else card.query_max_length
    ids = encoder.tokenize(texts, max_length)
    batch = encoder.encode_ids(ids, kind)
    own = bag_of_words(ids, encoder.vocab_size, encoder.special_ids).numpy()
    out = []
    for i in range(len(batch)):
        terms, weights = batch.row(i)
        vec = SparseVector(terms, weights, encoder.vocab, is_query=kind == "query",
                           own_terms=np.flatnonzero(own[i]).tolist(),
                           label=labels[i] if labels is not None else None)
        out.append(vec.quantize(card.scale) if quantized else vec)
    return out
