"""What vectors and an index are, read, written and checked in one place; identities from content, never names.

* :class:`Provenance`: the record of a vectors folder (``encoding.meta``), of each Parquet shard's metadata and of
  an index (``splade_pyserini.json``): encoder, weights sha256, scale, lengths, variant, corpus sha256, shards,
  training seed, package version. One key spelling on disk (:meth:`Provenance.to_record`); records written by an
  earlier version (``max_length``, ``splade_pyserini`` for the version) still read (:func:`normalize`);
* :func:`check_compatible`: the one rule for using vectors or an index with an encoder (the same model; the
  recorded scale is the one used), and :func:`check_resume`: the one rule for adding to a vectors folder;
* :func:`weights_hash`: sha256 over the model's weight files (the files the checkpoint loader reads), each file's
  digest kept for the process by (path, inode, size, mtime) so that asking again costs nothing;
* :func:`corpus_fingerprint`: sha256 over the bytes of the corpus file(s), or over the documents of an
  ``ir_datasets`` id as they are read;
* :func:`shard_files`: which files of a vectors folder are shards (the one rule; the Java collection's).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from .errors import SpladeError

logger = logging.getLogger(__name__)

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


# --- the record ---------------------------------------------------------------------------------------------------
#: The training state a model folder written by ``splade-pyserini train`` carries (its seed is read from it).
TRAIN_STATE_FILE = "train_state.json"
#: Keys written by earlier versions, read as today's.
OLD_KEYS = {"max_length": "doc_max_length", "splade_pyserini": "version"}
#: Settings of ``encode`` that change a shard's bytes: equal for a folder to be resumed (with the content's identity).
ENCODE_SETTINGS = ("precision", "format", "shard_size", "contents", "exact")


@dataclass(frozen=True)
class Provenance:
    """What vectors (and an index built from them) are. ``shard_records``: shard name → ``first`` (the index of its
    first document), ``documents`` (count), ``sha256``, ``bytes`` and the ``limit`` it was written under."""

    encoder: str
    model: str
    weights_sha256: str | None
    variant: str
    scale: float | None
    doc_max_length: int | None
    query_max_length: int | None
    corpus: str | None = None
    corpus_sha256: str | None = None
    shard_records: dict = field(default_factory=dict)
    seed: int | None = None
    version: str | None = None

    @classmethod
    def of_encoder(cls, encoder, corpus: str | os.PathLike | None = None) -> "Provenance":
        """The provenance of what ``encoder`` writes (of ``corpus``, fingerprinted by content, when given)."""
        from . import __version__

        card = encoder.card
        return cls(encoder=card.name, model=card.model, weights_sha256=encoder.weights_hash, variant=card.variant,
                   scale=card.scale, doc_max_length=card.doc_max_length, query_max_length=card.query_max_length,
                   corpus=None if corpus is None else str(corpus),
                   corpus_sha256=None if corpus is None else corpus_fingerprint(corpus),
                   seed=training_seed(encoder.model_dir), version=__version__)

    @classmethod
    def from_record(cls, record: dict) -> "Provenance":
        """From a record (``encoding.meta``, ``splade_pyserini.json``, Parquet metadata), today's or an earlier one;
        keys that are not provenance (settings, counts) are left out."""
        data = normalize(record)
        values = {f.name: data.get(f.name) for f in fields(cls) if f.name in data or f.default is MISSING}
        if not isinstance(values.get("shard_records"), dict):
            values.pop("shard_records", None)
        return cls(**values)

    def to_record(self, shards: bool = True) -> dict:
        """The record's keys (one spelling); ``shards=False`` without the shard list (a shard's own metadata)."""
        record = asdict(self)
        if not shards:
            record.pop("shard_records")
        return record


def normalize(record: dict) -> dict:
    """A record with today's key spelling (an earlier version's keys renamed; today's win where both are present)."""
    out = {OLD_KEYS.get(k, k): v for k, v in record.items() if k not in OLD_KEYS}
    for old, new in OLD_KEYS.items():
        if old in record and new not in out:
            out[new] = record[old]
    return out


