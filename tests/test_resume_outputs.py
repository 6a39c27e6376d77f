"""Nothing lost, nothing trusted blindly: resume proves a shard is this run's, one writer per folder, output paths
never replace what the package did not write (checked before any work), umask honoured, model identity by weights."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_cli, run_main_as_process
from test_errors_and_resume import cli, one_line_error

from splade_pyserini.errors import SpladeError
from splade_pyserini.vectors import read_encoding_meta

SAMPLE = Path(__file__).resolve().parents[1] / "splade_pyserini" / "data" / "sample"


def _meta_path(folder: Path) -> Path:
    from splade_pyserini.vectors import META_FILE

    return folder / META_FILE


def _ids(folder: Path) -> list[str]:
    return [json.loads(line)["id"] for p in sorted(folder.glob("vectors-*.jsonl")) for line in open(p)]


def _corpus_ids(corpus: Path) -> list[str]:
    return [json.loads(line)["_id"] for line in open(corpus)]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    """Two corpora of 24 documents each: the sample's first and last halves."""
    root = tmp_path_factory.mktemp("corpora")
    lines = (SAMPLE / "corpus.jsonl").read_text().splitlines()
    (root / "a.jsonl").write_text("\n".join(lines[:24]) + "\n")
    (root / "b.jsonl").write_text("\n".join(lines[24:]) + "\n")
    return root / "a.jsonl", root / "b.jsonl"


@pytest.fixture(scope="module")
def sample_index(sample_pipeline) -> dict:
    return sample_pipeline  # conftest: encoded and indexed once per session


def _encode(model, corpus, out, *extra):
    """`encode` through the CLI in this process (the refusals and resumes under test are the command's, and the
    concurrent writers they meet are real subprocesses: _held_encode)."""
    return run_main_as_process("encode", "--encoder", model, "--corpus", corpus, "--output", out, "--device", "cpu",
                               *extra)


# --- resume -------------------------------------------------------------------------------------------------------
@pytest.mark.slow  # the CLI in a subprocess
def test_finished_folder_of_one_corpus_is_refused_for_another(tmp_path, tiny_model, corpora):
    a, b = corpora
    out = tmp_path / "v"
    assert _encode(tiny_model, a, out).returncode == 0
    assert _ids(out) == _corpus_ids(a)
    record = _meta_path(out).read_bytes()
    msg = one_line_error(_encode(tiny_model, b, out))
    assert "another corpus" in msg and "--overwrite" in msg
    assert _ids(out) == _corpus_ids(a) and _meta_path(out).read_bytes() == record  # untouched
    assert _encode(tiny_model, b, out, "--overwrite").returncode == 0
    assert _ids(out) == _corpus_ids(b)
    assert read_encoding_meta(out)["complete"] is True


@pytest.mark.slow  # the CLI in a subprocess
def test_partial_folder_is_resumed_only_with_the_same_corpus(tmp_path, tiny_model, tiny_encoder, corpora):
    from splade_pyserini.vectors import encode_corpus

    a, b = corpora
    out = tmp_path / "v"
    encode_corpus(tiny_encoder, a, out, shard_size=2, limit=2, progress=False)
    msg = one_line_error(_encode(tiny_model, b, out, "--shard-size", "2"))
    assert "another corpus" in msg and "--overwrite" in msg
    assert _ids(out) == _corpus_ids(a)[:2]
    first = (out / "vectors-00000.jsonl").stat().st_mtime_ns
    meta = encode_corpus(tiny_encoder, a, out, shard_size=2, progress=False)  # the same corpus: resumed
    assert meta["complete"] and meta["documents"] == 24 and _ids(out) == _corpus_ids(a)
    assert (out / "vectors-00000.jsonl").stat().st_mtime_ns == first


