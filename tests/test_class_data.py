"""Class-data sharing for the Java subprocesses (splade_pyserini.class_data): the first run of a main class writes an
archive only when it succeeds, later runs start from it and compute the same thing, and nothing a user or another
process left in the cache (a truncated or foreign archive, a folder others can write to, a dead writer's temporary
file) breaks a run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from splade_pyserini import class_data, javabuild
from splade_pyserini.anserini import _classpath, fatjar, java_executable, java_run
from splade_pyserini.jdk import java_options, java_version


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SPLADE_PYSERINI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(class_data.ENV, raising=False)
    monkeypatch.setattr(class_data, "_warned", [])
    return tmp_path / "cache" / "jvm"


def _plan(classpath=None, main="io.anserini.index.IndexReaderUtils", options=None):
    java = java_executable()
    home = str(Path(java).parent.parent)
    opts = java_options(home) if options is None else options
    return class_data.plan(java, opts, classpath or _classpath(None), main, java_version(home))


def _has_base_archive() -> bool:
    return class_data._has_base_archive(Path(os.path.realpath(java_executable())).parent.parent)


needs_base = pytest.mark.skipif(not _has_base_archive(), reason="this Java runtime has no base CDS archive")


def _stats(index: Path) -> subprocess.CompletedProcess:
    return java_run("io.anserini.index.IndexReaderUtils", ["-index", str(index), "-stats"], capture_output=True,
                    text=True)


@needs_base
@pytest.mark.slow  # JVMs in subprocesses
def test_the_first_successful_run_writes_the_archive_and_later_runs_use_it(cache, sample_pipeline, tmp_path):
    index = sample_pipeline["index"]
    failed = java_run("io.anserini.index.IndexReaderUtils", ["-index", str(tmp_path / "missing"), "-stats"],
                      capture_output=True, text=True)
    assert failed.returncode != 0
    assert list(cache.iterdir()) == []  # a failed run publishes nothing and leaves no temporary file
    first = _stats(index)
    assert first.returncode == 0, first.stderr[-2000:]
    (archive,) = cache.iterdir()
    assert archive.name.startswith("IndexReaderUtils-") and archive.suffix == ".jsa" and archive.stat().st_size > 0
    assert _plan().options[-1] == f"-XX:SharedArchiveFile={archive}"
    second = _stats(index)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert "cds" not in second.stdout + second.stderr  # the JVM's archive messages stay out of the output
    assert "documents:             48" in second.stdout
    # a truncated archive (a writer killed mid-way, a full disk) and a foreign file: the JVM starts without them
    for damage in (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]),
                   lambda p: p.write_bytes(os.urandom(4096))):
        damage(archive)
        again = _stats(index)
        assert again.returncode == 0 and again.stdout == first.stdout


@needs_base
@pytest.mark.slow  # JVMs in subprocesses
def test_an_index_built_from_the_archive_is_the_same_index(cache, sample_pipeline, tmp_path):
    from splade_pyserini import javaext
    from splade_pyserini.index import build_index

    if javabuild.extension_jar() is None:
        pytest.skip("the Java extension is not available")
    for name in ("a", "b"):  # a: writes the archive; b: starts from it
        build_index(sample_pipeline["vectors"], tmp_path / name, threads=1)
    assert [p.name.split("-")[0] for p in cache.iterdir()] == ["SpladeIndexCollection"]
    assert javaext.compare_indexes(tmp_path / "a", tmp_path / "b") == []


def test_nothing_is_archived_where_it_cannot_or_should_not_be(cache, monkeypatch, tmp_path):
    if not _has_base_archive():
        assert _plan().options == []
        return
    first = _plan()  # no archive yet: this run would write one, to a temporary name beside it
    assert first.written.parent == cache and first.options[-1] == f"-XX:ArchiveClassesAtExit={first.written}"
    assert _plan(classpath=[str(fatjar()), str(tmp_path)]).options == []  # a folder on the classpath
    assert _plan(options=["-Xshare:off"]).options == []  # the user's own sharing options win
    assert _plan(options=["-XX:SharedArchiveFile=/elsewhere.jsa"]).options == []
    monkeypatch.setenv(class_data.ENV, "0")
    assert _plan().options == []


@needs_base
@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_cache_others_can_write_to_is_not_used(cache, caplog):
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    caplog.set_level("WARNING", logger="splade_pyserini")
    try:
        assert _plan().options == [] and _plan().options == []
    finally:
        cache.chmod(0o700)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "refusing the JVM class-data cache" in warnings[0] and "chmod go-w" in warnings[0]


def test_old_archives_and_dead_writers_files_are_removed(cache):
    cache.mkdir(parents=True)
    for i in range(class_data.KEEP + 3):
        p = cache / f"Main{i}-0123456789abcdef.jsa"
        p.write_bytes(b"x")
        os.utime(p, (1_000_000 + i, 1_000_000 + i))
    dead = subprocess.Popen(["true"])
    dead.wait()
    (cache / f"Main0-0123456789abcdef.jsa.{dead.pid}-00ff00ff.tmp").write_bytes(b"x")
    (cache / f"Main1-0123456789abcdef.jsa.{os.getpid()}-00ff00ff.tmp").write_bytes(b"x")  # a live writer's
    class_data._prune(cache)
    left = sorted(p.name for p in cache.iterdir())
    assert left == sorted([f"Main{i}-0123456789abcdef.jsa" for i in range(3, class_data.KEEP + 3)]
                          + [f"Main1-0123456789abcdef.jsa.{os.getpid()}-00ff00ff.tmp"])

