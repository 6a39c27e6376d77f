"""Encoding a corpus into vector shards: Anserini JsonVectorCollection (``.jsonl``) or Parquet.

Layout of an output folder::

    DIR/encoding.json              what produced the vectors (encoder card, scale, lengths, variant, counts)
    DIR/vectors-00000.jsonl        shards of ``shard_size`` documents each, written atomically
    DIR/vectors-00000.parquet      (``--format parquet``: columns id, contents, terms list<string>, weights list<int32>)

Integer weights are ``round(w * scale)`` with halves away from zero; zeros are dropped. Re-running the same command
resumes after the complete shards; a folder written by another encoder or scale is refused.

The loop is a three-stage pipeline: a thread reads and tokenises the next block while the device encodes the current
one, and another thread formats and writes the previous one (formatting is vectorised with pyarrow, no per-term
Python). Under ``torchrun`` (or with ``RANK``/``WORLD_SIZE`` set) rank r writes shards r, r + W, r + 2W, … on its own
device; the folder is complete when every rank has finished.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from . import __version__
from .corpus import Document, check_corpus, count_documents, read_corpus
from .encoder import SparseBatch, SpladeEncoder, quantize
from .errors import SpladeError
from .fileio import atomic_write, write_json

META_FILE = "encoding.json"
FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet"}


def shard_name(index: int, fmt: str = "jsonl") -> str:
    return f"vectors-{index:05d}{FORMATS[fmt]}"


def shard_files(vectors_dir: str | os.PathLike) -> list[Path]:
    d = Path(vectors_dir)
    return sorted([*d.glob("vectors-*.jsonl"), *d.glob("vectors-*.parquet")])


def read_encoding_meta(vectors_dir: str | os.PathLike) -> dict:
    path = Path(vectors_dir) / META_FILE
    if not path.is_file():
        raise SpladeError(f"{vectors_dir} has no {META_FILE}; produce it with `splade-pyserini encode` (or pass --scale).")
    return json.loads(path.read_text())


def complete_encoding_meta(vectors_dir: str | os.PathLike) -> dict:
    """``encoding.json`` of a finished ``encode`` output; a one-line error when the folder is missing or the
    encoding was interrupted."""
    if not Path(vectors_dir).is_dir():
        raise SpladeError(f"vectors folder {vectors_dir} does not exist; run `splade-pyserini encode` first.")
    meta = read_encoding_meta(vectors_dir)
    if not meta.get("complete"):
        raise SpladeError(f"the vectors in {vectors_dir} are incomplete (encoding was interrupted); re-run the same "
                          "`splade-pyserini encode` command to finish them.")
    return meta


def distributed_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when not distributed."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", rank))
    if not 0 <= rank < world:
        raise SpladeError(f"RANK={rank} is outside WORLD_SIZE={world}.")
    return rank, world, local


# --- formatting ---------------------------------------------------------------------------------------------------
class ShardFormatter:
    """Turns (documents, sparse batch) into JsonVectorCollection lines or Parquet tables, vectorised."""

    def __init__(self, vocab: list[str], scale: float, with_contents: bool = True):
        import pyarrow as pa

        self.vocab = [t if t is not None else f"[unused{i}]" for i, t in enumerate(vocab)]
        self.token_json = pa.array([json.dumps(t) + ": " for t in self.vocab])
        self.token_str = pa.array(self.vocab)
        self.scale = scale
        self.with_contents = with_contents

    def quantised(self, batch: SparseBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, term ids, integer weights) with the zero weights dropped."""
        q = quantize(batch.weights, self.scale)
        keep = q != 0
        if keep.all():
            return batch.offsets, batch.terms, q.astype(np.int32)
        rows = np.repeat(np.arange(len(batch)), np.diff(batch.offsets))
        counts = np.bincount(rows[keep], minlength=len(batch))
        offsets = np.zeros(len(batch) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return offsets, batch.terms[keep], q[keep].astype(np.int32)

    def jsonl(self, docs: list[Document], batch: SparseBatch) -> bytes:
        import pyarrow as pa
        import pyarrow.compute as pc

        offsets, terms, weights = self.quantised(batch)
        pairs = pc.binary_join_element_wise(pc.take(self.token_json, pa.array(terms)),
                                            pc.cast(pa.array(weights), pa.string()), "")
        vectors = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pairs), ", ")
        ids = (json.dumps(d.id, ensure_ascii=False) for d in docs)
        if self.with_contents:
            heads = [f'{{"id": {i}, "contents": {json.dumps(d.text, ensure_ascii=False)}, "vector": {{'
                     for i, d in zip(ids, docs)]
        else:
            heads = [f'{{"id": {i}, "contents": "", "vector": {{' for i in ids]
        lines = pc.binary_join_element_wise(pa.array(heads, pa.string()), vectors, "}}\n", "")
        return "".join(lines.to_pylist()).encode("utf-8")

    def table(self, docs: list[Document], batch: SparseBatch):
        import pyarrow as pa

        offsets, terms, weights = self.quantised(batch)
        offs = pa.array(offsets, pa.int32())
        columns = {
            "id": pa.array([d.id for d in docs], pa.string()),
            "contents": pa.array([d.text if self.with_contents else "" for d in docs], pa.string()),
            "terms": pa.ListArray.from_arrays(offs, pa.DictionaryArray.from_arrays(pa.array(terms, pa.int32()), self.token_str)),
            "weights": pa.ListArray.from_arrays(offs, pa.array(weights, pa.int32())),
        }
        return pa.table(columns)


