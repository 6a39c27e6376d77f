"""Anserini regression configs for SPLADE encoders: ``splade-pyserini regression export|run|list``.

A regression config is a YAML file in the schema of Anserini 2.x's ``io.anserini.reproduce.
ReproduceFromDocumentCollection`` (``reproduce/from-document-collection/configs/*.yaml`` in the fat jar): the corpus
(``corpus``, ``corpus_path``, optional ``download_url``/``download_checksum``), how to index it (``index_path``,
``collection_class``, ``generator_class``, ``index_threads``, ``index_options``), the index statistics to verify
(``index_stats``), the metrics as trec_eval commands (``metrics``), the topics (``topic_reader``, ``topics`` with
``name``/``id``/``path``/``qrel``) and the models with their search parameters and expected results
(``models[].params``, ``models[].results{metric: [one value per topic set]}``).

``export`` runs a SPLADE encoder on a BEIR collection (encode → index → search → evaluate, or reuses given vectors
or index) and writes such a config beside its two data files, under ``topics-and-qrels/`` (the folder Anserini
calls ``tools/topics-and-qrels``):

* the queries pre-encoded with :meth:`SpladeEncoder.quantized_queries` — the integer weights exactly as
  ``splade-pyserini search`` searches them — one ``qid<TAB>tokens`` line per query, each token repeated ``weight``
  times (Anserini's pre-encoded impact topics: ``SearchCollection -impact -pretokenized`` splits on whitespace and
  boosts each term by its count, so a query scores ``Σ weight × impact``, the same scores as ``SpladeSearcher``),
  gzipped (Anserini reads ``.gz`` topics);
* the qrels in TREC format.

The default config names only stock Anserini classes (``JsonVectorCollection``, ``DefaultLuceneDocumentGenerator``,
``SearchCollection``, trec_eval), so stock Anserini reproduces it; ``--fast`` names the Java extension's
collection and generator instead (see :mod:`.javaext`). Keys Anserini does not know are ignored by it; the config
carries one of its own, ``splade_pyserini``, recording the encoder and how to re-create the corpus.

``run`` executes a config with the Anserini jar that Pyserini ships, each step in a Java subprocess: index
(``IndexCollection`` with the config's classes and options), verify the index statistics exactly
(``IndexReaderUtils -stats``), search (``SearchCollection`` with the config's topic reader and model parameters),
evaluate with the fat jar's trec_eval (``io.anserini.eval.TrecEval``, the bundled native trec_eval), and compare
each metric with the expected value at the config's ``metric_precision``. Unlike Anserini's runner, which also
accepts results *above* the expected value, any difference fails. ``--runner anserini`` hands the config to
Anserini's own ``ReproduceFromDocumentCollection`` instead (its rules, its log). Anserini's bundled configs are
accepted by name (``splade-pyserini regression list --anserini``); they need their corpora and topic files.

Paths: ``corpus_path`` is looked up under ``--corpus-root`` (or ``$SPLADE_PYSERINI_CORPUS_ROOT``), the current
folder, Pyserini's cache and Anserini's usual roots, unless ``--corpus-path`` names the corpus folder itself.
Topic and qrels files are looked up in ``--topics-dir``, the config's ``topics-and-qrels/`` and its own folder,
then ``./tools/topics-and-qrels``.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from .errors import SpladeError
from .fileio import atomic_directory, atomic_write, work_folder

RUNNER_CLASS = "io.anserini.reproduce.ReproduceFromDocumentCollection"
CONFIG_DIR_IN_JAR = "reproduce/from-document-collection/configs"
TOPICS_DIR = "topics-and-qrels"
CORPUS_ROOT_ENV = "SPLADE_PYSERINI_CORPUS_ROOT"
STOCK_COLLECTION = "JsonVectorCollection"
STOCK_GENERATOR = "DefaultLuceneDocumentGenerator"
#: Index statistics a config records (the lines of ``IndexReaderUtils -stats`` that Anserini's configs verify).
STATS_KEYS = ("documents", "documents (non-empty)", "total terms")
DEFAULT_METRICS = ("map", "ndcg@10", "recall@100", "recall@1000")
#: Where Anserini's runner looks for a corpus besides ``./`` and Pyserini's cache (ReproduceFromDocumentCollection).
ANSERINI_CORPUS_ROOTS = ("/collection/", "/", "/mnt/", "/tuna1/", "/store/", "/scratch/", "/u4/jimmylin/",
                         "/System/Volumes/Data/store")

_TREC_MEASURES = {"map": "map", "ndcg": "ndcg_cut", "recall": "recall", "p": "P", "precision": "P",
                  "mrr": "recip_rank", "rr": "recip_rank", "success": "success", "map_cut": "map_cut"}
_DISPLAY = {"map": "MAP", "ndcg": "nDCG", "recall": "R", "p": "P", "precision": "P", "mrr": "RR", "rr": "RR",
            "success": "Success", "map_cut": "AP"}


# --- metrics -------------------------------------------------------------------------------------------------------
def trec_eval_metric(spec: str, precision: int = 4) -> dict:
    """An Anserini ``metrics`` entry for a metric name: ``map``, ``ndcg@10``, ``recall@1000``, ``p@10``, ``mrr@10``…

    A spec starting with ``-`` is taken as raw trec_eval parameters (``"-c -m bpref"``), named after its measure.
    """
    text = spec.strip()
    if text.startswith("-"):
        measures = re.findall(r"-m\s+(\S+)", text)
        if not measures:
            raise SpladeError(f"metric {spec!r}: raw trec_eval parameters need a `-m MEASURE`.")
        name, params = measures[-1], " ".join(text.split())
    else:
        m = re.fullmatch(r"([a-z_]+)(?:@(\d+))?", text.lower())
        if not m or m.group(1) not in _TREC_MEASURES:
            raise SpladeError(f"unknown metric {spec!r}; use map, ndcg@K, recall@K, p@K, mrr@K, success@K or raw "
                              "trec_eval parameters such as '-c -m bpref'.")
        base, k = m.group(1), m.group(2)
        measure = _TREC_MEASURES[base]
        if base in ("mrr", "rr"):
            params = f"-c -M {k} -m recip_rank" if k else "-c -m recip_rank"
        elif base == "map" and not k:
            params = "-c -m map"
        elif base in ("map", "map_cut"):
            params = f"-c -m map_cut.{k}"
        else:
            if not k:
                raise SpladeError(f"metric {spec!r} needs a cutoff, e.g. {base}@10.")
            params = f"-c -m {measure}.{k}"
        name = _DISPLAY[base] + (f"@{k}" if k else "")
    return {"metric": name, "command": "bin/trec_eval", "params": params, "separator": "\t", "parse_index": 2,
            "metric_precision": int(precision), "can_combine": False}


def round_half_up(value: float, precision: int) -> float:
    """``Math.round(value * 10^p) / 10^p``, the rounding Anserini's runner applies before comparing."""
    scale = 10.0 ** precision
    return math.floor(value * scale + 0.5) / scale