def test_resume_refuses_shards_its_record_does_not_prove(tmp_path, tiny_encoder, corpora):
    from splade_pyserini.vectors import encode_corpus

    a, b = corpora
    out, other = tmp_path / "v", tmp_path / "other"
    encode_corpus(tiny_encoder, a, out, shard_size=4, limit=8, progress=False)
    encode_corpus(tiny_encoder, b, other, shard_size=4, limit=8, progress=False)
    shutil.copy(other / "vectors-00001.jsonl", out / "vectors-00001.jsonl")  # the same name, another run's shard
    with pytest.raises(SpladeError, match="vectors-00001.jsonl is not the shard this folder's record describes"):
        encode_corpus(tiny_encoder, a, out, shard_size=4, progress=False)
    encode_corpus(tiny_encoder, a, out, shard_size=4, progress=False, overwrite=True)
    assert _ids(out) == _corpus_ids(a)
    with pytest.raises(SpladeError, match=r"beyond --limit 5.*--overwrite"):  # fewer documents than it holds
        encode_corpus(tiny_encoder, a, out, shard_size=4, limit=5, progress=False)
    other_model = tiny_encoder.card.__class__(**{**tiny_encoder.card.__dict__, "scale": 100.0})
    tiny_encoder.card, saved = other_model, tiny_encoder.card
    try:
        with pytest.raises(SpladeError, match=r"another setting \(scale"):
            encode_corpus(tiny_encoder, a, out, shard_size=4, progress=False)
    finally:
        tiny_encoder.card = saved


_SLOW_WRITER = """
import pathlib, sys, time
from splade_pyserini import cli, vectors
release, held_from = pathlib.Path(sys.argv[1]), int(sys.argv[2])
close = vectors._ShardWriter.close
def held(self, ok=True):  # keep shards from `held_from` on under their temporary names until the test says so
    while self.index >= held_from and not release.exists():
        time.sleep(0.05)
    close(self, ok)
vectors._ShardWriter.close = held
sys.exit(cli.main(sys.argv[3:]))
"""


def _held_encode(release: Path, held_from: int, model, corpus, out, *extra) -> subprocess.Popen:
    """An ``encode`` that stops before publishing shard ``held_from``, its file written under the temporary name."""
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(release), str(held_from), "encode", "--encoder",
                             str(model), "--corpus", str(corpus), "--output", str(out), "--device", "cpu", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tmp = out / f".vectors-{held_from:05d}.jsonl.tmp"
    deadline = time.monotonic() + 300
    while not tmp.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the writer never started the held shard"
        time.sleep(0.1)
    return proc


@pytest.mark.slow  # the CLI in a subprocess
def test_killed_encode_resumes_to_the_same_bytes(tmp_path, tiny_model, tiny_encoder, corpora):
    from splade_pyserini.vectors import encode_corpus

    a, _ = corpora
    out = tmp_path / "v"
    killed = _held_encode(tmp_path / "never", 2, tiny_model, a, out, "--shard-size", "5")
    killed.kill()  # SIGKILL: shards 0 and 1 are in place, shard 2 is a temporary file, the lock dies with it
    killed.communicate()
    assert sorted(p.name for p in out.glob("vectors-*")) == ["vectors-00000.boundary", "vectors-00000.jsonl",
                                                             "vectors-00001.boundary", "vectors-00001.jsonl"]
    assert _encode(tiny_model, a, out, "--shard-size", "5").returncode == 0
    clean = encode_corpus(tiny_encoder, a, tmp_path / "clean", shard_size=5, progress=False)
    assert clean["shards"] == 5 and not list(out.glob(".vectors-*"))
    for p in sorted((tmp_path / "clean").glob("vectors-*")):
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name


@pytest.mark.slow  # the CLI in a subprocess
def test_second_writer_on_a_folder_is_refused_and_the_first_completes(tmp_path, tiny_model, corpora):
    a, _ = corpora
    out, release = tmp_path / "v", tmp_path / "release"
    first = _held_encode(release, 0, tiny_model, a, out)
    try:
        tmp = out / ".vectors-00000.jsonl.tmp"
        msg = one_line_error(_encode(tiny_model, a, out))
        assert "being written by another" in msg
        assert tmp.exists() and first.poll() is None  # the first writer's temporary file is untouched
    finally:
        release.touch()
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert _ids(out) == _corpus_ids(a) and read_encoding_meta(out)["complete"] is True


