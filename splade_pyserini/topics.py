"""Reading query sets (topics): BEIR folders, ``queries.jsonl``, TSV and TREC topic files.

Returns an ordered ``{qid: text}``. For a BEIR folder with ``qrels/test.tsv``, only the queries judged there are
kept (as BEIR evaluates). Empty topics, or a query with empty text, are errors.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .corpus import iter_jsonl, looks_like_path
from .errors import SpladeError


def _read_jsonl(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    for lineno, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise SpladeError(f"{path}:{lineno}: expected a JSON object per line.")
        qid = obj.get("_id", obj.get("id", obj.get("qid", obj.get("query_id"))))
        text = obj.get("text", obj.get("query", obj.get("title", obj.get("contents"))))
        if qid is None or text is None:
            raise SpladeError(f"{path}:{lineno}: a query needs an id (`_id`/`id`/`qid`) and `text`.")
        topics[str(qid)] = str(text)
    return topics


def _read_tsv(path: Path) -> dict[str, str]:
    from .corpus import iter_tsv

    return {parts[0]: parts[1] for parts in iter_tsv(path, "qid<TAB>query", ("qid", "id", "query-id", "query_id", "_id"))}


_TREC_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)


def _read_trec(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    topics: dict[str, str] = {}
    for n, block in enumerate(_TREC_TOP.findall(text), 1):
        num = re.search(r"<num>\s*(?:Number:)?\s*(\S+)", block, re.I)
        title = re.search(r"<title>\s*(?:Topic:)?\s*(.*?)(?=<desc>|<narr>|<\w+>|$)", block, re.S | re.I)
        if not num or not title:
            raise SpladeError(f"{path}: TREC topic #{n} has no <num> or <title>.")
        topics[num.group(1)] = " ".join(title.group(1).split())
    return topics


def read_topics(source: str | os.PathLike, judged_only: bool = True) -> dict[str, str]:
    path = Path(source)
    qrels_path = None
    if path.is_dir():
        qrels_path = path / "qrels" / "test.tsv"
        path = path / "queries.jsonl"
        if not path.is_file():
            raise SpladeError(f"topics folder {source} has no queries.jsonl (BEIR layout).")
    if not path.is_file():
        hint = "" if looks_like_path(str(source)) else " (Pyserini topic names such as msmarco-passage-dev-subset need Pyserini's own search)"
        raise SpladeError(f"topics {source} do not exist; pass a BEIR folder, queries.jsonl, a TSV or a TREC topic file{hint}.")
    head = path.read_text(encoding="utf-8", errors="replace")[:2048].lstrip()
    if head.startswith("{"):
        topics = _read_jsonl(path)
    elif head.lower().startswith("<top>"):
        topics = _read_trec(path)
    else:
        topics = _read_tsv(path)
    if judged_only and qrels_path is not None and qrels_path.is_file():
        from .runs import read_qrels

        judged = read_qrels(qrels_path)
        topics = {q: t for q, t in topics.items() if q in judged}
    if not topics:
        raise SpladeError(f"topics {source} hold no queries; check the file and its format.")
    empty = [q for q, t in topics.items() if not t.strip()]
    if empty:
        raise SpladeError(f"topics {source}: query {empty[0]} has empty text ({len(empty)} empty in all); remove or fill them.")
    return topics
