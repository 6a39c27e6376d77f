"""How the package reports what it does: through :mod:`logging`, never by printing to stderr.

Every module logs to its own ``logging.getLogger(__name__)``, under the ``splade_pyserini`` logger, so a program that
uses the package can silence, redirect or capture its messages like any library's (``caplog`` in tests). Without any
logging set up, Python shows warnings and errors on stderr and drops the ``info`` lines.

The command lines (``splade-pyserini`` and the ``python -m splade_pyserini.…`` tools) call :func:`cli_logging`, which
shows the package's messages on stderr as they always were: the message alone, ``warning: …``/``error: …`` before a
warning or an error, ``info`` lines included unless the command was asked to be quiet. Progress bars stay tqdm's.
"""

from __future__ import annotations

import contextlib
import logging
import sys

ROOT = "splade_pyserini"


#: ``extra=BARE`` logs a warning or an error without its ``warning: ``/``error: `` prefix on the command line.
BARE = {"prefix": ""}


class _Plain(logging.Formatter):
    """The message alone; ``warning: `` or ``error: `` before a warning or an error (no logger name, no time)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        default = "error: " if record.levelno >= logging.ERROR else "warning: " if record.levelno >= logging.WARNING else ""
        return getattr(record, "prefix", default) + text


class _Stderr(logging.Handler):
    """Writes to ``sys.stderr`` as it is when a message comes (a redirected or captured stderr gets it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # a closed stderr must not turn a message into a failure
            self.handleError(record)


def module_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``; a module run as ``python -m`` (``__name__ == "__main__"``) logs under its import
    name, so its messages stay under the ``splade_pyserini`` logger that :func:`cli_logging` shows."""
    if name == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        name = spec.name if spec is not None else ROOT
    return logging.getLogger(name)


@contextlib.contextmanager
def cli_logging(quiet: bool = False):
    """Show the package's messages on stderr while a command runs (``info`` too, unless ``quiet``).

    Yields a function ``set_quiet(bool)`` for a command that learns only after parsing its arguments whether it is
    quiet. Meanwhile the messages stop at this handler (Pyserini configures the root logger with its own format
    when imported; a message would show twice). The package's logger is left as it was found afterwards, so a
    program that calls ``main()`` keeps its own logging set-up."""
    logger = logging.getLogger(ROOT)
    handler = _Stderr()
    handler.setFormatter(_Plain("%(message)s"))
    level, propagate = logger.level, logger.propagate

    def set_quiet(value: bool) -> None:
        logger.setLevel(logging.WARNING if value else logging.INFO)

    set_quiet(quiet)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield set_quiet
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
