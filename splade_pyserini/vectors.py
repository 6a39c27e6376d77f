"""Encoding a corpus into vector shards: Anserini JsonVectorCollection (``.jsonl``) or Parquet.

Layout of an output folder::

    DIR/META_FILE                  what produced the vectors (corpus content hash, model weights hash, card,
                                   settings) and a record per shard (document range, count, sha256)
    DIR/vectors-00000.jsonl        shards of ``shard_size`` documents each, written atomically
    DIR/vectors-00000.parquet      (``--format parquet``: columns id, contents, terms list<string>, weights list<int32>)
    DIR/vectors-00000.boundary     (without ``--exact``) the shard's weights whose float32 ``w × scale`` lay near a
                                   rounding boundary, ``[docid, term, weight]``: what a regression config pins
                                   (:func:`~.vector_pins.boundary_entries`), found here while encoding instead of
                                   by encoding the corpus again; a record (:func:`~.fileio.write_record`), which
                                   Anserini's JSON collections read as one empty document, and this package's
                                   collection not at all (not a shard name)

Integer weights are ``round(w * scale)`` with halves away from zero; zeros are dropped.

Resume proves, never assumes: re-running keeps a shard only when the record shows it holds this run's documents
(same corpus content, model weights and settings, same document range, same checksum); a folder from another run is
refused with one line (``overwrite`` starts over, deleting only this package's files). Each shard is recorded
(checksum, count) just before it is renamed into place. One writer per folder (:func:`~.fileio.writer_lock`).

The loop is a three-stage pipeline: a thread reads and tokenises the next block while the device encodes the current
one, and another thread formats and writes the previous one (formatting is vectorised with pyarrow, no per-term
Python). Under ``torchrun`` (or with ``RANK``/``WORLD_SIZE`` set) rank r writes shards r, r + W, r + 2W, … on its own
device; the folder is complete when every rank of the job has finished.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .corpus import Document, check_corpus, count_documents, read_corpus
from .encoder import SparseBatch, SpladeEncoder, quantize
from .errors import SpladeError
from .fileio import LOCK_FILE, OWNER_FILE, claim_folder, make_dir, read_record, write_record, writer_lock
from .provenance import LEGACY_VECTORS_RECORD, Provenance, check_resume, file_sha256, normalize, parquet_metadata
from .ranks import distributed_rank, job_id
from .provenance import shard_files  # noqa: F401 (vectors.shard_files: the one rule for which files are shards)

#: The vectors record (JSON). Not named *.json, *.jsonl or *.gz: Anserini's JsonCollection (and JsonVectorCollection)
#: reads every such file of the folder as documents. Folders written before keep LEGACY_META_FILE, still read.
META_FILE = "encoding.meta"
LEGACY_META_FILE = LEGACY_VECTORS_RECORD
FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet"}
#: A shard's boundary entries beside it (``vectors-00003.boundary``): not a shard suffix.
BOUNDARY_SUFFIX = ".boundary"


def boundary_name(shard: str) -> str:
    """The name of the boundary entries beside the shard named ``shard``."""
    return shard.split(".", 1)[0] + BOUNDARY_SUFFIX


def shard_name(index: int, fmt: str = "jsonl") -> str:
    return f"vectors-{index:05d}{FORMATS[fmt]}"


def read_encoding_meta(vectors_dir: str | os.PathLike) -> dict:
    path = Path(vectors_dir) / META_FILE
    if not path.is_file() and (Path(vectors_dir) / LEGACY_META_FILE).is_file():
        path = Path(vectors_dir) / LEGACY_META_FILE
    if not path.is_file():
        raise SpladeError(f"{vectors_dir} has no {META_FILE}; produce it with `splade-pyserini encode`.")
    meta = read_record(path)
    if meta is None:
        raise SpladeError(f"{path} is not a readable vectors record (damaged?); re-encode with --overwrite.")
    return normalize(meta)  # an earlier version's keys read as today's (see provenance)


def complete_encoding_meta(vectors_dir: str | os.PathLike) -> dict:
    """The record (:data:`META_FILE`) of a finished ``encode`` output; a one-line error when the folder is missing,
    the encoding was interrupted, or its shards are not the recorded ones (names, sizes and sha256: a shard edited
    after encoding, e.g. with a repeated or malformed id, is refused rather than indexed)."""
    if not Path(vectors_dir).is_dir():
        raise SpladeError(f"vectors folder {vectors_dir} does not exist; run `splade-pyserini encode` first.")
    meta = read_encoding_meta(vectors_dir)
    if not meta.get("complete"):
        raise SpladeError(f"the vectors in {vectors_dir} are incomplete (encoding was interrupted); re-run the same "
                          "`splade-pyserini encode` command to finish them.")
    if "shard_records" in meta:
        present = {p.relative_to(vectors_dir).as_posix() for p in shard_files(vectors_dir)}
        differ = sorted(present ^ set(meta["shard_records"]))
        if differ:
            raise SpladeError(f"the shards in {vectors_dir} differ from its record ({', '.join(differ[:3])}); "
                              "re-encode into it with --overwrite.")
        for name, record in sorted(meta["shard_records"].items()):  # contents too: nothing indexed on trust
            path = Path(vectors_dir) / name
            if path.stat().st_size != record.get("bytes", path.stat().st_size) or file_sha256(path) != record.get("sha256"):
                raise SpladeError(f"{path} changed after `encode` wrote it (its sha256 is not the recorded one); "
                                  "re-encode into the folder with --overwrite.")
    return meta


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

    def quantized(self, batch: SparseBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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

        offsets, terms, weights = self.quantized(batch)
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

        offsets, terms, weights = self.quantized(batch)
        offs = pa.array(offsets, pa.int32())
        columns = {
            "id": pa.array([d.id for d in docs], pa.string()),
            "contents": pa.array([d.text if self.with_contents else "" for d in docs], pa.string()),
            "terms": pa.ListArray.from_arrays(offs, pa.DictionaryArray.from_arrays(pa.array(terms, pa.int32()), self.token_str)),
            "weights": pa.ListArray.from_arrays(offs, pa.array(weights, pa.int32())),
        }
        return pa.table(columns)


class _ShardWriter:
    """One shard under its temporary name (``.vectors-00003.jsonl.tmp``: only this folder's writer of that shard
    uses it), and with a ``window``, its boundary entries (``.vectors-00003.boundary.tmp``); :meth:`close` records
    the shard (documents, checksums) and then renames them into place, the shard last."""

    def __init__(self, out: Path, index: int, fmt: str, meta: dict, publish, window: float | None = None):
        self.fmt, self.index, self.meta, self.publish = fmt, index, meta, publish
        self.path = out / shard_name(index, fmt)
        self.tmp = out / f".{self.path.name}.tmp"
        self.window = window
        self.boundary = out / boundary_name(self.path.name) if window else None
        self.boundary_tmp = out / f".{self.boundary.name}.tmp" if window else None
        self.near: list[list] | None = [] if window else None  # [docid, term, weight] of the entries near one
        self._file = os.fdopen(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666), "wb")
        self._parquet = None
        self.documents = 0

    def _note_boundary(self, formatter: ShardFormatter, docs: list[Document], batch: SparseBatch) -> None:
        """The batch's weights whose float32 ``w × scale`` lies within the window of a boundary ``n + ½``, with the
        integer this shard holds for them (0: left out)."""
        from .vector_pins import near_entries

        rows, terms, pinned = near_entries(batch, formatter.scale, self.window)
        vocab = formatter.vocab
        self.near.extend([docs[r].id, vocab[t], w] for r, t, w in zip(rows.tolist(), terms.tolist(), pinned.tolist()))

    def write(self, formatter: ShardFormatter, docs: list[Document], batch: SparseBatch) -> None:
        self.documents += len(docs)
        if self.near is not None:
            self._note_boundary(formatter, docs, batch)
        if self.fmt == "jsonl":
            self._file.write(formatter.jsonl(docs, batch))
            return
        import pyarrow.parquet as pq

        table = formatter.table(docs, batch)
        if self._parquet is None:
            schema = table.schema.with_metadata(parquet_metadata(self.meta))
            self._parquet = pq.ParquetWriter(self._file, schema, compression="zstd")
        self._parquet.write_table(table.replace_schema_metadata(self._parquet.schema.metadata))

    def close(self, ok: bool = True) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            self._file.close()
            if ok and self.near is not None:
                write_record(self.boundary_tmp, {"boundary_window": self.window, "boundary": self.near})
            if ok:
                self.publish(self)
        finally:
            for tmp in (self.tmp, self.boundary_tmp):
                if tmp is not None and tmp.exists():
                    tmp.unlink(missing_ok=True)


# --- provenance: what proves that a shard belongs to this run (the rule: provenance.check_resume) -----------------
_SHARD = re.compile(r"vectors-(\d{5})\.(jsonl|parquet)")
_OURS = re.compile(r"(vectors-\d{5}\.(jsonl|parquet|boundary)|\.vectors-\d{5}\.(jsonl|parquet|boundary)\.tmp"
                   r"|\.rank-\d+-of-\d+\.json"
                   r"|\..+\.[0-9a-f]{12}\.tmp|encoding\.json)")


def _ours(name: str) -> bool:
    """Names this package writes into a vectors folder."""
    return name in (META_FILE, OWNER_FILE, LOCK_FILE) or _OURS.fullmatch(name) is not None


def _legacy(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (META_FILE, LEGACY_META_FILE))


def _meta_for(encoder: SpladeEncoder, corpus: str, shard_size: int, fmt: str, with_contents: bool, exact: bool,
              limit: int | None) -> dict:
    """This run's record: its provenance (without shards: the folder's record keeps them) and its settings."""
    return {
        **Provenance.of_encoder(encoder, corpus).to_record(shards=False),
        "precision": encoder.precision,
        "format": "JsonVectorCollection" if fmt == "jsonl" else "parquet",
        "weights": "int: round(w * scale), halves away from zero, zeros dropped",
        "shard_size": shard_size,
        "contents": with_contents,
        "exact": exact,
        "limit": limit,
    }


def _start_over(out: Path) -> str:
    return f"start over with `splade-pyserini encode … --output {out} --overwrite` (or use a new --output folder)"


def _reusable(record: dict, shard_size: int, limit: int | None) -> bool | None:
    """True: a recorded shard holds exactly the documents this run puts there; False: this run needs other documents
    there (the shard is redone); None: this run ends before the shard (the folder holds more than it asks for)."""
    first, n = record["first"], record["documents"]
    if limit is not None and limit <= first:
        return None
    if n == shard_size:
        return limit is None or limit >= first + n
    ended_by_corpus = record.get("limit") is None or record["limit"] > first + n
    return limit == first + n or (ended_by_corpus and (limit is None or limit >= first + n))


def _prepare(out: Path, lock, meta: dict, rank: int, world: int, fmt: str, overwrite: bool) -> tuple[set[int], dict]:
    """Under the folder's lock: start over (``overwrite``), or prove each present shard of this rank belongs to this
    run. Returns (this rank's reusable shards, the folder's record)."""
    with lock.records():
        claim_folder(out, "vectors folder", _ours, "--output", _legacy)
        folders = sorted(n for n in os.listdir(out) if (out / n).is_dir())
        if folders:
            raise SpladeError(f"--output {out} holds folders that splade-pyserini did not write "
                              f"({', '.join(folders[:3])}); give a new or empty folder (nothing there is deleted).")
        present = [p for p in (out / META_FILE, out / LEGACY_META_FILE) if p.exists()]
        old = normalize(read_record(present[0]) or {}) if present else None
        if overwrite and (old is None or old.get("job") != meta["job"]):  # once per job (its ranks share the id)
            for name in os.listdir(out):  # this package's files only (claim_folder refused anything else)
                if name not in (OWNER_FILE, LOCK_FILE):
                    (out / name).unlink(missing_ok=True)
            old = None
        if old is None:
            old = {"shard_records": {}}
        else:
            check_resume(out, old, meta, _start_over(out))
        records = dict(old.get("shard_records", {}))
        done = set()
        for path in sorted(out.glob("vectors-*")):
            m = _SHARD.fullmatch(path.name)
            if m is None or int(m.group(1)) % world != rank:
                continue
            record = records.get(path.name)
            if not (isinstance(record, dict) and m.group(2) == fmt and record.get("sha256") == file_sha256(path)
                    and all(isinstance(record.get(k), int) for k in ("first", "documents"))):
                raise SpladeError(f"{path} is not the shard this folder's record describes (missing record or other "
                                  f"checksum); {_start_over(out)}.")
            reuse = _reusable(record, meta["shard_size"], meta["limit"])
            if reuse is None:
                raise SpladeError(f"{out} holds documents beyond --limit {meta['limit']} ({path.name}); "
                                  f"{_start_over(out)}.")
            if reuse:
                done.add(int(m.group(1)))
            else:  # the same documents' shard, cut at another --limit: redone
                path.unlink()
                (out / boundary_name(path.name)).unlink(missing_ok=True)
                records.pop(path.name)
        for stale in out.glob(".vectors-*.tmp"):  # left by a killed writer of this rank's shards
            if int(stale.name[9:14]) % world == rank:
                stale.unlink(missing_ok=True)
        rank_file = out / f".rank-{rank}-of-{world}.json"
        rank_file.unlink(missing_ok=True)
        fresh = {k: v for k, v in meta.items() if k != "shard_records"}
        write_record(out / META_FILE, {**old, **fresh, "shard_records": records, "complete": False})
        return done, meta


def _publisher(out: Path, lock, limit: int | None, shard_size: int):
    """Records a finished shard in the folder's record, then renames it into place (under the folder lock)."""

    def publish(writer: _ShardWriter) -> None:
        record = {"first": writer.index * shard_size, "documents": writer.documents, "limit": limit,
                  "sha256": file_sha256(writer.tmp), "bytes": writer.tmp.stat().st_size}
        if writer.boundary is not None:
            record["boundary"] = {"file": writer.boundary.name, "window": writer.window,
                                  "entries": len(writer.near), "sha256": file_sha256(writer.boundary_tmp)}
        with lock.records():
            meta = read_record(out / META_FILE)
            meta.setdefault("shard_records", {})[writer.path.name] = record
            write_record(out / META_FILE, meta)
            if writer.boundary is not None:
                os.replace(writer.boundary_tmp, writer.boundary)
            os.replace(writer.tmp, writer.path)

    return publish


