"""The Java steps of a regression, each a subprocess of the Anserini fat jar (plus the Java extension where a config
needs it): index the corpus (IndexCollection), read the index statistics (IndexReaderUtils), search (SearchCollection)
and evaluate (trec_eval), with the arguments Anserini's own runner builds from the config.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import zipfile
from contextlib import nullcontext
from pathlib import Path

from ..anserini import collection_input, java_process
from ..errors import SpladeError
from ..fileio import atomic_directory
from .config import STOCK_COLLECTION

#: SearchCollection with Lucene's clause limit raised (java/src/main/java/io/anserini/splade/SearchCollectionMain.java).
SEARCH_MAIN = "io.anserini.splade.SearchCollectionMain"


def _class_in_jar(jar: Path, class_name: str) -> bool:
    entry = class_name.replace(".", "/") + ".class"
    with zipfile.ZipFile(jar) as z:
        try:
            z.getinfo(entry)
            return True
        except KeyError:
            return False


def extra_classpath(config_data: dict) -> list[str]:
    """Jars the config's classes need besides the fat jar: the Java extension for its collection or generator."""
    from ..anserini import fatjar
    from ..onnx_export import encoder_classes

    wanted = [f"io.anserini.collection.{config_data['collection_class']}",
              f"io.anserini.index.generator.{config_data['generator_class']}", *encoder_classes(config_data)]
    missing = [c for c in wanted if "." in c and not _class_in_jar(fatjar(), c)]
    if not missing:
        return []
    from .. import javabuild

    try:
        jar = javabuild.build()
    except SpladeError as e:
        raise SpladeError(f"the config needs {', '.join(c.rsplit('.', 1)[-1] for c in missing)}, which stock Anserini "
                          f"lacks; splade-pyserini's Java extension provides them but is unavailable ({e}).") from None
    still = [c for c in missing if not _class_in_jar(jar, c)]
    if still:
        raise SpladeError(f"no class {', '.join(still)} in Anserini's jar or in splade-pyserini's Java extension.")
    return [str(jar)]


def index_args(d: dict, corpus: str, index: str, threads: int | None = None) -> list[str]:
    """The IndexCollection arguments Anserini's runner builds for a config."""
    args = ["-collection", str(d["collection_class"]), "-input", corpus, "-generator", str(d["generator_class"]),
            "-index", index, "-threads", str(int(threads or d.get("index_threads") or 1))]
    return args + shlex.split(str(d.get("index_options") or ""))


def index_corpus(d: dict, corpus: Path, index: Path, threads: int | None = None) -> None:
    """IndexCollection as the config says, into ``index`` (built beside it, replacing it only on success); for the
    extension's SpladeVectorCollection, the extension's SpladeIndexCollection (the same options and index).

    Stock JsonVectorCollection reads the corpus folder's shards alone (it would parse every other file too, such as
    the records of a folder ``encode`` wrote; see :func:`.anserini.collection_input`)."""
    from ..vectors import shard_files

    classpath = extra_classpath(d)
    corpus = Path(corpus)
    stock = str(d["collection_class"]) == STOCK_COLLECTION and corpus.is_dir()
    main = "io.anserini.index.IndexCollection"
    if classpath:
        from .. import javaext

        if str(d["collection_class"]) == javaext.COLLECTION:
            main = javaext.INDEXER_MAIN  # the extension's IndexCollection: its segments writer, exit 1 on a bad line
    with collection_input(corpus, shard_files(corpus)) if stock else nullcontext(corpus) as source:
        with atomic_directory(index) as tmp:
            java_process(main, index_args(d, str(source), str(tmp), threads), classpath,
                         what="indexing (IndexCollection)")


_STAT_LINE = re.compile(r"^([A-Za-z][A-Za-z ()_-]*?):\s+(-?\d+)\s*$")


def index_stats(index: str | os.PathLike) -> dict[str, int]:
    """``IndexReaderUtils -stats`` of an index: documents, documents (non-empty), unique terms, total terms."""
    if not Path(index).is_dir():
        raise SpladeError(f"index {index} does not exist.")
    out = java_process("io.anserini.index.IndexReaderUtils", ["-index", str(index), "-stats"],
                       what="IndexReaderUtils").stdout
    stats = {}
    for line in out.splitlines():
        m = _STAT_LINE.match(line.strip())
        if m:
            stats[m.group(1).strip()] = int(m.group(2))
    if "documents" not in stats:
        raise SpladeError(f"IndexReaderUtils printed no statistics for {index}.")
    return stats


