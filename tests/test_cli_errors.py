"""Every failure a user can cause ends in one line (``error: …``) with exit status 2, never a traceback.

One test per cause: bad arguments, the package's own errors, the operating system's, undecodable and malformed
files, refused pickles, Java and Lucene exceptions (in-process through pyjnius, and in Java subprocesses), plus the
``--debug`` switch that brings the traceback back. Queries longer than Lucene's default of 1,024 clauses are searched.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import SAMPLE, run_main
from splade_pyserini import cli
from splade_pyserini.cli import main
from splade_pyserini.errors import SpladeError, user_message


run = run_main  # the CLI in this process


def one_line(code: int, err: str) -> str:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def error_line(*args):
    """The command's one error line (its warnings aside), run in this process."""
    code, _, err = run(*args)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- arguments -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, named", [
    (["search", "--hits", "0"], "--hits: 0 must be above 0"),
    (["search", "--hits", "-5"], "--hits: -5 must be above 0"),
    (["search", "--hits", "ten"], "--hits: 'ten' is not an integer"),
    (["search", "--batch-size", "0"], "--batch-size: 0 must be above 0"),
    (["search", "--threads", "0"], "--threads: 0 must be above 0"),
    (["encode", "--scale", "nan"], "--scale: nan must be above 0"),  # search has no --scale: the index says
    (["encode", "--batch-size", "0"], "--batch-size: 0 must be above 0"),
    (["encode", "--shard-size", "-1"], "--shard-size: -1 must be above 0"),
    (["encode", "--limit", "0"], "--limit: 0 must be above 0"),
    (["bm25", "--k1", "-1"], "--k1: -1 must be at least 0"),
    (["bm25", "--hits", "0"], "--hits: 0 must be above 0"),
])
def test_bad_numbers_are_refused_as_one_line_before_any_work(args, named):
    code, out, err = run(*args, "--index", "i", "--encoder", "e", "--topics", "t", "--output", "o", "--corpus", "c")
    assert named in one_line(code, err) and f"see `splade-pyserini {args[0]} --help`" in err and out == ""


def test_usage_errors_are_one_line():
    for args in (["nosuchcommand"], ["search"], ["evaluate", "--qrels"], []):
        code, _, err = run(*args)
        one_line(code, err)


# --- causes, mapped in one place -----------------------------------------------------------------------------------
def _refused_pickle():
    import torch

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    buffer = io.BytesIO()
    torch.save({"state": Evil()}, buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=True)
    except pickle.UnpicklingError as e:
        return e
    raise AssertionError("torch.load(weights_only=True) accepted a pickled object")


def _undecodable():
    try:
        b"caf\xe9".decode("utf-8")
    except UnicodeDecodeError as e:
        return e


def _bad_json():
    try:
        json.loads('{"a": ')
    except json.JSONDecodeError as e:
        return e


@pytest.mark.parametrize("make, phrases", [
    (lambda: SpladeError("the problem;\nthe fix."), ["the problem; the fix."]),
    (lambda: FileNotFoundError(2, "No such file or directory", "/data/x"), ["/data/x: No such file or directory"]),
    (lambda: PermissionError(13, "Permission denied", "/root/y"), ["/root/y: Permission denied", "permissions"]),
    (lambda: OSError(28, "No space left on device"), ["No space left on device", "free space"]),
    (_undecodable, ["not UTF-8", "convert it to UTF-8"]),
    (_bad_json, ["malformed JSON", "line 1"]),
    (_refused_pickle, ["refused to load a pickled file", "never Python objects"]),
    (lambda: MemoryError(), ["out of memory", "--batch-tokens"]),
    (lambda: subprocess.CalledProcessError(3, ["javac", "-d"], stderr="first\nsecond"), ["javac failed (exit 3): first"]),
    (lambda: RuntimeError("odd\nthing"), ["unexpected RuntimeError: odd", "--debug", "SPLADE_PYSERINI_DEBUG=1"]),
], ids=["splade", "missing", "permission", "disk-full", "utf8", "json", "pickle", "memory", "subprocess", "other"])
def test_every_cause_becomes_one_line_with_a_fix(monkeypatch, make, phrases):
    exc = make()
    message = user_message(exc)
    assert "\n" not in message and all(p in message for p in phrases), message

    def fail(args):
        raise exc

    monkeypatch.setattr(cli, "_cmd_encoders", fail)
    code, _, err = run("encoders")
    assert all(p in one_line(code, err) for p in phrases)