# --- the encode loop ----------------------------------------------------------------------------------------------
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
                  progress: bool = True, limit: int | None = None, fmt: str = "jsonl", exact: bool = False,
                  overwrite: bool = False) -> dict:
    """Encode every document of ``corpus`` into ``output_dir``; returns the written vectors record (:data:`META_FILE`).

    Re-running resumes: a shard present is kept only when the record proves it belongs to this run (same corpus
    content, model weights, settings, document range and checksum); anything else is refused, or with
    ``overwrite`` this package's files in ``output_dir`` are deleted first. One writer per folder.
    ``exact``: integer weights equal to the float64 formula's on any machine (see :mod:`splade_pyserini.exact`),
    recorded as ``"exact": true``."""
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise SpladeError(f"unknown vector format {fmt!r}; use one of {', '.join(FORMATS)}.")
    if shard_size < 1:
        raise SpladeError(f"--shard-size must be at least 1, not {shard_size}.")
    if limit is not None and limit < 1:
        raise SpladeError(f"--limit must be at least 1, not {limit}.")
    check_corpus(corpus)
    rank, world, _ = distributed_rank()
    if exact and encoder.precision != "fp32":
        raise SpladeError(f"--exact needs --precision fp32 (the encoder runs in {encoder.precision}).")
    out = claim_folder(output_dir, "vectors folder", _ours, "--output", _legacy, create=False)
    make_dir(out)
    with writer_lock(out, rank, world) as lock:
        meta = {**_meta_for(encoder, corpus, shard_size, fmt, with_contents, exact, limit), "job": job_id()}
        done, meta = _prepare(out, lock, meta, rank, world, fmt, overwrite)
        return _encode(encoder, corpus, out, lock, meta, done, rank, world, shard_size, block_size, with_contents,
                       progress, limit, fmt, exact, tqdm)