# --- reading and writing configs -----------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _jar_configs() -> dict[str, str]:
    """``{name: text}`` of the regression configs bundled in the fat jar (read once; they are small)."""
    from .anserini import fatjar

    prefix = CONFIG_DIR_IN_JAR + "/"
    with zipfile.ZipFile(fatjar()) as z:
        return {n[len(prefix):-len(".yaml")]: z.read(n).decode("utf-8") for n in z.namelist()
                if n.startswith(prefix) and n.endswith(".yaml") and "/" not in n[len(prefix):]}


def anserini_configs(pattern: str | None = None) -> list[str]:
    """Names of the regression configs bundled in the fat jar (those containing ``pattern``, if given)."""
    return sorted(n for n in _jar_configs() if pattern is None or pattern.lower() in n.lower())


@dataclass
class Config:
    """A loaded regression config: its data, its name, and where it came from (a file, or the fat jar)."""

    data: dict
    name: str
    path: Path | None = None  # None: bundled in the Anserini jar
    text: str = ""

    @property
    def folder(self) -> Path | None:
        return self.path.parent if self.path else None

    @property
    def source(self) -> str:
        return str(self.path) if self.path else f"{CONFIG_DIR_IN_JAR}/{self.name}.yaml in {_jar_name()}"


def _jar_name() -> str:
    from .anserini import fatjar

    return fatjar().name


def load_config(ref: str | os.PathLike) -> Config:
    """A config file (``.yaml``), or the name of a config bundled in Anserini's jar (``dl20-passage.splade-v3.onnx``)."""
    import yaml

    path = Path(ref)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        name = path.name[:-5] if path.name.endswith(".yaml") else path.stem
        path = path.resolve()
    elif str(ref).endswith((".yaml", ".yml")) or os.sep in str(ref):
        raise SpladeError(f"regression config {ref} does not exist.")
    else:
        name = str(ref)
        text = _jar_configs().get(name)
        if text is None:
            close = anserini_configs(name.split(".")[0])[:5]
            hint = f" (similar: {', '.join(close)})" if close else ""
            raise SpladeError(f"no regression config {name!r}: not a file, and not one of Anserini's configs"
                              f"{hint}; `splade-pyserini regression list --anserini` lists them.")
        path = None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpladeError(f"regression config {ref} is not valid YAML: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(data, dict):
        raise SpladeError(f"regression config {ref} is not a YAML mapping.")
    config = Config(data=data, name=name, path=path, text=text)
    validate(config)
    return config


def validate(config: Config) -> None:
    d = config.data
    missing = [k for k in ("corpus", "index_path", "collection_class", "generator_class", "metrics", "topics",
                           "models") if k not in d]
    if missing:
        raise SpladeError(f"regression config {config.source} lacks {', '.join(missing)}.")
    if d.get("index_type") not in (None, "", "inverted"):
        raise SpladeError(f"regression config {config.name}: index_type {d['index_type']!r} (dense vectors) is not "
                          "supported here; run it with Anserini's ReproduceFromDocumentCollection.")
    if d.get("conversions"):
        raise SpladeError(f"regression config {config.name}: run conversions are not supported; run it with "
                          "Anserini's ReproduceFromDocumentCollection.")
    for model in d["models"]:
        if model.get("type") not in (None, "", "inverted"):
            raise SpladeError(f"regression config {config.name}: model type {model['type']!r} is not supported.")
        if "name" not in model:
            raise SpladeError(f"regression config {config.name}: a model lacks `name`.")
    for i, topic in enumerate(d["topics"]):
        if "id" not in topic or "path" not in topic:
            raise SpladeError(f"regression config {config.name}: topic set #{i + 1} needs `id` and `path`.")
        if not (topic.get("qrel") or topic.get("qrels")):
            raise SpladeError(f"regression config {config.name}: topic set {topic['id']} has no `qrel` file.")
        if not (d.get("topic_reader") or topic.get("topic_reader")):
            raise SpladeError(f"regression config {config.name}: no topic_reader for topic set {topic['id']}.")
    for m in d["metrics"]:
        lacking = [k for k in ("metric", "command", "separator", "parse_index", "metric_precision") if k not in m]
        if lacking:
            raise SpladeError(f"regression config {config.name}: metric {m.get('metric', '?')} lacks "
                              f"{', '.join(lacking)}.")


def _yaml_str(value) -> str:
    """A YAML scalar: plain when it reads back as the same string, else double-quoted (JSON escapes are YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    import yaml

    if text and text == text.strip() and "\n" not in text and "\t" not in text:
        try:
            if yaml.safe_load(f"k: {text}") == {"k": text}:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def format_config(d: dict) -> str:
    """The config as YAML laid out like Anserini's own (``---``, blank lines between the sections)."""
    out: list[str] = ["---"]

    def kv(key, value, indent=0):
        out.append(" " * indent + f"{key}: {_yaml_str(value)}")

    for key in ("corpus", "corpus_path"):
        kv(key, d[key])
    out.append("")
    if d.get("download_url"):
        kv("download_url", d["download_url"])
        if d.get("download_checksum"):
            kv("download_checksum", d["download_checksum"])
        out.append("")
    for key in ("index_path", "collection_class", "generator_class", "index_threads", "index_options"):
        kv(key, d[key])
    out.append("index_stats:")
    for key, value in d["index_stats"].items():
        kv(key, value, 2)
    out.append("")
    out.append("metrics:")
    for m in d["metrics"]:
        first = True
        for key in ("metric", "command", "params", "separator", "parse_index", "metric_precision", "can_combine"):
            out.append(("  - " if first else "    ") + f"{key}: {_yaml_str(m[key])}")
            first = False
    out.append("")
    kv("topic_reader", d["topic_reader"])
    out.append("topics:")
    for t in d["topics"]:
        first = True
        for key in ("name", "id", "path", "qrel"):
            out.append(("  - " if first else "    ") + f"{key}: {_yaml_str(t[key])}")
            first = False
    out.append("")
    out.append("models:")
    for model in d["models"]:
        out.append(f"  - name: {_yaml_str(model['name'])}")
        out.append(f"    display: {_yaml_str(model['display'])}")
        out.append(f"    params: {_yaml_str(model['params'])}")
        out.append("    results:")
        for metric, values in model["results"].items():
            out.append(f"      {_yaml_key(metric)}:")
            for v in values:
                out.append(f"        - {v:.{_precision_of(d, metric)}f}")
    extra = d.get("splade_pyserini")
    if extra:
        out.append("")
        out.append("# Not read by Anserini: what produced this config, and how to re-create its corpus.")
        out.append("splade_pyserini:")
        for key, value in extra.items():
            kv(key, value, 2)
    return "\n".join(out) + "\n"


def _yaml_key(key: str) -> str:
    import yaml

    try:
        if yaml.safe_load(f"{key}: 1") == {key: 1}:
            return key
    except yaml.YAMLError:
        pass
    return json.dumps(key, ensure_ascii=False)


def _precision_of(d: dict, metric: str) -> int:
    for m in d["metrics"]:
        if m["metric"] == metric:
            return int(m["metric_precision"])
    return 4


# --- locating the corpus, topics and qrels -------------------------------------------------------------------------
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


# --- Java steps ----------------------------------------------------------------------------------------------------
def _java(main_class: str, args: list[str], classpath: list[str] | None = None, cwd: str | None = None,
          what: str | None = None, env: dict | None = None) -> tuple[str, str]:
    """Run a main class of the fat jar; (stdout, stderr), or a one-line SpladeError with its last message."""
    from .anserini import java_command

    cmd = java_command(main_class, args, classpath)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "Exception" in ln or "Error" in ln or "ERROR" in ln]
        last = (errors or lines or ["(no output)"])[-1].strip()
        raise SpladeError(f"{what or main_class.rsplit('.', 1)[-1]} failed (exit {proc.returncode}): {last[:400]}")
    return proc.stdout, proc.stderr


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
    from .anserini import fatjar

    from .onnx_export import encoder_classes

    wanted = [f"io.anserini.collection.{config_data['collection_class']}",
              f"io.anserini.index.generator.{config_data['generator_class']}", *encoder_classes(config_data)]
    missing = [c for c in wanted if "." in c and not _class_in_jar(fatjar(), c)]
    if not missing:
        return []
    from . import javaext

    try:
        jar = javaext.build()
    except SpladeError as e:
        raise SpladeError(f"the config needs {', '.join(c.rsplit('.', 1)[-1] for c in missing)}, which stock Anserini "
                          f"lacks; splade-pyserini's Java extension provides them but is unavailable ({e}).") from None
    still = [c for c in missing if not _class_in_jar(jar, c)]
    if still:
        raise SpladeError(f"no class {', '.join(still)} in Anserini's jar or in splade-pyserini's Java extension.")
    return [str(jar)]