def test_debug_flag_or_environment_shows_the_traceback(monkeypatch, tmp_path):
    missing = tmp_path / "missing-run"
    code, _, err = run("evaluate", "--qrels", SAMPLE, "--run", missing)
    assert "does not exist" in one_line(code, err)
    with pytest.raises(SpladeError, match="does not exist"):
        main(["evaluate", "--debug", "--qrels", str(SAMPLE), "--run", str(missing)])
    monkeypatch.setenv("SPLADE_PYSERINI_DEBUG", "1")
    with pytest.raises(SpladeError, match="does not exist"):
        main(["evaluate", "--qrels", str(SAMPLE), "--run", str(missing)])


def test_interrupt_says_how_to_resume(monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_encoders", interrupted)
    code, _, err = run("encoders")
    assert code == 130 and err == "interrupted; re-run the same command to resume\n"


# --- files given where something else is expected --------------------------------------------------------------------
def test_an_empty_or_missing_folder_is_no_index(tmp_path):
    (tmp_path / "empty").mkdir()
    for index, phrase in ((tmp_path / "empty", "is not a Lucene index"), (tmp_path / "nope", "does not exist")):
        code, _, err = run("search", "--index", index, "--encoder", "splade-tiny", "--topics", SAMPLE,
                           "--output", tmp_path / "run.txt")
        assert phrase in one_line(code, err) and "splade-pyserini index" in err
    assert not (tmp_path / "run.txt").exists()


def test_an_empty_run_file_is_refused(tmp_path):
    (tmp_path / "run.txt").write_text("")
    code, out, err = run("evaluate", "--qrels", SAMPLE, "--run", tmp_path / "run.txt")
    assert "holds no results" in one_line(code, err) and out == ""


def test_a_non_utf8_corpus_is_refused_before_the_model_loads(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(b'{"id": "a", "contents": "fine"}\n{"id": "b", "contents": "caf\xe9"}\n')
    code, _, err = run("encode", "--encoder", "no-such-model", "--corpus", corpus, "--output", tmp_path / "v")
    assert f"{corpus}:2: not UTF-8" in one_line(code, err)  # the corpus is read before the encoder is looked up
    assert not (tmp_path / "v").exists()


def test_a_run_file_that_is_a_folder_is_refused_before_the_search(tmp_path):
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "segments_1").write_bytes(b"")
    code, _, err = run("search", "--index", tmp_path / "index", "--encoder", "splade-tiny", "--topics", SAMPLE,
                       "--output", tmp_path)
    assert "is a folder" in one_line(code, err)


# --- Java and Lucene, end to end (a JVM each: a few seconds) -------------------------------------------------------
@pytest.fixture(scope="module")
def sample_index(sample_pipeline) -> Path:
    """The folder holding the sample's vectors/ and index/ (conftest: encoded and indexed once per session)."""
    assert sample_pipeline["index"].parent == sample_pipeline["vectors"].parent
    return sample_pipeline["index"].parent


def test_a_truncated_lucene_file_is_one_line(sample_index, tmp_path):
    damaged = tmp_path / "index"
    shutil.copytree(sample_index / "index", damaged)
    victim = max((p for p in damaged.iterdir() if p.suffix in (".doc", ".tim", ".cfs")), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[:100])
    old_run = tmp_path / "run.txt"
    old_run.write_text("earlier run\n")
    line = error_line("search", "--index", damaged, "--encoder", "splade-tiny", "--topics", SAMPLE,
                      "--output", old_run)
    assert "org.apache.lucene" in line and "rebuild it with `splade-pyserini index`" in line
    assert old_run.read_text() == "earlier run\n"


@pytest.mark.parametrize("defect, phrase", [
    (lambda line: line[:40], "malformed JSON"),
    (lambda line: json.dumps({"id": "x", "vector": {"a": "heavy"}}), "must be a number"),
    (lambda line: json.dumps({"vector": {"a": 1}}), 'no "id" field'),
], ids=["truncated", "weight", "no-id"])
def test_a_malformed_vector_line_is_named_by_the_java_indexer(sample_index, tmp_path, defect, phrase):
    """A malformed line in vectors the package did not write (no record: Anserini-style shards given to the
    extension's indexer directly) is named by file and line."""
    from splade_pyserini.javaext import fast_index

    vectors = tmp_path / "vectors"
    vectors.mkdir()
    source = next((sample_index / "vectors").glob("vectors-*.jsonl"))
    shard = vectors / source.name
    lines = source.read_text().splitlines()
    lines[6] = defect(lines[6])
    shard.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception) as caught:
        fast_index(vectors, tmp_path / "index", scale=None, threads=1, store_docvectors=False, quiet=True)
    err = user_message(caught.value)
    assert f"{shard.name}:7: " in err and phrase in err and "\n" not in err.strip(), err
    assert not (tmp_path / "index").exists()


