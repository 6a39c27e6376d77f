"""Exporting a regression config: a SPLADE encoder run on a BEIR collection (encode → index → search → evaluate,
or given vectors or index), written as ``<name>.yaml`` beside its data files under ``topics-and-qrels/`` (the
queries pre-encoded as repeated tokens, the qrels, the list of the vectors' rounding-boundary weights).
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Sequence

from ..errors import SpladeError
from ..fileio import atomic_directory, atomic_write, work_folder
from ..provenance import Provenance, check_compatible, normalize
from .config import (DEFAULT_METRICS, STATS_KEYS, STOCK_COLLECTION, STOCK_GENERATOR, TOPICS_DIR, format_config,
                     round_half_up, trec_eval_metric)
from .java_steps import evaluate_metric, index_corpus, index_stats, run_file_name, search

logger = logging.getLogger(__name__)


def topics_lines(qids: Sequence[str], weights: Sequence[dict[str, int]]) -> list[str]:
    """Pre-encoded impact topics: ``qid<TAB>token token …``, each token repeated ``weight`` times.

    Tokens keep the encoder's order. A query whose weights all quantise to zero has no line (it retrieves nothing;
    trec_eval ``-c`` counts it as zero, as an empty run would).
    """
    lines = []
    for qid, w in zip(qids, weights):
        bad = [t for t in w if not t or any(ch.isspace() for ch in t)]
        if bad:
            raise SpladeError(f"query {qid}: token {bad[0]!r} contains whitespace; it cannot be written as a "
                              "pre-tokenized topic.")
        if any(int(v) < 0 for v in w.values()):
            raise SpladeError(f"query {qid}: negative weights cannot be written as repeated tokens.")
        body = " ".join(" ".join([t] * int(v)) for t, v in w.items() if int(v) > 0)
        if body:
            lines.append(f"{qid}\t{body}")
    return lines


def read_pre_encoded_topics(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """``{qid: {token: weight}}`` back from a pre-encoded topics file (``.gz`` or plain)."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    topics: dict[str, dict[str, int]] = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            qid, _, body = line.partition("\t")
            counts: dict[str, int] = {}
            for token in body.split():
                counts[token] = counts.get(token, 0) + 1
            topics[qid.strip()] = counts
    return topics


def _readable(path: Path) -> None:
    """Files written through a temporary file are private (0600); published ones get the usual 0644 less umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o644 & ~umask)


def _write_gzip_text(path: Path, text: str) -> None:
    """Deterministic gzip (no name, no time stamp): the same topics give the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    with atomic_write(path, "wb", encoding=None) as f:
        f.write(buf.getvalue())


def _write_qrels(path: Path, qrels: dict[str, dict[str, int]]) -> None:
    with atomic_write(path) as f:
        for qid, docs in qrels.items():
            for docid, grade in docs.items():
                f.write(f"{qid} 0 {docid} {int(grade)}\n")


def _vectors_record(vectors: Path, encoder) -> dict:
    """The record of an ``encode`` output to export from (complete, JSONL shards, today's key spelling), after the
    one rule for using vectors with ``encoder`` (:func:`.provenance.check_compatible`: the same model)."""
    from ..vectors import complete_encoding_meta, shard_files

    record = normalize(complete_encoding_meta(vectors))
    if record.get("format", "JsonVectorCollection") != "JsonVectorCollection" or not any(
            p.suffix == ".jsonl" for p in shard_files(vectors)):
        raise SpladeError(f"{vectors} holds no JsonVectorCollection shards (encode with --format jsonl).")
    check_compatible(Provenance.from_record(record), encoder, f"vectors {vectors}")
    return record