def _staged_corpus(corpus: Path, collection_class: str) -> tuple[Path, Path | None]:
    """For JsonVectorCollection on a folder holding more than vector shards (the record ``encoding.meta``, the owner
    file), a folder of links to the shards alone: stock Anserini parses every non-empty file of its input folder
    and would log an exception for each (it still indexes the same documents). Other folders are read as they are."""
    from .vectors import LEGACY_META_FILE

    if collection_class != STOCK_COLLECTION or not corpus.is_dir():
        return corpus, None
    shards = sorted(p for p in corpus.iterdir() if p.is_file() and not p.name.startswith(".")
                    and p.name != LEGACY_META_FILE and p.name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")))
    if not any(p.is_file() and p.stat().st_size and p not in shards for p in corpus.iterdir()):
        return corpus, None
    staged = Path(tempfile.mkdtemp(prefix="splade-regression-corpus-"))
    for shard in shards:
        os.symlink(shard.resolve(), staged / shard.name)
    return staged, staged


def index_args(d: dict, corpus: str, index: str, threads: int | None = None) -> list[str]:
    """The IndexCollection arguments Anserini's runner builds for a config."""
    args = ["-collection", str(d["collection_class"]), "-input", corpus, "-generator", str(d["generator_class"]),
            "-index", index, "-threads", str(int(threads or d.get("index_threads") or 1))]
    return args + shlex.split(str(d.get("index_options") or ""))


def build_index(d: dict, corpus: Path, index: Path, threads: int | None = None) -> None:
    """IndexCollection as the config says, into ``index`` (built beside it, replacing it only on success)."""
    classpath = extra_classpath(d)
    staged, temporary = _staged_corpus(Path(corpus), str(d["collection_class"]))
    try:
        with atomic_directory(index) as tmp:
            _java("io.anserini.index.IndexCollection", index_args(d, str(staged), str(tmp), threads), classpath,
                  what="indexing (IndexCollection)")
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


_STAT_LINE = re.compile(r"^([A-Za-z][A-Za-z ()_-]*?):\s+(-?\d+)\s*$")


def index_stats(index: str | os.PathLike) -> dict[str, int]:
    """``IndexReaderUtils -stats`` of an index: documents, documents (non-empty), unique terms, total terms."""
    if not Path(index).is_dir():
        raise SpladeError(f"index {index} does not exist.")
    out, _ = _java("io.anserini.index.IndexReaderUtils", ["-index", str(index), "-stats"], what="IndexReaderUtils")
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
        out, _ = _java("io.anserini.eval.TrecEval", [*params, str(qrels), str(run)], what="trec_eval (TrecEval)")
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


# --- running a config ----------------------------------------------------------------------------------------------
@dataclass
class Check:
    """One verified quantity: an index statistic or a metric of one model on one topic set."""

    kind: str  # "vectors", "stat" or "metric"
    name: str
    expected: float | int | str | None
    actual: float | int | str | None
    ok: bool
    topics: str | None = None
    model: str | None = None
    precision: int | None = None
    note: str = ""

    def describe(self) -> str:
        if self.kind == "vectors":
            return f"vectors: {self.note}"
        if self.kind == "stat":
            return f"index stat {self.name!r}: expected {self.expected}, actual {self.actual}" + (
                f" ({self.note})" if self.note else "")
        p = self.precision or 4
        exp = "none" if self.expected is None else f"{self.expected:.{p}f}"
        act = "none" if self.actual is None else f"{self.actual:.{p}f}"
        delta = ""
        if self.expected is not None and self.actual is not None:
            delta = f" (delta {self.actual - self.expected:+.{p}f})"
        return f"{self.name} on topics {self.topics!r}, model {self.model}: expected {exp}, actual {act}{delta}"

    def line(self) -> str:
        tag = "OK  " if self.ok else ("----" if self.expected is None else "FAIL")
        return f"[{tag}] {self.describe()}"


@dataclass
class Report:
    config: str
    checks: list[Check] = field(default_factory=list)
    runs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    runner: str = "splade-pyserini"

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.expected is not None]

    @property
    def ok(self) -> bool:
        return not self.failures and any(c.kind == "metric" and c.ok for c in self.checks)

    @property
    def vectors(self) -> str | None:
        """``identical``, ``re-encoded`` or ``different`` when the vectors were checked against the config's pins."""
        return next((str(c.actual) for c in self.checks if c.kind == "vectors" and c.expected is not None), None)

    def summary(self) -> str:
        compared = [c for c in self.checks if c.expected is not None]
        if self.ok:
            how = {"identical": " on the pinned vectors", "re-encoded": " on re-encoded vectors (differences "
                   "explained above, metrics equal at the config's precision)"}.get(self.vectors or "", "")
            return (f"regression {self.config}: all {len(compared)} checks reproduced{how} ({self.seconds:.0f}s, "
                    f"{self.runner})")
        if not self.failures:
            return f"regression {self.config}: nothing was compared (no expected results)"
        lines = [f"regression {self.config} FAILED: {len(self.failures)} of {len(compared)} checks differ"]
        lines += [f"  {c.describe()}" for c in self.failures]
        return "\n".join(lines)


