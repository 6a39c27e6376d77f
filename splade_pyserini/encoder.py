"""SPLADE encoding: texts → sparse vocabulary weights ``w_j = max_i log(1 + relu(logit_ij))``.

The maths is done the cheap way without changing the result:
* ``log1p∘relu`` is monotone, so the masked max is taken over the raw logits and activated once per text;
* padded positions are made to repeat the text's first ([CLS]) position, so the max needs no mask pass and
  the MLM head never sees a pad token's influence;
* texts are tokenised once (Rust, in batch), sorted by length and cut into batches by a token budget, so
  padding stays small; the MLM head runs in chunks so memory is bounded by the budget, not the corpus;
* the non-zero entries are extracted on the device, and only those leave it.

Variants (card ``variant``): ``full``; ``lexical`` (query weights kept only on the query's own tokens);
``doc`` (queries are the binary bag of their tokens; only documents go through the model). Queries take their own
path, :class:`~splade_pyserini.query_encoder.QueryEncoder`; :func:`bag_of_words` is the one rule for "the text's own
tokens", :func:`quantize` the one rule for integer weights.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from .cards import EncoderCard, resolve_card
from .errors import SpladeError
from .exact import Float64Forward


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
    and the max, instead of gigabytes going to memory and back. ``weight``: the decoder's ``[vocab, hidden]``.
    """

    def __init__(self, weight: np.ndarray, width: int = 1024):
        self.vocab = weight.shape[0]
        self.blocks = vocab_blocks(np.asarray(weight, dtype=np.float32), width)

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


def vocab_blocks(weight: np.ndarray, width: int) -> np.ndarray:
    """``W^T`` (``weight`` is ``[vocab, hidden]``) cut into ``[blocks, hidden, width]`` contiguous column blocks, the
    last one padded with zeros: each block's logits stay in the cache between the product and what uses them."""
    vocab, hidden = weight.shape
    n = -(-vocab // width)
    blocks = np.zeros((n, hidden, width), dtype=np.float32)
    for b in range(n):
        part = weight[b * width:(b + 1) * width]
        blocks[b, :, :len(part)] = part.T
    return blocks


def bag_of_words(input_ids, vocab_size: int, special_ids, device=None):
    """``[texts, vocab]`` float32 0/1: the vocabulary entries of each text's own tokens, special tokens (padding
    included) left out. The one rule for "the text's own tokens": lexical and doc-variant queries, their training,
    and the expansion terms that :class:`~splade_pyserini.sparse_vector.SparseVector` and explanations mark.

    ``input_ids``: a ``[texts, length]`` tensor (padded with a special token) or a list of token-id lists."""
    import torch

    if not isinstance(input_ids, torch.Tensor):
        rows = [list(x) for x in input_ids]
        padded = torch.zeros((len(rows), max((len(x) for x in rows), default=0)), dtype=torch.long)
        mask = torch.zeros(padded.shape, dtype=torch.float32)
        for r, x in enumerate(rows):
            padded[r, :len(x)] = torch.as_tensor(x, dtype=torch.long)
            mask[r, :len(x)] = 1.0
        input_ids, mask = padded.to(device), mask.to(device)
    else:
        mask = torch.ones(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    counts = torch.zeros((input_ids.shape[0], vocab_size), dtype=torch.float32, device=input_ids.device)
    counts.scatter_add_(1, input_ids, mask)
    bow = (counts > 0).to(torch.float32)
    if len(special_ids):
        bow[:, torch.as_tensor(list(special_ids), dtype=torch.long, device=input_ids.device)] = 0.0
    return bow


def _resolve_device(device: str) -> str:
    import torch

    if device in (None, "auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        from .ranks import distributed_rank

        return f"cuda:{distributed_rank()[2] % torch.cuda.device_count()}"  # one GPU per torchrun rank
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
        self._tokenize_lock = threading.Lock()
        if self.device == "cpu" and self.dtype == torch.float32 and mlm_head(self.model) is not None:
            # On CPUs, the vocabulary projection (≈ 90% of a small SPLADE's work) runs faster through numpy's
            # BLAS (OpenBLAS) than through torch's (MKL picks slow kernels on AMD): same float32 maths.
            self._head_matmul = NumpyHead(mlm_head(self.model)[1].detach().numpy())
        if compile:
            self._forward = torch.compile(splade_max, dynamic=True)
        self.float64 = Float64Forward(self.model)  # texts near a rounding boundary (see exact)
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
        from .query_encoder import QueryEncoder

        self.queries = QueryEncoder(self, self.float64)  # the query path: screening, forward, float64 finish

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

    def encode_ids(self, ids: list[list[int]], kind: str = "document", prepared=None,
                   vocabulary: np.ndarray | None = None, exact: bool | None = None,
                   scale: float | None = None) -> SparseBatch:
        """Sparse vectors for pre-tokenised texts, in the given order (``prepared``: from :meth:`prepare`).

        Documents go through length-sorted padded batches; queries through their own path
        (:class:`~splade_pyserini.query_encoder.QueryEncoder`), so a query's weights never depend on the others.
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
        if kind == "query":
            return self.queries.encode_ids(ids, vocabulary, exact, scale)
        parts: list[tuple[np.ndarray, SparseBatch]] = []
        for idx, input_ids, mask in (prepared if prepared is not None else self.prepare(ids)):
            parts.append((idx, self._to_sparse(self._weights(input_ids, mask))))
        batch = _reorder(parts, n)
        if exact:
            from .exact import exact_batch

            return exact_batch([batch.row(i) for i in range(n)], ids, self.float64, scale,
                               parallel=not self.device.startswith("cuda"))
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

    def encode_documents(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """``[{token: weight}]`` per document (unquantised, zeros dropped); for notebook views, see
        :func:`splade_pyserini.sparse_vector.as_vectors`."""
        return self.to_dicts(self.encode(texts, "document"))

    def encode_queries(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """``[{token: weight}]`` per query (unquantised, zeros dropped; variant rules applied)."""
        empty = [i for i, t in enumerate(texts) if not str(t).strip()]
        if empty:
            raise SpladeError(f"query #{empty[0] + 1} is empty; SPLADE needs some text to encode.")
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


def quantize(weights, scale: float):
    """Integer impact weights: ``round(w * scale)`` in double precision, halves away from zero (as ``Math.round``
    for w >= 0, and the Java extension's quantiser). An array gives an int64 array, a single weight an int."""
    x = np.asarray(weights, dtype=np.float64) * float(scale)
    q = (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)
    return int(q) if q.ndim == 0 else q


def load_encoder(name_or_path: str | os.PathLike, device: str = "auto", **kwargs) -> SpladeEncoder:
    """A :class:`SpladeEncoder` from a card name (``splade-v3``, ``splade-tiny`` …), a model directory or a
    Hugging Face id. Card fields (``variant``, ``scale``, ``doc_max_length``, ``query_max_length``) can be
    overridden by keyword; other keywords go to :class:`SpladeEncoder`."""
    card_fields = {k: kwargs.pop(k) for k in ("variant", "scale", "doc_max_length", "query_max_length") if k in kwargs}
    card = resolve_card(name_or_path, **card_fields)
    return SpladeEncoder(card, device=device, **kwargs)
