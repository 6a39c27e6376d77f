"""The one exception type the package raises for a user's mistake or a missing prerequisite.

Its message is a single line that names the problem and the fix; the CLI prints it without a traceback.
"""


class SpladeError(Exception):
    """A problem the user can fix (bad input, missing file, wrong Java, mismatched index, …)."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


_DEBUG_HINT = "re-run with --debug (or SPLADE_PYSERINI_DEBUG=1) for the traceback"

# Java exceptions (by class name) that a user's input or files cause, and what to do about them.
_JAVA_FIXES = {
    "IndexNotFoundException": "the folder is not a Lucene index: pass a folder that `splade-pyserini index` built",
    "CorruptIndexException": "the Lucene index is damaged: rebuild it with `splade-pyserini index`",
    "EOFException": "a file of the Lucene index is truncated: rebuild the index with `splade-pyserini index`",
    "NoSuchFileException": "a file is missing (from a Lucene index, it is damaged: rebuild it with `splade-pyserini index`)",
    "IndexFormatTooOldException": "the index was written by another Lucene version: rebuild it with this Anserini",
    "IndexFormatTooNewException": "the index was written by another Lucene version: rebuild it with this Anserini",
    "AccessDeniedException": "a file cannot be read or written: check its permissions",
    "OutOfMemoryError": "Java ran out of memory: use fewer --threads or a smaller --batch-size",
    "FormatException": "fix the line it names",
}


def _first_line(text: str, limit: int = 300) -> str:
    line = next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit] + "…"


def user_message(exc: BaseException) -> str:
    """One line for any exception that ends a command: the problem, then the fix.

    The package's own :class:`SpladeError` says both already; the causes that a user's input, files or machine
    produce (operating-system errors, undecodable files, Java and Lucene exceptions, memory, refused pickles) get
    their fix here; anything else is reported as unexpected, with how to see its traceback."""
    import json
    import pickle
    import subprocess

    name = type(exc).__name__
    if isinstance(exc, SpladeError):
        return str(exc)
    if name == "JavaException":  # jnius: the JVM's exception, by its class name
        java_class = str(getattr(exc, "classname", "") or "java exception")
        short = java_class.rsplit(".", 1)[-1].rsplit("$", 1)[-1]
        detail = _first_line(getattr(exc, "innermessage", None) or exc)
        fix = _JAVA_FIXES.get(short, f"{_DEBUG_HINT}")
        message = f"{java_class}: {detail}; {fix}."
    elif isinstance(exc, UnicodeDecodeError):
        message = f"a file is not UTF-8 ({exc.reason} at byte {exc.start}); convert it to UTF-8, or {_DEBUG_HINT} to see which."
    elif isinstance(exc, json.JSONDecodeError):
        message = (f"malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}) in a file this command read; "
                   f"re-create the file, or {_DEBUG_HINT} to see which.")
    elif isinstance(exc, pickle.UnpicklingError):
        message = (f"refused to load a pickled file ({_first_line(exc, 160)}): only tensors are loaded from files, "
                   "never Python objects; use checkpoints written by this package.")
    elif isinstance(exc, MemoryError) or name == "OutOfMemoryError":
        message = (f"out of memory ({_first_line(exc, 160) or name}); lower --batch-tokens / --batch-size or --threads, "
                   "or use a machine with more memory.")
    elif isinstance(exc, subprocess.CalledProcessError):
        command = exc.cmd[0] if isinstance(exc.cmd, (list, tuple)) else exc.cmd
        message = f"{command} failed (exit {exc.returncode}): {_first_line(exc.stderr or exc.output or '(no output)')}."
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        what = exc.strerror or _first_line(exc) or name
        message = f"{where}{what}; check the path, its permissions and the free space."
    else:
        message = f"unexpected {name}: {_first_line(exc) or 'no message'}; {_DEBUG_HINT}, and please report it."
    return " ".join(message.split())
