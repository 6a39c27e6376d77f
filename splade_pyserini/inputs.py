"""Reading a user's text files: numbered UTF-8 lines, JSONL and TSV records, the id rule and repeated ids.

Every error names the file and the line (``path:line: …``) and says what to change. The rules:

* a file is UTF-8 (a leading byte-order mark is ignored; ``.gz`` files are read through gzip); lines end at ``\\n``
  (a ``\\r`` before it is dropped); blank lines are skipped;
* an id (document, query) is a non-empty string (or a JSON integer) of at most :data:`MAX_ID_BYTES` UTF-8 bytes
  without whitespace or control characters: TREC runs and qrels separate their fields by whitespace, so such an id
  would make a run that neither this package nor trec_eval reads back;
* text holds no lone UTF-16 surrogate (a JSON ``\\ud800`` escape), which no UTF-8 file can store;
* an id appears once per file (per query in a run); :class:`SeenIds` finds repeats in a stream of any length with
  8 bytes of memory per id.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import SpladeError

MAX_ID_BYTES = 1024
_BAD_ID_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """(line number, text without its line end) for every line of ``path``, decoded as strict UTF-8."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise SpladeError(
                        f"{path}:{lineno}: not UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line); "
                        "convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
                if lineno == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                yield lineno, text.rstrip("\n").rstrip("\r")
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise SpladeError(f"{path}: not a readable gzip file ({e}); decompress or re-create it.") from None


def record_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """:func:`lines` without the blank ones."""
    return ((n, text) for n, text in lines(path) if text.strip())


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, object]]:
    """(line number, parsed object) for each non-blank line; a bad line raises with its number."""
    decode = json.JSONDecoder().decode
    for lineno, line in record_lines(path):
        try:
            yield lineno, decode(line)
        except json.JSONDecodeError as e:
            raise SpladeError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno}).") from None
        except RecursionError:
            raise SpladeError(f"{path}:{lineno}: malformed JSON (nested too deeply).") from None


def iter_tsv(path: str | os.PathLike, layout: str, header_ids: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """(line number, tab-separated fields) of each non-blank line (at least two fields), skipping a first line that
    is a header (its first field one of ``header_ids``); ``layout`` (e.g. ``id<TAB>text``) names the format."""
    for lineno, line in record_lines(path):
        parts = line.split("\t")
        if len(parts) < 2:
            raise SpladeError(f"{path}:{lineno}: expected `{layout}`, found no tab.")
        if lineno == 1 and parts[0].lower() in header_ids:
            continue
        yield lineno, parts


def check_id(value, where: str, what: str = "id") -> str:
    """``value`` as an id string, or a one-line error (``where`` is ``path:line``) saying what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SpladeError(f"{where}: the {what} must be a string, got {json.dumps(value)[:80]}.")
    text = str(value)
    if not text:
        raise SpladeError(f"{where}: empty {what}; every record needs a non-empty {what}.")
    bad = None if text.isprintable() and " " not in text else _BAD_ID_CHAR.search(text)
    if bad is not None:
        raise SpladeError(f"{where}: the {what} {text[:80]!r} holds {bad.group()!r}; ids may not contain whitespace or "
                          "control characters (TREC runs separate fields by whitespace): replace it, e.g. by '_'.")
    if len(text) * 4 > MAX_ID_BYTES and len(text.encode("utf-8")) > MAX_ID_BYTES:
        raise SpladeError(f"{where}: the {what} {text[:40]!r}… is longer than {MAX_ID_BYTES} bytes; shorten it.")
    return text


def check_text(value, where: str, what: str = "text") -> str:
    """``value`` if it is a string that UTF-8 can hold, else a one-line error."""
    if not isinstance(value, str):
        raise SpladeError(f"{where}: the {what} must be a string, got {json.dumps(value)[:80]}.")
    if not value.isascii() and _SURROGATE.search(value):
        raise SpladeError(f"{where}: the {what} holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape), which UTF-8 "
                          "cannot store; fix the escape.")
    return value


def duplicate(what: str, ident: str, where: str, first: str,
              fix: str = "ids must be unique: remove or rename one of them") -> SpladeError:
    return SpladeError(f"{where}: {what} {ident!r} repeats {first}; {fix}.")


class SeenIds:
    """The ids met so far in a stream, as 64-bit hashes in sorted NumPy runs (8 bytes per id, whatever its length).

    :meth:`repeats` takes the next batch of ids and returns the positions whose hash was met before (earlier in the
    batch or in an earlier batch). A hash can collide, so the caller confirms a repeat against the ids themselves.
    Runs are merged like the digits of a binary counter, so a batch is looked up in at most log2(n / batch) arrays.
    """

    def __init__(self):
        self._runs: list[np.ndarray] = []

    def repeats(self, ids: list[str]) -> list[int]:
        if not ids:
            return []
        hashes = np.fromiter((hash(i) for i in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        flags = np.zeros(len(ids), dtype=bool)
        flags[order[1:][ordered[1:] == ordered[:-1]]] = True
        for run in self._runs:
            pos = np.minimum(np.searchsorted(run, hashes), len(run) - 1)
            flags |= run[pos] == hashes
        self._runs.append(ordered)
        while len(self._runs) > 1 and len(self._runs[-2]) <= len(self._runs[-1]):
            last = self._runs.pop()
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], last]), kind="stable")
        return np.flatnonzero(flags).tolist()