@pytest.mark.parametrize("defect", [
    lambda lines: lines + [lines[3]],  # a repeated document id
    lambda lines: [lines[0].replace('"id": "', '"id": "a b', 1)] + lines[1:],  # an id a TREC run cannot hold
    lambda lines: lines[:6] + [lines[6][:40]] + lines[7:],  # a malformed line
], ids=["repeated-id", "space-in-id", "truncated"])
def test_a_shard_edited_after_encoding_is_refused_before_indexing(sample_index, tmp_path, defect):
    vectors = tmp_path / "vectors"
    shutil.copytree(sample_index / "vectors", vectors)
    shard = next(vectors.glob("vectors-*.jsonl"))
    shard.write_text("\n".join(defect(shard.read_text().splitlines())) + "\n")
    code, _, err = run("index", "--vectors", vectors, "--index", tmp_path / "index")
    err = "\n".join(ln for ln in err.splitlines() if not ln.startswith("warning:")) + "\n"
    assert f"{shard} changed after `encode` wrote it" in one_line(code, err), err
    assert not (tmp_path / "index").exists()


def test_queries_of_more_than_1024_terms_are_searched(sample_index):
    """Lucene allows 1,024 clauses per query by default; a SPLADE query has one clause per term."""
    from splade_pyserini.anserini import autoclass
    from splade_pyserini.javaext import BatchSearcher

    with BatchSearcher(sample_index / "index") as fast:
        terms = fast.terms()
        assert len(terms) > 2000
        query = {t: 1 + i % 7 for i, t in enumerate(terms[:2000])}
        hits = fast.search([query], ["q"], k=10)["q"]
    stock = autoclass("io.anserini.search.SimpleImpactSearcher")(str(sample_index / "index"))  # Pyserini's path
    jquery = autoclass("java.util.HashMap")()
    for term, weight in query.items():
        jquery.put(term, autoclass("java.lang.Integer")(weight))
    expected = [(h.docid, float(h.score)) for h in stock.search(jquery, 10)]
    stock.close()
    assert len(hits) == 10 and [d for d, _ in hits] == [d for d, _ in expected]
    assert [s for _, s in hits] == pytest.approx([s for _, s in expected])


def test_bm25_refuses_a_bad_corpus_before_making_any_folder(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "a", "contents": "x"}\n{"id": "a", "contents": "y"}\n')
    code, _, err = run("bm25", "--corpus", corpus, "--topics", SAMPLE, "--index", tmp_path / "bm25",
                       "--output", tmp_path / "run.txt")
    assert f"{corpus}:2: document id 'a' repeats {corpus}:1" in one_line(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl"]
