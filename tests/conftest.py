"""Shared fixtures: the real data in ../shared (skipped with a reason where absent) and pipelines built once;
the test tiers (the ``slow`` marker) and the numba kernels compiled once per session.

Tiers: a test is ``slow`` when it starts Python or a JVM in a subprocess (helpers.run_cli, a Java class, a
notebook's kernel), uses a whole collection encoded and indexed (the ``*_pipeline`` fixtures: marked here,
automatically), or puts a collection's texts through a float64 reference model. ``make test-fast`` (``-m "not slow"``) fails a test that starts such a process without the mark,
so the tiers cannot drift; ``make test`` and CI run everything.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import starts_a_process

SHARED = Path(__file__).resolve().parents[2] / "shared"
COLLECTIONS = SHARED / "collections"
TINY = SHARED / "models" / "splade-tiny"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Java subprocesses of the tests are short: C1-compiled code only, about 1.2 s less CPU a JVM (splade_pyserini.jdk)
os.environ.setdefault("SPLADE_PYSERINI_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers share the cores: one compute thread each (torch, MKL, OpenBLAS, numba; their subprocesses
    # inherit it), since OpenMP pools that spin while oversubscribed slow every worker down several times.
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_var, "1")


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


def built_once(tmp_path_factory, name: str, build) -> dict:
    """``build(folder)`` (a dict of paths) run once per test session, also when pytest-xdist runs the tests in several
    workers: the first worker to ask builds it under a file lock in the session's shared temporary folder, the others
    wait and reuse its result (tests copy what they change)."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder every worker's basetemp is in
    folder, done = root / f"built-{name}", root / f"built-{name}.json"
    with FileLock(str(root / f"built-{name}.lock")):
        if done.exists():
            return {k: Path(v) for k, v in json.loads(done.read_text()).items()}
        if folder.exists():
            import shutil

            shutil.rmtree(folder)  # a worker interrupted while building it
        folder.mkdir()
        result = build(folder)
        done.write_text(json.dumps({k: str(v) for k, v in result.items()}))
        return result


@pytest.fixture(scope="session")
def cranfield_pipeline(cranfield, tiny_encoder, tmp_path_factory):
    return built_once(tmp_path_factory, "cranfield", lambda folder: _pipeline(cranfield, tiny_encoder, folder))


@pytest.fixture(scope="session")
def vaswani_pipeline(vaswani, tiny_encoder, tmp_path_factory):
    return built_once(tmp_path_factory, "vaswani", lambda folder: _pipeline(vaswani, tiny_encoder, folder))


def _sample(encoder, root: Path) -> dict:
    from helpers import SAMPLE
    from splade_pyserini.index import build_index
    from splade_pyserini.vectors import encode_corpus

    encode_corpus(encoder, SAMPLE, root / "vectors", progress=False)
    build_index(root / "vectors", root / "index", threads=1)
    return {"vectors": root / "vectors", "index": root / "index", "collection": SAMPLE}


@pytest.fixture(scope="session")
def sample_pipeline(tiny_encoder, tmp_path_factory) -> dict:
    """The bundled 48-document sample encoded (vectors/) and indexed (index/, one JVM subprocess) once per session;
    tests copy what they change."""
    return built_once(tmp_path_factory, "sample", lambda folder: _sample(tiny_encoder, folder))


# --- tiers -----------------------------------------------------------------------------------------------------------
# encoded and indexed (a JVM); data_files (test_train_trainer): pools mined from an Anserini BM25 index of Cranfield
# float64_model (test_exact_weights): whole collections' query and document sets through a float64 reference
SLOW_FIXTURES = {"cranfield_pipeline", "vaswani_pipeline", "sample_pipeline", "data_files", "float64_model"}
_started: list[str] = []  # processes started by the running test, while the fast tier is selected
_guarding = [False]  # True while a test runs (not while collecting)


def _fast_tier(config) -> bool:
    return "not slow" in (config.getoption("markexpr", "") or "")


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config):
    if not _fast_tier(config):
        return
    popen = subprocess.Popen

    class Watched(popen):
        """Refuses (rather than starts) Python or a JVM in a subprocess: the fast tier stays fast."""

        def __init__(self, args, *a, **kw):
            if _guarding[0] and starts_a_process(args):
                _started.append(" ".join(map(str, [args] if isinstance(args, (str, os.PathLike)) else args))[:200])
                raise RuntimeError(f"make test-fast starts no subprocess: {_started[-1]} (mark the test slow)")
            super().__init__(args, *a, **kw)

    subprocess.Popen = Watched


def pytest_runtest_setup(item):
    _started.clear()
    _guarding[0] = True


def pytest_runtest_logfinish(nodeid, location):
    _guarding[0] = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if _started and report.when == "call" and _fast_tier(item.config):
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} started a process while not marked slow: {_started[0]}\n"
                           "mark it @pytest.mark.slow (make test runs it) or test it in-process")
    return report


@pytest.fixture(scope="session", autouse=True)
def pipelines_built_early(request):
    """Under pytest-xdist (make test), worker gw0 builds the Vaswani pipeline and gw1 the Cranfield one before their
    first test, in parallel, rather than the first test that needs one building it while other workers wait for it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    first = {"gw0": "vaswani_pipeline", "gw1": "cranfield_pipeline"}.get(worker or "")
    slow = sum(1 for item in request.session.items if item.get_closest_marker("slow"))
    if first and slow > 50 and TINY.exists() and (COLLECTIONS / first.split("_")[0]).is_dir():
        request.getfixturevalue(first)


@pytest.fixture(scope="session", autouse=True)
def warm_query_kernels(request):
    """The numba query kernels compiled (or loaded from numba's cache beside the package) once, before any test
    starts a subprocess: the subprocesses load them from that cache instead of each compiling them (about 18 s
    of CPU a process when cold)."""
    if TINY.exists() and any(item.get_closest_marker("slow") for item in request.session.items):
        request.getfixturevalue("tiny_encoder").encode(["warm the query kernels"], "query")
