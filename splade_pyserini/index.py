"""Building a Lucene impact index from encoded vectors with Anserini (``-impact -pretokenized``).

The index folder records what its weights mean (``splade_pyserini.json``: the vectors' :class:`~.provenance.Provenance`
(encoder, weights sha256, scale, variant, lengths, corpus sha256, shards), and how it was indexed), written inside
the index before it appears at its path, so a search with another model is refused and queries are quantised with
the index's own scale. The index path is checked before any work: it is replaced only
when absent, empty, or an index this package built (see :func:`~.fileio.check_replaceable`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import SpladeError
from .fileio import atomic_directory, check_replaceable, write_json
from .provenance import Provenance, normalize
from .vectors import complete_encoding_meta, shard_files

INDEX_META = "splade_pyserini.json"


def read_index_meta(index_dir: str | os.PathLike) -> dict | None:
    """The index's record (an earlier version's keys read as today's), or None when it has none."""
    path = Path(index_dir) / INDEX_META
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SpladeError(f"{path} is not a readable index record ({e}); rebuild the index with "
                          "`splade-pyserini index`.") from None
    if not isinstance(meta, dict):
        raise SpladeError(f"{path} is not an index record (no JSON object); rebuild the index with "
                          "`splade-pyserini index`.")
    return normalize(meta)


def index_provenance(index_dir: str | os.PathLike) -> Provenance | None:
    """What the index is (see :mod:`.provenance`); None for an index without a record."""
    meta = read_index_meta(index_dir)
    return None if meta is None else Provenance.from_record(meta)


def build_index(vectors_dir: str | os.PathLike, index_dir: str | os.PathLike, threads: int | None = None,
                store_docvectors: bool = True, stock: bool = False, quiet: bool = True) -> dict:
    """Index the shards of ``vectors_dir`` (written by ``encode``) into ``index_dir``; returns the index metadata.

    By default through the Java extension (each term given to Lucene once, with its frequency set directly);
    ``stock=True``, or no javac >= 21 to build the extension, uses Anserini's JsonVectorCollection, which repeats
    each term ``weight`` times. Both give the same postings."""
    from .anserini import anserini_version, collection_input, run_java

    vectors_dir = Path(vectors_dir)
    target = check_replaceable(index_dir, "--index")  # before any work: nothing of the user's is replaced
    source = vectors_dir.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise SpladeError(f"--index {index_dir} and --vectors {vectors_dir} overlap; give the index its own folder.")
    meta = complete_encoding_meta(vectors_dir)
    if not shard_files(vectors_dir):
        raise SpladeError(f"{vectors_dir} holds no vector shards (vectors-*.jsonl).")
    threads = threads or max(1, min(os.cpu_count() or 1, len(shard_files(vectors_dir))))
    jar = None
    if not stock:
        from .javabuild import extension_jar

        jar = extension_jar()  # None (after one warning) without a javac >= 21: the stock path is used
    index_meta = {
        **Provenance.from_record(meta).to_record(), "documents": meta.get("documents"),
        "vectors": str(vectors_dir.resolve()), "anserini": anserini_version(),
        "indexer": "splade-pyserini java extension (SpladeVectorCollection)" if jar else "stock JsonVectorCollection",
    }
    if jar is not None:
        from .javaext import fast_index

        # integer weights as written by `encode`; the extension gives Lucene each term once with its frequency
        fast_index(vectors_dir, index_dir, scale=None, threads=threads, store_docvectors=store_docvectors,
                   quiet=quiet, records={INDEX_META: index_meta})
        return index_meta
    if meta.get("format") == "parquet":
        raise SpladeError(f"{vectors_dir} holds Parquet shards, which stock Anserini cannot read; index them without "
                          "--stock (the Java extension), or encode with --format jsonl.")
    # the shards alone: stock JsonVectorCollection would read the folder's records as (empty) documents
    with collection_input(vectors_dir, shard_files(vectors_dir)) as staged, atomic_directory(index_dir) as tmp:
        args = ["-collection", "JsonVectorCollection", "-generator", "DefaultLuceneDocumentGenerator",
                "-input", str(staged), "-index", str(tmp), "-threads", str(threads), "-impact", "-pretokenized"]
        if store_docvectors:
            args.append("-storeDocvectors")
        run_java("io.anserini.index.IndexCollection", args, quiet=quiet)
        write_json(tmp / INDEX_META, index_meta)  # inside the index before it appears at its path
    return index_meta
