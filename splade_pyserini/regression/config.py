"""A regression config: its schema (Anserini's ``ReproduceFromDocumentCollection`` YAML), reading, checking and
writing it, and its ``metrics`` entries (a metric name as a trec_eval command; the rounding the runner compares at).
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import SpladeError

CONFIG_DIR_IN_JAR = "reproduce/from-document-collection/configs"
TOPICS_DIR = "topics-and-qrels"
STOCK_COLLECTION = "JsonVectorCollection"
STOCK_GENERATOR = "DefaultLuceneDocumentGenerator"
#: Index statistics a config records (the lines of ``IndexReaderUtils -stats`` that Anserini's configs verify).
STATS_KEYS = ("documents", "documents (non-empty)", "total terms")
DEFAULT_METRICS = ("map", "ndcg@10", "recall@100", "recall@1000")

_TREC_MEASURES = {"map": "map", "ndcg": "ndcg_cut", "recall": "recall", "p": "P", "precision": "P",
                  "mrr": "recip_rank", "rr": "recip_rank", "success": "success", "map_cut": "map_cut"}
_DISPLAY = {"map": "MAP", "ndcg": "nDCG", "recall": "R", "p": "P", "precision": "P", "mrr": "RR", "rr": "RR",
            "success": "Success", "map_cut": "AP"}


# --- metric entries ------------------------------------------------------------------------------------------------
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
    from ..anserini import fatjar

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
    from ..anserini import fatjar

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