def _provenance(encoder, vectors: Path | None, index: Path | None) -> tuple[Provenance, float, dict | None]:
    """What the config is made from: its provenance record (the vectors', else the index's, else what ``encoder``
    writes), the quantisation scale its topics take (the index's or the vectors' recorded one) and the vectors'
    whole record (their encode settings), checked against ``encoder`` by the one rule."""
    from ..index import index_provenance

    record = _vectors_record(vectors, encoder) if vectors is not None else None
    prov = Provenance.from_record(record) if record is not None else None
    if index is not None:
        scale = check_compatible(index_provenance(index), encoder, f"index {index}")
        if prov is not None and abs(float(prov.scale) - scale) > 1e-9:
            raise SpladeError(f"index {index} has the quantisation scale {scale} but vectors {vectors} have "
                              f"{prov.scale}: it was not built from them; pass the index of these vectors.")
        prov = prov or index_provenance(index)
    prov = prov or Provenance.of_encoder(encoder)
    scale = float(prov.scale if prov.scale is not None else encoder.card.scale)
    return prov, scale, record


def _encode_command(card, collection_name: str, corpus_path: str, record: dict | None, device: str) -> str:
    from ..cards import is_card_name

    encoder = card.name if is_card_name(card.name) else "ENCODER_DIR"
    cmd = (f"splade-pyserini encode --encoder {encoder} --corpus COLLECTIONS/{collection_name} "
           f"--output {corpus_path}")
    if record and record.get("shard_size") and int(record["shard_size"]) != 100_000:
        cmd += f" --shard-size {int(record['shard_size'])}"
    if record and record.get("doc_max_length") and int(record["doc_max_length"]) != int(card.doc_max_length):
        cmd += f" --max-length {int(record['doc_max_length'])}"
    return cmd + f" --device {device.split(':')[0]}" + (" --exact" if record and record.get("exact") else "")


def _topic_reader(qids: Sequence[str]) -> str:
    """TsvInt when every id is a canonical integer (TsvInt parses ids with Integer.valueOf), else TsvString."""
    def canonical_int(q: str) -> bool:
        return bool(re.fullmatch(r"-?[1-9]\d{0,8}|0", q))

    return "TsvInt" if all(canonical_int(q) for q in qids) else "TsvString"