def parquet_metadata(record: dict) -> dict[str, str]:
    """A Parquet shard's schema metadata: the folder's record less its shard list and bookkeeping."""
    return {"splade_pyserini": json.dumps({k: v for k, v in record.items() if k not in ("shard_records", "job")},
                                          sort_keys=True)}


def training_seed(model_dir: str | os.PathLike | None) -> int | None:
    """The seed ``splade-pyserini train`` recorded in the model folder; None for a model from elsewhere."""
    path = Path(model_dir) / TRAIN_STATE_FILE if model_dir is not None else None
    if path is None or not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    seed = (state.get("seeds") or {}).get("seed", (state.get("config") or {}).get("seed"))
    return seed if isinstance(seed, int) else None


# --- the rules ----------------------------------------------------------------------------------------------------
def check_compatible(prov: Provenance | None, encoder, source: str) -> float:
    """The one rule for using vectors or an index (``source``, e.g. ``"index idx/"``) with ``encoder``: the same
    model, known by its weights' sha256 (a record from before the hash: by its card name or model source, with a
    warning). Returns the quantisation scale of ``source``: the recorded one, which is the truth whatever the
    encoder's card says; a record without one (or no record) gets the card's, with a one-line warning."""
    card = encoder.card
    if prov is None or prov.scale is None:
        logger.warning("%s records no quantisation scale (not built by splade-pyserini, or by an older one); using "
                       "%s's %s. Re-index it with `splade-pyserini index` to record it.", source, card.name, card.scale)
        return float(card.scale)
    if not (isinstance(prov.scale, (int, float)) and math.isfinite(prov.scale) and prov.scale > 0):
        raise SpladeError(f"{source} records the quantisation scale {prov.scale!r}, not a positive number (a damaged "
                          "record?); re-index it with `splade-pyserini index`.")
    if prov.weights_sha256:
        if prov.weights_sha256 != encoder.weights_hash:
            raise SpladeError(
                f"{source} was built with other model weights than {card.name} ({card.model}) has (sha256 "
                f"{prov.weights_sha256[:12]}…, these {encoder.weights_hash[:12]}…); search with the model it was "
                f"built with ({prov.encoder}) or re-index.")
        return float(prov.scale)
    logger.warning("%s records no hash of its model's weights (built by an older splade-pyserini); trusting its "
                   "encoder name. Re-index to record it.", source)
    if prov.model != card.model and prov.encoder != card.name:
        raise SpladeError(f"{source} was built with encoder {prov.encoder} ({prov.model}) but the query encoder is "
                          f"{card.name} ({card.model}); search with --encoder {prov.encoder} or re-index.")
    return float(prov.scale)


def check_resume(folder: str | os.PathLike, old: dict, new: dict, start_over: str) -> None:
    """The one rule for adding to a vectors folder: its record ``old`` (any version's) and this run's ``new`` agree
    on the content's identity (corpus and weights sha256), variant, scale, document length and
    :data:`ENCODE_SETTINGS`; else a one-line error ending with ``start_over`` (how to start afresh)."""
    old, new = normalize(old), normalize(new)
    if "corpus_sha256" not in old or "weights_sha256" not in old or not isinstance(old.get("shard_records"), dict):
        raise SpladeError(f"{folder} holds vectors whose record does not say which corpus and model made them (an "
                          f"older splade-pyserini, or a damaged record); {start_over}.")
    for key in ("corpus_sha256", "weights_sha256", "variant", "scale", "doc_max_length", *ENCODE_SETTINGS):
        if old.get(key) != new[key]:
            what = {"corpus_sha256": "another corpus (different content)", "weights_sha256": "another model "
                    "(different weights)"}.get(key, f"another setting ({key} {old.get(key)!r}, now {new[key]!r})")
            raise SpladeError(f"{folder} holds vectors from {what}; {start_over}.")
