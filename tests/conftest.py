"""Shared fixtures: the real data in ../shared (skipped with a reason where absent) and pipelines built once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
COLLECTIONS = SHARED / "collections"
TINY = SHARED / "models" / "splade-tiny"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (tests that use ../shared need the shared data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return need(TINY)


@pytest.fixture(scope="session")
def cranfield() -> Path:
    return need(COLLECTIONS / "cranfield")


@pytest.fixture(scope="session")
def vaswani() -> Path:
    return need(COLLECTIONS / "vaswani")


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model):
    from splade_pyserini import load_encoder

    return load_encoder(str(tiny_model), device="cpu")


def write_tsv_topics(collection: Path, path: Path, limit: int | None = None) -> Path:
    with open(collection / "queries.jsonl") as src, open(path, "w") as out:
        for i, line in enumerate(src):
            if limit is not None and i >= limit:
                break
            q = json.loads(line)
            out.write(f"{q['_id']}\t{q['text']}\n")
    return path


def _pipeline(collection: Path, encoder, workdir: Path) -> dict:
    from splade_pyserini.index import build_index
    from splade_pyserini.search import search_topics
    from splade_pyserini.vectors import encode_corpus

    vectors, index, run = workdir / "vectors", workdir / "index", workdir / "run.txt"
    encode_corpus(encoder, collection, vectors, shard_size=5000, progress=False)
    build_index(vectors, index, threads=2)
    search_topics(index, encoder, collection, run, hits=1000, threads=2, progress=False)
    return {"vectors": vectors, "index": index, "run": run, "collection": collection}


@pytest.fixture(scope="session")
def cranfield_pipeline(cranfield, tiny_encoder, tmp_path_factory):
    return _pipeline(cranfield, tiny_encoder, tmp_path_factory.mktemp("cranfield"))


@pytest.fixture(scope="session")
def vaswani_pipeline(vaswani, tiny_encoder, tmp_path_factory):
    return _pipeline(vaswani, tiny_encoder, tmp_path_factory.mktemp("vaswani"))