def check_pinned_vectors(cfg: Config, corpus: Path, topics_dir=None):
    """The corpus folder checked against the vectors the config pins (see :mod:`.vector_pins`), or None when the
    config pins none (configs of other tools, or exported from an index alone)."""
    from . import vector_pins

    extra = cfg.data.get("splade_pyserini") or {}
    if not extra.get("vectors_sha256"):
        return None
    if not Path(corpus).is_dir():
        raise SpladeError(f"the corpus {corpus} of regression {cfg.name} is not a vectors folder.")
    boundary = vector_pins.read_boundary(resolve_data_file(cfg, str(extra["vectors_boundary"]), "boundary list",
                                                           topics_dir))
    return vector_pins.check_vectors(corpus, str(extra["vectors_sha256"]), str(extra["vectors_masked_sha256"]),
                                     boundary)


def run_regression(config: str | os.PathLike | Config, corpus_path=None, corpus_root=None, topics_dir=None,
                   index=None, work_dir=None, index_threads: int | None = None, keep: bool = False,
                   log=None) -> Report:
    """Index, verify, search and evaluate a config with the fat jar; returns a :class:`Report` (never raises on a
    mismatch; raises :class:`SpladeError` for a missing corpus, topics, Java, …)."""
    cfg = config if isinstance(config, Config) else load_config(config)
    d = cfg.data
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    corpus = None if index else resolve_corpus(cfg, corpus_path, corpus_root)
    topic_files = [(resolve_data_file(cfg, str(t["path"]), "topics", topics_dir),
                    resolve_data_file(cfg, str(t.get("qrel") or t.get("qrels")), "qrels", topics_dir))
                   for t in d["topics"]]
    from .onnx_export import java_env

    java_env(d, cfg.folder)  # fail early when its ONNX query encoder is missing
    if not index:
        extra_classpath(d)  # fail early when the extension is needed but unavailable
    own_work = work_dir is None
    work = work_folder(work_dir, "regression work folder", prefix="splade-regression-", what="--work-dir")
    report = Report(config=cfg.name)
    pinned = None if index else check_pinned_vectors(cfg, corpus, topics_dir)
    if pinned is not None:
        report.checks.append(Check("vectors", "vectors", "identical", pinned.state, pinned.state != "different",
                                   note=pinned.message))
        if pinned.state == "different":  # never index other vectors
            if own_work and not keep:
                shutil.rmtree(work, ignore_errors=True)
            report.seconds = time.perf_counter() - start
            return report
    elif (d.get("splade_pyserini") or {}).get("vectors_sha256"):
        report.checks.append(Check("vectors", "vectors", None, None, False,
                                   note="not checked against the config's pins (an index was given)"))
    try:
        if index:
            index_dir = Path(index)
            if not index_dir.is_dir():
                raise SpladeError(f"--index {index_dir} does not exist.")
            log(f"regression {cfg.name}: using the index {index_dir}")
        else:
            index_dir = work / str(d["index_path"])
            log(f"regression {cfg.name}: indexing {corpus} with {d['collection_class']} → {index_dir}")
            build_index(d, corpus, index_dir, index_threads)
        stats = index_stats(index_dir)
        for key, expected in (d.get("index_stats") or {}).items():
            actual = stats.get(str(key))
            note = ""
            if pinned is not None and pinned.state == "re-encoded" and str(key) == "total terms":
                # each weight is a term frequency: the boundary weights that moved move the total by their sum
                note = f"pinned {int(expected)}, {pinned.terms_delta:+d} from the re-encoded boundary weights"
                expected = int(expected) + pinned.terms_delta
            report.checks.append(Check("stat", str(key), int(expected), actual,
                                       actual is not None and int(actual) == int(expected), note=note))
        runs_dir = work / "runs"
        runs_dir.mkdir(exist_ok=True)
        for model in d["models"]:
            for i, (topic, (topics_path, qrels_path)) in enumerate(zip(d["topics"], topic_files)):
                run = runs_dir / run_file_name(d, model, topic)
                log(f"regression {cfg.name}: searching topics {topic['id']} with model {model['name']}")
                _java("io.anserini.search.SearchCollection",
                      search_args(d, topic, model, str(index_dir), str(topics_path), str(run)), extra_classpath(d),
                      what=f"search (SearchCollection, model {model['name']}, topics {topic['id']})",
                      env=java_env(d, cfg.folder))
                report.runs[f"{model['name']}/{topic['id']}"] = str(run)
                results = model.get("results") or {}
                for metric in d["metrics"]:
                    name = str(metric["metric"])
                    precision = int(metric["metric_precision"])
                    actual = round_half_up(evaluate_metric(metric, qrels_path, run), precision)
                    values = results.get(name)
                    expected = None
                    if values is not None and i < len(values) and values[i] is not None:
                        expected = round_half_up(float(values[i]), precision)
                    ok = expected is not None and abs(actual - expected) < 0.5 * 10.0 ** -precision
                    report.checks.append(Check("metric", name, expected, actual, ok, str(topic["id"]),
                                               str(model["name"]), precision))
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
        elif own_work:
            log(f"regression {cfg.name}: index and runs kept in {work}")
    report.seconds = time.perf_counter() - start
    return report


