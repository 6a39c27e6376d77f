"""Why did a document score what it scored? Per-term contributions of a SPLADE hit, read from the index itself.

(The module is ``explanation`` so that ``splade_pyserini.explain`` always means the function :func:`explain`.)

An impact index scores ``Σ_t q_t × tf_t``: ``q_t`` is the query's integer weight (quantised with the index's scale,
exactly as :class:`~splade_pyserini.search.SpladeSearcher` searches) and ``tf_t`` the document's integer weight, stored
as the term frequency. :func:`explain` reads ``tf_t`` from the document's stored docvector (indexes are built with
``-storeDocvectors``; Anserini's ``IndexReaderUtils.getDocumentVector`` on a Lucene reader of the index), so
the contributions are integers that sum exactly to the searcher's score::

    rows = explain(searcher, "why do coral reefs turn white", "d12")
    sum(c for _, _, _, c in rows) == dict(searcher.search(query, 10))["d12"]
"""

from __future__ import annotations

import html
import weakref
from typing import Mapping

import numpy as np

from .errors import SpladeError

__all__ = ["Explanation", "explain", "explain_hits", "document_vector", "stored_vector"]


class Explanation(list):
    """``[(term, query_weight, doc_tf, contribution)]``, largest contribution first, plus ``total``/``docid``.

    A plain list for code; in a notebook it renders as a table with bars, expansion terms marked ``+``.
    """

    def __init__(self, rows, query=None, docid: str | None = None, expansion: frozenset[str] | None = None):
        super().__init__(rows)
        self.query = query
        self.docid = docid
        self.expansion = expansion  # query terms that are not among the query's own tokens (None: unknown)

    @property
    def total(self) -> int:
        """The score: the sum of the contributions."""
        return sum(int(r[3]) for r in self)

    def __repr__(self) -> str:
        body = ", ".join(f"{t}: {q}×{d}={c}" for t, q, d, c in self[:8])
        more = ", …" if len(self) > 8 else ""
        return f"Explanation(docid={self.docid!r}, score={self.total}, {len(self)} terms: {body}{more})"

    def _repr_html_(self) -> str:
        peak = max((r[3] for r in self), default=0) or 1
        cell = "padding:1px 6px;text-align:left;"
        marked = self.expansion is not None
        head = (f'<div style="font-size:90%;margin-bottom:2px;">document <code>{html.escape(str(self.docid))}</code> · '
                f"score {self.total} = Σ query weight × document weight over {len(self)} matching terms</div>")
        out = ['<div class="splade-explanation">', head, '<table style="border-collapse:collapse;font-size:90%;"><thead><tr>',
               f'<th style="{cell}">term</th>' + (f'<th style="{cell}">exp.</th>' if marked else "")
               + f'<th style="{cell}">query</th><th style="{cell}">doc</th><th style="{cell}">contribution</th>'
               f'<th style="{cell}">share</th><th style="{cell}min-width:160px;"></th></tr></thead><tbody>']
        total = self.total or 1
        for term, q, d, c in self:
            exp = marked and term in self.expansion
            style = "font-style:italic;color:#a35d00;" if exp else ""
            color = "#e8a33d" if exp else "#4c78a8"
            out.append(
                f'<tr><td style="{cell}{style}"><code>{html.escape(term)}</code></td>'
                + (f'<td style="{cell}">{"+" if exp else ""}</td>' if marked else "")
                + f'<td style="{cell}text-align:right;">{q}</td><td style="{cell}text-align:right;">{d}</td>'
                f'<td style="{cell}text-align:right;">{c}</td><td style="{cell}text-align:right;">{100.0 * c / total:.1f}%</td>'
                f'<td style="{cell}"><div style="background:{color};height:10px;width:{100.0 * c / peak:.1f}%;"></div></td></tr>'
            )
        out.append("</tbody></table></div>")
        return "\n".join(out)


# --- the stored document vectors ------------------------------------------------------------------------------------
def _reader(searcher):
    """A Lucene IndexReader on the searcher's index, opened once per searcher (closed when the searcher is
    garbage-collected), or a fresh one for an index folder (the caller closes it)."""
    from .anserini import autoclass

    cached = getattr(searcher, "_explain_reader", None)
    if cached is not None:
        return cached
    index_dir = getattr(searcher, "index_dir", None)
    reader = autoclass("io.anserini.index.IndexReaderUtils").getReader(str(index_dir if index_dir else searcher))
    if index_dir is not None:
        try:
            searcher._explain_reader = reader
            weakref.finalize(searcher, _close_quietly, reader).atexit = False  # no JNI calls at interpreter exit
        except AttributeError:  # a searcher with __slots__: no caching
            pass
    return reader