def _encode(encoder, corpus, out: Path, lock, meta: dict, done: set[int], rank: int, world: int, shard_size: int,
            block_size, with_contents: bool, progress: bool, limit, fmt: str, exact: bool, tqdm) -> dict:
    total = count_documents(corpus)
    if limit is not None:
        total = min(total, limit) if total is not None else limit
    seen = [0]

    def counted(docs):
        for doc in docs:
            seen[0] += 1
            yield doc

    docs: Iterable[Document] = read_corpus(corpus)
    if limit is not None:
        docs = itertools.islice(docs, limit)
    block_size = block_size or (16384 if encoder.device.startswith("cuda") else 2048)
    formatter = ShardFormatter(encoder.vocab, encoder.card.scale, with_contents)
    max_length = encoder.card.doc_max_length
    publish = _publisher(out, lock, limit, shard_size)
    # the float32 weights near a rounding boundary, kept beside each shard (an --exact encode replaces them with
    # float64 ones before they are seen here, so it keeps none; vector_pins then encodes again)
    from .vector_pins import boundary_window

    window = None if exact else boundary_window()

    def tokenize(item):
        shard, last, block = item
        ids = encoder.tokenize([d.text for d in block], max_length) if block else []
        return shard, last, block, ids, (encoder.prepare(ids) if ids else [])

    def encode_ids(ids, prepared):
        if exact:
            return encoder.encode_ids(ids, "document", prepared, exact=True)
        return encoder.encode_ids(ids, "document", prepared)

    written, start = 0, time.perf_counter()
    writers: dict[int, _ShardWriter] = {}
    desc = "encode" if world == 1 else f"encode rank {rank}/{world}"
    bar = tqdm(total=total, unit="doc", desc=desc, disable=not progress, smoothing=0.05)
    pending_write = None
    with ThreadPoolExecutor(1, thread_name_prefix="tokenize") as tok_pool, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as write_pool:
        items = _blocks(counted(docs), shard_size, block_size, rank, world, done)
        try:
            lookahead = [tok_pool.submit(tokenize, it) for it in itertools.islice(items, 2)]
            while lookahead:
                shard, last, block, ids, prepared = lookahead.pop(0).result()
                nxt = next(items, None)
                if nxt is not None:
                    lookahead.append(tok_pool.submit(tokenize, nxt))
                batch = encode_ids(ids, prepared) if block else None
                if pending_write is not None:
                    pending_write.result()
                if shard not in writers:
                    writers[shard] = _ShardWriter(out, shard, fmt, meta, publish, window)

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
            for _ in items:  # read to the end: every rank learns the number of documents
                pass
        except BaseException:
            for w in writers.values():
                w.close(ok=False)
            raise
        finally:
            bar.close()
    elapsed = time.perf_counter() - start
    return _finish(out, lock, meta, rank, world, written, seen[0], elapsed, fmt)


