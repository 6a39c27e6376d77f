"""Finding a Java runtime new enough for Anserini (>= 21), before anything starts the JVM.

Order: ``JAVA_HOME`` when it is new enough, then the usual install places (``/usr/lib/jvm/*``, ``/usr/java/*``,
``/opt/java/*``, ``/Library/Java/JavaVirtualMachines/*/Contents/Home``, SDKMAN, the ``java`` on ``PATH``).
The newest match wins. Nobody has to export anything by hand: :func:`ensure_java` sets ``JAVA_HOME`` for this
process (pyjnius reads it when the JVM starts) and for the Java subprocesses it spawns.
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
    f"`brew install openjdk@21`, or https://adoptium.net) or point JAVA_HOME at one"
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


def _candidates() -> list[str]:
    seen: list[str] = []
    for pattern in _SEARCH_GLOBS:
        for home in sorted(glob.glob(os.path.expanduser(pattern))):
            if os.path.isdir(home) and home not in seen:
                seen.append(os.path.realpath(home))
    on_path = shutil.which("java")
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


def ensure_java(minimum: int = MIN_JAVA) -> str:
    """Point ``JAVA_HOME`` (and ``PATH``) of this process at a Java >= ``minimum``; returns the home.

    Must run before the JVM starts (the first ``import pyserini.pyclass``). If the JVM already runs, it is kept.
    """
    home = find_java_home(minimum)
    if os.environ.get("JAVA_HOME") != home:
        os.environ["JAVA_HOME"] = home
        os.environ["PATH"] = str(Path(home) / "bin") + os.pathsep + os.environ.get("PATH", "")
    return home


def java_executable(minimum: int = MIN_JAVA) -> str:
    return str(Path(ensure_java(minimum)) / "bin" / "java")
