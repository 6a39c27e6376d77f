"""What the tests share besides fixtures: the bundled sample and the one way to run the CLI in a subprocess.

A test that calls :func:`run_cli` starts Python (and usually a JVM) in a subprocess, so it is marked ``slow``
(``make test-fast`` leaves it out, and fails a test that starts a subprocess without the mark: see conftest.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "splade_pyserini" / "data" / "sample"  # the bundled 48-document collection (BEIR layout)
BIN = Path(sys.executable).parent


def run_main(*args) -> tuple[int, str, str]:
    """The CLI in this process (no subprocess: the fast tier may use it): exit status, stdout, stderr."""
    from splade_pyserini.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse
            code = e.code
    return code, out.getvalue(), err.getvalue()


def run_main_as_process(*args) -> subprocess.CompletedProcess:
    """:func:`run_main`'s result shaped as :func:`run_cli`'s (``returncode``, ``stdout``, ``stderr``): for tests about
    what the CLI does and says, not about the process it runs in (no Python start, model loads shared)."""
    code, out, err = run_main(*args)
    return subprocess.CompletedProcess([str(a) for a in args], code, out, err)


def run_pyserini_search(*args) -> None:
    """``python -m pyserini.search.lucene ARGS`` in this process (runpy runs the module as ``-m`` does): for tests
    about what Pyserini's CLI makes of an encoder or index, not about a process starting (this interpreter ran the
    plugin's start-up hook when it started; a Python start and Pyserini's imports less). A failure raises."""
    import runpy

    saved = sys.argv
    sys.argv = ["pyserini.search.lucene", *map(str, args)]
    try:
        runpy.run_module("pyserini.search.lucene", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if e.code not in (0, None):
            raise AssertionError(f"pyserini.search.lucene exited with {e.code}") from e
    finally:
        sys.argv = saved


def run_cli(*args, env: dict | None = None, cwd: Path | str | None = None, timeout: float | None = 900,
            entry_point: bool = False, module: str = "splade_pyserini", input: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    """``python -m splade_pyserini ARGS`` (or the ``splade-pyserini`` script with ``entry_point=True``, or
    ``python -m MODULE``) in a subprocess, text output captured. ``env`` is laid over this process's
    environment; a key whose value is ``None`` is removed (e.g. ``{"JAVA_HOME": None}``)."""
    cmd = [str(BIN / "splade-pyserini")] if entry_point else [sys.executable, "-m", module]
    return _run([*cmd, *args], env, cwd, timeout, input, check)


def run_python(code: str, *args, env: dict | None = None, cwd: Path | str | None = None,
               timeout: float | None = 900, input: str | None = None,
               check: bool = False) -> subprocess.CompletedProcess:
    """``python -c CODE ARGS`` in a subprocess (a fresh interpreter: no JVM or state of this one), as
    :func:`run_cli`."""
    return _run([sys.executable, "-c", code, *args], env, cwd, timeout, input, check)


def _run(argv, env, cwd, timeout, input, check) -> subprocess.CompletedProcess:
    merged = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=merged, cwd=cwd,
                          timeout=timeout, input=input, check=check)


def extension_in_this_jvm() -> bool:
    """True when this process's JVM has (or, not started yet, can still be given) the Java extension's jar: a test
    then runs what needs the extension here, else in a fresh Python."""
    from splade_pyserini import javaext

    return javaext.enable(quiet=True) is not None


def starts_a_process(argv) -> bool:
    """True when ``argv`` starts Python (this interpreter, a script of this venv) or a JVM running a class: what
    a test marked ``slow`` may do and a fast one may not. ``java -version`` does not count, nor ``javac``: it fills
    the extension's jar cache once after the Java sources change (tests whose point is a build are marked)."""
    argv = [str(a) for a in ([argv] if isinstance(argv, (str, bytes, os.PathLike)) else argv)]
    if not argv:
        return False
    name = os.path.basename(argv[0])
    if name == "java":
        return not (len(argv) == 2 and argv[1] in ("-version", "--version"))
    return (name.startswith("python") or argv[0] == sys.executable or Path(argv[0]).parent == BIN
            or name in ("splade-pyserini", "torchrun", "jupyter"))


def as_ranking(lines: list[list[str]]) -> tuple[list, dict]:
    """A TREC run's lines as a ranking: (qid, rank, score) in file order, and the documents of each (qid, score).
    Runs written by this package list tied documents in trec_eval's order (runs.ranked), Pyserini's in the engine's."""
    groups: dict = {}
    for qid, _, docid, _, score in lines:
        groups.setdefault((qid, score), set()).add(docid)
    return [(qid, rank, score) for qid, _, _, rank, score in lines], groups