def run_with_anserini(config: str | os.PathLike | Config, corpus_path=None, corpus_root=None, topics_dir=None,
                      work_dir=None, index_threads: int | None = None, keep: bool = False, dry_run: bool = False,
                      log=None) -> tuple[Report, str]:
    """Hand the config to Anserini's own runner (``ReproduceFromDocumentCollection --index --verify --search``).

    The config goes on the classpath as ``reproduce/from-document-collection/configs/<name>.yaml`` (a config
    bundled in the jar is used as it is), its topic and qrels files are linked into ``tools/topics-and-qrels`` of
    the working folder, where the runner also writes ``indexes/`` and ``runs/``. Returns the report parsed from
    the runner's log (Anserini's rules: a metric above its expected value passes) and the log itself.
    """
    from .anserini import java_command

    cfg = config if isinstance(config, Config) else load_config(config)
    d = cfg.data
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    start = time.perf_counter()
    corpus = resolve_corpus(cfg, corpus_path, corpus_root)
    files = []
    for t in d["topics"]:
        files.append((str(t["path"]), resolve_data_file(cfg, str(t["path"]), "topics", topics_dir)))
        qrel = str(t.get("qrel") or t.get("qrels"))
        files.append((qrel, resolve_data_file(cfg, qrel, "qrels", topics_dir)))
    classpath = extra_classpath(d)
    own_work = work_dir is None
    work = work_folder(work_dir, "regression work folder", prefix="splade-regression-anserini-", what="--work-dir")
    stage = Path(tempfile.mkdtemp(prefix="splade-regression-config-"))
    try:
        if cfg.path is not None:
            name = f"splade-pyserini.{cfg.name}"
            target = stage / CONFIG_DIR_IN_JAR / f"{name}.yaml"
            target.parent.mkdir(parents=True)
            target.write_text(cfg.text, encoding="utf-8")
            classpath = [str(stage), *classpath]
        else:
            name = cfg.name
        tq = work / "tools" / TOPICS_DIR
        tq.mkdir(parents=True, exist_ok=True)
        for rel, src in files:
            link = tq / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(src.resolve(), link)
        args = ["--config", name, "--corpus-path", str(Path(corpus).resolve()), "--index", "--verify", "--search",
                "--search-pool", "1"]
        if index_threads:
            args += ["--index-threads", str(int(index_threads))]
        if dry_run:
            args.append("--dry-run")
        log(f"regression {cfg.name}: running Anserini's {RUNNER_CLASS.rsplit('.', 1)[-1]} in {work}")
        from .onnx_export import java_env

        proc = subprocess.run(java_command(RUNNER_CLASS, args, classpath), capture_output=True, text=True, cwd=work,
                              env=java_env(d, cfg.folder))
        text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
    report = Report(config=cfg.name, runner="Anserini ReproduceFromDocumentCollection")
    for m in re.finditer(r"^(.+?): expected=(-?\d+), actual=(-?\d+)$", text, re.M):
        report.checks.append(Check("stat", m.group(1), int(m.group(2)), int(m.group(3)), False))
    if "Index statistics successfully verified" in text:
        for key, value in (d.get("index_stats") or {}).items():
            report.checks.append(Check("stat", str(key), int(value), int(value), True))
    pattern = re.compile(r"\[(OK\*?|FAIL)\]\s+expected: (\S+) actual: (\S+) \(delta=[^)]*\)"
                         r" - metric: (\S+)\s+model: (\S+) topics: (\S+)")
    for m in pattern.finditer(text):
        report.checks.append(Check("metric", m.group(4), float(m.group(2)), float(m.group(3)),
                                   m.group(1) != "FAIL", m.group(6), m.group(5), 4))
    if proc.returncode != 0 and not report.failures:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if "Exception" in ln or "Error" in ln]
        raise SpladeError(f"Anserini's runner failed (exit {proc.returncode}): {(errors or lines or ['?'])[-1][:400]}")
    report.seconds = time.perf_counter() - start
    return report, text


# --- exporting a config --------------------------------------------------------------------------------------------
def topics_lines(qids: Sequence[str], weights: Sequence[dict[str, int]]) -> list[str]:
    """Pre-encoded impact topics: ``qid<TAB>token token …``, each token repeated ``weight`` times.

    Tokens keep the encoder's order. A query whose weights all quantise to zero has no line (it retrieves nothing;
    trec_eval ``-c`` counts it as zero, as an empty run would).
    """
    lines = []
    for qid, w in zip(qids, weights):
        bad = [t for t in w if not t or any(ch.isspace() for ch in t)]
        if bad:
            raise SpladeError(f"query {qid}: token {bad[0]!r} contains whitespace; it cannot be written as a "
                              "pre-tokenized topic.")
        if any(int(v) < 0 for v in w.values()):
            raise SpladeError(f"query {qid}: negative weights cannot be written as repeated tokens.")
        body = " ".join(" ".join([t] * int(v)) for t, v in w.items() if int(v) > 0)
        if body:
            lines.append(f"{qid}\t{body}")
    return lines


def read_pre_encoded_topics(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """``{qid: {token: weight}}`` back from a pre-encoded topics file (``.gz`` or plain)."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    topics: dict[str, dict[str, int]] = {}
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            qid, _, body = line.partition("\t")
            counts: dict[str, int] = {}
            for token in body.split():
                counts[token] = counts.get(token, 0) + 1
            topics[qid.strip()] = counts
    return topics


def _readable(path: Path) -> None:
    """Files written through a temporary file are private (0600); published ones get the usual 0644 less umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o644 & ~umask)


