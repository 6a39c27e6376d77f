"""Encoding a corpus into Anserini JsonVectorCollection shards (``{"id", "contents", "vector": {term: int}}``).

Layout of an output folder::

    DIR/encoding.json            what produced the vectors (encoder card, scale, lengths, variant, counts)
    DIR/vectors-00000.jsonl      shards of ``shard_size`` documents each, written atomically

Integer weights are ``round(w * scale)`` with halves away from zero; zeros are dropped. Re-running the same command
resumes after the last complete shard; a folder written by another encoder or scale is refused.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import __version__
from .corpus import Document, count_documents, read_corpus
from .encoder import SparseBatch, SpladeEncoder, quantize
from .errors import SpladeError
from .fileio import atomic_write, write_json

META_FILE = "encoding.json"
SHARD_PATTERN = "vectors-{:05d}.jsonl"


def _meta_for(encoder: SpladeEncoder, corpus: str, shard_size: int) -> dict:
    card = encoder.card
    return {
        "encoder": card.name,
        "model": card.model,
        "variant": card.variant,
        "scale": card.scale,
        "max_length": card.doc_max_length,
        "query_max_length": card.query_max_length,
        "corpus": str(corpus),
        "format": "JsonVectorCollection",
        "weights": "int: round(w * scale), halves away from zero, zeros dropped",
        "shard_size": shard_size,
        "splade_pyserini": __version__,
    }


def read_encoding_meta(vectors_dir: str | os.PathLike) -> dict:
    path = Path(vectors_dir) / META_FILE
    if not path.is_file():
        raise SpladeError(f"{vectors_dir} has no {META_FILE}; produce it with `splade-pyserini encode` (or pass --scale).")
    return json.loads(path.read_text())


def shard_files(vectors_dir: str | os.PathLike) -> list[Path]:
    return sorted(Path(vectors_dir).glob("vectors-*.jsonl"))


def _chunks(it: Iterable[Document], size: int) -> Iterator[list[Document]]:
    it = iter(it)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


class JsonVectorWriter:
    """Formats sparse rows as JsonVectorCollection lines, with the JSON of every vocabulary token made once."""

    def __init__(self, vocab: list[str], scale: float, with_contents: bool = True):
        self.tokens = [json.dumps(t if t is not None else f"[unused{i}]") for i, t in enumerate(vocab)]
        self.scale = scale
        self.with_contents = with_contents

    def lines(self, docs: list[Document], batch: SparseBatch) -> Iterator[str]:
        q = quantize(batch.weights, self.scale)
        tokens = self.tokens
        for i, doc in enumerate(docs):
            a, b = batch.offsets[i], batch.offsets[i + 1]
            terms, weights = batch.terms[a:b].tolist(), q[a:b].tolist()
            vector = ", ".join(f"{tokens[t]}: {w}" for t, w in zip(terms, weights) if w)
            contents = json.dumps(doc.text, ensure_ascii=False) if self.with_contents else '""'
            yield f'{{"id": {json.dumps(doc.id, ensure_ascii=False)}, "contents": {contents}, "vector": {{{vector}}}}}\n'


def encode_corpus(encoder: SpladeEncoder, corpus: str | os.PathLike, output_dir: str | os.PathLike,
                  shard_size: int = 100_000, block_size: int = 4096, with_contents: bool = True,
                  progress: bool = True, limit: int | None = None) -> dict:
    """Encode every document of ``corpus`` into ``output_dir``; returns the written ``encoding.json`` data."""
    from tqdm import tqdm

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = _meta_for(encoder, corpus, shard_size)
    meta_path = out / META_FILE
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        for key in ("encoder", "model", "variant", "scale", "max_length", "shard_size"):
            if old.get(key) != meta[key]:
                raise SpladeError(
                    f"{out} holds vectors from another setting ({key}={old.get(key)!r}, now {meta[key]!r}); "
                    "use a new --output folder or delete the old one."
                )
    write_json(meta_path, {**meta, "complete": False})

    done_shards = 0
    while (out / SHARD_PATTERN.format(done_shards)).is_file():
        done_shards += 1
    total = count_documents(corpus)
    if limit is not None:
        total = min(total, limit) if total is not None else limit
    docs: Iterable[Document] = read_corpus(corpus)
    if limit is not None:
        docs = itertools.islice(docs, limit)
    skip = done_shards * shard_size
    docs = itertools.islice(docs, skip, None)

    writer = JsonVectorWriter(encoder.vocab, encoder.card.scale, with_contents)
    bar = tqdm(total=total, initial=min(skip, total or skip), unit="doc", desc="encode", disable=not progress,
               smoothing=0.05)
    n_docs = min(skip, total) if total is not None else skip
    n_terms = 0
    start = time.perf_counter()
    shard = done_shards
    for shard_docs in _chunks(docs, shard_size):
        with atomic_write(out / SHARD_PATTERN.format(shard)) as f:
            for block in _chunks(shard_docs, block_size):
                batch = encoder.encode([d.text for d in block], "document")
                f.writelines(writer.lines(block, batch))
                n_terms += len(batch.terms)
                bar.update(len(block))
        n_docs += len(shard_docs)
        shard += 1
    bar.close()
    elapsed = time.perf_counter() - start
    meta.update(complete=True, documents=n_docs, shards=shard, seconds=round(elapsed, 3))
    if n_docs == 0:
        raise SpladeError(f"corpus {corpus} holds no documents.")
    write_json(meta_path, meta)
    return meta
