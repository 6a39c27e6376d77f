"""Writing files so that nothing is ever left half-written, and nothing that this package did not write is lost.

* :func:`atomic_write` / :func:`atomic_directory`: write under a temporary name beside the target, then rename;
  both honour the user's umask (``tempfile`` would make them owner-only).
* Ownership: every folder this package builds or fills carries :data:`OWNER_FILE` (its kind and, for a folder
  built whole, the names it holds). An output path is replaced only when it is absent, an empty folder, or a folder
  whose every entry this package wrote (:func:`check_replaceable`, :func:`claim_folder`); anything else is refused
  with one line before any work starts.
* :func:`writer_lock`: one writer per folder (POSIX record locks, released by the OS when a writer dies).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable

from .errors import SpladeError

try:
    import fcntl
except ImportError:  # Windows: the writer lock then holds within this process only
    fcntl = None

OWNER_FILE = ".splade-pyserini.owner"  # a record (write_record): Anserini reads every file of a vectors folder
#: The key under which :func:`write_record` keeps its data.
RECORD_KEY = "splade_pyserini"


def _unique(parent: Path, stem: str, suffix: str = ".tmp") -> Path:
    return parent / f".{stem}.{secrets.token_hex(6)}{suffix}"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = _unique(path.parent, path.name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0666 less the umask, as open() does
            break
        except FileExistsError:
            continue
    os.close(fd)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding}
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data) -> None:
    with atomic_write(path) as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


def write_record(path: str | os.PathLike, data: dict) -> None:
    """Writes a record this package keeps in a folder that Anserini may read as a ``JsonVectorCollection``.

    Anserini's JSON collections parse every non-empty file under the input folder, whatever its name (hidden files
    and subfolders included), and a JSON object without ``id``/``vector`` stops them with an exception. So the record
    is one JSONL line that they read as an empty document (empty id, no weights): counted as ``empty`` and never
    indexed. The data sit under :data:`RECORD_KEY`.
    """
    with atomic_write(path) as f:
        json.dump({"id": "", "contents": "", "vector": {}, RECORD_KEY: data}, f, sort_keys=True)
        f.write("\n")


def read_record(path: str | os.PathLike) -> dict | None:
    """The data of a :func:`write_record` file (or of a plain JSON object, as written before); None when ``path``
    holds neither."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("vector") == {} and isinstance(data.get(RECORD_KEY), dict):
        return data[RECORD_KEY]
    return data if isinstance(data, dict) else None


def make_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p`` honouring the umask."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- ownership ----------------------------------------------------------------------------------------------------
def owner(path: str | os.PathLike) -> dict | None:
    """The ownership record of a folder this package wrote, or None."""
    data = read_record(Path(path) / OWNER_FILE)
    return data if data is not None and isinstance(data.get("kind"), str) else None


def mark(path: str | os.PathLike, kind: str, entries: Iterable[str] | None = None) -> None:
    """Record that this package owns ``path`` (a folder of ``kind``; ``entries``: the names it holds, when fixed)."""
    data = {"kind": kind, "written_by": "splade-pyserini"}
    if entries is not None:
        data["entries"] = sorted(set(entries) | {OWNER_FILE})
    write_record(Path(path) / OWNER_FILE, data)


def _bookkeeping(name: str) -> bool:
    """The ownership record, the writer lock, and the record's temporary file while another writer makes it."""
    return name in (OWNER_FILE, LOCK_FILE) or (name.startswith(f".{OWNER_FILE}.") and name.endswith(".tmp"))


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _check_path(path: Path, what: str, link: bool = False) -> Path:
    """The absolute path; refuses a file, the current folder or a folder holding it, and a link unless ``link``."""
    if path.is_symlink() and not link:
        raise SpladeError(f"{what} {path} is a symbolic link; give the folder itself (or a new path).")
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise SpladeError(f"{what} {path} is the current folder (or holds it); give a new folder, e.g. {path}/out.")
    if resolved.exists() and not resolved.is_dir():
        raise SpladeError(f"{what} {path} is a file, not a folder; give a new folder.")
    return resolved


