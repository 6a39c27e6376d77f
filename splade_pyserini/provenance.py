"""Identities from content, never from names: the model's weights and a corpus.

* :func:`weights_hash`: sha256 over the model's weight files (the files the checkpoint loader reads), each file's
  digest kept for the process by (path, inode, size, mtime) so that asking again costs nothing;
* :func:`corpus_fingerprint`: sha256 over the bytes of the corpus file(s), or over the documents of an
  ``ir_datasets`` id as they are read;
* :func:`shard_files`: which files of a vectors folder are shards (the one rule; the Java collection's).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

#: Names of the files a vectors collection reads (Anserini's JSON vectors, gzipped or not, and Parquet). The Java
#: collection (``SpladeVectorCollection``) allows the same suffixes.
SHARD_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet")
#: The record of vectors folders written before ``encoding.meta``: a ``.json`` name, but never a shard.
LEGACY_VECTORS_RECORD = "encoding.json"

_digests: dict[tuple, str] = {}
_digests_lock = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (streamed), remembered by (path, inode, size, mtime) for the process."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    with _digests_lock:
        if key in _digests:
            return _digests[key]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    with _digests_lock:
        _digests[key] = digest
    return digest


def _combine(parts: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for name, digest in parts:
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def weights_hash(model_dir: str | os.PathLike) -> str:
    """sha256 identity of a model folder's weights: the weight files' digests, by file name."""
    from .checkpoint import weight_files

    return _combine([(f.name, file_sha256(f)) for f in weight_files(Path(model_dir))])


def corpus_files(source: str | os.PathLike) -> list[Path] | None:
    """The files ``read_corpus`` reads for ``source``, in order; None for an ``ir_datasets`` id."""
    from .corpus import corpus_file

    path = Path(source)
    if path.is_dir():
        file = corpus_file(path)
        return [file] if file is not None else sorted(path.glob("*.jsonl"))
    if path.is_file():
        return [path]
    return None


def corpus_fingerprint(source: str | os.PathLike) -> str:
    """sha256 identity of a corpus's content: its files' bytes, or the documents an ``ir_datasets`` id yields."""
    files = corpus_files(source)
    if files is not None:
        return _combine([(f.name, file_sha256(f)) for f in files])
    from .corpus import read_corpus

    h = hashlib.sha256()
    for doc in read_corpus(source):
        h.update(doc.id.encode("utf-8", "surrogatepass") + b"\0" + doc.text.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def shard_files(folder: str | os.PathLike) -> list[Path]:
    """The shards of a vectors folder, sorted: every file below it (subfolders too) whose name does not start with
    ``.``, ends with one of :data:`SHARD_SUFFIXES` and is not the older record ``encoding.json``. This is what the
    Java collection reads, so what is checked, counted or staged is what gets indexed; in a folder ``encode`` wrote
    they are its ``vectors-NNNNN.jsonl`` / ``.parquet`` files."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and p.name != LEGACY_VECTORS_RECORD and p.name.endswith(SHARD_SUFFIXES))
