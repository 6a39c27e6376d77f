"""Vector shards: Parquet equals JSONL, and a 2-process torchrun run writes the same shards as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SAMPLE, run_main
from splade_pyserini.vectors import read_encoding_meta


def jsonl_vectors(folder: Path) -> dict:
    return {d["id"]: d["vector"] for p in sorted(folder.glob("vectors-*.jsonl")) for d in map(json.loads, open(p))}


def test_parquet_holds_the_same_vectors_as_jsonl(tmp_path, tiny_encoder):
    import pyarrow.parquet as pq

    from splade_pyserini.vectors import encode_corpus

    encode_corpus(tiny_encoder, SAMPLE, tmp_path / "j", shard_size=20, progress=False)
    meta = encode_corpus(tiny_encoder, SAMPLE, tmp_path / "p", shard_size=20, progress=False, fmt="parquet")
    assert meta["format"] == "parquet" and meta["documents"] == 48 and meta["shards"] == 3
    rows = [r for p in sorted((tmp_path / "p").glob("vectors-*.parquet")) for r in pq.read_table(p).to_pylist()]
    from_parquet = {r["id"]: dict(zip(r["terms"], r["weights"])) for r in rows}
    assert from_parquet == jsonl_vectors(tmp_path / "j")
    assert all(w > 0 for v in from_parquet.values() for w in v.values())
    schema = pq.read_schema(sorted((tmp_path / "p").glob("*.parquet"))[0])
    assert json.loads(schema.metadata[b"splade_pyserini"])["scale"] == 51.2
    from splade_pyserini.provenance import Provenance

    shard = Provenance.from_record(json.loads(schema.metadata[b"splade_pyserini"]))  # the folder's record, less shards
    folder = Provenance.from_record(read_encoding_meta(tmp_path / "p"))
    assert shard.shard_records == {} and len(folder.shard_records) == 3
    assert shard.to_record(shards=False) == folder.to_record(shards=False)


@pytest.mark.slow  # torchrun: three Python processes
def test_torchrun_two_ranks_write_the_same_shards_as_one_process(tmp_path, tiny_model):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = ["encode", "--encoder", str(tiny_model), "--corpus", str(SAMPLE), "--shard-size", "10", "--device", "cpu"]
    code, _, err = run_main(*args, "--output", tmp_path / "one")  # one process: this one (it computes on one thread)
    assert code == 0, err[-2000:]
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", "29533", "-m", "splade_pyserini",
                           *args, "--output", str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = read_encoding_meta(tmp_path / "two")
    assert meta["complete"] and meta["documents"] == 48 and meta["shards"] == 5 and meta["world_size"] == 2
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    assert jsonl_vectors(tmp_path / "two") == jsonl_vectors(tmp_path / "one")
