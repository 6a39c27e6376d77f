"""Pinning the exact vectors a regression config was made from, and explaining vectors re-encoded elsewhere.

Anserini pins a downloaded corpus with ``download_checksum``. A SPLADE corpus is usually re-encoded instead, and a
float32 forward pass differs between CPUs in its low bits (kernel choice, FMA, vector width): a weight whose
``w × scale`` lies within that error of a rounding boundary ``n + ½`` can become the next integer (see
:mod:`splade_pyserini.exact`, whose ``DELTA`` bounds the error). So a config pins:

* ``vectors_sha256``: a checksum of the vectors' content (every document, in order: its id and its sorted
  ``term:weight`` pairs; independent of sharding, file layout and the stored text);
* a *boundary list* (a small gzipped side file, ``docid<TAB>term<TAB>pinned weight`` lines): every entry whose
  float32 ``w × scale``, on the machine that encoded the vectors (``encode`` keeps them beside its shards; else the
  export encodes the corpus again), lay within ``2 × DELTA`` of a boundary (the weight a float64 pass, or any other
  CPU's float32 pass, could round differently), pinned weight 0 included;
* ``vectors_masked_sha256``: the same checksum with the listed entries left out.

Checking a folder (:func:`check_vectors`): the full checksum matches → the pinned vectors, results must be
exact. Only the masked one matches → re-encoded vectors that differ at listed boundary entries alone; each must
differ by one step, and the report names them. The masked checksum differs → other vectors (a changed weight, a
missing document, another model): a failure naming it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .errors import SpladeError

#: the boundary window, in units of ``w × scale``: twice the float32 error bound (machine vs float64, both ways)
WINDOW_FACTOR = 2.0


def read_vectors(folder: str | os.PathLike) -> Iterator[tuple[str, dict[str, int]]]:
    """``(docid, {term: weight})`` of every document of an ``encode`` output (JSONL shards), in shard order; a
    malformed line is refused naming file and line. Also what the Seismic engine is built from (approximate.py)."""
    from .vectors import shard_files

    shards = shard_files(folder)
    if not shards:
        raise SpladeError(f"{folder} holds no vector shards; encode the corpus first (`splade-pyserini encode`).")
    for shard in shards:
        if shard.suffix != ".jsonl":
            raise SpladeError(f"{shard}: only JSONL vector shards can be read here (regression pins, Seismic); "
                              "encode with --format jsonl.")
        with open(shard, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        doc = json.loads(line)
                        yield str(doc["id"]), {str(t): int(w) for t, w in doc["vector"].items()}
                    except (ValueError, KeyError, TypeError, AttributeError) as e:
                        raise SpladeError(f"{shard}:{number}: not a vector line ({e.__class__.__name__}: {e}); "
                                          "re-encode the corpus.") from None


def _doc_line(docid: str, vector: dict[str, int], skip: dict[str, int] | None) -> bytes:
    terms = sorted(t for t in vector if not skip or t not in skip)
    return (docid + "\t" + " ".join(f"{t}:{vector[t]}" for t in terms) + "\n").encode("utf-8")


@dataclass
class Digest:
    """Checksums of a vectors folder, and its weights at the entries of a boundary list (0 where absent)."""

    sha256: str
    masked_sha256: str
    documents: int
    weights: dict[tuple[str, str], int] = field(default_factory=dict)


def digest(folder: str | os.PathLike, boundary: dict[tuple[str, str], int] | None = None) -> Digest:
    """Full and masked checksums of ``folder`` (masked: the ``boundary`` entries left out)."""
    by_doc: dict[str, dict[str, int]] = {}
    for (docid, term), value in (boundary or {}).items():
        by_doc.setdefault(docid, {})[term] = value
    full, masked = hashlib.sha256(), hashlib.sha256()
    weights: dict[tuple[str, str], int] = {}
    n = 0
    for docid, vector in read_vectors(folder):
        n += 1
        full.update(_doc_line(docid, vector, None))
        listed = by_doc.get(docid)
        masked.update(_doc_line(docid, vector, listed))
        for term in listed or ():
            weights[(docid, term)] = vector.get(term, 0)
    return Digest(full.hexdigest(), masked.hexdigest(), n, weights)


def boundary_window(delta: float | None = None) -> float:
    """The boundary window, in units of ``w × scale``: ``WINDOW_FACTOR × delta`` (default ``exact.DELTA``)."""
    from .exact import DELTA

    return WINDOW_FACTOR * (DELTA if delta is None else float(delta))


def near_entries(batch, scale: float, window: float):
    """``(rows, term ids, integer weights)`` of the entries of a :class:`~splade_pyserini.encoder.SparseBatch` whose
    float32 ``w × scale`` lies within ``window`` of a rounding boundary ``n + ½`` (``round(w × scale)``, 0 included)."""
    import numpy as np

    from .encoder import quantize
    from .exact import near_boundary

    at = np.flatnonzero(near_boundary(batch.weights, scale, window))
    rows = np.searchsorted(batch.offsets, at, side="right") - 1
    return rows, batch.terms[at], quantize(batch.weights[at], scale)


def recorded_boundary(vectors: str | os.PathLike, window: float,
                      record: dict | None = None) -> dict[tuple[str, str], int] | None:
    """The boundary entries ``encode`` kept beside the shards of ``vectors`` (see :mod:`splade_pyserini.vectors`)
    for this ``window``; None when the encoding is unfinished or some shard has none (``--exact``, an earlier
    version) or its file is missing or changed. ``record``: the folder's record, if already read (the shards' own
    checksums are the caller's to check, as ``index`` and ``export`` do: they are not read again here)."""
    from .fileio import read_record
    from .provenance import file_sha256
    from .vectors import read_encoding_meta

    record = read_encoding_meta(vectors) if record is None else record
    shards = record.get("shard_records")
    if not record.get("complete") or not isinstance(shards, dict) or not shards or record.get("exact"):
        return None
    out: dict[tuple[str, str], int] = {}
    for name in sorted(shards):
        kept = shards[name].get("boundary")
        if not isinstance(kept, dict) or kept.get("window") != window:
            return None
        path = Path(vectors) / str(kept.get("file"))
        if not path.is_file() or file_sha256(path) != kept.get("sha256"):
            return None
        data = read_record(path) or {}
        if data.get("boundary_window") != window or not isinstance(data.get("boundary"), list):
            return None
        out.update(((str(d), str(t)), int(w)) for d, t, w in data["boundary"])
    return out


