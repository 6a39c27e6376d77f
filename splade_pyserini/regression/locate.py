"""Where a config's files are: the corpus folder (``--corpus-path``, or ``corpus_path`` under the corpus roots) and
the topics and qrels files (``--topics-dir``, the config's ``topics-and-qrels/``, …); a miss is one line saying where
it looked and how to get the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SpladeError
from .config import TOPICS_DIR, Config

CORPUS_ROOT_ENV = "SPLADE_PYSERINI_CORPUS_ROOT"
#: Where Anserini's runner looks for a corpus besides ``./`` and Pyserini's cache (ReproduceFromDocumentCollection).
ANSERINI_CORPUS_ROOTS = ("/collection/", "/", "/mnt/", "/tuna1/", "/store/", "/scratch/", "/u4/jimmylin/",
                         "/System/Volumes/Data/store")


def _pyserini_cache_roots() -> list[Path]:
    roots = []
    if os.environ.get("PYSERINI_CACHE"):
        roots.append(Path(os.environ["PYSERINI_CACHE"]).expanduser())
    roots.append(Path.home() / ".cache" / "pyserini")
    return roots


def corpus_roots(corpus_root: str | os.PathLike | None = None) -> list[Path]:
    roots: list[Path] = []
    if corpus_root:
        roots.append(Path(corpus_root))
    roots += [Path(p) for p in os.environ.get(CORPUS_ROOT_ENV, "").split(os.pathsep) if p]
    roots.append(Path.cwd())
    return roots


def resolve_corpus(config: Config, corpus_path: str | os.PathLike | None = None,
                   corpus_root: str | os.PathLike | None = None) -> Path:
    """The corpus folder of a config; a :class:`SpladeError` that says where it looked and how to get it."""
    d = config.data
    if corpus_path:
        path = Path(corpus_path)
        if not path.exists():
            raise SpladeError(f"--corpus-path {path} does not exist.")
        return path
    rel = str(d.get("corpus_path") or "")
    if not rel:
        raise SpladeError(f"regression config {config.name} has no corpus_path; pass --corpus-path DIR.")
    candidates: list[Path] = []
    if Path(rel).is_absolute():
        candidates.append(Path(rel))
    else:
        candidates += [root / rel for root in corpus_roots(corpus_root)]
        parts = Path(rel).parts
        cached = Path(*parts[1:]) if parts and parts[0] == "collections" and len(parts) > 1 else Path(rel)
        candidates += [root / "collections" / cached for root in _pyserini_cache_roots()]
        candidates += [Path(root) / rel for root in ANSERINI_CORPUS_ROOTS]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(c) for c in candidates[:4]) + (f" and {len(candidates) - 4} more" if len(candidates) > 4 else "")
    extra = d.get("splade_pyserini") or {}
    if extra.get("encode"):
        how = f"create it with `{extra['encode']}`, then pass --corpus-path (or --corpus-root)"
        if extra.get("vectors_url"):
            how += f"; or fetch the pinned vectors from {extra['vectors_url']}"
    elif d.get("download_url"):
        checksum = f" (md5 {d['download_checksum']})" if d.get("download_checksum") else ""
        how = (f"download {d['download_url']}{checksum} and unpack it so that {rel} lies under --corpus-root, "
               "or pass --corpus-path")
    else:
        how = "pass --corpus-path DIR or --corpus-root DIR"
    raise SpladeError(f"the corpus {d['corpus']!r} of regression {config.name} is missing: {rel} was not found "
                      f"(looked at {looked}); {how}.")


def topic_dirs(config: Config, topics_dir: str | os.PathLike | None = None) -> list[Path]:
    dirs: list[Path] = []
    if topics_dir:
        dirs.append(Path(topics_dir))
    if config.folder is not None:
        dirs += [config.folder / TOPICS_DIR, config.folder]
    dirs.append(Path.cwd() / "tools" / TOPICS_DIR)
    dirs += [root / TOPICS_DIR for root in _pyserini_cache_roots()]
    return dirs


def resolve_data_file(config: Config, name: str, what: str, topics_dir=None) -> Path:
    if Path(name).is_absolute():
        if Path(name).is_file():
            return Path(name)
        raise SpladeError(f"{what} file {name} of regression {config.name} does not exist.")
    dirs = topic_dirs(config, topics_dir)
    for d in dirs:
        if (d / name).is_file():
            return d / name
    raise SpladeError(f"{what} file {name} of regression {config.name} was not found in "
                      f"{', '.join(str(d) for d in dirs)}; pass --topics-dir DIR (Anserini keeps them in "
                      "tools/topics-and-qrels).")