def _finish(out: Path, lock, meta: dict, rank: int, world: int, written: int, documents: int, elapsed: float,
            fmt: str) -> dict:
    """Record this rank's part; the last rank of the job to finish checks every shard and marks the folder complete."""
    if documents == 0:
        raise SpladeError(f"corpus {meta['corpus']} holds no documents.")
    with lock.records():
        write_record(out / f".rank-{rank}-of-{world}.json",
                   {"job": meta["job"], "documents": written, "corpus_documents": documents,
                    "seconds": round(elapsed, 3)})
        parts = [out / f".rank-{r}-of-{world}.json" for r in range(world)]
        reports = [read_record(p) or {} for p in parts if p.is_file()]
        if len(reports) < world or any(r.get("job") != meta["job"] for r in reports):
            return {**meta, "complete": False, "documents_this_rank": written}
        record = read_record(out / META_FILE)
        shards = -(-documents // meta["shard_size"])
        names = [shard_name(i, fmt) for i in range(shards)]
        records = record.get("shard_records", {})
        missing = [n for n in names if n not in records or not (out / n).is_file()]
        counted = sum(records[n]["documents"] for n in names if n in records)
        extra = sorted({p.relative_to(out).as_posix() for p in shard_files(out)} - set(names))
        if missing or extra or counted != documents:
            raise SpladeError(f"{out} does not add up after encoding (missing {missing[:3]}, extra {extra[:3]}, "
                              f"{counted} of {documents} documents recorded); {_start_over(out)}.")
        record = {**record, "complete": True, "documents": documents, "shards": shards,
                  "seconds": max(r["seconds"] for r in reports), "world_size": world}
        write_record(out / META_FILE, record)
        for p in parts:
            p.unlink(missing_ok=True)
    return record
