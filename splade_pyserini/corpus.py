"""Reading document collections, streaming: BEIR folders, JSONL, TSV, and ``ir_datasets`` ids.

* BEIR folder: ``corpus.jsonl`` with ``_id``, ``title``, ``text``;
* JSONL: ``id`` + ``contents`` (Pyserini's JsonCollection) or ``_id`` (or ``id``) + ``title`` + ``text``;
* TSV: ``id<TAB>text`` (MS MARCO collection.tsv); a header row ``id<TAB>text`` is skipped;
* anything else that is not a path is tried as an ``ir_datasets`` id (``irds:`` prefix optional).

The text of a document is ``title + " " + text`` when it has a non-empty title, as Pyserini's encoders join them.
A malformed line stops reading with an error that names the file and the line number.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import SpladeError


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str


def _join(title: str | None, text: str | None) -> str:
    title = (title or "").strip()
    text = text or ""
    return f"{title} {text}" if title else text


def _json_document(obj, path: Path, lineno: int) -> Document:
    if not isinstance(obj, dict):
        raise SpladeError(f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}.")
    doc_id = obj.get("_id", obj.get("id", obj.get("docid")))
    if doc_id is None:
        raise SpladeError(f"{path}:{lineno}: document has no id (expected `id` or `_id`).")
    if "contents" in obj:
        text = obj["contents"]
    elif "text" in obj or "title" in obj:
        text = _join(obj.get("title"), obj.get("text"))
    else:
        raise SpladeError(f"{path}:{lineno}: document {doc_id} has no text (expected `contents` or `title`/`text`).")
    if not isinstance(text, str):
        raise SpladeError(f"{path}:{lineno}: document {doc_id}: text must be a string.")
    return Document(str(doc_id), text)


def iter_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed object) for each non-blank line; a bad line raises with its number."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise SpladeError(f"{path}:{lineno}: malformed JSON ({e.msg} at column {e.colno}).") from None


def _read_jsonl(path: Path) -> Iterator[Document]:
    for lineno, obj in iter_jsonl(path):
        yield _json_document(obj, path, lineno)


def iter_tsv(path: Path, layout: str, header_ids: tuple[str, ...]) -> Iterator[list[str]]:
    """The tab-separated fields of each non-blank line (at least two), skipping a first line that is a header
    (its first field one of ``header_ids``); ``layout`` (e.g. ``id<TAB>text``) names the format in the error."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) < 2:
                raise SpladeError(f"{path}:{lineno}: expected `{layout}`, found no tab.")
            if lineno == 1 and parts[0].lower() in header_ids:
                continue
            yield parts


def _read_tsv(path: Path) -> Iterator[Document]:
    for parts in iter_tsv(path, "id<TAB>text", ("id", "docid", "_id", "doc_id")):
        yield Document(parts[0], parts[1] if len(parts) == 2 else _join(parts[1], " ".join(parts[2:])))


def _read_ir_datasets(name: str) -> Iterator[Document]:
    try:
        import ir_datasets
    except ImportError:
        raise SpladeError(f"{name!r} is no file or folder, and ir_datasets is not installed to read it as a dataset id.") from None
    try:
        dataset = ir_datasets.load(name)
    except KeyError:
        raise SpladeError(f"corpus {name!r}: no such file or folder, nor an ir_datasets id.") from None
    if not dataset.has_docs():
        raise SpladeError(f"ir_datasets {name!r} has no documents.")
    try:
        for doc in dataset.docs_iter():
            text = getattr(doc, "text", None) or getattr(doc, "body", None) or ""
            yield Document(doc.doc_id, _join(getattr(doc, "title", None), text))
    except Exception as e:  # ir_datasets downloads on first use
        raise SpladeError(f"ir_datasets {name!r} could not be read ({type(e).__name__}: {str(e)[:160]}); "
                          "it may need a download that this machine cannot make.") from None


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


def read_corpus(source: str | os.PathLike) -> Iterator[Document]:
    """Every document of ``source``, in file order."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        file = corpus_file(path)
        files = [file] if file is not None else sorted(path.glob("*.jsonl"))
        for f in files:
            yield from _read_jsonl(f)
        return
    if path.is_file():
        if path.suffix in (".tsv", ".txt"):
            yield from _read_tsv(path)
        else:
            yield from _read_jsonl(path)
        return
    if text.startswith("irds:"):
        yield from _read_ir_datasets(text[5:])
        return
    if looks_like_path(text):
        raise SpladeError(f"corpus {text} does not exist; pass a BEIR folder, a .jsonl or .tsv file, or an ir_datasets id.")
    yield from _read_ir_datasets(text)


def check_corpus(source: str | os.PathLike) -> None:
    """Raise the reading error of a missing or unusable source early, before any model is loaded."""
    path = Path(source)
    if path.is_dir():
        corpus_file(path)
    elif not path.is_file() and looks_like_path(str(source)):
        raise SpladeError(f"corpus {source} does not exist; pass a BEIR folder, a .jsonl or .tsv file, or an ir_datasets id.")


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
