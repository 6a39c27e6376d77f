"""Reading document collections, streaming: BEIR folders, JSONL, TSV, and ``ir_datasets`` ids.

* BEIR folder: ``corpus.jsonl`` with ``_id``, ``title``, ``text``;
* JSONL: ``id`` + ``contents`` (Pyserini's JsonCollection) or ``_id`` (or ``id``) + ``title`` + ``text``;
* TSV: ``id<TAB>text`` (MS MARCO collection.tsv); a header row ``id<TAB>text`` is skipped;
* anything else that is not a path is tried as an ``ir_datasets`` id (``irds:`` prefix optional).

The text of a document is ``title + " " + text`` when it has a non-empty title, as Pyserini's encoders join them.
A malformed line, an id that a TREC run cannot hold or a repeated id stops reading with an error that names the file
and the line number (the rules: :mod:`.inputs`).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import SpladeError
from .inputs import SeenIds, check_id, check_text, duplicate, iter_jsonl, iter_tsv


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str


def _join(title: str | None, text: str | None) -> str:
    title = (title or "").strip()
    text = text or ""
    return f"{title} {text}" if title else text


def _json_document(obj, where: str) -> Document:
    if not isinstance(obj, dict):
        raise SpladeError(f"{where}: expected a JSON object per line, got {type(obj).__name__}.")
    doc_id = obj.get("_id", obj.get("id", obj.get("docid")))
    if doc_id is None:
        raise SpladeError(f"{where}: document has no id (expected `id` or `_id`).")
    doc_id = check_id(doc_id, where, "document id")
    if "contents" in obj:
        text = check_text(obj["contents"], where, f"contents of document {doc_id}")
    elif "text" in obj or "title" in obj:
        title, body = (obj.get(k) for k in ("title", "text"))
        text = _join(None if title is None else check_text(title, where, f"title of document {doc_id}"),
                     None if body is None else check_text(body, where, f"text of document {doc_id}"))
    else:
        raise SpladeError(f"{where}: document {doc_id} has no text (expected `contents` or `title`/`text`).")
    return Document(doc_id, text)


def _read_jsonl(path: Path) -> Iterator[tuple[str, Document]]:
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        yield where, _json_document(obj, where)


def _read_tsv(path: Path) -> Iterator[tuple[str, Document]]:
    for lineno, parts in iter_tsv(path, "id<TAB>text", ("id", "docid", "_id", "doc_id")):
        where = f"{path}:{lineno}"
        text = parts[1] if len(parts) == 2 else _join(parts[1], " ".join(parts[2:]))
        yield where, Document(check_id(parts[0], where, "document id"), text)


def ir_datasets_id(source: str | os.PathLike) -> str | None:
    """The ``ir_datasets`` id that ``source`` names (``irds:`` prefix optional), or None for a path."""
    text = str(source)
    if text.startswith("irds:"):
        return text[5:]
    return None if looks_like_path(text) or os.path.exists(text) else text


def iter_ir_datasets(name: str, part: str, what: str) -> Iterator:
    """Each item of ``part`` (``docs`` or ``queries``) of the ir_datasets dataset ``name``, with one-line errors:
    ir_datasets missing, an unknown id, or data that is not in the local cache and cannot be downloaded."""
    try:
        import ir_datasets
    except ImportError:
        raise SpladeError(f"{name!r} is no file or folder, and ir_datasets is not installed to read it as a dataset id.") from None
    try:
        dataset = ir_datasets.load(name)
    except KeyError:
        raise SpladeError(f"{what} {name!r}: no such file or folder, nor an ir_datasets id.") from None
    if not getattr(dataset, f"has_{part}")():
        raise SpladeError(f"ir_datasets {name!r} has no {part}.")
    try:
        yield from getattr(dataset, f"{part}_iter")()
    except SpladeError:
        raise
    except Exception as e:  # ir_datasets downloads on first use
        detail = (str(e.args[0]) if e.args else str(e)).strip().split("\n")[0][:120]
        raise SpladeError(f"ir_datasets {name!r} could not be read ({type(e).__name__}: {detail}); its {part} are not "
                          f"in the local cache ({ir_datasets.util.home_path()}) and could not be downloaded: fetch "
                          f"them once online (`ir_datasets export {name} {part}`), or pass a file.") from None


def _read_ir_datasets(name: str) -> Iterator[tuple[str, Document]]:
    for n, doc in enumerate(iter_ir_datasets(name, "docs", "corpus"), 1):
        where = f"ir_datasets {name} document #{n}"
        text = getattr(doc, "text", None) or getattr(doc, "body", None) or ""
        yield where, Document(check_id(doc.doc_id, where, "document id"), _join(getattr(doc, "title", None), text))


def looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or Path(text).suffix in (".jsonl", ".json", ".tsv", ".txt", ".gz", ".trec")


def corpus_file(source: str | os.PathLike) -> Path | None:
    """The file behind a corpus source (BEIR folder → its corpus.jsonl), or None for a dataset id."""
    path = Path(source)
    if path.is_dir():
        for name in ("corpus.jsonl", "corpus.jsonl.gz"):
            if (path / name).is_file():
                return path / name
        files = sorted(path.glob("*.jsonl"))
        if files:
            return None  # a folder of JSONL shards
        raise SpladeError(f"corpus folder {path} has no corpus.jsonl (BEIR layout) and no *.jsonl files.")
    if path.is_file():
        return path
    return None


def _located(source: str | os.PathLike) -> Iterator[tuple[str, Document]]:
    """(where, document) for every document of ``source``; ``where`` is ``file:line`` (or the dataset position)."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        file = corpus_file(path)
        for f in [file] if file is not None else sorted(path.glob("*.jsonl")):
            yield from _read_jsonl(f)
        return
    if path.is_file():
        yield from (_read_tsv(path) if path.suffix in (".tsv", ".txt") else _read_jsonl(path))
        return
    if text.startswith("irds:"):
        yield from _read_ir_datasets(text[5:])
        return
    if looks_like_path(text):
        raise SpladeError(f"corpus {text} does not exist; pass a BEIR folder, a .jsonl or .tsv file, or an ir_datasets id.")
    yield from _read_ir_datasets(text)


