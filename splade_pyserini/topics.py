"""Reading query sets (topics): BEIR folders, ``queries.jsonl``, TSV and TREC topic files, ``ir_datasets`` ids.

Returns an ordered ``{qid: text}``. For a BEIR folder with ``qrels/test.tsv``, only the queries judged there are
kept (as BEIR evaluates). Empty topics, a query with empty text, a bad or repeated query id are errors that name the
file and line (the rules: :mod:`.inputs`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .corpus import ir_datasets_id, iter_ir_datasets
from .errors import SpladeError
from .inputs import check_id, check_text, duplicate, iter_jsonl, iter_tsv, lines


def _add(topics: dict[str, tuple[str, str]], qid, text, where: str) -> None:
    qid = check_id(qid, where, "query id")
    if qid in topics:
        raise duplicate("query id", qid, where, topics[qid][1])
    topics[qid] = (check_text(text, where, f"text of query {qid}"), where)


def _read_jsonl(path: Path, topics: dict) -> None:
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        if not isinstance(obj, dict):
            raise SpladeError(f"{where}: expected a JSON object per line.")
        qid = obj.get("_id", obj.get("id", obj.get("qid", obj.get("query_id"))))
        text = obj.get("text", obj.get("query", obj.get("title", obj.get("contents"))))
        if qid is None or text is None:
            raise SpladeError(f"{where}: a query needs an id (`_id`/`id`/`qid`) and `text`.")
        _add(topics, qid, text, where)


def _read_tsv(path: Path, topics: dict) -> None:
    for lineno, parts in iter_tsv(path, "qid<TAB>query", ("qid", "id", "query-id", "query_id", "_id")):
        _add(topics, parts[0], parts[1], f"{path}:{lineno}")


_TREC_TOP = re.compile(r"<top>(.*?)</top>", re.S | re.I)


def _read_trec(path: Path, topics: dict) -> None:
    text = "\n".join(line for _, line in lines(path))
    for n, top in enumerate(_TREC_TOP.finditer(text), 1):
        block = top.group(1)
        where = f"{path}:{text.count(chr(10), 0, top.start()) + 1}"
        num = re.search(r"<num>\s*(?:Number:)?\s*(\S+)", block, re.I)
        title = re.search(r"<title>\s*(?:Topic:)?\s*(.*?)(?=<desc>|<narr>|<\w+>|$)", block, re.S | re.I)
        if not num or not title:
            raise SpladeError(f"{where}: TREC topic #{n} has no <num> or <title>.")
        _add(topics, num.group(1), " ".join(title.group(1).split()), where)


def _head(path: Path) -> str:
    with open(path, "rb") as f:
        return f.read(2048).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")


def read_topics(source: str | os.PathLike, judged_only: bool = True) -> dict[str, str]:
    path = Path(source)
    qrels_path = None
    if path.is_dir():
        qrels_path = path / "qrels" / "test.tsv"
        path = path / "queries.jsonl"
        if not path.is_file():
            raise SpladeError(f"topics folder {source} has no queries.jsonl (BEIR layout).")
    dataset = None if path.exists() else ir_datasets_id(source)
    if not path.is_file() and dataset is None:
        raise SpladeError(f"topics {source} do not exist; pass a BEIR folder, queries.jsonl, a TSV, a TREC topic file "
                          "or an ir_datasets id.")
    located: dict[str, tuple[str, str]] = {}
    head = "" if dataset is not None else _head(path)
    if dataset is not None:
        for n, q in enumerate(iter_ir_datasets(dataset, "queries", "topics"), 1):
            _add(located, q.query_id, getattr(q, "text", None) or getattr(q, "title", None) or "",
                 f"ir_datasets {dataset} query #{n}")
    elif head.startswith("{"):
        _read_jsonl(path, located)
    elif head.lower().startswith("<top>"):
        _read_trec(path, located)
    else:
        _read_tsv(path, located)
    topics = {qid: text for qid, (text, _) in located.items()}
    if judged_only and qrels_path is not None and qrels_path.is_file():
        from .runs import read_qrels

        judged = read_qrels(qrels_path)
        topics = {q: t for q, t in topics.items() if q in judged}
    if not topics:
        raise SpladeError(f"topics {source} hold no queries; check the file and its format.")
    empty = [q for q, t in topics.items() if not t.strip()]
    if empty:
        raise SpladeError(f"{located[empty[0]][1]}: query {empty[0]} has empty text ({len(empty)} empty in all); "
                          "remove or fill them.")
    return topics
