"""SPLADE encoding: texts → sparse vocabulary weights ``w_j = max_i log(1 + relu(logit_ij))``.

The maths is done the cheap way without changing the result:
* ``log1p∘relu`` is monotone, so the masked max is taken over the raw logits and activated once per text;
* padded positions are made to repeat the text's first ([CLS]) position, so the max needs no mask pass and
  the MLM head never sees a pad token's influence;
* texts are tokenised once (Rust, in batch), sorted by length and cut into batches by a token budget, so
  padding stays small; the MLM head runs in chunks so memory is bounded by the budget, not the corpus;
* the non-zero entries are extracted on the device, and only those leave it.

Variants (card ``variant``): ``full``; ``lexical`` (query weights kept only on the query's own tokens);
``doc`` (queries are the binary bag of their tokens; only documents go through the model).
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from .cards import EncoderCard, resolve_card
from .errors import SpladeError
from .exact import Float64Forward, float32_rounding_as, rows_near_boundary


@dataclass
class SparseBatch:
    """Sparse vectors of a batch of texts in CSR form: text i owns ``terms/weights[offsets[i]:offsets[i+1]]``."""

    offsets: np.ndarray  # int64, len n + 1
    terms: np.ndarray  # int32 vocabulary ids, ascending within a text
    weights: np.ndarray  # float32, > 0

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.terms[a:b], self.weights[a:b]

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[np.ndarray, np.ndarray]]) -> "SparseBatch":
        """One batch of ``(terms, weights)`` rows; the weights keep their dtype."""
        counts = np.fromiter((len(t) for t, _ in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        terms = np.concatenate([t for t, _ in rows]) if rows else np.zeros(0, np.int32)
        weights = np.concatenate([w for _, w in rows]) if rows else np.zeros(0, np.float32)
        return cls(offsets, terms.astype(np.int32, copy=False), weights)


def mlm_head(model):
    """(transform, decoder weight [V, H], decoder bias [V]) of a masked-LM, so logits can be made in chunks."""
    import torch.nn.functional as F

    if hasattr(model, "cls") and hasattr(model.cls, "predictions"):  # BERT family
        head = model.cls.predictions
        return head.transform, head.decoder.weight, head.decoder.bias
    if hasattr(model, "vocab_projector"):  # DistilBERT
        act = model.activation

        def transform(h):
            return model.vocab_layer_norm(act(model.vocab_transform(h)))

        return transform, model.vocab_projector.weight, model.vocab_projector.bias
    if hasattr(model, "lm_head") and hasattr(model.lm_head, "dense"):  # RoBERTa family
        lm = model.lm_head

        def transform(h):
            return lm.layer_norm(F.gelu(lm.dense(h)))

        return transform, lm.decoder.weight, lm.decoder.bias
    return None


def splade_max(model, input_ids, attention_mask, chunk_tokens: int = 8192, head_matmul=None):
    """``[batch, vocab]`` SPLADE weights (differentiable): ``log1p(relu(max over unmasked positions of logits))``.

    ``head_matmul(h)`` may replace ``h @ W.T`` for the vocabulary projection (inference only); if it has a
    ``max_over_positions`` attribute, that function maps ``h [rows, length, hidden]`` straight to the max over
    positions ``[rows, vocab]`` (without materialising all the logits).
    """
    import torch

    parts = mlm_head(model)
    if parts is None:  # unknown architecture: the plain, memory-hungry way
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        logits = logits.masked_fill(~attention_mask.bool().unsqueeze(-1), float("-inf"))
        return torch.log1p(torch.relu(logits.amax(dim=1)))
    transform, weight, bias = parts
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    mask = attention_mask.bool().unsqueeze(-1)
    hidden = torch.where(mask, hidden, hidden[:, :1, :])  # pads repeat [CLS]: the max over all positions is unchanged
    batch, length, _ = hidden.shape
    rows = max(1, chunk_tokens // max(1, length))
    outs = []
    for start in range(0, batch, rows):
        h = transform(hidden[start:start + rows])
        if head_matmul is not None and hasattr(head_matmul, "max_over_positions"):
            outs.append(head_matmul.max_over_positions(h) + bias)
            continue
        logits = torch.matmul(h, weight.t()) if head_matmul is None else head_matmul(h)
        outs.append(logits.amax(dim=1) + bias)  # the bias is constant over positions: add it after the max
    return torch.log1p(torch.relu(torch.cat(outs)))


class NumpyHead:
    """The vocabulary projection's max over positions on the CPU through numpy's BLAS, for padded batches.

    :meth:`max_over_positions` takes the max over each text's positions one vocabulary block at a time, so the
    ``[tokens, vocab]`` logits never exist whole: each block's logits stay in the cache between the matrix product
    and the max, instead of gigabytes going to memory and back. ``blocks``: ``W^T`` cut into ``[blocks, hidden,
    width]`` column blocks (:func:`~splade_pyserini.query_encoder.vocab_blocks`).
    """

    def __init__(self, blocks: np.ndarray, vocab: int):
        self.vocab = vocab
        self.blocks = blocks

    def max_over_positions(self, h):
        import torch

        rows, length, hidden = h.shape
        x = np.ascontiguousarray(h.numpy()).reshape(rows * length, hidden)
        out = np.empty((rows, self.vocab), dtype=np.float32)
        width = self.blocks.shape[2]
        for b, block in enumerate(self.blocks):
            start, stop = b * width, min(self.vocab, (b + 1) * width)
            logits = np.matmul(x, block).reshape(rows, length, width)
            np.max(logits[:, :, :stop - start], axis=1, out=out[:, start:stop])
        return torch.from_numpy(out)


def _resolve_device(device: str) -> str:
    import torch

    if device in (None, "auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"  # one GPU per torchrun rank
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpladeError(f"device {device!r} was asked for but CUDA is not available; use --device cpu.")
    return device


class SpladeEncoder:
    """Encodes documents and queries with one SPLADE model described by an :class:`EncoderCard`."""

    def __init__(self, card: EncoderCard, device: str = "auto", precision: str = "auto",
                 batch_tokens: int | None = None, max_batch: int = 512, compile: bool = False, threads: int | None = None):
        import torch

        from .checkpoint import load_masked_lm, resolve_model_dir

        self.card = card
        self.device = _resolve_device(device)
        if threads:
            torch.set_num_threads(threads)
        self.model_dir = resolve_model_dir(card.model)
        model, self.tokenizer = load_masked_lm(self.model_dir)
        if precision == "auto":
            precision = "bf16" if self.device.startswith("cuda") else "fp32"
        if precision == "bf16" and self.device.startswith("cuda") and not torch.cuda.is_bf16_supported():
            precision = "fp16"
        self.precision = precision
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.model = model.to(self.device, dtype=self.dtype)
        self.batch_tokens = batch_tokens or (65536 if self.device.startswith("cuda") else 8192)
        self.head_chunk = 16384 if self.device.startswith("cuda") else 2048
        self.max_batch = max_batch
        self._forward = splade_max
        self._head_matmul = None
        self._screen = None
        self._restricted: dict[bytes, object] = {}  # screens of the vocabularies queries were restricted to
        self._restricted_lock = threading.Lock()
        self._tokenize_lock = threading.Lock()
        if self.device == "cpu" and self.dtype == torch.float32 and mlm_head(self.model) is not None:
            # On CPUs, the vocabulary projection (≈ 90% of a small SPLADE's work) runs faster through numpy's
            # BLAS (OpenBLAS) than through torch's (MKL picks slow kernels on AMD): same float32 maths.
            from .query_encoder import ScreenedProjection

            _, weight, bias = mlm_head(self.model)
            # queries: screened in batches, then exact per query (see query_encoder); documents share its blocks
            self._screen = ScreenedProjection(weight.detach().numpy(), bias.detach().numpy())
            self._head_matmul = NumpyHead(self._screen.blocks, weight.shape[0])
        if compile:
            self._forward = torch.compile(splade_max, dynamic=True)
        from .query_encoder import OneTextForward

        # Queries: each text alone through a lean forward pass (see query_encoder), on one thread per query.
        self._one_text = OneTextForward(self.model) if OneTextForward.supports(self.model) else None
        self._float64 = Float64Forward(self.model)  # texts near a rounding boundary (see exact)
        self.query_workers = None  # None: one per core
        vocab = self.tokenizer.get_vocab()
        self.vocab = [None] * len(vocab)
        for token, idx in vocab.items():
            if idx < len(self.vocab):
                self.vocab[idx] = token
        self.vocab_size = int(getattr(self.model.config, "vocab_size", len(self.vocab)))
        self.special_ids = np.array(sorted(set(self.tokenizer.all_special_ids)), dtype=np.int64)
        self.query_weights = None  # doc variant: static per-token query weights (sentence-transformers' -doc models)
        if card.query_weights:
            from .st_bridge import read_static_weights

            self.query_weights = read_static_weights(card.query_weights, self.tokenizer, self.vocab_size)

    @property
    def weights_hash(self) -> str:
        """sha256 of the model's weight files: its identity, recorded by encode and index, checked by search."""
        from .provenance import weights_hash

        return weights_hash(self.model_dir)

    # --- tokenisation -------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        # one call at a time: a fast tokenizer sets its truncation on the shared Rust object for each call, and
        # concurrent calls fail ("Already borrowed") or could truncate at another call's length
        with self._tokenize_lock:
            enc = self.tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True,
                                 return_attention_mask=False, return_token_type_ids=False)
        return enc["input_ids"]

    def batches(self, ids: list[list[int]]) -> Iterator[np.ndarray]:
        """Indices of ``ids``, longest first, grouped so that each padded batch stays within the token budget."""
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(order):
            longest = max(1, int(lengths[order[start]]))
            size = max(1, min(self.max_batch, self.batch_tokens // longest))
            yield order[start:start + size]
            start += size

    # --- the model ----------------------------------------------------------------------------------------
    def prepare(self, ids: list[list[int]]) -> list[tuple[np.ndarray, "torch.Tensor", "torch.Tensor"]]:
        """Padded (index, input_ids, attention_mask) batches on the host, pinned for a GPU: CPU work that a
        background thread can do while the device runs the previous block."""
        import torch

        pin = self.device.startswith("cuda")
        out = []
        for idx in self.batches(ids):
            rows = [ids[i] for i in idx]
            lengths = np.fromiter((len(x) for x in rows), dtype=np.int64, count=len(rows))
            longest = int(lengths.max())
            input_ids = np.zeros((len(rows), longest), dtype=np.int64)
            for r, x in enumerate(rows):
                input_ids[r, : len(x)] = x
            mask = (np.arange(longest)[None, :] < lengths[:, None]).astype(np.int64)
            t_ids, t_mask = torch.from_numpy(input_ids), torch.from_numpy(mask)
            if pin:
                t_ids, t_mask = t_ids.pin_memory(), t_mask.pin_memory()
            out.append((idx, t_ids, t_mask))
        return out

    def _weights(self, input_ids, mask):
        """``[batch, vocab]`` float32 weights on the device for one padded batch."""
        import torch

        input_ids = input_ids.to(self.device, non_blocking=True)
        mask = mask.to(self.device, non_blocking=True)
        with torch.inference_mode():
            return self._forward(self.model, input_ids, mask, self.head_chunk, self._head_matmul).float()

    @staticmethod
    def _to_sparse(weights) -> SparseBatch:
        import torch

        rows, cols = torch.nonzero(weights, as_tuple=True)
        vals = weights[rows, cols]
        counts = torch.bincount(rows, minlength=weights.shape[0])
        offsets = np.zeros(weights.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts.cpu().numpy(), out=offsets[1:])
        return SparseBatch(offsets, cols.to(torch.int32).cpu().numpy(), vals.cpu().numpy())

    def _bag_of_words(self, ids: list[list[int]]):
        """``[n, vocab]`` 0/1 on the device: which (non-special) vocabulary entries each text contains (times the
        card's static query weights, if any)."""
        import torch

        bow = torch.zeros((len(ids), self.vocab_size), dtype=torch.float32, device=self.device)
        for r, x in enumerate(ids):
            bow[r, torch.as_tensor(x, device=self.device)] = 1.0
        bow[:, torch.as_tensor(self.special_ids, device=self.device)] = 0.0
        if self.query_weights is not None:
            bow *= torch.as_tensor(self.query_weights, device=self.device)
        return bow

    def _query_hidden(self, ids: Sequence[int]):
        """The MLM head's transformed hidden states ``[length, hidden]`` of one unpadded query."""
        import torch

        if self._one_text is not None:
            return torch.from_numpy(self._one_text.head_input(ids))
        with torch.inference_mode():
            hidden = self.model.base_model(input_ids=torch.as_tensor([list(ids)], device=self.device)).last_hidden_state
            return mlm_head(self.model)[0](hidden[0])

    def _one_query(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(term ids, float32 weights) of one unpadded query, computed alone (no padding, no batch), on the device."""
        import torch

        parts = mlm_head(self.model)
        with torch.inference_mode():
            if parts is None:  # unknown architecture: the model's own forward and full logits
                logits = self.model(input_ids=torch.as_tensor([list(ids)], device=self.device)).logits[0]
                top = logits.amax(dim=0).float().cpu().numpy()
            else:
                _, weight, bias = parts
                top = (torch.matmul(self._query_hidden(ids), weight.t()).amax(dim=0) + bias).float().cpu().numpy()
        cols = np.flatnonzero(top > 0)  # relu: only positive maxima survive; log1p on those alone
        return self._query_weights(ids, cols, top[cols])

    def _finish_screened(self, screen, ids: list[list[int]], hidden: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(term ids, float32 weights) of a group of queries from their hidden states: the vocabulary projection
        screened for the group at once, then finished per query in float64 (see query_encoder)."""
        candidates = screen.candidates(hidden)
        return [self._query_weights(x, *screen.exact(h, c)) for x, h, c in zip(ids, hidden, candidates)]

    def _screen_for(self, vocabulary: np.ndarray | None):
        """The query screen over the whole vocabulary, or over ``vocabulary`` only (kept for the next call)."""
        if vocabulary is None:
            return self._screen
        key = hashlib.blake2b(np.ascontiguousarray(vocabulary, dtype=np.int64).tobytes(), digest_size=16).digest()
        with self._restricted_lock:  # several searchers (threads) may share this encoder
            screen = self._restricted.get(key)
            if screen is None:
                if len(self._restricted) >= 8:
                    self._restricted.pop(next(iter(self._restricted)))
                screen = self._restricted[key] = self._screen.restricted(vocabulary)
            return screen

    def _query_weights(self, ids: Sequence[int], cols: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float64 log1p of the positive maxima ``top`` at vocabulary ids ``cols``, the variant's rule applied."""
        if self.card.variant == "lexical":  # weights only on the query's own (non-special) tokens
            keep = np.isin(cols, np.setdiff1d(np.asarray(ids, dtype=np.int64), self.special_ids))
            cols, top = cols[keep], top[keep]
        return cols.astype(np.int32), np.log1p(np.asarray(top, dtype=np.float64))

    def _exactly(self, ids: list[list[int]], batch: SparseBatch, scale: float, kind: str) -> SparseBatch:
        """``batch`` with every text that has a weight near a rounding boundary recomputed alone in float64 (see
        :mod:`splade_pyserini.exact`): its integer weights are then the float64 formula's; float32 weights."""
        from .query_encoder import map_alone

        rows = [batch.row(i) for i in range(len(batch))]
        flagged = rows_near_boundary(batch.offsets, batch.weights, scale).tolist()

        def recompute(i):
            cols = rows[i][0].astype(np.int64)
            top = self._float64.maxima(ids[i], cols)
            keep = top > 0
            if kind == "query":
                return self._query_weights(ids[i], cols[keep], top[keep])
            return cols[keep].astype(np.int32), np.log1p(top[keep])

        for i, row in zip(flagged, map_alone(recompute, flagged, parallel=not self.device.startswith("cuda"))):
            rows[i] = row
        out = SparseBatch.from_rows([(t, np.asarray(w, dtype=np.float64)) for t, w in rows])
        out.weights = float32_rounding_as(out.weights, scale)
        return out

    def _encode_queries_ids(self, ids: list[list[int]], vocabulary: np.ndarray | None = None) -> SparseBatch:
        """float32-path query vectors (float64 weights; see :meth:`_exactly` for the exact ones)."""
        from .query_encoder import default_workers, groups, map_alone

        if self._screen is not None:
            screen = self._screen_for(vocabulary)
            # Groups of queries of similar lengths, one group per worker at a time: each query's hidden states
            # alone (one compiled call), then the group's screened projection.
            workers = self.query_workers or default_workers()
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
            parts = [[ids[order[j]] for j in r] for r in groups([len(ids[i]) for i in order], 2 * workers)]
            done = map_alone(lambda part: self._finish_screened(screen, part, [self._query_hidden(x).numpy()
                                                                                for x in part]), parts, workers)
            rows = [None] * len(ids)
            for i, row in zip(order, (row for part_rows in done for row in part_rows)):
                rows[i] = row
        else:
            rows = map_alone(self._one_query, ids, workers=self.query_workers,
                             parallel=not self.device.startswith("cuda"))
            if vocabulary is not None:
                rows = [(t[keep], w[keep]) for t, w in rows for keep in [np.isin(t, vocabulary)]]
        return SparseBatch.from_rows(rows)

    def encode_ids(self, ids: list[list[int]], kind: str = "document", prepared=None,
                   vocabulary: np.ndarray | None = None, exact: bool | None = None,
                   scale: float | None = None) -> SparseBatch:
        """Sparse vectors for pre-tokenised texts, in the given order (``prepared``: from :meth:`prepare`).

        Documents go through length-sorted padded batches; queries are encoded one by one (see
        :mod:`splade_pyserini.query_encoder`), so a query's weights never depend on the other queries.
        ``vocabulary`` (queries only): keep only these term ids; on the CPU the others are not even computed.
        ``exact`` (default: for fp32 queries only): integer weights at ``scale`` (default: the card's) equal to the
        float64 formula's on any machine (see :mod:`splade_pyserini.exact`); it needs fp32 precision.
        """
        n = len(ids)
        exact = (kind == "query" and self.precision == "fp32") if exact is None else exact
        scale = self.card.scale if scale is None else scale
        if exact and self.precision != "fp32":
            raise SpladeError(f"exact weights need --precision fp32, not {self.precision}.")
        if n == 0:
            return SparseBatch(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
        if kind == "query" and self.card.variant == "doc":
            bow = self._bag_of_words(ids)
            if vocabulary is not None:
                import torch

                keep = torch.zeros(bow.shape[1], dtype=torch.bool, device=bow.device)
                keep[torch.as_tensor(np.asarray(vocabulary, dtype=np.int64), device=bow.device)] = True
                bow[:, ~keep] = 0.0
            return self._to_sparse(bow)
        if kind == "query":
            batch = self._encode_queries_ids(ids, vocabulary)
        else:
            parts: list[tuple[np.ndarray, SparseBatch]] = []
            for idx, input_ids, mask in (prepared if prepared is not None else self.prepare(ids)):
                parts.append((idx, self._to_sparse(self._weights(input_ids, mask))))
            batch = _reorder(parts, n)
        if exact:
            return self._exactly(ids, batch, scale, kind)
        batch.weights = batch.weights.astype(np.float32, copy=False)
        return batch

    def encode(self, texts: Sequence[str], kind: str = "document", vocabulary: np.ndarray | None = None,
               exact: bool | None = None, scale: float | None = None) -> SparseBatch:
        """:meth:`encode_ids` of ``texts`` (tokenised with the card's maximum length for ``kind``)."""
        if kind not in ("document", "query"):
            raise ValueError(f"kind must be 'document' or 'query', not {kind!r}")
        max_length = self.card.doc_max_length if kind == "document" else self.card.query_max_length
        return self.encode_ids(self.tokenize(texts, max_length), kind, vocabulary=vocabulary, exact=exact, scale=scale)

    # --- dict API -----------------------------------------------------------------------------------------
    def to_dicts(self, batch: SparseBatch) -> list[dict[str, float]]:
        vocab = self.vocab
        out = []
        for i in range(len(batch)):
            terms, weights = batch.row(i)
            out.append({vocab[t]: float(w) for t, w in zip(terms.tolist(), weights.tolist())})
        return out

    def encode_documents(self, texts: Sequence[str], as_vectors: bool = False):
        """``[{token: weight}]`` per document (unquantised, zeros dropped); ``as_vectors``: SparseVector objects
        with notebook views."""
        if as_vectors:
            from .sparse_vector import as_vectors as _as_vectors

            return _as_vectors(self, texts, "document")
        return self.to_dicts(self.encode(texts, "document"))

    def encode_queries(self, texts: Sequence[str], as_vectors: bool = False):
        """``[{token: weight}]`` per query (unquantised, zeros dropped; variant rules applied)."""
        empty = [i for i, t in enumerate(texts) if not str(t).strip()]
        if empty:
            raise SpladeError(f"query #{empty[0] + 1} is empty; SPLADE needs some text to encode.")
        if as_vectors:
            from .sparse_vector import as_vectors as _as_vectors

            return _as_vectors(self, texts, "query")
        return self.to_dicts(self.encode(texts, "query"))

    def vocabulary_ids(self, terms: Iterable[str]) -> np.ndarray | None:
        """Vocabulary ids (ascending) of ``terms`` — say, those an index holds — for the ``vocabulary`` argument of
        the query encoders; None when they cover nine tenths of the vocabulary or more, where restricting the
        queries to them would save little."""
        vocab = self.tokenizer.get_vocab()
        ids = np.unique(np.fromiter((vocab[t] for t in terms if t in vocab), dtype=np.int64))
        return ids if len(ids) < 0.9 * self.vocab_size else None

    def quantized_queries(self, texts: Sequence[str], scale: float | None = None,
                          vocabulary: np.ndarray | None = None) -> list[dict[str, int]]:
        """``[{token: int weight}]`` per query, ``round(w * scale)`` with zeros dropped, as searched.

        Each query is encoded alone on one thread (several at once, one per core), so its weights depend neither
        on the other queries nor on the machine's thread count. ``vocabulary``: only these term ids (e.g. those an
        index holds); the weights of the others are not computed.
        """
        empty = [i for i, t in enumerate(texts) if not str(t).strip()]
        if empty:
            raise SpladeError(f"query #{empty[0] + 1} is empty; give every query some text.")
        scale = self.card.scale if scale is None else scale
        batch = self.encode(list(texts), "query", vocabulary=vocabulary, scale=scale)
        q = quantize(batch.weights, scale)
        vocab, out = self.vocab, []
        for i in range(len(batch)):
            a, b = batch.offsets[i], batch.offsets[i + 1]
            out.append({vocab[t]: int(w) for t, w in zip(batch.terms[a:b].tolist(), q[a:b].tolist()) if w})
        return out


def _reorder(parts: list[tuple[np.ndarray, SparseBatch]], n: int) -> SparseBatch:
    """Put sparse rows computed in batch order back into input order (vectorised)."""
    order = np.concatenate([idx for idx, _ in parts])
    counts_b = np.concatenate([np.diff(sb.offsets) for _, sb in parts])
    terms_b = np.concatenate([sb.terms for _, sb in parts])
    weights_b = np.concatenate([sb.weights for _, sb in parts])
    starts_b = np.zeros(len(counts_b), dtype=np.int64)
    np.cumsum(counts_b[:-1], out=starts_b[1:])
    counts = np.empty(n, dtype=np.int64)
    starts = np.empty(n, dtype=np.int64)
    counts[order], starts[order] = counts_b, starts_b
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    gather = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1], dtype=np.int64)
    return SparseBatch(offsets, terms_b[gather], weights_b[gather])


def quantize(weights: np.ndarray, scale: float) -> np.ndarray:
    """Integer impact weights: ``round(w * scale)``, halves away from zero (as ``Math.round`` for w >= 0)."""
    x = np.asarray(weights, dtype=np.float64) * scale
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)



def load_encoder(name_or_path: str | os.PathLike, device: str = "auto", **kwargs) -> SpladeEncoder:
    """A :class:`SpladeEncoder` from a card name (``splade-v3``, ``splade-tiny`` …), a model directory or a
    Hugging Face id. Card fields (``variant``, ``scale``, ``doc_max_length``, ``query_max_length``) can be
    overridden by keyword; other keywords go to :class:`SpladeEncoder`."""
    card_fields = {k: kwargs.pop(k) for k in ("variant", "scale", "doc_max_length", "query_max_length") if k in kwargs}
    card = resolve_card(name_or_path, **card_fields)
    return SpladeEncoder(card, device=device, **kwargs)