def search_args(d: dict, topic: dict, model: dict, index: str, topics_path: str, output: str) -> list[str]:
    """The SearchCollection arguments Anserini's runner builds for one model and topic set."""
    reader = d.get("topic_reader") or topic.get("topic_reader")
    return ["-index", index, "-topics", topics_path, "-topicReader", str(reader), "-output", output,
            *shlex.split(str(model.get("params") or ""))]


def search(d: dict, topic: dict, model: dict, index: str | os.PathLike, topics_path: str | os.PathLike,
           output: str | os.PathLike, env: dict | None = None) -> None:
    """SearchCollection for one model and topic set, writing the run ``output``.

    Through the Java extension's :data:`SEARCH_MAIN` when it is available: Anserini's SearchCollection with Lucene's
    clause limit raised, since a SPLADE query has one clause per term and can hold more than Lucene's default 1,024
    (as the package's own searchers allow, :func:`.anserini.allow_long_queries`); else stock SearchCollection."""
    from .. import javabuild

    classpath = extra_classpath(d)
    main = "io.anserini.search.SearchCollection"
    jar = javabuild.extension_jar()
    if jar is not None:
        main = SEARCH_MAIN
        classpath = classpath if str(jar) in classpath else [*classpath, str(jar)]
    what = f"search (SearchCollection, model {model['name']}, topics {topic['id']})"
    proc = java_process(main, search_args(d, topic, model, str(index), str(topics_path), str(output)), classpath,
                        what=what, env=env)
    if "TooManyClauses" in proc.stderr + proc.stdout:  # SearchCollection logs it, leaves the query out, exits 0
        raise SpladeError(f"{what}: a query of {topics_path} has more than Lucene's 1,024 terms, which stock "
                          "SearchCollection leaves out of the run; make the Java extension available (a javac >= "
                          f"{javabuild.JAVA_RELEASE}), whose {SEARCH_MAIN.rsplit('.', 1)[-1]} searches it.")


def run_file_name(d: dict, model: dict, topic: dict) -> str:
    """Anserini 2.2's run file name: ``run.<index name less its first '-' part>.<topics id>.<model>.txt``."""
    index_path = str(d["index_path"])
    parts = index_path.split("/")
    stem = index_path
    if len(parts) > 1:
        halves = parts[1].split("-", 1)
        stem = halves[1] if len(halves) == 2 else parts[1]
    return f"run.{stem}.{topic['id']}.{model['name']}.txt".replace("/", "_")


def evaluate_metric(metric: dict, qrels: Path, run: Path) -> float:
    """One metric of one run, as Anserini's runner computes it: the command's last line, field ``parse_index``.

    ``bin/trec_eval`` commands go to the fat jar's trec_eval (``io.anserini.eval.TrecEval``, the bundled native
    trec_eval); ``python -m pyserini.eval.trec_eval`` commands to Pyserini's, in this Python.
    """
    command = str(metric["command"])
    params = shlex.split(str(metric.get("params") or ""))
    if "trec_eval" in command and "pyserini" not in command:
        out = java_process("io.anserini.eval.TrecEval", [*params, str(qrels), str(run)],
                           what="trec_eval (TrecEval)").stdout
    elif "pyserini.eval.trec_eval" in command:
        proc = subprocess.run([sys.executable, "-m", "pyserini.eval.trec_eval", *params, str(qrels), str(run)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()] or ["(no output)"]
            raise SpladeError(f"pyserini.eval.trec_eval failed (exit {proc.returncode}): {tail[-1][:300]}")
        out = proc.stdout
    else:
        raise SpladeError(f"metric {metric['metric']}: unsupported command {command!r} (bin/trec_eval or "
                          "python -m pyserini.eval.trec_eval).")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise SpladeError(f"metric {metric['metric']}: {command} printed nothing for {run}.")
    fields = lines[-1].strip().split(str(metric["separator"]))
    index = int(metric["parse_index"])
    try:
        return float(fields[index])
    except (IndexError, ValueError):
        raise SpladeError(f"metric {metric['metric']}: cannot read field {index} of {lines[-1]!r}.") from None