def _write_gzip_text(path: Path, text: str) -> None:
    """Deterministic gzip (no name, no time stamp): the same topics give the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    with atomic_write(path, "wb", encoding=None) as f:
        f.write(buf.getvalue())


def _write_qrels(path: Path, qrels: dict[str, dict[str, int]]) -> None:
    with atomic_write(path) as f:
        for qid, docs in qrels.items():
            for docid, grade in docs.items():
                f.write(f"{qid} 0 {docid} {int(grade)}\n")


def _check_vectors(vectors: Path, encoder) -> dict:
    from .vectors import complete_encoding_meta, shard_files

    card = encoder.card
    meta = complete_encoding_meta(vectors)
    if meta.get("format", "JsonVectorCollection") != "JsonVectorCollection" or not any(
            p.suffix == ".jsonl" for p in shard_files(vectors)):
        raise SpladeError(f"{vectors} holds no JsonVectorCollection shards (encode with --format jsonl).")
    recorded = meta.get("weights_sha256")  # the model's identity; older folders: its name
    same_model = recorded == encoder.weights_hash if recorded else (
        meta.get("encoder") == card.name or meta.get("model") == card.model)
    if abs(float(meta["scale"]) - float(card.scale)) > 1e-9 or not same_model:
        raise SpladeError(f"vectors {vectors} come from encoder {meta.get('encoder')} at scale {meta.get('scale')}, "
                          f"not {card.name} at scale {card.scale}; pass the matching --encoder.")
    return meta


def _encode_command(card, collection_name: str, corpus_path: str, meta: dict | None, device: str) -> str:
    from .cards import is_card_name

    encoder = card.name if is_card_name(card.name) else "ENCODER_DIR"
    cmd = (f"splade-pyserini encode --encoder {encoder} --corpus COLLECTIONS/{collection_name} "
           f"--output {corpus_path}")
    if meta and meta.get("shard_size") and int(meta["shard_size"]) != 100_000:
        cmd += f" --shard-size {int(meta['shard_size'])}"
    if meta and meta.get("max_length") and int(meta["max_length"]) != int(card.doc_max_length):
        cmd += f" --max-length {int(meta['max_length'])}"
    return cmd + f" --device {device.split(':')[0]}"


def _topic_reader(qids: Sequence[str]) -> str:
    """TsvInt when every id is a canonical integer (TsvInt parses ids with Integer.valueOf), else TsvString."""
    def canonical_int(q: str) -> bool:
        return bool(re.fullmatch(r"-?[1-9]\d{0,8}|0", q))

    return "TsvInt" if all(canonical_int(q) for q in qids) else "TsvString"


def export_regression(encoder, collection: str | os.PathLike, output: str | os.PathLike = "regressions",
                      name: str | None = None, vectors=None, index=None, work_dir=None,
                      metrics: Sequence[str] = DEFAULT_METRICS, precision: int = 4, hits: int = 1000,
                      index_threads: int = 2, store_docvectors: bool = True, fast: bool = False,
                      corpus_path: str | None = None, topics_name: str | None = None,
                      download_url: str | None = None, download_checksum: str | None = None,
                      shard_size: int = 100_000, vectors_url: str | None = None, onnx: bool = False, log=None) -> Path:
    """Run ``encoder`` on a BEIR ``collection`` and write ``<output>/<name>.yaml`` with its topics and qrels.

    ``onnx``: the topics are the raw query texts, encoded in Anserini by ``-encoder SpladePyserini`` from the
    encoder's ONNX export, written to ``<output>/onnx/<name>/`` (see :mod:`.onnx_export`).

    ``encoder``: a :class:`SpladeEncoder` or a card name / model folder. ``vectors``: reuse an encoded corpus
    (``splade-pyserini encode`` output); ``index``: reuse an index of it (its statistics go into the config).
    The config pins the vectors (:mod:`.vector_pins`: checksums and the list of rounding-boundary weights, a side
    file beside the topics); ``vectors_url``: where the pinned vectors can be fetched (a URL or a path).
    Expected results come from the same commands ``run`` executes, so ``run`` reproduces them exactly.
    """
    from . import __version__
    from .encoder import SpladeEncoder, load_encoder
    from .runs import read_qrels
    from .topics import read_topics

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    collection = Path(collection)
    if not (collection / "queries.jsonl").is_file() or not (collection / "qrels" / "test.tsv").is_file():
        raise SpladeError(f"collection {collection} is not a BEIR folder (corpus.jsonl, queries.jsonl, "
                          "qrels/test.tsv).")
    if isinstance(encoder, (str, os.PathLike)):
        encoder = load_encoder(encoder)
    if not isinstance(encoder, SpladeEncoder):
        raise SpladeError("encoder must be a SpladeEncoder, a card name or a model folder.")
    card = encoder.card
    if fast:
        from . import javaext

        if javaext.extension_jar() is None:
            raise SpladeError("--fast names the Java extension's collection class, but the extension is unavailable "
                              f"(it needs a javac >= {javaext.JAVA_RELEASE}); export without --fast.")
    collection_name = collection.resolve().name
    name = name or f"{collection_name}.{card.name}" + (".onnx" if onnx else "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SpladeError(f"config name {name!r}: use letters, digits, '.', '_' and '-'.")
    corpus_path = corpus_path or f"collections/{card.name}/{collection_name}"
    output = Path(output)
    topics_file = f"topics.{collection_name}.{card.name}.tsv.gz"
    qrels_file = f"qrels.{collection_name}.txt"
    boundary_file = f"vectors.{name}.boundary.tsv.gz"

    queries = read_topics(collection)
    qrels = read_qrels(collection)
    qids = list(queries)
    if onnx:
        from . import onnx_export

        topics_file = f"topics.{collection_name}.text.tsv.gz"
        lines = onnx_export.text_topics_lines(qids, [queries[q] for q in qids])
    else:
        log(f"export {name}: encoding {len(qids)} queries with {card.name}")
        lines = topics_lines(qids, encoder.quantized_queries([queries[q] for q in qids]))
    if len(lines) < len(qids):
        log(f"export {name}: {len(qids) - len(lines)} queries have no non-zero weight and are left out")
    reader = _topic_reader(qids)

    metric_entries = [trec_eval_metric(m, precision) for m in metrics]
    names = [m["metric"] for m in metric_entries]
    if len(set(names)) != len(names):
        raise SpladeError(f"metrics {list(metrics)} name the same measure twice.")
    model_name = f"{card.name}-cached"
    options = "-impact -pretokenized" + (" -storeDocvectors" if store_docvectors else "")
    data: dict = {
        "corpus": name,
        "corpus_path": corpus_path,
        "download_url": download_url,
        "download_checksum": download_checksum,
        "index_path": f"indexes/lucene-inverted.{name}/",
        "collection_class": STOCK_COLLECTION,
        "generator_class": STOCK_GENERATOR,
        "index_threads": int(index_threads),
        "index_options": options,
        "index_stats": {},
        "metrics": metric_entries,
        "topic_reader": reader,
        "topics": [{"name": topics_name or collection_name, "id": collection_name, "path": topics_file,
                    "qrel": qrels_file}],
        "models": [{"name": model_name, "display": card.name, "params": f"-impact -pretokenized -hits {int(hits)}",
                    "results": {}}],
    }
    if fast:
        from . import javaext

        data["collection_class"], data["generator_class"] = javaext.COLLECTION, javaext.GENERATOR
    if onnx:
        data["models"][0].update(name=f"{card.name}-onnx", params=f"-impact -pretokenized -encoder "
                                 f"{onnx_export.ENCODER_NAME} -hits {int(hits)}")

    own_work = work_dir is None
    work = work_folder(work_dir, "regression work folder", prefix="splade-export-", what="--work-dir")
    try:
        staging = work / "export"
        (staging / TOPICS_DIR).mkdir(parents=True, exist_ok=True)
        _write_gzip_text(staging / TOPICS_DIR / topics_file, "".join(ln + "\n" for ln in lines))
        _write_qrels(staging / TOPICS_DIR / qrels_file, qrels)
        onnx_rel = f"onnx/{name}"
        if onnx:
            log(f"export {name}: exporting the ONNX query encoder of {card.name}")
            onnx_export.export_onnx(card, staging / onnx_rel)

        meta = None
        if index is not None:
            index_dir = Path(index)
            from .search import check_compatible

            check_compatible(index_dir, encoder)  # scale, and the model by its weights' hash
            if not any(index_dir.glob("*.tvd")) and store_docvectors:
                data["index_options"] = "-impact -pretokenized"  # the index holds no document vectors
            if vectors is not None:
                meta = _check_vectors(Path(vectors), encoder)
            log(f"export {name}: using the index {index_dir}")
        else:
            if vectors is None:
                from .vectors import encode_corpus

                vectors = work / "vectors"
                log(f"export {name}: encoding the corpus of {collection} with {card.name}")
                encode_corpus(encoder, collection, vectors, shard_size=shard_size)
            meta = _check_vectors(Path(vectors), encoder)
            index_dir = work / "index"
            log(f"export {name}: indexing {vectors} with {data['collection_class']}")
            build_index(data, Path(vectors), index_dir)
        stats = index_stats(index_dir)
        data["index_stats"] = {k: stats[k] for k in STATS_KEYS if k in stats}
        pins = None
        if vectors is not None:
            from . import vector_pins
            from .exact import DELTA

            log(f"export {name}: pinning the vectors (checksums, and the weights near a rounding boundary)")
            boundary = vector_pins.boundary_entries(encoder, collection, vectors)
            found = vector_pins.digest(vectors, boundary)
            vector_pins.write_boundary(staging / TOPICS_DIR / boundary_file, boundary)
            pins = {"vectors_sha256": found.sha256, "vectors_masked_sha256": found.masked_sha256,
                    "vectors_boundary": boundary_file, "vectors_boundary_window": vector_pins.WINDOW_FACTOR * DELTA,
                    "vectors_boundary_weights": len(boundary)}
            if vectors_url:
                pins["vectors_url"] = vectors_url
        else:
            log(f"export {name}: no --vectors given, so the config pins no vectors")

        run = work / "runs" / run_file_name(data, data["models"][0], data["topics"][0])
        run.parent.mkdir(parents=True, exist_ok=True)
        log(f"export {name}: searching with SearchCollection {data['models'][0]['params']}")
        env = {**os.environ, onnx_export.ENVIRONMENT: str((staging / onnx_rel).resolve())} if onnx else None
        _java("io.anserini.search.SearchCollection",
              search_args(data, data["topics"][0], data["models"][0], str(index_dir),
                          str(staging / TOPICS_DIR / topics_file), str(run)), extra_classpath(data),
              what="search (SearchCollection)", env=env)
        qrels_path = staging / TOPICS_DIR / qrels_file
        for m in metric_entries:
            value = round_half_up(evaluate_metric(m, qrels_path, run), int(m["metric_precision"]))
            data["models"][0]["results"][m["metric"]] = [value]
        data["splade_pyserini"] = {
            "encoder": card.name,
            "variant": card.variant,
            "scale": card.scale,
            "doc_max_length": int(meta["max_length"]) if meta and meta.get("max_length") else card.doc_max_length,
            "query_max_length": card.query_max_length,
            "queries": "encoder.quantized_queries: round(w * scale), halves away from zero, zeros dropped; "
                       "each token repeated weight times",
            "collection": collection_name,
            "encode": _encode_command(card, collection_name, corpus_path, meta, encoder.device),
            "version": __version__,
        }
        if meta and meta.get("documents") is not None:
            data["splade_pyserini"]["documents"] = int(meta["documents"])
        if meta and meta.get("exact"):
            data["splade_pyserini"]["encode"] += " --exact"
        data["splade_pyserini"].update(pins or {})
        if onnx:
            data["splade_pyserini"]["queries"] = (f"raw text, encoded in Anserini by -encoder {onnx_export.ENCODER_NAME} "
                                                  f"(SPLADE_PYSERINI_ONNX or -D{onnx_export.PROPERTY}: onnx_model)")
            data["splade_pyserini"]["onnx_model"] = onnx_rel

        # Everything is computed: move the data files, then the config, into place.
        output.mkdir(parents=True, exist_ok=True)
        (output / TOPICS_DIR).mkdir(exist_ok=True)
        for fname in (topics_file, qrels_file, *([boundary_file] if pins else [])):
            _readable(staging / TOPICS_DIR / fname)
            os.replace(staging / TOPICS_DIR / fname, output / TOPICS_DIR / fname)
        if onnx:
            with atomic_directory(output / onnx_rel) as tmp:
                for f in (staging / onnx_rel).iterdir():
                    os.replace(f, tmp / f.name)
        config_path = output / f"{name}.yaml"
        with atomic_write(config_path) as f:
            f.write(format_config(data))
        _readable(config_path)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    log(f"export {name}: wrote {config_path}")
    return config_path


# --- command line --------------------------------------------------------------------------------------------------
def _print_report(report: Report) -> int:
    for check in report.checks:
        print(check.line())
    if report.ok:
        print(report.summary())
        return 0
    print(report.summary(), file=sys.stderr)
    return 1


def _cmd_run(args) -> int:
    if args.runner == "anserini":
        if args.index:
            raise SpladeError("--index cannot be used with --runner anserini (it always builds its index).")
        report, text = run_with_anserini(args.config, corpus_path=args.corpus_path, corpus_root=args.corpus_root,
                                         topics_dir=args.topics_dir, work_dir=args.work_dir,
                                         index_threads=args.index_threads, keep=args.keep)
        if args.verbose:
            sys.stderr.write(text)
    else:
        report = run_regression(args.config, corpus_path=args.corpus_path, corpus_root=args.corpus_root,
                                topics_dir=args.topics_dir, index=args.index, work_dir=args.work_dir,
                                index_threads=args.index_threads, keep=args.keep)
    if args.json:
        with atomic_write(args.json) as f:
            json.dump({"config": report.config, "ok": report.ok, "runner": report.runner, "seconds": report.seconds,
                       "checks": [c.__dict__ for c in report.checks], "runs": report.runs}, f, indent=2)
            f.write("\n")
    return _print_report(report)


def _cmd_export(args) -> int:
    from .encoder import load_encoder

    encoder = load_encoder(args.encoder, device=args.device)
    path = export_regression(encoder, args.collection, output=args.output, name=args.name, vectors=args.vectors,
                             index=args.index, work_dir=args.work_dir, metrics=args.metrics or DEFAULT_METRICS,
                             precision=args.precision, hits=args.hits, index_threads=args.index_threads,
                             store_docvectors=not args.no_docvectors, fast=args.fast, corpus_path=args.corpus_path,
                             topics_name=args.topics_name, download_url=args.download_url,
                             download_checksum=args.download_checksum, vectors_url=args.vectors_url,
                             shard_size=args.shard_size, onnx=args.onnx)
    print(path)
    return 0


def _cmd_list(args) -> int:
    folder = Path(args.folder)
    if not args.anserini:
        configs = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
        if not configs:
            raise SpladeError(f"no regression configs (*.yaml) in {folder}; pass --folder, or --anserini for "
                              "Anserini's bundled configs.")
        for p in configs:
            print(p)
        return 0
    for name in anserini_configs(args.filter):
        print(name)
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("regression", help="Anserini regression configs: export one, run one")
    sub = p.add_subparsers(dest="regression", required=True, metavar="WHAT")

    e = sub.add_parser("export", help="encode, index, search and evaluate a BEIR collection; write its config")
    e.add_argument("--encoder", required=True, help="card name (splade-tiny …) or model/checkpoint folder")
    e.add_argument("--collection", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    e.add_argument("--output", default="regressions", help="folder for NAME.yaml and topics-and-qrels/")
    e.add_argument("--name", default=None, help="config name (default: COLLECTION.ENCODER)")
    e.add_argument("--vectors", default=None, help="reuse this encoded corpus (`splade-pyserini encode` output)")
    e.add_argument("--index", default=None, help="reuse this index of the corpus (its statistics are recorded)")
    e.add_argument("--work-dir", default=None, help="keep vectors, index and run here (default: a temporary folder)")
    e.add_argument("--metrics", nargs="+", default=None,
                   help="map, ndcg@K, recall@K, p@K, mrr@K, success@K, or raw trec_eval parameters "
                        f"(default: {' '.join(DEFAULT_METRICS)})")
    e.add_argument("--precision", type=int, default=4, help="metric_precision (trec_eval prints 4 decimals)")
    e.add_argument("--hits", type=int, default=1000)
    e.add_argument("--index-threads", type=int, default=2)
    e.add_argument("--no-docvectors", action="store_true", help="index without -storeDocvectors")
    e.add_argument("--fast", action="store_true", help="name the Java extension's collection and generator classes")
    e.add_argument("--onnx", action="store_true",
                   help="raw-text topics encoded in Anserini (-encoder SpladePyserini, model exported to onnx/NAME)")
    e.add_argument("--corpus-path", default=None, help="the config's corpus_path (default collections/ENCODER/NAME)")
    e.add_argument("--topics-name", default=None, help="display name of the topic set")
    e.add_argument("--download-url", default=None)
    e.add_argument("--download-checksum", default=None)
    e.add_argument("--shard-size", type=int, default=100_000, help="shard size when the corpus is encoded here")
    e.add_argument("--vectors-url", default=None, help="where the pinned vectors can be fetched (URL or path)")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=_cmd_export)

    r = sub.add_parser("run", help="index, verify, search and evaluate a config; fail on any difference")
    r.add_argument("config", help="a config file, or the name of one of Anserini's bundled configs")
    r.add_argument("--corpus-path", default=None, help="the corpus folder itself")
    r.add_argument("--corpus-root", default=None,
                   help=f"a folder under which the config's corpus_path lies (also ${CORPUS_ROOT_ENV})")
    r.add_argument("--topics-dir", default=None, help="folder holding the topics and qrels files")
    r.add_argument("--index", default=None, help="use this existing index instead of building one")
    r.add_argument("--work-dir", default=None, help="build the index and runs here and keep them")
    r.add_argument("--keep", action="store_true", help="keep the temporary working folder")
    r.add_argument("--index-threads", type=int, default=None, help="override index_threads")
    r.add_argument("--runner", default="splade-pyserini", choices=["splade-pyserini", "anserini"],
                   help="anserini: Anserini's ReproduceFromDocumentCollection (passes results above expected)")
    r.add_argument("--json", default=None, help="also write the checks to this file")
    r.add_argument("--verbose", action="store_true", help="with --runner anserini, print its log")
    r.set_defaults(func=_cmd_run)

    ls = sub.add_parser("list", help="list the configs of a folder, or Anserini's bundled ones")
    ls.add_argument("--folder", default="regressions")
    ls.add_argument("--anserini", action="store_true", help="list Anserini's bundled configs")
    ls.add_argument("--filter", default="splade", help="with --anserini: names containing this (default splade)")
    ls.set_defaults(func=_cmd_list)