@pytest.mark.slow  # the CLI in a subprocess
def test_writer_lock_allows_the_ranks_of_one_job_only(tmp_path):
    """Ranks of one job hold the folder together; a writer of the same rank or another job size is refused."""
    hold = ("import sys, time\nfrom splade_pyserini.fileio import writer_lock\n"
            "with writer_lock(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])):\n"
            "    print('held', flush=True)\n    time.sleep(float(sys.argv[4]))\n")

    def take(rank, world, seconds):
        return subprocess.Popen([sys.executable, "-c", hold, str(tmp_path), str(rank), str(world), str(seconds)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    rank0 = take(0, 2, 30)
    assert rank0.stdout.readline().strip() == "held"
    try:
        for rank, world, expected in ((1, 2, 0), (0, 2, 1), (0, 1, 1), (2, 3, 1)):
            proc = take(rank, world, 0)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == expected, (rank, world, err)
            assert expected == 0 or "being written by another" in err
    finally:
        rank0.kill()
        rank0.wait()
    proc = take(0, 1, 0)  # a dead writer's lock is released by the OS
    assert proc.communicate(timeout=60)[0].strip() == "held"


# --- output folders -----------------------------------------------------------------------------------------------
def test_index_into_a_folder_with_a_users_file_is_refused_and_the_file_kept(tmp_path, sample_index):
    target = tmp_path / "idx"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    before = sorted(os.listdir(tmp_path))
    msg = one_line_error(cli("index", "--vectors", sample_index["vectors"], "--index", target))
    assert "notes.txt" in msg and "did not write" in msg
    assert (target / "notes.txt").read_text() == "mine" and os.listdir(target) == ["notes.txt"]
    assert sorted(os.listdir(tmp_path)) == before  # nothing staged beside it


@pytest.mark.parametrize("where", [".", "..", "vectors", "vectors/index", "afile"])
def test_index_paths_are_checked_before_any_work(tmp_path, sample_index, where):
    here = tmp_path / "here"
    here.mkdir()
    shutil.copytree(sample_index["vectors"], here / "vectors")
    (here / "afile").write_text("x")
    before = {p: sorted(os.listdir(p)) for p in (tmp_path, here, here / "vectors")}
    proc = run_cli("index", "--vectors", "vectors", "--index", where, cwd=here, timeout=None)
    msg = one_line_error(proc)
    assert any(s in msg for s in ("current folder", "overlap", "is a file", "did not write")), msg
    assert {p: sorted(os.listdir(p)) for p in before} == before  # nothing built, staged or deleted


def test_own_index_is_rebuilt_but_other_folders_are_never_overwritten(tmp_path, sample_index, tiny_model):
    from splade_pyserini.fileio import OWNER_FILE, owner
    from splade_pyserini.index import INDEX_META, build_index

    index = tmp_path / "index"
    shutil.copytree(sample_index["index"], index)
    assert INDEX_META in owner(index)["entries"]  # the record was inside the index before it got its name
    build_index(sample_index["vectors"], index, threads=1)  # an index this package built: replaced
    assert (index / INDEX_META).is_file() and (index / OWNER_FILE).is_file()
    (index / "notes.txt").write_text("mine")  # a user's file in it: no longer only ours
    with pytest.raises(SpladeError, match="notes.txt"):
        build_index(sample_index["vectors"], index, threads=1)
    assert (index / "notes.txt").read_text() == "mine"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    msg = one_line_error(_encode(tiny_model, SAMPLE, folder, "--overwrite"))  # --overwrite deletes only ours
    assert "not written by splade-pyserini" in msg and os.listdir(folder) == ["thesis.tex"]


@pytest.mark.slow  # the CLI in a subprocess
def test_quickstart_and_regression_work_folders_refuse_a_users_folder(tmp_path):
    from splade_pyserini.fileio import work_folder
    from splade_pyserini.quickstart import WORK_NAMES

    (tmp_path / "thesis.tex").write_text("x")
    msg = one_line_error(cli("quickstart", "--work-dir", tmp_path, "--device", "cpu"))
    assert "--work-dir" in msg and "not written by splade-pyserini" in msg
    work = work_folder(tmp_path / "w", "quickstart folder", WORK_NAMES)
    (work / "vectors").mkdir()
    assert work_folder(tmp_path / "w", "quickstart folder", WORK_NAMES) == work  # its own: taken again
    (work / "thesis.tex").write_text("x")
    with pytest.raises(SpladeError, match="thesis.tex"):
        work_folder(tmp_path / "w", "quickstart folder", WORK_NAMES)
    with pytest.raises(SpladeError, match="holds a splade-pyserini quickstart folder, not a regression"):
        work_folder(tmp_path / "w", "regression work folder")


@pytest.mark.slow  # an index (a JVM in a subprocess)
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_honor_the_umask(tmp_path, tiny_encoder, umask):
    from splade_pyserini.index import build_index
    from splade_pyserini.vectors import encode_corpus

    old = os.umask(umask)
    try:
        encode_corpus(tiny_encoder, SAMPLE, tmp_path / "v", shard_size=20, progress=False)
        build_index(tmp_path / "v", tmp_path / "i", threads=1)
    finally:
        os.umask(old)
    for folder in (tmp_path / "v", tmp_path / "i"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~umask, folder
        for f in folder.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f


# --- model identity -----------------------------------------------------------------------------------------------
def test_search_checks_the_model_by_its_weights_not_its_name(tmp_path, sample_index, tiny_model, tiny_encoder,
                                                              caplog):
    from safetensors.torch import load_file, save_file

    from splade_pyserini import SpladeSearcher, load_encoder
    from splade_pyserini.index import INDEX_META, read_index_meta

    recorded = read_index_meta(sample_index["index"])["weights_sha256"]
    assert recorded == tiny_encoder.weights_hash
    assert read_encoding_meta(sample_index["vectors"])["weights_sha256"] == recorded
    same = tmp_path / "copy" / "renamed-model"  # the same weights under another name: accepted
    shutil.copytree(tiny_model, same)
    with SpladeSearcher(sample_index["index"], load_encoder(str(same), device="cpu")) as s:
        assert s.search("why do coral reefs turn white", 3)
    other = tmp_path / "other" / tiny_model.name  # the index's model's name, other weights: refused
    shutil.copytree(tiny_model, other)
    weights = load_file(other / "model.safetensors")
    key = sorted(k for k in weights if k.endswith("bias"))[0]
    weights[key] = weights[key] + 0.25
    save_file(weights, other / "model.safetensors", metadata={"format": "pt"})
    msg = one_line_error(run_main_as_process("search", "--index", sample_index["index"], "--encoder", other,
                                             "--topics", SAMPLE, "--output", tmp_path / "run.txt", "--device", "cpu"))
    assert "other model weights" in msg and not (tmp_path / "run.txt").exists()
    old = tmp_path / "old-index"  # an index from before the weights hash: still searched, with a warning
    shutil.copytree(sample_index["index"], old)
    meta = read_index_meta(old)
    meta.pop("weights_sha256")
    (old / INDEX_META).write_text(json.dumps(meta))
    with SpladeSearcher(old, tiny_encoder) as s:
        assert s.search("why do coral reefs turn white", 3)
    assert "records no hash of its model's weights" in caplog.text


# --- one provenance record ------------------------------------------------------------------------------------------
def test_vectors_and_index_share_one_provenance_record(sample_index, tiny_encoder):
    from splade_pyserini.index import index_provenance, read_index_meta
    from splade_pyserini.provenance import Provenance

    vectors = read_encoding_meta(sample_index["vectors"])
    prov = Provenance.from_record(vectors)
    assert prov == Provenance.from_record(prov.to_record())  # the record reads back as it was written
    assert index_provenance(sample_index["index"]) == prov  # the index is what its vectors are, shards included
    card = tiny_encoder.card
    assert (prov.encoder, prov.weights_sha256, prov.scale, prov.doc_max_length, prov.query_max_length) == (
        card.name, tiny_encoder.weights_hash, card.scale, card.doc_max_length, card.query_max_length)
    assert sum(r["documents"] for r in prov.shard_records.values()) == 48 and prov.corpus_sha256
    for meta in (vectors, read_index_meta(sample_index["index"])):  # one key spelling
        assert "doc_max_length" in meta and "max_length" not in meta and meta["version"]


def _as_previous_version(record: dict) -> dict:
    """A record as splade-pyserini wrote it before the provenance record: ``max_length``, the version under
    ``splade_pyserini``, no seed."""
    old = {k: v for k, v in record.items() if k not in ("doc_max_length", "version", "seed")}
    return {**old, "max_length": record["doc_max_length"], "splade_pyserini": record["version"]}


@pytest.mark.slow  # the CLI in a subprocess and an index (Java)
def test_folders_written_by_the_previous_version_still_load(tmp_path, sample_index, tiny_model, tiny_encoder,
                                                            caplog):
    from splade_pyserini import SpladeSearcher
    from splade_pyserini.fileio import read_record, write_record
    from splade_pyserini.index import INDEX_META, build_index, read_index_meta

    vectors = tmp_path / "vectors"
    shutil.copytree(sample_index["vectors"], vectors)
    write_record(_meta_path(vectors), _as_previous_version(read_record(_meta_path(vectors))))
    before = {p.name: p.stat().st_mtime_ns for p in vectors.glob("vectors-*.jsonl")}
    _encode(tiny_model, SAMPLE, vectors)  # resumed: every shard is proved this run's and kept
    assert {p.name: p.stat().st_mtime_ns for p in vectors.glob("vectors-*.jsonl")} == before
    assert read_encoding_meta(vectors)["doc_max_length"] == tiny_encoder.card.doc_max_length
    build_index(vectors, tmp_path / "index", threads=1)
    index = tmp_path / "old-index"  # an index's record as the previous version wrote it
    shutil.copytree(sample_index["index"], index)
    meta = _as_previous_version(read_index_meta(index))
    meta.pop("shard_records")
    (index / INDEX_META).write_text(json.dumps(meta))
    query = "why do coral reefs turn white"
    with SpladeSearcher(tmp_path / "index", tiny_encoder) as new, SpladeSearcher(index, tiny_encoder) as old:
        assert old.scale == 51.2 and old.search(query, 5) == new.search(query, 5)
    meta.pop("scale")  # older still: no scale recorded: said in one line, and the card's used
    (index / INDEX_META).write_text(json.dumps(meta))
    caplog.clear()
    with caplog.at_level("WARNING", logger="splade_pyserini"), SpladeSearcher(index, tiny_encoder) as s:
        assert s.scale == tiny_encoder.card.scale
    warned = [r.getMessage() for r in caplog.records if "records no quantisation scale" in r.getMessage()]
    assert len(warned) == 1 and str(index) in warned[0] and "\n" not in warned[0]


def test_a_damaged_index_record_is_refused_in_one_line(tmp_path, sample_index, tiny_encoder):
    from splade_pyserini import SpladeSearcher
    from splade_pyserini.index import INDEX_META, read_index_meta

    index = tmp_path / "index"
    shutil.copytree(sample_index["index"], index)
    meta = read_index_meta(index)
    (index / INDEX_META).write_text(json.dumps({**meta, "scale": -1}))
    with pytest.raises(SpladeError, match="scale -1, not a positive number"):
        SpladeSearcher(index, tiny_encoder)
    (index / INDEX_META).write_text("{not json")
    with pytest.raises(SpladeError, match="not a readable index record"):
        SpladeSearcher(index, tiny_encoder)


def test_a_trained_models_seed_is_its_provenance(tmp_path):
    from splade_pyserini.provenance import TRAIN_STATE_FILE, training_seed

    assert training_seed(tmp_path) is None  # a model from elsewhere: no seed claimed
    (tmp_path / TRAIN_STATE_FILE).write_text(json.dumps({"seeds": {"seed": 7}, "config": {"seed": 7}}))
    assert training_seed(tmp_path) == 7
    (tmp_path / TRAIN_STATE_FILE).write_text("{damaged")
    assert training_seed(tmp_path) is None