def _first_places(source, batch: list[tuple[str, Document]], candidates: list[int]) -> dict[int, str]:
    """``{i: where its id first occurs}`` for the candidates whose id did occur before ``batch[i]``; a candidate whose
    id did not (a mere hash collision) is left out. Earlier batches are read again, once, only for candidates."""
    in_batch: dict[str, int] = {}
    for i, (_, doc) in enumerate(batch):
        in_batch.setdefault(doc.id, i)
    places = {i: batch[in_batch[batch[i][1].id]][0] for i in candidates if in_batch[batch[i][1].id] < i}
    pending = {batch[i][1].id for i in candidates if i not in places}
    if pending:
        found: dict[str, str] = {}
        for where, doc in _located(source):
            if where == batch[0][0]:
                break
            if doc.id in pending:
                found.setdefault(doc.id, where)
        places.update({i: found[batch[i][1].id] for i in candidates if batch[i][1].id in found})
    return places


def read_corpus(source: str | os.PathLike) -> Iterator[Document]:
    """Every document of ``source``, in file order; a malformed record or a repeated id raises naming its line."""
    seen = SeenIds()
    records = _located(source)
    while batch := list(itertools.islice(records, 4096)):
        candidates = seen.repeats([doc.id for _, doc in batch])
        if candidates and (places := _first_places(source, batch, candidates)):
            i = min(places)
            raise duplicate("document id", batch[i][1].id, batch[i][0], places[i])
        yield from (doc for _, doc in batch)


_checked: set[tuple] = set()


def _file_state(source) -> tuple | None:
    """(source, then name, size and modification time of each file) for a file source; None for a dataset id."""
    path = Path(source)
    if path.is_dir():
        file = corpus_file(path)
        files = [file] if file is not None else sorted(path.glob("*.jsonl"))
    elif path.is_file():
        files = [path]
    else:
        return None
    return (str(path.resolve()), *((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


def check_corpus(source: str | os.PathLike) -> None:
    """Read a file source through once, before any model is loaded or any output is written: the first malformed
    record, bad id or repeated id raises its one-line error, and so does a corpus with no document. A dataset id is
    checked as it streams. A source that passed is not read again in this process unless its files change."""
    path = Path(source)
    if not path.exists() and looks_like_path(str(source)):
        raise SpladeError(f"corpus {source} does not exist; pass a BEIR folder, a .jsonl or .tsv file, or an ir_datasets id.")
    state = _file_state(source)
    if state is None or state in _checked:
        return
    if sum(1 for _ in read_corpus(source)) == 0:
        raise SpladeError(f"corpus {source} holds no documents; check the file and its format.")
    _checked.add(state)


def count_documents(source: str | os.PathLike) -> int | None:
    """Number of documents (non-blank lines) when cheap to know, for progress bars."""
    path = Path(source)
    files: list[Path] = []
    if path.is_dir():
        f = corpus_file(path)
        files = [f] if f is not None else sorted(path.glob("*.jsonl"))
    elif path.is_file():
        files = [path]
    if not files:
        return None
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            n += sum(1 for line in fh if line.strip())
    return n