class _ShardWriter:
    def __init__(self, path: Path, fmt: str, meta: dict):
        self.fmt, self.path, self.meta = fmt, path, meta
        self._ctx = atomic_write(path, "wb", encoding=None)
        self._file = self._ctx.__enter__()
        self._parquet = None

    def write(self, formatter: ShardFormatter, docs: list[Document], batch: SparseBatch) -> None:
        if self.fmt == "jsonl":
            self._file.write(formatter.jsonl(docs, batch))
            return
        import pyarrow.parquet as pq

        table = formatter.table(docs, batch)
        if self._parquet is None:
            schema = table.schema.with_metadata({"splade_pyserini": json.dumps(self.meta)})
            self._parquet = pq.ParquetWriter(self._file, schema, compression="zstd")
        self._parquet.write_table(table.replace_schema_metadata(self._parquet.schema.metadata))

    def close(self, ok: bool = True) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            try:
                raise RuntimeError("aborted shard")
            except RuntimeError as e:
                self._ctx.__exit__(type(e), e, e.__traceback__)


# --- the encode loop ----------------------------------------------------------------------------------------------
def _meta_for(encoder: SpladeEncoder, corpus: str, shard_size: int, fmt: str) -> dict:
    card = encoder.card
    return {
        "encoder": card.name,
        "model": card.model,
        "variant": card.variant,
        "scale": card.scale,
        "max_length": card.doc_max_length,
        "query_max_length": card.query_max_length,
        "corpus": str(corpus),
        "format": "JsonVectorCollection" if fmt == "jsonl" else "parquet",
        "weights": "int: round(w * scale), halves away from zero, zeros dropped",
        "shard_size": shard_size,
        "splade_pyserini": __version__,
    }


def _blocks(docs: Iterable[Document], shard_size: int, block_size: int, rank: int, world: int,
            done: set[int]) -> Iterator[tuple[int, bool, list[Document]]]:
    """(shard index, is the shard's last block, documents) for this rank's unfinished shards."""
    it = iter(docs)
    shard = 0
    while True:
        mine = shard % world == rank and shard not in done
        remaining = shard_size
        produced = False
        while remaining > 0:
            block = list(itertools.islice(it, min(block_size, remaining)))
            if not block:
                break
            remaining -= len(block)
            produced = True
            if mine:
                yield shard, remaining == 0, block
        if not produced:
            return
        if mine and remaining > 0:  # the corpus ended inside this shard
            yield shard, True, []
            return
        shard += 1