def _close_quietly(reader) -> None:
    try:
        reader.close()
    except Exception:  # the JVM may be shutting down
        pass


def _utils():
    from .anserini import autoclass

    return autoclass("io.anserini.index.IndexReaderUtils")


def _docvector(searcher, docid: str):
    """The Java ``Map<String, Long>`` docvector of ``docid``; a clear error if the docid or the vectors are missing.

    ``searcher``: a SpladeSearcher (its reader is kept for later calls) or an index folder (read and closed)."""
    utils = _utils()
    reader = _reader(searcher)
    try:
        if utils.convertDocidToLuceneDocid(reader, str(docid)) < 0:
            raise SpladeError(f"document {docid!r} is not in the index.")
        vector = utils.getDocumentVector(reader, str(docid))
        if vector is None:
            raise SpladeError(f"the index holds no docvector for {docid!r}; rebuild it with stored docvectors "
                              "(build_index(..., store_docvectors=True), the default) to explain its scores.")
        return vector  # a java.util.Map built for the call: valid after the reader closes
    finally:
        if getattr(searcher, "_explain_reader", None) is not reader:
            _close_quietly(reader)


def _entries(jmap):
    it = jmap.entrySet().iterator()
    while it.hasNext():
        yield it.next()


def document_vector(searcher, docid: str) -> dict[str, int]:
    """``{token: integer weight}`` of a document, as stored in the index (``searcher``: a SpladeSearcher or an
    index folder)."""
    vector = _docvector(searcher, docid)
    return dict(sorted((str(e.getKey()), int(e.getValue())) for e in _entries(vector)))


def stored_vector(searcher, docid: str):
    """The stored (integer) vector of a document as a :class:`~splade_pyserini.sparse_vector.SparseVector`."""
    from .sparse_vector import SparseVector

    return SparseVector.from_dict(document_vector(searcher, docid), searcher.encoder.vocab, label=str(docid))


# --- explaining scores ----------------------------------------------------------------------------------------------
def _query_weights(searcher, query) -> tuple[dict[str, int], frozenset[str] | None]:
    if isinstance(query, Mapping):
        return {str(t): int(w) for t, w in query.items() if int(w)}, None
    from .encoder import bag_of_words

    weights = searcher.encode_queries([query])[0]
    encoder = searcher.encoder
    ids = encoder.tokenize([query], encoder.card.query_max_length)
    own = {encoder.vocab[i] for i in np.flatnonzero(bag_of_words(ids, encoder.vocab_size, encoder.special_ids)[0])}
    return weights, frozenset(t for t in weights if t not in own)


def explain(searcher, query: str | Mapping[str, int], docid: str, all_terms: bool = False) -> Explanation:
    """``[(term, query_weight, doc_tf, contribution)]`` for ``docid`` under ``query``, largest contribution first.

    ``query`` is the query text (encoded exactly as ``searcher.search`` encodes it) or ready integer weights
    ``{token: int}``; with weights, ``searcher`` may also be an index folder. ``query_weight × doc_tf = contribution``, all integers, and their sum is the score the
    searcher gives the document. ``all_terms=True`` keeps the query terms the document lacks (``doc_tf = 0``).
    """
    weights, expansion = _query_weights(searcher, query)
    vector = _docvector(searcher, docid)
    rows = []
    for term, qw in weights.items():
        tf = vector.get(term)  # one JNI call per query term
        tf = int(tf) if tf is not None else 0
        if tf or all_terms:
            rows.append((term, qw, tf, qw * tf))
    rows.sort(key=lambda r: (-r[3], -r[1], r[0]))
    return Explanation(rows, query=query, docid=str(docid), expansion=expansion)


def explain_hits(searcher, query: str, k: int = 10) -> list[tuple[str, float, Explanation]]:
    """``[(docid, score, explanation)]`` for the top ``k`` hits of ``searcher.search(query, k)``."""
    hits = searcher.search(query, k)
    weights, expansion = _query_weights(searcher, query)  # the same integer weights the search used
    out = []
    for docid, score in hits:
        e = explain(searcher, weights, docid)
        e.query, e.expansion = query, expansion
        out.append((docid, score, e))
    return out
