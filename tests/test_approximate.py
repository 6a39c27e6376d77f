"""The approximate engine (Seismic, splade_pyserini.approximate): built from an index's own vectors, searched through
SpladeSearcher and the CLI, its hits' scores the exact ones, its recall against the exact search, and its refusals."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from helpers import run_main
from splade_pyserini.errors import SpladeError

seismic = pytest.importorskip("seismic", reason="pyseismic-lsr is not installed (pip install 'splade-pyserini[seismic]')")

from splade_pyserini.approximate import SEISMIC_DIR, build_seismic, open_seismic  # noqa: E402
from splade_pyserini.search import SpladeSearcher  # noqa: E402
from splade_pyserini.topics import read_topics  # noqa: E402


def _copy(pipeline, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(pipeline["index"], index)
    return index


@pytest.fixture(scope="module")
def vaswani_seismic(vaswani_pipeline, tmp_path_factory):
    index = _copy(vaswani_pipeline, tmp_path_factory.mktemp("seismic"))
    build_seismic(index, vaswani_pipeline["vectors"], threads=2, progress=False)
    return index


def test_seismic_finds_the_exact_top_10_with_exact_scores(vaswani_seismic, vaswani, tiny_encoder):
    """On Vaswani (93 queries, splade-tiny), Seismic with its default search parameters returns at least 95% of the
    exact top 10, and every hit it returns carries the exact score of that document."""
    topics = read_topics(vaswani)
    qids = list(topics)
    texts = [topics[q] for q in qids]
    with SpladeSearcher(vaswani_seismic, tiny_encoder) as exact_searcher:
        exact = exact_searcher.batch_search(texts, qids, k=1000, threads=1)
    with SpladeSearcher(vaswani_seismic, tiny_encoder, engine="seismic") as approx_searcher:
        approx = approx_searcher.batch_search(texts, qids, k=10, threads=1)
    found = sum(len({d for d, _ in approx[q]} & {d for d, _ in exact[q][:10]}) for q in qids)
    recall = found / sum(len(exact[q][:10]) for q in qids)
    assert recall >= 0.95, recall
    scored = 0
    for q in qids:
        exact_scores = dict(exact[q])
        assert [s for _, s in approx[q]] == sorted((s for _, s in approx[q]), reverse=True)
        for docid, score in approx[q]:
            if docid in exact_scores:  # the exact top 1000 holds almost every hit
                assert score == exact_scores[docid], (q, docid)
                scored += 1
    assert scored >= 0.95 * sum(len(approx[q]) for q in qids)
    # a query cut to its single largest term finds less: the parameters reach Seismic
    with SpladeSearcher(vaswani_seismic, tiny_encoder, engine="seismic", query_cut=1, heap_factor=0.1) as cut:
        narrow = cut.batch_search(texts, qids, k=10, threads=1)
    assert sum(len({d for d, _ in narrow[q]} & {d for d, _ in exact[q][:10]}) for q in qids) < found


def test_cli_index_seismic_and_search_engine(sample_pipeline, tmp_path):
    """`index --seismic` builds both indexes; `search --engine seismic` writes a run whose scores are the exact
    search's for the same documents; the Lucene index beside it still searches and can still be replaced."""
    index = tmp_path / "index"
    code, out, err = run_main("index", "--vectors", sample_pipeline["vectors"], "--index", index, "--seismic",
                              "--threads", "1")
    assert code == 0, err
    assert (index / SEISMIC_DIR / "seismic.json").is_file()
    exact_run, approx_run = tmp_path / "exact.txt", tmp_path / "seismic.txt"
    topics = sample_pipeline["collection"]
    for engine, run in (("lucene", exact_run), ("seismic", approx_run)):
        code, out, err = run_main("search", "--index", index, "--encoder", "splade-tiny", "--topics", topics,
                                  "--output", run, "--hits", "10", "--engine", engine)
        assert code == 0, err

    def scores(path):
        return {(line.split()[0], line.split()[2]): float(line.split()[4]) for line in path.read_text().splitlines()}

    exact, approx = scores(exact_run), scores(approx_run)
    assert len({q for q, _ in approx}) == len({q for q, _ in exact}) > 0
    shared = set(approx) & set(exact)
    assert len(shared) >= 0.95 * len(approx)
    assert all(approx[key] == exact[key] for key in shared)
    # the Seismic folder is the index folder's own entry: the index can be rebuilt over it
    code, out, err = run_main("index", "--vectors", sample_pipeline["vectors"], "--index", index, "--threads", "1")
    assert code == 0, err