def encode_corpus(encoder: SpladeEncoder, corpus: str | os.PathLike, output_dir: str | os.PathLike,
                  shard_size: int = 100_000, block_size: int | None = None, with_contents: bool = True,
                  progress: bool = True, limit: int | None = None, fmt: str = "jsonl") -> dict:
    """Encode every document of ``corpus`` into ``output_dir``; returns the written ``encoding.json`` data."""
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise SpladeError(f"unknown vector format {fmt!r}; use one of {', '.join(FORMATS)}.")
    check_corpus(corpus)
    rank, world, _ = distributed_rank()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = _meta_for(encoder, corpus, shard_size, fmt)
    meta_path = out / META_FILE
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        for key in ("encoder", "model", "variant", "scale", "max_length", "shard_size", "format"):
            if key in old and old.get(key) != meta[key]:
                raise SpladeError(
                    f"{out} holds vectors from another setting ({key}={old.get(key)!r}, now {meta[key]!r}); "
                    "use a new --output folder or delete the old one."
                )
    if rank == 0:
        write_json(meta_path, {**meta, "complete": False})

    done = {int(p.name[8:13]) for p in out.glob("vectors-*" + FORMATS[fmt])}
    for stale in out.glob(".vectors-*.tmp"):  # left by a killed run; each rank clears only its own shards
        if int(stale.name[9:14]) % world == rank:
            stale.unlink(missing_ok=True)
    total = count_documents(corpus)
    if limit is not None:
        total = min(total, limit) if total is not None else limit
    docs: Iterable[Document] = read_corpus(corpus)
    if limit is not None:
        docs = itertools.islice(docs, limit)
    block_size = block_size or (16384 if encoder.device.startswith("cuda") else 2048)
    formatter = ShardFormatter(encoder.vocab, encoder.card.scale, with_contents)
    max_length = encoder.card.doc_max_length

    def tokenize(item):
        shard, last, block = item
        ids = encoder.tokenize([d.text for d in block], max_length) if block else []
        return shard, last, block, ids, (encoder.prepare(ids) if ids else [])

    written, docs_done, start = 0, 0, time.perf_counter()
    writers: dict[int, _ShardWriter] = {}
    desc = "encode" if world == 1 else f"encode rank {rank}/{world}"
    bar = tqdm(total=total, unit="doc", desc=desc, disable=not progress, smoothing=0.05)
    pending_write = None
    with ThreadPoolExecutor(1, thread_name_prefix="tokenize") as tok_pool, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as write_pool:
        items = _blocks(docs, shard_size, block_size, rank, world, done)
        try:
            lookahead = [tok_pool.submit(tokenize, it) for it in itertools.islice(items, 2)]
            while lookahead:
                shard, last, block, ids, prepared = lookahead.pop(0).result()
                nxt = next(items, None)
                if nxt is not None:
                    lookahead.append(tok_pool.submit(tokenize, nxt))
                batch = encoder.encode_ids(ids, "document", prepared) if block else None
                if pending_write is not None:
                    pending_write.result()
                if shard not in writers:
                    writers[shard] = _ShardWriter(out / shard_name(shard, fmt), fmt, meta)

                def write(shard=shard, last=last, block=block, batch=batch):
                    if block:
                        writers[shard].write(formatter, block, batch)
                    if last:
                        writers.pop(shard).close(ok=True)

                pending_write = write_pool.submit(write)
                written += len(block)
                bar.update(len(block))
            if pending_write is not None:
                pending_write.result()
        except BaseException:
            for w in writers.values():
                w.close(ok=False)
            raise
        finally:
            bar.close()
    elapsed = time.perf_counter() - start
    return _finish(out, meta, rank, world, written, elapsed, fmt, total)


def _count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
    return n


def _finish(out: Path, meta: dict, rank: int, world: int, written: int, elapsed: float, fmt: str, total) -> dict:
    """Record this rank's part; the last rank to finish marks the folder complete."""
    write_json(out / f".rank-{rank}-of-{world}.json", {"documents": written, "seconds": round(elapsed, 3)})
    parts = [out / f".rank-{r}-of-{world}.json" for r in range(world)]
    if not all(p.is_file() for p in parts):
        return {**meta, "complete": False, "documents_this_rank": written}
    shards = sorted(out.glob("vectors-*" + FORMATS[fmt]))
    if fmt == "jsonl":
        documents = sum(_count_lines(p) for p in shards)
    else:
        import pyarrow.parquet as pq

        documents = sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
    if documents == 0:
        raise SpladeError(f"corpus {meta['corpus']} holds no documents.")
    seconds = max(json.loads(p.read_text())["seconds"] for p in parts)
    meta = {**meta, "complete": True, "documents": documents, "shards": len(shards), "seconds": seconds,
            "world_size": world}
    write_json(out / META_FILE, meta)
    for p in parts:
        p.unlink(missing_ok=True)
    return meta