def export_regression(encoder, collection: str | os.PathLike, output: str | os.PathLike = "regressions",
                      name: str | None = None, vectors=None, index=None, work_dir=None,
                      metrics: Sequence[str] = DEFAULT_METRICS, precision: int = 4, hits: int = 1000,
                      index_threads: int = 2, store_docvectors: bool = True, fast: bool = False,
                      corpus_path: str | None = None, topics_name: str | None = None,
                      download_url: str | None = None, download_checksum: str | None = None,
                      shard_size: int = 100_000, vectors_url: str | None = None, onnx: bool = False, log=None) -> Path:
    """Run ``encoder`` on a BEIR ``collection`` and write ``<output>/<name>.yaml`` with its topics and qrels.

    ``onnx``: the topics are the raw query texts, encoded in Anserini by ``-encoder SpladePyserini`` from the
    encoder's ONNX export, written to ``<output>/onnx/<name>/`` (see :mod:`.onnx_export`).

    ``encoder``: a :class:`SpladeEncoder` or a card name / model folder. ``vectors``: reuse an encoded corpus
    (``splade-pyserini encode`` output); ``index``: reuse an index of it (its statistics go into the config).
    The config pins the vectors (:mod:`.vector_pins`: checksums and the list of rounding-boundary weights, a side
    file beside the topics); ``vectors_url``: where the pinned vectors can be fetched (a URL or a path).
    Expected results come from the same commands ``run`` executes, so ``run`` reproduces them exactly.
    """
    from .. import __version__
    from ..encoder import SpladeEncoder, load_encoder
    from ..runs import read_qrels
    from ..topics import read_topics

    log = log or logger.info
    collection = Path(collection)
    if not (collection / "queries.jsonl").is_file() or not (collection / "qrels" / "test.tsv").is_file():
        raise SpladeError(f"collection {collection} is not a BEIR folder (corpus.jsonl, queries.jsonl, "
                          "qrels/test.tsv).")
    if isinstance(encoder, (str, os.PathLike)):
        encoder = load_encoder(encoder)
    if not isinstance(encoder, SpladeEncoder):
        raise SpladeError("encoder must be a SpladeEncoder, a card name or a model folder.")
    card = encoder.card
    if fast:
        from .. import javabuild

        if javabuild.extension_jar() is None:
            raise SpladeError("--fast names the Java extension's collection class, but the extension is unavailable "
                              f"(it needs a javac >= {javabuild.JAVA_RELEASE}); export without --fast.")
    collection_name = collection.resolve().name
    name = name or f"{collection_name}.{card.name}" + (".onnx" if onnx else "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SpladeError(f"config name {name!r}: use letters, digits, '.', '_' and '-'.")
    corpus_path = corpus_path or f"collections/{card.name}/{collection_name}"
    output = Path(output)
    topics_file = f"topics.{collection_name}.{card.name}.tsv.gz"
    qrels_file = f"qrels.{collection_name}.txt"
    boundary_file = f"vectors.{name}.boundary.tsv.gz"

    prov, scale, record = _provenance(encoder, None if vectors is None else Path(vectors),
                                      None if index is None else Path(index))
    if onnx and abs(scale - float(card.scale)) > 1e-9:
        raise SpladeError(f"the {'index' if index is not None else 'vectors'} of this export were quantised at scale "
                          f"{scale}, but the ONNX query encoder uses {card.name}'s {card.scale}; export without "
                          "--onnx.")
    queries = read_topics(collection)
    qrels = read_qrels(collection)
    qids = list(queries)
    if onnx:
        from .. import onnx_export

        topics_file = f"topics.{collection_name}.text.tsv.gz"
        lines = onnx_export.text_topics_lines(qids, [queries[q] for q in qids])
    else:
        log(f"export {name}: encoding {len(qids)} queries with {card.name}")
        lines = topics_lines(qids, encoder.quantized_queries([queries[q] for q in qids], scale))
    if len(lines) < len(qids):
        log(f"export {name}: {len(qids) - len(lines)} queries have no non-zero weight and are left out")
    reader = _topic_reader(qids)

    metric_entries = [trec_eval_metric(m, precision) for m in metrics]
    names = [m["metric"] for m in metric_entries]
    if len(set(names)) != len(names):
        raise SpladeError(f"metrics {list(metrics)} name the same measure twice.")
    model_name = f"{card.name}-cached"
    options = "-impact -pretokenized" + (" -storeDocvectors" if store_docvectors else "")
    data: dict = {
        "corpus": name,
        "corpus_path": corpus_path,
        "download_url": download_url,
        "download_checksum": download_checksum,
        "index_path": f"indexes/lucene-inverted.{name}/",
        "collection_class": STOCK_COLLECTION,
        "generator_class": STOCK_GENERATOR,
        "index_threads": int(index_threads),
        "index_options": options,
        "index_stats": {},
        "metrics": metric_entries,
        "topic_reader": reader,
        "topics": [{"name": topics_name or collection_name, "id": collection_name, "path": topics_file,
                    "qrel": qrels_file}],
        "models": [{"name": model_name, "display": card.name, "params": f"-impact -pretokenized -hits {int(hits)}",
                    "results": {}}],
    }
    if fast:
        from .. import javaext

        data["collection_class"], data["generator_class"] = javaext.COLLECTION, javaext.GENERATOR
    if onnx:
        data["models"][0].update(name=f"{card.name}-onnx", params=f"-impact -pretokenized -encoder "
                                 f"{onnx_export.ENCODER_NAME} -hits {int(hits)}")

    own_work = work_dir is None
    work = work_folder(work_dir, "regression work folder", prefix="splade-export-", what="--work-dir")
    try:
        staging = work / "export"
        (staging / TOPICS_DIR).mkdir(parents=True, exist_ok=True)
        _write_gzip_text(staging / TOPICS_DIR / topics_file, "".join(ln + "\n" for ln in lines))
        _write_qrels(staging / TOPICS_DIR / qrels_file, qrels)
        onnx_rel = f"onnx/{name}"
        if onnx:
            log(f"export {name}: exporting the ONNX query encoder of {card.name}")
            onnx_export.export_onnx(card, staging / onnx_rel)

        if index is not None:
            index_dir = Path(index)
            if not any(index_dir.glob("*.tvd")) and store_docvectors:
                data["index_options"] = "-impact -pretokenized"  # the index holds no document vectors
            log(f"export {name}: using the index {index_dir}")
        else:
            if vectors is None:
                from ..vectors import encode_corpus

                vectors = work / "vectors"
                log(f"export {name}: encoding the corpus of {collection} with {card.name}")
                encode_corpus(encoder, collection, vectors, shard_size=shard_size)
                prov, scale, record = _provenance(encoder, vectors, None)
            index_dir = work / "index"
            log(f"export {name}: indexing {vectors} with {data['collection_class']}")
            index_corpus(data, Path(vectors), index_dir)
        stats = index_stats(index_dir)
        data["index_stats"] = {k: stats[k] for k in STATS_KEYS if k in stats}
        pins = None
        if vectors is not None:
            from .. import vector_pins

            log(f"export {name}: pinning the vectors (checksums, and the weights near a rounding boundary)")
            boundary = vector_pins.boundary_entries(encoder, collection, vectors)
            found = vector_pins.digest(vectors, boundary)
            vector_pins.write_boundary(staging / TOPICS_DIR / boundary_file, boundary)
            pins = {"vectors_sha256": found.sha256, "vectors_masked_sha256": found.masked_sha256,
                    "vectors_boundary": boundary_file, "vectors_boundary_window": vector_pins.boundary_window(),
                    "vectors_boundary_weights": len(boundary)}
            if vectors_url:
                pins["vectors_url"] = vectors_url
        else:
            log(f"export {name}: no --vectors given, so the config pins no vectors")

        run = work / "runs" / run_file_name(data, data["models"][0], data["topics"][0])
        run.parent.mkdir(parents=True, exist_ok=True)
        log(f"export {name}: searching with SearchCollection {data['models'][0]['params']}")
        env = {**os.environ, onnx_export.ENVIRONMENT: str((staging / onnx_rel).resolve())} if onnx else None
        search(data, data["topics"][0], data["models"][0], index_dir, staging / TOPICS_DIR / topics_file, run,
               env=env)
        qrels_path = staging / TOPICS_DIR / qrels_file
        for m in metric_entries:
            value = round_half_up(evaluate_metric(m, qrels_path, run), int(m["metric_precision"]))
            data["models"][0]["results"][m["metric"]] = [value]
        data["splade_pyserini"] = {
            "encoder": prov.encoder,
            "variant": prov.variant,
            "scale": scale,
            "doc_max_length": prov.doc_max_length or card.doc_max_length,
            "query_max_length": prov.query_max_length or card.query_max_length,
            "queries": "encoder.quantized_queries: round(w * scale), halves away from zero, zeros dropped; "
                       "each token repeated weight times",
            "collection": collection_name,
            "encode": _encode_command(card, collection_name, corpus_path, record, encoder.device),
            "version": __version__,
        }
        if record and record.get("documents") is not None:
            data["splade_pyserini"]["documents"] = int(record["documents"])
        data["splade_pyserini"].update(pins or {})
        if onnx:
            data["splade_pyserini"]["queries"] = (f"raw text, encoded in Anserini by -encoder {onnx_export.ENCODER_NAME} "
                                                  f"(SPLADE_PYSERINI_ONNX or -D{onnx_export.PROPERTY}: onnx_model)")
            data["splade_pyserini"]["onnx_model"] = onnx_rel

        # Everything is computed: move the data files, then the config, into place.
        output.mkdir(parents=True, exist_ok=True)
        (output / TOPICS_DIR).mkdir(exist_ok=True)
        for fname in (topics_file, qrels_file, *([boundary_file] if pins else [])):
            _readable(staging / TOPICS_DIR / fname)
            os.replace(staging / TOPICS_DIR / fname, output / TOPICS_DIR / fname)
        if onnx:
            with atomic_directory(output / onnx_rel) as tmp:
                for f in (staging / onnx_rel).iterdir():
                    os.replace(f, tmp / f.name)
        config_path = output / f"{name}.yaml"
        with atomic_write(config_path) as f:
            f.write(format_config(data))
        _readable(config_path)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    log(f"export {name}: wrote {config_path}")
    return config_path