def test_seismic_refusals(sample_pipeline, tmp_path, tiny_encoder, monkeypatch):
    index = _copy(sample_pipeline, tmp_path)
    with pytest.raises(SpladeError, match="has no Seismic index; build it with `splade-pyserini index"):
        SpladeSearcher(index, tiny_encoder, engine="seismic")
    with pytest.raises(SpladeError, match="unknown engine 'faiss'"):
        SpladeSearcher(index, tiny_encoder, engine="faiss")
    with pytest.raises(SpladeError, match="unknown Seismic build parameter"):
        build_seismic(index, sample_pipeline["vectors"], progress=False, n_posting=10)

    # an interrupted build leaves nothing behind, and the Lucene index as it was
    def fail(self, path):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(seismic.SeismicIndex, "save", fail)
        with pytest.raises(KeyboardInterrupt):
            build_seismic(index, sample_pipeline["vectors"], progress=False)
    assert sorted(p.name for p in index.iterdir()) == sorted(p.name for p in sample_pipeline["index"].iterdir())

    build_seismic(index, sample_pipeline["vectors"], progress=False)
    with pytest.raises(SpladeError, match="query_cut >= 1"):
        open_seismic(index, query_cut=0)
    # the Lucene index rebuilt with another scale: the Seismic index is refused, not mixed with it
    record_path = index / "splade_pyserini.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "scale": record["scale"] * 2}))
    with pytest.raises(SpladeError, match=r"built for another version of index .* \(scale differ"):
        open_seismic(index)
    record_path.write_text(json.dumps(record))
    assert open_seismic(index).search([{}], ["empty"], 10) == {"empty": []}  # an empty query matches nothing

    # other vectors than the index's
    other = tmp_path / "other"
    shutil.copytree(sample_pipeline["vectors"], other)
    meta_path = other / "encoding.meta"
    meta = json.loads(meta_path.read_text())
    meta["splade_pyserini"]["weights_sha256"] = "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(SpladeError, match="holds other vectors than index"):
        build_seismic(index, other, progress=False)

    code, out, err = run_main("search", "--index", index, "--encoder", "splade-tiny", "--topics",
                              sample_pipeline["collection"], "--output", tmp_path / "run.txt", "--query-cut", "5")
    assert code == 2 and "add --engine seismic" in err and not (tmp_path / "run.txt").exists()

    # pyseismic-lsr missing: one line saying what to install
    monkeypatch.setitem(sys.modules, "seismic", None)
    with pytest.raises(SpladeError, match=r"pip install 'splade-pyserini\[seismic\]'"):
        open_seismic(index)
    code, out, err = run_main("index", "--vectors", sample_pipeline["vectors"], "--index", tmp_path / "new",
                              "--seismic")
    assert code != 0 and "pyseismic-lsr" in err and not (tmp_path / "new").exists()


def test_vectors_are_read_line_by_line_and_a_malformed_line_is_named(tmp_path):
    from splade_pyserini.approximate import read_documents

    (tmp_path / "vectors-00000.jsonl").write_text('{"id": "a", "vector": {"x": 3, "y": 1}}\n\n'
                                                  '{"id": "b", "vector": [1]}\n')
    assert next(read_documents(tmp_path)) == ("a", ["x", "y"], [3, 1])
    with pytest.raises(SpladeError, match=r"vectors-00000.jsonl:3: not a vector line \(AttributeError"):
        list(read_documents(tmp_path))
    (tmp_path / "vectors-00000.jsonl").unlink()
    with pytest.raises(SpladeError, match="holds no vector shards"):
        list(read_documents(tmp_path))
