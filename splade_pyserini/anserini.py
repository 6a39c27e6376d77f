"""The Anserini side: the fat jar that Pyserini ships, the in-process JVM (pyjnius) and Java subprocesses.

Everything that touches Java goes through here, so the JDK is found (:mod:`.jdk`) and extra jars are put on the
classpath before Pyserini starts the JVM.
"""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from .errors import SpladeError
from . import class_data
from .jdk import ensure_java, java_executable, java_options, java_version

logger = logging.getLogger(__name__)

_extra_classpath: list[str] = []


@lru_cache(maxsize=None)
def pyserini_dir() -> Path:
    """Pyserini's package directory, found without importing Pyserini (its import may start the JVM)."""
    spec = importlib.util.find_spec("pyserini")
    if spec is None or not spec.submodule_search_locations:
        raise SpladeError("Pyserini is not installed; install it with `pip install pyserini==2.3.0`.")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def fatjar() -> Path:
    """The Anserini fat jar bundled with Pyserini (``ANSERINI_CLASSPATH`` overrides the folder, as in Pyserini)."""
    folder = os.environ.get("ANSERINI_CLASSPATH") or str(pyserini_dir() / "resources" / "jars")
    jars = glob.glob(os.path.join(folder, "anserini-*-fatjar.jar"))
    if not jars:
        raise SpladeError(f"no Anserini fat jar (anserini-*-fatjar.jar) in {folder}; reinstall pyserini==2.3.0.")
    return Path(max(jars, key=os.path.getctime))


def anserini_version() -> str:
    name = fatjar().name  # anserini-2.3.0-fatjar.jar
    return name[len("anserini-"): -len("-fatjar.jar")]


def add_classpath(jar: str | os.PathLike) -> None:
    """Put a jar on the classpath of the JVM that Pyserini will start (no effect once it runs)."""
    jar = str(jar)
    if jar in _extra_classpath:
        return
    _extra_classpath.append(jar)
    if jvm_running():
        return
    import jnius_config

    jnius_config.add_classpath(jar)


def jvm_running() -> bool:
    """True once pyjnius has started the JVM in this process."""
    if "jnius" not in sys.modules:
        return False
    import jnius_config

    return bool(getattr(jnius_config, "vm_running", False))


def start_jvm() -> None:
    """Find Java >= 21, then let Pyserini start the JVM with the Anserini jar (and any added jars)."""
    if not jvm_running():
        ensure_java()  # jars from add_classpath() are already registered with jnius_config
    import pyserini.pyclass  # noqa: F401  (starts the JVM)

    allow_long_queries()


MAX_QUERY_CLAUSES = 1 << 20


def allow_long_queries() -> None:
    """Let a query hold up to :data:`MAX_QUERY_CLAUSES` terms. A SPLADE query has one clause per term and can hold
    more than the 1,024 that Lucene allows by default (``IndexSearcher.TooManyClauses``); that JVM-wide limit guards
    against runaway wildcard expansions, which impact search does not make. Called once the JVM runs (also from the
    start-up hook, for Pyserini's own searchers)."""
    from jnius import autoclass as _autoclass

    searcher = _autoclass("org.apache.lucene.search.IndexSearcher")
    if searcher.getMaxClauseCount() < MAX_QUERY_CLAUSES:
        searcher.setMaxClauseCount(MAX_QUERY_CLAUSES)


def autoclass(name: str):
    start_jvm()
    from jnius import autoclass as _autoclass

    return _autoclass(name)


def java_command(main_class: str, args: list[str], classpath: list[str] | None = None,
                 extra_options: list[str] | None = None) -> list[str]:
    """The command line of a JVM running ``main_class`` with ``args`` on the Anserini jar, the added jars and
    ``classpath``, with :func:`~.jdk.java_options` and then ``extra_options``."""
    java = java_executable()
    return [java, *java_options(str(Path(java).parent.parent)), *(extra_options or []), "-cp",
            os.pathsep.join(_classpath(classpath)), main_class, *args]


def _classpath(classpath: list[str] | None) -> list[str]:
    return [str(fatjar()), *_extra_classpath, *map(str, classpath or [])]


def java_run(main_class: str, args: list[str], classpath: list[str] | None = None,
             **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(java_command(...), **kwargs)``, sharing the class data of earlier runs of ``main_class``
    (:mod:`.class_data`: the first run writes the archive, later ones start from it)."""
    java = java_executable()
    home = str(Path(java).parent.parent)
    sharing = class_data.plan(java, java_options(home), _classpath(classpath), main_class, java_version(home))
    ok = False
    try:
        proc = subprocess.run(java_command(main_class, args, classpath, sharing.options), **kwargs)
        ok = proc.returncode == 0
        return proc
    finally:
        sharing.finish(ok)


def java_process(main_class: str, args: list[str], classpath: list[str] | None = None, *, what: str | None = None,
                 env: dict | None = None, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run a main class in a Java subprocess; its completed process (text stdout and stderr), or on failure a one-line
    error naming ``what`` (default: the class's short name) with the process's last error message."""
    proc = java_run(main_class, args, classpath, capture_output=True, text=True, env=env, cwd=cwd)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "Exception" in ln or "Error" in ln or "ERROR" in ln]
        last = (errors or lines or ["(no output)"])[-1].strip()
        raise SpladeError(f"{what or main_class.rsplit('.', 1)[-1]} failed (exit {proc.returncode}): {last[:400]}")
    return proc


def run_java(main_class: str, args: list[str], classpath: list[str] | None = None, quiet: bool = False) -> str:
    """Run an Anserini main class in a Java subprocess (see :func:`java_process`); its stdout and stderr."""
    proc = java_process(main_class, args, classpath)
    if not quiet and proc.stdout.strip():
        logger.info("%s", proc.stdout[-4000:].rstrip("\n"))
    return proc.stdout + proc.stderr


@contextmanager
def collection_input(folder: str | os.PathLike, files: list[Path]) -> Iterator[Path]:
    """``folder`` as the ``-input`` of an Anserini collection that must read ``files`` (paths under it) alone.

    Stock ``JsonVectorCollection`` parses every non-empty file under its input folder, whatever its name (hidden
    files and subfolders too): a vectors folder's records would be read as documents. When ``folder`` holds any
    other non-empty file, this yields a temporary folder of links to ``files`` at the same relative paths (removed
    afterwards); otherwise ``folder`` itself."""
    folder = Path(folder)
    wanted = {Path(f).resolve() for f in files}
    if not any(p.is_file() and p.stat().st_size and p.resolve() not in wanted for p in folder.rglob("*")):
        yield folder
        return
    staged = Path(tempfile.mkdtemp(prefix="splade-shards-"))
    try:
        for f in files:
            link = staged / Path(f).relative_to(folder)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(Path(f).resolve(), link)
        yield staged
    finally:
        shutil.rmtree(staged, ignore_errors=True)