def boundary_entries(encoder, collection: str | os.PathLike, vectors: str | os.PathLike,
                     delta: float | None = None, batch: int = 256) -> dict[tuple[str, str], int]:
    """``{(docid, term): pinned weight}`` for every entry whose float32 ``w × scale`` lies within
    ``WINDOW_FACTOR × delta`` of a rounding boundary; the pinned weight is the one ``vectors`` hold (0 if absent).

    What ``encode`` found while encoding them (:func:`recorded_boundary`), when it kept that for every shard and the
    vectors are all of ``collection``'s documents (no ``--limit``) at ``encoder``'s scale; else the documents of
    ``collection`` are encoded once more here (float32, as ``encode`` does, without ``--exact``), which also refuses
    vectors that do not hold every document."""
    from .corpus import read_corpus
    from .provenance import corpus_fingerprint
    from .vectors import read_encoding_meta

    window = boundary_window(delta)
    scale = float(encoder.card.scale)
    record = read_encoding_meta(vectors)
    if record.get("corpus_sha256") == corpus_fingerprint(collection) and record.get("limit") is None \
            and record.get("scale") is not None and float(record["scale"]) == scale:
        recorded = recorded_boundary(vectors, window, record)
        if recorded is not None:
            return recorded
    pinned = dict(read_vectors(vectors))
    out: dict[tuple[str, str], int] = {}
    docs = list(read_corpus(collection))
    if len(docs) != len(pinned):
        raise SpladeError(f"{vectors} holds {len(pinned)} documents, the corpus {collection} {len(docs)}.")
    for start in range(0, len(docs), batch):
        part = docs[start:start + batch]
        ids = encoder.tokenize([d.text for d in part], encoder.card.doc_max_length)
        rows, cols, _ = near_entries(encoder.encode_ids(ids, "document", exact=False), scale, window)
        for row, col in zip(rows.tolist(), cols.tolist()):
            docid = part[row].id
            if docid not in pinned:
                raise SpladeError(f"document {docid} of {collection} is not in {vectors}.")
            term = encoder.vocab[col]
            out[(docid, term)] = pinned[docid].get(term, 0)
    return out


def write_boundary(path: Path, entries: dict[tuple[str, str], int]) -> None:
    """Deterministic gzip of ``docid<TAB>term<TAB>weight`` lines, sorted (the same entries give the same bytes)."""
    from .fileio import atomic_write

    text = "".join(f"{d}\t{t}\t{w}\n" for (d, t), w in sorted(entries.items()))
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    with atomic_write(path, "wb", encoding=None) as f:
        f.write(buf.getvalue())


def read_boundary(path: str | os.PathLike) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                raise SpladeError(f"{path}:{lineno}: expected `docid<TAB>term<TAB>weight`.")
            out[(parts[0], parts[1])] = int(parts[2])
    return out


@dataclass
class VectorsCheck:
    """What :func:`check_vectors` found: ``state`` is ``identical``, ``re-encoded`` (differences at boundary
    entries only, each one step) or ``different``; ``changed``: ``(docid, term, pinned, actual)``."""

    state: str
    message: str
    changed: list[tuple[str, str, int, int]] = field(default_factory=list)

    @property
    def terms_delta(self) -> int:
        """How much the changed entries move the index's ``total terms`` (a weight is a term frequency)."""
        return sum(actual - pinned for _, _, pinned, actual in self.changed)


def check_vectors(folder: str | os.PathLike, sha256: str, masked_sha256: str,
                  boundary: dict[tuple[str, str], int]) -> VectorsCheck:
    found = digest(folder, boundary)
    if found.sha256 == sha256:
        return VectorsCheck("identical", f"the pinned vectors (sha256 {sha256[:12]}…, {found.documents} documents)")
    if found.masked_sha256 != masked_sha256:
        return VectorsCheck("different", f"vectors differ from the pinned ones beyond rounding-boundary weights "
                                         f"(masked sha256 {found.masked_sha256[:12]}…, pinned {masked_sha256[:12]}…; "
                                         f"{found.documents} documents): not the config's vectors")
    changed = sorted((d, t, boundary[(d, t)], found.weights.get((d, t), 0)) for (d, t) in boundary
                     if found.weights.get((d, t), 0) != boundary[(d, t)])
    far = [c for c in changed if abs(c[3] - c[2]) != 1]
    if far:
        d, t, p, a = far[0]
        return VectorsCheck("different", f"{len(far)} boundary weights differ by more than one step (document {d} "
                                         f"term {t!r}: pinned {p}, here {a}): not float noise", changed)
    shown = ", ".join(f"{d}/{t} {p}→{a}" for d, t, p, a in changed[:5]) + (" …" if len(changed) > 5 else "")
    docs = len({c[0] for c in changed})
    return VectorsCheck("re-encoded", f"re-encoded vectors: {len(changed)} of {len(boundary)} rounding-boundary "
                                      f"weights differ by one step, in {docs} documents ({shown}); everything else "
                                      f"equals the pinned vectors", changed)