def check_replaceable(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Refuse ``path`` as an output that replaces what is there unless it is absent, empty, or a folder built
    whole by this package (every entry named in its ownership record). Returns the absolute path."""
    path = _check_path(Path(path), what)
    if not path.exists():
        return path
    entries = sorted(os.listdir(path))
    if not entries:
        return path
    record = owner(path)
    foreign = entries if record is None or "entries" not in record else sorted(set(entries) - set(record["entries"]))
    if foreign:
        raise SpladeError(f"{what} {path} holds files that splade-pyserini did not write ({_shown(foreign)}); "
                          "give a new or empty folder (nothing there is deleted).")
    return path


def claim_folder(path: str | os.PathLike, kind: str, allowed: Callable[[str], bool] | None = None,
                 what: str = "output folder", legacy: Callable[[Path], bool] | None = None,
                 create: bool = True) -> Path:
    """Make ``path`` a folder of ``kind`` that this package fills file by file: create it (or take an empty one),
    or accept one it marked before. Refused: a folder of another kind, or one holding an entry that
    ``allowed(name)`` rejects. ``legacy(path)``: recognises an unmarked folder written by an older version.
    ``create=False`` only checks. Returns the absolute path (a link's target: it is filled, never replaced)."""
    path = _check_path(Path(path), what, link=True)
    entries = sorted(n for n in os.listdir(path) if not _bookkeeping(n)) if path.exists() else []
    if entries:
        record = owner(path)
        if record is None and legacy is not None and legacy(path):
            record = {"kind": kind}
        if record is None:
            raise SpladeError(f"{what} {path} is not empty and was not written by splade-pyserini; give a new or "
                              "empty folder (nothing there is deleted).")
        if record["kind"] != kind:
            raise SpladeError(f"{what} {path} holds a splade-pyserini {record['kind']}, not a {kind}; give a new "
                              "or empty folder.")
        foreign = [n for n in entries if allowed is not None and not allowed(n)]
        if foreign:
            raise SpladeError(f"{what} {path} holds files that splade-pyserini did not write ({_shown(foreign)}); "
                              "give a new or empty folder (nothing there is deleted).")
    if create:
        make_dir(path)
        if owner(path) is None:
            mark(path, kind)
    return path


_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.(tmp|old)")


def work_folder(path: str | os.PathLike | None, kind: str, names: Iterable[str] | None = None,
                prefix: str = "splade-", what: str = "work folder") -> Path:
    """A folder this package fills with ``names`` (None: any): ``path`` claimed as in :func:`claim_folder` (this
    package's temporary files allowed too; an unmarked folder holding only ``names`` is taken as an older
    version's), or a new folder in the system's temporary folder (umask honoured)."""
    if path is None:
        while True:
            tmp = Path(tempfile.gettempdir()) / f"{prefix}{secrets.token_hex(6)}"
            try:
                tmp.mkdir()
                break
            except FileExistsError:
                continue
        mark(tmp, kind)
        return tmp
    if names is None:
        return claim_folder(path, kind, None, what)
    names = set(names)

    def allowed(name: str) -> bool:
        return name in names or _TEMPORARY.fullmatch(name) is not None

    return claim_folder(path, kind, allowed, what, legacy=lambda p: all(map(allowed, os.listdir(p))))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, kind: str = "index", what: str = "output folder"):
    """Build a directory under a temporary name beside ``path``; it replaces ``path`` only on success.

    ``path`` is checked first (:func:`check_replaceable`: nothing this package did not write is ever replaced) and
    again before the rename; the new folder records its entries, so it may be replaced later."""
    path = check_replaceable(path, what)
    make_dir(path.parent)
    tmp = _unique(path.parent, path.name)
    tmp.mkdir()  # 0777 less the umask (tempfile.mkdtemp would make it owner-only)
    try:
        yield tmp
        mark(tmp, kind, os.listdir(tmp))
        check_replaceable(path, what)
        if path.exists():
            old = _unique(path.parent, path.name, ".old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --- one writer per folder ----------------------------------------------------------------------------------------
LOCK_FILE = ".splade-pyserini.lock"
_MAX_WORLD = 1 << 20
_held: dict[str, int] = {}  # folders this process holds a writer lock on
_held_lock = threading.Lock()


class WriterLock:
    """What :func:`writer_lock` yields: :meth:`records` serialises read-modify-write of the folder's records
    among the writers of one job."""

    def __init__(self, fd: int):
        self._fd = fd

    @contextlib.contextmanager
    def records(self):
        if fcntl is None:
            yield
            return
        fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, 0)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, 0)


@contextlib.contextmanager
def writer_lock(folder: str | os.PathLike, rank: int = 0, world: int = 1, what: str = "splade-pyserini encode"):
    """Hold ``folder`` for rank ``rank`` of a job of ``world`` writers; a second writer is refused with one line.

    POSIX record locks on :data:`LOCK_FILE` (the OS releases them when a writer dies): byte 0 serialises taking the
    lock and updating records, byte ``1 + world`` is shared by the ranks of one job (a job of another size is
    refused) and byte ``2**21 + rank`` is the rank's own (a second writer of the same rank is refused). Record
    locks do not exclude threads of one process, so the process also keeps the folders it holds."""
    folder = Path(folder).resolve()
    key = str(folder)
    busy = SpladeError(f"{folder} is being written by another {what} (lock {LOCK_FILE}); wait for it to finish, or "
                       "write to another folder.")
    with _held_lock:
        if key in _held:
            raise busy
        _held[key] = rank
    fd = None
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        lock = WriterLock(fd)
        with lock.records():
            try:
                if fcntl is not None:
                    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 1 + world)
                    # no job of another size may hold the folder: the other world bytes must be free
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, world, 1)
                    fcntl.lockf(fd, fcntl.LOCK_UN, world, 1)
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _MAX_WORLD - world, 2 + world)
                    fcntl.lockf(fd, fcntl.LOCK_UN, _MAX_WORLD - world, 2 + world)
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 2 * _MAX_WORLD + rank)
            except OSError:
                raise busy from None
        yield lock
    finally:
        if fd is not None:
            os.close(fd)  # releases every lock of this process on the file (never opened twice: see _held)
        with _held_lock:
            _held.pop(key, None)
